//! The seam between the gate runtime (`gated`, which owns the [`Machine`]) and the API.
//!
//! The runtime keeps a [`GateHandle`] and gives the matching [`GateLink`] to
//! [`crate::api::router`]:
//!
//! ```no_run
//! # use gate_controller::api::link::{GateLink, GateStatus, CommandReply};
//! # use gate_controller::machine::{Action, Event, Machine};
//! # async fn shell(mut machine: Machine, now: gate_controller::types::Time) {
//! let (link, mut gate) = GateLink::channel("gate-01", GateStatus::new(machine.snapshot()), 1);
//! // ... spawn `api::serve(listener, link, config)` ...
//! // In the runtime's select loop:
//! if let Some(req) = gate.commands.recv().await {
//!     machine.handle(now, req.event());
//!     let mut reply = None;
//!     while let Some(action) = machine.poll_action() {
//!         if let Action::Emit { event } = &action {
//!             reply = reply.or_else(|| CommandReply::from_event(event));
//!             gate.events.publish(event.clone());
//!         }
//!         // ... carry out the other actions as usual ...
//!     }
//!     req.answer(reply.unwrap_or_else(|| CommandReply::refused("the gate gave no answer")));
//! }
//! // After every batch of events: publish the new status (cheap; watchers coalesce).
//! gate.status.send_modify(|s| s.snapshot = machine.snapshot());
//! # }
//! ```

use crate::machine::{Config, Event, Machine, Snapshot};
use crate::record::{Actor, GateEvent, OperatorCommand, Outcome};
use crate::types::{Device, Time};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How many recent events the feed keeps for SSE resumption (`Last-Event-ID`).
pub const EVENT_RING: usize = 1024;

/// Live status of one gate, published by the runtime on a `watch` channel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateStatus {
    /// The state machine's view (mode, step, prompt, doors, alarms, faults).
    pub snapshot: Snapshot,
    /// Transits by outcome since the journal was created (the runtime seeds them from it).
    pub counters: OutcomeCounters,
    /// Health of each device, when the runtime knows it.
    pub devices: Vec<DeviceHealth>,
    /// The watchlist in force, once one is loaded.
    pub watchlist: Option<WatchlistInfo>,
    /// Movement records not yet acknowledged by the upstream, once upstream sync exists.
    pub upstream_backlog: Option<u64>,
}

impl GateStatus {
    /// A status with zero counters, no device report, no watchlist and no upstream.
    pub fn new(snapshot: Snapshot) -> GateStatus {
        GateStatus {
            snapshot,
            counters: OutcomeCounters::default(),
            devices: Vec::new(),
            watchlist: None,
            upstream_backlog: None,
        }
    }

    /// The status of a freshly started machine with the default configuration.
    pub fn idle() -> GateStatus {
        GateStatus::new(Machine::new(Config::default(), Time(0), 1).snapshot())
    }
}

/// Transit counts by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounters {
    /// Cleared transits.
    pub cleared: u64,
    /// Referred transits.
    pub referred: u64,
    /// Held transits.
    pub held: u64,
    /// Aborted transits.
    pub aborted: u64,
}

impl OutcomeCounters {
    /// Counts one more transit with `outcome`.
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Cleared => self.cleared += 1,
            Outcome::Referred => self.referred += 1,
            Outcome::Held => self.held += 1,
            Outcome::Aborted => self.aborted += 1,
        }
    }

    /// The count for `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Cleared => self.cleared,
            Outcome::Referred => self.referred,
            Outcome::Held => self.held,
            Outcome::Aborted => self.aborted,
        }
    }
}

/// Health of one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceHealth {
    /// Which device.
    pub device: Device,
    /// True when the device answers normally.
    pub healthy: bool,
    /// What is wrong, or an informative line (model, firmware).
    pub detail: String,
}

/// The watchlist in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchlistInfo {
    /// Version (snapshot + applied deltas); with several lists, the highest.
    pub version: u64,
    /// When that version was published upstream (Unix milliseconds); the API reports its
    /// age. With several lists, the oldest list's (the one that goes stale first);
    /// `Time(0)` when no list is loaded.
    pub published_at: Time,
    /// True when the gate refers everyone because the lists are past their maximum age,
    /// missing or failed their integrity check.
    pub stale: bool,
    /// The staleness limit (seconds), when the gate has one.
    pub max_age_s: Option<u64>,
    /// Each signed list (empty for a list without per-list details).
    pub lists: Vec<WatchlistListInfo>,
}

impl WatchlistInfo {
    /// A single list at `version`, published at `published_at`, not stale.
    pub fn new(version: u64, published_at: Time) -> WatchlistInfo {
        WatchlistInfo {
            version,
            published_at,
            stale: false,
            max_age_s: None,
            lists: Vec::new(),
        }
    }
}

/// One signed list of a [`WatchlistInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchlistListInfo {
    /// List id (`sltd`, `national`, ...).
    pub list_id: String,
    /// Current version (snapshot + applied deltas).
    pub version: u64,
    /// When that version was created (Unix milliseconds).
    pub published_at: Time,
    /// Document entries.
    pub documents: u64,
    /// Person entries.
    pub persons: u64,
    /// `ok`, `pending` (background check running) or `failed`.
    pub integrity: String,
    /// True when this list is past the maximum age or failed its integrity check.
    pub stale: bool,
}

/// A command from the API to the gate, with who issued it and why; answered on `reply`.
#[derive(Debug)]
pub struct CommandRequest {
    /// The command.
    pub command: OperatorCommand,
    /// Authenticated user, role and reason (the gate journals them).
    pub actor: Actor,
    /// Where the gate answers.
    pub reply: oneshot::Sender<CommandReply>,
}

impl CommandRequest {
    /// The state-machine input for this request.
    pub fn event(&self) -> Event {
        Event::Operator {
            command: self.command.clone(),
            actor: self.actor.clone(),
        }
    }

    /// Sends the answer (ignored if the API gave up waiting).
    pub fn answer(self, reply: CommandReply) {
        let _ = self.reply.send(reply);
    }
}

/// The gate's answer to a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandReply {
    /// Whether the gate carried the command out.
    pub accepted: bool,
    /// What happened, or why not.
    pub detail: String,
}

impl CommandReply {
    /// The reply carried by a [`GateEvent::Command`] event the machine emitted, if it is one.
    pub fn from_event(event: &GateEvent) -> Option<CommandReply> {
        match event {
            GateEvent::Command {
                accepted, detail, ..
            } => Some(CommandReply {
                accepted: *accepted,
                detail: detail.clone(),
            }),
            _ => None,
        }
    }

    /// A refusal with `detail`.
    pub fn refused(detail: &str) -> CommandReply {
        CommandReply {
            accepted: false,
            detail: detail.to_owned(),
        }
    }
}

/// One event of the live feed: id (monotonic per gate), publication time, event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedEvent {
    /// Event id (SSE `id:`), strictly increasing.
    pub id: u64,
    /// When the runtime published it (Unix milliseconds).
    pub ts: u64,
    /// The event.
    pub event: GateEvent,
}

/// Where resumption starts: the events after the client's last id, or a gap.
#[derive(Debug)]
pub enum Backlog {
    /// Every event after the requested id, oldest first (possibly none).
    Events(Vec<FeedEvent>),
    /// Events after the requested id are no longer held (or the id is from another run):
    /// the client must refetch the full status.
    Gap,
}

#[derive(Debug)]
struct Ring {
    next_id: u64,
    events: VecDeque<FeedEvent>,
}

/// The gate's live event feed: assigns ids, keeps the last [`EVENT_RING`] events for
/// resumption and broadcasts each event to live subscribers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventFeed {
    ring: Arc<Mutex<Ring>>,
    live: broadcast::Sender<FeedEvent>,
}

impl EventFeed {
    /// A feed whose first event gets id `first_id` (seed it from the events log so ids
    /// are not reused after a restart; ids from another run are treated as a gap anyway).
    pub fn new(first_id: u64) -> EventFeed {
        let (live, _) = broadcast::channel(EVENT_RING);
        EventFeed {
            ring: Arc::new(Mutex::new(Ring {
                next_id: first_id.max(1),
                events: VecDeque::with_capacity(EVENT_RING),
            })),
            live,
        }
    }

    /// Publishes `event`; returns its id.
    pub fn publish(&self, event: GateEvent) -> u64 {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let id = ring.next_id;
        ring.next_id += 1;
        let fe = FeedEvent { id, ts, event };
        if ring.events.len() == EVENT_RING {
            ring.events.pop_front();
        }
        ring.events.push_back(fe.clone());
        // No live subscriber is fine.
        let _ = self.live.send(fe);
        id
    }

    /// Subscribes to live events and, atomically with it, returns the backlog after
    /// `last_id` (`None`: no backlog wanted).
    pub fn subscribe(&self, last_id: Option<u64>) -> (Backlog, broadcast::Receiver<FeedEvent>) {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = self.live.subscribe();
        let backlog = match last_id {
            None => Backlog::Events(Vec::new()),
            Some(id) => Self::since(&ring, id),
        };
        (backlog, rx)
    }

    /// The backlog after `last_id` without subscribing (used after a lagging receiver).
    pub fn backlog(&self, last_id: u64) -> Backlog {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        Self::since(&ring, last_id)
    }

    /// Id of the newest event published, if any.
    pub fn last_id(&self) -> Option<u64> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.next_id
            .checked_sub(1)
            .filter(|_| !ring.events.is_empty())
    }

    fn since(ring: &Ring, last_id: u64) -> Backlog {
        // Newest id handed out so far is next_id - 1.
        if last_id >= ring.next_id {
            return Backlog::Gap;
        }
        let oldest = ring.events.front().map(|e| e.id).unwrap_or(ring.next_id);
        if last_id + 1 < oldest {
            return Backlog::Gap;
        }
        Backlog::Events(
            ring.events
                .iter()
                .filter(|e| e.id > last_id)
                .cloned()
                .collect(),
        )
    }
}

/// The API's side of the seam: the gate's id, its live status, its event feed and a
/// way to send it commands. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GateLink {
    /// Gate id as configured (shown on the console tile, `data-gate-id`).
    pub gate_id: String,
    /// Latest status.
    pub status: watch::Receiver<GateStatus>,
    /// Live events with ids and a resumption ring.
    pub events: EventFeed,
    /// Commands to the gate (bounded; the gate answers each on its oneshot).
    pub commands: mpsc::Sender<CommandRequest>,
}

/// The runtime's side of the seam (see the module example).
#[derive(Debug)]
pub struct GateHandle {
    /// Publish the status here after each batch of machine events.
    pub status: watch::Sender<GateStatus>,
    /// Publish every [`GateEvent`] the machine emits here.
    pub events: EventFeed,
    /// Commands to feed to the machine as [`Event::Operator`].
    pub commands: mpsc::Receiver<CommandRequest>,
}

impl GateLink {
    /// A connected pair: the link for the API and the handle for the runtime. Event ids
    /// start at `first_event_id`.
    pub fn channel(
        gate_id: &str,
        initial: GateStatus,
        first_event_id: u64,
    ) -> (GateLink, GateHandle) {
        let (status_tx, status_rx) = watch::channel(initial);
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let events = EventFeed::new(first_event_id);
        (
            GateLink {
                gate_id: gate_id.to_owned(),
                status: status_rx,
                events: events.clone(),
                commands: cmd_tx,
            },
            GateHandle {
                status: status_tx,
                events,
                commands: cmd_rx,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::AlarmKind;

    fn ev(n: u8) -> GateEvent {
        GateEvent::AlarmCleared {
            alarm: if n.is_multiple_of(2) {
                AlarmKind::Tailgating
            } else {
                AlarmKind::DoorFault
            },
        }
    }

    #[test]
    fn backlog_after_an_id_in_the_ring_is_exact() {
        let feed = EventFeed::new(10);
        for n in 0..5 {
            feed.publish(ev(n));
        }
        match feed.backlog(12) {
            Backlog::Events(v) => {
                assert_eq!(v.iter().map(|e| e.id).collect::<Vec<_>>(), vec![13, 14])
            }
            Backlog::Gap => panic!("unexpected gap"),
        }
        assert!(matches!(feed.backlog(14), Backlog::Events(v) if v.is_empty()));
        assert!(matches!(feed.backlog(9), Backlog::Events(v) if v.len() == 5));
    }

    #[test]
    fn ids_from_the_future_or_evicted_are_a_gap() {
        let feed = EventFeed::new(1);
        for n in 0..(EVENT_RING + 10) {
            feed.publish(ev(n as u8));
        }
        assert!(matches!(feed.backlog(3), Backlog::Gap));
        assert!(matches!(feed.backlog(50_000), Backlog::Gap));
        assert_eq!(feed.last_id(), Some((EVENT_RING + 10) as u64));
        assert!(matches!(feed.backlog(10), Backlog::Events(v) if v.len() == EVENT_RING));
    }

    #[test]
    fn a_fresh_feed_has_no_last_id_and_treats_any_id_as_a_gap() {
        let feed = EventFeed::new(1);
        assert_eq!(feed.last_id(), None);
        assert!(matches!(feed.backlog(0), Backlog::Events(v) if v.is_empty()));
        assert!(matches!(feed.backlog(7), Backlog::Gap));
    }
}
