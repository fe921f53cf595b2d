//! The middleware: [`ConcurrencyGuardLayer`] and the [`ConcurrencyGuard`] service it makes.
//!
//! Per the flow in the crate docs: on safe methods the guard loads the form,
//! signs a token and embeds it; on unsafe methods it verifies the token and
//! compares the form's state now with the state the token was signed for,
//! *before the handler runs*, holding the record's lock until the handler's
//! future completes.
//!
//! The guard never fails with an error of its own: every refusal is a
//! response (4xx), with the typed reason ([`Rejection`] or
//! [`Conflict`](crate::Conflict)) in the response's extensions for outer
//! layers to inspect.
//!
//! Imports run one way: `layer` → `service` (the tower shell) → `read`
//! (GET, HEAD) and `write` (unsafe methods) → `verify` (the one verdict,
//! shared with `deferred`) → `request` (reading submissions) and `response`
//! (the guard's answers, the embedded token) → `config`, `rejection` and
//! the crate's core.

mod browser_url;
mod config;
mod debug;
mod deferred;
#[cfg(feature = "html-rewriter")]
mod end_tag;
mod extract;
mod form;
mod htmx_script;
mod layer;
mod loader_refusal;
mod lock;
mod pages;
mod read;
mod rejection;
#[cfg(feature = "html-rewriter")]
mod render_check;
mod request;
mod response;
mod service;
mod verify;
mod write;

pub use config::{ConflictHandler, ConflictHandling, ConflictResponder, Preconditions};
pub use deferred::{DeferredCheck, Refused, UncheckedSubmission};
pub use extract::{Guarded, NotGuarded};
pub use form::GuardedForm;
pub use htmx_script::{HTMX_SCRIPT_PATH, htmx_script};
pub use layer::ConcurrencyGuardLayer;
#[cfg(feature = "postgres")]
pub use lock::PgAdvisoryLock;
pub use lock::RecordLock;
pub use rejection::Rejection;
pub use service::{ConcurrencyGuard, ResponseFuture};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`crate::__private`] shows of the guard.
pub(crate) mod __private {
    pub use super::request::multipart::scan_multipart;
    pub use super::request::urlencoded::scan_urlencoded;
    #[cfg(feature = "html-rewriter")]
    pub use super::response::embed::embed_in_str_lol_html;
    pub use super::response::embed::{embed_in_chunks, embed_in_str};
}
