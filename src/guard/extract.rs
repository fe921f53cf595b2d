//! Extractors for handlers behind the guard: [`Guarded`], [`ConcurrencyToken`] and [`Conflict`].

use std::ops::{Deref, DerefMut};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::conflict::Conflict;
use crate::token::ConcurrencyToken;

/// The value the guard loaded for this request: render exactly this, and
/// the page shows what was fingerprinted (no second load, no race).
///
/// On a submission that passed the check it is the current state, loaded
/// under the record's lock.
///
/// Taking it moves it out of the request (no clone); take it once.
#[derive(Debug, Clone)]
pub struct Guarded<T>(pub T);

impl<T> Deref for Guarded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Guarded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Guarded<T> {
    /// The loaded value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// A guard extractor was used on a route the guard does not wrap.
///
/// This is a mistake in the application, not the client's: answered with
/// 500 and a message that says which layer is missing.
#[derive(Debug, Clone, Copy)]
pub struct NotGuarded {
    what: &'static str,
}

impl NotGuarded {
    pub(crate) fn new(what: &'static str) -> NotGuarded {
        NotGuarded { what }
    }
}

impl std::fmt::Display for NotGuarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is only available behind ConcurrencyGuardLayer: add the layer to this route (route_layer) for this form type",
            self.what
        )
    }
}

impl std::error::Error for NotGuarded {}

impl IntoResponse for NotGuarded {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<T, S> FromRequestParts<S> for Guarded<T>
where
    T: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = NotGuarded;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotGuarded> {
        parts
            .extensions
            .remove::<Guarded<T>>()
            .ok_or(NotGuarded { what: "Guarded<T>" })
    }
}

/// On safe methods, the token the guard signed for the page. On a
/// submission that passed the check, a token for the data as it is now (to
/// show the form again, e.g. after a validation error).
impl<S: Send + Sync> FromRequestParts<S> for ConcurrencyToken {
    type Rejection = NotGuarded;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotGuarded> {
        if let Some(token) = parts.extensions.get::<ConcurrencyToken>() {
            return Ok(token.clone());
        }
        // A submission that passed: a token for the data as it is now.
        match parts.extensions.get::<super::verify::PendingToken>() {
            Some(pending) => {
                let token = pending.sign();
                parts.extensions.insert(token.clone());
                Ok(token)
            }
            None => Err(NotGuarded {
                what: "ConcurrencyToken",
            }),
        }
    }
}

/// In a conflict handler ([`with_conflict_handler`](crate::ConcurrencyGuardLayer::with_conflict_handler)):
/// the conflict the submission met. Anywhere else: 500, with a message
/// naming the mistake (no guard, or not a conflict handler).
impl<S: Send + Sync> FromRequestParts<S> for Conflict {
    type Rejection = NotGuarded;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotGuarded> {
        parts.extensions.get::<Conflict>().cloned().ok_or(NotGuarded {
            what: "Conflict (only a conflict handler set with with_conflict_handler receives one)",
        })
    }
}

/// `Option<Conflict>`: `Some` in a conflict handler
/// ([`with_conflict_handler`](crate::ConcurrencyGuardLayer::with_conflict_handler)),
/// `None` everywhere else (a write handler never sees a stale submission).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Conflict {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, std::convert::Infallible> {
        Ok(parts.extensions.get::<Conflict>().cloned())
    }
}
