//! Debug mode's render check: does the page show what the form state says?
//!
//! The guard fingerprints the [`FormState`] a page's form was rendered
//! from, not the page. A template that shows a value otherwise
//! (`{{ name|upper }}`, locale formatting, rounding) gets the page's value
//! submitted back when the user saves without touching it: the guard takes
//! it for the user's edit and the reformatted value is saved. In debug mode
//! the page auto-embed passed is read as it goes out (a copy, up to
//! `PAGE_LIMIT` bytes; the page still streams), and every input of a form
//! that got the token is compared with the state's value: each difference
//! is logged at `warn` (form, field, page value, state value).
//!
//! What a control shows is read as a browser would submit it (WHATWG HTML,
//! "constructing the entry list"): an `<input>`'s `value` (a checkbox or
//! radio's when checked, nothing when not), a `<textarea>`'s text, a
//! `<select>`'s selected option (else its first). Disabled controls and
//! buttons are left out; so are forms with none of the state's inputs (a
//! delete button's form).

mod body;
mod page;

pub(crate) use body::Checked;

use crate::entry::{Control, EntryKind};
use crate::state::FormState;

/// One input the page shows otherwise than the form state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    /// The input's name.
    pub(crate) field: String,
    /// What the page's form submits for it as it is (`None`: the form has
    /// no such control).
    pub(crate) page: Option<String>,
    /// What the form state says the form shows.
    pub(crate) state: String,
}

/// The inputs of every form of `page` that carries `token_field`, compared
/// with `state`'s inputs; `None` when the page cannot be read.
pub(crate) fn check(page: &[u8], token_field: &str, state: &FormState) -> Option<Vec<Difference>> {
    let mut differences = Vec::new();
    for form in page::forms(page, token_field)? {
        let inputs: Vec<_> = state
            .entries()
            .filter(|e| e.kind() == EntryKind::Input)
            .collect();
        if !inputs.iter().any(|e| form.values.contains_key(e.name())) {
            continue;
        }
        for entry in inputs {
            let page = form.values.get(entry.name()).map(|v| v.join(", "));
            let state_value = entry.control().as_submitted(entry.value());
            let same = page
                .as_deref()
                .is_some_and(|page| Control::Text.as_submitted(page) == state_value);
            if !same {
                differences.push(Difference {
                    field: entry.name().to_owned(),
                    page,
                    state: entry.value().to_owned(),
                });
            }
        }
    }
    Some(differences)
}

/// Logs each difference at `warn`.
pub(crate) fn report(form: &'static str, route: &str, differences: &[Difference]) {
    for d in differences {
        tracing::warn!(
            form,
            route,
            field = %d.field,
            page = d.page.as_deref().unwrap_or("(no such control in the form)"),
            state = %d.state,
            "debug render check: the page's form shows this input otherwise than its RenderState; saving the form unchanged submits the page's value, which the guard takes for the user's edit and lets through (render the value exactly as the RenderState does, e.g. through the same `with = …` function)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::page::decode;
    use super::*;

    const FIELD: &str = "_concurrency_token";

    fn state() -> FormState {
        let mut s = FormState::new();
        s.key("id", &1)
            .input("name", "Lamp & co")
            .input("active", &true)
            .input("notes", "a\nb")
            .input("category", "Garden");
        s
    }

    #[test]
    fn a_page_that_shows_the_state_has_no_difference() {
        let page = r#"<form method="post"><input type="hidden" name="_concurrency_token" value="t"><input name="name" value="Lamp &amp; co"><input type="checkbox" name="active" checked><textarea name="notes">
a
b</textarea><select name="category"><option>Tools</option><option selected>  Garden </option></select></form>"#;
        assert_eq!(check(page.as_bytes(), FIELD, &state()), Some(vec![]));
    }

    #[test]
    fn each_difference_is_named_with_both_values() {
        let page = r#"<form method="post"><input type="hidden" name="_concurrency_token" value="t"><input name="name" value="LAMP &amp; CO"><input type="checkbox" name="active"><textarea name="notes">a b</textarea><select name="category"><option value="tools">Tools</option><option value="garden">Garden</option></select></form><form method="post"><input type="hidden" name="_concurrency_token" value="t"><button>Delete</button></form>"#;
        let found = check(page.as_bytes(), FIELD, &state()).unwrap();
        let found: Vec<_> = found
            .iter()
            .map(|d| (d.field.as_str(), d.page.as_deref(), d.state.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("name", Some("LAMP & CO"), "Lamp & co"),
                ("active", Some(""), "on"),
                ("notes", Some("a b"), "a\nb"),
                ("category", Some("tools"), "Garden"),
            ]
        );
    }

    #[test]
    fn a_missing_control_and_forms_without_the_token() {
        let page = r#"<form method="get"><input name="name" value="other"></form><form method="post"><input type="hidden" name="_concurrency_token" value="t"><input name="name" value="Lamp &#38; co"><input name="active" type="checkbox" checked disabled><textarea name="notes">a
b</textarea><select name="category"><option selected>Garden</select></form>"#;
        let found = check(page.as_bytes(), FIELD, &state()).unwrap();
        assert_eq!(
            found,
            [Difference {
                field: "active".into(),
                page: None,
                state: "on".into()
            }]
        );
    }

    #[test]
    fn references_decode() {
        assert_eq!(
            decode("a &amp; b &#x41;&#66; &bogus; &"),
            "a & b AB &bogus; &"
        );
    }
}
