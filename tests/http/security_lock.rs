//! Issue 22, items 1, 2, 5, 7 and 12 (part): no record lock held at a
//! client's pace, the lock of the record written (never of client text),
//! media types read as axum's extractors read them, the guard's own body
//! ceiling, and check requests verified before the loader runs.
//!
//! Expected statuses are RFC 9110's (408 §15.5.9, 413 §15.5.14, 503 and
//! `Retry-After` §15.6.4 / §10.2.3, 412 §13.1.1) and RFC 6585's (428).

use crate::common;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Json, Multipart, Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Form, Router};
use bytes::Bytes;
use common::*;
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing};
use http::{Method, Request, StatusCode, header};
use http_body::Frame;
use tokio::sync::mpsc;

/// A request body the test sends piece by piece, and may never finish: a
/// client on the other end of a slow connection.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// A slow client's body: `first` is sent at once; the returned sender
/// sends the rest (or never does). Returns once the server has taken
/// `first` (the channel holds one piece: the second send waits for room).
async fn slow_body(first: &'static str) -> (Body, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel(1);
    tx.send(Bytes::from_static(first.as_bytes())).await.unwrap();
    (Body::new(ChannelBody(rx)), tx)
}

/// Waits until the server has read what was sent so far.
async fn until_read(tx: &mpsc::Sender<Bytes>) {
    // A permit is granted only once the one slot is free again.
    drop(tx.reserve().await.unwrap());
}

/// How many write handlers run at once, and the most that ever did.
#[derive(Default)]
struct Overlap {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Overlap {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `/items/{id}` (the edit form, multipart save) and `/api/items/{id}`
/// (JSON PUT) behind `layer`, one record lock for both; every write
/// handler takes `hold` before it writes and counts in `overlap`.
fn routes(
    state: &AppState,
    layer: ConcurrencyGuardLayer<ItemForm, AppState>,
    hold: Duration,
    overlap: Arc<Overlap>,
) -> Router {
    let o1 = overlap.clone();
    let put_json =
        move |State(state): State<AppState>, Path(id): Path<i64>, Json(form): Json<SaveForm>| {
            let overlap = o1.clone();
            async move {
                overlap.enter();
                state.handler_runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(hold).await;
                state.update(id, |item| {
                    item.name = form.name;
                    item.price = form.price;
                });
                overlap.leave();
                StatusCode::NO_CONTENT
            }
        };
    let o2 = overlap;
    let save_multipart =
        move |State(state): State<AppState>, Path(id): Path<i64>, mut multipart: Multipart| {
            let overlap = o2.clone();
            async move {
                overlap.enter();
                state.handler_runs.fetch_add(1, Ordering::SeqCst);
                let mut name = None;
                let answer = loop {
                    match multipart.next_field().await {
                        Ok(Some(field)) => {
                            let field_name = field.name().unwrap_or_default().to_owned();
                            match field.bytes().await {
                                Ok(bytes) if field_name == "name" => {
                                    name = Some(String::from_utf8_lossy(&bytes).into_owned());
                                }
                                Ok(_) => {}
                                Err(e) => break e.into_response(),
                            }
                        }
                        Ok(None) => {
                            if let Some(name) = name.take() {
                                state.update(id, |item| item.name = name);
                            }
                            break StatusCode::SEE_OTHER.into_response();
                        }
                        Err(e) => break e.into_response(),
                    }
                };
                overlap.leave();
                answer
            }
        };
    Router::new()
        .route("/items/{id}", get(edit).post(save_multipart))
        .route_layer(layer.clone())
        .merge(
            Router::new()
                .route("/api/items/{id}", get(show).put(put_json))
                .route_layer(layer),
        )
        .with_state(state.clone())
}

/// The API's GET: JSON, so it carries an `ETag`.
async fn show(Guarded(item): Guarded<ItemForm>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": item.name, "price": item.price }))
}

fn json_put(path: &str, if_match: &str, body: impl Into<Body>) -> Request<Body> {
    Request::put(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, if_match)
        .body(body.into())
        .unwrap()
}

const BOUNDARY: &str = "cgSlowBoundary";

fn text_part(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

#[tokio::test]
async fn a_client_that_stops_sending_a_body_does_not_hold_the_record() {
    // Item 1: a tokenless If-Match write whose body never completes. The
    // guard reads the body before it takes the record's lock, so a second
    // writer is served at once; the stalled one gets 408 at the read
    // timeout (RFC 9110 §15.5.9) and writes nothing.
    let state = AppState::new();
    let layer = own_guard(&state, 41).with_body_read_timeout(Duration::from_millis(300));
    let router = routes(&state, layer, Duration::ZERO, Arc::default());
    let (body, tx) = slow_body(r#"{"name":"Slow","#).await;
    let slow = tokio::spawn(send_owned(
        router.clone(),
        json_put("/api/items/1", "*", body),
    ));
    until_read(&tx).await;

    let second = tokio::time::timeout(
        Duration::from_secs(3),
        send(
            &router,
            json_put("/api/items/1", "*", r#"{"name":"Quick","price":7}"#),
        ),
    )
    .await
    .expect("the second writer is not blocked by the slow client");
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.body);

    let slow = slow.await.unwrap();
    slow.assert(StatusCode::REQUEST_TIMEOUT, "nothing came for 1 second;");
    assert_eq!(state.runs(), 1, "the stalled write's handler never ran");
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Quick", 7));
    drop(tx);
}

#[tokio::test]
async fn a_stalled_multipart_upload_releases_the_lock_at_the_read_timeout() {
    // Item 1 (d): a multipart body streams to the handler under the lock;
    // when the client stops, the handler's extractor errs at the read
    // timeout and the lock goes with it. The second writer waits less than
    // the lock timeout and is served; the stalled upload saved nothing.
    let state = AppState::new();
    let layer = own_guard(&state, 42)
        .with_body_read_timeout(Duration::from_millis(300))
        .with_lock_timeout(Duration::from_secs(5));
    let router = routes(&state, layer, Duration::ZERO, Arc::default());
    let token = load_token(&router, "/items/1").await;
    let head = format!(
        "{}{}--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\nstart of a file",
        text_part(FIELD, &token),
        text_part("name", "Uploaded"),
    );
    let (tx, rx) = mpsc::channel(1);
    tx.send(Bytes::from(head)).await.unwrap();
    let upload = Request::post("/items/1")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::new(ChannelBody(rx)))
        .unwrap();
    let slow = tokio::spawn(send_owned(router.clone(), upload));
    until_read(&tx).await;
    // The token part was read: the lock is held while the handler reads.
    until_handler_runs(&state).await;

    let started = std::time::Instant::now();
    let second = tokio::time::timeout(
        Duration::from_secs(4),
        send(
            &router,
            json_put("/api/items/1", "*", r#"{"name":"Quick","price":7}"#),
        ),
    )
    .await
    .expect("the stalled upload lets go of the record at the read timeout");
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.body);
    assert!(started.elapsed() < Duration::from_secs(3));

    let slow = slow.await.unwrap();
    // An error to the handler's extractor: axum's `Multipart` answers a
    // body that fails to read with 500, as it does a dropped connection.
    assert!(!slow.status.is_success(), "{:?} {}", slow.status, slow.body);
    assert_eq!(
        slow.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        slow.body
    );
    let item = state.item(1).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("Quick", 7));
    drop(tx);
}

#[tokio::test]
async fn a_writer_waits_for_the_lock_at_most_the_lock_timeout() {
    // Item 1 (c): while one write holds the record, another waits the lock
    // timeout, then gets 503 with Retry-After in seconds (RFC 9110 §15.6.4,
    // §10.2.3) and a message; its handler does not run, nothing of it is
    // written; the first completes.
    let state = AppState::new();
    let layer = own_guard(&state, 43).with_lock_timeout(Duration::from_millis(200));
    let overlap = Arc::new(Overlap::default());
    let router = routes(&state, layer, Duration::from_millis(800), overlap.clone());
    let first = tokio::spawn(send_owned(
        router.clone(),
        json_put("/api/items/1", "*", r#"{"name":"First","price":1}"#),
    ));
    until_handler_runs(&state).await;
    let second = send(
        &router,
        json_put("/api/items/1", "*", r#"{"name":"Second","price":2}"#)
            .tap_header(header::ACCEPT, "application/json"),
    )
    .await;
    second.assert(
        StatusCode::SERVICE_UNAVAILABLE,
        "another submission is writing",
    );
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(state.runs(), 1, "the second handler never ran");
    assert_eq!(state.item(1).unwrap().name, "Lamp", "nothing written yet");

    let first = read_owned(first).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert_eq!(state.item(1).unwrap().name, "First");
    assert_eq!(overlap.most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_crafted_tag_list_does_not_run_beside_the_records_lock_holder() {
    // Item 2: `If-Match: <tag of item 1>, <tag of item 2>` on item 2 once
    // took item 1's lock (the first tag's unauthenticated resource part)
    // and ran item 2's handler beside the holder of item 2's lock. The
    // lock is now the loaded record's: the crafted write waits, then finds
    // item 2 changed (412).
    let state = AppState::new();
    let overlap = Arc::new(Overlap::default());
    let router = routes(
        &state,
        own_guard(&state, 44),
        Duration::from_millis(300),
        overlap.clone(),
    );
    let tag1 = get_page(&router, "/api/items/1")
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let tag2 = get_page(&router, "/api/items/2")
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let first = tokio::spawn(send_owned(
        router.clone(),
        json_put("/api/items/2", &tag2, r#"{"name":"Honest","price":1}"#),
    ));
    until_handler_runs(&state).await;
    let crafted = send(
        &router,
        json_put(
            "/api/items/2",
            &format!("{tag1}, {tag2}"),
            r#"{"name":"Crafted","price":2}"#,
        ),
    )
    .await;
    let first = read_owned(first).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert_eq!(
        overlap.most.load(Ordering::SeqCst),
        1,
        "two handlers of item 2 ran at once"
    );
    assert_eq!(
        crafted.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        crafted.body
    );
    assert_eq!(state.item(2).unwrap().name, "Honest");
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn tag_lists_are_capped() {
    let state = AppState::new();
    let router = routes(
        &state,
        own_guard(&state, 45),
        Duration::ZERO,
        Arc::default(),
    );
    let many = vec![r#""1.x""#; 17].join(", ");
    let answer = send(&router, json_put("/api/items/1", &many, "{}")).await;
    answer.assert(StatusCode::BAD_REQUEST, "more than 16 entity tags");
    assert_eq!(state.runs(), 0);
}

#[tokio::test]
async fn a_body_axums_form_reads_as_a_form_needs_its_token() {
    // Item 5: axum's `Form` takes any Content-Type that starts with
    // `application/x-www-form-urlencoded`. Checked here against axum itself
    // (no guard), then the guard must read the same body as a form.
    const ODD: &str = "application/x-www-form-urlencoded,x";
    let plain = Router::new().route(
        "/",
        axum::routing::post(|Form(form): Form<SaveForm>| async move { form.name }),
    );
    let req = |path: &str| {
        Request::post(path)
            .header(header::CONTENT_TYPE, ODD)
            .header(header::IF_MATCH, "*")
            .body(Body::from("name=Evil&price=1"))
            .unwrap()
    };
    let unguarded = send(&plain, req("/")).await;
    unguarded.assert(StatusCode::OK, "Evil");

    let state = AppState::new();
    let router = app(&state);
    // Without a precondition, the form needs its token.
    let mut bare = req("/items/1");
    bare.headers_mut().remove(header::IF_MATCH);
    let guarded = send(&router, bare).await;
    guarded.assert(StatusCode::BAD_REQUEST, "carries no concurrency token");
    // A stale token in it is read, and refused, `If-Match: *` or not.
    let token = load_token(&router, "/items/1").await;
    state.update(1, |item| item.price = 7);
    let stale = Request::post("/items/1")
        .header(header::CONTENT_TYPE, ODD)
        .header(header::IF_MATCH, "*")
        .body(Body::from(format!("{FIELD}={token}&name=Evil&price=1")))
        .unwrap();
    let guarded = send(&router, stale).await;
    assert_eq!(guarded.status, StatusCode::CONFLICT, "{}", guarded.body);
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn if_none_match_with_tags_is_no_precondition_for_a_write() {
    // Item 5: only If-Match (or If-None-Match: * for creation) makes a
    // tokenless write conditional: RFC 6585 §3, 428.
    let state = AppState::new();
    let router = routes(
        &state,
        own_guard(&state, 46),
        Duration::ZERO,
        Arc::default(),
    );
    let req = Request::put("/api/items/1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_NONE_MATCH, r#""x""#)
        .body(Body::from(r#"{"name":"Blind","price":1}"#))
        .unwrap();
    let answer = send(&router, req).await;
    assert_eq!(
        answer.status,
        StatusCode::PRECONDITION_REQUIRED,
        "{}",
        answer.body
    );
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
}

#[tokio::test]
async fn urlencoded_bodies_have_a_ceiling_with_axums_limit_disabled() {
    // Item 7: with `DefaultBodyLimit::disable()` outside the guard, the
    // guard still buffers at most 16 MiB of a form (413, RFC 9110
    // §15.5.14), and stops reading there.
    const CHUNK: usize = 64 * 1024;
    let state = AppState::new();
    let router = app(&state).layer(DefaultBodyLimit::disable());
    let chunk = Bytes::from(vec![b'a'; CHUNK]);
    let chunks = 16 * 1024 * 1024 / CHUNK + 8;
    let (body, pulled) = ChunkBody::new(
        std::iter::once(Bytes::from_static(b"name=")).chain(std::iter::repeat_n(chunk, chunks)),
    );
    let answer = send(
        &router,
        form_request(Method::POST, "/items/1", Body::new(body)),
    )
    .await;
    answer.assert(StatusCode::PAYLOAD_TOO_LARGE, "16777216 bytes");
    assert!(pulled.load(Ordering::SeqCst) <= 16 * 1024 * 1024 / CHUNK + 2);
    assert_eq!(state.runs(), 0);

    // A declared length over the ceiling is refused before reading.
    let req = Request::post("/items/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, (16 * 1024 * 1024 + 1).to_string())
        .body(Body::from("name=x"))
        .unwrap();
    send(&router, req)
        .await
        .assert(StatusCode::PAYLOAD_TOO_LARGE, "16777216 bytes");
}

#[tokio::test]
async fn a_check_request_with_a_bad_token_costs_no_load() {
    // Item 12: the early warning's check request (GET with the token
    // header) is verified before the loader runs.
    let state = AppState::new();
    let router = app(&state);
    let token = load_token(&router, "/items/1").await;
    let check = |token: &str| {
        Request::get("/items/1")
            .header("x-concurrency-token", token)
            .header("x-concurrency-guard", "check")
            .body(Body::empty())
            .unwrap()
    };
    let loads = state.load_count();
    let bad = send(&router, check("not-a-token")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let forged = format!("{}A", &token[..token.len() - 1]);
    let forged = if forged == token {
        format!("{token}A")
    } else {
        forged
    };
    assert_eq!(
        send(&router, check(&forged)).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(state.load_count(), loads, "the loader never ran");

    let good = send(&router, check(&token)).await;
    assert_eq!(good.status, StatusCode::NO_CONTENT);
    assert_eq!(state.load_count(), loads + 1);
}

/// Waits (a few seconds at most) until a write handler has started.
async fn until_handler_runs(state: &AppState) {
    let started = tokio::time::timeout(Duration::from_secs(5), async {
        while state.runs() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(started.is_ok(), "the first writer's handler never ran");
}

/// A guard whose records lock apart from every other test's: the lock
/// table is process-wide, and keyed by the key's digest of the record.
fn own_guard(state: &AppState, n: u8) -> ConcurrencyGuardLayer<ItemForm, AppState> {
    ConcurrencyGuardLayer::new(
        KeyRing::new(100 + u32::from(n), Key::from_bytes(&[n; 32]).unwrap()),
        state.clone(),
    )
}

/// `send`, owning its router (for spawned requests).
async fn send_owned(router: Router, request: Request<Body>) -> Answer {
    send(&router, request).await
}

async fn read_owned(task: tokio::task::JoinHandle<Answer>) -> Answer {
    task.await.expect("the request task")
}

trait TapHeader {
    fn tap_header(self, name: header::HeaderName, value: &'static str) -> Self;
}

impl TapHeader for Request<Body> {
    fn tap_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
        self
    }
}
