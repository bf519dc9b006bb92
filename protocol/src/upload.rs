//! XEP-0363 HTTP File Upload: a client asks the upload service for a slot (§4), gets a PUT
//! URL and a GET URL (§5), or an error (§6) such as `file-too-large`.

use crate::forms::{DataForm, Field, FormType};
use crate::ns;
use crate::xml::Element;

/// §4: `<request filename='…' size='…' content-type='…'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    /// The file's name, as the client gave it (not a path: see [`SlotRequest::parse`]).
    pub filename: String,
    /// Bytes the client will PUT.
    pub size: u64,
    /// The MIME type the client will declare in the PUT, if it said.
    pub content_type: Option<String>,
}

/// Why a `<request/>` is not one (§4: `bad-request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the request has no filename")]
    /// `filename` is missing or empty.
    MissingFilename,
    #[error("the filename must be a name, not a path")]
    /// `filename` holds a path separator or a control character, or is `.`/`..`.
    BadFilename,
    #[error("the size must be a whole number of bytes")]
    /// `size` is missing or not a non-negative integer.
    BadSize,
    #[error("the content type is not a MIME type")]
    /// `content-type` is not `type/subtype` of visible ASCII.
    BadContentType,
}

impl SlotRequest {
    /// Reads a `<request/>` (its name and namespace already matched).
    pub fn parse(request: &Element) -> Result<SlotRequest, RequestError> {
        let filename = request
            .attr("filename")
            .filter(|f| !f.is_empty())
            .ok_or(RequestError::MissingFilename)?;
        // The name ends up in a URL path segment and a Content-Disposition header.
        let bad = |c: char| c == '/' || c == '\\' || c.is_control();
        if filename.chars().any(bad) || filename == "." || filename == ".." {
            return Err(RequestError::BadFilename);
        }
        let size = request
            .attr("size")
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(RequestError::BadSize)?;
        let content_type = match request.attr("content-type") {
            None | Some("") => None,
            Some(t) if is_mime_type(t) => Some(t.to_owned()),
            Some(_) => return Err(RequestError::BadContentType),
        };
        Ok(SlotRequest {
            filename: filename.to_owned(),
            size,
            content_type,
        })
    }

    /// The request as a client sends it.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("request", ns::HTTP_UPLOAD)
            .with_attr("filename", self.filename.as_str())
            .with_attr("size", self.size.to_string());
        if let Some(t) = &self.content_type {
            el.set_attr("content-type", t.as_str());
        }
        el
    }
}

/// `type/subtype` (with optional parameters) of visible ASCII, as an HTTP header carries it.
fn is_mime_type(text: &str) -> bool {
    let visible = text.bytes().all(|b| (0x20..0x7f).contains(&b));
    let essence = text.split(';').next().unwrap_or("").trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    visible
        && essence
            .split_once('/')
            .is_some_and(|(a, b)| token(a) && token(b))
}

/// §5: the slot: where to PUT (with the headers to send along) and where the file will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The PUT URL.
    pub put: String,
    /// §5: headers the client must send with the PUT (`Authorization`, `Cookie`,
    /// `Expires` are the ones allowed).
    pub put_headers: Vec<(String, String)>,
    /// The GET URL, to share.
    pub get: String,
}

impl Slot {
    /// `<slot><put url='…'><header …/></put><get url='…'/></slot>`.
    pub fn to_element(&self) -> Element {
        let mut put = Element::new("put", ns::HTTP_UPLOAD).with_attr("url", self.put.as_str());
        for (name, value) in &self.put_headers {
            put.push_child(
                Element::new("header", ns::HTTP_UPLOAD)
                    .with_attr("name", name.as_str())
                    .with_text(value.as_str()),
            );
        }
        Element::new("slot", ns::HTTP_UPLOAD)
            .with_child(put)
            .with_child(Element::new("get", ns::HTTP_UPLOAD).with_attr("url", self.get.as_str()))
    }
}

/// §6.1: the application condition beside `not-acceptable` for a file over the limit.
pub fn file_too_large(max: u64) -> Element {
    Element::new("file-too-large", ns::HTTP_UPLOAD)
        .with_child(Element::new("max-file-size", ns::HTTP_UPLOAD).with_text(max.to_string()))
}

/// §3: the disco#info extension form announcing the largest file the service takes.
pub fn max_file_size_form(max: u64) -> Element {
    DataForm::new(FormType::Result)
        .with_form_type(ns::HTTP_UPLOAD)
        .with_field(Field::new("max-file-size").with_value(max.to_string()))
        .to_element()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attrs: &[(&str, &str)]) -> Element {
        let mut el = Element::new("request", ns::HTTP_UPLOAD);
        for (k, v) in attrs {
            el.set_attr(k, *v);
        }
        el
    }

    #[test]
    fn requests() {
        let ok = SlotRequest::parse(&request(&[
            ("filename", "cat picture.jpg"),
            ("size", "23456"),
            ("content-type", "image/jpeg"),
        ]))
        .unwrap();
        assert_eq!(ok.filename, "cat picture.jpg");
        assert_eq!(ok.size, 23456);
        assert_eq!(ok.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(SlotRequest::parse(&ok.to_element()).unwrap(), ok);
        let bare = SlotRequest::parse(&request(&[("filename", "a"), ("size", "0")])).unwrap();
        assert_eq!(bare.content_type, None);
        let cases: &[(&[(&str, &str)], RequestError)] = &[
            (&[("size", "1")], RequestError::MissingFilename),
            (
                &[("filename", ""), ("size", "1")],
                RequestError::MissingFilename,
            ),
            (
                &[("filename", "../x"), ("size", "1")],
                RequestError::BadFilename,
            ),
            (
                &[("filename", ".."), ("size", "1")],
                RequestError::BadFilename,
            ),
            (
                &[("filename", "a\nb"), ("size", "1")],
                RequestError::BadFilename,
            ),
            (&[("filename", "a")], RequestError::BadSize),
            (&[("filename", "a"), ("size", "-1")], RequestError::BadSize),
            (&[("filename", "a"), ("size", "+1")], RequestError::BadSize),
            (
                &[("filename", "a"), ("size", "99999999999999999999999")],
                RequestError::BadSize,
            ),
            (
                &[("filename", "a"), ("size", "1"), ("content-type", "text")],
                RequestError::BadContentType,
            ),
            (
                &[
                    ("filename", "a"),
                    ("size", "1"),
                    ("content-type", "a/b\r\nX: y"),
                ],
                RequestError::BadContentType,
            ),
        ];
        for (attrs, expected) in cases {
            assert_eq!(
                SlotRequest::parse(&request(attrs)).as_ref(),
                Err(expected),
                "{attrs:?}"
            );
        }
        assert!(is_mime_type("text/plain; charset=utf-8"));
    }

    #[test]
    fn slot_and_errors() {
        let slot = Slot {
            put: "https://u.example/p".into(),
            put_headers: vec![("Authorization".into(), "Bearer x".into())],
            get: "https://u.example/g".into(),
        }
        .to_element();
        let put = slot.get_child("put", ns::HTTP_UPLOAD).unwrap();
        assert_eq!(put.attr("url"), Some("https://u.example/p"));
        let header = put.get_child("header", ns::HTTP_UPLOAD).unwrap();
        assert_eq!(
            (header.attr("name"), header.text().as_str()),
            (Some("Authorization"), "Bearer x")
        );
        let get = slot.get_child("get", ns::HTTP_UPLOAD).unwrap();
        assert_eq!(get.attr("url"), Some("https://u.example/g"));
        let too_large = file_too_large(1024);
        let max = too_large
            .get_child("max-file-size", ns::HTTP_UPLOAD)
            .unwrap();
        assert_eq!(max.text(), "1024");
        let form = DataForm::parse(&max_file_size_form(5)).unwrap();
        assert_eq!(form.form_type_field(), Some(ns::HTTP_UPLOAD));
        assert_eq!(
            form.field("max-file-size").and_then(Field::value),
            Some("5")
        );
    }
}
