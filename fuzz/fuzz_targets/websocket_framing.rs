//! AFL entry point; the target itself is `jabberwock_fuzz::websocket_framing`.
fn main() {
    afl::fuzz!(|data: &[u8]| jabberwock_fuzz::websocket_framing(data));
}
