//! Debug mode: remember what each form showed, to say exactly what differs on a conflict.
//!
//! Like Reahl's `debug_concurrency_hash`. Off by default: it keeps the last
//! [`CAPACITY`] rendered states in memory (values included) and puts the
//! differing values into conflict answers and logs, so it is for diagnosing
//! needless conflicts in development, never for production.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::conflict::EntryDiff;
use crate::entry::EntryKind;
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
