//! Running the loader under the guard: the record, what its form shows, and its lock key.

use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use http::request::Parts;

use super::decision::Step;
use crate::fingerprint::StateDigests;
use crate::guard::config::Config;
use crate::guard::loader_refusal;
use crate::guard::lock::{LockKey, ResourceLock};
use crate::state::{FormState, RenderState};

/// The record as loaded under its lock.
pub(super) struct Loaded<T> {
    pub(super) value: T,
    pub(super) current: FormState,
    pub(super) held: ResourceLock,
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

/// Loads the record once to learn its lock key (for tokens and tags that do
/// not name it under the signing key).
pub(super) async fn lock_key_of_loaded<T, S>(
    config: &Config,
    parts: &mut Parts,
    state: &S,
) -> Step<LockKey>
where
    T: RenderState + FromRequestParts<S>,
{
    let (_, current) = load::<T, S>(parts, state).await?;
    let keys = config.tokens.keys();
    let digests = StateDigests::of(&current, T::FORM_NAME, keys.signing_key());
    Ok((keys.signing_key_id(), digests.resource))
}
