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
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{self, Found};
use super::extract::Guarded;
use super::inject;
use super::layer::{Config, ConflictHandling};
use super::lock::{self, ResourceLock};
use super::respond::{self, Rejection};
use crate::fingerprint::StateDigests;
use crate::state::{FormState, RenderState};
use crate::token::{CheckError, ConcurrencyToken};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The guard around one route's handler; made by
/// [`ConcurrencyGuardLayer`](crate::ConcurrencyGuardLayer).
pub struct ConcurrencyGuard<I, T, S> {
    pub(crate) inner: I,
    pub(crate) config: Arc<Config>,
    pub(crate) state: S,
    pub(crate) _form: PhantomData<fn() -> T>,
}

impl<I: Clone, T, S: Clone> Clone for ConcurrencyGuard<I, T, S> {
    fn clone(&self) -> Self {
        ConcurrencyGuard {
            inner: self.inner.clone(),
            config: self.config.clone(),
            state: self.state.clone(),
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
        let config = self.config.clone();
        let state = self.state.clone();
        let future: BoxFuture<I::Error> = if safe {
            Box::pin(render::<I, B, T, S>(inner, config, state, req))
        } else {
            Box::pin(submit::<I, B, T, S>(inner, config, state, req))
        };
        ResponseFuture {
            kind: Kind::Guarded { future },
        }
    }
}

/// GET, HEAD: load, sign, embed.
async fn render<I, B, T, S>(
    mut inner: I,
    config: Arc<Config>,
    state: S,
    req: Request<Body>,
) -> Result<Response<Body>, I::Error>
where
    I: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    let (mut parts, body) = req.into_parts();
    let loaded = match T::from_request_parts(&mut parts, &state).await {
        Ok(loaded) => loaded,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let token = config
        .tokens
        .issue_for_state(T::FORM_NAME, &FormState::of(&loaded));
    tracing::debug!(form = T::FORM_NAME, "concurrency token issued");
    let hidden_input = config
        .auto_embed
        .then(|| Arc::<str>::from(token.to_string()));
    parts.extensions.insert(Guarded(loaded));
    parts.extensions.insert(token);
    let response = inner.call(Request::from_parts(parts, body)).await?;
    Ok(match hidden_input {
        Some(hidden_input) => inject::embed(response, hidden_input),
        None => response.map(Body::new),
    })
}

/// POST, PUT, PATCH, DELETE: find, verify, lock, load, compare; then the
/// handler, or a refusal.
async fn submit<I, B, T, S>(
    mut inner: I,
    config: Arc<Config>,
    state: S,
    req: Request<Body>,
) -> Result<Response<Body>, I::Error>
where
    I: Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    let form = T::FORM_NAME;
    let (parts, body) = req.into_parts();
    let (mut parts, found) = body::find_token(
        parts,
        body,
        config.tokens.field_name(),
        config.body_limit,
        config.multipart_prefix_limit,
    )
    .await;
    let refuse = |rejection: Rejection, parts: &http::request::Parts| {
        tracing::info!(form, reason = %rejection, status = rejection.status().as_u16(), "submission refused");
        Ok(respond::rejection(rejection, parts))
    };
    let Found {
        token,
        body,
        form: submitted,
    } = match found {
        Ok(found) => found,
        Err(rejection) => return refuse(rejection, &parts),
    };
    let opened = match config.tokens.open(&token, form) {
        Ok(opened) => opened,
        Err(e) => return refuse(Rejection::InvalidToken(e), &parts),
    };

    // Lock the record before loading it, so the state compared is the state
    // the handler writes over. The lock is keyed by the signing key's digest
    // of the record; a token of an older key names the record under that
    // key, so the record is loaded once to learn its signing-key digest.
    let keys = config.tokens.keys();
    let signing_id = keys.signing_key_id();
    let lock_key = if opened.claims.key_id == signing_id {
        (signing_id, opened.claims.resource)
    } else {
        let loaded = match T::from_request_parts(&mut parts, &state).await {
            Ok(loaded) => loaded,
            Err(rejection) => return Ok(rejection.into_response()),
        };
        let digests = StateDigests::of(&FormState::of(&loaded), keys.signing_key());
        (signing_id, digests.resource)
    };
    let held: ResourceLock = lock::lock(lock_key).await;

    let loaded = match T::from_request_parts(&mut parts, &state).await {
        Ok(loaded) => loaded,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let current = FormState::of(&loaded);
    match opened.compare(form, &current) {
        Ok(()) => {
            tracing::debug!(form, "submission is current; handler runs");
            parts.extensions.insert(Guarded(loaded));
            let response = inner.call(Request::from_parts(parts, body)).await;
            drop(held);
            Ok(response?.map(Body::new))
        }
        Err(CheckError::Token(e)) => {
            drop(held);
            refuse(Rejection::InvalidToken(e), &parts)
        }
        Err(CheckError::Conflict(conflict)) => {
            let fresh: ConcurrencyToken = config.tokens.issue_for_state(form, &current);
            let conflict = (*conflict)
                .with_submitted(
                    submitted
                        .as_deref()
                        .map(|b| body::submitted_pairs(b, config.tokens.field_name())),
                )
                .with_fresh_token(fresh);
            tracing::info!(
                form,
                changed = ?conflict.changed_inputs().map(|c| c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()),
                context_changed = conflict.context_changed(),
                "conflict: the data changed since the form was rendered"
            );
            match &config.conflicts {
                ConflictHandling::Respond => {
                    drop(held);
                    Ok(respond::conflict(&conflict, &parts))
                }
                ConflictHandling::Custom(f) => {
                    drop(held);
                    let mut response = f(&conflict, &parts);
                    response.extensions_mut().insert(conflict);
                    Ok(response)
                }
                ConflictHandling::Handler => {
                    parts.extensions.insert(Guarded(loaded));
                    parts.extensions.insert(conflict);
                    let response = inner.call(Request::from_parts(parts, body)).await;
                    drop(held);
                    Ok(response?.map(Body::new))
                }
            }
        }
    }
}
