//! The record lock across processes: a PostgreSQL session-level advisory
//! lock, held on a pooled connection of its own while the handler runs.
//!
//! Taking it is one round trip: a simple query (no prepared statement) that
//! Postgres runs as one implicit transaction,
//!
//! ```sql
//! SET LOCAL lock_timeout = '<what is left of the wait>ms'; SELECT pg_advisory_lock(<id>)
//! ```
//!
//! so the wait is bounded by the server (SQLSTATE `55P03` past it) and the
//! connection's own `lock_timeout` is back to what it was afterwards, while
//! the session-level lock outlives that transaction. Releasing it is
//! `pg_advisory_unlock(<id>)`, after which the connection goes back to the
//! pool: awaited after the handler, in a task of its own when the lock is
//! dropped (a conflict answered, a panicking handler, a client that went
//! away). A connection whose lock may still be held never goes back to the
//! pool: one dropped in the middle of a query, one whose unlock failed, one
//! dropped where there is no runtime to unlock it on is closed, the session
//! ends, and Postgres frees every lock the session held.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgQueryResult;
use sqlx::{Executor, PgConnection, PgPool, Postgres, Row};
use tokio::time::Instant;

/// Per-record locks across processes on PostgreSQL advisory locks, for
/// [`ConcurrencyGuardLayer::with_record_lock`](crate::ConcurrencyGuardLayer::with_record_lock)
/// (feature `postgres`).
///
/// Every process that guards the same records on the same database, with
/// the same [`KeyRing`](crate::KeyRing), takes the same lock for a record:
/// a submission is checked and written while no other process checks or
/// writes that record. No handler changes.
///
/// Each submission the guard checks holds one connection of `pool` from
/// its lock until the handler's future completes: give the lock a pool of
/// its own, sized for the submissions in flight at once (a pool shared with
/// the handlers can run dry while they wait for it, and the wait counts
/// against the lock timeout).
///
/// - Lock ids: the session-level `pg_advisory_lock(bigint)` space, with ids
///   derived from the record's keyed digest (spread over all 64 bits): an
///   application's own advisory locks on small numbers do not meet them.
/// - Waits are bounded by the layer's
///   [`with_lock_timeout`](crate::ConcurrencyGuardLayer::with_lock_timeout)
///   (waiting for a pool connection included): past it, **503** with
///   `Retry-After`. A database that fails or does not answer: **503** with
///   a message (the error is logged). The handler does not run either way.
/// - A request dropped while it holds the lock (a panicking handler, a
///   client that disconnects) closes the lock's connection instead of
///   returning it to the pool: the session ends and Postgres frees the lock.
#[derive(Clone)]
pub struct PgAdvisoryLock {
    pool: PgPool,
}

impl PgAdvisoryLock {
    /// Locks on the connections of `pool`.
    pub fn new(pool: PgPool) -> Self {
        PgAdvisoryLock { pool }
    }
}

impl fmt::Debug for PgAdvisoryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgAdvisoryLock")
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// Runs `sql` (several statements) as a simple query.
fn simple_query<'c>(
    conn: &'c mut PgConnection,
    sql: &'c str,
) -> BoxFuture<'c, Result<PgQueryResult, sqlx::Error>> {
    conn.execute(sqlx::raw_sql(sql))
}

/// `pg_advisory_unlock(id)`: whether this session held the lock.
fn unlock(conn: &mut PgConnection, id: i64) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        let row = conn
            .fetch_one(sqlx::query("SELECT pg_advisory_unlock($1)").bind(id))
            .await?;
        row.try_get(0)
    })
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the lock was not taken.
pub(crate) enum PgFailure {
    /// Still held by another session (or no connection) when the wait ended.
    Busy,
    /// The database failed or did not answer.
    Unavailable,
}

/// SQLSTATE `lock_not_available`: the `lock_timeout` passed.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// How much longer than the server's own timeout the guard waits for its
/// answer before it gives up on the connection.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// The lock of one record, held on its connection.
pub(crate) struct PgHeld {
    id: i64,
    conn: Option<PoolConnection<Postgres>>,
    /// A query is under way on the connection: what its session holds is
    /// not known.
    in_flight: bool,
}

impl PgAdvisoryLock {
    /// Takes lock `id`, waiting at most `timeout`.
    ///
    /// Boxed, as sqlx's own futures are: the guard's future stays `Send`
    /// for every lifetime (the compiler cannot prove it through them).
    pub(crate) fn lock(
        &self,
        id: i64,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<PgHeld, PgFailure>> {
        Box::pin(self.lock_unboxed(id, timeout))
    }

    async fn lock_unboxed(&self, id: i64, timeout: Duration) -> Result<PgHeld, PgFailure> {
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
        // Until the lock is known to be free of this session, the
        // connection is closed rather than pooled (dropped mid-query too).
        let mut held = PgHeld {
            id,
            conn: Some(conn),
            in_flight: true,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // 0 would mean no timeout at all to Postgres.
        let millis = left.as_millis().clamp(1, u128::from(u32::MAX));
        let sql = format!("SET LOCAL lock_timeout = '{millis}ms'; SELECT pg_advisory_lock({id})");
        let Some(conn) = held.conn.as_mut() else {
            return Err(PgFailure::Unavailable);
        };
        let answer = tokio::time::timeout(left + ANSWER_GRACE, simple_query(conn, &sql)).await;
        match answer {
            Ok(Ok(_)) => {
                held.in_flight = false;
                Ok(held)
            }
            Ok(Err(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) =>
            {
                // The implicit transaction was rolled back, nothing held:
                // the connection is clean.
                held.disarm();
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

    /// Releases the lock; the connection goes back to the pool when the
    /// unlock succeeded, else it is closed.
    pub(crate) fn release(self) -> BoxFuture<'static, ()> {
        Box::pin(self.release_unboxed())
    }

    async fn release_unboxed(mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        self.in_flight = true;
        let unlocked = unlock(conn, self.id).await;
        match unlocked {
            Ok(true) => self.disarm(),
            Ok(false) => {
                tracing::warn!(
                    id = self.id,
                    "record lock: pg_advisory_unlock found no lock to release; closing the connection"
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
                let held = PgHeld {
                    id: self.id,
                    conn: Some(conn),
                    in_flight: false,
                };
                runtime.spawn(held.release());
            }
            // No runtime to unlock on: the socket is closed at once, which
            // ends the session.
            Err(_) => drop(conn.detach()),
        }
    }
}
