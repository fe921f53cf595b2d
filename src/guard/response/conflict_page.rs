//! The default answer to a conflict (409): the guard's own page, an htmx fragment or problem+json.

use std::fmt::Write as _;

use axum::response::Response;
use http::StatusCode;

use super::{AnswerContext, Format, html_response, problem_json};
use crate::conflict::Conflict;
use crate::entry::Control;
use crate::html::{escape, escape_into};

/// The default answer to a conflict: 409.
pub(crate) fn conflict(conflict: &Conflict, answer: &AnswerContext) -> Response {
    let format = answer.format;
    let status = StatusCode::CONFLICT;
    let title = "Someone else changed this record";
    let message = conflict.to_string();
    let res = match format {
        Format::ProblemJson => {
            let mut extra = serde_json::Map::new();
            extra.insert("form".into(), conflict.form_name().into());
            if let Some(changed) = conflict.changed_inputs() {
                let fields: Vec<serde_json::Value> = changed
                    .iter()
                    .map(|c| serde_json::json!({ "name": c.name, "current": c.current }))
                    .collect();
                extra.insert("changed".into(), fields.into());
            }
            extra.insert("context_changed".into(), conflict.context_changed().into());
            if let Some(overlapping) = conflict.overlapping() {
                extra.insert("overlapping".into(), overlapping.into());
            }
            if let Some(entries) = conflict.debug_entries() {
                let entries: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "kind": format!("{:?}", e.kind),
                            "name": e.name,
                            "then": e.then,
                            "now": e.now,
                        })
                    })
                    .collect();
                extra.insert("debug".into(), entries.into());
            }
            if let Some(token) = conflict.fresh_token() {
                extra.insert("token".into(), token.value().into());
            }
            problem_json(status, "conflict", title, &message, extra)
        }
        Format::HtmxFragment if answer.deletes => {
            html_response(status, format, title, not_deleted_inline(conflict, answer))
        }
        Format::Html | Format::HtmxFragment => {
            html_response(status, format, title, conflict_html(conflict, answer))
        }
    };
    let mut res = res;
    res.extensions_mut().insert(conflict.clone());
    res
}

/// A stale delete sent by htmx, answered in place of the element that sent
/// it (a list row's button): a short inline notice (phrasing content, so
/// it fits in a table cell, a list item or a line of text) naming what
/// changed, with a link to reload the page. The row keeps its other
/// content; no form (a form could only POST, and a POST to the record's
/// URL may be its save).
fn not_deleted_inline(conflict: &Conflict, answer: &AnswerContext) -> String {
    let mut out = String::with_capacity(256);
    // Not the class `concurrency-conflict` (the conflicting inputs', which
    // apps style as boxes): a line of text in a table cell.
    out.push_str(r#"<span class="concurrency-guard-inline" role="alert"><strong>It has not been deleted:</strong> someone else changed it"#);
    let changed: Vec<&str> = conflict
        .changed_inputs()
        .unwrap_or_default()
        .iter()
        .map(|c| label_of(conflict, &c.name))
        .collect();
    if !changed.is_empty() {
        out.push_str(" (");
        for (i, label) in changed.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&escape(label));
        }
        out.push(')');
    }
    let _ = write!(
        out,
        r#". <a href="{}">Reload</a></span>"#,
        escape(&answer.reload)
    );
    out
}

fn conflict_html(conflict: &Conflict, answer: &AnswerContext) -> String {
    let mut out = String::with_capacity(2048);
    let reload = &answer.reload;
    out.push_str(r#"<section class="concurrency-conflict" role="alert" aria-labelledby="concurrency-conflict-title"><h1 id="concurrency-conflict-title">Someone else changed this record</h1>"#);
    out.push_str(if answer.deletes {
        "<p>Someone else saved a change to it since you opened the page. <strong>It has not been deleted.</strong> Check the current data before deleting it.</p>"
    } else {
        "<p>While you had this form open, someone else saved a change to it. <strong>Your changes have not been saved.</strong></p>"
    });
    match conflict.changed_inputs() {
        Some(changed) if !changed.is_empty() => {
            out.push_str(r#"<table class="changed-fields"><thead><tr><th scope="col">Field</th><th scope="col">Saved now</th>"#);
            // What the user entered, where they entered something: not for
            // a delete, nor for a submission without entries (htmx 2 sends
            // a DELETE with an empty urlencoded body).
            let show_yours = !answer.deletes && conflict.submitted().is_some_and(|s| !s.is_empty());
            if show_yours {
                out.push_str(r#"<th scope="col">You entered</th>"#);
            }
            out.push_str("</tr></thead><tbody>");
            for c in changed {
                let _ = write!(
                    out,
                    r#"<tr><th scope="row">{}</th><td class="now">{}</td>"#,
                    escape(label_of(conflict, &c.name)),
                    escape(&c.current)
                );
                if show_yours {
                    if conflict.user_changed(&c.name) == Some(false) {
                        out.push_str(r#"<td class="yours"><em>you did not change this</em></td>"#);
                    } else {
                        let yours = conflict.submitted_value(&c.name).unwrap_or("");
                        let _ = write!(out, r#"<td class="yours">{}</td>"#, escape(yours));
                    }
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        }
        _ => {}
    }
    if conflict.context_changed() {
        let any_input = conflict.changed_inputs().is_some_and(|c| !c.is_empty());
        out.push_str(if any_input {
            "<p>Other information shown on the form changed too."
        } else {
            "<p>Information shown on the form changed."
        });
        let mut context = conflict.current_context().peekable();
        if context.peek().is_some() {
            out.push_str(" It is now: ");
            for (i, (name, value)) in context.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(
                    out,
                    "<strong>{}</strong> {}",
                    escape(label_of(conflict, name)),
                    escape(value)
                );
            }
            out.push('.');
        }
        out.push_str("</p>");
    }
    if let Some(entries) = conflict.debug_entries() {
        out.push_str(r#"<details open class="concurrency-debug"><summary>Debug mode: entries that differ</summary><table><thead><tr><th>Kind</th><th>Name</th><th>When rendered</th><th>Now</th></tr></thead><tbody>"#);
        for e in entries {
            let show = |v: &Option<String>| v.as_deref().map_or("(absent)".to_owned(), escape);
            let _ = write!(
                out,
                "<tr><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.kind,
                escape(&e.name),
                show(&e.then),
                show(&e.now)
            );
        }
        out.push_str("</tbody></table></details>");
    }
    // The re-submission goes where the stale one went.
    let action = &answer.action;
    match (conflict.proposal(), conflict.fresh_token()) {
        (Some([]), Some(token)) => {
            // Nothing to fill in (a button-only form, e.g. "+1").
            let _ = write!(
                out,
                r#"<form method="post" action="{}" class="your-version">{}<div class="actions"><button type="submit">{}</button><a href="{}">Go back</a></div></form>"#,
                escape(action),
                token,
                if answer.deletes {
                    "Delete it anyway"
                } else {
                    "Do it again on the current data"
                },
                escape(reload)
            );
        }
        (Some(submitted), Some(token)) => {
            let _ = write!(
                out,
                r#"<h2>Your version</h2><p>Your changes, on top of the values saved now. Check them against the saved values: saving again replaces what the other person saved in the fields you changed.</p><form method="post" action="{}" class="your-version">{}"#,
                escape(action),
                token
            );
            for (i, (name, value)) in submitted.iter().enumerate() {
                field(&mut out, conflict, i, name, value);
            }
            // Unchecked boxes and unchosen radio groups are absent from a
            // submission: show them too.
            for name in conflict.checkboxes() {
                if !submitted.iter().any(|(n, _)| n == name) {
                    absent_field(&mut out, conflict, name);
                }
            }
            let _ = write!(
                out,
                r#"<div class="actions"><button type="submit">Save my version anyway</button><a href="{}">Discard my changes and reload</a></div></form>"#,
                escape(reload)
            );
        }
        _ => {
            let _ = write!(
                out,
                r#"<p><a href="{}">Reload the form with the current data</a></p>"#,
                escape(reload)
            );
        }
    }
    out.push_str("</section>");
    out
}

/// How the page names field `name`: the form state's label, else its name.
fn label_of<'a>(conflict: &'a Conflict, name: &'a str) -> &'a str {
    conflict.label(name).unwrap_or(name)
}

/// The saved value of input `name`, if it is one.
fn current_of<'a>(conflict: &'a Conflict, name: &str) -> Option<&'a str> {
    conflict
        .current_inputs()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// One field of "your version", as the control it is rendered as: a
/// checkbox, a radio group (the user's choice, and the saved one beside
/// it), a textarea for a value of several lines, else a text input.
fn field(out: &mut String, conflict: &Conflict, i: usize, name: &str, value: &str) {
    let id = format!("cg-field-{i}");
    let (name_html, label) = (escape(name), escape(label_of(conflict, name)));
    let current = current_of(conflict, name).unwrap_or("");
    match conflict.control(name) {
        Some(Control::Checkbox) => {
            let _ = write!(
                out,
                r#"<label><input type="checkbox" id="{id}" name="{name_html}" value="{}" checked> {label}</label>"#,
                escape(value)
            );
        }
        Some(Control::Radio) => {
            let _ = write!(
                out,
                r#"<fieldset><legend>{label}</legend><label><input type="radio" id="{id}" name="{name_html}" value="{}" checked> {}</label>"#,
                escape(value),
                escape(value)
            );
            if !current.is_empty() && current != value {
                let _ = write!(
                    out,
                    r#"<label><input type="radio" name="{name_html}" value="{0}"> {0} (saved now)</label>"#,
                    escape(current)
                );
            }
            out.push_str("</fieldset>");
        }
        _ => {
            let _ = write!(out, r#"<label for="{id}">{label}</label>"#);
            let long = |v: &str| v.contains(['\n', '\r']) || v.len() > 80;
            if long(value) || long(current) {
                let _ = write!(out, r#"<textarea rows="4" id="{id}" name="{name_html}">"#);
                // A textarea's first line break is dropped by the parser:
                // one more keeps a value that starts with one.
                if value.starts_with(['\n', '\r']) {
                    out.push('\n');
                }
                let _ = escape_into(out, value);
                out.push_str("</textarea>");
            } else {
                let _ = write!(
                    out,
                    r#"<input type="text" id="{id}" name="{name_html}" value="{}">"#,
                    escape(value)
                );
            }
        }
    }
}

/// An input the user's submission leaves out: an unchecked checkbox, or a
/// radio group with nothing chosen (offered its saved value, unchosen).
fn absent_field(out: &mut String, conflict: &Conflict, name: &str) {
    let (name_html, label) = (escape(name), escape(label_of(conflict, name)));
    match (conflict.control(name), current_of(conflict, name)) {
        (Some(Control::Radio), Some(current)) if !current.is_empty() => {
            let _ = write!(
                out,
                r#"<fieldset><legend>{label}</legend><label><input type="radio" name="{name_html}" value="{0}"> {0} (saved now)</label></fieldset>"#,
                escape(current)
            );
        }
        (Some(Control::Radio), _) => {}
        (_, current) => {
            // The value it submits when checked: the saved one if it is
            // checked now, else a bool's.
            let value = current.filter(|v| !v.is_empty()).unwrap_or("on");
            let _ = write!(
                out,
                r#"<label><input type="checkbox" name="{name_html}" value="{}"> {label}</label>"#,
                escape(value)
            );
        }
    }
}
