//! Pages the guard would put a token into but cannot rewrite: said once per
//! route, with the fix. Their forms have no token and are refused at submit
//! time (fail closed).

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use http::{HeaderMap, header};

/// Whether a response's body is not compressed (so an HTML one can be
/// rewritten as it streams).
pub(crate) fn is_identity_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// Why an HTML page cannot be rewritten, if it cannot.
pub(crate) fn unrewritable(headers: &HeaderMap) -> Option<&'static str> {
    if !is_identity_encoded(headers) {
        return Some(
            "the page is compressed (Content-Encoding) by a layer inside the guard: put the compression layer (e.g. tower-http's CompressionLayer) outside the guard (layered after it), or render the ConcurrencyToken in the template",
        );
    }
    let charset = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';')
                .skip(1)
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase())
        });
    if charset.is_some_and(|c| c.starts_with("utf-16")) {
        return Some(
            "the page is UTF-16, which the rewriter cannot read: serve it as UTF-8, or render the ConcurrencyToken in the template",
        );
    }
    None
}

/// Without the `html-rewriter` feature: a page the plain scanner cannot
/// decide (`cause`: what it uses) goes without its token; said once for the
/// page's route (named in `embedding` when known).
#[cfg(not(feature = "html-rewriter"))]
pub(crate) fn warn_undecided(embedding: &super::Embedding, cause: &str) {
    let (form, route) = embedding
        .route
        .as_ref()
        .map_or(("(unknown)", "(no route)"), |(form, route)| {
            (*form, route.as_str())
        });
    warn_unrewritable(
        form,
        route,
        &format!(
            "{cause}, which only the full HTML rewriter reads: enable concurrency-guard's feature `html-rewriter` (a default feature), or render the ConcurrencyToken in the template"
        ),
    );
}

/// Logs `reason` for `route` at `warn`, the first time only.
pub(crate) fn warn_unrewritable(form: &'static str, route: &str, reason: &str) {
    static TOLD: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
    let mut told = TOLD.lock().unwrap_or_else(|e| e.into_inner());
    // Routes are few; a fallback that sees every path is told once at most
    // this many times.
    if told.len() >= 1024 || !told.insert(route.to_owned()) {
        return;
    }
    tracing::warn!(
        form,
        route,
        "auto-embed: no token put into this page, so its forms will be refused when submitted: {reason}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn compressed_or_utf16_pages_say_why() {
        let compressed = headers(&[("content-type", "text/html"), ("content-encoding", "br")]);
        assert!(
            unrewritable(&compressed)
                .unwrap()
                .contains("CompressionLayer")
        );
        let utf16 = headers(&[("content-type", "text/html; charset=\"UTF-16LE\"")]);
        assert!(unrewritable(&utf16).unwrap().contains("UTF-8"));
        for fine in [
            headers(&[("content-type", "text/html; charset=utf-8")]),
            headers(&[
                ("content-type", "text/html"),
                ("content-encoding", "identity"),
            ]),
            headers(&[("content-type", "text/html; charset=windows-1252")]),
        ] {
            assert_eq!(unrewritable(&fine), None);
        }
    }
}
