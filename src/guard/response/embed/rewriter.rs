//! The lol_html rewriter that puts the token wherever the page will send a
//! write to this origin (the rules in `rules`; the forms in `forms`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{element, end, streaming};

use super::embedding::Embedding;
use super::forms::{Forms, Progress, write_token};
use super::output::SharedOutput;
use super::rules::{self, HX_WRITE_SELECTOR, HX_WRITES, HeadersKept, Method};
use crate::token::HEADER_NAME;

/// The elements whose content browsers read as text (raw text and RCDATA,
/// and `noscript` with scripting on).
const RAW_TEXT_ELEMENTS: &str =
    "script, style, title, textarea, xmp, iframe, noembed, noframes, noscript, plaintext";

pub(super) fn rewriter(
    embedding: Embedding,
    out: SharedOutput,
    progress: Arc<Progress>,
) -> HtmlRewriter<'static, SharedOutput> {
    let in_template = Arc::new(AtomicUsize::new(0));
    let template_depth = in_template.clone();
    let token = embedding.token.clone();
    let forms = Arc::new(Mutex::new(Forms::new(
        embedding,
        out.clone(),
        progress.clone(),
    )));
    let (on_form, on_control, on_base, on_end) =
        (forms.clone(), forms.clone(), forms.clone(), forms.clone());
    let (hx_template, base_template, control_template) = (
        in_template.clone(),
        in_template.clone(),
        in_template.clone(),
    );
    let hx_progress = progress.clone();
    let form_out = out.clone();
    let wants_htmx = lock(&forms).wants_htmx();
    let (on_htmx, htmx_template) = (forms.clone(), in_template.clone());
    let mut handlers = vec![
        // Any element: does the page use htmx (for its script)?
        element!("*", move |el| {
            let uses = el.attributes().iter().any(|a| {
                let name = a.name();
                name.starts_with("hx-") || name.starts_with("data-hx-")
            });
            if uses {
                let inert = htmx_template.load(Ordering::Relaxed) != 0;
                if let Some(script) = lock(&on_htmx).htmx_used(inert) {
                    el.before(&script, lol_html::html_content::ContentType::Html);
                }
            }
            Ok(())
        }),
    ];
    if !wants_htmx {
        handlers.clear();
    }
    HtmlRewriter::new(
        Settings {
            element_content_handlers: handlers
                .into_iter()
                .chain(vec![
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
                        let on_end: lol_html::send::EndTagHandler<'static> =
                            Box::new(move |_end| {
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
                    element!("base[href]", move |el| {
                        if base_template.load(Ordering::Relaxed) == 0 {
                            if let Some(href) = el.get_attribute("href") {
                                lock(&on_base).origin.set_base(&href);
                            }
                        }
                        Ok(())
                    }),
                    element!("form", move |el| {
                        let start = el.source_location().bytes().start;
                        let opted_out = el
                            .get_attribute("data-concurrency-guard")
                            .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
                        if !opted_out && in_template.load(Ordering::Relaxed) == 0 {
                            let mut forms = lock(&on_form);
                            if el.can_have_content() {
                                // As browsers read it: `method=" post "` is
                                // invalid, so that form submits as GET.
                                let method = Method::of(el.get_attribute("method").as_deref());
                                let (slot, text) = forms.open(method, el.get_attribute("action"));
                                let out = form_out.clone();
                                let written = slot.clone();
                                el.streaming_prepend(streaming!(move |sink| {
                                    write_token(&written, &out, &text, sink);
                                    Ok(())
                                }));
                                let on_end = on_form.clone();
                                let ends = el.on_end_tag(lol_html::end_tag!(move |_end| {
                                    let mut forms = lock(&on_end);
                                    if forms.is_open(&slot) {
                                        forms.close();
                                    }
                                    Ok(())
                                }));
                                let _ = ends;
                            } else {
                                forms.close();
                            }
                        }
                        progress.last_form.store(start, Ordering::Relaxed);
                        Ok(())
                    }),
                    element!("button, input", move |el| {
                        if control_template.load(Ordering::Relaxed) != 0 || el.has_attribute("form")
                        {
                            // Its form is named by id: not the open one's to judge.
                            return Ok(());
                        }
                        let mut forms = lock(&on_control);
                        if el.get_attribute("name").is_some_and(|n| {
                            rules::decode_entities(&n).as_deref() == Some(&forms.field)
                        }) {
                            forms.token_input();
                        }
                        let kind = el.get_attribute("type");
                        let kind = kind.as_deref().map(str::to_ascii_lowercase);
                        let submits = if el.tag_name() == "button" {
                            !matches!(kind.as_deref(), Some("button" | "reset"))
                        } else {
                            matches!(kind.as_deref(), Some("submit" | "image"))
                        };
                        if submits {
                            forms.submitter(
                                el.get_attribute("formmethod").as_deref(),
                                el.get_attribute("formaction"),
                            );
                        }
                        Ok(())
                    }),
                    element!(HX_WRITE_SELECTOR, move |el| {
                        if hx_template.load(Ordering::Relaxed) != 0 {
                            return Ok(());
                        }
                        let target = HX_WRITES.iter().find_map(|a| el.get_attribute(a));
                        if !lock(&forms).origin.is_this(target.as_deref()) {
                            return Ok(());
                        }
                        let name = if el.has_attribute("hx-headers")
                            || !el.has_attribute("data-hx-headers")
                        {
                            "hx-headers"
                        } else {
                            "data-hx-headers"
                        };
                        match rules::hx_headers_with_token(
                            el.get_attribute(name).as_deref(),
                            HEADER_NAME,
                            &token,
                        ) {
                            Ok(value) => {
                                if el.set_attribute(name, &value).is_ok() {
                                    hx_progress.modified.store(true, Ordering::Relaxed);
                                    // After the element (after its start tag when
                                    // it is void: it has no end tag).
                                    if let Some(script) = lock(&forms).hx_headers_token() {
                                        el.after(
                                            &script,
                                            lol_html::html_content::ContentType::Html,
                                        );
                                    }
                                }
                            }
                            Err(HeadersKept::HasToken) => {}
                            Err(HeadersKept::Unmergeable) => warn_unmergeable(),
                        }
                        Ok(())
                    }),
                ])
                .collect(),
            document_content_handlers: vec![end!(move |_end| {
                lock(&on_end).close();
                Ok(())
            })],
            strict: false,
            ..Settings::new_send()
        },
        out,
    )
}

fn lock(forms: &Mutex<Forms>) -> std::sync::MutexGuard<'_, Forms> {
    forms.lock().unwrap_or_else(|e| e.into_inner())
}

/// An `hx-headers` the guard cannot add to, told once per process.
fn warn_unmergeable() {
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !TOLD.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "auto-embed: an htmx element that writes has an hx-headers value that is not a JSON object (js:, javascript:, or invalid): no token added to it, so its requests will be refused; add \"{HEADER_NAME}\": \"{{{{ token.value() }}}}\" to it yourself"
        );
    }
}
