//! The signed token a form carries, as bytes: what it holds, how it is written and read.
//!
//! # Format, version 2
//!
//! A token is base64url without padding of these bytes (integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version, `2` |
//! | 4 | key id |
//! | 4 | issued at, seconds since the Unix epoch |
//! | 4 | form digest (keyed digest of [`RenderState::FORM_NAME`], high 32 bits) |
//! | 8 | resource digest (keyed digest of the key entries) |
//! | 16 | fingerprint |
//! | 8 | context digest |
//! | 1 | number of inputs *n* (0 when the form has more than [`MAX_INPUTS`]) |
//! | 8 × *n* | one digest per input, in order |
//! | 16 | HMAC-SHA256 of all the bytes before, with the signing subkey, first 16 bytes |
//!
//! A form with 20 inputs makes a token of 296 characters.
//!
//! The digests are keyed and bound to the form and the record (see
//! [`crate::fingerprint`]), the per-input ones by HMAC-SHA256, so a token reveals nothing about the
//! values it covers, not even which records share a value; the tag is
//! checked in constant time.
//!
//! Version 1 (up to 0.1.0) had the same layout with digests bound to
//! nothing but the values; a version 1 token is refused
//! ([`TokenError::UnsupportedVersion`]) with a request to reload the form.
//!
//! # Version 3: a token that names its page
//!
//! A token the guard signs for a page it serves also carries that page's
//! path and query (at most [`MAX_PAGE_LEN`] bytes; a longer one is left
//! out), so that the "reload" link of a refusal or conflict answers the
//! page the form was on even when the browser sends no `Referer` (a form
//! on `/items/1/edit` posting to a route that has no GET). It is version 3:
//! the layout of version 2 with, between the input digests and the tag,
//!
//! | bytes | field |
//! |---|---|
//! | 2 | page length *m* |
//! | *m* | the page's path and query, UTF-8 |
//!
//! and the tag covers them too: a client cannot change the page without
//! breaking the signature. A token without a page (one signed by
//! [`ConcurrencyToken::issue`] or [`Tokens::issue`](crate::Tokens::issue))
//! stays version 2, byte for byte. A server that reads version 2 only
//! refuses a version 3 token with a request to reload
//! ([`TokenError::UnsupportedVersion`]).
//!
//! The token is **not** a CSRF defence: it is bound to a form and a record,
//! not to a user's session. Use it beside a CSRF layer.
//!
//! [`TokenError::UnsupportedVersion`]: crate::TokenError::UnsupportedVersion

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;

use crate::fingerprint::{Fingerprint, MAX_INPUTS, StateDigests, form_digest};
use crate::key::{Key, KeyRing};
use crate::state::{FormState, RenderState};

/// The token format version this crate writes for a token that names no
/// page ([`ConcurrencyToken::issue`], [`Tokens::issue`](crate::Tokens::issue)).
/// A token the guard signs for a page it serves is version 3 (the module
/// docs of the format say what it adds).
pub const TOKEN_VERSION: u8 = 2;

/// The version of a token that names the page it was signed for.
pub(crate) const PAGE_TOKEN_VERSION: u8 = 3;

/// The longest page path and query (in bytes) a token carries; a page with
/// a longer URL gets a token without it.
pub const MAX_PAGE_LEN: usize = 512;

/// The form field the token travels in unless configured otherwise.
pub const DEFAULT_FIELD_NAME: &str = "_concurrency_token";

/// The request header that may carry the token instead of a form field.
pub const HEADER_NAME: &str = "x-concurrency-token";

pub(crate) const HEAD_LEN: usize = 46;
pub(crate) const TAG_LEN: usize = 16;
const MAX_TOKEN_BYTES: usize = HEAD_LEN + 8 * MAX_INPUTS + 2 + MAX_PAGE_LEN + TAG_LEN;
/// The longest text a valid token can be (a form of [`MAX_INPUTS`] inputs
/// on a page whose URL is [`MAX_PAGE_LEN`] bytes).
pub const MAX_TOKEN_LEN: usize = MAX_TOKEN_BYTES.div_ceil(3) * 4;
/// Tokens up to this long (forms of up to 40 inputs) decode into a small buffer.
pub(crate) const SHORT_TOKEN_LEN: usize = 512;

/// A signed token for one form showing one record, ready to embed.
///
/// It carries the key id, the issue time, keyed digests of the form's name,
/// the record and what the form shows, one digest per input (for forms of up
/// to [`MAX_INPUTS`] inputs) and an HMAC-SHA256 tag: it reveals nothing
/// about the values it covers. The format is versioned ([`TOKEN_VERSION`])
/// and pinned by test vectors, so tokens stay valid across releases.
///
/// The guard puts one in the request extensions on safe methods; take it as
/// an extractor and render it in your template. Its `Display` is the hidden
/// input, escaped:
///
/// ```
/// use concurrency_guard::{ConcurrencyToken, FormState, Key, KeyRing, RenderState};
///
/// struct Note { id: i64, text: String }
/// impl RenderState for Note {
///     const FORM_NAME: &'static str = "note";
///     fn render_state(&self, s: &mut FormState) {
///         s.key("id", &self.id);
///         s.input("text", &self.text);
///     }
/// }
///
/// let keys = KeyRing::from(Key::generate());
/// let token = ConcurrencyToken::issue(&keys, &Note { id: 1, text: "hi".into() });
/// let html = token.to_string();
/// assert!(html.starts_with(r#"<input type="hidden" name="_concurrency_token" value=""#));
/// ```
///
/// An auto-escaping template engine would escape that `Display` into
/// visible text. With the feature of your engine (`askama`, `minijinja`,
/// `maud`) the token renders as trusted HTML (`{{ token }}`, `(token)`);
/// with serde it is its text, [`value`](ConcurrencyToken::value) (inside a
/// minijinja value: the hidden input, trusted).
///
/// Tera has no type for trusted HTML (its context is `serde_json` values,
/// and it escapes every string unless the template's last filter is
/// `safe`): insert the token and write the input around its text,
/// `<input type="hidden" name="_concurrency_token" value="{{ token }}">`,
/// or insert [`hidden_input`](ConcurrencyToken::hidden_input) and write
/// `{{ token_input | safe }}`.
///
/// A page with several forms (one per table row) issues one token per row
/// with [`ConcurrencyToken::issue`], each bound to its own record.
#[derive(Clone, PartialEq, Eq)]
pub struct ConcurrencyToken {
    /// Shared: the extractor hands every handler a clone.
    value: Arc<str>,
    field_name: Cow<'static, str>,
}

impl ConcurrencyToken {
    /// Signs a token for `form` as it renders now, with the ring's signing key.
    pub fn issue<T: RenderState + ?Sized>(keys: &KeyRing, form: &T) -> ConcurrencyToken {
        ConcurrencyToken::issue_at(keys, form, SystemTime::now())
    }

    /// Like [`issue`](ConcurrencyToken::issue), with the issue time given
    /// (for tests of expiry, or a clock of your own).
    pub fn issue_at<T: RenderState + ?Sized>(
        keys: &KeyRing,
        form: &T,
        issued_at: SystemTime,
    ) -> ConcurrencyToken {
        let state = FormState::of(form);
        let key = keys.signing_key();
        let digests = StateDigests::of(&state, T::FORM_NAME, key);
        ConcurrencyToken::sign(
            keys.signing_key_id(),
            key,
            T::FORM_NAME,
            &digests,
            unix_seconds(issued_at),
            None,
        )
    }

    /// Signs a token; with `page` (a path and query of at most
    /// [`MAX_PAGE_LEN`] bytes, else left out) it is version 3 and names it.
    pub(crate) fn sign(
        key_id: u32,
        key: &Key,
        form_name: &str,
        digests: &StateDigests,
        issued_at: u32,
        page: Option<&str>,
    ) -> ConcurrencyToken {
        let page = page.filter(|p| p.len() <= MAX_PAGE_LEN);
        let head = Head {
            key_id,
            issued_at,
            form: form_prefix(form_name, key),
            resource: digests.resource,
            fingerprint: digests.fingerprint,
            context: digests.context,
        };
        ConcurrencyToken {
            value: head.encode(&digests.inputs, page, key),
            field_name: Cow::Borrowed(DEFAULT_FIELD_NAME),
        }
    }

    /// A token a request carried, handed on as it is (a re-rendered form
    /// keeps the token it was opened with); `None` unless it is base64url
    /// text, as every token the guard signs is.
    pub(crate) fn carried(value: &str, field_name: Cow<'static, str>) -> Option<ConcurrencyToken> {
        let base64url = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        base64url.then(|| ConcurrencyToken {
            value: Arc::from(value),
            field_name,
        })
    }

    /// The same token, to be sent in form field `name`.
    pub fn with_field_name(mut self, name: impl Into<Cow<'static, str>>) -> ConcurrencyToken {
        self.field_name = name.into();
        self
    }

    /// The token text (base64url, safe in URLs, headers and HTML).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The form field it travels in.
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// The hidden input, as `Display` writes it.
    pub fn hidden_input(&self) -> String {
        let mut html = String::with_capacity(48 + self.field_name.len() + self.value.len());
        // Writing to a `String` cannot fail.
        let _ = self.write_hidden_input(&mut html);
        html
    }

    pub(crate) fn write_hidden_input<W: fmt::Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        out.write_str(r#"<input type="hidden" name=""#)?;
        crate::html::escape_into(out, &self.field_name)?;
        out.write_str(r#"" value=""#)?;
        // base64url (made only by `sign`): nothing in it to escape.
        debug_assert!(
            self.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        out.write_str(&self.value)?;
        out.write_str(r#"">"#)
    }
}

impl fmt::Display for ConcurrencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_hidden_input(f)
    }
}

impl fmt::Debug for ConcurrencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyToken")
            .field("field_name", &self.field_name)
            .field("value", &self.value)
            .finish()
    }
}

/// The fields of a token before its input digests.
struct Head {
    key_id: u32,
    issued_at: u32,
    form: u32,
    resource: u64,
    fingerprint: Fingerprint,
    context: u64,
}

/// The form digest as a token holds it.
pub(crate) fn form_prefix(form_name: &str, key: &Key) -> u32 {
    (form_digest(form_name, key) >> 32) as u32
}

impl Head {
    /// The signed token text: the bytes are laid out and encoded in stack
    /// buffers (for forms of up to 40 inputs), then copied into the one
    /// allocation the token keeps.
    fn encode(&self, inputs: &[u64], page: Option<&str>, key: &Key) -> Arc<str> {
        let n = inputs.len().min(MAX_INPUTS);
        let len = HEAD_LEN + 8 * n + page.map_or(0, |p| 2 + p.len()) + TAG_LEN;
        crate::buffer::with_buffer::<{ SHORT_TOKEN_LEN / 4 * 3 }, _>(len, |bytes| {
            self.sign_into(bytes, &inputs[..n], page, key)
        })
    }

    /// Lays the token out in `bytes` (of exactly its length), signs it and
    /// encodes it.
    fn sign_into(
        &self,
        bytes: &mut [u8],
        inputs: &[u64],
        page: Option<&str>,
        key: &Key,
    ) -> Arc<str> {
        let (len, n) = (bytes.len(), inputs.len());
        bytes[0] = if page.is_some() {
            PAGE_TOKEN_VERSION
        } else {
            TOKEN_VERSION
        };
        bytes[1..5].copy_from_slice(&self.key_id.to_be_bytes());
        bytes[5..9].copy_from_slice(&self.issued_at.to_be_bytes());
        bytes[9..13].copy_from_slice(&self.form.to_be_bytes());
        bytes[13..21].copy_from_slice(&self.resource.to_be_bytes());
        bytes[21..37].copy_from_slice(&self.fingerprint.0.to_be_bytes());
        bytes[37..45].copy_from_slice(&self.context.to_be_bytes());
        bytes[45] = n as u8;
        for (slot, digest) in bytes[HEAD_LEN..HEAD_LEN + 8 * n]
            .chunks_exact_mut(8)
            .zip(inputs)
        {
            slot.copy_from_slice(&digest.to_be_bytes());
        }
        if let Some(page) = page {
            let at = HEAD_LEN + 8 * n;
            // At most MAX_PAGE_LEN (`sign`): fits in two bytes.
            bytes[at..at + 2].copy_from_slice(&(page.len() as u16).to_be_bytes());
            bytes[at + 2..at + 2 + page.len()].copy_from_slice(page.as_bytes());
        }
        let (signed, tag) = bytes.split_at_mut(len - TAG_LEN);
        let mut mac = key.material().signer.clone();
        mac.update(signed);
        tag.copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        crate::buffer::with_buffer::<SHORT_TOKEN_LEN, _>(len.div_ceil(3) * 4, |text| {
            let written = URL_SAFE_NO_PAD
                .encode_slice(&*bytes, text)
                .expect("sized for the encoding");
            // base64url is ASCII: never fails.
            Arc::from(std::str::from_utf8(&text[..written]).unwrap_or_default())
        })
    }
}

/// Seconds since the Unix epoch, clamped to what a token holds.
pub(crate) fn unix_seconds(at: SystemTime) -> u32 {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;
    use crate::token_error::TokenError;

    struct Form {
        id: u32,
        inputs: Vec<String>,
    }

    impl RenderState for Form {
        const FORM_NAME: &'static str = "form";
        fn render_state(&self, s: &mut FormState) {
            s.key("id", &self.id);
            for (i, v) in self.inputs.iter().enumerate() {
                s.input(&format!("field{i}"), v);
            }
        }
    }

    fn ring() -> KeyRing {
        KeyRing::new(3, Key::from_bytes(&[9; 32]).unwrap())
    }

    #[test]
    fn twenty_inputs_fit_in_300_characters() {
        let form = Form {
            id: 1,
            inputs: (0..20).map(|i| format!("value {i}")).collect(),
        };
        let token = ConcurrencyToken::issue(&ring(), &form);
        assert_eq!(token.value().len(), 296);
    }

    #[test]
    fn round_trip() {
        let form = Form {
            id: 1,
            inputs: vec!["a".into(), "b".into()],
        };
        let keys = ring();
        let token = ConcurrencyToken::issue(&keys, &form);
        let (claims, _) = Claims::decode(token.value().as_bytes(), &keys).unwrap();
        assert_eq!(claims.key_id, 3);
        assert_eq!(claims.inputs.len(), 2);
        let state = FormState::of(&form);
        let d = StateDigests::of(&state, "form", keys.signing_key());
        assert_eq!(claims.fingerprint, d.fingerprint);
        assert_eq!(claims.resource, d.resource);
        assert_eq!(*claims.inputs, *d.inputs);
    }

    #[test]
    fn tokens_either_side_of_the_short_buffer_round_trip() {
        let keys = ring();
        let mut lengths = Vec::new();
        for n in 30..50 {
            let form = Form {
                id: 1,
                inputs: (0..n).map(|i| format!("v{i}")).collect(),
            };
            let token = ConcurrencyToken::issue(&keys, &form);
            lengths.push(token.value().len());
            let (claims, _) = Claims::decode(token.value().as_bytes(), &keys).unwrap();
            assert_eq!(claims.inputs.len(), n);
            let mut tampered = token.value().to_owned();
            tampered.push_str("AAAA");
            assert!(Claims::decode(tampered.as_bytes(), &keys).is_err());
        }
        assert!(lengths.iter().any(|&l| l <= SHORT_TOKEN_LEN));
        assert!(lengths.iter().any(|&l| l > SHORT_TOKEN_LEN));
    }

    #[test]
    fn refusals_name_the_problem() {
        let keys = ring();
        let form = Form {
            id: 1,
            inputs: vec!["a".into()],
        };
        let token = ConcurrencyToken::issue(&keys, &form).value().to_owned();
        let err = |t: &str| Claims::decode(t.as_bytes(), &keys).unwrap_err();
        assert_eq!(
            err(""),
            TokenError::Malformed {
                reason: "it is empty"
            }
        );
        assert!(matches!(err("%%%"), TokenError::Malformed { .. }));
        assert!(matches!(
            err(&token[..token.len() - 1]),
            TokenError::Malformed { .. }
        ));
        assert!(matches!(
            err(&format!("{token}AA")),
            TokenError::Malformed { .. }
        ));
        assert!(matches!(
            err(&"A".repeat(MAX_TOKEN_LEN + 1)),
            TokenError::Malformed { .. }
        ));
        let other = KeyRing::new(4, Key::from_bytes(&[9; 32]).unwrap());
        assert_eq!(
            Claims::decode(token.as_bytes(), &other).unwrap_err(),
            TokenError::UnknownKey { key_id: 3 }
        );
        let forged = KeyRing::new(3, Key::from_bytes(&[8; 32]).unwrap());
        assert_eq!(
            Claims::decode(token.as_bytes(), &forged).unwrap_err(),
            TokenError::BadSignature
        );
    }

    /// A token that names its page: version 3, the page read back once the
    /// signature holds; its claims are those of the same token without it.
    #[test]
    fn a_page_token_round_trips_and_its_page_is_signed() {
        let keys = ring();
        let form = Form {
            id: 1,
            inputs: vec!["a".into(), "b".into()],
        };
        let state = FormState::of(&form);
        let d = StateDigests::of(&state, "form", keys.signing_key());
        let sign = |page| ConcurrencyToken::sign(3, keys.signing_key(), "form", &d, 1_000, page);
        let plain = sign(None);
        let paged = sign(Some("/items/1/edit?tab=2"));
        let bytes = URL_SAFE_NO_PAD.decode(paged.value()).unwrap();
        assert_eq!(bytes[0], PAGE_TOKEN_VERSION);
        let (a, _) = Claims::decode(plain.value().as_bytes(), &keys).unwrap();
        let (b, _) = Claims::decode(paged.value().as_bytes(), &keys).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            Claims::page(paged.value().as_bytes(), &keys).as_deref(),
            Some("/items/1/edit?tab=2")
        );
        assert_eq!(Claims::page(plain.value().as_bytes(), &keys), None);
        // One character of the page changed: the signature fails.
        let mut forged = bytes.clone();
        let at = forged.len() - TAG_LEN - 1;
        forged[at] = b'3';
        let forged = URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(
            Claims::decode(forged.as_bytes(), &keys).unwrap_err(),
            TokenError::BadSignature
        );
        assert_eq!(Claims::page(forged.as_bytes(), &keys), None);
        // A page longer than MAX_PAGE_LEN is left out; the longest fits.
        let long = format!("/{}", "a".repeat(MAX_PAGE_LEN));
        assert_eq!(sign(Some(&long)).value(), plain.value());
        let longest = &long[..MAX_PAGE_LEN];
        let token = sign(Some(longest));
        assert!(token.value().len() <= MAX_TOKEN_LEN);
        assert_eq!(
            Claims::page(token.value().as_bytes(), &keys).as_deref(),
            Some(longest)
        );
    }

    #[test]
    fn display_is_an_escaped_hidden_input() {
        let keys = ring();
        let token = ConcurrencyToken::issue(
            &keys,
            &Form {
                id: 1,
                inputs: vec![],
            },
        )
        .with_field_name("a\"<b");
        let html = token.to_string();
        assert!(html.contains(r#"name="a&quot;&lt;b""#));
        assert!(html.ends_with("\">"));
    }
}
