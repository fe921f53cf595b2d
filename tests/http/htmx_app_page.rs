//! Issue 17 (newcomer defects 3 and 10): a conflict answered to an htmx
//! request is the app's own page, as for a browser without htmx: a boosted
//! request gets the whole page (htmx swaps it as any boosted answer), an
//! `hx-post` form gets its own form back, in place of the form that sent it
//! (`HX-Retarget`, `HX-Reswap: outerHTML`, htmx's documented response
//! headers), with the app's labels and controls, what the user entered, the
//! conflict marks and a fresh token. A stale delete from a button inside the
//! form keeps the button. The guard's own fragment stays for a request from
//! another page (a list's delete button).

use crate::common::{self, FIELD};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Method, Request, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing, RenderState};

#[derive(Clone, Debug, RenderState)]
#[render_state(form = "contact")]
struct Contact {
    #[render_state(key)]
    id: i64,
    name: String,
    email: String,
    kind: String,
    notes: String,
    #[render_state(checkbox, with = on_or_empty)]
    favorite: bool,
}

fn on_or_empty(v: &bool) -> &'static str {
    if *v { "on" } else { "" }
}

#[derive(Clone, Default)]
struct App {
    contacts: Arc<Mutex<HashMap<i64, Contact>>>,
    writes: Arc<Mutex<usize>>,
}

impl FromRequestParts<App> for Contact {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        app.contacts
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(StatusCode::NOT_FOUND)
    }
}

/// The app's edit page: a layout (header), an `hx-post` form that saves in
/// place (`hx-target="#flash"`), an email input, a select, a textarea, a
/// checkbox, and a delete button inside the form.
async fn edit(Guarded(c): Guarded<Contact>) -> Response {
    let esc = common::escape;
    let options: String = ["friend", "family", "work"]
        .iter()
        .map(|k| {
            let selected = if c.kind == *k { " selected" } else { "" };
            format!(r#"<option value="{k}"{selected}>{k}</option>"#)
        })
        .collect();
    Html(format!(
        r##"<!doctype html><html><head><title>Edit</title></head><body hx-boost="true"><header id="site-header">Rolodex</header><main><div id="flash"></div><form id="edit-form" method="post" action="/contacts/{id}" hx-post="/contacts/{id}" hx-target="#flash"><label for="name">Full name</label><input id="name" name="name" value="{name}"><label for="email">Email address</label><input id="email" name="email" type="email" value="{email}"><label for="kind">Kind</label><select id="kind" name="kind">{options}</select><label for="notes">Notes</label><textarea id="notes" name="notes">{notes}</textarea><label><input type="checkbox" name="favorite"{fav}> Favorite</label><button type="submit">Save</button><button type="button" id="delete" hx-delete="/contacts/{id}">Delete</button></form></main></body></html>"##,
        id = c.id,
        name = esc(&c.name),
        email = esc(&c.email),
        notes = esc(&c.notes),
        fav = if c.favorite { " checked" } else { "" },
    ))
    .into_response()
}

async fn save(State(app): State<App>) -> Html<&'static str> {
    *app.writes.lock().unwrap() += 1;
    Html("Saved.")
}

async fn delete(State(app): State<App>, Path(id): Path<i64>) -> Html<&'static str> {
    app.contacts.lock().unwrap().remove(&id);
    Html("")
}

fn setup() -> (Router, App) {
    let app = App::default();
    app.contacts.lock().unwrap().insert(
        1,
        Contact {
            id: 1,
            name: "Ann".into(),
            email: "ann@example.org".into(),
            kind: "friend".into(),
            notes: "met at the demo".into(),
            favorite: true,
        },
    );
    let guard = ConcurrencyGuardLayer::<Contact, App>::new(
        KeyRing::new(1, Key::from_bytes(&[5; 32]).unwrap()),
        app.clone(),
    );
    let router = Router::new()
        .route(
            "/contacts/{id}",
            get(edit).post(save).delete(delete).route_layer(guard),
        )
        .with_state(app.clone());
    (router, app)
}

fn change(app: &App, f: impl FnOnce(&mut Contact)) {
    f(app.contacts.lock().unwrap().get_mut(&1).unwrap());
}

/// An htmx request of `method` with `body`, with the headers htmx sends.
fn htmx(method: Method, body: String, headers: &[(&'static str, &str)]) -> Request<Body> {
    let mut req = common::form_request(method, "/contacts/1", body);
    let h = req.headers_mut();
    h.insert("hx-request", "true".parse().unwrap());
    h.insert(header::HOST, "app.example".parse().unwrap());
    for (k, v) in headers {
        h.insert(*k, v.parse().unwrap());
    }
    req
}

/// Bob's stale save: a new name, "family" chosen, the box unticked.
fn bobs_edit(token: &str) -> String {
    common::urlencode(&[
        (FIELD, token),
        ("name", "Bob's name"),
        ("email", "ann@example.org"),
        ("kind", "family"),
        ("notes", "met at the demo"),
    ])
}

#[track_caller]
fn assert_the_apps_form(answer: &common::Answer, token: &str) {
    let body = &answer.body;
    // The app's form, its labels and controls as the app wrote them.
    assert!(
        body.contains(r#"<label for="name">Full name</label>"#),
        "{body}"
    );
    assert!(body.contains(r#"type="email""#), "{body}");
    assert!(body.contains(r#"<select id="kind" name="kind""#), "{body}");
    assert!(
        body.contains(r#"<option value="family" selected"#),
        "the user's choice is selected: {body}"
    );
    assert!(body.contains(r#"<option value="friend">"#), "{body}");
    assert!(
        body.contains(r#"value="Bob&#39;s name""#) || body.contains(r#"value="Bob's name""#),
        "{body}"
    );
    assert!(
        !body.contains("checked"),
        "the unticked box stays unticked: {body}"
    );
    // The alert names the field someone else changed by its label.
    assert!(body.contains(r#"role="alert""#), "{body}");
    assert!(body.contains("Email address"), "{body}");
    assert!(body.contains("ann@work.example"), "{body}");
    assert!(body.contains(r#"aria-invalid="true""#), "{body}");
    // A fresh token, not the stale one.
    let fresh = common::token_in(body).expect("a token in the form");
    assert_ne!(fresh, token);
}

/// A non-boosted `hx-post` form (htmx 2 names it in `HX-Trigger`): its own
/// form back, in place of the form on the page.
#[tokio::test]
async fn an_hx_post_conflict_is_the_apps_own_form_in_place() {
    let (router, app) = setup();
    let token = common::load_token(&router, "/contacts/1").await;
    change(&app, |c| c.email = "ann@work.example".into());
    for headers in [
        // htmx 2
        vec![
            ("hx-trigger", "edit-form"),
            ("hx-target", "flash"),
            ("hx-current-url", "http://app.example/contacts/1"),
        ],
        // htmx 4
        vec![
            ("hx-source", "form#edit-form"),
            ("hx-current-url", "http://app.example/contacts/1"),
        ],
    ] {
        let answer = common::send(&router, htmx(Method::POST, bobs_edit(&token), &headers)).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
        assert_eq!(answer.header("hx-retarget"), Some("#edit-form"));
        assert_eq!(answer.header("hx-reswap"), Some("outerHTML"));
        assert_eq!(answer.header("x-concurrency-guard"), Some("conflict"));
        assert_eq!(
            answer.header("hx-trigger"),
            Some("concurrency-guard-refused")
        );
        // The form alone: no layout around it.
        assert!(
            answer.body.starts_with(r#"<form id="edit-form""#),
            "{}",
            answer.body
        );
        assert!(
            answer.body.trim_end().ends_with("</form>"),
            "{}",
            answer.body
        );
        assert!(!answer.body.contains("site-header"), "{}", answer.body);
        assert_the_apps_form(&answer, &token);
    }
    assert_eq!(*app.writes.lock().unwrap(), 0, "the handler never ran");
}

/// A boosted plain form (`HX-Boosted`): the whole page, which htmx swaps as
/// it swaps any boosted answer; no header points it elsewhere.
#[tokio::test]
async fn a_boosted_conflict_is_the_apps_whole_page() {
    let (router, app) = setup();
    let token = common::load_token(&router, "/contacts/1").await;
    change(&app, |c| c.email = "ann@work.example".into());
    let headers = [
        ("hx-boosted", "true"),
        ("hx-trigger", "edit-form"),
        ("hx-current-url", "http://app.example/contacts/1"),
    ];
    let answer = common::send(&router, htmx(Method::POST, bobs_edit(&token), &headers)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.header("hx-retarget"), None);
    assert_eq!(answer.header("hx-reswap"), None);
    assert_eq!(answer.header("x-concurrency-guard"), Some("conflict"));
    assert!(
        answer
            .body
            .contains(r#"<header id="site-header">Rolodex</header>"#)
    );
    assert_eq!(answer.body.matches("<form").count(), 1, "{}", answer.body);
    assert_the_apps_form(&answer, &token);
    assert_eq!(*app.writes.lock().unwrap(), 0);
}

/// A field the user submits with exactly the value saved now is no
/// conflict: not named in the alert, not marked.
#[tokio::test]
async fn a_field_submitted_with_the_saved_value_is_not_a_conflict() {
    let (router, app) = setup();
    let token = common::load_token(&router, "/contacts/1").await;
    change(&app, |c| {
        c.email = "ann@work.example".into();
        c.notes = "likes poetry".into();
    });
    let body = common::urlencode(&[
        (FIELD, &token),
        ("name", "Bob's name"),
        ("email", "bob@example.org"),
        ("kind", "friend"),
        ("notes", "likes poetry"),
        ("favorite", "on"),
    ]);
    let headers = [("hx-trigger", "edit-form")];
    let answer = common::send(&router, htmx(Method::POST, body, &headers)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert!(answer.body.contains("Email address"), "{}", answer.body);
    assert!(
        !answer.body.contains(r##"href="#notes""##),
        "{}",
        answer.body
    );
    assert!(
        answer
            .body
            .contains(r#"<textarea id="notes" name="notes">likes poetry</textarea>"#),
        "notes is not marked: {}",
        answer.body
    );
}

/// The stale form's delete button (inside the form): the form comes back in
/// place of the form, the button with it, saying the record was not deleted.
#[tokio::test]
async fn a_stale_delete_from_the_form_keeps_the_button() {
    let (router, app) = setup();
    let token = common::load_token(&router, "/contacts/1").await;
    change(&app, |c| c.email = "ann@work.example".into());
    for headers in [
        vec![("hx-trigger", "delete"), (FIELD_HEADER, token.as_str())],
        vec![
            ("hx-source", "button#delete"),
            (FIELD_HEADER, token.as_str()),
        ],
    ] {
        let mut req = htmx(Method::DELETE, String::new(), &headers);
        req.headers_mut().remove(header::CONTENT_TYPE);
        let answer = common::send(&router, req).await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
        assert_eq!(answer.header("hx-retarget"), Some("#edit-form"));
        assert_eq!(answer.header("hx-reswap"), Some("outerHTML"));
        assert!(
            answer.body.contains("has not been deleted"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains(r#"id="delete""#), "{}", answer.body);
        assert!(
            answer.body.starts_with(r#"<form id="edit-form""#),
            "{}",
            answer.body
        );
    }
    assert!(app.contacts.lock().unwrap().contains_key(&1));
}

const FIELD_HEADER: &str = "x-concurrency-token";

/// A stale delete from another page (a list's row button, no id): the
/// app's form has no place there; the guard's own fragment says "not
/// deleted" in place of the button: a short inline notice that fits in the
/// row (phrasing content, HTML's `<span>`), naming what changed, with a
/// link to reload, and no form (a form can only POST, and a POST to the
/// record's URL is its save here).
#[tokio::test]
async fn a_stale_delete_from_another_page_gets_the_guards_fragment() {
    let (router, app) = setup();
    let token = common::load_token(&router, "/contacts/1").await;
    change(&app, |c| c.email = "ann@work.example".into());
    let headers = [
        (FIELD_HEADER, token.as_str()),
        ("hx-current-url", "http://app.example/contacts"),
    ];
    let mut req = htmx(Method::DELETE, String::new(), &headers);
    req.headers_mut().remove(header::CONTENT_TYPE);
    let answer = common::send(&router, req).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(answer.header("hx-retarget"), Some("this"));
    assert_eq!(answer.header("x-concurrency-guard"), Some("conflict"));
    assert!(!answer.body.contains("edit-form"), "{}", answer.body);
    assert!(
        answer.body.contains("not been deleted") || answer.body.contains("not deleted"),
        "{}",
        answer.body
    );
    let body = &answer.body;
    assert!(
        body.starts_with("<span") && body.ends_with("</span>"),
        "{body}"
    );
    assert!(body.contains(r#"role="alert""#), "{body}");
    assert!(body.contains("email"), "names what changed: {body}");
    for block in ["<form", "<section", "<h1", "<table", "<p>", "<div"] {
        assert!(!body.contains(block), "{block} in an inline notice: {body}");
    }
    assert!(
        body.contains(r#"<a href="/contacts/1">Reload</a>"#),
        "{body}"
    );
    assert!(body.len() < 400, "compact: {} bytes: {body}", body.len());
    assert!(app.contacts.lock().unwrap().contains_key(&1));
    assert_eq!(*app.writes.lock().unwrap(), 0);
}
