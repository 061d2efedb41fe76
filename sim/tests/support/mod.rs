//! Test support for the upstream tests: a tiny SQLite outbox (the seam the journal
//! implements), record generators, and a `gate-sim upstream` child process.
#![allow(dead_code)]

use gate_controller::record::{
    AlarmKind, BiometricSummary, GateEvent, Outcome, Reason, Record, TxnId,
};
use gate_controller::types::{Document, DocumentKind, MrzDate, PaStatus, Time, WatchlistVerdict};
use gate_controller::upstream::client::{ClientSettings, UpstreamClient};
use gate_controller::upstream::pki::{make_dev_pki, DevPki, ADMIN_ID};
use gate_controller::upstream::tls::{client_config, TlsFiles};
use gate_controller::upstream::{Outbox, OutboxError, StoredRecord};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// An outbox over one SQLite table, as the journal would keep it.
pub struct SqliteOutbox {
    conn: Mutex<rusqlite::Connection>,
}

fn oe(e: rusqlite::Error) -> OutboxError {
    OutboxError(e.to_string())
}

impl SqliteOutbox {
    pub fn open(path: &Path) -> SqliteOutbox {
        let c = rusqlite::Connection::open(path).expect("open outbox");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.pragma_update(None, "synchronous", "FULL").expect("full");
        c.busy_timeout(Duration::from_secs(5)).expect("busy");
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS upstream_ack (id INTEGER PRIMARY KEY CHECK (id = 1), watermark INTEGER NOT NULL);
             INSERT OR IGNORE INTO upstream_ack (id, watermark) VALUES (1, 0);",
        )
        .expect("schema");
        SqliteOutbox {
            conn: Mutex::new(c),
        }
    }

    /// Appends rows with the next sequence numbers; answers the last one.
    pub fn append(&self, rows: &[StoredRecord]) -> u64 {
        let mut c = self.conn.lock().unwrap();
        let tx = c.transaction().unwrap();
        let mut last = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        // Purged rows keep their numbers: continue after the acknowledged watermark too.
        let wm: i64 = tx
            .query_row("SELECT watermark FROM upstream_ack", [], |r| r.get(0))
            .unwrap();
        last = last.max(wm);
        for r in rows {
            last += 1;
            let (kind, at, body) = match r {
                StoredRecord::Movement(m) => (
                    "movement",
                    m.decided_at.0,
                    serde_json::to_string(m).unwrap(),
                ),
                StoredRecord::Event { at, event } => {
                    ("event", at.0, serde_json::to_string(event).unwrap())
                }
            };
            tx.execute(
                "INSERT INTO outbox (seq, kind, at, body) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![last, kind, at as i64, body],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        last as u64
    }

    pub fn count(&self) -> u64 {
        let c = self.conn.lock().unwrap();
        c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    }
}

impl Outbox for SqliteOutbox {
    fn unsent(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StoredRecord)>, OutboxError> {
        let c = self
            .conn
            .lock()
            .map_err(|_| OutboxError("poisoned".into()))?;
        let mut st = c
            .prepare_cached(
                "SELECT seq, kind, at, body FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(oe)?;
        let rows = st
            .query_map(rusqlite::params![after_seq as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(oe)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, kind, at, body) = row.map_err(oe)?;
            let rec = if kind == "movement" {
                StoredRecord::Movement(
                    serde_json::from_str(&body).map_err(|e| OutboxError(e.to_string()))?,
                )
            } else {
                StoredRecord::Event {
                    at: Time(at as u64),
                    event: serde_json::from_str(&body).map_err(|e| OutboxError(e.to_string()))?,
                }
            };
            out.push((seq as u64, rec));
        }
        Ok(out)
    }
    fn mark_acked(&self, up_to_seq: u64) -> Result<(), OutboxError> {
        let c = self
            .conn
            .lock()
            .map_err(|_| OutboxError("poisoned".into()))?;
        c.execute(
            "UPDATE upstream_ack SET watermark = MAX(watermark, ?1) WHERE id = 1",
            [up_to_seq as i64],
        )
        .map_err(oe)?;
        Ok(())
    }
    fn acked_watermark(&self) -> Result<u64, OutboxError> {
        let c = self
            .conn
            .lock()
            .map_err(|_| OutboxError("poisoned".into()))?;
        c.query_row("SELECT watermark FROM upstream_ack", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|w| w as u64)
        .map_err(oe)
    }
    fn purge_acked(&self, up_to_seq: u64) -> Result<u64, OutboxError> {
        let c = self
            .conn
            .lock()
            .map_err(|_| OutboxError("poisoned".into()))?;
        let n = c
            .execute(
                "DELETE FROM outbox WHERE seq <= MIN(?1, (SELECT watermark FROM upstream_ack))",
                [up_to_seq as i64],
            )
            .map_err(oe)?;
        Ok(n as u64)
    }
}

/// A movement record for transit `n` (varied outcomes, documents, scores).
pub fn movement(n: u64) -> StoredRecord {
    let outcome = match n % 10 {
        0 => Outcome::Referred,
        7 => Outcome::Aborted,
        _ => Outcome::Cleared,
    };
    let reasons = if outcome == Outcome::Referred {
        vec![Reason::BiometricMismatch]
    } else {
        vec![]
    };
    StoredRecord::Movement(Record {
        txn: TxnId(n),
        outcome,
        reasons,
        started_at: Time(1_790_000_000_000 + n * 8_000),
        decided_at: Time(1_790_000_000_000 + n * 8_000 + 6_000),
        document: Some(Document {
            kind: if n.is_multiple_of(3) {
                DocumentKind::IdCard
            } else {
                DocumentKind::Passport
            },
            issuing_state: "UTO".into(),
            document_number: format!("X{:08}", n),
            nationality: "UTO".into(),
            date_of_birth: MrzDate {
                yy: 80,
                mm: 1,
                dd: 2,
            },
            date_of_expiry: MrzDate {
                yy: 31,
                mm: 12,
                dd: 31,
            },
            passive_auth: PaStatus::Valid,
            mrz_matches_ocr: true,
            enrolled_thumbs: 2,
        }),
        watchlist: Some(WatchlistVerdict::Clear { version: 12 }),
        biometric: Some(BiometricSummary {
            score: Some(0.4 + (n % 50) as f32 / 100.0),
            threshold: 0.45,
            attempts: 1 + (n % 3) as u8,
        }),
        operator: None,
    })
}

/// An event row.
pub fn event(n: u64) -> StoredRecord {
    StoredRecord::Event {
        at: Time(1_790_000_000_000 + n * 8_000 + 7_000),
        event: GateEvent::AlarmCleared {
            alarm: AlarmKind::Tailgating,
        },
    }
}

/// `count` mixed rows starting at transit `from` (every 5th an event).
pub fn rows(from: u64, count: u64) -> Vec<StoredRecord> {
    (from..from + count)
        .map(|n| if n % 5 == 4 { event(n) } else { movement(n) })
        .collect()
}

/// A `gate-sim upstream` child process.
pub struct Upstream {
    pub child: Child,
    pub url: String,
    pub port: u16,
}

pub fn gate_sim() -> &'static str {
    env!("CARGO_BIN_EXE_gate-sim")
}

impl Upstream {
    /// Starts the server on `port` (0: any) with TLS from `pki` and SQLite at `db`.
    pub fn start(pki: &DevPki, db: &Path, port: u16) -> Upstream {
        Self::start_args(
            &[
                "--tls-dir".as_ref(),
                pki.dir.as_os_str(),
                "--db".as_ref(),
                db.as_os_str(),
            ],
            port,
        )
    }

    pub fn start_args(extra: &[&std::ffi::OsStr], port: u16) -> Upstream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new(gate_sim())
                .arg("upstream")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .args(extra)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn gate-sim upstream");
            let mut line = String::new();
            let out = child.stdout.take().expect("stdout");
            let mut r = BufReader::new(out);
            let _ = r.read_line(&mut line);
            if let Some(url) = line.trim().rsplit(' ').next().filter(|u| u.contains("://")) {
                let port = url
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("port");
                return Upstream {
                    child,
                    url: url.to_string(),
                    port,
                };
            }
            // The port may still be held by a killed predecessor: retry briefly.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "gate-sim upstream did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
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

pub fn pki(dir: &Path, gates: &[&str]) -> DevPki {
    let g: Vec<String> = gates.iter().map(|s| s.to_string()).collect();
    make_dev_pki(dir, &g, &[]).expect("pki")
}

pub fn settings(url: &str, tls: Option<TlsFiles>, timeout_ms: u64) -> ClientSettings {
    ClientSettings {
        url: url.to_string(),
        tls,
        timeout_ms,
        connect_timeout_ms: 1_000,
    }
}

pub fn client(url: &str, pki: &DevPki, gate: &str) -> UpstreamClient {
    UpstreamClient::new(&settings(url, Some(pki.gate(gate)), 5_000)).expect("client")
}

/// Admin access to the reference server.
pub struct Admin {
    http: reqwest::Client,
    url: String,
}

impl Admin {
    pub fn new(url: &str, pki: &DevPki) -> Admin {
        let cfg = client_config(&pki.gate(ADMIN_ID)).expect("admin tls");
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(cfg)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("admin client");
        Admin {
            http,
            url: url.to_string(),
        }
    }
    /// (watermark, seqs held) for a gate.
    pub async fn records(&self, gate: &str) -> (u64, Vec<u64>, Vec<serde_json::Value>) {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/v1/admin/records?gate_id={gate}", self.url))
            .send()
            .await
            .expect("admin records")
            .json()
            .await
            .expect("admin json");
        let recs = v["records"].as_array().cloned().unwrap_or_default();
        let seqs = recs
            .iter()
            .map(|r| r["seq"].as_u64().expect("seq"))
            .collect();
        (v["watermark"].as_u64().expect("watermark"), seqs, recs)
    }
    pub async fn faults(&self, mode: &str, uploads: u64) {
        let r = self
            .http
            .post(format!("{}/v1/admin/faults", self.url))
            .json(&serde_json::json!({"mode": mode, "uploads": uploads}))
            .send()
            .await
            .expect("faults");
        assert!(r.status().is_success(), "faults: {}", r.status());
    }
}

/// Polls `f` until true or the deadline; answers whether it became true.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn path(p: &Path) -> PathBuf {
    p.to_path_buf()
}
