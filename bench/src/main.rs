//! jabberwock-bench: a load generator for XMPP servers (Jabberwock, Prosody, ejabberd).
//! Scenarios: idle, login, messages, muc, presence, register, s2s, hibernate, resume,
//! mam-query (see bench/README.md).
//! Every run prints a human table on stderr and exactly one JSON line on stdout. Beside
//! them, `dns` serves a few A records for the s2s scenario's servers (bench/compare.sh).

mod archive;
mod conn;
mod dns;
mod muc;
mod pacer;
mod s2s;
mod scenarios;
mod sm;
mod stats;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Idle,
    Login,
    Messages,
    Muc,
    Presence,
    Register,
    S2s,
    /// XEP-0198: memory of sessions waiting for resumption (`sm.rs`).
    Hibernate,
    /// XEP-0198: resumptions per second (`sm.rs`).
    Resume,
    MamQuery,
    /// Not a scenario: a nameserver answering `--record`s on `--listen` (UDP) until
    /// `--timeout` s pass or it is killed.
    Dns,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Plain,
    Starttls,
    Flash,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    #[value(name = "SCRAM-SHA-1")]
    ScramSha1,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "PLAIN")]
    Plain,
}

/// How hibernate and resume cut a connection without closing the stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Cut {
    /// Closed socket: a FIN, as when the client's process dies.
    Fin,
    /// SO_LINGER 0: an RST, as a NAT or firewall that dropped the flow answers.
    Rst,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Provision {
    Register,
    None,
}

#[derive(Parser, Debug, Clone)]
#[command(version, about = "Load generator for XMPP servers")]
pub struct Args {
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server's process id: its memory (VmRSS) and CPU (utime+stime) are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 5222)]
    pub port: u16,
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// s2s: the second server (the receivers'): its c2s address (default: --host) ...
    #[arg(long)]
    pub host_b: Option<String>,
    /// ... its c2s port (default: --port) ...
    #[arg(long)]
    pub port_b: Option<u16>,
    /// ... its domain (required) ...
    #[arg(long, default_value = "")]
    pub domain_b: String,
    /// ... and its process id (CPU and memory, as --server-pid for the first).
    #[arg(long)]
    pub server_pid_b: Option<u32>,
    /// s2s: seconds every pair's first message may take to arrive (stream setup).
    #[arg(long, default_value_t = 60.0)]
    pub warmup: f64,
    /// dns: the UDP address to answer on.
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub listen: String,
    /// dns: `NAME=IPV4`, an A record (repeat the option for more).
    #[arg(long = "record")]
    pub records: Vec<String>,
    #[arg(long, value_enum, default_value = "plain")]
    pub transport: Transport,
    #[arg(long, value_enum, default_value = "SCRAM-SHA-1")]
    pub mechanism: Mechanism,
    /// Accounts {prefix}{0..N}; idle: sessions; login: the account pool; presence: users.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    #[arg(long, default_value = "bench")]
    pub user_prefix: String,
    #[arg(long, default_value = "secret")]
    pub password: String,
    /// register: create the accounts with XEP-0077 first (an existing one is fine).
    #[arg(long, value_enum, default_value = "none")]
    pub provision: Provision,
    /// idle: log the sessions in over this many steps (memory is read after each).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// messages: sender→receiver pairs (accounts 0..2P); s2s: pairs (accounts 0..P on each).
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// muc: rooms, each with `--occupants` occupants (accounts 0..R·O).
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    /// muc: occupants per room; occupant 0 of each room sends.
    #[arg(long, default_value_t = 10)]
    pub occupants: usize,
    /// muc: the MUC service's domain (empty = conference.DOMAIN).
    #[arg(long, default_value = "")]
    pub muc_domain: String,
    /// messages: total messages per second (open loop); 0 = closed loop (see --window).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// messages, closed loop: messages in flight per pair; muc: per room.
    #[arg(long, default_value_t = 5)]
    pub window: usize,
    /// Seconds of measurement (idle: holding time after the last step).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Concurrent login / registration loops.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// presence: contacts per user (mutual subscriptions between bench users).
    #[arg(long, default_value_t = 10)]
    pub roster: usize,
    #[arg(long, default_value = "")]
    pub label: String,
    /// Only the JSON line (no table on stderr).
    #[arg(long)]
    pub json_only: bool,
    /// idle, hibernate: worker processes (0 = one per 15,000 sessions).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Loopback source addresses 127.0.0.1..=127.0.0.K to spread connections over
    /// (ephemeral ports are per source address); 0 = let the kernel choose.
    #[arg(long, default_value_t = 4)]
    pub source_ips: usize,
    /// messages: seconds to wait for messages in flight after sending stops.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// idle, muc, hibernate: seconds to let the server settle before each memory reading.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// mam-query: messages to send through the server before the queries (0 = none: the
    /// archive was filled by an earlier run).
    #[arg(long, default_value_t = 0)]
    pub fill: u64,
    /// mam-query: seconds the fill may take at most (sending stops then).
    #[arg(long, default_value_t = 1200.0)]
    pub fill_timeout: f64,
    /// mam-query: fill only, no queries.
    #[arg(long)]
    pub fill_only: bool,
    /// Hard limit on the whole run in seconds (0 = 120 + 3 × duration + time for logins).
    #[arg(long, default_value_t = 0.0)]
    pub timeout: f64,
    /// Recompute SCRAM keys (PBKDF2) at every login instead of caching them per account.
    #[arg(long)]
    pub no_scram_cache: bool,
    /// hibernate, resume: how a connection is cut (no `</stream:stream>`).
    #[arg(long, value_enum, default_value = "fin")]
    pub cut: Cut,
    /// Internal: run as idle worker number I of K (driven over stdin/stdout by the parent).
    #[arg(long, hide = true)]
    pub worker_index: Option<usize>,
}

impl Args {
    pub fn user(&self, i: usize) -> String {
        format!("{}{}", self.user_prefix, i)
    }

    pub fn host_b(&self) -> &str {
        self.host_b.as_deref().unwrap_or(&self.host)
    }

    pub fn port_b(&self) -> u16 {
        self.port_b.unwrap_or(self.port)
    }

    pub fn hard_timeout(&self) -> Duration {
        if self.timeout > 0.0 {
            return Duration::from_secs_f64(self.timeout);
        }
        let accounts = self
            .users
            .max(self.pairs * 2)
            .max(self.rooms * self.occupants);
        let logins = (accounts as f64 / 50.0).max(0.0);
        let warmup = if self.scenario == Scenario::S2s {
            self.warmup
        } else {
            0.0
        };
        let fill = if self.scenario == Scenario::MamQuery && self.fill > 0 {
            self.fill_timeout + 30.0
        } else {
            0.0
        };
        Duration::from_secs_f64(120.0 + 3.0 * self.duration + logins + self.drain + warmup + fill)
    }

    fn params(&self) -> Value {
        let mut p = json!({
            "host": self.host, "port": self.port, "domain": self.domain,
            "mechanism": mechanism_name(self.mechanism),
            "users": self.users, "concurrency": self.concurrency,
            "duration": self.duration, "provision": format!("{:?}", self.provision).to_lowercase(),
            "scram_cache": !self.no_scram_cache,
        });
        let extra = match self.scenario {
            Scenario::Idle => {
                json!({"steps": self.steps, "settle": self.settle, "workers": self.workers})
            }
            Scenario::Messages => {
                json!({"pairs": self.pairs, "rate": self.rate, "window": self.window, "drain": self.drain})
            }
            Scenario::S2s => json!({
                "pairs": self.pairs, "rate": self.rate, "window": self.window, "drain": self.drain,
                "warmup": self.warmup, "host_b": self.host_b(), "port_b": self.port_b(),
                "domain_b": self.domain_b,
            }),
            Scenario::Muc => json!({
                "rooms": self.rooms, "occupants": self.occupants, "window": self.window,
                "drain": self.drain, "settle": self.settle, "muc_domain": muc::muc_domain(self),
            }),
            Scenario::Presence => json!({"roster": self.roster}),
            Scenario::Hibernate => json!({
                "settle": self.settle, "workers": self.workers,
                "cut": format!("{:?}", self.cut).to_lowercase(),
            }),
            Scenario::Resume => json!({"cut": format!("{:?}", self.cut).to_lowercase()}),
            Scenario::MamQuery => json!({
                "pairs": self.pairs, "window": self.window, "fill": self.fill,
                "fill_timeout": self.fill_timeout, "fill_only": self.fill_only, "page": archive::PAGE,
            }),
            _ => json!({}),
        };
        if let (Value::Object(p), Value::Object(e)) = (&mut p, extra) {
            p.extend(e);
        }
        p
    }
}

pub fn mechanism_name(m: Mechanism) -> &'static str {
    match m {
        Mechanism::ScramSha1 => "SCRAM-SHA-1",
        Mechanism::ScramSha256 => "SCRAM-SHA-256",
        Mechanism::Plain => "PLAIN",
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Plain => "plain",
        Transport::Starttls => "starttls",
        Transport::Flash => "flash",
    }
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Idle => "idle",
        Scenario::Login => "login",
        Scenario::Messages => "messages",
        Scenario::Muc => "muc",
        Scenario::Presence => "presence",
        Scenario::Register => "register",
        Scenario::S2s => "s2s",
        Scenario::Hibernate => "hibernate",
        Scenario::Resume => "resume",
        Scenario::MamQuery => "mam-query",
        Scenario::Dns => "dns",
    }
}

/// The server the scenario drives (the senders' in s2s).
pub fn target(args: &Args) -> Result<conn::Target, String> {
    target_at(args, &args.host, args.port, &args.domain)
}

/// A server at `host:port` serving `domain`, with the run's transport and credentials.
pub fn target_at(args: &Args, host: &str, port: u16, domain: &str) -> Result<conn::Target, String> {
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or("no address")?;
    let sources = match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() && args.source_ips > 0 => (1..=args.source_ips.min(250))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
            .collect(),
        _ => Vec::new(),
    };
    Ok(conn::Target {
        addr,
        sources,
        domain: domain.to_owned(),
        transport: args.transport,
        mechanism: args.mechanism,
        password: args.password.clone(),
        scram_cache: !args.no_scram_cache,
        tls: tls::client_config(),
        next_source: Default::default(),
    })
}

fn main() {
    let args = Args::parse();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if args.worker_index.is_some() {
        match args.scenario {
            Scenario::Hibernate => rt.block_on(sm::hibernate_worker(args)),
            _ => rt.block_on(scenarios::idle_worker(args)),
        }
        return;
    }
    if args.scenario == Scenario::Dns {
        if let Err(e) = dns::serve(&args) {
            eprintln!("jabberwock-bench dns: {e}");
            std::process::exit(1);
        }
        return;
    }
    let started = Instant::now();
    let cpu0 = stats::self_cpu_seconds();
    let hard = args.hard_timeout();
    let run = {
        let args = args.clone();
        async move {
            let target = Arc::new(target(&args)?);
            // register makes its own accounts; s2s provisions on both of its servers.
            let accounts = match args.scenario {
                Scenario::Register | Scenario::S2s | Scenario::Dns => None,
                Scenario::Messages | Scenario::MamQuery => Some(args.pairs * 2),
                Scenario::Muc => Some(args.rooms * args.occupants),
                Scenario::Idle | Scenario::Login | Scenario::Presence => Some(args.users),
                Scenario::Hibernate | Scenario::Resume => Some(args.users),
            };
            if let (Provision::Register, Some(n)) = (args.provision, accounts) {
                scenarios::provision(&args, &target, n).await?;
            }
            match args.scenario {
                Scenario::Idle => scenarios::idle(&args, &target).await,
                Scenario::Login => scenarios::login(&args, &target).await,
                Scenario::Messages => scenarios::messages(&args, &target).await,
                Scenario::Muc => muc::muc(&args, &target).await,
                Scenario::Presence => scenarios::presence(&args, &target).await,
                Scenario::Register => scenarios::register(&args, &target).await,
                Scenario::S2s => s2s::run(&args, &target).await,
                Scenario::Hibernate => sm::hibernate(&args, &target).await,
                Scenario::Resume => sm::resume_loop(&args, &target).await,
                Scenario::MamQuery => archive::mam_query(&args, &target).await,
                Scenario::Dns => Err("dns is no scenario".into()),
            }
        }
    };
    let outcome = rt.block_on(async {
        match tokio::time::timeout(hard, run).await {
            Ok(r) => r,
            Err(_) => Err(format!("hard timeout after {} s", hard.as_secs())),
        }
    });
    let (ok, mut results, error) = match outcome {
        Ok(r) => (true, r, None),
        Err(e) => (false, json!({}), Some(e)),
    };
    if let Value::Object(map) = &mut results {
        // Children's CPU is added by the idle scenario itself.
        let own = stats::self_cpu_seconds() - cpu0;
        let children = map
            .get("worker_cpu_s")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        map.insert("bench_cpu_s".into(), json!(round3(own + children)));
        map.insert(
            "elapsed_s".into(),
            json!(round3(started.elapsed().as_secs_f64())),
        );
        if let Some(pid) = args.server_pid {
            map.insert("server_rss_bytes_end".into(), json!(stats::rss_bytes(pid)));
        }
        if let Some(pid) = args.server_pid_b {
            map.insert(
                "server_b_rss_bytes_end".into(),
                json!(stats::rss_bytes(pid)),
            );
        }
    }
    let line = json!({
        "scenario": scenario_name(args.scenario),
        "label": args.label,
        "server_pid": args.server_pid,
        "transport": transport_name(args.transport),
        "params": args.params(),
        "ok": ok,
        "error": error,
        "results": results,
    });
    if !args.json_only {
        eprint!("{}", table(&line));
    }
    println!("{line}");
    rt.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(if ok { 0 } else { 1 });
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The human view: one `key  value` line per result, nested objects flattened.
fn table(line: &Value) -> String {
    let mut out = format!(
        "== {} [{}] transport={} label={} ==\n",
        line["scenario"].as_str().unwrap_or(""),
        if line["ok"] == json!(true) {
            "ok"
        } else {
            "FAILED"
        },
        line["transport"].as_str().unwrap_or(""),
        line["label"].as_str().unwrap_or(""),
    );
    if let Some(e) = line["error"].as_str() {
        out.push_str(&format!("error: {e}\n"));
    }
    fn walk(prefix: &str, v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Array(items) if items.iter().all(Value::is_object) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), item, out);
                }
            }
            other => out.push_str(&format!("  {prefix:<40} {other}\n")),
        }
    }
    walk("", &line["results"], &mut out);
    out
}
