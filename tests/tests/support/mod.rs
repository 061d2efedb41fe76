//! Process-level harness for the upstream sync tests: the real `gated` and `gate-sim`
//! binaries of this workspace, a development PKI made by `gate-sim pki dev`, the reference
//! upstream read through its admin endpoint, and the gate's journal read through the
//! same outbox the sync task uses.
#![allow(dead_code)]

use gate_controller::journal::outbox::{Backlog, JournalOutbox};
use gate_controller::record::Outcome;
use gate_controller::upstream::tls::{client_config, TlsFiles};
use gate_controller::upstream::wire::{Direction, GateInfo, WireBody, WireRecord};
use gate_controller::upstream::{Outbox, StoredRecord};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The directory holding this workspace's binaries (`target/<profile>`), with `gated`
/// and `gate-sim` in it. `cargo test --workspace` builds them before the tests run; when
/// they are missing or older than the sources (`cargo test -p echannel-tests` after an
/// edit), they are built here.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test>-<hash>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sources = ["gate-controller/src", "sim/src", "device-drivers/src"]
            .iter()
            .filter_map(|d| newest(&root.join(d)))
            .max();
        let current = ["gated", "gate-sim"].iter().all(|b| {
            let built = std::fs::metadata(dir.join(b))
                .and_then(|m| m.modified())
                .ok();
            matches!((built, sources), (Some(b), Some(s)) if b >= s)
        });
        if !current {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "gate-controller", "--bin", "gated"])
                .args(["-p", "sim", "--bin", "gate-sim"])
                .current_dir(&root);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("cargo build runs");
            assert!(st.success(), "building gated and gate-sim failed");
        }
        dir
    })
}

/// The newest modification time of a file under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut best = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).ok()
        };
        best = best.max(t);
    }
    best
}

/// A command for one of the workspace's binaries.
pub fn bin(name: &str) -> Command {
    Command::new(bin_dir().join(name))
}

/// `gate-sim pki dev --out DIR/pki --gates GATE`: the development PKI.
pub fn make_pki(dir: &Path, gate: &str) -> PathBuf {
    let out = dir.join("pki");
    let o = bin("gate-sim")
        .args(["pki", "dev", "--out"])
        .arg(&out)
        .args(["--gates", gate])
        .output()
        .expect("gate-sim pki runs");
    assert!(
        o.status.success(),
        "gate-sim pki dev failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A `gate-sim upstream` process (SQLite store, mutual TLS).
pub struct Upstream {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
}

impl Upstream {
    /// Starts the server on `port` (0: any free port), retrying briefly while a killed
    /// predecessor still holds the port.
    pub fn start(pki: &Path, db: &Path, port: u16) -> Upstream {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut child = bin("gate-sim")
                .arg("upstream")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--tls-dir")
                .arg(pki)
                .arg("--db")
                .arg(db)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn gate-sim upstream");
            let mut line = String::new();
            let mut r = BufReader::new(child.stdout.take().expect("stdout"));
            let _ = r.read_line(&mut line);
            if let Some(url) = line.trim().rsplit(' ').next().filter(|u| u.contains("://")) {
                return Upstream {
                    child,
                    url: url.to_string(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "gate-sim upstream did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the url")
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What the reference upstream holds for a gate (`GET /v1/admin/records`).
pub struct Held {
    /// The acknowledged watermark.
    pub watermark: u64,
    /// The rows, in `seq` order.
    pub records: Vec<WireRecord>,
}

/// Reads the reference upstream with the `admin` client certificate.
pub struct Admin {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl Admin {
    /// An admin client for the server at `url` trusting the PKI in `pki`.
    pub fn new(url: &str, pki: &Path) -> Admin {
        let files = TlsFiles {
            ca: pki.join("ca.pem"),
            cert: pki.join("clients/admin.pem"),
            key: pki.join("clients/admin.key"),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = {
            let _g = rt.enter();
            reqwest::Client::builder()
                .tls_backend_preconfigured(client_config(&files).expect("admin tls"))
                .timeout(Duration::from_secs(20))
                .no_proxy()
                .build()
                .expect("admin client")
        };
        Admin {
            rt,
            http,
            url: url.to_string(),
        }
    }

    /// What the server holds for `gate` (`None` while it cannot be reached).
    pub fn held(&self, gate: &str) -> Option<Held> {
        self.rt.block_on(async {
            let v: serde_json::Value = self
                .http
                .get(format!("{}/v1/admin/records?gate_id={gate}", self.url))
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?
                .json()
                .await
                .ok()?;
            let records = v["records"]
                .as_array()?
                .iter()
                .map(|r| {
                    serde_json::from_value::<WireRecord>(r.clone())
                        .unwrap_or_else(|e| panic!("upstream row is not a WireRecord: {e}: {r}"))
                })
                .collect();
            Some(Held {
                watermark: v["watermark"].as_u64()?,
                records,
            })
        })
    }

    /// The server's summary of `gate` (`GET /v1/admin/gates`), if it answers.
    pub fn gate_summary(&self, gate: &str) -> Option<serde_json::Value> {
        self.rt.block_on(async {
            let v: serde_json::Value = self
                .http
                .get(format!("{}/v1/admin/gates", self.url))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["gates"]
                .as_array()?
                .iter()
                .find(|g| g["gate_id"] == gate)
                .cloned()
        })
    }

    /// The server's watermark for `gate` (0 while it cannot be reached).
    pub fn watermark(&self, gate: &str) -> u64 {
        self.rt.block_on(async {
            let v: Option<serde_json::Value> = async {
                self.http
                    .get(format!("{}/v1/admin/gates", self.url))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()
            }
            .await;
            v.and_then(|v| {
                v["gates"]
                    .as_array()?
                    .iter()
                    .find(|g| g["gate_id"] == gate)
                    .and_then(|g| g["watermark"].as_u64())
            })
            .unwrap_or(0)
        })
    }
}

/// A running `gated` with its stderr (JSON log lines) collected on a channel.
pub struct Gated {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Gated {
    /// Starts `gated --config CONFIG`.
    pub fn start(config: &Path) -> Gated {
        let mut child = bin("gated")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gated starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Gated { child, lines }
    }

    /// Waits for a log line containing `needle`; panics with the lines seen otherwise.
    pub fn wait_line(&mut self, needle: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let tail: Vec<_> = seen.iter().rev().take(20).rev().collect();
        panic!("no gated log line with {needle:?} within {within:?}; last lines: {tail:#?}");
    }

    /// Log lines received so far.
    pub fn drain_lines(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// `kill -9`, then reaps the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Writes a gated configuration with simulated devices and an `[upstream]` section.
pub struct GateSetup {
    pub dir: PathBuf,
    pub gate: String,
    pub pki: PathBuf,
    pub url: String,
}

impl GateSetup {
    /// The journal file.
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.sqlite")
    }

    /// Writes `NAME.toml`: `sim` and `upstream` hold extra keys of those tables.
    pub fn config(&self, name: &str, sim: &str, upstream: &str) -> PathBuf {
        let p = self.dir.join(format!("{name}.toml"));
        let text = format!(
            r#"
[gate]
id = "{gate}"
lane = "visitor"
direction = "arrival"
drain_timeout_ms = 20000

[timeouts]
notice_ms = 200

[journal]
path = "journal.sqlite"

[sim]
{sim}

[sim.mix]
normal = 90
wrong_finger = 4
expired_document = 3
slow = 3

[upstream]
url = "{url}"
ca = "{pki}/ca.pem"
cert = "{pki}/clients/{gate}.pem"
key = "{pki}/clients/{gate}.key"
keep_all_acked = true
connect_timeout_ms = 500
timeout_ms = 3000
{upstream}

[log]
level = "info"
format = "json"
"#,
            gate = self.gate,
            url = self.url,
            pki = self.pki.display(),
        );
        std::fs::write(&p, text).expect("write config");
        p
    }

    /// The journal's upload state (last upload seq, acknowledged watermark).
    pub fn backlog(&self) -> Backlog {
        JournalOutbox::open(&self.journal())
            .map(|o| o.backlog().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every journal row in upload order, as the gate uploads it.
    pub fn journal_rows(&self) -> Vec<WireRecord> {
        let ob = JournalOutbox::open(&self.journal()).expect("journal outbox");
        let info = GateInfo {
            gate_id: self.gate.clone(),
            lane: self.gate.clone(),
            direction: Direction::Arrival,
        };
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let rows = ob.unsent(after, 10_000).expect("journal rows");
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            out.extend(
                rows.iter()
                    .map(|(seq, r): &(u64, StoredRecord)| WireRecord::from_stored(&info, *seq, r)),
            );
            after = last;
        }
        out
    }
}

/// Movement records among `rows`: (transaction id, outcome).
pub fn movements(rows: &[WireRecord]) -> Vec<(String, Outcome)> {
    rows.iter()
        .filter_map(|r| match &r.body {
            WireBody::Movement(m) => Some((m.transaction_id.clone(), m.outcome)),
            WireBody::Event(_) => None,
        })
        .collect()
}

/// The acceptance check: the upstream holds exactly the journal — every row once, under
/// a gap-free sequence 1..=N, equal field by field, every transit once — and its
/// watermark is N. Answers (rows, movement records, cleared transits).
pub fn assert_upstream_equals_journal(setup: &GateSetup, admin: &Admin) -> (usize, usize, usize) {
    let local = setup.journal_rows();
    let held = admin.held(&setup.gate).expect("the upstream answers");
    let n = local.len() as u64;
    assert!(n > 0, "the journal is empty");
    let seqs: Vec<u64> = held.records.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs.len() as u64,
        n,
        "upstream holds {} rows, the journal {n}",
        seqs.len()
    );
    assert!(
        seqs.iter().copied().eq(1..=n),
        "upstream sequence is not 1..={n} without gaps or doubles"
    );
    let local_seqs: Vec<u64> = local.iter().map(|r| r.seq).collect();
    assert!(
        local_seqs.iter().copied().eq(1..=n),
        "journal upload sequence is not gap-free"
    );
    for (l, u) in local.iter().zip(&held.records) {
        assert_eq!(l, u, "upstream row {} differs from the journal", l.seq);
    }
    assert_eq!(held.watermark, n, "upstream watermark");
    let moves = movements(&held.records);
    let txns: BTreeSet<&String> = moves.iter().map(|m| &m.0).collect();
    assert_eq!(txns.len(), moves.len(), "a transit is held twice upstream");
    let cleared = moves.iter().filter(|m| m.1 == Outcome::Cleared).count();
    assert_eq!(
        cleared,
        movements(&local)
            .iter()
            .filter(|m| m.1 == Outcome::Cleared)
            .count()
    );
    let b = setup.backlog();
    assert_eq!((b.last_useq, b.acked), (n, n), "journal upload state");
    (local.len(), moves.len(), cleared)
}

/// Runs `gated` with no new travellers until the upstream holds everything the journal
/// has (stable across two looks), then kills it. Answers how long the drain took.
pub fn drain(setup: &GateSetup, admin: &Admin, within: Duration) -> Duration {
    let t0 = Instant::now();
    // A traveller every 10^12 ms of simulated time: none arrive.
    let cfg = setup.config(
        "drain",
        "seed = 99\nspeed = 1.0\nmean_arrival_gap_ms = 1000000000000",
        "idle_poll_ms = 50\nbackoff_initial_ms = 50\nbackoff_max_ms = 500",
    );
    let mut g = Gated::start(&cfg);
    g.wait_line("gate running", Duration::from_secs(20));
    let mut stable = 0;
    while stable < 2 {
        assert!(
            t0.elapsed() < within,
            "the backlog did not drain within {within:?}: journal {:?}, upstream watermark {}",
            setup.backlog(),
            admin.watermark(&setup.gate)
        );
        std::thread::sleep(Duration::from_millis(200));
        let b = setup.backlog();
        let w = admin.watermark(&setup.gate);
        if b.last_useq > 0 && w == b.last_useq && b.acked == w {
            stable += 1;
        } else {
            stable = 0;
        }
    }
    g.kill9();
    t0.elapsed()
}

/// splitmix64: a seeded source of kill moments (no rand dependency).
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

// ---- The gate's HTTP API, as the process tests read it --------------------------------

#[path = "../../../gate-controller/tests/common/port.rs"]
mod port;
#[allow(unused_imports)] // used by some test binaries, not all
pub use port::free_port;

/// The local viewer token `gated` prints at start-up (reading its log lines from `rx`,
/// each within `within`).
pub fn viewer_token(rx: &mpsc::Receiver<String>, within: Duration) -> String {
    loop {
        let l = rx
            .recv_timeout(within)
            .expect("gated prints its local viewer token");
        if l.contains("local-viewer (viewer)") {
            return l.rsplit(' ').next().unwrap_or("").to_owned();
        }
    }
}

/// One HTTP/1.1 request over a fresh connection: (status code, body).
pub fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {out}"));
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// `GET /v1/status`, which must answer 200 with JSON.
pub fn status(port: u16, token: &str) -> serde_json::Value {
    let (code, body) = http(port, "GET", "/v1/status", token, "");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("status JSON: {e}: {body}"))
}

/// Polls the status until `want` holds: the status and how long it took. Panics with
/// the last status, naming `what`, after `within`.
pub fn wait_status_timed(
    port: u16,
    token: &str,
    within: Duration,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> (serde_json::Value, Duration) {
    let t0 = Instant::now();
    loop {
        let v = status(port, token);
        if want(&v) {
            return (v, t0.elapsed());
        }
        assert!(t0.elapsed() < within, "no {what} within {within:?}: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_status_timed`] without the time.
pub fn wait_status(
    port: u16,
    token: &str,
    within: Duration,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_status_timed(port, token, within, what, want).0
}

/// Whether the status lists alarm `kind` as active.
pub fn has_alarm(v: &serde_json::Value, kind: &str) -> bool {
    v["alarms"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == kind))
}

/// The status entry of the lane I/O device (null when absent).
pub fn lane_io(v: &serde_json::Value) -> serde_json::Value {
    v["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device"] == "lane_io").cloned())
        .unwrap_or_default()
}

/// A `gated` process, killed when dropped.
pub struct GatedProcess(pub Child);

impl Drop for GatedProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gated --config CONFIG` in `cwd`: the process, and its stderr lines as they come.
pub fn spawn_gated(config: &Path, cwd: &Path) -> (GatedProcess, mpsc::Receiver<String>) {
    let mut child = bin("gated")
        .arg("--config")
        .arg(config)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gated starts");
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            // Echoed so that a failing test shows why gated stopped (captured otherwise).
            eprintln!("gated: {l}");
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (GatedProcess(child), rx)
}
