//! The page's body, copied as it goes out, checked at its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The largest page checked (a larger one is not, and says so at `debug`).
pub(crate) const PAGE_LIMIT: usize = 4 * 1024 * 1024;

/// What is run on the whole page.
type Check = Box<dyn FnOnce(&[u8]) + Send>;

/// The page's body, copied as it goes out and checked once it has all
/// gone.
pub(crate) struct Checked<B> {
    inner: Pin<Box<B>>,
    copy: Vec<u8>,
    /// Set once the copy is checked, or given up on.
    done: bool,
    check: Option<Check>,
}

impl<B> Checked<B> {
    /// `body`, with `check` run on the whole page once it has gone out.
    pub(crate) fn new(body: B, check: impl FnOnce(&[u8]) + Send + 'static) -> Checked<B> {
        Checked {
            inner: Box::pin(body),
            copy: Vec::new(),
            done: false,
            check: Some(Box::new(check)),
        }
    }

    fn finish(&mut self) {
        if let (false, Some(check)) = (self.done, self.check.take()) {
            self.done = true;
            check(&self.copy);
            self.copy = Vec::new();
        }
    }
}

impl<B> Body for Checked<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) if !this.done => {
                if let Some(data) = frame.data_ref() {
                    if this.copy.len() + data.len() > PAGE_LIMIT {
                        tracing::debug!("debug render check: page too large, not checked");
                        this.done = true;
                        this.check = None;
                        this.copy = Vec::new();
                    } else {
                        this.copy.extend_from_slice(data);
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None) => this.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
