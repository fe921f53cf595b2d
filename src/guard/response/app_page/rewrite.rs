//! Second pass: the alert at the top of the form, the user's values in the inputs they changed, the conflicting inputs marked.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use lol_html::html_content::{ContentType, Element};
use lol_html::{HtmlRewriter, Settings, element};

use super::names::ALERT_ID;
use crate::conflict::Conflict;
use crate::guard::end_tag::on_end_tag;

/// The class the conflicting inputs get, for an application to style.
pub(super) const CONFLICT_CLASS: &str = "concurrency-conflict";

/// What the user entered for the controls named `name`, when the page is
/// to show it: an input the user changed, or a field the form state does
/// not track (submitted, so kept). `None`: the control shows the page's value.
fn yours<'c>(conflict: &'c Conflict, tracked: &HashSet<&str>, name: &str) -> Option<Vec<&'c str>> {
    let submitted = conflict.submitted()?;
    let values: Vec<&str> = submitted
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect();
    if !tracked.contains(name) {
        return (!values.is_empty()).then_some(values);
    }
    match conflict.user_changed(name) {
        Some(true) => Some(values),
        Some(false) => None,
        None => (!values.is_empty()).then_some(values),
    }
}

#[derive(Default)]
struct State {
    forms: usize,
    in_target: bool,
    /// Inside a `<select>` whose options take the user's choice.
    select: Option<Vec<String>>,
}

/// `page` with the form at position `target` rewritten; with `around`,
/// the form is between those two markers.
pub(super) fn rewrite(
    page: &[u8],
    target: usize,
    conflict: &Conflict,
    alert: &str,
    around: Option<(&str, &str)>,
) -> Option<Vec<u8>> {
    let tracked: HashSet<&str> = conflict.current_inputs().map(|(n, _)| n).collect();
    let tracked = &tracked;
    let state = Rc::new(RefCell::new(State::default()));
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
    );
    let marked = |name: &str| tracked.contains(name) && conflict.input_changed(name);
    let mut out = Vec::with_capacity(page.len() + alert.len() + 256);
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!(super::names::RAW_TEXT, |_| Ok(())),
                element!("form", move |el| {
                    let mut st = s1.borrow_mut();
                    let ordinal = st.forms;
                    st.forms += 1;
                    if ordinal == target {
                        el.prepend(alert, ContentType::Html);
                        if let Some((start, end)) = around {
                            el.before(start, ContentType::Html);
                            el.after(end, ContentType::Html);
                        }
                        st.in_target = true;
                        let s = s1.clone();
                        on_end_tag(el, move || {
                            s.borrow_mut().in_target = false;
                        });
                    }
                    Ok(())
                }),
                element!("input", move |el| {
                    let Some(name) = el.get_attribute("name") else {
                        return Ok(());
                    };
                    if !s2.borrow().in_target {
                        return Ok(());
                    }
                    let kind = el
                        .get_attribute("type")
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if matches!(
                        kind.as_str(),
                        "hidden" | "submit" | "button" | "reset" | "image" | "file"
                    ) {
                        return Ok(());
                    }
                    if marked(&name) {
                        mark(el)?;
                    }
                    let Some(values) = yours(conflict, tracked, &name) else {
                        return Ok(());
                    };
                    match kind.as_str() {
                        "checkbox" | "radio" => {
                            let value = el.get_attribute("value").unwrap_or_else(|| "on".into());
                            if values.contains(&value.as_str()) {
                                el.set_attribute("checked", "")?;
                            } else {
                                el.remove_attribute("checked");
                            }
                        }
                        _ => el.set_attribute(
                            "value",
                            &attribute(values.first().copied().unwrap_or("")),
                        )?,
                    }
                    Ok(())
                }),
                element!("select", move |el| {
                    let Some(name) = el.get_attribute("name") else {
                        return Ok(());
                    };
                    if !s3.borrow().in_target {
                        return Ok(());
                    }
                    if marked(&name) {
                        mark(el)?;
                    }
                    if let Some(values) = yours(conflict, tracked, &name) {
                        s3.borrow_mut().select =
                            Some(values.into_iter().map(str::to_owned).collect());
                        let s = s3.clone();
                        on_end_tag(el, move || {
                            s.borrow_mut().select = None;
                        });
                    }
                    Ok(())
                }),
                element!("option", move |el| {
                    let st = s4.borrow();
                    let (Some(values), Some(value)) = (&st.select, el.get_attribute("value"))
                    else {
                        return Ok(());
                    };
                    if values.contains(&value) {
                        el.set_attribute("selected", "")?;
                    } else {
                        el.remove_attribute("selected");
                    }
                    Ok(())
                }),
                element!("textarea", move |el| {
                    let Some(name) = el.get_attribute("name") else {
                        return Ok(());
                    };
                    if !s5.borrow().in_target {
                        return Ok(());
                    }
                    if marked(&name) {
                        mark(el)?;
                    }
                    if let Some(values) = yours(conflict, tracked, &name) {
                        let value = values.first().copied().unwrap_or("");
                        // The parser drops one line break right after
                        // `<textarea>`: a value that starts with one keeps it.
                        let text = if value.starts_with(['\n', '\r']) {
                            format!("\n{value}")
                        } else {
                            value.to_owned()
                        };
                        el.set_inner_content(&text, ContentType::Text);
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

/// `value` for lol_html's `set_attribute`, which escapes the quotes only:
/// `&` (and `<`, `>`) escaped too, so that the browser reads `value` back.
fn attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Marks a conflicting control: `aria-invalid`, the class, and the alert
/// as its description.
fn mark(el: &mut Element<'_, '_>) -> Result<(), lol_html::errors::AttributeNameError> {
    el.set_attribute("aria-invalid", "true")?;
    let class = match el.get_attribute("class") {
        Some(c) if !c.trim().is_empty() => format!("{} {CONFLICT_CLASS}", c.trim()),
        _ => CONFLICT_CLASS.to_owned(),
    };
    el.set_attribute("class", &class)?;
    let described = match el.get_attribute("aria-describedby") {
        Some(d) if !d.trim().is_empty() => format!("{} {ALERT_ID}", d.trim()),
        _ => ALERT_ID.to_owned(),
    };
    el.set_attribute("aria-describedby", &described)
}
