//! Auto-embed: the hidden token input, put first inside every post form of a page.
//!
//! Only `text/html` responses with identity encoding are rewritten, through
//! lol_html, chunk by chunk: a page is never buffered whole. Forms inside
//! comments, `<script>`, `<style>`, `<textarea>` (text to the parser) and
//! `<template>` are left alone, and so is a form marked
//! `data-concurrency-guard="off"`.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Response, header};
use http_body::Frame;
use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{OutputSink, element};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a response is HTML that can be rewritten as it streams.
pub(crate) fn is_rewritable_html(headers: &HeaderMap) -> bool {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"));
    let identity = headers
        .get(header::CONTENT_ENCODING)
        .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"));
    html && identity
}

/// Embeds `hidden_input` in the response's post forms where it is HTML, and
/// `once` (a script) after it in the first of them.
pub(crate) fn embed<B>(
    response: Response<B>,
    hidden_input: Arc<str>,
    once: Option<String>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if !is_rewritable_html(response.headers()) {
        return response.map(Body::new);
    }
    let (mut parts, body) = response.into_parts();
    // The length changes with each form found; the page streams instead.
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::new(InjectBody::new(body, hidden_input, once)))
}

/// Rewrites `html` in one go (for tests, benches and fuzzing).
pub fn embed_in_str(html: &[u8], hidden_input: &str) -> Vec<u8> {
    let out = SharedOutput::default();
    let mut rewriter = rewriter(Arc::from(hidden_input), None, out.clone());
    let ok = rewriter.write(html).is_ok() && rewriter.end().is_ok();
    let bytes = out.take();
    if ok { bytes } else { html.to_vec() }
}

#[derive(Clone, Default)]
struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl SharedOutput {
    fn take(&self) -> Vec<u8> {
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

fn rewriter(
    hidden_input: Arc<str>,
    mut once: Option<String>,
    out: SharedOutput,
) -> HtmlRewriter<'static, SharedOutput> {
    let in_template = Arc::new(AtomicUsize::new(0));
    let template_depth = in_template.clone();
    HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!("template", move |el| {
                    template_depth.fetch_add(1, Ordering::Relaxed);
                    let depth = template_depth.clone();
                    // A template the page never closes ends with the page.
                    let on_end: lol_html::send::EndTagHandler<'static> = Box::new(move |_end| {
                        depth.fetch_sub(1, Ordering::Relaxed);
                        Ok(())
                    });
                    let _ = el.on_end_tag(on_end);
                    Ok(())
                }),
                element!("form", move |el| {
                    let post = el
                        .get_attribute("method")
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case("post"));
                    let opted_out = el
                        .get_attribute("data-concurrency-guard")
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
                    if post && !opted_out && in_template.load(Ordering::Relaxed) == 0 {
                        // prepend puts each new piece first: the script goes
                        // in first so that the token ends up before it.
                        if let Some(once) = once.take() {
                            el.prepend(&once, ContentType::Html);
                        }
                        el.prepend(&hidden_input, ContentType::Html);
                    }
                    Ok(())
                }),
            ],
            strict: false,
            ..Settings::new_send()
        },
        out,
    )
}

/// The response body, rewritten chunk by chunk.
struct InjectBody<B> {
    inner: Pin<Box<B>>,
    /// `None` once the page ended, or after a rewriting error (from then on
    /// the rest passes through unchanged).
    rewriter: Option<HtmlRewriter<'static, SharedOutput>>,
    out: SharedOutput,
    trailers: Option<HeaderMap>,
    done: bool,
}

impl<B> InjectBody<B> {
    fn new(inner: B, hidden_input: Arc<str>, once: Option<String>) -> InjectBody<B> {
        let out = SharedOutput::default();
        InjectBody {
            inner: Box::pin(inner),
            rewriter: Some(rewriter(hidden_input, once, out.clone())),
            out,
            trailers: None,
            done: false,
        }
    }

    fn push(&mut self, data: &[u8]) {
        match &mut self.rewriter {
            Some(rewriter) => {
                if rewriter.write(data).is_err() {
                    tracing::warn!("auto-embed stopped: the page could not be rewritten");
                    self.rewriter = None;
                    self.out.handle_chunk(data);
                }
            }
            None => self.out.handle_chunk(data),
        }
    }

    fn finish(&mut self) {
        if let Some(rewriter) = self.rewriter.take() {
            let _ = rewriter.end();
        }
        self.done = true;
    }
}

impl<B> http_body::Body for InjectBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let ready = this.out.take();
            if !ready.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(ready)))));
            }
            if this.done {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.finish(),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.push(&data),
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        this.finish();
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none() && self.out.0.lock().is_ok_and(|o| o.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(html: &str) -> String {
        String::from_utf8(embed_in_str(html.as_bytes(), "<i>T</i>")).unwrap()
    }

    #[test]
    fn first_inside_post_forms_only() {
        assert_eq!(
            embed(r#"<form method="post"><input name=a></form>"#),
            r#"<form method="post"><i>T</i><input name=a></form>"#
        );
        assert_eq!(
            embed("<FORM METHOD=POST></FORM>"),
            "<FORM METHOD=POST><i>T</i></FORM>"
        );
        assert_eq!(
            embed("<form action='/x' method='Post' class=a>"),
            "<form action='/x' method='Post' class=a><i>T</i>"
        );
        for untouched in [
            "<form></form>",
            "<form method=get></form>",
            "<!-- <form method=post> -->",
            "<script>'<form method=post>'</script>",
            "<style>/* <form method=post> */</style>",
            "<textarea><form method=post></textarea>",
            "<template><div><form method=post></form></div></template>",
            r#"<form method=post data-concurrency-guard="off"></form>"#,
        ] {
            assert_eq!(embed(untouched), untouched);
        }
        assert_eq!(
            embed("<template><form method=post></form></template><form method=post></form>"),
            "<template><form method=post></form></template><form method=post><i>T</i></form>"
        );
    }
}
