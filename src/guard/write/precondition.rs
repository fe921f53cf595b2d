//! Steps 1 and 2: an API client's `If-Match` / `If-None-Match`, and a submission with neither a token nor a precondition.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{Response, StatusCode};

use super::check::defer;
use super::decision::{After, Decision};
use super::load::{Loaded, lock_and_load, reading};
use crate::guard::config::{Config, Preconditions};
use crate::guard::extract::Guarded;
use crate::guard::rejection::Rejection;
use crate::guard::request::buffer;
use crate::guard::request::conditional::RequestPreconditions;
use crate::guard::response::AnswerContext;
use crate::guard::verify::{self};
use crate::state::RenderState;

/// Step 1: `If-Match` / `If-None-Match`, unless the guard ignores them.
pub(super) fn read_preconditions(
    config: &Config,
    parts: &Parts,
) -> Result<RequestPreconditions, Rejection> {
    if config.preconditions == Preconditions::Off {
        return Ok(RequestPreconditions::default());
    }
    RequestPreconditions::read(&parts.headers)
}

/// Step 2a: an API client's conditional request, `If-Match` instead of a
/// token: locked, loaded and evaluated as a token would be.
pub(super) async fn conditional<T, S>(
    config: &Arc<Config>,
    state: &S,
    parts: &mut Parts,
    body: Body,
    preconditions: RequestPreconditions,
) -> Decision
where
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    let form = T::FORM_NAME;
    if config.check_in_handler {
        tracing::debug!(
            form,
            "precondition read; the handler checks inside its transaction"
        );
        return defer::<T>(config, None, preconditions, parts, body, None);
    }
    // The whole body first: the record's lock is never held while the
    // client sends.
    let body = match buffer(parts, body, reading(config)).await {
        Ok(bytes) => Body::from(bytes),
        Err(rejection) => {
            return Decision::Answer(verify::refuse(form, rejection, &AnswerContext::of(parts)));
        }
    };
    // The lock of the record loaded, never of a tag's claim: the resource
    // part of a tag is not authenticated, and a list may hold any record's
    // tags besides this one's.
    let Loaded {
        value: loaded,
        current,
        held,
    } = match lock_and_load::<T, S>(config, parts, state, None).await {
        Ok(record) => record,
        Err(answer) => return Decision::Answer(gone(form, answer, parts, &preconditions)),
    };
    match verify::preconditions(config, form, &preconditions, &current) {
        Ok(()) => {
            tracing::debug!(form, "precondition holds; handler runs");
            parts.extensions.insert(Guarded(loaded));
            Decision::handler(body, Some(held), After::Nothing)
        }
        Err(refusal) => Decision::Answer(refusal.answer(form, &AnswerContext::of(parts))),
    }
}

/// The loader's refusal of a conditional request: `If-Match` on a record
/// that no longer exists (404, 410) is false (RFC 9110 §13.1.1: no current
/// representation), so 412; anything else is the loader's own answer.
fn gone(
    form: &'static str,
    loader_answer: Response<Body>,
    parts: &Parts,
    preconditions: &RequestPreconditions,
) -> Response<Body> {
    let status = loader_answer.status();
    if preconditions.has_if_match()
        && (status == StatusCode::NOT_FOUND || status == StatusCode::GONE)
    {
        return verify::refuse(
            form,
            Rejection::PreconditionFailed { header: "If-Match" },
            &AnswerContext::of(parts),
        );
    }
    loader_answer
}

/// Step 2b: neither a token nor a precondition. `Err`: the body back, to
/// look for the token all the same (preconditions off).
pub(super) fn unconditional(
    config: &Config,
    form: &'static str,
    parts: &Parts,
    body: Body,
) -> Result<Decision, Body> {
    match config.preconditions {
        Preconditions::Required => Ok(Decision::Answer(verify::refuse(
            form,
            Rejection::PreconditionRequired,
            &AnswerContext::of(parts),
        ))),
        Preconditions::Optional => {
            tracing::debug!(
                form,
                "unconditional submission allowed; handler runs unchecked"
            );
            Ok(Decision::handler(body, None, After::Nothing))
        }
        Preconditions::Off => Err(body),
    }
}
