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
//! 3. [`open_token`]: find the token (header, body or query) and verify it;
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
mod fresh;
mod load;
mod precondition;
mod refused;
mod stale;

use check::{compare, defer, open_token};
use decision::{After, Decision, StaleAnswer};
use precondition::{conditional, read_preconditions, unconditional};

use super::BoxError;
use super::config::{Config, Preconditions, Shared};
use super::deferred;
use super::rejection::Rejection;
use super::request::cross_origin::Detected;
use super::request::{TOKEN_HEADER, TokenSource, token, urlencoded};
use super::response::{self, AnswerContext, SubmittedToken, app_page, embed};
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
            Decision::Answer(mut response) => {
                if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
                    && parts.method == http::Method::POST
                {
                    // What a POST here may send instead (W3C LDP's
                    // `Accept-Post`, as MDN describes it for a 415).
                    response.headers_mut().insert(
                        "accept-post",
                        http::HeaderValue::from_static(crate::guard::rejection::FORM_TYPES),
                    );
                }
                Ok(refused::in_app_page::<T, S>(config, state, &parts, response).await)
            }
            Decision::Stale(stale) => Ok(answer_stale(config, &parts, *stale).await),
            Decision::Handler { body, held, after } => {
                let reload = fresh::reload_head(config, &parts, held.is_some(), &after);
                let host = (matches!(after, After::EmbedInRefusal(_)) || reload.is_some())
                    .then(|| embed::Embedding::host_of(&parts))
                    .flatten();
                let response = inner.call(Request::from_parts(parts, body)).await;
                // Loaded again before the lock goes: the data as saved.
                let saved = response.as_ref().is_ok_and(|r| r.status().is_success());
                let fresh = match reload {
                    Some(head) if saved => {
                        let shown = match &after {
                            After::Merged(shown) => shown.as_ref(),
                            _ => None,
                        };
                        fresh::fresh_token::<T, S>(config, head, state, shown).await
                    }
                    _ => None,
                };
                if let Some(held) = held {
                    held.release().await;
                }
                let mut response = response?;
                if let Some((token, value)) = fresh {
                    response.headers_mut().insert(TOKEN_HEADER, value);
                    if config.auto_embed && embed::is_rewritable_html(response.headers()) {
                        let embedding = embed::Embedding::with_host(&token, host.clone());
                        return Ok(embed::embed(response, embedding));
                    }
                }
                Ok(match after {
                    After::Nothing | After::Merged(_) => response.map(Body::new),
                    After::Deferred(checked) => {
                        deferred::after_handler(T::FORM_NAME, response.map(Body::new), &checked)
                    }
                    After::EmbedInRefusal(pending) => {
                        embed_in_refusal(config, response, &pending, host)
                    }
                })
            }
        }
    }
}

/// A stale submission's answer, by another handler than the write handler
/// (which is never called): the route's GET handler (the app's own page,
/// rewritten; the guard's own page when it cannot be), or the conflict
/// handler.
async fn answer_stale(config: &Config, parts: &Parts, stale: StaleAnswer) -> Response<Body> {
    match stale {
        StaleAnswer::AppPage {
            get,
            conflict,
            answer,
            rewrite,
        } => {
            match config.pages.render(parts, get).await {
                // The application refuses this client its page: it learns
                // that its submission was not saved, and nothing of the
                // record (no current values, no fresh token).
                Some(page) if !page.status().is_success() => {
                    tracing::info!(
                        form = conflict.form_name(),
                        status = page.status().as_u16(),
                        "conflict: the route's page refuses this client; the record's values and a fresh token withheld"
                    );
                    return response::withheld(&conflict, &answer);
                }
                Some(page) if rewrite => {
                    if let Some(response) =
                        app_page::answer(page, &conflict, &answer, config.auto_embed).await
                    {
                        return response;
                    }
                }
                Some(_) => {}
                None => tracing::debug!(
                    form = conflict.form_name(),
                    "conflict: this route's page was not served since the start (or has no GET); the guard's own answer instead"
                ),
            }
            response::conflict(&conflict, &answer)
        }
        StaleAnswer::Handler {
            handler,
            request,
            conflict,
        } => {
            let response = (handler.0)(request).await;
            let mut response = match (config.auto_embed, conflict.fresh_token()) {
                (true, Some(token)) if embed::is_rewritable_html(response.headers()) => {
                    let host = embed::Embedding::host_of(parts);
                    embed::embed(response, embed::Embedding::with_host(token, host))
                }
                _ => response,
            };
            response.extensions_mut().insert(conflict);
            response
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
        let source = TokenSource::of(parts, config.tokens.field_name());
        // Neither a token header or query field nor a form body that could
        // carry the token.
        if !source.is_outside_body() && !source.is_form() {
            // Only a precondition that ties the write to the record's state
            // stands in for the token; where preconditions are optional,
            // any present is evaluated all the same.
            let optional = config.preconditions == Preconditions::Optional;
            if preconditions.guard_the_write() || (optional && preconditions.any()) {
                return conditional::<T, S>(config, state, parts, body, preconditions).await;
            }
            // A body that may be a browser's form in a type the guard
            // cannot read (`enctype="text/plain"`): 415 says so, where 428
            // would ask for `If-Match`.
            if let Some(rejection) = source.unreadable(parts, &body) {
                let answer = AnswerContext::of(parts);
                return Decision::Answer(verify::refuse(form, rejection, &answer));
            }
            body = match unconditional(config, form, parts, body) {
                Ok(decision) => return decision,
                // Preconditions off: the token is required, and looking for
                // it below says why it is missing.
                Err(body) => body,
            };
        }
        // A form body with `If-Match` (an API client that sends urlencoded
        // or multipart): the precondition stands in for a missing token; a
        // token present too is verified as well (both must hold).
        if source.is_form() && preconditions.guard_the_write() {
            let carries = token::form_carries_token(
                &source,
                parts,
                body,
                config.tokens.field_name(),
                load::reading(config),
                config.multipart_prefix_limit,
            )
            .await;
            body = match carries {
                Ok((true, body)) => body,
                Ok((false, body)) => {
                    return conditional::<T, S>(config, state, parts, body, preconditions).await;
                }
                Err(rejection) => {
                    let answer = AnswerContext::of(parts);
                    return Decision::Answer(verify::refuse(form, rejection, &answer));
                }
            };
        }
        let (found, submitted) = match open_token(config, form, source, parts, body).await {
            Ok(found) => found,
            Err(answer) => return Decision::Answer(answer),
        };
        // The page the token names is read only if an answer needs its link.
        parts.extensions.insert(SubmittedToken {
            token: found.token.clone(),
            keys: config.tokens.keys().clone(),
        });
        let opened = match config.tokens.open(&found.token, form) {
            Ok(opened) => opened,
            Err(e) => {
                let answer = AnswerContext::of(parts);
                return Decision::Answer(verify::refuse(form, Rejection::InvalidToken(e), &answer));
            }
        };
        if config.check_in_handler {
            let submitted = submitted
                .as_deref()
                .map(|b| urlencoded::submitted_pairs(b, config.tokens.field_name()));
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
            submitted,
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
    host: Option<String>,
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
        embed::embed(response, embed::Embedding::with_host(&pending.sign(), host))
    } else {
        response.map(Body::new)
    }
}
