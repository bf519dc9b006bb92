//! A nameserver for tests: answers A and SRV questions for the names a test gives it, over
//! UDP on a loopback address, with TTL 0 (so every lookup reaches it and is counted), and
//! NXDOMAIN for names it does not know. It runs on a thread of its own, so it keeps
//! answering while a test blocks (starting a server, running a command).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

#[derive(Default)]
struct Zone {
    records: Vec<(String, RData)>,
    /// Every question asked: (name without the final dot, type).
    asked: Vec<(String, RecordType)>,
}

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl TestDns {
    /// Answers on `addr` (port 0: any free port; Prosody's resolv.conf needs 53).
    pub fn start(addr: &str) -> TestDns {
        let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind DNS on {addr}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local addr");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, stop) = (zone.clone(), stop.clone());
            std::thread::spawn(move || serve(socket, &zone, &stop))
        };
        TestDns {
            addr,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    fn add(&self, name: &str, data: RData) {
        self.zone.lock().unwrap().records.push((key(name), data));
    }

    pub fn a(&self, name: &str, ip: Ipv4Addr) {
        self.add(name, RData::A(A(ip)));
    }

    /// An SRV record; `target` "." says the service is not offered (RFC 2782).
    pub fn srv(&self, name: &str, priority: u16, weight: u16, port: u16, target: &str) {
        let target = Name::from_ascii(target).expect("SRV target");
        self.add(name, RData::SRV(SRV::new(priority, weight, port, target)));
    }

    /// How many times `name` was asked for records of `kind` ("A", "SRV", …).
    pub fn asked(&self, name: &str, kind: &str) -> usize {
        let name = key(name);
        let zone = self.zone.lock().unwrap();
        zone.asked
            .iter()
            .filter(|(n, t)| *n == name && t.to_string() == kind)
            .count()
    }

    /// Every question so far, for failure messages.
    pub fn questions(&self) -> String {
        let zone = self.zone.lock().unwrap();
        zone.asked
            .iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A nameserver that knows no name, for servers whose tests find every peer in the static
/// map: their DNS questions, if any, stay on this machine. One per test process.
pub fn nowhere() -> SocketAddr {
    static NOWHERE: OnceLock<TestDns> = OnceLock::new();
    NOWHERE.get_or_init(|| TestDns::start("127.0.0.1:0")).addr
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(socket: UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(question) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let answer = answer(&question, &mut zone.lock().unwrap());
        if let Ok(bytes) = answer.to_vec() {
            let _ = socket.send_to(&bytes, from);
        }
    }
}

fn answer(question: &Message, zone: &mut Zone) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(question.id())
        .set_message_type(MessageType::Response)
        .set_op_code(question.op_code())
        .set_authoritative(true)
        .set_recursion_desired(question.recursion_desired())
        .set_recursion_available(true);
    let mut known = false;
    for query in question.queries() {
        reply.add_query(query.clone());
        let name = key(&query.name().to_ascii());
        zone.asked.push((name.clone(), query.query_type()));
        for (n, data) in &zone.records {
            if *n != name {
                continue;
            }
            known = true;
            if data.record_type() == query.query_type() {
                reply.add_answer(Record::from_rdata(query.name().clone(), 0, data.clone()));
            }
        }
    }
    if !known {
        reply.set_response_code(ResponseCode::NXDomain);
    }
    reply
}
