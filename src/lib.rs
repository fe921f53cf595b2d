//! Stop lost updates on web forms.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets `#[derive(RenderState)]` name `::concurrency_guard` inside this crate too.
extern crate self as concurrency_guard;

pub mod conflict;
pub mod fingerprint;
pub mod guard;
mod html;
pub mod key;
pub mod state;
pub mod token;

pub use conflict::{ChangedInput, Conflict};
pub use fingerprint::{Fingerprint, StateDigests};
pub use guard::{
    ConcurrencyGuard, ConcurrencyGuardLayer, ConflictHandling, Guarded, NotGuarded, Rejection,
};
pub use key::{Key, KeyError, KeyRing};
pub use state::{Entry, EntryKind, FormState, RenderState, RenderValue, Rendered};
pub use token::{ConcurrencyToken, TokenError, Tokens};

#[cfg(feature = "derive")]
pub use concurrency_guard_derive::RenderState;
