//! Running the loader under the guard: the record, what its form shows, and its lock, taken for the record loaded.

use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use http::request::Parts;

use super::decision::Step;
use crate::fingerprint::resource_digest;
use crate::guard::config::Config;
use crate::guard::loader_refusal;
use crate::guard::lock::{self, LockFailure, LockKey, ResourceLock};
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

/// The lock key of a loaded record: the signing key's digest of its key
/// entries.
fn lock_key_of(config: &Config, current: &FormState) -> LockKey {
    let keys = config.tokens.keys();
    (
        keys.signing_key_id(),
        resource_digest(current, keys.signing_key()),
    )
}

/// Locks the record and loads it under its lock.
///
/// `named` is the record a signed token names under the signing key (no
/// client text that is not authenticated ever names a lock): the usual
/// case costs one load. Without it, the record is loaded once to learn its
/// key. Either way, the record loaded under the lock must be the one
/// locked; if not (a token of another record, a record whose key changed),
/// its own lock is taken and it is loaded again.
pub(super) async fn lock_and_load<T, S>(
    config: &Config,
    parts: &mut Parts,
    state: &S,
    named: Option<LockKey>,
) -> Step<Loaded<T>>
where
    T: RenderState + FromRequestParts<S>,
{
    let mut key = match named {
        Some(key) => key,
        None => {
            let (_, current) = load::<T, S>(parts, state).await?;
            lock_key_of(config, &current)
        }
    };
    for _ in 0..2 {
        let held = lock_within(config, parts, key, T::FORM_NAME).await?;
        let (value, current) = load::<T, S>(parts, state).await?;
        let loaded_key = lock_key_of(config, &current);
        if loaded_key == key {
            return Ok(Loaded {
                value,
                current,
                held,
            });
        }
        held.release().await;
        key = loaded_key;
    }
    // The loader keeps answering with another record: as busy as can be.
    Err(busy(config, parts, T::FORM_NAME))
}

/// Waits for the lock of `key` within the lock timeout; 503 beyond, and 503
/// when the lock's database fails.
async fn lock_within(
    config: &Config,
    parts: &Parts,
    key: LockKey,
    form: &'static str,
) -> Step<ResourceLock> {
    match lock::lock_within(&config.record_lock, key, config.lock_timeout).await {
        Ok(held) => Ok(held),
        Err(LockFailure::Busy) => Err(busy(config, parts, form)),
        Err(LockFailure::Unavailable) => Err(verify::refuse(
            form,
            Rejection::LockUnavailable {
                retry_after: whole_seconds(config.lock_timeout).max(1),
            },
            &AnswerContext::of(parts),
        )),
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
