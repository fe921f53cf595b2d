//! Tokens outlive the process that issued them, and die with their key.
//!
//! Real OS processes of the counter (`stress/counter.rs`) on one SQLite file:
//!
//! 1. the first process renders the form (its token is signed with key 1)
//!    and is killed;
//! 2. a fresh process with the same key ring accepts the submission;
//! 3. a process whose ring no longer has key 1 (`2:<other key>`) refuses a
//!    token signed with it, 400, telling the user to reload, and writes
//!    nothing;
//! 4. a process that rotated to key 2 but still verifies key 1
//!    (`2:<other>,1:<key>`) accepts it.
//!
//! Cargo builds the counter binary for this test and names it in
//! `CARGO_BIN_EXE_counter`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIELD: &str = "_concurrency_token";
const KEY_1: &str = "1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const KEY_2: &str = "2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// The counter's binary, built by cargo for this test.
fn counter_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_counter"))
}

/// A counter process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    fn start(db: &Path, keys: &str) -> Server {
        let mut child = Command::new(counter_binary())
            .env("COUNTER_DB", db)
            .env("CONCURRENCY_GUARD_KEYS", keys)
            .env("GUARD", "lock")
            .env("ADDR", "127.0.0.1:0")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the counter starts");
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = e.read_to_string(&mut text);
                text
            })
        });
        let mut server = Server {
            child,
            addr: String::new(),
            stderr,
        };
        // "Counter (…) running at http://127.0.0.1:PORT/counters/1"
        let stdout = server.child.stdout.take().expect("piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let url = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .map(str::to_owned);
        match (read, url) {
            (Ok(_), Some(url)) => {
                server.addr = url.split('/').next().unwrap_or_default().to_owned();
            }
            (read, _) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                let err = server.stderr.take().and_then(|h| h.join().ok());
                panic!("the counter did not start ({read:?}, {line:?}): {err:?}");
            }
        }
        server
    }

    /// Sends one request (HTTP/1.1, `Connection: close`) and reads the
    /// answer whole.
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\nConnection: close\r\n",
            self.addr
        );
        match body {
            Some(body) => request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => request.push_str("\r\n"),
        }
        stream.write_all(request.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        Answer::parse(&raw)
    }

    fn get(&self) -> Answer {
        self.request("GET", "/counters/1", None)
    }

    fn post(&self, token: &str, value: i64) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair(FIELD, token)
            .append_pair("value", &value.to_string())
            .finish();
        self.request("POST", "/counters/1", Some(&body))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut rest = &raw[split + 4..];
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let chunked = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let eol = rest
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .expect("a chunk size");
                let size = std::str::from_utf8(&rest[..eol]).unwrap();
                let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
                    .expect("a hex chunk size");
                rest = &rest[eol + 2..];
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&rest[..size]);
                rest = &rest[size + 2..];
            }
            body
        } else {
            rest.to_vec()
        };
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    fn attr(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    fn value(&self) -> i64 {
        self.attr("value").parse().unwrap()
    }

    fn token(&self) -> String {
        self.attr(FIELD)
    }
}

/// A temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::hash::{BuildHasher, RandomState};
        let suffix = RandomState::new().hash_one(Instant::now());
        let path = std::env::temp_dir().join(format!(
            "concurrency-guard-restart-{}-{suffix:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_token_survives_a_restart_with_the_same_ring_and_not_the_removal_of_its_key() {
    let dir = TempDir::new();
    let db = dir.0.join("counter.db");

    // 1. The first process renders the form, then dies.
    let first = Server::start(&db, KEY_1);
    let page = first.get();
    assert_eq!(page.status, 200, "{}", page.body);
    let shown = page.value();
    let token = page.token();
    drop(first);

    // 2. A fresh process with the same ring accepts the token.
    let second = Server::start(&db, KEY_1);
    let saved = second.post(&token, shown + 1);
    assert_eq!(
        saved.status, 303,
        "accepted after a restart: {}",
        saved.body
    );
    let page = second.get();
    assert_eq!(page.value(), shown + 1);
    // The same token again is stale now: a conflict, not a second write.
    let again = second.post(&token, shown + 2);
    assert_eq!(again.status, 409, "{}", again.body);
    // A token for the current value, signed with key 1.
    let token = page.token();
    drop(second);

    // 3. Key 1 removed from the ring: refused, with a request to reload.
    let rotated_out = Server::start(&db, KEY_2);
    let refused = rotated_out.post(&token, shown + 10);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("signed with key 1, which this server no longer accepts"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("reload the page to get a fresh form"),
        "tells the user to reload: {}",
        refused.body
    );
    assert!(
        refused.body.contains("Reload the form"),
        "offers a reload link: {}",
        refused.body
    );
    let page = rotated_out.get();
    assert_eq!(page.value(), shown + 1, "nothing was written");
    drop(rotated_out);

    // 4. Rotated to key 2 with key 1 still verifying: accepted.
    let rotating = Server::start(&db, &format!("{KEY_2},{KEY_1}"));
    let saved = rotating.post(&token, shown + 2);
    assert_eq!(saved.status, 303, "key 1 still verifies: {}", saved.body);
    assert_eq!(rotating.get().value(), shown + 2);
}
