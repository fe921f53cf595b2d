//! The guard's configuration: what [`ConcurrencyGuardLayer`](crate::ConcurrencyGuardLayer)'s builder sets.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::request::Parts;

use super::debug::DebugLog;
use super::lock::RecordLock;
use super::request::cross_origin::CrossOrigin;
use crate::conflict::Conflict;
use crate::tokens::Tokens;

/// A function that answers a conflict.
pub type ConflictResponder = Arc<dyn Fn(&Conflict, &Parts) -> Response + Send + Sync>;

/// What the guard does with a stale submission.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ConflictHandling {
    /// Answer 409 itself: an HTML page naming the changed fields, keeping
    /// what the user typed and offering a refresh; `application/problem+json`
    /// when the client prefers JSON; an HTML fragment for htmx.
    #[default]
    Respond,
    /// Call the handler with the [`Conflict`] in the request: take
    /// `Option<Conflict>` and, when it is `Some`, re-render the form with an
    /// alert instead of writing (Reahl's way). The handler must not write.
    Handler,
    /// Answer with a response of your own.
    Custom(ConflictResponder),
}

impl fmt::Debug for ConflictHandling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictHandling::Respond => f.write_str("Respond"),
            ConflictHandling::Handler => f.write_str("Handler"),
            ConflictHandling::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// How the guard treats conditional requests (`If-Match`, `If-None-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Preconditions {
    /// GET/HEAD answers other than HTML pages (which carry a token instead)
    /// carry an `ETag`; `If-None-Match` answers 304 and
    /// `If-Match` 412 before the handler. A submission without a token
    /// must carry `If-Match` (or `If-None-Match`): else 428, unless its body
    /// is a form (then 400, missing token).
    #[default]
    Required,
    /// Like `Required`, but a submission with neither a token nor a
    /// precondition, whose body is not a form, reaches the handler unchecked
    /// (for API routes where a blind overwrite is allowed).
    Optional,
    /// No `ETag`, and the precondition headers are ignored: every submission
    /// needs the token (a body the guard cannot read is 415).
    Off,
}

/// Everything the builder sets, shared by every request of the routes it guards.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) preconditions: Preconditions,
    pub(crate) merge: bool,
    pub(crate) check_in_handler: bool,
    /// Seconds between an open form's checks, when early warning is on.
    pub(crate) early_warning: Option<u64>,
    pub(crate) debug: Option<Arc<DebugLog>>,
    pub(crate) tokens: Tokens,
    pub(crate) auto_embed: bool,
    pub(crate) body_limit: BodyLimit,
    pub(crate) multipart_prefix_limit: usize,
    pub(crate) conflicts: ConflictHandling,
    pub(crate) cross_origin: CrossOrigin,
    /// How long the client may leave a body the guard reads (or streams to
    /// the handler under the record's lock) without sending more.
    pub(crate) body_read_timeout: Duration,
    /// How long a submission waits for its record's lock.
    pub(crate) lock_timeout: Duration,
    /// Where the per-record locks live.
    pub(crate) record_lock: RecordLock,
}

/// The most bytes of a body the guard buffers when the limit is axum's
/// (a `DefaultBodyLimit::disable()` leaves this one): 16 MiB.
pub(crate) const BODY_CEILING: usize = 16 * 1024 * 1024;

/// The default of [`ConcurrencyGuardLayer::with_body_read_timeout`](crate::ConcurrencyGuardLayer::with_body_read_timeout).
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`ConcurrencyGuardLayer::with_lock_timeout`](crate::ConcurrencyGuardLayer::with_lock_timeout).
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The default for [`ConcurrencyGuardLayer::with_multipart_prefix_limit`](crate::ConcurrencyGuardLayer::with_multipart_prefix_limit): 256 KiB.
pub const DEFAULT_MULTIPART_PREFIX_LIMIT: usize = 256 * 1024;

/// How the body limit is set.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BodyLimit {
    /// Axum's `DefaultBodyLimit` where set, else 2 MiB; never more than
    /// [`BODY_CEILING`] for what the guard buffers.
    Axum,
    /// This many bytes.
    Bytes(usize),
}

impl BodyLimit {
    /// The most bytes the guard buffers.
    pub(crate) fn buffered(self) -> usize {
        match self {
            BodyLimit::Axum => BODY_CEILING,
            BodyLimit::Bytes(n) => n,
        }
    }
}

/// What every request of one guarded route reads: one reference count per
/// request, however many the application's state holds.
pub(crate) struct Shared<S> {
    pub(crate) config: Arc<Config>,
    pub(crate) state: S,
}
