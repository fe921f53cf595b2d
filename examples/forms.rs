//! Forms as browsers submit them, in merge mode: the page the Chromium
//! scenarios in `e2e/forms.test.mjs` drive.
//!
//! Each item's edit page (`/items/{id}`) has a `<textarea>` whose stored
//! value has line breaks (and starts with one, which the HTML parser drops)
//! and a checkbox rendered with `value="1"`. The guard merges a stale save
//! whose changes do not overlap another user's: an untouched textarea that
//! comes back with CRLF line breaks is not an edit, and an untouched box
//! another user unchecked stays unchecked.
//!
//! The rename page (`/items/{id}/rename`) has the forms whose token the
//! guard places by WHATWG HTML's rules: a `method="get"` form whose button
//! says `formmethod="post"` (gets a token), a form posting to another origin
//! (gets none) and a form whose template renders the token itself (gets no
//! second one).
//!
//! ```text
//! cargo run --example forms
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:3003`; port 0 picks a free one).
//! Items 1 to 9 live in memory; `/api/items/{id}` shows one as JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, Json, Redirect};
use axum::routing::get;
use axum::{Router, debug_handler};
use concurrency_guard::{ConcurrencyGuardLayer, ConcurrencyToken, Guarded, Key, RenderState};
use serde::Serialize;

/// One item's edit form, as the page renders it.
#[derive(Clone, Debug, RenderState, Serialize)]
#[render_state(form = "item")]
struct Item {
    #[render_state(key)]
    id: i64,
    name: String,
    /// A `<textarea>`; stored with LF line breaks.
    notes: String,
    /// `<input type="checkbox" name="active" value="1">`.
    #[render_state(checkbox, with = one_when_checked)]
    active: bool,
}

fn one_when_checked(checked: &bool) -> &'static str {
    if *checked { "1" } else { "" }
}

type Items = Arc<Mutex<HashMap<i64, Item>>>;

impl FromRequestParts<Items> for Item {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, items: &Items) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<i64>::from_request_parts(parts, items)
            .await
            .map_err(|_| (StatusCode::BAD_REQUEST, "An item's id is a number."))?;
        items
            .lock()
            .expect("never poisoned")
            .get(&id)
            .cloned()
            .ok_or((StatusCode::NOT_FOUND, "No such item."))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let items: Items = Arc::new(Mutex::new(
        (1..=9)
            .map(|id| {
                let item = Item {
                    id,
                    name: format!("Lamp {id}"),
                    // The parser drops the first LF after `<textarea>`: the
                    // browser shows and submits "line1\r\nline2".
                    notes: "\nline1\nline2".into(),
                    active: true,
                };
                (id, item)
            })
            .collect(),
    ));
    // A key made at start: tokens do not outlive the process (fine here).
    let guard =
        ConcurrencyGuardLayer::<Item, _>::new(Key::generate(), items.clone()).with_merge(true);
    let app = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route("/items/{id}/rename", get(rename_page).post(rename))
        .route_layer(guard)
        // Not guarded: what the store holds, for the scenarios to check.
        .route("/api/items/{id}", get(api_item))
        .with_state(items);

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "Forms example running at http://{}/items/1",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// The edit page; the guard puts the token into its post form.
async fn edit(Guarded(item): Guarded<Item>) -> Html<String> {
    Html(layout(
        &item.name,
        &format!(
            r#"<h1>Edit {name}</h1>
<form method="post" action="/items/{id}">
  <label for="name">Name</label>
  <input id="name" name="name" value="{name}">
  <label for="notes">Notes</label>
  <textarea id="notes" name="notes">{notes}</textarea>
  <label><input type="checkbox" id="active" name="active" value="1"{checked}> Active</label>
  <button type="submit" id="save">Save</button>
</form>
<p><a href="/items/{id}/rename">Rename only</a></p>"#,
            id = item.id,
            name = escape(&item.name),
            notes = escape(&item.notes),
            checked = if item.active { " checked" } else { "" },
        ),
    ))
}

/// An ordinary save: every column from the body; the box is checked when
/// its name is present; line breaks stored as LF.
async fn save(State(items): State<Items>, Path(id): Path<i64>, body: Bytes) -> Redirect {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if let Some(item) = items.lock().expect("never poisoned").get_mut(&id) {
        if let Some(name) = field("name") {
            item.name = name;
        }
        if let Some(notes) = field("notes") {
            item.notes = notes.replace("\r\n", "\n");
        }
        item.active = field("active").is_some();
    }
    Redirect::to(&format!("/items/{id}"))
}

/// The rename page: three forms, one per rule of where a token goes.
#[debug_handler(state = Items)]
async fn rename_page(Guarded(item): Guarded<Item>, token: ConcurrencyToken) -> Html<String> {
    Html(layout(
        &item.name,
        &format!(
            r#"<h1>Rename {name}</h1>
<form id="get-form" method="get" action="/items/{id}/rename">
  <input id="get-name" name="name" value="{name}">
  <button id="get-post" formmethod="post">Rename</button>
</form>
<form id="elsewhere" method="post" action="https://other.example/x">
  <input name="name" value="{name}">
  <button>Send elsewhere</button>
</form>
<form id="own" method="post" action="/items/{id}/rename">{token}
  <input id="own-name" name="name" value="{name}">
  <button id="own-save">Rename</button>
</form>"#,
            id = item.id,
            name = escape(&item.name),
        ),
    ))
}

/// Renames, and changes nothing else.
async fn rename(State(items): State<Items>, Path(id): Path<i64>, body: Bytes) -> Redirect {
    let name = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned());
    if let (Some(item), Some(name)) = (items.lock().expect("never poisoned").get_mut(&id), name) {
        item.name = name;
    }
    Redirect::to(&format!("/items/{id}/rename"))
}

async fn api_item(
    State(items): State<Items>,
    Path(id): Path<i64>,
) -> Result<Json<Item>, StatusCode> {
    let items = items.lock().expect("never poisoned");
    items
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;line-height:1.5}}
label{{display:block;font-weight:600}}</style>
</head><body>{body}</body></html>"#,
        title = escape(title),
    )
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
