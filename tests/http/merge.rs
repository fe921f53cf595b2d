//! Field-level conflicts, three-way merge of disjoint edits, and debug mode,
//! through a real Router whose handler does a plain "UPDATE every column".

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::Html;
use axum::routing::get;
use axum::{Form, Router};
use concurrency_guard::{
    ConcurrencyGuardLayer, ConflictHandling, Guarded, Key, KeyRing, RenderState,
};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Clone, Debug, PartialEq, RenderState)]
struct Item {
    #[render_state(key)]
    id: i64,
    name: String,
    price: i64,
    active: bool,
    notes: String,
    #[render_state(context)]
    stock: i64,
}

#[derive(Clone, Default)]
struct App {
    items: Arc<Mutex<HashMap<i64, Item>>>,
    writes: Arc<AtomicUsize>,
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
        r#"<form method="post"><input name="name" value="{}"><input name="price" value="{}"><input type="checkbox" name="active"{}><textarea name="notes">{}</textarea></form>"#,
        item.name,
        item.price,
        if item.active { " checked" } else { "" },
        item.notes
    ))
}

#[derive(Deserialize)]
struct Submitted {
    name: String,
    price: i64,
    #[serde(default)]
    active: Option<String>,
    notes: String,
}

/// The ordinary handler: writes every column from the body.
async fn save(State(app): State<App>, Path(id): Path<i64>, Form(f): Form<Submitted>) -> StatusCode {
    app.writes.fetch_add(1, Ordering::SeqCst);
    let mut items = app.items.lock().unwrap();
    let item = items.get_mut(&id).unwrap();
    item.name = f.name;
    item.price = f.price;
    item.active = f.active.as_deref() == Some("on");
    item.notes = f.notes;
    StatusCode::SEE_OTHER
}

fn setup(
    configure: impl Fn(ConcurrencyGuardLayer<Item, App>) -> ConcurrencyGuardLayer<Item, App>,
) -> (Router, App) {
    let app = App::default();
    app.items.lock().unwrap().insert(
        1,
        Item {
            id: 1,
            name: "Lamp".into(),
            price: 10,
            active: true,
            notes: "by the door".into(),
            stock: 5,
        },
    );
    // These tests read the guard's own conflict page (the app's page is
    // tested in `conflict_page.rs`).
    let layer = configure(
        ConcurrencyGuardLayer::new(
            KeyRing::new(1, Key::from_bytes(&[3; 32]).unwrap()),
            app.clone(),
        )
        .with_conflict_handling(ConflictHandling::StandalonePage),
    );
    let router = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route_layer(layer)
        .with_state(app.clone());
    (router, app)
}

async fn open(router: &Router) -> String {
    let res = router
        .clone()
        .oneshot(Request::get("/items/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    common::token_in(&html).unwrap()
}

/// Submits the whole form as a browser would: every field, as the user left it.
async fn submit(router: &Router, token: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("_concurrency_token", token);
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    let res = router
        .clone()
        .oneshot(
            Request::post("/items/1")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body.finish()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

const AS_RENDERED: [(&str, &str); 4] = [
    ("name", "Lamp"),
    ("price", "10"),
    ("active", "on"),
    ("notes", "by the door"),
];

fn with(changes: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    AS_RENDERED
        .iter()
        .map(|(k, v)| {
            let v = changes.iter().find(|(n, _)| n == k).map_or(*v, |(_, v)| *v);
            (*k, v.to_owned())
        })
        .collect()
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn disjoint_edits_both_survive_with_merge_on() {
    let (router, app) = setup(|l| l.with_merge(true));
    let a = open(&router).await;
    let b = open(&router).await;
    // A changes the price; B changes the name (and sends the stale price back).
    let (status, _) = submit(&router, &a, &pairs(&with(&[("price", "12")]))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = submit(&router, &b, &pairs(&with(&[("name", "Floor lamp")]))).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let item = app.items.lock().unwrap()[&1].clone();
    assert_eq!(item.name, "Floor lamp", "B's change");
    assert_eq!(
        item.price, 12,
        "A's change was not overwritten by B's stale price"
    );
    assert!(item.active);
    assert_eq!(item.notes, "by the door");
    assert_eq!(app.writes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn disjoint_edits_conflict_with_merge_off() {
    let (router, app) = setup(|l| l);
    let a = open(&router).await;
    let b = open(&router).await;
    submit(&router, &a, &pairs(&with(&[("price", "12")]))).await;
    let (status, body) = submit(&router, &b, &pairs(&with(&[("name", "Floor lamp")]))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains(r#"<th scope="row">price</th><td class="now">12</td>"#),
        "{body}"
    );
    assert!(body.contains("you did not change this"));
    // The pre-filled form carries B's name on top of A's price, not the stale 10.
    assert!(body.contains(r#"name="name" value="Floor lamp""#));
    assert!(body.contains(r#"name="price" value="12""#));
    // A bool input comes back as a checkbox, not as the text "on".
    assert!(
        body.contains(
            r#"<input type="checkbox" id="cg-field-2" name="active" value="on" checked>"#
        ),
        "{body}"
    );
    assert_eq!(app.items.lock().unwrap()[&1].name, "Lamp");
    assert_eq!(app.writes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_same_field_conflicts_and_keeps_what_the_user_typed() {
    let (router, app) = setup(|l| l.with_merge(true));
    let a = open(&router).await;
    let b = open(&router).await;
    submit(&router, &a, &pairs(&with(&[("name", "Desk lamp")]))).await;
    let (status, body) = submit(&router, &b, &pairs(&with(&[("name", "Floor <lamp>")]))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains(r#"<th scope="row">name</th><td class="now">Desk lamp</td><td class="yours">Floor &lt;lamp&gt;</td>"#), "{body}");
    assert!(
        body.contains(r#"value="Floor &lt;lamp&gt;""#),
        "B's typed value, escaped, pre-filled"
    );
    assert_eq!(app.items.lock().unwrap()[&1].name, "Desk lamp");
}

#[tokio::test]
async fn the_same_change_on_both_sides_is_no_conflict() {
    let (router, app) = setup(|l| l.with_merge(true));
    let a = open(&router).await;
    let b = open(&router).await;
    submit(&router, &a, &pairs(&with(&[("name", "Desk lamp")]))).await;
    let (status, _) = submit(
        &router,
        &b,
        &pairs(&with(&[("name", "Desk lamp"), ("notes", "on the desk")])),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let item = app.items.lock().unwrap()[&1].clone();
    assert_eq!(
        (item.name.as_str(), item.notes.as_str()),
        ("Desk lamp", "on the desk")
    );
}

#[tokio::test]
async fn a_context_change_always_conflicts() {
    let (router, app) = setup(|l| l.with_merge(true));
    let b = open(&router).await;
    app.items.lock().unwrap().get_mut(&1).unwrap().stock = 4;
    let (status, body) = submit(&router, &b, &pairs(&with(&[("name", "Floor lamp")]))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains(
            "Information shown on the form changed. It is now: <strong>stock</strong> 4."
        ),
        "{body}"
    );
    assert_eq!(app.items.lock().unwrap()[&1].name, "Lamp");
}

#[tokio::test]
async fn an_unchecked_checkbox_merges_as_a_browser_sends_it() {
    let (router, app) = setup(|l| l.with_merge(true));
    let a = open(&router).await;
    let b = open(&router).await;
    // A unchecks "active": the browser leaves the field out.
    let a_fields: Vec<_> = with(&[])
        .into_iter()
        .filter(|(k, _)| *k != "active")
        .collect();
    let (status, _) = submit(&router, &a, &pairs(&a_fields)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!app.items.lock().unwrap()[&1].active);
    // B changes the notes, from the page where the box was still checked.
    let (status, _) = submit(&router, &b, &pairs(&with(&[("notes", "moved")]))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let item = app.items.lock().unwrap()[&1].clone();
    assert!(!item.active, "B's stale checked box did not re-check it");
    assert_eq!(item.notes, "moved");
}

#[tokio::test]
async fn multipart_submissions_are_not_merged() {
    let (router, app) = setup(|l| l.with_merge(true));
    let a = open(&router).await;
    let b = open(&router).await;
    submit(&router, &a, &pairs(&with(&[("price", "12")]))).await;
    let boundary = "XyZ";
    let mut body = String::new();
    for (k, v) in [
        ("_concurrency_token", b.as_str()),
        ("name", "Floor lamp"),
        ("price", "10"),
        ("notes", "x"),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let res = router
        .clone()
        .oneshot(
            Request::post("/items/1")
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(app.items.lock().unwrap()[&1].name, "Lamp");
}

#[tokio::test]
async fn json_conflicts_list_the_overlap() {
    let (router, _) = setup(|l| l.with_merge(true));
    let a = open(&router).await;
    let b = open(&router).await;
    submit(
        &router,
        &a,
        &pairs(&with(&[("name", "Desk lamp"), ("price", "11")])),
    )
    .await;
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("_concurrency_token", &b);
    for (k, v) in with(&[("name", "Floor lamp")]) {
        body.append_pair(k, &v);
    }
    let res = router
        .clone()
        .oneshot(
            Request::post("/items/1")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .body(Body::from(body.finish()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let json: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(json["overlapping"], serde_json::json!(["name"]));
    let changed: Vec<_> = json["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        changed,
        [serde_json::json!("name"), serde_json::json!("price")]
    );
    assert!(json.get("debug").is_none(), "debug is off by default");
}

#[tokio::test]
async fn debug_mode_names_every_entry_that_differs() {
    let (router, app) = setup(|l| l.with_debug(true));
    let b = open(&router).await;
    {
        let mut items = app.items.lock().unwrap();
        let item = items.get_mut(&1).unwrap();
        item.stock = 4;
        item.notes = "gone".into();
    }
    let (status, body) = submit(&router, &b, &pairs(&with(&[]))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("Debug mode: entries that differ"), "{body}");
    assert!(
        body.contains("<tr><td>Context</td><td>stock</td><td>5</td><td>4</td></tr>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><td>Input</td><td>notes</td><td>by the door</td><td>gone</td></tr>")
    );
    // Off: no debug section.
    let (router, app) = setup(|l| l);
    let b = open(&router).await;
    app.items.lock().unwrap().get_mut(&1).unwrap().stock = 4;
    let (_, body) = submit(&router, &b, &pairs(&with(&[]))).await;
    assert!(!body.contains("Debug mode"));
}

#[tokio::test]
async fn an_unchecked_box_is_offered_unchecked_on_the_conflict_page() {
    let (router, _) = setup(|l| l);
    let a = open(&router).await;
    let b = open(&router).await;
    let a_fields: Vec<_> = with(&[("price", "11")])
        .into_iter()
        .filter(|(k, _)| *k != "active")
        .collect();
    submit(&router, &a, &pairs(&a_fields)).await;
    let (status, body) = submit(&router, &b, &pairs(&with(&[("notes", "moved")]))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // B did not touch the box: the proposal takes the saved (unchecked) state.
    assert!(
        body.contains(r#"<label><input type="checkbox" name="active" value="on"> active</label>"#),
        "{body}"
    );
    assert!(body.contains(r#"name="notes" value="moved""#));
}

/// Collects the formatted log lines written while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
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
async fn debug_mode_names_the_user_side_of_an_overlap() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .finish();
    // As in route_scoping: a second dispatcher keeps callsites first hit on
    // another test's thread from being cached as "never".
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let (router, _) = setup(|l| l.with_merge(true).with_debug(true));
    let a = open(&router).await;
    let b = open(&router).await;
    let (status, _) = submit(&router, &a, &pairs(&with(&[("price", "12")]))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // B's page showed the price as "10.0" (a template formatting it), and B
    // did not touch it: a false overlap with A's change of the price.
    let (status, _) = submit(
        &router,
        &b,
        &pairs(&with(&[("name", "Floor lamp"), ("price", "10.0")])),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("the user's side"))
        .unwrap_or_else(|| panic!("no user side logged: {log}"));
    assert!(line.contains("input=\"price\""), "{line}");
    assert!(line.contains("submitted=Some(\"10.0\")"), "{line}");
    assert!(line.contains("rendered=Some(\"10\")"), "{line}");
    assert!(line.contains("now=\"12\""), "{line}");
    assert!(
        line.contains("the same number written differently"),
        "{line}"
    );
    // Only the overlapping input: B's name is B's alone.
    assert_eq!(log.matches("the user's side").count(), 1, "{log}");
}

/// The handler of a form that stays on the page after an htmx save
/// (`hx-swap="none"`, a status line elsewhere): 200, not a redirect.
async fn save_in_place(state: State<App>, path: Path<i64>, form: Form<Submitted>) -> StatusCode {
    save(state, path, form).await;
    StatusCode::OK
}

/// Submits the form as htmx does (`HX-Request: true`); the answer's status
/// and its `x-concurrency-token`, if any.
async fn submit_htmx(
    router: &Router,
    token: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Option<String>) {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("_concurrency_token", token);
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    let res = router
        .clone()
        .oneshot(
            Request::post("/items/1")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("hx-request", "true")
                .body(Body::from(body.finish()))
                .unwrap(),
        )
        .await
        .unwrap();
    let token = res
        .headers()
        .get("x-concurrency-token")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), token)
}

/// Merge mode and a form that stays on the page: B's stale save is merged
/// with A's change, but B's form still shows A's field as it was. A token
/// for the record as saved would describe values B's form does not hold, and
/// B's next save would send A's field back as it was over A's change, with
/// nothing to catch it: a lost update (found by a newcomer in Chromium with
/// htmx 2 and 4). The token handed back describes the form as it shows, so
/// B's next saves are merged again, and changing that field is a conflict.
#[tokio::test]
async fn a_merged_htmx_save_hands_back_a_token_for_the_form_as_it_shows() {
    let (_, app) = setup(|l| l);
    let layer = ConcurrencyGuardLayer::<Item, App>::new(
        KeyRing::new(1, Key::from_bytes(&[3; 32]).unwrap()),
        app.clone(),
    )
    .with_merge(true);
    let router = Router::new()
        .route("/items/{id}", get(edit).post(save_in_place))
        .route_layer(layer)
        .with_state(app.clone());
    let a = open(&router).await;
    let b = open(&router).await;
    // A changes the price; B, from the stale page, changes the notes.
    let (status, _) = submit_htmx(&router, &a, &pairs(&with(&[("price", "12")]))).await;
    assert_eq!(status, StatusCode::OK);
    let b_form = with(&[("notes", "on the shelf")]);
    let (status, fresh) = submit_htmx(&router, &b, &pairs(&b_form)).await;
    assert_eq!(status, StatusCode::OK, "disjoint: merged");
    let fresh = fresh.expect("a token for the form as it shows");
    // B saves again from the same page, changing the notes once more: the
    // form still shows price 10, which B did not touch.
    let b_again = with(&[("notes", "on the top shelf")]);
    let (status, again) = submit_htmx(&router, &fresh, &pairs(&b_again)).await;
    assert_eq!(status, StatusCode::OK, "merged again, not B's own conflict");
    let item = app.items.lock().unwrap()[&1].clone();
    assert_eq!(item.price, 12, "A's change survives B's second save");
    assert_eq!(item.notes, "on the top shelf", "B's second save");
    // And a third, with the token of the second.
    let third = with(&[("notes", "gone"), ("name", "Desk lamp")]);
    let (status, _) = submit_htmx(&router, &again.unwrap(), &pairs(&third)).await;
    assert_eq!(status, StatusCode::OK);
    let item = app.items.lock().unwrap()[&1].clone();
    assert_eq!((item.price, item.name.as_str()), (12, "Desk lamp"));
    // B now changes the price the form shows as 10, over A's 12: both
    // changed it, so that is a conflict, not a silent overwrite.
    let overwrite = with(&[("price", "11")]);
    let (status, _) = submit_htmx(&router, &fresh, &pairs(&overwrite)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.items.lock().unwrap()[&1].price, 12);
    // Without a merge an htmx save still gets its fresh token.
    let c = open(&router).await;
    let (status, fresh) = submit_htmx(&router, &c, &pairs(&b_again)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(fresh.is_some(), "an unmerged htmx save gets a fresh token");
}
