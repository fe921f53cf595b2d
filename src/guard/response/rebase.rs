//! Live rebase: a stale form's check request learns what changed, so the open page can take it in.
//!
//! With [`with_live_rebase`](crate::ConcurrencyGuardLayer::with_live_rebase),
//! a check request that accepts `application/json` and carries a valid
//! token of a form that went stale is answered `200 OK` with the inputs
//! that changed (their values as the form renders them now), the context
//! values when one of them changed, and a fresh token for the record as it
//! is now. Only what the page itself would show on reload is sent: the
//! form's inputs and context values, never its key or skipped fields; and
//! only to a client the route's GET handler serves (asked first, as a
//! reload of the page): when it answers anything but 2xx, the check gets
//! the bodiless 409.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::conflict::Conflict;
use crate::entry::{Control, EntryKind};
use crate::state::FormState;
use crate::token::ConcurrencyToken;

/// Whether the check request asks for what changed: its `Accept` names
/// `application/json` (with a quality above zero).
pub(crate) fn asks_for_changes(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or("");
            media.eq_ignore_ascii_case("application/json")
                && !params.any(|p| {
                    p.split_once('=').is_some_and(|(k, q)| {
                        k.trim().eq_ignore_ascii_case("q") && q.trim().parse() == Ok(0.0_f32)
                    })
                })
        })
}

/// The name a control goes by in the answer.
fn control_name(control: Control) -> &'static str {
    match control {
        Control::Checkbox => "checkbox",
        Control::Radio => "radio",
        _ => "text",
    }
}

/// What changed in `current` since the token behind `conflict` was signed,
/// with `fresh`, a token for `current`; `None` when the token cannot name
/// the inputs that changed (the form's layout changed): then the page can
/// only be told it is stale.
pub(crate) fn changes(
    conflict: &Conflict,
    current: &FormState,
    fresh: &ConcurrencyToken,
) -> Option<Response> {
    let changed: Vec<Value> = conflict
        .changed_inputs()?
        .iter()
        .map(|c| {
            let control = current
                .input_named(&c.name)
                .map_or(Control::Text, |e| e.control());
            json!({ "name": c.name, "value": c.current, "control": control_name(control) })
        })
        .collect();
    let context: Vec<Value> = if conflict.context_changed() {
        current
            .entries()
            .filter(|e| e.kind() == EntryKind::Context)
            .map(|e| json!({ "name": e.name(), "value": e.value() }))
            .collect()
    } else {
        Vec::new()
    };
    let body = json!({ "changed": changed, "context": context, "token": fresh.value() });
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    res.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn asking_for_changes() {
        assert!(asks_for_changes(&accept("application/json")));
        assert!(asks_for_changes(&accept(
            "text/html, Application/JSON;q=0.5"
        )));
        assert!(!asks_for_changes(&accept("application/json;q=0")));
        assert!(!asks_for_changes(&accept("*/*")));
        assert!(!asks_for_changes(&accept("application/problem+json")));
        assert!(!asks_for_changes(&HeaderMap::new()));
    }
}
