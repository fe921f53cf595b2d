//! The early warning on htmx pages and for deleted records: an `hx-post`
//! form (its token in `hx-headers`, no hidden input) gets the script too,
//! and a check for a record deleted meanwhile is answered `410 Gone`.

use crate::common::{self, AppState, ItemForm};

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Html;
use axum::routing::get;
use concurrency_guard::Guarded;

/// The edit page as an htmx app writes it: the form posts through htmx.
async fn edit_htmx(Guarded(item): Guarded<ItemForm>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html><body><form id="f" hx-post="/items/{id}" hx-target="this"><input name="name" value="{name}"><button>Save</button></form><button hx-delete="/items/{id}">Delete</button></body></html>"#,
        id = item.id,
        name = common::escape(&item.name),
    ))
}

fn app(state: &AppState, htmx_page: bool, rebase: bool) -> Router {
    let layer = common::guard(state)
        .with_early_warning(Duration::from_secs(2))
        .with_live_rebase(rebase);
    if !htmx_page {
        return common::app_with(state, layer);
    }
    Router::new()
        .route(
            "/items/{id}",
            get(edit_htmx).post(common::save).delete(common::delete),
        )
        .route_layer(layer)
        .with_state(state.clone())
}

/// The value of `name="…"` in the first tag that has it.
fn attr<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(r#"{name}=""#);
    let start = html.find(&marker)? + marker.len();
    Some(&html[start..start + html[start..].find('"')?])
}

async fn check(app: &Router, token: &str) -> common::Answer {
    common::send(
        app,
        Request::get("/items/1")
            .header("x-concurrency-token", token)
            .header("x-concurrency-guard", "check")
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// newcomer3 defect 2: `with_early_warning` on a page whose form sends its
/// token in `hx-headers` adds the script, once, carrying that token.
#[tokio::test]
async fn an_hx_post_page_gets_the_early_warning_script() {
    for rebase in [false, true] {
        let state = AppState::new();
        let app = app(&state, true, rebase);
        let page = common::get_page(&app, "/items/1").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(
            common::token_count(&page.body),
            0,
            "no hidden input: {}",
            page.body
        );
        assert_eq!(
            page.body.matches("concurrency-guard=warn.js").count(),
            1,
            "{}",
            page.body
        );
        let script = &page.body[page.body.find("concurrency-guard=warn.js").unwrap()..];
        let token = attr(script, "data-token").expect("the script names the token");
        let headers = attr(&page.body, "hx-headers").unwrap();
        assert!(headers.contains(token), "{headers} does not send {token}");
        assert_eq!(script.contains("data-rebase"), rebase);
        // The page uses htmx: its script too.
        assert!(page.body.contains("concurrency-guard=htmx.js"));
        // The token the script checks with is the one the form sends.
        assert_eq!(check(&app, token).await.status, StatusCode::NO_CONTENT);
    }
}

/// newcomer3 defect 7: the record deleted while its page is open: the
/// check is answered 410 Gone (no body, not stored), the handler not run;
/// a plain GET still gets the application's own 404 page.
#[tokio::test]
async fn a_check_for_a_deleted_record_is_410_gone() {
    for htmx_page in [false, true] {
        let state = AppState::new();
        let app = app(&state, htmx_page, false);
        let page = common::get_page(&app, "/items/1").await;
        let script = &page.body[page.body.find("concurrency-guard=warn.js").unwrap()..];
        let token = attr(script, "data-token").unwrap().to_owned();
        assert_eq!(check(&app, &token).await.status, StatusCode::NO_CONTENT);
        state.remove(1);
        let runs = state.runs();
        let gone = check(&app, &token).await;
        assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
        assert_eq!(gone.body, "");
        assert_eq!(gone.header("cache-control"), Some("no-store"));
        assert_eq!(state.runs(), runs, "the handler did not run");
        // A token that does not open is still 400, deleted or not.
        assert_eq!(check(&app, "garbage").await.status, StatusCode::BAD_REQUEST);
        let plain = common::get_page(&app, "/items/1").await;
        plain.assert(StatusCode::NOT_FOUND, "item 1 does not exist");
    }
}
