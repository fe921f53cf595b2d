//! The guard's own answers: refusals (4xx) and the conflict page (409).
//!
//! Each answer comes as HTML for browsers, as `application/problem+json`
//! (RFC 9457) for clients that prefer JSON, and as an HTML fragment for
//! htmx requests (`HX-Request`). The typed reason ([`Rejection`] or
//! [`Conflict`]) is in the response's extensions for outer layers.

use std::fmt::{self, Write as _};

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::conflict::Conflict;
use crate::html::{escape, escape_into};
use crate::token_error::TokenError;

/// Why the guard refused a submission before its handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No token in the header nor in the form field.
    MissingToken {
        /// The form field the guard looked in.
        field: String,
    },
    /// The token is wrong (see [`TokenError`]).
    InvalidToken(TokenError),
    /// The form field appears more than once with different values.
    DuplicateTokens,
    /// The body is larger than the limit.
    PayloadTooLarge {
        /// The limit in bytes, where the guard set it (else axum's
        /// `DefaultBodyLimit`).
        limit: Option<usize>,
    },
    /// A body the guard cannot read a token from, and no token header.
    UnsupportedMediaType {
        /// The request's Content-Type.
        content_type: String,
    },
    /// A multipart body that does not follow the format.
    BadMultipart {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// In a multipart body, the token part did not come within the first
    /// `limit` bytes (it must come before file fields).
    TokenNotFirst {
        /// How far the guard read.
        limit: usize,
    },
    /// The body could not be read (the connection failed).
    BodyRead,
    /// `If-Match` or `If-None-Match` does not hold: the client's copy is
    /// stale (412).
    PreconditionFailed {
        /// The failing header.
        header: &'static str,
    },
    /// A submission with neither a token nor `If-Match` (428).
    PreconditionRequired,
    /// `If-Match` or `If-None-Match` cannot be read.
    BadPrecondition {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Rejection {
    /// The status the guard answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::InvalidToken(TokenError::Expired { .. }) => StatusCode::CONFLICT,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Rejection::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short machine-readable name, used in problem+json `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::MissingToken { .. } => "missing-token",
            Rejection::InvalidToken(TokenError::Expired { .. }) => "expired-token",
            Rejection::InvalidToken(_) => "invalid-token",
            Rejection::DuplicateTokens => "duplicate-tokens",
            Rejection::PayloadTooLarge { .. } => "payload-too-large",
            Rejection::UnsupportedMediaType { .. } => "unsupported-media-type",
            Rejection::BadMultipart { .. } => "bad-multipart",
            Rejection::TokenNotFirst { .. } => "token-not-first",
            Rejection::BodyRead => "body-read",
            Rejection::PreconditionFailed { .. } => "precondition-failed",
            Rejection::PreconditionRequired => "precondition-required",
            Rejection::BadPrecondition { .. } => "bad-precondition",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::MissingToken { field } => write!(
                f,
                "the submission carries no concurrency token: send it in the form field {field:?} or in the x-concurrency-token header; reload the page and submit the form again"
            ),
            Rejection::InvalidToken(e) => e.fmt(f),
            Rejection::DuplicateTokens => f.write_str(
                "the submission carries several different concurrency tokens; a form must carry exactly one",
            ),
            Rejection::PayloadTooLarge { limit: Some(n) } => {
                write!(f, "the submission is larger than the limit of {n} bytes")
            }
            Rejection::PayloadTooLarge { limit: None } => {
                f.write_str("the submission is larger than the body limit")
            }
            Rejection::UnsupportedMediaType { content_type } => write!(
                f,
                "cannot read a concurrency token from a {content_type:?} body: send the token in the x-concurrency-token header, or submit the form as application/x-www-form-urlencoded or multipart/form-data"
            ),
            Rejection::BadMultipart { reason } => {
                write!(f, "the multipart body is malformed: {reason}")
            }
            Rejection::TokenNotFirst { limit } => write!(
                f,
                "the concurrency token was not within the first {limit} bytes of the multipart body: put the token field before any file field"
            ),
            Rejection::BodyRead => f.write_str("the submission's body could not be read"),
            Rejection::PreconditionFailed { header } => write!(
                f,
                "{header} does not hold: the record changed since you read it; GET it again for its current ETag and retry"
            ),
            Rejection::PreconditionRequired => f.write_str(
                "this request must be conditional: send If-Match with the ETag from a GET of this resource, or the concurrency token in the x-concurrency-token header",
            ),
            Rejection::BadPrecondition { header, reason } => {
                write!(f, "the {header} header is malformed: {reason}")
            }
        }
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut res = (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response();
        res.extensions_mut().insert(self);
        res
    }
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

/// Where "reload the form" points: the page the form was on when the
/// browser says so (same host), else the submission's own URL.
pub(crate) fn reload_target(parts: &Parts) -> String {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let referer = parts
        .headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.parse::<http::Uri>().ok());
    if let (Some(host), Some(referer)) = (host, referer) {
        if referer.authority().is_some_and(|a| a.as_str() == host) {
            if let Some(pq) = referer.path_and_query() {
                return pq.to_string();
            }
        }
    }
    parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.to_string())
}

/// The answer to a refused submission.
pub(crate) fn rejection(rejection: Rejection, parts: &Parts) -> Response {
    let status = rejection.status();
    let message = rejection.to_string();
    let format = match status {
        // API answers: always problem+json.
        StatusCode::PRECONDITION_FAILED | StatusCode::PRECONDITION_REQUIRED => Format::ProblemJson,
        _ => Format::of(&parts.headers),
    };
    let mut res = match format {
        Format::ProblemJson => problem_json(
            status,
            rejection.kind(),
            title_of(status),
            &message,
            serde_json::Map::new(),
        ),
        Format::Html | Format::HtmxFragment => {
            let mut body = String::new();
            let _ = write!(
                body,
                r#"<section class="concurrency-guard-refusal" role="alert"><h1>{title}</h1><p>{message}</p><p><a href="{reload}">Reload the form</a></p></section>"#,
                title = escape(title_of(status)),
                message = escape(&message),
                reload = escape(&reload_target(parts)),
            );
            html_response(status, format, title_of(status), body)
        }
    };
    res.extensions_mut().insert(rejection);
    res
}

fn title_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::CONFLICT => "This form is out of date",
        StatusCode::PAYLOAD_TOO_LARGE => "The submission is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The submission cannot be checked",
        StatusCode::PRECONDITION_FAILED => "Precondition failed",
        StatusCode::PRECONDITION_REQUIRED => "Precondition required",
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
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
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

/// The default answer to a conflict: 409.
pub(crate) fn conflict(conflict: &Conflict, parts: &Parts) -> Response {
    let format = Format::of(&parts.headers);
    let status = StatusCode::CONFLICT;
    let title = "Someone else changed this record";
    let message = conflict.to_string();
    let res = match format {
        Format::ProblemJson => {
            let mut extra = serde_json::Map::new();
            extra.insert("form".into(), conflict.form_name().into());
            if let Some(changed) = conflict.changed_inputs() {
                let fields: Vec<serde_json::Value> = changed
                    .iter()
                    .map(|c| serde_json::json!({ "name": c.name, "current": c.current }))
                    .collect();
                extra.insert("changed".into(), fields.into());
            }
            extra.insert("context_changed".into(), conflict.context_changed().into());
            if let Some(overlapping) = conflict.overlapping() {
                extra.insert("overlapping".into(), overlapping.into());
            }
            if let Some(entries) = conflict.debug_entries() {
                let entries: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "kind": format!("{:?}", e.kind),
                            "name": e.name,
                            "then": e.then,
                            "now": e.now,
                        })
                    })
                    .collect();
                extra.insert("debug".into(), entries.into());
            }
            if let Some(token) = conflict.fresh_token() {
                extra.insert("token".into(), token.value().into());
            }
            problem_json(status, "conflict", title, &message, extra)
        }
        Format::Html | Format::HtmxFragment => {
            html_response(status, format, title, conflict_html(conflict, parts))
        }
    };
    let mut res = res;
    res.extensions_mut().insert(conflict.clone());
    res
}

fn conflict_html(conflict: &Conflict, parts: &Parts) -> String {
    let mut out = String::with_capacity(2048);
    let reload = reload_target(parts);
    out.push_str(r#"<section class="concurrency-conflict" role="alert" aria-labelledby="concurrency-conflict-title"><h1 id="concurrency-conflict-title">Someone else changed this record</h1><p>While you had this form open, someone else saved a change to it. <strong>Your changes have not been saved.</strong></p>"#);
    match conflict.changed_inputs() {
        Some(changed) if !changed.is_empty() => {
            out.push_str(r#"<table class="changed-fields"><thead><tr><th scope="col">Field</th><th scope="col">Saved now</th>"#);
            let show_yours = conflict.submitted().is_some();
            if show_yours {
                out.push_str(r#"<th scope="col">You entered</th>"#);
            }
            out.push_str("</tr></thead><tbody>");
            for c in changed {
                let _ = write!(
                    out,
                    r#"<tr><th scope="row">{}</th><td class="now">{}</td>"#,
                    escape(&c.name),
                    escape(&c.current)
                );
                if show_yours {
                    if conflict.user_changed(&c.name) == Some(false) {
                        out.push_str(r#"<td class="yours"><em>you did not change this</em></td>"#);
                    } else {
                        let yours = conflict.submitted_value(&c.name).unwrap_or("");
                        let _ = write!(out, r#"<td class="yours">{}</td>"#, escape(yours));
                    }
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        }
        _ => {}
    }
    if conflict.context_changed() {
        let any_input = conflict.changed_inputs().is_some_and(|c| !c.is_empty());
        out.push_str(if any_input {
            "<p>Other information shown on the form changed too."
        } else {
            "<p>Information shown on the form changed."
        });
        let mut context = conflict.current_context().peekable();
        if context.peek().is_some() {
            out.push_str(" It is now: ");
            for (i, (name, value)) in context.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "<strong>{}</strong> {}", escape(name), escape(value));
            }
            out.push('.');
        }
        out.push_str("</p>");
    }
    if let Some(entries) = conflict.debug_entries() {
        out.push_str(r#"<details open class="concurrency-debug"><summary>Debug mode: entries that differ</summary><table><thead><tr><th>Kind</th><th>Name</th><th>When rendered</th><th>Now</th></tr></thead><tbody>"#);
        for e in entries {
            let show = |v: &Option<String>| v.as_deref().map_or("(absent)".to_owned(), escape);
            let _ = write!(
                out,
                "<tr><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.kind,
                escape(&e.name),
                show(&e.then),
                show(&e.now)
            );
        }
        out.push_str("</tbody></table></details>");
    }
    // The re-submission goes where the stale one went.
    let action = parts
        .uri
        .path_and_query()
        .map_or("/".to_owned(), |pq| pq.to_string());
    match (conflict.proposal(), conflict.fresh_token()) {
        (Some([]), Some(token)) => {
            // Nothing to fill in (a button-only form, e.g. "+1").
            let _ = write!(
                out,
                r#"<form method="post" action="{}" class="your-version">{}<div class="actions"><button type="submit">Do it again on the current data</button><a href="{}">Go back</a></div></form>"#,
                escape(&action),
                token,
                escape(&reload)
            );
        }
        (Some(submitted), Some(token)) => {
            let _ = write!(
                out,
                r#"<h2>Your version</h2><p>Your changes, on top of the values saved now. Check them against the saved values: saving again replaces what the other person saved in the fields you changed.</p><form method="post" action="{}" class="your-version">{}"#,
                escape(&action),
                token
            );
            for (i, (name, value)) in submitted.iter().enumerate() {
                let id = format!("cg-field-{i}");
                if conflict.is_checkbox(name) {
                    let _ = write!(
                        out,
                        r#"<label><input type="checkbox" id="{id}" name="{}" value="{}" checked> {}</label>"#,
                        escape(name),
                        escape(value),
                        escape(name)
                    );
                    continue;
                }
                let _ = write!(out, r#"<label for="{id}">{}</label>"#, escape(name));
                if value.contains('\n') || value.len() > 80 {
                    out.push_str(r#"<textarea rows="4" id=""#);
                    out.push_str(&id);
                    out.push_str(r#"" name=""#);
                    let _ = escape_into(&mut out, name);
                    out.push_str(r#"">"#);
                    let _ = escape_into(&mut out, value);
                    out.push_str("</textarea>");
                } else {
                    let _ = write!(
                        out,
                        r#"<input type="text" id="{id}" name="{}" value="{}">"#,
                        escape(name),
                        escape(value)
                    );
                }
            }
            // Unchecked boxes are absent from a submission: show them too.
            for name in conflict.checkboxes() {
                if !submitted.iter().any(|(n, _)| n == name) {
                    let _ = write!(
                        out,
                        r#"<label><input type="checkbox" name="{}" value="on"> {}</label>"#,
                        escape(name),
                        escape(name)
                    );
                }
            }
            let _ = write!(
                out,
                r#"<div class="actions"><button type="submit">Save my version anyway</button><a href="{}">Discard my changes and reload</a></div></form>"#,
                escape(&reload)
            );
        }
        _ => {
            let _ = write!(
                out,
                r#"<p><a href="{}">Reload the form with the current data</a></p>"#,
                escape(&reload)
            );
        }
    }
    out.push_str("</section>");
    out
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
