//! The routes' GET handlers, as the guard met them: what renders the page a stale form came from.
//!
//! Axum wraps each method of a route separately (`route_layer`, `layer`):
//! the guard around a route's POST handler cannot reach its GET handler.
//! The guard around the GET handler registers it here, by route, the first
//! time it serves a GET; the same layer's guard around the POST handler
//! finds it on a conflict. Only a service that was handed a GET request
//! (by axum's method routing) is ever registered, and it is only ever
//! called with GET: the write handler never sees a request from here. A
//! route whose page was not served since the process started gets the
//! guard's own conflict page.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::MatchedPath;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use tower_service::Service;

use super::BoxError;

type PageFuture = Pin<Box<dyn Future<Output = Option<Response<Body>>> + Send>>;
type Page = Arc<dyn Fn(Request<Body>) -> PageFuture + Send + Sync>;

/// At most this many routes per layer (a guard outside a `Router` is keyed
/// by the request path, which a client chooses).
const MAX_ROUTES: usize = 256;

/// The GET handlers of the routes a layer guards, by route.
#[derive(Default)]
pub(crate) struct Pages(Mutex<HashMap<String, Page>>);

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pages(..)")
    }
}

/// The route a request went to: axum's matched path, else its path.
fn route(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<MatchedPath>()
        .map_or(parts.uri.path(), MatchedPath::as_str)
}

impl Pages {
    /// Registers `inner`, which is serving the GET request `parts`, as its
    /// route's page (once per route).
    pub(crate) fn register<I, B>(&self, parts: &Parts, inner: &I)
    where
        I: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        I::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if parts.method != http::Method::GET {
            return;
        }
        let route = route(parts);
        let mut pages = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pages.contains_key(route) || pages.len() >= MAX_ROUTES {
            return;
        }
        let inner = Mutex::new(inner.clone());
        let page: Page = Arc::new(move |get: Request<Body>| {
            let mut svc = inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Box::pin(async move {
                // Never anything but a GET.
                if get.method() != http::Method::GET {
                    return None;
                }
                std::future::poll_fn(|cx| svc.poll_ready(cx)).await.ok()?;
                let response = svc.call(get).await.ok()?;
                Some(response.map(Body::new))
            })
        });
        pages.insert(route.to_owned(), page);
    }

    /// Whether the route `parts` went to has its page registered.
    pub(crate) fn contains(&self, parts: &Parts) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(route(parts))
    }

    /// The page of the route `parts` went to, rendered for `get`; `None`
    /// when the route's page is not known (or its handler failed).
    pub(crate) async fn render(&self, parts: &Parts, get: Request<Body>) -> Option<Response<Body>> {
        let page = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(route(parts))
            .cloned()?;
        page(get).await
    }
}
