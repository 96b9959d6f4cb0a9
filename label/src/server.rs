//! The HTTP server (axum on tokio): the page and its JSON API.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the labelling page |
//! | `GET /api/next?labeller=L` | the next pair leased to labeller L: `{pair, lease, dt, a, b, counts, undo_pair}` (a, b: frames), or `{done: true, counts, undo_pair}` |
//! | `POST /api/answer` `{pair, lease, value, labeller}` | value `left`, `right`, `equal` or `skip`; `{counts, undo_pair}` once durably recorded |
//! | `POST /api/undo` `{pair, labeller}` | withdraws L's last answer (which must be `pair`) and leases the pair back: `{pair, lease, …}` like `next` |
//! | `GET /api/status` | `{counts}` |
//! | `GET /api/test/returns` | only with `--test-hook`: `{pairs: [{pair, return_a, return_b}]}` (true returns, for tests) |
//!
//! With a token, every request must carry `?token=T` (401 otherwise). Bad JSON, a bad value or labeller name
//! give 400, an unknown pair 404, a stale lease or a replay 409; refused requests change nothing. A labeller
//! name is 1–64 characters of `A–Z a–z 0–9 _ -` (the page makes a random one per tab).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rebel_agents::preferences::PreferenceDataset;
use serde_json::{json, Value as J};

use crate::book::{ApiError, Book};
use crate::journal::Value;

/// The page (one self-contained HTML file).
pub const PAGE: &str = include_str!("page.html");

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address to bind: `127.0.0.1` by default.
    pub host: String,
    /// Port (0 = any free port; the chosen one is printed).
    pub port: u16,
    /// Token every request must carry as `?token=`; required for a non-loopback host.
    pub token: Option<String>,
    /// Serve `/api/test/returns` (true returns; for tests only).
    pub test_hook: bool,
}

struct App {
    book: Mutex<Book>,
    token: Option<String>,
    test_hook: bool,
    /// Woken by the answer that leaves no pair unanswered.
    all_answered: tokio::sync::Notify,
}

type Q = Query<HashMap<String, String>>;

fn err(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn api_err(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({"error": e.message, "answered": e.answered}))).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl App {
    fn authorise(&self, q: &HashMap<String, String>) -> Result<(), Response> {
        match &self.token {
            None => Ok(()),
            Some(t) => match q.get("token") {
                Some(given) if same(given, t) => Ok(()),
                Some(_) => Err(err(401, "wrong token: open the URL the server printed")),
                None => Err(err(401, "this server needs ?token=…: open the URL the server printed")),
            },
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // a panic while holding the lock cannot leave the book half-changed (every change is one step), so a
        // poisoned lock is still usable
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn labeller_ok(l: &str) -> bool {
    !l.is_empty() && l.len() <= 64 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, J>, Response> {
    match serde_json::from_slice::<J>(body) {
        Ok(J::Object(m)) => Ok(m),
        Ok(_) => Err(err(400, "the body must be a JSON object")),
        Err(e) => Err(err(400, format!("the body is not JSON: {e}"))),
    }
}

fn field_labeller(m: &serde_json::Map<String, J>) -> Result<String, Response> {
    match m.get("labeller").and_then(J::as_str) {
        Some(l) if labeller_ok(l) => Ok(l.to_string()),
        _ => Err(err(400, "`labeller` must be 1-64 characters of A-Z a-z 0-9 _ -")),
    }
}

fn field_pair(m: &serde_json::Map<String, J>) -> Result<usize, Response> {
    m.get("pair")
        .and_then(J::as_u64)
        .map(|p| p as usize)
        .ok_or_else(|| err(400, "`pair` must be a non-negative integer pair id"))
}

fn pair_json(book: &Book, pair: usize, lease: &str, labeller: &str) -> J {
    let p = book.pairs();
    let c = &p.pairs[pair];
    json!({
        "pair": pair, "lease": lease, "dt": p.dt, "env": p.env_id,
        "a": c.a.frames, "b": c.b.frames,
        "counts": book.counts(), "undo_pair": book.undo_pair(labeller),
    })
}

async fn page(State(app): State<Arc<App>>, Query(q): Q) -> Response {
    if let Err(r) = app.authorise(&q) {
        return r;
    }
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

async fn next(State(app): State<Arc<App>>, Query(q): Q) -> Response {
    if let Err(r) = app.authorise(&q) {
        return r;
    }
    let labeller = match q.get("labeller") {
        Some(l) if labeller_ok(l) => l.clone(),
        _ => return err(400, "`?labeller=` must be 1-64 characters of A-Z a-z 0-9 _ -"),
    };
    let mut book = app.lock();
    match book.next(&labeller, Instant::now()) {
        Some((pair, lease)) => Json(pair_json(&book, pair, &lease, &labeller)).into_response(),
        None => Json(json!({"done": true, "counts": book.counts(), "undo_pair": book.undo_pair(&labeller)})).into_response(),
    }
}

async fn answer(State(app): State<Arc<App>>, Query(q): Q, body: Bytes) -> Response {
    if let Err(r) = app.authorise(&q) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let m = parse_body(&body)?;
        let labeller = field_labeller(&m)?;
        let pair = field_pair(&m)?;
        let lease = m.get("lease").and_then(J::as_str).ok_or_else(|| err(400, "`lease` (a string) is missing"))?;
        let value = m
            .get("value")
            .and_then(J::as_str)
            .and_then(Value::parse)
            .ok_or_else(|| err(400, "`value` must be one of left, right, equal, skip"))?;
        let mut book = app.lock();
        let counts = book.answer(pair, lease, value, &labeller).map_err(api_err)?;
        if counts.left == 0 {
            app.all_answered.notify_one();
        }
        Ok(Json(json!({"counts": counts, "undo_pair": book.undo_pair(&labeller)})).into_response())
    };
    run().unwrap_or_else(|r| r)
}

async fn undo(State(app): State<Arc<App>>, Query(q): Q, body: Bytes) -> Response {
    if let Err(r) = app.authorise(&q) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let m = parse_body(&body)?;
        let labeller = field_labeller(&m)?;
        let pair = field_pair(&m)?;
        let mut book = app.lock();
        let lease = book.undo(pair, &labeller, Instant::now()).map_err(api_err)?;
        Ok(Json(pair_json(&book, pair, &lease, &labeller)).into_response())
    };
    run().unwrap_or_else(|r| r)
}

async fn status(State(app): State<Arc<App>>, Query(q): Q) -> Response {
    if let Err(r) = app.authorise(&q) {
        return r;
    }
    Json(json!({"counts": app.lock().counts()})).into_response()
}

async fn test_returns(State(app): State<Arc<App>>, Query(q): Q) -> Response {
    if let Err(r) = app.authorise(&q) {
        return r;
    }
    if !app.test_hook {
        return err(404, "the test hook is off (start the server with --test-hook)");
    }
    let book = app.lock();
    let pairs: Vec<J> = book
        .pairs()
        .pairs
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"pair": i, "return_a": c.a.true_return(), "return_b": c.b.true_return()}))
        .collect();
    Json(json!({ "pairs": pairs })).into_response()
}

async fn not_found() -> Response {
    err(404, "no such page: open / or see the API in label/src/server.rs")
}

/// Whether `host` names the loopback interface.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks the options: a token of ≥ 8 URL-safe characters if given, and one is required for a non-loopback host.
pub fn check_options(o: &ServeOptions) -> Result<()> {
    if let Some(t) = &o.token {
        if t.len() < 8 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            bail!("--token must be at least 8 characters of A-Z a-z 0-9 _ - . (it goes into the URL)");
        }
    }
    if !is_loopback(&o.host) && o.token.is_none() {
        bail!(
            "--host {} is reachable from other machines: give a --token (e.g. --token $(openssl rand -hex 16)); \
             every request must then carry ?token=",
            o.host
        );
    }
    Ok(())
}

/// The router of a session (module docs).
pub fn router(book: Book, token: Option<String>, test_hook: bool) -> Router {
    app_router(new_app(book, token, test_hook))
}

fn new_app(book: Book, token: Option<String>, test_hook: bool) -> Arc<App> {
    Arc::new(App { book: Mutex::new(book), token, test_hook, all_answered: tokio::sync::Notify::new() })
}

fn app_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/next", get(next))
        .route("/api/answer", post(answer))
        .route("/api/undo", post(undo))
        .route("/api/status", get(status))
        .route("/api/test/returns", get(test_returns))
        .fallback(not_found)
        .with_state(app)
}

/// Serves the session until Ctrl-C. Prints `listening on URL` (with the token, if any) once bound.
pub fn serve(book: Book, o: &ServeOptions) -> Result<()> {
    run(new_app(book, o.token.clone(), o.test_hook), o, false)
}

/// Serves the session until every pair is answered, then returns its dataset (`None` when every answer was
/// "can't tell"); an error when it is stopped with Ctrl-C first (the answers given are in the journal and the
/// dataset, and a session opened again on them continues). A session with nothing left returns at once.
pub fn serve_until_answered(book: Book, o: &ServeOptions) -> Result<Option<PreferenceDataset>> {
    let counts = book.counts();
    if counts.left == 0 {
        return Ok(book.dataset());
    }
    let app = new_app(book, o.token.clone(), o.test_hook);
    run(app.clone(), o, true)?;
    let book = app.lock();
    let now = book.counts();
    if now.left > 0 {
        bail!(
            "stopped with {} of {} pairs answered (they are saved): run the same command again to answer the rest",
            now.given,
            now.total
        );
    }
    Ok(book.dataset())
}

/// Runs the server until Ctrl-C or, with `until_answered`, until no pair is left.
fn run(app: Arc<App>, o: &ServeOptions, until_answered: bool) -> Result<()> {
    check_options(o)?;
    let counts = app.lock().counts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let ip: IpAddr = if o.host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            o.host.parse().with_context(|| format!("--host {} is not an IP address", o.host))?
        };
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, o.port))
            .await
            .with_context(|| format!("cannot listen on {}:{} (is the port in use? try another --port)", o.host, o.port))?;
        let addr = listener.local_addr()?;
        let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
        let q = o.token.as_ref().map(|t| format!("?token={t}")).unwrap_or_default();
        println!(
            "{} pairs, {} answered, {} left; journal and dataset are fsynced before each answer is acknowledged",
            counts.total, counts.given, counts.left
        );
        println!("listening on http://{host}:{}/{q}", addr.port());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let waiter = app.clone();
        axum::serve(listener, app_router(app))
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = waiter.all_answered.notified(), if until_answered => {}
                }
            })
            .await
            .context("the server stopped")
    })
}
