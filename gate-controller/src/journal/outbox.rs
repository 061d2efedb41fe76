//! The upstream [`Outbox`] over the journal: what the sync task uploads, in upload
//! sequence order, and the upstream's acknowledged watermark.
//!
//! It has its own SQLite connection to the journal file (WAL: it reads while the gate
//! writes; its few writes — the watermark, retention — wait for the gate's commit through
//! the busy timeout). A reader sees whole transactions only, so the rows it hands out are
//! always a gap-free prefix of the upload sequence.

use super::{JournalError, SCHEMA_VERSION};
use crate::types::Time;
use crate::upstream::{Outbox, OutboxError, StoredRecord};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The journal seen as the upstream outbox.
pub struct JournalOutbox {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for JournalOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalOutbox")
            .field("path", &self.path)
            .finish()
    }
}

/// Where the upload stands, for logs, metrics and heartbeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Last upload sequence number given by the journal.
    pub last_useq: u64,
    /// Highest upload sequence number the upstream acknowledged.
    pub acked: u64,
}

impl Backlog {
    /// Rows journaled but not yet acknowledged.
    pub fn rows(&self) -> u64 {
        self.last_useq.saturating_sub(self.acked)
    }
}

fn oe(op: &'static str) -> impl Fn(rusqlite::Error) -> OutboxError {
    move |e| OutboxError(format!("journal {op} failed: {e}"))
}

impl JournalOutbox {
    /// Opens the journal at `path`, which [`super::Journal::open`] must have created (or
    /// upgraded) first.
    pub fn open(path: &Path) -> Result<JournalOutbox, JournalError> {
        let conn = Connection::open(path).map_err(|source| JournalError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(super::sql("configure"))?;
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(super::sql("configure"))?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| JournalError::NotAJournal {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
        if version.as_deref() != Some(&SCHEMA_VERSION.to_string()) {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
                detail: format!(
                    "schema version {}, the outbox reads {SCHEMA_VERSION} (open it with the journal first)",
                    version.unwrap_or_else(|| "none".into())
                ),
            });
        }
        Ok(JournalOutbox {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, OutboxError> {
        self.conn
            .lock()
            .map_err(|_| OutboxError("journal outbox lock poisoned".into()))
    }

    /// The last upload sequence number and the acknowledged watermark.
    pub fn backlog(&self) -> Result<Backlog, OutboxError> {
        let c = self.lock()?;
        let (last, acked): (i64, i64) = c
            .query_row(
                "SELECT last_useq, acked FROM upload_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(oe("read upload state"))?;
        Ok(Backlog {
            last_useq: last.max(0) as u64,
            acked: acked.max(0) as u64,
        })
    }
}

impl Outbox for JournalOutbox {
    fn unsent(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StoredRecord)>, OutboxError> {
        let c = self.lock()?;
        let mut st = c
            .prepare_cached(
                "SELECT useq, 0, committed_at, body FROM records WHERE useq > ?1
                 UNION ALL
                 SELECT useq, 1, at, body FROM events WHERE useq > ?1
                 ORDER BY 1 LIMIT ?2",
            )
            .map_err(oe("read unsent rows"))?;
        let rows = st
            .query_map(params![after_seq as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(oe("read unsent rows"))?;
        let mut out = Vec::new();
        for row in rows {
            let (useq, kind, at, body) = row.map_err(oe("read unsent rows"))?;
            let bad = |e: serde_json::Error| {
                OutboxError(format!(
                    "journal row with upload seq {useq} is unreadable: {e}"
                ))
            };
            let rec = if kind == 0 {
                StoredRecord::Movement(serde_json::from_str(&body).map_err(bad)?)
            } else {
                StoredRecord::Event {
                    at: Time(at.max(0) as u64),
                    event: serde_json::from_str(&body).map_err(bad)?,
                }
            };
            out.push((useq.max(0) as u64, rec));
        }
        Ok(out)
    }

    fn mark_acked(&self, up_to_seq: u64) -> Result<(), OutboxError> {
        let c = self.lock()?;
        c.prepare_cached(
            "UPDATE upload_state SET acked = MAX(acked, MIN(?1, last_useq)) WHERE id = 1",
        )
        .and_then(|mut s| s.execute([up_to_seq as i64]))
        .map_err(oe("write the acknowledged watermark"))?;
        Ok(())
    }

    fn acked_watermark(&self) -> Result<u64, OutboxError> {
        Ok(self.backlog()?.acked)
    }

    fn purge_acked(&self, up_to_seq: u64) -> Result<u64, OutboxError> {
        let mut c = self.lock()?;
        let tx = c.transaction().map_err(oe("begin retention"))?;
        let upto: i64 = tx
            .query_row(
                "SELECT MIN(?1, acked) FROM upload_state WHERE id = 1",
                [up_to_seq as i64],
                |r| r.get(0),
            )
            .map_err(oe("read upload state"))?;
        // Transit ids of removed rows are never given again (Journal::next_txn).
        tx.execute(
            "UPDATE upload_state SET txn_floor = MAX(txn_floor,
                COALESCE((SELECT MAX(txn) FROM records WHERE useq <= ?1), 0),
                COALESCE((SELECT MAX(txn) FROM events WHERE useq <= ?1), 0))
             WHERE id = 1",
            [upto],
        )
        .map_err(oe("retention"))?;
        let a = tx
            .execute("DELETE FROM records WHERE useq <= ?1", [upto])
            .map_err(oe("retention"))?;
        let b = tx
            .execute("DELETE FROM events WHERE useq <= ?1", [upto])
            .map_err(oe("retention"))?;
        tx.commit().map_err(oe("retention"))?;
        Ok((a + b) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Journal;
    use super::*;
    use crate::record::{GateEvent, Outcome, Reason, Record, TxnId};

    fn rec(txn: u64) -> Record {
        Record {
            txn: TxnId(txn),
            outcome: Outcome::Cleared,
            reasons: vec![Reason::NeverEntered],
            started_at: Time(1_000),
            decided_at: Time(2_000),
            document: None,
            watchlist: None,
            biometric: None,
            operator: None,
        }
    }

    fn seqs(rows: &[(u64, StoredRecord)]) -> Vec<u64> {
        rows.iter().map(|r| r.0).collect()
    }

    #[test]
    fn records_and_events_share_one_gap_free_sequence_that_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        j.claim_gate("g1").unwrap();
        let ob = JournalOutbox::open(&path).unwrap();
        j.append_event(Time(1), None, GateEvent::TransitStarted { txn: TxnId(1) });
        j.append_event(
            Time(2),
            Some(TxnId(1)),
            GateEvent::TransitStarted { txn: TxnId(1) },
        );
        assert_eq!(j.append_record(Time(3), &rec(1)).unwrap(), 1);
        // A duplicate of the same outcome takes no number.
        assert_eq!(j.append_record(Time(3), &rec(1)).unwrap(), 1);
        j.append_event(Time(4), None, GateEvent::TransitStarted { txn: TxnId(2) });
        j.flush_events().unwrap();
        let rows = ob.unsent(0, 100).unwrap();
        assert_eq!(seqs(&rows), vec![1, 2, 3, 4]);
        assert!(matches!(rows[2].1, StoredRecord::Movement(ref r) if r.txn == TxnId(1)));
        assert!(matches!(rows[3].1, StoredRecord::Event { at: Time(4), .. }));
        assert_eq!(seqs(&ob.unsent(2, 1).unwrap()), vec![3]);
        drop(j);
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.append_record(Time(5), &rec(2)).unwrap(), 2);
        assert_eq!(seqs(&ob.unsent(0, 100).unwrap()), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            ob.backlog().unwrap(),
            Backlog {
                last_useq: 5,
                acked: 0
            }
        );
    }

    #[test]
    fn the_watermark_never_drops_nor_passes_what_exists_and_retention_keeps_txns_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        for t in 1..=4 {
            j.append_record(Time(t), &rec(t)).unwrap();
        }
        let ob = JournalOutbox::open(&path).unwrap();
        ob.mark_acked(3).unwrap();
        ob.mark_acked(2).unwrap();
        assert_eq!(ob.acked_watermark().unwrap(), 3);
        ob.mark_acked(99).unwrap();
        assert_eq!(ob.acked_watermark().unwrap(), 4);
        // Retention never removes more than what is acknowledged.
        let ob2 = JournalOutbox::open(&path).unwrap();
        j.append_record(Time(5), &rec(5)).unwrap();
        assert_eq!(ob2.purge_acked(10).unwrap(), 4);
        assert_eq!(seqs(&ob2.unsent(0, 10).unwrap()), vec![5]);
        assert_eq!(ob2.purge_acked(10).unwrap(), 0, "seq 5 is not acknowledged");
        ob2.mark_acked(5).unwrap();
        assert_eq!(ob2.purge_acked(10).unwrap(), 1);
        drop(j);
        // Everything gone: transit ids and sequence numbers still continue.
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.next_txn().unwrap(), 6);
        assert_eq!(j.append_record(Time(6), &rec(6)).unwrap(), 6);
        assert_eq!(seqs(&ob2.unsent(0, 10).unwrap()), vec![6]);
    }

    #[test]
    fn a_version_1_journal_is_upgraded_with_every_row_numbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(super::super::SCHEMA).unwrap();
            c.execute_batch(
                "INSERT INTO meta VALUES('schema_version', '1');
                 INSERT INTO records(txn, outcome, started_at, decided_at, committed_at, body)
                   VALUES(7, 'cleared', 1, 2, 3, '{}');
                 INSERT INTO events(at, txn, kind, body) VALUES(4, 7, 'transit_started', '{}');
                 INSERT INTO events(at, txn, kind, body) VALUES(5, 8, 'transit_started', '{}');",
            )
            .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.next_txn().unwrap(), 9);
        let ob = JournalOutbox::open(&path).unwrap();
        assert_eq!(
            ob.backlog().unwrap(),
            Backlog {
                last_useq: 3,
                acked: 0
            }
        );
        let c = Connection::open(&path).unwrap();
        let n: i64 = c
            .query_row(
                "SELECT COUNT(DISTINCT useq) FROM (SELECT useq FROM records UNION ALL SELECT useq FROM events) WHERE useq BETWEEN 1 AND 3",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn a_file_that_is_not_an_upgraded_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        let e = JournalOutbox::open(&path).unwrap_err();
        assert!(e.to_string().contains("not an echannel journal"), "{e}");
    }
}
