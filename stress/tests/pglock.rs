//! The record lock in PostgreSQL (`PgAdvisoryLock`) against a real server,
//! through real axum Routers: two lock pools stand for two processes.
//!
//! - a submission waits for another pool's lock at most the lock timeout,
//!   then 503 with `Retry-After`, its handler not run;
//! - a client gone mid-request (its future dropped) and a panicking handler
//!   release the record's lock: the next submission proceeds within the
//!   lock timeout, and no pooled connection keeps a lock;
//! - a database that is down is 503 with a message, never a 2xx;
//! - during a key rotation, processes whose rings share a key (`[K1]` and
//!   `[K2, K1]`, `[K2]` and `[K2, K1]`) serialize a record's submissions:
//!   the second waits for the first and gets 409, or 503 past the lock
//!   timeout, never a lost update; rings with no key in common refuse each
//!   other's tokens;
//! - right after the server (re)started, within the restart grace, a
//!   submission is 503 with `Retry-After`, no lock taken; after it, saved.
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
    release: Arc<Notify>,
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
/// goes away), both before writing; `1000` and more wait for `release`
/// before writing.
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
            if value >= 1000 {
                app.entered.notify_one();
                app.release.notified().await;
            }
            *app.value.lock().unwrap() = value;
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/counters/1")]).into_response()
        }
    }
}

/// The lock on `pool`, without a restart grace: these tests are about
/// exclusion, whenever the server started (the grace has a test of its own).
fn no_grace(pool: PgPool) -> PgAdvisoryLock {
    PgAdvisoryLock::new(pool).with_restart_grace(Duration::ZERO)
}

fn keys() -> KeyRing {
    KeyRing::new(1, Key::from_bytes(&[9; 32]).unwrap())
}

fn router(app: &App, lock: PgAdvisoryLock) -> Router {
    router_with(app, lock, keys())
}

fn router_with(app: &App, lock: PgAdvisoryLock, ring: KeyRing) -> Router {
    Router::new()
        .route("/counters/{id}", get(show).post(save))
        .route_layer(
            ConcurrencyGuardLayer::<Counter, _>::new(ring, app.clone())
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
    let a = router(&app, no_grace(pool_a.clone()));
    let b = router(&app, no_grace(pool_b.clone()));
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
    let a = router(&app, no_grace(pool_a.clone()));
    let b = router(&app, no_grace(pool_b.clone()));
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
    let a = router(&app, no_grace(pool.clone()));
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
    let a = router(&app, no_grace(pool));
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

fn k1() -> Key {
    Key::from_bytes(&[1; 32]).unwrap()
}

fn k2() -> Key {
    Key::from_bytes(&[2; 32]).unwrap()
}

/// The rings of a rotation's steps: the old key alone, the new key signing
/// with the old one listed, the new key alone.
fn rotation() -> [(&'static str, KeyRing); 3] {
    [
        ("[K1]", KeyRing::new(1, k1())),
        ("[K2, K1]", KeyRing::new(1, k1()).rotate(2, k2())),
        ("[K2]", KeyRing::new(2, k2())),
    ]
}

/// Two processes whose rings share a key: while the first's handler holds
/// the record, the second waits, then gets 409 (the record changed under
/// its token) and its handler does not run; while the first never
/// finishes, the second gets 503 past the lock timeout, and its lock
/// connection keeps no lock (whichever of its ids it took before the wait
/// ended).
#[tokio::test]
async fn rings_that_share_a_key_serialize_a_record() {
    let [old, rotated, new] = rotation();
    for ((a_name, a_ring), (b_name, b_ring)) in [
        (old.clone(), rotated.clone()),
        (rotated.clone(), old.clone()),
        (new.clone(), rotated.clone()),
        (rotated.clone(), new.clone()),
    ] {
        // Boxed: the case's future is large in a debug build.
        if !Box::pin(serialize_case(a_name, a_ring, b_name, b_ring)).await {
            return;
        }
    }
}

/// One case of [`rings_that_share_a_key_serialize_a_record`]; `false`
/// without `PG_URL`.
async fn serialize_case(a_name: &str, a_ring: KeyRing, b_name: &str, b_ring: KeyRing) -> bool {
    let (Some(pool_a), Some(pool_b)) = (pool(1).await, pool(1).await) else {
        return false;
    };
    let case = format!("{a_name} holds, {b_name} submits");
    let app = App::default();
    let a = router_with(&app, no_grace(pool_a.clone()), a_ring.clone());
    let b = router_with(&app, no_grace(pool_b.clone()), b_ring.clone());
    // A token both rings verify: from the ring that signs with their
    // common key.
    let token = if a_name == "[K2, K1]" && b_name == "[K1]" {
        token_of(&b).await
    } else {
        token_of(&a).await
    };

    // A saves 1000 and holds on inside its handler.
    let first = {
        let (a, token) = (a.clone(), token.clone());
        tokio::spawn(async move { send(&a, post(&token, 1000)).await })
    };
    app.entered.notified().await;
    let second = {
        let (b, token) = (b.clone(), token.clone());
        tokio::spawn(async move { send(&b, post(&token, 5)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{case}: B waits");
    app.release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(
        first.status,
        StatusCode::SEE_OTHER,
        "{case}: {}",
        first.body
    );
    let second = second.await.unwrap();
    assert_eq!(
        second.status,
        StatusCode::CONFLICT,
        "{case}: {}",
        second.body
    );
    assert_eq!(
        app.runs.load(Ordering::SeqCst),
        1,
        "{case}: B's handler did not run"
    );
    assert_eq!(*app.value.lock().unwrap(), 1000, "{case}");

    // A never finishes: B waits the lock timeout, then 503.
    let fresh = token_of(&b).await;
    let fresh = if a_name == "[K2, K1]" && b_name == "[K1]" {
        fresh
    } else {
        token_of(&a).await
    };
    let held = {
        let (a, fresh) = (a.clone(), fresh.clone());
        tokio::spawn(async move { send(&a, post(&fresh, -2)).await })
    };
    app.entered.notified().await;
    let busy = send(&b, post(&fresh, 6)).await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{case}: {}",
        busy.body
    );
    assert!(busy.retry_after.is_some(), "{case}");
    assert_eq!(
        app.runs.load(Ordering::SeqCst),
        2,
        "{case}: only A's handlers ran"
    );
    assert!(
        eventually(async || advisory_locks_held(&pool_b).await == 0).await,
        "{case}: B's connection keeps a lock after its wait ended"
    );
    held.abort();
    let _ = held.await;
    let saved = send(&b, post(&fresh, 7)).await;
    assert_eq!(
        saved.status,
        StatusCode::SEE_OTHER,
        "{case}: {}",
        saved.body
    );
    assert_eq!(*app.value.lock().unwrap(), 7, "{case}");
    assert!(eventually(async || advisory_locks_held(&pool_a).await == 0).await);
    assert!(eventually(async || advisory_locks_held(&pool_b).await == 0).await);
    true
}

/// Rings with no key in common (`[K1]` and `[K2]`) are not a step of a
/// rotation: their locks do not meet, and neither reads the other's tokens
/// (400, reload), so nothing is written through them.
#[tokio::test]
async fn rings_with_no_key_in_common_refuse_each_others_tokens() {
    let (Some(pool_a), Some(pool_b)) = (pool(1).await, pool(1).await) else {
        return;
    };
    let [(_, old), _, (_, new)] = rotation();
    let app = App::default();
    let a = router_with(&app, no_grace(pool_a), old);
    let b = router_with(&app, no_grace(pool_b), new);
    let token = token_of(&a).await;
    let refused = send(&b, post(&token, 5)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("reload"), "{}", refused.body);
    assert_eq!(app.runs.load(Ordering::SeqCst), 0);
}

/// How long ago the server began accepting sessions, as the lock counts it
/// (its start, or the end of its last crash recovery).
async fn server_up_for(pool: &PgPool) -> Duration {
    let ms: i64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM now() - GREATEST(pg_postmaster_start_time(), \
         pg_stat_get_bgwriter_stat_reset_time())) * 1000)::int8",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    Duration::from_millis(u64::try_from(ms).unwrap())
}

/// A lock asked for while the server has been up for less than the restart
/// grace (a grace just longer than its uptime stands for a restart moments
/// ago) is refused: 503, `Retry-After` the seconds left, the handler not
/// run, nothing written, none of the record's ids (a ring of two keys)
/// taken. Once the grace has passed, the same submission saves.
#[tokio::test]
async fn a_lock_within_the_restart_grace_is_refused_then_granted_after_it() {
    let Some(pool) = pool(1).await else {
        return;
    };
    let app = App::default();
    let left = Duration::from_millis(2500);
    let grace = server_up_for(&pool).await + left;
    // Keys of its own: its record's ids are not the other tests' (the
    // tests run at once on one server, and advisory locks are server-wide).
    let ring = KeyRing::new(3, Key::from_bytes(&[3; 32]).unwrap())
        .rotate(4, Key::from_bytes(&[4; 32]).unwrap());
    let a = router_with(
        &app,
        PgAdvisoryLock::new(pool.clone()).with_restart_grace(grace),
        ring,
    );
    let token = token_of(&a).await;
    let started = Instant::now();
    let refused = send(&a, post(&token, 5)).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    // RFC 9110 §10.2.3: delay-seconds; 2.5 s left, rounded up, at least 1.
    let retry: u64 = refused.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "Retry-After: {retry}");
    assert!(
        refused.body.contains("the database restarted moments ago"),
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
    assert_eq!(advisory_locks_held(&pool).await, 0, "no id taken");

    tokio::time::sleep(left.saturating_sub(started.elapsed()) + Duration::from_millis(200)).await;
    let saved = send(&a, post(&token, 5)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(*app.value.lock().unwrap(), 5);
    assert!(eventually(async || advisory_locks_held(&pool).await == 0).await);
}

/// What ends every session while a handler holds a record's lock.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `PG_RESTART_CMD`: the server restarts.
    Restart,
    /// A backend killed with SIGKILL: the server ends every session and
    /// reinitializes, without restarting (its start time stays).
    Crash,
}

/// PostgreSQL restarted (or reinitialized after a backend crashed) while a
/// handler holds a record's lock: every session ends, so the lock is freed
/// while the handler still runs. With the restart grace, a second process's
/// submission for that record is refused (503, the message,
/// `Retry-After`) and its handler does not run; once the first has written,
/// the second's stale token gets 409. Without a grace (the control,
/// `Duration::ZERO`), the second's handler runs while the first's still
/// does: both write, an update is lost, so the test can fail.
///
/// Restarts the server and kills one of its processes: it runs only where
/// `PG_RESTART_CMD` says how (the server on this machine), and alone
/// (`stress/run.sh` runs it after the other tests, one thread).
#[tokio::test]
async fn a_restart_while_a_handler_holds_the_lock_refuses_others_for_the_grace() {
    let Ok(restart) = std::env::var("PG_RESTART_CMD") else {
        eprintln!("PG_RESTART_CMD is not set: skipped (stress/run.sh sets it)");
        return;
    };
    let (Some(pool_a), Some(pool_b)) = (pool(1).await, pool(1).await) else {
        return;
    };
    let grace = Duration::from_secs(3);
    for (fault, grace) in [
        (Fault::Restart, grace),
        (Fault::Crash, grace),
        (Fault::Restart, Duration::ZERO),
    ] {
        // Up longer than the grace before the case starts.
        let up = server_up_for(&pool_a).await;
        tokio::time::sleep(grace.saturating_sub(up) + Duration::from_millis(200)).await;
        let app = App::default();
        let lock = |pool: &PgPool| PgAdvisoryLock::new(pool.clone()).with_restart_grace(grace);
        let a = router(&app, lock(&pool_a));
        let b = router(&app, lock(&pool_b));
        let token = token_of(&a).await;

        let first = {
            let (a, token) = (a.clone(), token.clone());
            tokio::spawn(async move { send(&a, post(&token, 1000)).await })
        };
        app.entered.notified().await;
        match fault {
            Fault::Restart => run(&restart).await,
            Fault::Crash => crash_a_backend().await,
        }

        let second = send(&b, post(&token, 5)).await;
        let runs_while_first_ran = app.runs.load(Ordering::SeqCst);
        app.release.notify_one();
        let first = first.await.unwrap();
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        let case = format!("{fault:?}, grace {grace:?}");
        if grace.is_zero() {
            // The control: the restart freed the first's lock; the second
            // took it and ran while the first still ran.
            assert_eq!(
                second.status,
                StatusCode::SEE_OTHER,
                "{case}: {}",
                second.body
            );
            assert_eq!(runs_while_first_ran, 2, "{case}: both handlers ran");
            continue;
        }
        assert_eq!(
            second.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{case}: {}",
            second.body
        );
        let retry: u64 = second.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=3).contains(&retry), "{case}: Retry-After: {retry}");
        assert!(
            second.body.contains("the database restarted moments ago"),
            "{case}: {}",
            second.body
        );
        assert_eq!(
            runs_while_first_ran, 1,
            "{case}: the second's handler did not run"
        );
        assert_eq!(*app.value.lock().unwrap(), 1000);
        // After the grace: the second's token is stale, 409.
        tokio::time::sleep(Duration::from_secs(retry)).await;
        let stale = send(&b, post(&token, 5)).await;
        assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
        assert_eq!(*app.value.lock().unwrap(), 1000, "nothing lost");
    }
}

/// Runs `command` with `sh -c`; it must succeed.
async fn run(command: &str) {
    let command = command.to_owned();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &command])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("the command runs")
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
}

/// Kills a backend of the server with SIGKILL (the server is on this
/// machine), then waits until the server accepts sessions again.
async fn crash_a_backend() {
    let victim = pool(1).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&victim)
        .await
        .unwrap();
    run(&format!("kill -KILL {pid}")).await;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let url = std::env::var("PG_URL").unwrap();
        if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&url).await {
            if sqlx::query("SELECT 1").execute(&pool).await.is_ok() {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not come back"
        );
    }
}
