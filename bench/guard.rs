//! Criterion micro-benchmarks of the guard's own work (see BENCHMARKS.md).
//!
//! `cargo bench --bench guard` runs them all; `cargo bench --bench guard -- post`
//! the ones whose name contains `post`. `cargo test` only builds this file.

#![allow(missing_docs)] // criterion_group! makes an undocumented pub fn

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use bytes::Bytes;
use concurrency_guard::__private::{
    StateDigests, embed_in_chunks, embed_in_str, scan_multipart, scan_urlencoded, sign, verify,
};
use concurrency_guard::{
    ConcurrencyGuardLayer, ConcurrencyToken, FormState, Key, KeyRing, RenderState, Tokens,
};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::{Layer as _, ServiceExt as _};

#[path = "pages.rs"]
mod pages;
use pages::FIELD;

const FORM: &str = "ItemForm";

/// The edit form of the bench page: a key, five inputs, a context value.
#[derive(Clone, RenderState)]
struct ItemForm {
    #[render_state(key)]
    id: i64,
    name: String,
    sku: String,
    price: String,
    supplier: i64,
    active: bool,
    #[render_state(skip)]
    #[allow(dead_code)] // skipped: shown nowhere the guard looks
    views: i64,
    #[render_state(context)]
    stock: i64,
}

#[derive(Clone)]
struct BenchState {
    item: Arc<ItemForm>,
}

/// The in-memory loader.
impl FromRequestParts<BenchState> for ItemForm {
    type Rejection = StatusCode;

    async fn from_request_parts(_: &mut Parts, state: &BenchState) -> Result<Self, StatusCode> {
        Ok((*state.item).clone())
    }
}

fn item() -> ItemForm {
    ItemForm {
        id: 42,
        name: "Desk lamp".into(),
        sku: "LMP-0042".into(),
        price: "39.90".into(),
        supplier: 2,
        active: true,
        views: 1234,
        stock: 17,
    }
}

fn keys() -> KeyRing {
    KeyRing::new(1, Key::from_bytes(&[7; 32]).expect("32 bytes"))
}

/// Polls a future that never waits for I/O to completion on this thread,
/// inside a Tokio runtime's context (the guard's timeouts need its clock,
/// as in every axum server) but without its scheduler.
fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    });
    let _context = RUNTIME.enter();
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// A form state of `n` inputs (plus a key and a context value).
fn state_of(n: usize) -> FormState {
    let mut s = FormState::new();
    s.key("id", &42i64);
    for i in 0..n {
        s.input(&format!("field_{i}"), &format!("value number {i}"));
    }
    s.context("stock", &17i64);
    s
}

fn tokens(c: &mut Criterion<ThreadCpu>) {
    let tokens = Tokens::new(keys());
    let state = FormState::of(&item());
    let digests = StateDigests::of(&state, FORM, &Key::from_bytes(&[7; 32]).expect("32 bytes"));
    let token = sign(&tokens, FORM, &digests).value().to_owned();
    let mut g = c.benchmark_group("token");
    g.bench_function("sign", |b| {
        b.iter(|| sign(&tokens, black_box(FORM), black_box(&digests)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| verify(&tokens, black_box(&token), black_box(FORM)).expect("valid"))
    });
    g.bench_function("issue_from_form", |b| {
        let form = item();
        b.iter(|| ConcurrencyToken::issue(tokens.keys(), black_box(&form)))
    });
    g.finish();
}

fn fingerprints(c: &mut Criterion<ThreadCpu>) {
    let key = Key::from_bytes(&[7; 32]).expect("32 bytes");
    let mut g = c.benchmark_group("fingerprint");
    for n in [10, 50] {
        let state = state_of(n);
        g.bench_with_input(BenchmarkId::new("digests", n), &state, |b, s| {
            b.iter(|| StateDigests::of(black_box(s), FORM, &key))
        });
    }
    let form = item();
    g.bench_function("render_state_item_form", |b| {
        b.iter(|| FormState::of(black_box(&form)))
    });
    g.finish();
}

fn scans(c: &mut Criterion<ThreadCpu>) {
    let tokens = Tokens::new(keys());
    let token = tokens.issue(&item()).value().to_owned();
    let body = pages::post_body(&token);
    assert!((1000..=1050).contains(&body.len()), "{}", body.len());
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("urlencoded_1k", |b| {
        b.iter(|| scan_urlencoded(black_box(body.as_bytes()), FIELD).expect("found"))
    });
    // The token last: the whole kilobyte is looked through.
    let last = body.replacen(&format!("{FIELD}={token}&"), "", 1) + &format!("&{FIELD}={token}");
    g.bench_function("urlencoded_1k_token_last", |b| {
        b.iter(|| scan_urlencoded(black_box(last.as_bytes()), FIELD).expect("found"))
    });
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{FIELD}\"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    multipart.extend(std::iter::repeat_n(0xA5u8, 64 * 1024));
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    g.throughput(Throughput::Elements(1));
    g.bench_function("multipart_first_part", |b| {
        b.iter(|| {
            scan_multipart(black_box(&multipart), boundary, FIELD, 16 * 1024)
                .expect("well formed")
                .expect("found")
        })
    });
    g.finish();
}

fn injection(c: &mut Criterion<ThreadCpu>) {
    let hidden = ConcurrencyToken::issue(&keys(), &item()).to_string();
    let mut g = c.benchmark_group("inject");
    for (name, size) in [("4k", 4096), ("100k", 100 * 1024)] {
        let page = pages::page(size);
        assert_eq!(page.len(), size);
        let out = embed_in_str(page.as_bytes(), &hidden);
        assert_eq!(out.len(), size + hidden.len(), "one form, one token");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(name, |b| {
            b.iter(|| embed_in_str(black_box(page.as_bytes()), &hidden))
        });
        // A page that streams in 1 KB frames: lol_html all the way.
        let frames: Vec<&[u8]> = page.as_bytes().chunks(1024).collect();
        g.bench_function(format!("{name}_streamed_in_1k_frames"), |b| {
            b.iter(|| embed_in_chunks(black_box(&frames), &hidden))
        });
    }
    g.finish();
}

/// The handler stand-in: reads the whole body (as `Form` does) and answers.
async fn inner_post(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .expect("in memory")
        .to_bytes();
    black_box(body);
    Ok(Response::new(Body::from("saved")))
}

fn page_response(page: Bytes) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::from(page))
        .expect("valid")
}

fn read_all(res: Response<Body>) -> Bytes {
    assert!(res.status().is_success(), "{}", res.status());
    block_on(res.into_body().collect())
        .expect("in memory")
        .to_bytes()
}

fn post_request(body: &Bytes) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/items/42")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body.clone()))
        .expect("valid")
}

fn get_request() -> Request<Body> {
    Request::get("/items/42")
        .body(Body::empty())
        .expect("valid")
}

/// The guard's own CPU: the real service around a trivial handler, minus
/// the same handler alone (and the loader, measured on its own).
fn guard_service(c: &mut Criterion<ThreadCpu>) {
    let state = BenchState {
        item: Arc::new(item()),
    };
    let layer = ConcurrencyGuardLayer::<ItemForm, _>::new(keys(), state.clone());
    let token = layer.tokens().issue(&item()).value().to_owned();
    let body = Bytes::from(pages::post_body(&token));
    let post_inner = tower::service_fn(inner_post);
    let guarded_post = layer.clone().layer(post_inner);

    let mut g = c.benchmark_group("guard");
    g.bench_function("loader", |b| {
        let (mut parts, _) = get_request().into_parts();
        b.iter(|| block_on(ItemForm::from_request_parts(&mut parts, &state)).expect("loads"))
    });
    g.bench_function("post_bare", |b| {
        b.iter(|| {
            let res = block_on(post_inner.oneshot(post_request(&body))).expect("infallible");
            assert_eq!(res.status(), StatusCode::OK);
        })
    });
    g.bench_function("post_guarded", |b| {
        b.iter(|| {
            let res =
                block_on(guarded_post.clone().oneshot(post_request(&body))).expect("infallible");
            assert_eq!(res.status(), StatusCode::OK);
        })
    });

    let page = Bytes::from(pages::page(4096));
    let get_inner = {
        let page = page.clone();
        tower::service_fn(move |_req: Request<Body>| {
            let page = page.clone();
            async move { Ok::<_, Infallible>(page_response(page)) }
        })
    };
    let embed = layer.clone().layer(get_inner.clone());
    let template = layer
        .clone()
        .with_auto_embed(false)
        .layer(get_inner.clone());
    g.bench_function("get_bare_4k", |b| {
        b.iter(|| read_all(block_on(get_inner.clone().oneshot(get_request())).expect("ok")))
    });
    g.bench_function("get_guarded_template_4k", |b| {
        b.iter(|| read_all(block_on(template.clone().oneshot(get_request())).expect("ok")))
    });
    g.bench_function("get_guarded_embed_4k", |b| {
        b.iter(|| read_all(block_on(embed.clone().oneshot(get_request())).expect("ok")))
    });

    // An open form's early-warning check: GET with the token in the header.
    let warned = layer
        .clone()
        .with_early_warning(Duration::from_secs(15))
        .layer(get_inner.clone());
    g.bench_function("early_warning_check", |b| {
        b.iter(|| {
            let req = Request::get("/items/42")
                .header("x-concurrency-token", &token)
                .body(Body::empty())
                .expect("valid");
            let res = block_on(warned.clone().oneshot(req)).expect("ok");
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
        })
    });

    // Live rebase: the check of a page whose Name someone else changed,
    // answered with what changed (JSON) and a fresh token.
    let rebased = layer
        .clone()
        .with_early_warning(Duration::from_secs(15))
        .with_live_rebase(true)
        .layer(get_inner.clone());
    let old = ItemForm {
        name: "Old lamp".into(),
        ..item()
    };
    let stale = layer.tokens().issue(&old).value().to_owned();
    g.bench_function("check_changed", |b| {
        b.iter(|| {
            let req = Request::get("/items/42")
                .header("x-concurrency-token", &stale)
                .header(header::ACCEPT, "application/json")
                .body(Body::empty())
                .expect("valid");
            let res = block_on(rebased.clone().oneshot(req)).expect("ok");
            black_box(read_all(res));
        })
    });
    g.finish();
}

/// The bench thread's CPU time, in nanoseconds: unlike wall time it does not
/// count the time other processes (builds, fuzzers) hold the core.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }
    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

/// Formats nanoseconds of CPU time as criterion formats wall time.
struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iter, unit) = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                (n as f64 / (1 << 20) as f64, "MiB/s")
            }
            Throughput::Elements(n) => (n as f64, "elem/s"),
            _ => (1.0, "iter/s"),
        };
        // values are nanoseconds per iteration
        values.iter_mut().for_each(|v| *v = per_iter * 1e9 / *v);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn config() -> Criterion<ThreadCpu> {
    Criterion::default()
        .with_measurement(ThreadCpu)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tokens, fingerprints, scans, injection, guard_service
}
criterion_main!(benches);
