//! Cross-origin protection: a browser's cross-site submission is refused before anything else.
//!
//! The token proves which record a form showed, not who submitted it: it is
//! not bound to the user's session, so it is not a CSRF defence. This check
//! is the one the guard can make without a session, the algorithm of Go's
//! `net/http` `CrossOriginProtection` (Filippo Valsorda, "CSRF", 2025):
//!
//! 1. `Sec-Fetch-Site: same-origin` or `none` (the user typed the URL or
//!    used a bookmark) passes; any other value (`same-site`, `cross-site`)
//!    is refused unless the request's `Origin` is a trusted origin;
//! 2. without `Sec-Fetch-Site` (older browsers, plain-HTTP origins other
//!    than localhost), a request without `Origin` passes: it is not a
//!    browser's cross-site request (curl, server-to-server, tests);
//! 3. else `Origin`'s host must equal the request's `Host`, or `Origin`
//!    must be trusted.
//!
//! Only unsafe methods are checked: the guard's write path calls it.

use http::request::Parts;
use http::{HeaderMap, header};

/// What the builder set: on or off, and the origins trusted besides this one.
#[derive(Debug, Clone)]
pub(crate) struct CrossOrigin {
    pub(crate) on: bool,
    /// `scheme://host[:port]`, ASCII-lowercased.
    pub(crate) trusted: Vec<String>,
}

impl Default for CrossOrigin {
    fn default() -> Self {
        CrossOrigin {
            on: true,
            trusted: Vec::new(),
        }
    }
}

/// Why a submission was taken for a cross-origin one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detected {
    /// `Sec-Fetch-Site` names another site.
    SecFetchSite,
    /// No `Sec-Fetch-Site`, and `Origin` is not this host.
    OriginNotHost,
}

impl CrossOrigin {
    /// `Ok` when the request may go on (or the check is off).
    pub(crate) fn check(&self, parts: &Parts) -> Result<(), Detected> {
        if !self.on {
            return Ok(());
        }
        let headers = &parts.headers;
        match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            Some(b"same-origin" | b"none") => return Ok(()),
            Some(_) if self.trusts(headers) => return Ok(()),
            Some(_) => return Err(Detected::SecFetchSite),
            None => {}
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let host = headers
            .get(header::HOST)
            .map(|h| h.as_bytes())
            .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.as_bytes());
        match (origin_host, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
            _ if self.trusts(headers) => Ok(()),
            _ => Err(Detected::OriginNotHost),
        }
    }

    fn trusts(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| self.trusted.iter().any(|t| t.eq_ignore_ascii_case(o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(pairs: &[(&'static str, &'static str)]) -> Parts {
        let mut req = http::Request::post("/items/1");
        for (k, v) in pairs {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    /// The cases of Go's `TestCrossOriginProtectionSecFetchSite` and
    /// `…OriginHeader` (net/http, csrf_test.go).
    #[test]
    fn as_go_decides() {
        let on = CrossOrigin::default();
        let host = ("host", "example.com");
        for (headers, ok) in [
            (&[host, ("sec-fetch-site", "same-origin")][..], true),
            (&[host, ("sec-fetch-site", "none")], true),
            (&[host, ("sec-fetch-site", "cross-site")], false),
            (&[host, ("sec-fetch-site", "same-site")], false),
            (&[host], true),
            (&[host, ("origin", "https://example.com")], true),
            (&[host, ("origin", "http://example.com")], true),
            (&[host, ("origin", "https://attacker.example")], false),
            (&[host, ("origin", "null")], false),
            (&[host, ("origin", "https://example.com:8080")], false),
            // Sec-Fetch-Site wins over a matching Origin.
            (
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://example.com"),
                ],
                false,
            ),
        ] {
            assert_eq!(on.check(&parts(headers)).is_ok(), ok, "{headers:?}");
        }
        let off = CrossOrigin {
            on: false,
            trusted: vec![],
        };
        assert!(
            off.check(&parts(&[("sec-fetch-site", "cross-site")]))
                .is_ok()
        );
    }

    #[test]
    fn trusted_origins_pass() {
        let co = CrossOrigin {
            on: true,
            trusted: vec!["https://admin.example.com".into()],
        };
        let host = ("host", "example.com");
        let trusted = ("origin", "https://admin.example.com");
        assert!(
            co.check(&parts(&[host, ("sec-fetch-site", "same-site"), trusted]))
                .is_ok()
        );
        assert!(co.check(&parts(&[host, trusted])).is_ok());
        assert_eq!(
            co.check(&parts(&[
                host,
                ("sec-fetch-site", "same-site"),
                ("origin", "https://other.example.com")
            ])),
            Err(Detected::SecFetchSite)
        );
    }
}
