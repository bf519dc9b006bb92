//! Smoke runs of every scenario against the real server (tiny sizes, a second or two each),
//! so the load generator can't rot: each asserts what its scenario promises in the JSON line.

use std::process::Command;

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
    let pid = server.pid().expect("server running").to_string();
    let port = server.c2s.port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_jabberwock-bench"))
        .args(args)
        .args(["--server-pid", &pid, "--host", "127.0.0.1", "--port", &port])
        .args(["--domain", "localhost", "--timeout", "60", "--json-only"])
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
