//! Lost-update stress over real HTTP: K concurrent clients against the
//! counter (`stress/counter.rs`), one or several processes.
//!
//! ```text
//! cargo run --bin stress -- --clients 8 --submits 10000 \
//!     --urls http://127.0.0.1:3000/counters/1,http://127.0.0.1:3001/counters/1
//! ```
//!
//! Each client loops: GET the page (read the number shown and the page's
//! token), POST number + 1 with that token. 303 or 2xx: accepted; 409: a
//! conflict (the client starts again from the GET); anything else: an error.
//! URLs are taken round-robin per request, so one client's GET and POST
//! often go to different processes. At the end it prints
//!
//! ```text
//! submits=… accepted=… unchanged=… conflicts=… errors=… errors_5xx=… initial=… final=… lost_updates=…
//! ```
//!
//! with `lost_updates = accepted − (final − initial)`. `unchanged` counts the
//! accepted writes of the value the counter already had (the counter says
//! so in `x-counter-changed: 0`): a stale submission of exactly the current
//! value overwrites nothing, so the guard lets it through, and it adds
//! nothing; `accepted` counts the others. Each of those added exactly one,
//! so any positive difference is an accepted write that overwrote another
//! one.
//!
//! Exit status: non-zero when `lost_updates > 0`, when any error happened
//! (with `--allow-5xx`, the fault run: any error but a 5xx answer, which is
//! what a request must get while the database is down), or when nothing was
//! accepted; with `--expect-lost` (the control run with
//! the guard off) non-zero when `lost_updates == 0` instead, which shows the
//! test can fail.
//!
//! Options: `--clients K` (default 8), `--submits N` POSTs in all (default
//! 2000), `--urls u1,u2` (default `http://127.0.0.1:3000/counters/1`),
//! `--time-limit SECONDS` (default 600), `--expect-lost`, `--allow-5xx`,
//! `--app counter|inventory` (default counter).
//!
//! With `--app inventory` the URLs are the main example's edit page of one
//! item (`http://127.0.0.1:3000/items/1`): each client submits the whole
//! edit form as the page shows it, with one mark of its own appended to the
//! description (see `inventory.rs`), and the "value" is the number of this
//! run's marks in the description.
//!
//! Loopback only: the HTTP/1.1 client below is written by hand over tokio's
//! `TcpStream` (keep-alive, `Content-Length` and chunked bodies) and refuses
//! any host that is not a loopback address.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

mod inventory;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The token's form field.
const TOKEN_FIELD: &str = "_concurrency_token";

/// A parsed `http://host:port/path` on loopback.
#[derive(Clone, Debug)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| format!("{url}: give the port"))?;
        let port: u16 = port.parse().map_err(|_| format!("{url}: bad port"))?;
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("{url}: the host must be a loopback IP address"))?,
        };
        if !ip.is_loopback() {
            return Err(format!("{url}: loopback only"));
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// An answer read whole.
struct Answer {
    status: u16,
    body: String,
    /// `x-counter-changed: 0` from the counter: the write set the value it
    /// already had (an accepted resubmission of the current value).
    unchanged: bool,
}

/// One kept-alive connection.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and reads its answer. `Ok((answer, keep))`: whether
    /// the connection may be used again.
    async fn exchange(
        &mut self,
        target: &Target,
        method: &str,
        body: Option<&str>,
    ) -> std::io::Result<(Answer, bool)> {
        let mut request = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\nUser-Agent: concurrency-guard-stress\r\n",
            target.path, target.host
        );
        if let Some(body) = body {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            request.push_str(body);
        } else {
            request.push_str("\r\n");
        }
        self.reader.get_mut().write_all(request.as_bytes()).await?;
        read_response(&mut self.reader).await
    }
}

fn bad(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// Reads an HTTP/1.1 response: status line, headers, then a body of
/// `Content-Length` bytes or chunked.
async fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(Answer, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = !line.starts_with("HTTP/1.0");
    let mut unchanged = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(bad("the headers did not end"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(bad(format!("bad header {header:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| bad("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep = !value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("x-counter-changed") {
            unchanged = value == "0";
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).await?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    } else if status >= 200 && status != 204 && status != 304 {
        reader.read_to_end(&mut body).await?;
        keep = false;
    }
    Ok((
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            unchanged,
        },
        keep,
    ))
}

/// The connections of one client, one per target, opened on demand.
struct Client {
    targets: Arc<Vec<Target>>,
    connections: Vec<Option<Connection>>,
}

impl Client {
    fn new(targets: Arc<Vec<Target>>) -> Client {
        let connections = targets.iter().map(|_| None).collect();
        Client {
            targets,
            connections,
        }
    }

    async fn send(
        &mut self,
        at: usize,
        method: &str,
        body: Option<&str>,
    ) -> Result<Answer, String> {
        let target = &self.targets[at];
        let fresh = self.connections[at].is_none();
        let mut conn = match self.connections[at].take() {
            Some(conn) => conn,
            None => Connection::open(target.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", target.addr))?,
        };
        let result = tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(target, method, body))
            .await
            .map_err(|_| format!("{method} {}: timed out", target.addr))
            .and_then(|r| r.map_err(|e| format!("{method} {}: {e}", target.addr)));
        match result {
            Ok((answer, keep)) => {
                if keep {
                    self.connections[at] = Some(conn);
                }
                Ok(answer)
            }
            Err(e) => {
                // A kept-alive connection the server closed before this
                // GET was read: try once more on a fresh one. (A POST is never
                // sent twice: it may have been applied.)
                if !fresh && method == "GET" {
                    let mut conn = Connection::open(target.addr)
                        .await
                        .map_err(|e| format!("connect {}: {e}", target.addr))?;
                    let (answer, keep) =
                        tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(target, method, body))
                            .await
                            .map_err(|_| format!("{method} {}: timed out", target.addr))?
                            .map_err(|e| format!("{method} {}: {e}", target.addr))?;
                    if keep {
                        self.connections[at] = Some(conn);
                    }
                    return Ok(answer);
                }
                Err(e)
            }
        }
    }
}

/// The value of the `value` input and the token of a counter page.
fn read_page(html: &str) -> Result<(i64, Option<String>), String> {
    let attr = |name: &str| -> Option<&str> {
        let marker = format!(r#"name="{name}" value=""#);
        let start = html.find(&marker)? + marker.len();
        let end = html[start..].find('"')? + start;
        Some(&html[start..end])
    };
    let value = attr("value")
        .ok_or_else(|| format!("no value input in the page: {}", snippet(html)))?
        .parse()
        .map_err(|_| format!("the value is not a number: {}", snippet(html)))?;
    Ok((value, attr(TOKEN_FIELD).map(str::to_owned)))
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s.replace('\n', " ")
}

/// Which application the clients submit to.
#[derive(Clone, Copy, PartialEq)]
enum App {
    /// `stress/counter.rs`: one number, plus one.
    Counter,
    /// The main example's edit form, with one mark more in the description.
    Inventory,
}

/// The urlencoded body of the submission a client makes from the page
/// `html`, with its token when the page has one.
fn submission(app: App, html: &str, mark: &str) -> Result<String, String> {
    match app {
        App::Counter => {
            let (value, token) = read_page(html)?;
            let mut form = form_urlencoded::Serializer::new(String::new());
            if let Some(token) = &token {
                form.append_pair(TOKEN_FIELD, token);
            }
            Ok(form.append_pair("value", &(value + 1).to_string()).finish())
        }
        App::Inventory => inventory::submission(html, TOKEN_FIELD, mark)
            .map_err(|e| format!("{e}: {}", snippet(html))),
    }
}

/// What each accepted write adds one to: the counter's value, or this
/// run's marks in the description.
fn measure(app: App, html: &str, run: &str) -> Result<i64, String> {
    match app {
        App::Counter => Ok(read_page(html)?.0),
        App::Inventory => inventory::marks(html, run),
    }
}

struct Options {
    app: App,
    clients: usize,
    submits: u64,
    urls: Vec<Target>,
    time_limit: Duration,
    expect_lost: bool,
    allow_5xx: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        app: App::Counter,
        clients: 8,
        submits: 2000,
        urls: vec![],
        time_limit: Duration::from_secs(600),
        expect_lost: false,
        allow_5xx: false,
    };
    let mut urls = "http://127.0.0.1:3000/counters/1".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--clients" => {
                o.clients = value("--clients")?
                    .parse()
                    .map_err(|_| "--clients: a number")?
            }
            "--submits" => {
                o.submits = value("--submits")?
                    .parse()
                    .map_err(|_| "--submits: a number")?
            }
            "--urls" => urls = value("--urls")?,
            "--time-limit" => {
                o.time_limit = Duration::from_secs(
                    value("--time-limit")?
                        .parse()
                        .map_err(|_| "--time-limit: seconds")?,
                )
            }
            "--app" => {
                o.app = match value("--app")?.as_str() {
                    "counter" => App::Counter,
                    "inventory" => App::Inventory,
                    other => return Err(format!("--app: counter or inventory, not {other:?}")),
                }
            }
            "--expect-lost" => o.expect_lost = true,
            "--allow-5xx" => o.allow_5xx = true,
            "-h" | "--help" => {
                return Err("usage: stress [--clients K] [--submits N] [--urls u1,u2] \
                            [--time-limit SECONDS] [--expect-lost] [--allow-5xx] \
                            [--app counter|inventory]"
                    .into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.clients == 0 || o.submits == 0 {
        return Err("--clients and --submits must be at least 1".into());
    }
    o.urls = urls
        .split(',')
        .filter(|u| !u.trim().is_empty())
        .map(|u| Target::parse(u.trim()))
        .collect::<Result<_, _>>()?;
    if o.urls.is_empty() {
        return Err("--urls: give at least one URL".into());
    }
    Ok(o)
}

#[derive(Default)]
struct Tally {
    /// POSTs sent (or reserved to be sent).
    submits: AtomicU64,
    accepted: AtomicU64,
    /// Accepted writes of the value the counter already had: a stale
    /// submission of the current value, which the guard lets through (it
    /// overwrites nothing) and which adds nothing.
    unchanged: AtomicU64,
    conflicts: AtomicU64,
    errors: AtomicU64,
    /// Of the errors, the 5xx answers.
    server_errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    /// Round-robin over the URLs, per request.
    next_url: AtomicUsize,
}

impl Tally {
    /// A 5xx answer: an error, of the kind a database outage must give.
    fn server_error(&self, e: String) {
        self.server_errors.fetch_add(1, Ordering::SeqCst);
        self.error(e);
    }

    fn error(&self, e: String) {
        let n = self.errors.fetch_add(1, Ordering::SeqCst);
        if n < 5 {
            eprintln!("error: {e}");
            self.first_errors.lock().unwrap().push(e);
        }
    }
}

/// What every client of a run shares.
struct Run {
    app: App,
    /// Unique to this run: its marks are told from earlier runs' ones.
    id: String,
    limit: u64,
    deadline: Instant,
}

async fn client(tally: Arc<Tally>, targets: Arc<Vec<Target>>, run: Arc<Run>, me: usize) {
    let n = targets.len();
    let mut http = Client::new(targets);
    let mut seq = 0u64;
    while Instant::now() < run.deadline {
        let at = tally.next_url.fetch_add(1, Ordering::Relaxed) % n;
        let page = match http.send(at, "GET", None).await {
            Ok(page) if page.status == 200 => page,
            Ok(page) if page.status >= 500 => {
                tally.server_error(format!(
                    "GET: status {}: {}",
                    page.status,
                    snippet(&page.body)
                ));
                // Not a busy loop while the database is down.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Ok(page) => {
                tally.error(format!(
                    "GET: status {}: {}",
                    page.status,
                    snippet(&page.body)
                ));
                continue;
            }
            Err(e) => {
                tally.error(e);
                continue;
            }
        };
        seq += 1;
        let mark = format!("~{}.{me}.{seq}", run.id);
        let body = match submission(run.app, &page.body, &mark) {
            Ok(body) => body,
            Err(e) => {
                tally.error(e);
                continue;
            }
        };
        // Reserve one submission of the budget.
        if tally.submits.fetch_add(1, Ordering::SeqCst) >= run.limit {
            tally.submits.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let at = tally.next_url.fetch_add(1, Ordering::Relaxed) % n;
        match http.send(at, "POST", Some(&body)).await {
            Ok(a) if (a.status == 303 || (200..300).contains(&a.status)) && a.unchanged => {
                tally.unchanged.fetch_add(1, Ordering::SeqCst);
            }
            Ok(a) if a.status == 303 || (200..300).contains(&a.status) => {
                tally.accepted.fetch_add(1, Ordering::SeqCst);
            }
            Ok(a) if a.status == 409 => {
                tally.conflicts.fetch_add(1, Ordering::SeqCst);
            }
            Ok(a) if a.status >= 500 => {
                tally.server_error(format!("POST: status {}: {}", a.status, snippet(&a.body)));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(a) => tally.error(format!("POST: status {}: {}", a.status, snippet(&a.body))),
            Err(e) => tally.error(e),
        }
    }
}

async fn current_value(targets: &Arc<Vec<Target>>, app: App, run: &str) -> Result<i64, String> {
    let mut http = Client::new(targets.clone());
    let page = http.send(0, "GET", None).await?;
    if page.status != 200 {
        return Err(format!(
            "GET: status {}: {}",
            page.status,
            snippet(&page.body)
        ));
    }
    measure(app, &page.body, run)
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let targets = Arc::new(o.urls);
    let id = {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("{}x{nanos}", std::process::id())
    };
    let initial = match current_value(&targets, o.app, &id).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cannot read the initial value: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let deadline = started + o.time_limit;
    let tally = Arc::new(Tally::default());
    let run = Arc::new(Run {
        app: o.app,
        id: id.clone(),
        limit: o.submits,
        deadline,
    });
    let tasks: Vec<_> = (0..o.clients)
        .map(|me| tokio::spawn(client(tally.clone(), targets.clone(), run.clone(), me)))
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            tally.error(format!("a client task failed: {e}"));
        }
    }
    let elapsed = started.elapsed();
    let timed_out = Instant::now() >= deadline;
    let final_value = match current_value(&targets, o.app, &id).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cannot read the final value: {e}");
            return ExitCode::FAILURE;
        }
    };
    let submits = tally.submits.load(Ordering::SeqCst);
    let accepted = tally.accepted.load(Ordering::SeqCst);
    let unchanged = tally.unchanged.load(Ordering::SeqCst);
    let conflicts = tally.conflicts.load(Ordering::SeqCst);
    let errors = tally.errors.load(Ordering::SeqCst);
    let server_errors = tally.server_errors.load(Ordering::SeqCst);
    let lost = accepted as i64 - (final_value - initial);
    eprintln!(
        "clients={} urls={} elapsed={:.1}s ({:.0} submits/s){}",
        o.clients,
        targets.len(),
        elapsed.as_secs_f64(),
        submits as f64 / elapsed.as_secs_f64().max(1e-9),
        if timed_out {
            " — stopped by the time limit"
        } else {
            ""
        }
    );
    println!(
        "submits={submits} accepted={accepted} unchanged={unchanged} conflicts={conflicts} errors={errors} errors_5xx={server_errors} initial={initial} final={final_value} lost_updates={lost}"
    );
    let mut failed = Vec::new();
    if o.allow_5xx {
        if errors > server_errors {
            failed.push(format!("{} errors other than 5xx", errors - server_errors));
        }
    } else if errors > 0 {
        failed.push(format!("{errors} errors"));
    }
    if accepted == 0 {
        failed.push("nothing was accepted".to_owned());
    }
    if submits < o.submits {
        failed.push(format!("only {submits} of {} submits were made", o.submits));
    }
    if o.expect_lost {
        if lost <= 0 {
            failed.push(
                "expected lost updates (the control run), found none: this test could not fail"
                    .to_owned(),
            );
        }
    } else if lost != 0 {
        failed.push(format!(
            "{lost} lost updates (accepted − (final − initial) must be 0)"
        ));
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: {}", failed.join("; "));
        ExitCode::FAILURE
    }
}
