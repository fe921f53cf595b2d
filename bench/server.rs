//! The server `bench/load.sh` drives: bare and guarded routes side by side,
//! with the same in-memory loader, the same 4 KB page and the same handlers.
//!
//! ```text
//! cargo run --release --bin bench_server -- 127.0.0.1:3999
//! ```
//!
//! | route | what |
//! |---|---|
//! | `GET /bare/items/{id}` | the loader as an extractor, the page |
//! | `GET /embed/items/{id}` | guarded; the token embedded by the guard |
//! | `GET /template/items/{id}` | guarded, `with_auto_embed(false)`; the handler renders the token |
//! | `POST /bare/items/{id}` | the loader, `Form` |
//! | `POST /embed/items/{id}` | guarded; `Guarded`, `Form` |
//! | `GET`, `POST /noop/items/{id}` | the bare handlers behind an empty `middleware::from_fn` layer: what any layer costs |
//! | `GET /padded/items/{id}` | the bare handler, its page as long as a guarded one (a token's worth of padding) |
//! | `POST /bare/upload/{id}`, `POST /embed/upload/{id}` | multipart, streamed and counted |
//! | `GET /bench/post-body` | a 1 KB urlencoded body with a valid token for item 1 |
//! | `GET /bench/token` | that token alone |
//! | `GET /watch/items/{id}` | guarded with early warning and live rebase: with `x-concurrency-token` and `x-concurrency-guard: check`, a check request |
//! | `GET /bench/stale-token` | a token for item 1 as it was before its name changed: a live-rebase check with it is answered 200 with what changed |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, FromRequestParts, Multipart, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Html;
use axum::routing::{get, post};
use concurrency_guard::{
    ConcurrencyGuardLayer, ConcurrencyToken, Guarded, Key, KeyRing, RenderState, Tokens,
};
use serde::Deserialize;

#[path = "pages.rs"]
mod pages;

/// The edit form: a key, five inputs, a context value.
#[derive(Clone, RenderState)]
struct ItemForm {
    #[render_state(key)]
    id: i64,
    name: String,
    sku: String,
    price: String,
    supplier: i64,
    active: bool,
    #[render_state(skip)]
    #[allow(dead_code)] // skipped: shown nowhere the guard looks
    views: i64,
    #[render_state(context)]
    stock: i64,
}

#[derive(Clone)]
struct AppState {
    items: Arc<HashMap<i64, ItemForm>>,
    page: Arc<str>,
    /// The page cut where the template puts the token.
    page_parts: Arc<(String, String)>,
    post_body: Arc<str>,
    token: Arc<str>,
    /// A token of item 1 with another name: stale.
    stale_token: Arc<str>,
    /// As long as the hidden input a guarded page gets.
    padding: Arc<str>,
}

/// The in-memory loader, used by the bare routes as an extractor and by
/// the guard.
impl FromRequestParts<AppState> for ItemForm {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, StatusCode> {
        let Path(id) = Path::<i64>::from_request_parts(parts, state)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        state.items.get(&id).cloned().ok_or(StatusCode::NOT_FOUND)
    }
}

/// What the edit form submits (the token field is ignored by serde).
#[derive(Deserialize)]
#[allow(dead_code)]
struct SaveForm {
    name: String,
    sku: String,
    price: String,
    supplier: i64,
    active: Option<String>,
    description: String,
}

async fn bare_edit(State(state): State<AppState>, item: ItemForm) -> Html<String> {
    std::hint::black_box(&item);
    Html(state.page.to_string())
}

/// The bare page with as many bytes more as a guarded page has (the hidden
/// input), to tell the guard's CPU from the cost of the bytes.
async fn padded_edit(State(state): State<AppState>, item: ItemForm) -> Html<String> {
    std::hint::black_box(&item);
    let (before, after) = &*state.page_parts;
    let mut page = String::with_capacity(before.len() + after.len() + 400);
    page.push_str(before);
    page.push_str(&state.padding);
    page.push_str(after);
    Html(page)
}

async fn embed_edit(
    State(state): State<AppState>,
    Guarded(item): Guarded<ItemForm>,
) -> Html<String> {
    std::hint::black_box(&item);
    Html(state.page.to_string())
}

async fn template_edit(
    State(state): State<AppState>,
    Guarded(item): Guarded<ItemForm>,
    token: ConcurrencyToken,
) -> Html<String> {
    use std::fmt::Write as _;
    std::hint::black_box(&item);
    let (before, after) = &*state.page_parts;
    let mut page = String::with_capacity(before.len() + after.len() + 400);
    page.push_str(before);
    let _ = write!(page, "{token}");
    page.push_str(after);
    Html(page)
}

async fn bare_save(item: ItemForm, Form(form): Form<SaveForm>) -> &'static str {
    std::hint::black_box((&item, &form));
    "saved"
}

async fn embed_save(Guarded(item): Guarded<ItemForm>, Form(form): Form<SaveForm>) -> &'static str {
    std::hint::black_box((&item, &form));
    "saved"
}

/// Streams the parts through, counting bytes; nothing is kept.
async fn upload(mut multipart: Multipart) -> Result<String, StatusCode> {
    let mut bytes = 0usize;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| StatusCode::BAD_REQUEST)?
    {
        while let Some(chunk) = field.chunk().await.map_err(|_| StatusCode::BAD_REQUEST)? {
            bytes += chunk.len();
        }
    }
    Ok(format!("{bytes} bytes\n"))
}

async fn bare_upload(item: ItemForm, multipart: Multipart) -> Result<String, StatusCode> {
    std::hint::black_box(&item);
    upload(multipart).await
}

async fn embed_upload(
    Guarded(item): Guarded<ItemForm>,
    multipart: Multipart,
) -> Result<String, StatusCode> {
    std::hint::black_box(&item);
    upload(multipart).await
}

fn item(id: i64) -> ItemForm {
    ItemForm {
        id,
        name: "Desk lamp".into(),
        sku: "LMP-0042".into(),
        price: "39.90".into(),
        supplier: 2,
        active: true,
        views: 1234,
        stock: 17,
    }
}

/// `BENCH_WORKERS` runtime threads (default: one per core); `bench/load.sh`
/// runs the server on one pinned core with one worker, wrk on the other.
fn main() {
    let workers = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(serve());
}

async fn serve() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".into())
        .parse()
        .expect("an address like 127.0.0.1:3999");
    assert!(
        addr.ip().is_loopback(),
        "the bench server listens on loopback only"
    );

    let keys = KeyRing::new(1, Key::from_bytes(&[7; 32]).expect("32 bytes"));
    let items: HashMap<i64, ItemForm> = (1..=100).map(|id| (id, item(id))).collect();
    let page = pages::page(4096);
    let cut = page
        .find("<form method=\"post\"")
        .expect("the page has a post form");
    let cut = cut + page[cut..].find('>').expect("the tag ends") + 1;
    let tokens = Tokens::new(keys);
    let token: Arc<str> = tokens.issue(&item(1)).value().into();
    let mut renamed = item(1);
    renamed.name.push_str(" (before)");
    let stale_token: Arc<str> = tokens.issue(&renamed).value().into();
    let state = AppState {
        items: Arc::new(items),
        page_parts: Arc::new((page[..cut].to_owned(), page[cut..].to_owned())),
        page: page.into(),
        post_body: pages::post_body(&token).into(),
        padding: "x".repeat(tokens.issue(&item(1)).to_string().len()).into(),
        token,
        stale_token,
    };
    let guard = ConcurrencyGuardLayer::<ItemForm, AppState>::with_tokens(tokens, state.clone());

    let app = Router::new()
        .route("/bare/items/{id}", get(bare_edit).post(bare_save))
        .merge(
            Router::new()
                .route("/embed/items/{id}", get(embed_edit).post(embed_save))
                .route_layer(guard.clone()),
        )
        .route("/padded/items/{id}", get(padded_edit))
        .merge(
            Router::new()
                .route("/noop/items/{id}", get(bare_edit).post(bare_save))
                .route_layer(axum::middleware::from_fn(
                    |req: axum::extract::Request, next: axum::middleware::Next| next.run(req),
                )),
        )
        .merge(
            Router::new()
                .route("/template/items/{id}", get(template_edit))
                .route_layer(guard.clone().with_auto_embed(false)),
        )
        .merge(
            Router::new()
                .route("/watch/items/{id}", get(embed_edit))
                .route_layer(
                    guard
                        .clone()
                        .with_early_warning(std::time::Duration::from_secs(5))
                        .with_live_rebase(true),
                ),
        )
        .route("/bare/upload/{id}", post(bare_upload))
        .merge(
            Router::new()
                .route("/embed/upload/{id}", post(embed_upload))
                .route_layer(guard),
        )
        .route(
            "/bench/post-body",
            get(|State(s): State<AppState>| async move { s.post_body.to_string() }),
        )
        .route(
            "/bench/token",
            get(|State(s): State<AppState>| async move { s.token.to_string() }),
        )
        .route(
            "/bench/stale-token",
            get(|State(s): State<AppState>| async move { s.stale_token.to_string() }),
        )
        .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free");
    eprintln!("bench server on http://{addr} (pid {})", std::process::id());
    axum::serve(listener, app).await.expect("serves");
}
