//! Helpers for the XEP-0363 tests: the server with `[modules.upload]` on, a slot asked for
//! over a raw stream, and HTTP requests with hyper's client (one connection each).

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::server::TestConfig;
use crate::{RawClient, WAIT};

/// The upload service's domain on `localhost`.
pub const SERVICE: &str = "upload.localhost";

/// The default test config with the upload module on and these lines in its table.
pub fn config(lines: &[&str]) -> TestConfig {
    lines.iter().fold(
        TestConfig::default().section("modules.upload", "enabled = true"),
        |config, line| config.section("modules.upload", line),
    )
}

/// An HTTP answer: status, headers (names lowercase), body bytes.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `method path` on a fresh connection to `addr` with these headers and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let run = async {
        let tcp = TcpStream::connect(addr).await.expect("connect to HTTP");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        let resp = sender.send_request(req).await.expect("HTTP response");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("no HTTP answer to {method} {path} within {WAIT:?}"))
}

/// PUTs `body` to `path` with its length and `content_type`.
pub async fn put(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let length = body.len().to_string();
    let headers = [("content-type", content_type), ("content-length", &length)];
    http(addr, "PUT", path, &headers, body).await
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
