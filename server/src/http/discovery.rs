//! XEP-0156 (Discovering Alternative XMPP Connection Methods), the HTTP way:
//! `GET /.well-known/host-meta` (XRD, RFC 6415) and `/.well-known/host-meta.json` (JRD)
//! list the WebSocket (`urn:xmpp:alt-connections:websocket`) and BOSH
//! (`urn:xmpp:alt-connections:xbosh`) endpoints that are on.
//!
//! The URLs are built on `http.public_url` when set (the address behind a reverse proxy),
//! otherwise on the request's `Host` and the connection's scheme (https/wss on a TLS
//! connection).

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::conn::TlsConnection;
use super::HttpState;
use crate::config::Config;

pub const HOST_META: &str = "/.well-known/host-meta";
pub const HOST_META_JSON: &str = "/.well-known/host-meta.json";

const REL_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";
const REL_BOSH: &str = "urn:xmpp:alt-connections:xbosh";

/// Whether there is anything to discover.
pub fn enabled(config: &Config) -> bool {
    !links(config, "http://x").is_empty()
}

/// `(rel, href)` for every transport that is on, on the base URL `http(s)://host[:port]`.
fn links(config: &Config, http_base: &str) -> Vec<(&'static str, String)> {
    let mut links = Vec::new();
    if let Some(path) = super::xmpp_websocket::path(config) {
        let ws_base = match http_base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", http_base.trim_start_matches("http://")),
        };
        links.push((REL_WEBSOCKET, format!("{ws_base}{path}")));
    }
    if let Some(path) = super::bosh::path(config) {
        links.push((REL_BOSH, format!("{http_base}{path}")));
    }
    links
}

/// `http(s)://host[:port]` without a trailing slash.
fn base_url(config: &Config, headers: &HeaderMap, tls: bool) -> String {
    let public = config.http.public_url.trim_end_matches('/');
    if !public.is_empty() {
        // Written as ws(s):// is fine too: the links are derived per transport.
        return public
            .replacen("wss://", "https://", 1)
            .replacen("ws://", "http://", 1);
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_host(h))
        .unwrap_or("localhost");
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A `Host` value we are willing to echo: a name or address and an optional port.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
}

/// `GET /.well-known/host-meta`: XRD.
pub async fn host_meta(
    State(state): State<HttpState>,
    tls: Option<Extension<TlsConnection>>,
    headers: HeaderMap,
) -> Response {
    let config = &state.server.config;
    let base = base_url(config, &headers, tls.is_some());
    let mut xml = String::from(
        "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n",
    );
    for (rel, href) in links(config, &base) {
        xml.push_str(&format!(
            "  <Link rel=\"{rel}\" href=\"{}\"/>\n",
            escape_xml(&href)
        ));
    }
    xml.push_str("</XRD>\n");
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/xrd+xml"),
        )],
        xml,
    )
        .into_response()
}

/// `GET /.well-known/host-meta.json`: JRD.
pub async fn host_meta_json(
    State(state): State<HttpState>,
    tls: Option<Extension<TlsConnection>>,
    headers: HeaderMap,
) -> Response {
    let config = &state.server.config;
    let base = base_url(config, &headers, tls.is_some());
    let links: Vec<String> = links(config, &base)
        .into_iter()
        .map(|(rel, href)| format!("{{\"rel\":\"{rel}\",\"href\":\"{}\"}}", escape_json(&href)))
        .collect();
    let json = format!("{{\"links\":[{}]}}\n", links.join(","));
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response()
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let mut config = Config::default();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("chat.example.com:5281"));
        assert_eq!(
            base_url(&config, &headers, true),
            "https://chat.example.com:5281"
        );
        assert_eq!(
            base_url(&config, &headers, false),
            "http://chat.example.com:5281"
        );
        headers.insert(HOST, HeaderValue::from_static("evil\"host"));
        assert_eq!(base_url(&config, &headers, false), "http://localhost");
        config.http.public_url = "https://example.org/".into();
        assert_eq!(base_url(&config, &headers, false), "https://example.org");
        let links = links(&config, "https://example.org");
        assert!(links.contains(&(REL_WEBSOCKET, "wss://example.org/xmpp-websocket".into())));
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_xml("a&\"<"), "a&amp;&quot;&lt;");
        assert_eq!(escape_json("a\"\\\n"), "a\\\"\\\\\\u000a");
    }
}
