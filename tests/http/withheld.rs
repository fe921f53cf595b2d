//! Issue 22.3: the guard never shows a client data or a token that the
//! application's own GET would not give that client. A route whose page
//! refuses a user (403) answers that user's stale submission with a bare
//! 409: no saved values, no context values, no fresh token.

use crate::common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use common::*;
use concurrency_guard::Guarded;
use http::{HeaderMap, Method, Request, StatusCode, header};

/// The edit page, refused (403) to the user named `mallory`.
async fn edit_for_some(headers: HeaderMap, Guarded(item): Guarded<ItemForm>) -> Response {
    if headers.get("x-user").is_some_and(|u| u == "mallory") {
        return (StatusCode::FORBIDDEN, Html("<p>Not yours.</p>")).into_response();
    }
    Html(render_edit(&item)).into_response()
}

fn app_authorizing(state: &AppState) -> Router {
    let layer = guard(state)
        .with_early_warning(Duration::from_secs(5))
        .with_live_rebase(true);
    Router::new()
        .route("/items/{id}", get(edit_for_some).post(save))
        .route_layer(layer)
        .with_state(state.clone())
}

/// A stale POST of item 1 by `user`, answered in `format` (`html`, `json`, `htmx`).
fn stale_post(user: &str, token: &str, format: &str) -> Request<Body> {
    let body = urlencode(&[(FIELD, token), ("name", "Mine"), ("price", "100")]);
    let mut request = form_request(Method::POST, "/items/1", body);
    let headers = request.headers_mut();
    headers.insert("x-user", user.parse().unwrap());
    match format {
        "json" => {
            headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        }
        "htmx" => {
            headers.insert("hx-request", "true".parse().unwrap());
        }
        _ => {}
    }
    request
}

/// The app, its page served once (so the guard knows it), a token from
/// alice's page, then the record changed by someone else.
async fn stale_setup(state: &AppState) -> (Router, String) {
    let app = app_authorizing(state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| {
        item.name = "Secret plan".into();
        item.stock = 4242;
    });
    (app, token)
}

#[tokio::test]
async fn a_stale_post_from_a_user_the_page_refuses_gets_no_current_values_and_no_token() {
    for format in ["html", "json", "htmx"] {
        let state = AppState::new();
        let (app, token) = stale_setup(&state).await;
        let answer = send(&app, stale_post("mallory", &token, format)).await;
        // RFC 9110 §15.5.10: 409, the request conflicts with the resource's state.
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{format}: {}",
            answer.body
        );
        for secret in ["Secret plan", "4242"] {
            assert!(
                !answer.body.contains(secret),
                "{format}: the saved value {secret:?} is shown: {}",
                answer.body
            );
        }
        assert_eq!(token_count(&answer.body), 0, "{format}: {}", answer.body);
        assert!(
            !answer.body.contains("\"token\""),
            "{format}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("not been saved"),
            "{format}: {}",
            answer.body
        );
        if format != "json" {
            // What the user typed is theirs: shown back.
            assert!(answer.body.contains("Mine"), "{format}: {}", answer.body);
        }
        assert_eq!(state.runs(), 0, "{format}: the handler did not run");
        assert_eq!(state.item(1).unwrap().name, "Secret plan");
    }
}

#[tokio::test]
async fn a_stale_post_from_a_user_the_page_serves_gets_the_details() {
    for format in ["html", "json"] {
        let state = AppState::new();
        let (app, token) = stale_setup(&state).await;
        let answer = send(&app, stale_post("alice", &token, format)).await;
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{format}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("Secret plan"),
            "{format}: {}",
            answer.body
        );
        assert_eq!(state.runs(), 0);
    }
}

/// A live-rebase check request by `user` with `token`.
fn check(user: &str, token: &str) -> Request<Body> {
    Request::get("/items/1")
        .header("x-user", user)
        .header("x-concurrency-token", token)
        .header("x-concurrency-guard", "check")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_check_request_learns_what_changed_only_where_the_page_serves_the_user() {
    let state = AppState::new();
    let (app, token) = stale_setup(&state).await;
    let refused = send(&app, check("mallory", &token)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body, "", "stale, and nothing more");
    let served = send(&app, check("alice", &token)).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert!(served.body.contains("Secret plan"), "{}", served.body);
    assert!(served.body.contains("\"token\""), "{}", served.body);
}
