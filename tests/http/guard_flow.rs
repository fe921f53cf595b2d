//! The guard end to end through a real axum router: the lost-update scenario,
//! which changes conflict, the ways a conflict is answered, pass-through,
//! loader rejections, simultaneous submissions, key rotation and tracing.

use crate::common;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use common::*;
use concurrency_guard::{
    ConcurrencyGuardLayer, Conflict, Guarded, Key, KeyRing, Rejection, TokenError,
};
use http::{Method, Request, StatusCode};
use tower::{Service as _, ServiceExt};

// ---------------------------------------------------------------------------
// The seed scenario.

#[tokio::test]
async fn lost_update_is_refused_and_reload_passes() {
    let state = AppState::new();
    let app = app(&state);

    let page_a = get_page(&app, "/items/1").await;
    assert_eq!(page_a.status, StatusCode::OK);
    assert!(page_a.body.contains(r#"value="Lamp""#));
    let token_a = page_a.token();
    let token_b = load_token(&app, "/items/1").await;

    // A saves: the handler runs and the store changes.
    post_item(&app, "/items/1", &token_a, "Desk lamp", 100)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.runs(), 1);
    assert_eq!(state.item(1).unwrap().name, "Desk lamp");

    // B saves over the old page: refused before the handler.
    let refused = post_item(&app, "/items/1", &token_b, "Lamp <B>", 120).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(state.runs(), 1, "the handler did not run");
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Desk lamp", 100));

    // The app's own page (its title and heading), with the changed field
    // named beside its value now and B's, B's input kept (escaped).
    assert!(
        refused
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        refused.body.contains("<title>Edit 1</title>"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(r#"role="alert""#));
    assert!(
        refused
            .body
            .contains("<strong>name</strong>: saved now “Desk lamp”; you entered “Lamp &lt;B&gt;”"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("<B>"), "escaped: {}", refused.body);
    assert!(
        refused
            .body
            .contains(r#"value="Lamp &lt;B&gt;" aria-invalid="true""#)
    );
    let fresh = refused.token();
    assert_ne!(fresh, token_b);
    assert!(refused.body.contains(r#"href="/items/1""#));
    assert!(refused.body.to_lowercase().contains("reload"));
    let conflict = refused
        .extensions
        .get::<Conflict>()
        .expect("typed conflict");
    let changed: Vec<_> = conflict
        .changed_inputs()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.current.as_str()))
        .collect();
    assert_eq!(changed, [("name", "Desk lamp")]);
    assert!(!conflict.context_changed());
    assert_eq!(conflict.submitted_value("name"), Some("Lamp <B>"));

    // B reloads and saves: passes.
    let token_b2 = load_token(&app, "/items/1").await;
    post_item(&app, "/items/1", &token_b2, "Lamp <B>", 120)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.runs(), 2);
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Lamp <B>", 120));
    // The page now shows B's value, escaped.
    let page = get_page(&app, "/items/1").await;
    assert!(page.body.contains(r#"value="Lamp &lt;B&gt;""#));
}

#[tokio::test]
async fn the_conflict_pages_fresh_token_saves_knowingly() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.price = 90);
    let refused = post_item(&app, "/items/1", &token, "Mine", 95).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    // "Save my version anyway": the form of the 409 page, with its token.
    let fresh = refused.token();
    post_item(&app, "/items/1", &fresh, "Mine", 95)
        .await
        .assert(StatusCode::OK, "saved");
    assert_eq!(state.item(1).unwrap().name, "Mine");
    assert_eq!(state.runs(), 1);
}

#[tokio::test]
async fn a_skipped_field_changing_does_not_conflict() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.views += 1000);
    post_item(&app, "/items/1", &token, "Lamp 2", 100)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.runs(), 1);
    assert_eq!(state.item(1).unwrap().name, "Lamp 2");
}

#[tokio::test]
async fn a_context_field_changing_conflicts() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.stock = 0);
    let refused = post_item(&app, "/items/1", &token, "Lamp 2", 100).await;
    refused.assert(
        StatusCode::CONFLICT,
        "Other information shown on this page changed too.",
    );
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
    let conflict = refused.extensions.get::<Conflict>().unwrap();
    assert!(conflict.context_changed());
    assert_eq!(conflict.changed_inputs(), Some(&[][..]));
}

#[tokio::test]
async fn header_token_for_put_and_delete_without_body() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let put = |token: &str| {
        Request::put("/items/1")
            .header("x-concurrency-token", token)
            .body(Body::empty())
            .unwrap()
    };
    send(&app, put(&token))
        .await
        .assert(StatusCode::OK, "bumped item 1");
    assert_eq!(state.item(1).unwrap().price, 101);

    // The same token again: the price it showed has changed.
    let stale = send(&app, put(&token)).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(
        stale
            .body
            .contains("<strong>price</strong>: saved now “101”")
    );
    assert!(stale.body.contains(r#"href="/items/1""#));
    assert_eq!(state.item(1).unwrap().price, 101);
    assert_eq!(state.runs(), 1);

    // A body-less submission without the header (nor If-Match): refused.
    let bare = send(
        &app,
        Request::delete("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    // Not a form body: without the token header it must be conditional.
    assert_eq!(
        bare.status,
        StatusCode::PRECONDITION_REQUIRED,
        "{}",
        bare.body
    );
    assert!(bare.body.contains("x-concurrency-token"), "{}", bare.body);
    assert!(state.item(1).is_some());

    let token = load_token(&app, "/items/1").await;
    let delete = Request::delete("/items/1")
        .header("x-concurrency-token", &token)
        .body(Body::empty())
        .unwrap();
    send(&app, delete)
        .await
        .assert(StatusCode::OK, "deleted item 1");
    assert!(state.item(1).is_none());
    assert_eq!(state.runs(), 2);
}

// ---------------------------------------------------------------------------
// How a conflict is answered.

async fn stale_submission(state: &AppState, app: &Router, headers: &[(&str, &str)]) -> Answer {
    let token = load_token(app, "/items/1").await;
    state.update(1, |item| {
        item.name = "Theirs".into();
        item.price = 1;
    });
    let mut request = form_request(
        Method::POST,
        "/items/1",
        urlencode(&[(FIELD, &token), ("name", "Mine"), ("price", "2")]),
    );
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    send(app, request).await
}

#[tokio::test]
async fn json_clients_get_problem_json() {
    let state = AppState::new();
    let app = app(&state);
    let answer = stale_submission(&state, &app, &[("accept", "application/json")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["status"], 409);
    assert_eq!(json["type"], "urn:concurrency-guard:conflict");
    let names: Vec<&str> = json["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["name", "price"]);
    assert_eq!(json["changed"][0]["current"], "Theirs");
    assert_eq!(json["context_changed"], false);
    assert!(json["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Theirs");
}

#[tokio::test]
async fn htmx_requests_get_a_fragment() {
    let state = AppState::new();
    let app = app(&state);
    let answer = stale_submission(&state, &app, &[("hx-request", "true")]).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(!answer.body.contains("<html"), "{}", answer.body);
    assert!(!answer.body.contains("<body"), "{}", answer.body);
    assert!(answer.body.starts_with("<section"), "{}", answer.body);
    assert!(answer.body.contains(r#"<th scope="row">name</th>"#));
    assert!(answer.extensions.get::<Conflict>().is_some());
    assert_eq!(state.runs(), 0);
}

/// The save handler: knows nothing of conflicts.
async fn save_counted(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Form(form): Form<SaveForm>,
) -> Response {
    state.handler_runs.fetch_add(1, Ordering::SeqCst);
    state.update(id, |item| {
        item.name = form.name;
        item.price = form.price;
    });
    "saved by handler".into_response()
}

/// A separate conflict handler: takes the `Conflict`, the record now and
/// the user's version as the app's own form type, and re-renders.
async fn conflict_alert(
    conflict: Conflict,
    Guarded(now): Guarded<ItemForm>,
    token: concurrency_guard::ConcurrencyToken,
) -> Response {
    let form: SaveForm = conflict.submitted_as().expect("the user's version");
    let names: Vec<_> = conflict
        .changed_inputs()
        .unwrap_or_default()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(Some(&token), conflict.fresh_token());
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Html(format!(
            "<p class=alert>changed: {}; now {:?}; you typed {:?}</p><form method=post></form>",
            names.join(","),
            now.name,
            form.name
        )),
    )
        .into_response()
}

/// Issue 16, item 2: a conflict handler of its own answers a stale
/// submission; the write handler never sees it.
#[tokio::test]
async fn a_conflict_handler_answers_and_the_write_handler_never_runs() {
    let state = AppState::new();
    let layer = guard(&state).with_conflict_handler(conflict_alert);
    let app = Router::new()
        .route("/items/{id}", get(edit).post(save_counted))
        .route_layer(layer)
        .with_state(state.clone());

    // Current: the write handler saves.
    let token = load_token(&app, "/items/1").await;
    post_item(&app, "/items/1", &token, "Fresh", 3)
        .await
        .assert(StatusCode::OK, "saved by handler");
    assert_eq!(state.runs(), 1);

    // Stale: the conflict handler answers with its own page.
    let answer = post_item(&app, "/items/1", &token, "Stale", 4).await;
    answer.assert(
        StatusCode::UNPROCESSABLE_ENTITY,
        r#"changed: name,price; now "Fresh"; you typed "Stale""#,
    );
    assert_eq!(state.runs(), 1, "the write handler did not run");
    assert!(answer.extensions.get::<Conflict>().is_some());
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Fresh", 3));
    // The fresh token embedded in its page saves knowingly.
    let fresh = answer.token();
    post_item(&app, "/items/1", &fresh, "Stale", 4)
        .await
        .assert(StatusCode::OK, "saved by handler");
    assert_eq!(state.item(1).unwrap().name, "Stale");
}

#[tokio::test]
async fn with_conflict_response_answers_conflicts() {
    let state = AppState::new();
    let layer = guard(&state).with_conflict_response(|conflict, parts| {
        let names: Vec<_> = conflict
            .changed_inputs()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        (
            StatusCode::PRECONDITION_FAILED,
            format!("custom: {} changed at {}", names.join("+"), parts.uri),
        )
            .into_response()
    });
    let app = app_with(&state, layer);
    let answer = stale_submission(&state, &app, &[]).await;
    answer.assert(
        StatusCode::PRECONDITION_FAILED,
        "custom: name+price changed at /items/1",
    );
    assert!(answer.extensions.get::<Conflict>().is_some());
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Theirs");
}

#[tokio::test]
async fn typed_reasons_are_in_the_response_extensions() {
    let state = AppState::new();
    let app = app(&state);
    let missing = post_form(&app, "/items/1", &[("name", "x"), ("price", "1")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(matches!(
        missing.extensions.get::<Rejection>(),
        Some(Rejection::MissingToken { field }) if field == FIELD
    ));
    let token = load_token(&app, "/items/2").await;
    let wrong = post_item(&app, "/items/1", &token, "x", 1).await;
    assert_eq!(
        wrong.extensions.get::<Rejection>(),
        Some(&Rejection::InvalidToken(TokenError::WrongResource))
    );
    let stale = stale_submission(&state, &app, &[]).await;
    assert!(stale.extensions.get::<Conflict>().is_some());
    assert!(stale.extensions.get::<Rejection>().is_none());
    assert_eq!(state.runs(), 0);
}

// ---------------------------------------------------------------------------
// Pass-through and the loader.

#[tokio::test]
async fn options_passes_through_without_loading() {
    let state = AppState::new();
    let app = app(&state);
    let answer = send(
        &app,
        Request::options("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.header("allow").is_some());
    assert_eq!(state.load_count(), 0, "OPTIONS does not load");
    // A GET does.
    get_page(&app, "/items/1").await;
    assert_eq!(state.load_count(), 1);
}

#[tokio::test]
async fn loader_rejections_are_returned_as_is() {
    let state = AppState::new();
    let app = app(&state);
    get_page(&app, "/items/99")
        .await
        .assert(StatusCode::NOT_FOUND, "item 99 does not exist");

    // A submission without a valid token for a record that does not exist:
    // the loader's own answer.
    let answer = post_item(&app, "/items/99", "not-a-token", "x", 1).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(state.runs(), 0);
    // (A record deleted since its form was opened: `conflict_page.rs`.)
    state.remove(1);
    assert!(state.item(1).is_none());
}

// ---------------------------------------------------------------------------
// Two submissions at once.

#[tokio::test]
async fn simultaneous_submissions_with_one_token_one_wins() {
    let mut state = AppState::new();
    // Its own record, so no other test of this binary shares its lock.
    state.insert(Item {
        id: 4242,
        name: "Contested".into(),
        price: 10,
        views: 0,
        stock: 1,
    });
    let gate = Arc::new(Gate::default());
    state.gate = Some(gate.clone());
    let app = app(&state);
    let mut service = app.clone().into_service::<Body>();

    let token = load_token(&app, "/items/4242").await;
    let post = |name: &str| {
        form_request(
            Method::POST,
            "/items/4242",
            urlencode(&[(FIELD, &token), ("name", name), ("price", "11")]),
        )
    };

    let first = ServiceExt::ready(&mut service)
        .await
        .unwrap()
        .call(post("first"));
    let first = tokio::spawn(async move { read(first.await.unwrap()).await });
    gate.entered.notified().await;
    assert_eq!(state.runs(), 1, "the first is inside the handler");

    let second = ServiceExt::ready(&mut service)
        .await
        .unwrap()
        .call(post("second"));
    let second = tokio::spawn(async move { read(second.await.unwrap()).await });
    // Let the second run as far as it can: it waits for the record's lock.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!second.is_finished(), "the second waits for the first");
    assert_eq!(state.runs(), 1, "the second has not reached the handler");

    gate.release.notify_one();
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("the first completes")
        .unwrap();
    first.assert(StatusCode::OK, "saved item 4242");
    let second = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("the second completes (a hang means it reached the gate)")
        .unwrap();
    second.assert(StatusCode::CONFLICT, "Your changes have not been saved");
    assert_eq!(state.runs(), 1, "exactly one reached the handler");
    assert_eq!(state.item(4242).unwrap().name, "first");
}

// ---------------------------------------------------------------------------
// Key rotation.

#[tokio::test]
async fn rotation_accepts_old_tokens_until_the_key_is_removed() {
    let k1 = || Key::from_bytes(&[1; 32]).unwrap();
    let k2 = || Key::from_bytes(&[2; 32]).unwrap();
    let state = AppState::new();
    let old = app_with(
        &state,
        ConcurrencyGuardLayer::new(KeyRing::new(1, k1()), state.clone()),
    );
    let rotated = app_with(
        &state,
        ConcurrencyGuardLayer::new(KeyRing::new(1, k1()).rotate(2, k2()), state.clone()),
    );
    let new_only = app_with(
        &state,
        ConcurrencyGuardLayer::new(KeyRing::new(2, k2()), state.clone()),
    );

    // Signed under key 1, accepted by the rotated ring.
    let token = load_token(&old, "/items/2").await;
    post_item(&rotated, "/items/2", &token, "Rotated", 1)
        .await
        .assert(StatusCode::OK, "saved item 2");
    assert_eq!(state.item(2).unwrap().name, "Rotated");

    // A stale key-1 token is still a conflict under the rotated ring.
    let conflict = post_item(&rotated, "/items/2", &token, "Again", 2).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);

    // The rotated ring signs with key 2, which the new ring accepts.
    let token2 = load_token(&rotated, "/items/2").await;
    post_item(&new_only, "/items/2", &token2, "Key two", 3)
        .await
        .assert(StatusCode::OK, "saved item 2");

    // Key 1 removed: a key-1 token is refused, with a request to reload.
    let token1 = load_token(&old, "/items/2").await;
    let refused = post_item(&new_only, "/items/2", &token1, "Old key", 4).await;
    refused.assert(StatusCode::BAD_REQUEST, "reload the page");
    assert!(refused.body.contains("key 1"), "{}", refused.body);
    assert_eq!(
        refused.extensions.get::<Rejection>(),
        Some(&Rejection::InvalidToken(TokenError::UnknownKey {
            key_id: 1
        }))
    );
    assert_eq!(state.item(2).unwrap().name, "Key two");
    assert_eq!(state.runs(), 2);
}

// ---------------------------------------------------------------------------
// Tracing.

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> String {
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

#[tokio::test(flavor = "current_thread")]
async fn every_decision_is_traced() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .finish();
    // tracing-core caches each callsite's interest. While a single
    // dispatcher is registered, a callsite first hit on another test's
    // thread gets its interest from that thread's (absent) subscriber only:
    // "never", for good. A second registered dispatcher makes tracing ask
    // every dispatcher, so this test sees events whatever runs beside it.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let state = AppState::new();
    let app = app(&state);

    let token = load_token(&app, "/items/1").await;
    let log = captured.take();
    assert!(log.contains("concurrency token issued"), "{log}");
    assert!(log.contains("form=\"ItemForm\""), "{log}");

    post_item(&app, "/items/1", &token, "New", 1).await;
    let log = captured.take();
    assert!(log.contains("submission is current; handler runs"), "{log}");

    post_item(&app, "/items/1", &token, "Stale", 2).await;
    let log = captured.take();
    assert!(log.contains("conflict"), "{log}");
    assert!(
        log.contains("the data changed since the form was rendered"),
        "{log}"
    );
    assert!(log.contains("name"), "{log}");
    assert!(log.contains("price"), "{log}");
    assert!(log.contains("context_changed=false"), "{log}");

    post_form(&app, "/items/1", &[("name", "x"), ("price", "1")]).await;
    let log = captured.take();
    assert!(log.contains("submission refused"), "{log}");
    assert!(log.contains("status=400"), "{log}");
    assert!(
        log.contains("reason=the submission carries no concurrency token"),
        "{log}"
    );

    post_item(&app, "/items/1", "garbage!", "x", 1).await;
    let log = captured.take();
    assert!(log.contains("submission refused"), "{log}");
    assert!(
        log.contains("reason=the concurrency token is malformed"),
        "{log}"
    );

    // Nothing is logged for OPTIONS.
    send(
        &app,
        Request::options("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(captured.take(), "");
    assert_eq!(state.runs(), 1);
}
