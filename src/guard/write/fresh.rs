//! After an htmx write: a token for the record as the handler left it.
//!
//! A form that stays on the page after an htmx save (`hx-swap="none"`, a
//! target elsewhere) still holds the token it was opened with, which the
//! save itself made stale: its next save would be refused as a conflict
//! with the user's own change. So a write that passed the check and was
//! answered 2xx to an htmx request gets a fresh token, signed for the record
//! loaded again while the record's lock is still held (no other write can
//! slip in between the handler's and this load): in the response header
//! `x-concurrency-token`, and embedded in the answer's post forms when the
//! answer is HTML (a form the handler shows again).

use axum::extract::FromRequestParts;
use http::HeaderValue;
use http::request::Parts;

use super::decision::{After, ShownAfterMerge};
use super::load::load;
use crate::fingerprint::{Fingerprint, StateDigests};
use crate::guard::config::Config;
use crate::guard::response::{self, Format};
use crate::state::RenderState;
use crate::token::ConcurrencyToken;

/// Turns a fingerprint into one of a form that shows no state of its
/// record (any constant but 0 does).
const SHOWN_AFTER_MERGE: u128 = u128::from_be_bytes(*b"shown, merged...");

/// The request head to load the record with after the handler, when the
/// answer is to carry a fresh token: an htmx write the guard checked under
/// the record's lock (not one shown a conflict).
pub(super) fn reload_head(
    config: &Config,
    parts: &Parts,
    locked: bool,
    after: &After,
) -> Option<Parts> {
    let checked = matches!(
        after,
        After::EmbedInRefusal(_) | After::Nothing | After::Merged(Some(_))
    );
    (config.htmx && locked && checked && Format::of(&parts.headers) == Format::HtmxFragment)
        .then(|| parts.clone())
}

/// The fresh token, for the record as loaded now; `None` when the loader
/// refuses (the record was deleted).
///
/// After a merge (`shown`), the form still shows the value it was opened
/// with in each input the merge took the value now for: the token says so
/// (that input's digest is the one the form was opened with), and its
/// fingerprint matches no state of the record, so the form's next save is
/// compared input by input and merged again. A token for the record as
/// saved would take the form's stale values for the user's own, and its
/// next save would write them over the merged ones.
pub(super) async fn fresh_token<T, S>(
    config: &Config,
    mut head: Parts,
    state: &S,
    shown: Option<&ShownAfterMerge>,
) -> Option<(ConcurrencyToken, HeaderValue)>
where
    T: RenderState + FromRequestParts<S>,
{
    let (_, current) = load::<T, S>(&mut head, state).await.ok()?;
    let page = response::form_page(&head);
    let keys = config.tokens.keys();
    let mut digests = StateDigests::of(&current, T::FORM_NAME, keys.signing_key());
    if let Some(shown) = shown {
        for &(at, digest) in &shown.shown {
            *digests.inputs.get_mut(at)? = digest;
        }
        // No state of the record has it: the form shows none.
        digests.fingerprint = Fingerprint(digests.fingerprint.0 ^ SHOWN_AFTER_MERGE);
    }
    let token = config
        .tokens
        .issue_for_digests_on(T::FORM_NAME, &digests, page.as_deref());
    let value = HeaderValue::from_str(token.value()).ok()?;
    tracing::debug!(form = T::FORM_NAME, "fresh token for the record as saved");
    Some((token, value))
}
