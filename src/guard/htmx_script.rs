//! The guard's htmx script for pages the guard does not render (a list
//! whose rows carry tokens from [`Tokens::issue`](crate::Tokens::issue)).

use axum::response::Response;

use super::response::htmx;

/// The path [`htmx_script`] is meant to be mounted at, and pages to load it
/// from: `/concurrency-guard/htmx.js`.
///
/// ```rust,ignore
/// let app = Router::new()
///     .route(concurrency_guard::HTMX_SCRIPT_PATH, get(concurrency_guard::htmx_script));
/// // in the layout: <script src="/concurrency-guard/htmx.js" defer></script>
/// ```
pub const HTMX_SCRIPT_PATH: &str = "/concurrency-guard/htmx.js";

/// An axum handler serving the guard's htmx script (JavaScript, `200`,
/// cacheable for a day, `x-content-type-options: nosniff`): the one
/// auto-embed adds to the guarded pages that use htmx. Loaded on any page
/// (from the app's own origin, so a `script-src 'self'` policy allows it),
/// it lets htmx 2 swap the guard's 409 and 4xx answers (which htmx 2 leaves
/// unswapped by default) and keeps the page's tokens current after its own
/// saves. Loading it twice (layout and auto-embed) is harmless: the second
/// copy does nothing. A form field renamed with `with_field_name` is named
/// to it by the tag's `data-field` attribute.
pub async fn htmx_script() -> Response {
    htmx::script_response()
}
