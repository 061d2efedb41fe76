//! The store-and-forward task: drains the [`Outbox`] to the upstream in batches, with a
//! bounded number of requests in flight, exponential backoff with jitter after a failure,
//! and a restart that resumes from the outbox's acknowledged watermark.
//!
//! Nothing is ever dropped on the gate side because of an upstream failure: a row leaves
//! the outbox only through retention, and only once the upstream has acknowledged it.
//! Uploads are idempotent on `(gate_id, seq)`, so resending after a timeout or a crash
//! never doubles a record upstream.

use super::client::{UpstreamClient, UpstreamError};
use super::wire::{GateInfo, UploadAck, UploadBatch, WireRecord};
use super::{Outbox, OutboxError, StoredRecord};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Settings of the sync task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Who this gate is (uploaded with every movement record).
    pub gate: GateInfo,
    /// Rows per upload request.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Upload requests in flight at once.
    #[serde(default = "d_in_flight")]
    pub max_in_flight: usize,
    /// How often to look for new rows once caught up, in milliseconds.
    #[serde(default = "d_idle")]
    pub idle_poll_ms: u64,
    /// First retry delay after a failure, in milliseconds.
    #[serde(default = "d_backoff_initial")]
    pub backoff_initial_ms: u64,
    /// Largest retry delay, in milliseconds.
    #[serde(default = "d_backoff_max")]
    pub backoff_max_ms: u64,
    /// Acknowledged rows kept in the journal (the newest ones); `None` keeps them all.
    #[serde(default = "d_retain")]
    pub retain_acked_rows: Option<u64>,
}

/// Defaults shared with the `[upstream]` section of the gate configuration.
pub(super) fn d_batch() -> usize {
    500
}
pub(super) fn d_in_flight() -> usize {
    4
}
pub(super) fn d_idle() -> u64 {
    500
}
pub(super) fn d_backoff_initial() -> u64 {
    250
}
pub(super) fn d_backoff_max() -> u64 {
    30_000
}
pub(super) fn d_retain() -> Option<u64> {
    Some(100_000)
}

impl SyncConfig {
    /// Defaults for a gate.
    pub fn new(gate: GateInfo) -> SyncConfig {
        SyncConfig {
            gate,
            batch_size: d_batch(),
            max_in_flight: d_in_flight(),
            idle_poll_ms: d_idle(),
            backoff_initial_ms: d_backoff_initial(),
            backoff_max_ms: d_backoff_max(),
            retain_acked_rows: d_retain(),
        }
    }
}

/// What the sync task reports while it runs (for `/v1/status`, heartbeats and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// Highest sequence number acknowledged by the upstream.
    pub acked_watermark: u64,
    /// Highest sequence number read from the outbox so far.
    pub highest_seen: u64,
    /// Rows uploaded (including resends) since the task started.
    pub rows_sent: u64,
    /// Failed requests in a row (0 when the last request succeeded).
    pub consecutive_failures: u32,
    /// The last failure, if the last request failed.
    pub last_error: Option<String>,
}

/// Exponential backoff with "equal jitter": the n-th delay is uniformly drawn from
/// `[d/2, d]` with `d = min(max, initial * 2^n)`.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    failures: u32,
}

impl Backoff {
    /// A backoff starting at `initial_ms`, never above `max_ms`.
    pub fn new(initial_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            initial_ms: initial_ms.max(1),
            max_ms: max_ms.max(initial_ms.max(1)),
            failures: 0,
        }
    }
    /// The ceiling of the next delay, in milliseconds.
    pub fn ceiling_ms(&self) -> u64 {
        let factor = 1u64.checked_shl(self.failures.min(32)).unwrap_or(u64::MAX);
        self.initial_ms.saturating_mul(factor).min(self.max_ms)
    }
    /// The next delay (random in `[ceiling/2, ceiling]`); counts a failure.
    pub fn next_delay<R: Rng>(&mut self, rng: &mut R) -> Duration {
        let d = self.ceiling_ms();
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(rng.gen_range(d / 2..=d))
    }
    /// Forgets the failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Why the sync task stopped on its own (it otherwise runs until shutdown).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The configuration cannot work.
    #[error("sync configuration invalid: {0}")]
    Config(String),
}

async fn blocking<O: Outbox, T: Send + 'static>(
    outbox: &Arc<O>,
    f: impl FnOnce(&O) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    let o = Arc::clone(outbox);
    tokio::task::spawn_blocking(move || f(&o))
        .await
        .map_err(|e| OutboxError(format!("outbox task failed: {e}")))?
}

enum Failure {
    Outbox(OutboxError),
    Upstream(UpstreamError),
    Stuck(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Outbox(e) => write!(f, "{e}"),
            Failure::Upstream(e) => write!(f, "{e}"),
            Failure::Stuck(s) => write!(f, "{s}"),
        }
    }
}

type Flight = (u64, u64, Result<UploadAck, UpstreamError>);

/// Runs the sync task until `shutdown` completes.
pub async fn run<O: Outbox>(
    outbox: Arc<O>,
    client: UpstreamClient,
    config: SyncConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<SyncStatus, SyncError> {
    let (tx, _rx) = watch::channel(SyncStatus::default());
    run_with_status(outbox, client, config, tx, shutdown).await
}

/// Like [`run`], publishing a [`SyncStatus`] after every step.
pub async fn run_with_status<O: Outbox>(
    outbox: Arc<O>,
    client: UpstreamClient,
    config: SyncConfig,
    status_tx: watch::Sender<SyncStatus>,
    shutdown: impl Future<Output = ()>,
) -> Result<SyncStatus, SyncError> {
    if config.batch_size == 0 || config.max_in_flight == 0 {
        return Err(SyncError::Config(
            "batch_size and max_in_flight must be at least 1".into(),
        ));
    }
    tokio::pin!(shutdown);
    let client = Arc::new(client);
    let mut backoff = Backoff::new(config.backoff_initial_ms, config.backoff_max_ms);
    let mut status = SyncStatus::default();

    // Resume from the journal's watermark (retry until the journal answers).
    let mut acked = loop {
        match blocking(&outbox, |o| o.acked_watermark()).await {
            Ok(w) => break w,
            Err(e) => {
                tracing::warn!(error = %e, "upstream sync: cannot read the acknowledged watermark");
                let d = backoff.next_delay(&mut rand::thread_rng());
                tokio::select! {
                    _ = &mut shutdown => return Ok(status),
                    _ = tokio::time::sleep(d) => {}
                }
            }
        }
    };
    backoff.reset();
    status.acked_watermark = acked;
    status.highest_seen = acked;
    status_tx.send_replace(status.clone());
    let mut purged_to = 0u64;
    let mut cursor = acked; // highest seq handed to a request since the last reset
    let mut inflight: JoinSet<Flight> = JoinSet::new();
    let mut failure: Option<Failure> = None;
    // The watermark when the pipeline last ran dry with rows unacknowledged (stuck check).
    let mut resent_from: Option<u64> = None;

    loop {
        // Fill the pipeline.
        while failure.is_none() && inflight.len() < config.max_in_flight {
            let (after, limit) = (cursor, config.batch_size);
            let rows = match blocking(&outbox, move |o| o.unsent(after, limit)).await {
                Ok(r) => r,
                Err(e) => {
                    failure = Some(Failure::Outbox(e));
                    break;
                }
            };
            let (Some(first), Some(last)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0))
            else {
                break;
            };
            if first != after + 1 && after == acked {
                tracing::error!(
                    expected = after + 1,
                    found = first,
                    "upstream sync: the outbox has a gap; the upstream watermark cannot pass it"
                );
            }
            cursor = last.max(cursor);
            status.highest_seen = status.highest_seen.max(last);
            status.rows_sent += rows.len() as u64;
            let batch = UploadBatch {
                gate_id: config.gate.gate_id.clone(),
                records: rows
                    .iter()
                    .map(|(seq, r): &(u64, StoredRecord)| {
                        WireRecord::from_stored(&config.gate, *seq, r)
                    })
                    .collect(),
            };
            let c = Arc::clone(&client);
            inflight.spawn(async move {
                let res = c.upload(&batch).await;
                (first, last, res)
            });
        }

        if inflight.is_empty() {
            if let Some(f) = failure.take() {
                status.consecutive_failures += 1;
                status.last_error = Some(f.to_string());
                status_tx.send_replace(status.clone());
                let d = backoff.next_delay(&mut rand::thread_rng());
                tracing::warn!(error = %f, retry_in_ms = d.as_millis() as u64, "upstream sync failed");
                tokio::select! {
                    _ = &mut shutdown => return Ok(status),
                    _ = tokio::time::sleep(d) => {}
                }
                cursor = acked;
                continue;
            }
            if cursor > acked {
                // Everything answered, yet the upstream holds less than we sent: resend
                // from its watermark; if that already happened without progress, back off.
                if resent_from == Some(acked) {
                    failure = Some(Failure::Stuck(format!(
                        "upstream watermark stays at {acked} although rows up to {cursor} were sent"
                    )));
                } else {
                    resent_from = Some(acked);
                }
                cursor = acked;
                continue;
            }
            // Caught up.
            tokio::select! {
                _ = &mut shutdown => return Ok(status),
                _ = tokio::time::sleep(Duration::from_millis(config.idle_poll_ms)) => {}
            }
            continue;
        }

        let joined = tokio::select! {
            _ = &mut shutdown => {
                inflight.abort_all();
                return Ok(status);
            }
            j = inflight.join_next() => j,
        };
        let Some(joined) = joined else { continue };
        let (first, last, res) = match joined {
            Ok(v) => v,
            Err(e) => {
                failure.get_or_insert(Failure::Stuck(format!("upload task failed: {e}")));
                continue;
            }
        };
        match res {
            Ok(ack) => {
                // Never believe more than we sent: a row not yet sent cannot be held upstream.
                let w = ack.watermark.min(cursor.max(last));
                if w > acked {
                    match blocking(&outbox, move |o| o.mark_acked(w)).await {
                        Ok(()) => {
                            acked = w;
                            resent_from = None;
                        }
                        Err(e) => {
                            failure.get_or_insert(Failure::Outbox(e));
                        }
                    }
                }
                if failure.is_none() {
                    backoff.reset();
                    status.consecutive_failures = 0;
                    status.last_error = None;
                }
                tracing::debug!(
                    first,
                    last,
                    watermark = ack.watermark,
                    "upstream acknowledged"
                );
                if let Some(keep) = config.retain_acked_rows {
                    let upto = acked.saturating_sub(keep);
                    if upto >= purged_to + config.batch_size as u64 {
                        match blocking(&outbox, move |o| o.purge_acked(upto)).await {
                            Ok(_) => purged_to = upto,
                            Err(e) => {
                                tracing::warn!(error = %e, "upstream sync: retention purge failed")
                            }
                        }
                    }
                }
            }
            Err(e) => {
                failure.get_or_insert(Failure::Upstream(e));
            }
        }
        status.acked_watermark = acked;
        status_tx.send_replace(status.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = Backoff::new(100, 1_000);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let ceiling = b.ceiling_ms();
            let d = b.next_delay(&mut rng).as_millis() as u64;
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d} outside [{}, {ceiling}]",
                ceiling / 2
            );
            seen.push(ceiling);
        }
        assert_eq!(seen, vec![100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.ceiling_ms(), 100);
        // Huge failure counts neither overflow nor exceed the cap.
        let mut b = Backoff::new(1, u64::MAX);
        for _ in 0..100 {
            b.next_delay(&mut rng);
        }
        assert!(b.ceiling_ms() > 0);
    }
}
