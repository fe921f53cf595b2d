//! `multipart/form-data` bodies: parts read in order up to the token part, the rest replayed.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use memchr::memmem;

use super::limit::read_error;
use super::replay::ReplayBody;
use crate::guard::config::BodyLimit;
use crate::guard::rejection::Rejection;

/// One step of reading a multipart body.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    NeedMore,
    Found(String),
    /// The closing delimiter came and no part was the token.
    End,
    Malformed(&'static str),
}

/// Reads multipart parts in order, remembering where it stopped.
struct MultipartScanner {
    /// `--boundary`
    dash_boundary: memmem::Finder<'static>,
    /// `\r\n--boundary`
    delimiter: memmem::Finder<'static>,
    field: Vec<u8>,
    phase: Phase,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Looking for the first boundary; `scanned` is how far it was sought.
    Preamble { scanned: usize },
    /// At the start of a part's headers; `scanned` is how far their end
    /// was sought.
    Headers { at: usize, scanned: usize },
    /// Inside a part's body; `scanned` is how far the delimiter was sought.
    Body {
        start: usize,
        scanned: usize,
        is_token: bool,
    },
}

const MAX_PART_HEADERS: usize = 16 * 1024;

/// The blank line that ends a part's headers.
static HEADERS_END: std::sync::LazyLock<memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));

impl MultipartScanner {
    fn new(boundary: &str, field: &str) -> MultipartScanner {
        // The searchers are built once per body, not once per step.
        let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
        let delimiter = [b"\r\n".as_slice(), &dash_boundary].concat();
        MultipartScanner {
            dash_boundary: memmem::Finder::new(&dash_boundary).into_owned(),
            delimiter: memmem::Finder::new(&delimiter).into_owned(),
            field: field.as_bytes().to_vec(),
            phase: Phase::Preamble { scanned: 0 },
        }
    }

    /// Advances over `buf` (everything read so far).
    fn step(&mut self, buf: &[u8]) -> Step {
        loop {
            match self.phase {
                Phase::Preamble { scanned } => {
                    // Search again only where a boundary can newly appear.
                    let from = scanned.min(buf.len());
                    let Some(i) = self.dash_boundary.find(&buf[from..]).map(|i| from + i) else {
                        let keep = self.dash_boundary.needle().len() + 1;
                        self.phase = Phase::Preamble {
                            scanned: buf.len().saturating_sub(keep),
                        };
                        return Step::NeedMore;
                    };
                    if i != 0 && (i < 2 || &buf[i - 2..i] != b"\r\n") {
                        return Step::Malformed("the body does not start with its boundary");
                    }
                    match self.after_delimiter(buf, i + self.dash_boundary.needle().len()) {
                        Ok(Some(at)) => self.phase = Phase::Headers { at, scanned: at },
                        Ok(None) => return Step::NeedMore,
                        Err(step) => return step,
                    }
                }
                Phase::Headers { at, scanned } => {
                    if buf.len() < at + 2 {
                        return Step::NeedMore;
                    }
                    // A part without headers (RFC 2046): its content starts
                    // right after the boundary line.
                    let (headers, start) = if &buf[at..at + 2] == b"\r\n" {
                        (&buf[at..at], at + 2)
                    } else {
                        let from = scanned.max(at).min(buf.len());
                        let Some(end) = HEADERS_END.find(&buf[from..]).map(|i| from + i) else {
                            // (+3: the blank line that ends a block of
                            // exactly the limit may be partly read.)
                            if buf.len() - at > MAX_PART_HEADERS + 3 {
                                return Step::Malformed("a part's headers are too long");
                            }
                            self.phase = Phase::Headers {
                                at,
                                scanned: buf.len().saturating_sub(3),
                            };
                            return Step::NeedMore;
                        };
                        if end - at > MAX_PART_HEADERS {
                            return Step::Malformed("a part's headers are too long");
                        }
                        (&buf[at..end], end + 4)
                    };
                    let is_token = part_name(headers).is_some_and(|name| name == self.field);
                    self.phase = Phase::Body {
                        start,
                        scanned: start,
                        is_token,
                    };
                }
                Phase::Body {
                    start,
                    scanned,
                    is_token,
                } => {
                    // A delimiter may begin in the middle of the last search
                    // window: search again from just before its end.
                    let from = scanned.min(buf.len());
                    let Some(i) = self.delimiter.find(&buf[from..]) else {
                        let keep = self.delimiter.needle().len() - 1;
                        self.phase = Phase::Body {
                            start,
                            scanned: buf.len().saturating_sub(keep).max(start),
                            is_token,
                        };
                        return Step::NeedMore;
                    };
                    let end = from + i;
                    if is_token {
                        return match std::str::from_utf8(&buf[start..end]) {
                            Ok(value) => Step::Found(value.trim().to_owned()),
                            Err(_) => Step::Malformed("the token part is not UTF-8"),
                        };
                    }
                    match self.after_delimiter(buf, end + self.delimiter.needle().len()) {
                        Ok(Some(at)) => self.phase = Phase::Headers { at, scanned: at },
                        Ok(None) => {
                            // Come back to this delimiter when more is read.
                            self.phase = Phase::Body {
                                start,
                                scanned: end,
                                is_token,
                            };
                            return Step::NeedMore;
                        }
                        Err(step) => return step,
                    }
                }
            }
        }
    }

    /// After a boundary: `--` closes the body, else (optional white space
    /// then) CRLF opens the next part, whose headers start at the returned
    /// position. `Ok(None)`: not enough bytes yet.
    fn after_delimiter(&self, buf: &[u8], mut i: usize) -> Result<Option<usize>, Step> {
        if buf.len() < i + 2 {
            return Ok(None);
        }
        if &buf[i..i + 2] == b"--" {
            return Err(Step::End);
        }
        while i < buf.len() && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        if buf.len() < i + 2 {
            return Ok(None);
        }
        if &buf[i..i + 2] != b"\r\n" {
            return Err(Step::Malformed(
                "a boundary is not followed by a line break",
            ));
        }
        Ok(Some(i + 2))
    }
}

/// The `name` of a part, from its Content-Disposition header.
fn part_name(headers: &[u8]) -> Option<&[u8]> {
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-disposition")
        {
            continue;
        }
        return disposition_param(&line[colon + 1..], b"name");
    }
    None
}

/// The value of parameter `wanted` in a Content-Disposition value
/// (`form-data; name="a"; filename="x; y"`): parameters split at `;` outside
/// quoted strings only, so a `;` or `name=` inside a file name is no
/// parameter. A quoted value comes back without its quotes (escapes kept).
fn disposition_param<'a>(value: &'a [u8], wanted: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    // Skip the disposition type.
    while i < value.len() && value[i] != b';' {
        if value[i] == b'"' {
            return None;
        }
        i += 1;
    }
    while i < value.len() {
        i += 1; // the ';'
        let name_start = i;
        while i < value.len() && value[i] != b'=' && value[i] != b';' {
            i += 1;
        }
        let name = value[name_start..i].trim_ascii();
        if i >= value.len() || value[i] == b';' {
            continue;
        }
        i += 1; // the '='
        while i < value.len() && (value[i] == b' ' || value[i] == b'\t') {
            i += 1;
        }
        let param = if value.get(i) == Some(&b'"') {
            let start = i + 1;
            i = start;
            while i < value.len() && value[i] != b'"' {
                i += if value[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(value.len());
            i = end + 1;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            &value[start..end]
        } else {
            let start = i;
            while i < value.len() && value[i] != b';' {
                i += 1;
            }
            value[start..i].trim_ascii()
        };
        if name.eq_ignore_ascii_case(wanted) {
            return Some(param);
        }
    }
    None
}

/// Runs the multipart reader over `body` delivered in pieces of `chunk`
/// bytes: `Ok(Some(token))` when found, `Ok(None)` when the body closes (or
/// ends) without it, `Err` for a malformed body. For fuzzing and benches.
#[doc(hidden)]
pub fn scan_multipart(
    body: &[u8],
    boundary: &str,
    field: &str,
    chunk: usize,
) -> Result<Option<String>, &'static str> {
    let mut scanner = MultipartScanner::new(boundary, field);
    let chunk = chunk.max(1);
    let mut read = 0;
    loop {
        match scanner.step(&body[..read]) {
            Step::Found(token) => return Ok(Some(token)),
            Step::End => return Ok(None),
            Step::Malformed(reason) => return Err(reason),
            Step::NeedMore if read == body.len() => return Ok(None),
            Step::NeedMore => read = (read + chunk).min(body.len()),
        }
    }
}

/// How far the guard reads a multipart body looking for its token part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrefixLimits {
    /// The route's body limit (axum's `DefaultBodyLimit`), `None` when
    /// disabled: a body longer than this is refused 413 as the handler's
    /// own extractor would refuse it.
    pub(crate) route: Option<usize>,
    /// The most bytes buffered before the token part, and what it is.
    pub(crate) buffer: usize,
    pub(crate) buffer_is: PrefixCap,
}

/// What bounds the bytes buffered before the token part.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PrefixCap {
    /// `with_body_limit`: beyond it, 413 naming the limit.
    BodyLimit,
    /// `with_multipart_prefix_limit`, or the guard's ceiling: beyond it,
    /// 400 saying to put the token first.
    Prefix,
}

/// Reads parts until the token part; the bytes read are replayed in front
/// of the rest of the body, which is handed on as it comes (the handler's
/// extractor applies the route's limit to the whole, replay included).
/// A body that ends without a token part comes back whole, with no token.
pub(crate) async fn read_multipart_prefix(
    mut body: Body,
    boundary: &str,
    field: &str,
    limits: PrefixLimits,
) -> Result<(Option<Bytes>, Body), Rejection> {
    let mut scanner = MultipartScanner::new(boundary, field);
    let mut buf = BytesMut::new();
    loop {
        match scanner.step(&buf) {
            Step::Found(token) => {
                let replay = ReplayBody::new(buf.freeze(), body);
                return Ok((Some(Bytes::from(token)), Body::new(replay)));
            }
            Step::End => {
                let replay = ReplayBody::new(buf.freeze(), body);
                return Ok((None, Body::new(replay)));
            }
            Step::Malformed(reason) => return Err(Rejection::BadMultipart { reason }),
            Step::NeedMore => {}
        }
        if limits.route.is_some_and(|route| buf.len() > route) {
            return Err(Rejection::PayloadTooLarge { limit: None });
        }
        if buf.len() > limits.buffer {
            return Err(match limits.buffer_is {
                PrefixCap::BodyLimit => Rejection::PayloadTooLarge {
                    limit: Some(limits.buffer),
                },
                PrefixCap::Prefix => Rejection::TokenNotFirst {
                    limit: limits.buffer,
                },
            });
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(read_error(&e, BodyLimit::Axum)),
            None => {
                return Err(Rejection::BadMultipart {
                    reason: "the body ended before the concurrency token part was complete",
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(body: &[u8], chunk: usize) -> Step {
        let mut s = MultipartScanner::new("XyZ", "t");
        let mut buf = Vec::new();
        for piece in body.chunks(chunk) {
            buf.extend_from_slice(piece);
            match s.step(&buf) {
                Step::NeedMore => {}
                other => return other,
            }
        }
        Step::NeedMore
    }

    #[test]
    fn disposition_parameters_respect_quotes() {
        let p = |v: &str| {
            disposition_param(v.as_bytes(), b"name")
                .map(|n| String::from_utf8_lossy(n).into_owned())
        };
        assert_eq!(p(r#" form-data; name="t""#).as_deref(), Some("t"));
        assert_eq!(
            p(r#" form-data; filename="a; name=b"; name="t""#).as_deref(),
            Some("t")
        );
        assert_eq!(
            p(r#" form-data; filename="x; name=t; y"; name="file""#).as_deref(),
            Some("file")
        );
        assert_eq!(p(" form-data; name=t ; x=1").as_deref(), Some("t"));
        assert_eq!(p(r#" form-data; filename="unclosed"#), None);
        assert_eq!(p(" form-data"), None);
    }

    #[test]
    fn parts_without_headers_and_long_headers() {
        // A part with no headers, then the close delimiter: an epilogue
        // that looks like a token part is not read.
        let body = "--b\r\n\r\nv\r\n--b--\r\n--b\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nlate\r\n--b--";
        for chunk in [1, 3, body.len()] {
            assert_eq!(
                scan_multipart(body.as_bytes(), "b", "t", chunk),
                Ok(None),
                "chunk {chunk}"
            );
        }
        // Headers over the limit are refused however they arrive.
        let long = format!(
            "--b\r\nContent-Disposition: form-data; name=\"t\"\r\nX-Pad: {}\r\n\r\ntok\r\n--b--",
            "a".repeat(MAX_PART_HEADERS)
        );
        for chunk in [7, 4096, long.len()] {
            assert!(
                scan_multipart(long.as_bytes(), "b", "t", chunk).is_err(),
                "chunk {chunk}"
            );
        }
        // A block of exactly the limit passes, however it arrives.
        let head = "Content-Disposition: form-data; name=\"t\"\r\nX-Pad: ";
        let exact = format!(
            "--b\r\n{head}{}\r\n\r\ntok\r\n--b--",
            "a".repeat(MAX_PART_HEADERS - head.len())
        );
        for chunk in [1, 2, 3, exact.len()] {
            assert_eq!(
                scan_multipart(exact.as_bytes(), "b", "t", chunk),
                Ok(Some("tok".to_owned())),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn multipart_scan_in_any_chunking() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\ntok123\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\nDATA\r\n--XyZ--\r\n";
        for chunk in 1..body.len() {
            assert_eq!(
                scan_all(body, chunk),
                Step::Found("tok123".into()),
                "chunk {chunk}"
            );
        }
        let no_token =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XyZ--\r\n";
        assert_eq!(scan_all(no_token, 3), Step::End);
        assert!(matches!(
            scan_all(b"garbage--XyZ\r\n", 100),
            Step::Malformed(_)
        ));
        assert_eq!(
            scan_all(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\ntok",
                4
            ),
            Step::NeedMore
        );
    }
}
