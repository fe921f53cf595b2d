//! What the checks of a submission decide, and what becomes of the handler's answer.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use http::Response;

use crate::conflict::Conflict;
use crate::guard::lock::ResourceLock;
use crate::guard::verify::PendingToken;

/// What the checks of a submission decided.
pub(crate) enum Decision {
    /// The guard answers; the handler does not run.
    Answer(Response<Body>),
    /// The handler runs, with this body, the record's lock held meanwhile.
    Handler {
        body: Body,
        held: Option<ResourceLock>,
        after: After,
    },
}

impl Decision {
    pub(crate) fn handler(body: Body, held: Option<ResourceLock>, after: After) -> Decision {
        Decision::Handler { body, held, after }
    }
}

/// What becomes of the handler's answer.
pub(crate) enum After {
    /// Handed on as it is.
    Nothing,
    /// A form shown again gets the pending token embedded.
    EmbedInRefusal(PendingToken),
    /// The conflict the handler was shown goes into the answer's extensions.
    Conflict(Box<Conflict>),
    /// The handler was to call [`DeferredCheck::check`](crate::DeferredCheck::check):
    /// a success without it is flagged.
    Deferred(Arc<AtomicBool>),
}

/// Where a step that answers leaves the submission.
pub(crate) type Step<T> = Result<T, Response<Body>>;
