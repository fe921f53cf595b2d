//! The record lock in PostgreSQL (`PgAdvisoryLock`) against a real server,
//! through real axum Routers: two lock pools stand for two processes.
//!
//! - a submission waits for another pool's lock at most the lock timeout,
//!   then 503 with `Retry-After`, its handler not run;
//! - a client gone mid-request (its future dropped) and a panicking handler
//!   release the record's lock: the next submission proceeds within the
//!   lock timeout, and no pooled connection keeps a lock;
//! - a database that is down is 503 with a message, never a 2xx.
//!
//! Needs `PG_URL=postgres://…` (`stress/run.sh` starts a Postgres and sets
//! it, run `t`); without it the tests that need a server print a notice and
//! pass.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use concurrency_guard::{
    ConcurrencyGuardLayer, Guarded, Key, KeyRing, PgAdvisoryLock, RenderState,
};
use http_body_util::BodyExt;
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Notify;
use tower::ServiceExt;

const FIELD: &str = "_concurrency_token";
const LOCK_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone, Debug, RenderState)]
#[render_state(form = "pg-counter")]
struct Counter {
    #[render_state(key)]
    id: i64,
    value: i64,
}

/// The record (in memory: the lock is what lives in Postgres), how many
/// times the write handler ran, and a signal when a handler holds on.
#[derive(Clone, Default)]
struct App {
    value: Arc<Mutex<i64>>,
    runs: Arc<AtomicUsize>,
    entered: Arc<Notify>,
}

impl FromRequestParts<App> for Counter {
    type Rejection = StatusCode;

    async fn from_request_parts(_: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        Ok(Counter {
            id: 1,
            value: *app.value.lock().unwrap(),
        })
    }
}

async fn show(Guarded(counter): Guarded<Counter>) -> Html<String> {
    Html(format!(
        "<form method=\"post\"><input name=\"value\" value=\"{}\"></form>",
        counter.value
    ))
}

#[derive(Deserialize)]
struct Input {
    value: i64,
}

/// Writes `value`; `-1` panics, `-2` holds on for ever (until its client
/// goes away), both before writing.
async fn save(State(app): State<App>, Form(input): Form<Input>) -> Response {
    app.runs.fetch_add(1, Ordering::SeqCst);
    match input.value {
        -1 => panic!("the handler panics"),
        -2 => {
            app.entered.notify_one();
            std::future::pending::<()>().await;
            unreachable!()
        }
        value => {
            *app.value.lock().unwrap() = value;
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/counters/1")]).into_response()
        }
    }
}

fn keys() -> KeyRing {
    KeyRing::new(1, Key::from_bytes(&[9; 32]).unwrap())
}

fn router(app: &App, lock: PgAdvisoryLock) -> Router {
    Router::new()
        .route("/counters/{id}", get(show).post(save))
        .route_layer(
            ConcurrencyGuardLayer::<Counter, _>::new(keys(), app.clone())
                .with_record_lock(lock)
                .with_lock_timeout(LOCK_TIMEOUT),
        )
        .with_state(app.clone())
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn token_of(router: &Router) -> String {
    let page = send(
        router,
        Request::get("/counters/1").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let marker = format!("name=\"{FIELD}\" value=\"");
    let start = page.body.find(&marker).expect("a token in the page") + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_owned()
}

fn post(token: &str, value: i64) -> Request<Body> {
    Request::post("/counters/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("{FIELD}={token}&value={value}")))
        .unwrap()
}

/// A pool to `PG_URL`, or `None` (with a notice) when it is not set.
async fn pool(max: u32) -> Option<PgPool> {
    let Ok(url) = std::env::var("PG_URL") else {
        eprintln!("PG_URL is not set: skipped (stress/run.sh runs this test with a Postgres)");
        return None;
    };
    Some(
        PgPoolOptions::new()
            .max_connections(max)
            .connect(&url)
            .await
            .expect("PG_URL connects"),
    )
}

/// Advisory locks held by the sessions of `pool`: every connection is
/// taken at once, so each is asked.
async fn advisory_locks_held(pool: &PgPool) -> i64 {
    let mut held = 0;
    let mut conns = Vec::new();
    for _ in 0..pool.size().max(1) {
        let mut conn = pool.acquire().await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        held += n;
        conns.push(conn);
    }
    held
}

/// Waits until `check` holds (the unlock of a dropped request runs in a
/// task of its own), at most 5 seconds.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_second_process_waits_for_the_lock_then_503_and_a_client_gone_releases_it() {
    let (Some(pool_a), Some(pool_b)) = (pool(1).await, pool(1).await) else {
        return;
    };
    let app = App::default();
    let a = router(&app, PgAdvisoryLock::new(pool_a.clone()));
    let b = router(&app, PgAdvisoryLock::new(pool_b.clone()));
    let token = token_of(&a).await;

    // Process A's handler holds the record's lock and does not finish.
    let held = {
        let (a, token) = (a.clone(), token.clone());
        tokio::spawn(async move { send(&a, post(&token, -2)).await })
    };
    app.entered.notified().await;

    // Process B waits the lock timeout, then 503 with Retry-After (RFC 9110
    // §15.6.4, §10.2.3); its handler does not run, nothing is written.
    let started = Instant::now();
    let busy = send(&b, post(&token, 5)).await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        busy.body
    );
    assert_eq!(busy.retry_after.as_deref(), Some("2"), "1.5 s, rounded up");
    assert!(busy.body.contains("nothing was saved"), "{}", busy.body);
    assert!(started.elapsed() >= LOCK_TIMEOUT);
    assert!(started.elapsed() < LOCK_TIMEOUT + Duration::from_secs(2));
    assert_eq!(app.runs.load(Ordering::SeqCst), 1, "only A's handler ran");
    assert_eq!(*app.value.lock().unwrap(), 0);

    // A's client goes away: its request's future is dropped.
    held.abort();
    assert!(held.await.unwrap_err().is_cancelled());

    // B's next submission proceeds, within the lock timeout.
    let started = Instant::now();
    let saved = send(&b, post(&token, 5)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(started.elapsed() < LOCK_TIMEOUT);
    assert_eq!(*app.value.lock().unwrap(), 5);

    // No connection of either pool holds a lock any more.
    assert!(eventually(async || advisory_locks_held(&pool_a).await == 0).await);
    assert_eq!(advisory_locks_held(&pool_b).await, 0);
}

#[tokio::test]
async fn a_panicking_handler_releases_the_lock() {
    let (Some(pool_a), Some(pool_b)) = (pool(1).await, pool(1).await) else {
        return;
    };
    let app = App::default();
    let a = router(&app, PgAdvisoryLock::new(pool_a.clone()));
    let b = router(&app, PgAdvisoryLock::new(pool_b.clone()));
    let token = token_of(&a).await;

    // The handler panics while A holds the lock (as hyper's connection
    // task would, the task dies and drops the request's future).
    let panicked = {
        let (a, token) = (a.clone(), token.clone());
        tokio::spawn(async move { send(&a, post(&token, -1)).await })
    };
    assert!(panicked.await.unwrap_err().is_panic());

    let started = Instant::now();
    let saved = send(&b, post(&token, 7)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(started.elapsed() < LOCK_TIMEOUT);
    assert_eq!(*app.value.lock().unwrap(), 7);

    // A's pool serves submissions again, on a connection that holds no lock.
    let fresh = token_of(&a).await;
    let saved = send(&a, post(&fresh, 8)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(eventually(async || advisory_locks_held(&pool_a).await == 0).await);
    assert_eq!(advisory_locks_held(&pool_b).await, 0);
}

#[tokio::test]
async fn a_released_lock_leaves_its_connection_pooled_and_free() {
    let Some(pool) = pool(1).await else {
        return;
    };
    let app = App::default();
    let a = router(&app, PgAdvisoryLock::new(pool.clone()));
    for value in 1..=20 {
        let t = token_of(&a).await;
        let saved = send(&a, post(&t, value)).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    }
    // A stale one: a conflict (409), its lock released too.
    let old = token_of(&a).await;
    assert_eq!(send(&a, post(&old, 21)).await.status, StatusCode::SEE_OTHER);
    let stale = send(&a, post(&old, 22)).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(*app.value.lock().unwrap(), 21);
    assert_eq!(pool.size(), 1, "one connection, reused");
    assert!(eventually(async || advisory_locks_held(&pool).await == 0).await);
}

#[tokio::test]
async fn a_database_that_is_down_is_503_and_the_handler_does_not_run() {
    // Nothing listens on port 1: no connection can be opened.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/postgres")
        .unwrap();
    let app = App::default();
    let a = router(&app, PgAdvisoryLock::new(pool));
    let t = token_of(&a).await;
    let refused = send(&a, post(&t, 3)).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(refused.retry_after.is_some());
    assert!(
        refused.body.contains("could not be locked"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("nothing was saved"),
        "{}",
        refused.body
    );
    assert_eq!(app.runs.load(Ordering::SeqCst), 0);
    assert_eq!(*app.value.lock().unwrap(), 0);
}
