//! Issue 18: in debug mode, a page whose form shows an input otherwise than
//! its `RenderState` is reported at `warn` (form, field, page value, state
//! value) when auto-embed passes it; the page itself goes out unchanged.

use axum::Router;
use axum::extract::Path;
use axum::response::Html;
use axum::routing::get;
use concurrency_guard::Guarded;
use http::StatusCode;

use crate::common::*;
use crate::route_scoping::capture;

/// A template that shows the name upper-cased and the price with cents:
/// not what the `RenderState` renders ("Lamp", "100").
async fn reformatting_edit(Guarded(item): Guarded<ItemForm>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><title>Edit</title><form method="post"><input name="name" value="{}"><input name="price" value="{}.00"><button>Save</button></form><form method="post" action="/items/{}/delete"><button>Delete</button></form>"#,
        escape(&item.name.to_uppercase()),
        item.price,
        item.id
    ))
}

fn app_debug(state: &AppState, debug: bool, page: bool) -> Router {
    let layer = guard(state).with_debug(debug);
    let route = if page {
        get(reformatting_edit)
    } else {
        get(edit)
    };
    Router::new()
        .route(
            "/items/{id}",
            route
                .post(|Path(_id): Path<i64>| async { "saved" })
                .route_layer(layer),
        )
        .with_state(state.clone())
}

#[tokio::test]
async fn debug_mode_names_each_input_the_page_shows_otherwise() {
    let state = AppState::new();
    let (logs, _guard) = capture();
    let page = get_page(&app_debug(&state, true, true), "/items/1").await;
    assert_eq!(page.status, StatusCode::OK);
    // The page goes out as the handler wrote it, with its token.
    assert!(page.body.contains(r#"value="LAMP""#), "{}", page.body);
    assert_eq!(token_count(&page.body), 2);
    let logs = logs.take();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("render check"))
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(lines[0].contains("WARN"), "{logs}");
    assert!(
        lines[0].contains(r#"field=name page="LAMP" state=Lamp"#),
        "{logs}"
    );
    assert!(
        lines[1].contains(r#"field=price page="100.00" state=100"#),
        "{logs}"
    );
    assert!(
        lines[0].contains("form=\"ItemForm\"") || lines[0].contains("form=ItemForm"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_page_that_shows_its_state_and_debug_off_say_nothing() {
    let state = AppState::new();
    let (logs, _guard) = capture();
    // Debug on, the page shows exactly the state: silent.
    get_page(&app_debug(&state, true, false), "/items/1").await;
    // Debug off, the page reformats: not checked.
    get_page(&app_debug(&state, false, true), "/items/1").await;
    let logs = logs.take();
    assert!(!logs.contains("render check"), "{logs}");
}
