//! Early warning: an open form learns it went stale before the user submits.
//!
//! With [`with_early_warning`](crate::ConcurrencyGuardLayer::with_early_warning),
//! auto-embed adds a small script (plain JavaScript, about 10 KB, 4 KB gzipped, no
//! framework) beside the token of the page's first post form. Every few
//! seconds (with jitter, backing off on errors, paused while the tab is
//! hidden, at once when it regains focus) it sends a *check request*: a GET
//! of the page's own URL with the page's token in the `x-concurrency-token`
//! header and the header `x-concurrency-guard: check` (a GET with the token
//! alone is a re-render that keeps its token, see `request::carried`). The guard answers it from the loader and the fingerprint alone,
//! never running the handler: `204 No Content` while the form is current,
//! `409 Conflict` once it is stale, `410 Gone` when the loader no longer
//! finds the record (it answered 404 or 410: deleted while the page was
//! open), all three without a body. On 409 (410: "this record was deleted",
//! nothing will be saved) the script
//! shows an accessible, dismissible banner and stops checking; what the user
//! typed stays on the page until they choose to reload. With live rebase
//! (the tag's `data-rebase`) a stale form's check is answered with what
//! changed instead, and the script takes it into the page (see
//! [`with_live_rebase`](crate::ConcurrencyGuardLayer::with_live_rebase)).
//!
//! The script is served by the guard itself at the page's path with the
//! query `?concurrency-guard=warn.js`, so `script-src 'self'` allows it. The
//! tag names it by absolute path (`/items/1?concurrency-guard=warn.js`),
//! never by a relative URL that an injected `<base href>` could send to
//! another origin with the page's nonce; a page whose path is not a plain
//! local path gets no script. When
//! the page's `Content-Security-Policy` carries a nonce, the script tag
//! carries it too. Styles are set through the CSSOM, which CSP does not
//! block. Without JavaScript everything works as before.

use axum::response::Response;
use http::{HeaderMap, Uri, header};

use super::{local_path, script};
use crate::html::escape;

/// The script.
pub(crate) const SCRIPT: &str = include_str!("warn.js");

/// The query that asks the guard for the script.
const QUERY: &str = "concurrency-guard=warn.js";

/// Whether `uri` asks for the script.
pub(crate) fn is_script_request(uri: &Uri) -> bool {
    script::is_requested(uri, QUERY)
}

/// The script, cacheable.
pub(crate) fn script_response() -> Response {
    script::serve(SCRIPT)
}

/// The script tag for the page at `page_path` whose token is `token`;
/// `None` when the path is not a [`local_path`].
pub(crate) fn script_tag(
    page_path: &str,
    token: &str,
    interval_secs: u64,
    rebase: bool,
    response_headers: &HeaderMap,
) -> Option<String> {
    let path = local_path(page_path)?;
    let nonce = csp_nonce(response_headers)
        .map(|n| format!(r#" nonce="{}""#, escape(&n)))
        .unwrap_or_default();
    Some(format!(
        r#"<script src="{path}?{QUERY}&amp;v={version}" data-token="{token}" data-interval="{interval_secs}"{rebase} defer{nonce}></script>"#,
        path = escape(&path),
        version = env!("CARGO_PKG_VERSION"),
        token = escape(token),
        rebase = if rebase { " data-rebase" } else { "" },
    ))
}

/// The nonce of the response's `script-src` (or `default-src`), if any.
pub(crate) fn csp_nonce(headers: &HeaderMap) -> Option<String> {
    let policy = headers
        .get(header::CONTENT_SECURITY_POLICY)?
        .to_str()
        .ok()?;
    let directive = |name: &str| {
        policy.split(';').map(str::trim).find(|d| {
            d.split_ascii_whitespace()
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    };
    let directive = directive("script-src-elem")
        .or_else(|| directive("script-src"))
        .or_else(|| directive("default-src"))?;
    directive.split_ascii_whitespace().find_map(|source| {
        source
            .strip_prefix("'nonce-")
            .and_then(|n| n.strip_suffix('\''))
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn script_requests() {
        assert!(is_script_request(
            &"/items/1?concurrency-guard=warn.js&v=1".parse().unwrap()
        ));
        assert!(!is_script_request(
            &"/items/1?x=concurrency-guard=warn.js".parse().unwrap()
        ));
        assert!(!is_script_request(&"/items/1".parse().unwrap()));
    }

    #[test]
    fn nonce_from_the_policy() {
        let mut h = HeaderMap::new();
        assert_eq!(csp_nonce(&h), None);
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'nonce-abc123' 'strict-dynamic'",
            ),
        );
        assert_eq!(csp_nonce(&h).as_deref(), Some("abc123"));
        let tag = script_tag("/items/1", "T", 15, false, &h).unwrap();
        assert!(tag.contains(r#"nonce="abc123""#) && tag.contains(r#"data-interval="15""#));
    }

    /// Issue 22, item 8: the tag names the script by absolute path, so an
    /// injected `<base href="https://evil.example/">` cannot redirect it.
    #[test]
    fn the_script_src_is_an_absolute_path() {
        let h = HeaderMap::new();
        let tag = script_tag("/items/1", "T", 15, false, &h).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert!(
            tag.starts_with(&format!(
                r#"<script src="/items/1?concurrency-guard=warn.js&amp;v={version}""#
            )),
            "{tag}"
        );
        assert_eq!(script_tag("//evil.example/x", "T", 15, false, &h), None);
        assert_eq!(script_tag("items/1", "T", 15, false, &h), None);
    }

    #[test]
    fn the_script_is_small() {
        // Early warning and live rebase in one script: "a few KB".
        assert!(SCRIPT.len() < 12 * 1024, "{} bytes", SCRIPT.len());
    }
}
