//! The scenarios. Each returns the `results` object of its JSON line, or an error when the
//! run could not be measured at all (a partial failure is reported inside the results).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use memchr::memmem;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{attr, Conn, Res, Target, Unit};
use crate::pacer;
use crate::stats::{self, Histogram};
use crate::{round3, Args};

/// Bound on one login (connect to presence echo) or one registration.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

pub(crate) fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

pub(crate) fn server_cpu(args: &Args) -> Option<f64> {
    args.server_pid.and_then(stats::cpu_seconds)
}

pub(crate) fn cpu_delta(args: &Args, before: Option<f64>) -> Option<f64> {
    Some(server_cpu(args)? - before?)
}

/// First few distinct errors, for the report.
#[derive(Default)]
pub(crate) struct Errors {
    count: AtomicU64,
    first: Mutex<Vec<String>>,
}

impl Errors {
    pub(crate) fn add(&self, e: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap();
        if first.len() < 5 && !first.contains(&e) {
            first.push(e);
        }
    }
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    pub(crate) fn list(&self) -> Value {
        json!(*self.first.lock().unwrap())
    }
}

pub(crate) async fn login_one(target: &Target, user: &str, resource: &str) -> Res<(Conn, usize)> {
    timeout(STEP_TIMEOUT, async {
        let mut c = Conn::connect(target).await?;
        let both = c.login(target, user, resource, true).await?;
        Ok((c, both))
    })
    .await
    .map_err(|_| format!("login of {user} timed out"))?
}

/// Logs in `users` with at most `concurrency` logins at a time; failures are counted.
pub(crate) async fn login_many(
    target: &Arc<Target>,
    users: Vec<String>,
    concurrency: usize,
    errors: &Arc<Errors>,
) -> Vec<(usize, Conn, usize)> {
    let next = Arc::new(AtomicUsize::new(0));
    let users = Arc::new(users);
    let mut set = JoinSet::new();
    for _ in 0..concurrency.max(1).min(users.len().max(1)) {
        let (next, users, target, errors) =
            (next.clone(), users.clone(), target.clone(), errors.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(user) = users.get(i) else { break };
                match login_one(&target, user, "bench").await {
                    Ok((c, both)) => out.push((i, c, both)),
                    Err(e) => errors.add(e),
                }
            }
            out
        });
    }
    let mut all = Vec::with_capacity(users.len());
    while let Some(r) = set.join_next().await {
        all.extend(r.unwrap_or_default());
    }
    all.sort_by_key(|(i, _, _)| *i);
    all
}

/// `--provision register`: creates accounts 0..n with XEP-0077 (existing ones are fine).
pub async fn provision(args: &Args, target: &Arc<Target>, n: usize) -> Result<(), String> {
    let names: Vec<String> = (0..n).map(|i| args.user(i)).collect();
    let (created, existing, errors, _) =
        register_names(target, Arc::new(names), args.concurrency, None).await;
    if !args.json_only {
        eprintln!("provisioned {n} accounts: {created} created, {existing} already there");
    }
    if errors.count() > 0 {
        return Err(format!(
            "provisioning: {} failures, e.g. {}",
            errors.count(),
            errors.list()
        ));
    }
    Ok(())
}

/// Registers `names` (until `stop`, if given), `concurrency` at a time.
async fn register_names(
    target: &Arc<Target>,
    names: Arc<Vec<String>>,
    concurrency: usize,
    stop: Option<Instant>,
) -> (u64, u64, Arc<Errors>, Histogram) {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Errors::default());
    let mut set = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, names, target, errors) =
            (next.clone(), names.clone(), target.clone(), errors.clone());
        set.spawn(async move {
            let (mut created, mut existing, mut hist) = (0u64, 0u64, Histogram::default());
            loop {
                if stop.is_some_and(|s| Instant::now() >= s) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(name) = names.get(i) else { break };
                let t0 = Instant::now();
                let r = timeout(STEP_TIMEOUT, async {
                    let mut c = Conn::connect(&target).await?;
                    let r = c.register(&target, name).await;
                    tokio::spawn(c.close());
                    r
                })
                .await
                .unwrap_or_else(|_| Err("registration timed out".into()));
                match r {
                    Ok(true) => {
                        created += 1;
                        hist.record(t0.elapsed().as_nanos() as u64);
                    }
                    Ok(false) => existing += 1,
                    Err(e) => errors.add(e),
                }
            }
            (created, existing, hist)
        });
    }
    let (mut created, mut existing, mut hist) = (0, 0, Histogram::default());
    while let Some(r) = set.join_next().await {
        if let Ok((c, e, h)) = r {
            created += c;
            existing += e;
            hist.merge(&h);
        }
    }
    (created, existing, errors, hist)
}

pub async fn register(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    // Fresh names for every run, so every registration really creates an account.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000_000);
    let cap = 10_000_000usize;
    let names: Vec<String> = (0..cap.min(2_000_000))
        .map(|i| format!("{}r{run}x{i}", args.user_prefix))
        .collect();
    let cpu0 = server_cpu(args);
    let t0 = Instant::now();
    let stop = t0 + Duration::from_secs_f64(args.duration);
    let (created, existing, errors, hist) =
        register_names(target, Arc::new(names), args.concurrency, Some(stop)).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_delta(args, cpu0);
    Ok(json!({
        "registrations": created,
        "conflicts": existing,
        "failures": errors.count(),
        "errors": errors.list(),
        "registrations_per_sec": round3(created as f64 / secs),
        "register_ms": hist.summary(1e6),
        "server_cpu_s": cpu.map(round3),
        "server_cpu_ms_per_registration": cpu.map(|c| round3(c * 1000.0 / created.max(1) as f64)),
    }))
}

pub async fn login(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    if args.users == 0 {
        return Err("--users must be at least 1".into());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Errors::default());
    let cpu0 = server_cpu(args);
    let t0 = Instant::now();
    let stop = t0 + Duration::from_secs_f64(args.duration);
    let mut set = JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (next, target, errors) = (next.clone(), target.clone(), errors.clone());
        let (users, prefix) = (args.users, args.user_prefix.clone());
        set.spawn(async move {
            let mut hist = Histogram::default();
            while Instant::now() < stop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let user = format!("{prefix}{}", n % users);
                let t = Instant::now();
                match login_one(&target, &user, &format!("l{n}")).await {
                    Ok((c, _)) => {
                        hist.record(t.elapsed().as_nanos() as u64);
                        tokio::spawn(c.close());
                    }
                    Err(e) => errors.add(e),
                }
            }
            hist
        });
    }
    let mut hist = Histogram::default();
    while let Some(r) = set.join_next().await {
        if let Ok(h) = r {
            hist.merge(&h);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_delta(args, cpu0);
    let n = hist.count();
    if n == 0 {
        return Err(format!("no login succeeded: {}", errors.list()));
    }
    Ok(json!({
        "logins": n,
        "failures": errors.count(),
        "errors": errors.list(),
        "logins_per_sec": round3(n as f64 / secs),
        "login_ms": hist.summary(1e6),
        "server_cpu_s": cpu.map(round3),
        "server_cpu_ms_per_login": cpu.map(|c| round3(c * 1000.0 / n as f64)),
    }))
}

struct PairResult {
    sent: u64,
    received: u64,
    out_of_order: u64,
    last_rx_ns: u64,
    /// Receipt − intended send time (what the report calls the latency).
    hist: Histogram,
    /// Actual − intended send time: the generator's own delay, not the server's.
    send_lag: Histogram,
    /// Receipt − actual send time: the server and the loopback alone.
    from_send: Histogram,
    /// Error bounces of our messages that came back to the sender: each one a loss.
    bounced: u64,
    error: Option<String>,
}

/// The receiver's part of a message: `bench SEQ TS SENT` in the body (TS the intended
/// send time, SENT the actual one, both ns since the bench started).
pub(crate) fn parse_body(u: &[u8]) -> Option<(u64, u64, u64)> {
    if !u.starts_with(b"<message") {
        return None;
    }
    // Built once: memmem::find sets up a searcher per call, ~1 % of the bench's CPU at
    // 60k msg/s (perf), for a needle that never changes.
    static BODY: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"<body>bench "));
    let at = BODY.find(u)? + 12;
    let rest = &u[at..];
    let end = memchr::memchr(b'<', rest)?;
    let mut it = rest[..end].split(|&c| c == b' ');
    let num = |f: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(f?).ok()?.parse().ok() };
    let (seq, ts) = (num(it.next())?, num(it.next())?);
    Some((seq, ts, num(it.next()).unwrap_or(ts)))
}

#[allow(clippy::too_many_arguments)]
async fn pair_loop(
    mut a: Conn,
    mut b: Conn,
    to: String,
    mut paced: Option<UnboundedReceiver<u64>>,
    window: u64,
    start: tokio::time::Instant,
    stop: tokio::time::Instant,
    drain: Duration,
) -> PairResult {
    let mut r = PairResult {
        sent: 0,
        received: 0,
        out_of_order: 0,
        last_rx_ns: 0,
        hist: Histogram::default(),
        send_lag: Histogram::default(),
        from_send: Histogram::default(),
        bounced: 0,
        error: None,
    };
    let head = format!("<message to='{to}' type='chat'><body>bench ");
    let mut msg = Vec::with_capacity(head.len() + 64);
    let open = paced.is_some();
    tokio::time::sleep_until(start).await;
    let deadline = tokio::time::sleep_until(stop);
    tokio::pin!(deadline);
    let mut sending = true;
    let mut compose = |a: &mut Conn, seq: u64, ts: u64, lag: &mut Histogram| {
        use std::io::Write;
        let sent = now_ns();
        lag.record(sent.saturating_sub(ts));
        msg.clear();
        msg.extend_from_slice(head.as_bytes());
        let _ = write!(msg, "{seq} {ts} {sent}</body></message>");
        a.queue(&msg);
    };
    loop {
        if sending && !open {
            while r.sent - r.received < window {
                compose(&mut a, r.sent, now_ns(), &mut r.send_lag);
                r.sent += 1;
            }
        }
        if let Err(e) = a.flush().await {
            r.error = Some(e);
            break;
        }
        if !sending && r.received >= r.sent {
            break;
        }
        tokio::select! {
            u = b.next() => {
                let mut u = match u { Ok(u) => Some(u), Err(e) => { r.error = Some(e); break } };
                while let Some(unit) = u {
                    if let Unit::Stanza(s, e) = unit {
                        if let Some((seq, ts, sent)) = parse_body(b.bytes(s, e)) {
                            let now = now_ns();
                            if seq != r.received { r.out_of_order += 1; }
                            r.received += 1;
                            r.last_rx_ns = now;
                            r.hist.record(now.saturating_sub(ts));
                            r.from_send.record(now.saturating_sub(sent));
                        }
                    } else if unit == Unit::Close {
                        r.error = Some("receiver's stream closed".into());
                        break;
                    }
                    u = b.next_buffered();
                }
                if r.error.is_some() { break; }
            }
            u = a.next() => {
                // Whatever the sender gets (presence, errors): an error bounce is a loss.
                match u {
                    Ok(Unit::Stanza(s, e)) => {
                        let u = a.bytes(s, e);
                        if u.starts_with(b"<message") && attr(u, b"type") == Some(b"error") {
                            r.bounced += 1;
                            if r.error.is_none() {
                                r.error = Some(format!("bounced: {}", String::from_utf8_lossy(u)));
                            }
                        }
                    }
                    Ok(Unit::Close) | Err(_) => { r.error = Some("sender's stream closed".into()); break }
                    Ok(_) => {}
                }
            }
            due = async { paced.as_mut().unwrap().recv().await }, if sending && paced.is_some() => {
                // The pacer released it at its due time; it came to us `send_lag` later.
                match due {
                    Some(ts) => {
                        compose(&mut a, r.sent, ts, &mut r.send_lag);
                        r.sent += 1;
                    }
                    None => paced = None,
                }
            }
            _ = &mut deadline => {
                if sending {
                    sending = false;
                    deadline.as_mut().reset(stop + drain);
                } else {
                    break;
                }
            }
        }
    }
    tokio::spawn(a.close());
    tokio::spawn(b.close());
    r
}

pub async fn messages(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    let p = args.pairs;
    if p == 0 {
        return Err("--pairs must be at least 1".into());
    }
    let errors = Arc::new(Errors::default());
    let users: Vec<String> = (0..2 * p).map(|i| args.user(i)).collect();
    let t_login = Instant::now();
    let conns = login_many(target, users, args.concurrency, &errors).await;
    let login_s = t_login.elapsed().as_secs_f64();
    if conns.len() != 2 * p {
        return Err(format!(
            "{} of {} logins failed: {}",
            errors.count(),
            2 * p,
            errors.list()
        ));
    }
    let mut it = conns.into_iter().map(|(_, c, _)| c);
    let mut pairs = Vec::with_capacity(p);
    for i in 0..p {
        let (Some(a), Some(b)) = (it.next(), it.next()) else {
            break;
        };
        pairs.push((a, b, format!("{}@{}", args.user(2 * i + 1), args.domain)));
    }
    let run = run_pairs(args, pairs, &errors, &[args.server_pid]).await?;
    let cpu = run.cpu[0];
    let per_msg = run.per_msg_us(cpu);
    let mut results = run.results;
    results["server_cpu_s"] = json!(cpu.map(round3));
    results["server_cpu_us_per_msg"] = json!(per_msg);
    results["login_s"] = json!(round3(login_s));
    results["failures"] = json!(errors.count());
    results["errors"] = errors.list();
    Ok(results)
}

/// What [`run_pairs`] measured: the results every pair scenario reports, and the CPU each
/// of the given servers used while the messages flowed.
pub(crate) struct PairsRun {
    /// A JSON object; callers add their own keys.
    pub results: Value,
    pub received: u64,
    pub cpu: Vec<Option<f64>>,
}

impl PairsRun {
    /// Microseconds of `cpu` seconds per delivered message.
    pub fn per_msg_us(&self, cpu: Option<f64>) -> Option<f64> {
        cpu.map(|c| round3(c * 1e6 / self.received.max(1) as f64))
    }
}

/// Runs the message loop over `pairs` (sender, receiver, the receiver's JID to send to):
/// closed loop with `--window` in flight, or open loop at `--rate`, for `--duration` s,
/// then up to `--drain` s for what is in flight. `pids` are the servers whose CPU counts.
pub(crate) async fn run_pairs(
    args: &Args,
    pairs: Vec<(Conn, Conn, String)>,
    errors: &Arc<Errors>,
    pids: &[Option<u32>],
) -> Result<PairsRun, String> {
    let p = pairs.len();
    let open = args.rate > 0.0;
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let stop = start + Duration::from_secs_f64(args.duration);
    let drain = Duration::from_secs_f64(args.drain);
    let mut set = JoinSet::new();
    let mut pacer_ends = Vec::new();
    for (a, b, to) in pairs {
        let paced = open.then(|| {
            let (tx, rx) = unbounded_channel();
            pacer_ends.push(tx);
            rx
        });
        set.spawn(pair_loop(
            a,
            b,
            to,
            paced,
            args.window as u64,
            start,
            stop,
            drain,
        ));
    }
    let pacer = if open {
        let started = pacer::spawn(
            pacer_ends,
            args.rate,
            base(),
            start.into_std(),
            stop.into_std(),
        );
        Some(started.map_err(|e| format!("pacer thread: {e}"))?)
    } else {
        None
    };
    tokio::time::sleep_until(start).await;
    let cpu0: Vec<Option<f64>> = pids
        .iter()
        .map(|p| p.and_then(stats::cpu_seconds))
        .collect();
    let start_ns = now_ns();
    let (mut sent, mut received, mut ooo, mut bounced, mut last) =
        (0u64, 0u64, 0u64, 0u64, start_ns);
    let (mut hist, mut send_lag, mut from_send) = (
        Histogram::default(),
        Histogram::default(),
        Histogram::default(),
    );
    while let Some(r) = set.join_next().await {
        let r = r.map_err(|e| format!("pair task: {e}"))?;
        send_lag.merge(&r.send_lag);
        from_send.merge(&r.from_send);
        sent += r.sent;
        received += r.received;
        ooo += r.out_of_order;
        bounced += r.bounced;
        last = last.max(r.last_rx_ns);
        hist.merge(&r.hist);
        if let Some(e) = r.error {
            errors.add(e);
        }
    }
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    let cpu = pids
        .iter()
        .zip(cpu0)
        .map(|(p, before)| Some(p.and_then(stats::cpu_seconds)? - before?))
        .collect();
    let secs = (last.saturating_sub(start_ns)) as f64 / 1e9;
    let results = json!({
        "mode": if open { "open" } else { "closed" },
        "pairs": p,
        "sent": sent,
        "received": received,
        "lost": sent.saturating_sub(received),
        "bounced": bounced,
        "out_of_order": ooo,
        "delivered_per_sec": round3(received as f64 / secs.max(1e-9)),
        "sent_per_sec": round3(sent as f64 / args.duration),
        "latency_ms": hist.summary(1e6),
        "send_lag_ms": send_lag.summary(1e6),
        "latency_from_send_ms": from_send.summary(1e6),
    });
    Ok(PairsRun {
        results,
        received,
        cpu,
    })
}

fn presence_type(u: &[u8]) -> Option<&[u8]> {
    if u.starts_with(b"<presence") {
        Some(attr(u, b"type").unwrap_or(b""))
    } else {
        None
    }
}

/// Reads until `n` units match `want` or nothing comes for `quiet`.
async fn collect(c: &mut Conn, n: usize, quiet: Duration, want: impl Fn(&[u8]) -> bool) -> usize {
    let mut got = 0;
    while got < n {
        match timeout(quiet, c.next()).await {
            Ok(Ok(Unit::Stanza(s, e))) if want(c.bytes(s, e)) => got += 1,
            Ok(Ok(Unit::Close)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => {}
        }
    }
    got
}

pub async fn presence(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    let n = args.users;
    let r = args.roster.div_ceil(2) * 2;
    if n <= r {
        return Err(format!("--users ({n}) must exceed --roster ({r})"));
    }
    let errors = Arc::new(Errors::default());
    let names: Vec<String> = (0..n).map(|i| args.user(i)).collect();
    let domain = args.domain.clone();
    // Setup: mutual subscriptions (subscribe both ways, then subscribed both ways).
    let t_setup = Instant::now();
    let conns = login_many(target, names.clone(), args.concurrency, &errors).await;
    if conns.len() != n {
        return Err(format!("setup logins failed: {}", errors.list()));
    }
    let built = conns.iter().all(|(_, _, both)| *both >= r);
    if !built {
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let mut set = JoinSet::new();
        for (u, mut c, _) in conns {
            let (barrier, names, domain) = (barrier.clone(), names.clone(), domain.clone());
            set.spawn(async move {
                // One side of each pair acts at a time: the server may not serialise
                // simultaneous subscription changes of both sides (see bench/README.md).
                let half = r / 2;
                let fwd: Vec<usize> = (1..=half).map(|d| (u + d) % n).collect();
                let back: Vec<usize> = (1..=half).map(|d| (u + n - d) % n).collect();
                let to = |k: usize, ty: &str| {
                    format!("<presence to='{}@{domain}' type='{ty}'/>", names[k])
                };
                let quiet = Duration::from_secs(5);
                // A: subscribe forward.
                for &k in &fwd {
                    c.queue(to(k, "subscribe").as_bytes());
                }
                let _ = c.flush().await;
                collect(&mut c, back.len(), quiet, |x| {
                    presence_type(x) == Some(b"subscribe")
                })
                .await;
                barrier.wait().await;
                // B: approve the ones from behind, and subscribe back.
                for &k in &back {
                    c.queue(to(k, "subscribed").as_bytes());
                    c.queue(to(k, "subscribe").as_bytes());
                }
                let _ = c.flush().await;
                collect(&mut c, 2 * fwd.len(), quiet, |x| {
                    matches!(presence_type(x), Some(b"subscribe") | Some(b"subscribed"))
                })
                .await;
                barrier.wait().await;
                // C: approve the ones ahead.
                for &k in &fwd {
                    c.queue(to(k, "subscribed").as_bytes());
                }
                let _ = c.flush().await;
                collect(&mut c, back.len(), quiet, |x| {
                    presence_type(x) == Some(b"subscribed")
                })
                .await;
                barrier.wait().await;
                c.close().await;
            });
        }
        while set.join_next().await.is_some() {}
    } else {
        for (_, c, _) in conns {
            tokio::spawn(c.close());
        }
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Rounds: everyone comes online; count presence stanzas until each has seen all contacts.
    let cpu0 = server_cpu(args);
    let t0 = Instant::now();
    let (mut delivered, mut online_secs, mut rounds, mut min_both) =
        (0u64, 0.0f64, 0u32, usize::MAX);
    let mut hist = Histogram::default();
    loop {
        rounds += 1;
        let round_start = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let (finished_tx, finished_rx) = tokio::sync::watch::channel(false);
        let finished_tx = Arc::new(finished_tx);
        let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
        let mut set = JoinSet::new();
        for (u, name) in names.iter().enumerate() {
            let (target, sem, done, errors) =
                (target.clone(), sem.clone(), done.clone(), errors.clone());
            let (finished_tx, mut finished_rx) = (finished_tx.clone(), finished_rx.clone());
            let name = name.clone();
            let finish_one = move || {
                if done.fetch_add(1, Ordering::Relaxed) + 1 == n {
                    let _ = finished_tx.send(true);
                }
            };
            set.spawn(async move {
                let permit = sem.acquire_owned().await.ok();
                let t = Instant::now();
                let login = timeout(STEP_TIMEOUT, async {
                    let mut c = Conn::connect(&target).await?;
                    let both = c.login(&target, &name, &format!("p{u}"), false).await?;
                    Ok::<_, String>((c, both))
                })
                .await
                .unwrap_or_else(|_| Err("login timed out".into()));
                drop(permit);
                let (mut c, both) = match login {
                    Ok(x) => x,
                    Err(e) => {
                        errors.add(format!("{name}: {e}"));
                        finish_one();
                        return (0u64, None, 0usize);
                    }
                };
                let mut seen: std::collections::HashSet<Vec<u8>> = Default::default();
                let (mut count, mut complete) = (0u64, None);
                let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let unit = tokio::select! {
                        u = c.next() => u,
                        _ = finished_rx.wait_for(|f| *f) => break,
                        _ = tokio::time::sleep_until(give_up) => break,
                    };
                    match unit {
                        Ok(Unit::Stanza(s, e)) => {
                            let x = c.bytes(s, e);
                            if let Some(ty) = presence_type(x) {
                                count += 1;
                                if ty.is_empty() && complete.is_none() {
                                    let from = attr(x, b"from").unwrap_or(b"");
                                    let bare = from.split(|&b| b == b'/').next().unwrap_or(b"");
                                    seen.insert(bare.to_vec());
                                    if seen.len() > r {
                                        complete = Some(t.elapsed());
                                        finish_one();
                                    }
                                }
                            }
                        }
                        Ok(Unit::Header(..)) => {}
                        Ok(Unit::Close) | Err(_) => break,
                    }
                }
                if complete.is_none() {
                    errors.add(format!(
                        "{name} saw {} of {} available presences",
                        seen.len(),
                        r + 1
                    ));
                    finish_one();
                }
                tokio::spawn(c.close());
                (count, complete, both)
            });
        }
        let mut round_delivered = 0;
        while let Some(res) = set.join_next().await {
            if let Ok((count, complete, both)) = res {
                round_delivered += count;
                min_both = min_both.min(both);
                if let Some(d) = complete {
                    hist.record(d.as_nanos() as u64);
                }
            }
        }
        delivered += round_delivered;
        online_secs += round_start.elapsed().as_secs_f64();
        if t0.elapsed().as_secs_f64() >= args.duration || errors.count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cpu = cpu_delta(args, cpu0);
    Ok(json!({
        "users": n,
        "roster": r,
        "rounds": rounds,
        "roster_both_min": if min_both == usize::MAX { 0 } else { min_both },
        "presence_delivered": delivered,
        "presence_per_sec": round3(delivered as f64 / online_secs.max(1e-9)),
        "online_ms": hist.summary(1e6),
        "setup_s": round3(setup_s),
        "server_cpu_s": cpu.map(round3),
        "server_cpu_us_per_presence": cpu.map(|c| round3(c * 1e6 / delivered.max(1) as f64)),
        "failures": errors.count(),
        "errors": errors.list(),
    }))
}

/// The sessions one process holds in `idle`: accounts `names`, logged in step by step.
struct IdleSet {
    target: Arc<Target>,
    names: Vec<String>,
    attempted: usize,
    conns: Vec<Conn>,
    concurrency: usize,
    domain: String,
    round: u64,
}

impl IdleSet {
    fn new(args: &Args, target: Arc<Target>, names: Vec<String>) -> IdleSet {
        IdleSet {
            target,
            names,
            attempted: 0,
            conns: Vec::new(),
            concurrency: args.concurrency,
            domain: args.domain.clone(),
            round: 0,
        }
    }

    /// Logs in accounts up to `upto` (of this set), then pings every held session.
    async fn step(&mut self, upto: usize) -> Value {
        let errors = Arc::new(Errors::default());
        let upto = upto.min(self.names.len());
        let t = Instant::now();
        let todo = self.names[self.attempted.min(upto)..upto].to_vec();
        let tried = todo.len();
        self.attempted = self.attempted.max(upto);
        let new = login_many(&self.target, todo, self.concurrency, &errors).await;
        let login_s = t.elapsed().as_secs_f64();
        let logged_in = new.len();
        self.conns.extend(new.into_iter().map(|(_, c, _)| c));
        self.round += 1;
        let id = format!("ping{}", self.round);
        let mut set = JoinSet::new();
        for mut c in self.conns.drain(..) {
            let (domain, id) = (self.domain.clone(), id.clone());
            set.spawn(async move {
                let r = timeout(STEP_TIMEOUT, c.ping(&domain, &id))
                    .await
                    .unwrap_or_else(|_| Err("ping timed out".into()));
                (c, r)
            });
        }
        let (mut sent, mut answered) = (0u64, 0u64);
        while let Some(r) = set.join_next().await {
            sent += 1;
            match r {
                Ok((mut c, Ok(true))) => {
                    answered += 1;
                    c.shrink();
                    self.conns.push(c);
                }
                Ok((_, Ok(false))) => errors.add("ping answered with an error".into()),
                Ok((_, Err(e))) => errors.add(format!("ping: {e}")),
                Err(e) => errors.add(format!("ping task: {e}")),
            }
        }
        json!({
            "sessions": self.conns.len(),
            "logins": logged_in,
            "login_errors": tried - logged_in,
            "login_s": round3(login_s),
            "pings_sent": sent,
            "pings_answered": answered,
            "errors": errors.list(),
            "cpu_s": round3(stats::self_cpu_seconds()),
        })
    }
}

/// Child process of `idle`: holds its slice of the sessions, driven by lines on stdin
/// ("step UPTO" / "quit"), answering each step with one JSON line on stdout.
pub async fn idle_worker(args: Args) {
    let k = args.workers.max(1);
    let i = args.worker_index.unwrap_or(0);
    let (lo, hi) = (i * args.users / k, (i + 1) * args.users / k);
    let target = match crate::target(&args) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            println!("{}", json!({"fatal": e}));
            return;
        }
    };
    let mut set = IdleSet::new(&args, target, (lo..hi).map(|u| args.user(u)).collect());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|w| w.parse::<usize>().ok()),
        ) {
            (Some("step"), Some(upto)) => {
                let report = set.step(upto).await;
                let _ = out.write_all(format!("{report}\n").as_bytes()).await;
                let _ = out.flush().await;
            }
            _ => break,
        }
    }
    for c in set.conns.drain(..) {
        tokio::spawn(c.close());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Starts `k` child processes of this executable with the parent's arguments, child i as
/// worker i of k (`--worker-index`), each with its share of `n` sessions; they are driven by
/// lines on their stdin and answer with JSON lines.
pub(crate) fn spawn_workers(k: usize, n: usize) -> Result<Vec<(Child, usize)>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    // The parent's arguments, minus --workers (set per child below).
    let mut pass = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        if a == "--workers" || a == "--worker-index" {
            argv.next();
        } else if !a.starts_with("--workers=") && !a.starts_with("--worker-index=") {
            pass.push(a);
        }
    }
    let mut children = Vec::new();
    for i in 0..k {
        let mut proc = tokio::process::Command::new(&exe)
            .args(&pass)
            .args([
                "--workers",
                &k.to_string(),
                "--worker-index",
                &i.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn worker: {e}"))?;
        let stdin = proc.stdin.take().ok_or("worker stdin")?;
        let stdout = proc.stdout.take().ok_or("worker stdout")?;
        let len = (i + 1) * n / k - i * n / k;
        children.push((
            Child {
                proc,
                stdin,
                lines: BufReader::new(stdout).lines(),
            },
            len,
        ));
    }
    Ok(children)
}

pub(crate) struct Child {
    pub(crate) proc: tokio::process::Child,
    pub(crate) stdin: tokio::process::ChildStdin,
    pub(crate) lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Child {
    /// Sends the worker one command line.
    pub(crate) async fn tell(&mut self, command: &str) -> Result<(), String> {
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("worker stdin: {e}"))?;
        let _ = self.stdin.flush().await;
        Ok(())
    }

    /// The worker's next JSON line (one saying `fatal` is an error).
    pub(crate) async fn answer(&mut self) -> Result<Value, String> {
        let line = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("worker stdout: {e}"))?
            .ok_or("a worker exited")?;
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("worker said {line:?}: {e}"))?;
        if let Some(f) = v.get("fatal") {
            return Err(format!("worker: {f}"));
        }
        Ok(v)
    }

    /// Tells the worker to quit and waits for it (bounded; killed after 10 s).
    pub(crate) async fn quit(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
        if timeout(Duration::from_secs(10), self.proc.wait())
            .await
            .is_err()
        {
            let _ = self.proc.kill().await;
        }
    }
}

enum Workers {
    Local(Box<IdleSet>),
    Children(Vec<(Child, usize)>),
}

impl Workers {
    /// Runs step `k` of `steps` (each worker logs in its share) and sums the reports.
    async fn step(&mut self, k: usize, steps: usize) -> Result<Value, String> {
        let reports = match self {
            Workers::Local(set) => {
                let len = set.names.len();
                vec![set.step(len * k / steps).await]
            }
            Workers::Children(children) => {
                for (c, len) in children.iter_mut() {
                    c.tell(&format!("step {}", *len * k / steps)).await?;
                }
                let mut reports = Vec::new();
                for (c, _) in children.iter_mut() {
                    reports.push(c.answer().await?);
                }
                reports
            }
        };
        let sum = |key: &str| -> u64 { reports.iter().filter_map(|r| r[key].as_u64()).sum() };
        let max = |key: &str| -> f64 {
            reports
                .iter()
                .filter_map(|r| r[key].as_f64())
                .fold(0.0, f64::max)
        };
        let errors: Vec<Value> = reports
            .iter()
            .flat_map(|r| r["errors"].as_array().cloned().unwrap_or_default())
            .take(5)
            .collect();
        Ok(json!({
            "sessions": sum("sessions"),
            "logins": sum("logins"),
            "login_errors": sum("login_errors"),
            "login_s": max("login_s"),
            "pings_sent": sum("pings_sent"),
            "pings_answered": sum("pings_answered"),
            "errors": errors,
            "worker_cpu_s": reports.iter().filter_map(|r| r["cpu_s"].as_f64()).sum::<f64>(),
        }))
    }

    async fn finish(self) {
        match self {
            Workers::Local(mut set) => {
                for c in set.conns.drain(..) {
                    tokio::spawn(c.close());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Workers::Children(children) => {
                for (c, _) in children {
                    c.quit().await;
                }
            }
        }
    }
}

/// Sessions per worker process: under the 20,000 descriptors a process may open here.
pub(crate) const PER_PROCESS: usize = 15_000;

pub async fn idle(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    let n = args.users;
    let steps = args.steps.max(1);
    let k = if args.workers > 0 {
        args.workers
    } else {
        n.div_ceil(PER_PROCESS).max(1)
    };
    let mut workers = if k == 1 {
        Workers::Local(Box::new(IdleSet::new(
            args,
            target.clone(),
            (0..n).map(|u| args.user(u)).collect(),
        )))
    } else {
        Workers::Children(spawn_workers(k, n)?)
    };
    let pid = args.server_pid;
    let rss = || pid.and_then(stats::rss_bytes);
    let settle = Duration::from_secs_f64(args.settle);
    let rss0 = rss();
    let cpu0 = server_cpu(args);
    let mut points: Vec<(f64, f64)> = Vec::new();
    if let Some(r) = rss0 {
        points.push((0.0, r as f64));
    }
    let mut rows = Vec::new();
    let mut all_answered = true;
    let (mut login_errors, mut worker_cpu) = (0u64, 0.0);
    let mut errors: Vec<Value> = Vec::new();
    let mut measure = |mut row: Value, rss_now: Option<u64>| {
        let sessions = row["sessions"].as_u64().unwrap_or(0);
        let per = match (rss_now, rss0) {
            (Some(r), Some(r0)) if sessions > 0 => {
                Some(round3((r as f64 - r0 as f64) / sessions as f64))
            }
            _ => None,
        };
        row["rss_bytes"] = json!(rss_now);
        row["bytes_per_session"] = json!(per);
        all_answered &=
            row["pings_answered"] == row["pings_sent"] && row["login_errors"] == json!(0);
        login_errors += row["login_errors"].as_u64().unwrap_or(0);
        worker_cpu = row["worker_cpu_s"].as_f64().unwrap_or(0.0);
        for e in row["errors"].as_array().into_iter().flatten() {
            if errors.len() < 5 {
                errors.push(e.clone());
            }
        }
        row
    };
    let t0 = Instant::now();
    let mut result = Ok(());
    for s in 1..=steps {
        let row = match workers.step(s, steps).await {
            Ok(r) => r,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        tokio::time::sleep(settle).await;
        let r = rss();
        if let Some(r) = r {
            points.push((row["sessions"].as_f64().unwrap_or(0.0), r as f64));
        }
        let row = measure(row, r);
        if !args.json_only {
            eprintln!(
                "step {s}/{steps}: {} sessions, {}/{} pings answered, rss {:?}",
                row["sessions"], row["pings_answered"], row["pings_sent"], row["rss_bytes"]
            );
        }
        rows.push(row);
    }
    let logged_in_s = t0.elapsed().as_secs_f64();
    let mut hold = Value::Null;
    if result.is_ok() {
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        match workers.step(steps, steps).await {
            Ok(row) => {
                tokio::time::sleep(settle).await;
                hold = measure(row, rss());
            }
            Err(e) => result = Err(e),
        }
    }
    workers.finish().await;
    result?;
    let slope = stats::slope(&points);
    Ok(json!({
        "sessions_target": n,
        "sessions": hold["sessions"],
        "workers": k,
        "all_pings_answered": all_answered,
        "login_errors": login_errors,
        "rss_0_bytes": rss0,
        "steps": rows,
        "hold": hold,
        "slope_bytes_per_session": round3(slope),
        "projected_1m_sessions_gib": round3(slope * 1e6 / (1u64 << 30) as f64),
        "login_phase_s": round3(logged_in_s),
        "server_cpu_s": cpu_delta(args, cpu0).map(round3),
        "worker_cpu_s": if k > 1 { round3(worker_cpu) } else { 0.0 },
        "errors": errors,
    }))
}
