//! The shared fixture of the HTTP-level tests: an in-memory item store, the
//! item edit form, a real axum router behind the guard, and helpers to GET a
//! page, pull its token out and POST forms back.
#![allow(dead_code)]

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, FromRequestParts, Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing, RenderState};
use http::request::Parts;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt as _;
use serde::Deserialize;
use tokio::sync::Notify;
use tower::ServiceExt as _;

/// The token's form field.
pub const FIELD: &str = "_concurrency_token";

/// A row of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub price: i64,
    pub views: i64,
    pub stock: i64,
}

/// What the edit form shows.
#[derive(Debug, Clone, RenderState)]
pub struct ItemForm {
    #[render_state(key)]
    pub id: i64,
    pub name: String,
    pub price: i64,
    #[render_state(skip)]
    pub views: i64,
    #[render_state(context)]
    pub stock: i64,
}

/// Makes the handler that saves wait: it signals `entered`, then waits for
/// `release`.
#[derive(Default)]
pub struct Gate {
    pub entered: Notify,
    pub release: Notify,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Mutex<HashMap<i64, Item>>>,
    /// How many times a handler that may write (save, put, delete, the
    /// handler-mode save) ran.
    pub handler_runs: Arc<AtomicUsize>,
    /// How many times the loader ran.
    pub loads: Arc<AtomicUsize>,
    /// When set, `save` waits at this gate.
    pub gate: Option<Arc<Gate>>,
}

impl AppState {
    /// Items 1 ("Lamp") and 2 ("Chair").
    pub fn new() -> AppState {
        let store = HashMap::from([
            (
                1,
                Item {
                    id: 1,
                    name: "Lamp".into(),
                    price: 100,
                    views: 0,
                    stock: 5,
                },
            ),
            (
                2,
                Item {
                    id: 2,
                    name: "Chair".into(),
                    price: 250,
                    views: 0,
                    stock: 9,
                },
            ),
        ]);
        AppState {
            store: Arc::new(Mutex::new(store)),
            handler_runs: Arc::new(AtomicUsize::new(0)),
            loads: Arc::new(AtomicUsize::new(0)),
            gate: None,
        }
    }

    /// Item `id` as the store holds it now.
    pub fn item(&self, id: i64) -> Option<Item> {
        self.store.lock().unwrap().get(&id).cloned()
    }

    /// Changes item `id` behind the guard's back (another process writing).
    pub fn update(&self, id: i64, f: impl FnOnce(&mut Item)) {
        f(self
            .store
            .lock()
            .unwrap()
            .get_mut(&id)
            .expect("item exists"));
    }

    /// Adds or replaces an item.
    pub fn insert(&self, item: Item) {
        self.store.lock().unwrap().insert(item.id, item);
    }

    /// Removes item `id`.
    pub fn remove(&self, id: i64) {
        self.store.lock().unwrap().remove(&id);
    }

    /// A copy of the whole store.
    pub fn snapshot(&self) -> HashMap<i64, Item> {
        self.store.lock().unwrap().clone()
    }

    pub fn runs(&self) -> usize {
        self.handler_runs.load(Ordering::SeqCst)
    }

    pub fn load_count(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl Default for AppState {
    fn default() -> Self {
        AppState::new()
    }
}

/// The loader: the item named by the path, as the form shows it now.
impl FromRequestParts<AppState> for ItemForm {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        state.loads.fetch_add(1, Ordering::SeqCst);
        let Path(id) = Path::<i64>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match state.item(id) {
            Some(item) => Ok(ItemForm {
                id: item.id,
                name: item.name,
                price: item.price,
                views: item.views,
                stock: item.stock,
            }),
            None => {
                Err((StatusCode::NOT_FOUND, format!("item {id} does not exist")).into_response())
            }
        }
    }
}

/// What the edit form submits.
#[derive(Debug, Deserialize)]
pub struct SaveForm {
    pub name: String,
    pub price: i64,
}

/// The edit page: the form as the guard loaded it.
pub async fn edit(Guarded(item): Guarded<ItemForm>) -> Html<String> {
    Html(render_edit(&item))
}

pub fn render_edit(item: &ItemForm) -> String {
    format!(
        r#"<!doctype html><html><head><title>Edit {id}</title></head><body><h1>Item {id}</h1><p>In stock: {stock}</p><form method="post" action="/items/{id}"><input name="name" value="{name}"><input name="price" value="{price}"><button>Save</button></form></body></html>"#,
        id = item.id,
        name = escape(&item.name),
        price = item.price,
        stock = item.stock
    )
}

/// `text` escaped for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Saves name and price.
pub async fn save(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Form(form): Form<SaveForm>,
) -> Response {
    state.handler_runs.fetch_add(1, Ordering::SeqCst);
    if let Some(gate) = &state.gate {
        gate.entered.notify_one();
        gate.release.notified().await;
    }
    let mut store = state.store.lock().unwrap();
    let Some(item) = store.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "gone").into_response();
    };
    item.name = form.name;
    item.price = form.price;
    format!("saved item {id}").into_response()
}

/// PUT without a body: raises the price by one.
pub async fn bump(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    state.handler_runs.fetch_add(1, Ordering::SeqCst);
    state.update(id, |item| item.price += 1);
    format!("bumped item {id}").into_response()
}

/// DELETE without a body.
pub async fn delete(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    state.handler_runs.fetch_add(1, Ordering::SeqCst);
    state.remove(id);
    format!("deleted item {id}").into_response()
}

/// OPTIONS: the guard lets it through.
pub async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::ALLOW, "GET, POST, PUT, DELETE, OPTIONS")],
    )
        .into_response()
}

/// The test key.
pub fn key() -> Key {
    Key::from_bytes(&[7; 32]).unwrap()
}

/// The test ring: key 1.
pub fn keys() -> KeyRing {
    KeyRing::new(1, key())
}

/// The guard as the fixture configures it.
pub fn guard(state: &AppState) -> ConcurrencyGuardLayer<ItemForm, AppState> {
    ConcurrencyGuardLayer::<ItemForm, _>::new(keys(), state.clone())
}

/// The app with the default guard.
pub fn app(state: &AppState) -> Router {
    app_with(state, guard(state))
}

/// The app with `layer` as its guard.
pub fn app_with(state: &AppState, layer: ConcurrencyGuardLayer<ItemForm, AppState>) -> Router {
    item_routes(layer).with_state(state.clone())
}

/// `/items/{id}` behind `layer`, state still to give.
pub fn item_routes(layer: ConcurrencyGuardLayer<ItemForm, AppState>) -> Router<AppState> {
    Router::new()
        .route(
            "/items/{id}",
            get(edit)
                .post(save)
                .put(bump)
                .delete(delete)
                .options(options),
        )
        .route_layer(layer)
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub extensions: http::Extensions,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of the first hidden input in the body.
    pub fn token(&self) -> String {
        token_in(&self.body).unwrap_or_else(|| panic!("no token in {}", self.body))
    }

    #[track_caller]
    pub fn assert(&self, status: StatusCode, needle: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert!(
            self.body.contains(needle),
            "{needle:?} is not in the body: {}",
            self.body
        );
    }
}

/// Reads a response whole.
pub async fn read(response: Response) -> Answer {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("the body reads").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        extensions: parts.extensions,
        body: String::from_utf8(bytes.to_vec()).expect("the body is UTF-8"),
    }
}

/// Sends one request through `app`.
pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    read(app.clone().oneshot(request).await.expect("infallible")).await
}

/// GETs `path`.
pub async fn get_page(app: &Router, path: &str) -> Answer {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

/// GETs `path` and returns the token its page carries.
pub async fn load_token(app: &Router, path: &str) -> String {
    let page = get_page(app, path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.token()
}

/// The value of the first `_concurrency_token` hidden input in `html`.
pub fn token_in(html: &str) -> Option<String> {
    let marker = format!(r#"name="{FIELD}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// How many hidden token inputs `html` carries.
pub fn token_count(html: &str) -> usize {
    html.matches(&format!(r#"name="{FIELD}""#)).count()
}

/// `pairs`, urlencoded.
pub fn urlencode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A POST of `body` as an urlencoded form.
pub fn form_request(method: Method, path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.into())
        .unwrap()
}

/// POSTs `pairs` urlencoded to `path`.
pub async fn post_form(app: &Router, path: &str, pairs: &[(&str, &str)]) -> Answer {
    send(app, form_request(Method::POST, path, urlencode(pairs))).await
}

/// POSTs the edit form: the token, a name and a price.
pub async fn post_item(app: &Router, path: &str, token: &str, name: &str, price: i64) -> Answer {
    let price = price.to_string();
    post_form(
        app,
        path,
        &[(FIELD, token), ("name", name), ("price", &price)],
    )
    .await
}

/// A body made of the given frames, handed out one per poll; counts how
/// many have been pulled so far.
pub struct ChunkBody {
    chunks: Box<dyn Iterator<Item = Bytes> + Send>,
    pulled: Arc<AtomicUsize>,
}

impl ChunkBody {
    pub fn new(
        chunks: impl Iterator<Item = Bytes> + Send + 'static,
    ) -> (ChunkBody, Arc<AtomicUsize>) {
        let pulled = Arc::new(AtomicUsize::new(0));
        (
            ChunkBody {
                chunks: Box::new(chunks),
                pulled: pulled.clone(),
            },
            pulled,
        )
    }

    /// `text` in chunks of 1 to 7 bytes.
    pub fn small_chunks(text: &str) -> ChunkBody {
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let mut pieces = Vec::new();
        let mut at = 0;
        let mut size = 1;
        while at < bytes.len() {
            let end = (at + size).min(bytes.len());
            pieces.push(bytes.slice(at..end));
            at = end;
            size = size % 7 + 1;
        }
        ChunkBody::new(pieces.into_iter()).0
    }
}

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = self.chunks.next();
        if next.is_some() {
            self.pulled.fetch_add(1, Ordering::SeqCst);
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }
}
