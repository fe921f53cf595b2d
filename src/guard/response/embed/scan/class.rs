//! The byte classes the scanner reads tags by.

/// Byte classes for [`read_tag`], one bit each.
pub(super) const BLANK: u8 = 1;
/// Ends an attribute name: a blank, `/`, `>`, `=`.
pub(super) const ENDS_NAME: u8 = 2;
/// Left to lol_html inside an attribute name: `"`, `'`, `<`.
pub(super) const ODD_IN_NAME: u8 = 4;
/// Ends an unquoted value: a blank, `>`.
pub(super) const ENDS_UNQUOTED: u8 = 8;
/// Left to lol_html inside an unquoted value: `"`, `'`, `<`, `=`, `` ` ``.
pub(super) const ODD_UNQUOTED: u8 = 16;
/// In a tag name as this scanner reads it: ASCII letters, digits, `-`.
pub(super) const TAG_NAME: u8 = 32;

static CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut bits = 0;
        if matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ') {
            bits |= BLANK | ENDS_NAME | ENDS_UNQUOTED;
        }
        if matches!(c, b'/' | b'>' | b'=') {
            bits |= ENDS_NAME;
        }
        if c == b'>' {
            bits |= ENDS_UNQUOTED;
        }
        if matches!(c, b'"' | b'\'' | b'<') {
            bits |= ODD_IN_NAME | ODD_UNQUOTED;
        }
        if matches!(c, b'=' | b'`') {
            bits |= ODD_UNQUOTED;
        }
        if c.is_ascii_alphanumeric() || c == b'-' {
            bits |= TAG_NAME;
        }
        class[b] = bits;
        b += 1;
    }
    class
};

pub(super) fn is(b: u8, class: u8) -> bool {
    CLASS[usize::from(b)] & class != 0
}

pub(super) fn is_blank(b: u8) -> bool {
    is(b, BLANK)
}

/// How far from `at` the bytes are not of `stop` (the page's end at most).
pub(super) fn run_until(page: &[u8], mut at: usize, stop: u8) -> usize {
    while at < page.len() && !is(page[at], stop) {
        at += 1;
    }
    at
}

pub(super) fn skip_blanks(page: &[u8], mut at: usize) -> usize {
    while at < page.len() && is_blank(page[at]) {
        at += 1;
    }
    at
}
