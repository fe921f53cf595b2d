//! The keyed entity tag (RFC 9110 §8.8.3) of a form's state: the same
//! fingerprint as the token, for API clients' `If-Match` / `If-None-Match`.
//!
//! ```text
//! "<key id>.<base64url(resource digest ‖ keyed xxh3-128 of form and fingerprint)>"
//! ```
//!
//! It reveals nothing about the data (every part is keyed) and changes
//! whenever anything the form shows changes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use xxhash_rust::xxh3::xxh3_128_with_secret;

use crate::fingerprint::{StateDigests, form_digest};
use crate::key::Key;

/// The entity tag of a state under one key, quotes included.
pub(crate) fn etag(key_id: u32, key: &Key, form_name: &str, digests: &StateDigests) -> String {
    let mut input = [0u8; 1 + 8 + 16];
    input[0] = b'E';
    input[1..9].copy_from_slice(&form_digest(form_name, key).to_be_bytes());
    input[9..].copy_from_slice(&digests.fingerprint.0.to_be_bytes());
    let tag = xxh3_128_with_secret(&input, &key.material().fingerprint_secret);
    let mut raw = [0u8; 24];
    raw[..8].copy_from_slice(&digests.resource.to_be_bytes());
    raw[8..].copy_from_slice(&tag.to_be_bytes());
    // `"<key id>.<32 base64url characters>"`, written without the
    // formatter: this runs on every tagged GET.
    let mut etag = String::with_capacity(45);
    etag.push('"');
    for &d in crate::value::decimal(u64::from(key_id), &mut [0; 20]) {
        etag.push(char::from(d));
    }
    etag.push('.');
    URL_SAFE_NO_PAD.encode_string(raw, &mut etag);
    etag.push('"');
    etag
}

/// The key id and resource digest an entity tag of ours names.
pub(crate) fn parse_ours(opaque: &str) -> Option<(u32, u64)> {
    let inner = opaque.strip_prefix('"')?.strip_suffix('"')?;
    let (id, rest) = inner.split_once('.')?;
    let id: u32 = id.parse().ok()?;
    let mut raw = [0u8; 24];
    if rest.len() != 32 || URL_SAFE_NO_PAD.decode_slice(rest, &mut raw).ok()? != 24 {
        return None;
    }
    Some((id, u64::from_be_bytes(raw[..8].try_into().ok()?)))
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

    #[test]
    fn the_etag_reads_key_id_dot_base64() {
        let key = Key::from_bytes(&[9; 32]).unwrap();
        let digests = StateDigests::of(&state("n"), "f", &key);
        for id in [0, 7, 10, 99, 4_000_000_000, u32::MAX] {
            let tag = etag(id, &key, "form", &digests);
            let (prefix, b64) = tag.trim_matches('"').split_once('.').unwrap();
            assert_eq!(prefix, id.to_string());
            assert_eq!(b64.len(), 32);
            assert!(tag.starts_with('"') && tag.ends_with('"'));
            assert_eq!(parse_ours(&tag), Some((id, digests.resource)));
        }
    }
}
