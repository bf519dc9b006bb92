//! Telling systemd how the service is doing (sd_notify(3)): `READY=1` once every listener
//! is bound, `RELOADING=1`/`READY=1` around a reload, `STOPPING=1` at shutdown, and
//! `WATCHDOG=1` at half the `WatchdogSec=` interval. Without `NOTIFY_SOCKET` in the
//! environment (not started by systemd as `Type=notify`) every call does nothing.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the Unix socket `NOTIFY_SOCKET`
//! names, a path or, with a leading `@`, an abstract-namespace name.

use std::io;
use std::time::Duration;

/// Every listener is bound and the server serves.
pub const READY: &str = "READY=1";
/// A reload (SIGHUP, `jabberwock reload`) started; `READY` follows when it is done.
pub const RELOADING: &str = "RELOADING=1";
/// Shutdown started: systemd waits for the exit instead of thinking the service died.
pub const STOPPING: &str = "STOPPING=1";
/// The watchdog keep-alive.
pub const WATCHDOG: &str = "WATCHDOG=1";

/// Sends `state` to the service manager, if there is one. A failure is logged once per
/// call and otherwise ignored: the server serves whether or not systemd hears it.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket, state) {
        tracing::warn!(socket = %socket.to_string_lossy(), error = %e, state, "cannot notify systemd");
    }
}

#[cfg(unix)]
fn send(socket: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;

    let datagram = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    match bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            datagram.send_to_addr(state.as_bytes(), &addr)?;
        }
        _ => {
            datagram.send_to(state.as_bytes(), socket)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn send(_socket: &std::ffi::OsStr, _state: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no Unix sockets on this system",
    ))
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises, when the watchdog is on and meant for this process (`WATCHDOG_PID` unset or
/// ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec) / 2)
}

/// Sends `WATCHDOG=1` every `interval` for as long as the runtime runs it: a runtime whose
/// worker threads are all stuck stops sending, and systemd restarts the service.
pub async fn keep_watchdog(interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        notify(WATCHDOG);
    }
}
