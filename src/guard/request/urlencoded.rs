//! `application/x-www-form-urlencoded` bodies: the token field and the submitted pairs.

use std::borrow::Cow;

use bytes::Bytes;

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
    let shortest = shortest_name(field);
    let mut found: Option<Cow<'b, str>> = None;
    for pair in pairs(body) {
        let Some(value) = value_if_named(pair, field, shortest) else {
            continue;
        };
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

/// The shortest raw name that can decode to `field`: decoding never
/// lengthens a name (`%XX` and `+` become one byte each), except where
/// invalid UTF-8 becomes U+FFFD, and a name with U+FFFD is not `field`
/// unless `field` has one too. So a shorter name, or a shorter pair, is not
/// the field: most pairs are passed over on their length alone.
fn shortest_name(field: &str) -> usize {
    if field.contains('\u{FFFD}') {
        0
    } else {
        field.len()
    }
}

/// The raw value of `pair` if its name decodes to `field`.
fn value_if_named<'p>(pair: &'p [u8], field: &str, shortest: usize) -> Option<&'p [u8]> {
    if pair.len() < shortest {
        return None;
    }
    let (name, value) = match crate::buffer::find_near(b'=', pair) {
        Some(i) => (&pair[..i], &pair[i + 1..]),
        None => (pair, &[][..]),
    };
    let is_field = name.len() >= shortest
        && (name == field.as_bytes() || (needs_decoding(name) && decode_component(name) == field));
    is_field.then_some(value)
}

/// `body` without the pairs named `field`, every other byte as it was: what
/// the handler's `Form<T>` reads, so a `#[serde(deny_unknown_fields)]` form
/// type works behind the guard. `None` when `body` has no such pair.
pub(crate) fn without_field(body: &Bytes, field: &str) -> Option<Bytes> {
    let shortest = shortest_name(field);
    let mut kept = Vec::new();
    let mut removed = false;
    for pair in pairs(body) {
        if value_if_named(pair, field, shortest).is_some() {
            removed = true;
        } else {
            kept.push(pair);
        }
    }
    // The kept pieces joined as they were, one `&` fewer per removed pair.
    removed.then(|| Bytes::from(kept.join(&b'&')))
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
    fn the_token_pairs_are_cut_out_and_nothing_else() {
        let cut = |body: &'static str| {
            without_field(&Bytes::from_static(body.as_bytes()), "t")
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
        };
        assert_eq!(cut("t=abc&a=1").as_deref(), Some("a=1"));
        assert_eq!(cut("a=1&t=abc").as_deref(), Some("a=1"));
        assert_eq!(cut("a=1&t=abc&b=%41+x").as_deref(), Some("a=1&b=%41+x"));
        assert_eq!(cut("a=1&&t=x&%74=x&b=").as_deref(), Some("a=1&&b="));
        assert_eq!(cut("t=abc").as_deref(), Some(""));
        assert_eq!(cut("a=1&tt=2&b=t"), None);
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
