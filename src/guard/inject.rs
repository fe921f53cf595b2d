//! Auto-embed: the hidden token input, put first inside every post form of a page.
//!
//! Only `text/html` responses with identity encoding are rewritten, through
//! lol_html, chunk by chunk: a page is never buffered whole. Forms inside
//! comments, `<script>`, `<style>`, `<textarea>` (text to the parser) and
//! `<template>` are left alone, and so is a form marked
//! `data-concurrency-guard="off"`.
//!
//! # The cut-off after the last form
//!
//! The token only ever goes right after a `form` start tag, and lol_html
//! only sees such a tag where the page has the bytes `<form` (any case). So
//! once lol_html has handled the start tag at the page's *last* `<form`,
//! nothing after it can change: the rest of the page is copied as it is,
//! without parsing it. This needs the whole page at hand, so it is only done
//! when the page comes in one piece (a handler's `Html<String>`, a rendered
//! template); a page without `<form` at all then passes through untouched,
//! without a rewriter. A page that streams in pieces is rewritten piece by
//! piece as before. Either way the output is byte for byte lol_html's: tested
//! against plain lol_html on a corpus and by the fuzz target
//! `inject_differential`.
//!
//! # The fast path for plain pages
//!
//! A whole page of plain HTML (tags, comments, a doctype, `<script>`,
//! `<style>`, `<title>`, `<textarea>`) is not given to lol_html at all: a
//! small scanner (`inject_fast`) finds its post forms, and gives up on
//! anything else (`<template>`, SVG, other raw-text elements, CDATA, odd
//! attribute syntax, …), which then goes through lol_html as above. Same
//! tests, same fuzz targets: on every page, its output is lol_html's.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Response, header};
use http_body::Frame;
use lol_html::html_content::ContentType;
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{OutputSink, element};
use memchr::memmem;

use super::inject_fast;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a response is an HTML page (`text/html`, whatever its encoding).
pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    // What `axum::response::Html` sets, compared before it is parsed.
    if value.as_bytes() == b"text/html; charset=utf-8" {
        return true;
    }
    Some(value)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/html"))
}

/// Whether a response's body is not compressed (so an HTML one can be
/// rewritten as it streams).
pub(crate) fn is_identity_encoded(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// Whether a response is HTML that can be rewritten as it streams.
pub(crate) fn is_rewritable_html(headers: &HeaderMap) -> bool {
    is_html(headers) && is_identity_encoded(headers)
}

/// Embeds `hidden_input` in the response's post forms, and `once` (a
/// script) after it in the first of them. The caller has checked that the
/// response [is rewritable HTML](is_rewritable_html).
pub(crate) fn embed<B>(
    response: Response<B>,
    hidden_input: String,
    once: Option<String>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    debug_assert!(is_rewritable_html(response.headers()));
    let (mut parts, body) = response.into_parts();
    // The length changes with each form found.
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut body = Box::pin(body);
    // A page in memory (`Html<String>`, a rendered template) has an exact
    // size and its one frame ready at once: it is rewritten here and sent
    // with its new length, not chunked. (A poll that is not ready has
    // registered nothing that matters: the body is polled again, with the
    // connection's waker, when it streams.)
    let first = if body.size_hint().exact().is_some() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(page) if body.is_end_stream() => {
                    let page = rewrite_page(page, &hidden_input, once);
                    parts
                        .headers
                        .insert(header::CONTENT_LENGTH, page.len().into());
                    return Response::from_parts(parts, Body::from(page));
                }
                Ok(data) => Some(Ok(Frame::data(data))),
                Err(frame) => Some(Ok(frame)),
            },
            Poll::Ready(Some(Err(e))) => Some(Err(e.into())),
            Poll::Ready(None) => {
                parts.headers.insert(header::CONTENT_LENGTH, 0.into());
                return Response::from_parts(parts, Body::empty());
            }
            Poll::Pending => None,
        }
    } else {
        None
    };
    Response::from_parts(
        parts,
        Body::new(InjectBody::new_pinned(body, first, hidden_input, once)),
    )
}

/// Rewrites `html` in one go, as the guard rewrites a page that comes in
/// one piece (for tests, benches and fuzzing).
pub fn embed_in_str(html: &[u8], hidden_input: &str) -> Vec<u8> {
    match rewrite_whole(html, hidden_input, None) {
        Whole::Unchanged => html.to_vec(),
        Whole::Rewritten(bytes) => bytes,
    }
}

/// Rewrites `html` with lol_html alone, start to end: the reference the
/// guard's output is compared with (for tests and fuzzing).
#[doc(hidden)]
pub fn embed_in_str_lol_html(html: &[u8], hidden_input: &str) -> Vec<u8> {
    let out = SharedOutput::default();
    let progress = Arc::new(Progress::default());
    let mut rewriter = rewriter(Arc::from(hidden_input), None, out.clone(), progress);
    let ok = rewriter.write(html).is_ok() && rewriter.end().is_ok();
    let bytes = out.take();
    if ok { bytes } else { html.to_vec() }
}

/// Rewrites a page that arrives as `chunks` (one body frame each) exactly as
/// the guard's response body does (for tests and fuzzing).
#[doc(hidden)]
pub fn embed_in_chunks(chunks: &[&[u8]], hidden_input: &str) -> Vec<u8> {
    let frames = chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect();
    read_in_memory(InjectBody::new(
        Frames(frames),
        hidden_input.to_owned(),
        None,
    ))
}

/// The data of a body whose frames are all in memory (a `Pending` is polled
/// again at once), for [`embed_in_chunks`] and tests.
fn read_in_memory<B: http_body::Body<Data = Bytes>>(body: B) -> Vec<u8> {
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(None) => return out,
            Poll::Ready(Some(Err(_))) => unreachable!("frames in memory"),
            Poll::Pending => {}
        }
    }
}

/// A body of frames in memory (for [`embed_in_chunks`] and tests).
pub(super) struct Frames(pub(super) VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where the page's last `<form` (any case) starts, if anywhere: no form
/// start tag can begin after it.
fn last_form_tag(page: &[u8]) -> Option<usize> {
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
fn rewrite_page(page: Bytes, hidden_input: &str, once: Option<String>) -> Bytes {
    match rewrite_whole(&page, hidden_input, once) {
        Whole::Unchanged => page,
        Whole::Rewritten(bytes) => Bytes::from(bytes),
    }
}

/// The result of rewriting a whole page.
enum Whole {
    /// Nothing to do: the page has no `<form`.
    Unchanged,
    Rewritten(Vec<u8>),
}

/// Rewrites a page that is all at hand: through lol_html up to the start tag
/// at the page's last `<form`, the rest copied (see the module docs).
fn rewrite_whole(page: &[u8], hidden_input: &str, once: Option<String>) -> Whole {
    let Some(last) = last_form_tag(page) else {
        return Whole::Unchanged;
    };
    if let Some(ends) = inject_fast::post_forms(page, last) {
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

/// What the form handler tells the body about its progress.
#[derive(Debug)]
struct Progress {
    /// Where the start tag of the last form handled begins (`usize::MAX`: none yet).
    last_form: AtomicUsize,
    /// How many bytes were inserted so far.
    inserted: AtomicUsize,
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

/// The elements whose content browsers read as text (raw text and RCDATA,
/// and `noscript` with scripting on).
const RAW_TEXT_ELEMENTS: &str =
    "script, style, title, textarea, xmp, iframe, noembed, noframes, noscript, plaintext";

fn rewriter(
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

/// The response body, rewritten chunk by chunk.
struct InjectBody<B> {
    inner: Pin<Box<B>>,
    /// A frame already read from `inner`, handled before it is polled again.
    first: Option<Result<Frame<Bytes>, BoxError>>,
    rewrite: Rewrite,
    out: SharedOutput,
    trailers: Option<HeaderMap>,
    done: bool,
}

enum Rewrite {
    /// No data yet: whether the page comes whole decides how it is rewritten.
    Start {
        hidden_input: String,
        once: Option<String>,
    },
    /// Piece by piece through lol_html.
    Streaming(Box<HtmlRewriter<'static, SharedOutput>>),
    /// The rest passes unchanged: after a page that came whole, or after a
    /// rewriting error.
    PassThrough,
}

impl<B> InjectBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    fn new(inner: B, hidden_input: String, once: Option<String>) -> InjectBody<B> {
        InjectBody::new_pinned(Box::pin(inner), None, hidden_input, once)
    }

    /// `first`: a frame already read from `inner`.
    fn new_pinned(
        inner: Pin<Box<B>>,
        first: Option<Result<Frame<Bytes>, BoxError>>,
        hidden_input: String,
        once: Option<String>,
    ) -> InjectBody<B> {
        InjectBody {
            inner,
            first,
            rewrite: Rewrite::Start { hidden_input, once },
            out: SharedOutput::default(),
            trailers: None,
            done: false,
        }
    }

    /// Takes in one frame of the page; what to send is then in `self.out`,
    /// or returned directly when it is the frame itself.
    fn push(&mut self, data: Bytes) -> Option<Bytes> {
        if let Rewrite::Start { .. } = self.rewrite {
            let Rewrite::Start { hidden_input, once } =
                std::mem::replace(&mut self.rewrite, Rewrite::PassThrough)
            else {
                unreachable!("matched above");
            };
            if self.inner.is_end_stream() {
                // The whole page in one frame.
                return Some(rewrite_page(data, &hidden_input, once));
            }
            self.rewrite = Rewrite::Streaming(Box::new(rewriter(
                Arc::from(hidden_input),
                once,
                self.out.clone(),
                Arc::new(Progress::default()),
            )));
        }
        match &mut self.rewrite {
            Rewrite::Streaming(rewriter) => {
                if rewriter.write(&data).is_err() {
                    tracing::warn!("auto-embed stopped: the page could not be rewritten");
                    self.rewrite = Rewrite::PassThrough;
                    self.out.handle_chunk(&data);
                }
                None
            }
            Rewrite::Start { .. } | Rewrite::PassThrough => Some(data),
        }
    }

    fn finish(&mut self) {
        if let Rewrite::Streaming(rewriter) =
            std::mem::replace(&mut self.rewrite, Rewrite::PassThrough)
        {
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
            let polled = match this.first.take() {
                Some(first) => Poll::Ready(Some(first)),
                None => this
                    .inner
                    .as_mut()
                    .poll_frame(cx)
                    .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
            };
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.finish(),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if let Some(data) = this.push(data) {
                            if !data.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(data))));
                            }
                        }
                    }
                    Err(frame) => {
                        this.trailers = frame.into_trailers().ok();
                        this.finish();
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
            && self.first.is_none()
            && self.trailers.is_none()
            && self.out.0.lock().is_ok_and(|o| o.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(html: &str) -> String {
        String::from_utf8(embed_in_str(html.as_bytes(), "<i>T</i>")).unwrap()
    }

    /// Pages that exercise what decides where lol_html puts the token.
    const CORPUS: &[&str] = &[
        r#"<form method="post"><input name=a></form>"#,
        "<form method='post'></form><form method=post></form><form method = \"POST\" ></form>",
        "<FORM METHOD=POST><INPUT NAME=A></FORM><Form Method=Post/>",
        "<form method=post/><p>after a self-closing form</p>",
        "<form action=/x?a=1&b=2 method=post class=\"a b\" data-x='<form method=post>'>",
        "<div title=\"<form method=post>\"><form method=post></form></div>",
        "<form method=\" post \"></form><form method=\"post \t\n\"></form><form method=\"\u{a0}post\"></form>",
        "<form method=\"\u{feff}post\"></form><form method=\"p&#111;st\"></form>",
        "<form method=get><form method=post></form></form>",
        "<form method=post data-concurrency-guard=off></form><form method=post data-concurrency-guard=' OFF '>",
        "<form method=post method=get></form><form method=get method=post></form>",
        "<!-- <form method=post> --><form method=post>",
        "<!--><form method=post><!--->x<form method=post>--><form method=post>",
        "<!----><form method=post><!-- -- --!><form method=post>",
        "<!--<!--<form method=post>--><!-<form method=post>",
        "<!DOCTYPE html><!doctype html public \"x>\"><form method=post>",
        "<?xml version=\"1.0\"?><form method=post><![CDATA[<form method=post>]]><form method=post>",
        "<script>'<form method=post>'</script><form method=post>",
        "<script><!--<script></script><form method=post>--></script><form method=post>",
        "<script><!-- </script> <form method=post>",
        "<SCRIPT type=module>var f='</scrip'+'t>'</SCRIPT><form method=post>",
        "<script a=><form method=post></form></script><form method=post>",
        "<style>/* <form method=post> */</style><form method=post>",
        "<style a=><template><form method=post></form></template><form method=post>",
        "<textarea><form method=post></textarea><form method=post>",
        "<title><form method=post></title><form method=post>",
        "<xmp><form method=post></xmp><iframe><form method=post></iframe><form method=post>",
        "<noembed><form method=post></noembed><noframes><form method=post></noframes><form method=post>",
        "<noscript><form method=post></noscript><form method=post>",
        "<plaintext><form method=post></plaintext><form method=post>",
        "<template><div><form method=post></form></div></template><form method=post></form>",
        "<template><template><form method=post></template><form method=post></template><form method=post>",
        "<div><template></div><form method=post>",
        "<svg><template/></svg><form method=post>",
        "<svg><form method=post/><form method=post></form></svg><form method=post>",
        "<svg><![CDATA[<form method=post>]]><desc><form method=post></desc></svg><form method=post>",
        "<math><![CDATA[</math><form method=post>]]></math><form method=post>",
        "<math><mi><form method=post></mi><annotation-xml encoding=text/html><form method=post></annotation-xml></math>",
        "<svg><foreignObject><form method=post><svg><title><form method=post></title></svg></foreignObject></svg>",
        "<svg><p><form method=post></svg><font color=red><form method=post>",
        "<math></x><mi><template></mi><form method=post>",
        "<form method=post",
        "<form method=\"post",
        "<form method=post><form",
        "x<<form method=post>><</form method=post>< form method=post><form\tmethod=post>",
        "<formx method=post><form1 method=post><form:x method=post><form/method=post>",
    ];

    /// A body with an exact size whose frames come as given, each one
    /// after a `Pending` when `pending` is set.
    struct Sized {
        frames: VecDeque<Bytes>,
        left: u64,
        pending: bool,
        ready: bool,
    }

    impl http_body::Body for Sized {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.pending && !self.ready {
                self.ready = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = false;
            let frame = self.frames.pop_front();
            if let Some(f) = &frame {
                self.left -= f.len() as u64;
            }
            Poll::Ready(frame.map(|f| Ok(Frame::data(f))))
        }

        fn is_end_stream(&self) -> bool {
            self.frames.is_empty()
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(self.left)
        }
    }

    fn embed_response(frames: &[&str], pending: bool) -> (Option<String>, String) {
        let body = Sized {
            frames: frames.iter().map(|f| Bytes::from(f.to_string())).collect(),
            left: frames.iter().map(|f| f.len() as u64).sum(),
            pending,
            ready: false,
        };
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::CONTENT_LENGTH, 999)
            .body(body)
            .unwrap();
        let response = super::embed(response, "<i>T</i>".to_owned(), None);
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().to_owned());
        let out = super::read_in_memory(response.into_body());
        (length, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_page_in_memory_is_sent_with_its_new_length_others_stream() {
        let page = ["<p>a</p><form method=post>", "<input name=x></form>", "<b>"];
        let expected = "<p>a</p><form method=post><i>T</i><input name=x></form><b>";
        // One frame, ready at once: rewritten in the guard, with its length.
        let (length, body) = embed_response(&[&page.concat()], false);
        assert_eq!(body, expected);
        assert_eq!(length, Some(expected.len().to_string()));
        // Several frames (the first read early and handed on), or a first
        // frame that is not ready yet: streamed, without a length.
        for pending in [false, true] {
            let (length, body) = embed_response(&page, pending);
            assert_eq!(body, expected, "pending {pending}");
            assert_eq!(length, None, "pending {pending}");
        }
        let (length, body) = embed_response(&[&page.concat()], true);
        assert_eq!((length, body.as_str()), (None, expected));
        // No page at all.
        assert_eq!(
            embed_response(&[], false),
            (Some("0".into()), String::new())
        );
    }

    /// Every way the guard can rewrite `page`, against lol_html alone.
    fn assert_like_lol_html(page: &[u8], hidden: &str) {
        let expected = embed_in_str_lol_html(page, hidden);
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(
            show(&embed_in_str(page, hidden)),
            show(&expected),
            "whole page {:?}",
            show(page)
        );
        let mut chunkings: Vec<Vec<&[u8]>> = vec![vec![page]];
        for size in [1, 2, 3, 5, 7, 16, 64] {
            chunkings.push(page.chunks(size).collect());
        }
        for at in 0..=page.len() {
            chunkings.push(vec![&page[..at], &page[at..]]);
        }
        for chunks in chunkings {
            assert_eq!(
                show(&embed_in_chunks(&chunks, hidden)),
                show(&expected),
                "page {:?} in chunks {:?}",
                show(page),
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_last_form_tag() {
        let naive = |page: &[u8]| {
            (0..page.len()).rev().find(|&i| {
                page[i] == b'<'
                    && page
                        .get(i + 1..i + 5)
                        .is_some_and(|n| n.eq_ignore_ascii_case(b"form"))
            })
        };
        for page in CORPUS.iter().map(|p| p.as_bytes()).chain([
            &b""[..],
            b"<",
            b"<f",
            b"<form",
            b"<FoRm<fOrM x",
            b"<form<fo<Fo",
            b"<<form",
        ]) {
            assert_eq!(
                last_form_tag(page),
                naive(page),
                "{:?}",
                String::from_utf8_lossy(page)
            );
        }
    }

    #[test]
    fn byte_for_byte_lol_html_on_the_corpus() {
        for page in CORPUS {
            assert_like_lol_html(page.as_bytes(), "<i>T</i>");
            // A long tail after the last form, and a long page before it.
            let tail = format!("{page}{}", "<p class=x>tail</p>".repeat(40));
            assert_like_lol_html(tail.as_bytes(), "<i>T</i>");
            let head = format!("{}{page}", "<p class=x>head</p>".repeat(40));
            assert_like_lol_html(head.as_bytes(), "<i>T</i>");
        }
        assert_like_lol_html(b"\xff\xfe<form method=post>\x80", "<i>T</i>");
    }

    /// Pages as server-side templates write them, each of which the fast
    /// path takes.
    const PLAIN: &[&str] = &[
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=\"utf-8\"><title>Edit &amp; save</title>\n\
         <link rel=stylesheet href=/s.css><script src=/app.js defer></script>\n\
         <style>form > p { margin: 0 } a[href^='<form'] {}</style></head>\n\
         <body class='edit'><!-- the <form method=post> below --><nav><a href=/>Home</a></nav>\n\
         <form method=\"get\" action=/search><input name=q></form>\n\
         <FORM Method='POST' action=\"/items/1?a=1&amp;b=2\" class=edit hx-post=/x @submit.prevent=\"go()\">\n\
         <input name=name value=\"a > b\" required><textarea name=d><form method=post></textarea>\n\
         <select name=s><option value=1 selected>One</option></select><button>Save</button></FORM>\n\
         <form method=post data-concurrency-guard=off action=/logout><button>Log out</button></form>\n\
         <form method=post action=/items/1/delete><button>Delete</button></form>\n\
         <script>document.querySelectorAll('form').forEach(f => f.x = '<form method=post>');</script></body></html>",
        "<form method=post>",
        "<p>1 < 2 and 3<4</p><form method=post><input disabled></form><form\nmethod\n=\n\"post\"\n>",
        "<script type=module>if (a < b && c --> d) {}</script><form method=post></form>",
        "<title>a </title  > <form method=post></title><form method=post>",
        "<style>a{}</STYLE ><form method=post data-concurrency-guard=' off '><form method=POST>",
        "<form method=post/ ><form method=post action=/x/>",
        "<div\rclass=x><form\x0cmethod=post>",
        // Opting out reads the value as the lol_html path does: trimmed of
        // Unicode blanks (a no-break space, an ideographic space) too.
        "<form method=post data-concurrency-guard=\"\u{a0}off\u{3000}\"><form method=post data-concurrency-guard=\"of\u{a0}f\">",
    ];

    #[test]
    fn the_fast_path_takes_plain_pages_and_agrees_with_lol_html() {
        for page in PLAIN {
            let last = last_form_tag(page.as_bytes()).expect("a form");
            assert!(
                inject_fast::post_forms(page.as_bytes(), last).is_some(),
                "left to lol_html: {page:?}"
            );
            assert_like_lol_html(page.as_bytes(), "<i>T</i>");
        }
        assert_eq!(
            embed(PLAIN[0]).matches("<i>T</i>").count(),
            2,
            "the POST form and the delete form"
        );
        // And it leaves the hard pages of the corpus to lol_html.
        let taken = CORPUS
            .iter()
            .filter(|page| {
                last_form_tag(page.as_bytes())
                    .and_then(|last| inject_fast::post_forms(page.as_bytes(), last))
                    .is_some()
            })
            .count();
        assert!((10..CORPUS.len() - 10).contains(&taken), "{taken}");
    }

    /// Raw-text start tags ending in an attribute without a value: what
    /// Chromium makes of each page (checked by hand in Chromium 156), where
    /// lol_html 2.9 alone can read tags inside the element's text (L2 in
    /// fuzz/README.md).
    #[test]
    fn raw_text_after_an_attribute_without_value() {
        for (page, expected) in [
            // All script text: no form at all.
            (
                "<template><script S=></template><form method=post>",
                "<template><script S=></template><form method=post>",
            ),
            (
                "<script S=></template><form method=post>",
                "<script S=></template><form method=post>",
            ),
            (
                "<form><template><script\nS=></form><form\u{c}method=post>",
                "<form><template><script\nS=></form><form\u{c}method=post>",
            ),
            (
                "<script S\n=\n>'<form m[<<]osvg><form method=post></template><form method=post>",
                "<script S\n=\n>'<form m[<<]osvg><form method=post></template><form method=post>",
            ),
            // The script ends where browsers end it.
            (
                "<script S=></script><form method=post>",
                "<script S=></script><form method=post><i>T</i>",
            ),
            (
                "<style a= ></style><form method=post>",
                "<style a= ></style><form method=post><i>T</i>",
            ),
        ] {
            assert_eq!(embed(page), expected, "{page:?}");
            for size in [1, 2, 3, 7] {
                let chunks: Vec<&[u8]> = page.as_bytes().chunks(size).collect();
                assert_eq!(
                    String::from_utf8(embed_in_chunks(&chunks, "<i>T</i>")).unwrap(),
                    expected,
                    "{page:?} in chunks of {size}"
                );
            }
        }
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
            embed(r#"<form method=" post "></form>"#),
            r#"<form method=" post "></form>"#,
            "browsers submit an invalid method as GET"
        );
        assert_eq!(
            embed("<svg><template/></svg><form method=post></form>"),
            "<svg><template/></svg><form method=post><i>T</i></form>",
            "a self-closing template in SVG hides nothing"
        );
        assert_eq!(
            embed("<template><form method=post></form></template><form method=post></form>"),
            "<template><form method=post></form></template><form method=post><i>T</i></form>"
        );
    }
}
