//! A form shown again after a failed submission (a 4xx HTML answer) carries a
//! fresh token for the data as it is now; a 2xx answer to a write does not.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use concurrency_guard::{ConcurrencyGuardLayer, ConcurrencyToken, Key, KeyRing, RenderState};
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Clone, RenderState)]
struct Note {
    #[render_state(key)]
    id: i64,
    text: String,
}

#[derive(Clone, Default)]
struct App(Arc<Mutex<String>>);

impl FromRequestParts<App> for Note {
    type Rejection = StatusCode;
    async fn from_request_parts(_: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        Ok(Note {
            id: 1,
            text: app.0.lock().unwrap().clone(),
        })
    }
}

const FORM: &str = r#"<form method="post"><input name="text"></form>"#;

async fn page() -> Html<&'static str> {
    Html(FORM)
}

#[derive(Deserialize)]
struct Edit {
    text: String,
}

async fn save(State(app): State<App>, token: ConcurrencyToken, Form(edit): Form<Edit>) -> Response {
    if edit.text.is_empty() {
        // Shown again with an error: the guard embeds a fresh token.
        return (StatusCode::UNPROCESSABLE_ENTITY, Html(FORM)).into_response();
    }
    if edit.text == "echo" {
        // The handler may also take the token for the data as it is now.
        return (StatusCode::ACCEPTED, token.value().to_owned()).into_response();
    }
    *app.0.lock().unwrap() = edit.text;
    (StatusCode::OK, Html(FORM)).into_response()
}

fn router() -> (Router, App) {
    let app = App::default();
    let layer = ConcurrencyGuardLayer::<Note, _>::new(
        KeyRing::new(1, Key::from_bytes(&[6; 32]).unwrap()),
        app.clone(),
    );
    let router = Router::new()
        .route("/notes/1", get(page).post(save))
        .route_layer(layer)
        .with_state(app.clone());
    (router, app)
}

async fn call(router: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn post(token: &str, text: &str) -> Request<Body> {
    Request::post("/notes/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_concurrency_token={token}&text={text}"
        )))
        .unwrap()
}

#[tokio::test]
async fn a_failed_submission_shows_the_form_with_a_fresh_token() {
    let (router, app) = router();
    let (_, page) = call(
        &router,
        Request::get("/notes/1").body(Body::empty()).unwrap(),
    )
    .await;
    let token = common::token_in(&page).unwrap();
    let (status, page) = call(&router, post(&token, "")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fresh = common::token_in(&page).expect("the redisplayed form carries a token");
    let (status, _) = call(&router, post(&fresh, "saved")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(*app.0.lock().unwrap(), "saved");
}

#[tokio::test]
async fn a_successful_write_gets_no_token_and_the_handler_can_ask_for_one() {
    let (router, _) = router();
    let (_, page) = call(
        &router,
        Request::get("/notes/1").body(Body::empty()).unwrap(),
    )
    .await;
    let token = common::token_in(&page).unwrap();
    let (status, echoed) = call(&router, post(&token, "echo")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(echoed.len() > 40, "a token: {echoed}");
    let (status, page) = call(&router, post(&echoed, "written")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        common::token_in(&page),
        None,
        "no token for data the write may have changed"
    );
}
