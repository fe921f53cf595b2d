//! A one-record counter: the stress target of `stress/run.sh` and the server
//! of `stress/tests/restart.rs`.
//!
//! ```text
//! cargo run --bin counter                      # SQLite file counter.db, GUARD=lock
//! GUARD=tx DATABASE_URL=postgres://… cargo run --bin counter
//! ```
//!
//! - `GET /counters/1` renders `<form method="post"><input name="value" value="N"></form>`;
//!   the guard embeds the token (auto-embed).
//! - `POST /counters/1` writes the submitted `value` and answers 303.
//!
//! Environment:
//!
//! - `GUARD`: `lock` (default): the guard's in-process per-record lock, the
//!   handler writes with a plain `UPDATE`; `pglock` (Postgres only): the
//!   same handler, the guard's per-record lock in Postgres
//!   ([`PgAdvisoryLock`], on a pool of its own), for several processes on
//!   one database; `tx`: the check runs inside the
//!   handler's transaction ([`with_check_in_handler`](ConcurrencyGuardLayer::with_check_in_handler))
//!   after loading the row with a row lock (`SELECT … FOR UPDATE` on
//!   Postgres, `BEGIN IMMEDIATE` on SQLite), for several processes on one
//!   database; `off`: no guard at all (the control that must lose updates).
//! - `DATABASE_URL=postgres://…` for Postgres, else the SQLite file
//!   `COUNTER_DB` (default `counter.db`). The table and row 1 (value 0) are
//!   created when missing; two processes may start at once.
//! - `CONCURRENCY_GUARD_KEYS`: the key ring (`1:<base64 32 bytes>[,…]`,
//!   [`KeyRing::from_env`]), the same for every process; else a random key.
//! - `PG_RESTART_GRACE_MS` (`GUARD=pglock`): the lock's restart grace
//!   ([`PgAdvisoryLock::with_restart_grace`]) in milliseconds; default the
//!   crate's (30 s). This handler writes in milliseconds: a few seconds do.
//! - `ADDR` (default `127.0.0.1:3000`; port 0 picks a free one). The URL is
//!   printed on start.
//! - `COUNTER_LOG`: `error`, `warn` (default), `info`, `debug`.

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use concurrency_guard::{
    ConcurrencyGuardLayer, DeferredCheck, Guarded, Key, KeyError, KeyRing, PgAdvisoryLock,
    RenderState,
};
use serde::Deserialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPoolOptions;

/// What the form shows: one number.
#[derive(Clone, Debug, RenderState)]
#[render_state(form = "counter")]
struct Counter {
    #[render_state(key)]
    id: i64,
    value: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The guard's in-process lock; plain UPDATE.
    Lock,
    /// The guard's lock in Postgres; the same plain UPDATE.
    PgLock,
    /// Check in the handler's transaction, after a row lock.
    Tx,
    /// No guard.
    Off,
}

#[derive(Clone)]
struct App {
    db: AnyPool,
    postgres: bool,
}

/// The loader: the counter named by the path, as the form shows it now.
impl FromRequestParts<App> for Counter {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let value: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE id = $1")
            .bind(id)
            .fetch_optional(&app.db)
            .await
            .map_err(internal)?;
        match value {
            Some(value) => Ok(Counter { id, value }),
            None => Err((StatusCode::NOT_FOUND, format!("no counter {id}\n")).into_response()),
        }
    }
}

fn internal(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "database error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("database error: {e}\n"),
    )
        .into_response()
}

fn page(counter: &Counter) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>Counter {id}</title></head><body>\
         <form method=\"post\"><input name=\"value\" value=\"{value}\"><button>Save</button></form>\
         </body></html>",
        id = counter.id,
        value = counter.value
    ))
}

/// GET behind the guard: render what it loaded and fingerprinted.
async fn show_guarded(Guarded(counter): Guarded<Counter>) -> Html<String> {
    page(&counter)
}

/// GET without a guard: load it ourselves.
async fn show_unguarded(counter: Counter) -> Html<String> {
    page(&counter)
}

#[derive(Deserialize)]
struct Input {
    value: i64,
}

/// POST with the in-process lock (the guard holds it while this runs), or
/// with no guard at all: a plain UPDATE.
async fn save_plain(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(input): Form<Input>,
) -> Response {
    // `<>`: a write of the value the counter already has changes no row,
    // and the answer says so (the stress program does not count it as an
    // increment).
    match sqlx::query("UPDATE counters SET value = $1 WHERE id = $2 AND value <> $1")
        .bind(input.value)
        .bind(id)
        .execute(&app.db)
        .await
    {
        Ok(done) => written(id, done.rows_affected() > 0),
        Err(e) => internal(e),
    }
}

/// 303 to the counter, saying whether the write changed its value.
fn written(id: i64, changed: bool) -> Response {
    let mut res = Redirect::to(&format!("/counters/{id}")).into_response();
    res.headers_mut().insert(
        "x-counter-changed",
        axum::http::HeaderValue::from_static(if changed { "1" } else { "0" }),
    );
    res
}

/// POST checked inside the handler's transaction: row lock, check, write,
/// commit; any other process doing the same waits for the row.
async fn save_in_transaction(
    State(app): State<App>,
    Path(id): Path<i64>,
    check: DeferredCheck<Counter>,
    Form(input): Form<Input>,
) -> Response {
    let mut conn = match app.db.acquire().await {
        Ok(conn) => conn,
        Err(e) => return internal(e),
    };
    let begin = if app.postgres {
        "BEGIN"
    } else {
        // A write transaction from the start: the read below is then under
        // the database's write lock, as FOR UPDATE is on Postgres.
        "BEGIN IMMEDIATE"
    };
    if let Err(e) = sqlx::query(begin).execute(&mut *conn).await {
        return internal(e);
    }
    match checked_write(&app, &mut conn, id, &check, input.value).await {
        Ok(Ok(changed)) => match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => written(id, changed),
            Err(e) => {
                rollback(conn).await;
                internal(e)
            }
        },
        Ok(Err(response)) => {
            rollback(conn).await;
            response
        }
        Err(e) => {
            rollback(conn).await;
            internal(e)
        }
    }
}

/// Inside the transaction: load with a row lock, check, write.
async fn checked_write(
    app: &App,
    conn: &mut PoolConnection<sqlx::Any>,
    id: i64,
    check: &DeferredCheck<Counter>,
    value: i64,
) -> Result<Result<bool, Response>, sqlx::Error> {
    let select = if app.postgres {
        "SELECT value FROM counters WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT value FROM counters WHERE id = $1"
    };
    let current: Option<i64> = sqlx::query_scalar(select)
        .bind(id)
        .fetch_optional(&mut **conn)
        .await?;
    let Some(current) = current else {
        return Ok(Err(
            (StatusCode::NOT_FOUND, format!("no counter {id}\n")).into_response()
        ));
    };
    if let Err(refused) = check.check(&Counter { id, value: current }) {
        return Ok(Err(refused.into_response()));
    }
    sqlx::query("UPDATE counters SET value = $1 WHERE id = $2")
        .bind(value)
        .bind(id)
        .execute(&mut **conn)
        .await?;
    Ok(Ok(current != value))
}

/// Rolls back; a connection that cannot is closed rather than returned to
/// the pool inside a transaction.
async fn rollback(mut conn: PoolConnection<sqlx::Any>) {
    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
        let _ = conn.detach();
    }
}

fn router(app: App, mode: Mode, keys: KeyRing, lock: Option<PgAdvisoryLock>) -> Router {
    let routes = Router::new();
    let routes = match mode {
        Mode::Lock | Mode::PgLock => {
            let guard = ConcurrencyGuardLayer::<Counter, _>::new(keys, app.clone());
            let guard = match lock {
                Some(lock) => guard.with_record_lock(lock),
                None => guard,
            };
            routes
                .route("/counters/{id}", get(show_guarded).post(save_plain))
                .route_layer(guard)
        }
        Mode::Tx => routes
            .route(
                "/counters/{id}",
                get(show_guarded).post(save_in_transaction),
            )
            .route_layer(
                ConcurrencyGuardLayer::<Counter, _>::new(keys, app.clone())
                    .with_check_in_handler(true),
            ),
        Mode::Off => routes.route("/counters/{id}", get(show_unguarded).post(save_plain)),
    };
    routes.with_state(app)
}

/// Creates the table and row 1 when missing. Two processes starting at
/// once may race on the table's creation (Postgres can fail one CREATE TABLE
/// IF NOT EXISTS; SQLite can be busy): the loser tries again.
async fn migrate(db: &AnyPool, postgres: bool) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        let result = async {
            if !postgres {
                // WAL: readers do not wait for the writer. Persistent in the file.
                sqlx::query("PRAGMA journal_mode = WAL").fetch_all(db).await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS counters (id BIGINT PRIMARY KEY, value BIGINT NOT NULL)",
            )
            .execute(db)
            .await?;
            sqlx::query("INSERT INTO counters (id, value) VALUES (1, 0) ON CONFLICT DO NOTHING")
                .execute(db)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "creating the table failed; trying again");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn keys() -> Result<KeyRing, KeyError> {
    match KeyRing::from_env("CONCURRENCY_GUARD_KEYS") {
        Ok(ring) => Ok(ring),
        Err(KeyError::MissingVar { .. }) => {
            eprintln!(
                "Note: CONCURRENCY_GUARD_KEYS is not set; using a random key (tokens are not \
                 accepted by other processes, nor after a restart)."
            );
            Ok(KeyRing::new(1, Key::generate()))
        }
        Err(e) => Err(e),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let level = match std::env::var("COUNTER_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("info") => tracing::Level::INFO,
        Ok("debug") => tracing::Level::DEBUG,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();

    let mode = match std::env::var("GUARD").as_deref() {
        Err(_) | Ok("") | Ok("lock") => Mode::Lock,
        Ok("pglock") => Mode::PgLock,
        Ok("tx") => Mode::Tx,
        Ok("off") => Mode::Off,
        Ok(other) => {
            return Err(format!("GUARD={other:?}: expected lock, pglock, tx or off").into());
        }
    };
    let keys = keys()?;

    sqlx::any::install_default_drivers();
    let (url, shown) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let shown = url.split('@').next_back().unwrap_or_default().to_owned();
            (url, format!("database {shown}"))
        }
        _ => {
            let path = std::env::var("COUNTER_DB").unwrap_or_else(|_| "counter.db".into());
            (
                format!("sqlite:{path}?mode=rwc"),
                format!("SQLite file {path}"),
            )
        }
    };
    let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
    let db = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await?;
    migrate(&db, postgres).await?;
    let lock = match mode {
        Mode::PgLock if postgres => {
            // A pool of its own: each submission holds one of its
            // connections while the handler runs on the other pool.
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect(&url)
                .await?;
            let lock = PgAdvisoryLock::new(pool);
            Some(match std::env::var("PG_RESTART_GRACE_MS") {
                Ok(ms) => lock.with_restart_grace(Duration::from_millis(
                    ms.parse()
                        .map_err(|e| format!("PG_RESTART_GRACE_MS={ms:?}: {e}"))?,
                )),
                Err(_) => lock,
            })
        }
        Mode::PgLock => return Err("GUARD=pglock needs DATABASE_URL=postgres://…".into()),
        _ => None,
    };

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    println!(
        "Counter (GUARD={}, {shown}) running at http://{local}/counters/1",
        match mode {
            Mode::Lock => "lock",
            Mode::PgLock => "pglock",
            Mode::Tx => "tx",
            Mode::Off => "off",
        }
    );
    axum::serve(listener, router(App { db, postgres }, mode, keys, lock)).await?;
    Ok(())
}
