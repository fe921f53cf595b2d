//! The app's page as the answer to an htmx request: the whole page for a
//! boosted one, else the submitted form alone, put in place of the form on
//! the user's page.
//!
//! htmx's response headers (htmx docs, "Response Headers"): `HX-Retarget`
//! (a CSS selector, `closest …` read from the element that sent the
//! request) and `HX-Reswap` (how to swap). A boosted request is answered as
//! htmx expects a boosted answer, a whole page (htmx swaps its `<body>`, or
//! what the page's `hx-target` / `hx-select` say): no header overrides that.

use http::{HeaderMap, HeaderValue};

use super::survey::Survey;
use crate::guard::response::AnswerContext;
use crate::guard::response::htmx_request::plain_id;

/// What the answer to an htmx request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape {
    /// A boosted request: the whole page.
    Page,
    /// The form alone, swapped in place of the element `target` names.
    Form { target: String },
    /// The request came from elsewhere (a list's delete button on another
    /// page): the app's form has no place there.
    Fallback,
}

/// The shape of the answer; `None` for a request not from htmx.
pub(super) fn shape(answer: &AnswerContext, survey: &Survey) -> Option<Shape> {
    let htmx = answer.htmx.as_ref()?;
    if htmx.boosted {
        return Some(Shape::Page);
    }
    let from_the_form = match &htmx.source_id {
        // The form, or an element inside it (its delete button).
        Some(id) => survey.form_id.as_ref() == Some(id) || survey.inner_ids.contains(id),
        // Unnamed: from the route's own page, whose form this is.
        None => htmx.page_path.as_deref() == Some(answer.path.as_str()),
    };
    if !from_the_form {
        return Some(Shape::Fallback);
    }
    let target = match survey.form_id.as_deref().filter(|id| plain_id(id)) {
        Some(id) => format!("#{id}"),
        None => "closest form".to_owned(),
    };
    Some(Shape::Form { target })
}

/// The headers of the answer shaped `shape`: `x-concurrency-guard:
/// conflict` (the guard's htmx script lets htmx 2 swap it), the event
/// `concurrency-guard-refused` (`HX-Trigger`) a page can listen to, and
/// for a form, where it goes.
pub(super) fn headers(headers: &mut HeaderMap, shape: &Shape) {
    headers.insert("x-concurrency-guard", HeaderValue::from_static("conflict"));
    headers.insert(
        "hx-trigger",
        HeaderValue::from_static("concurrency-guard-refused"),
    );
    if let Shape::Form { target } = shape {
        if let Ok(target) = HeaderValue::from_str(target) {
            headers.insert("hx-retarget", target);
            headers.insert("hx-reswap", HeaderValue::from_static("outerHTML"));
        }
    }
}

/// Two comments no page holds: where the form starts and ends.
pub(super) fn markers() -> (String, String) {
    let mut nonce = [0u8; 12];
    // Without randomness, a fixed marker: a page holding it gets the guard's fragment.
    let _ = getrandom::fill(&mut nonce);
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    (
        format!("<!--concurrency-guard-form-{hex}-->"),
        format!("<!--/concurrency-guard-form-{hex}-->"),
    )
}

/// What `page` holds between `start` and `end` (each there once);
/// `None` otherwise.
pub(super) fn between(page: &[u8], start: &str, end: &str) -> Option<Vec<u8>> {
    let find =
        |needle: &str| memchr::memmem::find_iter(page, needle.as_bytes()).collect::<Vec<_>>();
    let (starts, ends) = (find(start), find(end));
    let ([from], [to]) = (starts.as_slice(), ends.as_slice()) else {
        return None;
    };
    let from = from + start.len();
    (from <= *to).then(|| page[from..*to].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_between_the_markers() {
        let (s, e) = markers();
        let page = format!("<p>a</p>{s}<form>x</form>{e}<p>b</p>");
        assert_eq!(between(page.as_bytes(), &s, &e).unwrap(), b"<form>x</form>");
        let twice = format!("{s}{page}");
        assert_eq!(between(twice.as_bytes(), &s, &e), None);
    }
}
