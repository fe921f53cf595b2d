//! `If-Match` on a form body (urlencoded or multipart), as an API client or
//! a script that speaks forms sends it: evaluated whenever it is present
//! (RFC 9110 §13.1.1: strong comparison; `*` holds when the record exists),
//! whatever the body's type. A token in the body next to it is verified as
//! well: both must hold.

use crate::common::*;

use axum::Router;
use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{Request, StatusCode, header};

/// The record's current strong ETag: `If-None-Match: *` on the page is
/// answered 304 with it (the page itself carries a token, not a tag).
async fn etag(app: &Router, path: &str) -> String {
    let answer = send(
        app,
        Request::get(path)
            .header(header::IF_NONE_MATCH, "*")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_MODIFIED, "{}", answer.body);
    answer
        .header("etag")
        .expect("a 304 carries the ETag")
        .to_owned()
}

fn urlencoded(if_match: &str, body: String) -> Request<Body> {
    Request::post("/items/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::IF_MATCH, if_match)
        .body(Body::from(body))
        .unwrap()
}

fn changed_elsewhere(state: &AppState) {
    state.update(1, |item| item.price = 150);
}

#[tokio::test]
async fn a_current_if_match_lets_an_urlencoded_write_through() {
    let state = AppState::new();
    let app = app(&state);
    let tag = etag(&app, "/items/1").await;
    let answer = send(
        &app,
        urlencoded(
            &tag,
            urlencode(&[("name", "Via If-Match"), ("price", "120")]),
        ),
    )
    .await;
    answer.assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.runs(), 1);
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Via If-Match", 120));
}

#[tokio::test]
async fn if_match_star_holds_for_an_existing_record() {
    let state = AppState::new();
    let app = app(&state);
    let answer = send(
        &app,
        urlencoded("*", urlencode(&[("name", "Star"), ("price", "1")])),
    )
    .await;
    answer.assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Star");
    // No current representation: `*` is false (412), nothing is created.
    let gone = send(
        &app,
        Request::post("/items/9")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::IF_MATCH, "*")
            .body(Body::from("name=Nine&price=9"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        gone.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        gone.body
    );
    assert_eq!(state.runs(), 1);
    assert!(state.item(9).is_none());
}

#[tokio::test]
async fn a_stale_if_match_on_a_form_body_is_412_and_writes_nothing() {
    let state = AppState::new();
    let app = app(&state);
    let tag = etag(&app, "/items/1").await;
    changed_elsewhere(&state);
    let answer = send(
        &app,
        urlencoded(&tag, urlencode(&[("name", "Stale"), ("price", "1")])),
    )
    .await;
    answer.assert(StatusCode::PRECONDITION_FAILED, "If-Match does not hold");
    // RFC 9110 §13.1.1: the answer tells the current tag.
    assert_eq!(
        answer.header("etag"),
        Some(etag(&app, "/items/1").await.as_str())
    );
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
    // A weak tag never matches If-Match.
    let weak = format!("W/{}", etag(&app, "/items/1").await);
    let answer = send(
        &app,
        urlencoded(&weak, urlencode(&[("name", "Weak"), ("price", "1")])),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(state.runs(), 0);
}

#[tokio::test]
async fn a_token_and_if_match_together_must_both_hold() {
    let state = AppState::new();
    let app = app(&state);
    // A stale token with a current If-Match: the token's conflict.
    let token = load_token(&app, "/items/1").await;
    changed_elsewhere(&state);
    let tag = etag(&app, "/items/1").await;
    let answer = send(
        &app,
        urlencoded(
            &tag,
            urlencode(&[(FIELD, &token), ("name", "Mine"), ("price", "1")]),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    // A current token with a stale If-Match: 412.
    let fresh = load_token(&app, "/items/1").await;
    let answer = send(
        &app,
        urlencoded(
            r#""1.stale-tag""#,
            urlencode(&[(FIELD, &fresh), ("name", "Mine"), ("price", "1")]),
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        answer.body
    );
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
    // Both current: saved, and the handler's form has no token field.
    let answer = send(
        &app,
        urlencoded(
            &tag,
            urlencode(&[(FIELD, &fresh), ("name", "Both"), ("price", "2")]),
        ),
    )
    .await;
    answer.assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Both");
}

#[tokio::test]
async fn a_malformed_token_next_to_a_current_if_match_is_still_refused() {
    let state = AppState::new();
    let app = app(&state);
    let tag = etag(&app, "/items/1").await;
    let answer = send(
        &app,
        urlencoded(
            &tag,
            urlencode(&[(FIELD, "forged"), ("name", "Evil"), ("price", "1")]),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(state.runs(), 0);
}

const BOUNDARY: &str = "----ifMatchBoundary";

fn multipart(fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    body
}

/// Saves the `name` part of a multipart form.
async fn save_multipart(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    mut form: Multipart,
) -> Response {
    state
        .handler_runs
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    while let Some(field) = form.next_field().await.unwrap() {
        if field.name() == Some("name") {
            let name = field.text().await.unwrap();
            state.update(id, |item| item.name = name);
        }
    }
    "saved".into_response()
}

#[tokio::test]
async fn if_match_on_a_multipart_body() {
    let state = AppState::new();
    let app = Router::new()
        .route("/items/{id}", get(edit).post(save_multipart))
        .route_layer(guard(&state))
        .with_state(state.clone());
    let post = |if_match: &str, body: String| {
        Request::post("/items/1")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .header(header::IF_MATCH, if_match)
            .body(Body::from(body))
            .unwrap()
    };
    let tag = etag(&app, "/items/1").await;
    let answer = send(&app, post(&tag, multipart(&[("name", "Upload")]))).await;
    answer.assert(StatusCode::OK, "saved");
    assert_eq!(state.item(1).unwrap().name, "Upload");
    // The tag of before that write is stale now.
    let answer = send(&app, post(&tag, multipart(&[("name", "Stale")]))).await;
    assert_eq!(answer.status, StatusCode::PRECONDITION_FAILED);
    // A stale token next to a current tag: the token's conflict.
    let token = load_token(&app, "/items/1").await;
    changed_elsewhere(&state);
    let tag = etag(&app, "/items/1").await;
    let answer = send(
        &app,
        post(&tag, multipart(&[(FIELD, &token), ("name", "Mine")])),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(state.runs(), 1);
    assert_eq!(state.item(1).unwrap().name, "Upload");
}
