//! [`ConcurrencyGuard`]: the service that decides before the handler runs.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{self, Found, TokenSource};
use super::conditional::{self, Failed, RequestPreconditions};
use super::deferred::DeferredCheck;
use super::extract::Guarded;
use super::inject;
use super::layer::{Config, ConflictHandling, Preconditions};
use super::lock::{self, ResourceLock};
use super::respond::{self, Rejection};
use super::warning;
use crate::fingerprint::StateDigests;
use crate::merge;
use crate::state::{FormState, RenderState};
use crate::token::ConcurrencyToken;
use crate::tokens::CheckError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The guard around one route's handler; made by
/// [`ConcurrencyGuardLayer`](crate::ConcurrencyGuardLayer).
pub struct ConcurrencyGuard<I, T, S> {
    pub(crate) inner: I,
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) _form: PhantomData<fn() -> T>,
}

/// What every request of one guarded route reads: one reference count per
/// request, however many the application's state holds.
pub(crate) struct Shared<S> {
    pub(crate) config: Arc<Config>,
    pub(crate) state: S,
}

impl<I: Clone, T, S> Clone for ConcurrencyGuard<I, T, S> {
    fn clone(&self) -> Self {
        ConcurrencyGuard {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            _form: PhantomData,
        }
    }
}

impl<I, T, S> fmt::Debug for ConcurrencyGuard<I, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyGuard")
            .field("form", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The guard's response future: the inner future untouched where the
    /// guard has nothing to do (OPTIONS, TRACE), else the guard's own work.
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Passthrough { #[pin] future: F },
        Guarded { future: BoxFuture<E> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => future
                .poll(cx)
                .map(|res| res.map(|response| response.map(Body::new))),
            KindProj::Guarded { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<I, B, T, S> Service<Request<Body>> for ConcurrencyGuard<I, T, S>
where
    I: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    I::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
    S: Clone + Send + Sync + 'static,
{
    type Response = Response<Body>;
    type Error = I::Error;
    type Future = ResponseFuture<I::Future, I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let method = req.method();
        if method == Method::OPTIONS || method == Method::TRACE || method == Method::CONNECT {
            return ResponseFuture {
                kind: Kind::Passthrough {
                    future: self.inner.call(req),
                },
            };
        }
        let safe = method == Method::GET || method == Method::HEAD;
        // The clone is not ready; the ready one goes with this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        // Parts and body go in separately: a future keeps its arguments
        // for its whole life, so a `Request` taken apart inside would be
        // held twice.
        let (parts, body) = req.into_parts();
        let future: BoxFuture<I::Error> = if safe {
            Box::pin(render::<I, B, T, S>(inner, shared, parts, body))
        } else {
            Box::pin(submit::<I, B, T, S>(inner, shared, parts, body))
        };
        ResponseFuture {
            kind: Kind::Guarded { future },
        }
    }
}

/// GET, HEAD: load, sign, embed.
// The size of the future is the point (clippy would make it an `async fn`).
#[allow(clippy::manual_async_fn)]
fn render<I, B, T, S>(
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
    // (once as captured, once as locals); the block uses them in place.
    async move {
        let Shared { config, state } = &*shared;
        let form = T::FORM_NAME;
        if config.early_warning.is_some() && warning::is_script_request(&parts.uri) {
            return Ok(warning::script_response());
        }
        let loaded = match T::from_request_parts(&mut parts, state).await {
            Ok(loaded) => loaded,
            Err(rejection) => return Ok(rejection.into_response()),
        };
        let current = FormState::of(&loaded);
        let keys = config.tokens.keys();
        if let Some(token) = parts.headers.get(body::TOKEN_HEADER) {
            return Ok(check(config, form, token.as_bytes(), &current));
        }
        let digests = StateDigests::of(&current, keys.signing_key());
        // Made only when an answer carries it.
        let tagged = config.preconditions != Preconditions::Off;
        let etag = || conditional::etag(keys.signing_key_id(), keys.signing_key(), form, &digests);
        if tagged {
            let preconditions = match RequestPreconditions::read(&parts.headers) {
                Ok(p) => p,
                Err(rejection) => return Ok(refuse(form, rejection, &parts)),
            };
            match preconditions.evaluate(keys, form, &current) {
                Ok(()) => {}
                Err(Failed::IfNoneMatch) => {
                    tracing::debug!(form, "not modified");
                    let mut res = StatusCode::NOT_MODIFIED.into_response();
                    conditional::set_etag(res.headers_mut(), etag());
                    return Ok(res);
                }
                Err(failed @ Failed::IfMatch) => {
                    return Ok(refuse(form, failed.rejection(), &parts));
                }
            }
        }
        if let Some(debug) = &config.debug {
            debug.remember(
                keys.signing_key_id(),
                digests.fingerprint.0,
                digests.resource,
                &current,
            );
        }
        let token = config.tokens.issue_for_digests(form, &digests);
        tracing::debug!(form, "concurrency token issued");
        let warned_token = config.early_warning.map(|_| token.value().to_owned());
        let hidden_input = config.auto_embed.then(|| token.hidden_input());
        parts.extensions.insert(Guarded(loaded));
        parts.extensions.insert(token);
        let mut response = inner.call(Request::from_parts(parts, body)).await?;
        let html = inject::is_html(response.headers());
        let embeds =
            hidden_input.is_some() && html && inject::is_identity_encoded(response.headers());
        // No tag on an HTML page: it carries a token (embedded here, or written
        // by the handler in template mode), and a browser revalidating it would
        // get the old page, with its old token, back from a 304, again and
        // again once that token has expired. Tags are for API clients.
        if tagged && response.status().is_success() && !html {
            conditional::set_etag(response.headers_mut(), etag());
        }
        Ok(match hidden_input {
            Some(hidden_input) if embeds => {
                let script = config
                    .early_warning
                    .zip(warned_token)
                    .map(|(interval, token)| {
                        warning::script_tag(&token, interval, response.headers())
                    });
                inject::embed(response, hidden_input, script)
            }
            _ => response.map(Body::new),
        })
    }
}

/// A check request: is the form whose token this is still current? Answered
/// from the loader and the fingerprint alone, without a body: 204 current,
/// 409 stale (or expired), 400 a token that is not one of this form's.
fn check(config: &Config, form: &'static str, token: &[u8], current: &FormState) -> Response<Body> {
    let status = match config
        .tokens
        .open(token.trim_ascii(), form)
        .map_err(CheckError::Token)
        .and_then(|opened| opened.compare(form, current))
    {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(CheckError::Conflict(_)) => StatusCode::CONFLICT,
        Err(CheckError::Token(e @ crate::TokenError::Expired { .. })) => {
            tracing::debug!(form, reason = %e, "check: stale");
            StatusCode::CONFLICT
        }
        Err(CheckError::Token(e)) => {
            tracing::debug!(form, reason = %e, "check: refused");
            StatusCode::BAD_REQUEST
        }
    };
    tracing::debug!(form, status = status.as_u16(), "check request answered");
    let mut res = status.into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

fn refuse(form: &'static str, rejection: Rejection, parts: &Parts) -> Response<Body> {
    tracing::info!(form, reason = %rejection, status = rejection.status().as_u16(), "submission refused");
    respond::rejection(rejection, parts)
}

/// POST, PUT, PATCH, DELETE: find, verify, lock, load, compare; then the
/// handler, or a refusal.
// The size of the future is the point (clippy would make it an `async fn`).
#[allow(clippy::manual_async_fn)]
fn submit<I, B, T, S>(
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
            Next::Answer(response) => Ok(response),
            Next::Handler { body, held, after } => {
                let response = inner.call(Request::from_parts(parts, body)).await;
                drop(held);
                let response = response?;
                Ok(match after {
                    After::Nothing => response.map(Body::new),
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

/// What the checks of a submission decided.
enum Next {
    /// The guard answers; the handler does not run.
    Answer(Response<Body>),
    /// The handler runs, with this body, the record's lock held meanwhile.
    Handler {
        body: Body,
        held: Option<ResourceLock>,
        after: After,
    },
}

impl Next {
    fn handler(body: Body, held: Option<ResourceLock>, after: After) -> Next {
        Next::Handler { body, held, after }
    }
}

/// What becomes of the handler's answer.
enum After {
    /// Handed on as it is.
    Nothing,
    /// A form shown again gets the pending token embedded.
    EmbedInRefusal(PendingToken),
    /// The conflict the handler was shown goes into the answer's extensions.
    Conflict(Box<crate::Conflict>),
}

/// The checks of a submission, up to the handler: what to answer, or with
/// what the handler runs (the parts made ready for it).
// As `submit`: the future's size.
#[allow(clippy::manual_async_fn)]
fn decide<'a, T, S>(
    config: &'a Arc<Config>,
    state: &'a S,
    parts: &'a mut Parts,
    body: Body,
) -> impl Future<Output = Next> + 'a
where
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    async move {
        let form = T::FORM_NAME;
        let keys = config.tokens.keys();
        let signing_id = keys.signing_key_id();

        let preconditions = if config.preconditions == Preconditions::Off {
            RequestPreconditions::default()
        } else {
            match RequestPreconditions::read(&parts.headers) {
                Ok(p) => p,
                Err(rejection) => return Next::Answer(refuse(form, rejection, parts)),
            }
        };
        let source = TokenSource::of(&parts.headers);
        // Neither a token header nor a form body that could carry the token.
        let tokenless = !source.is_header() && !source.is_form();

        // An API client's conditional request: If-Match instead of a token. (A
        // form body always needs its token: a precondition header next to it
        // is checked as well, never instead.)
        if tokenless && preconditions.any() {
            if config.check_in_handler {
                tracing::debug!(
                    form,
                    "precondition read; the handler checks inside its transaction"
                );
                let deferred =
                    DeferredCheck::<T>::new(config.clone(), form, None, preconditions, parts, None);
                parts.extensions.insert(deferred);
                return Next::handler(body, None, After::Nothing);
            }
            let lock_key = match preconditions.signing_resource(signing_id) {
                Some(resource) => (signing_id, resource),
                None => match lock_key_of_loaded::<T, S>(parts, state, keys).await {
                    Ok(key) => key,
                    Err(response) => return Next::Answer(response),
                },
            };
            let held = lock::lock(lock_key).await;
            let loaded = match T::from_request_parts(parts, state).await {
                Ok(loaded) => loaded,
                Err(rejection) => return Next::Answer(rejection.into_response()),
            };
            let current = FormState::of(&loaded);
            if let Err(failed) = preconditions.evaluate(keys, form, &current) {
                let mut response = refuse(form, failed.rejection(), parts);
                let digests = StateDigests::of(&current, keys.signing_key());
                let etag = conditional::etag(signing_id, keys.signing_key(), form, &digests);
                conditional::set_etag(response.headers_mut(), etag);
                return Next::Answer(response);
            }
            tracing::debug!(form, "precondition holds; handler runs");
            parts.extensions.insert(Guarded(loaded));
            return Next::handler(body, Some(held), After::Nothing);
        }

        // No precondition either.
        if tokenless {
            match config.preconditions {
                Preconditions::Required => {
                    return Next::Answer(refuse(form, Rejection::PreconditionRequired, parts));
                }
                Preconditions::Optional => {
                    tracing::debug!(
                        form,
                        "unconditional submission allowed; handler runs unchecked"
                    );
                    return Next::handler(body, None, After::Nothing);
                }
                Preconditions::Off => {}
            }
        }

        let found = body::find_token(
            source,
            parts,
            body,
            config.tokens.field_name(),
            config.body_limit,
            config.multipart_prefix_limit,
        )
        .await;
        let Found {
            token,
            body,
            form: submitted,
        } = match found {
            Ok(found) => found,
            Err(rejection) => return Next::Answer(refuse(form, rejection, parts)),
        };
        let opened = match config.tokens.open(&token, form) {
            Ok(opened) => opened,
            Err(e) => return Next::Answer(refuse(form, Rejection::InvalidToken(e), parts)),
        };

        if config.check_in_handler {
            let submitted = submitted
                .as_deref()
                .map(|b| body::submitted_pairs(b, config.tokens.field_name()));
            tracing::debug!(
                form,
                "token verified; the handler checks inside its transaction"
            );
            let deferred = DeferredCheck::<T>::new(
                config.clone(),
                form,
                Some(opened),
                preconditions,
                parts,
                submitted,
            );
            parts.extensions.insert(deferred);
            return Next::handler(body, None, After::Nothing);
        }

        // Lock the record before loading it, so the state compared is the state
        // the handler writes over. The lock is keyed by the signing key's digest
        // of the record; a token of an older key names the record under that
        // key, so the record is loaded once to learn its signing-key digest.
        let lock_key = if opened.claims.key_id == signing_id {
            (signing_id, opened.claims.resource)
        } else {
            match lock_key_of_loaded::<T, S>(parts, state, keys).await {
                Ok(key) => key,
                Err(response) => return Next::Answer(response),
            }
        };
        let held: ResourceLock = lock::lock(lock_key).await;

        let loaded = match T::from_request_parts(parts, state).await {
            Ok(loaded) => loaded,
            Err(rejection) => return Next::Answer(rejection.into_response()),
        };
        let current = FormState::of(&loaded);
        match opened.compare(form, &current) {
            Ok(()) => {
                if let Err(failed) = preconditions.evaluate(keys, form, &current) {
                    return Next::Answer(refuse(form, failed.rejection(), parts));
                }

                tracing::debug!(form, "submission is current; handler runs");
                // A token for the state as it is now, signed only if the handler
                // asks for it or shows the form again (a 4xx HTML answer).
                let pending = PendingToken {
                    config: config.clone(),
                    form,
                    state: Arc::new(current),
                };
                parts.extensions.insert(pending.clone());
                parts.extensions.insert(Guarded(loaded));
                Next::handler(body, Some(held), After::EmbedInRefusal(pending))
            }
            Err(CheckError::Token(e)) => {
                drop(held);
                Next::Answer(refuse(form, Rejection::InvalidToken(e), parts))
            }
            Err(CheckError::Conflict(conflict)) => {
                let submitted = submitted
                    .as_deref()
                    .map(|b| body::submitted_pairs(b, config.tokens.field_name()));
                let sides = submitted.as_deref().and_then(|submitted| {
                    let now = StateDigests::of(&current, opened.key);
                    merge::classify(&opened.claims.inputs, opened.key, &current, &now, submitted)
                });
                if let (true, Some(submitted), Some(sides)) = (config.merge, &submitted, &sides) {
                    if !conflict.context_changed() && !sides.iter().any(merge::InputSides::overlaps)
                    {
                        let merged = merge::encode(&merge::rebase(submitted, sides));
                        tracing::info!(
                            form,
                            theirs = ?sides.iter().filter(|s| s.theirs_changed).map(|s| s.name.as_str()).collect::<Vec<_>>(),
                            yours = ?sides.iter().filter(|s| s.user_changed).map(|s| s.name.as_str()).collect::<Vec<_>>(),
                            "disjoint edits merged; handler runs"
                        );
                        parts
                            .headers
                            .insert(header::CONTENT_LENGTH, merged.len().into());
                        parts.extensions.insert(Guarded(loaded));
                        return Next::handler(Body::from(merged), Some(held), After::Nothing);
                    }
                }
                let conflict = explain(
                    config,
                    form,
                    &opened,
                    *conflict,
                    &current,
                    submitted,
                    sides.as_deref(),
                );
                tracing::info!(
                    form,
                    changed = ?conflict.changed_inputs().map(|c| c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()),
                    context_changed = conflict.context_changed(),
                    "conflict: the data changed since the form was rendered"
                );
                match &config.conflicts {
                    ConflictHandling::Respond => {
                        drop(held);
                        Next::Answer(respond::conflict(&conflict, parts))
                    }
                    ConflictHandling::Custom(f) => {
                        drop(held);
                        let mut response = f(&conflict, parts);
                        response.extensions_mut().insert(conflict);
                        Next::Answer(response)
                    }
                    ConflictHandling::Handler => {
                        parts.extensions.insert(Guarded(loaded));
                        parts.extensions.insert(conflict.clone());
                        Next::handler(body, Some(held), After::Conflict(Box::new(conflict)))
                    }
                }
            }
        }
    }
}

/// Completes a conflict for its answer: what the user submitted, who changed
/// what, a fresh token, and in debug mode every entry that differs.
pub(crate) fn explain(
    config: &Config,
    form: &'static str,
    opened: &crate::tokens::Opened<'_>,
    conflict: crate::Conflict,
    current: &FormState,
    submitted: Option<Vec<(String, String)>>,
    sides: Option<&[merge::InputSides]>,
) -> crate::Conflict {
    let fresh: ConcurrencyToken = config.tokens.issue_for_state(form, current);
    let mut conflict = conflict.with_submitted(submitted).with_fresh_token(fresh);
    if let Some(sides) = sides {
        conflict = conflict.with_sides(sides);
    }
    if let Some(debug) = &config.debug {
        let claims = &opened.claims;
        if let Some(diff) = debug.diff(
            claims.key_id,
            claims.fingerprint.0,
            claims.resource,
            current,
        ) {
            tracing::warn!(form, entries = ?diff, "debug: entries that differ");
            conflict = conflict.with_debug(diff);
        }
    }
    conflict
}

/// The token a passing submission's handler may need, signed on demand:
/// the state is kept, its digests are made only then.
#[derive(Clone)]
pub(crate) struct PendingToken {
    config: Arc<Config>,
    form: &'static str,
    state: Arc<FormState>,
}

impl PendingToken {
    pub(crate) fn sign(&self) -> ConcurrencyToken {
        self.config.tokens.issue_for_state(self.form, &self.state)
    }
}

/// A handler that shows the form again after a failed submission (400,
/// 422…) gets the token embedded as on GET: the data it shows is current.
/// A 2xx answer to a write gets nothing (its data may have just changed).
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
        && response.status().is_client_error()
        && inject::is_rewritable_html(response.headers())
    {
        inject::embed(response, pending.sign().hidden_input(), None)
    } else {
        response.map(Body::new)
    }
}

/// Loads the record once to learn its lock key (for tokens and tags that do
/// not name it under the signing key).
async fn lock_key_of_loaded<T, S>(
    parts: &mut Parts,
    state: &S,
    keys: &crate::KeyRing,
) -> Result<lock::LockKey, Response<Body>>
where
    T: RenderState + FromRequestParts<S>,
{
    match T::from_request_parts(parts, state).await {
        Ok(loaded) => {
            let digests = StateDigests::of(&FormState::of(&loaded), keys.signing_key());
            Ok((keys.signing_key_id(), digests.resource))
        }
        Err(rejection) => Err(rejection.into_response()),
    }
}
