//! The SQL of the record lock in PostgreSQL ([`super::postgres`]): the
//! one query that takes a record's advisory ids (or none, within the
//! restart grace), what its rows say, and the one query that releases them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{Executor, PgConnection, Row};

/// Runs `sql` (several statements) as a simple query: the rows of all.
pub(super) fn simple_query<'c>(
    conn: &'c mut PgConnection,
    sql: &'c str,
) -> BoxFuture<'c, Result<Vec<PgRow>, sqlx::Error>> {
    conn.fetch_all(sqlx::raw_sql(sql))
}

/// `pg_advisory_unlock` of every id: whether this session held them all.
pub(super) fn unlock<'c>(
    conn: &'c mut PgConnection,
    ids: &'c [i64],
) -> BoxFuture<'c, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        let row = conn
            .fetch_one(
                sqlx::query(
                    "SELECT bool_and(pg_advisory_unlock(id)) FROM unnest($1::int8[]) AS id",
                )
                .bind(ids),
            )
            .await?;
        Ok(row.try_get::<Option<bool>, _>(0)?.unwrap_or(false))
    })
}

/// The query that takes `ids` in their order, unless the server started
/// less than `grace` ago; its first row also says how many milliseconds of
/// the grace are left.
pub(super) fn lock_sql(ids: &[i64], wait: Duration, grace: Duration) -> String {
    use std::fmt::Write as _;
    // 0 would mean no timeout at all to Postgres.
    let wait = wait.as_millis().clamp(1, u128::from(u32::MAX));
    let grace = grace.as_millis().min(u128::from(u32::MAX));
    // When the server last began accepting sessions: its start, or the end
    // of its last crash recovery (a backend that crashes makes the server
    // end every session, so free every lock, and reinitialize; the
    // postmaster's start time stays, the shared statistics are reset then).
    // Two function calls, no view: as cheap as the lock itself.
    let start = "GREATEST(pg_postmaster_start_time(), pg_stat_get_bgwriter_stat_reset_time())";
    let mut sql = format!("SET LOCAL lock_timeout = '{wait}ms'");
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(
            sql,
            "; SELECT CASE WHEN {start} > now() - interval '{grace} milliseconds' THEN false \
             ELSE (SELECT true FROM pg_advisory_lock({id})) END"
        );
        if i == 0 {
            let _ = write!(
                sql,
                ", (extract(epoch FROM {start} + interval '{grace} milliseconds' - now()) * 1000)::int8"
            );
        }
    }
    sql
}

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the lock query's rows say.
pub(super) enum Granted {
    /// Every id taken.
    All,
    /// None taken: the server is in its restart grace, this many
    /// milliseconds longer.
    None { grace_left_ms: i64 },
    /// Rows of another shape: what the session holds is not known.
    Unknown,
}

pub(super) fn granted(rows: &[PgRow], ids: usize) -> Granted {
    let taken: Option<Vec<bool>> = rows.iter().map(|row| row.try_get(0).ok()).collect();
    match taken {
        Some(taken) if taken.len() == ids && taken.iter().all(|t| *t) => Granted::All,
        Some(taken) if taken.len() == ids && taken.iter().all(|t| !*t) => {
            match rows.first().map(|row| row.try_get::<i64, _>(1)) {
                Some(Ok(grace_left_ms)) => Granted::None { grace_left_ms },
                _ => Granted::Unknown,
            }
        }
        _ => Granted::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_is_taken_in_its_order_and_only_outside_the_grace() {
        let sql = lock_sql(
            &[-7, 3, 12],
            Duration::from_millis(1500),
            Duration::from_secs(30),
        );
        let statements: Vec<&str> = sql.split("; ").collect();
        assert_eq!(statements[0], "SET LOCAL lock_timeout = '1500ms'");
        assert_eq!(statements.len(), 4, "{sql}");
        for (statement, id) in statements[1..].iter().zip([-7, 3, 12]) {
            assert!(
                statement.contains("> now() - interval '30000 milliseconds' THEN false"),
                "{statement}"
            );
            assert!(
                statement.contains(&format!(
                    "ELSE (SELECT true FROM pg_advisory_lock({id})) END"
                )),
                "{statement}"
            );
        }
        // The grace left only in the first row.
        assert!(statements[1].contains("::int8"));
        assert!(!statements[2].contains("::int8"));
    }

    #[test]
    fn a_wait_of_zero_is_one_millisecond_not_no_timeout() {
        // lock_timeout = 0 means no timeout at all to PostgreSQL.
        let sql = lock_sql(&[1], Duration::ZERO, Duration::ZERO);
        assert!(sql.starts_with("SET LOCAL lock_timeout = '1ms'"), "{sql}");
    }
}
