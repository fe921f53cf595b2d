//! Conditional requests from the same RenderState: ETag, If-None-Match (304),
//! If-Match (412), 428, and their interplay with the form token.
//!
//! Each test names the rule of RFC 9110 §13 (or RFC 6585 §3) it checks.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use concurrency_guard::{
    ConcurrencyGuardLayer, ConcurrencyToken, Guarded, Key, KeyRing, Preconditions, RenderState,
};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, RenderState)]
struct Item {
    #[render_state(key)]
    id: i64,
    name: String,
    price: i64,
}

#[derive(Clone, Default)]
struct App {
    items: Arc<Mutex<HashMap<i64, Item>>>,
    handler_runs: Arc<AtomicUsize>,
}

impl FromRequestParts<App> for Item {
    type Rejection = (StatusCode, &'static str);
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| (StatusCode::BAD_REQUEST, "bad id"))?;
        app.items
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or((StatusCode::NOT_FOUND, "no such item"))
    }
}

async fn show(State(app): State<App>, Guarded(item): Guarded<Item>) -> Json<Item> {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    Json(item)
}

async fn page(State(app): State<App>, Guarded(item): Guarded<Item>) -> Html<String> {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    Html(format!(
        r#"<form method="post"><input name="name" value="{}"></form>"#,
        item.name
    ))
}

#[derive(Deserialize)]
struct Edit {
    name: String,
    price: i64,
}

async fn replace(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(edit): Json<Edit>,
) -> StatusCode {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    let mut items = app.items.lock().unwrap();
    let item = items.get_mut(&id).unwrap();
    item.name = edit.name;
    item.price = edit.price;
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct FormEdit {
    name: String,
}

async fn save_form(
    State(app): State<App>,
    Path(id): Path<i64>,
    axum::Form(edit): axum::Form<FormEdit>,
) -> StatusCode {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    app.items.lock().unwrap().get_mut(&id).unwrap().name = edit.name;
    StatusCode::NO_CONTENT
}

async fn remove(State(app): State<App>, Path(id): Path<i64>) -> StatusCode {
    app.handler_runs.fetch_add(1, Ordering::SeqCst);
    app.items.lock().unwrap().remove(&id);
    StatusCode::NO_CONTENT
}

fn key(b: u8) -> Key {
    Key::from_bytes(&[b; 32]).unwrap()
}

fn app_with(keys: KeyRing, preconditions: Preconditions) -> (Router, App) {
    let app = App::default();
    app.items.lock().unwrap().extend([
        (
            1,
            Item {
                id: 1,
                name: "Lamp".into(),
                price: 10,
            },
        ),
        (
            2,
            Item {
                id: 2,
                name: "Desk".into(),
                price: 90,
            },
        ),
    ]);
    let guard = || {
        ConcurrencyGuardLayer::<Item, _>::new(keys.clone(), app.clone())
            .with_preconditions(preconditions)
    };
    let router = Router::new()
        .route("/api/items/{id}", get(show).put(replace).delete(remove))
        .route_layer(guard())
        .merge(
            Router::new()
                .route("/items/{id}", get(page).post(save_form))
                .route_layer(guard()),
        )
        .with_state(app.clone());
    (router, app)
}

fn app() -> (Router, App) {
    app_with(KeyRing::new(1, key(1)), Preconditions::Required)
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn get_req(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

fn put_json(uri: &str, headers: &[(&str, &str)], json: &str) -> Request<Body> {
    let mut b = Request::put(uri).header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(json.to_owned())).unwrap()
}

async fn etag_of(router: &Router, uri: &str) -> String {
    let (status, headers, _) = send(router, get_req(uri, &[])).await;
    assert_eq!(status, StatusCode::OK);
    headers[header::ETAG].to_str().unwrap().to_owned()
}

const EDIT: &str = r#"{"name":"Floor lamp","price":12}"#;

#[tokio::test]
async fn get_carries_a_strong_etag_that_reveals_nothing() {
    let (router, _) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    assert!(tag.starts_with("\"1.") && tag.ends_with('"'), "{tag}");
    assert!(!tag.contains("Lamp") && !tag.contains("10"));
    assert_eq!(
        tag,
        etag_of(&router, "/api/items/1").await,
        "stable while nothing changes"
    );
    assert_ne!(
        tag,
        etag_of(&router, "/api/items/2").await,
        "another record, another tag"
    );
}

#[tokio::test]
async fn head_carries_the_same_etag() {
    let (router, _) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let req = Request::head("/api/items/1").body(Body::empty()).unwrap();
    let (status, headers, _) = send(&router, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ETAG], tag.as_str());
}

#[tokio::test]
async fn if_none_match_current_answers_304_without_the_handler() {
    // §13.1.2: weak comparison; a match on GET/HEAD is 304.
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let runs = app.handler_runs.load(Ordering::SeqCst);
    for value in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"other\", {tag}"),
        "*".into(),
    ] {
        let (status, headers, body) = send(
            &router,
            get_req("/api/items/1", &[("if-none-match", &value)]),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{value}");
        assert_eq!(headers[header::ETAG], tag.as_str());
        assert!(body.is_empty());
    }
    assert_eq!(
        app.handler_runs.load(Ordering::SeqCst),
        runs,
        "the handler did not run"
    );
    let (status, _, _) = send(
        &router,
        get_req("/api/items/1", &[("if-none-match", "\"1.stale\"")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn if_match_current_lets_the_write_through() {
    // §13.1.1: strong comparison against the current tag.
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", &tag)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Floor lamp");
    assert_ne!(
        etag_of(&router, "/api/items/1").await,
        tag,
        "the write changed the tag"
    );
}

#[tokio::test]
async fn if_match_stale_answers_412_problem_json_and_writes_nothing() {
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    // Someone else writes first.
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", &tag)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let runs = app.handler_runs.load(Ordering::SeqCst);
    let (status, headers, body) = send(
        &router,
        put_json(
            "/api/items/1",
            &[("if-match", &tag)],
            r#"{"name":"Mine","price":1}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 412);
    assert!(problem["detail"].as_str().unwrap().contains("If-Match"));
    assert_eq!(
        headers[header::ETAG],
        etag_of(&router, "/api/items/1").await.as_str()
    );
    assert_eq!(
        app.handler_runs.load(Ordering::SeqCst),
        runs + 1,
        "only the GET ran"
    );
    assert_eq!(app.items.lock().unwrap()[&1].name, "Floor lamp");
}

#[tokio::test]
async fn if_match_star_weak_lists_and_other_records() {
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let other = etag_of(&router, "/api/items/2").await;
    // `*` matches any current representation (§13.1.1).
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", "*")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tag = {
        let _ = tag;
        etag_of(&router, "/api/items/1").await
    };
    // A weak tag never matches If-Match (strong comparison).
    let weak = format!("W/{tag}");
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", &weak)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // Another record's tag does not match this one.
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", &other)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // A list matches when one member does, across several header fields too.
    let req = Request::put("/api/items/1")
        .header(header::CONTENT_TYPE, "application/json")
        .header("if-match", "\"nope\", W/\"x\"")
        .header("if-match", tag.as_str())
        .body(Body::from(EDIT))
        .unwrap();
    let (status, _, _) = send(&router, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app.handler_runs.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn malformed_preconditions_are_400() {
    let (router, app) = app();
    let runs = app.handler_runs.load(Ordering::SeqCst);
    for bad in ["abc", "\"a\" \"b\"", "\"open", "*, \"a\"", ","] {
        let (status, _, body) = send(
            &router,
            put_json("/api/items/1", &[("if-match", bad)], EDIT),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body.contains("If-Match header is malformed"), "{body}");
    }
    assert_eq!(app.handler_runs.load(Ordering::SeqCst), runs);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Lamp");
}

#[tokio::test]
async fn no_token_and_no_precondition_is_428() {
    // RFC 6585 §3.
    let (router, app) = app();
    let (status, headers, body) = send(&router, put_json("/api/items/1", &[], EDIT)).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(body.contains("If-Match"));
    let req = Request::delete("/api/items/1").body(Body::empty()).unwrap();
    let (status, _, _) = send(&router, req).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(app.handler_runs.load(Ordering::SeqCst), 0);
    assert_eq!(app.items.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn optional_preconditions_let_unconditional_writes_through() {
    let (router, app) = app_with(KeyRing::new(1, key(1)), Preconditions::Optional);
    let (status, _, _) = send(&router, put_json("/api/items/1", &[], EDIT)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Floor lamp");
    // A stale If-Match is still refused.
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", "\"1.stale\"")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn preconditions_off_means_no_etag_and_a_token_is_needed() {
    let (router, _) = app_with(KeyRing::new(1, key(1)), Preconditions::Off);
    let (_, headers, _) = send(&router, get_req("/api/items/1", &[])).await;
    assert!(!headers.contains_key(header::ETAG));
    let (status, _, body) = send(
        &router,
        put_json("/api/items/1", &[("if-match", "*")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

#[tokio::test]
async fn if_match_true_then_if_none_match_is_evaluated() {
    // §13.2.2: If-Match first; when true, If-None-Match next (412 on PUT).
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let (status, _, _) = send(
        &router,
        put_json(
            "/api/items/1",
            &[("if-match", &tag), ("if-none-match", &tag)],
            EDIT,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // If-None-Match: * on an existing record: 412 (create-only semantics).
    let (status, _, body) = send(
        &router,
        put_json("/api/items/1", &[("if-none-match", "*")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(body.contains("If-None-Match"));
    // If-None-Match with tags alone does not tie the write to the record's
    // state (it holds for every state but those listed): no stand-in for
    // the token or If-Match where preconditions are required (issue 22,
    // item 5), so 428, and nothing is written.
    let runs = app.handler_runs.load(Ordering::SeqCst);
    let (status, _, body) = send(
        &router,
        put_json("/api/items/1", &[("if-none-match", "\"1.stale\"")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED, "{body}");
    assert_eq!(app.handler_runs.load(Ordering::SeqCst), runs);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Lamp");
}

#[tokio::test]
async fn failed_if_match_on_get_is_412_before_if_none_match() {
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let runs = app.handler_runs.load(Ordering::SeqCst);
    let (status, _, _) = send(
        &router,
        get_req(
            "/api/items/1",
            &[("if-match", "\"1.stale\""), ("if-none-match", &tag)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.handler_runs.load(Ordering::SeqCst), runs);
}

#[tokio::test]
async fn delete_with_if_match() {
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/2").await;
    let req = Request::delete("/api/items/2")
        .header("if-match", tag.as_str())
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(&router, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.items.lock().unwrap().contains_key(&2));
    // The record is gone: `If-Match` is false when there is no current
    // representation (RFC 9110 §13.1.1): 412.
    let req = Request::delete("/api/items/2")
        .header("if-match", tag.as_str())
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = send(&router, req).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn tags_survive_key_rotation_until_the_key_is_removed() {
    let (router, _) = app_with(KeyRing::new(1, key(1)), Preconditions::Required);
    let tag = etag_of(&router, "/api/items/1").await;
    let (rotated, app) = app_with(
        KeyRing::new(1, key(1)).rotate(2, key(2)),
        Preconditions::Required,
    );
    assert!(etag_of(&rotated, "/api/items/1").await.starts_with("\"2."));
    let (status, _, _) = send(
        &rotated,
        put_json("/api/items/1", &[("if-match", &tag)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Floor lamp");
    let (removed, _) = app_with(KeyRing::new(2, key(2)), Preconditions::Required);
    let (status, _, _) = send(
        &removed,
        put_json("/api/items/1", &[("if-match", &tag)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn a_page_with_an_embedded_token_gets_no_etag() {
    // A browser revalidating it would get a 304 and keep showing the page
    // with its old token, which expires: such pages carry no validator.
    let (router, _) = app();
    let (status, headers, body) = send(&router, get_req("/items/1", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("_concurrency_token"));
    assert!(!headers.contains_key(header::ETAG), "{headers:?}");
}

#[tokio::test]
async fn a_template_mode_page_gets_no_etag_either() {
    // The handler renders the token itself: the page carries a token all the
    // same, and a 304 would keep its expired token alive across reloads.
    // The records of `app()`; its router (auto-embed) carries the JSON route.
    let (json_router, app) = app();
    async fn templated(token: ConcurrencyToken, Guarded(item): Guarded<Item>) -> Html<String> {
        Html(format!(
            r#"<form method="post">{token}<input name="name" value="{}"></form>"#,
            item.name
        ))
    }
    let router = Router::new()
        .route("/items/{id}", get(templated))
        .route_layer(
            ConcurrencyGuardLayer::<Item, _>::new(KeyRing::new(1, key(1)), app.clone())
                .with_auto_embed(false),
        )
        .with_state(app.clone());
    let (status, headers, body) = send(&router, get_req("/items/1", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.matches("_concurrency_token").count(), 1, "{body}");
    assert!(!headers.contains_key(header::ETAG), "{headers:?}");
    // The JSON of the same guard still carries one.
    assert!(!etag_of(&json_router, "/api/items/1").await.is_empty());
}

#[tokio::test]
async fn the_form_token_and_if_match_work_on_one_resource() {
    let (router, app) = app();
    // A browser opens the form; an API client reads the JSON.
    let (_, _, page) = send(&router, get_req("/items/1", &[])).await;
    let token = common::token_in(&page).expect("a token in the page");
    let tag = etag_of(&router, "/api/items/1").await;
    // The API client writes first.
    let (status, _, _) = send(
        &router,
        put_json("/api/items/1", &[("if-match", &tag)], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The browser's stale form is refused with 409 (a conflict, not 412).
    let req = Request::post("/items/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_concurrency_token={token}&name=Browser"
        )))
        .unwrap();
    let (status, _, body) = send(&router, req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("name"));
    assert_eq!(app.items.lock().unwrap()[&1].name, "Floor lamp");
    // A token in the header plus a stale If-Match: both must hold.
    let (_, _, page) = send(&router, get_req("/items/1", &[])).await;
    let fresh = common::token_in(&page).expect("a token in the page");
    let (status, _, _) = send(
        &router,
        put_json(
            "/api/items/1",
            &[("x-concurrency-token", &fresh), ("if-match", &tag)],
            r#"{"name":"Both","price":3}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // The same with a current If-Match passes.
    let current = etag_of(&router, "/api/items/1").await;
    let (status, _, _) = send(
        &router,
        put_json(
            "/api/items/1",
            &[("x-concurrency-token", &fresh), ("if-match", &current)],
            r#"{"name":"Both","price":3}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Both");
}

#[tokio::test]
async fn loader_rejection_is_returned_as_is_on_conditional_requests() {
    let (router, _) = app();
    let (status, _, body) = send(&router, get_req("/api/items/9", &[("if-none-match", "*")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, "no such item");
    // `If-Match: *` on a record that does not exist is false (RFC 9110
    // §13.1.1): 412, not the loader's 404.
    let (status, _, _) = send(
        &router,
        put_json("/api/items/9", &[("if-match", "*")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn a_weak_tag_on_an_unchanged_record_says_send_the_strong_one() {
    // RFC 9110 §13.1.1: If-Match compares strongly, so `W/"…"` never matches;
    // the record did not change, and the answer must not say it did.
    let (router, app) = app();
    let tag = etag_of(&router, "/api/items/1").await;
    let before = app.items.lock().unwrap()[&1].clone();
    let runs = app.handler_runs.load(Ordering::SeqCst);
    for value in [format!("W/{tag}"), format!("W/{tag}, W/\"other\"")] {
        let (status, headers, body) = send(
            &router,
            put_json("/api/items/1", &[("if-match", &value)], EDIT),
        )
        .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{value}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("weak entity tag"), "{detail}");
        assert!(detail.contains("without the W/ prefix"), "{detail}");
        assert!(!detail.contains("changed since you read it"), "{detail}");
        assert_eq!(
            headers[header::ETAG],
            tag.as_str(),
            "the strong tag to send"
        );
    }
    // A strong tag of an older state next to a weak current one: the weak
    // one is still why it failed.
    let (status, _, body) = send(
        &router,
        put_json(
            "/api/items/1",
            &[("if-match", &format!("\"1.stale\", W/{tag}"))],
            EDIT,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(body.contains("weak entity tag"), "{body}");
    assert_eq!(app.handler_runs.load(Ordering::SeqCst), runs);
    assert_eq!(app.items.lock().unwrap()[&1], before, "nothing written");
    // A stale strong tag alone still says the record changed.
    let (status, _, body) = send(
        &router,
        put_json("/api/items/1", &[("if-match", "\"1.stale\"")], EDIT),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(body.contains("changed since you read it"), "{body}");
}
