//! Step 6: a stale submission that overwrites nothing passes; else merged when the edits are disjoint; else a conflict.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, header};

use super::decision::{After, Decision, ShownAfterMerge, StaleAnswer};
use super::load::Loaded;
use crate::conflict::Conflict;
use crate::fingerprint::StateDigests;
use crate::guard::config::{Config, ConflictHandling};
use crate::guard::extract::Guarded;
use crate::guard::request::TOKEN_HEADER;
use crate::guard::response::{self, AnswerContext, Format};
use crate::guard::verify::{self, PendingToken};
use crate::merge;
use crate::tokens::Opened;

/// Step 6, a stale submission: through when it overwrites nothing (every
/// input changed since the form was rendered is submitted with its value
/// now, and no context value changed); merged when the edits are disjoint
/// (and merging is on); else the conflict, answered as configured.
pub(super) fn stale<T: Clone + Send + Sync + 'static>(
    config: &Arc<Config>,
    parts: &mut Parts,
    body: Body,
    opened: &Opened<'_>,
    conflict: Conflict,
    record: Loaded<T>,
    submission: Option<(Vec<(String, String)>, Bytes)>,
) -> Decision {
    // The fields as decoded (to compare), and the body as sent (to splice).
    let (submitted, raw) = match submission {
        Some((pairs, raw)) => (Some(pairs), Some(raw)),
        None => (None, None),
    };
    let form = conflict.form_name();
    let Loaded {
        value,
        current,
        held,
    } = record;
    let sides = submitted.as_deref().and_then(|submitted| {
        let now = StateDigests::of(&current, form, opened.key);
        merge::classify(
            &opened.claims.inputs,
            opened.key,
            form,
            &current,
            &now,
            submitted,
        )
    });
    if let Some(sides) = &sides {
        let nothing_lost = !conflict.context_changed()
            && conflict.changed_inputs().is_some()
            && sides.iter().all(merge::InputSides::overwrites_nothing);
        if nothing_lost {
            tracing::info!(
                form,
                "stale, but every changed input is submitted with its value now: nothing to lose; handler runs"
            );
            let pending = PendingToken {
                config: config.clone(),
                form,
                state: Arc::new(current),
                page: response::form_page(parts).map(Arc::from),
            };
            parts.extensions.insert(pending.clone());
            parts.extensions.insert(Guarded(value));
            return Decision::handler(body, Some(held), After::EmbedInRefusal(pending));
        }
    }
    if let (true, Some(raw), Some(sides)) = (config.merge, &raw, &sides) {
        if !conflict.context_changed() && !sides.iter().any(merge::InputSides::overlaps) {
            let merged = merge::splice(raw, sides);
            tracing::info!(
                form,
                theirs = ?sides.iter().filter(|s| s.theirs_changed).map(|s| s.name.as_str()).collect::<Vec<_>>(),
                yours = ?sides.iter().filter(|s| s.user_changed).map(|s| s.name.as_str()).collect::<Vec<_>>(),
                "disjoint edits merged; handler runs"
            );
            parts
                .headers
                .insert(header::CONTENT_LENGTH, merged.len().into());
            parts.extensions.insert(Guarded(value));
            let shown =
                (opened.claims.key_id == config.tokens.keys().signing_key_id()).then(|| {
                    ShownAfterMerge {
                        shown: sides
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.theirs_changed && !s.user_changed)
                            .filter_map(|(i, _)| Some((i, *opened.claims.inputs.get(i)?)))
                            .collect(),
                    }
                });
            return Decision::handler(Body::from(merged), Some(held), After::Merged(shown));
        }
    }
    // Nothing is written from here on: the record need not stay locked
    // while a page is rendered.
    drop(held);
    let answer = AnswerContext::of(parts);
    let conflict = verify::explain(
        config,
        form,
        Some(&opened.claims),
        conflict.with_submitted(submitted),
        &current,
        sides.as_deref(),
        answer.page.as_deref(),
    );
    match &config.conflicts {
        ConflictHandling::Respond => {
            // The route's GET handler is asked for JSON answers too: the
            // conflict's details go only to a client it serves. Browsers
            // and htmx get its page rewritten (htmx: the page or its form).
            let rewrite = answer.format != Format::ProblemJson;
            let get = get_request(parts, value, &conflict);
            Decision::Stale(Box::new(StaleAnswer::AppPage {
                get,
                conflict,
                answer: Box::new(answer),
                rewrite,
            }))
        }
        ConflictHandling::StandalonePage => {
            Decision::Answer(response::conflict(&conflict, &answer))
        }
        ConflictHandling::Custom(f) => {
            let mut response = f(&conflict, parts);
            response.extensions_mut().insert(conflict);
            Decision::Answer(response)
        }
        ConflictHandling::Separate(handler) => {
            let mut request = copy(parts, body);
            let extensions = request.extensions_mut();
            extensions.insert(Guarded(value));
            extensions.insert(conflict.clone());
            if let Some(token) = conflict.fresh_token() {
                extensions.insert(token.clone());
            }
            Decision::Stale(Box::new(StaleAnswer::Handler {
                handler: handler.clone(),
                request,
                conflict,
            }))
        }
    }
}

/// The submission's parts again, around `body`.
fn copy(parts: &Parts, body: Body) -> Request<Body> {
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request
}

/// The GET of the page the form came from ([`page_request`]), with the
/// record as it is now and a fresh token, as the guard hands them to a GET
/// handler.
fn get_request<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
    value: T,
    conflict: &Conflict,
) -> Request<Body> {
    let mut get = page_request(parts);
    let extensions = get.extensions_mut();
    extensions.insert(Guarded(value));
    if let Some(token) = conflict.fresh_token() {
        extensions.insert(token.clone());
    }
    get
}

/// The GET of the page the form came from: the submission's path and
/// headers but those of the body, the token and preconditions (no record,
/// no token yet).
pub(super) fn page_request(parts: &Parts) -> Request<Body> {
    let mut get = copy(parts, Body::empty());
    *get.method_mut() = http::Method::GET;
    if let Some((uri, original)) = page_query(parts) {
        *get.uri_mut() = uri;
        get.extensions_mut()
            .insert(axum::extract::OriginalUri(original));
    }
    let headers = get.headers_mut();
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
        header::RANGE,
    ] {
        headers.remove(name);
    }
    headers.remove(TOKEN_HEADER);
    get
}

/// The page's URL with the query it was opened with, when the form was on
/// a page at the submission's own path (as its token names it, else its
/// `Referer`) and that page had a query (`/items/1?mode=plain`): the GET
/// handler renders the page the form was on, not the query-less one. The
/// URL for the inner service (its path, as routed, with the page's query)
/// and the browser's.
fn page_query(parts: &Parts) -> Option<(http::Uri, http::Uri)> {
    let page = response::form_page(parts)?;
    let (path, query) = page.split_once('?')?;
    if path != crate::guard::browser_url::browser_path(parts) || query.is_empty() {
        return None;
    }
    let inner = format!("{}?{query}", parts.uri.path()).parse().ok()?;
    Some((inner, page.parse().ok()?))
}
