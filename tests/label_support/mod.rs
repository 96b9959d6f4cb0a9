//! Helpers of the labelling-server tests: start `swimmer label serve` as a process, talk HTTP to it.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A TCP port of 127.0.0.1 that is free now and below the kernel's ephemeral range (`ip_local_port_range`), for a
/// process given a fixed `--port`: no outgoing connection and no listener on port 0 of a test running beside it can
/// take it between this check and that process's bind (which an experiment with the page repeats at every round). A
/// port from the ephemeral range was taken so once, and the experiment could not listen. Each call starts its search
/// elsewhere (this process's id and a counter), so that tests in parallel get different ports.
pub fn fixed_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (base, span) = (10000u16, low.saturating_sub(10000).max(1));
    let k = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = ((std::process::id() as u64 * 7919 + k * 97) % span as u64) as u16;
    (0..span)
        .map(|i| base + ((start as u32 + i as u32) % span as u32) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// A running `swimmer label serve`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `?token=…` or empty
    pub query: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `swimmer label serve --port 0 --out OUT ARGS…` and waits for its `listening on` line.
    pub fn start(out: &Path, args: &[&str]) -> Server {
        Self::start_limited(out, args, None)
    }

    /// [`Server::start`] with no file it writes allowed past `limit` bytes (RLIMIT_FSIZE, SIGXFSZ
    /// ignored: a write past it fails as one to a full disk does).
    pub fn start_limited(out: &Path, args: &[&str], limit: Option<u64>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swimmer"));
        cmd.args(["label", "serve", "--port", "0", "--out"]).arg(out).args(args).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if let Some(limit) = limit {
            crate::common::limit_file_size(&mut cmd, limit);
        }
        Self::spawn(cmd)
    }

    /// Starts `swimmer ARGS…` (a command that serves the page, e.g. `experiment --teacher page --port 0`) and
    /// waits for its first `listening on` line.
    pub fn start_swimmer(args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swimmer"));
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::inherit());
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("start swimmer");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Server { child, base: String::new(), query: String::new(), _stdout: stdout };
        if !s.wait_listening() {
            let status = s.child.wait().unwrap();
            panic!("the server exited ({status}) before listening");
        }
        s
    }

    /// Reads the process's stdout up to its next `listening on URL` line (a new server: an experiment's next
    /// round) and takes its address; false when stdout ends first.
    pub fn wait_listening(&mut self) -> bool {
        let t0 = Instant::now();
        let mut line = String::new();
        loop {
            line.clear();
            let n = self._stdout.read_line(&mut line).expect("read the server's stdout");
            if n == 0 {
                return false;
            }
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                // http://HOST:PORT/ or http://HOST:PORT/?token=T
                let i = url.find("://").expect("a URL") + 3;
                let j = url[i..].find('/').map_or(url.len(), |j| i + j);
                (self.base, self.query) = (url[..j].to_string(), url[j..].trim_start_matches('/').to_string());
                return true;
            }
            assert!(t0.elapsed() < Duration::from_secs(300), "the server did not start");
        }
    }

    /// The rest of the process's stdout, once it has exited, and whether it succeeded.
    pub fn finish(&mut self) -> (bool, String) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self._stdout, &mut rest).expect("read stdout");
        (self.child.wait().unwrap().success(), rest)
    }

    /// The page's URL.
    pub fn page(&self) -> String {
        format!("{}/{}", self.base, self.query)
    }

    /// `BASE/PATH` with the token (if any) and `extra` query parameters.
    pub fn url(&self, path: &str, extra: &str) -> String {
        let mut q: Vec<&str> = Vec::new();
        let tok = self.query.trim_start_matches('?');
        if !tok.is_empty() {
            q.push(tok);
        }
        if !extra.is_empty() {
            q.push(extra);
        }
        if q.is_empty() { format!("{}{path}", self.base) } else { format!("{}{path}?{}", self.base, q.join("&")) }
    }

    /// SIGKILL (`kill -9`) and reap.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9 the server");
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP request: `(status, JSON body or Null)`.
pub async fn http(method: &str, url: &str, body: Option<&str>) -> Result<(u16, Value), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// `GET` → JSON, panicking on a transport error.
pub async fn get(url: &str) -> (u16, Value) {
    http("GET", url, None).await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `POST` JSON → JSON, panicking on a transport error.
pub async fn post(url: &str, body: &Value) -> (u16, Value) {
    http("POST", url, Some(&body.to_string())).await.unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// The true returns `(a, b)` of every pair, from the server's test hook.
pub async fn true_returns(s: &Server) -> Vec<(f64, f64)> {
    let (st, v) = get(&s.url("/api/test/returns", "")).await;
    assert_eq!(st, 200, "{v}");
    v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["return_a"].as_f64().unwrap(), p["return_b"].as_f64().unwrap()))
        .collect()
}
