//! The request's URL as the browser sent it, for every URL the guard puts
//! in front of a user or compares with one a browser sent.
//!
//! Inside a router nested with axum's `Router::nest("/app", …)` the request
//! the guard sees has the prefix stripped (`/items/1` for `/app/items/1`);
//! axum keeps the URL as sent in the [`OriginalUri`] extension. Links, form
//! actions, script sources and the page a token names are written from that
//! one, as is the path a page's form `action` is compared with; calls into
//! the inner service keep the stripped URL, which is what its routes match.

use axum::extract::OriginalUri;
use http::Uri;
use http::request::Parts;

/// The URL the browser asked for: axum's [`OriginalUri`] when a `Router`
/// recorded it, else the request's own (a guard outside any `Router`, or
/// around the outermost one, sees it unchanged).
pub(crate) fn browser_uri(parts: &Parts) -> &Uri {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |original| &original.0)
}

/// The path of [`browser_uri`].
pub(crate) fn browser_path(parts: &Parts) -> &str {
    browser_uri(parts).path()
}
