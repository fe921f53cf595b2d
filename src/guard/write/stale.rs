//! Step 6: a stale submission, merged when the edits are disjoint, else a conflict.

use axum::body::Body;
use bytes::Bytes;
use http::header;
use http::request::Parts;

use super::decision::{After, Decision};
use super::load::Loaded;
use crate::conflict::Conflict;
use crate::fingerprint::StateDigests;
use crate::guard::config::{Config, ConflictHandling};
use crate::guard::extract::Guarded;
use crate::guard::response::{self, AnswerContext};
use crate::guard::verify::{self};
use crate::merge;
use crate::tokens::Opened;

/// Step 6, a stale submission: merged when the edits are disjoint (and
/// merging is on); else the conflict, answered as configured.
pub(super) fn stale<T: Clone + Send + Sync + 'static>(
    config: &Config,
    parts: &mut Parts,
    body: Body,
    opened: &Opened<'_>,
    conflict: Conflict,
    record: Loaded<T>,
    submission: Option<(Vec<(String, String)>, Bytes)>,
) -> Decision {
    // The fields as decoded (to compare), and the body as sent (to splice).
    let (submitted, raw) = match submission {
        Some((pairs, raw)) => (Some(pairs), Some(raw)),
        None => (None, None),
    };
    let form = conflict.form_name();
    let Loaded {
        value,
        current,
        held,
    } = record;
    let sides = submitted.as_deref().and_then(|submitted| {
        let now = StateDigests::of(&current, form, opened.key);
        merge::classify(
            &opened.claims.inputs,
            opened.key,
            form,
            &current,
            &now,
            submitted,
        )
    });
    if let (true, Some(raw), Some(sides)) = (config.merge, &raw, &sides) {
        if !conflict.context_changed() && !sides.iter().any(merge::InputSides::overlaps) {
            let merged = merge::splice(raw, sides);
            tracing::info!(
                form,
                theirs = ?sides.iter().filter(|s| s.theirs_changed).map(|s| s.name.as_str()).collect::<Vec<_>>(),
                yours = ?sides.iter().filter(|s| s.user_changed).map(|s| s.name.as_str()).collect::<Vec<_>>(),
                "disjoint edits merged; handler runs"
            );
            parts
                .headers
                .insert(header::CONTENT_LENGTH, merged.len().into());
            parts.extensions.insert(Guarded(value));
            return Decision::handler(Body::from(merged), Some(held), After::Nothing);
        }
    }
    let conflict = verify::explain(
        config,
        form,
        Some(&opened.claims),
        conflict,
        &current,
        submitted,
        sides.as_deref(),
    );
    match &config.conflicts {
        ConflictHandling::Respond => {
            Decision::Answer(response::conflict(&conflict, &AnswerContext::of(parts)))
        }
        ConflictHandling::Custom(f) => {
            let mut response = f(&conflict, parts);
            response.extensions_mut().insert(conflict);
            Decision::Answer(response)
        }
        ConflictHandling::Handler => {
            parts.extensions.insert(Guarded(value));
            parts.extensions.insert(conflict.clone());
            Decision::handler(body, Some(held), After::Conflict(Box::new(conflict)))
        }
    }
}
