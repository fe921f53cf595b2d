//! Issue 19, fault 3, for the in-process record lock: a client that goes
//! away mid-request and a handler that panics release the record's lock;
//! the next submission for the record proceeds within the lock timeout.
//! (The same for the Postgres lock: `stress/tests/pglock.rs`.)
//!
//! A client that disconnects makes hyper drop the request's future; a
//! panicking handler unwinds through it (hyper's connection task dies):
//! both are a dropped future here, in a task aborted or panicking. (The
//! lock table is the process's: these tests sign with a key of their own,
//! so that their locks are not the other tests' locks, and each locks a
//! record of its own.)

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use axum::routing::get;
use common::*;
use concurrency_guard::{ConcurrencyGuardLayer, Key, KeyRing};
use http::StatusCode;

const LOCK_TIMEOUT: Duration = Duration::from_millis(500);

/// The fixture's guard with a key of its own.
fn own_guard(state: &AppState) -> ConcurrencyGuardLayer<ItemForm, AppState> {
    ConcurrencyGuardLayer::new(
        KeyRing::new(19, Key::from_bytes(&[19; 32]).unwrap()),
        state.clone(),
    )
}

#[tokio::test]
async fn a_client_gone_mid_request_releases_the_record_lock() {
    let gate = Arc::new(Gate::default());
    let state = AppState {
        gate: Some(gate.clone()),
        ..AppState::new()
    };
    let app = app_with(&state, own_guard(&state).with_lock_timeout(LOCK_TIMEOUT));
    let token = load_token(&app, "/items/1").await;

    // The first submission's handler holds the lock, waiting at the gate.
    let first = {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { post_item(&app, "/items/1", &token, "First", 1).await })
    };
    gate.entered.notified().await;
    // Meanwhile another submission waits the lock timeout: 503.
    let busy = post_item(&app, "/items/1", &token, "Waiting", 2).await;
    busy.assert(StatusCode::SERVICE_UNAVAILABLE, "nothing was saved");

    // The first client goes away.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());

    // The next submission proceeds at once (the gate lets it through).
    gate.release.notify_one();
    let started = Instant::now();
    post_item(&app, "/items/1", &token, "Second", 3)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert!(started.elapsed() < LOCK_TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(state.item(1).unwrap().name, "Second");
}

/// Saves, but panics on the name "boom".
async fn save_or_panic(
    state: State<AppState>,
    id: Path<i64>,
    Form(form): Form<SaveForm>,
) -> Response {
    if form.name == "boom" {
        panic!("the handler panics");
    }
    save(state, id, Form(form)).await
}

#[tokio::test]
async fn a_panicking_handler_releases_the_record_lock() {
    let state = AppState::new();
    let app: Router = Router::new()
        .route("/items/{id}", get(edit).post(save_or_panic))
        .route_layer(own_guard(&state).with_lock_timeout(LOCK_TIMEOUT))
        .with_state(state.clone());
    let token = load_token(&app, "/items/2").await;

    let panicked = {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { post_item(&app, "/items/2", &token, "boom", 1).await })
    };
    assert!(panicked.await.unwrap_err().is_panic());

    let started = Instant::now();
    post_item(&app, "/items/2", &token, "After", 2)
        .await
        .assert(StatusCode::OK, "saved item 2");
    assert!(started.elapsed() < LOCK_TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(state.item(2).unwrap().name, "After");
}
