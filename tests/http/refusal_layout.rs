//! Issue 17 / newcomer defect 11: the guard's refusals (400 bad, missing or
//! foreign token; 403 cross-site; 413 too large; 503 busy) are shown in the
//! application's own page, as a conflict is, once the route's page was
//! served: the app's layout (header, nav), the refused form replaced by the
//! guard's notice (`role="alert"`, the same message as the guard's own
//! page, a reload link), the status and headers unchanged, no token and
//! nothing of the refused request's body. Without a served page, the
//! guard's own page as before; JSON and htmx answers keep their formats.
//! A submission for a deleted record keeps the guard's own page, with a
//! link back to the page the user came from (same-origin `Referer`) unless
//! that is the deleted record's own page.

use crate::common::{self, AppState, FIELD, Gate, ItemForm, escape};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Html;
use axum::routing::get;
use concurrency_guard::{ConcurrencyGuardLayer, ConcurrencyToken, Guarded, Key, KeyRing};

const LAYOUT: &str = r#"<header id="site-header">Shop</header>"#;
const NAV: &str = r#"<nav id="site-nav"><a href="/items">Items</a></nav>"#;
/// What a user types into a submission that is refused.
const TYPED: &str = "Typed-By-The-User-7731";

/// The app's edit page: its layout, the edit form, and a second form.
async fn edit(Guarded(item): Guarded<ItemForm>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html><head><title>Edit {id}</title></head><body>{LAYOUT}{NAV}<main><h1>Item {id}</h1><form method="post" action="/items/{id}"><label for="name">Name</label><input id="name" name="name" value="{name}"><input name="price" value="{price}"><button>Save</button></form><form method="get" action="/search"><input name="q"></form></main></body></html>"#,
        id = item.id,
        name = escape(&item.name),
        price = item.price,
    ))
}

fn router(state: &AppState, layer: ConcurrencyGuardLayer<ItemForm, AppState>) -> Router {
    Router::new()
        .route(
            "/items/{id}",
            get(edit).post(common::save).route_layer(layer),
        )
        .with_state(state.clone())
}

/// The guard with key `n` of its own: the record locks of tests running
/// side by side in this process are apart.
fn layer(state: &AppState, n: u8) -> ConcurrencyGuardLayer<ItemForm, AppState> {
    let keys = KeyRing::new(u32::from(n), Key::from_bytes(&[n; 32]).unwrap());
    ConcurrencyGuardLayer::new(keys, state.clone())
        .with_body_limit(2048)
        .with_lock_timeout(Duration::from_millis(200))
}

fn post(path: &str, body: String, headers: &[(&'static str, &str)]) -> Request<Body> {
    let mut req = common::form_request(Method::POST, path, body);
    let h = req.headers_mut();
    h.insert(header::HOST, "app.example".parse().unwrap());
    for (k, v) in headers {
        h.insert(*k, v.parse().unwrap());
    }
    req
}

fn typed(token: &str) -> String {
    common::urlencode(&[(FIELD, token), ("name", TYPED), ("price", "5")])
}

/// The `<p>` message of the guard's notice.
fn message(body: &str) -> &str {
    let alert = &body[body.find(r#"role="alert""#).expect("an alert")..];
    let start = alert.find("<p>").unwrap() + 3;
    &alert[start..start + alert[start..].find("</p>").unwrap()]
}

/// The refused submissions of a page whose token is `token`, with what
/// the guard answers each and a foreign token (item 2's).
fn refused(token: &str, foreign: &str) -> Vec<(&'static str, StatusCode, Request<Body>)> {
    let big = "x".repeat(4096);
    vec![
        (
            "forged token",
            StatusCode::BAD_REQUEST,
            post("/items/1", typed("AAAAforged.token.value"), &[]),
        ),
        (
            "missing token",
            StatusCode::BAD_REQUEST,
            post(
                "/items/1",
                common::urlencode(&[("name", TYPED), ("price", "5")]),
                &[],
            ),
        ),
        (
            "foreign token",
            StatusCode::BAD_REQUEST,
            post("/items/1", typed(foreign), &[]),
        ),
        (
            "cross-site",
            StatusCode::FORBIDDEN,
            post(
                "/items/1",
                typed(token),
                &[("sec-fetch-site", "cross-site")],
            ),
        ),
        (
            "too large",
            StatusCode::PAYLOAD_TOO_LARGE,
            post(
                "/items/1",
                common::urlencode(&[(FIELD, token), ("name", TYPED), ("notes", &big)]),
                &[],
            ),
        ),
    ]
}

#[tokio::test]
async fn each_refusal_is_shown_in_the_apps_layout_with_todays_message() {
    let state = AppState::new();
    let app = router(&state, layer(&state, 61));
    let token = common::load_token(&app, "/items/1").await;
    let foreign = common::load_token(&app, "/items/2").await;
    // The same refusals to an app whose page was never served: the guard's own page.
    let fresh = AppState::new();
    let bare = router(&fresh, layer(&fresh, 61));
    let today: Vec<_> = {
        let mut out = Vec::new();
        for (what, _, req) in refused(&token, &foreign) {
            out.push((what, common::send(&bare, req).await));
        }
        out
    };
    for ((what, status, req), (_, own)) in refused(&token, &foreign).into_iter().zip(&today) {
        let answer = common::send(&app, req).await;
        let body = &answer.body;
        assert_eq!(answer.status, status, "{what}: {body}");
        assert!(
            body.contains(LAYOUT) && body.contains(NAV),
            "{what}: the app's layout: {body}"
        );
        assert!(body.contains("<h1>Item 1</h1>"), "{what}: {body}");
        assert!(body.contains(r#"role="alert""#), "{what}: {body}");
        assert!(body.contains("Reload the form"), "{what}: {body}");
        assert_eq!(own.status, status, "{what}: {}", own.body);
        assert_eq!(
            message(body),
            message(&own.body),
            "{what}: the same message"
        );
        // The refused form is replaced by the notice; the page's other form stays.
        assert!(!body.contains(r#"action="/items/1""#), "{what}: {body}");
        assert!(body.contains(r#"action="/search""#), "{what}: {body}");
        assert_eq!(common::token_count(body), 0, "{what}: no token: {body}");
        assert!(
            !body.contains(TYPED),
            "{what}: nothing submitted shown: {body}"
        );
        assert!(
            !body.contains("<style>"),
            "{what}: not the guard's page: {body}"
        );
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{what}"
        );
    }
    assert_eq!(state.runs(), 0, "no handler ran");
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn without_a_served_page_each_refusal_is_the_guards_own_page() {
    let state = AppState::new();
    let app = router(&state, layer(&state, 62));
    // Tokens from another router with the same keys: this one served no page.
    let other = router(&state, layer(&state, 62));
    let token = common::load_token(&other, "/items/1").await;
    let foreign = common::load_token(&other, "/items/2").await;
    for (what, status, req) in refused(&token, &foreign) {
        let answer = common::send(&app, req).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert!(answer.body.contains("<style>"), "{what}: {}", answer.body);
        assert!(!answer.body.contains(LAYOUT), "{what}: {}", answer.body);
        assert!(!answer.body.contains(TYPED), "{what}: {}", answer.body);
        assert!(answer.body.contains("Reload the form"), "{what}");
    }
    assert_eq!(state.runs(), 0);
}

/// A forged token's submission: neither the values typed nor anything else
/// of the body is shown back, whatever the page's form held.
#[tokio::test]
async fn a_forged_tokens_values_never_appear() {
    let state = AppState::new();
    let app = router(&state, layer(&state, 63));
    common::load_token(&app, "/items/1").await;
    for token in ["", "garbage", "AAAA.BBBB.CCCC", &"A".repeat(300)] {
        let answer = common::send(&app, post("/items/1", typed(token), &[])).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{token:?}: {}",
            answer.body
        );
        assert!(answer.body.contains(LAYOUT), "{}", answer.body);
        assert!(!answer.body.contains(TYPED), "{}", answer.body);
        assert!(!answer.body.contains(r#"value="5""#), "{}", answer.body);
        assert_eq!(common::token_count(&answer.body), 0);
    }
}

/// 503 while another submission holds the record: `Retry-After` (RFC 9110
/// §10.2.3) as on the guard's own page.
#[tokio::test]
async fn a_busy_record_keeps_its_retry_after_in_the_apps_layout() {
    let gate = Arc::new(Gate::default());
    let state = AppState {
        gate: Some(gate.clone()),
        ..AppState::new()
    };
    let app = router(&state, layer(&state, 64));
    let token = common::load_token(&app, "/items/1").await;
    let first = {
        let (app, req) = (app.clone(), post("/items/1", typed(&token), &[]));
        tokio::spawn(async move { common::send(&app, req).await })
    };
    gate.entered.notified().await;
    let busy = common::send(&app, post("/items/1", typed(&token), &[])).await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        busy.body
    );
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(busy.body.contains(LAYOUT), "{}", busy.body);
    assert!(busy.body.contains("nothing was saved"), "{}", busy.body);
    assert!(!busy.body.contains(TYPED), "{}", busy.body);
    gate.release.notify_one();
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    assert_eq!(state.runs(), 1);
}

/// JSON clients and htmx keep their answers: problem+json, and the fragment.
#[tokio::test]
async fn json_and_htmx_refusals_keep_their_formats() {
    let state = AppState::new();
    let app = router(&state, layer(&state, 65));
    common::load_token(&app, "/items/1").await;
    let json = common::send(
        &app,
        post(
            "/items/1",
            typed("forged"),
            &[("accept", "application/json")],
        ),
    )
    .await;
    assert_eq!(json.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json.header("content-type"),
        Some("application/problem+json")
    );
    let htmx = common::send(
        &app,
        post("/items/1", typed("forged"), &[("hx-request", "true")]),
    )
    .await;
    assert_eq!(htmx.status, StatusCode::BAD_REQUEST);
    assert!(htmx.body.starts_with("<section"), "{}", htmx.body);
    assert!(!htmx.body.contains(LAYOUT), "{}", htmx.body);
    assert_eq!(htmx.header("x-concurrency-guard"), Some("refused"));
}

/// A record deleted since the form was opened: the guard's own page, with
/// a link back to the page the form was on, unless that page is the
/// record's own (it would only say "not found" now). The page is the one
/// the token names; a token the app issued itself (a list's per-row token)
/// names none, and then the same-origin `Referer` says it.
#[tokio::test]
async fn a_deleted_record_links_back_to_the_page_the_user_came_from() {
    let state = AppState::new();
    let app = router(&state, layer(&state, 66));
    let page_token = common::load_token(&app, "/items/1").await;
    let item = state.item(1).unwrap();
    let row = ItemForm {
        id: item.id,
        name: item.name,
        price: item.price,
        views: item.views,
        stock: item.stock,
    };
    let row_token =
        ConcurrencyToken::issue(&KeyRing::new(66, Key::from_bytes(&[66; 32]).unwrap()), &row)
            .value()
            .to_owned();
    state.remove(1);
    let back = r#"<a href="/items?page=2">Back to the page you came from</a>"#;
    for (token, referer, link) in [
        (&row_token, Some("http://app.example/items?page=2"), true),
        (&row_token, Some("http://app.example/items/1"), false),
        (&row_token, Some("http://app.example/items/1/edit"), false),
        (&row_token, Some("https://evil.example/items?page=2"), false),
        (&row_token, None, false),
        // The form was on the record's own page, whatever the Referer says.
        (&page_token, Some("http://app.example/items?page=2"), false),
        (&page_token, None, false),
    ] {
        let headers: Vec<(&'static str, &str)> = referer.iter().map(|r| ("referer", *r)).collect();
        let answer = common::send(&app, post("/items/1", typed(token), &headers)).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
        assert!(
            answer.body.contains("This record was deleted"),
            "{}",
            answer.body
        );
        assert!(
            answer
                .body
                .contains(r#"<a href="/">Go to the start page</a>"#)
        );
        assert_eq!(
            answer.body.contains(back),
            link,
            "{referer:?}: {}",
            answer.body
        );
        if !link {
            assert!(!answer.body.contains("Back to the page"), "{}", answer.body);
        }
    }
    assert_eq!(state.runs(), 0);
}

/// The app's page is a courtesy: when loading or rendering it does not
/// finish within the lock timeout (a database that stopped answering keeps
/// the loader waiting for its pool), the refusal is the guard's own page,
/// at once, with its status: a browser never waits on a page it will not
/// get.
#[tokio::test]
async fn a_page_that_does_not_come_within_the_lock_timeout_is_not_waited_for() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let state = AppState::new();
    let hang = Arc::new(AtomicBool::new(false));
    let edit_or_hang = {
        let hang = hang.clone();
        move |item: Guarded<ItemForm>| {
            let hang = hang.load(Ordering::SeqCst);
            async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                edit(item).await
            }
        }
    };
    let app = Router::new()
        .route(
            "/items/{id}",
            get(edit_or_hang)
                .post(common::save)
                .route_layer(layer(&state, 67)),
        )
        .with_state(state.clone());
    let token = common::load_token(&app, "/items/1").await;
    assert!(!token.is_empty());
    hang.store(true, Ordering::SeqCst);
    let forged = "forged";
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        common::send(&app, post("/items/1", typed(forged), &[])),
    )
    .await
    .expect("answered within the lock timeout, not after the page");
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(!answer.body.contains(LAYOUT), "the guard's own page");
    assert!(answer.body.contains(r#"role="alert""#), "{}", answer.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(state.runs(), 0);
}
