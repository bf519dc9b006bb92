//! The slot URLs on our HTTP listeners, `/upload/ID/FILENAME` (XEP-0363 §5): PUT writes
//! the file once, GET and HEAD serve it. CORS preflights are answered by the safety
//! layers (`http/safety.rs`) with the methods [`Routes::cors`] names, so browser clients
//! (Converse.js) can PUT and GET from another origin.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt as _;
use jabberwock_storage::{StoreError, UploadCompleted, UploadSlot};
use tokio::io::{AsyncRead, AsyncWriteExt as _, ReadBuf};

use super::files::{is_slot_id, unix_now};
use super::{Uploads, PREFIX};
use crate::modules::HttpRoutes;
use crate::server::Server;

/// A PUT whose client sends nothing for this long is given up (its slot stays open).
const IDLE_BODY: Duration = Duration::from_secs(60);
/// Bytes read from a file per chunk of a GET's body.
const READ_CHUNK: usize = 64 * 1024;

/// The path of slot `id` for `filename` (percent-encoded, RFC 3986 §2.1).
pub fn slot_path(id: &str, filename: &str) -> String {
    format!("{PREFIX}/{id}/{}", percent_encode(filename))
}

/// Everything but RFC 3986's unreserved characters, percent-encoded as UTF-8.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Routes(pub Arc<Uploads>);

struct Http {
    server: Arc<Server>,
    uploads: Arc<Uploads>,
    /// Slots a PUT is writing now: a second PUT to one is refused, not interleaved.
    writing: Mutex<HashSet<String>>,
}

impl HttpRoutes for Routes {
    fn prefix(&self) -> &str {
        PREFIX
    }

    fn router(&self, server: Arc<Server>) -> Router {
        let state = Arc::new(Http {
            server,
            uploads: self.0.clone(),
            writing: Mutex::default(),
        });
        let path = format!("{PREFIX}/{{id}}/{{name}}");
        // GET answers HEAD too (axum sends the headers without the body).
        let methods = axum::routing::put(put_file)
            .get(get_file)
            .options(|| async {
                (
                    StatusCode::NO_CONTENT,
                    [(header::ALLOW, "GET, HEAD, PUT, OPTIONS")],
                )
            });
        Router::new().route(&path, methods).with_state(state)
    }

    /// Each PUT is as large as its slot says, which may pass `http.max_request_bytes`.
    fn own_body_limit(&self) -> bool {
        true
    }

    fn cors(&self) -> (&'static str, &'static str) {
        ("GET, HEAD, PUT, OPTIONS", "Content-Type")
    }

    /// The origins of the slot URLs of every host: the chat page PUTs files there and
    /// shows the pictures shared from there.
    fn page_origins(&self, server: &Server) -> Vec<String> {
        let mut origins: Vec<String> = server
            .hosts()
            .iter()
            .filter_map(|host| super::base_url(&self.0.config.get(), &server.config, host))
            .map(|base| origin_of(&base))
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        }
        None => url.to_owned(),
    }
}

/// Why an HTTP request on a slot URL is refused: the one place each becomes a status.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("no such upload")]
    Unknown,
    #[error("this slot has expired")]
    Expired,
    #[error("this slot was used already")]
    AlreadyUploaded,
    #[error("an upload to this slot is in progress")]
    InProgress,
    #[error("Content-Length is required")]
    NoLength,
    #[error("the body is larger than the slot")]
    TooLarge,
    #[error("the body is not the size of the slot")]
    WrongSize,
    #[error("the content type is not the slot's")]
    WrongType,
    #[error("the upload stalled")]
    Stalled,
    #[error("the upload quota would be exceeded")]
    Quota,
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("file: {0}")]
    File(#[from] std::io::Error),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match &self {
            Refused::Unknown => StatusCode::NOT_FOUND,
            Refused::Expired => StatusCode::FORBIDDEN,
            Refused::AlreadyUploaded | Refused::InProgress => StatusCode::CONFLICT,
            Refused::NoLength => StatusCode::LENGTH_REQUIRED,
            Refused::TooLarge | Refused::Quota => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::WrongSize => StatusCode::BAD_REQUEST,
            Refused::WrongType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::Stalled => StatusCode::REQUEST_TIMEOUT,
            Refused::Storage(_) | Refused::File(_) => {
                tracing::error!(error = %self, "upload failed on our side");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, format!("{self}\n")).into_response()
    }
}

impl Http {
    /// The slot at this URL: its id and filename both as the slot was given.
    async fn slot(&self, id: &str, name: &str) -> Result<UploadSlot, Refused> {
        if !is_slot_id(id) {
            return Err(Refused::Unknown);
        }
        match self.server.store.upload_slot(id).await? {
            Some(slot) if slot.filename == name => Ok(slot),
            _ => Err(Refused::Unknown),
        }
    }
}

/// Slot `id` taken by one PUT until this drops.
struct Writing<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl<'a> Writing<'a> {
    fn claim(set: &'a Mutex<HashSet<String>>, id: &str) -> Option<Writing<'a>> {
        let mut ids = set.lock().unwrap_or_else(|e| e.into_inner());
        ids.insert(id.to_owned()).then(|| Writing {
            set,
            id: id.to_owned(),
        })
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut ids = self.set.lock().unwrap_or_else(|e| e.into_inner());
        ids.remove(&self.id);
    }
}

/// A file removed when this drops, unless kept: what a PUT wrote, if the PUT fails or its
/// client goes away (the request's future is then dropped mid-body).
struct Unfinished(Option<PathBuf>);

impl Unfinished {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The MIME type without parameters, lowercased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

async fn put_file(
    State(http): State<Arc<Http>>,
    UrlPath((id, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let slot = http.slot(&id, &name).await?;
    if slot.completed_at.is_some() {
        return Err(Refused::AlreadyUploaded);
    }
    if unix_now() >= slot.slot_expires_at {
        return Err(Refused::Expired);
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(Refused::NoLength)?;
    let size = slot.size as u64;
    if length > size {
        return Err(Refused::TooLarge);
    }
    if length < size {
        return Err(Refused::WrongSize);
    }
    if let Some(wanted) = &slot.content_type {
        let given = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(essence);
        if given.as_deref() != Some(essence(wanted).as_str()) {
            return Err(Refused::WrongType);
        }
    }
    let _writing = Writing::claim(&http.writing, &slot.id).ok_or(Refused::InProgress)?;
    let files = &http.uploads.files;
    let (Some(partial), Some(complete)) = (files.partial(&slot.id), files.complete(&slot.id))
    else {
        return Err(Refused::Unknown);
    };
    {
        let mut unfinished = Unfinished(Some(partial.clone()));
        write_body(&partial, body, size).await?;
        match tokio::fs::rename(&partial, &complete).await {
            Ok(()) => {}
            // Removed with the slot while the body came (the owner's account was removed).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refused::Unknown),
            Err(e) => return Err(e.into()),
        }
        unfinished.keep();
    }
    // Not served until storage says complete; removed if it never does.
    let mut unfinished = Unfinished(Some(complete.clone()));
    sync_dir(&complete).await?;
    let quota = http.uploads.config.get().quota();
    let completed = match http
        .server
        .store
        .complete_upload(&slot, unix_now(), quota)
        .await
    {
        Ok(completed) => completed,
        // The owner's account was removed while the body came: its slots went with it,
        // and these bytes go too (`unfinished`).
        Err(StoreError::NotFound) => return Err(Refused::Unknown),
        Err(e) => return Err(e.into()),
    };
    match completed {
        UploadCompleted::Completed => {}
        UploadCompleted::QuotaExceeded { used } => {
            tracing::info!(owner = ?slot.owner, used, "upload refused: quota");
            return Err(Refused::Quota);
        }
        UploadCompleted::AlreadyComplete => {
            // Another process completed it: that file is the one.
            unfinished.keep();
            return Err(Refused::AlreadyUploaded);
        }
        UploadCompleted::Unknown => return Err(Refused::Expired),
    }
    unfinished.keep();
    tracing::info!(slot = %slot.id, size, "upload complete");
    Ok(StatusCode::CREATED.into_response())
}

/// Writes exactly `size` bytes of `body` to `path` and syncs them to disk.
async fn write_body(path: &Path, body: Body, size: u64) -> Result<(), Refused> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await?;
    let mut body = body;
    let mut written: u64 = 0;
    loop {
        let frame = match tokio::time::timeout(IDLE_BODY, body.frame()).await {
            Err(_) => return Err(Refused::Stalled),
            Ok(None) => break,
            // The client went away, or sent a broken body: what came is not the file.
            Ok(Some(Err(_))) => return Err(Refused::WrongSize),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > size {
            return Err(Refused::TooLarge);
        }
        file.write_all(&data).await?;
    }
    if written != size {
        return Err(Refused::WrongSize);
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(())
}

/// Makes a rename into `path`'s directory durable.
async fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => tokio::fs::File::open(dir).await?.sync_all().await,
        None => Ok(()),
    }
}

/// Content types a browser may show in place: media and plain text. Anything else (HTML,
/// SVG, scripts) is offered as a download, so an upload can't run as a page of ours.
fn inline(content_type: &str) -> bool {
    let essence = essence(content_type);
    let kind = essence.split('/').next().unwrap_or("");
    (matches!(kind, "image" | "audio" | "video") && essence != "image/svg+xml")
        || essence == "text/plain"
}

async fn get_file(
    State(http): State<Arc<Http>>,
    UrlPath((id, name)): UrlPath<(String, String)>,
) -> Result<Response, Refused> {
    let slot = http.slot(&id, &name).await?;
    if slot.completed_at.is_none() {
        return Err(Refused::Unknown);
    }
    let path = http
        .uploads
        .files
        .complete(&slot.id)
        .ok_or(Refused::Unknown)?;
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refused::Unknown),
        Err(e) => return Err(e.into()),
    };
    let content_type = slot
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline(&content_type) {
            "inline"
        } else {
            "attachment"
        },
        percent_encode(&slot.filename)
    );
    let mut response = Body::from_stream(FileStream {
        file,
        left: slot.size as u64,
        buf: vec![0; READ_CHUNK].into_boxed_slice(),
    })
    .into_response();
    let headers = response.headers_mut();
    let value = |v: String| HeaderValue::from_str(&v).ok();
    if let Some(v) = value(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(slot.size as u64));
    if let Some(v) = value(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Shown in place or not, an upload runs no script and loads nothing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
    );
    Ok(response)
}

/// A file's first `left` bytes as a body, a chunk at a time.
struct FileStream {
    file: tokio::fs::File,
    left: u64,
    buf: Box<[u8]>,
}

impl futures_core::Stream for FileStream {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let mut buf = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.file).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into())))
            }
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len().min(this.left as usize);
                this.left -= n as u64;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(&buf.filled()[..n]))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_dispositions() {
        assert_eq!(
            slot_path("ab", "cat picture ü.jpg"),
            "/upload/ab/cat%20picture%20%C3%BC.jpg"
        );
        assert!(inline("image/png") && inline("Text/Plain; charset=utf-8"));
        assert!(!inline("text/html") && !inline("image/svg+xml") && !inline("application/pdf"));
        assert_eq!(
            origin_of("https://f.example:8443/xmpp"),
            "https://f.example:8443"
        );
        assert_eq!(origin_of("http://localhost:5280"), "http://localhost:5280");
    }
}
