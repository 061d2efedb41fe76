//! Store-and-forward of movement records and events to the central system.
//!
//! - [`wire`]: the JSON types of the upstream API (`docs/upstream-openapi.yaml`);
//! - [`tls`]: rustls configurations for mutual TLS and the gate identity in a certificate;
//! - [`pki`]: a development CA with server and per-gate client certificates;
//! - [`client`]: the HTTP client of one gate;
//! - [`sync`]: the background task that drains the [`Outbox`] to the upstream;
//! - [`disk`]: the disk guard the shell polls;
//! - [`section`]: the `[upstream]` table of the gate configuration;
//! - [`service`]: the sync of a running `gated` over the journal's outbox
//!   (`journal::outbox::JournalOutbox`).
//!
//! The journal is not part of this module: it is reached through the [`Outbox`] seam.
//! Every uploadable row (movement record or event) carries one gate-wide sequence number,
//! starting at 1 and without gaps; the upstream acknowledges the highest contiguous
//! sequence number it holds (the *watermark*), and the outbox remembers it.

pub mod client;
pub mod disk;
pub mod pki;
pub mod section;
pub mod service;
pub mod sync;
pub mod tls;
pub mod wire;

use crate::record::{GateEvent, Record};
use crate::types::Time;

/// One uploadable row of the journal, as stored (no biometric data by construction).
#[derive(Clone, Debug, PartialEq)]
pub enum StoredRecord {
    /// The movement record of one transit.
    Movement(Record),
    /// An entry of the events log (alarms, operator commands, device faults, ...).
    Event {
        /// When it happened.
        at: Time,
        /// What happened.
        event: GateEvent,
    },
}

/// Why the outbox (the journal) could not answer.
#[derive(Debug, thiserror::Error)]
#[error("outbox: {0}")]
pub struct OutboxError(pub String);

/// The seam between the sync task and the journal.
///
/// Sequence numbers are the journal's per-gate numbers: 1, 2, 3, ... with no gaps.
/// Implementations must be cheap to call from a blocking thread; the sync task calls them
/// through `tokio::task::spawn_blocking`.
pub trait Outbox: Send + Sync + 'static {
    /// Up to `limit` rows with `seq > after_seq`, in ascending `seq` order.
    fn unsent(&self, after_seq: u64, limit: usize)
        -> Result<Vec<(u64, StoredRecord)>, OutboxError>;
    /// Durably records that the upstream holds every row up to `up_to_seq` (never lowers it).
    fn mark_acked(&self, up_to_seq: u64) -> Result<(), OutboxError>;
    /// The highest sequence number the upstream has acknowledged (0 if none).
    fn acked_watermark(&self) -> Result<u64, OutboxError>;
    /// Deletes acknowledged rows with `seq <= up_to_seq` (retention); answers how many went.
    /// Callers never pass more than the acknowledged watermark.
    fn purge_acked(&self, up_to_seq: u64) -> Result<u64, OutboxError>;
}

impl<T: Outbox + ?Sized> Outbox for std::sync::Arc<T> {
    fn unsent(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, StoredRecord)>, OutboxError> {
        (**self).unsent(after_seq, limit)
    }
    fn mark_acked(&self, up_to_seq: u64) -> Result<(), OutboxError> {
        (**self).mark_acked(up_to_seq)
    }
    fn acked_watermark(&self) -> Result<u64, OutboxError> {
        (**self).acked_watermark()
    }
    fn purge_acked(&self, up_to_seq: u64) -> Result<u64, OutboxError> {
        (**self).purge_acked(up_to_seq)
    }
}
