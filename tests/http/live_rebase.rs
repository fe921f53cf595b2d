//! Live rebase: a stale form's check request learns what changed (the
//! inputs as the form renders them now, context values, a fresh token), and
//! the fresh token makes the user's next save current.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, Request, StatusCode, header, request::Parts};
use axum::response::Html;
use axum::routing::get;
use axum::{Form, Router};
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing, RenderState};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq, RenderState)]
#[render_state(form = "item")]
struct Item {
    #[render_state(key)]
    id: i64,
    name: String,
    description: String,
    active: bool,
    /// Never shown: must never be sent.
    #[render_state(skip)]
    secret: String,
    #[render_state(context)]
    stock: i64,
}

#[derive(Clone)]
struct App {
    item: Arc<Mutex<Item>>,
    loads: Arc<AtomicUsize>,
    handler_runs: Arc<AtomicUsize>,
    /// Runs of the write handler alone.
    writes: Arc<AtomicUsize>,
}

impl App {
    fn new() -> App {
        App {
            item: Arc::new(Mutex::new(Item {
                id: 7,
                name: "Lamp".into(),
                description: "Brass".into(),
                active: true,
                secret: "s3cr3t-value".into(),
                stock: 5,
            })),
            loads: Arc::default(),
            handler_runs: Arc::default(),
            writes: Arc::default(),
        }
    }
    fn item(&self) -> Item {
        self.item.lock().unwrap().clone()
    }
    fn change(&self, f: impl FnOnce(&mut Item)) {
        f(&mut self.item.lock().unwrap());
    }
}

impl FromRequestParts<App> for Item {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        app.loads.fetch_add(1, Ordering::SeqCst);
        let item = app.item();
        // `/items/8` is another record, shown with item 7's values.
        if parts.uri.path() == "/items/8" {
            return Ok(Item { id: 8, ..item });
        }
        Ok(item)
    }
}

async fn page(State(app): State<App>, Guarded(item): Guarded<Item>) -> Html<String> {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    Html(format!(
        r#"<form method="post"><input name="name" value="{}"><textarea name="description">{}</textarea></form>"#,
        common::escape(&item.name),
        common::escape(&item.description)
    ))
}

#[derive(Deserialize)]
struct Save {
    name: String,
    description: String,
    active: Option<String>,
}

async fn save(State(app): State<App>, Form(save): Form<Save>) -> StatusCode {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    app.writes.fetch_add(1, Ordering::SeqCst);
    app.change(|item| {
        item.name = save.name;
        item.description = save.description;
        item.active = save.active.is_some();
    });
    StatusCode::SEE_OTHER
}

fn router(live_rebase: bool) -> (Router, App) {
    let app = App::new();
    let layer = ConcurrencyGuardLayer::<Item, _>::new(
        KeyRing::new(1, Key::from_bytes(&[5; 32]).unwrap()),
        app.clone(),
    )
    .with_early_warning(Duration::from_secs(5))
    .with_live_rebase(live_rebase);
    let router = Router::new()
        .route("/items/{id}", get(page).post(save))
        .route_layer(layer)
        .with_state(app.clone());
    (router, app)
}

async fn page_token(router: &Router, path: &str) -> (String, String) {
    let res = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let html =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (common::token_in(&html).expect("a token in the page"), html)
}

/// A check request as the script sends it.
async fn check(
    router: &Router,
    token: &str,
    accept: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::get("/items/7")
        .header("x-concurrency-token", token)
        .header("x-concurrency-guard", "check");
    if let Some(accept) = accept {
        req = req.header(header::ACCEPT, accept);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn post(router: &Router, token: &str, pairs: &[(&str, &str)]) -> StatusCode {
    let mut all = vec![(common::FIELD, token)];
    all.extend_from_slice(pairs);
    let req = Request::post("/items/7")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(common::urlencode(&all)))
        .unwrap();
    router.clone().oneshot(req).await.unwrap().status()
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn a_stale_check_learns_the_changed_inputs_and_a_token_that_saves() {
    let (router, app) = router(true);
    let (token, html) = page_token(&router, "/items/7").await;
    assert!(html.contains(" data-rebase "), "the script is told: {html}");
    let runs = app.handler_runs.load(Ordering::SeqCst);

    // B renames the item.
    app.change(|i| i.name = "Desk lamp".into());
    let (status, headers, body) = check(&router, &token, JSON).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["changed"],
        json!([{ "name": "name", "value": "Desk lamp", "control": "text" }])
    );
    assert_eq!(answer["context"], json!([]));
    assert!(
        !body.contains("s3cr3t"),
        "a skipped field is never sent: {body}"
    );
    // The page's GET handler is asked once whether it serves this client
    // (issue 22.3: what changed goes only where the page would show it);
    // the write handler never runs.
    assert_eq!(
        app.handler_runs.load(Ordering::SeqCst),
        runs + 1,
        "the check asked the page once"
    );
    assert_eq!(
        app.writes.load(Ordering::SeqCst),
        0,
        "the check wrote nothing"
    );

    // The page took B's name in and swapped its token: A's save passes
    // with A's description and B's name.
    let fresh = answer["token"].as_str().unwrap();
    assert_ne!(fresh, token);
    // Like the token it replaces, it names the page the form is on (for
    // the reload link of a later refusal).
    let named = |t: &str| {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .unwrap();
        (
            bytes[0],
            String::from_utf8_lossy(&bytes).contains("/items/7"),
        )
    };
    assert_eq!(named(&token), (3, true));
    assert_eq!(named(fresh), (3, true));
    // The old token is still stale: with the name A's page showed before
    // it took B's in, a save would overwrite B's name.
    let before = [
        ("name", "Lamp"),
        ("description", "Brass, by A"),
        ("active", "on"),
    ];
    assert_eq!(post(&router, &token, &before).await, StatusCode::CONFLICT);
    let pairs = [
        ("name", "Desk lamp"),
        ("description", "Brass, by A"),
        ("active", "on"),
    ];
    assert_eq!(post(&router, fresh, &pairs).await, StatusCode::SEE_OTHER);
    let item = app.item();
    assert_eq!(
        (item.name.as_str(), item.description.as_str()),
        ("Desk lamp", "Brass, by A")
    );
}

#[tokio::test]
async fn a_fresh_token_covers_only_what_it_named() {
    let (router, app) = router(true);
    let (token, _) = page_token(&router, "/items/7").await;
    app.change(|i| i.name = "Desk lamp".into());
    let (_, _, body) = check(&router, &token, JSON).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let fresh = answer["token"].as_str().unwrap().to_owned();
    // Someone changes the description after the check: the fresh token
    // does not absorb it.
    app.change(|i| i.description = "Copper".into());
    let writes = app.writes.load(Ordering::SeqCst);
    let pairs = [
        ("name", "Desk lamp"),
        ("description", "Brass"),
        ("active", "on"),
    ];
    assert_eq!(post(&router, &fresh, &pairs).await, StatusCode::CONFLICT);
    assert_eq!(app.writes.load(Ordering::SeqCst), writes, "no write ran");
    assert_eq!(app.item().description, "Copper");
    // And the next check with it names that change.
    let (status, _, body) = check(&router, &fresh, JSON).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["changed"],
        json!([{ "name": "description", "value": "Copper", "control": "text" }])
    );
}

#[tokio::test]
async fn a_checkbox_and_a_context_value() {
    let (router, app) = router(true);
    let (token, _) = page_token(&router, "/items/7").await;
    app.change(|i| {
        i.active = false;
        i.stock = 6;
    });
    let (status, _, body) = check(&router, &token, JSON).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_str(&body).unwrap();
    // An unchecked checkbox renders empty (what a browser submits: nothing).
    assert_eq!(
        answer["changed"],
        json!([{ "name": "active", "value": "", "control": "checkbox" }])
    );
    assert_eq!(
        answer["context"],
        json!([{ "name": "stock", "value": "6" }])
    );
}

#[tokio::test]
async fn a_current_form_is_204() {
    let (router, app) = router(true);
    let (token, _) = page_token(&router, "/items/7").await;
    // A field that takes no part changes: still current.
    app.change(|i| i.secret = "other".into());
    let (status, _, body) = check(&router, &token, JSON).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
}

#[tokio::test]
async fn without_live_rebase_or_without_asking_for_json_a_stale_check_is_409() {
    let (off, app) = router(false);
    let (token, html) = page_token(&off, "/items/7").await;
    assert!(!html.contains("data-rebase"));
    app.change(|i| i.name = "Desk lamp".into());
    let (status, _, body) = check(&off, &token, JSON).await;
    assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, ""));

    let (on, app) = router(true);
    let (token, _) = page_token(&on, "/items/7").await;
    app.change(|i| i.name = "Desk lamp".into());
    let router = on;
    for accept in [None, Some("*/*"), Some("text/html")] {
        let (status, _, body) = check(&router, &token, accept).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::CONFLICT, ""),
            "{accept:?}"
        );
    }
}

#[tokio::test]
async fn a_token_that_is_not_this_forms_is_400_before_the_loader() {
    let (router, app) = router(true);
    let loads = app.loads.load(Ordering::SeqCst);
    for bad in ["garbage", "", "AAAA"] {
        let (status, _, body) = check(&router, bad, JSON).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(body.is_empty());
    }
    // A token of another key ring: refused before loading too.
    let other = concurrency_guard::ConcurrencyToken::issue(
        &KeyRing::new(1, Key::from_bytes(&[6; 32]).unwrap()),
        &app.item(),
    );
    let (status, _, _) = check(&router, other.value(), JSON).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(app.loads.load(Ordering::SeqCst), loads, "no load");

    // Another record's token (here, item 8's, same values) is refused and
    // tells nothing about item 7.
    let (token8, _) = page_token(&router, "/items/8").await;
    app.change(|i| i.name = "Desk lamp".into());
    let (status, _, body) = check(&router, &token8, JSON).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.is_empty());
}
