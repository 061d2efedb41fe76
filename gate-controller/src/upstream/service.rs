//! The upstream sync of a running `gated`: the [`sync`](super::sync) task over the
//! journal's [`JournalOutbox`], plus a monitor that publishes the backlog (a watch
//! channel for the API, Prometheus gauges, a periodic log line) and sends heartbeats
//! (mode, alarms, backlog, journal disk usage) every `heartbeat_ms`.

use super::client::{UpstreamClient, UpstreamError};
use super::disk::{self, DiskGuardConfig};
use super::section::UpstreamSection;
use super::sync::{self, SyncStatus};
use super::wire::{unix_ms_now, Heartbeat};
use crate::decision::Direction;
use crate::journal::outbox::{Backlog, JournalOutbox};
use crate::journal::JournalError;
use crate::runtime::GateStatus;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Why the sync could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The journal could not be opened as an outbox.
    #[error("upstream sync: {0}")]
    Journal(#[from] JournalError),
    /// The client could not be built (TLS material).
    #[error("upstream sync: {0}")]
    Client(#[from] UpstreamError),
}

/// How often the monitor refreshes the backlog.
const REFRESH: Duration = Duration::from_secs(1);

/// A running upstream sync.
#[derive(Debug)]
pub struct UpstreamSync {
    status: watch::Receiver<SyncStatus>,
    backlog: watch::Receiver<Backlog>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    monitor: JoinHandle<()>,
}

impl UpstreamSync {
    /// Opens the journal at `journal` as the outbox and spawns the sync task and its
    /// monitor on the current tokio runtime. The journal must have been opened by
    /// [`crate::journal::Journal::open`] first (it creates or upgrades the schema).
    ///
    /// `gate` (the gate loop's status) and `watchlist_version` go into the heartbeats
    /// (the signed store's highest list version, from the status, wins when there is one).
    pub fn spawn(
        section: &UpstreamSection,
        gate_id: &str,
        direction: Direction,
        journal: &Path,
        gate: Option<watch::Receiver<GateStatus>>,
        watchlist_version: Option<u64>,
    ) -> Result<UpstreamSync, ServiceError> {
        let outbox = Arc::new(JournalOutbox::open(journal)?);
        let client = UpstreamClient::new(&section.client_settings())?;
        let config = section.sync_config(gate_id, direction);
        let (status_tx, status) = watch::channel(SyncStatus::default());
        let (stop, stop_rx) = oneshot::channel::<()>();
        let first = outbox.backlog().unwrap_or_default();
        tracing::info!(
            url = %section.url,
            backlog = first.rows(),
            acked = first.acked,
            last_seq = first.last_useq,
            "upstream sync starting"
        );
        let beat = Beat {
            client: client.clone(),
            every: Duration::from_millis(section.heartbeat_ms),
            gate,
            watchlist_version,
            journal: journal.to_owned(),
        };
        let task = {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move {
                let shutdown = async {
                    let _ = stop_rx.await;
                };
                if let Err(e) =
                    sync::run_with_status(outbox, client, config, status_tx, shutdown).await
                {
                    tracing::error!(error = %e, "upstream sync stopped");
                }
            })
        };
        let (backlog_tx, backlog) = watch::channel(first);
        let monitor = tokio::spawn(monitor(
            outbox,
            status.clone(),
            backlog_tx,
            gate_id.to_owned(),
            Duration::from_millis(section.status_log_ms),
            beat,
        ));
        Ok(UpstreamSync {
            status,
            backlog,
            stop: Some(stop),
            task,
            monitor,
        })
    }

    /// The sync task's status (watermark, failures, last error).
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// The journal's backlog (refreshed every second).
    pub fn backlog(&self) -> watch::Receiver<Backlog> {
        self.backlog.clone()
    }

    /// Stops the sync (requests in flight are abandoned: the rows stay in the journal and
    /// go with the next run), waiting at most `within`.
    pub async fn stop(mut self, within: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            self.task.abort();
        }
        self.monitor.abort();
        let b = *self.backlog.borrow();
        tracing::info!(
            backlog = b.rows(),
            acked = b.acked,
            last_seq = b.last_useq,
            "upstream sync stopped"
        );
    }
}

/// What the heartbeats need.
struct Beat {
    client: UpstreamClient,
    every: Duration,
    gate: Option<watch::Receiver<GateStatus>>,
    watchlist_version: Option<u64>,
    journal: PathBuf,
}

impl Beat {
    fn heartbeat(&self, gate_id: &str, b: Backlog) -> Heartbeat {
        let (mode, alarms, store_version) = match &self.gate {
            Some(g) => {
                let s = g.borrow();
                // The signed store's version when the gate serves from one.
                let store_version = s
                    .watchlist
                    .as_ref()
                    .and_then(|w| w.lists.iter().map(|l| l.version).max());
                let alarms = s
                    .machine
                    .alarms
                    .iter()
                    .filter_map(|a| serde_json::to_value(a).ok())
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                (s.machine.mode.as_str().to_owned(), alarms, store_version)
            }
            None => ("unknown".to_owned(), Vec::new(), None),
        };
        let dir = match self.journal.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let disk = disk::check(&dir, &DiskGuardConfig::default()).ok();
        Heartbeat {
            gate_id: gate_id.to_owned(),
            sent_at_ms: unix_ms_now(),
            mode,
            alarms,
            backlog: b.rows(),
            acked_watermark: b.acked,
            watchlist_version: store_version.or(self.watchlist_version),
            disk_used_percent: disk.map(|d| d.used_percent),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

async fn monitor(
    outbox: Arc<JournalOutbox>,
    status: watch::Receiver<SyncStatus>,
    backlog_tx: watch::Sender<Backlog>,
    gate: String,
    log_every: Duration,
    beat: Beat,
) {
    let step = REFRESH.min(log_every).min(beat.every);
    let mut tick = tokio::time::interval(step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_log = Duration::ZERO;
    let mut since_beat = beat.every; // the first heartbeat goes at once
    let mut beat_task: Option<JoinHandle<()>> = None;
    loop {
        tick.tick().await;
        let ob = Arc::clone(&outbox);
        let b = match tokio::task::spawn_blocking(move || ob.backlog()).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream sync: cannot read the backlog");
                continue;
            }
            Err(_) => continue,
        };
        backlog_tx.send_replace(b);
        metrics::gauge!("echannel_upstream_backlog", "gate" => gate.clone()).set(b.rows() as f64);
        metrics::gauge!("echannel_upstream_acked_seq", "gate" => gate.clone()).set(b.acked as f64);
        since_beat += step;
        if since_beat >= beat.every && beat_task.as_ref().is_none_or(|t| t.is_finished()) {
            since_beat = Duration::ZERO;
            let hb = beat.heartbeat(&gate, b);
            let client = beat.client.clone();
            // Its own task: a stalled upstream must not stop the backlog refresh.
            beat_task = Some(tokio::spawn(async move {
                match client.heartbeat(&hb).await {
                    Ok(ack) => tracing::debug!(watermark = ack.watermark, "heartbeat acknowledged"),
                    Err(e) => tracing::debug!(error = %e, "heartbeat not delivered"),
                }
            }));
        }
        since_log += step;
        if since_log >= log_every {
            since_log = Duration::ZERO;
            let s = status.borrow().clone();
            tracing::info!(
                backlog = b.rows(),
                acked = b.acked,
                last_seq = b.last_useq,
                rows_sent = s.rows_sent,
                consecutive_failures = s.consecutive_failures,
                last_error = s.last_error.as_deref().unwrap_or(""),
                "upstream sync"
            );
        }
    }
}
