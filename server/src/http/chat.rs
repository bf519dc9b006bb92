//! The chat page (`http.chat_path`, `/chat` by default): Converse.js, logging in to this
//! server over RFC 7395 WebSocket (or BOSH with `?transport=bosh`).
//!
//! The page itself is ours, a small template with the server's domain and endpoint paths
//! filled in; the browser turns the paths into `ws(s)://` / `http(s)://` URLs of the host
//! it loaded the page from, so the page works behind a TLS reverse proxy unchanged.
//! Converse's files come from the npm package `converse.js` installed by the admin (its
//! `dist/` directory is `http.chat_assets`) and are served from here under
//! `<chat_path>/dist/`: never from a CDN.

use std::path::{Component, Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::HttpState;
use crate::config::Config;

/// The route of the page, when it is on.
pub fn path(config: &Config) -> Option<&str> {
    let path = config.http.chat_path.as_str();
    (!path.is_empty()).then_some(path)
}

/// Adds the page (`<chat_path>` and `<chat_path>/`) and its files (`<chat_path>/dist/…`).
pub fn routes(router: Router<HttpState>, config: &Config) -> Router<HttpState> {
    let Some(path) = path(config) else {
        return router;
    };
    router
        .route(path, get(page))
        .route(&format!("{path}/"), get(page))
        .route(&format!("{path}/dist/{{*file}}"), get(asset))
}

/// Where Converse.js reaches this server. `None` when that transport is off.
fn websocket_path(config: &Config) -> Option<String> {
    let path = config.http.websocket_path.as_str();
    (!path.is_empty()).then(|| path.to_owned())
}

fn bosh_path(config: &Config) -> Option<String> {
    super::bosh::path(config).map(str::to_owned)
}

/// `GET <chat_path>`: the page, or how to install Converse.js when it is not there.
async fn page(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let config = &state.server.config;
    let chat_path = path(config).unwrap_or_default();
    if config.http.chat_assets.is_none() {
        return html(StatusCode::SERVICE_UNAVAILABLE, not_installed(chat_path));
    }
    // The virtual host the page logs in to: the one named in the URL, or the first one.
    let requested = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)
        .unwrap_or_default();
    let domain = if state.server.serves(&requested) {
        requested.to_ascii_lowercase()
    } else {
        state.server.default_host()
    };
    let settings = format!(
        "{{\"domain\":{},\"assets\":{},\"websocket\":{},\"bosh\":{}}}",
        json_string(&domain),
        json_string(&format!("{chat_path}/dist/")),
        websocket_path(config).map_or("null".to_owned(), |p| json_string(&p)),
        bosh_path(config).map_or("null".to_owned(), |p| json_string(&p)),
    );
    let page = PAGE
        .replace("{title}", &html_text(&domain))
        .replace("{dist}", &format!("{chat_path}/dist"))
        .replace("{settings}", &settings);
    let mut response = html(StatusCode::OK, page);
    let origins: Vec<String> = state
        .server
        .modules
        .http_routes()
        .iter()
        .flat_map(|routes| routes.page_origins(&state.server))
        .collect();
    if let Ok(csp) = HeaderValue::from_str(&csp(&origins)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// Everything the page loads or connects to is this server's: no CDN, no third-party
/// images or fonts. `'self'` covers same-origin `ws(s)://` (CSP Level 3). Converse needs
/// inline styles (lit), the page's own inline module, and WebAssembly (its OMEMO library).
/// `origins` are where modules' routes are reached under another name (XEP-0363 upload
/// URLs): the page may PUT there and show the pictures and media it finds there.
fn csp(origins: &[String]) -> String {
    let extra: String = origins
        .iter()
        .filter(|o| !o.contains([';', ',', ' ', '\'']))
        .map(|o| format!(" {o}"))
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:{extra}; \
         font-src 'self' data:; media-src 'self' data: blob:{extra}; connect-src 'self'{extra}; \
         worker-src 'self' blob:; object-src 'none'; frame-src 'none'; base-uri 'self'; \
         form-action 'self'"
    )
}

/// The `host` of a `Host` header value (`host`, `host:port`, `[v6]:port`).
fn host_without_port(host: &str) -> String {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| h).to_owned() + "]";
    }
    host.split(':').next().unwrap_or(host).to_owned()
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A JSON string literal that is also safe inside `<script>` (no `<`, `>`, `&`).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || "<>&'\u{2028}\u{2029}".contains(c) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET <chat_path>/dist/<file>`: one file of Converse's `dist/`.
async fn asset(State(state): State<HttpState>, UrlPath(file): UrlPath<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    let Some(root) = &state.server.config.http.chat_assets else {
        return not_found();
    };
    let Some(path) = safe_join(root, &file) else {
        return not_found();
    };
    // Symbolic links inside dist/ must not lead out of it.
    let (Ok(root), Ok(path)) = (
        tokio::fs::canonicalize(root).await,
        tokio::fs::canonicalize(&path).await,
    ) else {
        return not_found();
    };
    if !path.starts_with(&root) {
        return not_found();
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, content_type(&path));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        // A directory, or gone since: neither is a file to serve.
        Err(_) => not_found(),
    }
}

/// `root/file` for a relative path of plain names: no `..`, no absolute path, no hidden
/// file, nothing a file system would read differently.
fn safe_join(root: &Path, file: &str) -> Option<PathBuf> {
    if file.is_empty() || file.contains(['\\', '\0']) {
        return None;
    }
    let mut path = root.to_path_buf();
    for part in file.split('/') {
        if part.is_empty() || part.starts_with('.') {
            return None;
        }
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) => path.push(name),
            _ => return None,
        }
    }
    Some(path)
}

fn content_type(path: &Path) -> HeaderValue {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    HeaderValue::from_static(match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "html" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    })
}

/// Served when `http.chat_assets` is not set.
fn not_installed(chat_path: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Chat page not set up</title></head>\n\
<body><h1>The chat page is not set up yet</h1>\n\
<p>This page runs <a href=\"https://conversejs.org/\">Converse.js</a>, served by this server, never from a CDN. \
To set it up, install its files and point the server at them:</p>\n\
<pre>npm install --prefix /opt/jabberwock-web converse.js@14.0.0\n\n\
# jabberwock.toml\n[http]\nchat_assets = \"/opt/jabberwock-web/node_modules/converse.js/dist\"</pre>\n\
<p>then restart the server and reload {}.</p></body></html>\n",
        html_text(chat_path)
    )
}

/// The page. `{settings}` is a JSON object: the domain, the assets path and the
/// WebSocket/BOSH paths (`null` when off).
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat on {title}</title>
<link rel="stylesheet" href="{dist}/converse.min.css">
<!-- The footer's sponsor logos are images on conversejs.org: nothing is loaded from
     elsewhere (see the Content-Security-Policy header), so they are not shown. -->
<style>converse-footer .sponsors { display: none; }</style>
<script type="module" src="{dist}/converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat page needs JavaScript.</noscript>
<!-- A module too, so it runs after converse.min.js (an ES module) has loaded. -->
<script type="module">
(function () {
  var server = {settings};
  var transport = new URLSearchParams(location.search).get("transport");
  if (transport !== "bosh" && transport !== "websocket") {
    transport = server.websocket ? "websocket" : "bosh";
  }
  var settings = {
    assets_path: server.assets,
    view_mode: "fullscreen",
    i18n: "en",
    default_domain: server.domain,
    domain_placeholder: server.domain,
    discover_connection_methods: false,
    allow_registration: false,
    auto_reconnect: true,
    play_sounds: false,
    show_client_info: false,
  };
  // Same host, port and security as this page: wss:// behind https://.
  if (transport === "websocket" && server.websocket) {
    var ws = new URL(server.websocket, location.href);
    ws.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    settings.websocket_url = ws.href;
  } else if (server.bosh) {
    settings.bosh_service_url = new URL(server.bosh, location.href).href;
  }
  converse.initialize(settings);
})();
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_origins_join_the_policy() {
        assert!(csp(&[]).contains("connect-src 'self';"));
        let policy = csp(&["http://localhost:5280".into(), "x; script-src *".into()]);
        assert!(
            policy.contains("connect-src 'self' http://localhost:5280;"),
            "{policy}"
        );
        assert!(policy.contains("img-src 'self' data: blob: http://localhost:5280;"));
        assert!(!policy.contains("script-src *"), "{policy}");
    }

    #[test]
    fn joins_only_plain_relative_paths() {
        let root = Path::new("/srv/dist");
        assert_eq!(
            safe_join(root, "converse.min.js"),
            Some(PathBuf::from("/srv/dist/converse.min.js"))
        );
        assert_eq!(
            safe_join(root, "webfonts/fa.woff2"),
            Some(PathBuf::from("/srv/dist/webfonts/fa.woff2"))
        );
        for bad in [
            "",
            "../secret",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            ".hidden",
            "a\\b",
            "a\0b",
            "./a",
        ] {
            assert_eq!(safe_join(root, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn json_strings_are_script_safe() {
        assert_eq!(json_string("localhost"), "\"localhost\"");
        assert_eq!(
            json_string("</script>\"&'"),
            "\"\\u003c/script\\u003e\\\"\\u0026\\u0027\""
        );
    }

    #[test]
    fn host_header_without_port() {
        assert_eq!(host_without_port("example.com:5280"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:5280"), "[::1]");
    }
}
