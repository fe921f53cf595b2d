//! Why the plain scanner (`scan`) left a page to the full rewriter: named in
//! the warning of a build without the `html-rewriter` feature.

/// Why the scanner left a page to lol_html: what the page uses that only
/// the full rewriter reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undecided {
    /// An htmx attribute (`hx-…`, `data-hx-…`).
    Htmx,
    /// A submit button's `formmethod` or `formaction`.
    Submitter,
    /// A form `action` that is not a plain path (a URL with a scheme or a
    /// host, a character reference, …).
    Action,
    /// An element the scanner does not read (`<template>`, `<svg>`, `<base>`, …).
    Element(&'static str),
    /// The token field's name is on the page (a form may carry its own token).
    TokenField,
    /// HTML syntax the scanner does not read (an attribute without value,
    /// CDATA, a NUL byte, an unterminated tag, …).
    Syntax,
}

impl Undecided {
    /// What the page uses, in words.
    #[cfg_attr(feature = "html-rewriter", allow(dead_code))]
    pub(crate) fn text(self) -> String {
        match self {
            Undecided::Htmx => "the page has htmx attributes (hx-post, hx-put, …)".to_owned(),
            Undecided::Submitter => "a button has formmethod or formaction".to_owned(),
            Undecided::Action => {
                "a form's action is not a plain path (a URL with a scheme or host, a character reference, …)".to_owned()
            }
            Undecided::Element(name) => format!("the page has a <{name}> element"),
            Undecided::TokenField => {
                "the page already names the token field (a form may carry its own token)".to_owned()
            }
            Undecided::Syntax => {
                "the page uses HTML syntax the plain scanner does not read (an attribute without value, CDATA, a NUL byte, an unterminated tag, …)".to_owned()
            }
        }
    }
}
