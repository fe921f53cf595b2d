//! The guard's configuration: what [`ConcurrencyGuardLayer`](crate::ConcurrencyGuardLayer)'s builder sets.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::Request;
use http::request::Parts;

use super::debug::DebugLog;
use super::lock::RecordLock;
use super::pages::Pages;
use super::request::cross_origin::CrossOrigin;
use crate::conflict::Conflict;
use crate::tokens::Tokens;

/// A function that answers a conflict.
pub type ConflictResponder = Arc<dyn Fn(&Conflict, &Parts) -> Response + Send + Sync>;

/// A separate handler for stale submissions, set with
/// [`with_conflict_handler`](crate::ConcurrencyGuardLayer::with_conflict_handler):
/// an ordinary axum handler, never the route's write handler.
#[derive(Clone)]
pub struct ConflictHandler(pub(crate) Arc<dyn Fn(Request<Body>) -> BoxFuture + Send + Sync>);

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

impl fmt::Debug for ConflictHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConflictHandler(..)")
    }
}

/// What the guard does with a stale submission. In every mode the route's
/// own (write) handler never sees a stale submission.
///
/// A submission is stale when something its form showed changed since the
/// form was rendered, *unless nothing would be lost*: every input that
/// changed since is submitted with exactly its current value and no context
/// value changed (a double click, a Back button, two people making the same
/// fix). That submission overwrites nothing and reaches the handler.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ConflictHandling {
    /// Answer 409 itself. A browser's form submission gets **the page the
    /// form came from**: the route's own GET handler is called (same path,
    /// method GET, with [`Guarded<T>`](crate::Guarded) the record as it is
    /// now and a fresh [`ConcurrencyToken`](crate::ConcurrencyToken)), and
    /// its HTML is rewritten: the inputs the user changed hold what the
    /// user entered, an alert (`role="alert"`) at the top of the form names
    /// each field someone else changed by its label, with the saved value
    /// beside the user's, and those inputs carry `aria-invalid="true"` and
    /// the class `concurrency-conflict`. When that page cannot be had (the
    /// route has no GET, its answer is not HTML, or has no post form
    /// submitting where this submission went), the guard's own page says
    /// the same. Clients that prefer JSON get `application/problem+json`;
    /// htmx requests an HTML fragment.
    ///
    /// When the route's GET handler refuses this client (any status but
    /// 2xx, e.g. 403), whatever the format, the answer is a 409 that says
    /// the submission was not saved and shows back only what the user
    /// submitted: no saved values, no context values, no fresh token. (The
    /// GET handler is known once it has served a page since the process
    /// started; before that, see the README's Security section on where
    /// authorization must live.)
    ///
    /// The guard's other refusals of a browser's submission (400, 403, 408,
    /// 413, 503) are shown in the same page, once it was served and the
    /// loader finds the record: the refused form replaced by the refusal's
    /// notice, the refusal's status and headers, no token, nothing of the
    /// refused body.
    #[default]
    Respond,
    /// Like `Respond`, but a browser always gets the guard's own page (for
    /// a route whose GET handler should not run again on a conflict): the
    /// changed fields with their saved values and what the user entered, a
    /// form with the user's version and a fresh token, and a reload link.
    /// The GET handler is not asked whether it serves this client: the
    /// loader (or a layer outside the guard) must refuse a client that may
    /// not see the record.
    StandalonePage,
    /// Answer with a response of your own, made synchronously
    /// ([`with_conflict_response`](crate::ConcurrencyGuardLayer::with_conflict_response)).
    Custom(ConflictResponder),
    /// Call a separate handler ([`with_conflict_handler`](crate::ConcurrencyGuardLayer::with_conflict_handler)).
    Separate(ConflictHandler),
}

impl fmt::Debug for ConflictHandling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictHandling::Respond => f.write_str("Respond"),
            ConflictHandling::StandalonePage => f.write_str("StandalonePage"),
            ConflictHandling::Custom(_) => f.write_str("Custom(..)"),
            ConflictHandling::Separate(_) => f.write_str("Separate(..)"),
        }
    }
}

/// How the guard treats conditional requests (`If-Match`, `If-None-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Preconditions {
    /// GET/HEAD answers other than HTML pages (which carry a token instead)
    /// carry an `ETag`; `If-None-Match` answers 304 and
    /// `If-Match` 412 before the handler, whatever the body's type (a
    /// token in a form body next to it is verified as well). A submission
    /// without a token must carry `If-Match` (or `If-None-Match: *`): else
    /// 428 when it has no body or an API client's (JSON…), 400 (missing
    /// token) when its body is a form, 415 when its body is one the guard
    /// cannot read (`text/plain`, no `Content-Type`, a `Content-Type` that
    /// is not a media type).
    #[default]
    Required,
    /// Like `Required`, but a submission with neither a token nor a
    /// precondition, with no body or an API client's body (not a form, not
    /// one that is 415 above), reaches the handler unchecked (for API
    /// routes where a blind overwrite is allowed).
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
    /// Whether a check request that asks for JSON learns what changed
    /// (live rebase), with early warning on.
    pub(crate) live_rebase: bool,
    /// Whether pages get the htmx script, and htmx writes a fresh token.
    pub(crate) htmx: bool,
    pub(crate) debug: Option<Arc<DebugLog>>,
    pub(crate) tokens: Tokens,
    pub(crate) auto_embed: bool,
    pub(crate) body_limit: BodyLimit,
    /// Set by `with_multipart_prefix_limit`; `None`: the body limit.
    pub(crate) multipart_prefix_limit: Option<usize>,
    pub(crate) conflicts: ConflictHandling,
    pub(crate) cross_origin: CrossOrigin,
    /// How long the client may leave a body the guard reads (or streams to
    /// the handler under the record's lock) without sending more.
    pub(crate) body_read_timeout: Duration,
    /// How long a submission waits for its record's lock.
    pub(crate) lock_timeout: Duration,
    /// The GET handlers of the guarded routes (shared by every clone).
    pub(crate) pages: Arc<Pages>,
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
