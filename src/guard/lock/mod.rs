//! Per-record locks: one submission at a time checks and writes a record.
//!
//! [`RecordLock`] says where the locks live: in this process (the default,
//! [`table`]) or in PostgreSQL, across processes ([`postgres`], feature
//! `postgres`). Either way the lock of a record is taken before the record
//! is loaded and compared, and released when the handler's future completes
//! or is dropped.

#[cfg(feature = "postgres")]
mod postgres;
mod table;

use std::time::Duration;

#[cfg(feature = "postgres")]
pub use postgres::PgAdvisoryLock;
pub(crate) use table::LockKey;

/// Where the guard's per-record locks live: see
/// [`ConcurrencyGuardLayer::with_record_lock`](crate::ConcurrencyGuardLayer::with_record_lock).
///
/// The default, [`RecordLock::in_process`], serializes the submissions to a
/// record within one process. With feature `postgres`, a
/// [`PgAdvisoryLock`] (`.into()`) serializes them across every process on
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

/// Why a lock was not taken.
pub(crate) enum LockFailure {
    /// Another submission held it for the whole wait.
    Busy,
    /// The lock's database failed or did not answer.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Unavailable,
}

/// Waits at most `timeout` for the lock of `key`.
pub(crate) async fn lock_within(
    backend: &RecordLock,
    key: LockKey,
    timeout: Duration,
) -> Result<ResourceLock, LockFailure> {
    match &backend.0 {
        Backend::InProcess => table::lock_within(key, timeout)
            .await
            .map(|local| ResourceLock(Held::InProcess(local)))
            .ok_or(LockFailure::Busy),
        #[cfg(feature = "postgres")]
        Backend::Postgres(pg) => match pg.lock(advisory_id(key), timeout).await {
            Ok(held) => Ok(ResourceLock(Held::Postgres(held))),
            Err(postgres::PgFailure::Busy) => Err(LockFailure::Busy),
            Err(postgres::PgFailure::Unavailable) => Err(LockFailure::Unavailable),
        },
    }
}

/// The `pg_advisory_lock(bigint)` id of a record: its keyed resource digest
/// with the key's id folded into the high half, as a signed number.
#[cfg(feature = "postgres")]
fn advisory_id((key_id, digest): LockKey) -> i64 {
    i64::from_ne_bytes((digest ^ (u64::from(key_id) << 32)).to_ne_bytes())
}
