//! Issue 21: the "reload" link of a conflict or refusal answer leads back to
//! the page the form was on, also when the browser sends no `Referer` (curl,
//! `Referrer-Policy: no-referrer`) and the form posts to a route that has no
//! GET: a link to the POST URL would be answered 405 (RFC 9110 §15.5.6).
//! The page travels signed in the token; a page of another origin is never
//! the link.

use crate::common;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use concurrency_guard::Guarded;
use http::{Method, Request, StatusCode, header};

/// The edit page: a save form and a delete form, which posts to a route
/// with no GET.
async fn edit_page(Guarded(item): Guarded<ItemForm>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html><body><form method="post" action="/items/{id}"><input name="name" value="{name}"><input name="price" value="{price}"><button>Save</button></form><form method="post" action="/items/{id}/delete"><button>Delete</button></form></body></html>"#,
        id = item.id,
        name = escape(&item.name),
        price = item.price,
    ))
}

async fn delete_item(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    state
        .handler_runs
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    state.remove(id);
    format!("deleted item {id}").into_response()
}

/// `/items/{id}/edit` (GET only) and `/items/{id}/delete` (POST only), each
/// guarded on its own route, as the README shows.
fn app(state: &AppState) -> Router {
    Router::new()
        .route("/items/{id}/edit", get(edit_page).route_layer(guard(state)))
        .route(
            "/items/{id}/delete",
            post(delete_item).route_layer(guard(state)),
        )
        .with_state(state.clone())
}

/// The token of the delete form (the page's second form).
fn delete_token(page: &str) -> String {
    let second = page.find("/delete").expect("the delete form");
    token_in(&page[second..]).expect("a token in the delete form")
}

/// A POST of `token` to `path`, with `headers` and no `Referer` unless given.
async fn delete(app: &Router, path: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "app.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(
        app,
        req.body(Body::from(urlencode(&[(FIELD, token)]))).unwrap(),
    )
    .await
}

/// The `href` of every link in `html`.
fn links(html: &str) -> Vec<String> {
    html.split(r#"<a href=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_stale_delete_without_referer_links_back_to_the_page_the_form_was_on() {
    let state = AppState::new();
    let app = app(&state);
    let page = get_page(&app, "/items/1/edit?tab=2").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = delete_token(&page.body);
    state.update(1, |item| item.name = "Changed elsewhere".into());

    let stale = delete(&app, "/items/1/delete", &token, &[]).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(state.runs(), 0, "the handler did not run");
    assert!(state.item(1).is_some());
    let hrefs = links(&stale.body);
    assert!(!hrefs.is_empty(), "{}", stale.body);
    assert!(
        hrefs.iter().all(|h| h == "/items/1/edit?tab=2"),
        "{hrefs:?}"
    );
    // The link works: the page answers a GET.
    assert_eq!(get_page(&app, &hrefs[0]).await.status, StatusCode::OK);

    // Submitted again from the conflict page (whose URL, the `Referer` now,
    // is the POST route), still stale: the fresh token names the page too.
    let fresh = token_in(&stale.body).expect("a fresh token in the conflict page");
    state.update(1, |item| item.price += 1);
    let again = delete(
        &app,
        "/items/1/delete",
        &fresh,
        &[("referer", "http://app.example/items/1/delete")],
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let hrefs = links(&again.body);
    assert!(
        !hrefs.is_empty() && hrefs.iter().all(|h| h == "/items/1/edit?tab=2"),
        "{hrefs:?}"
    );
    assert_eq!(state.runs(), 0);
}

#[tokio::test]
async fn a_refused_token_without_referer_links_back_to_its_page() {
    let state = AppState::new();
    let app = app(&state);
    let page = get_page(&app, "/items/1/edit").await;
    let token = delete_token(&page.body);
    // The token of another record: refused (400), with a reload link.
    let refused = delete(&app, "/items/2/delete", &token, &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(links(&refused.body), ["/items/1/edit"], "{}", refused.body);
    assert_eq!(state.runs(), 0);
}

/// The page bytes of a version 3 token replaced by `page`, the tag kept.
fn with_page(token: &str, page: &str) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    assert_eq!(bytes[0], 3, "a token that names its page");
    let at = 46 + 8 * bytes[45] as usize;
    let m = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
    let tag = bytes.split_off(at + 2 + m);
    bytes.truncate(at);
    bytes.extend_from_slice(&(page.len() as u16).to_be_bytes());
    bytes.extend_from_slice(page.as_bytes());
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_forged_page_of_another_origin_is_never_the_link() {
    let state = AppState::new();
    let app = app(&state);
    let page = get_page(&app, "/items/1/edit").await;
    let token = delete_token(&page.body);
    assert_eq!(
        with_page(&token, "/items/1/edit"),
        token,
        "the page as laid out"
    );
    state.update(1, |item| item.name = "Changed elsewhere".into());
    for forged in [
        "//evil.example/x",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\\evil.example",
        // Another page of this origin: as much a forgery.
        "/items/2/edit",
    ] {
        let answer = delete(&app, "/items/1/delete", &with_page(&token, forged), &[]).await;
        // The signature covers the page: any change is refused.
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{forged}: {}",
            answer.body
        );
        assert!(
            answer.body.contains("signature"),
            "{forged}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("evil.example"),
            "{forged}: {}",
            answer.body
        );
        assert!(
            !answer.body.contains("javascript:"),
            "{forged}: {}",
            answer.body
        );
        // No page known: the submission's own path.
        assert_eq!(links(&answer.body), ["/items/1/delete"], "{forged}");
    }
    // A `Referer` of another origin is not used either.
    let answer = delete(
        &app,
        "/items/1/delete",
        &with_page(&token, "//evil.example/x"),
        &[("referer", "https://evil.example/items/1/edit")],
    )
    .await;
    assert_eq!(links(&answer.body), ["/items/1/delete"]);
    assert_eq!(state.runs(), 0);
}

#[tokio::test]
async fn a_form_loaded_by_htmx_names_the_browsers_page_of_this_host_only() {
    let state = AppState::new();
    let app = app(&state);
    let fragment = |current: &'static str| {
        Request::get("/items/1/edit")
            .header(header::HOST, "app.example")
            .header("hx-request", "true")
            .header("hx-current-url", current)
            .body(Body::empty())
            .unwrap()
    };
    let on_list = send(&app, fragment("http://app.example/items?page=3")).await;
    let elsewhere = send(&app, fragment("https://evil.example/items")).await;
    state.update(1, |item| item.name = "Changed elsewhere".into());
    for (page, expected) in [(on_list, "/items?page=3"), (elsewhere, "/items/1/edit")] {
        let token = delete_token(&page.body);
        let answer = delete(&app, "/items/1/delete", &token, &[]).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
        let hrefs = links(&answer.body);
        assert!(
            !hrefs.is_empty() && hrefs.iter().all(|h| h == expected),
            "{expected}: {hrefs:?}"
        );
    }
    assert_eq!(state.runs(), 0);
}
