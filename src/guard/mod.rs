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

mod body;
mod conditional;
mod debug;
pub mod deferred;
mod extract;
pub(crate) mod inject;
mod inject_fast;
mod layer;
mod lock;
mod respond;
mod service;
pub mod warning;

pub use deferred::{DeferredCheck, Refused};
pub use extract::{Guarded, NotGuarded};
pub use layer::{
    ConcurrencyGuardLayer, ConflictHandling, ConflictResponder, DEFAULT_MULTIPART_PREFIX_LIMIT,
    Preconditions,
};
pub use respond::Rejection;
pub use service::{ConcurrencyGuard, ResponseFuture};

#[doc(hidden)]
pub(crate) mod __private {
    //! For the crate's fuzz targets and benches only; not a stable API.
    pub use super::body::{scan_multipart, scan_urlencoded};
}
