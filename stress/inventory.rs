//! The main example's edit form (`cargo run --example inventory`,
//! `/items/{id}`) as a browser fills it in: every control the page shows,
//! as it shows it, and the description with one mark more.
//!
//! Each accepted save appends its own mark (`~RUN.CLIENT.SEQ`) to the
//! description it was shown, so the description is a log of the saves that
//! built on each other: a save that overwrote another one took that one's
//! mark with it. `marks(page) − accepted` is then the number of lost
//! updates, as `final − initial − accepted` is for the counter.

/// The entry list of the edit form on `html` (WHATWG HTML §4.10.21.4,
/// "constructing the entry list", for the controls this page has), with
/// `mark` appended to the description, urlencoded.
pub fn submission(html: &str, token_field: &str, mark: &str) -> Result<String, String> {
    let form = edit_form(html)?;
    let token = input_value(form, token_field).ok_or("no token in the edit form")?;
    let name = input_value(form, "name").ok_or("no name input")?;
    let price = input_value(form, "price").ok_or("no price input")?;
    let category = selected_option(form, "category").ok_or("no selected category")?;
    let description = textarea(form, "description").ok_or("no description textarea")?;
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair(token_field, &token)
        .append_pair("name", &name)
        .append_pair("price", &price)
        .append_pair("category", &category);
    // A checked checkbox without a value attribute submits "on"; an
    // unchecked one submits nothing.
    if checked(form, "active") {
        body.append_pair("active", "on");
    }
    // A textarea's value is submitted with CRLF line breaks.
    let mut text = description.replace("\r\n", "\n").replace('\n', "\r\n");
    text.push(' ');
    text.push_str(mark);
    body.append_pair("description", &text);
    Ok(body.finish())
}

/// How many of this run's marks (`~RUN.`) the description on `html` holds.
pub fn marks(html: &str, run: &str) -> Result<i64, String> {
    let form = edit_form(html)?;
    let description = textarea(form, "description").ok_or("no description textarea")?;
    let prefix = format!("~{run}.");
    Ok(description.matches(&prefix).count() as i64)
}

/// The page's first post form, up to its end tag: the edit form (the page's
/// second form is the delete button's).
fn edit_form(html: &str) -> Result<&str, String> {
    let start = html
        .find("<form method=\"post\"")
        .ok_or("no post form on the page")?;
    let end = html[start..]
        .find("</form>")
        .ok_or("the edit form does not end")?;
    Ok(&html[start..start + end])
}

/// The `value` of `<input … name="NAME" … value="…">`, unescaped.
fn input_value(form: &str, name: &str) -> Option<String> {
    let tag = tag_with_name(form, "<input", name)?;
    attribute(tag, "value")
}

/// Whether `<input … name="NAME" …>` has the `checked` attribute.
fn checked(form: &str, name: &str) -> bool {
    tag_with_name(form, "<input", name).is_some_and(|tag| {
        tag.split(|c: char| c.is_ascii_whitespace() || c == '>')
            .any(|word| word == "checked")
    })
}

/// The value of the selected option of `<select name="NAME">`.
fn selected_option(form: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let start = form.find(&marker)?;
    let end = form[start..].find("</select>")? + start;
    form[start..end]
        .split("<option")
        .skip(1)
        .find(|option| {
            let tag = &option[..option.find('>').unwrap_or(option.len())];
            tag.split_ascii_whitespace().any(|word| word == "selected")
        })
        .and_then(|option| attribute(&option[..option.find('>')?], "value"))
}

/// The text of `<textarea … name="NAME" …>…</textarea>`, unescaped (its
/// first newline, if any, is not part of the value: WHATWG HTML §13.2.6.4.7).
fn textarea(form: &str, name: &str) -> Option<String> {
    let tag = tag_with_name(form, "<textarea", name)?;
    let at = form.find(tag)? + tag.len() + 1;
    let end = form[at..].find("</textarea>")? + at;
    let text = &form[at..end];
    Some(unescape(text.strip_prefix('\n').unwrap_or(text)))
}

/// The start tag (without its `>`) that opens with `open` and has
/// `name="NAME"`.
fn tag_with_name<'a>(form: &'a str, open: &str, name: &str) -> Option<&'a str> {
    let marker = format!("name=\"{name}\"");
    let mut from = 0;
    while let Some(at) = form[from..].find(open) {
        let start = from + at;
        let end = form[start..].find('>')? + start;
        let tag = &form[start..end];
        if tag.contains(&marker) {
            return Some(tag);
        }
        from = end;
    }
    None
}

/// A double-quoted attribute's value, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The character references minijinja's HTML escaping writes.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}
