//! AFL entry point; the target itself is `jabberwock_fuzz::stream_flash`.
fn main() {
    afl::fuzz!(|data: &[u8]| jabberwock_fuzz::stream_flash(data));
}
