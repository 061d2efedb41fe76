//! Storage of the reference upstream: SQLite (default) or PostgreSQL. Rows are keyed by
//! `(gate_id, seq)`; a second upload of a key is a duplicate and changes nothing. Each
//! gate has a watermark: the highest `seq` such that every row `1..=seq` is held.

use anyhow::{Context, Result};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One row to store: sequence number, kind (`movement` | `event`), the row as JSON text.
pub struct Row {
    pub seq: u64,
    pub kind: &'static str,
    pub json: String,
}

/// Result of storing a batch.
pub struct Stored {
    pub stored: u64,
    pub duplicates: u64,
    pub watermark: u64,
}

/// A gate as the upstream knows it.
#[derive(serde::Serialize)]
pub struct GateSummary {
    /// The gate's id (from its certificate, or the request on plain HTTP).
    pub gate_id: String,
    /// Highest upload sequence number stored with no gap below it.
    pub watermark: u64,
    /// Rows stored for the gate.
    pub records: u64,
    /// The gate's last heartbeat body.
    pub last_heartbeat: Option<serde_json::Value>,
    /// When it arrived (ms since the Unix epoch).
    pub last_heartbeat_at_ms: Option<u64>,
}

/// A row of the gates query: id, watermark, row count, last heartbeat and its time.
type GateRow = (String, i64, i64, Option<String>, Option<i64>);

/// The upstream's storage.
#[derive(Clone)]
pub enum Store {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(Arc<Vec<tokio::sync::Mutex<tokio_postgres::Client>>>),
}

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
  gate_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL, PRIMARY KEY (gate_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gates (
  gate_id TEXT PRIMARY KEY, watermark INTEGER NOT NULL DEFAULT 0,
  last_heartbeat TEXT, last_heartbeat_at_ms INTEGER);
";

const PG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
  gate_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, body JSONB NOT NULL,
  received_at_ms BIGINT NOT NULL, PRIMARY KEY (gate_id, seq));
CREATE TABLE IF NOT EXISTS gates (
  gate_id TEXT PRIMARY KEY, watermark BIGINT NOT NULL DEFAULT 0,
  last_heartbeat JSONB, last_heartbeat_at_ms BIGINT);
";

fn now_ms() -> i64 {
    gate_controller::upstream::wire::unix_ms_now() as i64
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Advances a watermark over the contiguous sequence numbers that follow it.
fn advance(mut wm: u64, following: impl IntoIterator<Item = u64>) -> u64 {
    for s in following {
        if s == wm + 1 {
            wm = s;
        } else if s > wm + 1 {
            break;
        }
    }
    wm
}

impl Store {
    /// Opens (creating if needed) a SQLite database: WAL, `synchronous=FULL`.
    pub fn open_sqlite(path: &Path) -> Result<Store> {
        let c = rusqlite::Connection::open(path)
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "FULL")?;
        c.execute_batch(SQLITE_SCHEMA)?;
        Ok(Store::Sqlite(Arc::new(Mutex::new(c))))
    }

    /// Connects to PostgreSQL with `connections` connections and creates the tables.
    pub async fn open_postgres(url: &str, connections: usize) -> Result<Store> {
        let mut clients = Vec::new();
        for n in 0..connections.max(1) {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::error!(error = %e, "PostgreSQL connection failed");
                }
            });
            if n == 0 {
                client.batch_execute(PG_SCHEMA).await?;
            }
            clients.push(tokio::sync::Mutex::new(client));
        }
        Ok(Store::Postgres(Arc::new(clients)))
    }

    fn pg_for(clients: &[tokio::sync::Mutex<tokio_postgres::Client>], gate_id: &str) -> usize {
        // One connection per gate: the batches of a gate are serialised.
        let h = gate_id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        (h % clients.len().max(1) as u64) as usize
    }

    /// Stores a batch of one gate and answers the new watermark.
    pub async fn insert(&self, gate_id: &str, rows: Vec<Row>) -> Result<Stored> {
        match self {
            Store::Sqlite(c) => {
                let c = Arc::clone(c);
                let gate = gate_id.to_string();
                tokio::task::spawn_blocking(move || {
                    let mut c = c
                        .lock()
                        .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
                    sqlite_insert(&mut c, &gate, &rows)
                })
                .await?
            }
            Store::Postgres(clients) => {
                let idx = Self::pg_for(clients, gate_id);
                let slot = clients.get(idx).context("no PostgreSQL connection")?;
                let mut client = slot.lock().await;
                pg_insert(&mut client, gate_id, rows).await
            }
        }
    }

    /// The watermark of a gate (0 for an unknown gate).
    pub async fn watermark(&self, gate_id: &str) -> Result<u64> {
        match self {
            Store::Sqlite(c) => {
                let c = c
                    .lock()
                    .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
                let wm: Option<i64> = c
                    .query_row(
                        "SELECT watermark FROM gates WHERE gate_id = ?1",
                        [gate_id],
                        |r| r.get(0),
                    )
                    .ok();
                Ok(wm.unwrap_or(0) as u64)
            }
            Store::Postgres(clients) => {
                let slot = clients.first().context("no PostgreSQL connection")?;
                let client = slot.lock().await;
                let row = client
                    .query_opt(
                        "SELECT watermark FROM gates WHERE gate_id = $1",
                        &[&gate_id],
                    )
                    .await?;
                Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0) as u64)
            }
        }
    }

    /// Every row held for a gate, in `seq` order, as JSON.
    pub async fn records(&self, gate_id: &str) -> Result<Vec<serde_json::Value>> {
        let texts: Vec<String> = match self {
            Store::Sqlite(c) => {
                let c = c
                    .lock()
                    .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
                let mut st =
                    c.prepare("SELECT body FROM records WHERE gate_id = ?1 ORDER BY seq")?;
                let rows = st.query_map([gate_id], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<_, _>>()?
            }
            Store::Postgres(clients) => {
                let slot = clients.first().context("no PostgreSQL connection")?;
                let client = slot.lock().await;
                client
                    .query(
                        "SELECT body::text FROM records WHERE gate_id = $1 ORDER BY seq",
                        &[&gate_id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect()
            }
        };
        texts
            .iter()
            .map(|t| serde_json::from_str(t).context("stored row is not JSON"))
            .collect()
    }

    /// Remembers the last heartbeat of a gate.
    pub async fn heartbeat(&self, gate_id: &str, json: String) -> Result<()> {
        match self {
            Store::Sqlite(c) => {
                let c = c
                    .lock()
                    .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
                c.execute(
                    "INSERT INTO gates (gate_id, watermark, last_heartbeat, last_heartbeat_at_ms)
                     VALUES (?1, 0, ?2, ?3) ON CONFLICT (gate_id) DO UPDATE SET
                     last_heartbeat = excluded.last_heartbeat,
                     last_heartbeat_at_ms = excluded.last_heartbeat_at_ms",
                    rusqlite::params![gate_id, json, now_ms()],
                )?;
                Ok(())
            }
            Store::Postgres(clients) => {
                let slot = clients.first().context("no PostgreSQL connection")?;
                let client = slot.lock().await;
                client
                    .execute(
                        "INSERT INTO gates (gate_id, watermark, last_heartbeat, last_heartbeat_at_ms)
                         VALUES ($1, 0, $2::text::jsonb, $3) ON CONFLICT (gate_id) DO UPDATE SET
                         last_heartbeat = excluded.last_heartbeat,
                         last_heartbeat_at_ms = excluded.last_heartbeat_at_ms",
                        &[&gate_id, &json, &now_ms()],
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// Every known gate with its watermark, row count and last heartbeat.
    pub async fn gates(&self) -> Result<Vec<GateSummary>> {
        let raw: Vec<GateRow> = match self {
            Store::Sqlite(c) => {
                let c = c
                    .lock()
                    .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
                let mut st = c.prepare(
                    "SELECT g.gate_id, g.watermark,
                       (SELECT COUNT(*) FROM records r WHERE r.gate_id = g.gate_id),
                       g.last_heartbeat, g.last_heartbeat_at_ms FROM gates g ORDER BY g.gate_id",
                )?;
                let rows = st.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                rows.collect::<Result<_, _>>()?
            }
            Store::Postgres(clients) => {
                let slot = clients.first().context("no PostgreSQL connection")?;
                let client = slot.lock().await;
                client
                    .query(
                        "SELECT g.gate_id, g.watermark,
                           (SELECT COUNT(*) FROM records r WHERE r.gate_id = g.gate_id),
                           g.last_heartbeat::text, g.last_heartbeat_at_ms FROM gates g ORDER BY g.gate_id",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect()
            }
        };
        Ok(raw
            .into_iter()
            .map(|(gate_id, wm, n, hb, at)| GateSummary {
                gate_id,
                watermark: wm as u64,
                records: n as u64,
                last_heartbeat: hb.and_then(|t| serde_json::from_str(&t).ok()),
                last_heartbeat_at_ms: at.map(|a| a as u64),
            })
            .collect())
    }
}

fn sqlite_insert(c: &mut rusqlite::Connection, gate: &str, rows: &[Row]) -> Result<Stored> {
    let tx = c.transaction()?;
    let now = now_ms();
    let mut stored = 0u64;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO records (gate_id, seq, kind, body, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?;
        for r in rows {
            stored += ins.execute(rusqlite::params![gate, i(r.seq), r.kind, r.json, now])? as u64;
        }
    }
    tx.execute(
        "INSERT INTO gates (gate_id, watermark) VALUES (?1, 0) ON CONFLICT DO NOTHING",
        [gate],
    )?;
    let wm: i64 = tx.query_row(
        "SELECT watermark FROM gates WHERE gate_id = ?1",
        [gate],
        |r| r.get(0),
    )?;
    let wm = wm as u64;
    let new_wm = {
        let mut st = tx.prepare_cached(
            "SELECT seq FROM records WHERE gate_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let seqs = st.query_map(rusqlite::params![gate, i(wm)], |r| r.get::<_, i64>(0))?;
        let mut w = wm;
        for s in seqs {
            let s = s? as u64;
            if s == w + 1 {
                w = s;
            } else {
                break;
            }
        }
        w
    };
    if new_wm != wm {
        tx.execute(
            "UPDATE gates SET watermark = ?2 WHERE gate_id = ?1",
            rusqlite::params![gate, i(new_wm)],
        )?;
    }
    tx.commit()?;
    Ok(Stored {
        stored,
        duplicates: rows.len() as u64 - stored,
        watermark: new_wm,
    })
}

async fn pg_insert(c: &mut tokio_postgres::Client, gate: &str, rows: Vec<Row>) -> Result<Stored> {
    let n = rows.len() as u64;
    let mut seqs = Vec::with_capacity(rows.len());
    let mut kinds = Vec::with_capacity(rows.len());
    let mut bodies = Vec::with_capacity(rows.len());
    for r in rows {
        seqs.push(i(r.seq));
        kinds.push(r.kind.to_string());
        bodies.push(r.json);
    }
    let tx = c.transaction().await?;
    let stored = tx
        .execute(
            "INSERT INTO records (gate_id, seq, kind, body, received_at_ms)
             SELECT $1, t.s, t.k, t.b::jsonb, $5
             FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS t(s, k, b)
             ON CONFLICT DO NOTHING",
            &[&gate, &seqs, &kinds, &bodies, &now_ms()],
        )
        .await?;
    tx.execute(
        "INSERT INTO gates (gate_id, watermark) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        &[&gate],
    )
    .await?;
    let wm: i64 = tx
        .query_one(
            "SELECT watermark FROM gates WHERE gate_id = $1 FOR UPDATE",
            &[&gate],
        )
        .await?
        .get(0);
    let following = tx
        .query(
            "SELECT seq FROM records WHERE gate_id = $1 AND seq > $2 ORDER BY seq",
            &[&gate, &wm],
        )
        .await?;
    let new_wm = advance(
        wm as u64,
        following.iter().map(|r| r.get::<_, i64>(0) as u64),
    );
    if new_wm != wm as u64 {
        tx.execute(
            "UPDATE gates SET watermark = $2 WHERE gate_id = $1",
            &[&gate, &i(new_wm)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Stored {
        stored,
        duplicates: n - stored,
        watermark: new_wm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_stops_at_the_first_gap() {
        assert_eq!(advance(0, [1, 2, 3, 5, 6]), 3);
        assert_eq!(advance(3, [5, 6]), 3);
        assert_eq!(advance(0, []), 0);
        assert_eq!(advance(4, [5, 6, 7]), 7);
    }

    fn row(seq: u64) -> Row {
        Row {
            seq,
            kind: "event",
            json: format!("{{\"seq\":{seq}}}"),
        }
    }

    #[tokio::test]
    async fn sqlite_dedup_and_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_sqlite(&dir.path().join("u.db")).unwrap();
        let a = s.insert("g1", vec![row(1), row(2), row(4)]).await.unwrap();
        assert_eq!((a.stored, a.duplicates, a.watermark), (3, 0, 2));
        let b = s.insert("g1", vec![row(2), row(3)]).await.unwrap();
        assert_eq!((b.stored, b.duplicates, b.watermark), (1, 1, 4));
        let c = s.insert("g2", vec![row(1)]).await.unwrap();
        assert_eq!(c.watermark, 1);
        assert_eq!(s.records("g1").await.unwrap().len(), 4);
        assert_eq!(s.watermark("g1").await.unwrap(), 4);
        assert_eq!(s.watermark("nobody").await.unwrap(), 0);
    }
}
