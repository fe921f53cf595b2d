//! [`Rejection`]: why the guard refused a submission before its handler ran.

use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use crate::token_error::TokenError;

/// Why the guard refused a submission before its handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No token in the header nor in the form field.
    MissingToken {
        /// The form field the guard looked in.
        field: String,
    },
    /// The token is wrong (see [`TokenError`]).
    InvalidToken(TokenError),
    /// The form field appears more than once with different values.
    DuplicateTokens,
    /// The body is larger than the limit.
    PayloadTooLarge {
        /// The limit in bytes, where the guard set it (else axum's
        /// `DefaultBodyLimit`).
        limit: Option<usize>,
    },
    /// A body the guard cannot read a token from, and no token header
    /// (415, with `Accept` naming the two types it reads): `text/plain`
    /// (an HTML form's `enctype="text/plain"`), a `Content-Type` that is
    /// not a media type, a non-empty body without one, or (preconditions
    /// off) any type but a form's.
    UnsupportedMediaType {
        /// The request's Content-Type; empty when it had none.
        content_type: String,
    },
    /// A multipart body that does not follow the format.
    BadMultipart {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// In a multipart body, the token part did not come within the first
    /// `limit` bytes (it must come before file fields).
    TokenNotFirst {
        /// How far the guard read.
        limit: usize,
    },
    /// The body could not be read (the connection failed).
    BodyRead,
    /// The client paused longer than the read timeout while sending the
    /// body (408).
    BodyTimeout {
        /// The read timeout, in whole seconds (rounded up).
        seconds: u64,
    },
    /// Another submission to the same record held its lock for longer than
    /// the lock timeout (503, with `Retry-After`).
    RecordBusy {
        /// When to try again, in seconds.
        retry_after: u64,
    },
    /// The record's lock could not be taken because the database it lives
    /// in failed or did not answer (503, with `Retry-After`).
    LockUnavailable {
        /// When to try again, in seconds.
        retry_after: u64,
    },
    /// The record's lock lives in a database that restarted moments ago
    /// (within `PgAdvisoryLock::with_restart_grace`, feature `postgres`):
    /// submissions that held locks before the restart may still be writing
    /// (503, with `Retry-After`).
    DatabaseRestarted {
        /// When to try again, in seconds: what is left of the grace, at
        /// least 1.
        retry_after: u64,
    },
    /// `If-Match` or `If-None-Match` does not hold: the client's copy is
    /// stale (412).
    PreconditionFailed {
        /// The failing header.
        header: &'static str,
    },
    /// `If-Match` lists only weak entity tags (`W/"…"`), or a weak tag that
    /// is the record's current one: a weak tag never matches `If-Match`
    /// (RFC 9110 §13.1.1, strong comparison), whether or not the record
    /// changed (412).
    WeakIfMatch,
    /// A submission with neither a token nor `If-Match` (428).
    PreconditionRequired,
    /// A browser's submission from another site (403): see
    /// [`with_cross_origin_protection`](crate::ConcurrencyGuardLayer::with_cross_origin_protection).
    CrossOrigin {
        /// The header that told: `Sec-Fetch-Site`, or `Origin` (which did
        /// not match `Host`).
        header: &'static str,
    },
    /// The submission carries a valid token for this form, but the record
    /// was deleted since the form was opened: the loader refused with 404
    /// (answered 409) or 410 (answered 410). The answer shows what the
    /// user entered.
    Deleted {
        /// The loader said 410 Gone.
        gone: bool,
    },
    /// `If-Match` or `If-None-Match` cannot be read.
    BadPrecondition {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Rejection {
    /// The status the guard answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::InvalidToken(TokenError::Expired { .. }) => StatusCode::CONFLICT,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::PreconditionFailed { .. } | Rejection::WeakIfMatch => {
                StatusCode::PRECONDITION_FAILED
            }
            Rejection::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Rejection::CrossOrigin { .. } => StatusCode::FORBIDDEN,
            Rejection::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Rejection::RecordBusy { .. }
            | Rejection::LockUnavailable { .. }
            | Rejection::DatabaseRestarted { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Deleted { gone: true } => StatusCode::GONE,
            Rejection::Deleted { gone: false } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short machine-readable name, used in problem+json `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::MissingToken { .. } => "missing-token",
            Rejection::InvalidToken(TokenError::Expired { .. }) => "expired-token",
            Rejection::InvalidToken(_) => "invalid-token",
            Rejection::DuplicateTokens => "duplicate-tokens",
            Rejection::PayloadTooLarge { .. } => "payload-too-large",
            Rejection::UnsupportedMediaType { .. } => "unsupported-media-type",
            Rejection::BadMultipart { .. } => "bad-multipart",
            Rejection::TokenNotFirst { .. } => "token-not-first",
            Rejection::BodyRead => "body-read",
            Rejection::BodyTimeout { .. } => "body-timeout",
            Rejection::RecordBusy { .. } => "record-busy",
            Rejection::LockUnavailable { .. } => "lock-unavailable",
            Rejection::DatabaseRestarted { .. } => "database-restarted",
            Rejection::PreconditionFailed { .. } => "precondition-failed",
            Rejection::WeakIfMatch => "weak-if-match",
            Rejection::PreconditionRequired => "precondition-required",
            Rejection::BadPrecondition { .. } => "bad-precondition",
            Rejection::CrossOrigin { .. } => "cross-origin",
            Rejection::Deleted { .. } => "deleted",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::MissingToken { field } => write!(
                f,
                "the submission carries no concurrency token: send it in the form field {field:?} or in the x-concurrency-token header; reload the page and submit the form again"
            ),
            Rejection::InvalidToken(e) => e.fmt(f),
            Rejection::DuplicateTokens => f.write_str(
                "the submission carries several different concurrency tokens; a form must carry exactly one",
            ),
            Rejection::PayloadTooLarge { limit: Some(n) } => {
                write!(f, "the submission is larger than the limit of {n} bytes")
            }
            Rejection::PayloadTooLarge { limit: None } => {
                f.write_str("the submission is larger than the body limit")
            }
            Rejection::UnsupportedMediaType { content_type } => {
                unsupported_media_type(f, content_type)
            }
            Rejection::BadMultipart { reason } => {
                write!(f, "the multipart body is malformed: {reason}")
            }
            Rejection::TokenNotFirst { limit } => write!(
                f,
                "the concurrency token was not within the first {limit} bytes of the multipart body: put the token field before any file field"
            ),
            Rejection::BodyRead => f.write_str("the submission's body could not be read"),
            Rejection::BodyTimeout { seconds } => write!(
                f,
                "the submission's body stopped arriving: nothing came for {}; submit it again",
                seconds_text(*seconds)
            ),
            Rejection::RecordBusy { retry_after } => write!(
                f,
                "another submission is writing this record; nothing was saved, try again in {}",
                seconds_text(*retry_after)
            ),
            Rejection::LockUnavailable { retry_after } => write!(
                f,
                "the record could not be locked for writing (its database is not answering); nothing was saved, try again in {}",
                seconds_text(*retry_after)
            ),
            Rejection::DatabaseRestarted { retry_after } => write!(
                f,
                "the database restarted moments ago; nothing was saved, try again in {}",
                seconds_text(*retry_after)
            ),
            Rejection::PreconditionFailed { header } => write!(
                f,
                "{header} does not hold: the record changed since you read it; GET it again for its current ETag and retry"
            ),
            Rejection::WeakIfMatch => f.write_str(
                "If-Match does not hold: it carries a weak entity tag (W/\"…\"), and a weak tag never matches If-Match (RFC 9110 §13.1.1 compares strongly), whether or not the record changed; send the ETag exactly as a GET returned it, without the W/ prefix",
            ),
            Rejection::PreconditionRequired => f.write_str(
                "this request must be conditional: send If-Match with the ETag from a GET of this resource, or the concurrency token in the x-concurrency-token header",
            ),
            Rejection::CrossOrigin { header } => write!(
                f,
                "cross-origin request refused: the browser's {header} header says this submission came from another site; submit the form from this site's own page"
            ),
            Rejection::BadPrecondition { header, reason } => {
                write!(f, "the {header} header is malformed: {reason}")
            }
            Rejection::Deleted { .. } => f.write_str(
                "the record was deleted since the form was opened: the submission was not applied",
            ),
        }
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// Sets the headers the status needs: `Retry-After` on 503, `Accept`
    /// on 415 (RFC 9110 §12.5.1: the types a next request may send).
    pub(crate) fn set_headers(&self, headers: &mut http::HeaderMap) {
        if let Rejection::UnsupportedMediaType { .. } = self {
            headers.insert(header::ACCEPT, http::HeaderValue::from_static(FORM_TYPES));
        }
        if let Rejection::RecordBusy { retry_after }
        | Rejection::LockUnavailable { retry_after }
        | Rejection::DatabaseRestarted { retry_after } = self
        {
            headers.insert(header::RETRY_AFTER, (*retry_after).into());
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut res = (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response();
        self.set_headers(res.headers_mut());
        res.extensions_mut().insert(self);
        res
    }
}

/// The media types the guard reads a token from, as `Accept` lists them.
pub(crate) const FORM_TYPES: &str = "application/x-www-form-urlencoded, multipart/form-data";

/// What a 415 says: the type received, the two the guard reads, and for
/// `text/plain` why (WHATWG HTML: such payloads "are not reliably
/// interpretable by computer").
fn unsupported_media_type(f: &mut fmt::Formatter<'_>, content_type: &str) -> fmt::Result {
    if content_type.is_empty() {
        f.write_str("the submission has a body but no Content-Type, ")?;
    } else {
        write!(f, "the submission's body is {content_type:?}, ")?;
    }
    f.write_str(
        "from which the guard cannot read a concurrency token: it reads application/x-www-form-urlencoded (an HTML form's default) and multipart/form-data",
    )?;
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("text/plain") {
        f.write_str(
            "; a form with enctype=\"text/plain\" cannot be read reliably (the WHATWG HTML standard warns that its payloads are not reliably interpretable by computer): remove the enctype attribute",
        )?;
    } else {
        f.write_str("; submit the form as one of them")?;
    }
    f.write_str(", or send the token in the x-concurrency-token header")
}

/// `n` seconds as words ("1 second", "30 seconds", "5 minutes").
fn seconds_text(n: u64) -> String {
    crate::token_error::span(std::time::Duration::from_secs(n))
}

#[cfg(test)]
mod tests {
    use super::Rejection;

    #[test]
    fn waits_are_said_in_words_with_the_right_number() {
        let busy = |retry_after| Rejection::RecordBusy { retry_after }.to_string();
        assert!(busy(1).ends_with("try again in 1 second"), "{}", busy(1));
        assert!(busy(2).ends_with("try again in 2 seconds"), "{}", busy(2));
        let restarted = Rejection::DatabaseRestarted { retry_after: 30 }.to_string();
        assert!(
            restarted.ends_with("try again in 30 seconds"),
            "{restarted}"
        );
        let slow = Rejection::BodyTimeout { seconds: 1 }.to_string();
        assert!(slow.contains("nothing came for 1 second;"), "{slow}");
    }
}
