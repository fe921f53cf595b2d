//! Steps 3 to 5: open the token, then leave the comparison to the handler or lock, load and compare.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::extract::FromRequestParts;
use bytes::Bytes;
use http::request::Parts;
use http::{Response, StatusCode};

use super::decision::{After, Decision, Step};
use super::load::{Loaded, lock_and_load, reading};
use super::stale::stale;
use crate::guard::config::Config;
use crate::guard::deferred::DeferredCheck;
use crate::guard::extract::Guarded;
use crate::guard::lock;
use crate::guard::request::conditional::RequestPreconditions;
use crate::guard::request::{self, Found, TokenSource, urlencoded};
use crate::guard::response::{self, AnswerContext};
use crate::guard::verify::{self, PendingToken, Verdict};
use crate::state::RenderState;
use crate::tokens::Opened;

/// Step 3: the token, from the header or the body (and the urlencoded body
/// itself, when it was read, to show the user what they typed).
pub(super) async fn open_token(
    config: &Config,
    form: &'static str,
    source: TokenSource,
    parts: &mut Parts,
    body: Body,
) -> Step<(Found, Option<Bytes>)> {
    let found = request::find_token(
        source,
        parts,
        body,
        config.tokens.field_name(),
        reading(config),
        config.multipart_prefix_limit,
        // Read before the lock is taken; a deferred check takes none.
        !config.check_in_handler,
    )
    .await;
    match found {
        Ok(mut found) => {
            let submitted = found.form.take();
            Ok((found, submitted))
        }
        Err(rejection) => Err(verify::refuse(form, rejection, &AnswerContext::of(parts))),
    }
}

/// Step 4: the comparison is the handler's, inside its transaction
/// ([`DeferredCheck`]); the guard neither locks nor loads.
pub(super) fn defer<T: RenderState + Send + Sync + 'static>(
    config: &Arc<Config>,
    opened: Option<Opened<'_>>,
    preconditions: RequestPreconditions,
    parts: &mut Parts,
    body: Body,
    submitted: Option<Vec<(String, String)>>,
) -> Decision {
    let answer = AnswerContext::of(parts);
    let checked = Arc::new(AtomicBool::new(false));
    let deferred = DeferredCheck::<T>::new(
        config.clone(),
        T::FORM_NAME,
        opened,
        preconditions,
        answer,
        submitted,
        checked.clone(),
    );
    parts.extensions.insert(deferred);
    Decision::handler(body, None, After::Deferred(checked))
}

/// The loader's refusal of a submission whose token is valid for this form:
/// a 404 or 410 means the record was deleted since the form was opened
/// (answered with what the user entered); anything else is the loader's own.
fn deleted_or(
    form: &'static str,
    loader_answer: Response<Body>,
    parts: &Parts,
    submission: &Option<(Vec<(String, String)>, Bytes)>,
) -> Response<Body> {
    let status = loader_answer.status();
    if status != StatusCode::NOT_FOUND && status != StatusCode::GONE {
        return loader_answer;
    }
    let submitted = submission.as_ref().map(|(pairs, _)| pairs.as_slice());
    response::deleted(form, status, submitted, &AnswerContext::of(parts))
}

/// Step 5: lock the record before loading it, so the state compared is the
/// state the handler writes over; then the verdict.
pub(super) async fn compare<T, S>(
    config: &Arc<Config>,
    state: &S,
    parts: &mut Parts,
    body: Body,
    opened: &Opened<'_>,
    preconditions: &RequestPreconditions,
    raw: Option<Bytes>,
) -> Decision
where
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    let form = T::FORM_NAME;
    // The submitted pairs are decoded only where an answer shows them (a
    // conflict, a record deleted since): a current submission never pays
    // for it.
    let submission = |raw: Option<Bytes>| {
        raw.map(|raw| {
            let pairs = urlencoded::submitted_pairs(&raw, config.tokens.field_name());
            (pairs, raw)
        })
    };
    // The token names the record by its digest under the token's key: the
    // locks are known before the first load when that suffices.
    let named = lock::ids_named(
        &config.record_lock,
        config.tokens.keys(),
        opened.claims.key_id,
        opened.claims.resource,
    );
    let Loaded {
        value: loaded,
        current,
        held,
    } = match lock_and_load::<T, S>(config, parts, state, named).await {
        Ok(record) => record,
        Err(answer) => {
            return Decision::Answer(deleted_or(form, answer, parts, &submission(raw)));
        }
    };
    match verify::verdict(config, form, Some(opened), preconditions, &current) {
        Verdict::Current => {
            tracing::debug!(form, "submission is current; handler runs");
            // A token for the state as it is now, signed only if the handler
            // asks for it or shows the form again (a 4xx HTML answer).
            let pending = PendingToken {
                config: config.clone(),
                form,
                state: Arc::new(current),
                page: response::form_page(parts).map(Arc::from),
            };
            parts.extensions.insert(pending.clone());
            parts.extensions.insert(Guarded(loaded));
            Decision::handler(body, Some(held), After::EmbedInRefusal(pending))
        }
        Verdict::Refused(refusal) => {
            Decision::Answer(refusal.answer(form, &AnswerContext::of(parts)))
        }
        Verdict::Stale(conflict) => {
            let record = Loaded {
                value: loaded,
                current,
                held,
            };
            stale(
                config,
                parts,
                body,
                opened,
                *conflict,
                record,
                submission(raw),
            )
        }
    }
}
