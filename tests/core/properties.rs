//! Property tests of the encoding and the token: round trips, tamper
//! resistance, robustness against arbitrary input, injectivity.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concurrency_guard::__private::StateDigests;
use concurrency_guard::{
    CheckError, ConcurrencyToken, EntryKind, FormState, Key, KeyRing, MAX_TOKEN_LEN, RenderState,
    TokenError, Tokens,
};
use proptest::prelude::*;

type Entry = (EntryKind, String, String);

/// A form that renders the entries it is given.
struct Replay<'a>(&'a [Entry]);

impl RenderState for Replay<'_> {
    const FORM_NAME: &'static str = "properties";
    fn render_state(&self, state: &mut FormState) {
        for (kind, name, value) in self.0 {
            state.push(*kind, name, value.as_str());
        }
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Seconds since the epoch of every token issued here (in the past, so
/// that no clock skew matters).
const ISSUED_AT: u64 = 1_700_000_000;

fn key(seed: u8) -> Key {
    Key::from_bytes(&[seed; 32]).expect("32 bytes")
}

fn ring(seed: u8) -> KeyRing {
    KeyRing::new(1, key(seed))
}

fn tokens(ring: KeyRing) -> Tokens {
    Tokens::new(ring).with_max_age(None)
}

fn issue(ring: &KeyRing, entries: &[Entry]) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(ISSUED_AT);
    ConcurrencyToken::issue_at(ring, &Replay(entries), at)
        .value()
        .to_owned()
}

fn check(ring: &KeyRing, token: &str, entries: &[Entry]) -> Result<(), CheckError> {
    tokens(ring.clone()).check(token, &Replay(entries))
}

fn state(entries: &[Entry]) -> FormState {
    FormState::of(&Replay(entries))
}

fn digests(entries: &[Entry], key: &Key) -> StateDigests {
    StateDigests::of(&state(entries), <Replay<'_> as RenderState>::FORM_NAME, key)
}

fn of_kinds(entries: &[Entry], kinds: &[EntryKind]) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| kinds.contains(&e.0))
        .cloned()
        .collect()
}

/// An input's value as a browser submits it from a text control (WHATWG:
/// one leading LF dropped by the parser, line breaks as CRLF): what its
/// per-input digest covers. Written independently of the crate's own.
fn as_submitted(value: &str) -> String {
    let value = value.replace("\r\n", "\n").replace('\r', "\n");
    let value = value.strip_prefix('\n').unwrap_or(&value);
    value.replace('\n', "\r\n")
}

/// The input entries, values as submitted.
fn submitted_inputs(entries: &[Entry]) -> Vec<Entry> {
    of_kinds(entries, &[EntryKind::Input])
        .into_iter()
        .map(|(k, n, v)| (k, n, as_submitted(&v)))
        .collect()
}

fn is_token_error(result: &Result<(), CheckError>) -> bool {
    matches!(result, Err(CheckError::Token(_)))
}

// ---------------------------------------------------------------------------
// Strategies

fn kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        3 => Just(EntryKind::Input),
        2 => Just(EntryKind::Context),
        1 => Just(EntryKind::Key),
    ]
}

/// Short strings over a tiny alphabet (so that lists collide in every way
/// but their structure), or any Unicode text, or a long value.
fn text() -> impl Strategy<Value = String> {
    let tiny = prop::collection::vec(
        prop::sample::select(vec!['a', 'b', '=', ' ', '\n', '\0', '"', 'é', '🦀']),
        0..4,
    )
    .prop_map(String::from_iter);
    prop_oneof![
        6 => tiny,
        3 => any::<String>(),
        1 => "[a-z ]{200,400}",
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (kind(), text(), text())
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(entry(), 0..10)
}

/// One edit of a token's text.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the char at an index by another base64url char (shifted
    /// along the alphabet by 1 to 63).
    Replace(prop::sample::Index, usize),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, char),
    /// Keep a strictly shorter prefix.
    Truncate(prop::sample::Index),
    Append(String),
    /// Flip one bit of the decoded bytes and encode again.
    FlipBit(prop::sample::Index),
}

fn base64url_char() -> impl Strategy<Value = char> {
    prop::sample::select(ALPHABET.to_vec()).prop_map(char::from)
}

fn edit() -> impl Strategy<Value = Edit> {
    let inserted = prop_oneof![3 => base64url_char(), 1 => any::<char>()];
    let appended = prop_oneof![
        3 => prop::collection::vec(base64url_char(), 1..12).prop_map(String::from_iter),
        1 => "[=]{1,3}",
        1 => any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, k)| Edit::Replace(i, k)),
        any::<prop::sample::Index>().prop_map(Edit::Delete),
        (any::<prop::sample::Index>(), inserted).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        appended.prop_map(Edit::Append),
        any::<prop::sample::Index>().prop_map(Edit::FlipBit),
    ]
}

fn apply(token: &str, edit: &Edit) -> String {
    let mut text = token.to_owned();
    match edit {
        Edit::Replace(i, k) => {
            let at = i.index(text.len());
            let old = ALPHABET
                .iter()
                .position(|&c| c == text.as_bytes()[at])
                .expect("a token is base64url");
            let new = char::from(ALPHABET[(old + k) % 64]);
            text.replace_range(at..at + 1, new.encode_utf8(&mut [0; 4]));
        }
        Edit::Delete(i) => {
            text.remove(i.index(text.len()));
        }
        Edit::Insert(i, c) => text.insert(i.index(text.len() + 1), *c),
        Edit::Truncate(i) => text.truncate(i.index(text.len())),
        Edit::Append(s) => text.push_str(s),
        Edit::FlipBit(i) => {
            let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("a token is base64url");
            let bit = i.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            text = URL_SAFE_NO_PAD.encode(bytes);
        }
    }
    text
}

/// A change that yields a list close to the original: the cases where a
/// sloppy encoding would collide.
#[derive(Debug, Clone)]
enum Mutation {
    Kind(usize, EntryKind),
    Name(usize, String),
    Value(usize, String),
    /// Move the last char of an entry's value to the front of the next
    /// entry's name.
    ValueToNextName(usize),
    /// Move the last char of an entry's name to the front of its value.
    NameToValue(usize),
    /// Move the first char of an entry's value to the end of its name.
    ValueToName(usize),
    Swap(usize, usize),
    Insert(usize, Entry),
    Remove(usize),
    Duplicate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), kind()).prop_map(|(i, k)| Mutation::Kind(i, k)),
        (any::<usize>(), text()).prop_map(|(i, s)| Mutation::Name(i, s)),
        (any::<usize>(), text()).prop_map(|(i, s)| Mutation::Value(i, s)),
        any::<usize>().prop_map(Mutation::ValueToNextName),
        any::<usize>().prop_map(Mutation::NameToValue),
        any::<usize>().prop_map(Mutation::ValueToName),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        (any::<usize>(), entry()).prop_map(|(i, e)| Mutation::Insert(i, e)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Duplicate),
    ]
}

fn mutate(entries: &[Entry], mutation: &Mutation) -> Vec<Entry> {
    let mut out = entries.to_vec();
    let len = out.len();
    if len == 0 {
        if let Mutation::Insert(_, e) = mutation {
            out.push(e.clone());
        }
        return out;
    }
    match mutation {
        Mutation::Kind(i, k) => out[i % len].0 = *k,
        Mutation::Name(i, s) => out[i % len].1 = s.clone(),
        Mutation::Value(i, s) => out[i % len].2 = s.clone(),
        Mutation::ValueToNextName(i) => {
            let i = *i % len;
            if i + 1 < len {
                if let Some(c) = out[i].2.pop() {
                    out[i + 1].1.insert(0, c);
                }
            }
        }
        Mutation::NameToValue(i) => {
            let e = &mut out[i % len];
            if let Some(c) = e.1.pop() {
                e.2.insert(0, c);
            }
        }
        Mutation::ValueToName(i) => {
            let e = &mut out[i % len];
            if let Some(c) = e.2.chars().next() {
                e.2.remove(0);
                e.1.push(c);
            }
        }
        Mutation::Swap(i, j) => out.swap(i % len, j % len),
        Mutation::Insert(i, e) => out.insert(i % (len + 1), e.clone()),
        Mutation::Remove(i) => {
            out.remove(i % len);
        }
        Mutation::Duplicate(i) => {
            let i = *i % len;
            out.insert(i, out[i].clone());
        }
    }
    out
}

/// Two different lists: mostly a list and a close mutation of it,
/// sometimes two unrelated lists.
fn different_pair() -> impl Strategy<Value = (Vec<Entry>, Vec<Entry>)> {
    prop_oneof![
        4 => (entries(), prop::collection::vec(mutation(), 1..3)).prop_map(|(a, ms)| {
            let b = ms.iter().fold(a.clone(), |b, m| mutate(&b, m));
            (a, b)
        }),
        1 => (entries(), entries()),
    ]
    .prop_filter("the lists differ", |(a, b)| a != b)
}

/// Entries with at least one entry of `kind`, and the index of one of them.
fn entries_with(kind: EntryKind) -> impl Strategy<Value = (Vec<Entry>, usize)> {
    (entries(), any::<prop::sample::Index>(), text(), text()).prop_map(
        move |(mut entries, at, name, value)| {
            let at = at.index(entries.len() + 1);
            entries.insert(at, (kind, name, value));
            (entries, at)
        },
    )
}

fn different_text(old: String) -> impl Strategy<Value = String> {
    text().prop_map(move |new| if new == old { format!("{new}x") } else { new })
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_check_round_trips(
        entries in entries(),
        secret in any::<[u8; 32]>(),
        key_id in any::<u32>(),
        issued_at in 0..=ISSUED_AT,
    ) {
        let ring = KeyRing::new(key_id, Key::from_bytes(&secret).unwrap());
        let at = UNIX_EPOCH + Duration::from_secs(issued_at);
        let token = ConcurrencyToken::issue_at(&ring, &Replay(&entries), at);
        prop_assert!(token.value().len() <= MAX_TOKEN_LEN);
        let result = tokens(ring).check(token.value(), &Replay(&entries));
        prop_assert!(result.is_ok(), "{:?}", result);
    }

    #[test]
    fn any_edit_of_the_token_text_is_refused(
        entries in entries(),
        seed in any::<u8>(),
        edit in edit(),
    ) {
        let ring = ring(seed);
        let token = issue(&ring, &entries);
        let edited = apply(&token, &edit);
        prop_assert_ne!(&edited, &token);
        let result = check(&ring, &edited, &entries);
        prop_assert!(is_token_error(&result), "{:?} gave {:?}", edit, result);
    }

    #[test]
    fn arbitrary_strings_are_refused(
        text in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,3000}",
            "[A-Za-z0-9_=+/-]{60,120}",
            "[A-Za-z0-9_-]{80,84}[=]{0,3}",
        ],
    ) {
        let result = check(&ring(1), &text, &[]);
        prop_assert!(is_token_error(&result), "{:?}", result);
    }

    /// Well-formed bytes (the current version, a key in the ring, a consistent
    /// length) with a random body: only the signature can refuse them.
    #[test]
    fn well_formed_forgeries_fail_the_signature(
        body in any::<[u8; 40]>(),
        inputs in prop::collection::vec(any::<u64>(), 0..20),
        tag in any::<[u8; 16]>(),
    ) {
        let mut bytes = vec![concurrency_guard::TOKEN_VERSION, 0, 0, 0, 1];
        bytes.extend_from_slice(&body);
        bytes.push(inputs.len() as u8);
        for digest in &inputs {
            bytes.extend_from_slice(&digest.to_be_bytes());
        }
        bytes.extend_from_slice(&tag);
        let result = check(&ring(1), &URL_SAFE_NO_PAD.encode(bytes), &[]);
        prop_assert!(
            matches!(result, Err(CheckError::Token(TokenError::BadSignature))),
            "{:?}", result
        );
    }

    /// The digests depend on exactly the input and context entries (for the
    /// fingerprint), the key entries (for the resource), the context entries
    /// and each input as submitted, and every one but the resource's on the
    /// record (the key entries) too: different lists of those give
    /// different digests.
    #[test]
    fn the_encoding_is_injective(
        (a, b) in different_pair(),
        seed in any::<u8>(),
    ) {
        use EntryKind::{Context, Input, Key};
        let key = key(seed);
        let (da, db) = (digests(&a, &key), digests(&b, &key));
        let differ = |kinds: &[EntryKind]| of_kinds(&a, kinds) != of_kinds(&b, kinds);
        prop_assert_eq!(
            da.fingerprint != db.fingerprint,
            differ(&[Input, Context]) || differ(&[Key])
        );
        prop_assert_eq!(da.resource != db.resource, differ(&[Key]));
        prop_assert_eq!(da.context != db.context, differ(&[Context]) || differ(&[Key]));
        let (ia, ib) = (submitted_inputs(&a), submitted_inputs(&b));
        prop_assert_eq!(
            da.inputs != db.inputs,
            ia != ib || (differ(&[Key]) && !ia.is_empty())
        );
    }

    #[test]
    fn a_changed_input_or_context_value_is_a_conflict(
        (entries, at, new_value) in prop_oneof![
            entries_with(EntryKind::Input),
            entries_with(EntryKind::Context),
        ].prop_flat_map(|(entries, at)| {
            let old = entries[at].2.clone();
            (Just(entries), Just(at), different_text(old))
        }),
        seed in any::<u8>(),
    ) {
        // A text input's change a browser cannot tell apart (a line break
        // written otherwise, a leading newline) is not a change of its digest.
        prop_assume!(
            entries[at].0 == EntryKind::Context
                || as_submitted(&entries[at].2) != as_submitted(&new_value)
        );
        let ring = ring(seed);
        let key = key(seed);
        let token = issue(&ring, &entries);
        let mut changed = entries.clone();
        changed[at].2 = new_value.clone();
        let (before, after) = (digests(&entries, &key), digests(&changed, &key));
        prop_assert_ne!(before.fingerprint, after.fingerprint);
        prop_assert_eq!(before.resource, after.resource);
        let kind = entries[at].0;
        prop_assert_eq!(before.context != after.context, kind == EntryKind::Context);
        if kind == EntryKind::Input {
            let position = entries[..at].iter().filter(|e| e.0 == EntryKind::Input).count();
            for (i, (b, a)) in before.inputs.iter().zip(&after.inputs).enumerate() {
                prop_assert_eq!(b != a, i == position, "input digest {}", i);
            }
        } else {
            prop_assert_eq!(&before.inputs, &after.inputs);
        }
        match check(&ring, &token, &changed) {
            Err(CheckError::Conflict(conflict)) => {
                prop_assert_eq!(conflict.context_changed(), kind == EntryKind::Context);
                let changed_inputs = conflict.changed_inputs().expect("per-input digests");
                if kind == EntryKind::Input {
                    prop_assert_eq!(changed_inputs.len(), 1);
                    prop_assert_eq!(&changed_inputs[0].name, &entries[at].1);
                    prop_assert_eq!(&changed_inputs[0].current, &new_value);
                } else {
                    prop_assert!(changed_inputs.is_empty());
                }
            }
            other => return Err(TestCaseError::fail(format!("expected a conflict, got {other:?}"))),
        }
    }

    #[test]
    fn a_changed_key_entry_is_another_record(
        ((entries, at), change_name, new_text) in (
            entries_with(EntryKind::Key),
            any::<bool>(),
            text(),
        ),
        seed in any::<u8>(),
    ) {
        let ring = ring(seed);
        let key = key(seed);
        let token = issue(&ring, &entries);
        let mut changed = entries.clone();
        let slot = if change_name { &mut changed[at].1 } else { &mut changed[at].2 };
        *slot = if *slot == new_text { format!("{new_text}x") } else { new_text };
        let (before, after) = (digests(&entries, &key), digests(&changed, &key));
        // Every digest is bound to the record: none is shared.
        prop_assert_ne!(before.fingerprint, after.fingerprint);
        prop_assert_ne!(before.context, after.context);
        for (b, a) in before.inputs.iter().zip(&after.inputs) {
            prop_assert_ne!(b, a);
        }
        prop_assert_ne!(before.resource, after.resource);
        let result = check(&ring, &token, &changed);
        prop_assert!(
            matches!(result, Err(CheckError::Token(TokenError::WrongResource))),
            "{:?}", result
        );
    }
}

// ---------------------------------------------------------------------------
// Exhaustive checks of one real token

fn sample() -> Vec<Entry> {
    vec![
        (EntryKind::Key, "id".into(), "42".into()),
        (EntryKind::Input, "name".into(), "Lamp".into()),
        (EntryKind::Input, "price".into(), "9.50".into()),
        (EntryKind::Context, "stock".into(), "12".into()),
        (EntryKind::Input, "note".into(), "".into()),
    ]
}

#[test]
fn every_single_bit_flip_is_refused() {
    let ring = ring(7);
    let entries = sample();
    let token = issue(&ring, &entries);
    assert!(check(&ring, &token, &entries).is_ok());
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let n_at = bytes.len() - 16 - 8 * 3 - 1;
    assert_eq!(bytes[n_at], 3, "the input count byte");
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let result = check(&ring, &URL_SAFE_NO_PAD.encode(&flipped), &entries);
        let ok = match bit / 8 {
            // Version 2 flipped to 3 (a token that names its page, which
            // this one has no room for): its length no longer fits.
            0 if flipped[0] == 3 => {
                matches!(result, Err(CheckError::Token(TokenError::Malformed { .. })))
            }
            0 => matches!(
                result,
                Err(CheckError::Token(TokenError::UnsupportedVersion { .. }))
            ),
            1..=4 => matches!(
                result,
                Err(CheckError::Token(TokenError::UnknownKey { .. }))
            ),
            i if i == n_at => {
                matches!(result, Err(CheckError::Token(TokenError::Malformed { .. })))
            }
            _ => matches!(result, Err(CheckError::Token(TokenError::BadSignature))),
        };
        assert!(ok, "flipping bit {bit} gave {result:?}");
    }
}

#[test]
fn every_single_char_replacement_is_refused() {
    let ring = ring(7);
    let entries = sample();
    let token = issue(&ring, &entries);
    for at in 0..token.len() {
        for &c in ALPHABET.iter() {
            if c == token.as_bytes()[at] {
                continue;
            }
            let mut edited = token.clone().into_bytes();
            edited[at] = c;
            let edited = String::from_utf8(edited).unwrap();
            let result = check(&ring, &edited, &entries);
            assert!(
                is_token_error(&result),
                "{edited} (char {at} replaced) gave {result:?}"
            );
        }
    }
}

#[test]
fn odd_and_huge_strings_are_refused() {
    let ring = ring(7);
    let entries = sample();
    let token = issue(&ring, &entries);
    let standard = token.replace('-', "+").replace('_', "/");
    let cases = [
        String::new(),
        "=".into(),
        "====".into(),
        "\0".into(),
        "é".repeat(100),
        "A".repeat(MAX_TOKEN_LEN),
        "A".repeat(MAX_TOKEN_LEN + 1),
        "A".repeat(1 << 20),
        "🦀".repeat(1 << 16),
        format!("{token}="),
        format!("{token}=="),
        format!("={token}"),
        format!(" {token}"),
        format!("{token} "),
        format!("{token}\n"),
        token.to_uppercase(),
        token.to_lowercase(),
        token.repeat(2),
        token[..token.len() - 1].to_owned(),
    ];
    for text in cases.iter().chain(
        // The standard alphabet differs only if the token has - or _.
        (standard != token).then_some(&standard),
    ) {
        let result = check(&ring, text, &entries);
        let shown: String = text.chars().take(60).collect();
        assert!(is_token_error(&result), "{shown:?} gave {result:?}");
    }
    // A token whose time is far ahead is refused too, though its signature
    // is good.
    let ahead = ConcurrencyToken::issue_at(
        &ring,
        &Replay(&entries),
        SystemTime::now() + Duration::from_secs(3600),
    );
    assert!(matches!(
        check(&ring, ahead.value(), &entries),
        Err(CheckError::Token(TokenError::IssuedInFuture { .. }))
    ));
}

#[test]
fn boundary_mutations_keep_the_text_and_change_the_list() {
    let concat = |entries: &[Entry]| -> String {
        entries
            .iter()
            .flat_map(|(_, n, v)| [n.as_str(), v.as_str()])
            .collect()
    };
    let entries = vec![
        (EntryKind::Input, "ab".to_owned(), "cd".to_owned()),
        (EntryKind::Input, "ef".to_owned(), "gh".to_owned()),
    ];
    for mutation in [
        Mutation::ValueToNextName(0),
        Mutation::NameToValue(0),
        Mutation::ValueToName(0),
    ] {
        let mutated = mutate(&entries, &mutation);
        assert_ne!(mutated, entries, "{mutation:?}");
        assert_eq!(concat(&mutated), concat(&entries), "{mutation:?}");
        let key = key(3);
        assert_ne!(
            digests(&mutated, &key).fingerprint,
            digests(&entries, &key).fingerprint
        );
    }
}
