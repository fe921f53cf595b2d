//! Stop lost updates on web forms.
//!
//! Ann and Bob open the same edit page. Ann saves. Bob, still looking at the
//! old page, saves a minute later, and Ann's work is silently gone: a *lost
//! update*. This crate makes that impossible without touching your schema:
//! when a form is rendered it fingerprints what the form shows and embeds the
//! fingerprint as a signed hidden field; when the form comes back, *before
//! your handler runs*, it fingerprints what the form would show now and
//! refuses the submission (409) if anything changed, naming what changed.
//!
//! # Guarding a route
//!
//! ```
//! use axum::extract::{FromRequestParts, Path};
//! use axum::http::{StatusCode, request::Parts};
//! use axum::response::Html;
//! use axum::routing::get;
//! use axum::{Form, Router};
//! use concurrency_guard::{ConcurrencyGuardLayer, Guarded, Key, KeyRing, RenderState};
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone, Default)]
//! struct AppState { items: Arc<Mutex<HashMap<i64, ItemForm>>> }
//!
//! /// What the edit form shows.
//! #[derive(Clone, RenderState)]
//! struct ItemForm {
//!     #[render_state(key)]      // which record: binds the token to it
//!     id: i64,
//!     name: String,             // an input: a change conflicts
//!     #[render_state(skip)]     // opted out: a change never conflicts
//!     views: i64,
//!     #[render_state(context)]  // shown, not editable: a change conflicts
//!     stock: i64,
//! }
//!
//! /// How the guard loads what the form shows *now*: an ordinary extractor.
//! /// Its refusals are answers with a body (an app's own error type works too).
//! impl FromRequestParts<AppState> for ItemForm {
//!     type Rejection = (StatusCode, String);
//!     async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
//!         let Path(id) = Path::<i64>::from_request_parts(parts, state)
//!             .await
//!             .map_err(|e| (StatusCode::BAD_REQUEST, e.body_text()))?;
//!         let item = state.items.lock().unwrap().get(&id).cloned();
//!         item.ok_or_else(|| (StatusCode::NOT_FOUND, format!("No item {id}")))
//!     }
//! }
//!
//! // The guard already loaded the item: render exactly what it fingerprinted.
//! // The token is embedded in the form automatically.
//! async fn edit(Guarded(item): Guarded<ItemForm>) -> Html<String> {
//!     Html(format!(
//!         r#"<form method="post"><input name="name" value="{}"><button>Save</button></form>"#,
//!         item.name // escape this in real code; templates do
//!     ))
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Edit { name: String }
//!
//! // Runs only if nothing the form showed has changed since it was rendered.
//! async fn save(axum::extract::State(state): axum::extract::State<AppState>,
//!               Guarded(item): Guarded<ItemForm>, Form(edit): Form<Edit>) -> &'static str {
//!     state.items.lock().unwrap().get_mut(&item.id).unwrap().name = edit.name;
//!     "saved"
//! }
//!
//! let state = AppState::default();
//! let keys = KeyRing::new(1, Key::generate()); // share one ring across processes in production
//! let guard = ConcurrencyGuardLayer::<ItemForm, _>::new(keys, state.clone());
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "home" }))
//!     .route("/items/{id}", get(edit).post(save).route_layer(guard)) // this route only
//!     .with_state(state);
//! # let _ = app;
//! ```
//!
//! Attach the guard to its route, as above: `Router::route_layer` wraps
//! every route added *before* it, so after `.route("/", …)` it would run the
//! loader on `/` as well, where there is no `{id}`. The guard logs a
//! loader's refusal once per route, at `error` with that advice when the
//! route has no path parameters.
//!
//! # How it works
//!
//! - **GET/HEAD**: the guard runs the loader, computes the form's
//!   [`FormState`] (each value *as rendered*), signs a [`ConcurrencyToken`]
//!   (key id, time, form, record, keyed fingerprint, one digest per input)
//!   and embeds it first inside every `<form method="post">` of the HTML
//!   answer, streaming. Templates can render it themselves instead.
//! - **POST/PUT/PATCH/DELETE**: the guard takes the token from the
//!   `x-concurrency-token` header or the form field (reading only what it
//!   must of the body, and handing it on with only the token's field cut
//!   out of an urlencoded form, so `#[serde(deny_unknown_fields)]` form
//!   types work), verifies it, locks the
//!   record, loads it again and compares. Equal: the handler runs, under the
//!   lock. Different: a [`Conflict`], answered 409 with the application's
//!   own page for the current data (its GET handler's), the user's edits
//!   kept in their fields, an alert naming the changed fields by their
//!   labels and a fresh token; or handed to a separate conflict handler
//!   ([`ConcurrencyGuardLayer::with_conflict_handler`]), never the write
//!   handler. A stale submission that would overwrite nothing (it submits
//!   every changed input with its current value) passes.
//! - Every bad input is a 4xx with a message ([`Rejection`]); the handler
//!   does not run.
//!
//! The token is **not** a CSRF defence: it binds a submission to a form and
//! a record, not to a user's session. Keep a CSRF layer in front (e.g.
//! checking `Origin`/`Sec-Fetch-Site`, or a session-bound CSRF token).
//!
//! # Scaling out
//!
//! Tokens are stateless: give every process the same [`KeyRing`]
//! ([`KeyRing::from_env`]) and any process verifies any token. The in-process
//! record lock serializes check and write within one process only. Across
//! processes on one PostgreSQL database, put the record lock in the database
//! with no handler change: `.with_record_lock(PgAdvisoryLock::new(pool))`
//! (feature `postgres`, [`ConcurrencyGuardLayer::with_record_lock`]). Or
//! check inside your database transaction with [`Tokens::check`] (or
//! [`DeferredCheck`]) after loading the record with a row lock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets `#[derive(RenderState)]` name `::concurrency_guard` inside this crate too.
extern crate self as concurrency_guard;

mod buffer;
mod claims;
mod conflict;
#[cfg(any(feature = "chrono", feature = "time"))]
mod datetime;
mod entry;
mod etag;
mod fingerprint;
mod guard;
mod html;
mod key;
mod key_error;
mod merge;
mod state;
mod templates;
mod token;
mod token_error;
mod tokens;
mod value;

pub use conflict::{ChangedInput, Conflict, EntryDiff};
pub use entry::{Control, EntryKind};
pub use fingerprint::MAX_INPUTS;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use guard::PgAdvisoryLock;
pub use guard::{
    ConcurrencyGuard, ConcurrencyGuardLayer, ConflictHandler, ConflictHandling, ConflictResponder,
    DeferredCheck, Guarded, GuardedForm, HTMX_SCRIPT_PATH, NotGuarded, Preconditions, RecordLock,
    Refused, Rejection, ResponseFuture, UncheckedSubmission, htmx_script,
};
pub use key::{Key, KeyError, KeyRing, MIN_KEY_LEN};
pub use state::{Entry, FormState, RenderState};
pub use token::{
    ConcurrencyToken, DEFAULT_FIELD_NAME, HEADER_NAME, MAX_PAGE_LEN, MAX_TOKEN_LEN, TOKEN_VERSION,
};
pub use token_error::TokenError;
pub use tokens::{CheckError, DEFAULT_MAX_AGE, Tokens};
pub use value::{RenderValue, Rendered};

#[doc(hidden)]
pub mod __private {
    //! The one door for the crate's benches, fuzz targets and test vectors:
    //! not a stable API, not for applications.

    pub use crate::fingerprint::{Fingerprint, StateDigests, form_digest};
    #[cfg(feature = "html-rewriter")]
    pub use crate::guard::__private::embed_in_str_lol_html;
    pub use crate::guard::__private::{
        embed_in_chunks, embed_in_str, scan_multipart, scan_urlencoded,
    };

    use crate::{ConcurrencyToken, TokenError, Tokens};

    /// Signs `digests` as the guard does.
    pub fn sign(tokens: &Tokens, form_name: &str, digests: &StateDigests) -> ConcurrencyToken {
        tokens.issue_for_digests(form_name, digests)
    }

    /// Decodes and verifies `token` as the guard does before loading the state.
    pub fn verify(tokens: &Tokens, token: &str, form_name: &str) -> Result<(), TokenError> {
        tokens.open(token.as_bytes(), form_name).map(|_| ())
    }
}

#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use concurrency_guard_derive::RenderState;
