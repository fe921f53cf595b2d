//! [`DeferredCheck`]: the comparison left to the handler's own database transaction.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::config::Config;
use super::extract::NotGuarded;
use super::rejection::Rejection;
use super::request::conditional::RequestPreconditions;
use super::response::{self, AnswerContext};
use super::verify::{self, Verdict};
use crate::claims::Claims;
use crate::conflict::Conflict;
use crate::key::Key;
use crate::state::{FormState, RenderState};
use crate::tokens::Opened;

/// A verified token whose comparison with the record is left to the handler,
/// inside its transaction, for many processes sharing one database.
///
/// The guard's per-record lock serializes check and write within one
/// process. Behind a load balancer, two processes can each check the same
/// stale record and both write. With
/// [`with_check_in_handler(true)`](crate::ConcurrencyGuardLayer::with_check_in_handler)
/// the guard verifies the token (signature, age, form) before the handler
/// runs, as always, but leaves the comparison to the handler: it takes a
/// [`DeferredCheck<T>`], opens a transaction, loads the record *with a row
/// lock* (`SELECT … FOR UPDATE` on Postgres; a write transaction,
/// `BEGIN IMMEDIATE`, on SQLite), calls [`DeferredCheck::check`] and writes
/// only if it passes. Check and write are then atomic for the database
/// itself, whichever process runs them; tokens are stateless, so every
/// process with the same key ring verifies them.
///
/// ```no_run
/// # use concurrency_guard::{RenderState, DeferredCheck};
/// # #[derive(Clone, RenderState)] struct ItemForm { #[render_state(key)] id: i64, name: String }
/// # struct Tx; impl Tx { async fn item_for_update(&mut self, _: i64) -> ItemForm { todo!() }
/// #   async fn set_name(&mut self, _: i64, _: &str) {} async fn commit(self) {} }
/// # async fn begin() -> Tx { Tx }
/// async fn save(check: DeferredCheck<ItemForm>, /* State, Path, Form … */)
///     -> Result<&'static str, concurrency_guard::Refused>
/// {
///     let mut tx = begin().await;                      // BEGIN (IMMEDIATE on SQLite)
///     let current = tx.item_for_update(1).await;      // SELECT … FOR UPDATE
///     check.check(&current)?;                         // 409 / 400 as the guard would answer
///     tx.set_name(current.id, "new name").await;
///     tx.commit().await;
///     Ok("saved")
/// }
/// ```
///
/// In this mode the guard neither loads nor locks on submissions
/// ([`Guarded`](crate::Guarded) is not available to the handler), and
/// merging is not done. API clients' `If-Match` / `If-None-Match` are
/// checked by the same [`DeferredCheck::check`] (412 when they do not hold).
///
/// A handler that never calls `check` is not protected, and its write
/// must not pass for a checked one. The guard cannot undo a write that has
/// happened, so it says so loudly: when the handler answers a success (2xx
/// or 3xx) without having called `check`, the guard logs an error (the form
/// and the status) and puts [`UncheckedSubmission`] in the response's
/// extensions, for an outer layer or a test to fail on (see its docs). A
/// handler that refuses the submission (4xx, 5xx) before checking is
/// logged at debug level only: it wrote nothing.
pub struct DeferredCheck<T> {
    inner: Arc<Inner>,
    _form: PhantomData<fn() -> T>,
}

struct Inner {
    config: Arc<Config>,
    form: &'static str,
    /// The verified form token, when the submission carried one.
    token: Option<(Claims, Key)>,
    /// `If-Match` / `If-None-Match`, checked after the token.
    preconditions: RequestPreconditions,
    /// What the guard's answer needs of the request, read once from it.
    answer: AnswerContext,
    submitted: Option<Vec<(String, String)>>,
    /// Set by [`DeferredCheck::check`]; read by the guard once the handler
    /// has answered.
    checked: Arc<AtomicBool>,
}

impl<T> Clone for DeferredCheck<T> {
    fn clone(&self) -> Self {
        DeferredCheck {
            inner: self.inner.clone(),
            _form: PhantomData,
        }
    }
}

impl<T> fmt::Debug for DeferredCheck<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredCheck")
            .field("form", &self.inner.form)
            .finish_non_exhaustive()
    }
}

impl<T> DeferredCheck<T> {
    pub(crate) fn new(
        config: Arc<Config>,
        form: &'static str,
        opened: Option<Opened<'_>>,
        preconditions: RequestPreconditions,
        answer: AnswerContext,
        submitted: Option<Vec<(String, String)>>,
        checked: Arc<AtomicBool>,
    ) -> DeferredCheck<T> {
        DeferredCheck {
            inner: Arc::new(Inner {
                config,
                form,
                token: opened.map(|o| (o.claims, o.key.clone())),
                preconditions,
                answer,
                submitted,
                checked,
            }),
            _form: PhantomData,
        }
    }
}

impl<T: RenderState> DeferredCheck<T> {
    /// Compares the token with `current`, the record as loaded *now*, inside
    /// the transaction that will write it, after a row lock. `Ok` when
    /// nothing the form showed has changed; else the guard's own answer
    /// (409 for a conflict, 400 for a token of another record), to return
    /// from the handler.
    pub fn check(&self, current: &T) -> Result<(), Refused> {
        let inner = &self.inner;
        inner.checked.store(true, Ordering::Release);
        let state = FormState::of(current);
        let opened = inner.token.as_ref().map(|(claims, key)| Opened {
            claims: claims.clone(),
            key,
        });
        let verdict = verify::verdict(
            &inner.config,
            inner.form,
            opened.as_ref(),
            &inner.preconditions,
            &state,
        );
        match verdict {
            Verdict::Current => {
                tracing::debug!(form = inner.form, "deferred check passed in the handler");
                Ok(())
            }
            Verdict::Refused(refusal) => {
                let rejection = refusal.rejection().clone();
                Err(Refused(Box::new(RefusedInner {
                    response: refusal.answer(inner.form, &inner.answer),
                    conflict: None,
                    rejection: Some(rejection),
                })))
            }
            Verdict::Stale(conflict) => {
                let conflict = verify::explain(
                    &inner.config,
                    inner.form,
                    opened.as_ref().map(|o| &o.claims),
                    conflict.with_submitted(inner.submitted.clone()),
                    &state,
                    None,
                    inner.answer.page.as_deref(),
                );
                Err(Refused(Box::new(RefusedInner {
                    response: response::conflict(&conflict, &inner.answer),
                    conflict: Some(conflict),
                    rejection: None,
                })))
            }
        }
    }
}

/// A handler that took the comparison upon itself
/// ([`with_check_in_handler`](crate::ConcurrencyGuardLayer::with_check_in_handler))
/// answered a success without calling [`DeferredCheck::check`]: whatever it
/// wrote was not compared with the record, and a lost update may have
/// happened. Found in the response's extensions (the guard also logs it at
/// error level); a test or an outer layer can turn it into a failure:
///
/// ```
/// # use axum::response::Response;
/// # fn check(response: &Response) {
/// assert!(
///     response.extensions().get::<concurrency_guard::UncheckedSubmission>().is_none(),
///     "a handler forgot DeferredCheck::check"
/// );
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UncheckedSubmission {
    /// The form ([`RenderState::FORM_NAME`]).
    pub form: &'static str,
}

impl fmt::Display for UncheckedSubmission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the handler of form {} answered a success without calling DeferredCheck::check: the submission was not compared with the record",
            self.form
        )
    }
}

impl std::error::Error for UncheckedSubmission {}

/// After the handler of a deferred check: flags a success answered without
/// [`DeferredCheck::check`] (error log, [`UncheckedSubmission`]).
pub(crate) fn after_handler<B>(
    form: &'static str,
    mut response: http::Response<B>,
    checked: &AtomicBool,
) -> http::Response<B> {
    if checked.load(Ordering::Acquire) {
        return response;
    }
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        tracing::error!(
            form,
            status = status.as_u16(),
            "the handler answered a success without calling DeferredCheck::check: the submission was not compared with the record (a lost update may have happened)"
        );
        response
            .extensions_mut()
            .insert(UncheckedSubmission { form });
    } else {
        tracing::debug!(
            form,
            status = status.as_u16(),
            "the handler refused the submission before DeferredCheck::check"
        );
    }
    response
}

impl<T, S> FromRequestParts<S> for DeferredCheck<T>
where
    T: Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = NotGuarded;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotGuarded> {
        parts
            .extensions
            .remove::<DeferredCheck<T>>()
            .ok_or(NotGuarded::new(
                "DeferredCheck<T> (turn it on with with_check_in_handler(true))",
            ))
    }
}

/// The guard's answer to a submission refused by [`DeferredCheck::check`]:
/// return it from the handler (it is a response), after rolling back.
pub struct Refused(Box<RefusedInner>);

struct RefusedInner {
    response: Response,
    conflict: Option<Conflict>,
    rejection: Option<Rejection>,
}

impl Refused {
    /// The conflict, when the data changed.
    pub fn conflict(&self) -> Option<&Conflict> {
        self.0.conflict.as_ref()
    }

    /// The reason, when the token was wrong for this record.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.0.rejection.as_ref()
    }
}

impl fmt::Debug for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refused")
            .field("status", &self.0.response.status())
            .field("conflict", &self.0.conflict)
            .field("rejection", &self.0.rejection)
            .finish()
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.conflict, &self.0.rejection) {
            (Some(c), _) => c.fmt(f),
            (_, Some(r)) => r.fmt(f),
            _ => f.write_str("the submission was refused"),
        }
    }
}

impl std::error::Error for Refused {}

impl IntoResponse for Refused {
    fn into_response(self) -> Response<Body> {
        self.0.response
    }
}
