//! [`ConcurrencyGuardLayer`]: the tower [`Layer`] and its builder.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::request::Parts;
use tower_layer::Layer;

use super::config::{
    BodyLimit, Config, ConflictHandling, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_LOCK_TIMEOUT,
    DEFAULT_MULTIPART_PREFIX_LIMIT, Preconditions, Shared,
};
use super::debug::DebugLog;
use super::lock::RecordLock;
use super::request::cross_origin::CrossOrigin;
use super::service::ConcurrencyGuard;
use crate::conflict::Conflict;
use crate::key::KeyRing;
use crate::tokens::Tokens;

/// Guards the routes it wraps against lost updates for form `T`.
///
/// `T` is the form: it implements [`RenderState`](crate::RenderState) (what
/// the form shows) and axum's `FromRequestParts<S>` (how to load what it
/// shows *now*, e.g. `SELECT … WHERE id = $path_id`). `S` is the state the
/// loader needs.
///
/// - Safe methods (GET, HEAD): loads `T`, signs a token, hands the handler
///   [`Guarded<T>`](crate::Guarded) and [`ConcurrencyToken`](crate::ConcurrencyToken),
///   and embeds the token in every `<form method="post">` of an HTML answer.
/// - Unsafe methods (POST, PUT, PATCH, DELETE…): finds and verifies the
///   token, loads `T` again under the record's lock and calls the handler
///   only if nothing the form showed has changed; else answers 409.
/// - OPTIONS and TRACE pass through.
///
/// The token is **not a CSRF defence**: it says which record a form showed,
/// not who submits it (it is not bound to a session), and a forged
/// submission of a current form passes its check; the conflict page even
/// offers "save my version anyway". What the guard does against forgery is
/// [cross-origin protection](Self::with_cross_origin_protection), on by
/// default: a browser's submission from another site is refused (403)
/// before anything else. For more (sessions, older browsers) put a CSRF
/// layer outside the guard.
///
/// See the [crate docs](crate) for a complete example.
#[must_use]
pub struct ConcurrencyGuardLayer<T, S> {
    pub(crate) config: Arc<Config>,
    pub(crate) state: S,
    _form: PhantomData<fn() -> T>,
}

impl<T, S: Clone> Clone for ConcurrencyGuardLayer<T, S> {
    fn clone(&self) -> Self {
        ConcurrencyGuardLayer {
            config: self.config.clone(),
            state: self.state.clone(),
            _form: PhantomData,
        }
    }
}

impl<T, S> fmt::Debug for ConcurrencyGuardLayer<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyGuardLayer")
            .field("form", &std::any::type_name::<T>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T, S> ConcurrencyGuardLayer<T, S> {
    /// A guard signing with `keys` (a [`KeyRing`] or a single [`Key`](crate::Key)),
    /// loading `T` with `state`.
    pub fn new(keys: impl Into<KeyRing>, state: S) -> Self {
        ConcurrencyGuardLayer::with_tokens(Tokens::new(keys.into()), state)
    }

    /// A guard issuing and checking tokens as `tokens` says.
    pub fn with_tokens(tokens: Tokens, state: S) -> Self {
        ConcurrencyGuardLayer {
            config: Arc::new(Config {
                tokens,
                auto_embed: true,
                body_limit: BodyLimit::Axum,
                multipart_prefix_limit: DEFAULT_MULTIPART_PREFIX_LIMIT,
                conflicts: ConflictHandling::Respond,
                preconditions: Preconditions::Required,
                merge: false,
                check_in_handler: false,
                early_warning: None,
                debug: None,
                cross_origin: CrossOrigin::default(),
                body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
                record_lock: RecordLock::default(),
            }),
            state,
            _form: PhantomData,
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The form field the token travels in (default
    /// [`DEFAULT_FIELD_NAME`](crate::DEFAULT_FIELD_NAME)).
    pub fn with_field_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        let tokens = self.config.tokens.clone().with_field_name(name);
        self.config_mut().tokens = tokens;
        self
    }

    /// How long a rendered form stays valid (default 24 hours; `None`: for
    /// ever). An older submission is answered 409 with a request to reload.
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        let tokens = self.config.tokens.clone().with_max_age(max_age);
        self.config_mut().tokens = tokens;
        self
    }

    /// Whether to embed the token in HTML answers' post forms (default
    /// `true`). Switch it off when templates render
    /// [`ConcurrencyToken`](crate::ConcurrencyToken) themselves.
    pub fn with_auto_embed(mut self, on: bool) -> Self {
        self.config_mut().auto_embed = on;
        self
    }

    /// The most bytes of a body the guard buffers (413 Content Too Large
    /// beyond, with a message; the handler does not run). The guard buffers
    /// an urlencoded form, and any body other than multipart of a
    /// submission it locks a record for (so that the lock is never held
    /// while the client sends): the handler gets the same bytes.
    ///
    /// Without it, axum's `DefaultBodyLimit` applies (2 MiB unless set), and
    /// never more than the guard's own ceiling of 16 MiB, which holds even
    /// under `DefaultBodyLimit::disable()`. With it, `bytes` is the limit,
    /// whatever axum's is. A multipart body is never buffered whole: only
    /// its token part is (see [`with_multipart_prefix_limit`](Self::with_multipart_prefix_limit)),
    /// the rest streams to the handler under axum's limit.
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

    /// Where the per-record locks live (default
    /// [`RecordLock::in_process`]: this process's lock table).
    ///
    /// The in-process lock serializes the submissions to a record within
    /// one process only: two processes on one database can both accept a
    /// stale pair of submissions. For several processes, give every one of
    /// them the same lock in the database, e.g. (feature `postgres`)
    /// `.with_record_lock(PgAdvisoryLock::new(lock_pool))`; handlers stay as
    /// they are. A database lock that cannot be taken because the database
    /// failed is answered **503 Service Unavailable** with `Retry-After` and
    /// a message; the handler does not run.
    pub fn with_record_lock(mut self, lock: impl Into<RecordLock>) -> Self {
        self.config_mut().record_lock = lock.into();
        self
    }

    /// How far into a multipart body the token part may come (default
    /// 256 KiB). Auto-embed puts it first; a template that puts it after a
    /// file field is refused with a message saying so.
    pub fn with_multipart_prefix_limit(mut self, bytes: usize) -> Self {
        self.config_mut().multipart_prefix_limit = bytes;
        self
    }

    /// What to do with a stale submission (default: answer 409).
    pub fn with_conflict_handling(mut self, handling: ConflictHandling) -> Self {
        self.config_mut().conflicts = handling;
        self
    }

    /// How conditional requests are treated (default
    /// [`Preconditions::Required`]): `ETag` on reads, `If-Match` as the API
    /// clients' alternative to the form token.
    pub fn with_preconditions(mut self, preconditions: Preconditions) -> Self {
        self.config_mut().preconditions = preconditions;
        self
    }

    /// Merge disjoint edits (default off). A stale urlencoded submission
    /// passes when every input the user changed is unchanged in the
    /// database and no context value changed: the guard rewrites the body so
    /// that inputs the user did not change carry their current values, then
    /// calls the handler. Inputs are matched to submitted fields by name (the
    /// field's name or its `rename`); a field missing from the submission
    /// counts as submitted empty (an unchecked checkbox), one submitted
    /// several times as changed by the user. A multipart submission is not
    /// merged: it conflicts as usual.
    pub fn with_merge(mut self, on: bool) -> Self {
        self.config_mut().merge = on;
        self
    }

    /// Check inside the handler's database transaction (default off), for
    /// several processes sharing one database: the guard verifies the token
    /// before the handler as always, then hands the handler a
    /// [`DeferredCheck<T>`](crate::DeferredCheck) to compare with the
    /// record it loads under a row lock (see its docs).
    pub fn with_check_in_handler(mut self, on: bool) -> Self {
        self.config_mut().check_in_handler = on;
        self
    }

    /// Early warning (default off): auto-embed adds a tiny script that checks
    /// every `interval` (at least a second) whether the open form went stale,
    /// and shows a dismissible banner once it did, before the user submits.
    /// Each check costs the loader and a fingerprint, never the handler. See
    /// below for the protocol and CSP.
    ///
    /// The script (plain JavaScript, about 3 KB, no framework) goes beside the token of the page's first post form. Every few
    /// seconds (with jitter, backing off on errors, paused while the tab is
    /// hidden, at once when it regains focus) it sends a *check request*: a GET
    /// of the page's own URL with the page's token in the `x-concurrency-token`
    /// header. The guard answers it from the loader and the fingerprint alone,
    /// never running the handler: `204 No Content` while the form is current,
    /// `409 Conflict` once it is stale (both without a body). On 409 the script
    /// shows an accessible, dismissible banner and stops checking; what the user
    /// typed stays on the page until they choose to reload.
    ///
    /// The script is served by the guard itself at the page's path with the
    /// query `?concurrency-guard=warn.js`, so `script-src 'self'` allows it; when
    /// the page's `Content-Security-Policy` carries a nonce, the script tag
    /// carries it too. Styles are set through the CSSOM, which CSP does not
    /// block. Without JavaScript everything works as before.
    pub fn with_early_warning(mut self, interval: Duration) -> Self {
        self.config_mut().early_warning = Some(interval.as_secs().max(1));
        self
    }

    /// Debug mode (default off; **not for production**): the guard remembers
    /// the last 1024 rendered states in memory and, on a conflict, names
    /// every entry that differs with both values, in the 409 answer and at
    /// `warn` level in the logs, to diagnose needless conflicts (a value that
    /// renders differently each time). It shows values the user may not be
    /// allowed to see, and only works within one process.
    pub fn with_debug(mut self, on: bool) -> Self {
        self.config_mut().debug = on.then(|| Arc::new(DebugLog::default()));
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

    /// Answer stale submissions with `f` instead of the default 409 page.
    pub fn with_conflict_response<F>(self, f: F) -> Self
    where
        F: Fn(&Conflict, &Parts) -> Response + Send + Sync + 'static,
    {
        self.with_conflict_handling(ConflictHandling::Custom(Arc::new(f)))
    }

    /// The tokens this guard issues and checks: use them to issue tokens for
    /// forms a handler renders itself (one per table row).
    pub fn tokens(&self) -> &Tokens {
        &self.config.tokens
    }
}

impl<I, T, S: Clone> Layer<I> for ConcurrencyGuardLayer<T, S> {
    type Service = ConcurrencyGuard<I, T, S>;

    fn layer(&self, inner: I) -> Self::Service {
        ConcurrencyGuard {
            inner,
            shared: Arc::new(Shared {
                config: self.config.clone(),
                state: self.state.clone(),
            }),
            _form: PhantomData,
        }
    }
}
