//! The `muc` scenario: group chat fan-out (XEP-0045). R rooms of O occupants each (accounts
//! 0..R·O, occupant i of room r is account r·O + i with nick `u{i}`). In every room occupant
//! 0 sends groupchat messages in a closed loop, `--window` in flight: a MUC service reflects
//! each message to every occupant, the sender included (XEP-0045 §7.4), so the sender's own
//! copy is its acknowledgement. Every occupant counts the copies it receives; a delivery is
//! one copy received, so a message makes O deliveries, and a lost delivery is a copy that
//! never arrived (expected: sent × O).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{attr, is_iq, Conn, Res, Target, Unit};
use crate::scenarios::{cpu_delta, login_many, now_ns, parse_body, server_cpu, Errors};
use crate::stats::{self, Histogram};
use crate::{round3, Args};

/// Bound on one occupant's entry (presence out to its own presence back).
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one occupant's connection saw during the measurement.
struct Seen {
    received: u64,
    last_rx_ns: u64,
    latency: Histogram,
    error: Option<String>,
}

/// Sent in a room, published by its sender when it stops (until then `u64::MAX`).
type Total = Arc<AtomicU64>;

pub fn muc_domain(args: &Args) -> String {
    if args.muc_domain.is_empty() {
        format!("conference.{}", args.domain)
    } else {
        args.muc_domain.clone()
    }
}

/// Enters `room` as `nick` and waits for the occupant's own presence (status 110, §7.2.2).
/// The first entrant creates the room (status 201) and asks for an instant room (§10.1.2)
/// so that services that lock new rooms until configured open it.
async fn enter(c: &mut Conn, room: &str, nick: &str) -> Res<()> {
    let join = format!(
        "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>\
         <history maxstanzas='0'/></x></presence>"
    );
    c.send(join.as_bytes()).await?;
    let own = format!("{room}/{nick}");
    let (s, e) = c
        .wait_for("own room presence", |u| {
            u.starts_with(b"<presence")
                && attr(u, b"from") == Some(own.as_bytes())
                && (has_status(u, "110") || attr(u, b"type") == Some(b"error"))
        })
        .await?;
    let presence = c.bytes(s, e).to_vec();
    if attr(&presence, b"type") == Some(b"error") {
        return Err(format!(
            "entering {room}: {}",
            String::from_utf8_lossy(&presence)
        ));
    }
    if has_status(&presence, "201") {
        let iq = format!(
            "<iq type='set' id='instant' to='{room}'>\
             <query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        );
        c.send(iq.as_bytes()).await?;
        let (s, e) = c.wait_for("instant room", |u| is_iq(u, b"instant")).await?;
        if attr(c.bytes(s, e), b"type") != Some(b"result") {
            return Err(format!(
                "instant room {room}: {}",
                String::from_utf8_lossy(c.bytes(s, e))
            ));
        }
    }
    Ok(())
}

/// Whether a MUC presence carries `<status code='CODE'/>` (either quote style).
fn has_status(presence: &[u8], code: &str) -> bool {
    [format!("code='{code}'"), format!("code=\"{code}\"")]
        .iter()
        .any(|needle| memchr::memmem::find(presence, needle.as_bytes()).is_some())
}

/// Counts the room's messages reaching one occupant until the sender's total has arrived
/// or `give_up` passes. The sender's own connection also sends (closed loop).
#[allow(clippy::too_many_arguments)]
async fn occupant(
    mut c: Conn,
    room: String,
    sends: bool,
    window: u64,
    total: Total,
    start: tokio::time::Instant,
    stop: tokio::time::Instant,
    give_up: tokio::time::Instant,
) -> Seen {
    let mut seen = Seen {
        received: 0,
        last_rx_ns: 0,
        latency: Histogram::default(),
        error: None,
    };
    let head = format!("<message to='{room}' type='groupchat'><body>bench ");
    let mut msg = Vec::with_capacity(head.len() + 64);
    let mut sent = 0u64;
    let mut sending = sends;
    tokio::time::sleep_until(start).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if sending {
            if tokio::time::Instant::now() >= stop {
                sending = false;
                total.store(sent, Ordering::Release);
            } else {
                while sent - seen.received < window {
                    use std::io::Write;
                    let ts = now_ns();
                    msg.clear();
                    msg.extend_from_slice(head.as_bytes());
                    let _ = write!(msg, "{sent} {ts} {ts}</body></message>");
                    c.queue(&msg);
                    sent += 1;
                }
                if let Err(e) = c.flush().await {
                    seen.error = Some(e);
                    total.store(sent, Ordering::Release);
                    break;
                }
            }
        }
        let expected = total.load(Ordering::Acquire);
        if !sending && seen.received >= expected {
            break;
        }
        if tokio::time::Instant::now() >= give_up {
            break;
        }
        tokio::select! {
            u = c.next() => {
                let mut u = match u { Ok(u) => Some(u), Err(e) => { seen.error = Some(e); break } };
                while let Some(unit) = u {
                    match unit {
                        Unit::Stanza(s, e) => {
                            let bytes = c.bytes(s, e);
                            if attr(bytes, b"type") == Some(b"error") {
                                seen.error = Some(format!("error: {}", String::from_utf8_lossy(bytes)));
                            } else if let Some((_, ts, _)) = parse_body(bytes) {
                                let now = now_ns();
                                seen.received += 1;
                                seen.last_rx_ns = now;
                                seen.latency.record(now.saturating_sub(ts));
                            }
                        }
                        Unit::Close => {
                            seen.error = Some("stream closed".into());
                            break;
                        }
                        Unit::Header(..) => {}
                    }
                    u = c.next_buffered();
                }
                if seen.error.is_some() { break; }
            }
            _ = tick.tick() => {}
        }
    }
    tokio::spawn(c.close());
    seen
}

pub async fn muc(args: &Args, target: &Arc<Target>) -> Result<Value, String> {
    let (rooms, per_room) = (args.rooms, args.occupants);
    if rooms == 0 || per_room == 0 {
        return Err("--rooms and --occupants must be at least 1".into());
    }
    let domain = muc_domain(args);
    let errors = Arc::new(Errors::default());
    let users: Vec<String> = (0..rooms * per_room).map(|i| args.user(i)).collect();
    let t_login = Instant::now();
    let conns = login_many(target, users, args.concurrency, &errors).await;
    let login_s = t_login.elapsed().as_secs_f64();
    if conns.len() != rooms * per_room {
        return Err(format!(
            "{} of {} logins failed: {}",
            errors.count(),
            rooms * per_room,
            errors.list()
        ));
    }

    // Memory per occupant: the server's RSS once everyone is logged in and again once
    // everyone is in a room, each after `--settle` seconds, over the occupants.
    let settled_rss = || async {
        let pid = args.server_pid?;
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        stats::rss_bytes(pid)
    };
    let rss_logged_in = settled_rss().await;

    // Entering: in each room the creator first, then the others together; rooms in parallel.
    let t_join = Instant::now();
    let mut it = conns.into_iter().map(|(_, c, _)| c);
    let mut joins = JoinSet::new();
    for r in 0..rooms {
        let members: Vec<Conn> = it.by_ref().take(per_room).collect();
        let room = format!("room{r}@{domain}");
        joins.spawn(async move {
            let mut members = members.into_iter();
            let mut creator = members.next().expect("at least one occupant");
            timeout(JOIN_TIMEOUT, enter(&mut creator, &room, "u0"))
                .await
                .map_err(|_| format!("creating {room} timed out"))??;
            let mut set = JoinSet::new();
            for (i, mut c) in members.enumerate() {
                let room = room.clone();
                set.spawn(async move {
                    let nick = format!("u{}", i + 1);
                    timeout(JOIN_TIMEOUT, enter(&mut c, &room, &nick))
                        .await
                        .map_err(|_| format!("entering {room} as {nick} timed out"))??;
                    Ok::<_, String>((i + 1, c))
                });
            }
            let mut all = vec![(0, creator)];
            while let Some(j) = set.join_next().await {
                all.push(j.map_err(|e| format!("join task: {e}"))??);
            }
            all.sort_by_key(|(i, _)| *i);
            Ok::<_, String>((r, room, all.into_iter().map(|(_, c)| c).collect::<Vec<_>>()))
        });
    }
    let mut joined = Vec::with_capacity(rooms);
    while let Some(j) = joins.join_next().await {
        joined.push(j.map_err(|e| format!("room task: {e}"))??);
    }
    joined.sort_by_key(|(r, _, _)| *r);
    let join_s = t_join.elapsed().as_secs_f64();
    let rss_joined = settled_rss().await;
    let per_occupant = match (rss_logged_in, rss_joined) {
        (Some(before), Some(after)) => Some(round3(
            (after as f64 - before as f64) / (rooms * per_room) as f64,
        )),
        _ => None,
    };

    let start = tokio::time::Instant::now() + Duration::from_millis(300);
    let stop = start + Duration::from_secs_f64(args.duration);
    let give_up = stop + Duration::from_secs_f64(args.drain);
    let mut set = JoinSet::new();
    let mut totals = Vec::with_capacity(rooms);
    for (_, room, members) in joined {
        let total: Total = Arc::new(AtomicU64::new(u64::MAX));
        totals.push(total.clone());
        for (i, c) in members.into_iter().enumerate() {
            set.spawn(occupant(
                c,
                room.clone(),
                i == 0,
                args.window as u64,
                total.clone(),
                start,
                stop,
                give_up,
            ));
        }
    }
    tokio::time::sleep_until(start).await;
    let cpu0 = server_cpu(args);
    let start_ns = now_ns();
    let (mut received, mut last) = (0u64, start_ns);
    let mut latency = Histogram::default();
    while let Some(seen) = set.join_next().await {
        let seen = seen.map_err(|e| format!("occupant task: {e}"))?;
        received += seen.received;
        last = last.max(seen.last_rx_ns);
        latency.merge(&seen.latency);
        if let Some(e) = seen.error {
            errors.add(e);
        }
    }
    let cpu = cpu_delta(args, cpu0);
    let sent: u64 = totals
        .iter()
        .map(|t| t.load(Ordering::Acquire))
        .filter(|t| *t != u64::MAX)
        .sum();
    let expected = sent * per_room as u64;
    let secs = (last.saturating_sub(start_ns)) as f64 / 1e9;
    Ok(json!({
        "rooms": rooms,
        "occupants_per_room": per_room,
        "muc_domain": domain,
        "sent": sent,
        "expected_deliveries": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "delivered_per_sec": round3(received as f64 / secs.max(1e-9)),
        "sent_per_sec": round3(sent as f64 / args.duration),
        "latency_ms": latency.summary(1e6),
        "server_cpu_s": cpu.map(round3),
        "server_cpu_us_per_delivery": cpu.map(|c| round3(c * 1e6 / received.max(1) as f64)),
        "login_s": round3(login_s),
        "join_s": round3(join_s),
        "rss_logged_in_bytes": rss_logged_in,
        "rss_joined_bytes": rss_joined,
        "memory_per_occupant_bytes": per_occupant,
        "failures": errors.count(),
        "errors": errors.list(),
    }))
}
