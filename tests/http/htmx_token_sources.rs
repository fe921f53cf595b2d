//! The token where htmx 2 puts it: an `<form hx-post>` sends it twice (the
//! guard's `hx-headers` → `x-concurrency-token` header, and the hidden input
//! in the urlencoded body); a `<form hx-delete>` sends its hidden input in
//! the query string (htmx 2's `methodsThatUseUrlParams` default is
//! `["get", "delete"]`), with no body.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, Request, header::CONTENT_LENGTH};
use axum::routing::get;
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::common::*;

/// What htmx 2 sends for `<form hx-post>` with the guard's `hx-headers` on
/// it: `HX-Request`, the token header, and the form urlencoded (hidden input
/// included).
fn htmx_form_post(header_token: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    let mut request = form_request(Method::POST, "/items/1", urlencode(pairs));
    let headers = request.headers_mut();
    headers.insert("hx-request", "true".parse().unwrap());
    headers.insert("x-concurrency-token", header_token.parse().unwrap());
    request
}

/// What htmx 2 sends for `<form hx-delete>`: its fields in the query string,
/// `Content-Type: application/x-www-form-urlencoded` (set for any verb but
/// GET) and no body.
fn htmx_form_delete(query: &str, content_type: bool) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::DELETE)
        .uri(format!("/items/1?{query}"))
        .header("hx-request", "true");
    if content_type {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    builder.body(Body::empty()).unwrap()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictSave {
    name: String,
    price: i64,
}

type Received = Arc<Mutex<Option<(StrictSave, Option<String>)>>>;

fn strict_app(state: &AppState, received: Received) -> Router {
    let save = move |State(state): State<AppState>,
                     Path(id): Path<i64>,
                     headers: HeaderMap,
                     Form(form): Form<StrictSave>| async move {
        let length = headers
            .get(CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().to_owned());
        state.update(id, |item| item.name = form.name.clone());
        *received.lock().unwrap() = Some((form, length));
        "saved"
    };
    Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route_layer(guard(state))
        .with_state(state.clone())
}

#[tokio::test]
async fn a_token_in_the_header_and_the_body_is_cut_from_the_strict_form() {
    let state = AppState::new();
    let received = Received::default();
    let app = strict_app(&state, received.clone());
    let token = load_token(&app, "/items/1").await;

    let request = htmx_form_post(
        &token,
        &[("name", "Desk lamp"), (FIELD, &token), ("price", "120")],
    );
    send(&app, request).await.assert(StatusCode::OK, "saved");

    let (form, length) = received.lock().unwrap().take().expect("the handler ran");
    assert_eq!(
        form,
        StrictSave {
            name: "Desk lamp".into(),
            price: 120
        }
    );
    // The body it read, and the length it was told, without the token pair.
    assert_eq!(
        length.as_deref(),
        Some("name=Desk+lamp&price=120".len().to_string().as_str())
    );
    assert_eq!(state.item(1).unwrap().name, "Desk lamp");
}

#[tokio::test]
async fn different_tokens_in_the_header_and_the_body_are_refused() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let other = load_token(&app, "/items/2").await;

    for body_token in [other.as_str(), "garbage"] {
        let request = htmx_form_post(
            &token,
            &[(FIELD, body_token), ("name", "Mine"), ("price", "1")],
        );
        let answer = send(&app, request).await;
        answer.assert(
            StatusCode::BAD_REQUEST,
            "several different concurrency tokens",
        );
    }
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn a_stale_header_and_body_save_shows_what_the_user_entered() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());

    let request = htmx_form_post(
        &token,
        &[(FIELD, &token), ("name", "Mine typed"), ("price", "100")],
    );
    let answer = send(&app, request).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    // The user's own value is on the answer, beside the saved one.
    assert!(answer.body.contains("Mine typed"), "{}", answer.body);
    assert!(answer.body.contains("Theirs"), "{}", answer.body);
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Theirs");
}

#[tokio::test]
async fn a_stale_header_and_body_save_with_disjoint_edits_is_merged() {
    let state = AppState::new();
    let app = app_with(&state, guard(&state).with_merge(true));
    let token = load_token(&app, "/items/1").await;
    // Someone else changes the price only; the user changes the name only.
    state.update(1, |item| item.price = 130);

    let request = htmx_form_post(
        &token,
        &[(FIELD, &token), ("name", "Mine"), ("price", "100")],
    );
    let answer = send(&app, request).await;
    answer.assert(StatusCode::OK, "saved item 1");
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Mine", 130));
}

#[tokio::test]
async fn an_htmx_form_delete_with_the_token_in_the_query_deletes() {
    for content_type in [true, false] {
        let state = AppState::new();
        let app = app(&state);
        let token = load_token(&app, "/items/1").await;

        let query = urlencode(&[(FIELD, &token), ("name", "x")]);
        let answer = send(&app, htmx_form_delete(&query, content_type)).await;
        answer.assert(StatusCode::OK, "deleted item 1");
        assert_eq!(state.item(1), None, "content type sent: {content_type}");
    }
}

#[tokio::test]
async fn a_stale_htmx_form_delete_is_a_conflict() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());

    let query = urlencode(&[(FIELD, &token), ("name", "x")]);
    let answer = send(&app, htmx_form_delete(&query, true)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(state.runs(), 0);
    assert!(state.item(1).is_some());
}

#[tokio::test]
async fn a_query_token_unlike_the_header_or_body_token_is_refused() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let other = load_token(&app, "/items/2").await;
    let query = urlencode(&[(FIELD, &other)]);

    // With the header.
    let mut request = htmx_form_delete(&query, true);
    request
        .headers_mut()
        .insert("x-concurrency-token", token.parse().unwrap());
    send(&app, request).await.assert(
        StatusCode::BAD_REQUEST,
        "several different concurrency tokens",
    );

    // With the body.
    let mut request = form_request(
        Method::POST,
        &format!("/items/1?{query}"),
        urlencode(&[(FIELD, &token), ("name", "Mine"), ("price", "1")]),
    );
    request
        .headers_mut()
        .insert("hx-request", "true".parse().unwrap());
    send(&app, request).await.assert(
        StatusCode::BAD_REQUEST,
        "several different concurrency tokens",
    );

    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn a_forged_query_token_is_refused() {
    let state = AppState::new();
    let app = app(&state);
    let answer = send(&app, htmx_form_delete(&format!("{FIELD}=garbage"), true)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(state.runs(), 0);
    assert!(state.item(1).is_some());
}

#[tokio::test]
async fn the_handler_reads_the_query_without_the_token_field() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct DeleteParams {
        name: String,
    }
    let state = AppState::new();
    let seen = Arc::new(Mutex::new(None));
    let delete = {
        let seen = seen.clone();
        move |State(state): State<AppState>,
              Path(id): Path<i64>,
              uri: axum::http::Uri,
              axum::extract::Query(_): axum::extract::Query<DeleteParams>| async move {
            state.remove(id);
            *seen.lock().unwrap() = Some(uri.to_string());
            "deleted"
        }
    };
    let app = Router::new()
        .route("/items/{id}", get(edit).delete(delete))
        .route_layer(guard(&state))
        .with_state(state.clone());
    let token = load_token(&app, "/items/1").await;

    let query = urlencode(&[("name", "x"), (FIELD, &token)]);
    send(&app, htmx_form_delete(&query, true))
        .await
        .assert(StatusCode::OK, "deleted");
    assert_eq!(seen.lock().unwrap().as_deref(), Some("/items/1?name=x"));
    assert_eq!(state.item(1), None);
}
