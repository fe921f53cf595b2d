//! htmx (issue 17): the guard's answers to htmx requests are shown where the
//! submitted form was (htmx's `HX-Retarget` / `HX-Reswap` response headers),
//! a successful htmx write hands the page a token for the data as saved, and
//! a re-render that carries its form's token keeps it.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use crate::common::{
    self, AppState, FIELD, app, form_request, get_page, load_token, post_item, send, urlencode,
};

/// An htmx request: `HX-Request: true`, as htmx 2 and 4 send it.
fn htmx(mut request: Request<Body>) -> Request<Body> {
    request
        .headers_mut()
        .insert("hx-request", "true".parse().unwrap());
    request
}

fn htmx_post(token: &str, name: &str, price: i64) -> Request<Body> {
    let price = price.to_string();
    htmx(form_request(
        Method::POST,
        "/items/1",
        urlencode(&[(FIELD, token), ("name", name), ("price", &price)]),
    ))
}

/// The stale form's htmx save: 409, an HTML fragment (no page around it),
/// to be swapped in place of the form that sent it (`HX-Retarget: this`,
/// `HX-Reswap: outerHTML`, per htmx's response headers), not into a boosted
/// page's `<body>`; marked as the guard's so htmx 2's script swaps it.
#[tokio::test]
async fn a_conflict_replaces_the_submitting_form() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());
    let answer = send(&app, htmx_post(&token, "Mine", 5)).await;
    answer.assert(StatusCode::CONFLICT, "Someone else changed this record");
    assert_eq!(answer.header("hx-retarget"), Some("this"));
    assert_eq!(answer.header("hx-reswap"), Some("outerHTML"));
    assert_eq!(answer.header("x-concurrency-guard"), Some("conflict"));
    assert!(
        !answer.body.contains("<html") && !answer.body.contains("<body"),
        "a fragment: {}",
        answer.body
    );
    assert_eq!(state.item(1).unwrap().name, "Theirs");
    assert_eq!(state.runs(), 0);
}

/// A refusal for a missing token is an HTML fragment to htmx too, with the
/// same headers: htmx 4 swaps 4xx answers, and problem+json would put raw
/// JSON in the page. (Without `HX-Request` a body-less DELETE still gets
/// problem+json: an API client.)
#[tokio::test]
async fn a_refusal_is_an_html_fragment_for_htmx() {
    let state = AppState::new();
    let app = app(&state);
    let bare = htmx(Request::delete("/items/1").body(Body::empty()).unwrap());
    let answer = send(&app, bare).await;
    assert_eq!(answer.status, StatusCode::PRECONDITION_REQUIRED);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        answer.headers
    );
    assert!(answer.body.contains(r#"role="alert""#), "{}", answer.body);
    assert_eq!(answer.header("hx-retarget"), Some("this"));
    assert_eq!(answer.header("hx-reswap"), Some("outerHTML"));
    assert_eq!(answer.header("x-concurrency-guard"), Some("refused"));
    // htmx 2 sends a DELETE with an empty urlencoded body: 400, a fragment.
    let empty = htmx(form_request(Method::DELETE, "/items/1", ""));
    let answer = send(&app, empty).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.header("x-concurrency-guard"), Some("refused"));
    assert!(state.item(1).is_some());

    let api = send(
        &app,
        Request::delete("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(api.header("content-type"), Some("application/problem+json"));
    assert_eq!(api.header("hx-retarget"), None);
}

/// Two htmx saves in a row from one page: the first answer carries a token
/// for the data as saved (`x-concurrency-token`), and the second save, made
/// with it, passes. With the page's original token it would be a conflict
/// with the user's own first save.
#[tokio::test]
async fn an_htmx_save_hands_back_a_token_for_the_data_as_saved() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let first = send(&app, htmx_post(&token, "First", 11)).await;
    first.assert(StatusCode::OK, "saved item 1");
    let fresh = first
        .header("x-concurrency-token")
        .expect("a fresh token")
        .to_owned();
    assert_ne!(fresh, token);
    let second = send(&app, htmx_post(&fresh, "Second", 12)).await;
    second.assert(StatusCode::OK, "saved item 1");
    assert_eq!(state.item(1).unwrap().name, "Second");
    assert_eq!(state.item(1).unwrap().price, 12);
    // The page's original token is stale: the data changed since.
    let stale = send(&app, htmx_post(&token, "Third", 13)).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(state.item(1).unwrap().name, "Second");
}

/// The fresh token describes the record as the handler left it, not as it
/// was before: a token for the state before the save would let the next
/// save pass over nothing, but a third party's change made *after* the
/// save is still caught.
#[tokio::test]
async fn the_fresh_token_catches_a_later_change() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let first = send(&app, htmx_post(&token, "Mine", 11)).await;
    let fresh = first.header("x-concurrency-token").unwrap().to_owned();
    state.update(1, |item| item.price = 99);
    let second = send(&app, htmx_post(&fresh, "Mine again", 12)).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(state.item(1).unwrap().price, 99);
}

/// No fresh token where it does not belong: a plain form post (the browser
/// loads the next page, which gets its own), a refused or failed write, a
/// deleted record, or with htmx support turned off.
#[tokio::test]
async fn no_fresh_token_outside_successful_htmx_writes() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    let plain = post_item(&app, "/items/1", &token, "Plain", 3).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.header("x-concurrency-token"), None);
    // A conflict carries no header (its fragment has its own fresh token).
    let stale = send(&app, htmx_post(&token, "Stale", 4)).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.header("x-concurrency-token"), None);
    // A delete: the record is gone, the loader refuses, no token.
    let token = load_token(&app, "/items/1").await;
    let delete = htmx(
        Request::delete("/items/1")
            .header("x-concurrency-token", &token)
            .body(Body::empty())
            .unwrap(),
    );
    let deleted = send(&app, delete).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.header("x-concurrency-token"), None);

    let state = AppState::new();
    let off = common::app_with(&state, common::guard(&state).with_htmx(false));
    let token = load_token(&off, "/items/1").await;
    let saved = send(&off, htmx_post(&token, "Off", 1)).await;
    assert_eq!(saved.status, StatusCode::OK);
    assert_eq!(saved.header("x-concurrency-token"), None);
}

/// A successful htmx write whose answer is HTML with a post form (the form
/// shown again, saved) gets the fresh token embedded in it.
#[tokio::test]
async fn a_form_shown_again_after_an_htmx_save_gets_the_fresh_token() {
    use axum::Router;
    use axum::extract::{Form, Path, State};
    use axum::response::Html;
    use axum::routing::get;
    use concurrency_guard::Guarded;

    async fn save_and_show(
        State(state): State<AppState>,
        Path(id): Path<i64>,
        Form(form): Form<common::SaveForm>,
    ) -> Html<String> {
        state.update(id, |item| {
            item.name = form.name.clone();
            item.price = form.price;
        });
        let item = state.item(id).unwrap();
        Html(format!(
            r#"<form method="post" hx-post="/items/{id}" hx-swap="outerHTML"><input name="name" value="{}"><input name="price" value="{}"></form>"#,
            item.name, item.price
        ))
    }
    async fn edit(Guarded(item): Guarded<common::ItemForm>) -> Html<String> {
        Html(common::render_edit(&item))
    }
    let state = AppState::new();
    let app = Router::new()
        .route("/items/{id}", get(edit).post(save_and_show))
        .route_layer(common::guard(&state))
        .with_state(state.clone());
    let token = load_token(&app, "/items/1").await;
    let first = send(&app, htmx_post(&token, "Once", 1)).await;
    assert_eq!(first.status, StatusCode::OK);
    let embedded = first.token();
    assert_eq!(Some(embedded.as_str()), first.header("x-concurrency-token"));
    let second = send(&app, htmx_post(&embedded, "Twice", 2)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(state.item(1).unwrap().name, "Twice");
}

/// A re-render of the open form (a dependent select's `hx-get` with
/// `hx-include` of the form) carries the form's token in its query string:
/// the page it gets keeps that token, so a change another user saved in
/// between is not absorbed: the next save is a conflict, not an overwrite.
#[tokio::test]
async fn a_rerender_with_the_token_in_the_query_keeps_it() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.price = 77);
    let query = urlencode(&[(FIELD, &token), ("name", "Typing"), ("price", "5")]);
    let rerender = send(
        &app,
        htmx(
            Request::get(format!("/items/1?{query}"))
                .body(Body::empty())
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(rerender.status, StatusCode::OK);
    assert_eq!(
        rerender.token(),
        token,
        "the carried token, not a fresh one"
    );
    let save = send(&app, htmx_post(&rerender.token(), "Typing", 5)).await;
    assert_eq!(save.status, StatusCode::CONFLICT, "{}", save.body);
    assert_eq!(state.item(1).unwrap().price, 77);
}

/// The same with the token in the `x-concurrency-token` header (an element
/// whose `hx-headers` carry it): a re-render, not an early-warning check
/// (which says so with `x-concurrency-guard: check`).
#[tokio::test]
async fn a_rerender_with_the_token_in_the_header_keeps_it() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());
    let rerender = send(
        &app,
        htmx(
            Request::get("/items/1")
                .header("x-concurrency-token", &token)
                .body(Body::empty())
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(rerender.status, StatusCode::OK, "{}", rerender.body);
    assert!(rerender.body.contains("<form"), "the page, not a check");
    assert_eq!(rerender.token(), token);
    // The check request is still answered without the handler.
    let check = send(
        &app,
        Request::get("/items/1")
            .header("x-concurrency-token", &token)
            .header("x-concurrency-guard", "check")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(check.status, StatusCode::CONFLICT);
    assert!(check.body.is_empty());
}

/// A token of another record, or one that does not verify, is not kept:
/// the page gets a fresh token for its own record (no refusal: a GET).
#[tokio::test]
async fn a_token_of_another_record_is_not_carried() {
    let state = AppState::new();
    let app = app(&state);
    let other = load_token(&app, "/items/2").await;
    for carried in [other.as_str(), "not-a-token"] {
        let page = get_page(&app, &format!("/items/1?{FIELD}={carried}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_ne!(page.token(), carried);
        let save = post_item(&app, "/items/1", &page.token(), "Ok", 1).await;
        assert_eq!(save.status, StatusCode::OK, "{}", save.body);
    }
}

/// One page per route, the item's form rendered by `page` (its token and
/// script embedded by the guard).
fn htmx_pages(state: &AppState) -> axum::Router {
    use axum::response::Html;
    use axum::routing::get;
    use concurrency_guard::Guarded;
    async fn boosted(Guarded(item): Guarded<common::ItemForm>) -> Html<String> {
        Html(format!(
            r#"<body hx-boost="true"><form method="post" action="/boosted/{id}"><input name="name"></form></body>"#,
            id = item.id
        ))
    }
    async fn buttons(Guarded(item): Guarded<common::ItemForm>) -> Html<String> {
        Html(format!(
            r#"<ul><li>Lamp <button hx-delete="/buttons/{id}">Delete</button></li></ul>"#,
            id = item.id
        ))
    }
    async fn late(Guarded(item): Guarded<common::ItemForm>) -> Html<String> {
        Html(format!(
            r#"<form method="post"><input name="name"></form><div hx-get="/late/{id}" hx-trigger="every 5s">Lamp</div>"#,
            id = item.id
        ))
    }
    axum::Router::new()
        .route("/boosted/{id}", get(boosted))
        .route("/buttons/{id}", get(buttons))
        .route("/late/{id}", get(late))
        .route_layer(common::guard(state))
        .with_state(state.clone())
}

/// The script tag for the page at `path`.
fn script_tag(path: &str) -> String {
    format!(
        r#"<script src="{path}?concurrency-guard=htmx.js&amp;v={}" data-field="{FIELD}" defer></script>"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// Pages that use htmx (an `hx-` attribute, `hx-boost` among them) get the
/// htmx script after the first token embedded, hidden input or
/// `hx-headers`; a page without htmx gets none. The guard serves it
/// without loading anything.
#[tokio::test]
async fn the_htmx_script_is_embedded_where_htmx_is_used_and_served() {
    let state = AppState::new();
    let app = app(&state);
    let page = get_page(&app, "/items/1").await;
    assert!(page.body.contains(FIELD), "{}", page.body);
    assert!(
        !page.body.contains("<script"),
        "no htmx, no script: {}",
        page.body
    );

    let pages = htmx_pages(&state);
    // A boosted form: the script right after its hidden input.
    let boosted = get_page(&pages, "/boosted/1").await;
    let token = boosted.token();
    let hidden = format!(r#"<input type="hidden" name="{FIELD}" value="{token}">"#);
    assert!(
        boosted
            .body
            .contains(&format!("{hidden}{}", script_tag("/boosted/1"))),
        "{}",
        boosted.body
    );
    // Only hx-delete buttons: the token in hx-headers, the script after
    // the button.
    let buttons = get_page(&pages, "/buttons/1").await;
    assert_eq!(buttons.status, StatusCode::OK);
    let at = buttons
        .body
        .find(&script_tag("/buttons/1"))
        .unwrap_or_else(|| panic!("{}", buttons.body));
    let headers_at = buttons
        .body
        .find("hx-headers=")
        .expect("the token in hx-headers");
    assert!(headers_at < at, "{}", buttons.body);
    assert!(
        buttons.body[..at].ends_with("</button>"),
        "{}",
        buttons.body
    );
    // A plain post form first, htmx later: the script before the first
    // htmx element, after the token; once.
    let late = get_page(&pages, "/late/1").await;
    let at = late
        .body
        .find(&format!("{}<div hx-get=", script_tag("/late/1")))
        .unwrap_or_else(|| panic!("{}", late.body));
    assert!(late.body[..at].contains(FIELD), "{}", late.body);
    assert_eq!(late.body.matches("<script").count(), 1, "{}", late.body);

    let loads = state.load_count();
    let script = send(
        &app,
        Request::get("/items/1?concurrency-guard=htmx.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.body.contains("htmx:beforeSwap"));
    assert_eq!(state.load_count(), loads);

    let off = common::app_with(&state, common::guard(&state).with_htmx(false));
    let page = get_page(&off, "/items/1").await;
    assert!(!page.body.contains("<script"), "{}", page.body);
}

/// `HX-Retarget` names the element that sent the request as htmx reads it:
/// its `#id` when it has one (htmx 2 sends it in `HX-Trigger`, htmx 4 in
/// `HX-Source: tag#id`); an htmx 4 element without id is `closest tag`
/// (htmx 4 reads `this` as the element whose `hx-target` says this;
/// `closest` includes the element itself); htmx 2's `this` is the element
/// itself.
#[tokio::test]
async fn the_retarget_names_the_submitting_element() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());
    for (headers, expected) in [
        (vec![], Some("this")),
        (vec![("hx-trigger", "edit-form")], Some("#edit-form")),
        (vec![("hx-trigger", "a b\"c")], Some("this")),
        (vec![("hx-source", "form#edit-form")], Some("#edit-form")),
        (vec![("hx-source", "form")], Some("closest form")),
        // The element itself, not the row its hx-target names.
        (vec![("hx-source", "button")], Some("closest button")),
        (vec![("hx-source", "a b")], None),
    ] {
        let mut request = htmx_post(&token, "Mine", 5);
        for (name, value) in &headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let answer = send(&app, request).await;
        assert_eq!(answer.status, StatusCode::CONFLICT);
        assert_eq!(answer.header("hx-retarget"), expected, "{headers:?}");
        assert_eq!(answer.header("hx-reswap"), Some("outerHTML"));
    }
}
