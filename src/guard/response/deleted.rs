//! The answer to a submission whose record was deleted since its form was opened.

use std::fmt::Write as _;

use axum::response::Response;
use http::StatusCode;

use super::{AnswerContext, Format, html_response, problem_json};
use crate::guard::Rejection;
use crate::html::escape;

/// A submission with a valid token for a record the loader no longer finds
/// (it answered `loader_status`, 404 or 410): 410 when the loader said
/// 410, else 409, with what the user entered, so nothing typed is lost.
/// The guard's own page (the app's page cannot be rendered for a record
/// that is gone), with a link back to the page the user came from when the
/// browser said which (see [`back_link`]) and one to the start page.
pub(crate) fn deleted(
    form: &'static str,
    loader_status: StatusCode,
    submitted: Option<&[(String, String)]>,
    answer: &AnswerContext,
) -> Response {
    let gone = loader_status == StatusCode::GONE;
    let rejection = Rejection::Deleted { gone };
    let status = rejection.status();
    let title = "This record was deleted";
    let detail = if answer.deletes {
        "the record was already deleted since the form was opened"
    } else {
        "the record was deleted since the form was opened: your changes have not been saved"
    };
    tracing::info!(
        form,
        status = status.as_u16(),
        "submission for a record deleted since its form was opened"
    );
    let mut res = match answer.format {
        Format::ProblemJson => {
            let mut extra = serde_json::Map::new();
            extra.insert("form".into(), form.into());
            if let Some(submitted) = submitted {
                let fields: Vec<serde_json::Value> = submitted
                    .iter()
                    .map(|(n, v)| serde_json::json!({ "name": n, "value": v }))
                    .collect();
                extra.insert("submitted".into(), fields.into());
            }
            problem_json(status, rejection.kind(), title, detail, extra)
        }
        format @ (Format::Html | Format::HtmxFragment) => {
            let mut out = String::with_capacity(1024);
            out.push_str(r#"<section class="concurrency-deleted" role="alert" aria-labelledby="concurrency-deleted-title"><h1 id="concurrency-deleted-title">This record was deleted</h1>"#);
            if answer.deletes {
                out.push_str("<p>Someone else deleted it after you opened this page: there is nothing left to delete.</p>");
            } else {
                out.push_str("<p>Someone else deleted it after you opened this form. <strong>Your changes have not been saved.</strong></p>");
            }
            match submitted {
                Some(submitted) if !submitted.is_empty() && !answer.deletes => {
                    out.push_str(r#"<p>What you entered, to keep or copy elsewhere:</p><table class="your-entries"><thead><tr><th scope="col">Field</th><th scope="col">You entered</th></tr></thead><tbody>"#);
                    for (name, value) in submitted {
                        let _ = write!(
                            out,
                            r#"<tr><th scope="row">{}</th><td><pre style="margin:0;white-space:pre-wrap">{}</pre></td></tr>"#,
                            escape(name),
                            escape(value)
                        );
                    }
                    out.push_str("</tbody></table>");
                }
                _ => {}
            }
            out.push_str("<p>");
            if let Some(back) = back_link(answer) {
                let _ = write!(
                    out,
                    r#"<a href="{}">Back to the page you came from</a> · "#,
                    escape(back)
                );
            }
            let _ = write!(
                out,
                r#"<a href="{}">Go to the start page</a></p></section>"#,
                escape(&answer.start)
            );
            html_response(status, format, title, out)
        }
    };
    res.extensions_mut().insert(rejection);
    res
}

/// The page the form was on (named by its token, else a same-origin
/// `Referer`), unless it is one of
/// the deleted record's own pages: the submission's path, or a path under
/// it (`/items/1/edit` for `/items/1`), which would only say "not found"
/// now. For a path ending in `delete`, `destroy` or `remove`, the record's
/// path is the one before that segment.
fn back_link(answer: &AnswerContext) -> Option<&str> {
    let back = answer.page.as_deref()?;
    let back_path = back.split(['?', '#']).next().unwrap_or_default();
    let path = answer.path.trim_end_matches('/');
    let record = match path.rsplit_once('/') {
        Some((record, last))
            if ["delete", "destroy", "remove"]
                .iter()
                .any(|w| last.eq_ignore_ascii_case(w)) =>
        {
            record
        }
        _ => path,
    };
    let own = back_path == record
        || back_path
            .strip_prefix(record)
            .is_some_and(|rest| rest.starts_with('/'));
    (!own).then_some(back)
}
