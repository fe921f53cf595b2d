//! A refusal shown in the application's own page: the route's GET page for
//! the record as it is now, with the refused form replaced by the guard's
//! notice.
//!
//! Nothing of the refused request's body goes into the page (its token did
//! not verify, or was never read), and no token is embedded: the page's
//! other post forms carry none, and the notice's link reloads the form.

use std::cell::Cell;

use axum::body::Body;
use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, Limited};
use lol_html::html_content::ContentType;
use lol_html::{HtmlRewriter, Settings, element};

use super::names::PAGE_LIMIT;
use super::survey;
use crate::guard::BoxError;
use crate::guard::Rejection;
use crate::guard::response::refusal::notice;
use crate::guard::response::{AnswerContext, embed};

/// The refusal `refused` (the guard's own page) shown in the route's GET
/// answer `page` instead: the form the submission came from replaced by the
/// same notice, with `refused`'s status and headers (`Retry-After`,
/// `Cache-Control: no-store`…) and extensions. `refused` as it is when the
/// page cannot be used: not a 2xx HTML page, too large, or without a post
/// form submitting where the submission went.
pub(crate) async fn refusal<B>(
    page: Response<B>,
    refused: Response<Body>,
    answer: &AnswerContext,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(rejection) = refused.extensions().get::<Rejection>() else {
        return refused;
    };
    if !page.status().is_success() || !embed::is_rewritable_html(page.headers()) {
        tracing::debug!(
            status = page.status().as_u16(),
            "refusal: the route's GET answer is not a 2xx HTML page; the guard's own page instead"
        );
        return refused;
    }
    let notice = notice(rejection, answer, "h2");
    let (mut parts, body) = page.into_parts();
    let Ok(bytes) = Limited::new(body, PAGE_LIMIT).collect().await else {
        return refused;
    };
    let bytes = bytes.to_bytes();
    let Some(rewritten) =
        survey::survey(&bytes, answer).and_then(|s| replace_form(&bytes, s.target, &notice))
    else {
        tracing::debug!(
            "refusal: the route's page has no post form submitting here; the guard's own page instead"
        );
        return refused;
    };
    let (refused, _) = refused.into_parts();
    parts.status = refused.status;
    embed::drop_page_headers(&mut parts.headers);
    // The refusal's own headers win (the page keeps its content type).
    for name in refused.headers.keys() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            parts.headers.remove(name);
        }
    }
    for (name, value) in &refused.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            parts.headers.append(name, value.clone());
        }
    }
    parts.extensions.extend(refused.extensions);
    Response::from_parts(parts, Body::from(rewritten))
}

/// `page` with its form at position `target` replaced by `notice`.
fn replace_form(page: &[u8], target: usize, notice: &str) -> Option<Vec<u8>> {
    let forms = Cell::new(0usize);
    let mut out = Vec::with_capacity(page.len() + notice.len());
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!(super::names::RAW_TEXT, |_| Ok(())),
                element!("form", |el| {
                    let ordinal = forms.get();
                    forms.set(ordinal + 1);
                    if ordinal == target {
                        el.replace(notice, ContentType::Html);
                    }
                    Ok(())
                }),
            ],
            ..Settings::new()
        },
        |chunk: &[u8]| out.extend_from_slice(chunk),
    );
    rewriter.write(page).ok()?;
    rewriter.end().ok()?;
    Some(out)
}
