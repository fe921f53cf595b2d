//! Safe methods (GET, HEAD): load the form, sign a token, embed it.
//!
//! The steps, in order: the guard's own scripts (early warning, htmx); the
//! loader (its rejection answered as it is); a check request (the early
//! warning's question "is this page still current?", answered without the
//! handler); the request's preconditions (304, 412); the token (the one the
//! request carries for this record, else a fresh one), handed to the handler
//! with the loaded value; the handler; the token embedded in its page.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, header};
use tower_service::Service;

use super::BoxError;
use super::browser_url::browser_path;
use super::config::{Config, Preconditions, Shared};
use super::extract::Guarded;
use super::loader_refusal;
#[cfg(feature = "html-rewriter")]
use super::render_check;
use super::request::TOKEN_HEADER;
use super::request::carried::{CHECK_MARKER, carried_token, is_check_request};
use super::request::conditional::{self, Failed, RequestPreconditions};
use super::response::{self, AnswerContext, embed, htmx, rebase, warning};
use super::verify;
use crate::claims::Claims;
use crate::entry::EntryKind;
use crate::etag;
use crate::fingerprint::StateDigests;
use crate::state::{FormState, RenderState};
use crate::tokens::{CheckError, Opened};

/// GET, HEAD: load, sign, embed.
// The size of the future is the point (clippy would make it an `async fn`).
#[allow(clippy::manual_async_fn)]
pub(crate) fn render<I, B, T, S>(
    mut inner: I,
    shared: Arc<Shared<S>>,
    mut parts: Parts,
    body: Body,
) -> impl Future<Output = Result<Response<Body>, I::Error>>
where
    I: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    T: RenderState + FromRequestParts<S> + Clone + Send + Sync + 'static,
{
    // Not an `async fn`: its arguments would be kept twice in the future
    // (once as captured, once as locals); the block uses them in place.
    async move {
        let Shared { config, state } = &*shared;
        let form = T::FORM_NAME;
        if config.early_warning.is_some() && warning::is_script_request(&parts.uri) {
            return Ok(warning::script_response());
        }
        if config.htmx && htmx::is_script_request(&parts.uri) {
            return Ok(htmx::script_response());
        }
        // A check request's token is opened before the loader runs: one
        // that is not this form's costs no load.
        let check = if is_check_request(&parts) {
            let token = parts
                .headers
                .get(TOKEN_HEADER)
                .map_or(&[][..], |t| t.as_bytes());
            match config.tokens.open(token.trim_ascii(), form) {
                Ok(opened) => Some(opened),
                Err(e) => return Ok(check_answer(form, &CheckError::Token(e))),
            }
        } else {
            None
        };
        let loaded = match T::from_request_parts(&mut parts, state).await {
            Ok(loaded) => loaded,
            Err(rejection) => {
                let answer = rejection.into_response();
                loader_refusal::report::<T>(form, &parts, answer.status());
                // A check whose token this form signed, for a record the
                // loader no longer finds: the record was deleted while
                // the page was open. One bodiless status the early
                // warning reads, whatever page the loader's 404 has.
                if check.is_some() && is_gone(answer.status()) {
                    return Ok(check_answer_status(form, StatusCode::GONE));
                }
                return Ok(answer);
            }
        };
        let current = FormState::of(&loaded);
        if !T::SINGLETON {
            warn_if_keyless(form, &current);
        }
        let keys = config.tokens.keys();
        if let Some(opened) = check {
            return match check_request(config, form, &opened, &current, &parts.headers) {
                Check::Answer(res) => Ok(res),
                Check::Rebase(res, fresh) => {
                    // What changed goes only to a client the route's own
                    // page serves: its GET handler is asked, as a reload.
                    parts.headers.remove(CHECK_MARKER.0);
                    parts.headers.remove(TOKEN_HEADER);
                    parts.extensions.insert(Guarded(loaded));
                    parts.extensions.insert(fresh);
                    let page = inner
                        .call(Request::from_parts(parts, Body::empty()))
                        .await?;
                    if page.status().is_success() {
                        Ok(res)
                    } else {
                        tracing::debug!(
                            form,
                            status = page.status().as_u16(),
                            "check: the route's page refuses this client; what changed withheld"
                        );
                        Ok(check_answer_status(form, StatusCode::CONFLICT))
                    }
                }
            };
        }
        let digests = StateDigests::of(&current, form, keys.signing_key());
        // Made only when an answer carries it.
        let tagged = config.preconditions != Preconditions::Off;
        let etag = || etag::etag(keys.signing_key_id(), keys.signing_key(), form, &digests);
        if tagged {
            let preconditions = match RequestPreconditions::read(&parts.headers) {
                Ok(p) => p,
                Err(rejection) => {
                    return Ok(verify::refuse(form, rejection, &AnswerContext::of(&parts)));
                }
            };
            match preconditions.evaluate(keys, form, &current) {
                Ok(()) => {}
                Err(Failed::IfNoneMatch) => {
                    tracing::debug!(form, "not modified");
                    let mut res = StatusCode::NOT_MODIFIED.into_response();
                    conditional::set_etag(res.headers_mut(), etag());
                    return Ok(res);
                }
                Err(failed @ (Failed::IfMatch | Failed::WeakTag)) => {
                    let answer = AnswerContext::of(&parts);
                    return Ok(verify::refuse(form, failed.rejection(), &answer));
                }
            }
        }
        if let Some(debug) = &config.debug {
            debug.remember(
                keys.signing_key_id(),
                digests.fingerprint.0,
                digests.resource,
                &current,
            );
        }
        let token = match carried_token(config, form, &parts, &current) {
            Some(carried) => carried,
            None => {
                tracing::debug!(form, "concurrency token issued");
                // Named in the token: a refusal's reload link comes back here
                // even without a `Referer`.
                let page = response::page_of_get(&parts);
                config
                    .tokens
                    .issue_for_digests_on(form, &digests, page.as_deref())
            }
        };
        let warned = config
            .early_warning
            .map(|_| (token.value().to_owned(), browser_path(&parts).to_owned()));
        let embedding = config
            .auto_embed
            .then(|| embed::Embedding::of(&token, &parts));
        let route = parts
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map(|p| p.as_str().to_owned());
        // This is the route's GET handler: a stale submission to the route
        // is answered with its page.
        config.pages.register(&parts, &inner);
        // The scripts are served at the page's URL as the browser sees it.
        let htmx_path =
            (config.htmx && embedding.is_some()).then(|| browser_path(&parts).to_owned());
        parts.extensions.insert(Guarded(loaded));
        parts.extensions.insert(token);
        let mut response = inner.call(Request::from_parts(parts, body)).await?;
        let html = embed::is_html(response.headers());
        // Only a page the application served (2xx) gets a token: a 403 or
        // 404 page with a form on it must not hand a client a token for a
        // record the application refused to show it.
        let mut embeds = embedding.is_some() && response.status().is_success() && html;
        if let Some(reason) = embeds
            .then(|| embed::unrewritable(response.headers()))
            .flatten()
        {
            let route = route.as_deref().unwrap_or("(no route)");
            embed::warn_unrewritable(form, route, reason);
            embeds = false;
        }
        // No tag on an HTML page: it carries a token (embedded here, or written
        // by the handler in template mode), and a browser revalidating it would
        // get the old page, with its old token, back from a 304, again and
        // again once that token has expired. Tags are for API clients.
        if tagged && response.status().is_success() && !html {
            conditional::set_etag(response.headers_mut(), etag());
        }
        Ok(match embedding {
            Some(mut embedding) if embeds => {
                let nonce = warning::csp_nonce(response.headers());
                let field = config.tokens.field_name();
                let htmx_script =
                    htmx_path.and_then(|path| htmx::script_tag(&path, field, nonce.as_deref()));
                let warn_script =
                    config
                        .early_warning
                        .zip(warned)
                        .and_then(|(interval, (token, path))| {
                            let rebase = config.live_rebase;
                            warning::script_tag(&path, &token, interval, rebase, response.headers())
                        });
                embedding.once = warn_script;
                embedding.htmx_script = htmx_script;
                let route = route.unwrap_or_else(|| "(no route)".to_owned());
                embedding.route = Some((form, route.clone()));
                let page = embed::embed(response, embedding);
                if config.debug.is_some() {
                    render_checked(page, form, route, field.to_owned(), current)
                } else {
                    page
                }
            }
            _ => response.map(Body::new),
        })
    }
}

/// Debug mode's render check on `page` as it goes out (see `render_check`).
#[cfg(feature = "html-rewriter")]
fn render_checked(
    page: Response<Body>,
    form: &'static str,
    route: String,
    field: String,
    current: FormState,
) -> Response<Body> {
    page.map(|body| {
        Body::new(render_check::Checked::new(
            body,
            move |page| match render_check::check(page, &field, &current) {
                Some(found) => render_check::report(form, &route, &found),
                None => tracing::debug!(form, "debug render check: page unreadable"),
            },
        ))
    })
}

/// Without the `html-rewriter` feature there is no render check: said once.
#[cfg(not(feature = "html-rewriter"))]
fn render_checked(
    page: Response<Body>,
    form: &'static str,
    _route: String,
    _field: String,
    _current: FormState,
) -> Response<Body> {
    static TOLD: AtomicBool = AtomicBool::new(false);
    if !TOLD.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            form,
            "debug render check: off, it reads pages with the full HTML rewriter: enable concurrency-guard's feature `html-rewriter` (a default feature)"
        );
    }
    page
}

/// A form that binds no record (no key entry) and does not say it is a
/// singleton: its tokens fit any record showing the same values. The derive
/// refuses it; a hand-written impl is told here, once per process.
fn warn_if_keyless(form: &'static str, current: &FormState) {
    static TOLD: AtomicBool = AtomicBool::new(false);
    if current.entries().any(|e| e.kind() == EntryKind::Key) || TOLD.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::error!(
        form,
        "this form writes no key entry, so its tokens bind no record (they fit any record showing the same values): call state.key(\"id\", &self.id) in render_state, or set `const SINGLETON: bool = true` if the form edits one thing only"
    );
}

/// A check request: is the form whose token this is still current? Answered
/// from the loader and the fingerprint alone, without running the handler:
/// 204 current, 409 stale (or expired), 400 a token that is not one of this
/// form's or this record's. With live rebase, a stale form whose check
/// accepts JSON learns what changed instead (200, see `response::rebase`).
fn check_request(
    config: &Config,
    form: &'static str,
    opened: &Opened<'_>,
    current: &FormState,
    headers: &http::HeaderMap,
) -> Check {
    let error = match opened.compare(form, current) {
        Ok(()) => return Check::Answer(check_answer_status(form, StatusCode::NO_CONTENT)),
        Err(e) => e,
    };
    if let CheckError::Conflict(conflict) = &error {
        if config.live_rebase && rebase::asks_for_changes(headers) {
            // The page the form was on, which the checked token names.
            let page = headers
                .get(TOKEN_HEADER)
                .and_then(|t| Claims::page(t.as_bytes().trim_ascii(), config.tokens.keys()))
                .and_then(|page| response::local_path(&page));
            let fresh = config
                .tokens
                .issue_for_state_on(form, current, page.as_deref());
            if let Some(mut res) = rebase::changes(conflict, current, &fresh) {
                tracing::debug!(form, "check request answered with what changed");
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Check::Rebase(res, fresh);
            }
        }
    }
    Check::Answer(check_answer(form, &error))
}

/// The answer to a check request.
enum Check {
    Answer(Response<Body>),
    /// What changed, with the fresh token it carries: sent only if the
    /// route's page serves this client.
    Rebase(Response<Body>, crate::token::ConcurrencyToken),
}

/// The bodiless answer to a check request whose token is refused (400) or
/// stale (409; an expired token too: reload the form).
fn check_answer(form: &'static str, error: &CheckError) -> Response<Body> {
    let status = match error {
        CheckError::Conflict(_) => StatusCode::CONFLICT,
        CheckError::Token(e @ crate::TokenError::Expired { .. }) => {
            tracing::debug!(form, reason = %e, "check: stale");
            StatusCode::CONFLICT
        }
        CheckError::Token(e) => {
            tracing::debug!(form, reason = %e, "check: refused");
            StatusCode::BAD_REQUEST
        }
    };
    check_answer_status(form, status)
}

/// A loader's refusal that says the record is not there (any more).
fn is_gone(status: StatusCode) -> bool {
    matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE)
}

fn check_answer_status(form: &'static str, status: StatusCode) -> Response<Body> {
    tracing::debug!(form, status = status.as_u16(), "check request answered");
    let mut res = status.into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
