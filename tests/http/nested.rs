//! A guarded router nested under a prefix (newcomer2 defect 1): axum's
//! `Router::nest("/app", …)` hands the nested routes the request with the
//! prefix stripped and keeps the URL as sent in `OriginalUri` (axum docs,
//! `Router::nest`, "How the URI changes"). Every URL the guard writes for
//! the browser (form actions, reload links, script sources, the page a
//! token names) and every URL it compares with one the page wrote carries
//! the prefix, as the browser's own URL does.

use crate::common::{self, AppState, FIELD, ItemForm};

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Html;
use axum::routing::get;
use concurrency_guard::{ConcurrencyGuardLayer, ConcurrencyToken, ConflictHandling, Guarded};

/// The edit page as a nested app writes it: its form posts to its own URL
/// in the browser's URL space (the original URI, prefix included), with
/// `hx-post` to the same URL.
async fn edit(OriginalUri(uri): OriginalUri, Guarded(item): Guarded<ItemForm>) -> Html<String> {
    let url = uri.path().to_owned();
    Html(format!(
        r#"<!doctype html><html><head><title>Edit item {id}</title></head><body><header>Shop</header><form method="post" action="{url}" hx-post="{url}"><label for="name">Name</label><input id="name" name="name" value="{name}"><label for="price">Price</label><input id="price" name="price" value="{price}"><button>Save</button></form></body></html>"#,
        id = item.id,
        name = common::escape(&item.name),
        price = item.price,
    ))
}

/// How the guard is attached inside the nested router.
#[derive(Clone, Copy, Debug)]
enum Attach {
    /// On the route's method router (`get(..).post(..).route_layer(guard)`).
    PerRoute,
    /// On the nested router (`Router::route_layer(guard)`).
    RouterRouteLayer,
}

const BOTH: [Attach; 2] = [Attach::PerRoute, Attach::RouterRouteLayer];

fn layer(state: &AppState) -> ConcurrencyGuardLayer<ItemForm, AppState> {
    common::guard(state).with_early_warning(Duration::from_secs(5))
}

/// `/app/items/{id}`: the item routes nested under `/app`.
fn nested(
    state: &AppState,
    attach: Attach,
    layer: ConcurrencyGuardLayer<ItemForm, AppState>,
) -> Router {
    let routes = get(edit).post(common::save);
    let inner = match attach {
        Attach::PerRoute => Router::new().route("/items/{id}", routes.route_layer(layer)),
        Attach::RouterRouteLayer => Router::new()
            .route("/items/{id}", routes)
            .route_layer(layer),
    };
    Router::new().nest("/app", inner).with_state(state.clone())
}

/// Someone else saves item 1 (a new name).
fn other_saves(state: &AppState) {
    state.update(1, |item| item.name = "Desk lamp".into());
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::get(path).header(header::HOST, "app.example");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_page_carries_a_token_and_script_urls_under_the_prefix() {
    for attach in BOTH {
        let state = AppState::new();
        let app = nested(&state, attach, layer(&state));
        let page = common::send(&app, get_with("/app/items/1", &[])).await;
        assert_eq!(page.status, StatusCode::OK, "{attach:?}: {}", page.body);
        assert!(common::token_in(&page.body).is_some(), "{attach:?}");
        for script in ["htmx.js", "warn.js"] {
            let src = format!(r#"src="/app/items/1?concurrency-guard={script}&amp;v="#);
            assert!(page.body.contains(&src), "{attach:?}: {src}: {}", page.body);
            // The URL as the browser resolves it answers with the script.
            let url = format!("/app/items/1?concurrency-guard={script}");
            let js = common::send(&app, get_with(&url, &[])).await;
            assert_eq!(js.status, StatusCode::OK, "{attach:?}: {url}");
            assert_eq!(
                js.header("content-type"),
                Some("text/javascript; charset=utf-8"),
                "{attach:?}: {url}"
            );
        }
        assert!(
            !page.body.contains(r#"src="/items/"#),
            "{attach:?}: {}",
            page.body
        );
    }
}

#[tokio::test]
async fn a_stale_post_gets_the_apps_page_with_its_urls_under_the_prefix() {
    for attach in BOTH {
        let state = AppState::new();
        let app = nested(&state, attach, layer(&state));
        let token = common::load_token(&app, "/app/items/1").await;
        other_saves(&state);
        let answer = common::post_item(&app, "/app/items/1", &token, "Mine", 5).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{attach:?}");
        // The app's own page (its title and header), not the guard's.
        answer.assert(StatusCode::CONFLICT, "<title>Edit item 1</title>");
        answer.assert(StatusCode::CONFLICT, "<header>Shop</header>");
        answer.assert(StatusCode::CONFLICT, r#"role="alert""#);
        answer.assert(StatusCode::CONFLICT, r#"action="/app/items/1""#);
        // "discard your changes and reload": the page the token names.
        answer.assert(StatusCode::CONFLICT, r#"<a href="/app/items/1">discard"#);
        assert_eq!(state.runs(), 0, "{attach:?}: the handler did not run");
        assert_eq!(state.item(1).unwrap().name, "Desk lamp");

        // Saving again from that page (its fresh token) goes through.
        let fresh = answer.token();
        let saved = common::post_item(&app, "/app/items/1", &fresh, "Mine", 5).await;
        assert_eq!(saved.status, StatusCode::OK, "{attach:?}: {}", saved.body);
        assert_eq!(state.item(1).unwrap().name, "Mine");
    }
}

#[tokio::test]
async fn the_fallback_pages_buttons_post_under_the_prefix() {
    for attach in BOTH {
        let state = AppState::new();
        let guard = layer(&state).with_conflict_handling(ConflictHandling::StandalonePage);
        let app = nested(&state, attach, guard);
        let token = common::load_token(&app, "/app/items/1").await;
        other_saves(&state);
        let answer = common::post_item(&app, "/app/items/1", &token, "Mine", 5).await;
        answer.assert(
            StatusCode::CONFLICT,
            r#"<form method="post" action="/app/items/1" class="your-version">"#,
        );
        answer.assert(StatusCode::CONFLICT, r#"href="/app/items/1""#);
        assert!(
            !answer.body.contains(r#""/items/1""#),
            "{attach:?}: {}",
            answer.body
        );
        // "Save my version anyway" posts there and saves.
        let saved = common::post_item(&app, "/app/items/1", &answer.token(), "Mine", 5).await;
        assert_eq!(saved.status, StatusCode::OK, "{attach:?}: {}", saved.body);
    }
}

#[tokio::test]
async fn the_reload_link_without_a_referer_is_under_the_prefix() {
    for attach in BOTH {
        let state = AppState::new();
        let app = nested(&state, attach, layer(&state));
        // No token at all: the link is the submission's own URL.
        let answer = common::post_form(&app, "/app/items/1", &[("name", "x")]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{attach:?}");
        answer.assert(StatusCode::BAD_REQUEST, r#"href="/app/items/1""#);
        // A token sent in the query: the links keep the prefix and lose
        // the token.
        let token = common::load_token(&app, "/app/items/1").await;
        other_saves(&state);
        let url = format!("/app/items/1?tab=2&{FIELD}={token}");
        let body = common::urlencode(&[("name", "Mine"), ("price", "5")]);
        let answer = common::send(&app, common::form_request(Method::POST, &url, body)).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{attach:?}");
        assert!(
            !answer.body.contains(&token),
            "{attach:?}: the stale token is not shown back"
        );
        assert!(
            answer.body.contains("/app/items/1"),
            "{attach:?}: {}",
            answer.body
        );
        assert!(!answer.body.contains(r#""/items/1"#), "{}", answer.body);
    }
}

#[tokio::test]
async fn the_early_warning_check_answers_at_the_pages_url() {
    for attach in BOTH {
        let state = AppState::new();
        let app = nested(&state, attach, layer(&state));
        let token = common::load_token(&app, "/app/items/1").await;
        // warn.js checks `location.pathname + location.search`: the
        // browser's URL, prefix included.
        let check = |token: &str| {
            get_with(
                "/app/items/1",
                &[
                    ("x-concurrency-token", token),
                    ("x-concurrency-guard", "check"),
                ],
            )
        };
        let fresh = common::send(&app, check(&token)).await;
        assert_eq!(fresh.status, StatusCode::NO_CONTENT, "{attach:?}");
        other_saves(&state);
        let stale = common::send(&app, check(&token)).await;
        assert_eq!(stale.status, StatusCode::CONFLICT, "{attach:?}");
    }
}

#[tokio::test]
async fn a_stale_htmx_save_gets_its_form_back_posting_under_the_prefix() {
    for attach in BOTH {
        let state = AppState::new();
        let app = nested(&state, attach, layer(&state));
        let token = common::load_token(&app, "/app/items/1").await;
        other_saves(&state);
        let body = common::urlencode(&[(FIELD, &token), ("name", "Mine"), ("price", "5")]);
        let mut req = common::form_request(Method::POST, "/app/items/1", body);
        for (k, v) in [
            ("host", "app.example"),
            ("hx-request", "true"),
            ("hx-current-url", "http://app.example/app/items/1"),
        ] {
            req.headers_mut().insert(k, v.parse().unwrap());
        }
        let answer = common::send(&app, req).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{attach:?}");
        // The app's form (its labels), not the guard's fragment.
        answer.assert(StatusCode::CONFLICT, r#"<label for="name">Name</label>"#);
        answer.assert(StatusCode::CONFLICT, r#"hx-post="/app/items/1""#);
        answer.assert(StatusCode::CONFLICT, r#"href="/app/items/1""#);
        assert_eq!(state.runs(), 0);
    }
}

/// A record deleted since its form was opened, submitted with a list
/// row's own token (`ConcurrencyToken::issue`, which names no page): the
/// same-origin `Referer` says where the form was, and it is compared with
/// the submission's URL in the same (browser's) URL space.
#[tokio::test]
async fn the_deleted_pages_back_link_is_in_the_browsers_url_space() {
    for attach in BOTH {
        let state = AppState::new();
        let app = nested(&state, attach, layer(&state));
        let item = state.item(1).unwrap();
        let row = ItemForm {
            id: item.id,
            name: item.name,
            price: item.price,
            views: item.views,
            stock: item.stock,
        };
        let token = ConcurrencyToken::issue(&common::keys(), &row)
            .value()
            .to_owned();
        state.remove(1);
        let back = "Back to the page you came from";
        for (referer, link) in [
            (
                "http://app.example/app/items?page=2",
                Some("/app/items?page=2"),
            ),
            // The record's own page, gone now: no link back to it.
            ("http://app.example/app/items/1", None),
        ] {
            let body = common::urlencode(&[(FIELD, &token), ("name", "Mine"), ("price", "5")]);
            let mut req = common::form_request(Method::POST, "/app/items/1", body);
            req.headers_mut()
                .insert("host", "app.example".parse().unwrap());
            req.headers_mut()
                .insert("referer", referer.parse().unwrap());
            let answer = common::send(&app, req).await;
            answer.assert(StatusCode::CONFLICT, "This record was deleted");
            // The start page of the app as the browser sees it: the prefix's.
            answer.assert(
                StatusCode::CONFLICT,
                r#"<a href="/app/">Go to the start page</a>"#,
            );
            match link {
                Some(link) => answer.assert(
                    StatusCode::CONFLICT,
                    &format!(r#"<a href="{link}">{back}</a>"#),
                ),
                None => assert!(!answer.body.contains(back), "{attach:?}: {}", answer.body),
            }
        }
        assert_eq!(state.runs(), 0);
    }
}
