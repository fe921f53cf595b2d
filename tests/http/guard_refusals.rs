//! Every bad submission is refused before the handler runs: the status, a
//! message saying what was wrong, the handler not run, the store unchanged.

use crate::common;

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use common::*;
use concurrency_guard::{ConcurrencyToken, Key, KeyRing, Preconditions, Rejection, RenderState};
use http::{Method, Request, StatusCode, header};

/// A second form over the same records, with another name.
#[derive(Clone, RenderState)]
#[render_state(form = "item-price")]
struct PriceForm {
    #[render_state(key)]
    id: i64,
    price: i64,
}

/// The fixture's item 1 as the edit form shows it.
fn item_1_form(state: &AppState) -> ItemForm {
    let item = state.item(1).unwrap();
    ItemForm {
        id: item.id,
        name: item.name,
        price: item.price,
        views: item.views,
        stock: item.stock,
    }
}

/// Sends `request`, then checks the refusal: `status`, `message` in the
/// body, the handler not run, the store as it was.
async fn refused(
    state: &AppState,
    app: &Router,
    case: &str,
    request: Request<Body>,
    status: StatusCode,
    message: &str,
) -> Answer {
    let before = state.snapshot();
    let runs = state.runs();
    let answer = send(app, request).await;
    assert_eq!(answer.status, status, "{case}: {}", answer.body);
    assert!(
        answer.body.contains(message),
        "{case}: {message:?} is not in {}",
        answer.body
    );
    assert_eq!(state.runs(), runs, "{case}: the handler ran");
    assert_eq!(state.snapshot(), before, "{case}: the store changed");
    answer
}

/// A POST of the edit form to `path` carrying `token`.
fn post_with_token(path: &str, token: &str) -> Request<Body> {
    form_request(
        Method::POST,
        path,
        urlencode(&[(FIELD, token), ("name", "Hacked"), ("price", "1")]),
    )
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let state = AppState::new();
    let app = app(&state);
    let good = load_token(&app, "/items/1").await;

    // One character of the signature changed.
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() - 6;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases: Vec<(&str, Request<Body>, &str)> = vec![
        (
            "missing",
            form_request(
                Method::POST,
                "/items/1",
                urlencode(&[("name", "Hacked"), ("price", "1")]),
            ),
            "carries no concurrency token",
        ),
        (
            "empty",
            post_with_token("/items/1", ""),
            "malformed (it is empty)",
        ),
        (
            "not base64url",
            post_with_token("/items/1", "not a token!"),
            "malformed (it is not base64url without padding)",
        ),
        (
            "padded",
            post_with_token("/items/1", &format!("{good}=")),
            "the concurrency token is malformed",
        ),
        (
            "truncated",
            post_with_token("/items/1", &good[..good.len() - 4]),
            "the concurrency token is malformed",
        ),
        (
            "truncated to a few characters",
            post_with_token("/items/1", &good[..12]),
            "malformed (it is too short)",
        ),
        (
            "extended",
            post_with_token("/items/1", &format!("{good}AAAA")),
            "malformed (its length does not match its content)",
        ),
        (
            "far too long",
            post_with_token("/items/1", &"A".repeat(5000)),
            "the concurrency token is malformed",
        ),
        (
            "bad signature",
            post_with_token("/items/1", &tampered),
            "signature does not match",
        ),
        (
            "duplicate fields that disagree",
            form_request(
                Method::POST,
                "/items/1",
                urlencode(&[(FIELD, &good), ("name", "Hacked"), (FIELD, &tampered)]),
            ),
            "several different concurrency tokens",
        ),
        (
            "bad token in the header",
            Request::put("/items/1")
                .header("x-concurrency-token", &tampered)
                .body(Body::empty())
                .unwrap(),
            "signature does not match",
        ),
    ];
    for (case, request, message) in cases {
        let answer = refused(
            &state,
            &app,
            case,
            request,
            StatusCode::BAD_REQUEST,
            message,
        )
        .await;
        assert!(
            answer.extensions.get::<Rejection>().is_some(),
            "{case}: a typed rejection"
        );
        assert!(
            answer.body.to_lowercase().contains("reload"),
            "{case}: says to reload: {}",
            answer.body
        );
    }

    // Duplicates that agree are fine.
    let answer = post_form(
        &app,
        "/items/1",
        &[
            (FIELD, &good),
            ("name", "Same"),
            ("price", "2"),
            (FIELD, &good),
        ],
    )
    .await;
    answer.assert(StatusCode::OK, "saved item 1");
}

#[tokio::test]
async fn tokens_of_other_keys_forms_records_and_times_are_refused() {
    let state = AppState::new();
    let app = app(&state);
    let form = item_1_form(&state);
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);

    let unknown_key = ConcurrencyToken::issue(&KeyRing::new(9, key()), &form);
    let other_form = ConcurrencyToken::issue(
        &keys(),
        &PriceForm {
            id: 1,
            price: form.price,
        },
    );
    let other_record = load_token(&app, "/items/1").await;
    let future = ConcurrencyToken::issue_at(&keys(), &form, now + hour);
    let expired = ConcurrencyToken::issue_at(&keys(), &form, now - 48 * hour);
    // Signed by a key of the same id but other material: a forgery.
    let forged =
        ConcurrencyToken::issue(&KeyRing::new(1, Key::from_bytes(&[8; 32]).unwrap()), &form);

    let cases = [
        (
            "unknown key id",
            post_with_token("/items/1", unknown_key.value()),
            StatusCode::BAD_REQUEST,
            "signed with key 9, which this server no longer accepts",
        ),
        (
            "forged with another key under the same id",
            post_with_token("/items/1", forged.value()),
            StatusCode::BAD_REQUEST,
            "signature does not match",
        ),
        (
            "another form",
            post_with_token("/items/1", other_form.value()),
            StatusCode::BAD_REQUEST,
            "belongs to another form",
        ),
        (
            "another record",
            post_with_token("/items/2", &other_record),
            StatusCode::BAD_REQUEST,
            "belongs to another record",
        ),
        (
            "issued in the future",
            post_with_token("/items/1", future.value()),
            StatusCode::BAD_REQUEST,
            "issued 60 minutes in the future",
        ),
        (
            "expired",
            post_with_token("/items/1", expired.value()),
            StatusCode::CONFLICT,
            "reload it to see the current data",
        ),
    ];
    for (case, request, status, message) in cases {
        let answer = refused(&state, &app, case, request, status, message).await;
        assert!(answer.body.to_lowercase().contains("reload"), "{case}");
        assert!(answer.extensions.get::<Rejection>().is_some(), "{case}");
    }

    // The same tokens, sent where they belong and in time, pass.
    let fresh = ConcurrencyToken::issue(&keys(), &form);
    let answer = send(&app, post_with_token("/items/1", fresh.value())).await;
    answer.assert(StatusCode::OK, "saved item 1");
}

#[tokio::test]
async fn an_expired_token_asks_for_a_reload_in_json_too() {
    let state = AppState::new();
    let app = app(&state);
    let form = item_1_form(&state);
    let expired = ConcurrencyToken::issue_at(
        &keys(),
        &form,
        SystemTime::now() - Duration::from_secs(172_800),
    );
    let mut request = post_with_token("/items/1", expired.value());
    request
        .headers_mut()
        .insert(header::ACCEPT, "application/json".parse().unwrap());
    let answer = refused(
        &state,
        &app,
        "expired, JSON",
        request,
        StatusCode::CONFLICT,
        "reload",
    )
    .await;
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["status"], 409);
    assert_eq!(json["type"], "urn:concurrency-guard:expired-token");
}

/// An urlencoded body of about `len` bytes carrying `token`.
fn big_form(token: &str, len: usize) -> String {
    urlencode(&[(FIELD, token), ("name", &"x".repeat(len)), ("price", "1")])
}

#[tokio::test]
async fn bodies_over_the_guards_limit_are_refused() {
    let state = AppState::new();
    let app = app_with(&state, guard(&state).with_body_limit(1024));
    let token = load_token(&app, "/items/1").await;

    // With a Content-Length.
    let request = form_request(Method::POST, "/items/1", big_form(&token, 2000));
    let answer = refused(
        &state,
        &app,
        "over the limit",
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit of 1024 bytes",
    )
    .await;
    assert_eq!(
        answer.extensions.get::<Rejection>(),
        Some(&Rejection::PayloadTooLarge { limit: Some(1024) })
    );

    // Streamed in small chunks, without a length.
    let body = Body::new(ChunkBody::small_chunks(&big_form(&token, 2000)));
    refused(
        &state,
        &app,
        "over the limit, streamed",
        form_request(Method::POST, "/items/1", body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit of 1024 bytes",
    )
    .await;

    // Just under it: passes.
    let body = big_form(&token, 600);
    assert!(body.len() < 1024);
    send(&app, form_request(Method::POST, "/items/1", body))
        .await
        .assert(StatusCode::OK, "saved item 1");
}

#[tokio::test]
async fn axums_default_body_limit_is_honoured() {
    let state = AppState::new();
    let app = app(&state).layer(DefaultBodyLimit::max(1024));
    let token = load_token(&app, "/items/1").await;
    let request = form_request(Method::POST, "/items/1", big_form(&token, 2000));
    let answer = refused(
        &state,
        &app,
        "over DefaultBodyLimit",
        request,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the body limit",
    )
    .await;
    assert_eq!(
        answer.extensions.get::<Rejection>(),
        Some(&Rejection::PayloadTooLarge { limit: None })
    );
    let body = big_form(&token, 600);
    send(&app, form_request(Method::POST, "/items/1", body))
        .await
        .assert(StatusCode::OK, "saved item 1");
}

/// A JSON body carrying the token where the guard does not look.
fn json_submission(token: &str) -> Request<Body> {
    Request::post("/items/1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(
            r#"{{"{FIELD}":"{token}","name":"Hacked","price":1}}"#
        )))
        .unwrap()
}

#[tokio::test]
async fn a_json_body_without_a_header_token_is_unsupported() {
    let state = AppState::new();
    let app = app_with(&state, guard(&state).with_preconditions(Preconditions::Off));
    let token = load_token(&app, "/items/1").await;
    let answer = refused(
        &state,
        &app,
        "JSON body",
        json_submission(&token),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "from which the guard cannot read a concurrency token",
    )
    .await;
    assert!(answer.body.contains("x-concurrency-token"));
    assert!(matches!(
        answer.extensions.get::<Rejection>(),
        Some(Rejection::UnsupportedMediaType { .. })
    ));
    // A JSON client gets its answer in JSON.
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn a_json_body_without_token_nor_if_match_is_428_by_default() {
    // With preconditions on (the default), a body that is not a form may
    // carry If-Match instead of a token; with neither, it must be conditional.
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let answer = refused(
        &state,
        &app,
        "JSON body, preconditions required",
        json_submission(&token),
        StatusCode::PRECONDITION_REQUIRED,
        "x-concurrency-token header",
    )
    .await;
    assert_eq!(
        answer.extensions.get::<Rejection>(),
        Some(&Rejection::PreconditionRequired)
    );
}

#[tokio::test]
async fn broken_multipart_bodies_are_refused() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let multipart = |content_type: &str, body: String| {
        Request::post("/items/1")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let whole = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"{FIELD}\"\r\n\r\n{token}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nHacked\r\n--XyZ--\r\n"
    );
    let cut = whole.find(&token).unwrap() + 10;
    let cases = [
        (
            "no boundary",
            multipart("multipart/form-data", whole.clone()),
            "no boundary",
        ),
        (
            "empty boundary",
            multipart("multipart/form-data; boundary=", whole.clone()),
            "boundary must be 1 to 70 characters",
        ),
        (
            "truncated in the token part",
            multipart("multipart/form-data; boundary=XyZ", whole[..cut].to_owned()),
            "the body ended before the concurrency token part was complete",
        ),
        (
            "garbage before the boundary",
            multipart(
                "multipart/form-data; boundary=XyZ",
                format!("garbage{whole}"),
            ),
            "does not start with its boundary",
        ),
        (
            "no token part",
            multipart(
                "multipart/form-data; boundary=XyZ",
                "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nHacked\r\n--XyZ--\r\n"
                    .to_owned(),
            ),
            "carries no concurrency token",
        ),
    ];
    for (case, request, message) in cases {
        refused(
            &state,
            &app,
            case,
            request,
            StatusCode::BAD_REQUEST,
            message,
        )
        .await;
    }
}
