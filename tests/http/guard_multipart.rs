//! Multipart submissions: the guard reads only up to the token part and
//! replays it; a large file after it streams to the handler untouched.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use common::*;
use concurrency_guard::{ConcurrencyGuardLayer, Rejection};
use http::{Request, StatusCode, header};

const BOUNDARY: &str = "----cgBoundary7MA4YWxkTrZu0gW";
const CHUNK: usize = 64 * 1024;
/// 20 MiB in 64 KiB chunks.
const FILE_CHUNKS: usize = 320;

/// Chunk `k` of the file: bytes counting up modulo 251 (so never a
/// delimiter), made only when the body is polled for it.
fn file_chunk(k: usize) -> Bytes {
    let start = k * CHUNK;
    (start..start + CHUNK)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// FNV-1a, 64 bits.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn file_checksum(chunks: usize) -> u64 {
    (0..chunks).fold(FNV_START, |h, k| fnv(h, &file_chunk(k)))
}

fn text_part(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file_part_head() -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
}

/// `head` (one chunk, or chunks of 1 to 7 bytes), then a file of
/// `file_chunks` chunks, then `after_file` and the closing delimiter.
fn upload_body(
    head: String,
    small_head_chunks: bool,
    file_chunks: usize,
    after_file: String,
) -> (Body, Arc<AtomicUsize>) {
    let head = Bytes::from(head);
    let head_chunks: Vec<Bytes> = if small_head_chunks {
        let mut pieces = Vec::new();
        let (mut at, mut size) = (0, 1);
        while at < head.len() {
            let end = (at + size).min(head.len());
            pieces.push(head.slice(at..end));
            at = end;
            size = size % 7 + 1;
        }
        pieces
    } else {
        vec![head]
    };
    let tail = Bytes::from(format!("\r\n{after_file}--{BOUNDARY}--\r\n"));
    let chunks = head_chunks
        .into_iter()
        .chain((0..file_chunks).map(file_chunk))
        .chain(std::iter::once(tail));
    let (body, pulled) = ChunkBody::new(chunks);
    (Body::new(body), pulled)
}

fn multipart_request(body: Body) -> Request<Body> {
    Request::post("/items/1")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .unwrap()
}

/// What the upload handler saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Chunks pulled from the request body when the handler started.
    pulled_at_start: usize,
    fields: Vec<(String, String)>,
    file_len: usize,
    file_checksum: u64,
}

/// The item routes with an upload handler on POST, reporting into `seen`;
/// `pulled` is the request body's chunk counter.
fn upload_app(
    state: &AppState,
    pulled: Arc<AtomicUsize>,
    seen: Arc<Mutex<Option<Seen>>>,
) -> Router {
    upload_app_with(state, pulled, seen, guard(state))
}

/// [`upload_app`] behind `layer`.
fn upload_app_with(
    state: &AppState,
    pulled: Arc<AtomicUsize>,
    seen: Arc<Mutex<Option<Seen>>>,
    layer: ConcurrencyGuardLayer<ItemForm, AppState>,
) -> Router {
    let upload =
        move |State(state): State<AppState>, Path(id): Path<i64>, mut multipart: Multipart| {
            let pulled = pulled.clone();
            let seen = seen.clone();
            async move {
                let mut report = Seen {
                    pulled_at_start: pulled.load(Ordering::SeqCst),
                    file_checksum: FNV_START,
                    ..Seen::default()
                };
                state.handler_runs.fetch_add(1, Ordering::SeqCst);
                while let Some(mut field) = multipart.next_field().await.expect("a field") {
                    let name = field.name().unwrap_or_default().to_owned();
                    if name == "file" {
                        while let Some(chunk) = field.chunk().await.expect("a chunk") {
                            report.file_len += chunk.len();
                            report.file_checksum = fnv(report.file_checksum, &chunk);
                        }
                    } else {
                        let value = field.text().await.expect("text");
                        if name == "name" {
                            state.update(id, |item| item.name = value.clone());
                        }
                        report.fields.push((name, value));
                    }
                }
                *seen.lock().unwrap() = Some(report);
                "uploaded".into_response()
            }
        };
    Router::new()
        .route("/items/{id}", get(edit).post(upload))
        .route_layer(layer)
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(state.clone())
}

async fn upload(
    state: &AppState,
    request: impl FnOnce(&str) -> (Request<Body>, Arc<AtomicUsize>),
) -> (Answer, Option<Seen>, Arc<AtomicUsize>) {
    // The token comes from the ordinary edit page.
    let token = load_token(&app(state), "/items/1").await;
    let (request, pulled) = request(&token);
    let seen = Arc::new(Mutex::new(None));
    let app = upload_app(state, pulled.clone(), seen.clone());
    let answer = send(&app, request).await;
    let seen = seen.lock().unwrap().clone();
    (answer, seen, pulled)
}

#[tokio::test]
async fn a_large_file_after_the_token_streams_through() {
    let state = AppState::new();
    let (answer, seen, pulled) = upload(&state, |token| {
        let head = text_part(FIELD, token) + &text_part("name", "Uploaded") + &file_part_head();
        let (body, pulled) = upload_body(head, false, FILE_CHUNKS, String::new());
        (multipart_request(body), pulled)
    })
    .await;
    answer.assert(StatusCode::OK, "uploaded");
    let seen = seen.expect("the handler ran");

    // The guard read only the first chunk (token part and file headers).
    assert!(
        (1..=2).contains(&seen.pulled_at_start),
        "{} chunks read before the handler",
        seen.pulled_at_start
    );
    // Every byte reached the handler, in order.
    assert_eq!(seen.file_len, FILE_CHUNKS * CHUNK);
    assert_eq!(seen.file_checksum, file_checksum(FILE_CHUNKS));
    assert_eq!(pulled.load(Ordering::SeqCst), FILE_CHUNKS + 2);
    // The replayed prefix is intact: the token part and the next one.
    let names: Vec<_> = seen.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [FIELD, "name"]);
    assert_eq!(state.item(1).unwrap().name, "Uploaded");
    assert_eq!(state.runs(), 1);
}

#[tokio::test]
async fn a_token_split_over_tiny_chunks_is_found() {
    let state = AppState::new();
    let (answer, seen, pulled) = upload(&state, |token| {
        let head = text_part(FIELD, token) + &text_part("name", "Tiny") + &file_part_head();
        let (body, pulled) = upload_body(head, true, 16, String::new());
        (multipart_request(body), pulled)
    })
    .await;
    answer.assert(StatusCode::OK, "uploaded");
    let seen = seen.expect("the handler ran");
    // The head came in many tiny chunks, then 16 file chunks and the tail.
    let head_chunks = pulled.load(Ordering::SeqCst) - 16 - 1;
    assert!(head_chunks > 50);
    // Not one file chunk was read before the handler.
    assert!(
        seen.pulled_at_start <= head_chunks,
        "{} of {head_chunks} head chunks",
        seen.pulled_at_start
    );
    assert_eq!(seen.file_len, 16 * CHUNK);
    assert_eq!(seen.file_checksum, file_checksum(16));
    assert_eq!(state.item(1).unwrap().name, "Tiny");
}

#[tokio::test]
async fn a_token_after_a_file_beyond_the_prefix_limit_is_refused() {
    let state = AppState::new();
    let before = state.snapshot();
    let token = load_token(&app(&state), "/items/1").await;
    let head = text_part("name", "Late") + &file_part_head();
    let after = text_part(FIELD, &token);
    let (body, pulled) = upload_body(head, false, FILE_CHUNKS, after);
    let seen = Arc::new(Mutex::new(None));
    let layer = guard(&state).with_multipart_prefix_limit(256 * 1024);
    let upload_app = upload_app_with(&state, pulled.clone(), seen.clone(), layer);
    let answer = send(&upload_app, multipart_request(body)).await;
    let seen = seen.lock().unwrap().clone();
    answer.assert(StatusCode::BAD_REQUEST, "before any file field");
    assert!(
        answer.body.contains("within the first 262144 bytes"),
        "{}",
        answer.body
    );
    assert!(matches!(
        answer.extensions.get::<Rejection>(),
        Some(Rejection::TokenNotFirst { limit: 262_144 })
    ));
    assert!(seen.is_none(), "the handler did not run");
    assert_eq!(state.runs(), 0);
    assert_eq!(state.snapshot(), before);
    // The guard gave up after the prefix limit: a few chunks, not the file.
    let read = pulled.load(Ordering::SeqCst);
    assert!(read <= 262_144 / CHUNK + 2, "{read} chunks read");
}

#[tokio::test]
async fn a_stale_multipart_submission_conflicts_without_reading_the_file() {
    let state = AppState::new();
    let (answer, seen, pulled) = upload(&state, |token| {
        state.update(1, |item| item.price = 1);
        let head = text_part(FIELD, token) + &text_part("name", "Stale") + &file_part_head();
        let (body, pulled) = upload_body(head, false, FILE_CHUNKS, String::new());
        (multipart_request(body), pulled)
    })
    .await;
    answer.assert(StatusCode::CONFLICT, r#"<th scope="row">price</th>"#);
    assert!(seen.is_none());
    assert_eq!(state.runs(), 0);
    assert_eq!(state.item(1).unwrap().name, "Lamp");
    assert!(pulled.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn a_header_token_with_a_multipart_body_passes() {
    let state = AppState::new();
    let (answer, seen, _pulled) = upload(&state, |token| {
        let head = text_part("name", "Header") + &file_part_head();
        let (body, pulled) = upload_body(head, false, FILE_CHUNKS, String::new());
        let mut request = multipart_request(body);
        request
            .headers_mut()
            .insert("x-concurrency-token", token.parse().unwrap());
        (request, pulled)
    })
    .await;
    answer.assert(StatusCode::OK, "uploaded");
    let seen = seen.expect("the handler ran");
    assert_eq!(seen.pulled_at_start, 0, "the guard did not touch the body");
    assert_eq!(seen.file_len, FILE_CHUNKS * CHUNK);
    assert_eq!(seen.file_checksum, file_checksum(FILE_CHUNKS));
    let names: Vec<_> = seen.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name"]);
    assert_eq!(state.item(1).unwrap().name, "Header");
}

#[tokio::test]
async fn the_urlencoded_body_limit_does_not_cap_uploads() {
    // `with_body_limit` bounds what the guard buffers of an urlencoded
    // body; a multipart body is never buffered past the token part, so
    // its size is axum's `DefaultBodyLimit`'s business.
    let state = AppState::new();
    let token = load_token(&app(&state), "/items/1").await;
    let head = text_part(FIELD, &token) + &text_part("name", "Limited") + &file_part_head();
    let (body, pulled) = upload_body(head, false, 16, String::new());
    let seen = Arc::new(Mutex::new(None));
    let upload_app = upload_app_with(
        &state,
        pulled,
        seen.clone(),
        guard(&state).with_body_limit(4096),
    );
    send(&upload_app, multipart_request(body))
        .await
        .assert(StatusCode::OK, "uploaded");
    let seen = seen.lock().unwrap().clone().expect("the handler ran");
    assert_eq!(seen.file_len, 16 * CHUNK);
    assert_eq!(seen.file_checksum, file_checksum(16));
}

#[tokio::test]
async fn a_token_after_a_3_mib_file_is_accepted_within_the_route_limit() {
    // A template that renders the token at the end of the form: the body
    // (3 MiB, under the route's 64 MiB) is accepted, the file intact.
    let state = AppState::new();
    let (answer, seen, _pulled) = upload(&state, |token| {
        let head = text_part("name", "Last") + &file_part_head();
        let after = text_part(FIELD, token);
        let (body, pulled) = upload_body(head, false, 48, after);
        (multipart_request(body), pulled)
    })
    .await;
    answer.assert(StatusCode::OK, "uploaded");
    let seen = seen.expect("the handler ran");
    assert_eq!(seen.file_len, 48 * CHUNK);
    assert_eq!(seen.file_checksum, file_checksum(48));
    let names: Vec<_> = seen.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name", FIELD]);
    assert_eq!(state.item(1).unwrap().name, "Last");
}

/// The item routes with a plain upload handler that answers its
/// extractor's errors (axum's own answers), under a 10 MiB
/// `DefaultBodyLimit`, guarded or not.
fn limited_upload_app(state: &AppState, guarded: bool) -> Router {
    async fn upload(
        State(state): State<AppState>,
        mut multipart: Multipart,
    ) -> Result<&'static str, axum::extract::multipart::MultipartError> {
        state.handler_runs.fetch_add(1, Ordering::SeqCst);
        while let Some(field) = multipart.next_field().await? {
            field.bytes().await?;
        }
        Ok("uploaded")
    }
    let router = Router::new().route("/items/{id}", get(edit).post(upload));
    let router = if guarded {
        router.route_layer(guard(state))
    } else {
        router
    };
    router
        .layer(DefaultBodyLimit::max(10 << 20))
        .with_state(state.clone())
}

/// A 50 MiB upload (800 chunks), the token first or last.
fn fifty_mib(token: &str, token_first: bool) -> (Body, Arc<AtomicUsize>) {
    let (head, after) = if token_first {
        (text_part(FIELD, token) + &file_part_head(), String::new())
    } else {
        (file_part_head(), text_part(FIELD, token))
    };
    upload_body(head, false, 800, after)
}

#[tokio::test]
async fn an_upload_over_the_route_limit_is_413_as_without_the_guard() {
    // RFC 9110 §15.5.14: 413 Content Too Large. Sent chunked (no length):
    // only reading finds the body too large.
    let state = AppState::new();
    let token = load_token(&app(&state), "/items/1").await;
    let (body, _) = fifty_mib(&token, true);
    let bare = send(&limited_upload_app(&state, false), multipart_request(body)).await;
    assert_eq!(bare.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", bare.body);
    for token_first in [true, false] {
        let state = AppState::new();
        let token = load_token(&app(&state), "/items/1").await;
        let (body, pulled) = fifty_mib(&token, token_first);
        let answer = send(&limited_upload_app(&state, true), multipart_request(body)).await;
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            answer.body
        );
        if token_first {
            // The handler ran and its extractor refused, as without the guard.
            assert_eq!(answer.body, bare.body);
        } else {
            assert!(matches!(
                answer.extensions.get::<Rejection>(),
                Some(Rejection::PayloadTooLarge { .. })
            ));
            assert!(
                answer.body.contains("larger than the body limit"),
                "{}",
                answer.body
            );
            assert_eq!(state.runs(), 0);
        }
        assert_eq!(state.item(1).unwrap().name, "Lamp");
        // Reading stopped at the limit, not at the end of the 50 MiB.
        assert!(pulled.load(Ordering::SeqCst) <= (10 << 20) / CHUNK + 2);
    }
}

#[tokio::test]
async fn an_upload_declaring_a_length_over_the_route_limit_is_413_before_reading() {
    let state = AppState::new();
    let token = load_token(&app(&state), "/items/1").await;
    let (body, pulled) = fifty_mib(&token, true);
    let mut request = multipart_request(body);
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, (50u64 << 20).into());
    let answer = send(&limited_upload_app(&state, true), request).await;
    answer.assert(StatusCode::PAYLOAD_TOO_LARGE, "larger than the body limit");
    assert_eq!(state.runs(), 0);
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_guard_body_limit_bounds_what_comes_before_the_token() {
    // `with_body_limit(4096)`: a token after a 1 MiB file would be
    // buffered past it: 413 naming the limit.
    let state = AppState::new();
    let (answer, seen, _) = {
        let token = load_token(&app(&state), "/items/1").await;
        let head = text_part("name", "Late") + &file_part_head();
        let (body, pulled) = upload_body(head, false, 16, text_part(FIELD, &token));
        let seen = Arc::new(Mutex::new(None));
        let layer = guard(&state).with_body_limit(4096);
        let upload_app = upload_app_with(&state, pulled.clone(), seen.clone(), layer);
        let answer = send(&upload_app, multipart_request(body)).await;
        let seen = seen.lock().unwrap().clone();
        (answer, seen, pulled)
    };
    answer.assert(
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit of 4096 bytes",
    );
    assert!(seen.is_none());
    assert_eq!(state.runs(), 0);
}
