//! Helpers shared by the targets.

#![allow(dead_code)]

use std::sync::LazyLock;

/// `FUZZ_MASK_KNOWN=1`: let the oracles accept the known bugs listed in
/// fuzz/README.md, so that a long run looks for new ones. Unset (the
/// default, and in CI): every known bug fails the run.
pub fn mask_known() -> bool {
    static MASK: LazyLock<bool> =
        LazyLock::new(|| std::env::var("FUZZ_MASK_KNOWN").is_ok_and(|v| !v.is_empty() && v != "0"));
    *MASK
}

/// Bytes as lossy text, runs of more than 16 equal bytes shortened to
/// `a{×1234}`, so assertion messages stay readable.
pub fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        let run = j - i;
        if run > 16 {
            out.extend(chars[i].escape_debug());
            out.push_str(&format!("{{×{run}}}"));
        } else {
            for c in &chars[i..j] {
                out.extend(c.escape_debug());
            }
        }
        i = j;
    }
    format!("\"{out}\"")
}
