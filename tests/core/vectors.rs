//! Pins the canonical encoding (v1), the key derivation and the token format
//! (v1) to the test vectors in `tests/vectors.txt` (format described in its
//! header). Any change to a byte of the encoding fails these tests.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concurrency_guard::__private::{StateDigests, form_digest};
use concurrency_guard::{
    CheckError, ConcurrencyToken, EntryKind, FormState, Key, KeyRing, MAX_INPUTS, MAX_TOKEN_LEN,
    RenderState, TOKEN_VERSION, TokenError, Tokens,
};

const VECTORS: &str = include_str!("../vectors.txt");

/// The key id every vector's token is issued under.
const KEY_ID: u32 = 1;

type Entries = [(EntryKind, String, String)];

fn replay(entries: &Entries, state: &mut FormState) {
    for (kind, name, value) in entries {
        state.push(*kind, name, value.as_str());
    }
}

/// `RenderState::FORM_NAME` is a const, so each form name a vector uses needs
/// its own type; a vector naming another form fails with a clear message.
macro_rules! forms {
    ($($ty:ident = $name:literal),* $(,)?) => {
        $(
            struct $ty<'a>(&'a Entries);

            impl RenderState for $ty<'_> {
                const FORM_NAME: &'static str = $name;
                fn render_state(&self, state: &mut FormState) {
                    replay(self.0, state);
                }
            }
        )*

        fn issue_for(form: &str, ring: &KeyRing, entries: &Entries, at: SystemTime) -> ConcurrencyToken {
            match form {
                $($name => ConcurrencyToken::issue_at(ring, &$ty(entries), at),)*
                other => panic!("form {other:?} is unknown: add it to forms! in tests/core/vectors.rs"),
            }
        }

        fn check_for(form: &str, tokens: &Tokens, token: &str, entries: &Entries) -> Result<(), CheckError> {
            match form {
                $($name => tokens.check(token, &$ty(entries)),)*
                other => panic!("form {other:?} is unknown: add it to forms! in tests/core/vectors.rs"),
            }
        }
    };
}

forms!(
    Note = "note",
    Item = "item",
    Unicode = "formulär ✓",
    Unnamed = ""
);

#[derive(Debug, Clone)]
struct Vector {
    line: usize,
    name: String,
    key: Vec<u8>,
    form: String,
    entries: Vec<(EntryKind, String, String)>,
    fingerprint: u128,
    resource: u64,
    context: u64,
    inputs: Vec<u64>,
    form_digest: u64,
    issued_at: u32,
    token: String,
}

impl Vector {
    fn key(&self) -> Key {
        Key::from_bytes(&self.key).unwrap_or_else(|e| panic!("{}: bad key: {e:?}", self.name))
    }

    fn ring(&self) -> KeyRing {
        KeyRing::new(KEY_ID, self.key())
    }

    /// The state built by hand through the typed builder methods.
    fn state(&self) -> FormState {
        let mut state = FormState::new();
        for (kind, name, value) in &self.entries {
            match kind {
                EntryKind::Input => state.input(name, value),
                EntryKind::Context => state.context(name, value),
                EntryKind::Key => state.key(name, value),
            };
        }
        state
    }

    fn tokens(&self) -> Tokens {
        Tokens::new(self.ring())
            .with_max_age(None)
            .with_max_skew(Duration::MAX)
    }

    fn input_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|(k, _, _)| *k == EntryKind::Input)
            .count()
    }
}

// ---------------------------------------------------------------------------
// Parsing

fn parse_vectors(text: &str) -> Vec<Vector> {
    let mut vectors = Vec::new();
    let mut block: Vec<(usize, &str, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !block.is_empty() {
                vectors.push(parse_block(&block));
                block.clear();
            }
            continue;
        }
        let (field, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("vectors.txt line {n}: expected `field = value`"));
        block.push((n, field.trim(), value.trim()));
    }
    if !block.is_empty() {
        vectors.push(parse_block(&block));
    }
    vectors
}

fn parse_block(block: &[(usize, &str, &str)]) -> Vector {
    let first_line = block[0].0;
    let mut pos = 0;
    // The next line, which must be `field`.
    fn next<'a>(
        block: &[(usize, &str, &'a str)],
        pos: &mut usize,
        field: &str,
    ) -> (usize, &'a str) {
        let (n, f, v) = *block.get(*pos).unwrap_or_else(|| {
            panic!(
                "vectors.txt: vector at line {} ends before `{field}`",
                block[0].0
            )
        });
        assert_eq!(
            f, field,
            "vectors.txt line {n}: expected `{field}`, found `{f}`"
        );
        *pos += 1;
        (n, v)
    }
    let (n, v) = next(block, &mut pos, "name");
    let name = parse_whole_string(v, n);
    let (n, v) = next(block, &mut pos, "key");
    let key = parse_hex_bytes(v, n);
    let (n, v) = next(block, &mut pos, "form");
    let form = parse_whole_string(v, n);
    let mut entries = Vec::new();
    while let Some((n, v)) = block
        .get(pos)
        .filter(|(_, f, _)| *f == "entry")
        .map(|(n, _, v)| (*n, *v))
    {
        entries.push(parse_entry(v, n));
        pos += 1;
    }
    let (n, v) = next(block, &mut pos, "fingerprint");
    let fingerprint = parse_hex_u128(v, 32, n);
    let (n, v) = next(block, &mut pos, "resource");
    let resource = parse_hex_u64(v, n);
    let (n, v) = next(block, &mut pos, "context");
    let context = parse_hex_u64(v, n);
    let (n, v) = next(block, &mut pos, "inputs");
    let inputs = if v.is_empty() {
        Vec::new()
    } else {
        v.split(',').map(|h| parse_hex_u64(h, n)).collect()
    };
    let (n, v) = next(block, &mut pos, "form_digest");
    let form_digest = parse_hex_u64(v, n);
    let (n, v) = next(block, &mut pos, "issued_at");
    let issued_at = v
        .parse()
        .unwrap_or_else(|_| panic!("vectors.txt line {n}: issued_at is not a u32"));
    let (n, v) = next(block, &mut pos, "token");
    assert!(
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "vectors.txt line {n}: token is not base64url without padding"
    );
    let token = v.to_owned();
    if let Some((n, f, _)) = block.get(pos) {
        panic!("vectors.txt line {n}: unexpected `{f}` after `token`; a blank line ends a vector");
    }
    Vector {
        line: first_line,
        name,
        key,
        form,
        entries,
        fingerprint,
        resource,
        context,
        inputs,
        form_digest,
        issued_at,
        token,
    }
}

fn parse_entry(text: &str, n: usize) -> (EntryKind, String, String) {
    let (kind, rest) = text.split_once(' ').unwrap_or_else(|| {
        panic!("vectors.txt line {n}: expected `entry = kind \"name\" \"value\"`")
    });
    let kind = match kind {
        "input" => EntryKind::Input,
        "context" => EntryKind::Context,
        "key" => EntryKind::Key,
        other => panic!("vectors.txt line {n}: unknown entry kind {other:?}"),
    };
    let (name, rest) = parse_string(rest.trim_start(), n);
    let rest = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("vectors.txt line {n}: expected a space between name and value"));
    let (value, rest) = parse_string(rest.trim_start(), n);
    assert!(
        rest.trim().is_empty(),
        "vectors.txt line {n}: unexpected text after the value: {rest:?}"
    );
    (kind, name, value)
}

fn parse_whole_string(text: &str, n: usize) -> String {
    let (s, rest) = parse_string(text, n);
    assert!(
        rest.trim().is_empty(),
        "vectors.txt line {n}: unexpected text after the string: {rest:?}"
    );
    s
}

/// Parses one JSON-style double-quoted string at the start of `text`;
/// returns it and the text after the closing quote.
fn parse_string(text: &str, n: usize) -> (String, &str) {
    let bad = |what: &str| -> ! { panic!("vectors.txt line {n}: {what} in {text:?}") };
    let body = text
        .strip_prefix('"')
        .unwrap_or_else(|| bad("expected a double-quoted string"));
    let mut out = String::new();
    let mut chars = body.char_indices();
    let hex4 = |chars: &mut std::str::CharIndices<'_>| -> u32 {
        let digits: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            bad("bad \\u escape");
        }
        u32::from_str_radix(&digits, 16).expect("4 hex digits")
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &body[i + 1..]),
            '\\' => {
                let escaped = match chars.next() {
                    Some((_, '"')) => '"',
                    Some((_, '\\')) => '\\',
                    Some((_, '/')) => '/',
                    Some((_, 'b')) => '\u{8}',
                    Some((_, 'f')) => '\u{c}',
                    Some((_, 'n')) => '\n',
                    Some((_, 'r')) => '\r',
                    Some((_, 't')) => '\t',
                    Some((_, 'u')) => {
                        let hi = hex4(&mut chars);
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            let tail: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                            if tail != "\\u" {
                                bad("a high surrogate without its low surrogate");
                            }
                            let lo = hex4(&mut chars);
                            if !(0xDC00..0xE000).contains(&lo) {
                                bad("a high surrogate without its low surrogate");
                            }
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            hi
                        };
                        char::from_u32(code).unwrap_or_else(|| bad("a lone surrogate"))
                    }
                    _ => bad("unknown escape"),
                };
                out.push(escaped);
            }
            c if (c as u32) < 0x20 => bad("a raw control character"),
            c => out.push(c),
        }
    }
    bad("an unterminated string")
}

fn check_hex(text: &str, digits: Option<usize>, n: usize) {
    assert!(
        digits.is_none_or(|d| text.len() == d)
            && text.len() % 2 == 0
            && !text.is_empty()
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "vectors.txt line {n}: expected {} lowercase hex digits, found {text:?}",
        digits.map_or("an even number of".to_owned(), |d| d.to_string())
    );
}

fn parse_hex_u128(text: &str, digits: usize, n: usize) -> u128 {
    check_hex(text, Some(digits), n);
    u128::from_str_radix(text, 16).expect("checked hex")
}

fn parse_hex_u64(text: &str, n: usize) -> u64 {
    parse_hex_u128(text, 16, n) as u64
}

fn parse_hex_bytes(text: &str, n: usize) -> Vec<u8> {
    check_hex(text, None, n);
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("checked hex"))
        .collect()
}

fn vectors() -> Vec<Vector> {
    parse_vectors(VECTORS)
}

fn named<'a>(vectors: &'a [Vector], name: &str) -> &'a Vector {
    vectors
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("vectors.txt has no vector named {name:?}"))
}

// ---------------------------------------------------------------------------
// Checking

/// The token's bytes, as format v1 lays them out.
struct Layout {
    version: u8,
    key_id: u32,
    issued_at: u32,
    form: u32,
    resource: u64,
    fingerprint: u128,
    context: u64,
    inputs: Vec<u64>,
}

const HEAD_LEN: usize = 46;
const TAG_LEN: usize = 16;

fn layout(token: &str) -> Result<Layout, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|e| format!("not base64url: {e}"))?;
    if bytes.len() < HEAD_LEN + TAG_LEN {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    let n = usize::from(bytes[HEAD_LEN - 1]);
    if bytes.len() != HEAD_LEN + 8 * n + TAG_LEN {
        return Err(format!("{} bytes for {n} inputs", bytes.len()));
    }
    let be = |range: std::ops::Range<usize>| -> u128 {
        bytes[range]
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
    };
    Ok(Layout {
        version: bytes[0],
        key_id: be(1..5) as u32,
        issued_at: be(5..9) as u32,
        form: be(9..13) as u32,
        resource: be(13..21) as u64,
        fingerprint: be(21..37),
        context: be(37..45) as u64,
        inputs: (0..n)
            .map(|i| be(HEAD_LEN + 8 * i..HEAD_LEN + 8 * i + 8) as u64)
            .collect(),
    })
}

fn hex_list(values: &[u64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:016x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every way the implementation (or the token in the file) disagrees with
/// the vector; empty when it matches to the byte.
fn mismatches(v: &Vector) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |field: &str, got: String, want: String| {
        if got != want {
            out.push(format!(
                "vector {:?} (vectors.txt line {}): {field}: computed {got}, pinned {want}",
                v.name, v.line
            ));
        }
    };
    let key = v.key();

    // The digests, built by hand and through a RenderState impl.
    let by_hand = StateDigests::of(&v.state(), &v.form, &key);
    let mut replayed = FormState::new();
    replay(&v.entries, &mut replayed);
    let replayed = StateDigests::of(&replayed, &v.form, &key);
    for (how, d) in [("by hand", &by_hand), ("replayed", &replayed)] {
        cmp(
            &format!("fingerprint ({how})"),
            format!("{:032x}", d.fingerprint.0),
            format!("{:032x}", v.fingerprint),
        );
        cmp(
            &format!("resource ({how})"),
            format!("{:016x}", d.resource),
            format!("{:016x}", v.resource),
        );
        cmp(
            &format!("context ({how})"),
            format!("{:016x}", d.context),
            format!("{:016x}", v.context),
        );
        cmp(
            &format!("inputs ({how})"),
            hex_list(&d.inputs),
            hex_list(&v.inputs),
        );
    }
    cmp(
        "form_digest",
        format!("{:016x}", form_digest(&v.form, &key)),
        format!("{:016x}", v.form_digest),
    );

    // The token, issued deterministically.
    let at = UNIX_EPOCH + Duration::from_secs(u64::from(v.issued_at));
    let token = issue_for(&v.form, &v.ring(), &v.entries, at);
    cmp("token", token.value().to_owned(), v.token.clone());

    // The token in the file, read field by field as format v1 lays it out.
    match layout(&v.token) {
        Err(e) => cmp(
            "token in the file",
            e,
            "a token of the current format".into(),
        ),
        Ok(l) => {
            cmp(
                "token in the file, version field",
                l.version.to_string(),
                TOKEN_VERSION.to_string(),
            );
            cmp(
                "token in the file, key id field",
                l.key_id.to_string(),
                KEY_ID.to_string(),
            );
            cmp(
                "token in the file, issued_at field",
                l.issued_at.to_string(),
                v.issued_at.to_string(),
            );
            cmp(
                "token in the file, form digest (high 32 bits) field",
                format!("{:08x}", l.form),
                format!("{:08x}", v.form_digest >> 32),
            );
            cmp(
                "token in the file, resource field",
                format!("{:016x}", l.resource),
                format!("{:016x}", v.resource),
            );
            cmp(
                "token in the file, fingerprint field",
                format!("{:032x}", l.fingerprint),
                format!("{:032x}", v.fingerprint),
            );
            cmp(
                "token in the file, context field",
                format!("{:016x}", l.context),
                format!("{:016x}", v.context),
            );
            cmp(
                "token in the file, inputs field",
                hex_list(&l.inputs),
                hex_list(&v.inputs),
            );
        }
    }
    let bytes = HEAD_LEN + 8 * v.inputs.len() + TAG_LEN;
    cmp(
        "token length",
        v.token.len().to_string(),
        (bytes * 4).div_ceil(3).to_string(),
    );

    // The inputs carry one digest each, unless there are too many.
    let want_inputs = if v.input_count() > MAX_INPUTS {
        0
    } else {
        v.input_count()
    };
    cmp(
        "number of input digests",
        v.inputs.len().to_string(),
        want_inputs.to_string(),
    );

    // The token in the file verifies against the state it was issued for.
    if let Err(e) = check_for(&v.form, &v.tokens(), &v.token, &v.entries) {
        cmp("check", format!("Err({e})"), "Ok(())".into());
    }
    out
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn every_vector_matches_to_the_byte() {
    let vectors = vectors();
    let failures: Vec<String> = vectors.iter().flat_map(mismatches).collect();
    assert!(
        failures.is_empty(),
        "the canonical encoding or token format changed; every issued token would break:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_file_covers_what_it_must() {
    let vectors = vectors();
    assert!(vectors.len() >= 8, "only {} vectors", vectors.len());
    let mut names = HashSet::new();
    for v in &vectors {
        assert!(
            names.insert(v.name.as_str()),
            "duplicate vector {:?}",
            v.name
        );
        assert!(v.key.len() >= 32, "{:?}: key shorter than 32 bytes", v.name);
    }
    let has = |f: &dyn Fn(&Vector) -> bool| vectors.iter().any(f);
    let values = |v: &Vector| -> Vec<String> {
        v.entries
            .iter()
            .flat_map(|(_, n, x)| [n.clone(), x.clone()])
            .collect()
    };
    assert!(has(&|v| v.entries.is_empty()), "no empty form");
    assert!(
        has(&|v| values(v).iter().any(|s| s.is_empty())),
        "no empty name or value"
    );
    assert!(
        has(&|v| values(v).iter().any(|s| !s.is_ascii())),
        "no non-ASCII text"
    );
    for c in [' ', '=', '\n', '"', '\\', '\0'] {
        assert!(
            has(&|v| values(v).iter().any(|s| s.contains(c))),
            "no text with {c:?}"
        );
    }
    assert!(
        has(&|v| values(v).iter().any(|s| s.chars().count() >= 300)),
        "no 300-character value"
    );
    assert!(
        has(&|v| v.entries.iter().filter(|e| e.0 == EntryKind::Key).count() >= 2),
        "no composite key"
    );
    assert!(has(&|v| v.input_count() == 20), "no 20-input form");
    assert!(
        has(&|v| v.input_count() == MAX_INPUTS),
        "no form with MAX_INPUTS inputs"
    );
    assert!(
        has(&|v| v.input_count() > MAX_INPUTS),
        "no form with more than MAX_INPUTS inputs"
    );
    let key_lens: HashSet<usize> = vectors.iter().map(|v| v.key.len()).collect();
    assert!(key_lens.len() >= 2, "every key has the same length");
}

#[test]
fn input_and_context_with_the_same_name_and_value_differ() {
    let vectors = vectors();
    let input = named(&vectors, "input x=1");
    let context = named(&vectors, "context x=1");
    assert_eq!(input.entries[0].1, context.entries[0].1);
    assert_eq!(input.entries[0].2, context.entries[0].2);
    assert_ne!(input.fingerprint, context.fingerprint);
    assert_ne!(input.context, context.context);
    assert_eq!(input.inputs.len(), 1);
    assert!(context.inputs.is_empty());
}

#[test]
fn moved_boundaries_change_the_fingerprint() {
    let vectors = vectors();
    for (a, b) in [
        ("values ab|c", "values a|bc"),
        ("name|value xa|b", "name|value x|ab"),
    ] {
        let (a, b) = (named(&vectors, a), named(&vectors, b));
        let concat = |v: &Vector| -> String {
            v.entries
                .iter()
                .map(|(_, n, x)| format!("{n}{x}"))
                .collect()
        };
        assert_eq!(concat(a), concat(b), "{:?} and {:?}", a.name, b.name);
        assert_ne!(
            a.fingerprint, b.fingerprint,
            "{:?} and {:?}",
            a.name, b.name
        );
    }
}

#[test]
fn another_record_with_equal_values_shares_no_digest_and_refuses_the_token() {
    // Tokens bound to their record: equal values in two records give
    // unrelated digests, so tokens tell nobody which records share a value.
    let vectors = vectors();
    let a = named(&vectors, "composite key");
    let b = named(&vectors, "composite key, other record");
    assert_eq!(a.key, b.key);
    let values = |v: &Vector| -> Vec<(EntryKind, String, String)> {
        v.entries
            .iter()
            .filter(|e| e.0 != EntryKind::Key)
            .cloned()
            .collect()
    };
    assert_eq!(values(a), values(b));
    assert_ne!(a.fingerprint, b.fingerprint);
    assert_ne!(a.context, b.context);
    assert_eq!(a.inputs.len(), b.inputs.len());
    for (x, y) in a.inputs.iter().zip(&b.inputs) {
        assert_ne!(x, y);
    }
    assert_ne!(a.resource, b.resource);
    assert_ne!(a.token, b.token);
    let refused = check_for(&b.form, &b.tokens(), &a.token, &b.entries);
    assert!(
        matches!(refused, Err(CheckError::Token(TokenError::WrongResource))),
        "{refused:?}"
    );
}

#[test]
fn token_lengths() {
    let vectors = vectors();
    let twenty = named(&vectors, "20 inputs");
    assert_eq!(twenty.input_count(), 20);
    assert!(
        twenty.token.len() <= 300,
        "a 20-input token has {} characters",
        twenty.token.len()
    );
    let most = named(&vectors, "255 inputs");
    assert_eq!(most.inputs.len(), MAX_INPUTS);
    assert!(most.token.len() <= MAX_TOKEN_LEN);
    let too_many = named(&vectors, "256 inputs");
    assert_eq!(too_many.input_count(), MAX_INPUTS + 1);
    assert!(too_many.inputs.is_empty());
    let layout = layout(&too_many.token).unwrap();
    assert!(layout.inputs.is_empty());
    assert_eq!(too_many.token.len(), ((HEAD_LEN + TAG_LEN) * 4).div_ceil(3));
    for v in &vectors {
        assert!(v.token.len() <= MAX_TOKEN_LEN, "{:?}", v.name);
    }
}

#[test]
fn the_check_detects_a_change_to_any_expected_value() {
    // The test above would miss nothing: altering any pinned value of a
    // vector is reported.
    let vectors = vectors();
    let v = named(&vectors, "unicode");
    assert!(mismatches(v).is_empty());
    let altered: &[fn(&mut Vector)] = &[
        |v| v.fingerprint ^= 1 << 127,
        |v| v.fingerprint ^= 1,
        |v| v.resource ^= 1 << 4,
        |v| v.context ^= 1 << 63,
        |v| v.inputs[2] ^= 1,
        |v| {
            v.inputs.pop();
        },
        |v| v.form_digest ^= 1 << 40,
        |v| v.form_digest ^= 1,
        |v| v.issued_at += 1,
        |v| v.token.push('A'),
        |v| v.token = v.token.replacen('A', "B", 1),
        |v| v.key[31] ^= 1,
        |v| v.entries[1].2.push(' '),
        |v| v.entries[0].0 = EntryKind::Input,
        |v| v.entries.swap(1, 2),
        |v| v.form = "note".into(),
    ];
    for (i, alter) in altered.iter().enumerate() {
        let mut changed = v.clone();
        alter(&mut changed);
        assert!(!mismatches(&changed).is_empty(), "alteration {i} unnoticed");
    }
}

#[test]
fn strings_are_json_escaped() {
    let s = |t: &str| parse_whole_string(t, 0);
    assert_eq!(s(r#""""#), "");
    assert_eq!(s(r#"" a = b ""#), " a = b ");
    assert_eq!(s(r#""\"\\\/\b\f\n\r\t""#), "\"\\/\u{8}\u{c}\n\r\t");
    assert_eq!(s(r#""\u0000\u00e9\u0301""#), "\0é\u{301}");
    assert_eq!(s(r#""\ud83e\udd80 🦀""#), "🦀 🦀");
    assert_eq!(
        parse_entry(r#"context "a b" "c \"d\" e""#, 0),
        (EntryKind::Context, "a b".into(), "c \"d\" e".into())
    );
    for bad in [
        r#""unterminated"#,
        r#""\x""#,
        r#""\ud83e""#,
        r#""\udd80""#,
        "\"\t\"",
        "no quotes",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_whole_string(bad, 0)).is_err(),
            "{bad:?} parsed"
        );
    }
}

/// Rewrites the computed fields of `tests/vectors.txt` (fingerprint,
/// resource, context, inputs, form_digest, token) from the implementation,
/// keeping every comment, name, key, entry and issue time. Only for a
/// deliberate format change, together with a bump of `TOKEN_VERSION`:
///
/// ```text
/// CG_WRITE_VECTORS=1 cargo test --all-features --test core -- --ignored write_vectors
/// ```
#[test]
#[ignore = "rewrites tests/vectors.txt; run deliberately on a format change"]
fn write_vectors() {
    if std::env::var_os("CG_WRITE_VECTORS").is_none() {
        return;
    }
    let vectors = vectors();
    let mut out = String::new();
    let mut at = 0;
    let mut in_block = false;
    for line in VECTORS.lines() {
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if line.trim().is_empty() {
            if in_block {
                at += 1;
                in_block = false;
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        in_block = true;
        let v = &vectors[at];
        let (field, _) = line.split_once('=').expect("field = value");
        let key = v.key();
        let d = StateDigests::of(&v.state(), &v.form, &key);
        let at_time = UNIX_EPOCH + Duration::from_secs(u64::from(v.issued_at));
        let value = match field.trim() {
            "fingerprint" => format!("{:032x}", d.fingerprint.0),
            "resource" => format!("{:016x}", d.resource),
            "context" => format!("{:016x}", d.context),
            "inputs" => hex_list(&d.inputs),
            "form_digest" => format!("{:016x}", form_digest(&v.form, &key)),
            "token" => issue_for(&v.form, &v.ring(), &v.entries, at_time)
                .value()
                .to_owned(),
            _ => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        out.push_str(field.trim_end());
        out.push_str(if value.is_empty() { " =" } else { " = " });
        out.push_str(&value);
        out.push('\n');
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors.txt");
    std::fs::write(path, out).expect("write tests/vectors.txt");
}
