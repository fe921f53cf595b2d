//! Where auto-embed puts the token on a real page, and what a browser or
//! htmx then sends: a token goes wherever the page sends a write to this
//! origin (WHATWG HTML form submission, htmx's `hx-*` verbs and
//! `hx-headers`), once per form, and nowhere else.

use crate::common;

use axum::Router;
use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use common::*;
use concurrency_guard::{ConcurrencyToken, Guarded};
use http::{Method, Request, StatusCode, header};

const HOST: &str = "shop.example";

/// The edit page, with one form or element per rule; `{token}` is the
/// template's own token in the third form.
async fn page(Guarded(item): Guarded<ItemForm>, token: ConcurrencyToken) -> Response {
    let id = item.id;
    let (name, price) = (escape(&item.name), item.price);
    let html = format!(
        r#"<!doctype html><html><body hx-boost="true">
<form id="a" action="/items/{id}"><input name="name" value="{name}"><input name="price" value="{price}"><button formmethod="post">Save</button></form>
<form id="b" method="post" action="https://pay.example.net/checkout"><input name="amount" value="1"></form>
<form id="c" method="post" action="/items/{id}">{token}<input name="name" value="{name}"><input name="price" value="{price}"></form>
<form id="d" method="post" action="http://{HOST}/items/{id}"><input name="name" value="{name}"></form>
<button id="e" hx-delete="/items/{id}">Delete</button>
<form id="f" hx-post="/items/{id}" hx-headers='{{"X-Req":"1"}}'><input name="name" value="{name}"></form>
<button id="g" hx-post="https://other.example/items/{id}">Elsewhere</button>
</body></html>"#
    );
    ([(header::ETAG, "\"p1\"")], Html(html)).into_response()
}

fn app(state: &AppState) -> Router {
    Router::new()
        .route("/items/{id}", get(page).post(save).delete(delete))
        .route_layer(guard(state))
        .with_state(state.clone())
}

async fn get_from_host(app: &Router, path: &str) -> Answer {
    let request = Request::get(path)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

/// The markup of the element whose `id` is given, up to the next element
/// with an id (or the end of the body).
fn part<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body.find(&format!(r#"id="{id}""#)).expect("the element");
    let rest = &body[start..];
    let end = rest[1..].find(" id=\"").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// The `x-concurrency-token` that htmx would send from the element's
/// `hx-headers` (the attribute's value as the browser reads it, as JSON).
fn hx_header_token(element: &str) -> Option<String> {
    let start = element.find("hx-headers=\"")? + "hx-headers=\"".len();
    let end = element[start..].find('"')? + start;
    let json = element[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    value
        .get("x-concurrency-token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
}

#[tokio::test]
async fn each_write_of_the_page_gets_one_token_and_nothing_else_does() {
    let state = AppState::new();
    let app = app(&state);
    let answer = get_from_host(&app, "/items/1").await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = &answer.body;
    // A GET form whose button posts: the token, first in the form.
    assert!(
        part(body, "a").starts_with(&format!(
            r#"id="a" action="/items/1"><input type="hidden" name="{FIELD}""#
        )),
        "{body}"
    );
    // Another origin: none.
    assert_eq!(token_count(part(body, "b")), 0, "{body}");
    // The template's own token, and no second one.
    assert_eq!(token_count(part(body, "c")), 1, "{body}");
    // This host, written out: the token.
    assert_eq!(token_count(part(body, "d")), 1, "{body}");
    // htmx writes to this origin: the header; elsewhere: nothing.
    assert!(hx_header_token(part(body, "e")).is_some(), "{body}");
    assert!(part(body, "f").contains("X-Req"), "merged: {body}");
    assert!(hx_header_token(part(body, "f")).is_some(), "{body}");
    assert_eq!(token_count(part(body, "f")), 0, "a GET form: {body}");
    assert!(!part(body, "g").contains("hx-headers"), "{body}");
    // The handler's ETag described the page before the tokens went in.
    assert_eq!(answer.header("etag"), None);
}

#[tokio::test]
async fn a_formmethod_post_button_submits() {
    let state = AppState::new();
    let app = app(&state);
    let answer = get_from_host(&app, "/items/1").await;
    let token = token_in(part(&answer.body, "a")).expect("a token in form a");
    // What the browser sends for form a submitted by its button.
    let saved = post_item(&app, "/items/1", &token, "Desk", 250).await;
    saved.assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Desk");
}

#[tokio::test]
async fn a_form_with_its_own_token_submits_once_tokened() {
    let state = AppState::new();
    let app = app(&state);
    let answer = get_from_host(&app, "/items/1").await;
    let token = token_in(part(&answer.body, "c")).expect("a token in form c");
    let price = state.item(1).unwrap().price.to_string();
    let body = urlencode(&[(FIELD, &token), ("name", "Chair"), ("price", &price)]);
    let saved = send(&app, form_request(Method::POST, "/items/1", body)).await;
    saved.assert(StatusCode::OK, "saved item 1");
}

#[tokio::test]
async fn an_hx_delete_button_deletes() {
    let state = AppState::new();
    let app = app(&state);
    let answer = get_from_host(&app, "/items/1").await;
    let token = hx_header_token(part(&answer.body, "e")).expect("hx-headers");
    // htmx 2 sends a DELETE with its headers and an empty urlencoded body;
    // htmx 4 sends no body.
    for with_body in [true, false] {
        let id = if with_body { 1 } else { 2 };
        let token = if with_body {
            token.clone()
        } else {
            let page = get_from_host(&app, "/items/2").await;
            hx_header_token(part(&page.body, "e")).expect("hx-headers")
        };
        let mut request = Request::builder()
            .method(Method::DELETE)
            .uri(format!("/items/{id}"))
            .header(header::HOST, HOST)
            .header("hx-request", "true")
            .header("x-concurrency-token", token);
        if with_body {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let deleted = send(&app, request.body(Body::empty()).unwrap()).await;
        deleted.assert(StatusCode::OK, &format!("deleted item {id}"));
        assert!(state.item(id).is_none());
    }
}

#[tokio::test]
async fn an_hx_post_form_without_method_saves() {
    let state = AppState::new();
    let app = app(&state);
    let answer = get_from_host(&app, "/items/1").await;
    let token = hx_header_token(part(&answer.body, "f")).expect("hx-headers");
    let price = state.item(1).unwrap().price.to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/items/1")
        .header(header::HOST, HOST)
        .header("hx-request", "true")
        .header("x-req", "1")
        .header("x-concurrency-token", token)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(urlencode(&[
            ("name", "Shelf"),
            ("price", &price),
        ])))
        .unwrap();
    send(&app, request)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Shelf");
}
