//! Debug mode: remember what each form showed, to say exactly what differs on a conflict.
//!
//! Like Reahl's `debug_concurrency_hash`. Off by default: it keeps the last
//! [`CAPACITY`] rendered states in memory (values included) and puts the
//! differing values into conflict answers and logs, so it is for diagnosing
//! needless conflicts in development, never for production.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::conflict::EntryDiff;
use crate::entry::{EntryKind, crlf};
use crate::merge::{InputSides, Ours};
use crate::state::FormState;

/// How many rendered states are remembered.
pub(crate) const CAPACITY: usize = 1024;

type Remembered = (u32, u128, u64, FormState);

/// The rendered states, newest last.
#[derive(Debug, Default)]
pub(crate) struct DebugLog {
    states: Mutex<VecDeque<Remembered>>,
}

impl DebugLog {
    pub(crate) fn remember(
        &self,
        key_id: u32,
        fingerprint: u128,
        resource: u64,
        state: &FormState,
    ) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if states
            .iter()
            .any(|(k, f, r, _)| (*k, *f, *r) == (key_id, fingerprint, resource))
        {
            return;
        }
        if states.len() == CAPACITY {
            states.pop_front();
        }
        states.push_back((key_id, fingerprint, resource, state.clone()));
    }

    /// The entries that differ between the state a token was signed for and
    /// `now`; `None` when that state is not remembered (another process, a
    /// restart, or pushed out).
    pub(crate) fn diff(
        &self,
        key_id: u32,
        fingerprint: u128,
        resource: u64,
        now: &FormState,
    ) -> Option<Vec<EntryDiff>> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let (_, _, _, then) = states
            .iter()
            .find(|(k, f, r, _)| (*k, *f, *r) == (key_id, fingerprint, resource))?;
        Some(diff(then, now))
    }
}

impl DebugLog {
    /// The user's side of each input changed on both sides (a merge
    /// overlap): what the browser submitted, what the form showed, and why
    /// the two differ. The rendered value is `None` when the state the
    /// token was signed for is not remembered.
    pub(crate) fn user_sides(
        &self,
        key_id: u32,
        fingerprint: u128,
        resource: u64,
        sides: &[InputSides],
    ) -> Vec<UserSide> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let then = states
            .iter()
            .find(|(k, f, r, _)| (*k, *f, *r) == (key_id, fingerprint, resource))
            .map(|(_, _, _, state)| state);
        sides
            .iter()
            .filter(|side| side.overlaps())
            .map(|side| {
                let rendered = then.and_then(|then| {
                    then.inputs()
                        .find(|e| e.name() == side.name)
                        .map(|e| e.value().to_owned())
                });
                let submitted = match &side.ours {
                    Ours::One(value) => Some(value.clone()),
                    Ours::Absent | Ours::Many => None,
                };
                UserSide {
                    why: why_they_differ(&side.ours, rendered.as_deref()),
                    name: side.name.clone(),
                    submitted,
                    rendered,
                    now: side.current.clone(),
                }
            })
            .collect()
    }
}

/// The user's side of an input that both sides changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserSide {
    /// The input's name.
    pub(crate) name: String,
    /// What the browser submitted; `None` when it left the field out or
    /// sent it several times (`why` says which).
    pub(crate) submitted: Option<String>,
    /// What the form's state held when the page was rendered.
    pub(crate) rendered: Option<String>,
    /// What it renders now (someone else's change).
    pub(crate) now: String,
    /// Why the submitted value differs from the rendered one.
    pub(crate) why: &'static str,
}

/// Why a submitted value differs from the value the form's state held.
fn why_they_differ(ours: &Ours, rendered: Option<&str>) -> &'static str {
    let Some(rendered) = rendered else {
        return "the rendered state is not remembered (rendered by another process, \
                before a restart, or pushed out by newer forms)";
    };
    let submitted = match ours {
        Ours::Absent => {
            return "the browser left the field out (an unchecked box, or a control \
                    the page disabled) and the form showed a value";
        }
        Ours::Many => {
            return "the field was submitted several times (a multi-select or checkbox \
                    group), which cannot be compared with one rendered value";
        }
        Ours::One(value) => crlf(value),
    };
    let rendered = crlf(rendered);
    if submitted.trim() == rendered.trim() {
        "they differ only in leading or trailing white space: the template or \
         the browser trims the value, or the user added spaces"
    } else if matches!(
        (submitted.trim().parse::<f64>(), rendered.trim().parse::<f64>()),
        (Ok(a), Ok(b)) if a == b
    ) {
        "the same number written differently: the template shows it otherwise \
         than its RenderValue renders it (e.g. `39.9` against `39.90`); render it \
         as the template does with `#[render_state(with = ...)]`, or the user \
         retyped it"
    } else if submitted.eq_ignore_ascii_case(&rendered) {
        "they differ only in letter case: the template or the user changed it"
    } else {
        "the user edited the field; if not, the page's `value` is not what the \
         form's RenderValue rendered (compare the two and render the field as \
         the template shows it)"
    }
}

fn diff(then: &FormState, now: &FormState) -> Vec<EntryDiff> {
    let list = |s: &FormState| -> Vec<(EntryKind, String, String)> {
        s.entries()
            .filter(|e| e.kind() != EntryKind::Key)
            .map(|e| (e.kind(), e.name().to_owned(), e.value().to_owned()))
            .collect()
    };
    let (mut then, now) = (list(then), list(now));
    let mut out = Vec::new();
    for (kind, name, value) in now {
        match then.iter().position(|(k, n, _)| *k == kind && *n == name) {
            Some(i) => {
                let (_, _, old) = then.remove(i);
                if old != value {
                    out.push(EntryDiff {
                        kind,
                        name,
                        then: Some(old),
                        now: Some(value),
                    });
                }
            }
            None => out.push(EntryDiff {
                kind,
                name,
                then: None,
                now: Some(value),
            }),
        }
    }
    for (kind, name, old) in then {
        out.push(EntryDiff {
            kind,
            name,
            then: Some(old),
            now: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_why_a_submitted_value_differs_from_the_rendered_one() {
        let one = |v: &str| Ours::One(v.to_owned());
        assert!(why_they_differ(&one("39.9"), Some("39.90")).contains("same number"));
        assert!(why_they_differ(&one("Lamp "), Some("Lamp")).contains("white space"));
        assert!(why_they_differ(&one("lamp"), Some("Lamp")).contains("letter case"));
        assert!(why_they_differ(&one("Desk"), Some("Lamp")).contains("the user edited"));
        assert!(why_they_differ(&Ours::Absent, Some("on")).contains("left the field out"));
        assert!(why_they_differ(&Ours::Many, Some("a")).contains("several times"));
        assert!(why_they_differ(&one("x"), None).contains("not remembered"));
    }

    #[test]
    fn names_every_differing_entry() {
        let mut a = FormState::new();
        a.input("name", "x")
            .context("stock", &3)
            .context("gone", "1");
        let mut b = FormState::new();
        b.input("name", "x").context("stock", &4).input("new", "n");
        let log = DebugLog::default();
        log.remember(1, 7, 9, &a);
        let d = log.diff(1, 7, 9, &b).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].name, "stock");
        assert_eq!(
            (d[0].then.as_deref(), d[0].now.as_deref()),
            (Some("3"), Some("4"))
        );
        assert_eq!((d[1].name.as_str(), d[1].then.as_deref()), ("new", None));
        assert_eq!((d[2].name.as_str(), d[2].now.as_deref()), ("gone", None));
        assert!(log.diff(1, 8, 9, &b).is_none());
    }
}
