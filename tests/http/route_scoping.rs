//! A guard added with `Router::route_layer` after routes it does not belong
//! to: the loader's refusal there is logged at `error`, once per route,
//! naming the likely cause; other loader refusals at `warn`, once per route.

use std::io;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use http::StatusCode;

use crate::common::*;

#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Captures this thread's `warn` and `error` events while the guard lives.
pub(crate) fn capture() -> (
    Captured,
    (tracing::Dispatch, tracing::subscriber::DefaultGuard),
) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .finish();
    // As in guard_flow's tracing test: a second dispatcher keeps callsites
    // first hit on another test's thread from being cached as "never".
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (captured, (second, default))
}

async fn index() -> &'static str {
    "home"
}

#[tokio::test(flavor = "current_thread")]
async fn a_guard_on_a_route_without_its_id_is_an_error_naming_the_cause() {
    let (captured, _guard) = capture();
    let state = AppState::new();
    // The mistake: the layer wraps every route added before it.
    let app: Router = Router::new()
        .route("/scoping-home", get(index))
        .route("/scoping-items/{id}", get(edit).post(save))
        .route_layer(guard(&state))
        .with_state(state.clone());

    let page = get_page(&app, "/scoping-home").await;
    assert_eq!(
        page.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        page.body
    );
    let log = captured.take();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains(r#"route="/scoping-home""#), "{log}");
    assert!(log.contains("status=500"), "{log}");
    assert!(log.contains(r#"form="ItemForm""#), "{log}");
    assert!(log.contains("ItemForm"), "{log}");
    assert!(log.contains("guards every route added before it"), "{log}");
    assert!(
        log.contains("get(edit).post(save).route_layer(guard)"),
        "{log}"
    );

    // Once per route.
    get_page(&app, "/scoping-home").await;
    assert_eq!(captured.take(), "");

    // A record that does not exist, on the guard's own route: a warning
    // (the loader's 404 answered as it is), once.
    let missing = get_page(&app, "/scoping-items/99").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let log = captured.take();
    assert!(log.contains("WARN"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.contains(r#"route="/scoping-items/{id}""#), "{log}");
    assert!(log.contains("status=404"), "{log}");
    get_page(&app, "/scoping-items/98").await;
    assert_eq!(captured.take(), "");
}

#[tokio::test(flavor = "current_thread")]
async fn a_guard_attached_per_route_leaves_the_others_alone() {
    let (captured, _guard) = capture();
    let state = AppState::new();
    let app: Router = Router::new()
        .route("/scoping-fixed-home", get(index))
        .route(
            "/scoping-fixed/{id}",
            get(edit).post(save).route_layer(guard(&state)),
        )
        .with_state(state.clone());

    get_page(&app, "/scoping-fixed-home")
        .await
        .assert(StatusCode::OK, "home");
    let token = load_token(&app, "/scoping-fixed/1").await;
    post_item(&app, "/scoping-fixed/1", &token, "Desk lamp", 100)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(captured.take(), "");
}
