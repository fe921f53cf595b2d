//! The answer to a refused submission (4xx): HTML, an htmx fragment or problem+json.

use std::fmt::Write as _;

use axum::response::Response;
use http::StatusCode;

use super::{AnswerContext, Format, html_response, problem_json, title_of};
use crate::guard::Rejection;
use crate::html::escape;

/// The answer to a refused submission.
pub(crate) fn rejection(rejection: Rejection, answer: &AnswerContext) -> Response {
    let status = rejection.status();
    let format = match status {
        // API answers: problem+json, except to htmx, which would put the
        // JSON in the page.
        StatusCode::PRECONDITION_FAILED | StatusCode::PRECONDITION_REQUIRED
            if answer.format != Format::HtmxFragment =>
        {
            Format::ProblemJson
        }
        _ => answer.format,
    };
    let mut res = match format {
        Format::ProblemJson => problem_json(
            status,
            rejection.kind(),
            title_of(status),
            &rejection.to_string(),
            serde_json::Map::new(),
        ),
        Format::Html | Format::HtmxFragment => html_response(
            status,
            format,
            title_of(status),
            notice(&rejection, answer, "h1"),
        ),
    };
    rejection.set_headers(res.headers_mut());
    res.extensions_mut().insert(rejection);
    res
}

/// What a refusal says in HTML: an alert (`role="alert"`) with its title in
/// a `heading` element (`h1` on the guard's own page, `h2` inside the app's
/// page), the message, and a link to reload the form.
pub(crate) fn notice(rejection: &Rejection, answer: &AnswerContext, heading: &str) -> String {
    let title = title_of(rejection.status());
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<section class="concurrency-guard-refusal" role="alert"><{heading}>{title}</{heading}><p>{message}</p><p><a href="{reload}">Reload the form</a></p></section>"#,
        title = escape(title),
        message = escape(&rejection.to_string()),
        reload = escape(&answer.reload),
    );
    body
}
