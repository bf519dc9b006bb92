//! AFL entry point; the target itself is `jabberwock_fuzz::jid`.
fn main() {
    afl::fuzz!(|data: &[u8]| jabberwock_fuzz::jid(data));
}
