//! Reading a page's forms as a browser would submit them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, Settings, element, text};

use crate::guard::end_tag::on_end_tag;

/// The controls of one form: each name's values as submitted, in order.
#[derive(Default)]
pub(super) struct FormControls {
    has_token: bool,
    pub(super) values: HashMap<String, Vec<String>>,
}

#[derive(Default)]
struct Reader {
    forms: Vec<FormControls>,
    in_form: bool,
    /// The open textarea: its name (`None` when disabled or unnamed) and text.
    textarea: Option<(Option<String>, String)>,
    /// The open select: its name, whether it is multiple, its options
    /// (value, selected), and the open option's text.
    select: Option<Select>,
}

struct Select {
    name: Option<String>,
    multiple: bool,
    options: Vec<(Option<String>, String, bool)>,
}

impl Reader {
    fn current(&mut self) -> Option<&mut FormControls> {
        if self.in_form {
            self.forms.last_mut()
        } else {
            None
        }
    }

    fn push(&mut self, name: String, value: Option<String>) {
        if let Some(form) = self.current() {
            let values = form.values.entry(name).or_default();
            values.extend(value);
        }
    }
}

/// A control's name, unless it is disabled or has none.
fn submitted_name(el: &Element<'_, '_>) -> Option<String> {
    if el.has_attribute("disabled") {
        return None;
    }
    el.get_attribute("name").filter(|n| !n.is_empty())
}

/// The controls of every form of `page` that carries `token_field`; `None`
/// when the page cannot be read.
pub(super) fn forms(page: &[u8], token_field: &str) -> Option<Vec<FormControls>> {
    let reader = Rc::new(RefCell::new(Reader::default()));
    let (r1, r2, r3, r4, r5, r6) = (
        reader.clone(),
        reader.clone(),
        reader.clone(),
        reader.clone(),
        reader.clone(),
        reader.clone(),
    );
    let token_field = token_field.to_owned();
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                // Text to the parser: no controls inside.
                element!(
                    "script, style, title, xmp, iframe, noembed, noframes, noscript, plaintext, template",
                    |_| Ok(())
                ),
                element!("form", move |el| {
                    let mut r = r1.borrow_mut();
                    r.forms.push(FormControls::default());
                    r.in_form = true;
                    let r = r1.clone();
                    on_end_tag(el, move || {
                        r.borrow_mut().in_form = false;
                    });
                    Ok(())
                }),
                element!("input", move |el| {
                    let mut r = r2.borrow_mut();
                    let Some(name) = submitted_name(el) else {
                        return Ok(());
                    };
                    if name == token_field {
                        if let Some(form) = r.current() {
                            form.has_token = true;
                        }
                        return Ok(());
                    }
                    let kind = el
                        .get_attribute("type")
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let value = el.get_attribute("value").map(|v| decode(&v));
                    match kind.as_str() {
                        "submit" | "button" | "reset" | "image" | "file" => {}
                        "checkbox" | "radio" => {
                            let checked = el.has_attribute("checked");
                            let value = checked.then(|| value.unwrap_or_else(|| "on".into()));
                            r.push(name, value);
                        }
                        _ => r.push(name, Some(value.unwrap_or_default())),
                    }
                    Ok(())
                }),
                element!("textarea", move |el| {
                    r3.borrow_mut().textarea = Some((submitted_name(el), String::new()));
                    let r = r3.clone();
                    on_end_tag(el, move || {
                        let mut r = r.borrow_mut();
                        if let Some((Some(name), text)) = r.textarea.take() {
                            // The parser drops one line feed after the start tag.
                            let text = decode(&text);
                            let text = text.strip_prefix('\n').unwrap_or(&text).to_owned();
                            r.push(name, Some(text));
                        }
                    });
                    Ok(())
                }),
                text!("textarea", move |t| {
                    if let Some((_, text)) = &mut r4.borrow_mut().textarea {
                        text.push_str(t.as_str());
                    }
                    Ok(())
                }),
                element!("select", move |el| {
                    r5.borrow_mut().select = Some(Select {
                        name: submitted_name(el),
                        multiple: el.has_attribute("multiple"),
                        options: Vec::new(),
                    });
                    let r = r5.clone();
                    on_end_tag(el, move || {
                        let mut r = r.borrow_mut();
                        if let Some(select) = r.select.take() {
                            finish_select(&mut r, select);
                        }
                    });
                    Ok(())
                }),
                element!("option", move |el| {
                    if let Some(select) = &mut r6.borrow_mut().select {
                        let value = el.get_attribute("value").map(|v| decode(&v));
                        let selected = el.has_attribute("selected");
                        select.options.push((value, String::new(), selected));
                    }
                    Ok(())
                }),
                text!("option", {
                    let r = reader.clone();
                    move |t| {
                        if let Some(select) = &mut r.borrow_mut().select {
                            if let Some(option) = select.options.last_mut() {
                                option.1.push_str(t.as_str());
                            }
                        }
                        Ok(())
                    }
                }),
            ],
            ..Settings::new()
        },
        |_: &[u8]| {},
    );
    rewriter.write(page).ok()?;
    rewriter.end().ok()?;
    let reader = reader.take();
    Some(reader.forms.into_iter().filter(|f| f.has_token).collect())
}

/// A select's submitted values: its selected options, else (a single
/// select) its first.
fn finish_select(reader: &mut Reader, select: Select) {
    let Some(name) = select.name else { return };
    let value = |(value, text, _): &(Option<String>, String, bool)| {
        value.clone().unwrap_or_else(|| {
            decode(text)
                .split_ascii_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let mut chosen: Vec<String> = select.options.iter().filter(|o| o.2).map(value).collect();
    if !select.multiple && chosen.len() > 1 {
        // A single select shows its last selected option.
        chosen.drain(..chosen.len() - 1);
    }
    if chosen.is_empty() && !select.multiple {
        chosen.extend(select.options.first().map(value));
    }
    if let Some(form) = reader.current() {
        form.values.entry(name).or_default().extend(chosen);
    }
}

/// Character references in text as the page has it: the ones templates
/// write (`&amp;` `&lt;` `&gt;` `&quot;` `&#39;` `&apos;` `&nbsp;`, and
/// numeric ones); any other is left as it is.
pub(super) fn decode(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..].find(';').map(|i| i + 1).filter(|&i| i <= 10);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                _ => {
                    let n = name.strip_prefix('#')?;
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
