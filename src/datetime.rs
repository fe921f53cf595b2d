//! Dates and times as the date and time inputs of HTML show them: the
//! [`RenderValue`] impls of features `chrono` and `time`.
//!
//! A browser sets an `<input type="date">`, `datetime-local` or `time` from
//! its `value` attribute only if the attribute is a valid string of WHATWG
//! HTML's microsyntax, and submits the value in that same form:
//!
//! | input | string (WHATWG HTML §2.3.5) | example |
//! |---|---|---|
//! | `date` | valid date string: year (four or more digits), `-`, month, `-`, day | `2024-03-01` |
//! | `time` | valid time string: `HH:MM`, with `:SS` when the second is not zero, and `.` and the fraction when it is not zero | `09:30`, `09:30:15`, `09:30:15.5` |
//! | `datetime-local` | valid *normalized* local date and time string: the date, `T`, the shortest time string | `2024-03-01T09:30` |
//!
//! So the value a form shows, the value it submits and the value the guard
//! fingerprints are the same text. Years before 1 have no valid date string
//! (a date input shows them empty); they render with a minus sign
//! (`-0001-01-01`), so that a change between two of them still conflicts.
//! A leap second (chrono's second 59 with more than a billion nanoseconds)
//! renders as second 60.

use std::fmt::Write as _;

use crate::value::{RenderValue, Rendered};

/// Writes a valid date string (`YYYY-MM-DD`; more digits for years past 9999).
fn push_date(out: &mut Rendered<'_>, year: i32, month: u8, day: u8) {
    let sign = if year < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{:04}-{month:02}-{day:02}", year.unsigned_abs());
}

/// Writes the shortest valid time string for the time: seconds only when
/// they or the fraction are not zero, the fraction without trailing zeros.
fn push_time(out: &mut Rendered<'_>, hour: u8, minute: u8, second: u8, nanos: u32) {
    let _ = write!(out, "{hour:02}:{minute:02}");
    if second == 0 && nanos == 0 {
        return;
    }
    let _ = write!(out, ":{second:02}");
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        let _ = write!(out, ".{}", fraction.trim_end_matches('0'));
    }
}

/// `date`, `T`, `time`: a valid normalized local date and time string.
fn push_date_time(
    out: &mut Rendered<'_>,
    (year, month, day): (i32, u8, u8),
    (hour, minute, second, nanos): (u8, u8, u8, u32),
) {
    push_date(out, year, month, day);
    out.push_str("T");
    push_time(out, hour, minute, second, nanos);
}

#[cfg(feature = "chrono")]
mod chrono_impls {
    use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

    use super::{RenderValue, Rendered, push_date, push_date_time, push_time};

    fn date(d: &NaiveDate) -> (i32, u8, u8) {
        // Month 1..=12 and day 1..=31 fit a u8.
        (d.year(), d.month() as u8, d.day() as u8)
    }

    fn time(t: &NaiveTime) -> (u8, u8, u8, u32) {
        let (second, nanos) = match t.nanosecond() {
            leap @ 1_000_000_000.. => (t.second() + 1, leap - 1_000_000_000),
            nanos => (t.second(), nanos),
        };
        (t.hour() as u8, t.minute() as u8, second as u8, nanos)
    }

    /// A valid date string, as `<input type="date">` shows it: `2024-03-01`
    /// (feature `chrono`).
    impl RenderValue for NaiveDate {
        fn render_value(&self, out: &mut Rendered<'_>) {
            let (y, m, d) = date(self);
            push_date(out, y, m, d);
        }
    }

    /// The shortest valid time string, as `<input type="time">` shows it:
    /// `09:30`, `09:30:15`, `09:30:15.25` (feature `chrono`).
    impl RenderValue for NaiveTime {
        fn render_value(&self, out: &mut Rendered<'_>) {
            let (h, m, s, n) = time(self);
            push_time(out, h, m, s, n);
        }
    }

    /// A valid normalized local date and time string, as
    /// `<input type="datetime-local">` shows it: `2024-03-01T09:30`
    /// (feature `chrono`).
    impl RenderValue for NaiveDateTime {
        fn render_value(&self, out: &mut Rendered<'_>) {
            push_date_time(out, date(&self.date()), time(&self.time()));
        }
    }
}

#[cfg(feature = "time")]
mod time_impls {
    use time::{Date, PrimitiveDateTime, Time};

    use super::{RenderValue, Rendered, push_date, push_date_time, push_time};

    fn date(d: &Date) -> (i32, u8, u8) {
        (d.year(), u8::from(d.month()), d.day())
    }

    fn time(t: &Time) -> (u8, u8, u8, u32) {
        (t.hour(), t.minute(), t.second(), t.nanosecond())
    }

    /// A valid date string, as `<input type="date">` shows it: `2024-03-01`
    /// (feature `time`).
    impl RenderValue for Date {
        fn render_value(&self, out: &mut Rendered<'_>) {
            let (y, m, d) = date(self);
            push_date(out, y, m, d);
        }
    }

    /// The shortest valid time string, as `<input type="time">` shows it:
    /// `09:30`, `09:30:15`, `09:30:15.25` (feature `time`).
    impl RenderValue for Time {
        fn render_value(&self, out: &mut Rendered<'_>) {
            let (h, m, s, n) = time(self);
            push_time(out, h, m, s, n);
        }
    }

    /// A valid normalized local date and time string, as
    /// `<input type="datetime-local">` shows it: `2024-03-01T09:30`
    /// (feature `time`).
    impl RenderValue for PrimitiveDateTime {
        fn render_value(&self, out: &mut Rendered<'_>) {
            push_date_time(out, date(&self.date()), time(&self.time()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(value: &dyn RenderValue) -> String {
        let mut buf = Vec::new();
        value.render_value(&mut Rendered::new(&mut buf));
        String::from_utf8(buf).unwrap()
    }

    // Expected strings: WHATWG HTML §2.3.5 (valid date string: a year of
    // four or more digits, two-digit month and day; valid time string: the
    // second required if it is not zero, the fraction if it is not zero;
    // valid normalized local date and time string: date, "T", the shortest
    // time string).
    #[cfg(feature = "chrono")]
    #[test]
    fn chrono_values_render_as_the_date_and_time_inputs_show_them() {
        use chrono::{NaiveDate, NaiveTime};
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let time = |h, m, s, n| NaiveTime::from_hms_nano_opt(h, m, s, n).unwrap();
        assert_eq!(rendered(&date(2024, 3, 1)), "2024-03-01");
        assert_eq!(rendered(&date(37, 12, 13)), "0037-12-13");
        assert_eq!(rendered(&date(12345, 1, 31)), "12345-01-31");
        assert_eq!(rendered(&date(-1, 1, 1)), "-0001-01-01");
        assert_eq!(rendered(&time(9, 30, 0, 0)), "09:30");
        assert_eq!(rendered(&time(0, 0, 0, 0)), "00:00");
        assert_eq!(rendered(&time(9, 30, 15, 0)), "09:30:15");
        assert_eq!(rendered(&time(9, 30, 0, 500_000_000)), "09:30:00.5");
        assert_eq!(rendered(&time(23, 59, 59, 999_000_000)), "23:59:59.999");
        assert_eq!(rendered(&time(12, 0, 1, 1)), "12:00:01.000000001");
        assert_eq!(rendered(&time(23, 59, 59, 1_000_000_000)), "23:59:60");
        assert_eq!(
            rendered(&date(1986, 8, 14).and_time(time(9, 30, 0, 0))),
            "1986-08-14T09:30"
        );
        assert_eq!(
            rendered(&date(1986, 8, 14).and_time(time(0, 0, 7, 0))),
            "1986-08-14T00:00:07"
        );
        assert_eq!(rendered(&Some(date(2024, 3, 1))), "2024-03-01");
        assert_eq!(rendered(&None::<NaiveDate>), "");
    }

    #[cfg(feature = "time")]
    #[test]
    fn time_values_render_as_the_date_and_time_inputs_show_them() {
        use time::{Date, Month, PrimitiveDateTime, Time};
        let date = |y, m, d| Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap();
        let time = |h, m, s, n| Time::from_hms_nano(h, m, s, n).unwrap();
        assert_eq!(rendered(&date(2024, 3, 1)), "2024-03-01");
        assert_eq!(rendered(&date(37, 12, 13)), "0037-12-13");
        assert_eq!(rendered(&date(-1, 1, 1)), "-0001-01-01");
        assert_eq!(rendered(&time(9, 30, 0, 0)), "09:30");
        assert_eq!(rendered(&time(9, 30, 15, 0)), "09:30:15");
        assert_eq!(rendered(&time(9, 30, 0, 250_000_000)), "09:30:00.25");
        assert_eq!(
            rendered(&PrimitiveDateTime::new(
                date(1986, 8, 14),
                time(9, 30, 0, 0)
            )),
            "1986-08-14T09:30"
        );
        assert_eq!(
            rendered(&PrimitiveDateTime::new(
                date(1986, 8, 14),
                time(9, 30, 5, 0)
            )),
            "1986-08-14T09:30:05"
        );
    }
}
