//! Check inside the handler's transaction, on a real SQLite file, with two
//! guarded routers standing for two server processes behind one load
//! balancer (in this mode the guard takes no in-process lock, so two routers
//! in one test process share nothing but the database, as two processes do).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{Request, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use concurrency_guard::{ConcurrencyGuardLayer, DeferredCheck, Guarded, Key, KeyRing, RenderState};
use http_body_util::BodyExt;
use serde::Deserialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

#[derive(Clone, Debug, RenderState)]
struct Counter {
    #[render_state(key)]
    id: i64,
    value: i64,
}

#[derive(Clone)]
struct App {
    db: SqlitePool,
    writes: Arc<AtomicUsize>,
    /// When set, the handler stops after its check, holding the write
    /// transaction, until `release` is notified.
    pause: Option<Arc<(Notify, Semaphore)>>,
}

impl FromRequestParts<App> for Counter {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, StatusCode> {
        let Path(id) = Path::<i64>::from_request_parts(parts, app)
            .await
            .map_err(|_| StatusCode::BAD_REQUEST)?;
        let value: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE id = ?")
            .bind(id)
            .fetch_optional(&app.db)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        value
            .map(|value| Counter { id, value })
            .ok_or(StatusCode::NOT_FOUND)
    }
}

async fn page(Guarded(c): Guarded<Counter>) -> Html<String> {
    Html(format!(
        r#"<form method="post"><input name="value" value="{}"></form>"#,
        c.value
    ))
}

#[derive(Deserialize)]
struct Input {
    value: i64,
}

/// Check and write in one SQLite write transaction (BEGIN IMMEDIATE).
async fn save(
    State(app): State<App>,
    Path(id): Path<i64>,
    check: DeferredCheck<Counter>,
    Form(input): Form<Input>,
) -> Response {
    let mut conn = app.db.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .unwrap();
    let value: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    if let Err(refused) = check.check(&Counter { id, value }) {
        sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
        return refused.into_response();
    }
    if let Some(pause) = &app.pause {
        pause.1.add_permits(1);
        pause.0.notified().await;
    }
    sqlx::query("UPDATE counters SET value = ? WHERE id = ?")
        .bind(input.value)
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
    app.writes.fetch_add(1, Ordering::SeqCst);
    StatusCode::SEE_OTHER.into_response()
}

async fn database() -> (SqlitePool, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "concurrency-guard-transactional-{}-{}.db",
        std::process::id(),
        rand_suffix()
    ));
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .busy_timeout(std::time::Duration::from_secs(10));
    let db = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO counters (id, value) VALUES (1, 10)")
        .execute(&db)
        .await
        .unwrap();
    (db, path)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn keys() -> KeyRing {
    KeyRing::new(1, Key::from_bytes(&[8; 32]).unwrap())
}

/// One "process": its own router and guard, sharing only the database (and
/// the key ring, as processes must).
fn process(app: App) -> Router {
    Router::new()
        .route("/counters/{id}", get(page).post(save))
        .route_layer(
            ConcurrencyGuardLayer::<Counter, _>::new(keys(), app.clone())
                .with_check_in_handler(true),
        )
        .with_state(app)
}

async fn token_of(router: &Router) -> String {
    let res = router
        .clone()
        .oneshot(Request::get("/counters/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let html =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    common::token_in(&html).unwrap()
}

fn post(token: &str, value: i64) -> Request<Body> {
    Request::post("/counters/1")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "_concurrency_token={token}&value={value}"
        )))
        .unwrap()
}

async fn stored(db: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT value FROM counters WHERE id = 1")
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_one_stale_token_one_write() {
    let (db, path) = database().await;
    let writes = Arc::new(AtomicUsize::new(0));
    let pause = Arc::new((Notify::new(), Semaphore::new(0)));
    let first = process(App {
        db: db.clone(),
        writes: writes.clone(),
        pause: Some(pause.clone()),
    });
    let second = process(App {
        db: db.clone(),
        writes: writes.clone(),
        pause: None,
    });

    // Both users rendered the form from value 10 (one page, opened twice).
    let token = token_of(&first).await;

    // The first process checks and holds its write transaction open.
    let a = tokio::spawn(first.clone().oneshot(post(&token, 11)));
    let _entered = pause.1.acquire().await.unwrap();
    // The second process gets the same stale submission meanwhile: its
    // BEGIN IMMEDIATE waits for the first's transaction.
    let b = tokio::spawn(second.clone().oneshot(post(&token, 12)));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !b.is_finished(),
        "the database serializes the second check behind the first write"
    );
    pause.0.notify_one();

    let a = a.await.unwrap().unwrap();
    let b = b.await.unwrap().unwrap();
    assert_eq!(a.status(), StatusCode::SEE_OTHER);
    assert_eq!(b.status(), StatusCode::CONFLICT);
    let page =
        String::from_utf8(b.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        page.contains(
            r#"<th scope="row">value</th><td class="now">11</td><td class="yours">12</td>"#
        ),
        "{page}"
    );
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    assert_eq!(stored(&db).await, 11);
    db.close().await;
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_current_token_passes_and_a_foreign_one_is_refused_in_the_handler() {
    let (db, path) = database().await;
    sqlx::query("INSERT INTO counters (id, value) VALUES (2, 10)")
        .execute(&db)
        .await
        .unwrap();
    let writes = Arc::new(AtomicUsize::new(0));
    let router = process(App {
        db: db.clone(),
        writes: writes.clone(),
        pause: None,
    });
    let token = token_of(&router).await;
    // Posted to another record with the same value: the handler's check
    // refuses it as the guard would (400, another record's token).
    let res = router
        .clone()
        .oneshot(
            Request::post("/counters/2")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("_concurrency_token={token}&value=99")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(body.contains("belongs to another record"), "{body}");
    // A tampered token never reaches the handler.
    let res = router
        .clone()
        .oneshot(post(&format!("{token}x"), 5))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The current token passes.
    let res = router.clone().oneshot(post(&token, 13)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(stored(&db).await, 13);
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    db.close().await;
    let _ = std::fs::remove_file(path);
}
