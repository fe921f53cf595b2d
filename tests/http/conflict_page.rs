//! Issue 16 and issue 15 item 10: a conflict shown in the application's own
//! page, the write handler never run on a stale submission, stale
//! submissions that overwrite nothing let through, and records deleted
//! since their form was opened.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use concurrency_guard::{ConcurrencyGuardLayer, Conflict, Guarded, Key, KeyRing, RenderState};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq, RenderState)]
struct Item {
    #[render_state(key)]
    id: i64,
    name: String,
    category: String,
    active: bool,
    notes: String,
}

#[derive(Clone, Default)]
struct App {
    items: Arc<Mutex<HashMap<i64, Item>>>,
    writes: Arc<AtomicUsize>,
}

impl App {
    fn item(&self, id: i64) -> Option<Item> {
        self.items.lock().unwrap().get(&id).cloned()
    }
}

impl FromRequestParts<App> for Item {
    type Rejection = (StatusCode, &'static str);
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| (StatusCode::BAD_REQUEST, "bad id"))?;
        app.item(id).ok_or((StatusCode::NOT_FOUND, "No such item"))
    }
}

/// The app's edit page: its own layout, labels, a select, a textarea and a
/// checkbox in a wrapping label.
async fn edit(Guarded(item): Guarded<Item>) -> Html<String> {
    let esc = common::escape;
    let options: String = ["Tools", "Garden", "Kitchen"]
        .iter()
        .map(|c| {
            let sel = if *c == item.category { " selected" } else { "" };
            format!(r#"<option value="{c}"{sel}>{c}</option>"#)
        })
        .collect();
    Html(format!(
        r#"<!doctype html><html><head><title>Edit · Shop</title></head><body><header class="site-header">Shop admin</header><main><form method="post" action="/items/{id}"><label for="f-name">Item name</label><input type="text" id="f-name" name="name" value="{name}"><label for="f-cat">Category</label><select id="f-cat" name="category">{options}</select><label><input type="checkbox" name="active"{active}> Active</label><label for="f-notes">Notes</label><textarea id="f-notes" name="notes">{notes}</textarea><button>Save</button></form><form method="post" action="/items/{id}/delete"><button>Delete</button></form></main></body></html>"#,
        id = item.id,
        name = esc(&item.name),
        active = if item.active { " checked" } else { "" },
        notes = esc(&item.notes),
    ))
}

#[derive(Deserialize)]
struct Input {
    name: String,
    category: String,
    active: Option<String>,
    notes: String,
}

/// Writes every column; knows nothing of conflicts.
async fn save(State(app): State<App>, Path(id): Path<i64>, Form(f): Form<Input>) -> Response {
    app.writes.fetch_add(1, Ordering::SeqCst);
    let mut items = app.items.lock().unwrap();
    let item = items.get_mut(&id).unwrap();
    item.name = f.name;
    item.category = f.category;
    item.active = f.active.is_some();
    item.notes = f.notes.replace("\r\n", "\n");
    Redirect::to("/").into_response()
}

/// Deletes; knows nothing of conflicts.
async fn delete(State(app): State<App>, Path(id): Path<i64>) -> Response {
    app.writes.fetch_add(1, Ordering::SeqCst);
    app.items.lock().unwrap().remove(&id);
    Redirect::to("/").into_response()
}

fn setup() -> (Router, App) {
    let app = App::default();
    app.items.lock().unwrap().insert(
        1,
        Item {
            id: 1,
            name: "Lamp".into(),
            category: "Tools".into(),
            active: true,
            notes: "line 1\nline 2".into(),
        },
    );
    let guard = ConcurrencyGuardLayer::<Item, App>::new(
        KeyRing::new(1, Key::from_bytes(&[9; 32]).unwrap()),
        app.clone(),
    );
    let router = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route("/items/{id}/delete", post(delete))
        .route_layer(guard)
        .with_state(app.clone());
    (router, app)
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn open(router: &Router) -> String {
    let (status, _, html) = send(
        router,
        Request::get("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    common::token_in(&html).unwrap()
}

/// What a browser submits for the edit form (CRLF in the textarea).
fn body(token: &str, name: &str, category: &str, active: bool, notes: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("_concurrency_token", token)
        .append_pair("name", name)
        .append_pair("category", category);
    if active {
        s.append_pair("active", "on");
    }
    s.append_pair("notes", &notes.replace('\n', "\r\n"));
    s.finish()
}

async fn post_to(
    router: &Router,
    path: &str,
    body: String,
) -> (StatusCode, http::HeaderMap, String) {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .body(Body::from(body))
        .unwrap();
    send(router, req).await
}

#[tokio::test]
async fn a_stale_edit_is_shown_in_the_apps_own_page() {
    let (router, app) = setup();
    let mine = open(&router).await;
    let theirs = open(&router).await;
    // The other user renames the item and moves it to Garden.
    let (status, _, _) = post_to(
        &router,
        "/items/1",
        body(&theirs, "Desk lamp", "Garden", true, "line 1\nline 2"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // This user renames it too, and changes the notes and unchecks Active.
    let (status, headers, page) = post_to(
        &router,
        "/items/1",
        body(&mine, "Floor <lamp>", "Tools", false, "mine"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert_eq!(
        app.writes.load(Ordering::SeqCst),
        1,
        "the write handler did not run"
    );
    assert_eq!(app.item(1).unwrap().name, "Desk lamp");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    // The app's own page: its layout and its controls.
    assert!(
        page.contains(r#"<header class="site-header">Shop admin</header>"#),
        "{page}"
    );
    assert!(page.contains("<title>Edit · Shop</title>"));
    assert!(
        page.contains(r#"<select id="f-cat" name="category""#),
        "{page}"
    );
    // The name the user typed, kept (escaped) and marked as conflicting.
    assert!(
        page.contains(r#"name="name" value="Floor &lt;lamp&gt;" aria-invalid="true" class="concurrency-conflict""#),
        "{page}"
    );
    // The category, which only the other user changed: the saved value.
    assert!(
        page.contains(r#"<option value="Garden" selected>"#),
        "{page}"
    );
    assert!(
        !page.contains(r#"<option value="Tools" selected>"#),
        "{page}"
    );
    // The user's notes and unchecked box kept.
    assert!(page.contains(r#"name="notes">mine</textarea>"#), "{page}");
    assert!(
        page.contains(r#"<input type="checkbox" name="active">"#),
        "{page}"
    );
    // The alert, first in the form, names fields by their labels.
    let form_at = page
        .find(r#"<form method="post" action="/items/1">"#)
        .unwrap();
    let alert_at = page.find(r#"role="alert""#).unwrap();
    assert!(alert_at > form_at && alert_at < page.find("f-name").unwrap());
    assert!(
        page.contains(r##"<a href="#f-name">Item name</a>: saved now “Desk lamp”; you entered “Floor &lt;lamp&gt;”"##),
        "{page}"
    );
    assert!(
        page.contains(
            r##"<a href="#f-cat">Category</a>: saved now “Garden”; you had not changed it"##
        ),
        "{page}"
    );
    assert!(page.contains("discard your changes and reload"));
    assert!(page.contains(r#"href="/items/1""#));
    // One fresh token in each post form; saving again knowingly: 303.
    let fresh = common::token_in(&page).unwrap();
    assert_ne!(fresh, mine);
    let (status, _, _) = post_to(
        &router,
        "/items/1",
        body(&fresh, "Floor lamp", "Garden", false, "mine"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let item = app.item(1).unwrap();
    assert_eq!(
        (
            item.name.as_str(),
            item.category.as_str(),
            item.active,
            item.notes.as_str()
        ),
        ("Floor lamp", "Garden", false, "mine")
    );
}

#[tokio::test]
async fn a_stale_delete_says_not_deleted_and_the_record_stays() {
    let (router, app) = setup();
    let page_token = open(&router).await;
    let theirs = open(&router).await;
    post_to(
        &router,
        "/items/1",
        body(&theirs, "Desk lamp", "Tools", true, "line 1\nline 2"),
    )
    .await;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("_concurrency_token", &page_token)
        .finish();
    let (status, _, page) = post_to(&router, "/items/1/delete", form).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("not been deleted"), "{page}");
    assert!(!page.contains("have not been saved"), "{page}");
    assert_eq!(
        app.writes.load(Ordering::SeqCst),
        1,
        "the delete handler did not run"
    );
    assert_eq!(
        app.item(1).unwrap().name,
        "Desk lamp",
        "the record still exists"
    );
}

/// The write handlers here know nothing of conflicts, and the delete route
/// has no GET handler: neither is ever called for a stale submission.
#[tokio::test]
async fn a_handler_that_knows_nothing_of_conflicts_is_never_called_on_one() {
    let (router, app) = setup();
    let stale = open(&router).await;
    let fresh = open(&router).await;
    post_to(
        &router,
        "/items/1",
        body(&fresh, "Desk lamp", "Tools", true, "line 1\nline 2"),
    )
    .await;
    assert_eq!(app.writes.load(Ordering::SeqCst), 1);
    for _ in 0..3 {
        let (status, _, _) = post_to(
            &router,
            "/items/1",
            body(&stale, "Other", "Kitchen", true, "x"),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let delete = form_urlencoded::Serializer::new(String::new())
            .append_pair("_concurrency_token", &stale)
            .finish();
        let (status, _, _) = post_to(&router, "/items/1/delete", delete).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    assert_eq!(app.writes.load(Ordering::SeqCst), 1, "no write handler ran");
    assert_eq!(app.item(1).unwrap().name, "Desk lamp");
}

#[tokio::test]
async fn a_double_click_and_a_back_button_resubmission_pass() {
    let (router, app) = setup();
    let token = open(&router).await;
    let submission = body(&token, "Desk lamp", "Garden", false, "line 1\nline 2");
    // Two identical POSTs with one token: both 303.
    let (first, _, _) = post_to(&router, "/items/1", submission.clone()).await;
    let (second, _, page) = post_to(&router, "/items/1", submission.clone()).await;
    assert_eq!(
        (first, second),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
        "{page}"
    );
    // Back button, the same values submitted again later: 303.
    let (again, _, _) = post_to(&router, "/items/1", submission).await;
    assert_eq!(again, StatusCode::SEE_OTHER);
    assert_eq!(app.item(1).unwrap().name, "Desk lamp");
    // But an old page that would put back a value someone else changed
    // since still conflicts.
    let (status, _, _) = post_to(
        &router,
        "/items/1",
        body(&token, "Desk lamp", "Tools", false, "line 1\nline 2"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.item(1).unwrap().category, "Garden");
}

#[tokio::test]
async fn a_record_deleted_since_the_form_was_opened() {
    let (router, app) = setup();
    let token = open(&router).await;
    app.items.lock().unwrap().remove(&1);
    let (status, _, page) = post_to(
        &router,
        "/items/1",
        body(&token, "My <new> name", "Tools", true, "typed"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("deleted"), "{page}");
    assert!(
        page.contains("My &lt;new&gt; name"),
        "what the user entered: {page}"
    );
    assert!(page.contains("typed"));
    assert_eq!(
        app.writes.load(Ordering::SeqCst),
        0,
        "the handler did not run"
    );
    // JSON clients: problem+json.
    let req = Request::post("/items/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(body(&token, "x", "Tools", true, "")))
        .unwrap();
    let (status, headers, json) = send(&router, req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["type"], "urn:concurrency-guard:deleted");
    // Without a valid token: the loader's own 404 after the token check (400).
    let (status, _, _) = post_to(&router, "/items/1", body("nope", "x", "Tools", true, "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A handler set with `with_conflict_handler` gets the conflict and the
/// user's version typed; the write handler never runs.
#[tokio::test]
async fn a_conflict_handler_gets_the_users_version_typed() {
    let app = App::default();
    app.items.lock().unwrap().insert(
        1,
        Item {
            id: 1,
            name: "Lamp".into(),
            category: "Tools".into(),
            active: true,
            notes: String::new(),
        },
    );
    async fn mine(conflict: Conflict, Guarded(now): Guarded<Item>) -> (StatusCode, String) {
        let input: Input = conflict.submitted_as().unwrap();
        (
            StatusCode::CONFLICT,
            format!("now {}, yours {}", now.name, input.name),
        )
    }
    let guard = ConcurrencyGuardLayer::<Item, App>::new(
        KeyRing::new(1, Key::from_bytes(&[9; 32]).unwrap()),
        app.clone(),
    )
    .with_conflict_handler(mine);
    let router = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route_layer(guard)
        .with_state(app.clone());
    let stale = open(&router).await;
    let fresh = open(&router).await;
    post_to(
        &router,
        "/items/1",
        body(&fresh, "Desk lamp", "Tools", true, ""),
    )
    .await;
    let (status, _, text) = post_to(
        &router,
        "/items/1",
        body(&stale, "Floor", "Tools", true, ""),
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::CONFLICT, "now Desk lamp, yours Floor")
    );
    assert_eq!(app.writes.load(Ordering::SeqCst), 1);
}

/// The app's page with the headers a framework or a layer may put on it:
/// validators and digests of its bytes, and a freshness lifetime.
async fn edit_with_page_headers(item: Guarded<Item>) -> Response {
    let page = edit(item).await;
    (
        [
            (header::ETAG, "\"v1\""),
            (header::LAST_MODIFIED, "Tue, 01 Jul 2025 10:00:00 GMT"),
            (header::EXPIRES, "Thu, 01 Jan 2099 00:00:00 GMT"),
            (
                header::HeaderName::from_static("content-digest"),
                "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:",
            ),
            (
                header::HeaderName::from_static("repr-digest"),
                "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:",
            ),
        ],
        page,
    )
        .into_response()
}

/// A conflict or a refusal shown in the app's page is another
/// representation than the page the GET handler made: none of the headers
/// that describe that page's bytes may come with it (an `ETag` changes with
/// the bytes, RFC 9110 §8.8.3; `Content-Digest` and `Repr-Digest` are
/// digests of them, RFC 9530 §2–3), nor any that let it be kept
/// (`Last-Modified`, `Expires`): the answer is `no-store`.
#[tokio::test]
async fn an_answer_in_the_apps_page_drops_the_pages_validators_and_digests() {
    let (_, app) = setup();
    let guard = ConcurrencyGuardLayer::<Item, App>::new(
        KeyRing::new(1, Key::from_bytes(&[9; 32]).unwrap()),
        app.clone(),
    );
    let router = Router::new()
        .route("/items/{id}", get(edit_with_page_headers).post(save))
        .route_layer(guard)
        .with_state(app.clone());
    let token = open(&router).await;
    app.items.lock().unwrap().get_mut(&1).unwrap().name = "Desk lamp".into();
    let stale = post_to(
        &router,
        "/items/1",
        body(&token, "Mine", "Tools", true, "x"),
    )
    .await;
    let forged = post_to(
        &router,
        "/items/1",
        body("AAAA", "Mine", "Tools", true, "x"),
    )
    .await;
    for ((status, headers, html), expected) in [
        (stale, StatusCode::CONFLICT),
        (forged, StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(status, expected, "{html}");
        assert!(html.contains("Shop admin"), "the app's page: {html}");
        for name in [
            "etag",
            "last-modified",
            "expires",
            "content-digest",
            "repr-digest",
        ] {
            assert!(headers.get(name).is_none(), "{expected}: {name} kept");
        }
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{expected}");
    }
    assert_eq!(app.writes.load(Ordering::SeqCst), 0);
}

#[derive(Deserialize)]
struct Mode {
    mode: Option<String>,
}

/// The edit page in two variants, chosen by the query (`?mode=plain`).
async fn edit_in_mode(
    axum::extract::Query(mode): axum::extract::Query<Mode>,
    item: Guarded<Item>,
) -> Html<String> {
    let Html(page) = edit(item).await;
    let mode = mode.mode.unwrap_or_else(|| "none".into());
    Html(page.replace("<main>", &format!(r#"<main><p id="mode">mode {mode}</p>"#)))
}

/// A conflict is shown in the page the form was on, with its query: the
/// page the token names is `/items/1?mode=plain`, so the GET handler that
/// renders the conflict gets `mode=plain` too, not the query-less page (a
/// newcomer's app rendered another variant of its form there).
#[tokio::test]
async fn a_conflict_is_shown_in_the_page_the_form_was_on_with_its_query() {
    let (_, app) = setup();
    let guard = ConcurrencyGuardLayer::<Item, App>::new(
        KeyRing::new(1, Key::from_bytes(&[9; 32]).unwrap()),
        app.clone(),
    );
    let router = Router::new()
        .route("/items/{id}", get(edit_in_mode).post(save))
        .route_layer(guard)
        .with_state(app.clone());
    let (status, _, html) = send(
        &router,
        Request::get("/items/1?mode=plain")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("mode plain"), "{html}");
    let token = common::token_in(&html).unwrap();
    app.items.lock().unwrap().get_mut(&1).unwrap().name = "Desk lamp".into();
    let (status, _, html) = post_to(
        &router,
        "/items/1",
        body(&token, "Mine", "Tools", true, "x"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("Shop admin"), "the app's page: {html}");
    assert!(
        html.contains("mode plain"),
        "the page with its query: {html}"
    );
    assert_eq!(app.writes.load(Ordering::SeqCst), 0);
}
