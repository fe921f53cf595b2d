//! The embedding rules: where a page will send a write to this origin, as
//! WHATWG HTML and htmx decide it, and what auto-embed puts there.
//!
//! A token goes wherever the browser will send a write to this origin, and
//! nowhere else:
//!
//! - a form gets the hidden input (first inside it) when one of its
//!   submissions is a POST to this origin — its own `method="post"`, or a
//!   submit button's `formmethod="post"` (HTML, "form submission
//!   algorithm": the submitter's `formmethod`/`formaction` override the
//!   form's) — and none of its submissions, GET or POST, goes to another
//!   origin (the hidden input would go along). A GET submission of such a
//!   form to this origin carries the token in its query: a read, harmless;
//! - a form that already carries an input named the token field (a template
//!   that renders `ConcurrencyToken`, a 422 page echoing the submitted
//!   hidden fields, a child record's form with its own token) gets none;
//! - an element with `hx-post`, `hx-put`, `hx-patch` or `hx-delete` (or the
//!   `data-hx-` forms) aimed at this origin gets the token in its own
//!   `hx-headers` (merged with the JSON object already there), so that
//!   htmx 2 (inherited attributes) and htmx 4 (`:inherited` only) both send
//!   it;
//! - URLs are resolved as browsers resolve them (the WHATWG URL parser,
//!   against the page's `<base href>` if any); an absolute one is this
//!   origin when its host and port are the request's `Host` (the scheme is
//!   not compared: behind a TLS proxy the guard sees `http`).

use std::borrow::Cow;

use url::Url;

/// The htmx attributes that send a write, in the order htmx reads them.
pub(crate) const HX_WRITES: [&str; 8] = [
    "hx-post",
    "hx-put",
    "hx-patch",
    "hx-delete",
    "data-hx-post",
    "data-hx-put",
    "data-hx-patch",
    "data-hx-delete",
];

/// The lol_html selector of the elements with an [`HX_WRITES`] attribute.
pub(crate) const HX_WRITE_SELECTOR: &str = "[hx-post], [hx-put], [hx-patch], [hx-delete], \
     [data-hx-post], [data-hx-put], [data-hx-patch], [data-hx-delete]";

/// How a form submission goes (HTML: the `method`/`formmethod` states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    /// Closes a dialog: nothing is sent.
    Dialog,
}

impl Method {
    /// A `method` or `formmethod` value: ASCII case-insensitive, not
    /// trimmed; missing or invalid is GET (for `formmethod` present only
    /// when the attribute is).
    pub(crate) fn of(value: Option<&str>) -> Method {
        match value {
            Some(v) if v.eq_ignore_ascii_case("post") => Method::Post,
            Some(v) if v.eq_ignore_ascii_case("dialog") => Method::Dialog,
            _ => Method::Get,
        }
    }
}

/// Where a page's relative URLs are resolved, and which origin is this one.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// The request's authority as a URL (`http://host:port/`).
    this: Option<Url>,
    /// The page's `<base href>`, resolved, if it has one.
    base: Option<Url>,
}

impl Origin {
    pub(crate) fn new(host: Option<&str>) -> Origin {
        let this = host.and_then(|h| Url::parse(&format!("http://{h}/")).ok());
        // A host with a path or user info in it is not a host.
        let this = this.filter(|u| u.path() == "/" && u.username().is_empty());
        Origin { this, base: None }
    }

    /// The first `<base href>` of the page sets the base URL (HTML: "the
    /// frozen base URL" of the first base element with an href).
    pub(crate) fn set_base(&mut self, href: &str) -> bool {
        if self.base.is_some() {
            return false;
        }
        let resolved = decode_entities(href).and_then(|href| self.resolve(&href));
        // An unusable base makes every relative URL unknown: another origin.
        self.base = Some(resolved.unwrap_or_else(|| Url::parse("invalid-base:").expect("valid")));
        true
    }

    fn resolve(&self, url: &str) -> Option<Url> {
        let page = match (&self.base, &self.this) {
            (Some(base), _) => base.clone(),
            (None, Some(this)) => this.clone(),
            // No host known: only what resolves against any page is known.
            (None, None) => Url::parse("http://this.invalid/").expect("valid"),
        };
        page.join(url).ok()
    }

    /// Whether a submission or request to `url` (an attribute's value, with
    /// its character references) goes to this origin. The empty string (and
    /// a missing `action`) is the page's own URL.
    pub(crate) fn is_this(&self, url: Option<&str>) -> bool {
        let Some(url) = url else {
            return self.base_is_this();
        };
        let Some(url) = decode_entities(url) else {
            return false;
        };
        // HTML: an empty action is the document's URL, not the base URL.
        if url.trim_matches(is_c0_or_space).is_empty() {
            return true;
        }
        let Some(resolved) = self.resolve(&url) else {
            return false;
        };
        match &self.this {
            Some(this) => same_authority(&resolved, this),
            None => {
                self.base.is_none()
                    && resolved.host_str() == Some("this.invalid")
                    && resolved.port().is_none()
            }
        }
    }

    fn base_is_this(&self) -> bool {
        true
    }
}

fn is_c0_or_space(c: char) -> bool {
    c <= ' '
}

fn same_authority(a: &Url, b: &Url) -> bool {
    matches!(a.scheme(), "http" | "https")
        && a.host_str().is_some()
        && a.host_str() == b.host_str()
        && a.port() == b.port()
}

/// An attribute value as the browser reads it, for the character
/// references pages use in URLs and JSON (`&amp;`, `&quot;`, `&#39;`,
/// numeric ones…); `None` for any other (left alone, read as unknown).
pub(crate) fn decode_entities(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('&') {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let run = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .unwrap_or(after.len());
        let name = &after[..run];
        if !after[run..].starts_with(';') {
            // Numeric references decode without `;` too: unknown here.
            if name.starts_with('#') {
                return None;
            }
            // `&b=2` in a query: a literal `&`.
            out.push('&');
            rest = after;
            continue;
        }
        let c = match name {
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            "lt" => '<',
            "gt" => '>',
            _ => {
                let num = name.strip_prefix('#')?;
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => num.parse().ok()?,
                };
                char::from_u32(code).filter(|&c| c != '\0')?
            }
        };
        out.push(c);
        rest = &after[run + 1..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// Why an element's `hx-headers` was left alone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadersKept {
    /// It already sends the token header (a template rendered it).
    HasToken,
    /// `js:`/`javascript:` or not a JSON object: the guard cannot merge.
    Unmergeable,
}

/// The `hx-headers` value that sends `token` in `header` as well as what
/// `existing` (the attribute's raw value, if any) sends; HTML-escaped for a
/// double-quoted attribute value, as lol_html writes it (it escapes `"`).
pub(crate) fn hx_headers_with_token(
    existing: Option<&str>,
    header: &str,
    token: &str,
) -> Result<String, HeadersKept> {
    let mut object = match existing {
        None => serde_json::Map::new(),
        Some(raw) => {
            let value = decode_entities(raw).ok_or(HeadersKept::Unmergeable)?;
            let trimmed = value.trim_start();
            if trimmed.starts_with("js:") || trimmed.starts_with("javascript:") {
                return Err(HeadersKept::Unmergeable);
            }
            if trimmed.is_empty() {
                serde_json::Map::new()
            } else {
                match serde_json::from_str::<serde_json::Value>(&value) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => return Err(HeadersKept::Unmergeable),
                }
            }
        }
    };
    if object.keys().any(|k| k.eq_ignore_ascii_case(header)) {
        return Err(HeadersKept::HasToken);
    }
    object.insert(header.to_owned(), serde_json::Value::from(token));
    let json = serde_json::Value::Object(object).to_string();
    // lol_html escapes `"` itself but not `&`.
    Ok(json.replace('&', "&amp;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_as_html_reads_them() {
        assert_eq!(Method::of(Some("POST")), Method::Post);
        assert_eq!(Method::of(Some(" post")), Method::Get, "invalid: GET");
        assert_eq!(Method::of(Some("Dialog")), Method::Dialog);
        assert_eq!(Method::of(None), Method::Get);
    }

    #[test]
    fn origins_as_the_url_parser_resolves_them() {
        let o = Origin::new(Some("shop.example:8080"));
        for this in [
            "",
            " ",
            "/items/1",
            "items/1",
            "?a=1&amp;b=2",
            "/x?a=1&b=2",
            "#x",
            "http://shop.example:8080/x",
            "https://SHOP.example:8080/x",
            "//shop.example:8080/x",
            "/\\shop.example:8080/x",
            "http:items/1",
        ] {
            assert!(o.is_this(Some(this)), "{this:?}");
        }
        assert!(o.is_this(None));
        for other in [
            "https://pay.example.net/checkout",
            "//pay.example.net/x",
            "/\\pay.example.net/x",
            "\\\\pay.example.net/x",
            "/\t/pay.example.net/x",
            " //pay.example.net",
            "&#47;&#47;pay.example.net/",
            "http://shop.example/x",
            "http://shop.example:8081/x",
            "javascript:alert(1)",
            "mailto:a@b",
            "&bogus;x",
            "&#47&#47pay.example.net/",
        ] {
            assert!(!o.is_this(Some(other)), "{other:?}");
        }
        let mut based = Origin::new(Some("shop.example:8080"));
        based.set_base("https://cdn.example/");
        assert!(!based.is_this(Some("/items/1")), "relative to another base");
        assert!(based.is_this(Some("")), "an empty action is the document");
        let unknown = Origin::new(None);
        assert!(unknown.is_this(Some("/items/1")));
        assert!(!unknown.is_this(Some("https://shop.example/items/1")));
    }

    #[test]
    fn hx_headers_merge() {
        let h = "x-concurrency-token";
        assert_eq!(
            hx_headers_with_token(None, h, "T").unwrap(),
            r#"{"x-concurrency-token":"T"}"#
        );
        assert_eq!(
            hx_headers_with_token(Some(r#"{"X-Id": "a&b"}"#), h, "T").unwrap(),
            r#"{"X-Id":"a&amp;b","x-concurrency-token":"T"}"#
        );
        assert_eq!(
            hx_headers_with_token(Some("{&quot;a&quot;:1}"), h, "T").unwrap(),
            r#"{"a":1,"x-concurrency-token":"T"}"#
        );
        assert_eq!(
            hx_headers_with_token(Some(r#"{"X-Concurrency-Token":"S"}"#), h, "T"),
            Err(HeadersKept::HasToken)
        );
        for kept in ["js:{a: 1}", "javascript:getHeaders()", "[1]", "{a:1}"] {
            assert_eq!(
                hx_headers_with_token(Some(kept), h, "T"),
                Err(HeadersKept::Unmergeable),
                "{kept}"
            );
        }
    }
}
