//! `jabberwock-bench dns`: a nameserver for the s2s scenario's servers on loopback, which
//! must find each other by name. compare.sh runs Prosody and ejabberd in mount namespaces
//! whose resolv.conf names this server: Prosody asks DNS only (not /etc/hosts), ejabberd
//! asks it for SRV records (addresses come from the namespace's /etc/hosts). Jabberwock
//! needs none (its static peer map).
//!
//! It answers A questions for the `--record NAME=IPV4`s with TTL 0; any other question
//! about a known name gets an empty answer (NOERROR and no record, RFC 2308 §2.2), one
//! about any other name NXDOMAIN (RFC 1035 §4.1.1), so a server's SRV lookup of
//! `_xmpp-server._tcp.NAME` finds nothing and it falls back to NAME's A record on port
//! 5269 (RFC 6120 §3.2.2). UDP only, one question per query, no EDNS: all these resolvers
//! send. It stops after `--timeout` seconds (an hour by default) or when killed.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use crate::Args;

/// RFC 1035 §3.2.2/§3.2.4: TYPE A, CLASS IN.
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
/// RFC 1035 §4.1.1 header flags and codes.
const QR: u16 = 0x8000;
const OPCODE: u16 = 0x7800;
const AA: u16 = 0x0400;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const NXDOMAIN: u16 = 3;
const FORMERR: u16 = 1;

/// The names this server knows (lowercase, no final dot) and their addresses.
pub struct Zone(Vec<(String, Ipv4Addr)>);

impl Zone {
    /// From `NAME=IPV4` strings.
    pub fn parse(records: &[String]) -> Result<Zone, String> {
        records
            .iter()
            .map(|r| {
                let (name, ip) = r
                    .split_once('=')
                    .ok_or_else(|| format!("--record {r:?}: NAME=IPV4 expected"))?;
                let ip = ip
                    .parse()
                    .map_err(|e| format!("--record {r:?}: {ip:?} is no IPv4 address: {e}"))?;
                Ok((key(name), ip))
            })
            .collect::<Result<_, String>>()
            .map(Zone)
    }

    /// The answer to `query`, or None for bytes too broken to answer (no header).
    pub fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let word = |at: usize| -> Option<u16> {
            Some(u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]))
        };
        let (id, flags, questions) = (word(0)?, word(2)?, word(4)?);
        if flags & QR != 0 {
            return None; // a response, not a question: never answered (no loops)
        }
        let reply_flags = QR | (flags & OPCODE) | AA | (flags & RD) | RA;
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&id.to_be_bytes());
        // The question: labels from offset 12 up to the root label, then type and class.
        let parsed = (questions == 1).then(|| question(query)).flatten();
        let Some((name, end)) = parsed else {
            out.extend_from_slice(&(reply_flags | FORMERR).to_be_bytes());
            out.extend_from_slice(&[0; 8]);
            return Some(out);
        };
        let (qtype, qclass) = (word(end - 4)?, word(end - 2)?);
        let known: Vec<Ipv4Addr> = self
            .0
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, ip)| *ip)
            .collect();
        let rcode = if known.is_empty() { NXDOMAIN } else { 0 };
        let answers: &[Ipv4Addr] = if qtype == TYPE_A && qclass == CLASS_IN {
            &known
        } else {
            &[]
        };
        out.extend_from_slice(&(reply_flags | rcode).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&query[12..end]);
        for ip in answers {
            // The name as a pointer to the question's (RFC 1035 §4.1.4), TTL 0, 4 bytes.
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&ip.octets());
        }
        Some(out)
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The first question's name and where the question ends (after type and class).
fn question(query: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // Compression (0xc0) has no place in a question's first name; longer labels are
        // not labels (RFC 1035 §2.3.4: 63 octets at most).
        if len > 63 {
            return None;
        }
        let label = query.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += len;
    }
    (query.len() >= at + 4).then(|| (key(&labels.join(".")), at + 4))
}

pub fn serve(args: &Args) -> Result<(), String> {
    let zone = Zone::parse(&args.records)?;
    let socket =
        UdpSocket::bind(&args.listen).map_err(|e| format!("bind UDP {}: {e}", args.listen))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("read timeout: {e}"))?;
    let lifetime = if args.timeout > 0.0 {
        args.timeout
    } else {
        3600.0
    };
    let deadline = Instant::now() + Duration::from_secs_f64(lifetime);
    eprintln!(
        "dns: answering {} names on {} for {lifetime} s",
        zone.0.len(),
        args.listen
    );
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if let Some(reply) = zone.answer(&buf[..n]) {
            let _ = socket.send_to(&reply, from);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of `qtype` (class IN), id 0x1234, recursion desired.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    fn zone() -> Zone {
        Zone::parse(&["a.test=127.0.60.1".into(), "B.test.=127.0.60.2".into()]).unwrap()
    }

    #[test]
    fn a_record_of_a_known_name() {
        let q = query("b.TEST", TYPE_A);
        let r = zone().answer(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        // QR, AA, RD, RA; NOERROR; one question, one answer.
        assert_eq!(&r[2..4], &[0x85, 0x80]);
        assert_eq!(&r[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&r[12..q.len()], &q[12..]);
        let answer = &r[q.len()..];
        assert_eq!(
            answer,
            &[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 127, 0, 60, 2]
        );
    }

    #[test]
    fn other_types_of_a_known_name_are_empty_and_unknown_names_nxdomain() {
        // AAAA (28) of a.test: NOERROR, no answer.
        let r = zone().answer(&query("a.test", 28)).unwrap();
        assert_eq!((r[3] & 0x0f, &r[6..8]), (0, &[0u8, 0][..]));
        // SRV (33) of _xmpp-server._tcp.a.test: NXDOMAIN, so the A fallback applies.
        let r = zone()
            .answer(&query("_xmpp-server._tcp.a.test", 33))
            .unwrap();
        assert_eq!((r[3] & 0x0f, &r[6..8]), (3, &[0u8, 0][..]));
    }

    #[test]
    fn broken_queries_get_formerr_or_nothing() {
        let mut q = query("a.test", TYPE_A);
        q.truncate(q.len() - 3);
        assert_eq!(zone().answer(&q).unwrap()[3] & 0x0f, 1);
        assert_eq!(zone().answer(&q[..5]), None);
        let mut response = query("a.test", TYPE_A);
        response[2] |= 0x80;
        assert_eq!(zone().answer(&response), None);
        assert!(Zone::parse(&["a.test=::1".into()]).is_err());
    }
}
