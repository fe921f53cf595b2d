//! The response body of a page that streams: rewritten chunk by chunk.

use std::pin::Pin;
#[cfg(feature = "html-rewriter")]
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
#[cfg(feature = "html-rewriter")]
use lol_html::send::HtmlRewriter;

use super::embedding::Embedding;
#[cfg(feature = "html-rewriter")]
use super::forms::Progress;
use super::output::SharedOutput;
#[cfg(feature = "html-rewriter")]
use super::rewriter::rewriter;
use super::whole::rewrite_page;
use crate::guard::BoxError;

/// How much of a streamed page is held back while its open form is read
/// (its token is kept or taken out at the form's end).
#[cfg(feature = "html-rewriter")]
const MAX_HELD: usize = 1 << 20;

/// The response body, rewritten chunk by chunk.
pub(super) struct InjectBody<B> {
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
    Start(Box<Embedding>),
    /// Piece by piece through lol_html.
    #[cfg(feature = "html-rewriter")]
    Streaming(Box<HtmlRewriter<'static, SharedOutput>>),
    /// The rest passes unchanged: after a page that came whole, or after a
    /// rewriting error.
    PassThrough,
}

impl<B> InjectBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    pub(super) fn new(inner: B, embedding: Embedding) -> InjectBody<B> {
        InjectBody::new_pinned(Box::pin(inner), None, embedding)
    }

    /// `first`: a frame already read from `inner`.
    pub(super) fn new_pinned(
        inner: Pin<Box<B>>,
        first: Option<Result<Frame<Bytes>, BoxError>>,
        embedding: Embedding,
    ) -> InjectBody<B> {
        InjectBody {
            inner,
            first,
            rewrite: Rewrite::Start(Box::new(embedding)),
            out: SharedOutput::default(),
            trailers: None,
            done: false,
        }
    }

    /// Takes in one frame of the page; what to send is then in `self.out`,
    /// or returned directly when it is the frame itself.
    fn push(&mut self, data: Bytes) -> Option<Bytes> {
        if let Rewrite::Start(_) = self.rewrite {
            let Rewrite::Start(embedding) =
                std::mem::replace(&mut self.rewrite, Rewrite::PassThrough)
            else {
                unreachable!("matched above");
            };
            if self.inner.is_end_stream() {
                // The whole page in one frame.
                return Some(rewrite_page(data, &embedding));
            }
            #[cfg(feature = "html-rewriter")]
            {
                self.rewrite = Rewrite::Streaming(Box::new(rewriter(
                    *embedding,
                    self.out.clone(),
                    Arc::new(Progress::default()),
                )));
            }
            #[cfg(not(feature = "html-rewriter"))]
            {
                // Only lol_html reads a page piece by piece: this one
                // passes as it is, without a token.
                super::unrewritable::warn_undecided(
                    &embedding,
                    "the page streams in several pieces (only a page that comes in one piece is scanned)",
                );
                return Some(data);
            }
        }
        match &mut self.rewrite {
            #[cfg(feature = "html-rewriter")]
            Rewrite::Streaming(rewriter) => {
                if rewriter.write(&data).is_err() {
                    tracing::warn!("auto-embed stopped: the page could not be rewritten");
                    self.rewrite = Rewrite::PassThrough;
                    self.out.release();
                    self.out.push(&data);
                } else if self.out.waiting() > MAX_HELD {
                    // A form this long is sent as it is so far: its token
                    // stays (and one of its own further on makes two).
                    self.out.release();
                }
                None
            }
            Rewrite::Start(_) | Rewrite::PassThrough => Some(data),
        }
    }

    fn finish(&mut self) {
        #[cfg(feature = "html-rewriter")]
        if let Rewrite::Streaming(rewriter) =
            std::mem::replace(&mut self.rewrite, Rewrite::PassThrough)
        {
            let _ = rewriter.end();
        }
        self.out.release();
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
        self.done && self.first.is_none() && self.trailers.is_none() && self.out.waiting() == 0
    }
}
