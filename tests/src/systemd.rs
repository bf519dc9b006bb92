//! systemd's own checks of a unit file, without systemd running.

use std::path::Path;

/// `systemd-analyze verify` on `unit`; panics when it fails or warns about the unit (it
/// exits 0 on some mistakes and only says so). Its `ExecStart=` binary must exist.
pub fn analyze_verify(unit: &Path) {
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze (Debian package systemd) is needed: tests/run installs it");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    let name = unit
        .file_name()
        .expect("a unit file name")
        .to_string_lossy();
    assert!(!stderr.contains(&*name), "verify complained:\n{stderr}");
}
