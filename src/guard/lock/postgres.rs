//! The record lock across processes: PostgreSQL session-level advisory
//! locks, held on a pooled connection of their own while the handler runs.
//!
//! A record's lock is one advisory id per key of the ring (ascending,
//! distinct). Taking them is one round trip: a simple query (no prepared
//! statement) that Postgres runs as one implicit transaction,
//!
//! ```sql
//! SET LOCAL lock_timeout = '<what is left of the wait>ms';
//! SELECT CASE WHEN <server start> > now() - interval '<grace> milliseconds'
//!   THEN false ELSE (SELECT true FROM pg_advisory_lock(<id 1>)) END, <ms of grace left>;
//! SELECT CASE WHEN <the same> THEN false ELSE (SELECT true FROM pg_advisory_lock(<id 2>)) END
//! ```
//!
//! (`<server start>`: `pg_postmaster_start_time()`, or the end of the last
//! crash recovery, when the shared statistics were reset), so the wait is
//! bounded by the server (SQLSTATE `55P03` past it) and the connection's own `lock_timeout` is back to what it was afterwards, while
//! the session-level locks outlive that transaction. `now()` is the
//! transaction's start, the same in every statement: either every id is
//! taken, or (the server started less than the restart grace ago) none.
//! Releasing them is one `pg_advisory_unlock` per id, in one query, after
//! which the connection goes back to the pool when every unlock found its
//! lock: awaited after the handler, in a task of its own when the lock is
//! dropped (a conflict answered, a panicking handler, a client that went
//! away). A connection whose session may still hold a lock never goes back
//! to the pool: one dropped in the middle of a query, one whose wait ended
//! after it took some of the ids (a lock taken by an earlier statement
//! outlives the rolled-back transaction), one whose unlock failed, one
//! dropped where there is no runtime to unlock it on is closed, the session
//! ends, and Postgres frees every lock the session held.

use std::fmt;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::time::Instant;

use super::pg_sql::{BoxFuture, Granted, granted, lock_sql, simple_query, unlock};

/// Per-record locks across processes on PostgreSQL advisory locks, for
/// [`ConcurrencyGuardLayer::with_record_lock`](crate::ConcurrencyGuardLayer::with_record_lock)
/// (feature `postgres`).
///
/// Every process that guards the same records on the same database takes a
/// common lock for a record: a submission is checked and written while no
/// other process checks or writes that record. No handler changes.
///
/// Each submission the guard checks holds one connection of `pool` from
/// its lock until the handler's future completes: give the lock a pool of
/// its own, sized for the submissions in flight at once (a pool shared with
/// the handlers can run dry while they wait for it, and the wait counts
/// against the lock timeout).
///
/// - Lock ids: the session-level `pg_advisory_lock(bigint)` space. A record
///   takes one id per key of the [`KeyRing`](crate::KeyRing), derived from
///   the record's digest under that key (spread over all 64 bits: an
///   application's own advisory locks on small numbers do not meet them),
///   all in one round trip, in ascending order. Processes whose rings share
///   a key share that key's lock: every step of a key rotation (add the new
///   key to every ring, then sign with it everywhere, then remove the old
///   one) keeps every pair of processes exclusive. Rings with no key in
///   common do not exclude each other, but they cannot read each other's
///   tokens either (a token of an unknown key is refused). A ring of one key
///   takes one lock and locks before the first load; with more keys the
///   record is loaded once to learn its digests, then locked and loaded
///   again.
/// - Waits are bounded by the layer's
///   [`with_lock_timeout`](crate::ConcurrencyGuardLayer::with_lock_timeout)
///   (waiting for a pool connection included): past it, **503** with
///   `Retry-After`. A database that fails or does not answer: **503** with
///   a message (the error is logged). The handler does not run either way.
/// - A restart of PostgreSQL ends every session and frees every advisory
///   lock, while handlers that held one may still be running (they reconnect
///   through their own pool and write). So a lock is granted only once the
///   server has been up longer than the
///   [restart grace](PgAdvisoryLock::with_restart_grace) (30 s by default);
///   before that, **503** with `Retry-After` (the seconds left, at least 1)
///   and a message saying the database restarted moments ago. The handler
///   does not run and nothing is written.
/// - A request dropped while it holds the lock (a panicking handler, a
///   client that disconnects) closes the lock's connection instead of
///   returning it to the pool: the session ends and Postgres frees the lock.
#[derive(Clone)]
pub struct PgAdvisoryLock {
    pool: PgPool,
    restart_grace: Duration,
}

/// The default of [`PgAdvisoryLock::with_restart_grace`].
const DEFAULT_RESTART_GRACE: Duration = Duration::from_secs(30);

impl PgAdvisoryLock {
    /// Locks on the connections of `pool`, with the default restart grace
    /// (30 s).
    pub fn new(pool: PgPool) -> Self {
        PgAdvisoryLock {
            pool,
            restart_grace: DEFAULT_RESTART_GRACE,
        }
    }

    /// How long after PostgreSQL (re)started no lock is granted (default
    /// 30 seconds; milliseconds count, less is rounded down).
    ///
    /// A restart frees every advisory lock while the handlers that held one
    /// may still be running; the grace lets them finish before another
    /// submission takes the lock. It must be at least the longest a guarded
    /// write handler runs, from its lock to its last write: a handler still
    /// running past the grace can have its update lost (the default 30 s
    /// matches the request timeout of common proxies and load balancers).
    /// Within the grace a submission gets **503** with `Retry-After` (the
    /// seconds left, at least 1), its handler does not run, nothing is
    /// written. `Duration::ZERO` switches the grace off.
    ///
    /// The server's start is `pg_postmaster_start_time()`, on the server's
    /// own clock. A crash of one backend also ends every session (the server
    /// reinitializes) but keeps that time: the grace then counts from the
    /// end of the crash recovery, when the server resets its shared
    /// statistics (`pg_stat_get_bgwriter_stat_reset_time()`), so a manual
    /// `pg_stat_reset_shared('bgwriter')` starts a grace too. A failover to a
    /// standby is not a restart of the new primary: its start can be old,
    /// and no grace applies.
    pub fn with_restart_grace(mut self, grace: Duration) -> Self {
        self.restart_grace = grace;
        self
    }
}

impl fmt::Debug for PgAdvisoryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgAdvisoryLock")
            .field("pool_size", &self.pool.size())
            .field("restart_grace", &self.restart_grace)
            .finish_non_exhaustive()
    }
}

/// Why the lock was not taken.
pub(crate) enum PgFailure {
    /// Still held by another session (or no connection) when the wait ended.
    Busy,
    /// The database failed or did not answer.
    Unavailable,
    /// The server started less than the restart grace ago: nothing taken.
    /// `retry_after`: whole seconds of grace left, at least 1.
    Restarted { retry_after: u64 },
}

/// SQLSTATE `lock_not_available`: the `lock_timeout` passed.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// How much longer than the server's own timeout the guard waits for its
/// answer before it gives up on the connection.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// The locks of one record, held on their connection.
pub(crate) struct PgHeld {
    ids: Vec<i64>,
    conn: Option<PoolConnection<Postgres>>,
    /// A query is under way on the connection: what its session holds is
    /// not known.
    in_flight: bool,
}

impl PgAdvisoryLock {
    /// Takes locks `ids` (ascending, distinct), waiting at most `timeout`.
    ///
    /// Boxed, as sqlx's own futures are: the guard's future stays `Send`
    /// for every lifetime (the compiler cannot prove it through them).
    pub(crate) fn lock<'a>(
        &'a self,
        ids: &'a [i64],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<PgHeld, PgFailure>> {
        Box::pin(self.lock_unboxed(ids, timeout))
    }

    async fn lock_unboxed(&self, ids: &[i64], timeout: Duration) -> Result<PgHeld, PgFailure> {
        let deadline = Instant::now() + timeout;
        let conn = match tokio::time::timeout_at(deadline, self.pool.acquire()).await {
            Ok(Ok(conn)) => conn,
            // Every connection busy holding other records' locks, or none
            // could be opened at all (the database is down).
            Err(_) | Ok(Err(sqlx::Error::PoolTimedOut)) if self.pool.size() > 0 => {
                return Err(PgFailure::Busy);
            }
            Err(_) | Ok(Err(sqlx::Error::PoolTimedOut)) => {
                tracing::error!("record lock: no connection to PostgreSQL could be opened");
                return Err(PgFailure::Unavailable);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "record lock: no connection to PostgreSQL");
                return Err(PgFailure::Unavailable);
            }
        };
        // Until the locks are known to be free of this session, the
        // connection is closed rather than pooled (dropped mid-query too).
        let mut held = PgHeld {
            ids: ids.to_vec(),
            conn: Some(conn),
            in_flight: true,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let sql = lock_sql(ids, left, self.restart_grace);
        let Some(conn) = held.conn.as_mut() else {
            return Err(PgFailure::Unavailable);
        };
        let answer = tokio::time::timeout(left + ANSWER_GRACE, simple_query(conn, &sql)).await;
        match answer {
            Ok(Ok(rows)) => match granted(&rows, ids.len()) {
                Granted::All => {
                    held.in_flight = false;
                    Ok(held)
                }
                Granted::None { grace_left_ms } => {
                    // Nothing taken: the connection is clean.
                    held.disarm();
                    let retry_after = u64::try_from(grace_left_ms)
                        .unwrap_or(0)
                        .div_ceil(1000)
                        .max(1);
                    tracing::warn!(
                        retry_after,
                        "record lock: PostgreSQL restarted less than the restart grace ago; \
                         submissions are refused until it ends"
                    );
                    Err(PgFailure::Restarted { retry_after })
                }
                Granted::Unknown => {
                    tracing::error!("record lock: unexpected answer to pg_advisory_lock");
                    Err(PgFailure::Unavailable)
                }
            },
            Ok(Err(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) =>
            {
                // The implicit transaction was rolled back; with one id
                // nothing is held and the connection is clean. With more,
                // the ids taken before the one that timed out are still
                // held by the session: the connection is closed (dropped
                // while in flight), which frees them.
                if ids.len() == 1 {
                    held.disarm();
                }
                Err(PgFailure::Busy)
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "record lock: PostgreSQL refused pg_advisory_lock");
                Err(PgFailure::Unavailable)
            }
            Err(_) => {
                tracing::error!(
                    "record lock: PostgreSQL did not answer pg_advisory_lock within the lock timeout"
                );
                Err(PgFailure::Unavailable)
            }
        }
    }
}

impl PgHeld {
    /// Gives the connection back to the pool: its session holds no lock.
    fn disarm(&mut self) {
        drop(self.conn.take());
    }

    /// Releases the locks; the connection goes back to the pool when every
    /// unlock found its lock, else it is closed.
    pub(crate) fn release(self) -> BoxFuture<'static, ()> {
        Box::pin(self.release_unboxed())
    }

    async fn release_unboxed(mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        self.in_flight = true;
        let unlocked = unlock(conn, &self.ids).await;
        match unlocked {
            Ok(true) => self.disarm(),
            Ok(false) => {
                tracing::warn!(
                    ids = ?self.ids,
                    "record lock: pg_advisory_unlock found a lock not held; closing the connection"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "record lock: pg_advisory_unlock failed; closing the connection");
            }
        }
        // Drop: closes the connection when it was not disarmed.
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if self.in_flight {
            // The session may hold the lock: end it (gracefully, in a task
            // of sqlx's), so that Postgres frees it; never back to the pool.
            conn.close_on_drop();
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // In flight: if the task is dropped before it unlocks (a
                // runtime shutting down drops what it is given), the
                // connection is closed, not handed to yet another task
                // (which would be dropped too, and so on without end).
                let held = PgHeld {
                    ids: std::mem::take(&mut self.ids),
                    conn: Some(conn),
                    in_flight: true,
                };
                runtime.spawn(held.release());
            }
            // No runtime to unlock on: the socket is closed at once, which
            // ends the session.
            Err(_) => drop(conn.detach()),
        }
    }
}
