//! The bad-input catalogue: one table of hostile or broken submissions.
//!
//! Every row is sent to a fresh store behind the guard (the fixture of
//! `tests/common`) and must be answered with its 4xx status and a message
//! saying what was wrong, while the handler does not run and the store stays
//! as it was. Rows marked [`By::Axum`] pass the guard (their token is good)
//! and are refused by axum's own `Form` extractor in front of the handler:
//! for those "the handler did not run" means its body never ran, which the
//! fixture's run counter (incremented first thing in the handler) shows, and
//! the store is unchanged all the same.
//!
//! Besides the named rows, the table holds one row per single-bit flip of a
//! good token: every bit of its decoded bytes (re-encoded) and every bit of
//! its text.
//!
//! The whole table runs before anything is asserted, and every failing row
//! is reported together.

use crate::common;

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use common::*;
use concurrency_guard::{
    ConcurrencyGuardLayer, ConcurrencyToken, Conflict, Key, KeyRing, Preconditions, Rejection,
    RenderState,
};
use http::{HeaderValue, Method, Request, StatusCode, header};

/// A second form over the same records, under another name.
#[derive(Clone, RenderState)]
#[render_state(form = "item-price")]
struct PriceForm {
    #[render_state(key)]
    id: i64,
    price: i64,
}

/// How the row's guard is configured.
#[derive(Clone)]
enum Setup {
    /// The fixture's guard: key 1, defaults.
    Default,
    /// An urlencoded body limit.
    BodyLimit(usize),
    /// `with_preconditions(Preconditions::Off)`.
    PreconditionsOff,
    /// Another key ring.
    Ring(KeyRing),
}

/// Who refuses the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum By {
    /// The guard, with a typed [`Rejection`] in the answer's extensions.
    Guard,
    /// The guard, with a [`Conflict`]: the data changed.
    Conflict,
    /// Axum's `Form` extractor, after the guard let a good token through.
    Axum,
}

struct Row {
    name: String,
    setup: Setup,
    /// Done to the store before the request (after the tokens were issued).
    prepare: Option<fn(&AppState)>,
    request: Request<Body>,
    status: StatusCode,
    /// Each must be in the body.
    messages: Vec<String>,
    by: By,
}

fn row(name: impl Into<String>, request: Request<Body>, status: StatusCode, message: &str) -> Row {
    Row {
        name: name.into(),
        setup: Setup::Default,
        prepare: None,
        request,
        status,
        messages: vec![message.to_owned()],
        by: By::Guard,
    }
}

impl Row {
    fn with(mut self, setup: Setup) -> Row {
        self.setup = setup;
        self
    }
    fn after(mut self, prepare: fn(&AppState)) -> Row {
        self.prepare = Some(prepare);
        self
    }
    fn by(mut self, by: By) -> Row {
        self.by = by;
        self
    }
    fn and(mut self, message: &str) -> Row {
        self.messages.push(message.to_owned());
        self
    }
}

/// The app a row is sent to.
fn app_for(state: &AppState, setup: &Setup) -> Router {
    let layer = match setup {
        Setup::Default => guard(state),
        Setup::BodyLimit(n) => guard(state).with_body_limit(*n),
        Setup::PreconditionsOff => guard(state).with_preconditions(Preconditions::Off),
        Setup::Ring(ring) => ConcurrencyGuardLayer::<ItemForm, _>::new(ring.clone(), state.clone()),
    };
    app_with(state, layer)
}

/// The fixture's item `id` as its edit form shows it, in a fresh store.
fn form_of(id: i64) -> ItemForm {
    let item = AppState::new().item(id).unwrap();
    ItemForm {
        id: item.id,
        name: item.name,
        price: item.price,
        views: item.views,
        stock: item.stock,
    }
}

/// A POST to `/items/1` of `body` with `content_type` (none: no header).
fn post(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post("/items/1");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A POST of the edit form with `token` (urlencoded, so any bytes go).
fn post_token(token: &[u8]) -> Request<Body> {
    let token: String = form_urlencoded::byte_serialize(token).collect();
    post(
        Some(FORM),
        format!("{FIELD}={token}&name=Hacked&price=1").into_bytes(),
    )
}

/// A POST of the edit form with `token`, the body streamed in small chunks
/// without a Content-Length.
fn post_token_chunked(token: &str) -> Request<Body> {
    let body = urlencode(&[(FIELD, token), ("name", "Hacked"), ("price", "1")]);
    post(Some(FORM), Body::new(ChunkBody::small_chunks(&body)))
}

/// A POST whose token travels in the header, with `body` urlencoded.
fn post_header(token: HeaderValue) -> Request<Body> {
    Request::post("/items/1")
        .header("x-concurrency-token", token)
        .header(header::CONTENT_TYPE, FORM)
        .body(Body::from("name=Hacked&price=1"))
        .unwrap()
}

fn multipart(boundary_param: &str, body: impl Into<Body>) -> Request<Body> {
    post(Some(&format!("multipart/form-data{boundary_param}")), body)
}

/// A multipart part.
fn part(name: &str, value: &str) -> String {
    format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

/// Flips bit `bit` of byte `at`.
fn flipped(bytes: &[u8], at: usize, bit: u8) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[at] ^= 1 << bit;
    bytes
}

fn stale(state: &AppState) {
    state.update(1, |item| item.name = "Changed by someone else".into());
}

fn gone(state: &AppState) {
    state.remove(1);
}

/// The table.
async fn catalogue() -> Vec<Row> {
    use StatusCode as S;
    let item_1 = form_of(1);
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);

    // A good token, as a page of a fresh store carries it.
    let good = load_token(&app(&AppState::new()), "/items/1").await;
    let good_b = good.as_bytes();
    let decoded = URL_SAFE_NO_PAD.decode(&good).unwrap();
    let resign = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let tampered = {
        let mut t = good.clone().into_bytes();
        let at = t.len() - 6;
        t[at] = if t[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let item_2 = load_token(&app(&AppState::new()), "/items/2").await;
    // A token whose text has a character of the URL-safe alphabet
    // (- or _), to re-encode in the standard one (+ or /).
    let url_safe_only = (0..3600)
        .map(|s| ConcurrencyToken::issue_at(&keys(), &item_1, now - Duration::from_secs(s)))
        .map(|t| t.value().to_owned())
        .find(|t| t.contains(['-', '_']))
        .unwrap();
    let standard = STANDARD.encode(URL_SAFE_NO_PAD.decode(&url_safe_only).unwrap());
    // The entity tag of item 1, as an API client reads it (HTML pages carry
    // a token instead of a tag).
    let etag = {
        async fn json(
            concurrency_guard::Guarded(item): concurrency_guard::Guarded<ItemForm>,
        ) -> axum::Json<String> {
            axum::Json(item.name)
        }
        let state = AppState::new();
        let api = Router::new()
            .route("/items/{id}", axum::routing::get(json))
            .route_layer(guard(&state))
            .with_state(state.clone());
        let answer = get_page(&api, "/items/1").await;
        answer.header("etag").expect("an ETag").to_owned()
    };
    let key_2 = Key::from_bytes(&[2; 32]).unwrap();
    // The ring after key 2 was rotated out: 1 signs, 2 is removed.
    let (removed_2, was_removed) = KeyRing::new(2, key_2.clone()).rotate(1, key()).remove(2);
    assert!(was_removed);
    let signed_with_2 = ConcurrencyToken::issue(&KeyRing::new(2, key_2), &item_1);
    let with_version = |v: u8| {
        let mut bytes = decoded.clone();
        bytes[0] = v;
        resign(&bytes)
    };
    // Over axum's default body limit (2 MiB).
    let big_file = "F".repeat(3 * 1024 * 1024);

    let mut rows = vec![
        // ---- the token
        row(
            "token missing",
            post(Some(FORM), "name=Hacked&price=1"),
            S::BAD_REQUEST,
            "carries no concurrency token",
        ),
        row(
            "token missing, no body at all",
            post(Some(FORM), Body::empty()),
            S::BAD_REQUEST,
            "carries no concurrency token",
        ),
        row(
            "token field named in another case",
            post(
                Some(FORM),
                format!("_Concurrency_Token={good}&name=Hacked&price=1"),
            ),
            S::BAD_REQUEST,
            "carries no concurrency token",
        ),
        row(
            "token empty",
            post_token(b""),
            S::BAD_REQUEST,
            "malformed (it is empty)",
        ),
        row(
            "token of spaces",
            post_token(b"   "),
            S::BAD_REQUEST,
            "malformed (it is empty)",
        ),
        row(
            "token of tabs and line breaks",
            post_token(b"\t\r\n"),
            S::BAD_REQUEST,
            "malformed (it is empty)",
        ),
        // (A good token wrapped in white space is accepted, as from the
        // header and a multipart part: the blanks are trimmed.)
        row(
            "token truncated by one character",
            post_token(&good_b[..good.len() - 1]),
            S::BAD_REQUEST,
            "the concurrency token is malformed",
        ),
        row(
            // Three bytes short, still base64url (a cut at any length is not:
            // its last characters would carry bits of the bytes cut off).
            "token three bytes short",
            post_token(resign(&decoded[..decoded.len() - 3]).as_bytes()),
            S::BAD_REQUEST,
            "malformed (its length does not match its content)",
        ),
        row(
            "token truncated to twelve characters",
            post_token(&good_b[..12]),
            S::BAD_REQUEST,
            "malformed (it is too short)",
        ),
        row(
            "token extended by one character",
            post_token(format!("{good}A").as_bytes()),
            S::BAD_REQUEST,
            "the concurrency token is malformed",
        ),
        row(
            "token extended by four characters",
            post_token(format!("{good}AAAA").as_bytes()),
            S::BAD_REQUEST,
            "malformed (its length does not match its content)",
        ),
        row(
            "token far too long",
            post_token("A".repeat(5000).as_bytes()),
            S::BAD_REQUEST,
            "malformed (it is too long)",
        ),
        row(
            "token padded with =",
            post_token(format!("{good}=").as_bytes()),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "token padded with ==",
            post_token(format!("{good}==").as_bytes()),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "token in the standard base64 alphabet, padded",
            post_token(standard.as_bytes()),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "token with a wrong version (0)",
            post_token(with_version(0).as_bytes()),
            S::BAD_REQUEST,
            "format version 0, which this server does not read",
        ),
        row(
            "token of format version 1, issued before the upgrade",
            post_token(with_version(1).as_bytes()),
            S::BAD_REQUEST,
            "format version 1, which this server does not read",
        ),
        row(
            "token with a wrong version (4)",
            post_token(with_version(4).as_bytes()),
            S::BAD_REQUEST,
            "format version 4, which this server does not read",
        ),
        row(
            // The page's token is version 3: as version 2 its page is extra bytes.
            "token that names its page, relabelled version 2",
            post_token(with_version(2).as_bytes()),
            S::BAD_REQUEST,
            "malformed (its length does not match its content)",
        ),
        row(
            "token with an unknown key id",
            post_token(
                ConcurrencyToken::issue(&KeyRing::new(9, key()), &item_1)
                    .value()
                    .as_bytes(),
            ),
            S::BAD_REQUEST,
            "signed with key 9, which this server no longer accepts",
        )
        .and("reload the page"),
        row(
            "token signed with a key removed from the ring",
            post_token(signed_with_2.value().as_bytes()),
            S::BAD_REQUEST,
            "signed with key 2, which this server no longer accepts; reload the page to get a fresh form",
        )
        .with(Setup::Ring(removed_2)),
        row(
            "token forged with another secret under the same key id",
            post_token(
                ConcurrencyToken::issue(
                    &KeyRing::new(1, Key::from_bytes(&[8; 32]).unwrap()),
                    &item_1,
                )
                .value()
                .as_bytes(),
            ),
            S::BAD_REQUEST,
            "signature does not match: it was altered",
        ),
        row(
            "token expired (issued two days ago)",
            post_token(
                ConcurrencyToken::issue_at(&keys(), &item_1, now - 48 * hour)
                    .value()
                    .as_bytes(),
            ),
            S::CONFLICT,
            "the form was opened 2 days ago, longer than the 24 hours a form stays valid; reload it",
        ),
        row(
            "token issued in the far future (ten years)",
            post_token(
                ConcurrencyToken::issue_at(&keys(), &item_1, now + 87_600 * hour)
                    .value()
                    .as_bytes(),
            ),
            S::BAD_REQUEST,
            "3650 days in the future",
        ),
        row(
            "token issued at the end of its clock (u32::MAX)",
            post_token(
                ConcurrencyToken::issue_at(
                    &keys(),
                    &item_1,
                    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
                )
                .value()
                .as_bytes(),
            ),
            S::BAD_REQUEST,
            "days in the future",
        ),
        row(
            "token of another form",
            post_token(
                ConcurrencyToken::issue(
                    &keys(),
                    &PriceForm {
                        id: 1,
                        price: item_1.price,
                    },
                )
                .value()
                .as_bytes(),
            ),
            S::BAD_REQUEST,
            "belongs to another form",
        ),
        row(
            "token of another record",
            post_token(item_2.as_bytes()),
            S::BAD_REQUEST,
            "belongs to another record",
        ),
        row(
            "token of data that changed since (stale)",
            post_token(good_b),
            S::CONFLICT,
            "Someone else changed this record",
        )
        .and("Changed by someone else")
        .after(stale)
        .by(By::Conflict),
        row(
            "token of a record deleted since",
            post_token(good_b),
            S::CONFLICT,
            "This record was deleted",
        )
        .after(gone)
        .by(By::Guard),
        row(
            "duplicated token fields that disagree",
            post(
                Some(FORM),
                urlencode(&[(FIELD, &good), ("name", "Hacked"), (FIELD, &tampered)]),
            ),
            S::BAD_REQUEST,
            "several different concurrency tokens",
        ),
        row(
            "duplicated token fields that disagree, one name percent-encoded",
            post(
                Some(FORM),
                format!("{FIELD}={good}&name=Hacked&%5Fconcurrency%5Ftoken={tampered}"),
            ),
            S::BAD_REQUEST,
            "several different concurrency tokens",
        ),
        row(
            "duplicated token fields, the second empty",
            post(
                Some(FORM),
                format!("{FIELD}={good}&name=Hacked&price=1&{FIELD}="),
            ),
            S::BAD_REQUEST,
            "several different concurrency tokens",
        ),
        // ---- the body
        row(
            "body over the limit, with Content-Length",
            {
                let body = urlencode(&[(FIELD, &good), ("name", &"x".repeat(2000))]);
                let mut r = post(Some(FORM), body.clone());
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, body.len().into());
                r
            },
            S::PAYLOAD_TOO_LARGE,
            "larger than the limit of 1024 bytes",
        )
        .with(Setup::BodyLimit(1024)),
        row(
            "body over the limit, chunked without Content-Length",
            post(
                Some(FORM),
                Body::new(ChunkBody::small_chunks(&urlencode(&[
                    (FIELD, &good),
                    ("name", &"x".repeat(2000)),
                ]))),
            ),
            S::PAYLOAD_TOO_LARGE,
            "larger than the limit of 1024 bytes",
        )
        .with(Setup::BodyLimit(1024)),
        row(
            "body over the limit, the token after the limit",
            post(
                Some(FORM),
                Body::new(ChunkBody::small_chunks(&urlencode(&[
                    ("name", &"x".repeat(2000)),
                    (FIELD, &good),
                ]))),
            ),
            S::PAYLOAD_TOO_LARGE,
            "larger than the limit of 1024 bytes",
        )
        .with(Setup::BodyLimit(1024)),
        row(
            "chunked body, no token",
            post(
                Some(FORM),
                Body::new(ChunkBody::small_chunks("name=Hacked&price=1")),
            ),
            S::BAD_REQUEST,
            "carries no concurrency token",
        ),
        row(
            "chunked body, altered token",
            post_token_chunked(&tampered),
            S::BAD_REQUEST,
            "signature does not match",
        ),
        row(
            "chunked body, stale token",
            post_token_chunked(&good),
            S::CONFLICT,
            "Someone else changed this record",
        )
        .after(stale)
        .by(By::Conflict),
        row(
            "wrong content type (text/plain), preconditions required (default)",
            post(
                Some("text/plain"),
                urlencode(&[(FIELD, &good), ("name", "Hacked")]),
            ),
            S::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
        )
        .and("not reliably interpretable by computer"),
        row(
            "wrong content type (text/plain), preconditions off",
            post(
                Some("text/plain"),
                urlencode(&[(FIELD, &good), ("name", "Hacked")]),
            ),
            S::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
        )
        .and("it reads application/x-www-form-urlencoded")
        .with(Setup::PreconditionsOff),
        row(
            "JSON body with the token inside, no header, no If-Match: 428 by default",
            post(
                Some("application/json"),
                format!(r#"{{"{FIELD}":"{good}","name":"Hacked","price":1}}"#),
            ),
            S::PRECONDITION_REQUIRED,
            "send If-Match with the ETag from a GET of this resource, or the concurrency token in the x-concurrency-token header",
        ),
        row(
            "JSON body with the token inside, no header: 415 with preconditions off",
            post(
                Some("application/json"),
                format!(r#"{{"{FIELD}":"{good}","name":"Hacked","price":1}}"#),
            ),
            S::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        )
        .and("x-concurrency-token header")
        .with(Setup::PreconditionsOff),
        row(
            "no content type, preconditions required (default)",
            post(None, urlencode(&[(FIELD, &good), ("name", "Hacked")])),
            S::UNSUPPORTED_MEDIA_TYPE,
            "the submission has a body but no Content-Type",
        ),
        row(
            "no content type, preconditions off",
            post(None, urlencode(&[(FIELD, &good), ("name", "Hacked")])),
            S::UNSUPPORTED_MEDIA_TYPE,
            "the submission has a body but no Content-Type",
        )
        .with(Setup::PreconditionsOff),
        row(
            "content type that is not text, preconditions off",
            {
                let mut r = post(None, urlencode(&[(FIELD, &good)]));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(b"application/x-www-form-urlencoded\xff").unwrap(),
                );
                r
            },
            S::UNSUPPORTED_MEDIA_TYPE,
            "(not valid text)",
        )
        .with(Setup::PreconditionsOff),
        row(
            "invalid UTF-8 in the token, percent-encoded",
            post(Some(FORM), "_concurrency_token=%FF%FE%FD&name=Hacked&price=1"),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "invalid UTF-8 in the token, raw bytes",
            post(
                Some(FORM),
                [
                    b"_concurrency_token=".as_slice(),
                    &good_b[..50],
                    b"\xff\xfe",
                    &good_b[52..],
                    b"&name=Hacked&price=1",
                ]
                .concat(),
            ),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "invalid UTF-8 elsewhere (the price), good token: axum's Form refuses",
            post(
                Some(FORM),
                [
                    format!("{FIELD}={good}&name=Hacked&price=").as_bytes(),
                    b"\xff1",
                ]
                .concat(),
            ),
            S::UNPROCESSABLE_ENTITY,
            "Failed to deserialize form body",
        )
        .by(By::Axum),
        row(
            "invalid percent-encoding in the token",
            post(
                Some(FORM),
                format!("{FIELD}={}%ZZ{}&name=Hacked&price=1", &good[..50], &good[52..]),
            ),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "a lone % at the end of the token",
            post(Some(FORM), format!("{FIELD}={good}%&name=Hacked&price=1")),
            S::BAD_REQUEST,
            "malformed (it is not base64url without padding)",
        ),
        row(
            "invalid percent-encoding in the token field's name",
            post(
                Some(FORM),
                format!("_concurrency_token%G={good}&name=Hacked&price=1"),
            ),
            S::BAD_REQUEST,
            "carries no concurrency token",
        ),
        row(
            "invalid percent-encoding elsewhere (the price), good token: axum's Form refuses",
            post(Some(FORM), format!("{FIELD}={good}&name=Hacked&price=%G1")),
            S::UNPROCESSABLE_ENTITY,
            "Failed to deserialize form body",
        )
        .by(By::Axum),
        row(
            "multipart without boundary",
            multipart("", part(FIELD, &good) + "--XyZ--\r\n"),
            S::BAD_REQUEST,
            "the multipart body has no boundary in its Content-Type",
        ),
        row(
            "multipart with an empty boundary",
            multipart("; boundary=", part(FIELD, &good) + "--XyZ--\r\n"),
            S::BAD_REQUEST,
            "the multipart boundary must be 1 to 70 characters",
        ),
        row(
            "multipart with a boundary of 71 characters",
            multipart(
                &format!("; boundary={}", "b".repeat(71)),
                part(FIELD, &good) + "--XyZ--\r\n",
            ),
            S::BAD_REQUEST,
            "the multipart boundary must be 1 to 70 characters",
        ),
        row(
            "multipart truncated inside the token part",
            multipart("; boundary=XyZ", part(FIELD, &good)[..80].to_owned()),
            S::BAD_REQUEST,
            "the body ended before the concurrency token part was complete",
        ),
        row(
            "multipart truncated inside a part's headers",
            multipart(
                "; boundary=XyZ",
                "--XyZ\r\nContent-Disposition: form-da".to_owned(),
            ),
            S::BAD_REQUEST,
            "the body ended before the concurrency token part was complete",
        ),
        row(
            "multipart that does not start with its boundary",
            multipart(
                "; boundary=XyZ",
                format!("garbage{}--XyZ--\r\n", part(FIELD, &good)),
            ),
            S::BAD_REQUEST,
            "does not start with its boundary",
        ),
        row(
            "multipart closed without a token part",
            multipart("; boundary=XyZ", part("name", "Hacked") + "--XyZ--\r\n"),
            S::BAD_REQUEST,
            "carries no concurrency token",
        ),
        row(
            "multipart whose token part is not UTF-8",
            multipart(
                "; boundary=XyZ",
                [
                    format!("--XyZ\r\nContent-Disposition: form-data; name=\"{FIELD}\"\r\n\r\n")
                        .as_bytes(),
                    b"\xff\xfe\r\n--XyZ--\r\n",
                ]
                .concat(),
            ),
            S::BAD_REQUEST,
            "the token part is not UTF-8",
        ),
        row(
            "multipart with endless part headers",
            multipart(
                "; boundary=XyZ",
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{FIELD}\"\r\nX-Junk: {}",
                    "j".repeat(20_000)
                ),
            ),
            S::BAD_REQUEST,
            "a part's headers are too long",
        ),
        row(
            "multipart with an altered token",
            multipart("; boundary=XyZ", part(FIELD, &tampered) + "--XyZ--\r\n"),
            S::BAD_REQUEST,
            "signature does not match",
        ),
        row(
            "multipart: the token part after a file over the body limit (3 MiB, streamed)",
            multipart(
                "; boundary=XyZ",
                Body::new(
                    ChunkBody::new(
                        std::iter::once(Bytes::from(
                            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                        ))
                        .chain(
                            big_file
                                .as_bytes()
                                .chunks(16 * 1024)
                                .map(Bytes::copy_from_slice)
                                .collect::<Vec<_>>(),
                        )
                        .chain(std::iter::once(Bytes::from(
                            format!("\r\n{}--XyZ--\r\n", part(FIELD, &good)),
                        ))),
                    )
                    .0,
                ),
            ),
            S::PAYLOAD_TOO_LARGE,
            "the submission is larger than the body limit",
        ),
        // ---- headers
        row(
            "oversized token header (10 KB)",
            post_header(HeaderValue::from_str(&"A".repeat(10_000)).unwrap()),
            S::BAD_REQUEST,
            "malformed (it is too long)",
        ),
        row(
            "non-ASCII token header",
            post_header(HeaderValue::from_bytes("jeton-é-\u{1F600}".as_bytes()).unwrap()),
            S::BAD_REQUEST,
            "malformed (the header is not base64url text)",
        ),
        row(
            "empty token header",
            post_header(HeaderValue::from_static("")),
            S::BAD_REQUEST,
            "malformed (it is empty)",
        ),
        row(
            "token header of spaces",
            post_header(HeaderValue::from_static("   ")),
            S::BAD_REQUEST,
            "malformed (it is empty)",
        ),
        row(
            "altered token header beside a good token field (two different tokens)",
            {
                let mut r = post_header(HeaderValue::from_str(&tampered).unwrap());
                *r.body_mut() = Body::from(urlencode(&[(FIELD, &good), ("name", "Hacked")]));
                r
            },
            S::BAD_REQUEST,
            "several different concurrency tokens",
        ),
        row(
            "token header of another record on a bodiless PUT",
            Request::put("/items/1")
                .header("x-concurrency-token", &item_2)
                .body(Body::empty())
                .unwrap(),
            S::BAD_REQUEST,
            "belongs to another record",
        ),
        row(
            "DELETE without token nor If-Match",
            Request::delete("/items/1").body(Body::empty()).unwrap(),
            S::PRECONDITION_REQUIRED,
            "this request must be conditional",
        ),
        row(
            "DELETE without token, preconditions off",
            Request::delete("/items/1").body(Body::empty()).unwrap(),
            S::BAD_REQUEST,
            "carries no concurrency token",
        )
        .with(Setup::PreconditionsOff),
        row(
            "malformed If-Match",
            Request::put("/items/1")
                .header(header::IF_MATCH, "not a tag")
                .body(Body::empty())
                .unwrap(),
            S::BAD_REQUEST,
            "the If-Match header is malformed",
        ),
        row(
            "If-Match of a version that changed since",
            Request::put("/items/1")
                .header(header::IF_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
            S::PRECONDITION_FAILED,
            "If-Match does not hold: the record changed since you read it",
        )
        .after(stale),
    ];

    // Every single-bit flip of the token's decoded bytes, re-encoded.
    for at in 0..decoded.len() {
        for bit in 0..8 {
            rows.push(
                row(
                    format!("bit flip: decoded byte {at}, bit {bit}"),
                    post_token(resign(&flipped(&decoded, at, bit)).as_bytes()),
                    S::BAD_REQUEST,
                    "the concurrency token",
                )
                .and("reload the page"),
            );
        }
    }
    // Every single-bit flip of the token's text.
    for at in 0..good_b.len() {
        for bit in 0..8 {
            rows.push(
                row(
                    format!("bit flip: text character {at}, bit {bit}"),
                    post_token(&flipped(good_b, at, bit)),
                    S::BAD_REQUEST,
                    "the concurrency token",
                )
                .and("reload the page"),
            );
        }
    }
    rows
}

/// Sends one row; `Err` says what did not hold.
async fn check(row: Row) -> Result<(), String> {
    let state = AppState::new();
    if let Some(prepare) = row.prepare {
        prepare(&state);
    }
    let app = app_for(&state, &row.setup);
    let before = state.snapshot();
    let runs = state.runs();
    let answer = send(&app, row.request).await;
    let mut wrong = Vec::new();
    if !answer.status.is_client_error() {
        wrong.push(format!("status {} is not a 4xx", answer.status));
    }
    if answer.status != row.status {
        wrong.push(format!(
            "status {} instead of {}",
            answer.status, row.status
        ));
    }
    for message in &row.messages {
        let escaped = message.replace('&', "&amp;").replace('\'', "&#39;");
        if !answer.body.contains(message.as_str()) && !answer.body.contains(&escaped) {
            wrong.push(format!("{message:?} is not in the body"));
        }
    }
    if state.runs() != runs {
        wrong.push("the handler ran".to_owned());
    }
    if state.snapshot() != before {
        wrong.push("the store changed".to_owned());
    }
    let rejection = answer.extensions.get::<Rejection>();
    let conflict = answer.extensions.get::<Conflict>();
    match row.by {
        By::Guard if rejection.is_none() => {
            wrong.push("no typed Rejection in the answer".to_owned())
        }
        By::Conflict if conflict.is_none() => wrong.push("no Conflict in the answer".to_owned()),
        By::Axum if rejection.is_some() || conflict.is_some() => {
            wrong.push("the guard refused it, not the extractor".to_owned())
        }
        _ => {}
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n    answer {}: {}",
            row.name,
            wrong.join("; "),
            answer.status,
            answer
                .body
                .split_once("<body>")
                .map_or(answer.body.as_str(), |(_, body)| body)
                .chars()
                .take(600)
                .collect::<String>()
        ))
    }
}

#[tokio::test]
async fn every_hostile_request_is_refused_before_the_handler_and_nothing_is_written() {
    let rows = catalogue().await;
    let total = rows.len();
    let named = rows
        .iter()
        .filter(|r| !r.name.starts_with("bit flip"))
        .count();
    let by_axum = rows.iter().filter(|r| r.by == By::Axum).count();
    let mut failures = Vec::new();
    for row in rows {
        if let Err(e) = check(row).await {
            failures.push(e);
        }
    }
    println!(
        "catalogue: {total} rows ({named} named, {} bit flips; {by_axum} refused by axum's Form after the guard), {} failed",
        total - named,
        failures.len()
    );
    assert!(named >= 30, "at least 30 named rows");
    assert!(
        failures.is_empty(),
        "{} of {total} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The guard stops reading a multipart body at the route's limit (axum's
/// default 2 MiB): the 8 MiB file before the token is never read whole, and
/// the answer is 413 Content Too Large (RFC 9110 §15.5.14).
#[tokio::test]
async fn a_token_after_a_file_over_the_body_limit_is_refused_at_the_limit() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let chunk = Bytes::from(vec![b'F'; 16 * 1024]);
    let chunks = 512; // 8 MiB of file
    let (body, pulled) = ChunkBody::new(
        std::iter::once(Bytes::from(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n",
        ))
        .chain(std::iter::repeat_n(chunk, chunks))
        .chain(std::iter::once(Bytes::from(format!(
            "\r\n{}--XyZ--\r\n",
            part(FIELD, &token)
        )))),
    );
    let answer = send(&app, multipart("; boundary=XyZ", Body::new(body))).await;
    answer.assert(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the submission is larger than the body limit",
    );
    let read = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        read <= 2 * 64 + 2,
        "the guard read {read} chunks of 16 KiB; it should stop at 2 MiB"
    );
    assert_eq!(state.runs(), 0);
}

/// The good requests beside the table pass, so the rows fail for their
/// fault and nothing else.
#[tokio::test]
async fn the_same_requests_done_right_pass() {
    let state = AppState::new();
    let router = app(&state);
    let token = load_token(&router, "/items/1").await;
    send(&router, post_token_chunked(&token))
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Hacked");

    let state = AppState::new();
    let router = app(&state);
    let token = load_token(&router, "/items/1").await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/items/1")
        .header("x-concurrency-token", &token)
        .header(header::CONTENT_TYPE, FORM)
        .body(Body::from("name=Header&price=3"))
        .unwrap();
    send(&router, request)
        .await
        .assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().price, 3);
}

/// A token field whose value is a good token, a raw `=` and more is an
/// extended token and must be refused, as `<token>=junk` is. It is not:
/// when the value also holds a `%` or a `+`, the guard's urlencoded scan
/// (`decode_component` in `src/guard/body.rs`) decodes it as a whole
/// `name=value` string and keeps only the part before the first `=`, so it
/// verifies `<token>` while the handler's `Form` sees `<token>=junk%41`.
/// Not a forgery (the part verified is a genuine token for this state), but
/// the catalogue's "extended token" is let through to the handler, and the
/// guard and the handler disagree on what the field holds.
#[tokio::test]
async fn a_token_extended_after_a_raw_equals_sign_is_refused() {
    let mut failures = Vec::new();
    for tail in ["=junk%41", "=x+y", "=%3D", "=AAAA%41"] {
        let state = AppState::new();
        let router = app(&state);
        let good = load_token(&router, "/items/1").await;
        // Refused without the % or +, as it should be:
        let plain = format!("{FIELD}={good}=junk&name=Hacked&price=1");
        let answer = send(&router, post(Some(FORM), plain)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        let body = format!("{FIELD}={good}{tail}&name=Hacked&price=1");
        let answer = send(&router, post(Some(FORM), body)).await;
        if answer.status != StatusCode::BAD_REQUEST || state.runs() != 0 {
            failures.push(format!(
                "{FIELD}=<token>{tail}: {} (handler runs {}, name now {:?})",
                answer.status,
                state.runs(),
                state.item(1).unwrap().name
            ));
        }
    }
    assert!(failures.is_empty(), "accepted:\n{}", failures.join("\n"));
}

/// A form submission whose token is stale must be refused whatever
/// precondition headers come with it. It is not: the guard takes the
/// `If-Match`/`If-None-Match` path whenever such a header is present and
/// there is no token *header* (`submit` in `src/guard/service.rs`:
/// `if !token_header && preconditions.any()`), and never reads the token in
/// the body. `If-None-Match: "x"` holds for any state that is not `"x"`, so
/// the stale submission overwrites the change it never saw. (`If-Match: *`
/// does the same; that one may be read as the client asking for a blind
/// write, but the body still carries a stale token.)
#[tokio::test]
async fn a_stale_form_token_is_refused_even_with_a_precondition_header() {
    let mut failures = Vec::new();
    for (name, value) in [(header::IF_NONE_MATCH, "\"x\""), (header::IF_MATCH, "*")] {
        let state = AppState::new();
        let router = app(&state);
        let token = load_token(&router, "/items/1").await;
        stale(&state);
        let before = state.snapshot();
        let mut request = post_token(token.as_bytes());
        request
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
        let answer = send(&router, request).await;
        if !answer.status.is_client_error() || state.snapshot() != before {
            failures.push(format!(
                "{name}: {value}: {} (handler runs {}, name now {:?})",
                answer.status,
                state.runs(),
                state.item(1).unwrap().name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "a stale token passed:\n{}",
        failures.join("\n")
    );
}

/// With `with_check_in_handler(true)`, a submission with `If-Match` (or
/// `If-None-Match`) and no token header takes the guard's in-process path
/// (its lock, its load, its comparison), outside the handler's transaction,
/// and no `DeferredCheck` is handed on: a handler that takes one answers 500
/// ("turn it on with with_check_in_handler(true)", though it is on), and a
/// handler that does not is checked only under the in-process lock, which
/// does not serialize two processes. Expected: a 4xx the client can act on
/// (or the precondition checked through the `DeferredCheck`), never a 500.
#[tokio::test]
async fn check_in_handler_mode_does_not_answer_a_precondition_with_500() {
    use axum::extract::State;
    use axum::response::IntoResponse;
    use concurrency_guard::DeferredCheck;

    async fn save_checked(
        State(state): State<AppState>,
        check: DeferredCheck<ItemForm>,
    ) -> axum::response::Response {
        let current = form_of(1);
        if let Err(refused) = check.check(&current) {
            return refused.into_response();
        }
        state.update(1, |item| item.name = "Written".into());
        "saved".into_response()
    }

    let state = AppState::new();
    let router = Router::new()
        .route("/items/{id}", axum::routing::get(edit).post(save_checked))
        .route_layer(guard(&state).with_check_in_handler(true))
        .with_state(state.clone());
    let token = load_token(&router, "/items/1").await;
    let mut request = post_token(token.as_bytes());
    request
        .headers_mut()
        .insert(header::IF_MATCH, HeaderValue::from_static("*"));
    let answer = send(&router, request).await;
    assert!(
        answer.status.is_client_error() || answer.status.is_success(),
        "{}: {}",
        answer.status,
        answer.body
    );
}
