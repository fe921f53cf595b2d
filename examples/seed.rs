//! The page from the original design: a text field and a counter widget.
//!
//! The form has one input, `some_field_value`, and shows a counter that the
//! user cannot edit here but that takes part in the check as *context*. The
//! counter is incremented on another page (not guarded). Open the form, follow
//! "Open another tab…", increment the counter there, come back and submit the
//! form: the guard refuses it with 409, because the page you submitted from
//! showed a counter value that is no longer true.
//!
//! ```text
//! cargo run --example seed
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:3001`). The state lives in memory.

use std::sync::{Arc, Mutex};

use axum::extract::{Form, FromRequestParts, State};
use axum::response::{Html, Redirect};
use axum::routing::get;
use axum::{Router, http::request::Parts};
use concurrency_guard::{ConcurrencyGuardLayer, FormState, Guarded, Key, RenderState};
use serde::Deserialize;

/// What the page shows; kept in memory.
#[derive(Clone, Debug, Default)]
struct Page {
    some_field_value: String,
    counter: u64,
}

type Shared = Arc<Mutex<Page>>;

/// The form: the text input, and the counter shown beside it as context.
///
/// Written by hand (no derive) the way a widget library would: each widget
/// adds what it shows.
impl RenderState for Page {
    const FORM_NAME: &'static str = "seed";

    fn render_state(&self, state: &mut FormState) {
        state.input("some_field_value", &self.some_field_value);
        // The counter widget: displayed, not editable, still checked.
        state.context("counter", &self.counter);
    }
}

/// The guard's loader: what the form shows *now*.
impl FromRequestParts<Shared> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut Parts,
        shared: &Shared,
    ) -> Result<Self, Self::Rejection> {
        Ok(shared
            .lock()
            .expect("the page's lock is never poisoned")
            .clone())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let shared: Shared = Arc::new(Mutex::new(Page {
        some_field_value: "Hello".into(),
        counter: 0,
    }));
    // A key made at start: tokens do not outlive the process (fine here).
    let guard = ConcurrencyGuardLayer::<Page, _>::new(Key::generate(), shared.clone());
    let app = Router::new()
        .route("/", get(show).post(save))
        .route_layer(guard)
        // Added after `route_layer`: the counter page is not guarded.
        .route("/counter", get(counter_page).post(increment))
        .with_state(shared);

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Seed example running at http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The form. The guard embeds the token in its `<form method="post">`.
async fn show(Guarded(page): Guarded<Page>) -> Html<String> {
    Html(layout(
        "Seed",
        &format!(
            r#"<h1>The seed form</h1>
<form method="post" action="/">
  <label for="some_field_value">Some field</label>
  <input id="some_field_value" name="some_field_value" value="{value}">
  <div class="widget" aria-label="Counter">
    Counter: <output id="counter">{counter}</output>
    <a href="/counter" target="_blank">Open another tab…</a> to increment it.
  </div>
  <button type="submit">Save</button>
</form>"#,
            value = escape(&page.some_field_value),
            counter = page.counter,
        ),
    ))
}

#[derive(Deserialize)]
struct Input {
    some_field_value: String,
}

/// Runs only when nothing the form showed has changed since it was rendered.
async fn save(State(shared): State<Shared>, Form(input): Form<Input>) -> Redirect {
    shared.lock().expect("never poisoned").some_field_value = input.some_field_value;
    Redirect::to("/")
}

async fn counter_page(State(shared): State<Shared>) -> Html<String> {
    let counter = shared.lock().expect("never poisoned").counter;
    Html(layout(
        "Counter",
        &format!(
            r#"<h1>The counter</h1>
<p>Counter: <output id="counter">{counter}</output></p>
<form method="post" action="/counter"><button type="submit">Increment</button></form>
<p>Now submit the form in the other tab: it showed an older counter.</p>"#
        ),
    ))
}

async fn increment(State(shared): State<Shared>) -> Redirect {
    shared.lock().expect("never poisoned").counter += 1;
    Redirect::to("/counter")
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;line-height:1.5}}
label{{display:block;font-weight:600}}input{{padding:.3rem;width:20rem}}
.widget{{margin:1rem 0;padding:.6rem;border:1px solid #ccc;border-radius:.3rem}}</style>
</head><body>{body}</body></html>"#
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
