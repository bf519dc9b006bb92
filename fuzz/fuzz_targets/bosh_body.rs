//! AFL entry point; the target itself is `jabberwock_fuzz::bosh_body`.
fn main() {
    afl::fuzz!(|data: &[u8]| jabberwock_fuzz::bosh_body(data));
}
