//! What an htmx request says of itself, in the request headers htmx documents.

use http::{HeaderMap, Uri};

/// What an htmx request (`HX-Request: true`) says of itself, read from the
/// request headers htmx documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HtmxRequest {
    /// `HX-Boosted: true`: a boosted link or form, which htmx answers with a
    /// whole page (swapped into `<body>` or where the page's `hx-target` /
    /// `hx-select` say).
    pub(crate) boosted: bool,
    /// The `id` of the element that sent it, when a plain one (htmx 4's
    /// `HX-Source: tag#id`, htmx 2's `HX-Trigger`).
    pub(crate) source_id: Option<String>,
    /// The path of the page it was sent from (`HX-Current-URL`).
    pub(crate) page_path: Option<String>,
}

impl HtmxRequest {
    /// Reads `headers`.
    pub(crate) fn of(headers: &HeaderMap) -> HtmxRequest {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let source_id = match text("hx-source") {
            Some(source) => source.split_once('#').map(|(_, id)| id),
            None => text("hx-trigger"),
        }
        .filter(|id| plain_id(id))
        .map(str::to_owned);
        let page_path = text("hx-current-url")
            .and_then(|url| url.parse::<Uri>().ok())
            .map(|url| url.path().to_owned());
        HtmxRequest {
            boosted: text("hx-boosted").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            source_id,
            page_path,
        }
    }
}

/// Whether `id` can be named as `#id` in a selector as it is.
pub(crate) fn plain_id(id: &str) -> bool {
    id.len() <= 128
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
