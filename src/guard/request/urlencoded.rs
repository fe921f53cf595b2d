//! `application/x-www-form-urlencoded` bodies: the token field and the submitted pairs.

use std::borrow::Cow;

use crate::guard::rejection::Rejection;
use crate::token::MAX_TOKEN_LEN;
use crate::token_error::TokenError;

/// Finds `field` in an urlencoded body. Duplicates must agree.
#[doc(hidden)]
pub fn scan_urlencoded(body: &[u8], field: &str) -> Result<String, Rejection> {
    scan_urlencoded_token(body, field).map(Cow::into_owned)
}

/// [`scan_urlencoded`], the token borrowed from the body where it needs
/// no decoding (it never does as the guard embeds it).
pub(crate) fn scan_urlencoded_token<'b>(
    body: &'b [u8],
    field: &str,
) -> Result<Cow<'b, str>, Rejection> {
    // Decoding never lengthens a name (`%XX` and `+` become one byte each),
    // except where invalid UTF-8 becomes U+FFFD, and a name with U+FFFD is
    // not `field` unless `field` has one too. So a shorter name, or a
    // shorter pair, is not the field: most pairs are passed over on their
    // length alone.
    let shortest = if field.contains('\u{FFFD}') {
        0
    } else {
        field.len()
    };
    let mut found: Option<Cow<'b, str>> = None;
    for pair in pairs(body) {
        if pair.len() < shortest {
            continue;
        }
        let (name, value) = match crate::buffer::find_near(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if name.len() < shortest {
            continue;
        }
        let is_field =
            name == field.as_bytes() || (needs_decoding(name) && decode_component(name) == field);
        if !is_field {
            continue;
        }
        if value.len() > MAX_TOKEN_LEN * 3 {
            return Err(Rejection::InvalidToken(TokenError::Malformed {
                reason: "it is too long",
            }));
        }
        // As from the header and a multipart part: surrounding blanks go.
        let value = if needs_decoding(value) {
            let decoded = decode_component(value);
            match decoded.trim() {
                trimmed if trimmed.len() == decoded.len() => Cow::Owned(decoded),
                trimmed => Cow::Owned(trimmed.to_owned()),
            }
        } else {
            // A token is ASCII: the fast check, and the lossy copy only for
            // what will be refused anyway.
            match std::str::from_utf8(value) {
                Ok(text) => Cow::Borrowed(text.trim()),
                Err(_) => Cow::Owned(String::from_utf8_lossy(value).trim().to_owned()),
            }
        };
        match &found {
            Some(first) if *first != value => return Err(Rejection::DuplicateTokens),
            Some(_) => {}
            None => found = Some(value),
        }
    }
    found.ok_or_else(|| Rejection::MissingToken {
        field: field.to_owned(),
    })
}

/// The `&`-separated pieces of `body`, as `body.split(|&b| b == b'&')`
/// gives them (empty pieces included), found with `memchr`.
fn pairs(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'&', body);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match ends.next() {
            Some(end) => {
                let pair = &body[start..end];
                start = end + 1;
                Some(pair)
            }
            None => {
                done = true;
                Some(&body[start..])
            }
        }
    })
}

/// Whether a name or value has percent-escapes or `+` to decode.
fn needs_decoding(raw: &[u8]) -> bool {
    memchr::memchr2(b'%', b'+', raw).is_some()
}

/// Decodes one urlencoded name or value: `+` is a space, `%XX` a byte
/// (an invalid escape stays as written), then UTF-8 (lossy), as
/// `form_urlencoded` does. A `=` inside a value stays part of it.
fn decode_component(raw: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The pairs of an urlencoded body, the token field left out.
pub(crate) fn submitted_pairs(body: &[u8], field: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k != field)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_scan() {
        assert_eq!(scan_urlencoded(b"a=1&t=abc&b=2", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"t=abc&t=abc", "t").unwrap(), "abc");
        assert!(matches!(
            scan_urlencoded(b"t=abc&t=abd", "t"),
            Err(Rejection::DuplicateTokens)
        ));
        assert!(matches!(
            scan_urlencoded(b"a=1", "t"),
            Err(Rejection::MissingToken { .. })
        ));
        assert_eq!(scan_urlencoded(b"%74=a%62c", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"x=%ff%fe&t=abc", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"t=", "t").unwrap(), "");
        // A value keeps a raw `=` and decodes as a whole.
        assert_eq!(scan_urlencoded(b"t=abc=junk%41", "t").unwrap(), "abc=junkA");
        assert_eq!(scan_urlencoded(b"t=+abc+", "t").unwrap(), "abc");
        assert_eq!(scan_urlencoded(b"t=a%2", "t").unwrap(), "a%2");
    }

    #[test]
    fn pairs_split_as_slice_split_does() {
        for body in [
            &b""[..],
            b"&",
            b"&&",
            b"a",
            b"a&",
            b"&a",
            b"a=1&b=2",
            b"a=1&&b=2&",
        ] {
            let ours: Vec<&[u8]> = pairs(body).collect();
            let std: Vec<&[u8]> = body.split(|&b| b == b'&').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(body));
        }
    }
}
