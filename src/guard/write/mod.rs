//! Unsafe methods (POST, PUT, PATCH, DELETE): decide, then run the handler under the record's lock.
//!
//! [`decide`] takes a submission through named steps, each of which either
//! answers (the handler does not run) or hands on to the next:
//!
//! 1. [`read_preconditions`]: `If-Match` / `If-None-Match`, when the guard
//!    reads them;
//! 2. a submission without a token: [`conditional`] (an API client's
//!    `If-Match`) or [`unconditional`] (428, or through where preconditions
//!    are optional);
//! 3. [`open_token`]: find the token (header or body) and verify it;
//! 4. [`defer`] the comparison to the handler's transaction, or
//! 5. [`compare`]: lock the record, load it, and ask [`verify::verdict`];
//!    a stale submission goes to [`stale`] (merge or conflict).
//!
//! The record's lock ([`ResourceLock`]) is released when it is dropped:
//! at once when the guard answers, after the handler's future otherwise.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use tower_service::Service;

mod check;
mod decision;
mod load;
mod precondition;
mod stale;

use check::{compare, defer, open_token};
use decision::{After, Decision};
use precondition::{conditional, read_preconditions, unconditional};

use super::BoxError;
use super::config::{Config, Preconditions, Shared};
use super::deferred;
use super::rejection::Rejection;
use super::request::cross_origin::Detected;
use super::request::{TokenSource, urlencoded};
use super::response::{AnswerContext, embed};
use super::verify::{self, PendingToken};
use crate::state::RenderState;

/// POST, PUT, PATCH, DELETE: find, verify, lock, load, compare; then the
/// handler, or a refusal.
// The size of the future is the point (clippy would make it an `async fn`).
#[allow(clippy::manual_async_fn)]
pub(crate) fn submit<I, B, T, S>(
    mut inner: I,
    shared: Arc<Shared<S>>,
    mut parts: Parts,
    body: Body,
) -> impl Future<Output = Result<Response<Body>, I::Error>>
where
    I: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    // Not an `async fn`: its arguments would be kept twice in the future
    // (once as captured, once as locals); the block uses them in place. The
    // checks run in a future of their own, so that nothing they needed is
    // kept in this one while the handler runs.
    async move {
        let Shared { config, state } = &*shared;
        match decide::<T, S>(config, state, &mut parts, body).await {
            Decision::Answer(response) => Ok(response),
            Decision::Handler { body, held, after } => {
                let response = inner.call(Request::from_parts(parts, body)).await;
                if let Some(held) = held {
                    held.release().await;
                }
                let response = response?;
                Ok(match after {
                    After::Nothing => response.map(Body::new),
                    After::Deferred(checked) => {
                        deferred::after_handler(T::FORM_NAME, response.map(Body::new), &checked)
                    }
                    After::EmbedInRefusal(pending) => embed_in_refusal(config, response, &pending),
                    After::Conflict(conflict) => {
                        let mut response = response.map(Body::new);
                        response.extensions_mut().insert(*conflict);
                        response
                    }
                })
            }
        }
    }
}

/// The checks of a submission, up to the handler: what to answer, or with
/// what the handler runs (the parts made ready for it).
// As `submit`: the future's size.
#[allow(clippy::manual_async_fn)]
fn decide<'a, T, S>(
    config: &'a Arc<Config>,
    state: &'a S,
    parts: &'a mut Parts,
    mut body: Body,
) -> impl Future<Output = Decision> + 'a
where
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    async move {
        let form = T::FORM_NAME;
        if let Err(detected) = config.cross_origin.check(parts) {
            let header = match detected {
                Detected::SecFetchSite => "Sec-Fetch-Site",
                Detected::OriginNotHost => "Origin",
            };
            let answer = AnswerContext::of(parts);
            return Decision::Answer(verify::refuse(
                form,
                Rejection::CrossOrigin { header },
                &answer,
            ));
        }
        let preconditions = match read_preconditions(config, parts) {
            Ok(p) => p,
            Err(rejection) => {
                return Decision::Answer(verify::refuse(
                    form,
                    rejection,
                    &AnswerContext::of(parts),
                ));
            }
        };
        let source = TokenSource::of(&parts.headers);
        // Neither a token header nor a form body that could carry the token.
        // (A form body always needs its token: a precondition header next to
        // it is checked as well, never instead.)
        if !source.is_header() && !source.is_form() {
            // Only a precondition that ties the write to the record's state
            // stands in for the token; where preconditions are optional,
            // any present is evaluated all the same.
            let optional = config.preconditions == Preconditions::Optional;
            if preconditions.guard_the_write() || (optional && preconditions.any()) {
                return conditional::<T, S>(config, state, parts, body, preconditions).await;
            }
            body = match unconditional(config, form, parts, body) {
                Ok(decision) => return decision,
                // Preconditions off: the token is required, and looking for
                // it below says why it is missing.
                Err(body) => body,
            };
        }
        let (found, submitted) = match open_token(config, form, source, parts, body).await {
            Ok(found) => found,
            Err(answer) => return Decision::Answer(answer),
        };
        let opened = match config.tokens.open(&found.token, form) {
            Ok(opened) => opened,
            Err(e) => {
                let answer = AnswerContext::of(parts);
                return Decision::Answer(verify::refuse(form, Rejection::InvalidToken(e), &answer));
            }
        };
        let raw = submitted;
        let submitted = raw
            .as_deref()
            .map(|b| urlencoded::submitted_pairs(b, config.tokens.field_name()));
        if config.check_in_handler {
            tracing::debug!(
                form,
                "token verified; the handler checks inside its transaction"
            );
            return defer::<T>(
                config,
                Some(opened),
                preconditions,
                parts,
                found.body,
                submitted,
            );
        }
        compare::<T, S>(
            config,
            state,
            parts,
            found.body,
            &opened,
            &preconditions,
            submitted.zip(raw),
        )
        .await
    }
}

/// A handler that shows the form again after a failed submission (400,
/// 409, 422: the input was wrong) gets the token embedded as on GET: the
/// data it shows is current. Any other answer gets nothing: a 2xx answer to
/// a write (its data may have just changed), and a refusal of the client
/// itself (401, 403, 404…: the application would not show it the record).
fn embed_in_refusal<B>(
    config: &Config,
    response: Response<B>,
    pending: &PendingToken,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if config.auto_embed
        && matches!(
            response.status(),
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
        )
        && embed::is_rewritable_html(response.headers())
    {
        embed::embed(response, pending.sign().hidden_input(), None)
    } else {
        response.map(Body::new)
    }
}
