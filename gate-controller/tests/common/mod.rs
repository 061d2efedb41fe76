//! Helpers for API tests: a simulated gate served on 127.0.0.1:0 and a tiny HTTP/1.1
//! client over raw TCP (so the tests see exactly what goes over the wire).
#![allow(dead_code)]

pub mod browser;
pub mod port;
#[allow(unused_imports)] // used by some test binaries, not all
pub use port::free_port;

use gate_controller::api::sim::SimulatedGate;
use gate_controller::api::{self, ApiConfig};
use gate_controller::record::Role;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub const VIEWER: &str = "viewer-token-1";
pub const OPERATOR: &str = "operator-token-1";
pub const SUPERVISOR: &str = "supervisor-token-1";

/// The test users: vera (viewer), olga (operator), sam (supervisor).
pub fn config() -> ApiConfig {
    ApiConfig::new("127.0.0.1:0".parse().expect("addr"))
        .with_token("vera", Role::Viewer, VIEWER)
        .with_token("olga", Role::Operator, OPERATOR)
        .with_token("sam", Role::Supervisor, SUPERVISOR)
}

/// A simulated gate with its API on a real loopback socket.
pub struct TestGate {
    pub sim: SimulatedGate,
    pub addr: SocketAddr,
    pub server: JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestGate {
    pub async fn start(id: &str, cfg: &ApiConfig) -> TestGate {
        Self::start_on(id, cfg, "127.0.0.1:0".parse().expect("addr")).await
    }

    /// Starts on a given address (to bring a stopped gate back on its port).
    pub async fn start_on(id: &str, cfg: &ApiConfig, addr: SocketAddr) -> TestGate {
        let sim = SimulatedGate::start(id);
        let app = api::router(sim.link(), cfg);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = api::serve(listener, app, async {
                let _ = rx.await;
            })
            .await;
        });
        TestGate {
            sim,
            addr,
            server,
            shutdown: Some(tx),
        }
    }

    /// Stops accepting connections and ends the gate's streams (the gate goes offline).
    /// Like `gated` at shutdown: graceful server shutdown, then the gate's handle is
    /// dropped, which ends the event streams.
    pub async fn stop(mut self) -> SocketAddr {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let addr = self.addr;
        let server = std::mem::replace(&mut self.server, tokio::spawn(async {}));
        drop(self);
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestGate {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

async fn read_head(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).await.expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// One request with `Connection: close`; `auth` is a bearer token.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = auth {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes).await.expect("write");
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r).await;
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut raw = Vec::new();
    if chunked {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.expect("chunk size");
            let n = usize::from_str_radix(line.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).await.expect("chunk");
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut raw).await.expect("body");
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
    }
}

pub async fn get(addr: SocketAddr, path: &str, auth: Option<&str>) -> Resp {
    request(addr, "GET", path, auth, None).await
}

pub async fn post(addr: SocketAddr, path: &str, auth: Option<&str>, body: &str) -> Resp {
    request(addr, "POST", path, auth, Some(body.as_bytes())).await
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub id: Option<u64>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("SSE data is JSON")
    }
}

/// A live SSE connection.
pub struct SseStream {
    r: BufReader<TcpStream>,
    pub status: u16,
    buf: String,
    remaining: usize,
}

impl SseStream {
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        auth: Option<&str>,
        last_id: Option<u64>,
    ) -> SseStream {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        if let Some(t) = auth {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(id) = last_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut r = BufReader::new(s);
        let (status, _) = read_head(&mut r).await;
        SseStream {
            r,
            status,
            buf: String::new(),
            remaining: 0,
        }
    }

    async fn read_chunk(&mut self) -> Option<()> {
        if self.remaining == 0 {
            let mut line = String::new();
            if self.r.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            if line.trim().is_empty() {
                line.clear();
                if self.r.read_line(&mut line).await.ok()? == 0 {
                    return None;
                }
            }
            self.remaining = usize::from_str_radix(line.trim(), 16).ok()?;
            if self.remaining == 0 {
                return None;
            }
        }
        let mut chunk = vec![0u8; self.remaining];
        let n = self.r.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        self.remaining -= n;
        self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        Some(())
    }

    /// The next event (comments skipped), or `None` on end of stream or after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Sse> {
        tokio::time::timeout(wait, async {
            loop {
                while let Some(i) = self.buf.find("\n\n") {
                    let frame: String = self.buf.drain(..i + 2).collect();
                    let mut ev = Sse {
                        event: "message".into(),
                        id: None,
                        data: String::new(),
                    };
                    let mut any = false;
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            ev.event = v.trim().into();
                            any = true;
                        } else if let Some(v) = line.strip_prefix("data:") {
                            if !ev.data.is_empty() {
                                ev.data.push('\n');
                            }
                            ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                            any = true;
                        } else if let Some(v) = line.strip_prefix("id:") {
                            ev.id = v.trim().parse().ok();
                        }
                    }
                    if any {
                        return Some(ev);
                    }
                }
                self.read_chunk().await?;
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self.next(left).await?;
            if ev.event == name {
                return Some(ev);
            }
        }
    }
}
