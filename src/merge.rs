//! Three-way merge of a stale submission: base (the token), theirs (now), ours (submitted).
//!
//! The token carries one keyed digest per input of the form *as rendered*
//! (the base). For each input the guard knows
//!
//! - whether **someone else** changed it: its digest now differs from the base;
//! - whether **the user** changed it: the digest of the submitted value
//!   differs from the base.
//!
//! Inputs are matched to submitted fields by name: the derive's field name,
//! or its `rename`. A field missing from the submission counts as submitted
//! empty (an unchecked checkbox; `bool` renders as `"on"` or empty). A field
//! submitted several times (a multi-select, checkbox groups) cannot be
//! compared with one rendered value: it counts as changed by the user.
//!
//! With merging on (`with_merge(true)`), a stale submission passes when no
//! context value changed and no input was changed on both sides (to
//! different values): the body is rewritten so that every input the user did
//! not change carries its current value, and the handler's ordinary "UPDATE
//! every column" cannot write a stale value back. Only urlencoded bodies are
//! merged; a multipart submission (files cannot be re-sent) conflicts as
//! usual.
//!
//! Without merging, the same classification pre-fills the conflict page: the
//! user's changes on top of the current values.

use bytes::Bytes;

use crate::fingerprint::{StateDigests, input_digest};
use crate::key::Key;
use crate::state::FormState;

/// What the user submitted for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ours {
    Absent,
    One(String),
    Many,
}

/// One input of the form, seen from all three sides.
#[derive(Debug, Clone)]
pub(crate) struct InputSides {
    pub(crate) name: String,
    pub(crate) current: String,
    pub(crate) omitted_when_empty: bool,
    ours: Ours,
    pub(crate) user_changed: bool,
    pub(crate) theirs_changed: bool,
    /// Both changed it, to the same value.
    same_change: bool,
}

impl InputSides {
    /// Changed on both sides, differently.
    pub(crate) fn overlaps(&self) -> bool {
        self.user_changed && self.theirs_changed && !self.same_change
    }
}

/// Classifies every input; `None` when the token has no digest per input
/// (too many inputs) or the form's inputs changed in number.
pub(crate) fn classify(
    base: &[u64],
    key: &Key,
    current: &FormState,
    now: &StateDigests,
    submitted: &[(String, String)],
) -> Option<Vec<InputSides>> {
    let inputs: Vec<_> = current.inputs().collect();
    if base.len() != inputs.len() || now.inputs.len() != inputs.len() || inputs.is_empty() {
        return None;
    }
    let sides = inputs
        .iter()
        .zip(base.iter().zip(&now.inputs))
        .map(|(entry, (&base, &now))| {
            let name = entry.name();
            let mut values = submitted.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
            let ours = match (values.next(), values.next()) {
                (None, _) => Ours::Absent,
                (Some(v), None) => Ours::One(v.clone()),
                (Some(_), Some(_)) => Ours::Many,
            };
            let ours_digest = match &ours {
                Ours::Absent => Some(input_digest(name, "", key)),
                Ours::One(v) => Some(input_digest(name, v, key)),
                Ours::Many => None,
            };
            InputSides {
                name: name.to_owned(),
                current: entry.value().to_owned(),
                omitted_when_empty: entry.omitted_when_empty(),
                user_changed: ours_digest != Some(base),
                theirs_changed: now != base,
                same_change: ours_digest == Some(now),
                ours,
            }
        })
        .collect();
    Some(sides)
}

/// The submitted fields with every input the user did not change set to
/// its current value: what the user meant, on top of the data as it is now.
pub(crate) fn rebase(
    submitted: &[(String, String)],
    sides: &[InputSides],
) -> Vec<(String, String)> {
    let take_current = |name: &str| {
        sides
            .iter()
            .find(|s| s.name == name)
            .filter(|s| !s.user_changed && s.theirs_changed)
    };
    let mut out = Vec::with_capacity(submitted.len() + 2);
    let mut done: Vec<&str> = Vec::new();
    for (name, value) in submitted {
        match take_current(name) {
            Some(side) => {
                if done.contains(&side.name.as_str()) {
                    continue;
                }
                done.push(&side.name);
                if !(side.current.is_empty() && side.omitted_when_empty) {
                    out.push((name.clone(), side.current.clone()));
                }
            }
            None => out.push((name.clone(), value.clone())),
        }
    }
    for side in sides {
        let absent = side.ours == Ours::Absent;
        if absent
            && !side.user_changed
            && side.theirs_changed
            && !(side.current.is_empty() && side.omitted_when_empty)
        {
            out.push((side.name.clone(), side.current.clone()));
        }
    }
    out
}

/// An urlencoded body of `pairs`.
pub(crate) fn encode(pairs: &[(String, String)]) -> Bytes {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    Bytes::from(serializer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes(&[5; 32]).unwrap()
    }

    fn form(name: &str, price: &str, active: bool) -> FormState {
        let mut s = FormState::new();
        s.key("id", &1)
            .input("name", name)
            .input("price", price)
            .input("active", &active);
        s
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn disjoint_edits_rebase_onto_theirs() {
        let k = key();
        let base = StateDigests::of(&form("Lamp", "10", true), &k);
        // Someone else changed the price and unchecked "active".
        let now_state = form("Lamp", "12", false);
        let now = StateDigests::of(&now_state, &k);
        // The user changed the name only; the stale price and checkbox come back.
        let ours = pairs(&[
            ("t", "tok"),
            ("name", "Floor lamp"),
            ("price", "10"),
            ("active", "on"),
        ]);
        let sides = classify(&base.inputs, &k, &now_state, &now, &ours).unwrap();
        assert!(!sides.iter().any(InputSides::overlaps));
        assert_eq!(
            rebase(&ours, &sides),
            pairs(&[("t", "tok"), ("name", "Floor lamp"), ("price", "12")]),
            "the unchecked checkbox is left out, as a browser would"
        );
    }

    #[test]
    fn absent_checkbox_and_same_changes() {
        let k = key();
        let base = StateDigests::of(&form("Lamp", "10", false), &k);
        let now_state = form("Lamp", "11", true);
        let now = StateDigests::of(&now_state, &k);
        // Unchecked (absent) as rendered; price changed to the same value.
        let ours = pairs(&[("name", "Lamp"), ("price", "11")]);
        let sides = classify(&base.inputs, &k, &now_state, &now, &ours).unwrap();
        assert!(!sides.iter().any(InputSides::overlaps), "{sides:?}");
        assert_eq!(
            rebase(&ours, &sides),
            pairs(&[("name", "Lamp"), ("price", "11"), ("active", "on")])
        );
    }

    #[test]
    fn overlapping_and_multi_value_edits() {
        let k = key();
        let base = StateDigests::of(&form("Lamp", "10", true), &k);
        let now_state = form("Desk lamp", "10", true);
        let now = StateDigests::of(&now_state, &k);
        let ours = pairs(&[("name", "Floor lamp"), ("price", "10"), ("active", "on")]);
        let sides = classify(&base.inputs, &k, &now_state, &now, &ours).unwrap();
        let overlapping: Vec<_> = sides
            .iter()
            .filter(|s| s.overlaps())
            .map(|s| &s.name)
            .collect();
        assert_eq!(overlapping, ["name"]);
        let many = pairs(&[
            ("name", "a"),
            ("name", "b"),
            ("price", "10"),
            ("active", "on"),
        ]);
        let sides = classify(&base.inputs, &k, &now_state, &now, &many).unwrap();
        assert!(sides[0].user_changed && sides[0].overlaps());
    }
}
