//! The loader's refusals, logged once per route: how a guard on a route it does not belong to shows itself.
//!
//! `Router::route_layer` wraps every route added *before* it. Added after a
//! router's other routes, the guard runs its loader on each of them, and a
//! loader that reads the record's id from the path fails on every route
//! without one (axum's `Path` answers 500, or the loader maps it to 400):
//! pages that never had a form break with nothing pointing at the cause.
//! The guard cannot see why its loader refused (the rejection is the
//! application's type), so it says what it knows, once per route: the form,
//! the route, the status, and on a route without path parameters the likely
//! cause.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use axum::extract::MatchedPath;
use http::StatusCode;
use http::request::Parts;

/// The per-route form of the guard, named in the error log.
const PER_ROUTE: &str = "ConcurrencyGuardLayer added with Router::route_layer guards every route added before it; attach it per route: .route(\"/items/{id}\", get(edit).post(save).route_layer(guard))";

/// Routes reported so far, by form type; bounded, so unmatched paths (a
/// guard outside a `Router` is keyed by the request path) cannot grow it.
const MAX_REPORTED: usize = 1024;

fn reported() -> &'static Mutex<HashSet<(&'static str, String)>> {
    static REPORTED: OnceLock<Mutex<HashSet<(&'static str, String)>>> = OnceLock::new();
    REPORTED.get_or_init(Default::default)
}

/// Logs the loader's refusal (answered `status`) of a request to `parts`'
/// route, the first time for this form type and route: at `error` when the
/// guard likely sits on a route it does not belong to (a route without path
/// parameters, refused 400 or 500 as a failed `Path` extraction is), else at
/// `warn`. Later refusals on the route are logged at `debug`.
pub(crate) fn report<T>(form: &'static str, parts: &Parts, status: StatusCode) {
    let form_type = std::any::type_name::<T>();
    let matched = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let route = matched.unwrap_or(parts.uri.path());
    let method = parts.method.as_str();
    let status = status.as_u16();
    let first = {
        let mut reported = reported().lock().unwrap_or_else(|e| e.into_inner());
        reported.len() < MAX_REPORTED && reported.insert((form_type, route.to_owned()))
    };
    if !first {
        tracing::debug!(
            form,
            form_type,
            method,
            route,
            status,
            "the loader refused the request"
        );
        return;
    }
    let without_params = matched.is_some_and(|m| !m.contains('{'));
    if without_params && matches!(status, 400 | 500) {
        tracing::error!(
            form,
            form_type,
            method,
            route,
            status,
            "the guard's loader refused a request on a route without path parameters: \
             likely a route the guard does not belong to. {PER_ROUTE}"
        );
    } else {
        tracing::warn!(
            form,
            form_type,
            method,
            route,
            status,
            "the guard's loader refused the request (logged once per route; its answer is the loader's own)"
        );
    }
}
