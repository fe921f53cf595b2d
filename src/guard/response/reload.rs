//! Where the "reload the form" link of a refusal or conflict answer points:
//! the page the form was on, never another origin.
//!
//! The page is known, in this order, from the token the submission carried
//! (a token the guard signs for a page it serves names that page: see
//! [`crate::token`]'s format, version 3), from the `Referer` when it is a
//! page of the same host, and else the link is the submission's own path
//! (which may answer only POST). The token is what works without a
//! `Referer` (curl, `Referrer-Policy: no-referrer`) and for a form posting
//! to a route that has no GET (`/items/{id}/delete`). Every candidate must
//! be a [`local_path`]: an absolute or network-path URL, a `javascript:`
//! URL or a path a browser reads as another host is never the link.

use bytes::Bytes;
use http::header;
use http::request::Parts;

use crate::claims::Claims;
use crate::guard::browser_url::browser_uri;
use crate::key::KeyRing;

/// The token a submission carried, kept in the request's extensions for
/// the page it names: read (its signature checked) only when an answer
/// needs the reload link.
#[derive(Clone)]
pub(crate) struct SubmittedToken {
    pub(crate) token: Bytes,
    pub(crate) keys: KeyRing,
}

/// The page the form was on, when the submission says so: the page its
/// token names, else its `Referer` when that is a page of the same host;
/// a [`local_path`] either way.
pub(crate) fn form_page(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<SubmittedToken>()
        .and_then(|s| Claims::page(&s.token, &s.keys))
        .and_then(|page| local_path(&page))
        .or_else(|| same_host_path(parts, header::REFERER.as_str()))
}

/// Where "reload the form" points: `page` (from [`form_page`]), else the
/// submission's own path.
pub(crate) fn reload_target(page: Option<&str>, parts: &Parts) -> String {
    page.map_or_else(|| own_path(parts), str::to_owned)
}

/// The page a token signed for this GET request names: for an htmx request
/// (a fragment loaded into a page) the browser's page, `HX-Current-URL`,
/// when it is on this host; else the request's own path and query as the
/// browser sent it (with a nested router's prefix). `None`
/// when that is no [`local_path`].
pub(crate) fn page_of_get(parts: &Parts) -> Option<String> {
    let htmx = parts
        .headers
        .get("hx-request")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    htmx.then(|| same_host_path(parts, "hx-current-url"))
        .flatten()
        .or_else(|| {
            browser_uri(parts)
                .path_and_query()
                .and_then(|pq| local_path(pq.as_str()))
        })
}

/// The path and query of the absolute URL in header `name`, when it is on
/// the request's `Host` and a [`local_path`].
fn same_host_path(parts: &Parts, name: &str) -> Option<String> {
    let host = parts.headers.get(header::HOST)?.to_str().ok()?;
    let url = parts
        .headers
        .get(name)?
        .to_str()
        .ok()?
        .parse::<http::Uri>()
        .ok()?;
    if url.authority()?.as_str() != host {
        return None;
    }
    local_path(url.path_and_query()?.as_str())
}

/// The request's own path and query as the browser sent it (with the
/// prefix of a nested router) as a [`local_path`], else `/`.
pub(crate) fn own_path(parts: &Parts) -> String {
    browser_uri(parts)
        .path_and_query()
        .and_then(|pq| local_path(pq.as_str()))
        .unwrap_or_else(|| "/".to_owned())
}

/// `path` (with its query) when, as a link on this origin's pages, it can
/// only point to this origin: it starts with exactly one `/` (not `//` or
/// `/\`, which a browser reads as `//`), holds no backslash, space or
/// control character (a browser drops tabs and line breaks from URLs:
/// `/<TAB>/evil` is `//evil`), and its percent-decoded form does not start
/// with `//` or `/\` either (for servers that decode and redirect).
/// `None` otherwise.
pub(crate) fn local_path(path: &str) -> Option<String> {
    fn leaves(b: &[u8]) -> bool {
        b.first() != Some(&b'/') || matches!(b.get(1), Some(b'/' | b'\\'))
    }
    let bytes = path.as_bytes();
    if leaves(bytes) || bytes.iter().any(|&c| c == b'\\' || c <= b' ' || c == 0x7f) {
        return None;
    }
    let mut decoded = percent_decoded(bytes);
    decoded.retain(|c| !matches!(c, b'\t' | b'\n' | b'\r'));
    if leaves(&decoded) {
        return None;
    }
    Some(path.to_owned())
}

/// `bytes` with `%XX` escapes decoded (malformed ones kept as they are).
fn percent_decoded(bytes: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? << 4 | hex(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::response::AnswerContext;

    fn parts(uri: &str, pairs: &[(&'static str, &str)]) -> Parts {
        let mut req = http::Request::builder().uri(uri);
        for (k, v) in pairs {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    fn link(p: &Parts) -> String {
        reload_target(form_page(p).as_deref(), p)
    }

    /// Issue 22, item 10: a Referer on this host whose path a browser would
    /// read as another origin (`//host`, `/\host`, encoded or with a tab)
    /// never becomes the reload link; the submission's own path does.
    #[test]
    fn the_reload_link_never_leaves_the_origin() {
        let host = ("host", "app.example");
        for referer in [
            "http://app.example//evil.example/x",
            "http://app.example/\\evil.example/x",
            "http://app.example/%2F%2Fevil.example/x",
            "http://app.example/%5C%5Cevil.example",
            "http://app.example/%2f/evil.example",
            "http://app.example/%09/evil.example",
            "https://evil.example/items/1",
            "javascript:alert(1)",
            "//evil.example/x",
        ] {
            let p = parts("/items/1?x=1", &[host, ("referer", referer)]);
            assert_eq!(link(&p), "/items/1?x=1", "{referer}");
        }
        let p = parts(
            "/items/1",
            &[host, ("referer", "http://app.example/items/1/edit?a=b")],
        );
        assert_eq!(link(&p), "/items/1/edit?a=b");
        // A request target that is itself off-site as a link.
        for target in ["//evil.example/x", "/%2F%2Fevil.example"] {
            let p = parts(target, &[host]);
            assert_eq!(link(&p), "/", "{target}");
            assert_eq!(AnswerContext::of(&p).action, "/", "{target}");
        }
    }

    #[test]
    fn local_paths() {
        assert_eq!(
            local_path("/a/b?c=%2F%2F").as_deref(),
            Some("/a/b?c=%2F%2F")
        );
        assert_eq!(local_path("/"), Some("/".into()));
        assert_eq!(local_path("/my%20file").as_deref(), Some("/my%20file"));
        for bad in [
            "",
            "a/b",
            "//x",
            "/\\x",
            "/%2F/x",
            "/%5cx",
            "/%09/x",
            "/a\\b",
            "/a b",
            "http://x/",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_page_of_an_htmx_get_is_the_browsers_page_on_this_host() {
        let host = ("host", "app.example");
        let htmx = ("hx-request", "true");
        let p = parts(
            "/items/1/row",
            &[
                host,
                htmx,
                ("hx-current-url", "http://app.example/items?page=2"),
            ],
        );
        assert_eq!(page_of_get(&p).as_deref(), Some("/items?page=2"));
        for current in [
            "https://evil.example/items",
            "http://app.example//evil.example/",
        ] {
            let p = parts("/items/1/row", &[host, htmx, ("hx-current-url", current)]);
            assert_eq!(
                page_of_get(&p).as_deref(),
                Some("/items/1/row"),
                "{current}"
            );
        }
        // Not an htmx request: the header is not read.
        let p = parts(
            "/items/1/edit?tab=2",
            &[host, ("hx-current-url", "http://app.example/other")],
        );
        assert_eq!(page_of_get(&p).as_deref(), Some("/items/1/edit?tab=2"));
        assert_eq!(page_of_get(&parts("//evil.example/x", &[host])), None);
    }
}
