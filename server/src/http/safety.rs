//! Web safety: tower layers (axum middleware) around every HTTP route, so no endpoint
//! handler has to think about them. In the order a request meets them:
//!
//! 1. [`client_address`]: who the client is. The TCP peer, unless the peer is one of
//!    `http.trusted_proxies`: then `X-Forwarded-For` is read from the right, skipping
//!    trusted proxies, and the first other address is the client. The request's
//!    `ConnectInfo<SocketAddr>` is replaced by it (port 0 when forwarded), so every
//!    handler's logs and per-IP throttles (c2s auth failure delay) see the real client.
//! 2. [`rate_limit`]: a token bucket per client address, `http.max_requests_per_second`
//!    (refilled continuously, bursts up to one second's worth); beyond it, 429.
//! 3. [`origin_and_cors`]: a browser page from another site (`Origin` neither listed in
//!    `http.allowed_origins` nor the server's own) gets 403; an allowed one gets CORS
//!    headers, and its preflight (`OPTIONS` + `Access-Control-Request-Method`) is answered
//!    here. The Flash endpoint keeps its own list (`flash.websocket_origins`).
//! 4. [`body_limit`]: a body larger than `http.max_request_bytes` gets 413, whether it
//!    says so in `Content-Length` or streams (chunked) past the limit — except under the
//!    prefix of a module's routes that limit their bodies themselves (XEP-0363 uploads,
//!    each as large as its slot says).
//!
//! A module's routes ([`crate::modules::HttpRoutes`]) say what their CORS preflight allows
//! (XEP-0363 uploads are PUTs).
//!
//! A refusal is a short plain-text HTTP error and one log line naming the client.
//!
//! The four keys are live: each request is checked against the `[http]` of the config
//! snapshot in force when it arrived (`live.rs`), so a reload's values apply from the next
//! request. The per-address buckets stay across a reload; a lower rate caps what they hold.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::config::Config;
use crate::live::{Live, Snapshot};
use crate::server::Server;
use crate::token_bucket::TokenBucket;

/// An address or network of `http.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// `"10.0.0.1"`, `"10.0.0.0/8"`, `"::1"`, `"fd00::/8"`.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on an IPv6 socket is ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// What the layers need, shared by every listener: what is bound at start, and the
/// [`Policy`] of the config snapshot in force.
struct Safety {
    server: Arc<Server>,
    /// The policy of the last snapshot a request saw; built again when a reload swapped it.
    policy: Snapshot<Policy>,
    /// Exempt from the origin check: it has its own allow-list.
    flash_path: Option<String>,
    limiter: RateLimiter,
    /// The path prefixes of modules' routes, and what they need here.
    modules: Vec<ModuleRoutes>,
}

/// The live keys of `[http]` the layers check, as one config snapshot has them, parsed once.
struct Policy {
    /// The snapshot it was built from.
    from: Arc<Live>,
    allowed_origins: Vec<String>,
    trusted_proxies: Vec<Network>,
    max_request_bytes: usize,
    /// Requests a second per client address; 0: no limit.
    max_requests_per_second: u32,
}

impl Policy {
    fn of(live: Arc<Live>) -> Policy {
        let http = &live.http;
        Policy {
            allowed_origins: http
                .allowed_origins
                .iter()
                .map(|o| o.to_ascii_lowercase())
                .collect(),
            trusted_proxies: http
                .trusted_proxies
                .iter()
                .filter_map(|p| Network::parse(p))
                .collect(),
            max_request_bytes: http.max_request_bytes,
            max_requests_per_second: http.max_requests_per_second,
            from: live,
        }
    }
}

/// What the layers do differently under a module's routes.
struct ModuleRoutes {
    prefix: String,
    own_body_limit: bool,
    cors: (&'static str, &'static str),
}

impl Safety {
    /// The policy of the snapshot in force: the one kept, unless a reload swapped the
    /// snapshot since (one pointer comparison per request).
    fn policy(&self) -> Arc<Policy> {
        let live = self.server.live.get();
        let kept = self.policy.get();
        if Arc::ptr_eq(&kept.from, &live) {
            return kept;
        }
        self.policy.set(Policy::of(live));
        self.policy.get()
    }

    fn module_routes(&self, path: &str) -> Option<&ModuleRoutes> {
        self.modules.iter().find(|m| {
            path.strip_prefix(m.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// The request's client as [`client_address`] found it, and the TCP peer it came from.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr {
    pub client: IpAddr,
    pub peer: SocketAddr,
}

/// Wraps `router` (all its routes and its 404 fallback) in the safety layers.
pub fn apply(router: Router, server: Arc<Server>) -> Router {
    let config: &Config = &server.config;
    let modules = server.modules.http_routes();
    let policy = Snapshot::new(Policy::of(server.live.get()));
    let safety = Arc::new(Safety {
        flash_path: super::flash_proxy::path(config).map(str::to_owned),
        limiter: RateLimiter::default(),
        modules: modules
            .iter()
            .map(|m| ModuleRoutes {
                prefix: m.prefix().to_owned(),
                own_body_limit: m.own_body_limit(),
                cors: m.cors(),
            })
            .collect(),
        policy,
        server: server.clone(),
    });
    // The last layer added is the outermost: client_address runs first. axum's own limit
    // is off: `body_limit` cuts every body that is not a module's at the live limit, and
    // axum's extractors answer a body cut off so with 413 all the same.
    router
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(safety.clone(), body_limit))
        .layer(middleware::from_fn_with_state(
            safety.clone(),
            origin_and_cors,
        ))
        .layer(middleware::from_fn_with_state(safety.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(safety, client_address))
}

fn refuse(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// Layer 1: the client's address (see the module doc).
async fn client_address(
    State(safety): State<Arc<Safety>>,
    mut req: Request,
    next: Next,
) -> Response {
    // One policy for the whole request, whatever a reload does meanwhile.
    let policy = safety.policy();
    req.extensions_mut().insert(policy.clone());
    // Set by the listener (into_make_service_with_connect_info); a connection served
    // without it has no address to check or throttle.
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return next.run(req).await;
    };
    let client = forwarded_client(&policy.trusted_proxies, peer.ip(), req.headers());
    if client != peer.ip() {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, 0)));
    }
    req.extensions_mut().insert(ClientAddr { client, peer });
    next.run(req).await
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy, then the
/// rightmost `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends the
/// address it got the request from, so entries left of an untrusted one may be forged).
fn forwarded_client(trusted: &[Network], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        if !is_trusted(client) {
            break;
        }
        match parse_forwarded_ip(entry.trim()) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, and the forms with a port some proxies write
/// (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    entry.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Layer 2: the per-client rate limit.
async fn rate_limit(
    State(safety): State<Arc<Safety>>,
    Extension(policy): Extension<Arc<Policy>>,
    req: Request,
    next: Next,
) -> Response {
    let rate = policy.max_requests_per_second;
    if let (true, Some(addr)) = (rate > 0, req.extensions().get::<ClientAddr>()) {
        if !safety.limiter.allow(addr.client, rate, Instant::now()) {
            tracing::info!(client = %addr.client, peer = %addr.peer, path = %req.uri().path(), "refused an HTTP request: http.max_requests_per_second exceeded");
            let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    }
    next.run(req).await
}

/// Tracked addresses beyond which idle ones are forgotten (a full bucket is the same as
/// no entry), and the most ever tracked: past it, new addresses go unthrottled rather
/// than let the table grow without bound.
const PRUNE_AT: usize = 4096;
const MAX_TRACKED: usize = 100_000;

/// A token bucket per client address, refilled at the rate in force.
#[derive(Default)]
struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl RateLimiter {
    fn allow(&self, ip: IpAddr, per_second: u32, now: Instant) -> bool {
        let rate = f64::from(per_second);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(&ip) {
            // Refilled to the brim after one second without requests.
            buckets.retain(|_, b| now.duration_since(b.updated()).as_secs_f64() < 1.0);
            if buckets.len() >= MAX_TRACKED {
                return true;
            }
        }
        buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::full(rate, now))
            .take(rate, rate, now)
    }
}

/// Layer 3: the Origin allow-list and CORS.
async fn origin_and_cors(
    State(safety): State<Arc<Safety>>,
    Extension(policy): Extension<Arc<Policy>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        // Not from a browser page (or a same-origin navigation): nothing to check.
        return next.run(req).await;
    };
    if safety.flash_path.as_deref() == Some(req.uri().path()) {
        return next.run(req).await;
    }
    let same_origin = is_same_origin(&origin, req.headers().get(header::HOST));
    // Browsers send visible ASCII here (RFC 6454 §7); anything else is not echoed back.
    let well_formed = origin.to_str().is_ok_and(|o| !o.is_empty());
    let allowed = same_origin
        || (well_formed && policy.allowed_origins.is_empty())
        || origin.to_str().is_ok_and(|o| {
            policy
                .allowed_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o))
        });
    if !allowed {
        let client = req.extensions().get::<ClientAddr>().map(|a| a.client);
        tracing::info!(?client, ?origin, path = %req.uri().path(), "refused an HTTP request: origin not in http.allowed_origins");
        return refuse(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let (methods, allowed_headers) = safety
            .module_routes(req.uri().path())
            .map_or(("GET, POST, OPTIONS", "Content-Type"), |m| m.cors);
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        cors_headers(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(allowed_headers),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return response;
    }
    let mut response = next.run(req).await;
    cors_headers(response.headers_mut(), origin);
    response
}

fn cors_headers(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Whether `Origin` (`scheme://host[:port]`) names the host the request was sent to: a
/// page this server served itself (the chat page) talking back to it.
fn is_same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(|h| h.to_str())) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let strip = |a: &str| -> String {
        let a = a.to_ascii_lowercase();
        a.strip_suffix(default_port).map(str::to_owned).unwrap_or(a)
    };
    strip(authority) == strip(host)
}

/// Layer 4: the body size limit.
async fn body_limit(
    State(safety): State<Arc<Safety>>,
    Extension(policy): Extension<Arc<Policy>>,
    req: Request,
    next: Next,
) -> Response {
    if safety
        .module_routes(req.uri().path())
        .is_some_and(|m| m.own_body_limit)
    {
        return next.run(req).await;
    }
    let max = policy.max_request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        let client = req.extensions().get::<ClientAddr>().map(|a| a.client);
        tracing::info!(?client, length = ?declared, path = %req.uri().path(), "refused an HTTP request: body larger than http.max_request_bytes");
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    // A body without a length (chunked) is cut off at the limit: reading it then fails
    // with a length error, which axum's extractors answer with 413.
    let (parts, body) = req.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, max));
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn networks() {
        let n = |s| Network::parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n("10.0.0.1").contains(ip("10.0.0.1")));
        assert!(!n("10.0.0.1").contains(ip("10.0.0.2")));
        assert!(n("10.0.0.0/8").contains(ip("10.200.1.2")));
        assert!(!n("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(n("0.0.0.0/0").contains(ip("1.2.3.4")));
        assert!(n("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(n("fd00::/8").contains(ip("fd12::1")));
        assert!(!n("fd00::/8").contains(ip("fe80::1")));
        assert!(!n("::1").contains(ip("127.0.0.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "host",
            "1.2.3.4/+8",
        ] {
            assert!(Network::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = [Network::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
            }
            h
        };
        let xff = headers(&["6.6.6.6, 1.2.3.4"]);
        assert_eq!(
            forwarded_client(&trusted, ip("8.8.8.8"), &xff),
            ip("8.8.8.8")
        );
        assert_eq!(
            forwarded_client(&trusted, ip("10.0.0.1"), &xff),
            ip("1.2.3.4")
        );
        // A chain of trusted proxies; the forged entry left of the client is not used.
        let chain = headers(&["6.6.6.6, 1.2.3.4", "10.1.1.1:999"]);
        assert_eq!(
            forwarded_client(&trusted, ip("10.0.0.1"), &chain),
            ip("1.2.3.4")
        );
        assert_eq!(
            forwarded_client(&trusted, ip("10.0.0.1"), &headers(&["garbage"])),
            ip("10.0.0.1")
        );
        assert_eq!(
            forwarded_client(&trusted, ip("10.0.0.1"), &headers(&["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            forwarded_client(&trusted, ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn token_bucket() {
        let limiter = RateLimiter::default();
        let a = "192.0.2.1".parse().unwrap();
        let b = "192.0.2.2".parse().unwrap();
        let t = Instant::now();
        assert!(limiter.allow(a, 2, t) && limiter.allow(a, 2, t));
        assert!(!limiter.allow(a, 2, t));
        assert!(limiter.allow(b, 2, t));
        assert!(limiter.allow(a, 2, t + Duration::from_millis(500)));
        assert!(!limiter.allow(a, 2, t + Duration::from_millis(500)));
        // A lower rate caps what a bucket holds; a higher one refills it faster.
        let later = t + Duration::from_secs(10);
        assert!(limiter.allow(b, 1, later));
        assert!(!limiter.allow(b, 1, later));
        assert!(limiter.allow(b, 10, later + Duration::from_millis(100)));
    }

    #[test]
    fn same_origin() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(is_same_origin(
            &v("http://127.0.0.1:5280"),
            Some(&v("127.0.0.1:5280"))
        ));
        assert!(is_same_origin(
            &v("https://Chat.Example"),
            Some(&v("chat.example:443"))
        ));
        assert!(is_same_origin(
            &v("http://chat.example"),
            Some(&v("chat.example"))
        ));
        assert!(!is_same_origin(
            &v("http://evil.example"),
            Some(&v("chat.example"))
        ));
        assert!(!is_same_origin(
            &v("http://127.0.0.1:5281"),
            Some(&v("127.0.0.1:5280"))
        ));
        assert!(!is_same_origin(&v("null"), Some(&v("chat.example"))));
        assert!(!is_same_origin(&v("http://chat.example"), None));
    }
}
