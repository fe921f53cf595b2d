//! Names both passes share.

/// The alert's `id`, which the marked inputs name in `aria-describedby`.
pub(super) const ALERT_ID: &str = "concurrency-conflict-alert";

/// Elements whose content is text (lol_html reads them as browsers do only
/// with a handler on them: see the embed rewriter).
pub(super) const RAW_TEXT: &str =
    "script, style, title, xmp, iframe, noembed, noframes, noscript, plaintext";

/// The largest page the guard rewrites (a larger one gets the guard's own page).
pub(super) const PAGE_LIMIT: usize = 4 * 1024 * 1024;
