//! Replays the seed corpus and every kept finding through the fuzz targets, so a fixed
//! finding stays fixed under `cargo test` (docs/fuzzing.md).

use std::fs;
use std::path::Path;

/// Runs `target` on every file under `fuzz/corpus/NAME/` and `fuzz/regressions/NAME/`;
/// returns how many inputs were run.
fn replay(name: &str, target: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(root.join(dir).join(name)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn stream_xmpp() {
    assert!(replay("stream_xmpp", jabberwock_fuzz::stream_xmpp) > 0);
}

#[test]
fn stream_flash() {
    assert!(replay("stream_flash", jabberwock_fuzz::stream_flash) > 0);
}

#[test]
fn websocket_framing() {
    assert!(replay("websocket_framing", jabberwock_fuzz::websocket_framing) > 0);
}

#[test]
fn jid() {
    assert!(replay("jid", jabberwock_fuzz::jid) > 0);
}

#[test]
fn bosh_body() {
    assert!(replay("bosh_body", jabberwock_fuzz::bosh_body) > 0);
}

#[test]
fn scram() {
    assert!(replay("scram", jabberwock_fuzz::scram) > 0);
}
