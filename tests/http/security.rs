//! Issue 22 (security review): what the guard shows to whom, cross-origin
//! submissions, and a deferred check the handler forgot.

use crate::common::{self, AppState, FIELD, ItemForm};

use axum::Router;
use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use concurrency_guard::{
    ConcurrencyGuardLayer, DeferredCheck, Guarded, Rejection, UncheckedSubmission,
};
use http::{Method, Request, StatusCode, header};

const FORM_PAGE: &str = r#"<html><body><form method="post"><input name="name" value="x"><button>Save</button></form></body></html>"#;

/// A route whose GET answers `status` with a page holding a post form, and
/// whose POST (after the guard let it through) answers the same.
fn answering(state: &AppState, status: StatusCode) -> Router {
    let page = move |Guarded(_): Guarded<ItemForm>| async move { (status, Html(FORM_PAGE)) };
    let post = move || async move { (status, Html(FORM_PAGE)) };
    Router::new()
        .route("/items/{id}", get(page).post(post))
        .route_layer(common::guard(state))
        .with_state(state.clone())
}

/// Item 3: a token only in a page the application served (2xx). A 403 or
/// 404 page with a form must not hand out a token for the record.
#[tokio::test]
async fn only_successful_pages_get_a_token() {
    let state = AppState::new();
    for status in [
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
        StatusCode::UNAUTHORIZED,
    ] {
        let page = common::get_page(&answering(&state, status), "/items/1").await;
        assert_eq!(page.status, status);
        assert_eq!(
            common::token_count(&page.body),
            0,
            "{status}: {}",
            page.body
        );
    }
    let page = common::get_page(&answering(&state, StatusCode::OK), "/items/1").await;
    assert_eq!(common::token_count(&page.body), 1, "{}", page.body);
}

/// Item 3, after a write: a handler that shows the form again because the
/// input was wrong (422) gets the token; one that refuses the client (403)
/// gets none.
#[tokio::test]
async fn a_refusal_of_the_client_after_a_write_gets_no_token() {
    let state = AppState::new();
    let token = common::load_token(&common::app(&state), "/items/1").await;
    for (status, tokens) in [
        (StatusCode::FORBIDDEN, 0),
        (StatusCode::NOT_FOUND, 0),
        (StatusCode::UNPROCESSABLE_ENTITY, 1),
    ] {
        let app = answering(&state, status);
        let answer = common::post_form(&app, "/items/1", &[(FIELD, &token), ("name", "x")]).await;
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(common::token_count(&answer.body), tokens, "{status}");
    }
}

fn post_from(headers: &[(&'static str, &'static str)], token: &str) -> Request<Body> {
    let mut req = common::form_request(
        Method::POST,
        "/items/1",
        common::urlencode(&[(FIELD, token), ("name", "forged"), ("price", "1")]),
    );
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    req
}

/// Item 11: a browser's cross-site submission is refused with 403 before
/// the handler, as Go's `CrossOriginProtection` decides; same-origin
/// browser posts and clients that send neither header pass.
#[tokio::test]
async fn cross_site_submissions_are_refused() {
    let host = ("host", "shop.example");
    for headers in [
        &[host, ("sec-fetch-site", "cross-site")][..],
        &[host, ("sec-fetch-site", "same-site")],
        &[host, ("origin", "https://evil.example")],
        &[host, ("origin", "null")],
    ] {
        let state = AppState::new();
        let app = common::app(&state);
        let token = common::load_token(&app, "/items/1").await;
        let answer = common::send(&app, post_from(headers, &token)).await;
        answer.assert(StatusCode::FORBIDDEN, "cross-origin request refused");
        assert!(matches!(
            answer.extensions.get::<Rejection>(),
            Some(Rejection::CrossOrigin { .. })
        ));
        assert_eq!(state.runs(), 0, "{headers:?}: the handler did not run");
        assert_eq!(
            state.item(1).unwrap().name,
            common::AppState::new().item(1).unwrap().name
        );
    }
    for headers in [
        &[host, ("sec-fetch-site", "same-origin")][..],
        &[host, ("sec-fetch-site", "none")],
        &[host, ("origin", "https://shop.example")],
        &[host],
        &[],
    ] {
        let state = AppState::new();
        let app = common::app(&state);
        let token = common::load_token(&app, "/items/1").await;
        let answer = common::send(&app, post_from(headers, &token)).await;
        answer.assert(StatusCode::OK, "saved item 1");
        assert_eq!(state.runs(), 1, "{headers:?}");
    }
}

/// Item 11: the protection can be switched off, and other origins trusted.
#[tokio::test]
async fn cross_origin_protection_is_configurable() {
    let cross = [
        ("host", "shop.example"),
        ("origin", "https://admin.example"),
    ];
    let sec = [
        ("host", "shop.example"),
        ("origin", "https://admin.example"),
        ("sec-fetch-site", "same-site"),
    ];
    for layer in [
        |s: &AppState| common::guard(s).with_cross_origin_protection(false),
        |s: &AppState| common::guard(s).with_trusted_origin("https://admin.example"),
    ] {
        for headers in [&cross[..], &sec[..]] {
            let state = AppState::new();
            let app = common::app_with(&state, layer(&state));
            let token = common::load_token(&app, "/items/1").await;
            let answer = common::send(&app, post_from(headers, &token)).await;
            answer.assert(StatusCode::OK, "saved item 1");
        }
    }
    let state = AppState::new();
    let layer = common::guard(&state).with_trusted_origin("https://admin.example");
    let app = common::app_with(&state, layer);
    let token = common::load_token(&app, "/items/1").await;
    let other = [
        ("host", "shop.example"),
        ("origin", "https://other.example"),
    ];
    let answer = common::send(&app, post_from(&other, &token)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // A JSON client gets problem+json.
    let mut req = post_from(&[("sec-fetch-site", "cross-site")], &token);
    req.headers_mut()
        .insert(header::ACCEPT, "application/json".parse().unwrap());
    let answer = common::send(&app, req).await;
    answer.assert(StatusCode::FORBIDDEN, "urn:concurrency-guard:cross-origin");
}

fn deferred_app(state: &AppState, checks: bool) -> Router {
    let save = move |check: DeferredCheck<ItemForm>| async move {
        if checks {
            let current = ItemForm {
                id: 1,
                name: "unused".into(),
                price: 0,
                views: 0,
                stock: 0,
            };
            // The outcome does not matter here: `check` was called.
            let _ = check.check(&current);
        }
        "written".into_response()
    };
    let refuse = |_: DeferredCheck<ItemForm>| async { StatusCode::UNPROCESSABLE_ENTITY };
    Router::new()
        .route("/items/{id}", get(common::edit).post(save))
        .route("/items/{id}/refuse", get(common::edit).post(refuse))
        .route_layer(
            ConcurrencyGuardLayer::<ItemForm, _>::new(common::keys(), state.clone())
                .with_check_in_handler(true),
        )
        .with_state(state.clone())
}

/// Item 12: a handler that answers a success without `DeferredCheck::check`
/// does not pass for checked: the answer carries `UncheckedSubmission` (and
/// the guard logs an error). One that calls it, or refuses before writing,
/// carries nothing.
#[tokio::test]
async fn a_success_without_the_deferred_check_is_flagged() {
    let state = AppState::new();
    let unchecked: fn(&Response) -> Option<UncheckedSubmission> =
        |r| r.extensions().get::<UncheckedSubmission>().cloned();
    for (checks, path, flagged) in [
        (false, "/items/1", true),
        (true, "/items/1", false),
        (false, "/items/1/refuse", false),
    ] {
        let app = deferred_app(&state, checks);
        let token = common::load_token(&app, "/items/1").await;
        let req = common::form_request(
            Method::POST,
            path,
            common::urlencode(&[(FIELD, &token), ("name", "x"), ("price", "1")]),
        );
        let res = tower::ServiceExt::oneshot(app, req).await.unwrap();
        let found = unchecked(&res);
        assert_eq!(found.is_some(), flagged, "checks: {checks}, {path}");
        if let Some(found) = found {
            assert_eq!(found.form, "ItemForm");
            assert!(found.to_string().contains("DeferredCheck::check"));
        }
    }
}
