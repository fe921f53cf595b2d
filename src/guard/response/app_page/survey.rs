//! First pass over the app's page: which form the submission came from, and the labels of its controls.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, Settings, element, text};

use crate::guard::end_tag::on_end_tag;
use crate::guard::response::AnswerContext;

/// What the first pass learned.
#[derive(Debug, Default)]
pub(super) struct Survey {
    /// The form the submission came from: its position among the page's forms.
    pub(super) target: usize,
    /// Each control name of that form: its `id` and its label's text.
    pub(super) controls: HashMap<String, Control>,
    /// The `id` of that form.
    pub(super) form_id: Option<String>,
    /// The `id`s of the elements inside that form (its buttons among them).
    pub(super) inner_ids: HashSet<String>,
}

/// One control of the form (the first of its name).
#[derive(Debug, Default, Clone)]
pub(super) struct Control {
    pub(super) id: Option<String>,
    pub(super) label: Option<String>,
}

#[derive(Default)]
struct State {
    forms: usize,
    target: Option<usize>,
    in_target: bool,
    /// Every label: its `for`, and its text.
    labels: Vec<(Option<String>, String)>,
    open_label: Option<usize>,
    /// The target form's controls: name, id, enclosing label.
    controls: Vec<(String, Option<String>, Option<usize>)>,
    form_id: Option<String>,
    inner_ids: HashSet<String>,
}

/// Reads `page`; `None` when no post form submits where the submission went.
pub(super) fn survey(page: &[u8], answer: &AnswerContext) -> Option<Survey> {
    let state = Rc::new(RefCell::new(State::default()));
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!(super::names::RAW_TEXT, |_| Ok(())),
                element!("form", move |el| {
                    let mut st = s1.borrow_mut();
                    let ordinal = st.forms;
                    st.forms += 1;
                    if st.target.is_none() && posts_here(el, answer) {
                        st.target = Some(ordinal);
                        st.in_target = true;
                        st.form_id = el.get_attribute("id");
                        let s = s1.clone();
                        on_end_tag(el, move || {
                            s.borrow_mut().in_target = false;
                        });
                    }
                    Ok(())
                }),
                element!("label", move |el| {
                    let mut st = s2.borrow_mut();
                    st.labels.push((el.get_attribute("for"), String::new()));
                    st.open_label = Some(st.labels.len() - 1);
                    let s = s2.clone();
                    on_end_tag(el, move || {
                        s.borrow_mut().open_label = None;
                    });
                    Ok(())
                }),
                text!("label", move |t| {
                    let mut st = s3.borrow_mut();
                    if let Some(i) = st.open_label {
                        st.labels[i].1.push_str(t.as_str());
                    }
                    Ok(())
                }),
                element!("form *[id]", move |el| {
                    let mut st = s5.borrow_mut();
                    if let (true, Some(id)) = (st.in_target, el.get_attribute("id")) {
                        st.inner_ids.insert(id);
                    }
                    Ok(())
                }),
                element!("input, select, textarea", move |el| {
                    let mut st = s4.borrow_mut();
                    if let (true, Some(name)) = (st.in_target, el.get_attribute("name")) {
                        let label = st.open_label;
                        st.controls.push((name, el.get_attribute("id"), label));
                    }
                    Ok(())
                }),
            ],
            ..Settings::new()
        },
        |_: &[u8]| {},
    );
    rewriter.write(page).ok()?;
    rewriter.end().ok()?;
    let st = state.take();
    let target = st.target?;
    let mut controls = HashMap::new();
    for (name, id, wrapping) in &st.controls {
        if controls.contains_key(name) {
            continue;
        }
        let by_for = id.as_ref().and_then(|id| {
            st.labels
                .iter()
                .find(|(f, _)| f.as_deref() == Some(id.as_str()))
        });
        let label = by_for
            .or_else(|| wrapping.map(|i| &st.labels[i]))
            .map(|(_, text)| clean(text))
            .filter(|t| !t.is_empty());
        controls.insert(
            name.clone(),
            Control {
                id: id.clone(),
                label,
            },
        );
    }
    Some(Survey {
        target,
        controls,
        form_id: st.form_id,
        inner_ids: st.inner_ids,
    })
}

/// Whether `form` is a post form submitting to the submission's URL (no
/// `action`: the page's own URL, which the guard asked for; or one whose
/// path is the submission's), or a form whose htmx write attribute
/// (`hx-post`, `hx-put`, `hx-patch`, `hx-delete`, or `data-hx-…`) goes there.
fn posts_here(form: &Element<'_, '_>, answer: &AnswerContext) -> bool {
    let post = form
        .get_attribute("method")
        .is_some_and(|m| m.eq_ignore_ascii_case("post"));
    if post
        && form
            .get_attribute("action")
            .is_none_or(|a| goes_here(&a, answer))
    {
        return true;
    }
    ["post", "put", "patch", "delete"].iter().any(|verb| {
        [format!("hx-{verb}"), format!("data-hx-{verb}")]
            .iter()
            .filter_map(|name| form.get_attribute(name))
            .any(|url| goes_here(&url, answer))
    })
}

/// Whether URL `action` on the page names the submission's path.
fn goes_here(action: &str, answer: &AnswerContext) -> bool {
    let action = action.trim();
    let action = action.split(['#', '?']).next().unwrap_or_default();
    if action.is_empty() {
        return true;
    }
    if action.starts_with("//") || action.contains("://") {
        let Ok(uri) = action.parse::<http::Uri>() else {
            return false;
        };
        let same_host = uri.authority().map(|a| a.as_str()) == answer.host.as_deref();
        return same_host && uri.path() == answer.path;
    }
    if action.starts_with('/') {
        return action == answer.path;
    }
    // Relative to the page's directory.
    let dir = &answer.path[..answer.path.rfind('/').map_or(0, |i| i + 1)];
    format!("{dir}{action}") == answer.path
}

/// A label's text as shown: entities decoded, white space collapsed.
fn clean(raw: &str) -> String {
    let decoded = raw
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}
