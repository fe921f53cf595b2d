//! Newcomer defect 5: a page the guard does not render (a list whose rows
//! carry `Tokens::issue` tokens) loads the guard's htmx script from a route
//! the app mounts once, so htmx 2 shows a stale delete's 409.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use concurrency_guard::{HTMX_SCRIPT_PATH, htmx_script};

use crate::common;

#[tokio::test]
async fn the_htmx_script_is_served_where_the_app_mounts_it() {
    assert_eq!(HTMX_SCRIPT_PATH, "/concurrency-guard/htmx.js");
    let app = Router::new().route(HTMX_SCRIPT_PATH, get(htmx_script));
    let answer = common::send(
        &app,
        Request::get(HTMX_SCRIPT_PATH).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header(header::CONTENT_TYPE.as_str()),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    // What makes htmx 2 swap the guard's answers.
    assert!(answer.body.contains("htmx:beforeSwap"), "{}", answer.body);
    assert!(
        answer.body.contains("x-concurrency-guard"),
        "{}",
        answer.body
    );
}
