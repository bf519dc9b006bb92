//! Helpers for the XEP-0363 tests: the server with `[modules.upload]` on, a slot asked for
//! over a raw stream, a PUT.

use std::net::SocketAddr;

use crate::http::{request, Reply};
use crate::server::TestConfig;
use crate::RawClient;

/// The upload service's domain on `localhost`.
pub const SERVICE: &str = "upload.localhost";

/// The default test config with the upload module on and these lines in its table.
pub fn config(lines: &[&str]) -> TestConfig {
    lines.iter().fold(
        TestConfig::default().section("modules.upload", "enabled = true"),
        |config, line| config.section("modules.upload", line),
    )
}

/// PUTs `body` to `path` with its length and `content_type`.
pub async fn put(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let length = body.len().to_string();
    let headers = [("content-type", content_type), ("content-length", &length)];
    request(addr, "PUT", path, &headers, body).await
}

/// Asks the service for a slot over `client`'s stream; returns the answer.
pub async fn request_slot(
    client: &mut RawClient,
    id: &str,
    filename: &str,
    size: usize,
    content_type: &str,
) -> String {
    crate::muc::iq(
        client,
        id,
        "get",
        SERVICE,
        &format!(
            "<request xmlns='urn:xmpp:http:upload:0' filename='{filename}' size='{size}' \
             content-type='{content_type}'/>"
        ),
    )
    .await
}

/// The path (and query) of the PUT URL in a slot answer, to send to whichever address the
/// HTTP listener has now.
pub fn put_path(slot: &str) -> String {
    let start = slot
        .find("<put")
        .unwrap_or_else(|| panic!("no slot in {slot}"));
    let url = crate::bosh::attr(&slot[start..], "url").expect("put url");
    path_of(&url)
}

/// `/upload/…` of `http://host:port/upload/…`.
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/')
        .map_or("/".to_owned(), |i| rest[i..].to_owned())
}

/// `len` bytes that differ from one test file to the next (`seed`), not all text.
pub fn file_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            // xorshift32
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
