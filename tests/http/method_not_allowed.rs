//! A method the route does not have: RFC 9110 §15.5.6, 405 with `Allow`.
//! With the guard on the method router (`get(..).post(..).route_layer(guard)`,
//! `MethodRouter::route_layer`) axum answers it as without the guard; with
//! the guard around the whole route (`Router::route_layer`) the guard runs
//! before axum's method routing and cannot know which methods exist, so a
//! tokenless PUT is 428: never a handler run (README, route scoping).

use crate::common::*;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Method, Request, StatusCode, header};

fn tokenless(method: Method) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/items/1")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_guard_on_the_method_router_keeps_axums_405() {
    let state = AppState::new();
    let app = Router::new()
        .route(
            "/items/{id}",
            get(edit).post(save).route_layer(guard(&state)),
        )
        .with_state(state.clone());
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let answer = send(&app, tokenless(method.clone())).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}: {}",
            answer.body
        );
        let allow = answer.header(header::ALLOW.as_str()).unwrap_or_default();
        assert!(
            allow.contains("GET") && allow.contains("POST"),
            "{method}: Allow: {allow}"
        );
    }
    // The methods it has are guarded as ever.
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.price = 120);
    let stale = post_item(&app, "/items/1", &token, "Mine", 100).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    let bare = post_form(&app, "/items/1", &[("name", "Bare"), ("price", "1")]).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{}", bare.body);
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn the_guard_around_the_route_answers_first_and_never_runs_a_handler() {
    let state = AppState::new();
    let app = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route_layer(guard(&state))
        .with_state(state.clone());
    let answer = send(&app, tokenless(Method::PUT)).await;
    assert_eq!(
        answer.status,
        StatusCode::PRECONDITION_REQUIRED,
        "{}",
        answer.body
    );
    // With a valid token, axum's method routing has its say: 405.
    let token = load_token(&app, "/items/1").await;
    let mut put = tokenless(Method::PUT);
    put.headers_mut()
        .insert("x-concurrency-token", token.parse().unwrap());
    let answer = send(&app, put).await;
    assert_eq!(
        answer.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        answer.body
    );
    assert_eq!(state.runs(), 0);
}
