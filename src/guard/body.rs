//! Finding the token in a submission without taking the body from the handler.
//!
//! - header [`HEADER_NAME`](crate::token::HEADER_NAME): the body is not touched;
//! - `application/x-www-form-urlencoded`: the body is buffered up to the
//!   limit and the same bytes are handed on;
//! - `multipart/form-data`: parts are read in order only until the token
//!   part; what was read is replayed in front of the rest of the stream, so
//!   a file after the token is never buffered.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::RequestExt as _;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, Request, header};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use memchr::memmem;

use super::Rejection;
use crate::token::{HEADER_NAME, MAX_TOKEN_LEN};
use crate::token_error::TokenError;

/// [`HEADER_NAME`] as a header name made once: looking a header up by `&str`
/// parses and validates the name on every request.
pub(crate) const TOKEN_HEADER: http::HeaderName = http::HeaderName::from_static(HEADER_NAME);

/// Where the token was found, and the body to hand on.
pub(crate) struct Found {
    /// The token's text: a slice of the buffered body where it needed no
    /// decoding (the decoder checks the bytes itself).
    pub(crate) token: Bytes,
    pub(crate) body: Body,
    /// The urlencoded body, when it was buffered (to show the user what
    /// they typed if the submission conflicts).
    pub(crate) form: Option<Bytes>,
}

/// How the body limit is set.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BodyLimit {
    /// Axum's `DefaultBodyLimit` where set, else 2 MiB.
    Axum,
    /// This many bytes.
    Bytes(usize),
}

/// Where a submission's token is to be found, read from its headers once.
pub(crate) enum TokenSource {
    /// In the [`HEADER_NAME`] header.
    Header,
    /// In an `application/x-www-form-urlencoded` body.
    UrlEncoded,
    /// In a `multipart/form-data` body with this boundary (or why the
    /// boundary is unusable).
    Multipart(Result<String, &'static str>),
    /// Nowhere: no header and no body type.
    None,
    /// Nowhere: a body of another type.
    Other,
}

impl TokenSource {
    /// Reads the request's headers.
    pub(crate) fn of(headers: &HeaderMap) -> TokenSource {
        if headers.contains_key(TOKEN_HEADER) {
            return TokenSource::Header;
        }
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return TokenSource::None;
        };
        // What browsers send for a form, compared before it is parsed.
        if value.as_bytes() == b"application/x-www-form-urlencoded" {
            return TokenSource::UrlEncoded;
        }
        let Ok(value) = value.to_str() else {
            return TokenSource::Other;
        };
        let mut params = value.split(';');
        let essence = params.next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            TokenSource::UrlEncoded
        } else if essence.eq_ignore_ascii_case("multipart/form-data") {
            let boundary = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"'));
            TokenSource::Multipart(match boundary {
                Some(b) if !b.is_empty() && b.len() <= 70 => Ok(b.to_owned()),
                Some(_) => Err("the multipart boundary must be 1 to 70 characters"),
                None => Err("the multipart body has no boundary in its Content-Type"),
            })
        } else {
            TokenSource::Other
        }
    }

    /// Whether the token travels in a header.
    pub(crate) fn is_header(&self) -> bool {
        matches!(self, TokenSource::Header)
    }

    /// Whether the body is a form (urlencoded or multipart).
    pub(crate) fn is_form(&self) -> bool {
        matches!(self, TokenSource::UrlEncoded | TokenSource::Multipart(_))
    }
}

/// Finds the token of a submission, from `source` (its headers, read by
/// [`TokenSource::of`]). Takes the parts only to apply the body limit, and
/// gives them back at once: the future holds the body and its reader alone.
pub(crate) async fn find_token(
    source: TokenSource,
    parts: &mut Parts,
    body: Body,
    field: &str,
    limit: BodyLimit,
    multipart_prefix_limit: usize,
) -> Result<Found, Rejection> {
    match source {
        TokenSource::Header => match parts.headers.get(TOKEN_HEADER).map(|v| v.to_str()) {
            Some(Ok(token)) => Ok(Found {
                token: Bytes::copy_from_slice(token.trim().as_bytes()),
                body,
                form: None,
            }),
            _ => Err(Rejection::InvalidToken(TokenError::Malformed {
                reason: "the header is not base64url text",
            })),
        },
        TokenSource::UrlEncoded => {
            let body = limited(parts, body, limit);
            let bytes = match collect(body).await {
                Ok(bytes) => bytes,
                Err(e) => return Err(read_error(&e, limit)),
            };
            let token = match scan_urlencoded_token(&bytes, field)? {
                Cow::Borrowed(token) => bytes.slice_ref(token.as_bytes()),
                Cow::Owned(token) => Bytes::from(token),
            };
            Ok(Found {
                token,
                body: Body::from(bytes.clone()),
                form: Some(bytes),
            })
        }
        TokenSource::Multipart(Ok(boundary)) => {
            // Only the prefix up to the token part is buffered (bounded by
            // the prefix limit); the rest streams to the handler, so the
            // whole body answers to axum's limit, as the handler's own
            // extractor does, not to the urlencoded buffer's.
            let body = limited(parts, body, BodyLimit::Axum);
            // Boxed: its scanner is large, and a urlencoded submission
            // should not carry its room in every request's future.
            Box::pin(read_multipart_prefix(
                body,
                &boundary,
                field,
                multipart_prefix_limit,
            ))
            .await
        }
        TokenSource::Multipart(Err(reason)) => Err(Rejection::BadMultipart { reason }),
        TokenSource::None => Err(Rejection::MissingToken {
            field: field.to_owned(),
        }),
        TokenSource::Other => Err(Rejection::UnsupportedMediaType {
            content_type: match parts.headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
                Some(Ok(value)) => value.to_owned(),
                _ => "(not valid text)".to_owned(),
            },
        }),
    }
}

/// The whole body as one `Bytes`: the frame itself when it comes in one
/// (no copy), else the frames joined. Trailers are dropped.
async fn collect(mut body: Body) -> Result<Bytes, axum::Error> {
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &mut joined {
            Some(buf) => buf.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut buf = BytesMut::with_capacity(first.len() + data.len());
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(match joined {
        Some(buf) => buf.freeze(),
        None => first,
    })
}

/// Wraps the body in the limit, refusing at once a declared length over it.
fn limited(parts: &mut Parts, body: Body, limit: BodyLimit) -> Body {
    match limit {
        BodyLimit::Axum => {
            // Axum keeps its `DefaultBodyLimit` in a private extension:
            // only `with_limited_body` reads it, and it wants the request.
            let taken = std::mem::replace(parts, Request::new(()).into_parts().0);
            let (taken, body) = Request::from_parts(taken, body)
                .with_limited_body()
                .into_parts();
            *parts = taken;
            body
        }
        BodyLimit::Bytes(n) => Body::new(http_body_util::Limited::new(body, n)),
    }
}

fn read_error(error: &axum::Error, limit: BodyLimit) -> Rejection {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return Rejection::PayloadTooLarge {
                limit: match limit {
                    BodyLimit::Bytes(n) => Some(n),
                    BodyLimit::Axum => None,
                },
            };
        }
        source = e.source();
    }
    Rejection::BodyRead
}

/// Finds `field` in an urlencoded body. Duplicates must agree.
#[doc(hidden)]
pub fn scan_urlencoded(body: &[u8], field: &str) -> Result<String, Rejection> {
    scan_urlencoded_token(body, field).map(Cow::into_owned)
}

/// [`scan_urlencoded`], the token borrowed from the body where it needs
/// no decoding (it never does as the guard embeds it).
fn scan_urlencoded_token<'b>(body: &'b [u8], field: &str) -> Result<Cow<'b, str>, Rejection> {
    // Decoding never lengthens a name (`%XX` and `+` become one byte each),
    // except where invalid UTF-8 becomes U+FFFD, and a name with U+FFFD is
    // not `field` unless `field` has one too. So a shorter name, or a
    // shorter pair, is not the field: most pairs are passed over on their
    // length alone.
    let shortest = if field.contains('\u{FFFD}') {
        0
    } else {
        field.len()
    };
    let mut found: Option<Cow<'b, str>> = None;
    for pair in pairs(body) {
        if pair.len() < shortest {
            continue;
        }
        let (name, value) = match crate::buffer::find_near(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if name.len() < shortest {
            continue;
        }
        let is_field =
            name == field.as_bytes() || (needs_decoding(name) && decode_component(name) == field);
        if !is_field {
            continue;
        }
        if value.len() > MAX_TOKEN_LEN * 3 {
            return Err(Rejection::InvalidToken(TokenError::Malformed {
                reason: "it is too long",
            }));
        }
        // As from the header and a multipart part: surrounding blanks go.
        let value = if needs_decoding(value) {
            let decoded = decode_component(value);
            match decoded.trim() {
                trimmed if trimmed.len() == decoded.len() => Cow::Owned(decoded),
                trimmed => Cow::Owned(trimmed.to_owned()),
            }
        } else {
            // A token is ASCII: the fast check, and the lossy copy only for
            // what will be refused anyway.
            match std::str::from_utf8(value) {
                Ok(text) => Cow::Borrowed(text.trim()),
                Err(_) => Cow::Owned(String::from_utf8_lossy(value).trim().to_owned()),
            }
        };
        match &found {
            Some(first) if *first != value => return Err(Rejection::DuplicateTokens),
            Some(_) => {}
            None => found = Some(value),
        }
    }
    found.ok_or_else(|| Rejection::MissingToken {
        field: field.to_owned(),
    })
}

/// The `&`-separated pieces of `body`, as `body.split(|&b| b == b'&')`
/// gives them (empty pieces included), found with `memchr`.
fn pairs(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'&', body);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match ends.next() {
            Some(end) => {
                let pair = &body[start..end];
                start = end + 1;
                Some(pair)
            }
            None => {
                done = true;
                Some(&body[start..])
            }
        }
    })
}

/// Whether a name or value has percent-escapes or `+` to decode.
fn needs_decoding(raw: &[u8]) -> bool {
    memchr::memchr2(b'%', b'+', raw).is_some()
}

/// Decodes one urlencoded name or value: `+` is a space, `%XX` a byte
/// (an invalid escape stays as written), then UTF-8 (lossy), as
/// `form_urlencoded` does. A `=` inside a value stays part of it.
fn decode_component(raw: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The pairs of an urlencoded body, the token field left out.
pub(crate) fn submitted_pairs(body: &[u8], field: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k != field)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

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

/// Reads parts until the token part; the bytes read are replayed in front
/// of the rest of the body.
async fn read_multipart_prefix(
    mut body: Body,
    boundary: &str,
    field: &str,
    prefix_limit: usize,
) -> Result<Found, Rejection> {
    let mut scanner = MultipartScanner::new(boundary, field);
    let mut buf = BytesMut::new();
    loop {
        match scanner.step(&buf) {
            Step::Found(token) => {
                return Ok(Found {
                    token: Bytes::from(token),
                    body: Body::new(ReplayBody {
                        prefix: Some(buf.freeze()),
                        rest: body,
                    }),
                    form: None,
                });
            }
            Step::End => {
                return Err(Rejection::MissingToken {
                    field: field.to_owned(),
                });
            }
            Step::Malformed(reason) => return Err(Rejection::BadMultipart { reason }),
            Step::NeedMore => {}
        }
        if buf.len() > prefix_limit {
            return Err(Rejection::TokenNotFirst {
                limit: prefix_limit,
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

/// A body whose first bytes were already read: they come first, then the rest.
struct ReplayBody {
    prefix: Option<Bytes>,
    rest: Body,
}

impl http_body::Body for ReplayBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            if !prefix.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(prefix))));
            }
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + extra);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn urlencoded(frames: &[&'static str], limit: BodyLimit) -> Result<Found, Rejection> {
        let (mut parts, ()) = Request::new(()).into_parts();
        let frames = frames.iter().map(|f| Bytes::from_static(f.as_bytes()));
        let body = Body::new(super::super::inject::Frames(frames.collect()));
        find_token(TokenSource::UrlEncoded, &mut parts, body, "t", limit, 1024).await
    }

    #[tokio::test]
    async fn a_body_in_several_frames_is_read_whole_and_handed_on() {
        let frames = ["a=1&t=to", "ken&b=2", "", "&c=3"];
        for n in 1..=frames.len() {
            let whole = frames[..n].concat();
            let found = urlencoded(&frames[..n], BodyLimit::Bytes(100))
                .await
                .unwrap_or_else(|e| panic!("{n} frames: {e}"));
            let expected = if n == 1 { "to" } else { "token" };
            assert_eq!(found.token, expected, "{n} frames");
            assert_eq!(found.form.as_deref(), Some(whole.as_bytes()));
            let handed_on = found.body.collect().await.unwrap().to_bytes();
            assert_eq!(handed_on, whole.as_bytes(), "{n} frames");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whichever_frame_crosses_it() {
        for limit in [3, 8, 10, 14] {
            let found = urlencoded(&["a=1&t=to", "ken&b=2"], BodyLimit::Bytes(limit)).await;
            assert!(
                matches!(found, Err(Rejection::PayloadTooLarge { limit: Some(l) }) if l == limit),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn urlencoded_scan() {
        assert_eq!(scan_urlencoded(b"a=1&t=abc&b=2", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"t=abc&t=abc", "t").unwrap(), "abc");
        assert!(matches!(
            scan_urlencoded(b"t=abc&t=abd", "t"),
            Err(Rejection::DuplicateTokens)
        ));
        assert!(matches!(
            scan_urlencoded(b"a=1", "t"),
            Err(Rejection::MissingToken { .. })
        ));
        assert_eq!(scan_urlencoded(b"%74=a%62c", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"x=%ff%fe&t=abc", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"t=", "t").unwrap(), "");
        // A value keeps a raw `=` and decodes as a whole.
        assert_eq!(scan_urlencoded(b"t=abc=junk%41", "t").unwrap(), "abc=junkA");
        assert_eq!(scan_urlencoded(b"t=+abc+", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"t=a%2", "t").unwrap(), "a%2");
    }

    #[test]
    fn pairs_split_as_slice_split_does() {
        for body in [
            &b""[..],
            b"&",
            b"&&",
            b"a",
            b"a&",
            b"&a",
            b"a=1&b=2",
            b"a=1&&b=2&",
        ] {
            let ours: Vec<&[u8]> = pairs(body).collect();
            let std: Vec<&[u8]> = body.split(|&b| b == b'&').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(body));
        }
    }

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
