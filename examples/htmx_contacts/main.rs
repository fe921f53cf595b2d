//! An htmx app behind the guard: contacts, with the patterns htmx apps use.
//!
//! - the whole app under `hx-boost` on `<body>` (links and forms load by
//!   htmx, the header stays);
//! - inline row editing on the list (`hx-get` a row form, `hx-post` it back,
//!   the row swapped in place);
//! - an edit page whose form saves in place (`hx-post`, the answer into a
//!   status line: the form stays, so the guard's fresh token keeps its next
//!   save current) and whose city select depends on the country select,
//!   re-rendered by `hx-get` with `hx-include` of the form (the form's token
//!   goes along and is kept: a change someone else saved meanwhile is not
//!   absorbed);
//! - delete buttons (`hx-delete`) carrying their row's token in `hx-headers`;
//!   the layout loads the guard's htmx script (`HTMX_SCRIPT_PATH`), so a
//!   stale delete from the list (a page the guard does not render) shows its
//!   "not deleted" answer under htmx 2 too.
//!
//! No code of the application deals with htmx and the guard together: a
//! conflict shows in place of the form in htmx 2 and htmx 4 alike (README,
//! section "htmx").
//!
//! ```text
//! cargo run --example htmx_contacts
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:3002`); keeps its contacts in
//! memory. htmx comes from the file `HTMX_JS` names (the end-to-end tests
//! point it at htmx 2 or htmx 4 from npm), else from unpkg.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use concurrency_guard::{
    ConcurrencyGuardLayer, Guarded, HTMX_SCRIPT_PATH, Key, KeyRing, RenderState, Tokens,
    htmx_script,
};
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};

/// A contact, as stored and as its forms show it.
#[derive(Debug, Clone, Serialize, RenderState)]
struct Contact {
    #[render_state(key)]
    id: i64,
    name: String,
    email: String,
    country: String,
    city: String,
}

/// The countries and their cities: the city select depends on the country.
const PLACES: &[(&str, &[&str])] = &[
    ("France", &["Paris", "Lyon", "Marseille"]),
    ("Japan", &["Tokyo", "Osaka", "Kyoto"]),
    ("Kenya", &["Nairobi", "Mombasa"]),
];

fn cities(country: &str) -> &'static [&'static str] {
    PLACES
        .iter()
        .find(|(c, _)| *c == country)
        .map_or(&[], |(_, cities)| cities)
}

#[derive(Clone)]
struct App {
    contacts: Arc<Mutex<BTreeMap<i64, Contact>>>,
    /// The guard's tokens, to sign one per list row (each row's delete
    /// button writes to its own record).
    tokens: Tokens,
    templates: Arc<Environment<'static>>,
    htmx: Arc<Htmx>,
}

/// Where htmx comes from.
enum Htmx {
    File(String, Vec<u8>),
    Cdn,
}

impl App {
    fn contact(&self, id: i64) -> Option<Contact> {
        self.contacts
            .lock()
            .expect("never poisoned")
            .get(&id)
            .cloned()
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Response {
        let version = match &*self.htmx {
            Htmx::File(version, _) => version.clone(),
            Htmx::Cdn => "htmx 2 (unpkg)".into(),
        };
        let ctx = context! { htmx_version => version, ..ctx };
        match self
            .templates
            .get_template(name)
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => Html(html).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }

    /// A row of the list, with its delete button's token.
    fn row(&self, contact: &Contact) -> minijinja::Value {
        context! { contact => contact, token => self.tokens.issue(contact).value() }
    }
}

/// The guard's loader: the contact the path names, as it is now.
impl FromRequestParts<App> for Contact {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| StatusCode::NOT_FOUND)?;
        app.contact(id).ok_or(StatusCode::NOT_FOUND)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    // A key made at start: tokens do not outlive the process (fine here).
    let keys = KeyRing::new(1, Key::generate());
    let tokens = Tokens::new(keys);
    let app = App {
        contacts: Arc::new(Mutex::new(seed())),
        tokens: tokens.clone(),
        templates: Arc::new(templates()?),
        htmx: Arc::new(htmx_source()?),
    };
    let guard = ConcurrencyGuardLayer::<Contact, _>::with_tokens(tokens, app.clone());
    let router = Router::new()
        .route("/contacts/{id}/edit", get(edit).post(save))
        .route("/contacts/{id}/form", get(form))
        .route("/contacts/{id}/row", get(row).post(save_row))
        .route("/contacts/{id}/row/edit", get(row_edit))
        .route("/contacts/{id}", axum::routing::delete(delete))
        .route_layer(guard)
        // Not guarded: they show no form of one record.
        .route("/", get(|| async { Redirect::to("/contacts") }))
        .route("/contacts", get(list))
        .route("/htmx.js", get(htmx_js))
        // The guard's htmx script, for the list page (not guarded) whose
        // delete buttons carry tokens: htmx 2 then shows their 409.
        .route(HTMX_SCRIPT_PATH, get(htmx_script))
        .with_state(app);
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "htmx contacts example running at http://{}/",
        listener.local_addr()?
    );
    axum::serve(listener, router).await?;
    Ok(())
}

fn seed() -> BTreeMap<i64, Contact> {
    let people = [
        ("Ada Lovelace", "ada@example.org", "France", "Paris"),
        ("Grace Hopper", "grace@example.org", "Japan", "Osaka"),
        ("Wangari Maathai", "wangari@example.org", "Kenya", "Nairobi"),
    ];
    (1..)
        .zip(people)
        .map(|(id, (name, email, country, city))| {
            let contact = Contact {
                id,
                name: name.into(),
                email: email.into(),
                country: country.into(),
                city: city.into(),
            };
            (id, contact)
        })
        .collect()
}

fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("layout.html", include_str!("templates/layout.html"))?;
    env.add_template("list.html", include_str!("templates/list.html"))?;
    env.add_template("row.html", include_str!("templates/row.html"))?;
    env.add_template("row_edit.html", include_str!("templates/row_edit.html"))?;
    env.add_template("edit.html", include_str!("templates/edit.html"))?;
    env.add_template("form.html", include_str!("templates/form.html"))?;
    Ok(env)
}

/// htmx from the file `HTMX_JS` names (its version read from the
/// `package.json` beside its `dist/`), else from unpkg.
fn htmx_source() -> std::io::Result<Htmx> {
    let Ok(path) = std::env::var("HTMX_JS") else {
        return Ok(Htmx::Cdn);
    };
    let js = std::fs::read(&path)?;
    let package = std::path::Path::new(&path)
        .parent()
        .and_then(|dist| dist.parent())
        .map(|root| root.join("package.json"));
    let version = package
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(|v| format!("htmx {v}")))
        .unwrap_or_else(|| "htmx".into());
    Ok(Htmx::File(version, js))
}

async fn htmx_js(State(app): State<App>) -> Response {
    match &*app.htmx {
        Htmx::File(_, js) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            js.clone(),
        )
            .into_response(),
        Htmx::Cdn => Redirect::temporary("https://unpkg.com/htmx.org@2.0.11").into_response(),
    }
}

/// An htmx request that swaps part of the page (not a boosted navigation,
/// which loads whole pages).
fn in_place(headers: &HeaderMap) -> bool {
    let has = |name: &str| headers.get(name).is_some_and(|v| v == "true");
    has("hx-request") && !has("hx-boosted")
}

async fn list(State(app): State<App>) -> Response {
    let contacts: Vec<Contact> = app
        .contacts
        .lock()
        .expect("never poisoned")
        .values()
        .cloned()
        .collect();
    let rows: Vec<_> = contacts.iter().map(|c| app.row(c)).collect();
    app.render("list.html", context! { rows })
}

fn form_context(contact: &Contact) -> minijinja::Value {
    let countries: Vec<&str> = PLACES.iter().map(|(c, _)| *c).collect();
    context! { contact, countries, cities => cities(&contact.country) }
}

/// The edit page, as the guard loaded the contact.
async fn edit(State(app): State<App>, Guarded(contact): Guarded<Contact>) -> Response {
    app.render("edit.html", form_context(&contact))
}

/// What the user has typed so far (the form's fields, as `hx-include` sends them).
#[derive(Deserialize)]
struct Typed {
    name: Option<String>,
    email: Option<String>,
    country: Option<String>,
    city: Option<String>,
}

/// The edit form again, from what the user typed, its cities for the
/// chosen country. The guard keeps the token the request carries.
async fn form(
    State(app): State<App>,
    Guarded(mut contact): Guarded<Contact>,
    Query(typed): Query<Typed>,
) -> Response {
    contact.name = typed.name.unwrap_or(contact.name);
    contact.email = typed.email.unwrap_or(contact.email);
    contact.country = typed.country.unwrap_or(contact.country);
    let cities = cities(&contact.country);
    contact.city = typed
        .city
        .filter(|c| cities.contains(&c.as_str()))
        .or_else(|| cities.first().map(|c| (*c).to_owned()))
        .unwrap_or_default();
    let html = app
        .templates
        .get_template("form.html")
        .and_then(|t| t.render(form_context(&contact)));
    match html {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct Edited {
    name: String,
    email: String,
    country: String,
    city: String,
}

/// Runs only when nothing the form showed has changed since it was opened.
async fn save(
    State(app): State<App>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(edited): Form<Edited>,
) -> Response {
    let mut contacts = app.contacts.lock().expect("never poisoned");
    let Some(contact) = contacts.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    contact.name = edited.name;
    contact.email = edited.email;
    contact.country = edited.country;
    contact.city = edited.city;
    if in_place(&headers) {
        Html(format!("Saved {}.", html_escape(&contact.name))).into_response()
    } else {
        Redirect::to("/contacts").into_response()
    }
}

async fn row(State(app): State<App>, Guarded(contact): Guarded<Contact>) -> Response {
    app.render("row.html", context! { row => app.row(&contact) })
}

async fn row_edit(State(app): State<App>, Guarded(contact): Guarded<Contact>) -> Response {
    app.render("row_edit.html", context! { contact })
}

#[derive(Deserialize)]
struct RowEdited {
    name: String,
    email: String,
}

/// The inline edit's save: the row again, showing what was saved. Its
/// delete button's token is signed after the write (the guard holds the
/// record's lock until this answer is made).
async fn save_row(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(edited): Form<RowEdited>,
) -> Response {
    let saved = {
        let mut contacts = app.contacts.lock().expect("never poisoned");
        let Some(contact) = contacts.get_mut(&id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        contact.name = edited.name;
        contact.email = edited.email;
        contact.clone()
    };
    app.render("row.html", context! { row => app.row(&saved) })
}

/// Deletes; htmx swaps the row for nothing.
async fn delete(State(app): State<App>, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    app.contacts.lock().expect("never poisoned").remove(&id);
    if headers.contains_key("hx-request") {
        Html("").into_response()
    } else {
        Redirect::to("/contacts").into_response()
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
