//! [`IdleTimeout`]: a body whose next piece must come within the read timeout once asked for.
//!
//! The clock runs only while the body is polled and the client has sent
//! nothing new: time the handler spends elsewhere is not counted. A pause
//! longer than the timeout ends the body with [`BodyTimedOut`], so whoever
//! reads it (the guard, or the handler's extractor while the record's lock
//! is held) stops waiting for the client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::guard::BoxError;

/// The error a body ends with when the client paused too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTimedOut {
    pub(crate) after: Duration,
}

impl BodyTimedOut {
    /// The timeout in whole seconds, rounded up.
    pub(crate) fn seconds(&self) -> u64 {
        whole_seconds(self.after)
    }
}

/// `d` in whole seconds, rounded up.
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the client sent no part of the body for {:?}",
            self.after
        )
    }
}

impl std::error::Error for BodyTimedOut {}

pin_project! {
    /// `inner`, each of whose frames must come within `after` of being
    /// asked for.
    pub(crate) struct IdleTimeout<B> {
        #[pin]
        inner: B,
        after: Duration,
        // Armed at the first `Pending`, disarmed by the next frame.
        sleep: Option<Pin<Box<Sleep>>>,
        timed_out: bool,
    }
}

impl<B> IdleTimeout<B> {
    pub(crate) fn new(inner: B, after: Duration) -> IdleTimeout<B> {
        IdleTimeout {
            inner,
            after,
            sleep: None,
            timed_out: false,
        }
    }
}

impl<B> http_body::Body for IdleTimeout<B>
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
        let this = self.project();
        if *this.timed_out {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let after = *this.after;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        *this.timed_out = true;
                        *this.sleep = None;
                        Poll::Ready(Some(Err(Box::new(BodyTimedOut { after }))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt as _;

    /// One frame, then nothing ever again (a client that stopped sending).
    struct Stalls(bool);

    impl http_body::Body for Stalls {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"a")))))
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_body_ends_with_the_timeout_and_a_steady_one_does_not() {
        let mut body = IdleTimeout::new(Stalls(false), Duration::from_millis(50));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "a");
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyTimedOut>(), "{err}");
        assert!(body.frame().await.is_none(), "ended after the timeout");

        let steady = IdleTimeout::new(Body::from("whole"), Duration::from_millis(1));
        let bytes = steady.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "whole");
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }
}
