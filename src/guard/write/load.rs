//! Running the loader under the guard: the record, what its form shows, and its lock, taken for the record loaded.

use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use http::request::Parts;

use super::decision::Step;
use crate::guard::config::Config;
use crate::guard::loader_refusal;
use crate::guard::lock::{self, LockFailure, LockIds, ResourceLock};
use crate::guard::rejection::Rejection;
use crate::guard::request::{Reading, whole_seconds};
use crate::guard::response::AnswerContext;
use crate::guard::verify;
use crate::state::{FormState, RenderState};

/// The record as loaded under its lock.
pub(super) struct Loaded<T> {
    pub(super) value: T,
    pub(super) current: FormState,
    pub(super) held: ResourceLock,
}

/// How the guard reads a submission's body.
pub(super) fn reading(config: &Config) -> Reading {
    Reading {
        limit: config.body_limit,
        timeout: config.body_read_timeout,
    }
}

/// Runs the loader: the value and what its form shows, or the loader's own
/// rejection as the answer.
pub(super) async fn load<T, S>(parts: &mut Parts, state: &S) -> Step<(T, FormState)>
where
    T: RenderState + FromRequestParts<S>,
{
    match T::from_request_parts(parts, state).await {
        Ok(loaded) => {
            let current = FormState::of(&loaded);
            Ok((loaded, current))
        }
        Err(rejection) => {
            let answer = rejection.into_response();
            loader_refusal::report::<T>(T::FORM_NAME, parts, answer.status());
            Err(answer)
        }
    }
}

/// The locks of a loaded record (see [`lock::ids_of`]).
fn lock_ids_of(config: &Config, current: &FormState) -> LockIds {
    lock::ids_of(&config.record_lock, config.tokens.keys(), current)
}

/// Locks the record and loads it under its lock.
///
/// `named` is the locks of the record a signed token names (no client text
/// that is not authenticated ever names a lock; see [`lock::ids_named`]):
/// the usual case costs one load. Without it, the record is loaded once to
/// learn its locks. Either way, the record loaded under the lock must be
/// the one locked; if not (a token of another record, a record whose key
/// changed), its own locks are taken and it is loaded again.
pub(super) async fn lock_and_load<T, S>(
    config: &Config,
    parts: &mut Parts,
    state: &S,
    named: Option<LockIds>,
) -> Step<Loaded<T>>
where
    T: RenderState + FromRequestParts<S>,
{
    let mut ids = match named {
        Some(ids) => ids,
        None => {
            let (_, current) = load::<T, S>(parts, state).await?;
            lock_ids_of(config, &current)
        }
    };
    for _ in 0..2 {
        let held = lock_within(config, parts, &ids, T::FORM_NAME).await?;
        let (value, current) = load::<T, S>(parts, state).await?;
        let loaded_ids = lock_ids_of(config, &current);
        if loaded_ids == ids {
            return Ok(Loaded {
                value,
                current,
                held,
            });
        }
        held.release().await;
        ids = loaded_ids;
    }
    // The loader keeps answering with another record: as busy as can be.
    Err(busy(config, parts, T::FORM_NAME))
}

/// Waits for the locks `ids` within the lock timeout; 503 beyond, 503 when
/// the lock's database fails, and 503 while it has just restarted.
async fn lock_within(
    config: &Config,
    parts: &Parts,
    ids: &LockIds,
    form: &'static str,
) -> Step<ResourceLock> {
    let refuse = |rejection| verify::refuse(form, rejection, &AnswerContext::of(parts));
    match lock::lock_within(&config.record_lock, ids, config.lock_timeout).await {
        Ok(held) => Ok(held),
        Err(LockFailure::Busy) => Err(busy(config, parts, form)),
        Err(LockFailure::Unavailable) => Err(refuse(Rejection::LockUnavailable {
            retry_after: whole_seconds(config.lock_timeout).max(1),
        })),
        Err(LockFailure::Restarted { retry_after }) => {
            Err(refuse(Rejection::DatabaseRestarted { retry_after }))
        }
    }
}

fn busy(config: &Config, parts: &Parts, form: &'static str) -> axum::response::Response {
    let retry_after = whole_seconds(config.lock_timeout).max(1);
    verify::refuse(
        form,
        Rejection::RecordBusy { retry_after },
        &AnswerContext::of(parts),
    )
}
