//! The guard's injector against lol_html alone, byte for byte.
//!
//! `embed_in_str` (the whole page at hand: lol_html up to the last `<form`,
//! the rest copied) and `embed_in_chunks` (the response body, fed the page
//! in arbitrary frames: whole-page fast path for one frame, streaming
//! through lol_html for several) must both give exactly what
//! `embed_in_str_lol_html` (lol_html from start to end, no shortcut) gives.

#![no_main]

use arbitrary::Arbitrary;
use concurrency_guard::__private::{embed_in_chunks, embed_in_str, embed_in_str_lol_html};
use libfuzzer_sys::fuzz_target;

mod common;
use common::show;

const HIDDEN: &str = r#"<input type="hidden" name="_concurrency_token" value="T">"#;

#[derive(Debug, Arbitrary)]
struct Input {
    /// Where the page is cut into frames (taken modulo its length).
    cuts: Vec<u16>,
    html: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let html = &input.html[..];
    let expected = embed_in_str_lol_html(html, HIDDEN);
    let whole = embed_in_str(html, HIDDEN);
    assert!(
        whole == expected,
        "whole page differs from lol_html:\n  page     {}\n  ours     {}\n  lol_html {}",
        show(html),
        show(&whole),
        show(&expected)
    );
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| {
            if html.is_empty() {
                0
            } else {
                usize::from(c) % (html.len() + 1)
            }
        })
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for cut in cuts {
        chunks.push(&html[from..cut]);
        from = cut;
    }
    chunks.push(&html[from..]);
    let streamed = embed_in_chunks(&chunks, HIDDEN);
    assert!(
        streamed == expected,
        "frames {:?} differ from lol_html:\n  page     {}\n  ours     {}\n  lol_html {}",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
        show(html),
        show(&streamed),
        show(&expected)
    );
});
