//! Keyed digests of a form's state: the fingerprint and its companions.
//!
//! # Canonical encoding (version 1)
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
//! From these, with the 192-byte xxh3 secret derived from the key (see [`Key`]):
//!
//! | digest | input | function |
//! |---|---|---|
//! | fingerprint | `'F'` ‖ every input and context entry, in order | xxh3-128 |
//! | per-input digest | that input's encoded entry | xxh3-64 |
//! | resource digest | `'R'` ‖ every key entry, in order | xxh3-64 |
//! | context digest | `'X'` ‖ every context entry, in order | xxh3-64 |
//! | form digest | `'N'` ‖ u64 length ‖ form name | xxh3-64 |
//!
//! Digests are written big-endian into tokens (the form digest truncated to
//! its high 32 bits). The encoding is pinned by
//! test vectors in `tests/vectors.txt`: a change to it fails the tests and
//! would invalidate every token in the wild.

use xxhash_rust::xxh3::{xxh3_64_with_secret, xxh3_128_with_secret};

use crate::key::Key;
use crate::state::{EntryKind, FormState, encode_entry};

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
    /// The digests of `state` under `key`.
    pub fn of(state: &FormState, key: &Key) -> StateDigests {
        let secret = &key.material().fingerprint_secret;
        let count = state.input_count();
        let inputs = if count > MAX_INPUTS {
            Vec::new()
        } else {
            // Sized up front: the iterator cannot tell its length.
            let mut inputs = Vec::with_capacity(count);
            inputs.extend(
                state
                    .encoded_inputs()
                    .map(|entry| xxh3_64_with_secret(entry, secret)),
            );
            inputs
        };
        let (fingerprint, resource) = check_digests(state, key);
        StateDigests {
            fingerprint,
            resource,
            context: xxh3_64_with_secret(state.context_bytes(), secret),
            inputs,
        }
    }
}

/// What a submission is checked by: the fingerprint and the resource
/// digest of `state` under `key`, without the per-input digests (needed only
/// to explain a conflict or to sign a new token).
pub(crate) fn check_digests(state: &FormState, key: &Key) -> (Fingerprint, u64) {
    let secret = &key.material().fingerprint_secret;
    (
        Fingerprint(xxh3_128_with_secret(state.state_bytes(), secret)),
        xxh3_64_with_secret(state.resource_bytes(), secret),
    )
}

/// The keyed digest of one input as [`StateDigests::inputs`] holds it, for a
/// value that did not come from a [`FormState`] (a submitted value).
pub(crate) fn input_digest(name: &str, value: &str, key: &Key) -> u64 {
    let mut buf = Vec::with_capacity(17 + name.len() + value.len());
    encode_entry(&mut buf, EntryKind::Input, name, |buf| {
        buf.extend_from_slice(value.as_bytes())
    });
    xxh3_64_with_secret(&buf, &key.material().fingerprint_secret)
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
        StateDigests::of(s, k).fingerprint
    }

    fn digests(s: &FormState, k: &Key) -> StateDigests {
        StateDigests::of(s, k)
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
        let d = digests(&state(&[("x", "1"), ("name", "é ü")]), &k);
        assert_eq!(d.inputs[1], input_digest("name", "é ü", &k));
        assert_ne!(d.inputs[1], input_digest("name", "e u", &k));
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
