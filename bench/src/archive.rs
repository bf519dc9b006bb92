//! The `mam-query` scenario: how fast a server answers XEP-0313 queries for the last page of
//! a conversation in a large archive.
//!
//! Fill (optional, `--fill N`): `--pairs` P pairs (accounts 2i → 2i+1) send N chat messages
//! in all through the server, closed loop with `--window` in flight per pair, bounded by N
//! and by `--fill-timeout` s. A server that archives every message in the sender's and the
//! recipient's archive then holds 2N archived messages, spread evenly: each account's
//! archive holds ≈ N/P of them, all with its one contact. Filling once and querying in
//! later runs (`--fill 0`) keeps the store between runs; `--fill-only` skips the queries.
//!
//! Queries: `--concurrency` C sessions (client j is account j mod 2P, resource `q{j}`,
//! asking about its contact, account (j mod 2P) xor 1) loop for `--duration` s, each with
//! one query in flight: `with` = the contact, RSM `<max>50</max><before/>` (the last page,
//! XEP-0313 §4.1.1 and XEP-0059 §2.5), waiting for the IQ result carrying `<fin/>` (§4.2)
//! and counting the `<result/>` messages that came before it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memmem;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{attr, Conn, Target, Unit};
use crate::scenarios::{cpu_delta, login_many, login_one, now_ns, server_cpu, Errors};
use crate::stats::Histogram;
use crate::{round3, Args};

/// The page every query asks for (and every answer must carry, the archive being larger).
pub const PAGE: usize = 50;

/// Bound on one query (sent to `<fin/>`).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn mam_query(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    let p = args.pairs;
    if p == 0 || args.concurrency == 0 {
        return Err("--pairs and --concurrency must be at least 1".into());
    }
    let errors = Arc::new(Errors::default());
    let fill = if args.fill > 0 {
        Some(fill(args, target, &errors).await?)
    } else {
        None
    };
    if args.fill_only {
        let mut out = fill.unwrap_or_default();
        out.insert("failures".into(), json!(errors.count()));
        out.insert("errors".into(), errors.list());
        return Ok(Value::Object(out));
    }

    // The query sessions log in after the fill, on resources of their own.
    let t_login = Instant::now();
    let mut set = JoinSet::new();
    for j in 0..args.concurrency {
        let account = j % (2 * p);
        let (user, contact) = (args.user(account), args.user(account ^ 1));
        let target = target.clone();
        set.spawn(async move {
            let (c, _) = login_one(&target, &user, &format!("q{j}")).await?;
            Ok::<_, String>((j, c, format!("{contact}@{}", target.domain)))
        });
    }
    let mut clients = Vec::with_capacity(args.concurrency);
    while let Some(r) = set.join_next().await {
        clients.push(r.map_err(|e| format!("login task: {e}"))??);
    }
    let login_s = t_login.elapsed().as_secs_f64();

    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let stop = start + Duration::from_secs_f64(args.duration);
    let mut set = JoinSet::new();
    for (j, c, with) in clients {
        set.spawn(query_loop(c, j, with, start, stop));
    }
    tokio::time::sleep_until(start).await;
    let cpu0 = server_cpu(args);
    let t0 = now_ns();
    let (mut queries, mut short, mut last) = (0u64, 0u64, t0);
    let mut latency = Histogram::default();
    let mut results_min = u64::MAX;
    while let Some(r) = set.join_next().await {
        let seen = r.map_err(|e| format!("query task: {e}"))?;
        queries += seen.queries;
        short += seen.short_pages;
        results_min = results_min.min(seen.results_min);
        last = last.max(seen.last_ns);
        latency.merge(&seen.latency);
        if let Some(e) = seen.error {
            errors.add(e);
        }
    }
    let cpu = cpu_delta(args, cpu0);
    let secs = (last.saturating_sub(t0)) as f64 / 1e9;
    let mut out = json!({
        "queries": queries,
        "page": PAGE,
        "short_pages": short,
        "results_per_query_min": if queries > 0 { json!(results_min) } else { Value::Null },
        "queries_per_sec": round3(queries as f64 / secs.max(1e-9)),
        "query_ms": latency.summary(1e6),
        "server_cpu_s": cpu.map(round3),
        "server_cpu_ms_per_query": cpu.map(|c| round3(c * 1e3 / queries.max(1) as f64)),
        "login_s": round3(login_s),
        "failures": errors.count(),
        "errors": errors.list(),
    });
    if let (Some(f), Value::Object(o)) = (fill, &mut out) {
        o.extend(f);
    }
    Ok(out)
}

/// What one query session saw.
struct Seen {
    queries: u64,
    short_pages: u64,
    results_min: u64,
    last_ns: u64,
    latency: Histogram,
    error: Option<String>,
}

async fn query_loop(
    mut c: Conn,
    j: usize,
    with: String,
    start: tokio::time::Instant,
    stop: tokio::time::Instant,
) -> Seen {
    let mut seen = Seen {
        queries: 0,
        short_pages: 0,
        results_min: u64::MAX,
        last_ns: 0,
        latency: Histogram::default(),
        error: None,
    };
    tokio::time::sleep_until(start).await;
    while tokio::time::Instant::now() < stop {
        let id = format!("q{j}n{}", seen.queries);
        let t = now_ns();
        match timeout(QUERY_TIMEOUT, one_query(&mut c, &id, &with)).await {
            Ok(Ok(results)) => {
                let now = now_ns();
                seen.latency.record(now.saturating_sub(t));
                seen.last_ns = now;
                seen.queries += 1;
                seen.results_min = seen.results_min.min(results);
                if results != PAGE as u64 {
                    seen.short_pages += 1;
                }
            }
            Ok(Err(e)) => {
                seen.error = Some(e);
                break;
            }
            Err(_) => {
                seen.error = Some(format!("query {id} unanswered after 60 s"));
                break;
            }
        }
    }
    tokio::spawn(c.close());
    seen
}

/// Sends one query for the last page with `with` and returns how many results came before
/// its `<fin/>`; an error answer ends the run of this session.
async fn one_query(c: &mut Conn, id: &str, with: &str) -> Result<u64, String> {
    let q = format!(
        "<iq type='set' id='{id}'><query xmlns='urn:xmpp:mam:2' queryid='{id}'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
         <field var='with'><value>{with}</value></field></x>\
         <set xmlns='http://jabber.org/protocol/rsm'><max>{PAGE}</max><before/></set>\
         </query></iq>"
    );
    c.send(q.as_bytes()).await?;
    let mut results = 0u64;
    loop {
        match c.next().await? {
            Unit::Close => return Err("stream closed".into()),
            Unit::Header(..) => {}
            Unit::Stanza(s, e) => {
                let u = c.bytes(s, e);
                if u.starts_with(b"<iq") && attr(u, b"id") == Some(id.as_bytes()) {
                    if attr(u, b"type") != Some(b"result") || memmem::find(u, b"<fin").is_none() {
                        return Err(format!("query answer: {}", String::from_utf8_lossy(u)));
                    }
                    return Ok(results);
                }
                // A result of this query: <message><result queryid='ID' …> (§4.2).
                if u.starts_with(b"<message")
                    && memmem::find(u, b"urn:xmpp:mam:2").is_some()
                    && memmem::find(u, id.as_bytes()).is_some()
                {
                    results += 1;
                }
            }
        }
    }
}

/// Sends `--fill` messages through the server over `--pairs` pairs, closed loop, bounded by
/// the count and `--fill-timeout` s; returns the fill's keys for the results.
async fn fill(
    args: &Args,
    target: &Arc<Target>,
    errors: &Arc<Errors>,
) -> Result<serde_json::Map<String, Value>, String> {
    let p = args.pairs;
    let users: Vec<String> = (0..2 * p).map(|i| args.user(i)).collect();
    let conns = login_many(target, users, args.concurrency, errors).await;
    if conns.len() != 2 * p {
        return Err(format!(
            "fill: {} of {} logins failed: {}",
            errors.count(),
            2 * p,
            errors.list()
        ));
    }
    let budget = Arc::new(AtomicU64::new(args.fill));
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.fill_timeout);
    let cpu0 = server_cpu(args);
    let t0 = Instant::now();
    let mut it = conns.into_iter().map(|(_, c, _)| c);
    let mut set = JoinSet::new();
    for i in 0..p {
        let (Some(a), Some(b)) = (it.next(), it.next()) else {
            break;
        };
        let to = format!("{}@{}", args.user(2 * i + 1), args.domain);
        set.spawn(fill_pair(
            a,
            b,
            to,
            args.window as u64,
            budget.clone(),
            deadline,
        ));
    }
    let (mut sent, mut received) = (0u64, 0u64);
    while let Some(r) = set.join_next().await {
        let (s, r, e) = r.map_err(|e| format!("fill task: {e}"))?;
        sent += s;
        received += r;
        if let Some(e) = e {
            errors.add(format!("fill: {e}"));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_delta(args, cpu0);
    let mut m = serde_json::Map::new();
    m.insert("fill_sent".into(), json!(sent));
    m.insert("fill_received".into(), json!(received));
    m.insert(
        "fill_complete".into(),
        json!(sent == args.fill && received == sent),
    );
    m.insert("fill_s".into(), json!(round3(secs)));
    m.insert(
        "fill_messages_per_sec".into(),
        json!(round3(received as f64 / secs.max(1e-9))),
    );
    m.insert("fill_server_cpu_s".into(), json!(cpu.map(round3)));
    m.insert(
        "fill_server_cpu_us_per_msg".into(),
        json!(cpu.map(|c| round3(c * 1e6 / received.max(1) as f64))),
    );
    Ok(m)
}

/// One pair of the fill: `a` keeps `window` messages to `to` (`b`'s account) in flight
/// while the budget lasts, until `deadline`; returns (sent, received, error).
async fn fill_pair(
    mut a: Conn,
    mut b: Conn,
    to: String,
    window: u64,
    budget: Arc<AtomicU64>,
    deadline: tokio::time::Instant,
) -> (u64, u64, Option<String>) {
    let (mut sent, mut received) = (0u64, 0u64);
    let mut sending = true;
    let mut error = None;
    loop {
        while sending && sent - received < window {
            // Take one message from the shared budget, or stop sending.
            if budget
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_err()
                || tokio::time::Instant::now() >= deadline
            {
                sending = false;
                break;
            }
            let m = format!(
                "<message to='{to}' type='chat'><body>archive fill {sent}</body></message>"
            );
            a.queue(m.as_bytes());
            sent += 1;
        }
        if let Err(e) = a.flush().await {
            error = Some(e);
            break;
        }
        if !sending && received >= sent {
            break;
        }
        tokio::select! {
            u = b.next() => match u {
                Ok(Unit::Stanza(s, e)) => {
                    let u = b.bytes(s, e);
                    if u.starts_with(b"<message") && memmem::find(u, b"<body>archive fill ").is_some() {
                        received += 1;
                    }
                }
                Ok(Unit::Close) => { error = Some("receiver's stream closed".into()); break }
                Ok(Unit::Header(..)) => {}
                Err(e) => { error = Some(e); break }
            },
            u = a.next() => match u {
                Ok(Unit::Stanza(s, e)) => {
                    let u = a.bytes(s, e);
                    if u.starts_with(b"<message") && attr(u, b"type") == Some(b"error") {
                        error = Some(format!("bounced: {}", String::from_utf8_lossy(u)));
                        break;
                    }
                }
                Ok(Unit::Close) => { error = Some("sender's stream closed".into()); break }
                Ok(Unit::Header(..)) => {}
                Err(e) => { error = Some(e); break }
            },
            _ = tokio::time::sleep_until(deadline + Duration::from_secs(30)) => {
                error = Some(format!("{} fill messages not received 30 s after the fill's time was up", sent - received));
                break;
            }
        }
    }
    tokio::spawn(a.close());
    tokio::spawn(b.close());
    (sent, received, error)
}
