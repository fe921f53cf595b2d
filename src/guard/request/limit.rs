//! Reading a body within its limit: axum's `DefaultBodyLimit` or the guard's own.

use axum::RequestExt as _;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::Request;
use http::request::Parts;
use http_body_util::BodyExt as _;

use crate::guard::config::BodyLimit;
use crate::guard::rejection::Rejection;

/// The whole body as one `Bytes`: the frame itself when it comes in one
/// (no copy), else the frames joined. Trailers are dropped.
pub(super) async fn collect(mut body: Body) -> Result<Bytes, axum::Error> {
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
