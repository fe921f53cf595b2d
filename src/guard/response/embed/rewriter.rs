//! The lol_html rewriter that puts the hidden input first inside each post form.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{OutputSink, element};

/// What the form handler tells the body about its progress.
#[derive(Debug)]
pub(super) struct Progress {
    /// Where the start tag of the last form handled begins (`usize::MAX`: none yet).
    pub(super) last_form: AtomicUsize,
    /// How many bytes were inserted so far.
    pub(super) inserted: AtomicUsize,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            last_form: AtomicUsize::new(usize::MAX),
            inserted: AtomicUsize::new(0),
        }
    }
}

#[derive(Clone, Default)]
pub(super) struct SharedOutput(pub(super) Arc<Mutex<Vec<u8>>>);

impl SharedOutput {
    pub(super) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl OutputSink for SharedOutput {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        if !chunk.is_empty() {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(chunk);
        }
    }
}

/// The elements whose content browsers read as text (raw text and RCDATA,
/// and `noscript` with scripting on).
const RAW_TEXT_ELEMENTS: &str =
    "script, style, title, textarea, xmp, iframe, noembed, noframes, noscript, plaintext";

pub(super) fn rewriter(
    hidden_input: Arc<str>,
    mut once: Option<String>,
    out: SharedOutput,
    progress: Arc<Progress>,
) -> HtmlRewriter<'static, SharedOutput> {
    let in_template = Arc::new(AtomicUsize::new(0));
    let template_depth = in_template.clone();
    HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                // Upstream bug L2 (fuzz/README.md): without a handler on
                // them, lol_html 2.9 can misread a raw-text or RCDATA start
                // tag that ends in an attribute without value (`<script
                // a=>`, `<style a= >`) and then see tags in the element's
                // text, where browsers see text; a token would go into a
                // script. With a handler, lol_html reads them as browsers do.
                element!(RAW_TEXT_ELEMENTS, |_| Ok(())),
                element!("template", move |el| {
                    let depth = template_depth.clone();
                    // A template the page never closes ends with the page.
                    let on_end: lol_html::send::EndTagHandler<'static> = Box::new(move |_end| {
                        depth.fetch_sub(1, Ordering::Relaxed);
                        Ok(())
                    });
                    // A self-closing `<template/>` in SVG or MathML has no
                    // content and no end tag: it opens nothing.
                    if el.on_end_tag(on_end).is_ok() {
                        template_depth.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }),
                element!("form", move |el| {
                    let post = el
                        .get_attribute("method")
                        // As browsers read it: `method=" post "` is invalid,
                        // so that form submits as GET (no token in its URL).
                        .is_some_and(|m| m.eq_ignore_ascii_case("post"));
                    let opted_out = el
                        .get_attribute("data-concurrency-guard")
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
                    if post && !opted_out && in_template.load(Ordering::Relaxed) == 0 {
                        // prepend puts each new piece first: the script goes
                        // in first so that the token ends up before it.
                        let mut inserted = 0;
                        if el.can_have_content() {
                            inserted += hidden_input.len();
                        }
                        if let Some(once) = once.take() {
                            if el.can_have_content() {
                                inserted += once.len();
                            }
                            el.prepend(&once, ContentType::Html);
                        }
                        el.prepend(&hidden_input, ContentType::Html);
                        progress.inserted.fetch_add(inserted, Ordering::Relaxed);
                    }
                    let start = el.source_location().bytes().start;
                    progress.last_form.store(start, Ordering::Relaxed);
                    Ok(())
                }),
            ],
            strict: false,
            ..Settings::new_send()
        },
        out,
    )
}
