//! A stale delete's answer says the record was not deleted and what changed,
//! never what the user "entered": a delete enters nothing (htmx 2 sends a
//! DELETE with an empty `application/x-www-form-urlencoded` body, its
//! `methodsThatUseUrlParams`), whatever the answer (htmx's inline notice,
//! the app's page, the guard's own page). A stale save still shows what the
//! user entered.

use crate::common::*;

use axum::body::Body;
use concurrency_guard::ConflictHandling;
use http::{Request, StatusCode, header};

fn stale_delete(token: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::delete("/items/1")
        .header("x-concurrency-token", token)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

#[track_caller]
fn assert_not_deleted_and_nothing_entered(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert!(answer.body.contains("not been deleted"), "{}", answer.body);
    for absent in [
        "You entered",
        "you entered",
        "you did not change this",
        "you had not changed it",
    ] {
        assert!(!answer.body.contains(absent), "{absent:?}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_stale_delete_with_an_empty_form_body_shows_no_entries() {
    for headers in [
        // htmx 2 from a list page (no element id).
        &[
            ("hx-request", "true"),
            ("hx-current-url", "http://localhost/items"),
        ][..],
        // A browser without htmx, and an htmx request naming its button.
        &[(header::ACCEPT.as_str(), "text/html")][..],
        &[("hx-request", "true"), ("hx-trigger", "delete-1")][..],
    ] {
        let state = AppState::new();
        let app = app(&state);
        let token = load_token(&app, "/items/1").await;
        state.update(1, |item| item.price = 120);
        let answer = send(&app, stale_delete(&token, headers)).await;
        assert_not_deleted_and_nothing_entered(&answer);
        assert!(state.item(1).is_some(), "{headers:?}: deleted");
        assert_eq!(state.runs(), 0);
    }
}

#[tokio::test]
async fn the_guards_own_page_for_a_stale_delete_has_no_you_entered_column() {
    // The guard's standalone page (the app's page not used): its table of
    // changed fields has "Saved now" only.
    for body in ["", "price=100"] {
        let state = AppState::new();
        let app = app_with(
            &state,
            guard(&state).with_conflict_handling(ConflictHandling::StandalonePage),
        );
        let token = load_token(&app, "/items/1").await;
        state.update(1, |item| item.price = 120);
        let mut request = stale_delete(&token, &[(header::ACCEPT.as_str(), "text/html")]);
        *request.body_mut() = Body::from(body);
        let answer = send(&app, request).await;
        assert_not_deleted_and_nothing_entered(&answer);
        assert!(answer.body.contains("Saved now"), "{}", answer.body);
        assert!(state.item(1).is_some());
        assert_eq!(state.runs(), 0);
    }
}

#[tokio::test]
async fn a_stale_save_still_shows_what_the_user_entered() {
    let state = AppState::new();
    let app = app(&state);
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());
    let answer = post_item(&app, "/items/1", &token, "Mine", 100).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert!(answer.body.contains("Mine"), "{}", answer.body);
    // The guard's own page too: its "You entered" column.
    let state = AppState::new();
    let app = app_with(
        &state,
        guard(&state).with_conflict_handling(ConflictHandling::StandalonePage),
    );
    let token = load_token(&app, "/items/1").await;
    state.update(1, |item| item.name = "Theirs".into());
    let answer = post_item(&app, "/items/1", &token, "Mine", 100).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert!(answer.body.contains("You entered"), "{}", answer.body);
    assert!(
        answer.body.contains(r#"<td class="yours">Mine</td>"#),
        "{}",
        answer.body
    );
    assert_eq!(state.item(1).unwrap().name, "Theirs");
}
