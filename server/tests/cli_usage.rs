//! The command line as an admin meets it: help, usage mistakes (exit code 2, naming what is
//! wrong). Lives in the server package so that `cargo test --workspace` builds the
//! `jabberwock` binary before the end-to-end tests in `tests/` run it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs the binary with `args` in `cwd`, stdin closed, and collects its output.
fn jabberwock(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jabberwock"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run jabberwock")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_exits_0_and_lists_the_user_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = jabberwock(&["--help"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("user"),
        "--help does not mention `user`: {help}"
    );
    assert!(
        help.contains("--config"),
        "--help does not mention --config: {help}"
    );
    // Printing help starts nothing and creates nothing.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unknown_flag_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = jabberwock(&["--frobnicate"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--frobnicate"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn invalid_jid_argument_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = jabberwock(&["user", "add", "not-a-jid@@"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("not-a-jid@@"), "{message}");
    assert!(message.contains("JID"), "{message}");
    // A usage mistake must not create a database as a side effect.
    assert!(
        !dir.path().join("data").exists(),
        "`user add` with an invalid JID created {}",
        dir.path().join("data").display()
    );
}

#[test]
fn user_subcommand_without_jid_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = jabberwock(&["user", "add"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("<JID>"), "{}", stderr(&out));
}

#[test]
fn missing_config_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = jabberwock(&["--config", "/nonexistent.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("/nonexistent.toml"), "{message}");
    assert!(message.contains("cannot read"), "{message}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
