//! The conflict's answer: the route's page, rewritten (see the module above).

use std::fmt::Write as _;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};

use super::htmx;
use super::names::{ALERT_ID, PAGE_LIMIT};
use super::rewrite;
use super::survey;
use crate::conflict::Conflict;
use crate::guard::BoxError;
use crate::guard::response::AnswerContext;
use crate::guard::response::embed;
use crate::html::escape;

/// The route's GET answer `page` made into the conflict's answer (409), or
/// `None` when it cannot be: not a 2xx HTML page, too large, or without a
/// post form submitting where the submission went.
pub(crate) async fn answer<B>(
    page: Response<B>,
    conflict: &Conflict,
    answer: &AnswerContext,
    auto_embed: bool,
) -> Option<Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if !page.status().is_success() || !embed::is_rewritable_html(page.headers()) {
        tracing::debug!(
            status = page.status().as_u16(),
            "conflict: the route's GET answer is not a 2xx HTML page; the guard's own page instead"
        );
        return None;
    }
    let (mut parts, body) = page.into_parts();
    let bytes = Limited::new(body, PAGE_LIMIT)
        .collect()
        .await
        .ok()?
        .to_bytes();
    let Some(survey) = survey::survey(&bytes, answer) else {
        tracing::debug!(
            "conflict: the route's page has no post form submitting here; the guard's own page instead"
        );
        return None;
    };
    let alert = alert(conflict, answer, &survey);
    let shape = htmx::shape(answer, &survey);
    if shape == Some(htmx::Shape::Fallback) {
        tracing::debug!(
            "conflict: the htmx request did not come from the route's form; the guard's own fragment instead"
        );
        return None;
    }
    let markers = htmx::markers();
    let around = matches!(shape, Some(htmx::Shape::Form { .. }))
        .then(|| (markers.0.as_str(), markers.1.as_str()));
    let rewritten = rewrite::rewrite(&bytes, survey.target, conflict, &alert, around)?;
    let rewritten = match around {
        Some((start, end)) => htmx::between(&rewritten, start, end)?,
        None => rewritten,
    };
    parts.status = StatusCode::CONFLICT;
    embed::drop_page_headers(&mut parts.headers);
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(shape) = &shape {
        htmx::headers(&mut parts.headers, shape);
    }
    let mut response = Response::from_parts(parts, Body::from(rewritten));
    if let (true, Some(token)) = (auto_embed, conflict.fresh_token()) {
        response = embed::embed(
            response,
            embed::Embedding::with_host(token, answer.host.clone()),
        );
    }
    response.extensions_mut().insert(conflict.clone());
    Some(response)
}

/// How a value shows in the alert.
fn shown(conflict: &Conflict, name: &str, value: &str) -> String {
    if conflict.is_checkbox(name) {
        return if value.is_empty() {
            "not checked"
        } else {
            "checked"
        }
        .to_owned();
    }
    if value.is_empty() {
        return "(empty)".to_owned();
    }
    format!("“{}”", escape(value))
}

/// The alert put first in the form.
fn alert(conflict: &Conflict, answer: &AnswerContext, survey: &survey::Survey) -> String {
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        r#"<div id="{ALERT_ID}" class="{ALERT_ID}" role="alert" style="border:2px solid #a40000;background:#fff4f4;padding:.6rem .9rem;margin:.5rem 0 1rem;border-radius:.3rem">"#
    );
    if answer.deletes {
        out.push_str("<p><strong>This record has not been deleted:</strong> someone else changed it since you opened this page.</p>");
    } else {
        out.push_str("<p><strong>Your changes have not been saved:</strong> someone else changed this record while you were editing it.</p>");
    }
    let changed = conflict.changed_inputs();
    out.push_str("<ul>");
    for c in changed.unwrap_or_default() {
        let control = survey.controls.get(&c.name);
        let label = control
            .and_then(|c| c.label.as_deref())
            .or_else(|| conflict.label(&c.name))
            .unwrap_or(&c.name);
        let label = match control.and_then(|c| c.id.as_deref()) {
            Some(id) => format!(r##"<a href="#{}">{}</a>"##, escape(id), escape(label)),
            None => format!("<strong>{}</strong>", escape(label)),
        };
        let _ = write!(
            out,
            "<li>{label}: saved now {}",
            shown(conflict, &c.name, &c.current)
        );
        if !answer.deletes {
            match (conflict.user_changed(&c.name), conflict.submitted()) {
                (Some(false), _) => out.push_str("; you had not changed it"),
                (_, Some(_)) => {
                    let yours: Vec<&str> = conflict
                        .submitted()
                        .unwrap_or_default()
                        .iter()
                        .filter(|(n, _)| *n == c.name)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    let yours = yours.join(", ");
                    let _ = write!(out, "; you entered {}", shown(conflict, &c.name, &yours));
                }
                _ => {}
            }
        }
        out.push_str("</li>");
    }
    if conflict.context_changed() {
        out.push_str("<li>Other information shown on this page changed too.</li>");
    }
    if changed.is_none() {
        out.push_str("<li>The record changed in a way the form cannot name field by field.</li>");
    }
    out.push_str("</ul>");
    let reload = escape(&answer.reload);
    if answer.deletes {
        let _ = write!(
            out,
            r#"<p>The page shows the record as it is now. Delete it again if you still want to, or <a href="{reload}">reload the page</a>.</p>"#
        );
    } else {
        let _ = write!(
            out,
            r#"<p>The form keeps what you entered in the fields you changed and shows the saved values in the others. Check the marked fields and save again to keep your version, or <a href="{reload}">discard your changes and reload</a>.</p>"#
        );
    }
    out.push_str("</div>");
    out
}
