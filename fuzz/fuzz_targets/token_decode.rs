//! `Tokens::check` on arbitrary text never panics, a real token for a fixed
//! form round-trips, and any change to it is refused.

#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use concurrency_guard::{ConcurrencyToken, FormState, Key, KeyRing, RenderState, Tokens};
use libfuzzer_sys::fuzz_target;

struct Form {
    id: i64,
    title: &'static str,
    body: &'static str,
    tags: &'static str,
    views: u32,
}

impl RenderState for Form {
    const FORM_NAME: &'static str = "fuzz_form";
    fn render_state(&self, s: &mut FormState) {
        s.key("id", &self.id);
        s.input("title", &self.title);
        s.input("body", &self.body);
        s.input("tags", &self.tags);
        s.context("views", &self.views);
    }
}

const FORM: Form = Form {
    id: 42,
    title: "Hello",
    body: "a body with <html> & \"quotes\"",
    tags: "x,y",
    views: 7,
};

fn ring() -> KeyRing {
    KeyRing::new(1, Key::from_bytes(&[7; 32]).expect("32-byte key"))
}

struct Fixture {
    tokens: Tokens,
    real: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let ring = ring();
    let real = ConcurrencyToken::issue(&ring, &FORM).value().to_owned();
    let tokens = Tokens::new(ring);
    // Round trip.
    if let Err(e) = tokens.check(&real, &FORM) {
        panic!("a fresh token is refused: {e:?} (token {real:?})");
    }
    Fixture { tokens, real }
});

#[derive(Arbitrary, Debug)]
enum Mutation {
    /// Replace the byte at `pos % len` with `byte`.
    Replace { pos: u16, byte: u8 },
    /// XOR the byte at `pos % len` with `mask` (a bit flip when one bit is set).
    Xor { pos: u16, mask: u8 },
    /// Keep only the first `len % len(token)` bytes.
    Truncate { len: u16 },
    /// Append bytes.
    Extend { suffix: Vec<u8> },
    /// Insert bytes at `pos % (len + 1)`.
    Insert { pos: u16, bytes: Vec<u8> },
    /// Remove `n` bytes at `pos`.
    Delete { pos: u16, n: u8 },
    /// Swap two bytes.
    Swap { a: u16, b: u16 },
}

impl Mutation {
    fn apply(&self, t: &mut Vec<u8>) {
        let at = |p: u16, len: usize| if len == 0 { 0 } else { p as usize % len };
        match self {
            Mutation::Replace { pos, byte } => {
                if !t.is_empty() {
                    let i = at(*pos, t.len());
                    t[i] = *byte;
                }
            }
            Mutation::Xor { pos, mask } => {
                if !t.is_empty() {
                    let i = at(*pos, t.len());
                    t[i] ^= *mask;
                }
            }
            Mutation::Truncate { len } => {
                let n = at(*len, t.len());
                t.truncate(n);
            }
            Mutation::Extend { suffix } => t.extend_from_slice(suffix),
            Mutation::Insert { pos, bytes } => {
                let i = at(*pos, t.len() + 1);
                t.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete { pos, n } => {
                if !t.is_empty() {
                    let i = at(*pos, t.len());
                    let end = (i + *n as usize).min(t.len());
                    t.drain(i..end);
                }
            }
            Mutation::Swap { a, b } => {
                if !t.is_empty() {
                    let (i, j) = (at(*a, t.len()), at(*b, t.len()));
                    t.swap(i, j);
                }
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    mutations: Vec<Mutation>,
    /// Taken as a token as is (lossily made UTF-8).
    raw: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let fx = &*FIXTURE;

    // 1. Arbitrary text: never panics; refused unless it is the real token.
    let raw = String::from_utf8_lossy(input.raw);
    let result = fx.tokens.check(&raw, &FORM);
    if raw != fx.real {
        assert!(
            result.is_err(),
            "accepted a token that is not the one issued: {raw:?}"
        );
    }

    // 2. The real token, changed: always refused.
    let mut mutated = fx.real.clone().into_bytes();
    for m in &input.mutations {
        m.apply(&mut mutated);
    }
    let mutated = String::from_utf8_lossy(&mutated);
    let result = fx.tokens.check(&mutated, &FORM);
    if mutated == fx.real {
        assert!(result.is_ok(), "the real token is refused: {result:?}");
    } else {
        assert!(
            result.is_err(),
            "a changed token was accepted:\n  real    {:?}\n  changed {mutated:?}\n  by {:?}",
            fx.real,
            input.mutations
        );
    }
});
