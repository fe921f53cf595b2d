//! A body the guard cannot read a token from (an HTML form with
//! `enctype="text/plain"`, a body without a `Content-Type`, a
//! `Content-Type` that is not a media type) is 415 Unsupported Media Type
//! (RFC 9110 §15.5.16), with `Accept` naming what the guard reads (RFC 9110
//! §12.5.1; `Accept-Post` on a POST), in the format the client asked for.
//! WHATWG HTML: text/plain payloads "are not reliably interpretable by
//! computer". A request with no body at all and no token stays 428 (RFC
//! 6585 §3): it must be conditional. The handler never runs.

use crate::common::*;

use axum::body::Body;
use concurrency_guard::{Preconditions, Rejection};
use http::{Method, Request, StatusCode, header};

const FORM_TYPES: &str = "application/x-www-form-urlencoded, multipart/form-data";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// What a browser sends for `<form method="post" enctype="text/plain">`:
/// `name=value` lines ending in CRLF (WHATWG HTML, text/plain encoding).
fn text_plain_form(token: &str) -> String {
    format!("{FIELD}={token}\r\nname=Hacked\r\nprice=1\r\n")
}

fn request(
    method: Method,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri("/items/1");
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).unwrap()
}

#[track_caller]
fn assert_untouched(state: &AppState) {
    assert_eq!(state.runs(), 0, "the handler ran");
    assert_eq!(state.item(1).unwrap().name, "Lamp");
    assert_eq!(state.item(1).unwrap().price, 100);
}

#[tokio::test]
async fn a_text_plain_form_from_a_browser_is_415_in_html_naming_what_is_read() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let answer = send(
        &app,
        request(
            Method::POST,
            Some("text/plain"),
            &[(header::ACCEPT.as_str(), BROWSER_ACCEPT)],
            text_plain_form(&token),
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        answer.body
    );
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        answer.header("content-type")
    );
    for needle in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "not reliably interpretable by computer",
        "remove the enctype attribute",
    ] {
        assert!(answer.body.contains(needle), "{needle:?}: {}", answer.body);
    }
    assert!(!answer.body.contains("If-Match"), "{}", answer.body);
    assert_eq!(answer.header("accept"), Some(FORM_TYPES));
    assert_eq!(answer.header("accept-post"), Some(FORM_TYPES));
    assert!(matches!(
        answer.extensions.get::<Rejection>(),
        Some(Rejection::UnsupportedMediaType { content_type }) if content_type == "text/plain"
    ));
    assert_untouched(&state);
}

#[tokio::test]
async fn a_json_client_gets_the_415_as_problem_json() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let answer = send(
        &app,
        request(
            Method::PUT,
            Some("text/plain; charset=utf-8"),
            &[(header::ACCEPT.as_str(), "application/json")],
            text_plain_form(&token),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(problem["status"], 415);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(r#""text/plain; charset=utf-8""#),
        "{detail}"
    );
    assert!(
        detail.contains("application/x-www-form-urlencoded"),
        "{detail}"
    );
    assert!(detail.contains("multipart/form-data"), "{detail}");
    assert_eq!(answer.header("accept"), Some(FORM_TYPES));
    // Not a POST: `Accept-Post` would say POST is allowed here.
    assert_eq!(answer.header("accept-post"), None);
    assert_untouched(&state);
}

#[tokio::test]
async fn an_htmx_request_gets_the_415_as_a_fragment() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let answer = send(
        &app,
        request(
            Method::POST,
            Some("text/plain"),
            &[("hx-request", "true")],
            text_plain_form(&token),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(!answer.body.contains("<html"), "{}", answer.body);
    assert!(answer.body.contains("text/plain"), "{}", answer.body);
    assert_eq!(answer.header("x-concurrency-guard"), Some("refused"));
    assert_untouched(&state);
}

#[tokio::test]
async fn a_body_without_a_content_type_is_415() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let body = urlencode(&[(FIELD, &token), ("name", "Hacked"), ("price", "1")]);
    let answer = send(&app, request(Method::POST, None, &[], body)).await;
    answer.assert(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the submission has a body but no Content-Type",
    );
    assert!(
        answer.body.contains("multipart/form-data"),
        "{}",
        answer.body
    );
    assert_untouched(&state);
}

#[tokio::test]
async fn a_content_type_that_is_not_a_media_type_is_415_naming_it() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let body = urlencode(&[(FIELD, &token), ("name", "Hacked"), ("price", "1")]);
    let answer = send(
        &app,
        request(
            Method::POST,
            Some("garbage"),
            &[(header::ACCEPT.as_str(), "application/json")],
            body,
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        answer.body.contains(r#"body is \"garbage\""#),
        "{}",
        answer.body
    );
    assert_untouched(&state);
}

#[tokio::test]
async fn no_body_and_no_token_stays_428() {
    let state = AppState::new();
    let app = app(&state);
    // No body at all, with and without `Content-Length: 0`.
    for (method, headers) in [
        (Method::DELETE, &[][..]),
        (Method::POST, &[(header::CONTENT_LENGTH.as_str(), "0")][..]),
        (Method::PUT, &[][..]),
    ] {
        let answer = send(&app, request(method.clone(), None, headers, Body::empty())).await;
        assert_eq!(
            answer.status,
            StatusCode::PRECONDITION_REQUIRED,
            "{method}: {}",
            answer.body
        );
    }
    assert_untouched(&state);
}

#[tokio::test]
async fn a_json_body_without_token_nor_if_match_stays_428() {
    // An API client's body: what it lacks is a precondition.
    let state = AppState::new();
    let app = app(&state);
    let answer = send(
        &app,
        request(
            Method::PUT,
            Some("application/json"),
            &[],
            r#"{"name":"Blind"}"#,
        ),
    )
    .await;
    answer.assert(StatusCode::PRECONDITION_REQUIRED, "If-Match");
    assert_untouched(&state);
}

#[tokio::test]
async fn optional_preconditions_do_not_let_a_text_plain_form_through() {
    // Optional lets an API client's unconditional write through; a form
    // whose token the guard cannot read is not one.
    let state = AppState::new();
    let app = app_with(
        &state,
        guard(&state).with_preconditions(Preconditions::Optional),
    );
    let token = load_token(&app, "/items/1").await;
    let answer = send(
        &app,
        request(
            Method::POST,
            Some("text/plain"),
            &[],
            text_plain_form(&token),
        ),
    )
    .await;
    answer.assert(StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain");
    assert_untouched(&state);
}
