//! Reading a token: its bytes decoded, its version, length, key and
//! signature checked, its claims (and the page it names) taken out. The
//! layout is [`crate::token`]'s.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use smallvec::SmallVec;

use crate::fingerprint::Fingerprint;
use crate::key::{Key, KeyRing};
use crate::token::{
    HEAD_LEN, MAX_TOKEN_LEN, PAGE_TOKEN_VERSION, SHORT_TOKEN_LEN, TAG_LEN, TOKEN_VERSION,
};
use crate::token_error::TokenError;

/// The decoded content of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) key_id: u32,
    pub(crate) issued_at: u32,
    pub(crate) form: u32,
    pub(crate) resource: u64,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) context: u64,
    pub(crate) inputs: InputDigests,
}

/// Forms of up to this many inputs keep their digests inline.
const INLINE_INPUTS: usize = 16;

/// The per-input digests of a token: inline for forms of up to
/// [`INLINE_INPUTS`] inputs, so that checking a token allocates nothing;
/// on the heap beyond.
pub(crate) type InputDigests = SmallVec<[u64; INLINE_INPUTS]>;

impl Claims {
    /// Decodes `text` and checks its version, key and signature.
    ///
    /// Never panics. Allocates only for large forms: the decoded bytes of a
    /// token over `SHORT_TOKEN_LEN` characters, the digests of more than
    /// `INLINE_INPUTS` inputs (bounded by [`MAX_TOKEN_LEN`] and
    /// [`MAX_INPUTS`]).
    pub(crate) fn decode<'k>(
        text: &[u8],
        keys: &'k KeyRing,
    ) -> Result<(Claims, &'k Key), TokenError> {
        let malformed = |reason| Err(TokenError::Malformed { reason });
        if text.is_empty() {
            return malformed("it is empty");
        }
        if text.len() > MAX_TOKEN_LEN {
            return malformed("it is too long");
        }
        // Most tokens are short: decode them on the stack, without zeroing
        // the 2 KiB a token of 255 inputs needs.
        crate::buffer::with_buffer::<{ SHORT_TOKEN_LEN / 4 * 3 }, _>(
            text.len().div_ceil(4) * 3,
            |buf| Claims::decode_into(text, buf, keys),
        )
    }

    /// The page a token names (version 3), once its signature is checked;
    /// `None` for a token that names none or does not verify. Its age is
    /// not checked: an expired form's page is still where it was.
    pub(crate) fn page(text: &[u8], keys: &KeyRing) -> Option<String> {
        if text.is_empty() || text.len() > MAX_TOKEN_LEN {
            return None;
        }
        crate::buffer::with_buffer::<{ SHORT_TOKEN_LEN / 4 * 3 }, _>(
            text.len().div_ceil(4) * 3,
            |buf| {
                let layout = Layout::verify(text, buf, keys).ok()?;
                let page = &buf[layout.page?];
                std::str::from_utf8(page).ok().map(str::to_owned)
            },
        )
    }

    /// [`decode`](Claims::decode) with `buf` large enough for `text`.
    fn decode_into<'k>(
        text: &[u8],
        buf: &mut [u8],
        keys: &'k KeyRing,
    ) -> Result<(Claims, &'k Key), TokenError> {
        let Layout { n, key_id, key, .. } = Layout::verify(text, buf, keys)?;
        let bytes = &*buf;
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let claims = Claims {
            key_id,
            issued_at: u32::from_be_bytes(bytes[5..9].try_into().expect("4 bytes")),
            form: u32::from_be_bytes(bytes[9..13].try_into().expect("4 bytes")),
            resource: u64_at(13),
            fingerprint: Fingerprint(u128::from_be_bytes(
                bytes[21..37].try_into().expect("16 bytes"),
            )),
            context: u64_at(37),
            inputs: (0..n).map(|i| u64_at(HEAD_LEN + 8 * i)).collect(),
        };
        Ok((claims, key))
    }
}

/// Where the fields of a decoded, verified token are in its bytes.
struct Layout<'k> {
    /// The number of input digests.
    n: usize,
    key_id: u32,
    key: &'k Key,
    /// The page's bytes (version 3).
    page: Option<std::ops::Range<usize>>,
}

impl<'k> Layout<'k> {
    /// Decodes `text` into `buf` (large enough for it) and checks its
    /// version, length, key and signature.
    fn verify(text: &[u8], buf: &mut [u8], keys: &'k KeyRing) -> Result<Layout<'k>, TokenError> {
        let malformed = |reason| Err(TokenError::Malformed { reason });
        let len = match URL_SAFE_NO_PAD.decode_slice(text, buf) {
            Ok(len) => len,
            Err(_) => return malformed("it is not base64url without padding"),
        };
        let bytes = &buf[..len];
        if len < HEAD_LEN + TAG_LEN {
            return malformed("it is too short");
        }
        let version = bytes[0];
        if version != TOKEN_VERSION && version != PAGE_TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion { version });
        }
        let n = bytes[HEAD_LEN - 1] as usize;
        let inputs_end = HEAD_LEN + 8 * n;
        let page = if version == PAGE_TOKEN_VERSION {
            let Some(m) = bytes.get(inputs_end..inputs_end + 2) else {
                return malformed("its length does not match its content");
            };
            let m = u16::from_be_bytes([m[0], m[1]]) as usize;
            Some(inputs_end + 2..inputs_end + 2 + m)
        } else {
            None
        };
        let end = page.as_ref().map_or(inputs_end, |p| p.end);
        if len != end + TAG_LEN {
            return malformed("its length does not match its content");
        }
        let key_id = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
        let key = keys.get(key_id).ok_or(TokenError::UnknownKey { key_id })?;
        let (signed, tag) = bytes.split_at(len - TAG_LEN);
        let mut mac = key.material().signer.clone();
        mac.update(signed);
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(Layout {
            n,
            key_id,
            key,
            page,
        })
    }
}
