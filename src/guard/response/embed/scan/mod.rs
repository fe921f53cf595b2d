//! The fast path of auto-embed: a page of plain, well-formed HTML is scanned
//! here instead of going through lol_html, with the same result.
//!
//! [`scan`] reads the page the way the HTML tokenizer does, but only
//! the part of HTML that ordinary server-rendered pages use: tags with
//! quoted or plain attribute values, comments, a doctype, and the text of
//! `<script>`, `<style>`, `<title>` and `<textarea>`. Anything else —
//! `<template>`, SVG and MathML, other raw-text elements, CDATA, `<?`, a NUL
//! byte, an attribute without value, a quote inside a name, an unterminated
//! tag at the end, a `<!--` inside a script — and anything the embedding
//! rules (`rules`) look at beyond a form's `method` — `formmethod`,
//! `formaction`, an htmx attribute, `<base>`, a form `action` that is not a
//! plain path, the token field's name anywhere — makes it give up (`None`), and
//! the page goes through lol_html as before. So this never has to reproduce
//! the hard parts of HTML (or lol_html's bugs there); on what it accepts,
//! its answer must be lol_html's. That is tested byte for byte on the
//! injector's corpus and fuzzed against lol_html (`inject_differential`,
//! `html_inject`).

use std::sync::LazyLock;

use memchr::{memchr, memmem};

use super::undecided::Undecided;

mod class;

use class::{
    ENDS_NAME, ENDS_UNQUOTED, ODD_IN_NAME, ODD_UNQUOTED, TAG_NAME, is, is_blank, run_until,
    skip_blanks,
};

/// The searches the scanner repeats, built once (`memmem::find` builds its
/// searcher on every call).
static CLOSE_TAG: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"</"));
static COMMENT_OPEN: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"<!--"));
static COMMENT_CLOSE: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"-->"));
static COMMENT_BANG_CLOSE: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"--!>"));

/// [`scan`] without the cause (for tests).
#[cfg(all(test, feature = "html-rewriter"))]
pub(crate) fn post_forms(page: &[u8], field: &str) -> Option<Vec<usize>> {
    scan(page, field, &mut Undecided::Syntax)
}

/// Where the hidden input goes: the offsets just after the start tag of each
/// post form (not opted out), in page order. `None`: the page uses HTML this
/// scanner leaves to lol_html, and `why` says what (left as it was for
/// syntax the scanner does not read). The whole page is read: what follows
/// a form's start tag (a button's `formmethod`, an input named `field`)
/// decides too.
pub(crate) fn scan(page: &[u8], field: &str, why: &mut Undecided) -> Option<Vec<usize>> {
    if memchr(0, page).is_some() {
        return None;
    }
    if memmem::find(page, field.as_bytes()).is_some() {
        *why = Undecided::TokenField;
        return None;
    }
    let mut found = Vec::new();
    let mut at = 0;
    while at < page.len() {
        let Some(lt) = crate::buffer::find_near(b'<', &page[at..]).map(|lt| at + lt) else {
            break;
        };
        let next = *page.get(lt + 1)?;
        if next.is_ascii_alphabetic() {
            let tag = read_tag(page, lt + 1, why)?;
            let name = &page[tag.name.clone()];
            at = tag.end;
            if name.eq_ignore_ascii_case(b"form") {
                if tag.self_closing {
                    return None;
                }
                if tag.post && !tag.opted_out {
                    found.push(tag.end);
                }
            } else if let Some(kind) = special(name) {
                match kind {
                    Special::Text { script } => {
                        if tag.self_closing {
                            return None;
                        }
                        let close = closing_tag(page, tag.end, name)?;
                        if script && COMMENT_OPEN.find(&page[tag.end..close]).is_some() {
                            return None;
                        }
                        at = close;
                    }
                    Special::Unsupported(name) => {
                        *why = Undecided::Element(name);
                        return None;
                    }
                }
            }
        } else if next == b'/' {
            if !page.get(lt + 2)?.is_ascii_alphabetic() {
                return None;
            }
            let tag = read_tag(page, lt + 2, why)?;
            if let Some(Special::Unsupported(name)) = special(&page[tag.name.clone()]) {
                *why = Undecided::Element(name);
                return None;
            }
            at = tag.end;
        } else if next == b'!' {
            at = skip_markup_declaration(page, lt)?;
        } else if next == b'?' {
            return None;
        } else {
            // `<` then a blank, a digit, …: text.
            at = lt + 1;
        }
    }
    Some(found)
}

/// What a start or end tag holds, as far as the guard cares.
struct Tag {
    name: std::ops::Range<usize>,
    /// Just past the closing `>`.
    end: usize,
    self_closing: bool,
    /// `method` is "post" (any case, not trimmed: as browsers read it).
    post: bool,
    /// `data-concurrency-guard` is "off" (any case, Unicode blanks trimmed).
    opted_out: bool,
}

/// Reads a tag whose name starts at `start` (just after `<` or `</`).
fn read_tag(page: &[u8], start: usize, why: &mut Undecided) -> Option<Tag> {
    let mut at = start;
    while at < page.len() && is(page[at], TAG_NAME) {
        at += 1;
    }
    let name = start..at;
    let is_form = page[name.clone()].eq_ignore_ascii_case(b"form");
    let mut tag = Tag {
        name,
        end: 0,
        self_closing: false,
        post: false,
        opted_out: false,
    };
    let (mut seen_method, mut seen_opt_out) = (false, false);
    loop {
        let b = *page.get(at)?;
        if is_blank(b) {
            at += 1;
            continue;
        }
        match b {
            b'>' => {
                tag.end = at + 1;
                return Some(tag);
            }
            b'/' => {
                // Only `/>`; a `/` elsewhere in a tag is left to lol_html.
                if *page.get(at + 1)? != b'>' {
                    return None;
                }
                tag.self_closing = true;
                tag.end = at + 2;
                return Some(tag);
            }
            _ => {}
        }
        // A name right after the tag name or another attribute needs a
        // blank before it (`<a"b">`, `<a b="c"d>` are left to lol_html).
        if !is_blank(page[at - 1]) {
            return None;
        }
        // The attribute's name.
        let name_start = at;
        at = run_until(page, at, ENDS_NAME | ODD_IN_NAME);
        if page.get(at).is_some_and(|&b| is(b, ODD_IN_NAME)) {
            return None;
        }
        if at == name_start {
            // `=` where a name should start.
            return None;
        }
        let attr = &page[name_start..at];
        if !plain_attribute(attr) {
            *why = if attr.eq_ignore_ascii_case(b"formaction")
                || attr.eq_ignore_ascii_case(b"formmethod")
            {
                Undecided::Submitter
            } else {
                Undecided::Htmx
            };
            return None;
        }
        at = skip_blanks(page, at);
        let value = if page.get(at) == Some(&b'=') {
            at = skip_blanks(page, at + 1);
            match *page.get(at)? {
                quote @ (b'"' | b'\'') => {
                    let close = at + 1 + memchr(quote, &page[at + 1..])?;
                    let value = &page[at + 1..close];
                    at = close + 1;
                    // Something must separate it from what follows.
                    let after = *page.get(at)?;
                    if !is_blank(after) && after != b'>' && after != b'/' {
                        return None;
                    }
                    value
                }
                // An attribute without value (upstream bug L2's ground).
                b'>' => return None,
                _ => {
                    let from = at;
                    at = run_until(page, at, ENDS_UNQUOTED | ODD_UNQUOTED);
                    if page.get(at).is_some_and(|&b| is(b, ODD_UNQUOTED)) {
                        return None;
                    }
                    &page[from..at]
                }
            }
        } else {
            // A name alone: an empty value. The loop goes on at `at`: `/`,
            // `>`, or the next name after blanks.
            &page[at..at]
        };
        if attr.eq_ignore_ascii_case(b"name") && value.contains(&b'&') {
            return None;
        }
        if is_form {
            if attr.eq_ignore_ascii_case(b"action") {
                if !plain_path(value) {
                    *why = Undecided::Action;
                    return None;
                }
            } else if attr.eq_ignore_ascii_case(b"method") {
                if seen_method || value.contains(&b'&') {
                    return None;
                }
                seen_method = true;
                tag.post = value.eq_ignore_ascii_case(b"post");
            } else if attr.eq_ignore_ascii_case(b"data-concurrency-guard") {
                if seen_opt_out || value.contains(&b'&') {
                    return None;
                }
                seen_opt_out = true;
                // Trimmed of Unicode blanks, as the lol_html path trims.
                tag.opted_out = String::from_utf8_lossy(value)
                    .trim()
                    .eq_ignore_ascii_case("off");
            }
        }
    }
}

/// Not an attribute the embedding rules read beyond `method`: htmx's
/// (`hx-…`, `data-hx-…`), a submitter's `formmethod`/`formaction`.
fn plain_attribute(name: &[u8]) -> bool {
    let starts = |prefix: &[u8]| {
        name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    !(starts(b"hx-")
        || starts(b"data-hx-")
        || name.eq_ignore_ascii_case(b"formmethod")
        || name.eq_ignore_ascii_case(b"formaction"))
}

/// An `action` that is surely a path on this origin: no scheme (`:`), no
/// `//` or backslash (another host), no character reference, tab or line
/// break (the URL parser drops those), no leading or trailing blank.
fn plain_path(value: &[u8]) -> bool {
    !value
        .iter()
        .any(|&b| matches!(b, b':' | b'\\' | b'&' | b'\t' | b'\n' | b'\r'))
        && memmem::find(value, b"//").is_none()
        && value.first().is_none_or(|&b| b > b' ')
        && value.last().is_none_or(|&b| b > b' ')
}

enum Special {
    /// Its content is text up to its end tag: `<script>` (script data),
    /// `<style>` (raw text), `<title>`, `<textarea>` (RCDATA).
    Text { script: bool },
    /// Left to lol_html (its name).
    Unsupported(&'static str),
}

fn special(name: &[u8]) -> Option<Special> {
    const UNSUPPORTED: &[&str] = &[
        "base",
        "template",
        "svg",
        "math",
        "xmp",
        "iframe",
        "noembed",
        "noframes",
        "noscript",
        "plaintext",
    ];
    // Most tags are none of these: tell by length and first letter.
    let first = name.first()?.to_ascii_lowercase();
    if !(3..=9).contains(&name.len())
        || !matches!(first, b's' | b't' | b'm' | b'x' | b'i' | b'n' | b'p' | b'b')
    {
        return None;
    }
    if name.eq_ignore_ascii_case(b"script") {
        Some(Special::Text { script: true })
    } else if [&b"style"[..], b"title", b"textarea"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        Some(Special::Text { script: false })
    } else {
        UNSUPPORTED
            .iter()
            .find(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            .map(|n| Special::Unsupported(n))
    }
}

/// Where the end tag `</name` that closes a text element starting at `from`
/// begins: `</` then the name (any case) then a blank, `/` or `>`.
fn closing_tag(page: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut at = from;
    loop {
        let lt = at + CLOSE_TAG.find(&page[at..])?;
        let after = lt + 2 + name.len();
        if page
            .get(lt + 2..after)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && page
                .get(after)
                .is_some_and(|&b| is_blank(b) || b == b'/' || b == b'>')
        {
            return Some(lt);
        }
        at = lt + 2;
    }
}

/// `<!--…-->` and `<!doctype …>` (without quotes); anything else after `<!`
/// is left to lol_html. Returns where the page goes on.
fn skip_markup_declaration(page: &[u8], lt: usize) -> Option<usize> {
    let rest = &page[lt + 2..];
    if rest.starts_with(b"--") {
        let body = lt + 4;
        // `<!-->` and `<!--->` end at once; `--!>` ends a comment too.
        if page[body..].starts_with(b">") || page[body..].starts_with(b"->") {
            return None;
        }
        let close = body + COMMENT_CLOSE.find(&page[body..])?;
        if COMMENT_BANG_CLOSE.find(&page[body..close + 3]).is_some() {
            return None;
        }
        return Some(close + 3);
    }
    if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"doctype") {
        let close = lt + 2 + memchr(b'>', rest)?;
        if page[lt..close].iter().any(|&b| b == b'"' || b == b'\'') {
            return None;
        }
        return Some(close + 1);
    }
    None
}
