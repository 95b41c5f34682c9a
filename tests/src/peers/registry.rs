//! A schema registry for tests: the subset of the Confluent Schema Registry REST API that
//! Avro producers and consumers use, served from memory on a free loopback port, counting the
//! requests it answers.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /schemas/ids/{id}` | `{"schema": "..."}` (with `schemaType` when not Avro) |
//! | `GET /subjects` | the subjects, in registration order |
//! | `GET /subjects/{subject}/versions` | the versions, `[1, 2, ...]` |
//! | `GET /subjects/{subject}/versions/{n}` or `.../latest` | `{"subject", "version", "id", "schema"}` |
//! | `POST /subjects/{subject}/versions` with `{"schema": "..."}` | `{"id": N}`, registering it |
//!
//! Unknown schemas and subjects get the registry's 404 error bodies (`40403`, `40401`,
//! `40402`). Ids are global and start at 1, and registering the same schema text under the same
//! subject again returns its id, as the real registry does. Tests register schemas directly
//! with [`Registry::register`]; the POST endpoint is there for producers that register their
//! own. Each connection answers one request and closes (`Connection: close`), so clients with
//! connection pools open a new one per request, which real registries also allow.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// One registered schema version.
#[derive(Debug, Clone)]
struct Version {
    id: u32,
    schema: String,
    schema_type: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// id → (schema text, `schemaType` if not Avro).
    by_id: BTreeMap<u32, (String, Option<String>)>,
    /// subject → versions, version n at index n - 1; subjects in registration order.
    subjects: Vec<(String, Vec<Version>)>,
    /// Answered requests, as `METHOD PATH`.
    requests: Vec<String>,
}

/// A running test registry, stopped when dropped.
pub struct Registry {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl Registry {
    /// Starts an empty registry on a free loopback port.
    pub fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test registry");
        let port = listener.local_addr().expect("registry address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("test-registry".to_owned())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let state = state.clone();
                        std::thread::spawn(move || serve(conn, &state));
                    }
                })
                .expect("start the test registry thread")
        };
        Registry {
            url: format!("http://127.0.0.1:{port}"),
            state,
            stop,
            port,
            thread: Some(thread),
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Registers an Avro schema under `subject` and returns its id (the existing one when the
    /// same text is already registered under that subject).
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        register(&mut self.state(), subject, schema, None)
    }

    /// Registers a schema of another type (`JSON`, `PROTOBUF`), which the registry reports in
    /// `schemaType`.
    pub fn register_typed(&self, subject: &str, schema: &str, schema_type: &str) -> u32 {
        register(
            &mut self.state(),
            subject,
            schema,
            Some(schema_type.to_owned()),
        )
    }

    /// Every request answered so far, as `METHOD PATH`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// How many requests were answered so far.
    pub fn request_count(&self) -> usize {
        self.state().requests.len()
    }

    /// How many `GET /schemas/ids/{id}` requests asked for `id`.
    pub fn id_requests(&self, id: u32) -> usize {
        let wanted = format!("GET /schemas/ids/{id}");
        self.state()
            .requests
            .iter()
            .filter(|r| **r == wanted)
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking request thread must not take the registry down with it.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(state: &mut State, subject: &str, schema: &str, schema_type: Option<String>) -> u32 {
    if let Some((_, versions)) = state.subjects.iter().find(|(s, _)| s == subject) {
        if let Some(v) = versions
            .iter()
            .find(|v| v.schema == schema && v.schema_type == schema_type)
        {
            return v.id;
        }
    }
    let id = state.by_id.keys().next_back().map_or(1, |last| last + 1);
    state
        .by_id
        .insert(id, (schema.to_owned(), schema_type.clone()));
    let version = Version {
        id,
        schema: schema.to_owned(),
        schema_type,
    };
    match state.subjects.iter_mut().find(|(s, _)| s == subject) {
        Some((_, versions)) => versions.push(version),
        None => state.subjects.push((subject.to_owned(), vec![version])),
    }
    id
}

/// Reads one request, answers it, closes.
fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(16 << 20);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let (status, answer) = {
        let mut state = lock(state);
        let path_only = path.split('?').next().unwrap_or("");
        state.requests.push(format!("{method} {path_only}"));
        route(&mut state, &method, path_only, &body)
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Unprocessable Entity",
    };
    let text = answer.to_string();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = conn.write_all(response.as_bytes());
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

fn error(status: u16, code: u32, message: &str) -> (u16, serde_json::Value) {
    (
        status,
        serde_json::json!({ "error_code": code, "message": message }),
    )
}

/// Percent-decodes a path segment (subjects such as `events-value` need none, but a client may
/// escape anything).
fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(state: &mut State, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(decode_segment)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segs.as_slice()) {
        ("GET", ["schemas", "ids", id]) => {
            match id.parse::<u32>().ok().and_then(|i| state.by_id.get(&i)) {
                Some((schema, None)) => (200, serde_json::json!({ "schema": schema })),
                Some((schema, Some(t))) => (
                    200,
                    serde_json::json!({ "schema": schema, "schemaType": t }),
                ),
                None => error(404, 40403, "Schema not found"),
            }
        }
        ("GET", ["subjects"]) => (
            200,
            serde_json::json!(state
                .subjects
                .iter()
                .map(|(s, _)| s.clone())
                .collect::<Vec<_>>()),
        ),
        ("GET", ["subjects", subject, "versions"]) => {
            match state.subjects.iter().find(|(s, _)| s == subject) {
                Some((_, versions)) => (
                    200,
                    serde_json::json!((1..=versions.len()).collect::<Vec<_>>()),
                ),
                None => error(404, 40401, "Subject not found"),
            }
        }
        ("GET", ["subjects", subject, "versions", version]) => {
            let Some((_, versions)) = state.subjects.iter().find(|(s, _)| s == subject) else {
                return error(404, 40401, "Subject not found");
            };
            let index = match *version {
                "latest" | "-1" => versions.len().checked_sub(1),
                n => n
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .filter(|i| *i < versions.len()),
            };
            match index {
                Some(i) => {
                    let v = &versions[i];
                    let mut answer = serde_json::json!({
                        "subject": subject,
                        "version": i + 1,
                        "id": v.id,
                        "schema": v.schema,
                    });
                    if let Some(t) = &v.schema_type {
                        answer["schemaType"] = serde_json::json!(t);
                    }
                    (200, answer)
                }
                None => error(404, 40402, "Version not found"),
            }
        }
        ("POST", ["subjects", subject, "versions"]) => {
            let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
            let schema = parsed
                .as_ref()
                .and_then(|v| v.get("schema"))
                .and_then(|s| s.as_str());
            let schema_type = parsed
                .as_ref()
                .and_then(|v| v.get("schemaType"))
                .and_then(|s| s.as_str())
                .filter(|t| *t != "AVRO")
                .map(str::to_owned);
            match schema {
                Some(schema) => {
                    let id = register(state, subject, schema, schema_type);
                    (200, serde_json::json!({ "id": id }))
                }
                None => error(
                    422,
                    42201,
                    "Invalid schema: the body needs a \"schema\" string",
                ),
            }
        }
        ("GET" | "POST", _) => error(404, 404, "HTTP 404 Not Found"),
        _ => error(405, 405, "HTTP 405 Method Not Allowed"),
    }
}
