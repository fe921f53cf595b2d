//! The one verdict on a submission, shared by the guard and [`DeferredCheck`](crate::DeferredCheck).
//!
//! Given the verified token (if the submission carried one), the request's
//! preconditions and the record as loaded now, [`verdict`] says whether the
//! submission is current, refused (with its answer), or stale (a
//! [`Conflict`] to complete with [`explain`]). Both the guard, before the
//! handler, and [`DeferredCheck::check`](crate::DeferredCheck::check),
//! inside the handler's transaction, decide with it, and answer from the
//! same [`AnswerContext`].

use std::sync::Arc;

use axum::body::Body;
use http::Response;

use super::config::Config;
use super::rejection::Rejection;
use super::request::conditional::{self, RequestPreconditions};
use super::response::{self, AnswerContext};
use crate::claims::Claims;
use crate::conflict::Conflict;
use crate::etag;
use crate::fingerprint::StateDigests;
use crate::merge;
use crate::state::FormState;
use crate::token::ConcurrencyToken;
use crate::tokens::{CheckError, Opened};

/// What the comparison of a submission with the record decided.
pub(crate) enum Verdict {
    /// Nothing the form showed has changed, and the preconditions hold.
    Current,
    /// Refused (4xx): the token is not this record's, or a precondition
    /// does not hold.
    Refused(Refusal),
    /// The data changed since the form was rendered: the conflict, to be
    /// completed with [`explain`] for its answer.
    Stale(Box<Conflict>),
}

/// Why a submission was refused, and the entity tag its answer carries.
pub(crate) struct Refusal {
    rejection: Rejection,
    /// The record's current tag, for a failed precondition (RFC 9110
    /// §13.1.1: the client learns what to send next time).
    etag: Option<String>,
}

impl Refusal {
    /// The answer, logged.
    pub(crate) fn answer(self, form: &'static str, answer: &AnswerContext) -> Response<Body> {
        let mut response = refuse(form, self.rejection, answer);
        if let Some(tag) = self.etag {
            conditional::set_etag(response.headers_mut(), tag);
        }
        response
    }

    /// Why.
    pub(crate) fn rejection(&self) -> &Rejection {
        &self.rejection
    }
}

/// Compares a submission with the record as loaded now (`current`): the
/// token first (when there is one), then `If-Match` / `If-None-Match`.
pub(crate) fn verdict(
    config: &Config,
    form: &'static str,
    token: Option<&Opened<'_>>,
    preconditions: &RequestPreconditions,
    current: &FormState,
) -> Verdict {
    if let Some(opened) = token {
        match opened.compare(form, current) {
            Ok(()) => {}
            Err(CheckError::Token(e)) => {
                return Verdict::Refused(Refusal {
                    rejection: Rejection::InvalidToken(e),
                    etag: None,
                });
            }
            Err(CheckError::Conflict(conflict)) => return Verdict::Stale(conflict),
        }
    }
    match self::preconditions(config, form, preconditions, current) {
        Ok(()) => Verdict::Current,
        Err(refusal) => Verdict::Refused(refusal),
    }
}

/// Evaluates `If-Match` / `If-None-Match` against the record as loaded now.
pub(crate) fn preconditions(
    config: &Config,
    form: &'static str,
    preconditions: &RequestPreconditions,
    current: &FormState,
) -> Result<(), Refusal> {
    let keys = config.tokens.keys();
    preconditions
        .evaluate(keys, form, current)
        .map_err(|failed| {
            let digests = StateDigests::of(current, form, keys.signing_key());
            Refusal {
                rejection: failed.rejection(),
                etag: Some(etag::etag(
                    keys.signing_key_id(),
                    keys.signing_key(),
                    form,
                    &digests,
                )),
            }
        })
}

/// The answer to a refused submission, logged.
pub(crate) fn refuse(
    form: &'static str,
    rejection: Rejection,
    answer: &AnswerContext,
) -> Response<Body> {
    tracing::info!(form, reason = %rejection, status = rejection.status().as_u16(), "submission refused");
    response::rejection(rejection, answer)
}

/// Completes a conflict for its answer (what the user submitted is already
/// in it): who changed what, a fresh token (naming `page`, the page the form
/// was on, when known), and in debug mode every entry that differs.
pub(crate) fn explain(
    config: &Config,
    form: &'static str,
    claims: Option<&Claims>,
    conflict: Conflict,
    current: &FormState,
    sides: Option<&[merge::InputSides]>,
    page: Option<&str>,
) -> Conflict {
    let fresh: ConcurrencyToken = config.tokens.issue_for_state_on(form, current, page);
    let mut conflict = conflict.with_fresh_token(fresh);
    if let Some(sides) = sides {
        conflict = conflict.with_sides(sides);
    }
    if let (Some(debug), Some(claims)) = (&config.debug, claims) {
        if let Some(diff) = debug.diff(
            claims.key_id,
            claims.fingerprint.0,
            claims.resource,
            current,
        ) {
            tracing::warn!(form, entries = ?diff, "debug: entries that differ");
            conflict = conflict.with_debug(diff);
        }
        // The user's side of each overlap: a false one (the template shows
        // a value otherwise than its RenderValue) shows here.
        for side in sides
            .map(|sides| {
                debug.user_sides(claims.key_id, claims.fingerprint.0, claims.resource, sides)
            })
            .unwrap_or_default()
        {
            tracing::warn!(
                form,
                input = side.name,
                submitted = ?side.submitted,
                rendered = ?side.rendered,
                now = side.now,
                why = side.why,
                "debug: an input changed on both sides; the user's side"
            );
        }
    }
    tracing::info!(
        form,
        changed = ?conflict.changed_inputs().map(|c| c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()),
        context_changed = conflict.context_changed(),
        "conflict: the data changed since the form was rendered"
    );
    conflict
}

/// The token a passing submission's handler may need, signed on demand:
/// the state is kept, its digests are made only then.
#[derive(Clone)]
pub(crate) struct PendingToken {
    pub(crate) config: Arc<Config>,
    pub(crate) form: &'static str,
    pub(crate) state: Arc<FormState>,
    /// The page the form was on, for the token to name.
    pub(crate) page: Option<Arc<str>>,
}

impl PendingToken {
    pub(crate) fn sign(&self) -> ConcurrencyToken {
        self.config
            .tokens
            .issue_for_state_on(self.form, &self.state, self.page.as_deref())
    }
}
