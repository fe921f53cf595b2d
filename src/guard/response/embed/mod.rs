//! Auto-embed: the token, wherever the page sends a write to this origin.
//!
//! Where that is — forms that post here (their own `method` or a button's
//! `formmethod`), never a form that submits elsewhere or already has a
//! token, htmx's `hx-post/put/patch/delete` elements through `hx-headers` —
//! is said in [`rules`]. A form's hidden input goes first inside it at its
//! start tag and is held back from the client until the form ends (its
//! `</form>`, the next form, the page's end, or 1 MiB of a streamed page),
//! then kept or taken out again (`forms`).
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
//! once lol_html has handled the start tag at the page's *last* `<form`
//! and that form has ended, nothing after it can change (a page with an
//! htmx attribute is read to its end): the rest of the page is copied as it is,
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
//! `<style>`, `<title>`, `<textarea>`, forms whose `method` alone decides)
//! is not given to lol_html at all: a
//! small scanner (`scan`) finds its post forms, and gives up on
//! anything else (`<template>`, SVG, other raw-text elements, CDATA, odd
//! attribute syntax, …), which then goes through lol_html as above. Same
//! tests, same fuzz targets: on every page, its output is lol_html's.
//!
//! # Without the `html-rewriter` feature
//!
//! There is no lol_html: the scanner serves the pages it can decide (with
//! the same bytes), and any other page — one the scanner gives up on, or
//! that streams in several pieces — is served as it is, without a token,
//! and its route is named in a warning, once, with the cause (`undecided`,
//! `unrewritable`). Its forms are refused when submitted (no token).

use std::collections::VecDeque;
use std::pin::Pin;
#[cfg(feature = "html-rewriter")]
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Response, header};
use http_body::Frame;

mod embedding;
#[cfg(feature = "html-rewriter")]
mod forms;
mod output;
#[cfg(feature = "html-rewriter")]
mod rewriter;
#[cfg(feature = "html-rewriter")]
pub(crate) mod rules;
mod scan;
mod stream;
mod undecided;
mod unrewritable;
mod whole;

pub(crate) use embedding::Embedding;
#[cfg(feature = "html-rewriter")]
use forms::Progress;
#[cfg(feature = "html-rewriter")]
use output::SharedOutput;
#[cfg(feature = "html-rewriter")]
use rewriter::rewriter;
use stream::InjectBody;
pub(crate) use unrewritable::{unrewritable, warn_unrewritable};
#[cfg(all(test, feature = "html-rewriter"))]
use whole::last_form_tag;
use whole::{Whole, rewrite_page, rewrite_whole};

use crate::guard::BoxError;

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

/// Whether a response is HTML that can be rewritten as it streams.
pub(crate) fn is_rewritable_html(headers: &HeaderMap) -> bool {
    is_html(headers) && unrewritable(headers).is_none()
}

/// The headers that describe a representation's bytes (RFC 9110 §8.8.3: a
/// strong `ETag` changes with them; digests are of them): wrong once the
/// page is rewritten. `Last-Modified` stays: it says when the resource last
/// changed, which the token does not change.
const DESCRIBE_BYTES: [&str; 5] = [
    "etag",
    "content-md5",
    "digest",
    "content-digest",
    "repr-digest",
];

fn drop_validators(headers: &mut HeaderMap) {
    for name in DESCRIBE_BYTES {
        headers.remove(name);
    }
}

/// The headers of a page the guard turned into another answer (a conflict
/// or a refusal shown in the application's page): what describes the
/// page's bytes ([`DESCRIBE_BYTES`], `Content-Length`) is wrong, and what
/// says the page can be kept (`Last-Modified`, `Expires`) is not true of an
/// answer that must not be (`Cache-Control: no-store` is the caller's).
#[cfg(feature = "html-rewriter")]
pub(crate) fn drop_page_headers(headers: &mut HeaderMap) {
    drop_validators(headers);
    for name in [
        http::header::CONTENT_LENGTH,
        http::header::LAST_MODIFIED,
        http::header::EXPIRES,
    ] {
        headers.remove(name);
    }
}

/// Embeds the token wherever the page sends a write to this origin (see
/// [`rules`]), and the early warning's script after the first token (a
/// hidden input, or an htmx element's `hx-headers`). The caller has checked that the response [is rewritable
/// HTML](is_rewritable_html).
pub(crate) fn embed<B>(response: Response<B>, embedding: Embedding) -> Response<Body>
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
                    let rewritten = rewrite_page(page.clone(), &embedding);
                    if rewritten != page {
                        drop_validators(&mut parts.headers);
                    }
                    let page = rewritten;
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
    // Its headers go before its bytes are known.
    drop_validators(&mut parts.headers);
    Response::from_parts(
        parts,
        Body::new(InjectBody::new_pinned(body, first, embedding)),
    )
}

/// Rewrites `html` in one go, as the guard rewrites a page that comes in
/// one piece (for tests, benches and fuzzing), with the test embedding
/// (`Embedding::for_tests`: token `T`, host `example.com`).
pub fn embed_in_str(html: &[u8], hidden_input: &str) -> Vec<u8> {
    embed_whole(html, &Embedding::for_tests(hidden_input))
}

/// [`embed_in_str`] with a given embedding.
pub(crate) fn embed_whole(html: &[u8], embedding: &Embedding) -> Vec<u8> {
    match rewrite_whole(html, embedding) {
        Whole::Unchanged => html.to_vec(),
        Whole::Rewritten(bytes) => bytes,
    }
}

/// Rewrites `html` with lol_html alone, start to end: the reference the
/// guard's output is compared with (for tests and fuzzing).
#[doc(hidden)]
#[cfg(feature = "html-rewriter")]
pub fn embed_in_str_lol_html(html: &[u8], hidden_input: &str) -> Vec<u8> {
    embed_lol_html(html, &Embedding::for_tests(hidden_input))
}

/// [`embed_in_str_lol_html`] with a given embedding.
#[cfg(feature = "html-rewriter")]
pub(crate) fn embed_lol_html(html: &[u8], embedding: &Embedding) -> Vec<u8> {
    let out = SharedOutput::default();
    let progress = Arc::new(Progress::default());
    let mut rewriter = rewriter(embedding.clone(), out.clone(), progress);
    let ok = rewriter.write(html).is_ok() && rewriter.end().is_ok();
    out.release();
    let bytes = out.take();
    if ok { bytes } else { html.to_vec() }
}

/// Rewrites a page that arrives as `chunks` (one body frame each) exactly as
/// the guard's response body does (for tests and fuzzing).
#[doc(hidden)]
pub fn embed_in_chunks(chunks: &[&[u8]], hidden_input: &str) -> Vec<u8> {
    let frames = chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect();
    embed_chunks(Frames(frames), &Embedding::for_tests(hidden_input))
}

/// [`embed_in_chunks`] with a given embedding.
pub(crate) fn embed_chunks(frames: Frames, embedding: &Embedding) -> Vec<u8> {
    read_in_memory(InjectBody::new(frames, embedding.clone()))
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
pub(crate) struct Frames(pub(crate) VecDeque<Bytes>);

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

// Against lol_html: with the full rewriter only.
#[cfg(test)]
#[cfg(feature = "html-rewriter")]
mod tests {
    use super::*;

    const FIELD: &str = crate::token::DEFAULT_FIELD_NAME;

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
        // The embedding rules (`rules`): left to lol_html by the scanner.
        "<form><button formmethod=post>S</button></form><form method=get><input type=submit formmethod=POST></form>",
        "<form><button formmethod=dialog></button><button type=button formmethod=post></button></form>",
        "<form method=post action=\"https://pay.example.net/checkout\"></form><form method=post action=//pay.example.net/x></form>",
        "<form method=post action=https://example.com/items/1></form><form method=post action=http://example.com:8080/x></form>",
        "<form method=post><button formaction=https://pay.example.net/>Pay</button><button>Save</button></form><form method=post>",
        "<form method=post action=/items/1?a=1&amp;b=2></form><form method=post action=&#47;&#47;pay.example.net></form>",
        "<base href=https://cdn.example/><form method=post action=/items/1></form>",
        "<form method=post><input type=hidden name=_concurrency_token value=S></form><form method=post></form>",
        "<form method=post><p>x</p><INPUT NAME=\"_concurrency_token\"></form><form method=post><input form=f name=_concurrency_token></form>",
        "<form method=post><input name=_concurrency_token><form method=post></form>",
        "<div><form method=post></div><input name=_concurrency_token><form method=post>",
        "<button hx-delete=\"/items/1\">Delete</button><div hx-post=\"https://other.example/x\"></div>",
        "<button hx-put=/x hx-headers='{\"A\":\"b\"}'></button><button hx-patch=/x hx-headers=\"js:{a: 1}\"></button>",
        "<form hx-post=/items/1><input name=a></form><template><button hx-delete=/x></button></template>",
        "<p data-hx-delete=/x data-hx-headers='{\"A\":1}'></p><p HX-POST=/x hx-headers='{\"x-concurrency-token\":\"S\"}'>",
        "<form method=post hx-post=/x></form><form method=post>",
        "<FORM Method='POST' action=\"/items/1?a=1&amp;b=2\" class=edit hx-post=/x @submit.prevent=\"go()\"></FORM>",
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
        let response = super::embed(response, Embedding::for_tests("<i>T</i>"));
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
         <FORM Method='POST' action=\"/items/1?a=1\" class=edit @submit.prevent=\"go()\">\n\
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
            assert!(
                scan::post_forms(page.as_bytes(), FIELD).is_some(),
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
                last_form_tag(page.as_bytes()).is_some()
                    && scan::post_forms(page.as_bytes(), FIELD).is_some()
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

    /// WHATWG HTML's form submission: the submitter's `formmethod` and
    /// `formaction` override the form's (the "form submission algorithm");
    /// `method`/`formmethod` invalid is GET, `dialog` sends nothing; only
    /// `<button>` (type submit, missing or invalid) and `<input
    /// type=submit|image>` submit; URLs resolve against `<base href>`.
    #[test]
    fn a_token_goes_where_a_write_to_this_origin_goes() {
        for (page, expected) in [
            // A GET form whose button posts: the write happens, the token
            // goes first in the form (a GET submission carries it in its
            // query to this origin: a read).
            (
                "<form><button formmethod=post>S</button></form>",
                "<form><i>T</i><button formmethod=post>S</button></form>",
            ),
            (
                "<form method=get action=/items/1><input type=image formmethod=POST></form>",
                "<form method=get action=/items/1><i>T</i><input type=image formmethod=POST></form>",
            ),
            // Nothing is sent, or nothing submits.
            (
                "<form><button formmethod=dialog>x</button><button type=button formmethod=post>y</button><input type=text formmethod=post></form>",
                "<form><button formmethod=dialog>x</button><button type=button formmethod=post>y</button><input type=text formmethod=post></form>",
            ),
            (
                "<form method=dialog><button>x</button></form>",
                "<form method=dialog><button>x</button></form>",
            ),
            // Another origin: no token at all.
            (
                "<form method=post action=\"https://pay.example.net/checkout\"></form>",
                "<form method=post action=\"https://pay.example.net/checkout\"></form>",
            ),
            (
                "<form method=post action=//pay.example.net/x></form><form method=post action=\"/\\pay.example.net\"></form>",
                "<form method=post action=//pay.example.net/x></form><form method=post action=\"/\\pay.example.net\"></form>",
            ),
            (
                "<form method=post action=http://example.com:8080/x></form>",
                "<form method=post action=http://example.com:8080/x></form>",
            ),
            // A button that sends the form elsewhere would take it along.
            (
                "<form method=post><button formaction=https://pay.example.net/>Pay</button><button>Save</button></form>",
                "<form method=post><button formaction=https://pay.example.net/>Pay</button><button>Save</button></form>",
            ),
            // This origin, written out.
            (
                "<form method=post action=https://example.com/items/1></form>",
                "<form method=post action=https://example.com/items/1><i>T</i></form>",
            ),
            (
                "<form method=post action=\"/items/1?a=1&amp;b=2\"></form>",
                "<form method=post action=\"/items/1?a=1&amp;b=2\"><i>T</i></form>",
            ),
            // Relative to the page's base.
            (
                "<base href=https://cdn.example/><form method=post action=/items/1></form>",
                "<base href=https://cdn.example/><form method=post action=/items/1></form>",
            ),
            (
                "<base href=/app/><form method=post action=items/1></form>",
                "<base href=/app/><form method=post action=items/1><i>T</i></form>",
            ),
            // A boosted form is an ordinary form.
            (
                "<body hx-boost=true><form method=post action=/items/1></form>",
                "<body hx-boost=true><form method=post action=/items/1><i>T</i></form>",
            ),
        ] {
            assert_eq!(embed(page), expected, "{page:?}");
            assert_like_lol_html(page.as_bytes(), "<i>T</i>");
        }
    }

    /// A form never carries two tokens: one it has (a template's, a 422
    /// page's echo, a child record's) is the one it keeps.
    #[test]
    fn one_token_per_form() {
        for (page, expected) in [
            (
                "<form method=post><input type=hidden name=_concurrency_token value=S><input name=a></form><form method=post></form>",
                "<form method=post><input type=hidden name=_concurrency_token value=S><input name=a></form><form method=post><i>T</i></form>",
            ),
            (
                "<form method=post action=/items/1><input name=a></form>\
                 <form method=post action=/items/1/notes/9><textarea name=t></textarea><input type=hidden name=\"_concurrency_token\" value=N></form>",
                "<form method=post action=/items/1><i>T</i><input name=a></form>\
                 <form method=post action=/items/1/notes/9><textarea name=t></textarea><input type=hidden name=\"_concurrency_token\" value=N></form>",
            ),
            // Names are compared as they are: another case is another name.
            (
                "<form method=post><input name=_Concurrency_Token></form>",
                "<form method=post><i>T</i><input name=_Concurrency_Token></form>",
            ),
        ] {
            assert_eq!(embed(page), expected, "{page:?}");
            assert_like_lol_html(page.as_bytes(), "<i>T</i>");
        }
    }

    /// htmx sends `hx-headers` (a JSON object) as request headers, merged
    /// down from ancestors in htmx 2 and from `:inherited` ones in htmx 4:
    /// the element's own attribute reaches both.
    #[test]
    fn htmx_writes_get_the_token_header() {
        let header = |extra: &str| {
            format!("hx-headers=\"{{{extra}&quot;x-concurrency-token&quot;:&quot;T&quot;}}\"")
        };
        for (page, expected) in [
            (
                "<button hx-delete=\"/items/1\">Delete</button>".to_owned(),
                format!("<button hx-delete=\"/items/1\" {}>Delete</button>", header("")),
            ),
            (
                "<form hx-post=/items/1><input name=a></form>".to_owned(),
                format!("<form hx-post=/items/1 {}><input name=a></form>", header("")),
            ),
            (
                "<tr hx-patch=/items/1 hx-headers='{\"X-A\":\"b\"}'></tr>".to_owned(),
                format!("<tr hx-patch=/items/1 {}></tr>", header("&quot;X-A&quot;:&quot;b&quot;,")),
            ),
            // Left alone: another origin, script headers, a token already
            // there, a template.
            (
                "<div hx-post=\"https://other.example/x\"></div><a hx-put=/x hx-headers=\"js:{a: 1}\"></a>".to_owned(),
                "<div hx-post=\"https://other.example/x\"></div><a hx-put=/x hx-headers=\"js:{a: 1}\"></a>".to_owned(),
            ),
            (
                "<p hx-post=/x hx-headers='{\"X-Concurrency-Token\":\"S\"}'></p><template><b hx-delete=/x></b></template>".to_owned(),
                "<p hx-post=/x hx-headers='{\"X-Concurrency-Token\":\"S\"}'></p><template><b hx-delete=/x></b></template>".to_owned(),
            ),
            // A post form with hx-post: both (the same token).
            (
                "<form method=post hx-post=/x></form>".to_owned(),
                format!("<form method=post hx-post=/x {}><i>T</i></form>", header("")),
            ),
        ] {
            assert_eq!(embed(&page), expected, "{page:?}");
            assert_like_lol_html(page.as_bytes(), "<i>T</i>");
        }
    }

    #[test]
    fn the_early_warning_script_follows_the_first_token_kept() {
        let mut embedding = Embedding::for_tests("<i>T</i>");
        embedding.once = Some("<s></s>".into());
        let page = b"<form><input name=q></form><form method=post></form><form method=post></form>";
        let expected = "<form><input name=q></form><form method=post><i>T</i><s></s></form><form method=post><i>T</i></form>";
        assert_eq!(
            String::from_utf8(embed_whole(page, &embedding)).unwrap(),
            expected
        );
        assert_eq!(
            String::from_utf8(embed_lol_html(page, &embedding)).unwrap(),
            expected
        );
    }

    #[test]
    fn a_rewritten_page_drops_what_described_its_bytes() {
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::ETAG, "\"p1\"")
            .header("content-digest", "sha-256=:x:")
            .header(header::LAST_MODIFIED, "Tue, 01 Jul 2025 10:00:00 GMT")
            .body(axum::body::Body::from("<form method=post></form>"))
            .unwrap();
        let response = super::embed(response, Embedding::for_tests("<i>T</i>"));
        assert!(response.headers().get(header::ETAG).is_none());
        assert!(response.headers().get("content-digest").is_none());
        assert!(response.headers().get(header::LAST_MODIFIED).is_some());
        // Nothing changed: the handler's validators still hold.
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/html")
            .header(header::ETAG, "\"p1\"")
            .body(axum::body::Body::from("<form></form>"))
            .unwrap();
        let response = super::embed(response, Embedding::for_tests("<i>T</i>"));
        assert_eq!(response.headers()[header::ETAG], "\"p1\"");
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
