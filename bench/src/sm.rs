//! XEP-0198 stream management scenarios: `hibernate` (what a session costs the server while
//! it waits for its client to resume it) and `resume` (resumptions per second).
//!
//! A session here logs in fully (as `idle` and `login` do), then enables stream management
//! with `<enable resume='true'/>` and keeps the id of the `<enabled/>`. It counts the
//! stanzas it receives after that (its `h`, §4) and answers the server's `<r/>`. Its
//! connection is then cut without closing the stream (a FIN or an RST, `--cut`), and a new
//! connection authenticates and sends `<resume previd h/>` instead of binding (§5).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{attr, Conn, Res, Target, Unit};
use crate::scenarios::{cpu_delta, server_cpu, spawn_workers, Errors, PER_PROCESS, STEP_TIMEOUT};
use crate::stats::{self, Histogram};
use crate::{round3, Args, Cut};

const SM: &str = "urn:xmpp:sm:3";

/// A resumable session: its account, the id `<enabled/>` gave, our count of stanzas
/// handled, and its stream while it has one.
pub(crate) struct Session {
    user: String,
    id: String,
    h: u32,
    conn: Option<Conn>,
}

/// Reads units until `want` says yes, counting stanzas into `h` and answering `<r/>`.
async fn wait_counting(
    c: &mut Conn,
    h: &mut u32,
    what: &str,
    want: impl Fn(&[u8]) -> bool,
) -> Res<(usize, usize)> {
    loop {
        match c.next().await.map_err(|e| format!("{what}: {e}"))? {
            Unit::Header(..) => {}
            Unit::Close => return Err(format!("stream closed waiting for {what}")),
            Unit::Stanza(s, e) => {
                let u = c.bytes(s, e);
                if want(u) {
                    return Ok((s, e));
                }
                if u.starts_with(b"<message")
                    || u.starts_with(b"<presence")
                    || u.starts_with(b"<iq")
                {
                    *h = h.wrapping_add(1);
                } else if u.starts_with(b"<r ") || u.starts_with(b"<r/") {
                    let a = format!("<a xmlns='{SM}' h='{h}'/>");
                    c.send(a.as_bytes()).await?;
                } else if u.starts_with(b"<stream:error") {
                    return Err(format!(
                        "waiting for {what}: {}",
                        String::from_utf8_lossy(u)
                    ));
                }
            }
        }
    }
}

/// A full login (bind, roster, presence and its echo), then `<enable resume='true'/>`.
async fn login_resumable(target: &Target, user: &str, resource: &str) -> Res<Session> {
    timeout(STEP_TIMEOUT, async {
        let mut c = Conn::connect(target).await?;
        c.login(target, user, resource, true).await?;
        c.send(format!("<enable xmlns='{SM}' resume='true'/>").as_bytes())
            .await?;
        let mut h = 0;
        let (s, e) = wait_counting(&mut c, &mut h, "<enabled/>", |u| {
            u.starts_with(b"<enabled") || u.starts_with(b"<failed")
        })
        .await?;
        let u = c.bytes(s, e);
        let id = match attr(u, b"id") {
            Some(id) if u.starts_with(b"<enabled") => String::from_utf8_lossy(id).into_owned(),
            _ => return Err(format!("enable: {}", String::from_utf8_lossy(u))),
        };
        Ok(Session {
            user: user.to_owned(),
            id,
            h,
            conn: Some(c),
        })
    })
    .await
    .map_err(|_| format!("login of {user} timed out"))?
}

/// How one resumption went.
enum Resumed {
    /// `<resumed/>` arrived this long after the new connection was started.
    Ok(Duration),
    /// The server answered `<failed/>`: the session is gone.
    Failed(String),
}

/// Resumes `s` (which has no stream) on a new connection: SASL, `<resume previd h/>`, and
/// with `ping`, one `<r/>` answered by `<a/>` to show the stream is live. Returns the
/// latency to `<resumed/>`.
async fn resume(target: &Target, s: &mut Session, ping: bool) -> Res<Resumed> {
    timeout(STEP_TIMEOUT, async {
        let t0 = Instant::now();
        let mut c = Conn::connect(target).await?;
        c.authenticated(target, &s.user).await?;
        let r = format!("<resume xmlns='{SM}' h='{}' previd='{}'/>", s.h, s.id);
        c.send(r.as_bytes()).await?;
        let (a, b) = wait_counting(&mut c, &mut s.h, "<resumed/>", |u| {
            u.starts_with(b"<resumed") || u.starts_with(b"<failed")
        })
        .await?;
        let latency = t0.elapsed();
        let u = c.bytes(a, b);
        if u.starts_with(b"<failed") {
            let why = String::from_utf8_lossy(u).into_owned();
            tokio::spawn(c.close());
            return Ok(Resumed::Failed(why));
        }
        if ping {
            c.send(format!("<r xmlns='{SM}'/>").as_bytes()).await?;
            wait_counting(&mut c, &mut s.h, "<a/>", |u| {
                u.starts_with(b"<a ") || u.starts_with(b"<a/")
            })
            .await?;
        }
        s.conn = Some(c);
        Ok(Resumed::Ok(latency))
    })
    .await
    .map_err(|_| format!("resumption of {} timed out", s.user))?
}

/// Sockets the server process holds open (its descriptors that are sockets).
fn server_sockets(pid: Option<u32>) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{}/fd", pid?)).ok()?;
    Some(
        dir.filter_map(Result::ok)
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count() as u64,
    )
}

/// Connections to `port` (IPv4) that the peer closed and the server has not: TCP state
/// CLOSE_WAIT in /proc/net/tcp. A cut session the server noticed and let go is not here.
fn close_wait(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = format!(":{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&want) && f[3] == "08"
            })
            .count() as u64,
    )
}

/// The sessions one process holds in `hibernate`.
struct HibernateSet {
    target: Arc<Target>,
    names: Vec<String>,
    sessions: Vec<Session>,
    concurrency: usize,
    reset: bool,
}

impl HibernateSet {
    /// Logs every account in with a resumable session.
    async fn login(&mut self) -> Value {
        let errors = Arc::new(Errors::default());
        let t = Instant::now();
        let names = Arc::new(std::mem::take(&mut self.names));
        let next = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for _ in 0..self.concurrency.max(1).min(names.len().max(1)) {
            let (names, next, target, errors) = (
                names.clone(),
                next.clone(),
                self.target.clone(),
                errors.clone(),
            );
            set.spawn(async move {
                let mut out = Vec::new();
                while let Some(user) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match login_resumable(&target, user, "bench").await {
                        Ok(mut s) => {
                            if let Some(c) = s.conn.as_mut() {
                                c.shrink();
                            }
                            out.push(s);
                        }
                        Err(e) => errors.add(e),
                    }
                }
                out
            });
        }
        while let Some(r) = set.join_next().await {
            self.sessions.extend(r.unwrap_or_default());
        }
        json!({
            "sessions": self.sessions.len(),
            "login_errors": names.len() - self.sessions.len(),
            "login_s": round3(t.elapsed().as_secs_f64()),
            "errors": errors.list(),
        })
    }

    /// Cuts every session's connection without closing its stream.
    fn cut(&mut self) -> Value {
        let mut cut = 0;
        for s in &mut self.sessions {
            if let Some(c) = s.conn.take() {
                c.cut(self.reset);
                cut += 1;
            }
        }
        json!({ "cut": cut })
    }

    /// Resumes every cut session, then closes its stream (which ends it).
    async fn resume(&mut self) -> Value {
        let errors = Arc::new(Errors::default());
        let todo = Arc::new(Mutex::new(std::mem::take(&mut self.sessions)));
        let mut set = JoinSet::new();
        for _ in 0..self.concurrency.max(1) {
            let (todo, target, errors) = (todo.clone(), self.target.clone(), errors.clone());
            set.spawn(async move {
                let (mut ok, mut failed, mut hist) = (0u64, 0u64, Histogram::default());
                loop {
                    let Some(mut s) = todo.lock().await.pop() else {
                        break;
                    };
                    match resume(&target, &mut s, true).await {
                        Ok(Resumed::Ok(d)) => {
                            ok += 1;
                            hist.record(d.as_nanos() as u64);
                        }
                        Ok(Resumed::Failed(why)) => {
                            failed += 1;
                            errors.add(why);
                        }
                        Err(e) => errors.add(e),
                    }
                    if let Some(c) = s.conn.take() {
                        c.close().await;
                    }
                }
                (ok, failed, hist)
            });
        }
        let (mut ok, mut failed, mut hist) = (0, 0, Histogram::default());
        while let Some(r) = set.join_next().await {
            if let Ok((o, f, h)) = r {
                ok += o;
                failed += f;
                hist.merge(&h);
            }
        }
        json!({
            "resumed": ok,
            "resume_failed": failed,
            "resume_errors": errors.count(),
            "resume_ms_max": round3(hist.quantile(1.0) as f64 / 1e6),
            "errors": errors.list(),
        })
    }

    async fn command(&mut self, command: &str) -> Option<Value> {
        match command {
            "login" => Some(self.login().await),
            "cut" => Some(self.cut()),
            "resume" => Some(self.resume().await),
            _ => None,
        }
    }
}

fn hibernate_set(args: &Args, target: Arc<Target>, lo: usize, hi: usize) -> HibernateSet {
    HibernateSet {
        target,
        names: (lo..hi).map(|u| args.user(u)).collect(),
        sessions: Vec::new(),
        concurrency: args.concurrency,
        reset: args.cut == Cut::Rst,
    }
}

/// Child process of `hibernate`: holds its slice of the sessions, driven by lines on stdin
/// (`login`, `cut`, `resume`, `quit`), answering each with one JSON line on stdout.
pub async fn hibernate_worker(args: Args) {
    let k = args.workers.max(1);
    let i = args.worker_index.unwrap_or(0);
    let target = match crate::target(&args) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            println!("{}", json!({"fatal": e}));
            return;
        }
    };
    let mut set = hibernate_set(&args, target, i * args.users / k, (i + 1) * args.users / k);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(report) = set.command(line.trim()).await else {
            break;
        };
        let _ = out.write_all(format!("{report}\n").as_bytes()).await;
        let _ = out.flush().await;
    }
}

/// Runs `command` on every worker (this process's own set, or the children) and adds up
/// the numbers of their answers; `errors` are pooled.
async fn everywhere(
    local: &mut Option<HibernateSet>,
    children: &mut [(crate::scenarios::Child, usize)],
    command: &str,
) -> Result<Value, String> {
    let reports = match local {
        Some(set) => vec![set.command(command).await.ok_or("unknown command")?],
        None => {
            for (c, _) in children.iter_mut() {
                c.tell(command).await?;
            }
            let mut reports = Vec::new();
            for (c, _) in children.iter_mut() {
                reports.push(c.answer().await?);
            }
            reports
        }
    };
    let mut sum = serde_json::Map::new();
    let mut errors = Vec::new();
    for r in &reports {
        for (k, v) in r.as_object().into_iter().flatten() {
            if k == "errors" {
                errors.extend(v.as_array().cloned().unwrap_or_default());
            } else if k.ends_with("_s") || k.ends_with("_max") {
                // Durations of workers that ran side by side: the longest.
                let m = sum.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                sum.insert(k.clone(), json!(m.max(v.as_f64().unwrap_or(0.0))));
            } else {
                let n = sum.get(k).and_then(Value::as_u64).unwrap_or(0);
                sum.insert(k.clone(), json!(n + v.as_u64().unwrap_or(0)));
            }
        }
    }
    errors.truncate(5);
    sum.insert("errors".into(), json!(errors));
    Ok(Value::Object(sum))
}

/// `hibernate`: memory per logged-in resumable session and per hibernated one.
pub async fn hibernate(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    let n = args.users;
    if n == 0 {
        return Err("--users must be at least 1".into());
    }
    let k = if args.workers > 0 {
        args.workers
    } else {
        n.div_ceil(PER_PROCESS).max(1)
    };
    let (mut local, mut children) = if k == 1 {
        (Some(hibernate_set(args, target.clone(), 0, n)), Vec::new())
    } else {
        (None, spawn_workers(k, n)?)
    };
    let pid = args.server_pid;
    let settle = Duration::from_secs_f64(args.settle);
    let reading = || {
        json!({
            "rss_bytes": pid.and_then(stats::rss_bytes),
            "server_sockets": server_sockets(pid),
            "close_wait": close_wait(args.port),
        })
    };
    let per = |rss: &Value, rss0: &Value, count: u64| -> Value {
        match (rss.as_f64(), rss0.as_f64()) {
            (Some(r), Some(r0)) if count > 0 => json!(round3((r - r0) / count as f64)),
            _ => Value::Null,
        }
    };
    let quiet = args.json_only;
    let run = async {
        let empty = reading();
        let cpu0 = server_cpu(args);
        let logged = everywhere(&mut local, &mut children, "login").await?;
        let sessions = logged["sessions"].as_u64().unwrap_or(0);
        tokio::time::sleep(settle).await;
        let logged_in = reading();
        if !quiet {
            eprintln!("{sessions} resumable sessions: {logged_in}");
        }
        let cut = everywhere(&mut local, &mut children, "cut").await?;
        let cut_n = cut["cut"].as_u64().unwrap_or(0);
        let t_cut = Instant::now();
        tokio::time::sleep(settle).await;
        let hibernated = reading();
        if !quiet {
            eprintln!("{cut_n} cut ({:?}): {hibernated}", args.cut);
        }
        let resumed = everywhere(&mut local, &mut children, "resume").await?;
        let hibernated_s = t_cut.elapsed().as_secs_f64();
        let after = reading();
        let errors: Vec<Value> = [&logged, &resumed]
            .iter()
            .flat_map(|r| r["errors"].as_array().cloned().unwrap_or_default())
            .take(5)
            .collect();
        Ok::<Value, String>(json!({
            "sessions_target": n,
            "sessions": sessions,
            "workers": k,
            "cut": match args.cut { Cut::Fin => "fin", Cut::Rst => "rst" },
            "login_errors": logged["login_errors"],
            "login_s": logged["login_s"],
            "empty": empty,
            "logged_in": logged_in,
            "hibernated": hibernated,
            "after_resume": after,
            "bytes_per_session": per(&logged_in["rss_bytes"], &empty["rss_bytes"], sessions),
            "bytes_per_hibernated_session":
                per(&hibernated["rss_bytes"], &empty["rss_bytes"], cut_n),
            "hibernated_sessions": cut_n,
            "resumed": resumed["resumed"],
            "resume_failed": resumed["resume_failed"],
            "resume_errors": resumed["resume_errors"],
            "resume_ms_max": resumed["resume_ms_max"],
            "hibernated_s": round3(hibernated_s),
            "server_cpu_s": cpu_delta(args, cpu0).map(round3),
            "errors": errors,
        }))
    };
    let result = run.await;
    for (c, _) in children {
        c.quit().await;
    }
    result
}

/// `resume`: `--concurrency` loops, each over its share of `--users` resumable sessions,
/// cutting a session's connection and resuming it on a new one, for `--duration` s.
pub async fn resume_loop(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    if args.users == 0 {
        return Err("--users must be at least 1".into());
    }
    let loops = args.concurrency.max(1).min(args.users);
    let errors = Arc::new(Errors::default());
    let reset = args.cut == Cut::Rst;
    // Everyone logs in first (not measured); loop j gets sessions j, j + loops, ...
    let t_setup = Instant::now();
    let mut set = HibernateSet {
        target: target.clone(),
        names: (0..args.users).map(|u| args.user(u)).collect(),
        sessions: Vec::new(),
        concurrency: args.concurrency,
        reset,
    };
    let logged = set.login().await;
    if set.sessions.is_empty() {
        return Err(format!("no login succeeded: {}", logged["errors"]));
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    let mut shares: Vec<Vec<Session>> = (0..loops).map(|_| Vec::new()).collect();
    for (i, s) in set.sessions.drain(..).enumerate() {
        shares[i % loops].push(s);
    }
    let cpu0 = server_cpu(args);
    let t0 = Instant::now();
    let stop = t0 + Duration::from_secs_f64(args.duration);
    let mut tasks = JoinSet::new();
    for mut share in shares.into_iter().filter(|s| !s.is_empty()) {
        let (target, errors) = (target.clone(), errors.clone());
        tasks.spawn(async move {
            let (mut hist, mut failed, mut relogins) = (Histogram::default(), 0u64, 0u64);
            let mut i = 0;
            while Instant::now() < stop {
                let len = share.len();
                let s = &mut share[i % len];
                i += 1;
                if let Some(c) = s.conn.take() {
                    c.cut(reset);
                }
                let outcome = resume(&target, s, true).await;
                let gone = match outcome {
                    Ok(Resumed::Ok(d)) => {
                        hist.record(d.as_nanos() as u64);
                        false
                    }
                    Ok(Resumed::Failed(why)) => {
                        failed += 1;
                        errors.add(why);
                        true
                    }
                    Err(e) => {
                        errors.add(e);
                        true
                    }
                };
                if gone {
                    // The session is lost: a fresh one (not counted) keeps the loop going.
                    match login_resumable(&target, &s.user, "bench").await {
                        Ok(fresh) => {
                            *s = fresh;
                            relogins += 1;
                        }
                        Err(e) => {
                            errors.add(e);
                            break;
                        }
                    }
                }
            }
            for s in share {
                if let Some(c) = s.conn {
                    tokio::spawn(c.close());
                }
            }
            (hist, failed, relogins)
        });
    }
    let (mut hist, mut failed, mut relogins) = (Histogram::default(), 0, 0);
    while let Some(r) = tasks.join_next().await {
        if let Ok((h, f, l)) = r {
            hist.merge(&h);
            failed += f;
            relogins += l;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_delta(args, cpu0);
    let n = hist.count();
    if n == 0 {
        return Err(format!("no resumption succeeded: {}", errors.list()));
    }
    // Let the streams closed above finish before the caller reads the server's memory.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(json!({
        "sessions": args.users,
        "loops": loops,
        "cut": match args.cut { Cut::Fin => "fin", Cut::Rst => "rst" },
        "resumptions": n,
        "failed": failed,
        "failures": errors.count(),
        "relogins": relogins,
        "errors": errors.list(),
        "resumptions_per_sec": round3(n as f64 / secs),
        "resume_ms": hist.summary(1e6),
        "server_cpu_s": cpu.map(round3),
        "server_cpu_ms_per_resumption": cpu.map(|c| round3(c * 1000.0 / n as f64)),
        "setup_s": round3(setup_s),
        "login_errors": logged["login_errors"],
    }))
}
