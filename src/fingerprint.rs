//! Keyed digests of a form's state: the fingerprint and its companions.
//!
//! # Canonical encoding (version 2)
//!
//! Every entry of a [`FormState`] is encoded as
//!
//! ```text
//! tag (1 byte: 'I' input, 'C' context, 'K' key)
//! u64 little-endian byte length of the name ‖ name (UTF-8)
//! u64 little-endian byte length of the value ‖ value (UTF-8, as rendered)
//! ```
//!
//! Lengths come first, so `["ab", "c"]` and `["a", "bc"]` never encode alike,
//! and the tag keeps an input from passing for a context value.
//!
//! From these, with the 192-byte xxh3 secret and the HMAC input subkey
//! derived from the key (see [`Key`]); `form` is `u64 length ‖ form name`:
//!
//! | digest | input | function |
//! |---|---|---|
//! | resource digest *r* | `'R'` ‖ every key entry, in order | xxh3-64 |
//! | fingerprint | `'P'` ‖ *r* ‖ xxh3-128 of (`'F'` ‖ every input and context entry, in order) ‖ form | xxh3-128 |
//! | context digest | `'Q'` ‖ *r* ‖ xxh3-64 of (`'X'` ‖ every context entry, in order) ‖ form | xxh3-64 |
//! | per-input digest | `'B'` ‖ form ‖ u64 length ‖ `'R'`-encoding of the key entries ‖ the input's entry with its value *as submitted* ([`Control`]) | HMAC-SHA256, first 8 bytes |
//! | form digest | `'N'` ‖ form | xxh3-64 |
//!
//! (*r*, inner digests and lengths little-endian.) Every digest but the
//! resource's is bound to the form and the record: equal values in two
//! records, or two forms, give unrelated digests. The per-input digests are
//! a pseudo-random function, so a token is no oracle for a field's value.
//! Digests are written big-endian into tokens (the form digest truncated to
//! its high 32 bits). The encoding is pinned by test vectors in
//! `tests/vectors.txt`: a change to it fails the tests and would invalidate
//! every token in the wild.

use hmac::Mac;
use xxhash_rust::xxh3::{xxh3_64_with_secret, xxh3_128_with_secret};

use crate::entry::{Control, EntryKind};
use crate::key::{HmacSha256, Key};
use crate::state::FormState;

/// The most inputs that get their own digest in a token. A form with more
/// is still checked as a whole, but a conflict cannot name its fields.
pub const MAX_INPUTS: usize = 255;

/// The keyed 128-bit digest of a form's inputs and context values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u128);

/// Every keyed digest of one form state, under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDigests {
    /// Of every input and context entry.
    pub fingerprint: Fingerprint,
    /// Of the key entries: which record this is.
    pub resource: u64,
    /// Of the context entries alone.
    pub context: u64,
    /// One per input, in order; empty when the form has more than
    /// [`MAX_INPUTS`] inputs.
    pub inputs: Vec<u64>,
}

impl StateDigests {
    /// The digests of `state`, shown by form `form_name`, under `key`.
    pub fn of(state: &FormState, form_name: &str, key: &Key) -> StateDigests {
        let secret = &key.material().fingerprint_secret;
        let count = state.input_count();
        let inputs = if count > MAX_INPUTS {
            Vec::new()
        } else {
            let digester = InputDigester::new(key, form_name, state);
            // Sized up front: the iterator cannot tell its length.
            let mut inputs = Vec::with_capacity(count);
            inputs.extend(
                state
                    .inputs()
                    .map(|e| digester.digest(e.control(), e.name(), e.value())),
            );
            inputs
        };
        let (fingerprint, resource) = check_digests(state, form_name, key);
        let context = xxh3_64_with_secret(state.context_bytes(), secret);
        StateDigests {
            fingerprint,
            resource,
            context: bind(b'Q', resource, &context.to_le_bytes(), form_name, key) as u64,
            inputs,
        }
    }
}

/// The resource digest of `state` under `key`: which record it is (the
/// record lock's key), from its key entries alone.
pub(crate) fn resource_digest(state: &FormState, key: &Key) -> u64 {
    xxh3_64_with_secret(state.resource_bytes(), &key.material().fingerprint_secret)
}

/// What a submission is checked by: the fingerprint and the resource
/// digest of `state` under `key`, without the per-input digests (needed only
/// to explain a conflict or to sign a new token).
pub(crate) fn check_digests(state: &FormState, form_name: &str, key: &Key) -> (Fingerprint, u64) {
    let secret = &key.material().fingerprint_secret;
    let resource = xxh3_64_with_secret(state.resource_bytes(), secret);
    let inner = xxh3_128_with_secret(state.state_bytes(), secret);
    (
        Fingerprint(bind(b'P', resource, &inner.to_le_bytes(), form_name, key)),
        resource,
    )
}

/// A digest bound to its record and form: xxh3-128 of `tag` ‖ `resource`
/// ‖ `inner` ‖ the form's name, length first.
fn bind(tag: u8, resource: u64, inner: &[u8], form_name: &str, key: &Key) -> u128 {
    let secret = &key.material().fingerprint_secret;
    let len = 1 + 8 + inner.len() + 8 + form_name.len();
    crate::buffer::with_buffer::<128, _>(len, |buf| {
        buf[0] = tag;
        buf[1..9].copy_from_slice(&resource.to_le_bytes());
        let at = 9 + inner.len();
        buf[9..at].copy_from_slice(inner);
        buf[at..at + 8].copy_from_slice(&(form_name.len() as u64).to_le_bytes());
        buf[at + 8..].copy_from_slice(form_name.as_bytes());
        xxh3_128_with_secret(buf, secret)
    })
}

/// The per-input digests of one form showing one record: HMAC-SHA256 (the
/// key's input subkey) of the form, the record and the input, its value as
/// a browser submits it.
pub(crate) struct InputDigester {
    /// Keyed, with the form and the record already absorbed.
    mac: HmacSha256,
}

impl InputDigester {
    /// For the inputs of form `form_name` showing the record of `state`.
    pub(crate) fn new(key: &Key, form_name: &str, state: &FormState) -> InputDigester {
        let mut mac = key.material().input_digests.clone();
        let resource = state.resource_bytes();
        mac.update(b"B");
        mac.update(&(form_name.len() as u64).to_le_bytes());
        mac.update(form_name.as_bytes());
        mac.update(&(resource.len() as u64).to_le_bytes());
        mac.update(resource);
        InputDigester { mac }
    }

    /// The digest of input `name` rendered as `value` by `control`.
    pub(crate) fn digest(&self, control: Control, name: &str, value: &str) -> u64 {
        self.submitted(name, &control.as_submitted(value))
    }

    /// The digest of input `name` submitted as `value` (line breaks
    /// already as CRLF; `""` for an absent checkbox).
    pub(crate) fn submitted(&self, name: &str, value: &str) -> u64 {
        let mut mac = self.mac.clone();
        // The entry's canonical encoding, laid out on the stack for values
        // of common length.
        crate::buffer::with_buffer::<256, _>(17 + name.len() + value.len(), |buf| {
            buf[0] = EntryKind::Input.tag();
            buf[1..9].copy_from_slice(&(name.len() as u64).to_le_bytes());
            let at = 9 + name.len();
            buf[9..at].copy_from_slice(name.as_bytes());
            buf[at..at + 8].copy_from_slice(&(value.len() as u64).to_le_bytes());
            buf[at + 8..].copy_from_slice(value.as_bytes());
            mac.update(buf);
        });
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("8 bytes"))
    }
}

/// The keyed digest of a form's name.
pub fn form_digest(form_name: &str, key: &Key) -> u64 {
    let secret = &key.material().fingerprint_secret;
    // Every submission digests the form's name: no allocation for a name
    // of common length.
    crate::buffer::with_buffer::<128, _>(9 + form_name.len(), |buf| {
        buf[0] = b'N';
        buf[1..9].copy_from_slice(&(form_name.len() as u64).to_le_bytes());
        buf[9..].copy_from_slice(form_name.as_bytes());
        xxh3_64_with_secret(buf, secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes(&[b; 32]).unwrap()
    }

    fn state(entries: &[(&str, &str)]) -> FormState {
        let mut s = FormState::new();
        for (n, v) in entries {
            s.input(n, *v);
        }
        s
    }

    fn fingerprint(s: &FormState, k: &Key) -> Fingerprint {
        StateDigests::of(s, "f", k).fingerprint
    }

    fn digests(s: &FormState, k: &Key) -> StateDigests {
        StateDigests::of(s, "f", k)
    }

    #[test]
    fn boundaries_are_unambiguous() {
        let k = key(1);
        let a = state(&[("x", "ab"), ("y", "c")]);
        let b = state(&[("x", "a"), ("y", "bc")]);
        assert_ne!(fingerprint(&a, &k), fingerprint(&b, &k));
        let c = state(&[("xa", "b")]);
        let d = state(&[("x", "ab")]);
        assert_ne!(fingerprint(&c, &k), fingerprint(&d, &k));
    }

    #[test]
    fn kind_matters() {
        let k = key(1);
        let mut a = FormState::new();
        a.input("x", "1");
        let mut b = FormState::new();
        b.context("x", "1");
        assert_ne!(fingerprint(&a, &k), fingerprint(&b, &k));
        assert_ne!(digests(&a, &k).context, digests(&b, &k).context);
    }

    #[test]
    fn form_digest_of_long_names_as_of_short_ones() {
        let k = key(4);
        for len in [0, 1, 118, 119, 120, 500] {
            let name = "n".repeat(len);
            let mut buf = vec![b'N'];
            buf.extend_from_slice(&(name.len() as u64).to_le_bytes());
            buf.extend_from_slice(name.as_bytes());
            let expected = xxh3_64_with_secret(&buf, &k.material().fingerprint_secret);
            assert_eq!(form_digest(&name, &k), expected, "length {len}");
        }
    }

    #[test]
    fn key_changes_everything() {
        let s = state(&[("x", "1")]);
        assert_ne!(digests(&s, &key(1)), digests(&s, &key(2)));
        assert_ne!(form_digest("f", &key(1)), form_digest("f", &key(2)));
    }

    #[test]
    fn a_submitted_value_digests_like_the_rendered_one() {
        let k = key(3);
        let s = state(&[("x", "1"), ("name", "é ü"), ("notes", "\nline1\nline2")]);
        let d = digests(&s, &k);
        let submitted = InputDigester::new(&k, "f", &s);
        assert_eq!(d.inputs[1], submitted.submitted("name", "é ü"));
        assert_ne!(d.inputs[1], submitted.submitted("name", "e u"));
        // As a browser sends an untouched textarea back.
        assert_eq!(d.inputs[2], submitted.submitted("notes", "line1\r\nline2"));
    }

    #[test]
    fn equal_values_in_other_records_or_forms_digest_apart() {
        let k = key(3);
        let record = |id: i64| {
            let mut s = FormState::new();
            s.key("id", &id).input("active", "on").context("stock", &5);
            s
        };
        let (one, two) = (record(1), record(2));
        let a = StateDigests::of(&one, "item", &k);
        let b = StateDigests::of(&two, "item", &k);
        assert_ne!(a.inputs, b.inputs);
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(a.context, b.context);
        let c = StateDigests::of(&one, "other", &k);
        assert_ne!(a.inputs, c.inputs);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.resource, c.resource, "the record is the record");
        // The per-input digest is HMAC-SHA256 of the documented bytes.
        let mut mac = k.material().input_digests.clone();
        mac.update(b"B");
        mac.update(&4u64.to_le_bytes());
        mac.update(b"item");
        mac.update(&(one.resource_bytes().len() as u64).to_le_bytes());
        mac.update(one.resource_bytes());
        mac.update(b"I");
        mac.update(&6u64.to_le_bytes());
        mac.update(b"active");
        mac.update(&2u64.to_le_bytes());
        mac.update(b"on");
        let want = u64::from_be_bytes(mac.finalize().into_bytes()[..8].try_into().unwrap());
        assert_eq!(a.inputs[0], want);
    }

    #[test]
    fn per_input_digests_follow_their_input_only() {
        let k = key(1);
        let a = digests(&state(&[("x", "1"), ("y", "2")]), &k);
        let b = digests(&state(&[("x", "1"), ("y", "3")]), &k);
        assert_eq!(a.inputs[0], b.inputs[0]);
        assert_ne!(a.inputs[1], b.inputs[1]);
    }
}
