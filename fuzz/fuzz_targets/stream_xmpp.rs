//! AFL entry point; the target itself is `jabberwock_fuzz::stream_xmpp`.
fn main() {
    afl::fuzz!(|data: &[u8]| jabberwock_fuzz::stream_xmpp(data));
}
