//! The durable journal: movement records and the events log in SQLite.
//!
//! SQLite in WAL mode with `synchronous=FULL`: [`Journal::append_record`] returns only
//! once the record is on stable storage, so the shell can tell the state machine
//! `Journaled` and the exit may open (invariant 1 of DESIGN.md). Each record gets the
//! gate's next sequence number (`seq`, monotonic, never reused, the upstream's
//! idempotency key with the gate id) and keeps its transaction id (`txn`, unique).
//!
//! Events (step changes, alarms, operator commands, device faults) go to their own table.
//! They are queued in memory and written with the next record, or by
//! [`Journal::flush_events`], in one transaction, so the decision path pays for one
//! `fsync` only.
//!
//! Every record and every event also gets the next *upload sequence number* (`useq`):
//! one gate-wide sequence over both tables, 1, 2, 3, ... without gaps, assigned in the
//! same transaction as the row. It is the `seq` the upstream sees (`(gate_id, seq)` is
//! the upload idempotency key); [`outbox::JournalOutbox`] reads the journal in that order
//! and keeps the upstream's acknowledged watermark here too (schema version 2).
//!
//! Nothing biometric is stored: [`Record`] and [`GateEvent`] hold scores and thresholds,
//! never templates or images.

use crate::record::{GateEvent, Record, TxnId};
use crate::types::Time;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

pub mod outbox;
pub mod section;

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened or created.
    #[error("cannot open the journal {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file is not a journal (not SQLite, or a database of something else).
    #[error("{path} is not an echannel journal: {detail}")]
    NotAJournal {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The journal belongs to another gate.
    #[error("the journal belongs to gate {found:?}, not {expected:?}")]
    WrongGate {
        /// Gate id in the journal.
        found: String,
        /// Gate id of this process.
        expected: String,
    },
    /// The transit already has a different outcome record (invariant 5).
    #[error("transaction {txn} already has a {existing} record (seq {seq})")]
    Conflict {
        /// Transit.
        txn: TxnId,
        /// Outcome already journaled.
        existing: String,
        /// Its sequence number.
        seq: u64,
    },
    /// A write or read failed (disk full, I/O error, locked).
    #[error("journal {op} failed: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A record or event could not be encoded.
    #[error("cannot encode journal entry: {0}")]
    Encode(#[from] serde_json::Error),
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
    move |source| JournalError::Sqlite { op, source }
}

/// A record as stored, with its sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    /// Per-gate sequence number.
    pub seq: u64,
    /// When it was committed.
    pub committed_at: Time,
    /// The record.
    pub record: Record,
}

/// Version of the schema this code writes (1: records and events; 2: upload sequence).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    txn          INTEGER NOT NULL UNIQUE,
    outcome      TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    decided_at   INTEGER NOT NULL,
    committed_at INTEGER NOT NULL,
    body         TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    at    INTEGER NOT NULL,
    txn   INTEGER,
    kind  TEXT    NOT NULL,
    body  TEXT    NOT NULL
);
";

/// Version 1 → 2: the upload sequence over records and events, numbered in commit order
/// for rows written by version 1 (records first, then events: the order does not matter,
/// only that every row has one number and there are no gaps), and the upload state.
const MIGRATE_V2: &str = "
ALTER TABLE records ADD COLUMN useq INTEGER;
ALTER TABLE events ADD COLUMN useq INTEGER;
UPDATE records SET useq = x.rn
  FROM (SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM records) AS x
  WHERE records.seq = x.seq;
UPDATE events SET useq = x.rn + (SELECT COUNT(*) FROM records)
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM events) AS x
  WHERE events.id = x.id;
CREATE UNIQUE INDEX records_useq ON records(useq);
CREATE UNIQUE INDEX events_useq ON events(useq);
CREATE TABLE upload_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_useq INTEGER NOT NULL,
    acked     INTEGER NOT NULL,
    txn_floor INTEGER NOT NULL
);
INSERT INTO upload_state(id, last_useq, acked, txn_floor)
  VALUES(1, (SELECT COUNT(*) FROM records) + (SELECT COUNT(*) FROM events), 0, 0);
";

/// The journal of one gate.
pub struct Journal {
    conn: Connection,
    path: Option<PathBuf>,
    pending: Vec<(Time, Option<TxnId>, GateEvent)>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal file at `path`, in WAL mode with
    /// `synchronous=FULL`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let conn = Connection::open(path).map_err(|source| JournalError::Open {
            path: path.to_owned(),
            source,
        })?;
        Journal::init(conn, Some(path.to_owned()))
    }

    /// An in-memory journal (tests and the simulator; not durable).
    pub fn open_in_memory() -> Result<Journal, JournalError> {
        let conn = Connection::open_in_memory().map_err(|source| JournalError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Journal::init(conn, None)
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> Result<Journal, JournalError> {
        let shown = path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        let not_journal = |e: rusqlite::Error| JournalError::NotAJournal {
            path: shown.clone(),
            detail: e.to_string(),
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("configure"))?;
        if path.is_some() {
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(not_journal)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(JournalError::NotAJournal {
                    path: shown,
                    detail: format!("cannot switch to WAL mode (got {mode})"),
                });
            }
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(sql("configure"))?;
        conn.execute_batch(SCHEMA).map_err(not_journal)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(not_journal)?;
        match version.as_deref() {
            None | Some("1") => {
                let tx = conn.unchecked_transaction().map_err(sql("begin"))?;
                tx.execute_batch(MIGRATE_V2)
                    .map_err(sql("migrate to schema 2"))?;
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES('schema_version', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(sql("initialise"))?;
                tx.commit().map_err(sql("migrate to schema 2"))?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(JournalError::NotAJournal {
                    path: shown,
                    detail: format!("schema version {v}, this build reads {SCHEMA_VERSION}"),
                })
            }
        }
        Ok(Journal {
            conn,
            path,
            pending: Vec::new(),
        })
    }

    /// Binds the journal to `gate_id` on first use; refuses a journal of another gate.
    pub fn claim_gate(&mut self, gate_id: &str) -> Result<(), JournalError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key='gate_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read gate id"))?;
        match found {
            Some(f) if f == gate_id => Ok(()),
            Some(found) => Err(JournalError::WrongGate {
                found,
                expected: gate_id.into(),
            }),
            None => {
                self.conn
                    .execute(
                        "INSERT INTO meta(key, value) VALUES('gate_id', ?1)",
                        [gate_id],
                    )
                    .map_err(sql("write gate id"))?;
                Ok(())
            }
        }
    }

    /// Durably commits `record` (with any queued events) and returns its sequence number.
    ///
    /// Idempotent per transit: writing the same outcome for a `txn` again returns the
    /// existing `seq`; a different outcome for a journaled `txn` is a
    /// [`JournalError::Conflict`] and nothing is written.
    pub fn append_record(&mut self, now: Time, record: &Record) -> Result<u64, JournalError> {
        let body = serde_json::to_string(record)?;
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        let existing: Option<(i64, String)> = tx
            .prepare_cached("SELECT seq, outcome FROM records WHERE txn = ?1")
            .and_then(|mut st| {
                st.query_row([record.txn.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql("look up transaction"))?;
        if let Some((seq, outcome)) = existing {
            if outcome == record.outcome.as_str() {
                return Ok(seq as u64);
            }
            return Err(JournalError::Conflict {
                txn: record.txn,
                existing: outcome,
                seq: seq as u64,
            });
        }
        let useq = write_events(&tx, &self.pending)? + 1;
        tx.prepare_cached(
            "INSERT INTO records(txn, outcome, started_at, decided_at, committed_at, body, useq)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                record.txn.0 as i64,
                record.outcome.as_str(),
                record.started_at.0 as i64,
                record.decided_at.0 as i64,
                now.0 as i64,
                body,
                useq as i64
            ])
        })
        .map_err(sql("insert record"))?;
        let seq = tx.last_insert_rowid() as u64;
        set_last_useq(&tx, useq)?;
        tx.commit().map_err(sql("commit record"))?;
        self.pending.clear();
        Ok(seq)
    }

    /// Queues an event; it is written with the next record or [`Journal::flush_events`].
    pub fn append_event(&mut self, at: Time, txn: Option<TxnId>, event: GateEvent) {
        self.pending.push((at, txn, event));
    }

    /// Forgets the queued events not yet written, as a process that dies would; returns
    /// how many were lost (simulated crashes).
    pub fn lose_unwritten(&mut self) -> usize {
        std::mem::take(&mut self.pending).len()
    }

    /// Number of queued events not yet written.
    pub fn pending_events(&self) -> usize {
        self.pending.len()
    }

    /// Writes the queued events in one durable transaction.
    pub fn flush_events(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        let last = write_events(&tx, &self.pending)?;
        set_last_useq(&tx, last)?;
        tx.commit().map_err(sql("commit events"))?;
        self.pending.clear();
        Ok(())
    }

    /// Number of movement records.
    pub fn count(&self) -> Result<u64, JournalError> {
        self.scalar("SELECT COUNT(*) FROM records", "count records")
    }

    /// Number of events written.
    pub fn event_count(&self) -> Result<u64, JournalError> {
        self.scalar("SELECT COUNT(*) FROM events", "count events")
    }

    /// The highest sequence number ever given (0 for a new journal). Sequence numbers are
    /// never reused, even if records are later pruned.
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        self.scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name='records'), 0)",
            "read last seq",
        )
    }

    /// The transaction id the state machine should start from after a restart: above
    /// every transit that has a record or an event.
    pub fn next_txn(&self) -> Result<u64, JournalError> {
        // `txn_floor`: the highest transit of rows removed by retention.
        let max = self.scalar(
            "SELECT MAX(COALESCE((SELECT MAX(txn) FROM records), 0),
                        COALESCE((SELECT MAX(txn) FROM events), 0),
                        (SELECT txn_floor FROM upload_state))",
            "read last txn",
        )?;
        Ok(max + 1)
    }

    /// The last transit that was started (its `transit_started` event is in the journal)
    /// but has no record: the process stopped in the middle of it. `None` when every
    /// started transit has its record.
    pub fn unfinished_transit(&self) -> Result<Option<TxnId>, JournalError> {
        let txn = self.scalar(
            "SELECT COALESCE((SELECT MAX(e.txn) FROM events e
                WHERE e.kind = 'transit_started'
                  AND e.txn > (SELECT txn_floor FROM upload_state)
                  AND NOT EXISTS (SELECT 1 FROM records r WHERE r.txn = e.txn)
                  AND e.txn > COALESCE((SELECT MAX(txn) FROM records), 0)), 0)",
            "find an unfinished transit",
        )?;
        Ok((txn > 0).then_some(TxnId(txn)))
    }

    /// Records with `seq > after`, oldest first, at most `limit`.
    pub fn records_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, committed_at, body FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sql("read records"))?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("read records"))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, body) = row.map_err(sql("read records"))?;
            out.push(StoredRecord {
                seq: seq as u64,
                committed_at: Time(at as u64),
                record: serde_json::from_str(&body)?,
            });
        }
        Ok(out)
    }

    /// Record counts by outcome name.
    pub fn outcome_counts(&self) -> Result<Vec<(String, u64)>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT outcome, COUNT(*) FROM records GROUP BY outcome ORDER BY outcome")
            .map_err(sql("count outcomes"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(sql("count outcomes"))?;
        rows.map(|r| r.map(|(o, n)| (o, n as u64)).map_err(sql("count outcomes")))
            .collect()
    }

    fn scalar(&self, q: &str, op: &'static str) -> Result<u64, JournalError> {
        let v: i64 = self.conn.query_row(q, [], |r| r.get(0)).map_err(sql(op))?;
        Ok(v.max(0) as u64)
    }
}

fn event_kind(e: &GateEvent) -> &'static str {
    match e {
        GateEvent::TransitStarted { .. } => "transit_started",
        GateEvent::StepChanged { .. } => "step_changed",
        GateEvent::AlarmRaised { .. } => "alarm_raised",
        GateEvent::AlarmCleared { .. } => "alarm_cleared",
        GateEvent::Command { .. } => "command",
        GateEvent::DeviceFault { .. } => "device_fault",
        GateEvent::DeviceRecovered { .. } => "device_recovered",
    }
}

/// The last upload sequence number given.
fn last_useq(tx: &rusqlite::Transaction<'_>) -> Result<u64, JournalError> {
    let v: i64 = tx
        .prepare_cached("SELECT last_useq FROM upload_state WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(sql("read upload sequence"))?;
    Ok(v.max(0) as u64)
}

fn set_last_useq(tx: &rusqlite::Transaction<'_>, useq: u64) -> Result<(), JournalError> {
    tx.prepare_cached("UPDATE upload_state SET last_useq = ?1 WHERE id = 1")
        .and_then(|mut s| s.execute([useq as i64]))
        .map_err(sql("write upload sequence"))?;
    Ok(())
}

/// Writes `events` with the next upload sequence numbers; answers the last one given
/// (the current last one when there is nothing to write). The caller stores it with
/// [`set_last_useq`] in the same transaction.
fn write_events(
    tx: &rusqlite::Transaction<'_>,
    events: &[(Time, Option<TxnId>, GateEvent)],
) -> Result<u64, JournalError> {
    let mut useq = last_useq(tx)?;
    if events.is_empty() {
        return Ok(useq);
    }
    let mut stmt = tx
        .prepare_cached("INSERT INTO events(at, txn, kind, body, useq) VALUES(?1, ?2, ?3, ?4, ?5)")
        .map_err(sql("insert event"))?;
    for (at, txn, e) in events {
        let txn = match e {
            GateEvent::TransitStarted { txn } => Some(*txn),
            _ => *txn,
        };
        useq += 1;
        stmt.execute(params![
            at.0 as i64,
            txn.map(|t| t.0 as i64),
            event_kind(e),
            serde_json::to_string(e)?,
            useq as i64
        ])
        .map_err(sql("insert event"))?;
    }
    Ok(useq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AlarmKind, Outcome, Reason};

    fn rec(txn: u64, outcome: Outcome) -> Record {
        Record {
            txn: TxnId(txn),
            outcome,
            reasons: vec![Reason::NeverEntered],
            started_at: Time(1_000),
            decided_at: Time(2_000),
            document: None,
            watchlist: None,
            biometric: None,
            operator: None,
        }
    }

    #[test]
    fn reopen_keeps_records_and_continues_seq_and_txn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        {
            let mut j = Journal::open(&path).unwrap();
            j.claim_gate("g1").unwrap();
            assert_eq!(j.next_txn().unwrap(), 1);
            assert_eq!(
                j.append_record(Time(5), &rec(1, Outcome::Cleared)).unwrap(),
                1
            );
            assert_eq!(
                j.append_record(Time(6), &rec(2, Outcome::Referred))
                    .unwrap(),
                2
            );
            j.append_event(Time(7), None, GateEvent::TransitStarted { txn: TxnId(3) });
            j.flush_events().unwrap();
        }
        let mut j = Journal::open(&path).unwrap();
        j.claim_gate("g1").unwrap();
        assert_eq!(j.count().unwrap(), 2);
        assert_eq!(j.last_seq().unwrap(), 2);
        // Transit 3 started (event) but never got a record: its id is not reused.
        assert_eq!(j.next_txn().unwrap(), 4);
        assert_eq!(
            j.append_record(Time(8), &rec(4, Outcome::Aborted)).unwrap(),
            3
        );
        let all = j.records_after(0, 10).unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(all[2].record, rec(4, Outcome::Aborted));
        assert_eq!(j.event_count().unwrap(), 1);
    }

    #[test]
    fn same_outcome_again_is_idempotent_and_a_different_one_conflicts() {
        let mut j = Journal::open_in_memory().unwrap();
        assert_eq!(
            j.append_record(Time(1), &rec(9, Outcome::Referred))
                .unwrap(),
            1
        );
        assert_eq!(
            j.append_record(Time(2), &rec(9, Outcome::Referred))
                .unwrap(),
            1
        );
        let e = j
            .append_record(Time(3), &rec(9, Outcome::Cleared))
            .unwrap_err();
        assert!(matches!(e, JournalError::Conflict { seq: 1, .. }), "{e}");
        assert_eq!(j.count().unwrap(), 1);
    }

    #[test]
    fn events_are_written_with_the_next_record() {
        let mut j = Journal::open_in_memory().unwrap();
        j.append_event(
            Time(1),
            Some(TxnId(1)),
            GateEvent::AlarmRaised {
                alarm: AlarmKind::Tailgating,
                detail: "2 persons".into(),
            },
        );
        assert_eq!(j.event_count().unwrap(), 0);
        j.append_record(Time(2), &rec(1, Outcome::Referred))
            .unwrap();
        assert_eq!(j.event_count().unwrap(), 1);
        assert_eq!(j.pending_events(), 0);
    }

    #[test]
    fn another_gates_journal_is_refused() {
        let mut j = Journal::open_in_memory().unwrap();
        j.claim_gate("a").unwrap();
        let e = j.claim_gate("b").unwrap_err();
        assert!(e.to_string().contains("belongs to gate \"a\""), "{e}");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
        let e = Journal::open(&path).unwrap_err();
        assert!(matches!(e, JournalError::NotAJournal { .. }), "{e}");
        assert!(e.to_string().contains("is not an echannel journal"), "{e}");
    }

    #[test]
    fn an_unwritable_location_is_a_clear_error() {
        let e = Journal::open(Path::new("/nonexistent-dir/sub/j.sqlite")).unwrap_err();
        assert!(matches!(e, JournalError::Open { .. }), "{e}");
        assert!(
            e.to_string().contains("/nonexistent-dir/sub/j.sqlite"),
            "{e}"
        );
    }

    #[test]
    fn the_journal_runs_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let mode: String = j
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = j
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "FULL");
    }
}
