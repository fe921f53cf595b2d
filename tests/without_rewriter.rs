//! The guard without the `html-rewriter` feature (`cargo test
//! --no-default-features --features derive --test without_rewriter`): the
//! plain scanner serves plain pages with their token; a page it cannot
//! decide (htmx attributes) goes without a token, its route is named in a
//! warning once, and its saves are refused before the handler runs.
#![cfg(not(feature = "html-rewriter"))]

#[path = "common/mod.rs"]
mod common;

use std::io;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use common::*;
use concurrency_guard::Guarded;
use http::StatusCode;

/// The log, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn a_plain_page_gets_its_token_and_saves() {
    let state = AppState::new();
    let app = app(&state);
    let page = get_page(&app, "/items/1").await;
    page.assert(StatusCode::OK, "<h1>Item 1</h1>");
    let token = page.token();
    // First inside the post form (WHATWG HTML: a hidden input submits with
    // its form), the rest of the page as the handler wrote it.
    let form = r#"<form method="post" action="/items/1">"#;
    let at = page.body.find(form).expect("the form") + form.len();
    assert!(
        page.body[at..].starts_with(&format!(
            r#"<input type="hidden" name="{FIELD}" value="{token}">"#
        )),
        "{}",
        page.body
    );
    let saved = post_item(&app, "/items/1", &token, "Desk lamp", 120).await;
    saved.assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Desk lamp");
    assert_eq!(state.runs(), 1);
}

#[tokio::test]
async fn a_stale_save_is_a_conflict_on_the_guards_own_page() {
    let state = AppState::new();
    let app = app(&state);
    let first = load_token(&app, "/items/1").await;
    let second = load_token(&app, "/items/1").await;
    post_item(&app, "/items/1", &first, "Desk lamp", 120)
        .await
        .assert(StatusCode::OK, "saved item 1");
    let stale = post_item(&app, "/items/1", &second, "Floor lamp", 90).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    // Not the app's page (which needs the rewriter): the guard's own.
    assert!(!stale.body.contains("<h1>Item 1</h1>"), "{}", stale.body);
    assert_eq!(state.item(1).unwrap().name, "Desk lamp");
    assert_eq!(state.runs(), 1);
}

/// The edit form as an htmx app writes it: `hx-post`, no `method`.
async fn htmx_edit(Guarded(item): Guarded<ItemForm>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html><body><form hx-post="/items/{id}"><input name="name" value="{name}"><input name="price" value="{price}"><button>Save</button></form></body></html>"#,
        id = item.id,
        name = escape(&item.name),
        price = item.price,
    ))
}

#[tokio::test(flavor = "current_thread")]
async fn an_htmx_page_goes_without_a_token_said_once_and_its_save_is_refused() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    // See guard_flow's `every_decision_is_traced`: a second dispatcher
    // makes tracing ask this one whatever runs beside it.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let state = AppState::new();
    let app: Router = Router::new()
        .route("/items/{id}", get(htmx_edit).post(save))
        .route_layer(guard(&state))
        .with_state(state.clone());
    let page = get_page(&app, "/items/1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(token_in(&page.body), None, "{}", page.body);
    assert!(!page.body.contains("hx-headers"), "{}", page.body);
    let log = captured.take();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("/items/{id}"), "{log}");
    assert!(log.contains("htmx"), "{log}");
    assert!(log.contains("html-rewriter"), "{log}");
    // Once per route.
    get_page(&app, "/items/2").await;
    assert_eq!(captured.take(), "");

    // What htmx sends for the form: its fields, no token.
    let refused = post_form(&app, "/items/1", &[("name", "Desk lamp"), ("price", "120")]).await;
    assert!(refused.status.is_client_error(), "{refused:?}");
    assert!(refused.body.contains(FIELD), "{}", refused.body);
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}
