//! systemd integration: the sd_notify(3) datagrams a `Type=notify` service sends, received
//! on a socket of the test's own as systemd would, and the unit file in packaging/.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use jabberwock_tests::raw::STREAM_HEADER;
use jabberwock_tests::{RawClient, TestConfig, TestServer, WAIT};

/// The next notification that is not a watchdog keep-alive (panics after [`WAIT`]).
fn next_state(socket: &UnixDatagram) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = receive(socket, deadline);
        if message.trim_end() != "WATCHDOG=1" {
            return message;
        }
    }
}

fn receive(socket: &UnixDatagram, deadline: Instant) -> String {
    let left = deadline.saturating_duration_since(Instant::now());
    assert!(!left.is_zero(), "no notification in time");
    socket.set_read_timeout(Some(left)).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn readiness_watchdog_reload_and_stop_reach_the_notify_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    let mut server = TestServer::start_with(
        TestConfig::default()
            .env("NOTIFY_SOCKET", path.to_str().unwrap())
            .env("WATCHDOG_USEC", "200000"),
    );

    assert_eq!(next_state(&socket).trim_end(), "READY=1");
    // Ready means served: the c2s port answers a stream header with its features.
    let mut client = RawClient::connect(server.c2s).await;
    client.send(STREAM_HEADER).await;
    let features = client.read_until("</stream:features>").await;
    assert!(features.contains("starttls"), "{features}");

    // WATCHDOG_USEC=200000: a keep-alive every 100 ms; ten within two seconds at the least.
    let start = Instant::now();
    let mut keep_alives = 0;
    while keep_alives < 10 {
        assert_eq!(
            receive(&socket, start + Duration::from_secs(2)).trim_end(),
            "WATCHDOG=1"
        );
        keep_alives += 1;
    }

    // A reload is bracketed, so `systemctl reload` returns once it is done.
    server.hangup();
    assert_eq!(next_state(&socket).trim_end(), "RELOADING=1");
    assert_eq!(next_state(&socket).trim_end(), "READY=1");

    assert!(server.terminate().success());
    assert_eq!(next_state(&socket).trim_end(), "STOPPING=1");
}

#[tokio::test]
async fn an_abstract_notify_socket_is_reached() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("jabberwock-test-{}-notify", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
    let mut server =
        TestServer::start_with(TestConfig::default().env("NOTIFY_SOCKET", &format!("@{name}")));
    assert_eq!(next_state(&socket).trim_end(), "READY=1");
    assert!(server.terminate().success());
    assert_eq!(next_state(&socket).trim_end(), "STOPPING=1");
}

/// `systemd-analyze verify` on packaging/jabberwock.service, with ExecStart pointed at the
/// binary under test (the unit names /usr/bin/jabberwock, which verify wants to exist).
#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("packaging")
        .join("jabberwock.service");
    let text = std::fs::read_to_string(&unit).expect("read the unit file");
    assert!(text.contains("\nType=notify\n"), "{text}");
    assert!(text.contains("\nWatchdogSec="), "{text}");
    assert!(
        text.contains("\nExecStart=/usr/bin/jabberwock --config /etc/jabberwock/jabberwock.toml\n"),
        "{text}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("jabberwock.service");
    let binary = jabberwock_tests::server::binary();
    std::fs::write(
        &copy,
        text.replace("/usr/bin/jabberwock", binary.to_str().unwrap()),
    )
    .expect("write the unit copy");
    jabberwock_tests::systemd::analyze_verify(&copy);
}
