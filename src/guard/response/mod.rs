//! The guard's own answers: refusals (4xx), the conflict page (409), the
//! token embedded in pages, and the early warning.
//!
//! Each refusal comes as HTML for browsers, as `application/problem+json`
//! (RFC 9457) for clients that prefer JSON, and as an HTML fragment for
//! htmx requests (`HX-Request`). The typed reason ([`Rejection`] or
//! [`Conflict`](crate::Conflict)) is in the response's extensions for outer layers.

use std::fmt::Write as _;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::guard::browser_url::browser_path;
use crate::html::escape;

mod answer;
pub(crate) mod app_page;
mod conflict_page;
mod deleted;
pub(crate) mod embed;
pub(crate) mod htmx;
pub(crate) mod htmx_request;
pub(crate) mod rebase;
pub(crate) mod refusal;
mod reload;
mod script;
pub(crate) mod warning;
mod withheld;

pub(crate) use answer::{conflict, rejection, withheld};
pub(crate) use deleted::deleted;
pub(crate) use reload::{SubmittedToken, form_page, local_path, page_of_get};
use reload::{own_path, reload_target};

/// What an answer needs to know of the request it answers, read once from
/// it: the guard's own refusals and conflicts and [`DeferredCheck`]'s
/// (crate::DeferredCheck) are made from this alone, so both read the same
/// headers.
#[derive(Debug, Clone)]
pub(crate) struct AnswerContext {
    pub(crate) format: Format,
    /// Where "reload the form" points: [`page`](AnswerContext::page), else
    /// the submission's own path.
    pub(crate) reload: String,
    /// The page the form was on, when the submission says so (its token
    /// names it, or its `Referer` is a page of this host): a fresh token in
    /// the answer names it too.
    pub(crate) page: Option<String>,
    /// Where the submission went (path and query): a form submitted again
    /// from the answer goes there too.
    pub(crate) action: String,
    /// The submission's path (without the query), as the browser sent it
    /// (with a nested router's prefix).
    pub(crate) path: String,
    /// The start page: `/`, or under a nested router (`Router::nest`) its
    /// prefix's, `/app/` (the part of the browser's path the router
    /// stripped).
    pub(crate) start: String,
    /// The `Host` the submission was sent to.
    #[cfg_attr(not(feature = "html-rewriter"), allow(dead_code))]
    pub(crate) host: Option<String>,
    /// Whether the submission deletes the record: method DELETE, or a path
    /// whose last segment is `delete`, `destroy` or `remove` (HTML forms
    /// can only POST).
    pub(crate) deletes: bool,
    /// For an htmx request: where htmx is to put the answer (`HX-Retarget`),
    /// when the request says which element sent it.
    pub(crate) htmx_target: Option<String>,
    /// For an htmx request: what it says of itself.
    #[cfg_attr(not(feature = "html-rewriter"), allow(dead_code))]
    pub(crate) htmx: Option<htmx_request::HtmxRequest>,
}

impl AnswerContext {
    /// Reads the request's headers and URL.
    pub(crate) fn of(parts: &Parts) -> AnswerContext {
        let format = Format::of(&parts.headers);
        let page = reload::form_page(parts);
        AnswerContext {
            format,
            reload: reload_target(page.as_deref(), parts),
            page,
            action: own_path(parts),
            path: browser_path(parts).to_owned(),
            start: start_page(parts),
            host: parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned),
            deletes: parts.method == http::Method::DELETE
                || browser_path(parts)
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| {
                        ["delete", "destroy", "remove"]
                            .iter()
                            .any(|w| last.eq_ignore_ascii_case(w))
                    }),
            htmx_target: (format == Format::HtmxFragment)
                .then(|| source_selector(&parts.headers))
                .flatten(),
            htmx: (format == Format::HtmxFragment)
                .then(|| htmx_request::HtmxRequest::of(&parts.headers)),
        }
    }
}

/// `/`, or the nested router's prefix followed by `/` when the browser's
/// path is the routed one with a prefix before it (`/app/items/1` routed as
/// `/items/1`: `/app/`).
fn start_page(parts: &Parts) -> String {
    let routed = parts.uri.path();
    browser_path(parts)
        .strip_suffix(routed)
        .filter(|prefix| !prefix.is_empty() && routed.starts_with('/'))
        .and_then(|prefix| local_path(&format!("{prefix}/")))
        .unwrap_or_else(|| "/".to_owned())
}

/// The format an answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Html,
    HtmxFragment,
    ProblemJson,
}

impl Format {
    pub(crate) fn of(headers: &HeaderMap) -> Format {
        if headers
            .get("hx-request")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        {
            return Format::HtmxFragment;
        }
        if prefers_json(headers) {
            Format::ProblemJson
        } else {
            Format::Html
        }
    }
}

/// Whether the client's `Accept` ranks JSON above HTML.
fn prefers_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        let json_body = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        return json_body;
    };
    let (mut json, mut html) = (None::<f32>, None::<f32>);
    for (i, item) in accept.split(',').enumerate() {
        let mut params = item.split(';');
        let media = params
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            // Earlier entries win ties.
            - i as f32 * 1e-4;
        if media == "application/json"
            || media == "application/problem+json"
            || media.ends_with("+json")
        {
            json = Some(json.map_or(q, |j| j.max(q)));
        } else if media == "text/html" || media == "application/xhtml+xml" {
            html = Some(html.map_or(q, |h| h.max(q)));
        }
    }
    match (json, html) {
        (Some(j), Some(h)) => j > h,
        (Some(j), None) => j > 0.0,
        _ => false,
    }
}

fn title_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::CONFLICT => "This form is out of date",
        StatusCode::PAYLOAD_TOO_LARGE => "The submission is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The submission cannot be checked",
        StatusCode::PRECONDITION_FAILED => "Precondition failed",
        StatusCode::PRECONDITION_REQUIRED => "Precondition required",
        StatusCode::FORBIDDEN => "The submission came from another site",
        StatusCode::REQUEST_TIMEOUT => "The submission took too long to arrive",
        // A busy record, or a lock database that is down: the message says which.
        StatusCode::SERVICE_UNAVAILABLE => "The record cannot be saved right now",
        _ => "The submission was refused",
    }
}

fn html_response(status: StatusCode, format: Format, title: &str, content: String) -> Response {
    let body = if format == Format::HtmxFragment {
        content
    } else {
        let mut page = String::with_capacity(content.len() + 600);
        let _ = write!(
            page,
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title><style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}}.now{{background:#eef6ee}}.yours{{background:#fdf3e6}}label{{display:block;margin-top:.6rem;font-weight:600}}input[type=text],textarea{{width:100%;box-sizing:border-box;padding:.3rem}}.actions{{margin-top:1rem;display:flex;gap:1rem;align-items:center}}</style></head><body>{}</body></html>"#,
            escape(title),
            content
        );
        page
    };
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    if format == Format::HtmxFragment {
        res.headers_mut().insert(
            "hx-trigger",
            HeaderValue::from_static("concurrency-guard-refused"),
        );
        let kind = if status == StatusCode::CONFLICT {
            "conflict"
        } else {
            "refused"
        };
        mark_for_htmx(res.headers_mut(), kind);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The element that sent an htmx request, as htmx's `HX-Retarget` reads a
/// selector: its `#id` when it has a plain one (htmx 4 sends `HX-Source:
/// tag#id`, htmx 2 the id in `HX-Trigger`); else for htmx 4 `closest tag`
/// (`closest` includes the element itself; htmx 4 reads `this` as "the
/// element whose `hx-target` says this"), so that a delete button's
/// answer replaces the button, not the row its `hx-target` names; for
/// htmx 2 `this` (the element itself).
fn source_selector(headers: &HeaderMap) -> Option<String> {
    use htmx_request::plain_id;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(source) = text("hx-source") {
        let (tag, id) = source.split_once('#').unwrap_or((source, ""));
        if plain_id(id) {
            return Some(format!("#{id}"));
        }
        let plain_tag = !tag.is_empty()
            && tag.len() <= 32
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        return plain_tag.then(|| format!("closest {}", tag.to_ascii_lowercase()));
    }
    match text("hx-trigger") {
        Some(id) if plain_id(id) => Some(format!("#{id}")),
        _ => Some("this".to_owned()),
    }
}

/// Marks an answer to an htmx request as the guard's `kind` (`conflict`,
/// `refused`) in header `x-concurrency-guard`, to be swapped in place of
/// its target (`HX-Reswap: outerHTML`; the target is set by
/// [`retarget_htmx`]).
fn mark_for_htmx(headers: &mut HeaderMap, kind: &'static str) {
    headers.insert("x-concurrency-guard", HeaderValue::from_static(kind));
    headers.insert("hx-reswap", HeaderValue::from_static("outerHTML"));
}

fn problem_json(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: &str,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Response {
    let mut body = serde_json::Map::new();
    body.insert(
        "type".into(),
        format!("urn:concurrency-guard:{kind}").into(),
    );
    body.insert("title".into(), title.into());
    body.insert("status".into(), status.as_u16().into());
    body.insert("detail".into(), detail.into());
    body.extend(extra);
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::Value::Object(body).to_string(),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::of(&headers(&[])), Format::Html);
        assert_eq!(Format::of(&headers(&[("accept", "*/*")])), Format::Html);
        assert_eq!(
            Format::of(&headers(&[("accept", "application/json")])),
            Format::ProblemJson
        );
        assert_eq!(
            Format::of(&headers(&[(
                "accept",
                "text/html,application/xhtml+xml,*/*;q=0.8"
            )])),
            Format::Html
        );
        assert_eq!(
            Format::of(&headers(&[(
                "accept",
                "text/html;q=0.5, application/problem+json"
            )])),
            Format::ProblemJson
        );
        assert_eq!(
            Format::of(&headers(&[("content-type", "application/json")])),
            Format::ProblemJson
        );
        assert_eq!(
            Format::of(&headers(&[
                ("hx-request", "true"),
                ("accept", "application/json")
            ])),
            Format::HtmxFragment
        );
    }
}
