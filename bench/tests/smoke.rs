//! Smoke runs of every scenario against the real server (tiny sizes, a second or two each),
//! so the load generator can't rot: each asserts what its scenario promises in the JSON line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use jabberwock_tests::s2s::{authenticated, federated_config, start_federated};
use jabberwock_tests::{TestConfig, TestServer};
use serde_json::Value;

fn server() -> TestServer {
    let server = TestServer::start_with(
        TestConfig::default()
            .c2s("require_encryption = false")
            .host("localhost", "registration = true")
            .host("localhost", "flash_registration = true")
            // The muc scenario's senders run in a closed loop: no per-occupant rate.
            .section("modules.muc", "messages_per_second = 0.0"),
    );
    server.wait_started();
    server
}

/// Runs the bench against `server`, returns its one JSON line (asserting it ran ok).
fn bench(server: &TestServer, args: &[&str]) -> Value {
    bench_for(server, "localhost", args)
}

/// [`bench`] with `server` serving `domain`.
fn bench_for(server: &TestServer, domain: &str, args: &[&str]) -> Value {
    let pid = server.pid().expect("server running").to_string();
    let port = server.c2s.port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_jabberwock-bench"))
        .args(args)
        .args(["--server-pid", &pid, "--host", "127.0.0.1", "--port", &port])
        .args(["--domain", domain, "--timeout", "60", "--json-only"])
        .output()
        .expect("run jabberwock-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one JSON line expected:\n{stdout}\n{stderr}"
    );
    let v: Value = serde_json::from_str(lines[0]).expect("JSON line");
    assert!(
        out.status.success() && v["ok"] == true,
        "bench failed: {stdout}\n{stderr}\nserver log:\n{}",
        server.log_text()
    );
    assert_eq!(v["server_pid"].as_u64(), Some(pid.parse().unwrap()));
    assert!(v["results"]["bench_cpu_s"].as_f64().is_some());
    v
}

fn num(v: &Value, path: &str) -> f64 {
    let mut at = &v["results"];
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("results.{path} missing in {v}"))
}

#[test]
fn register_creates_accounts() {
    let s = server();
    let v = bench(&s, &["register", "--duration", "1", "--concurrency", "4"]);
    assert!(num(&v, "registrations") > 0.0, "{v}");
    assert_eq!(num(&v, "failures"), 0.0, "{v}");
    assert!(num(&v, "registrations_per_sec") > 0.0, "{v}");
}

#[test]
fn idle_sessions_all_answer_pings_and_memory_is_read() {
    let s = server();
    let v = bench(
        &s,
        &[
            "idle",
            "--users",
            "8",
            "--steps",
            "2",
            "--provision",
            "register",
            "--duration",
            "0.5",
            "--settle",
            "0.2",
        ],
    );
    let r = &v["results"];
    assert_eq!(r["all_pings_answered"], true, "{v}");
    assert_eq!(num(&v, "sessions"), 8.0, "{v}");
    assert_eq!(r["steps"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(num(&v, "rss_0_bytes") > 0.0, "{v}");
    assert!(num(&v, "hold.rss_bytes") > 0.0, "{v}");
    assert_eq!(num(&v, "hold.pings_answered"), 8.0, "{v}");
    assert!(r["slope_bytes_per_session"].is_number(), "{v}");
}

#[test]
fn login_loops_over_scram_sha1_and_starttls_sha256() {
    let s = server();
    let v = bench(
        &s,
        &[
            "login",
            "--users",
            "3",
            "--provision",
            "register",
            "--duration",
            "1",
            "--concurrency",
            "2",
        ],
    );
    assert!(num(&v, "logins") > 0.0 && num(&v, "failures") == 0.0, "{v}");
    assert!(num(&v, "login_ms.p99") > 0.0, "{v}");
    assert!(num(&v, "server_cpu_ms_per_login") >= 0.0, "{v}");
    let v = bench(
        &s,
        &[
            "login",
            "--users",
            "3",
            "--transport",
            "starttls",
            "--mechanism",
            "SCRAM-SHA-256",
            "--duration",
            "1",
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(v["transport"], "starttls");
    assert!(num(&v, "logins") > 0.0 && num(&v, "failures") == 0.0, "{v}");
}

#[test]
fn messages_closed_loop_loses_nothing() {
    let s = server();
    let v = bench(
        &s,
        &[
            "messages",
            "--pairs",
            "3",
            "--provision",
            "register",
            "--duration",
            "1",
        ],
    );
    assert_eq!(v["results"]["mode"], "closed");
    assert!(num(&v, "received") > 0.0, "{v}");
    assert_eq!(num(&v, "lost"), 0.0, "{v}");
    assert!(num(&v, "delivered_per_sec") > 0.0, "{v}");
    assert!(num(&v, "latency_ms.p99") > 0.0, "{v}");
    assert!(num(&v, "server_cpu_us_per_msg") > 0.0, "{v}");
}

#[test]
fn mam_query_fills_then_every_answer_is_a_full_last_page() {
    // The archive is on by default (docs/archive.md).
    let s = server();
    let common = ["--pairs", "2", "--provision", "register"];
    let fill = bench(
        &s,
        &[
            &["mam-query", "--fill", "240", "--fill-only"][..],
            &common[..],
        ]
        .concat(),
    );
    assert_eq!(fill["results"]["fill_complete"], true, "{fill}");
    assert_eq!(num(&fill, "fill_received"), 240.0, "{fill}");
    assert!(fill["results"]["queries"].is_null(), "{fill}");
    // A later run queries what the first one filled: each of the 4 accounts holds ≈ 60.
    let v = bench(
        &s,
        &[
            &["mam-query", "--concurrency", "4", "--duration", "1"][..],
            &common[..],
        ]
        .concat(),
    );
    assert!(num(&v, "queries") > 0.0, "{v}");
    assert_eq!(num(&v, "short_pages"), 0.0, "{v}");
    assert_eq!(num(&v, "results_per_query_min"), 50.0, "{v}");
    assert_eq!(num(&v, "failures"), 0.0, "{v}");
    assert!(num(&v, "query_ms.p99") > 0.0, "{v}");
}

#[test]
fn muc_rooms_deliver_every_message_to_every_occupant() {
    let s = server();
    let v = bench(
        &s,
        &[
            "muc",
            "--rooms",
            "2",
            "--occupants",
            "4",
            "--provision",
            "register",
            "--duration",
            "1",
        ],
    );
    assert_eq!(v["results"]["muc_domain"], "conference.localhost");
    let sent = num(&v, "sent");
    assert!(sent > 0.0, "{v}");
    // Every message reaches all four occupants of its room, the sender included.
    assert_eq!(num(&v, "expected_deliveries"), sent * 4.0, "{v}");
    assert_eq!(num(&v, "received"), sent * 4.0, "{v}");
    assert_eq!(num(&v, "lost"), 0.0, "{v}");
    assert!(num(&v, "server_cpu_us_per_delivery") > 0.0, "{v}");
    // Read from /proc when the server's pid is given: entering rooms costs the server memory.
    assert!(num(&v, "rss_joined_bytes") > 0.0, "{v}");
    assert!(v["results"]["memory_per_occupant_bytes"].is_number(), "{v}");
}

#[test]
fn messages_open_loop_over_flash_with_plain() {
    let s = server();
    let v = bench(
        &s,
        &[
            "messages",
            "--pairs",
            "2",
            "--provision",
            "register",
            "--transport",
            "flash",
            "--mechanism",
            "PLAIN",
            "--rate",
            "100",
            "--duration",
            "1",
        ],
    );
    assert_eq!(v["transport"], "flash");
    assert_eq!(v["results"]["mode"], "open");
    assert!(num(&v, "received") >= 50.0, "{v}");
    assert_eq!(num(&v, "lost"), 0.0, "{v}");
    // The pacer sends on schedule: 100 due in the second, each with its lag recorded.
    assert!((90.0..=100.0).contains(&num(&v, "sent")), "{v}");
    assert_eq!(num(&v, "send_lag_ms.count"), num(&v, "sent"), "{v}");
    // Receipt − actual send never exceeds receipt − due time.
    assert!(
        num(&v, "latency_from_send_ms.p99") <= num(&v, "latency_ms.p99"),
        "{v}"
    );
}

#[test]
fn presence_reaches_every_contact() {
    let s = server();
    let v = bench(
        &s,
        &[
            "presence",
            "--users",
            "6",
            "--roster",
            "2",
            "--provision",
            "register",
            "--duration",
            "0.5",
        ],
    );
    assert_eq!(num(&v, "failures"), 0.0, "{v}");
    assert_eq!(num(&v, "roster_both_min"), 2.0, "{v}");
    // Each user sees at least its own echo and its 2 contacts, every round.
    assert!(
        num(&v, "presence_delivered") >= 6.0 * 3.0 * num(&v, "rounds"),
        "{v}"
    );
    assert!(num(&v, "presence_per_sec") > 0.0, "{v}");
}

/// `jabberwock-bench dns` as a child process, killed when dropped.
struct Nameserver(Child);

impl Nameserver {
    fn start(listen: &str, records: &[&str]) -> Nameserver {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jabberwock-bench"));
        cmd.args(["dns", "--listen", listen, "--timeout", "120"]);
        for r in records {
            cmd.args(["--record", r]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jabberwock-bench dns");
        // Its first line comes once the socket is bound.
        let mut line = String::new();
        let stderr = child.stderr.take().expect("stderr");
        BufReader::new(stderr).read_line(&mut line).expect("read");
        assert!(line.starts_with("dns: answering 2 names"), "{line}");
        Nameserver(child)
    }
}

impl Drop for Nameserver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The s2s scenario between two servers on 127.0.64.1 (a.test) and 127.0.64.2 (b.test)
/// that find each other only through the bench's own nameserver (no static map): every
/// message crosses their stream, set up during the warm-up.
#[test]
fn s2s_messages_cross_between_servers_found_through_the_bench_nameserver() {
    let dns = "127.0.64.53:5353";
    let _ns = Nameserver::start(dns, &["a.test=127.0.64.1", "b.test=127.0.64.2"]);
    let resolvers = format!("resolvers = [\"{dns}\"]");
    let start = |domain: &str, ip: &str| {
        start_federated(
            federated_config(domain, ip, &[], &[&resolvers])
                .c2s("require_encryption = false")
                .host(domain, "registration = true"),
        )
    };
    let a = start("a.test", "127.0.64.1");
    let b = start("b.test", "127.0.64.2");
    let args = format!(
        "s2s --pairs 3 --provision register --duration 1 --domain-b b.test \
         --host-b 127.0.0.1 --port-b {} --server-pid-b {}",
        b.c2s.port(),
        b.pid().expect("b.test running")
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    let v = bench_for(&a, "a.test", &args);
    assert_eq!(v["params"]["domain_b"], "b.test", "{v}");
    assert!(num(&v, "received") > 0.0, "{v}");
    assert_eq!(num(&v, "lost"), 0.0, "{v}");
    assert_eq!(num(&v, "bounced"), 0.0, "{v}");
    assert!(num(&v, "delivered_per_sec") > 0.0, "{v}");
    assert!(num(&v, "latency_ms.p99") > 0.0, "{v}");
    // Stream setup took its time before the measurement (it may round to 0 ms).
    assert!(num(&v, "warmup_s") >= 0.0, "{v}");
    // Both servers worked for every message, and the total is their sum.
    let (a_us, b_us) = (
        num(&v, "server_a_cpu_us_per_msg"),
        num(&v, "server_b_cpu_us_per_msg"),
    );
    assert!(a_us > 0.0 && b_us > 0.0, "{v}");
    assert!(
        (num(&v, "server_cpu_us_per_msg") - (a_us + b_us)).abs() < 0.01,
        "{v}"
    );
    assert!(num(&v, "server_b_rss_bytes_end") > 0.0, "{v}");
    // The messages went over a stream from a.test to b.test (dialback: the servers'
    // certificates are self-signed), STARTTLS first.
    let out = authenticated("outgoing", "a.test", "b.test", "dialback");
    assert!(a.wait_log(&out), "no {out:?} in {}", a.log_text());
    let inc = authenticated("incoming", "b.test", "a.test", "dialback");
    assert!(b.wait_log(&inc), "no {inc:?} in {}", b.log_text());
}

#[test]
fn hibernated_sessions_are_all_resumed_over_worker_processes() {
    let s = server();
    let v = bench(
        &s,
        &[
            "hibernate",
            "--users",
            "6",
            "--workers",
            "2",
            "--provision",
            "register",
            "--settle",
            "0.2",
            "--cut",
            "rst",
        ],
    );
    let r = &v["results"];
    assert_eq!(num(&v, "sessions"), 6.0, "{v}");
    assert_eq!(num(&v, "hibernated_sessions"), 6.0, "{v}");
    assert_eq!(num(&v, "resumed"), 6.0, "{v}");
    assert_eq!(num(&v, "resume_failed"), 0.0, "{v}");
    assert_eq!(num(&v, "workers"), 2.0, "{v}");
    assert_eq!(r["cut"], "rst", "{v}");
    for phase in ["empty", "logged_in", "hibernated"] {
        assert!(num(&v, &format!("{phase}.rss_bytes")) > 0.0, "{v}");
    }
    assert!(num(&v, "logged_in.server_sockets") >= 6.0, "{v}");
    assert!(r["bytes_per_hibernated_session"].is_number(), "{v}");
}

#[test]
fn resume_loops_resume_without_failures() {
    let s = server();
    let v = bench(
        &s,
        &[
            "resume",
            "--users",
            "4",
            "--provision",
            "register",
            "--duration",
            "1",
            "--concurrency",
            "2",
        ],
    );
    assert!(num(&v, "resumptions") > 0.0, "{v}");
    assert_eq!(num(&v, "failures"), 0.0, "{v}");
    assert_eq!(num(&v, "relogins"), 0.0, "{v}");
    assert!(num(&v, "resume_ms.p99") > 0.0, "{v}");
    assert!(num(&v, "server_cpu_ms_per_resumption") >= 0.0, "{v}");
}
