//! HTML escaping for everything the guard writes into a page.

use std::fmt;

/// Writes `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element
/// content and in quoted attribute values.
pub(crate) fn escape_into<W: fmt::Write + ?Sized>(out: &mut W, text: &str) -> fmt::Result {
    // Most text (every token) has none of the five: two vectorised scans.
    let bytes = text.as_bytes();
    if memchr::memchr3(b'&', b'<', b'>', bytes).is_none()
        && memchr::memchr2(b'"', b'\'', bytes).is_none()
    {
        return out.write_str(text);
    }
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.write_str(&text[last..i])?;
        out.write_str(rep)?;
        last = i + 1;
    }
    out.write_str(&text[last..])
}

/// `text`, escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let _ = escape_into(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_the_five() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(super::escape("plain é"), "plain é");
    }
}
