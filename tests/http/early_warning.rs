//! Early warning: check requests (204 current, 409 stale, no handler) and the
//! script auto-embed adds when the layer asks for it.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Form, Router};
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing, RenderState};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Clone, RenderState)]
struct Note {
    #[render_state(key)]
    id: i64,
    text: String,
}

#[derive(Clone, Default)]
struct App {
    text: Arc<Mutex<String>>,
    loads: Arc<AtomicUsize>,
    handler_runs: Arc<AtomicUsize>,
}

impl FromRequestParts<App> for Note {
    type Rejection = StatusCode;
    async fn from_request_parts(_: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        app.loads.fetch_add(1, Ordering::SeqCst);
        Ok(Note {
            id: 1,
            text: app.text.lock().unwrap().clone(),
        })
    }
}

async fn page(State(app): State<App>, Guarded(note): Guarded<Note>) -> impl IntoResponse {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self' 'nonce-n0nce'",
        )],
        Html(format!(
            r#"<form method="post"><textarea name="text">{}</textarea></form><form method="post"></form>"#,
            note.text
        )),
    )
}

#[derive(Deserialize)]
struct Edit {
    text: String,
}

async fn save(State(app): State<App>, Form(edit): Form<Edit>) -> StatusCode {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    *app.text.lock().unwrap() = edit.text;
    StatusCode::NO_CONTENT
}

fn router(warning: bool) -> (Router, App) {
    let app = App::default();
    *app.text.lock().unwrap() = "hello".into();
    let mut layer = ConcurrencyGuardLayer::<Note, _>::new(
        KeyRing::new(1, Key::from_bytes(&[4; 32]).unwrap()),
        app.clone(),
    );
    if warning {
        layer = layer.with_early_warning(Duration::from_secs(5));
    }
    let router = Router::new()
        .route("/notes/1", get(page).post(save))
        .route_layer(layer)
        .with_state(app.clone());
    (router, app)
}

async fn get_page(router: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn check(router: &Router, token: &str) -> (StatusCode, String) {
    let res = router
        .clone()
        .oneshot(
            Request::get("/notes/1")
                .header("x-concurrency-token", token)
                .header("x-concurrency-guard", "check")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_script_is_embedded_once_with_the_pages_nonce() {
    let (router, _) = router(true);
    let (_, _, html) = get_page(&router, "/notes/1").await;
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert_eq!(
        html.matches("_concurrency_token").count(),
        2,
        "a token in each form"
    );
    let token = common::token_in(&html).unwrap();
    assert!(html.contains(&format!(r#"data-token="{token}""#)));
    assert!(html.contains(r#"nonce="n0nce""#));
    assert!(html.contains(r#"data-interval="5""#));
    // The token comes first in the form, the script after it.
    let form = html.find("<form method=\"post\">").unwrap();
    assert!(
        html[form..].find("_concurrency_token").unwrap() < html[form..].find("<script").unwrap()
    );
}

#[tokio::test]
async fn the_guard_serves_its_script() {
    let (router, app) = router(true);
    let (_, _, html) = get_page(&router, "/notes/1").await;
    let src_at = html.find("src=\"").unwrap() + 5;
    let src = html[src_at..src_at + html[src_at..].find('"').unwrap()].replace("&amp;", "&");
    // An absolute path (issue 22, item 8): an injected `<base href>` cannot
    // send the script request, with the page's nonce, to another origin.
    assert!(
        src.starts_with("/notes/1?concurrency-guard=warn.js"),
        "{src}"
    );
    let loads = app.loads.load(Ordering::SeqCst);
    let (status, headers, js) = get_page(&router, &src).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("x-concurrency-token") && js.len() < 12 * 1024);
    assert_eq!(
        app.loads.load(Ordering::SeqCst),
        loads,
        "serving the script loads nothing"
    );
}

#[tokio::test]
async fn without_early_warning_nothing_is_added() {
    let (router, _) = router(false);
    let (_, _, html) = get_page(&router, "/notes/1").await;
    assert!(!html.contains("<script"));
    let (_, _, html) = get_page(&router, "/notes/1?concurrency-guard=warn.js").await;
    assert!(
        html.contains("<form"),
        "the query is the page's own business"
    );
}

#[tokio::test]
async fn checks_cost_the_loader_only_and_turn_409_once_stale() {
    let (router, app) = router(true);
    let (_, _, html) = get_page(&router, "/notes/1").await;
    let token = common::token_in(&html).unwrap();
    let runs = app.handler_runs.load(Ordering::SeqCst);
    let (status, body) = check(&router, &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    // Someone else saves.
    *app.text.lock().unwrap() = "changed".into();
    let (status, body) = check(&router, &token).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.is_empty());
    assert_eq!(
        app.handler_runs.load(Ordering::SeqCst),
        runs,
        "no check ran the handler"
    );
    // The stale form's save is still refused.
    let res = router
        .clone()
        .oneshot(
            Request::post("/notes/1")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("_concurrency_token={token}&text=mine")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(*app.text.lock().unwrap(), "changed");
}

#[tokio::test]
async fn a_bad_token_in_a_check_is_400() {
    let (router, app) = router(true);
    let (status, _) = check(&router, "not-a-token").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Not even text (obs-text bytes): 400 too, not a 500.
    let res = router
        .clone()
        .oneshot(
            Request::get("/notes/1")
                .header(
                    "x-concurrency-token",
                    http::HeaderValue::from_bytes(b"\xff\xfe token").unwrap(),
                )
                .header("x-concurrency-guard", "check")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.handler_runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_check_token_between_blanks_is_read() {
    let (router, _) = router(true);
    let (_, _, html) = get_page(&router, "/notes/1").await;
    let token = common::token_in(&html).unwrap();
    let (status, _) = check(&router, &format!(" \t{token} ")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
