//! The `s2s` scenario: messages from one server to another (federation, RFC 6120
//! server-to-server streams). P pairs: sender i is account i of the first server
//! (`--domain`, c2s at `--host`:`--port`), receiver i is account i of the second
//! (`--domain-b` at `--host-b`:`--port-b`). Each sender sends chat messages to its
//! receiver's bare JID, so every message crosses from the first server to the second; the
//! generator holds both ends, so send → receipt latency is read on one clock.
//!
//! Warm-up: each pair's first message (body `warm-up`) makes the first server open its
//! stream to the second and authenticate it (dialback or SASL EXTERNAL), and is waited for
//! before the measurement starts, so stream setup is not in the rate; how long it took is
//! reported as `warmup_s`. A message a server could not pass on comes back to its sender as
//! an error (RFC 6120 §8.3.3.16 and .17); such bounces end the warm-up at once and are
//! counted during the measurement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memmem;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{attr, Conn, Res, Target, Unit};
use crate::scenarios::{login_many, provision, run_pairs, Errors};
use crate::{round3, target_at, Args, Provision};

pub async fn run(args: &Args, a: &Arc<Target>) -> Result<Value, String> {
    let p = args.pairs;
    if p == 0 {
        return Err("--pairs must be at least 1".into());
    }
    if args.domain_b.is_empty() {
        return Err("s2s needs --domain-b (the receivers' server)".into());
    }
    let b = Arc::new(target_at(
        args,
        args.host_b(),
        args.port_b(),
        &args.domain_b,
    )?);
    if args.provision == Provision::Register {
        tokio::try_join!(provision(args, a, p), provision(args, &b, p))?;
    }
    let errors = Arc::new(Errors::default());
    let users: Vec<String> = (0..p).map(|i| args.user(i)).collect();
    let t_login = Instant::now();
    let (senders, receivers) = tokio::join!(
        login_many(a, users.clone(), args.concurrency, &errors),
        login_many(&b, users, args.concurrency, &errors),
    );
    let login_s = t_login.elapsed().as_secs_f64();
    if senders.len() != p || receivers.len() != p {
        return Err(format!(
            "{} of {} logins failed: {}",
            errors.count(),
            2 * p,
            errors.list()
        ));
    }
    let t_warm = Instant::now();
    let limit = Duration::from_secs_f64(args.warmup);
    let mut set = JoinSet::new();
    for (i, ((_, s, _), (_, r, _))) in senders.into_iter().zip(receivers).enumerate() {
        let to = format!("{}@{}", args.user(i), args.domain_b);
        set.spawn(async move {
            let mut pair = (s, r);
            let outcome = timeout(limit, warm_up(&mut pair.0, &mut pair.1, &to))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the warm-up message to {to} did not arrive within {} s",
                        limit.as_secs_f64()
                    ))
                });
            (i, pair, to, outcome)
        });
    }
    let mut pairs = Vec::with_capacity(p);
    let warm_errors = Errors::default();
    while let Some(done) = set.join_next().await {
        let (i, (s, r), to, outcome) = done.map_err(|e| format!("warm-up task: {e}"))?;
        if let Err(e) = outcome {
            warm_errors.add(e);
        }
        pairs.push((i, s, r, to));
    }
    let warmup_s = t_warm.elapsed().as_secs_f64();
    if warm_errors.count() > 0 {
        for (_, s, r, _) in pairs {
            tokio::spawn(s.close());
            tokio::spawn(r.close());
        }
        return Err(format!(
            "warm-up: {} of {p} pairs got no message across: {}",
            warm_errors.count(),
            warm_errors.list()
        ));
    }
    pairs.sort_by_key(|(i, ..)| *i);
    let pairs = pairs.into_iter().map(|(_, s, r, to)| (s, r, to)).collect();
    let run = run_pairs(args, pairs, &errors, &[args.server_pid, args.server_pid_b]).await?;
    let (cpu_a, cpu_b) = (run.cpu[0], run.cpu[1]);
    let both = cpu_a.zip(cpu_b).map(|(a, b)| a + b);
    let per_msg = [
        run.per_msg_us(both),
        run.per_msg_us(cpu_a),
        run.per_msg_us(cpu_b),
    ];
    let mut results = run.results;
    // Both servers' CPU: a message costs the sending and the receiving one.
    results["server_cpu_s"] = json!(both.map(round3));
    results["server_cpu_us_per_msg"] = json!(per_msg[0]);
    results["server_a_cpu_s"] = json!(cpu_a.map(round3));
    results["server_a_cpu_us_per_msg"] = json!(per_msg[1]);
    results["server_b_cpu_s"] = json!(cpu_b.map(round3));
    results["server_b_cpu_us_per_msg"] = json!(per_msg[2]);
    results["warmup_s"] = json!(round3(warmup_s));
    results["login_s"] = json!(round3(login_s));
    results["failures"] = json!(errors.count());
    results["errors"] = errors.list();
    Ok(results)
}

/// Sends the pair's first message and waits for it at the receiver; an error bounce to
/// the sender (or a closed stream on either side) ends the wait.
async fn warm_up(sender: &mut Conn, receiver: &mut Conn, to: &str) -> Res<()> {
    let msg = format!("<message to='{to}' type='chat' id='warm-up'><body>warm-up</body></message>");
    sender.send(msg.as_bytes()).await?;
    loop {
        tokio::select! {
            u = receiver.next() => match u? {
                Unit::Stanza(s, e) => {
                    let u = receiver.bytes(s, e);
                    if u.starts_with(b"<message") && memmem::find(u, b"<body>warm-up</body>").is_some() {
                        return Ok(());
                    }
                }
                Unit::Close => return Err("the receiver's stream closed".into()),
                Unit::Header(..) => {}
            },
            u = sender.next() => match u? {
                Unit::Stanza(s, e) => {
                    let u = sender.bytes(s, e);
                    if u.starts_with(b"<message") && attr(u, b"type") == Some(b"error") {
                        return Err(format!("bounced: {}", String::from_utf8_lossy(u)));
                    }
                }
                Unit::Close => return Err("the sender's stream closed".into()),
                Unit::Header(..) => {}
            },
        }
    }
}
