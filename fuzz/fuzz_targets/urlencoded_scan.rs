//! `scan_urlencoded` never panics and agrees with an oracle built on the
//! `form_urlencoded` crate (what axum's `Form` extractor parses with).
//!
//! Oracle: the body's pairs as `form_urlencoded::parse` yields them (names
//! and values percent-decoded, `+` as space, then made UTF-8 lossily, as
//! `String::from_utf8_lossy` does). Walking the pairs named
//! `_concurrency_token` in order:
//! - a raw (still encoded) value longer than `3 × MAX_TOKEN_LEN` →
//!   `InvalidToken(Malformed { "it is too long" })`;
//! - a value different from the first one → `DuplicateTokens`;
//! - none at all → `MissingToken`;
//! - else the (common) value.
//!
//! Values are compared trimmed (`str::trim`), as the scanner trims them
//! (like the header and a multipart part).
//!
//! Lossy UTF-8: both the scanner (`from_utf8_lossy` for values without `%`
//! or `+`) and `form_urlencoded` (always) decode lossily, so the oracle
//! agrees on every input, valid UTF-8 or not; the comparison is not
//! restricted.
//!
//! Bug U1 (README, fixed): a value with `%` or `+` was decoded only up to
//! its first raw `=`.

#![no_main]

use arbitrary::Arbitrary;
use concurrency_guard::__private::scan_urlencoded;
use concurrency_guard::{MAX_TOKEN_LEN, Rejection, TokenError};
use libfuzzer_sys::fuzz_target;

mod common;
use common::show;

const FIELD: &str = "_concurrency_token";

fn oracle(body: &[u8]) -> Result<String, Rejection> {
    // form_urlencoded::parse yields one pair per non-empty `&`-separated
    // piece, split at the first `=`; the raw values give the length check.
    let raw_values = body
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => &p[i + 1..],
            None => &[][..],
        });
    let pairs: Vec<_> = form_urlencoded::parse(body).collect();
    let raw_values: Vec<_> = raw_values.collect();
    assert_eq!(pairs.len(), raw_values.len(), "oracle: pair count");
    let mut found: Option<String> = None;
    for ((name, value), raw) in pairs.into_iter().zip(raw_values) {
        if name != FIELD {
            continue;
        }
        // Surrounding white space goes, as for the header and a multipart
        // part (`str::trim`).
        let value = value.trim();
        if raw.len() > MAX_TOKEN_LEN * 3 {
            return Err(Rejection::InvalidToken(TokenError::Malformed {
                reason: "it is too long",
            }));
        }
        match &found {
            Some(first) if *first != value => return Err(Rejection::DuplicateTokens),
            Some(_) => {}
            None => found = Some(value.to_owned()),
        }
    }
    found.ok_or_else(|| Rejection::MissingToken {
        field: FIELD.to_owned(),
    })
}

#[derive(Arbitrary, Debug)]
enum Enc {
    Raw,
    /// Every byte as %XX.
    PercentAll,
    /// `form_urlencoded::byte_serialize` (spaces as `+`).
    Serialize,
    /// %XX for the bytes whose index bit is set in the mask, rest raw.
    PercentSome(u32),
    /// %XX with lower-case hex digits for every byte.
    PercentLower,
}

fn encode(bytes: &[u8], enc: &Enc) -> Vec<u8> {
    match enc {
        Enc::Raw => bytes.to_vec(),
        Enc::PercentAll => bytes
            .iter()
            .flat_map(|b| format!("%{b:02X}").into_bytes())
            .collect(),
        Enc::PercentLower => bytes
            .iter()
            .flat_map(|b| format!("%{b:02x}").into_bytes())
            .collect(),
        Enc::Serialize => form_urlencoded::byte_serialize(bytes)
            .collect::<String>()
            .into_bytes(),
        Enc::PercentSome(mask) => bytes
            .iter()
            .enumerate()
            .flat_map(|(i, &b)| {
                if mask >> (i % 32) & 1 == 1 {
                    format!("%{b:02X}").into_bytes()
                } else {
                    vec![b]
                }
            })
            .collect(),
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    Field,
    Other(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Pair {
    name: Name,
    name_enc: Enc,
    value: Vec<u8>,
    value_enc: Enc,
    /// 255: the value is repeated until it is longer than the scanner's
    /// limit (3 × MAX_TOKEN_LEN); else written once.
    repeat: u8,
    /// Write the pair without `=`.
    no_equals: bool,
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw(&'a [u8]),
    Pairs {
        pairs: Vec<Pair>,
        separators: Vec<u8>,
    },
}

fn build(pairs: &[Pair], separators: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            body.push(b'&');
            // Extra `&`s (empty pieces) now and then.
            if separators.get(i).is_some_and(|s| s % 4 == 0) {
                body.push(b'&');
            }
        }
        let name = match &p.name {
            Name::Field => FIELD.as_bytes(),
            Name::Other(n) => n.as_slice(),
        };
        body.extend(encode(name, &p.name_enc));
        if p.no_equals && p.value.is_empty() {
            continue;
        }
        body.push(b'=');
        let value = encode(&p.value, &p.value_enc);
        let times = if p.repeat == u8::MAX && !value.is_empty() {
            MAX_TOKEN_LEN * 3 / value.len() + 1
        } else {
            1
        };
        for _ in 0..times {
            body.extend_from_slice(&value);
        }
    }
    body
}

fuzz_target!(|input: Input<'_>| {
    let built;
    let body = match &input {
        Input::Raw(b) => *b,
        Input::Pairs { pairs, separators } => {
            built = build(pairs, separators);
            &built
        }
    };
    let got = scan_urlencoded(body, FIELD);
    let want = oracle(body);
    assert_eq!(
        got,
        want,
        "scan_urlencoded disagrees with form_urlencoded on body {}",
        show(body)
    );
});
