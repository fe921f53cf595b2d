//! A handler's `Form<T>` with `#[serde(deny_unknown_fields)]` behind the
//! guard: the body it reads carries the fields it declares, not the token.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use axum::routing::get;
use http::{Method, StatusCode};
use serde::Deserialize;

use crate::common::*;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictSave {
    name: String,
    price: i64,
}

/// What the strict handler received, and the `Content-Length` it was told.
type Received = Arc<Mutex<Option<(StrictSave, Option<String>)>>>;

fn strict_app(state: &AppState, received: Received) -> Router {
    let save = move |State(state): State<AppState>,
                     Path(id): Path<i64>,
                     headers: HeaderMap,
                     Form(form): Form<StrictSave>| async move {
        let length = headers
            .get(CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().to_owned());
        state.update(id, |item| item.name = form.name.clone());
        *received.lock().unwrap() = Some((form, length));
        "saved"
    };
    Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route_layer(guard(state))
        .with_state(state.clone())
}

#[tokio::test]
async fn a_deny_unknown_fields_form_receives_its_fields_only() {
    let state = AppState::new();
    let received = Received::default();
    let app = strict_app(&state, received.clone());
    let token = load_token(&app, "/items/1").await;

    // The token between the fields, as a hand-written form might place it.
    let body = format!("name=Desk+lamp&{FIELD}={token}&price=120");
    let answer = send(&app, form_request(Method::POST, "/items/1", body)).await;
    answer.assert(StatusCode::OK, "saved");

    let (form, length) = received.lock().unwrap().take().expect("the handler ran");
    assert_eq!(
        form,
        StrictSave {
            name: "Desk lamp".into(),
            price: 120
        }
    );
    // The handler is told the length of the body it reads.
    assert_eq!(
        length.as_deref(),
        Some("name=Desk+lamp&price=120".len().to_string().as_str())
    );
    assert_eq!(state.item(1).unwrap().name, "Desk lamp");
}

#[tokio::test]
async fn a_stale_submission_to_a_strict_form_is_still_refused() {
    let state = AppState::new();
    let received = Received::default();
    let app = strict_app(&state, received.clone());
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.price = 999);

    let stale = post_item(&app, "/items/1", &token, "Mine", 1).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        received.lock().unwrap().is_none(),
        "the handler did not run"
    );
}
