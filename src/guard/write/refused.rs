//! A refusal to a browser in the application's own page, when the route's
//! page is known (as for a conflict): see [`app_page::refusal`].

use axum::body::Body;
use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{Request, Response};

use super::stale::page_request;
use crate::guard::config::{Config, ConflictHandling};
use crate::guard::extract::Guarded;
use crate::guard::rejection::Rejection;
use crate::guard::response::{AnswerContext, Format, app_page};
use crate::state::RenderState;

/// `refused`, the guard's answer to a submission it refused (the handler
/// did not run), shown in the route's own GET page for the record as it is
/// now when all hold: the guard answers conflicts with the app's page
/// ([`ConflictHandling::Respond`]), the client wants HTML (not htmx, not
/// JSON), the answer is a refusal other than "record deleted" (the page
/// cannot be rendered for a record that is gone), the route's page was
/// served since the start, the loader finds the record and the page has the
/// form, all within the lock timeout. Otherwise `refused` as it is (also for
/// a database that failed: the page would wait on it). The GET page gets no token and
/// nothing of the refused request's body.
pub(super) async fn in_app_page<T, S>(
    config: &Config,
    state: &S,
    parts: &Parts,
    refused: Response<Body>,
) -> Response<Body>
where
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    // Without the full rewriter the app's page is not read: the guard's
    // own refusal page, without loading the record or rendering the page.
    if cfg!(not(feature = "html-rewriter")) {
        return refused;
    }
    // Not for a record that is gone, nor when the database is what failed:
    // the page would wait on it too.
    let shown = matches!(
        refused.extensions().get::<Rejection>(),
        Some(rejection) if !matches!(
            rejection,
            Rejection::Deleted { .. }
                | Rejection::LockUnavailable { .. }
                | Rejection::DatabaseRestarted { .. }
        )
    );
    if !shown
        || !matches!(config.conflicts, ConflictHandling::Respond)
        || !config.pages.contains(parts)
    {
        return refused;
    }
    let answer = AnswerContext::of(parts);
    if answer.format != Format::Html {
        return refused;
    }
    // The page is a courtesy: loading and rendering it waits at most the
    // lock timeout (a database that stopped answering makes the loader wait
    // for its pool), then the guard's own page.
    let page = tokio::time::timeout(config.lock_timeout, async {
        let (mut get, body) = page_request(parts).into_parts();
        let value = T::from_request_parts(&mut get, state).await.ok()?;
        get.extensions.insert(Guarded(value));
        config
            .pages
            .render(parts, Request::from_parts(get, body))
            .await
    })
    .await;
    match page {
        Ok(Some(page)) => app_page::refusal(page, refused, &answer).await,
        Ok(None) => refused,
        Err(_) => {
            tracing::warn!(
                form = T::FORM_NAME,
                "refusal: loading and rendering the route's page took longer than the lock timeout; the guard's own page instead"
            );
            refused
        }
    }
}
