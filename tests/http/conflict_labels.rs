//! Issue 16: a conflict names each field by its `label = "…"` when the page
//! has no `<label>` for it, and the guard's own page (the fallback when the
//! app's page cannot be rendered) shows each field as the control it is.

use crate::common::{self, FIELD};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Method, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use concurrency_guard::{
    ConcurrencyGuardLayer, ConflictHandling, Guarded, Key, KeyRing, RenderState,
};

#[derive(Clone, Debug, RenderState)]
#[render_state(form = "profile")]
struct Profile {
    #[render_state(key)]
    id: i64,
    #[render_state(label = "First name")]
    first_name: String,
    #[render_state(label = "Newsletter", checkbox, with = one_or_empty)]
    newsletter: bool,
    #[render_state(label = "Size", radio)]
    size: String,
    #[render_state(label = "Notes")]
    notes: String,
}

fn one_or_empty(v: &bool) -> &'static str {
    if *v { "1" } else { "" }
}

#[derive(Clone, Default)]
struct App {
    profiles: Arc<Mutex<HashMap<i64, Profile>>>,
    /// The edit page answers 500 instead (the app's page cannot be shown).
    broken: Arc<AtomicBool>,
    writes: Arc<Mutex<usize>>,
}

impl FromRequestParts<App> for Profile {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        app.profiles
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(StatusCode::NOT_FOUND)
    }
}

/// The app's page: no `<label>` anywhere (placeholders only).
async fn edit(State(app): State<App>, Guarded(p): Guarded<Profile>) -> Response {
    if app.broken.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response();
    }
    let esc = common::escape;
    let radio = |v: &str| {
        let checked = if p.size == v { " checked" } else { "" };
        format!(r#"<input type="radio" name="size" value="{v}"{checked}>"#)
    };
    Html(format!(
        r#"<!doctype html><title>Profile</title><form method="post"><input name="first_name" placeholder="First name" value="{}"><input type="checkbox" name="newsletter" value="1"{}>{}{}<textarea name="notes">{}</textarea><button>Save</button></form>"#,
        esc(&p.first_name),
        if p.newsletter { " checked" } else { "" },
        radio("S"),
        radio("M"),
        esc(&p.notes),
    ))
    .into_response()
}

async fn save(State(app): State<App>) -> StatusCode {
    *app.writes.lock().unwrap() += 1;
    StatusCode::NO_CONTENT
}

fn setup() -> (Router, App) {
    setup_with(ConflictHandling::default())
}

/// The app with the guard answering conflicts as `handling` says.
fn setup_with(handling: ConflictHandling) -> (Router, App) {
    let app = App::default();
    app.profiles.lock().unwrap().insert(
        1,
        Profile {
            id: 1,
            first_name: "Ada".into(),
            newsletter: true,
            size: "S".into(),
            notes: "one".into(),
        },
    );
    let guard = ConcurrencyGuardLayer::<Profile, App>::new(
        KeyRing::new(1, Key::from_bytes(&[3; 32]).unwrap()),
        app.clone(),
    )
    .with_conflict_handling(handling);
    let router = Router::new()
        .route("/profiles/{id}", get(edit).post(save).route_layer(guard))
        .with_state(app.clone());
    (router, app)
}

fn change(app: &App, f: impl FnOnce(&mut Profile)) {
    f(app.profiles.lock().unwrap().get_mut(&1).unwrap());
}

async fn post(router: &Router, pairs: &[(&str, &str)]) -> common::Answer {
    let mut req = common::form_request(Method::POST, "/profiles/1", common::urlencode(pairs));
    req.headers_mut()
        .insert(header::ACCEPT, "text/html".parse().unwrap());
    common::send(router, req).await
}

#[tokio::test]
async fn the_apps_alert_names_a_field_without_a_label_element_by_its_render_state_label() {
    let (router, app) = setup();
    let token = common::load_token(&router, "/profiles/1").await;
    change(&app, |p| p.first_name = "Ada L.".into());
    let answer = post(
        &router,
        &[
            (FIELD, &token),
            ("first_name", "Augusta"),
            ("newsletter", "1"),
            ("size", "S"),
            ("notes", "one"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert!(
        answer.body.contains("<title>Profile</title>"),
        "the app's page: {}",
        answer.body
    );
    assert!(
        answer
            .body
            .contains("<strong>First name</strong>: saved now “Ada L.”; you entered “Augusta”"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("<strong>first_name</strong>"));
    assert_eq!(*app.writes.lock().unwrap(), 0);
}

#[tokio::test]
async fn the_guards_own_page_shows_labels_and_the_real_controls() {
    // The guard's own page, asked for: a page the app refuses to render
    // shows no current values at all (issue 22).
    let (router, app) = setup_with(ConflictHandling::StandalonePage);
    let token = common::load_token(&router, "/profiles/1").await;
    change(&app, |p| {
        p.first_name = "Ada L.".into();
        p.size = "S".into();
        p.notes = "one\ntwo".into();
    });
    // The user changed the name and the size and unticked the newsletter.
    let answer = post(
        &router,
        &[
            (FIELD, &token),
            ("first_name", "Augusta"),
            ("size", "M"),
            ("notes", "one"),
        ],
    )
    .await;
    let body = &answer.body;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.contains("Your version"),
        "the guard's own page: {body}"
    );
    // The changed fields by their labels.
    assert!(
        body.contains(r#"<th scope="row">First name</th>"#),
        "{body}"
    );
    assert!(body.contains(r#"<th scope="row">Notes</th>"#), "{body}");
    // The text input, labelled.
    assert!(body.contains(r#"<label for="cg-field-0">First name</label><input type="text" id="cg-field-0" name="first_name" value="Augusta">"#), "{body}");
    // The radio group: the user's choice checked, the saved one beside it.
    assert!(body.contains(r#"<legend>Size</legend>"#), "{body}");
    assert!(
        body.contains(r#"<input type="radio" id="cg-field-1" name="size" value="M" checked>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<input type="radio" name="size" value="S"> S (saved now)"#),
        "{body}"
    );
    // A value saved on several lines: a textarea (the user left the notes
    // alone, so they carry the saved value).
    // (The value as a browser submits it: CRLF.)
    assert!(
        body.contains(
            "<textarea rows=\"4\" id=\"cg-field-2\" name=\"notes\">one\r\ntwo</textarea>"
        ),
        "{body}"
    );
    // The unticked newsletter: an unchecked checkbox with its real value,
    // never a text input.
    assert!(
        body.contains(r#"<input type="checkbox" name="newsletter" value="1"> Newsletter"#),
        "{body}"
    );
    assert!(!body.contains(r#"type="text" id="cg-field-3""#), "{body}");
    assert!(!body.contains(r#"name="newsletter" value="""#), "{body}");
    assert_eq!(*app.writes.lock().unwrap(), 0);
}
