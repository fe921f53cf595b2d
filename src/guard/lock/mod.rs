//! Per-record locks: one submission at a time checks and writes a record.
//!
//! [`RecordLock`] says where the locks live: in this process (the default,
//! [`table`]) or in PostgreSQL, across processes ([`postgres`], feature
//! `postgres`). Either way the lock of a record is taken before the record
//! is loaded and compared, and released when the handler's future completes
//! or is dropped.

#[cfg(feature = "postgres")]
mod pg_sql;
#[cfg(feature = "postgres")]
mod postgres;
mod table;

use std::time::Duration;

use crate::fingerprint::resource_digest;
use crate::key::KeyRing;
use crate::state::FormState;

#[cfg(feature = "postgres")]
pub use postgres::PgAdvisoryLock;
pub(crate) use table::LockKey;

/// Where the guard's per-record locks live: see
/// [`ConcurrencyGuardLayer::with_record_lock`](crate::ConcurrencyGuardLayer::with_record_lock).
///
/// The default, [`RecordLock::in_process`], serializes the submissions to a
/// record within one process. With feature `postgres`, a
/// `PgAdvisoryLock` (`.into()`) serializes them across every process on
/// one PostgreSQL database.
#[derive(Clone, Debug, Default)]
pub struct RecordLock(Backend);

#[derive(Clone, Debug, Default)]
enum Backend {
    #[default]
    InProcess,
    #[cfg(feature = "postgres")]
    Postgres(PgAdvisoryLock),
}

impl RecordLock {
    /// The lock table of this process (the default): every route and layer
    /// of the process guarding the same record shares its lock. It does not
    /// span processes.
    pub fn in_process() -> Self {
        RecordLock(Backend::InProcess)
    }
}

#[cfg(feature = "postgres")]
impl From<PgAdvisoryLock> for RecordLock {
    fn from(lock: PgAdvisoryLock) -> Self {
        RecordLock(Backend::Postgres(lock))
    }
}

/// Held from the check until the handler's future completes; dropping it
/// releases the lock (or, for a database lock, ends its session).
pub(crate) struct ResourceLock(Held);

enum Held {
    InProcess(table::LocalLock),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgHeld),
}

impl ResourceLock {
    /// Releases the lock, waiting for the database where it lives there.
    pub(crate) async fn release(self) {
        match self.0 {
            Held::InProcess(local) => drop(local),
            #[cfg(feature = "postgres")]
            Held::Postgres(held) => held.release().await,
        }
    }
}

/// The locks a record takes, in the order they are taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LockIds {
    /// In this process: the record under the signing key (one process, one
    /// ring).
    Local(LockKey),
    /// In PostgreSQL: one advisory id per key of the ring, ascending and
    /// distinct. Two processes whose rings share a key (every step of a
    /// rotation) share that key's id, so they exclude each other; taking the
    /// ids in ascending order everywhere means two submissions never wait
    /// for each other in a cycle.
    #[cfg(feature = "postgres")]
    Advisory(Vec<i64>),
}

/// The locks of the record `state` shows, for `backend` under `ring`.
pub(crate) fn ids_of(backend: &RecordLock, ring: &KeyRing, state: &FormState) -> LockIds {
    match &backend.0 {
        Backend::InProcess => LockIds::Local((
            ring.signing_key_id(),
            resource_digest(state, ring.signing_key()),
        )),
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) => {
            let mut ids: Vec<i64> = ring
                .entries()
                .map(|(id, key)| advisory_id((id, resource_digest(state, key))))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            LockIds::Advisory(ids)
        }
    }
}

/// The locks of the record a verified token names (`resource`, its digest
/// under key `key_id`), when they can be known before it is loaded: its key
/// signs, and the backend needs no other key's digest (in process, or a
/// ring of one key). `None`: load the record first to learn them.
pub(crate) fn ids_named(
    backend: &RecordLock,
    ring: &KeyRing,
    key_id: u32,
    resource: u64,
) -> Option<LockIds> {
    if key_id != ring.signing_key_id() {
        return None;
    }
    match &backend.0 {
        Backend::InProcess => Some(LockIds::Local((key_id, resource))),
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) if ring.len() == 1 => {
            Some(LockIds::Advisory(vec![advisory_id((key_id, resource))]))
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres(_) => None,
    }
}

/// Why a lock was not taken.
pub(crate) enum LockFailure {
    /// Another submission held it for the whole wait.
    Busy,
    /// The lock's database failed or did not answer.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Unavailable,
    /// The lock's database restarted less than its grace period ago: locks
    /// held before the restart were freed while their handlers may still
    /// run. `retry_after`: whole seconds left, at least 1.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Restarted { retry_after: u64 },
}

/// Waits at most `timeout` for the locks `ids`.
pub(crate) async fn lock_within(
    backend: &RecordLock,
    ids: &LockIds,
    timeout: Duration,
) -> Result<ResourceLock, LockFailure> {
    match (&backend.0, ids) {
        (Backend::InProcess, LockIds::Local(key)) => table::lock_within(*key, timeout)
            .await
            .map(|local| ResourceLock(Held::InProcess(local)))
            .ok_or(LockFailure::Busy),
        #[cfg(feature = "postgres")]
        (Backend::Postgres(pg), LockIds::Advisory(ids)) => match pg.lock(ids, timeout).await {
            Ok(held) => Ok(ResourceLock(Held::Postgres(held))),
            Err(postgres::PgFailure::Busy) => Err(LockFailure::Busy),
            Err(postgres::PgFailure::Unavailable) => Err(LockFailure::Unavailable),
            Err(postgres::PgFailure::Restarted { retry_after }) => {
                Err(LockFailure::Restarted { retry_after })
            }
        },
        // Ids made for another backend: never locked by mistake.
        #[cfg(feature = "postgres")]
        _ => {
            debug_assert!(false, "lock ids of another backend");
            Err(LockFailure::Unavailable)
        }
    }
}

/// The `pg_advisory_lock(bigint)` id of a record: its keyed resource digest
/// with the key's id folded into the high half, as a signed number.
#[cfg(feature = "postgres")]
fn advisory_id((key_id, digest): LockKey) -> i64 {
    i64::from_ne_bytes((digest ^ (u64::from(key_id) << 32)).to_ne_bytes())
}
