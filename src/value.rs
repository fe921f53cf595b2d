//! How a Rust value renders in a form: the [`RenderValue`] trait and its impls.
//!
//! A value renders as the text of `value="…"`, the way a template shows it;
//! that text is what a [`FormState`](crate::FormState) records and the
//! fingerprint covers.

use std::borrow::Cow;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

/// How a value renders in a form: the text of `value="…"`.
///
/// Implemented for strings, `char`, every integer and float (as `Display`
/// writes them), `bool` (`"on"` when true, `""` when false: what a checkbox
/// submits), `Option<T>` (`None` renders empty) and references and smart
/// pointers to any of them; with the features of the same names, for
/// `rust_decimal::Decimal`, `uuid::Uuid`, and the dates and times of
/// `chrono` (`NaiveDate`, `NaiveDateTime`, `NaiveTime`) and `time` (`Date`,
/// `PrimitiveDateTime`, `Time`), written as `<input type="date">`,
/// `datetime-local` and `time` show them (`2024-03-01`, `2024-03-01T09:30`,
/// `09:30:15`: WHATWG HTML's valid date, normalized local date and time, and
/// time strings).
///
/// There is no blanket impl for `Display` types (it would overlap the impls
/// above). An enum a `<select>` shows by its `Display` text renders through
/// the field option `#[render_state(with = ToString::to_string)]`, which also
/// works for an enum of another crate; for your own enum, an impl is three
/// lines:
///
/// ```
/// use concurrency_guard::{RenderValue, Rendered};
///
/// enum Status { Draft, Published }
///
/// impl RenderValue for Status {
///     fn render_value(&self, out: &mut Rendered<'_>) {
///         // The `value` of the `<option>` the form selects.
///         out.push_str(match self { Status::Draft => "draft", Status::Published => "published" });
///     }
/// }
/// ```
pub trait RenderValue {
    /// Writes the rendered text into `out`.
    fn render_value(&self, out: &mut Rendered<'_>);

    /// Whether a browser leaves the field out of a submission when its value
    /// renders empty, as it does an unchecked checkbox (`true` for `bool`).
    /// Only merging uses it: a field merged to an empty value is then left
    /// out of the body instead of sent empty.
    fn omitted_when_empty(&self) -> bool {
        false
    }
}

/// The text a [`RenderValue`] writes into. Implements [`fmt::Write`], so
/// `write!(out, "{:.2}", price)` works.
pub struct Rendered<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Rendered<'a> {
    /// Rendered text appended to `buf`.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Rendered<'a> {
        Rendered { buf }
    }

    /// Appends `text`.
    pub fn push_str(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }
}

impl fmt::Write for Rendered<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl RenderValue for str {
    fn render_value(&self, out: &mut Rendered<'_>) {
        out.push_str(self);
    }
}

impl RenderValue for String {
    fn render_value(&self, out: &mut Rendered<'_>) {
        out.push_str(self);
    }
}

impl RenderValue for Cow<'_, str> {
    fn render_value(&self, out: &mut Rendered<'_>) {
        out.push_str(self);
    }
}

impl RenderValue for char {
    fn render_value(&self, out: &mut Rendered<'_>) {
        out.push_str(self.encode_utf8(&mut [0; 4]));
    }
}

impl RenderValue for bool {
    fn render_value(&self, out: &mut Rendered<'_>) {
        out.push_str(if *self { "on" } else { "" });
    }

    fn omitted_when_empty(&self) -> bool {
        true
    }
}

macro_rules! render_with_display {
    ($($t:ty),*) => {$(
        impl RenderValue for $t {
            fn render_value(&self, out: &mut Rendered<'_>) {
                use fmt::Write as _;
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

render_with_display!(i128, u128, f32, f64);

/// Writes `n` in decimal, with a minus sign if `negative`: what `Display`
/// writes for the integer, without going through the formatter (this runs
/// for every integer field of every guarded request).
fn push_decimal(out: &mut Rendered<'_>, n: u64, negative: bool) {
    if negative {
        out.buf.push(b'-');
    }
    out.buf.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// `n` in decimal ASCII digits, written into the end of `digits`.
pub(crate) fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
}

// `as u64` is lossless for each of these (usize is at most 64 bits on every
// target Rust supports).
macro_rules! render_unsigned {
    ($($t:ty),*) => {$(
        impl RenderValue for $t {
            fn render_value(&self, out: &mut Rendered<'_>) {
                push_decimal(out, *self as u64, false);
            }
        }
    )*};
}

macro_rules! render_signed {
    ($($t:ty),*) => {$(
        impl RenderValue for $t {
            fn render_value(&self, out: &mut Rendered<'_>) {
                push_decimal(out, self.unsigned_abs() as u64, *self < 0);
            }
        }
    )*};
}

render_unsigned!(u8, u16, u32, u64, usize);
render_signed!(i8, i16, i32, i64, isize);

/// As its `Display` writes it, scale kept: `39.90`, not `39.9` (feature
/// `rust_decimal`). A form that shows prices rounded to two places should
/// render them so (`#[render_state(with = …)]`).
#[cfg(feature = "rust_decimal")]
impl RenderValue for rust_decimal::Decimal {
    fn render_value(&self, out: &mut Rendered<'_>) {
        use fmt::Write as _;
        let _ = write!(out, "{self}");
    }
}

/// Hyphenated and lowercase, as its `Display` writes it (feature `uuid`).
#[cfg(feature = "uuid")]
impl RenderValue for uuid::Uuid {
    fn render_value(&self, out: &mut Rendered<'_>) {
        out.push_str(
            self.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
    }
}

impl<T: RenderValue> RenderValue for Option<T> {
    fn render_value(&self, out: &mut Rendered<'_>) {
        if let Some(value) = self {
            value.render_value(out);
        }
    }
}

impl<T: RenderValue + ?Sized> RenderValue for &T {
    fn render_value(&self, out: &mut Rendered<'_>) {
        (**self).render_value(out);
    }
    fn omitted_when_empty(&self) -> bool {
        (**self).omitted_when_empty()
    }
}

impl<T: RenderValue + ?Sized> RenderValue for Box<T> {
    fn render_value(&self, out: &mut Rendered<'_>) {
        (**self).render_value(out);
    }
    fn omitted_when_empty(&self) -> bool {
        (**self).omitted_when_empty()
    }
}

impl<T: RenderValue + ?Sized> RenderValue for Rc<T> {
    fn render_value(&self, out: &mut Rendered<'_>) {
        (**self).render_value(out);
    }
    fn omitted_when_empty(&self) -> bool {
        (**self).omitted_when_empty()
    }
}

impl<T: RenderValue + ?Sized> RenderValue for Arc<T> {
    fn render_value(&self, out: &mut Rendered<'_>) {
        (**self).render_value(out);
    }
    fn omitted_when_empty(&self) -> bool {
        (**self).omitted_when_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_render_as_display_writes_them() {
        fn rendered<T: RenderValue>(value: T) -> String {
            let mut buf = Vec::new();
            value.render_value(&mut Rendered { buf: &mut buf });
            String::from_utf8(buf).unwrap()
        }
        macro_rules! check {
            ($($t:ty),*) => {$(
                for v in [<$t>::MIN, <$t>::MAX, 0 as $t, 1 as $t, 9 as $t, 10 as $t, <$t>::MAX / 7, <$t>::MIN / 3] {
                    assert_eq!(rendered(v), v.to_string(), "{}", stringify!($t));
                }
            )*};
        }
        check!(
            i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
        );
        for v in [-1i64, -9, -10, -99, -100, 99, 100, 12345, -1_000_000_007] {
            assert_eq!(rendered(v), v.to_string());
        }
    }
}
