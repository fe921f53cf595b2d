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
//! or its `rename`. Values are compared as a browser submits them (see
//! [`Control`]): line breaks as CRLF, a textarea's leading newline dropped.
//! A field missing from the submission is an unchecked checkbox or radio
//! group when the input is one (it counts as submitted empty), and else a
//! disabled control, which a browser never submits: not changed by the
//! user. A field submitted several times (a multi-select, checkbox groups)
//! cannot be compared with one rendered value: it counts as changed by the
//! user.
//!
//! With merging on (`with_merge(true)`), a stale submission passes when no
//! context value changed and no input was changed on both sides (to
//! different values): the body is rewritten so that every input the user did
//! not change carries its current value, written as the browser would have
//! sent it (an unchecked box left out), and the handler's ordinary "UPDATE
//! every column" cannot write a stale value back. Every other field passes
//! through byte for byte as submitted (a page in windows-1252 sends bytes
//! that are not UTF-8). Only urlencoded bodies are merged; a multipart
//! submission (files cannot be re-sent) conflicts as usual.
//!
//! Without merging, the same classification pre-fills the conflict page: the
//! user's changes on top of the current values.

use std::borrow::Cow;

use bytes::Bytes;

use crate::entry::{Control, crlf};
use crate::fingerprint::{InputDigester, StateDigests};
use crate::key::Key;
use crate::state::FormState;

/// What the user submitted for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ours {
    Absent,
    One(String),
    Many,
}

/// One input of the form, seen from all three sides.
#[derive(Debug, Clone)]
pub(crate) struct InputSides {
    pub(crate) name: String,
    /// The value it renders now.
    pub(crate) current: String,
    control: Control,
    pub(crate) ours: Ours,
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

    /// Submitting it overwrites nothing: nobody else changed it, or the
    /// user submits exactly its current value (as a browser submits it).
    pub(crate) fn overwrites_nothing(&self) -> bool {
        !self.theirs_changed || self.same_change
    }

    /// Someone else changed it, and the user submits exactly its value now:
    /// not a conflict.
    pub(crate) fn settled(&self) -> bool {
        self.theirs_changed && self.same_change
    }

    /// Someone else changed it and the user did not: it takes its value now.
    fn takes_current(&self) -> bool {
        !self.user_changed && self.theirs_changed
    }

    /// Its current value as a browser submits it; `None` when a browser
    /// leaves it out (an unchecked box).
    fn current_submitted(&self) -> Option<Cow<'_, str>> {
        let value = self.control.as_submitted(&self.current);
        (!(value.is_empty() && self.control.absent_when_empty())).then_some(value)
    }

    /// Left out of the submission, and to be added with its value now (a
    /// checkbox someone else checked). A disabled control, which a browser
    /// never submits, stays out.
    fn added(&self) -> Option<Cow<'_, str>> {
        let add =
            self.control.absent_when_empty() && self.ours == Ours::Absent && self.takes_current();
        add.then(|| self.current_submitted()).flatten()
    }
}

/// Classifies every input; `None` when the token has no digest per input
/// (too many inputs) or the form's inputs changed in number.
pub(crate) fn classify(
    base: &[u64],
    key: &Key,
    form_name: &str,
    current: &FormState,
    now: &StateDigests,
    submitted: &[(String, String)],
) -> Option<Vec<InputSides>> {
    let inputs: Vec<_> = current.inputs().collect();
    if base.len() != inputs.len() || now.inputs.len() != inputs.len() || inputs.is_empty() {
        return None;
    }
    let digester = InputDigester::new(key, form_name, current);
    let sides = inputs
        .iter()
        .zip(base.iter().zip(&now.inputs))
        .map(|(entry, (&base, &now))| {
            let (name, control) = (entry.name(), entry.control());
            let mut values = submitted.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
            let ours = match (values.next(), values.next()) {
                (None, _) => Ours::Absent,
                (Some(v), None) => Ours::One(v.clone()),
                (Some(_), Some(_)) => Ours::Many,
            };
            let ours_digest = match &ours {
                Ours::Absent if control.absent_when_empty() => Some(digester.submitted(name, "")),
                // A disabled control: the user could not change it.
                Ours::Absent => Some(base),
                Ours::One(v) => Some(digester.submitted(name, &crlf(v))),
                Ours::Many => None,
            };
            InputSides {
                name: name.to_owned(),
                current: entry.value().to_owned(),
                control,
                user_changed: ours_digest != Some(base),
                theirs_changed: now != base,
                same_change: ours_digest == Some(now),
                ours,
            }
        })
        .collect();
    Some(sides)
}

/// The side of input `name`, when it takes its current value.
fn taking_current<'s>(sides: &'s [InputSides], name: &str) -> Option<&'s InputSides> {
    sides
        .iter()
        .find(|s| s.name == name)
        .filter(|s| s.takes_current())
}

/// The submitted fields with every input the user did not change set to
/// its current value: what the user meant, on top of the data as it is now.
pub(crate) fn rebase(
    submitted: &[(String, String)],
    sides: &[InputSides],
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(submitted.len() + 2);
    let mut done: Vec<&str> = Vec::new();
    for (name, value) in submitted {
        match taking_current(sides, name) {
            Some(side) => {
                if done.contains(&side.name.as_str()) {
                    continue;
                }
                done.push(&side.name);
                if let Some(now) = side.current_submitted() {
                    out.push((name.clone(), now.into_owned()));
                }
            }
            None => out.push((name.clone(), value.clone())),
        }
    }
    for side in sides {
        if let Some(now) = side.added() {
            out.push((side.name.clone(), now.into_owned()));
        }
    }
    out
}

/// [`rebase`] on the urlencoded body itself: each input that takes its
/// current value is written anew (once, where it first was; left out when a
/// browser would leave it out), and every other byte of `body` is kept as
/// submitted.
pub(crate) fn splice(body: &[u8], sides: &[InputSides]) -> Bytes {
    let mut out: Vec<u8> = Vec::with_capacity(body.len() + 64);
    let mut done: Vec<&str> = Vec::new();
    let push = |out: &mut Vec<u8>, piece: &[u8]| {
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(piece);
    };
    for piece in body.split(|&b| b == b'&') {
        let name = form_urlencoded::parse(piece).next().map(|(name, _)| name);
        let Some(side) = name.and_then(|name| taking_current(sides, &name)) else {
            push(&mut out, piece);
            continue;
        };
        if done.contains(&side.name.as_str()) {
            continue;
        }
        done.push(&side.name);
        if let Some(now) = side.current_submitted() {
            let raw_name = piece.split(|&b| b == b'=').next().unwrap_or_default();
            push(&mut out, &pair(raw_name, &now));
        }
    }
    for side in sides {
        if let Some(now) = side.added() {
            let name: String = form_urlencoded::byte_serialize(side.name.as_bytes()).collect();
            push(&mut out, &pair(name.as_bytes(), &now));
        }
    }
    Bytes::from(out)
}

/// `name=value`, the name as given (already encoded), the value encoded.
fn pair(name: &[u8], value: &str) -> Vec<u8> {
    let mut out = name.to_vec();
    out.push(b'=');
    out.extend(form_urlencoded::byte_serialize(value.as_bytes()).flat_map(str::bytes));
    out
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
        let base = StateDigests::of(&form("Lamp", "10", true), "f", &k);
        // Someone else changed the price and unchecked "active".
        let now_state = form("Lamp", "12", false);
        let now = StateDigests::of(&now_state, "f", &k);
        // The user changed the name only; the stale price and checkbox come back.
        let ours = pairs(&[
            ("t", "tok"),
            ("name", "Floor lamp"),
            ("price", "10"),
            ("active", "on"),
        ]);
        let sides = classify(&base.inputs, &k, "f", &now_state, &now, &ours).unwrap();
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
        let base = StateDigests::of(&form("Lamp", "10", false), "f", &k);
        let now_state = form("Lamp", "11", true);
        let now = StateDigests::of(&now_state, "f", &k);
        // Unchecked (absent) as rendered; price changed to the same value.
        let ours = pairs(&[("name", "Lamp"), ("price", "11")]);
        let sides = classify(&base.inputs, &k, "f", &now_state, &now, &ours).unwrap();
        assert!(!sides.iter().any(InputSides::overlaps), "{sides:?}");
        assert_eq!(
            rebase(&ours, &sides),
            pairs(&[("name", "Lamp"), ("price", "11"), ("active", "on")])
        );
    }

    #[test]
    fn overlapping_and_multi_value_edits() {
        let k = key();
        let base = StateDigests::of(&form("Lamp", "10", true), "f", &k);
        let now_state = form("Desk lamp", "10", true);
        let now = StateDigests::of(&now_state, "f", &k);
        let ours = pairs(&[("name", "Floor lamp"), ("price", "10"), ("active", "on")]);
        let sides = classify(&base.inputs, &k, "f", &now_state, &now, &ours).unwrap();
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
        let sides = classify(&base.inputs, &k, "f", &now_state, &now, &many).unwrap();
        assert!(sides[0].user_changed && sides[0].overlaps());
    }

    #[test]
    fn splice_keeps_every_other_byte() {
        let k = key();
        let base = StateDigests::of(&form("Lamp", "10", true), "f", &k);
        let now_state = form("Lamp", "12", false);
        let now = StateDigests::of(&now_state, "f", &k);
        let body = b"t=tok&name=Caf%E9&price=10&active=on&x=a+b%2F";
        let ours = pairs(&[
            ("t", "tok"),
            ("name", "Caf\u{FFFD}"),
            ("price", "10"),
            ("active", "on"),
            ("x", "a b/"),
        ]);
        let sides = classify(&base.inputs, &k, "f", &now_state, &now, &ours).unwrap();
        assert_eq!(
            &splice(body, &sides)[..],
            b"t=tok&name=Caf%E9&price=12&x=a+b%2F"
        );
    }
}
