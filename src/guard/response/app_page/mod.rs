//! The conflict shown in the application's own page: the route's GET
//! handler renders the form for the current data, and the guard rewrites it.
//!
//! Two passes over the page (buffered, at most `PAGE_LIMIT` bytes): the
//! first finds the post form that submits where the stale submission went
//! and the labels of its controls ([`survey`]); the second ([`rewrite`])
//! puts an alert (`role="alert"`) first in that form, naming each field
//! someone else changed by its label, with the saved value and the user's;
//! puts what the user entered back in the inputs they changed (text
//! `value`, textarea content, `selected` options, `checked` boxes and
//! radios); and marks the inputs someone else changed with
//! `aria-invalid="true"` and the class `concurrency-conflict`.

//!
//! Without the `html-rewriter` feature the application's page is not read:
//! conflicts and refusals get the guard's own page.

#[cfg(feature = "html-rewriter")]
mod conflict;
#[cfg(feature = "html-rewriter")]
mod htmx;
#[cfg(feature = "html-rewriter")]
mod names;
#[cfg(not(feature = "html-rewriter"))]
mod off;
#[cfg(feature = "html-rewriter")]
mod refused;
#[cfg(feature = "html-rewriter")]
mod rewrite;
#[cfg(feature = "html-rewriter")]
mod survey;

#[cfg(feature = "html-rewriter")]
pub(crate) use conflict::answer;
#[cfg(not(feature = "html-rewriter"))]
pub(crate) use off::{answer, refusal};
#[cfg(feature = "html-rewriter")]
pub(crate) use refused::refusal;
