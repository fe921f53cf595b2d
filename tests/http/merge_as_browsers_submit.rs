//! Merge mode reads and writes forms as browsers submit them (WHATWG HTML,
//! "constructing the entry list" and "converting an entry list to a list of
//! name-value pairs"): each test sends the bytes a browser sends and checks
//! the status, the bytes the handler received and what the store holds.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::Html;
use axum::routing::get;
use base64::Engine as _;
use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing, RenderState};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq, RenderState)]
struct Item {
    #[render_state(key)]
    id: i64,
    name: String,
    /// A `<textarea>`.
    notes: String,
    /// `<input type="checkbox" name="active" value="1">`.
    #[render_state(checkbox, with = one_when_checked)]
    active: bool,
    /// Shown in a disabled input: never submitted.
    sku: String,
}

fn one_when_checked(checked: &bool) -> &'static str {
    if *checked { "1" } else { "" }
}

#[derive(Clone, Default)]
struct App {
    items: Arc<Mutex<HashMap<i64, Item>>>,
    /// The body each handler run received, byte for byte.
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FromRequestParts<App> for Item {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        app.items
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(StatusCode::NOT_FOUND)
    }
}

async fn edit(Guarded(item): Guarded<Item>) -> Html<String> {
    Html(format!(
        r#"<form method="post"><input name="name" value="{}"><textarea name="notes">{}</textarea><input type="checkbox" name="active" value="1"{}><input name="sku" value="{}" disabled></form>"#,
        item.name,
        item.notes,
        if item.active { " checked" } else { "" },
        item.sku,
    ))
}

/// An ordinary handler: every column from the body; a checkbox is checked
/// when its name is present; a missing field keeps its value.
async fn save(State(app): State<App>, Path(id): Path<i64>, body: Bytes) -> StatusCode {
    app.received.lock().unwrap().push(body.to_vec());
    let mut items = app.items.lock().unwrap();
    let item = items.get_mut(&id).unwrap();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if let Some(name) = get("name") {
        item.name = name;
    }
    if let Some(notes) = get("notes") {
        // The app stores line breaks as LF, as most do.
        item.notes = notes.replace("\r\n", "\n");
    }
    if let Some(sku) = get("sku") {
        item.sku = sku;
    }
    item.active = get("active").is_some();
    StatusCode::SEE_OTHER
}

fn lamp(id: i64) -> Item {
    Item {
        id,
        name: "Lamp".into(),
        notes: "\nline1\nline2".into(),
        active: true,
        sku: "L-1".into(),
    }
}

fn setup() -> (Router, App) {
    let app = App::default();
    for id in [1, 2] {
        app.items.lock().unwrap().insert(id, lamp(id));
    }
    let layer = ConcurrencyGuardLayer::<Item, App>::new(
        KeyRing::new(1, Key::from_bytes(&[8; 32]).unwrap()),
        app.clone(),
    )
    .with_merge(true);
    let router = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route_layer(layer)
        .with_state(app.clone());
    (router, app)
}

async fn open(router: &Router, id: i64) -> String {
    let res = router
        .clone()
        .oneshot(
            Request::get(format!("/items/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.into_body().collect().await.unwrap().to_bytes();
    common::token_in(std::str::from_utf8(&html).unwrap()).unwrap()
}

/// POSTs `body` (the exact bytes) to item 1, the token first.
async fn post(router: &Router, token: &str, body: &[u8]) -> (StatusCode, String) {
    let mut bytes = format!("_concurrency_token={token}&").into_bytes();
    bytes.extend_from_slice(body);
    let res = router
        .clone()
        .oneshot(
            Request::post("/items/1")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn last_received(app: &App) -> String {
    let received = app.received.lock().unwrap();
    String::from_utf8(received.last().unwrap().clone()).unwrap()
}

fn item(app: &App) -> Item {
    app.items.lock().unwrap()[&1].clone()
}

#[tokio::test]
async fn an_untouched_textarea_comes_back_with_crlf_and_is_not_an_edit() {
    let (router, app) = setup();
    let a = open(&router, 1).await;
    let b = open(&router, 1).await;
    // A changes the notes.
    let (status, _) = post(&router, &a, b"name=Lamp&notes=moved%0D%0Ahere&active=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // B changes only the name. The textarea showed "\nline1\nline2": the
    // parser dropped the leading newline and the browser sends CRLF.
    let (status, body) = post(
        &router,
        &b,
        b"name=Floor+lamp&notes=line1%0D%0Aline2&active=1",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        last_received(&app),
        format!("_concurrency_token={b}&name=Floor+lamp&notes=moved%0D%0Ahere&active=1"),
        "A's notes, as a browser sends them; everything else as B sent it"
    );
    let item = item(&app);
    assert_eq!(item.name, "Floor lamp");
    assert_eq!(item.notes, "moved\nhere", "A's change was not reverted");
}

#[tokio::test]
async fn an_unchecked_box_is_left_out_of_the_merged_body() {
    let (router, app) = setup();
    let a = open(&router, 1).await;
    let b = open(&router, 1).await;
    // A unchecks the box: the browser leaves `active` out.
    let (status, _) = post(&router, &a, b"name=Lamp&notes=line1%0D%0Aline2").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!item(&app).active);
    // B, whose page showed it checked, changes only the name.
    let (status, body) = post(
        &router,
        &b,
        b"name=Floor+lamp&notes=line1%0D%0Aline2&active=1",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let received = last_received(&app);
    assert_eq!(
        received,
        format!("_concurrency_token={b}&name=Floor+lamp&notes=line1%0D%0Aline2")
    );
    assert!(!received.contains("active"), "never `active=`");
    let item = item(&app);
    assert!(!item.active, "A's unchecking was not reverted");
    assert_eq!(item.name, "Floor lamp");
}

#[tokio::test]
async fn a_box_checked_by_someone_else_is_added_as_a_browser_would() {
    let (router, app) = setup();
    app.items.lock().unwrap().get_mut(&1).unwrap().active = false;
    let a = open(&router, 1).await;
    let b = open(&router, 1).await;
    let (status, _) = post(&router, &a, b"name=Lamp&notes=line1%0D%0Aline2&active=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = post(&router, &b, b"name=Desk+lamp&notes=line1%0D%0Aline2").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(last_received(&app).ends_with("&active=1"));
    assert!(item(&app).active);
    assert_eq!(item(&app).name, "Desk lamp");
}

#[tokio::test]
async fn a_disabled_input_is_not_submitted_and_not_an_edit() {
    let (router, app) = setup();
    let b = open(&router, 1).await;
    // Someone else changes the disabled field.
    app.items.lock().unwrap().get_mut(&1).unwrap().sku = "L-2".into();
    // B's browser never sends the disabled `sku`.
    let (status, body) = post(
        &router,
        &b,
        b"name=Floor+lamp&notes=line1%0D%0Aline2&active=1",
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let received = last_received(&app);
    assert!(
        !received.contains("&sku="),
        "left out, as a browser does: {received}"
    );
    let item = item(&app);
    assert_eq!(item.sku, "L-2");
    assert_eq!(item.name, "Floor lamp");
}

#[tokio::test]
async fn bytes_that_are_not_utf8_reach_the_handler_as_sent() {
    let (router, app) = setup();
    let a = open(&router, 1).await;
    let b = open(&router, 1).await;
    let (status, _) = post(&router, &a, b"name=Lamp&notes=moved&active=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A windows-1252 page: "Café" is sent as `Caf%E9`.
    let (status, body) = post(&router, &b, b"name=Caf%E9&notes=line1%0D%0Aline2&active=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let received = app.received.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        received,
        format!("_concurrency_token={b}&name=Caf%E9&notes=moved&active=1").into_bytes()
    );
    assert_eq!(item(&app).notes, "moved");
}

/// The per-input digests and fingerprint in a token (format version 2).
fn digests_of(token: &str) -> (Vec<u8>, Vec<u8>) {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap();
    let n = usize::from(bytes[45]);
    (bytes[21..37].to_vec(), bytes[46..46 + 8 * n].to_vec())
}

#[tokio::test]
async fn equal_values_in_two_records_give_unrelated_digests() {
    let (router, app) = setup();
    assert_eq!(
        Item {
            id: 2,
            ..item(&app)
        },
        app.items.lock().unwrap()[&2]
    );
    let (one, two) = (open(&router, 1).await, open(&router, 2).await);
    let ((f1, i1), (f2, i2)) = (digests_of(&one), digests_of(&two));
    assert_ne!(f1, f2, "fingerprints");
    assert_eq!(i1.len(), 8 * 4);
    for (x, y) in i1.chunks(8).zip(i2.chunks(8)) {
        assert_ne!(x, y, "a per-input digest shared by two records");
    }
    // Item 2's token is not item 1's.
    let (status, body) = post(&router, &two, b"name=Lamp&notes=line1%0D%0Aline2&active=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("belongs to another record"), "{body}");
}
