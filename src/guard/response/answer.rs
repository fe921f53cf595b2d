//! The guard's answers as sent: the page or fragment, pointed at the
//! submitting element for htmx.

use axum::response::Response;
use http::HeaderValue;

use super::{AnswerContext, conflict_page, refusal, withheld as withheld_page};
use crate::conflict::Conflict;
use crate::guard::Rejection;

/// The default answer to a conflict: 409 (see [`conflict_page`]).
pub(crate) fn conflict(conflict: &Conflict, answer: &AnswerContext) -> Response {
    let mut res = conflict_page::conflict(conflict, answer);
    retarget_htmx(&mut res, answer);
    res
}

/// The answer to a stale submission from a client the route's page refuses
/// (see [`withheld_page`]).
pub(crate) fn withheld(conflict: &Conflict, answer: &AnswerContext) -> Response {
    let mut res = withheld_page::withheld(conflict, answer);
    retarget_htmx(&mut res, answer);
    res
}

/// The answer to a refused submission (see [`refusal`]).
pub(crate) fn rejection(rejection: Rejection, answer: &AnswerContext) -> Response {
    let mut res = refusal::rejection(rejection, answer);
    retarget_htmx(&mut res, answer);
    res
}

/// Points an answer to an htmx request marked as the guard's at the
/// element that sent the request (`HX-Retarget`), so that the answer
/// replaces the form, not the request's target (a boosted page's `<body>`).
fn retarget_htmx(res: &mut Response, answer: &AnswerContext) {
    if let Some(target) = &answer.htmx_target {
        if res.headers().contains_key("x-concurrency-guard") {
            if let Ok(value) = HeaderValue::from_str(target) {
                res.headers_mut().insert("hx-retarget", value);
            }
        }
    }
}
