//! What auto-embed puts into one page (the token, the scripts), and what it
//! needs to know where (the request's host).

/// What the guard embeds into one page, and what it needs to know where.
#[derive(Clone, Debug)]
pub(crate) struct Embedding {
    /// The hidden input, as [`ConcurrencyToken::hidden_input`](crate::ConcurrencyToken::hidden_input).
    pub(crate) hidden_input: String,
    /// The token's text, for `hx-headers`.
    #[cfg_attr(not(feature = "html-rewriter"), allow(dead_code))]
    pub(crate) token: String,
    /// The form field the token travels in.
    pub(crate) field: String,
    /// The request's `Host` (or its URI's authority), if any.
    #[cfg_attr(not(feature = "html-rewriter"), allow(dead_code))]
    pub(crate) host: Option<String>,
    /// The early warning's script, put after the first token embedded (a
    /// hidden input, or an element's `hx-headers`).
    pub(crate) once: Option<String>,
    /// The htmx script: put after the first token embedded (a hidden input
    /// or an element's `hx-headers`), and only on a page that uses htmx
    /// (an `hx-…` or `data-hx-…` attribute, `hx-boost` among them).
    pub(crate) htmx_script: Option<String>,
    /// The form and route a page that goes without its token is warned
    /// about (once per route), when known.
    pub(crate) route: Option<(&'static str, String)>,
}

impl Embedding {
    /// What a page answering `request` gets for `token` (no script yet).
    pub(crate) fn of(token: &crate::ConcurrencyToken, request: &http::request::Parts) -> Embedding {
        Embedding::with_host(token, Embedding::host_of(request))
    }

    /// The request's `Host`, or its URI's authority (HTTP/2).
    pub(crate) fn host_of(request: &http::request::Parts) -> Option<String> {
        request
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri.authority().map(|a| a.as_str().to_owned()))
    }

    /// What a page for a request to `host` gets for `token`.
    pub(crate) fn with_host(token: &crate::ConcurrencyToken, host: Option<String>) -> Embedding {
        Embedding {
            hidden_input: token.hidden_input(),
            token: token.value().to_owned(),
            field: token.field_name().to_owned(),
            host,
            once: None,
            htmx_script: None,
            route: None,
        }
    }

    /// The embedding of the test and fuzz helpers: token `T` in the default
    /// field, on a page served by `example.com`.
    pub(crate) fn for_tests(hidden_input: &str) -> Embedding {
        Embedding {
            hidden_input: hidden_input.to_owned(),
            token: "T".to_owned(),
            field: crate::token::DEFAULT_FIELD_NAME.to_owned(),
            host: Some("example.com".to_owned()),
            once: None,
            htmx_script: None,
            route: None,
        }
    }
}
