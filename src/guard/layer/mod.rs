//! [`ConcurrencyGuardLayer`]: the tower [`Layer`] and its builder.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::request::Parts;
use tower_layer::Layer;

mod limits;

use super::config::{
    BodyLimit, Config, ConflictHandler, ConflictHandling, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT, Preconditions, Shared,
};
use super::debug::DebugLog;
use super::form::GuardedForm;
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
    ///
    /// `T` must be a [`GuardedForm`] (`Clone + Send + Sync + 'static`).
    pub fn new(keys: impl Into<KeyRing>, state: S) -> Self
    where
        T: GuardedForm,
    {
        ConcurrencyGuardLayer::with_tokens(Tokens::new(keys.into()), state)
    }

    /// A guard issuing and checking tokens as `tokens` says.
    pub fn with_tokens(tokens: Tokens, state: S) -> Self
    where
        T: GuardedForm,
    {
        ConcurrencyGuardLayer {
            config: Arc::new(Config {
                tokens,
                auto_embed: true,
                body_limit: BodyLimit::Axum,
                multipart_prefix_limit: None,
                conflicts: ConflictHandling::Respond,
                preconditions: Preconditions::Required,
                merge: false,
                check_in_handler: false,
                early_warning: None,
                live_rebase: false,
                htmx: true,
                debug: None,
                cross_origin: CrossOrigin::default(),
                body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
                pages: Arc::default(),
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
    /// The script (plain JavaScript, about 10 KB, 4 KB gzipped, no framework) goes beside the token of the page's first post form. Every few
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

    /// Live rebase (default off; needs [`with_early_warning`](Self::with_early_warning)):
    /// an open form takes in other people's changes to the fields the user
    /// has not touched, and stays current, so that a conflict answer is
    /// only needed when both changed the same field.
    ///
    /// The early-warning script then asks its check request for JSON
    /// (`Accept: application/json`), and a stale form's check is answered
    /// `200 OK`, `application/json`, instead of 409:
    ///
    /// ```json
    /// { "changed": [{ "name": "name", "value": "Lamp", "control": "text" }],
    ///   "context": [{ "name": "stock", "value": "6" }],
    ///   "token": "<a fresh token for the record as it is now>" }
    /// ```
    ///
    /// `changed` lists the inputs whose value changed since the page's token
    /// was signed, each with the value it renders now (what the page would
    /// show on reload) and its control (`text`, `checkbox`, `radio`);
    /// `context` lists every context value as it is now when one of them
    /// changed (else it is empty). Key values and skipped fields are never
    /// sent. A current form's check is still `204`; an expired token's and
    /// one whose changes the token cannot name (the form's layout changed)
    /// `409`; a token that is not one of this form's and this record's
    /// `400`, before the loader runs.
    ///
    /// The script writes each changed value into its field unless the user
    /// changed that field since the page loaded, highlights it and announces
    /// it in an `aria-live` region; context values go into the elements
    /// marked `data-concurrency-context="name"` (announced by their
    /// `data-concurrency-label`, else by name). A field both changed shows
    /// both values with "Keep mine" / "Use theirs". Once every change is
    /// taken in (and every overlap decided), it puts the fresh token into
    /// the page's forms: the next save is current. When a change has no
    /// place on the page (a context value no element is marked with), it
    /// shows the early warning's banner instead and keeps the old token.
    pub fn with_live_rebase(mut self, on: bool) -> Self {
        self.config_mut().live_rebase = on;
        self
    }

    /// htmx support (default **on**; see the README's section "htmx").
    ///
    /// - Auto-embed adds one small script (plain JavaScript, under 4 KB,
    ///   served by the guard at the page's path with the query
    ///   `?concurrency-guard=htmx.js`, cached for a day, carrying the CSP
    ///   nonce of the page when it has one) to a page that uses htmx (an
    ///   `hx-…` or `data-hx-…` attribute, `hx-boost` among them), right
    ///   after the page's first token (a post form's hidden input, or an
    ///   htmx element's `hx-headers`, the script then after that element;
    ///   when htmx shows up only after the first token, before the first
    ///   element that uses it). A page without htmx gets no script. With
    ///   htmx 2, which does not swap 4xx answers, it lets htmx swap the
    ///   guard's conflicts and refusals (answers carrying
    ///   `x-concurrency-guard`) in place of the submitted form; and after a
    ///   successful htmx write it puts the fresh token the answer carries in
    ///   header `x-concurrency-token` wherever the page held the submitted
    ///   one.
    /// - A write that passes and is answered 2xx to an htmx request
    ///   (`HX-Request: true`) carries that fresh token: the record is loaded
    ///   again, under its lock, once the handler has answered, and the token
    ///   is signed for it (one more run of the loader). Not in
    ///   [`with_check_in_handler`](Self::with_check_in_handler) mode, where
    ///   the guard holds no lock.
    ///
    /// Off: no script and no fresh token. The guard's answers to htmx
    /// requests (HTML fragments with `HX-Retarget: this` and `HX-Reswap:
    /// outerHTML`) are the same either way.
    pub fn with_htmx(mut self, on: bool) -> Self {
        self.config_mut().htmx = on;
        self
    }

    /// Debug mode (default off; **not for production**): the guard remembers
    /// the last 1024 rendered states in memory and, on a conflict, names
    /// every entry that differs with both values, in the 409 answer and at
    /// `warn` level in the logs, to diagnose needless conflicts (a value that
    /// renders differently each time). For each input changed on both
    /// sides (a merge overlap, [`with_merge`](Self::with_merge)) it also
    /// logs the user's side at `warn`: the value the browser submitted, the
    /// value the form's state held when rendered, the value now, and why
    /// the first two differ (e.g. "the same number written differently":
    /// a template showing `39.9` for a `RenderValue` of `39.90`). It shows
    /// values the user may not be allowed to see, and only works within one
    /// process.
    pub fn with_debug(mut self, on: bool) -> Self {
        self.config_mut().debug = on.then(|| Arc::new(DebugLog::default()));
        self
    }

    /// Answer stale submissions with `handler`, an ordinary axum handler
    /// (extractors, then any `IntoResponse`), run with the guard's state
    /// `S`, instead of the default 409 answer. It is never the route's
    /// write handler, which a stale submission never reaches.
    ///
    /// The handler's request is the submission itself (method, URI,
    /// headers, the body as submitted without the token field), with these
    /// extractors available: [`Conflict`] (what changed; its
    /// [`submitted_as`](Conflict::submitted_as) gives the user's version
    /// as the application's own form type), [`Guarded<T>`](crate::Guarded)
    /// (the record as it is now) and
    /// [`ConcurrencyToken`](crate::ConcurrencyToken) (a fresh token for
    /// it, also embedded in an HTML answer's post forms when auto-embed is
    /// on). Its answer is sent as it is (choose the status: 409 is usual),
    /// with the [`Conflict`] in its extensions. The record's lock is not
    /// held while it runs.
    pub fn with_conflict_handler<H, X>(self, handler: H) -> Self
    where
        H: axum::handler::Handler<X, S>,
        X: 'static,
        S: Clone + Send + Sync + 'static,
    {
        let state = self.state.clone();
        let call = move |req: http::Request<axum::body::Body>| {
            let future = handler.clone().call(req, state.clone());
            Box::pin(future) as super::config::BoxFuture
        };
        self.with_conflict_handling(ConflictHandling::Separate(ConflictHandler(Arc::new(call))))
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
