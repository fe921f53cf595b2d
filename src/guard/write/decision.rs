//! What the checks of a submission decide, and what becomes of the handler's answer.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use http::{Request, Response};

use crate::conflict::Conflict;
use crate::guard::config::ConflictHandler;
use crate::guard::lock::ResourceLock;
use crate::guard::response::AnswerContext;
use crate::guard::verify::PendingToken;

/// What the checks of a submission decided.
pub(crate) enum Decision {
    /// The guard answers; the handler does not run.
    Answer(Response<Body>),
    /// A stale submission, answered by calling another handler than the
    /// write handler: the route's GET handler for the app's own page, or
    /// the conflict handler. The record's lock is already released.
    Stale(Box<StaleAnswer>),
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
    /// Handed on as it is; the handler saved a merge of the submission
    /// with other people's changes, which the page that sent it does not
    /// show. A token for the record as saved would describe values the form
    /// does not hold, and the form's next save would write its stale values
    /// over the merged ones: a fresh token describes the form as it shows
    /// (see [`ShownAfterMerge`]), or there is none.
    Merged(Option<ShownAfterMerge>),
    /// A form shown again gets the pending token embedded.
    EmbedInRefusal(PendingToken),
    /// The handler was to call [`DeferredCheck::check`](crate::DeferredCheck::check):
    /// a success without it is flagged.
    Deferred(Arc<AtomicBool>),
}

/// How a stale submission is answered, past the guard's checks.
pub(crate) enum StaleAnswer {
    /// The route's own GET handler renders the page for the current data
    /// (this request: GET, the record and a fresh token in its extensions);
    /// when it serves it (2xx), the guard rewrites it (with `rewrite`), else
    /// answers with its own conflict answer; when it refuses it, the
    /// conflict's details and token are withheld.
    AppPage {
        get: Request<Body>,
        conflict: Conflict,
        answer: Box<AnswerContext>,
        rewrite: bool,
    },
    /// The conflict handler answers this request (the submission).
    Handler {
        handler: ConflictHandler,
        request: Request<Body>,
        conflict: Conflict,
    },
}

/// Where a step that answers leaves the submission.
pub(crate) type Step<T> = Result<T, Response<Body>>;

/// What the form that sent a merged submission still shows: for each input
/// someone else changed and the user did not (the merge took its value
/// now), the per-input digest of the value the form showed, from the token
/// it came with (signed with the signing key).
#[derive(Debug, Clone)]
pub(crate) struct ShownAfterMerge {
    /// (index among the form's inputs, the digest of what the form shows).
    pub(crate) shown: Vec<(usize, u64)>,
}
