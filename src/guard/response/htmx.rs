//! htmx: the guard's answers shown where the submitted form was, and a page's
//! tokens kept current after its own saves.
//!
//! - Every refusal and conflict answered to an htmx request (`HX-Request:
//!   true`) is an HTML fragment with its 4xx status and the headers
//!   `HX-Retarget` (the element that sent the request) and `HX-Reswap:
//!   outerHTML` (htmx's documented response headers): htmx puts it in place
//!   of the form, not into the request's target (a boosted page's
//!   `<body>`), so the page keeps its layout. The header
//!   `x-concurrency-guard: conflict` (or `refused`) marks it as the guard's.
//! - htmx 4 swaps 4xx answers by default. htmx 2 does not: the guard's
//!   small script (served by the guard at the page's path with the query
//!   `?concurrency-guard=htmx.js`, embedded after the first token of a page
//!   that uses htmx, and only there) lets htmx swap answers carrying
//!   `x-concurrency-guard`.
//! - A write that passes and is answered 2xx to an htmx request carries a
//!   fresh token in the `x-concurrency-token` response header: signed for
//!   the record as the handler left it (loaded again under the record's lock
//!   once the handler has answered). The script puts it wherever the page
//!   held the token the request carried, so the next save from the same
//!   page is checked against the data as saved.

use axum::response::Response;
use http::Uri;

use super::{local_path, script};
use crate::html::escape;

/// The script.
pub(crate) const SCRIPT: &str = include_str!("htmx.js");

/// The query that asks the guard for the script.
const QUERY: &str = "concurrency-guard=htmx.js";

/// Whether `uri` asks for the script.
pub(crate) fn is_script_request(uri: &Uri) -> bool {
    script::is_requested(uri, QUERY)
}

/// The script, cacheable.
pub(crate) fn script_response() -> Response {
    script::serve(SCRIPT)
}

/// The script tag for the page at `page_path`, its tokens in form field
/// `field`; `None` when the path is not a [`local_path`].
pub(crate) fn script_tag(page_path: &str, field: &str, nonce: Option<&str>) -> Option<String> {
    let path = local_path(page_path)?;
    let nonce = nonce
        .map(|n| format!(r#" nonce="{}""#, escape(n)))
        .unwrap_or_default();
    Some(format!(
        r#"<script src="{path}?{QUERY}&amp;v={version}" data-field="{field}" defer{nonce}></script>"#,
        path = escape(&path),
        version = env!("CARGO_PKG_VERSION"),
        field = escape(field),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_requests() {
        assert!(is_script_request(
            &"/items/1?concurrency-guard=htmx.js&v=1".parse().unwrap()
        ));
        assert!(!is_script_request(
            &"/items/1?concurrency-guard=warn.js".parse().unwrap()
        ));
    }

    #[test]
    fn the_tag_names_the_script_by_absolute_path() {
        let tag = script_tag("/items/1", "_t", Some("n1")).unwrap();
        assert!(tag.starts_with(r#"<script src="/items/1?concurrency-guard=htmx.js&amp;v="#));
        assert!(tag.contains(r#"data-field="_t""#) && tag.contains(r#"nonce="n1""#));
        assert_eq!(script_tag("//evil.example/", "_t", None), None);
    }

    #[test]
    fn the_script_is_small() {
        assert!(SCRIPT.len() < 4096, "{} bytes", SCRIPT.len());
    }
}
