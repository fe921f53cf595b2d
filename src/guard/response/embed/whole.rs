//! A page that is all at hand (one body frame): rewritten in one go, up to its last form.

use std::sync::LazyLock;
#[cfg(feature = "html-rewriter")]
use std::sync::{Arc, atomic::Ordering};

use bytes::Bytes;
use memchr::memmem;

use super::embedding::Embedding;
#[cfg(feature = "html-rewriter")]
use super::forms::Progress;
#[cfg(feature = "html-rewriter")]
use super::output::SharedOutput;
#[cfg(feature = "html-rewriter")]
use super::rewriter::rewriter;
use super::scan;
use super::undecided::Undecided;

/// Where the page's last `<form` (any case) starts, if anywhere: no form
/// start tag can begin after it.
pub(super) fn last_form_tag(page: &[u8]) -> Option<usize> {
    // Forward searches for the rare `<f`/`<F` are vectorised; a reverse
    // search is not, nor is stepping back from one `<` to the next.
    static LOWER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"<f"));
    static UPPER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"<F"));
    let is_form = |at: &usize| {
        page.get(at + 2..at + 5)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(b"orm"))
    };
    let lower = LOWER.find_iter(page).filter(is_form).last();
    let upper = UPPER.find_iter(page).filter(is_form).last();
    lower.max(upper)
}

/// Whether the page may have an htmx attribute (`hx-`, any case, as a
/// name or `data-hx-`): then no part of it is left unread.
pub(super) fn may_have_htmx(page: &[u8]) -> bool {
    static LOWER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"x-"));
    static UPPER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"X-"));
    let after_h = |at: &usize| *at > 0 && matches!(page[at - 1], b'h' | b'H');
    LOWER.find_iter(page).any(|at| after_h(&at)) || UPPER.find_iter(page).any(|at| after_h(&at))
}

/// `page`, all at hand, rewritten (or as it is, without a `<form`).
pub(super) fn rewrite_page(page: Bytes, embedding: &Embedding) -> Bytes {
    match rewrite_whole(&page, embedding) {
        Whole::Unchanged => page,
        Whole::Rewritten(bytes) => Bytes::from(bytes),
    }
}

/// The result of rewriting a whole page.
pub(super) enum Whole {
    /// Nothing to do: the page has no `<form`.
    Unchanged,
    Rewritten(Vec<u8>),
}

/// Rewrites a page that is all at hand: the scanner's insertions on a plain
/// page, else through lol_html up to the start tag at the page's last
/// `<form`, the rest copied (see the module docs). Without the
/// `html-rewriter` feature a page the scanner cannot decide is left as it
/// is, and said why (once per route).
pub(super) fn rewrite_whole(page: &[u8], embedding: &Embedding) -> Whole {
    let htmx = may_have_htmx(page);
    let last = match (last_form_tag(page), htmx) {
        (Some(last), false) => last,
        // An htmx element may follow the last form: read to the end.
        (_, true) => page.len(),
        (None, false) => return Whole::Unchanged,
    };
    let (scanned, why) = if htmx {
        (None, Undecided::Htmx)
    } else {
        let mut why = Undecided::Syntax;
        (scan::scan(page, &embedding.field, &mut why), why)
    };
    match scanned {
        Some(ends) => insert_at(page, &ends, embedding),
        #[cfg(feature = "html-rewriter")]
        None => {
            let _ = why;
            through_lol_html(page, embedding, last)
        }
        #[cfg(not(feature = "html-rewriter"))]
        None => {
            let _ = last;
            super::unrewritable::warn_undecided(embedding, &why.text());
            Whole::Unchanged
        }
    }
}

/// Plain HTML: the hidden input (and the early warning's script after the
/// first) at each of `ends`, without lol_html.
fn insert_at(page: &[u8], ends: &[usize], embedding: &Embedding) -> Whole {
    if ends.is_empty() {
        return Whole::Unchanged;
    }
    let hidden_input = embedding.hidden_input.as_str();
    let mut once = embedding.once.as_deref();
    let extra = ends.len() * hidden_input.len() + once.map_or(0, str::len);
    let mut bytes = Vec::with_capacity(page.len() + extra);
    let mut copied = 0;
    for &end in ends {
        bytes.extend_from_slice(&page[copied..end]);
        bytes.extend_from_slice(hidden_input.as_bytes());
        if let Some(once) = once.take() {
            bytes.extend_from_slice(once.as_bytes());
        }
        copied = end;
    }
    bytes.extend_from_slice(&page[copied..]);
    Whole::Rewritten(bytes)
}

/// The page through lol_html up to the start tag at its last `<form` (at
/// `last`), the rest copied once that form has ended.
#[cfg(feature = "html-rewriter")]
fn through_lol_html(page: &[u8], embedding: &Embedding, last: usize) -> Whole {
    let out = SharedOutput::default();
    let progress = Arc::new(Progress::default());
    let mut rewriter = rewriter(embedding.clone(), out.clone(), progress.clone());
    if rewriter.write(&page[..last]).is_err() {
        return Whole::Unchanged;
    }
    // Fed in growing pieces so that the copy starts soon after that tag.
    let mut at = last;
    let mut piece = 256;
    while at < page.len() {
        let end = page.len().min(at + piece);
        if rewriter.write(&page[at..end]).is_err() {
            return Whole::Unchanged;
        }
        at = end;
        piece *= 2;
        if progress.last_form.load(Ordering::Relaxed) == last
            && !progress.open.load(Ordering::Relaxed)
            && !progress.modified.load(Ordering::Relaxed)
        {
            // lol_html handled the last form's start tag and that form
            // ended: what it has put out is the page up to some point plus
            // what it inserted; the rest of the page follows unchanged.
            let mut bytes = out.take();
            let copied = bytes.len() - progress.inserted.load(Ordering::Relaxed);
            bytes.extend_from_slice(&page[copied..]);
            return Whole::Rewritten(bytes);
        }
    }
    if rewriter.end().is_err() {
        return Whole::Unchanged;
    }
    Whole::Rewritten(out.take())
}
