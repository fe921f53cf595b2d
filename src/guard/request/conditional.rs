//! Conditional requests (RFC 9110 §13) from the same fingerprint: `ETag`, `If-Match`, `If-None-Match`.
//!
//! The guard gives every successful GET/HEAD answer an entity tag derived
//! from the keyed fingerprint of the form's state:
//!
//! ```text
//! "<key id>.<base64url(resource digest ‖ keyed xxh3-128 of form and fingerprint)>"
//! ```
//!
//! It reveals nothing about the data (every part is keyed) and changes
//! whenever anything the form shows changes. A page rewritten by auto-embed
//! gets no tag: a browser revalidating it would be answered 304 and show the
//! page again with its old token, which expires (after the maximum age,
//! reloading would then never get a fresh one).
//!
//! On unsafe methods an `If-Match` carrying a current tag is an alternative
//! to the form token for API clients; a stale one is answered 412; a request
//! with neither a token nor a precondition 428 (RFC 6585), unless the guard
//! is told preconditions are optional.

use http::{HeaderMap, HeaderValue, header};

use crate::etag::{etag, parse_ours};
use crate::fingerprint::StateDigests;
use crate::key::{Key, KeyRing};
use crate::state::FormState;

/// A parsed `If-Match` or `If-None-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// `*`
    Any,
    /// A list of entity tags: (weak, opaque tag with its quotes).
    Tags(Vec<(bool, String)>),
}

/// The most entity tags `If-Match` and `If-None-Match` may list, over all
/// their fields (400 beyond): a client has one tag per record it read.
pub(crate) const MAX_TAGS: usize = 16;

/// Why a precondition header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// Reads every `name` field (a list may span several fields).
pub(crate) fn condition(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<Condition>, Malformed> {
    let mut values = headers.get_all(&name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut tags = Vec::new();
    let mut any = false;
    for value in values {
        let text = value
            .to_str()
            .map_err(|_| Malformed("it is not ASCII text"))?;
        parse_list(text, &mut tags, &mut any)?;
    }
    match (any, tags.is_empty()) {
        (true, true) => Ok(Some(Condition::Any)),
        (true, false) => Err(Malformed("`*` cannot be combined with entity tags")),
        (false, true) => Err(Malformed("it lists no entity tag")),
        (false, false) => Ok(Some(Condition::Tags(tags))),
    }
}

fn parse_list(
    mut text: &str,
    tags: &mut Vec<(bool, String)>,
    any: &mut bool,
) -> Result<(), Malformed> {
    loop {
        text = text.trim_start_matches([' ', '\t', ',']);
        if text.is_empty() {
            return Ok(());
        }
        if let Some(rest) = text.strip_prefix('*') {
            *any = true;
            text = rest;
        } else {
            let (weak, rest) = match text.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            if !rest.starts_with('"') {
                return Err(Malformed("an entity tag must be a quoted string"));
            }
            let end = rest[1..]
                .find('"')
                .ok_or(Malformed("an entity tag is not closed"))?
                + 2;
            let opaque = &rest[..end];
            // etagc = %x21 / %x23-7E / obs-text
            if !opaque[1..end - 1]
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
            {
                return Err(Malformed("an entity tag holds a character it may not"));
            }
            if tags.len() == MAX_TAGS {
                return Err(Malformed("it lists more than 16 entity tags"));
            }
            tags.push((weak, opaque.to_owned()));
            text = &rest[end..];
        }
        let next = text.trim_start_matches([' ', '\t']);
        if !(next.is_empty() || next.starts_with(',')) {
            return Err(Malformed("entity tags must be separated by commas"));
        }
        text = next;
    }
}

/// The record's current entity tag under each key a listed tag names,
/// each made once however many tags name the key.
pub(crate) struct CurrentTags<'a> {
    keys: &'a KeyRing,
    form_name: &'a str,
    now: &'a dyn Fn(&Key) -> StateDigests,
    made: Vec<(u32, String)>,
}

impl<'a> CurrentTags<'a> {
    pub(crate) fn new(
        keys: &'a KeyRing,
        form_name: &'a str,
        now: &'a dyn Fn(&Key) -> StateDigests,
    ) -> CurrentTags<'a> {
        CurrentTags {
            keys,
            form_name,
            now,
            made: Vec::new(),
        }
    }

    /// Whether `opaque` (one of our tags, quotes included) is the record's
    /// tag now, under the key it names.
    fn matches(&mut self, opaque: &str) -> bool {
        let Some((key_id, _)) = parse_ours(opaque) else {
            return false;
        };
        if let Some((_, tag)) = self.made.iter().find(|(id, _)| *id == key_id) {
            return tag == opaque;
        }
        let Some(key) = self.keys.get(key_id) else {
            return false;
        };
        let tag = etag(key_id, key, self.form_name, &(self.now)(key));
        let matches = tag == opaque;
        self.made.push((key_id, tag));
        matches
    }
}

/// `If-Match`: true when the state exists and one listed strong tag is the
/// state's tag now, under the key the tag names (strong comparison).
pub(crate) fn if_match(condition: &Condition, now: &mut CurrentTags<'_>) -> bool {
    match condition {
        Condition::Any => true,
        Condition::Tags(tags) => tags
            .iter()
            .any(|(weak, opaque)| !weak && now.matches(opaque)),
    }
}

/// After `If-Match` failed: whether it failed for its weak tags alone,
/// that is every listed tag is weak, or a weak one is the current tag (RFC
/// 9110 §13.1.1: `If-Match` compares strongly, so `W/"…"` never matches).
fn only_weak_could_match(condition: &Condition, now: &mut CurrentTags<'_>) -> bool {
    let Condition::Tags(tags) = condition else {
        return false;
    };
    tags.iter().all(|(weak, _)| *weak)
        || tags
            .iter()
            .any(|(weak, opaque)| *weak && now.matches(opaque))
}

/// `If-None-Match`: false when the state exists and matches `*` or one
/// listed tag (weak comparison).
pub(crate) fn if_none_match(condition: &Condition, now: &mut CurrentTags<'_>) -> bool {
    match condition {
        Condition::Any => false,
        Condition::Tags(tags) => !tags.iter().any(|(_, opaque)| now.matches(opaque)),
    }
}

/// Sets `ETag` unless the handler set one.
pub(crate) fn set_etag(headers: &mut HeaderMap, tag: String) {
    if headers.contains_key(header::ETAG) {
        return;
    }
    // From the `String`'s own buffer, without a copy.
    if let Ok(value) = HeaderValue::try_from(tag) {
        headers.insert(header::ETAG, value);
    }
}

/// The precondition headers of a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestPreconditions {
    if_match: Option<Condition>,
    if_none_match: Option<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// No listed tag is the record's current tag: it changed.
    IfMatch,
    /// `If-Match` failed because of weak tags alone: the record may well be
    /// unchanged, but a weak tag never matches `If-Match`.
    WeakTag,
    IfNoneMatch,
}

impl RequestPreconditions {
    pub(crate) fn read(
        headers: &http::HeaderMap,
    ) -> Result<RequestPreconditions, crate::guard::Rejection> {
        let read = |name: http::HeaderName, header: &'static str| {
            condition(headers, name).map_err(|Malformed(reason)| {
                crate::guard::Rejection::BadPrecondition { header, reason }
            })
        };
        Ok(RequestPreconditions {
            if_match: read(header::IF_MATCH, "If-Match")?,
            if_none_match: read(header::IF_NONE_MATCH, "If-None-Match")?,
        })
    }

    pub(crate) fn has_if_match(&self) -> bool {
        self.if_match.is_some()
    }

    pub(crate) fn any(&self) -> bool {
        self.if_match.is_some() || self.if_none_match.is_some()
    }

    /// RFC 9110 §13.2.2: If-Match first, then If-None-Match.
    pub(crate) fn evaluate(
        &self,
        keys: &crate::KeyRing,
        form: &str,
        current: &FormState,
    ) -> Result<(), Failed> {
        let digests = |key: &crate::Key| StateDigests::of(current, form, key);
        let mut now = CurrentTags::new(keys, form, &digests);
        if let Some(condition) = &self.if_match {
            if !if_match(condition, &mut now) {
                return Err(if only_weak_could_match(condition, &mut now) {
                    Failed::WeakTag
                } else {
                    Failed::IfMatch
                });
            }
        }
        if let Some(condition) = &self.if_none_match {
            if !if_none_match(condition, &mut now) {
                return Err(Failed::IfNoneMatch);
            }
        }
        Ok(())
    }

    /// Whether these make a write conditional on the record's state, as a
    /// required precondition must: `If-Match`, or `If-None-Match: *` (create
    /// only). `If-None-Match` with tags holds for every state but those
    /// few: it guards nothing against a lost update.
    pub(crate) fn guard_the_write(&self) -> bool {
        self.if_match.is_some() || self.if_none_match == Some(Condition::Any)
    }
}

impl Failed {
    /// The refusal: 412 naming the header that does not hold.
    pub(crate) fn rejection(self) -> crate::guard::Rejection {
        match self {
            Failed::IfMatch => crate::guard::Rejection::PreconditionFailed { header: "If-Match" },
            Failed::WeakTag => crate::guard::Rejection::WeakIfMatch,
            Failed::IfNoneMatch => crate::guard::Rejection::PreconditionFailed {
                header: "If-None-Match",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state::FormState;

    fn state(v: &str) -> FormState {
        let mut s = FormState::new();
        s.key("id", &1).input("name", v);
        s
    }

    fn list(v: &'static str) -> Result<Option<Condition>, Malformed> {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static(v));
        condition(&h, header::IF_MATCH)
    }

    #[test]
    fn parse_lists() {
        assert_eq!(list("*").unwrap(), Some(Condition::Any));
        assert_eq!(
            list(r#""a", W/"b" ,"c""#).unwrap(),
            Some(Condition::Tags(vec![
                (false, "\"a\"".into()),
                (true, "\"b\"".into()),
                (false, "\"c\"".into())
            ]))
        );
        assert!(list("abc").is_err());
        assert!(list(r#""a"  "b""#).is_err());
        assert!(list(r#""a"#).is_err());
        assert!(list(r#"*, "a""#).is_err());
        assert!(list(" , ").is_err());
        assert_eq!(
            condition(&HeaderMap::new(), header::IF_MATCH).unwrap(),
            None
        );
    }

    #[test]
    fn tags_follow_the_state_and_the_key() {
        let keys = KeyRing::new(1, Key::from_bytes(&[1; 32]).unwrap())
            .rotate(2, Key::from_bytes(&[2; 32]).unwrap());
        let k1 = keys.get(1).unwrap();
        let tag1 = etag(1, k1, "f", &StateDigests::of(&state("a"), "f", k1));
        assert_eq!(parse_ours(&tag1).map(|(id, _)| id), Some(1));
        let now_a = |k: &Key| StateDigests::of(&state("a"), "f", k);
        let now_b = |k: &Key| StateDigests::of(&state("b"), "f", k);
        let a = || CurrentTags::new(&keys, "f", &now_a);
        let b = || CurrentTags::new(&keys, "f", &now_b);
        let cond = Condition::Tags(vec![(false, tag1.clone())]);
        assert!(
            if_match(&cond, &mut a()),
            "an older key's tag still matches"
        );
        assert!(!if_match(&cond, &mut b()));
        assert!(
            !if_match(&cond, &mut CurrentTags::new(&keys, "g", &now_a)),
            "another form's tag"
        );
        let weak = Condition::Tags(vec![(true, tag1.clone())]);
        assert!(!if_match(&weak, &mut a()), "If-Match compares strongly");
        assert!(!if_none_match(&weak, &mut a()), "If-None-Match weakly");
        assert!(if_none_match(&weak, &mut b()));
        assert!(!if_none_match(&Condition::Any, &mut a()));
        let gone = KeyRing::new(2, Key::from_bytes(&[2; 32]).unwrap());
        assert!(
            !if_match(&cond, &mut CurrentTags::new(&gone, "f", &now_a)),
            "a removed key's tag"
        );
    }

    #[test]
    fn digests_are_made_once_per_key_and_lists_are_capped() {
        let keys = KeyRing::new(1, Key::from_bytes(&[1; 32]).unwrap());
        let made = std::cell::Cell::new(0);
        let now = |k: &Key| {
            made.set(made.get() + 1);
            StateDigests::of(&state("a"), "f", k)
        };
        let stale: Vec<(bool, String)> = (0..MAX_TAGS)
            .map(|i| (false, format!("\"1.{}{i:02}\"", "A".repeat(30))))
            .collect();
        assert!(!if_match(
            &Condition::Tags(stale),
            &mut CurrentTags::new(&keys, "f", &now)
        ));
        assert_eq!(made.get(), 1, "one key, one set of digests");

        let many = vec![r#""a""#; MAX_TAGS].join(", ");
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(&many).unwrap());
        assert!(condition(&h, header::IF_MATCH).is_ok(), "{MAX_TAGS} tags");
        h.append(header::IF_MATCH, HeaderValue::from_static(r#""b""#));
        assert_eq!(
            condition(&h, header::IF_MATCH),
            Err(Malformed("it lists more than 16 entity tags")),
            "over several fields"
        );
    }
}
