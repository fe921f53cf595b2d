//! [`ConcurrencyGuard`]: the tower service and its [`ResponseFuture`].
//!
//! The shell only sorts requests: safe methods go to [`read`], unsafe ones
//! to [`write`], OPTIONS, TRACE and CONNECT pass through untouched.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use bytes::Bytes;
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::config::Shared;
use super::{BoxError, read, write};
use crate::state::RenderState;

type BoxFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The guard around one route's handler; made by
/// [`ConcurrencyGuardLayer`](crate::ConcurrencyGuardLayer).
pub struct ConcurrencyGuard<I, T, S> {
    pub(crate) inner: I,
    pub(crate) shared: Arc<Shared<S>>,
    pub(crate) _form: PhantomData<fn() -> T>,
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
            Box::pin(read::render::<I, B, T, S>(inner, shared, parts, body))
        } else {
            Box::pin(write::submit::<I, B, T, S>(inner, shared, parts, body))
        };
        ResponseFuture {
            kind: Kind::Guarded { future },
        }
    }
}
