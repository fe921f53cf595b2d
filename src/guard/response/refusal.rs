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
    let message = rejection.to_string();
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
                reload = escape(&answer.reload),
            );
            html_response(status, format, title_of(status), body)
        }
    };
    rejection.set_headers(res.headers_mut());
    res.extensions_mut().insert(rejection);
    res
}
