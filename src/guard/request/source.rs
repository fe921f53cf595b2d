//! [`TokenSource`]: where a submission's token is to be found, read from
//! its headers (and its query string) before anything of the body.

use std::borrow::Cow;

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Uri, header};

use super::limit::declared_length;
use super::urlencoded;
use crate::guard::rejection::Rejection;
use crate::token::HEADER_NAME;

/// [`HEADER_NAME`] as a header name made once: looking a header up by `&str`
/// parses and validates the name on every request.
pub(crate) const TOKEN_HEADER: http::HeaderName = http::HeaderName::from_static(HEADER_NAME);

/// Where a submission's token is to be found, read from its headers once.
pub(crate) enum TokenSource {
    /// In the [`HEADER_NAME`] header.
    Header,
    /// In an `application/x-www-form-urlencoded` body.
    UrlEncoded,
    /// In a `multipart/form-data` body with this boundary (or why the
    /// boundary is unusable).
    Multipart(Result<String, &'static str>),
    /// In the query string only: no header, and no form body.
    Query,
    /// Nowhere: no header and no body type.
    None,
    /// Nowhere: a body of another type.
    Other,
}

impl TokenSource {
    /// Reads the request's headers, and its query string for `field` where
    /// neither a header nor a form body may carry the token.
    pub(crate) fn of(parts: &Parts, field: &str) -> TokenSource {
        if parts.headers.contains_key(TOKEN_HEADER) {
            return TokenSource::Header;
        }
        match TokenSource::of_body(&parts.headers) {
            TokenSource::None | TokenSource::Other if query_has_field(&parts.uri, field) => {
                TokenSource::Query
            }
            source => source,
        }
    }

    /// What the body is, read from its `Content-Type` exactly as the
    /// extractors downstream read it, so that no body one of them takes for
    /// a form passes here for something else: axum's `Form` takes any type
    /// that *starts with* `application/x-www-form-urlencoded`; its
    /// `Multipart` (multer) parses the type with the `mime` crate and wants
    /// `multipart/form-data` and a boundary.
    pub(super) fn of_body(headers: &HeaderMap) -> TokenSource {
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
        let essence = value.split([';', ',']).next().unwrap_or_default().trim();
        // axum's `RawForm`: `content_type.starts_with(…)`, case and all;
        // the guard reads any case too (stricter, never looser).
        if value.starts_with("application/x-www-form-urlencoded")
            || essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
        {
            return TokenSource::UrlEncoded;
        }
        match value.parse::<mime::Mime>() {
            Ok(m) if m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA => {
                TokenSource::Multipart(match m.get_param(mime::BOUNDARY) {
                    Some(b) if !b.as_str().is_empty() && b.as_str().len() <= 70 => {
                        Ok(b.as_str().to_owned())
                    }
                    Some(_) => Err("the multipart boundary must be 1 to 70 characters"),
                    None => Err("the multipart body has no boundary in its Content-Type"),
                })
            }
            // Not a type multer reads, but meant as one: refused, not
            // passed on as some other body.
            _ if essence.eq_ignore_ascii_case("multipart/form-data") => {
                TokenSource::Multipart(Err("the multipart Content-Type cannot be read"))
            }
            _ => TokenSource::Other,
        }
    }

    /// Why a body that is neither a form nor behind a token header cannot
    /// be taken for an API client's (which gets 428 and the advice to send
    /// `If-Match`): `text/plain` (an HTML form with `enctype="text/plain"`,
    /// which may carry the token where the guard cannot read it), a
    /// `Content-Type` that is not a media type, or a non-empty body with
    /// none. `None` for a body of another media type (JSON…) and for no
    /// body at all.
    pub(crate) fn unreadable(&self, parts: &Parts, body: &Body) -> Option<Rejection> {
        use http_body::Body as _;
        let content_type = |value: &str| Rejection::UnsupportedMediaType {
            content_type: value.to_owned(),
        };
        match self {
            TokenSource::None => {
                let empty = body.is_end_stream()
                    || body.size_hint().exact() == Some(0)
                    || declared_length(parts) == Some(0);
                (!empty).then(|| content_type(""))
            }
            TokenSource::Other => {
                let value = parts.headers.get(header::CONTENT_TYPE)?;
                let Ok(text) = value.to_str() else {
                    return Some(content_type("(not valid text)"));
                };
                match text.parse::<mime::Mime>() {
                    Ok(m) if m.type_() == mime::TEXT && m.subtype() == mime::PLAIN => {
                        Some(content_type(text))
                    }
                    Ok(_) => None,
                    Err(_) => Some(content_type(text)),
                }
            }
            _ => None,
        }
    }

    /// Whether the token travels outside the body (header or query).
    pub(crate) fn is_outside_body(&self) -> bool {
        matches!(self, TokenSource::Header | TokenSource::Query)
    }

    /// Whether the body is a form (urlencoded or multipart).
    pub(crate) fn is_form(&self) -> bool {
        matches!(self, TokenSource::UrlEncoded | TokenSource::Multipart(_))
    }
}

/// The token field of an urlencoded body, if it has one.
pub(super) fn body_token(bytes: &Bytes, field: &str) -> Result<Option<Bytes>, Rejection> {
    match urlencoded::scan_urlencoded_token(bytes, field) {
        Ok(Cow::Borrowed(token)) => Ok(Some(bytes.slice_ref(token.as_bytes()))),
        Ok(Cow::Owned(token)) => Ok(Some(Bytes::from(token))),
        Err(Rejection::MissingToken { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the query string has a pair named `field` (whatever its value:
/// [`query_token`] judges it).
fn query_has_field(uri: &Uri, field: &str) -> bool {
    !matches!(query_token(uri, field), Ok(None))
}

/// The token in the query string's `field`, if any; duplicates must agree.
pub(super) fn query_token(uri: &Uri, field: &str) -> Result<Option<Bytes>, Rejection> {
    match uri.query() {
        Some(query) => body_token(&Bytes::copy_from_slice(query.as_bytes()), field),
        None => Ok(None),
    }
}
