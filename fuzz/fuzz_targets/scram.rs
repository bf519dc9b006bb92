//! AFL entry point; the target itself is `jabberwock_fuzz::scram`.
fn main() {
    afl::fuzz!(|data: &[u8]| jabberwock_fuzz::scram(data));
}
