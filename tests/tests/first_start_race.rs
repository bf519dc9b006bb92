//! Two processes creating a fresh SQLite database at once (e.g. `jabberwock user add` run
//! while the server's first start is migrating) must both succeed: the store takes a lock
//! around creating and migrating the file.

use std::process::{Command, Stdio};

use jabberwock_tests::server::binary;
use jabberwock_tests::TestConfig;

#[test]
fn two_processes_migrating_a_fresh_database_both_succeed() {
    // Bounded: a race that lost once in these rounds is the bug.
    for round in 0..12 {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("jabberwock.toml");
        std::fs::write(
            &config,
            TestConfig::default().render(&dir.path().join("data")),
        )
        .expect("write config");
        let spawn = || {
            Command::new(binary())
                .arg("--config")
                .arg(&config)
                .args(["user", "list"])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn jabberwock")
        };
        let (first, second) = (spawn(), spawn());
        for child in [first, second] {
            let out = child.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
