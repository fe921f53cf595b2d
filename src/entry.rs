//! What one entry of a form state is: its kind, the control a browser submits it from, and its canonical encoding.
//!
//! A [`Control`] says how a browser submits a rendered value (WHATWG HTML,
//! "constructing the entry list" and "converting an entry list to a list of
//! name-value pairs"): line breaks as CRLF, a textarea's leading newline
//! dropped, an unchecked checkbox left out. The per-input digests are taken
//! of the value *as submitted*, so a value the user left alone compares
//! equal to what the browser sends back.

use std::borrow::Cow;
use std::ops::Range;

/// What an entry of a [`FormState`](crate::FormState) is.
///
/// A form's state is a list of entries in a fixed order, each of one
/// [`EntryKind`]:
///
/// | kind | what it is | takes part in the fingerprint |
/// |---|---|---|
/// | [`EntryKind::Input`] | an editable field, named as the form field is named | yes, and gets its own digest |
/// | [`EntryKind::Context`] | shown but not editable (a stock level, a counter) | yes |
/// | [`EntryKind::Key`] | the resource's identity (`id`) | no: it binds the token to the resource |
///
/// Fields that take no part (`#[render_state(skip)]`) write no entry at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An editable field: takes part and has its own digest.
    Input,
    /// Shown, not editable: takes part.
    Context,
    /// The resource's identity: binds the token to the resource.
    Key,
}

impl EntryKind {
    /// The byte that stands for this kind in the canonical encoding.
    pub(crate) fn tag(self) -> u8 {
        match self {
            EntryKind::Input => b'I',
            EntryKind::Context => b'C',
            EntryKind::Key => b'K',
        }
    }
}

/// Appends the canonical encoding of one entry to `buf`: its kind's tag
/// byte, then the name and the value, each after its byte length as a u64
/// little-endian. `value` writes the value's bytes at the end of `buf`.
/// Returns where the name and the value are in `buf`.
///
/// The one place the entry encoding is written: [`FormState`](crate::FormState) encodes its
/// entries with it, and the fingerprint module a submitted value.
#[inline]
pub(crate) fn encode_entry(
    buf: &mut Vec<u8>,
    kind: EntryKind,
    name: &str,
    value: impl FnOnce(&mut Vec<u8>),
) -> (Range<usize>, Range<usize>) {
    buf.push(kind.tag());
    buf.extend_from_slice(&(name.len() as u64).to_le_bytes());
    let name_range = buf.len()..buf.len() + name.len();
    buf.extend_from_slice(name.as_bytes());
    let len_at = buf.len();
    buf.extend_from_slice(&[0; 8]);
    let value_start = buf.len();
    value(buf);
    let value_end = buf.len();
    buf[len_at..value_start].copy_from_slice(&((value_end - value_start) as u64).to_le_bytes());
    (name_range, value_start..value_end)
}

/// The kind of form control an input is rendered as: how a browser submits it.
///
/// | control | submitted as |
/// |---|---|
/// | [`Control::Text`] (default) | its value, always (unless disabled): `<input>`, `<textarea>`, `<select>` |
/// | [`Control::Checkbox`] | its value when checked, nothing when unchecked |
/// | [`Control::Radio`] | the checked button's value, nothing when none is |
///
/// A checkbox or radio group renders its value when checked (selected) and
/// the empty string when not: `bool` renders `"on"` or `""` and is a
/// checkbox without being told; a field rendered through `with = …` (a
/// checkbox with `value="1"`) says so with `#[render_state(checkbox)]` or
/// [`FormState::input_as`](crate::FormState::input_as).
///
/// A text value is compared as the browser sends it back: one leading
/// line feed dropped (the HTML parser drops it after `<textarea>`, and an
/// `<input>` strips line breaks), and every line break as CRLF. A field
/// missing from a submission is a disabled control, which a browser never
/// submits: not an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Control {
    /// A text input, textarea, or single select: always submitted.
    #[default]
    Text,
    /// A checkbox: submitted (with its value) only when checked.
    Checkbox,
    /// A radio group: the checked button's value, or nothing.
    Radio,
}

impl Control {
    /// Whether a browser leaves the field out when it renders empty
    /// (unchecked), instead of submitting it empty.
    pub fn absent_when_empty(self) -> bool {
        matches!(self, Control::Checkbox | Control::Radio)
    }

    /// The rendered `value` as a browser submits it when the user leaves
    /// the control alone (`""` for an unchecked checkbox: absent).
    pub(crate) fn as_submitted(self, value: &str) -> Cow<'_, str> {
        match self {
            Control::Checkbox | Control::Radio => Cow::Borrowed(value),
            Control::Text => {
                // The parser's newline normalization (CR LF and CR become
                // LF) comes before it drops one leading LF.
                let rest = value
                    .strip_prefix("\r\n")
                    .or_else(|| value.strip_prefix(['\n', '\r']))
                    .unwrap_or(value);
                crlf(rest)
            }
        }
    }
}

/// `value` with every line break (CR LF, a lone CR, a lone LF) as CR LF:
/// WHATWG "normalize line breaks", as form submission applies to every name
/// and value.
pub(crate) fn crlf(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let already = memchr::memchr2_iter(b'\r', b'\n', bytes).all(|i| match bytes[i] {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        _ => i > 0 && bytes[i - 1] == b'\r',
    });
    if already {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_as_a_browser_submits_them() {
        for (rendered, submitted) in [
            ("line1\nline2", "line1\r\nline2"),
            ("line1\r\nline2", "line1\r\nline2"),
            ("a\rb\n\nc\r", "a\r\nb\r\n\r\nc\r\n"),
            ("\nstarts", "starts"),
            ("\r\nstarts", "starts"),
            ("\n\ntwo", "\r\ntwo"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(
                Control::Text.as_submitted(rendered),
                submitted,
                "{rendered:?}"
            );
        }
        assert_eq!(Control::Checkbox.as_submitted("\n1"), "\n1");
        assert_eq!(crlf("x\ny"), "x\r\ny");
        assert!(matches!(crlf("x\r\ny"), Cow::Borrowed(_)));
    }
}
