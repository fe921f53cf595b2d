//! A page that is all at hand (one body frame): rewritten in one go, up to its last form.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use memchr::memmem;

use super::rewriter::{Progress, SharedOutput, rewriter};
use super::scan;

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

/// `page`, all at hand, rewritten (or as it is, without a `<form`).
pub(super) fn rewrite_page(page: Bytes, hidden_input: &str, once: Option<String>) -> Bytes {
    match rewrite_whole(&page, hidden_input, once) {
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

/// Rewrites a page that is all at hand: through lol_html up to the start tag
/// at the page's last `<form`, the rest copied (see the module docs).
pub(super) fn rewrite_whole(page: &[u8], hidden_input: &str, once: Option<String>) -> Whole {
    let Some(last) = last_form_tag(page) else {
        return Whole::Unchanged;
    };
    if let Some(ends) = scan::post_forms(page, last) {
        // Plain HTML: the same insertions, without lol_html.
        if ends.is_empty() {
            return Whole::Unchanged;
        }
        let extra = ends.len() * hidden_input.len() + once.as_ref().map_or(0, String::len);
        let mut bytes = Vec::with_capacity(page.len() + extra);
        let mut once = once;
        let mut copied = 0;
        for end in ends {
            bytes.extend_from_slice(&page[copied..end]);
            bytes.extend_from_slice(hidden_input.as_bytes());
            if let Some(once) = once.take() {
                bytes.extend_from_slice(once.as_bytes());
            }
            copied = end;
        }
        bytes.extend_from_slice(&page[copied..]);
        return Whole::Rewritten(bytes);
    }
    let out = SharedOutput::default();
    let progress = Arc::new(Progress::default());
    let mut rewriter = rewriter(Arc::from(hidden_input), once, out.clone(), progress.clone());
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
        if progress.last_form.load(Ordering::Relaxed) == last {
            // lol_html handled the last form's start tag: what it has put
            // out is the page up to some point plus what it inserted; the
            // rest of the page follows unchanged.
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
