//! The builder's limits and protections: body size and pace, the record
//! lock's wait, cross-origin protection.

use std::time::Duration;

use super::ConcurrencyGuardLayer;
use crate::guard::config::BodyLimit;

impl<T, S> ConcurrencyGuardLayer<T, S> {
    /// The most bytes of a body the guard buffers (413 Content Too Large
    /// beyond, with a message; the handler does not run). The guard buffers
    /// an urlencoded form, any body other than multipart of a submission it
    /// locks a record for (so that the lock is never held while the client
    /// sends), and a multipart body's parts before its token part: the
    /// handler gets the same bytes.
    ///
    /// Without it, axum's `DefaultBodyLimit` applies (2 MiB unless set), and
    /// never more than the guard's own ceiling of 16 MiB, which holds even
    /// under `DefaultBodyLimit::disable()`. With it, `bytes` is the limit,
    /// whatever axum's is. A multipart body is never buffered whole: only
    /// what comes before its token part is (see
    /// [`with_multipart_prefix_limit`](Self::with_multipart_prefix_limit));
    /// the rest streams to the handler, whose extractor applies axum's
    /// limit to the whole body (axum's `Multipart` answers 413 beyond it,
    /// as without the guard). A multipart body that declares a
    /// `Content-Length` over axum's limit is refused 413 before it is read.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.config_mut().body_limit = BodyLimit::Bytes(bytes);
        self
    }

    /// How long the client may pause while sending a body (default 30
    /// seconds): the longest wait for the next piece of a body the guard
    /// reads before the handler, answered **408 Request Timeout** (RFC 9110
    /// §15.5.9) with a message, the handler not run. The rest of a
    /// multipart body, which streams to the handler while the record's lock
    /// is held, answers to the same timeout: a pause longer than this is an
    /// error to the handler's extractor (axum's `Multipart` answers 400), so
    /// a client that stops sending cannot keep the record locked. The wait
    /// for the handler itself is not counted, only the wait for the client.
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().body_read_timeout = timeout;
        self
    }

    /// How long a submission waits for its record's lock (default 5
    /// seconds) while another submission to the same record is checked and
    /// written. Beyond it the guard answers **503 Service Unavailable** with
    /// `Retry-After` (this timeout in whole seconds, at least 1) and a
    /// message; the handler does not run and nothing is written.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().lock_timeout = timeout;
        self
    }

    /// How far into a multipart body the token part may come: the most
    /// bytes the guard buffers before it (400 Bad Request beyond, with a
    /// message saying to put the token before the file fields; the handler
    /// does not run).
    ///
    /// Without it, a body within its limit is accepted wherever its token
    /// is: the guard reads up to the body limit
    /// ([`with_body_limit`](Self::with_body_limit) where set, 413 beyond
    /// it; else axum's `DefaultBodyLimit`, 413 beyond it, never buffering
    /// more than 16 MiB, 400 beyond that) and replays what it read.
    /// Auto-embed puts the token first, so an upload from an auto-embedded
    /// form is buffered only up to its token part, however large its files.
    pub fn with_multipart_prefix_limit(mut self, bytes: usize) -> Self {
        self.config_mut().multipart_prefix_limit = Some(bytes);
        self
    }

    /// Cross-origin protection for unsafe methods (default **on**): a
    /// browser's submission from another site is refused with 403 (the
    /// typed reason [`Rejection::CrossOrigin`](crate::Rejection::CrossOrigin))
    /// before the body is read, the record loaded or the handler run. As
    /// Go's `net/http` `CrossOriginProtection` decides: `Sec-Fetch-Site:
    /// same-origin` or `none` passes, any other value is refused; without
    /// it, `Origin` must name the request's `Host`; a request with neither
    /// header is not a browser's cross-site request and passes (API
    /// clients, `curl`, tests). It is not a CSRF defence on its own for
    /// browsers that send neither header (before 2020) and does not stop a
    /// sibling subdomain that is same-origin by proxy; see
    /// [`with_trusted_origin`](Self::with_trusted_origin) for other origins
    /// of your own.
    pub fn with_cross_origin_protection(mut self, on: bool) -> Self {
        self.config_mut().cross_origin.on = on;
        self
    }

    /// Trusts submissions from `origin` (`scheme://host[:port]`, as browsers
    /// send it in `Origin`, e.g. `https://admin.example.com`) under
    /// cross-origin protection. Compared exactly, ASCII case aside: a path
    /// or a trailing `/` never matches.
    pub fn with_trusted_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into().to_ascii_lowercase();
        if origin.trim_end_matches('/').matches('/').count() != 2 || origin.ends_with('/') {
            tracing::warn!(
                %origin,
                "a trusted origin is scheme://host[:port], without a path: this one never matches"
            );
        }
        self.config_mut().cross_origin.trusted.push(origin);
        self
    }
}
