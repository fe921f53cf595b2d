//! The answer to a stale submission from a client the application's own
//! page refuses: 409, the record's data and a fresh token withheld.

use std::fmt::Write as _;

use axum::response::Response;
use http::StatusCode;

use super::{AnswerContext, Format, html_response, problem_json};
use crate::conflict::Conflict;
use crate::html::escape;

const TITLE: &str = "Your changes have not been saved";
const DETAIL: &str = "the record changed since the form was opened, and this page is not available to you now; nothing was saved";

/// 409 saying the submission was not saved, with no saved value, no context
/// value and no fresh token: only what the client itself submitted (HTML).
pub(crate) fn withheld(conflict: &Conflict, answer: &AnswerContext) -> Response {
    let status = StatusCode::CONFLICT;
    let mut extra = serde_json::Map::new();
    extra.insert("form".into(), conflict.form_name().into());
    match answer.format {
        Format::ProblemJson => problem_json(status, "conflict-withheld", TITLE, DETAIL, extra),
        Format::Html | Format::HtmxFragment => {
            let mut out = String::with_capacity(512);
            let _ = write!(
                out,
                r#"<section class="concurrency-conflict" role="alert"><h1>{TITLE}</h1><p>The record changed since you opened the form, and this page is not available to you now. Nothing was saved.</p>"#
            );
            if let Some(submitted) = conflict.submitted().filter(|s| !s.is_empty()) {
                out.push_str("<p>What you entered:</p><dl>");
                for (name, value) in submitted {
                    let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(value));
                }
                out.push_str("</dl>");
            }
            let _ = write!(
                out,
                r#"<p><a href="{}">Reload the page</a></p></section>"#,
                escape(&answer.reload)
            );
            html_response(status, answer.format, TITLE, out)
        }
    }
}
