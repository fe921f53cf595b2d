//! The guard's own scripts (early warning, htmx), served at the page's path with a query of their own.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Uri, header};

/// Whether `uri`'s query has the pair `query` (`concurrency-guard=….js`).
pub(crate) fn is_requested(uri: &Uri, query: &str) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|pair| pair == query))
}

/// `script`, cacheable for a day, as JavaScript that is never sniffed as
/// anything else.
pub(crate) fn serve(script: &'static str) -> Response {
    let mut res = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        script,
    )
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    res.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}
