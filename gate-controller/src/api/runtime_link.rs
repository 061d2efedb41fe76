//! Connects the tokio runtime's [`runtime::GateHandle`] to the API's [`GateLink`], so a
//! gate run by [`runtime::Gate`] (in `gated`, or the gates of `gate-sim demo`) serves the
//! API, the console and the traveller display.
//!
//! One bridge task per gate:
//!
//! - the runtime's status (`watch`) becomes the API's [`GateStatus`] (the machine's
//!   snapshot, outcome counters from the journal, device health derived from the faults
//!   the machine knows and the last fault detail seen on the feed, the signed watchlists
//!   in force, and the upstream backlog when [`Extras`] carries the upstream sync's); it
//!   is republished only when something the API shows changed, not on every heartbeat;
//! - every state-machine event on the runtime's feed is published on the API's
//!   [`EventFeed`] (movement records are not: they reach the console as counters);
//! - every API command is handed to [`runtime::GateHandle::command`], which feeds it to
//!   the machine in the gate loop; the machine journals it (user, role, reason, result)
//!   and its answer goes back to the API caller once the events and the status it caused
//!   are published (read-your-writes).
//!
//! The bridge ends when the gate stops (its status sender is dropped); the API's
//! streams end with it.

use super::link::{
    DeviceHealth, EventFeed, GateHandle, GateLink, GateStatus, OutcomeCounters, WatchlistInfo,
    WatchlistListInfo,
};
use crate::journal::outbox::Backlog;
use crate::record::GateEvent;
use crate::runtime::screening::WatchlistState;
use crate::runtime::{self, FeedKind};
use crate::types::{Device, Time};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

/// What the API shows besides the gate loop's own status.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// The upstream sync's backlog ([`crate::upstream::service::UpstreamSync::backlog`]);
    /// `None` when the gate has no `[upstream]` (the status then shows `null`).
    pub upstream_backlog: Option<watch::Receiver<Backlog>>,
}

/// The devices every gate reports on.
const DEVICES: [Device; 3] = [
    Device::DocumentReader,
    Device::FingerprintScanner,
    Device::LaneIo,
];

/// Links `gate` to a new [`GateLink`] for [`super::router`] and spawns the bridge task on
/// the current tokio runtime.
///
/// Event ids start at the current Unix time in milliseconds, so they keep increasing
/// across restarts of the process (a client resuming with an id from an earlier run gets
/// a `reset` and the full status, as for any id the feed no longer holds).
pub fn link(gate: &runtime::GateHandle) -> GateLink {
    link_with(gate, Extras::default())
}

/// Like [`link`], with the upstream backlog (and whatever else [`Extras`] carries).
pub fn link_with(gate: &runtime::GateHandle, extras: Extras) -> GateLink {
    let first_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1);
    let status = gate.status.borrow().clone();
    let details = BTreeMap::new();
    let backlog = rows(extras.upstream_backlog.as_ref());
    let initial = api_status(&status, &details, backlog);
    let (link, handle) = GateLink::channel(&status.gate_id, initial, first_id);
    // Subscribed here, not in the task: an event the gate emits before the task first
    // runs (a device that faults at start) still reaches the API with its detail.
    let feed = gate.subscribe();
    tokio::spawn(bridge(gate.clone(), feed, handle, extras));
    link
}

fn rows(backlog: Option<&watch::Receiver<Backlog>>) -> Option<u64> {
    backlog.map(|b| b.borrow().rows())
}

/// The API's view of the signed watchlists: the highest version, the oldest list's
/// publication time (the list that goes stale first), and each list. Ages are left to
/// the API (computed when served), so the status does not change every second.
fn watchlist_info(w: &WatchlistState) -> WatchlistInfo {
    WatchlistInfo {
        version: w.lists.iter().map(|l| l.version).max().unwrap_or(0),
        published_at: Time(w.lists.iter().map(|l| l.created_at_ms).min().unwrap_or(0)),
        stale: w.stale,
        max_age_s: Some(w.max_age_s),
        lists: w
            .lists
            .iter()
            .map(|l| WatchlistListInfo {
                list_id: l.list_id.clone(),
                version: l.version,
                published_at: Time(l.created_at_ms),
                documents: l.doc_count,
                persons: l.person_count,
                integrity: l.integrity.to_owned(),
                stale: l.stale,
            })
            .collect(),
    }
}

/// The API's view of the runtime's status.
fn api_status(
    s: &runtime::GateStatus,
    details: &BTreeMap<Device, String>,
    upstream_backlog: Option<u64>,
) -> GateStatus {
    let mut out = GateStatus::new(s.machine.clone());
    out.watchlist = s.watchlist.as_ref().map(watchlist_info);
    out.upstream_backlog = upstream_backlog;
    out.counters = OutcomeCounters {
        cleared: s.outcomes.cleared,
        referred: s.outcomes.referred,
        held: s.outcomes.held,
        aborted: s.outcomes.aborted,
    };
    out.devices = DEVICES
        .iter()
        .map(|&device| {
            let healthy = !s.machine.faults.contains(&device);
            DeviceHealth {
                device,
                healthy,
                detail: if healthy {
                    "ok".into()
                } else {
                    details
                        .get(&device)
                        .cloned()
                        .unwrap_or_else(|| "fault".into())
                },
            }
        })
        .collect();
    out
}

/// Waits for the next backlog change; never returns when there is no upstream (or its
/// sync stopped: the last value stays shown).
async fn backlog_changed(rx: &mut Option<watch::Receiver<Backlog>>) -> Option<u64> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    match r.changed().await {
        Ok(()) => Some(r.borrow_and_update().rows()),
        Err(_) => {
            let last = r.borrow().rows();
            *rx = None;
            Some(last)
        }
    }
}

async fn bridge(
    gate: runtime::GateHandle,
    mut feed: tokio::sync::broadcast::Receiver<runtime::FeedItem>,
    api: GateHandle,
    extras: Extras,
) {
    let GateHandle {
        status: api_status_tx,
        events,
        mut commands,
    } = api;
    let mut status = gate.status.clone();
    let mut details: BTreeMap<Device, String> = BTreeMap::new();
    let mut backlog_rx = extras.upstream_backlog;
    let mut backlog = rows(backlog_rx.as_ref());
    let publish =
        |s: &runtime::GateStatus, details: &BTreeMap<Device, String>, backlog: Option<u64>| {
            let next = api_status(s, details, backlog);
            api_status_tx.send_if_modified(|cur| {
                if *cur == next {
                    false
                } else {
                    *cur = next;
                    true
                }
            });
        };
    loop {
        tokio::select! {
            biased;
            item = feed.recv() => match item {
                Ok(item) => on_item(item, &events, &mut details),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the API fell behind the gate's feed; events were skipped");
                }
                Err(RecvError::Closed) => break,
            },
            Some(rows) = backlog_changed(&mut backlog_rx) => {
                if backlog != Some(rows) {
                    backlog = Some(rows);
                    let s = status.borrow().clone();
                    publish(&s, &details, backlog);
                }
            }
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let s = status.borrow_and_update().clone();
                publish(&s, &details, backlog);
            }
            req = commands.recv() => match req {
                Some(req) => {
                    // Read-your-writes: the answer goes out only after the events and the
                    // status the command caused are published, so a client that reads the
                    // status after a 200 sees the command's effect.
                    status.borrow_and_update();
                    let answer = execute(&gate, req.command.clone(), req.actor.clone()).await;
                    let _ = tokio::time::timeout(SETTLE, status.changed()).await;
                    loop {
                        match feed.try_recv() {
                            Ok(item) => on_item(item, &events, &mut details),
                            Err(TryRecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        }
                    }
                    let s = status.borrow_and_update().clone();
                    publish(&s, &details, backlog);
                    req.answer(answer);
                }
                None => break,
            },
        }
    }
    // The final status, then the API's handle is dropped: its streams end.
    let s = gate.status.borrow().clone();
    publish(&s, &details, backlog);
}

/// Longest wait for the gate's status after it answered a command.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

fn on_item(item: runtime::FeedItem, events: &EventFeed, details: &mut BTreeMap<Device, String>) {
    if let FeedKind::Event { event } = item.kind {
        if let GateEvent::DeviceFault { device, detail, .. } = &event {
            details.insert(*device, detail.clone());
        }
        events.publish(event);
    }
}

async fn execute(
    gate: &runtime::GateHandle,
    command: crate::record::OperatorCommand,
    actor: crate::record::Actor,
) -> super::link::CommandReply {
    match gate.command(command, actor).await {
        Some(r) => super::link::CommandReply {
            accepted: r.accepted,
            detail: r.detail,
        },
        None => super::link::CommandReply::refused("the gate has stopped"),
    }
}
/// Serves the API, console and display of `gate` on `listener` (see [`link`]) until the
/// gate stops; errors of the server are logged.
pub fn spawn_server(
    gate: &runtime::GateHandle,
    listener: tokio::net::TcpListener,
    config: &super::ApiConfig,
) -> tokio::task::JoinHandle<()> {
    spawn_server_with(gate, listener, config, Extras::default())
}

/// Like [`spawn_server`], with the upstream backlog (see [`link_with`]).
pub fn spawn_server_with(
    gate: &runtime::GateHandle,
    listener: tokio::net::TcpListener,
    config: &super::ApiConfig,
    extras: Extras,
) -> tokio::task::JoinHandle<()> {
    let app = super::router(link_with(gate, extras), config);
    let mut status = gate.status.clone();
    let stopped = async move { while status.changed().await.is_ok() {} };
    tokio::spawn(async move {
        if let Err(e) = super::serve(listener, app, stopped).await {
            tracing::error!(error = %e, "the API server stopped");
        }
    })
}

/// The lines that tell the person who started a process how to sign in with the
/// one-time local tokens (console URL first).
pub fn sign_in_help(base_url: &str, local: &super::config::LocalTokens) -> Vec<String> {
    let mut out = vec![format!("{base_url}/")];
    for (user, role, token) in &local.users {
        let role = match role {
            crate::record::Role::Viewer => "viewer",
            crate::record::Role::Operator => "operator",
            crate::record::Role::Supervisor => "supervisor",
        };
        out.push(format!(
            "  sign in as {user} ({role}) with the token {token}"
        ));
    }
    out
}
