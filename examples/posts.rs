//! A post whose record type lives in another crate, guarded with no copy of
//! its fields.
//!
//! The layout of a SeaORM or Diesel app: the ORM generates
//! `entity::post::Model` into a crate of its own (`examples/entity`). The
//! app cannot `impl RenderState for entity::post::Model` (the orphan rule:
//! trait and type are both foreign), and deriving in the generated file
//! would be overwritten. So the form is a newtype around the model, and the
//! derive reads the fields it lists through it:
//!
//! ```ignore
//! #[derive(Clone, RenderState)]
//! #[render_state(form = "post")]
//! struct PostForm(
//!     #[render_state(fields(id(key), title, body, published_on, ...))]
//!     entity::post::Model,
//! );
//! ```
//!
//! The newtype is local, so it is also the guard's loader
//! (`impl FromRequestParts<AppState> for PostForm`), and the write handler
//! takes the record the guard loaded (`Guarded(PostForm(post))`) instead of
//! loading it a second time. The loader answers with the app's own error
//! type, so `/posts/abc` and `/posts/999` keep the app's error pages.
//!
//! The dates and times render as `<input type="date">`, `datetime-local`
//! and `time` show them (feature `chrono`), and the status, an enum of the
//! entity crate, through its `Display` (`with = ToString::to_string`).
//!
//! ```text
//! cargo run --example posts
//! ```
//!
//! Listens on `ADDR` (default `127.0.0.1:3002`). The posts live in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, KeyRing, RenderState};
use entity::post::{self, Status};
use serde::Deserialize;

/// The posts, by id: the database of this example.
#[derive(Clone, Default)]
struct AppState {
    posts: Arc<Mutex<HashMap<i32, post::Model>>>,
}

/// The edit form of a post: the entity crate's model, as is. `views`
/// changes on every read and is not listed, so it takes no part; `comments`
/// is shown beside the form, so a new comment is a conflict.
#[derive(Clone, RenderState)]
#[render_state(form = "post")]
struct PostForm(
    #[render_state(fields(
        id(key),
        title,
        body,
        status(with = ToString::to_string),
        published_on,
        announce_at,
        remind_at,
        comments(context),
    ))]
    post::Model,
);

/// The app's own errors, each with a page that says what went wrong.
#[derive(Debug)]
enum AppError {
    /// The path's id is not a number.
    BadId(String),
    /// No post has this id.
    NotFound(i32),
    /// A submitted value is not valid.
    Invalid(&'static str, String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::BadId(text) => (
                StatusCode::BAD_REQUEST,
                format!("Cannot parse `{text}` as a post id"),
            ),
            AppError::NotFound(id) => (StatusCode::NOT_FOUND, format!("No post {id}")),
            AppError::Invalid(field, text) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`{text}` is not a valid {field}"),
            ),
        };
        (
            status,
            Html(layout("Error", &format!("<p>{}</p>", escape(&message)))),
        )
            .into_response()
    }
}

/// The guard's loader: the post as it is now (`SELECT … WHERE id = $1`).
impl FromRequestParts<AppState> for PostForm {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::BadId(e.body_text()))?;
        let id: i32 = text.parse().map_err(|_| AppError::BadId(text))?;
        let post = state
            .posts
            .lock()
            .expect("never poisoned")
            .get(&id)
            .cloned();
        post.map(PostForm).ok_or(AppError::NotFound(id))
    }
}

fn app(state: AppState) -> Router {
    let guard = ConcurrencyGuardLayer::<PostForm, _>::new(KeyRing::development(), state.clone());
    Router::new()
        .route("/posts/{id}", get(edit).post(save))
        .route_layer(guard)
        .with_state(state)
}

fn seeded() -> AppState {
    let state = AppState::default();
    let date = NaiveDate::from_ymd_opt(2024, 3, 1).expect("a valid date");
    state.posts.lock().expect("never poisoned").insert(
        1,
        post::Model {
            id: 1,
            title: "Hello".into(),
            body: "The first post.".into(),
            status: Status::Draft,
            published_on: date,
            announce_at: date.and_hms_opt(9, 30, 0).expect("a valid time"),
            remind_at: NaiveTime::from_hms_opt(17, 45, 30).expect("a valid time"),
            views: 0,
            comments: 0,
        },
    );
    state
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "Posts example running at http://{}/posts/1",
        listener.local_addr()?
    );
    axum::serve(listener, app(seeded())).await?;
    Ok(())
}

/// The edit page. The guard already loaded the post: render what it
/// fingerprinted. Each value is written as its input shows it, the same
/// text the guard fingerprinted (`FormState::of` would give it too).
async fn edit(Guarded(PostForm(post)): Guarded<PostForm>) -> Html<String> {
    let options: String = Status::ALL
        .iter()
        .map(|s| {
            let selected = if *s == post.status { " selected" } else { "" };
            format!(r#"<option value="{s}"{selected}>{s}</option>"#)
        })
        .collect();
    let state = concurrency_guard::FormState::of(&PostForm(post.clone()));
    let shown = |name: &str| {
        state
            .entries()
            .find(|e| e.name() == name)
            .map(|e| escape(e.value()))
            .unwrap_or_default()
    };
    Html(layout(
        "Edit post",
        &format!(
            r#"<h1>Edit post {id}</h1>
<p>{comments} comments</p>
<form method="post">
  <label for="title">Title</label><input id="title" name="title" value="{title}">
  <label for="body">Body</label><textarea id="body" name="body">{body}</textarea>
  <label for="status">Status</label><select id="status" name="status">{options}</select>
  <label for="published_on">Published on</label><input id="published_on" type="date" name="published_on" value="{published_on}">
  <label for="announce_at">Announce at</label><input id="announce_at" type="datetime-local" step="1" name="announce_at" value="{announce_at}">
  <label for="remind_at">Remind at</label><input id="remind_at" type="time" step="1" name="remind_at" value="{remind_at}">
  <button type="submit">Save</button>
</form>"#,
            id = post.id,
            comments = post.comments,
            title = shown("title"),
            body = shown("body"),
            published_on = shown("published_on"),
            announce_at = shown("announce_at"),
            remind_at = shown("remind_at"),
        ),
    ))
}

/// What the form submits.
#[derive(Deserialize)]
struct Edit {
    title: String,
    body: String,
    status: String,
    published_on: String,
    announce_at: String,
    remind_at: String,
}

/// Runs only when nothing the form showed has changed. The post comes from
/// the guard, loaded under the record's lock just now: no second query.
async fn save(
    State(state): State<AppState>,
    Guarded(PostForm(mut post)): Guarded<PostForm>,
    Form(edit): Form<Edit>,
) -> Result<Redirect, AppError> {
    post.title = edit.title;
    post.body = edit.body;
    post.status = edit
        .status
        .parse()
        .map_err(|_| AppError::Invalid("status", edit.status))?;
    post.published_on = NaiveDate::parse_from_str(&edit.published_on, "%Y-%m-%d")
        .map_err(|_| AppError::Invalid("date", edit.published_on))?;
    post.announce_at = parse_local_date_time(&edit.announce_at)
        .ok_or(AppError::Invalid("date and time", edit.announce_at))?;
    post.remind_at =
        parse_time(&edit.remind_at).ok_or(AppError::Invalid("time", edit.remind_at))?;
    let id = post.id;
    state.posts.lock().expect("never poisoned").insert(id, post);
    Ok(Redirect::to(&format!("/posts/{id}")))
}

/// A valid time string: `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff` (WHATWG HTML).
fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// A valid local date and time string: the date, `T` (or a space), a time.
fn parse_local_date_time(text: &str) -> Option<NaiveDateTime> {
    let (date, time) = text.split_once(['T', ' '])?;
    Some(
        NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()?
            .and_time(parse_time(time)?),
    )
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;line-height:1.5}}
label{{display:block;font-weight:600;margin-top:.5rem}}</style>
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    fn post(uri: &str, body: String) -> Request<Body> {
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }

    /// The hidden token input's value in a page.
    fn token(page: &str) -> String {
        let name = format!("name=\"{}\"", concurrency_guard::DEFAULT_FIELD_NAME);
        let at = page.find(&name).expect("a token input");
        let rest = &page[at..];
        let start = rest.find("value=\"").unwrap() + 7;
        rest[start..start + rest[start..].find('"').unwrap()].to_owned()
    }

    fn submission(token: &str, title: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair(concurrency_guard::DEFAULT_FIELD_NAME, token)
            .append_pair("title", title)
            .append_pair("body", "The first post.")
            .append_pair("status", "published")
            .append_pair("published_on", "2024-03-02")
            .append_pair("announce_at", "2024-03-02T08:15")
            .append_pair("remind_at", "18:00")
            .finish()
    }

    #[tokio::test]
    async fn the_form_shows_dates_and_times_as_their_inputs_do() {
        let app = app(seeded());
        let (status, page) = send(&app, get("/posts/1")).await;
        assert_eq!(status, StatusCode::OK);
        // WHATWG HTML: a valid date string, a valid normalized local date and
        // time string (seconds left out when zero), a valid time string.
        assert!(
            page.contains(r#"name="published_on" value="2024-03-01""#),
            "{page}"
        );
        assert!(
            page.contains(r#"name="announce_at" value="2024-03-01T09:30""#),
            "{page}"
        );
        assert!(
            page.contains(r#"name="remind_at" value="17:45:30""#),
            "{page}"
        );
        assert!(
            page.contains(r#"<option value="draft" selected>"#),
            "{page}"
        );
        assert!(
            page.contains(concurrency_guard::DEFAULT_FIELD_NAME),
            "{page}"
        );
    }

    #[tokio::test]
    async fn a_current_save_is_written_and_a_stale_one_is_refused() {
        let state = seeded();
        let app = app(state.clone());
        let (_, page) = send(&app, get("/posts/1")).await;
        let token = token(&page);
        let (status, _) = send(&app, post("/posts/1", submission(&token, "Hi"))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let saved = state.posts.lock().unwrap()[&1].clone();
        assert_eq!(saved.title, "Hi");
        assert_eq!(saved.status, Status::Published);
        assert_eq!(saved.announce_at.to_string(), "2024-03-02 08:15:00");
        assert_eq!(saved.remind_at.to_string(), "18:00:00");

        // The same token again: the post changed since that page was shown.
        let (status, _) = send(&app, post("/posts/1", submission(&token, "Other"))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(state.posts.lock().unwrap()[&1].title, "Hi");
    }

    #[tokio::test]
    async fn a_new_comment_conflicts_and_a_new_view_does_not() {
        let state = seeded();
        let app = app(state.clone());
        let (_, page) = send(&app, get("/posts/1")).await;
        state.posts.lock().unwrap().get_mut(&1).unwrap().views += 1;
        let (status, _) = send(&app, post("/posts/1", submission(&token(&page), "A"))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);

        let (_, page) = send(&app, get("/posts/1")).await;
        state.posts.lock().unwrap().get_mut(&1).unwrap().comments += 1;
        let (status, _) = send(&app, post("/posts/1", submission(&token(&page), "B"))).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(state.posts.lock().unwrap()[&1].title, "A");
    }

    #[tokio::test]
    async fn the_loader_answers_with_the_apps_own_error_pages() {
        let app = app(seeded());
        let (status, page) = send(&app, get("/posts/abc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("Cannot parse `abc` as a post id"), "{page}");
        let (status, page) = send(&app, get("/posts/999")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains("No post 999"), "{page}");
    }
}
