//! Reading a body within its limit (axum's `DefaultBodyLimit` or the guard's own) and its read timeout.

use std::time::Duration;

use axum::RequestExt as _;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{Request, header};
use http_body_util::BodyExt as _;

use super::timeout::{BodyTimedOut, IdleTimeout};
use crate::guard::config::BodyLimit;
use crate::guard::rejection::Rejection;

/// How the guard reads a body: within which limit, and how long the client
/// may pause.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    pub(crate) limit: BodyLimit,
    pub(crate) timeout: Duration,
}

impl Reading {
    /// `body` with the read timeout on each of its frames.
    pub(crate) fn timed(&self, body: Body) -> Body {
        Body::new(IdleTimeout::new(body, self.timeout))
    }
}

/// The whole body, read within the limit and the read timeout: read before
/// the record is locked, so that the lock is never held while the client
/// sends. A declared length over the limit is refused before reading.
pub(crate) async fn buffer(
    parts: &mut Parts,
    body: Body,
    reading: Reading,
) -> Result<Bytes, Rejection> {
    let most = reading.limit.buffered();
    let declared = declared_length(parts);
    if declared.is_some_and(|n| n > most as u64) {
        return Err(Rejection::PayloadTooLarge { limit: Some(most) });
    }
    let body = reading.timed(limited(parts, body, reading.limit));
    collect(body, most, reading.limit).await
}

/// The whole body as one `Bytes` (at most `most` of them): the frame itself
/// when it comes in one (no copy), else the frames joined. Trailers are
/// dropped.
pub(super) async fn collect(
    mut body: Body,
    most: usize,
    limit: BodyLimit,
) -> Result<Bytes, Rejection> {
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| read_error(&e, limit))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read = read.saturating_add(data.len());
        if read > most {
            return Err(Rejection::PayloadTooLarge { limit: Some(most) });
        }
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

/// The route's body limit, as axum's extractors apply it (its
/// `DefaultBodyLimit`, 2 MiB unless set); `None` when disabled. Axum keeps
/// it private: it is read back from the size hint of an empty body of
/// unknown length that axum limits.
pub(super) fn axum_limit(parts: &mut Parts) -> Option<usize> {
    struct Unknown;
    impl http_body::Body for Unknown {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(None)
        }
    }
    let limited = limited(parts, Body::new(Unknown), BodyLimit::Axum);
    http_body::Body::size_hint(&limited)
        .upper()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// The request's declared `Content-Length`, where it is a number.
pub(super) fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Wraps the body in the limit, refusing at once a declared length over it.
pub(super) fn limited(parts: &mut Parts, body: Body, limit: BodyLimit) -> Body {
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

pub(super) fn read_error(error: &axum::Error, limit: BodyLimit) -> Rejection {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(timed_out) = e.downcast_ref::<BodyTimedOut>() {
            return Rejection::BodyTimeout {
                seconds: timed_out.seconds(),
            };
        }
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
