//! The gate state machine: a pure, deterministic core that owns every decision.
//!
//! Shape (after quinn-proto): the driver passes `now` with every input —
//! [`Machine::handle`] for events, [`Machine::handle_timeout`] when the deadline from
//! [`Machine::poll_timeout`] has passed — and drains [`Machine::poll_action`] after each
//! call. No clock, no I/O, no randomness here: `gated` drives it in real time and
//! `gate-sim` in virtual time, with identical behaviour.
//!
//! The machine is level-triggered: after each input it re-evaluates what the current
//! step needs (door positions, occupancy, sensor states) and progresses as far as it can.
//! Doors go through one small controller ([`DoorCtl`]) that refuses to open a door while
//! the other is not closed (invariant 2, except in emergency) and never drives a door
//! closed while its safety sensor is active (invariant 4).

use crate::decision::{self, Policy, WatchlistDecision};
use crate::party::{classify, ChildPolicy, Party};
use crate::record::{
    Actor, AlarmKind, BiometricSummary, GateEvent, Mode, OperatorCommand, Outcome, Prompt, Reason,
    Record, Role, Step, TxnId,
};
use crate::types::{
    CaptureFailure, CaptureInfo, Device, Document, DocumentKey, Door, DoorPosition, ReadFailure,
    Sensor, Time, WatchlistVerdict,
};
use crate::upstream::disk::DiskLevel;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// Deadlines of every step, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Reading the chip after the document is presented.
    pub document_read_ms: u64,
    /// Watchlist verdict.
    pub watchlist_ms: u64,
    /// Traveller to enter once the entry is open (also the time allowed to resolve tailgating).
    pub enter_ms: u64,
    /// Exactly one occupant with the entry closed.
    pub occupancy_ms: u64,
    /// One fingerprint capture attempt.
    pub capture_ms: u64,
    /// One 1:1 comparison.
    pub match_ms: u64,
    /// Durable journal commit of a decision.
    pub journal_ms: u64,
    /// Traveller to leave the lane once told to (after that: a lingering alarm).
    pub leave_ms: u64,
    /// A door to reach its commanded position (after that: door fault).
    pub door_travel_ms: u64,
    /// How long a "go to the counter" notice stays up before the gate is ready again.
    pub notice_ms: u64,
    /// A threshold beam blocked this long while the gate is idle (doors closed, nobody
    /// counted) is taken for a failed sensor: out of service until `in_service`.
    pub beam_blocked_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            document_read_ms: 8_000,
            watchlist_ms: 1_000,
            enter_ms: 15_000,
            occupancy_ms: 10_000,
            capture_ms: 8_000,
            match_ms: 2_000,
            journal_ms: 2_000,
            leave_ms: 20_000,
            door_travel_ms: 4_000,
            notice_ms: 3_000,
            beam_blocked_ms: 10_000,
        }
    }
}

/// Everything the core needs to know about its lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Eligibility and biometric policy.
    pub policy: Policy,
    /// Step deadlines.
    pub timeouts: Timeouts,
    /// How many times a closing door may be reversed by its safety sensor before the
    /// gate declares a door fault.
    pub max_door_reversals: u8,
    /// A threshold beam that stays clear through this many consecutive transits in which
    /// somebody walked through it is taken for a failed sensor (out of service). 0: off.
    pub beam_silent_transits: u8,
    /// One adult with one child in the mantrap: pass on the adult's clear decision
    /// (`allow`) or refer both to the counter (`refer`, the default).
    #[serde(default)]
    pub accompanied_child: ChildPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::default(),
            timeouts: Timeouts::default(),
            max_door_reversals: 3,
            beam_silent_transits: 3,
            accompanied_child: ChildPolicy::default(),
        }
    }
}

/// Inputs to the state machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A document was placed on the reader.
    DocumentPresented,
    /// A document was placed but its machine-readable zone could not be used (the OCR's
    /// check digits fail): the traveller is asked to present it again; no transit starts.
    DocumentMisread,
    /// The chip read finished.
    DocumentRead {
        /// The document, or why it could not be read.
        result: Result<Document, ReadFailure>,
    },
    /// The watchlist verdict for the current document.
    WatchlistChecked {
        /// Verdict.
        verdict: WatchlistVerdict,
    },
    /// A binary sensor changed.
    Sensor {
        /// Which sensor.
        sensor: Sensor,
        /// Whether it is now active (beam broken, obstruction present).
        active: bool,
    },
    /// The number of people in the mantrap (overhead sensor or beam-array estimate).
    /// Of a sensor that does not tell children apart; the child count stays as last
    /// reported by [`Event::Headcount`] (at most `persons`), 0 if never.
    Occupancy {
        /// Persons counted.
        persons: u8,
    },
    /// The overhead sensor's head count with heights: `persons` in the mantrap, of whom
    /// `children` are below its child height threshold (see `party`).
    Headcount {
        /// Persons counted.
        persons: u8,
        /// Of those, persons below the child height threshold.
        children: u8,
    },
    /// A door reached a position (feedback switch).
    DoorReached {
        /// Which door.
        door: Door,
        /// Where it arrived.
        position: DoorPosition,
    },
    /// A fingerprint capture finished (metadata only; the template stays in the shell).
    FingerprintCaptured {
        /// Capture metadata or failure.
        result: Result<CaptureInfo, CaptureFailure>,
    },
    /// The 1:1 comparison of the last capture against the enrolled thumbs finished.
    MatchDone {
        /// Best score over the enrolled thumbs, 0..1.
        score: f32,
    },
    /// The journal durably committed the record of `txn`.
    Journaled {
        /// Transit whose record was committed.
        txn: TxnId,
    },
    /// The journal could not commit the record of `txn`.
    JournalFailed {
        /// Transit whose record failed.
        txn: TxnId,
        /// Error detail.
        detail: String,
    },
    /// An operator command (authenticated by the shell; the role is checked here).
    Operator {
        /// The command.
        command: OperatorCommand,
        /// Who and why.
        actor: Actor,
    },
    /// The emergency/fire input changed.
    Emergency {
        /// Whether emergency is signalled.
        active: bool,
    },
    /// A device failed.
    DeviceFault {
        /// Device.
        device: Device,
        /// Detail.
        detail: String,
    },
    /// A device works again.
    DeviceRecovered {
        /// Device.
        device: Device,
    },
    /// The lane I/O's local interlock refused to move `door` to `position`: a refused
    /// close is an obstruction the interlock saw (counted as a reversal), a refused open
    /// is a door fault (the other door is not confirmed closed).
    DoorRefused {
        /// Which door.
        door: Door,
        /// The position it was commanded to and did not get.
        position: DoorPosition,
    },
    /// The shell tried to install a watchlist update: `Err` (rejected: unsigned,
    /// corrupt, out of order) raises an alarm, `Ok(version)` clears it.
    WatchlistUpdate {
        /// The new version, or why the update was rejected.
        result: Result<u64, String>,
    },
    /// The disk guard's verdict on the journal's file system changed (the shell polls it;
    /// a file system it cannot measure counts as `StopClearing`). `Alarm` raises
    /// `disk_space_low`; `StopClearing` raises `disk_full` and refers every traveller not
    /// yet let in; `Ok` clears both.
    DiskLevel {
        /// The new level.
        level: DiskLevel,
        /// Usage or error, for the operator.
        detail: String,
    },
    /// The process is asked to stop: finish or safely abort the transit.
    Shutdown,
}

/// Outputs of the state machine, to be carried out by the driver in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Read the document chip (answer with [`Event::DocumentRead`]).
    ReadDocument,
    /// Abandon a chip read in progress.
    CancelDocumentRead,
    /// Look the document (and the person on it) up in the watchlists
    /// (answer with [`Event::WatchlistChecked`]).
    CheckWatchlist {
        /// Document key.
        key: DocumentKey,
    },
    /// Drive a door open.
    OpenDoor {
        /// Which door.
        door: Door,
    },
    /// Drive a door closed.
    CloseDoor {
        /// Which door.
        door: Door,
    },
    /// Capture a thumbprint (answer with [`Event::FingerprintCaptured`]).
    CaptureFingerprint {
        /// Attempt number, from 1.
        attempt: u8,
    },
    /// Abandon a capture in progress.
    CancelCapture,
    /// Compare the last capture with the enrolled thumbs (answer with [`Event::MatchDone`]).
    MatchFingerprint {
        /// Attempt number.
        attempt: u8,
    },
    /// Show a prompt to the traveller.
    Display {
        /// Prompt.
        prompt: Prompt,
    },
    /// Durably journal a movement record (answer with [`Event::Journaled`] or
    /// [`Event::JournalFailed`]).
    Journal {
        /// Record.
        record: Record,
    },
    /// Log an event (events log, live feed, alarms).
    Emit {
        /// Event.
        event: GateEvent,
    },
    /// Nothing is in progress any more: the process may exit.
    ShutdownReady,
}

/// A door as the core sees it: what it last drove, what it wants, where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorCtl {
    /// Position last commanded.
    pub target: DoorPosition,
    /// Position the door should end up in.
    pub want: DoorPosition,
    /// Last position reported, `None` while moving or unknown.
    pub at: Option<DoorPosition>,
    deadline: Option<Time>,
    reversals: u8,
    /// The lane I/O refused to close it; the obstruction is already counted.
    refused: bool,
    /// The position last reported and not yet followed by a command: a door commanded
    /// to where it already stands reports nothing new (e.g. found open after a restart).
    seen: Option<DoorPosition>,
}

impl DoorCtl {
    fn new() -> Self {
        DoorCtl {
            target: DoorPosition::Closed,
            want: DoorPosition::Closed,
            at: None,
            deadline: None,
            reversals: 0,
            refused: false,
            seen: None,
        }
    }
    /// Commanded closed and seen closed.
    pub fn is_closed(&self) -> bool {
        self.target == DoorPosition::Closed && self.at == Some(DoorPosition::Closed)
    }
    /// Commanded open and seen open.
    pub fn is_open(&self) -> bool {
        self.target == DoorPosition::Open && self.at == Some(DoorPosition::Open)
    }
}

/// The steps of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Ready,
    Reading,
    CheckingWatchlist,
    Entering,
    ClosingEntry,
    Capturing {
        attempt: u8,
    },
    Matching {
        attempt: u8,
    },
    Committing,
    Exiting,
    ClosingExit,
    LettingOut {
        closing: bool,
    },
    /// After a restart in the middle of a transit: waiting for the lane I/O to say
    /// whether anybody is inside before letting them out or going idle.
    Resuming,
    Notice,
    Held,
    OutOfService,
    Emergency,
    Maintenance,
    Stopped,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Ready => "ready",
            Phase::Reading => "reading_document",
            Phase::CheckingWatchlist => "checking_watchlist",
            Phase::Entering => "entering",
            Phase::ClosingEntry => "closing_entry",
            Phase::Capturing { .. } => "capturing",
            Phase::Matching { .. } => "matching",
            Phase::Committing => "committing",
            Phase::Exiting => "exiting",
            Phase::ClosingExit => "closing_exit",
            Phase::LettingOut { .. } => "letting_out",
            Phase::Resuming => "resuming",
            Phase::Notice => "notice",
            Phase::Held => "held",
            Phase::OutOfService => "out_of_service",
            Phase::Emergency => "emergency",
            Phase::Maintenance => "maintenance",
            Phase::Stopped => "stopped",
        }
    }

    fn mode(self) -> Mode {
        match self {
            Phase::Ready => Mode::Ready,
            Phase::Held => Mode::Held,
            Phase::OutOfService | Phase::Stopped => Mode::OutOfService,
            Phase::Emergency => Mode::Emergency,
            Phase::Maintenance => Mode::Maintenance,
            _ => Mode::Transit,
        }
    }

    /// Someone may be inside the mantrap and no decision has been made yet.
    fn occupant_undecided(self) -> bool {
        matches!(
            self,
            Phase::Entering
                | Phase::ClosingEntry
                | Phase::Capturing { .. }
                | Phase::Matching { .. }
        )
    }

    /// A transit is under way before anybody entered.
    fn pre_entry(self) -> bool {
        matches!(self, Phase::Reading | Phase::CheckingWatchlist)
    }
}

#[derive(Clone, Debug)]
struct Transit {
    id: TxnId,
    started_at: Time,
    document: Option<Document>,
    watchlist: Option<WatchlistVerdict>,
    attempts: u8,
    poor_captures: u8,
    last_score: Option<f32>,
    /// An outcome record has been emitted (and not retracted by a journal failure).
    recorded: Option<Outcome>,
    tailgating: bool,
    /// A child came in with the traveller and stays with them (policy `allow`).
    child: bool,
    lingering_alarm: bool,
    /// Each threshold beam broke at least once during the transit.
    beam_seen: [bool; 2],
    /// Somebody walked through each threshold during the transit (entered the mantrap;
    /// left through the exit).
    crossed: [bool; 2],
}

impl Transit {
    fn new(id: TxnId, now: Time, beams: [bool; 2]) -> Transit {
        Transit {
            id,
            started_at: now,
            document: None,
            watchlist: None,
            attempts: 0,
            poor_captures: 0,
            last_score: None,
            recorded: None,
            tailgating: false,
            child: false,
            lingering_alarm: false,
            beam_seen: beams,
            crossed: [false; 2],
        }
    }
}

/// A read-only view of the machine for status pages and tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// Coarse mode.
    pub mode: Mode,
    /// Current step name.
    pub step: &'static str,
    /// Prompt on the traveller display.
    pub prompt: Prompt,
    /// Current transit id, if any.
    pub txn: Option<TxnId>,
    /// Active alarms.
    pub alarms: Vec<AlarmKind>,
    /// Faulty devices.
    pub faults: Vec<Device>,
    /// Entry door: commanded position and last reported position.
    pub entry: (DoorPosition, Option<DoorPosition>),
    /// Exit door: commanded position and last reported position.
    pub exit: (DoorPosition, Option<DoorPosition>),
    /// Persons in the mantrap.
    pub occupancy: u8,
}

/// The gate state machine. See the module documentation.
#[derive(Clone, Debug)]
pub struct Machine {
    cfg: Config,
    phase: Phase,
    phase_deadline: Option<Time>,
    transit: Option<Transit>,
    next_txn: u64,
    doors: [DoorCtl; 2],
    safety: [bool; 2],
    beams: [bool; 2],
    /// When each threshold beam last became blocked (while it stays blocked).
    beam_since: [Option<Time>; 2],
    /// Consecutive transits through which each threshold beam never broke.
    beam_silent: [u8; 2],
    /// Threshold beams judged failed by sensor supervision.
    beam_fault: [bool; 2],
    last_beam: Option<Sensor>,
    occupancy: u8,
    /// Of `occupancy`, persons below the overhead sensor's child height threshold.
    children: u8,
    emergency_input: bool,
    faults: BTreeSet<Device>,
    door_fault: bool,
    manual_oos: bool,
    maintenance: bool,
    shutdown: bool,
    alarms: BTreeSet<AlarmKind>,
    /// The disk guard's last verdict on the journal's file system, with its detail.
    disk: (DiskLevel, String),
    prompt: Prompt,
    actions: VecDeque<Action>,
    /// Records handed to the journal and not yet acknowledged.
    unacked: Vec<Record>,
    /// Records the journal failed to write, to be written again at `retry_at`.
    retry: Vec<Record>,
    retry_at: Option<Time>,
}

/// How long to wait before writing a failed record again.
const JOURNAL_RETRY_MS: u64 = 1_000;

fn idx(door: Door) -> usize {
    match door {
        Door::Entry => 0,
        Door::Exit => 1,
    }
}

impl Machine {
    /// A machine for a lane whose doors are assumed closed (the first actions command
    /// them closed and the prompt). Transit ids start at `first_txn`.
    pub fn new(cfg: Config, now: Time, first_txn: u64) -> Machine {
        let mut m = Machine {
            cfg,
            phase: Phase::Ready,
            phase_deadline: None,
            transit: None,
            next_txn: first_txn,
            doors: [DoorCtl::new(), DoorCtl::new()],
            safety: [false; 2],
            beams: [false; 2],
            beam_since: [None; 2],
            beam_silent: [0; 2],
            beam_fault: [false; 2],
            last_beam: None,
            occupancy: 0,
            children: 0,
            emergency_input: false,
            faults: BTreeSet::new(),
            door_fault: false,
            manual_oos: false,
            maintenance: false,
            shutdown: false,
            alarms: BTreeSet::new(),
            disk: (DiskLevel::Ok, String::new()),
            prompt: Prompt::PresentDocument,
            actions: VecDeque::new(),
            unacked: Vec::new(),
            retry: Vec::new(),
            retry_at: None,
        };
        for d in Door::ALL {
            m.drive(d, DoorPosition::Closed, now);
        }
        m.push(Action::Display {
            prompt: Prompt::PresentDocument,
        });
        m
    }

    /// After a restart (the journal holds an earlier run): whoever the lane I/O reports
    /// in the mantrap within `timeouts.notice_ms` is let out through the entry before
    /// anybody new is served — the process may have stopped while someone was inside,
    /// with or without their record. `unfinished`: a transit that was started and has no
    /// record; it ends `aborted` with reason `restart` (no decision survives a restart,
    /// the exit stays shut). Call once, right after [`Machine::new`].
    pub fn resume(&mut self, now: Time, unfinished: Option<TxnId>) {
        if self.transit.is_some() || self.phase != Phase::Ready {
            return;
        }
        if let Some(txn) = unfinished {
            self.next_txn = self.next_txn.max(txn.0.saturating_add(1));
            self.transit = Some(Transit::new(txn, now, self.beams));
            self.record(now, Outcome::Aborted, vec![Reason::Restart], None);
        }
        self.show(Prompt::PleaseWait);
        self.set_phase(now, Phase::Resuming);
        self.progress(now);
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest deadline; call [`Machine::handle_timeout`] once it has passed.
    pub fn poll_timeout(&self) -> Option<Time> {
        let doors = self.doors.iter().filter_map(|d| d.deadline);
        doors
            .chain(self.phase_deadline)
            .chain(self.retry_at)
            .chain(self.beam_deadline())
            .min()
    }

    /// When a beam blocked in an idle lane counts as failed, if one is blocked now.
    fn beam_deadline(&self) -> Option<Time> {
        let idle = self.phase == Phase::Ready
            && self.occupancy == 0
            && self.doors.iter().all(DoorCtl::is_closed);
        if !idle {
            return None;
        }
        let ms = self.cfg.timeouts.beam_blocked_ms;
        (0..2)
            .filter(|k| !self.beam_fault[*k])
            .filter_map(|k| self.beam_since[k].map(|t| t.plus(ms)))
            .min()
    }

    /// Sensor supervision found a failed threshold beam: out of service until `in_service`.
    fn on_beam_fault(&mut self, now: Time, k: usize, why: &str) {
        if self.beam_fault[k] {
            return;
        }
        self.beam_fault[k] = true;
        let name = if k == 0 { "entry" } else { "exit" };
        let detail = format!("{name} beam {why}");
        self.emit(GateEvent::DeviceFault {
            device: Device::LaneIo,
            detail: detail.clone(),
        });
        self.raise(AlarmKind::DeviceFault, detail);
        if self.phase == Phase::Ready {
            self.go_idle(now);
        }
    }

    fn beam_faulty(&self) -> bool {
        self.beam_fault.iter().any(|f| *f)
    }

    /// Records handed to the journal and not yet acknowledged, including those waiting
    /// to be written again after a failure.
    pub fn journal_backlog(&self) -> usize {
        self.unacked.len() + self.retry.len()
    }

    /// Coarse mode.
    pub fn mode(&self) -> Mode {
        self.mode_in(self.phase)
    }

    /// The mode of `phase` now: a transit whose lane I/O is down (nobody can be let out
    /// until it is back) shows as out of service.
    fn mode_in(&self, phase: Phase) -> Mode {
        match phase.mode() {
            Mode::Transit if self.faults.contains(&Device::LaneIo) => Mode::OutOfService,
            m => m,
        }
    }

    /// Name of the current step.
    pub fn step(&self) -> &'static str {
        self.phase.name()
    }

    /// Read-only view for status and tests.
    pub fn snapshot(&self) -> Snapshot {
        let d = |door: Door| (self.doors[idx(door)].target, self.doors[idx(door)].at);
        Snapshot {
            mode: self.mode(),
            step: self.step(),
            prompt: self.prompt,
            txn: self.transit.as_ref().map(|t| t.id),
            alarms: self.alarms.iter().copied().collect(),
            faults: self.faults.iter().copied().collect(),
            entry: d(Door::Entry),
            exit: d(Door::Exit),
            occupancy: self.occupancy,
        }
    }

    /// The door controller of `door`.
    pub fn door(&self, door: Door) -> &DoorCtl {
        &self.doors[idx(door)]
    }

    /// Feeds one event.
    pub fn handle(&mut self, now: Time, event: Event) {
        match event {
            Event::DocumentPresented => self.on_document_presented(now),
            Event::DocumentMisread => {
                if self.phase == Phase::Ready {
                    self.show(Prompt::PresentAgain);
                }
            }
            Event::DocumentRead { result } => self.on_document_read(now, result),
            Event::WatchlistChecked { verdict } => self.on_watchlist(now, verdict),
            Event::Sensor { sensor, active } => self.on_sensor(now, sensor, active),
            Event::Occupancy { persons } => {
                let children = self.children.min(persons);
                self.on_occupancy(persons, children)
            }
            Event::Headcount { persons, children } => self.on_occupancy(persons, children),
            Event::DoorReached { door, position } => self.on_door_reached(door, position),
            Event::FingerprintCaptured { result } => self.on_capture(now, result),
            Event::MatchDone { score } => self.on_match(now, score),
            Event::Journaled { txn } => self.on_journaled(now, txn),
            Event::JournalFailed { txn, detail } => self.on_journal_failed(now, txn, detail),
            Event::Operator { command, actor } => self.on_command(now, command, actor),
            Event::Emergency { active } => {
                self.emergency_input = active;
                if active {
                    self.enter_emergency(now);
                }
            }
            Event::DeviceFault { device, detail } => self.on_fault(now, device, detail),
            Event::DoorRefused { door, position } => self.on_door_refused(now, door, position),
            Event::DeviceRecovered { device } => {
                if self.faults.remove(&device) {
                    self.emit(GateEvent::DeviceRecovered { device });
                    if device == Device::LaneIo {
                        // Doors still on their way get a full travel time from now.
                        let travel = self.cfg.timeouts.door_travel_ms;
                        for c in &mut self.doors {
                            if c.at != Some(c.target) {
                                c.deadline = Some(now.plus(travel));
                            }
                        }
                    }
                    if self.faults.is_empty() && !self.door_fault {
                        self.clear_alarm(AlarmKind::DeviceFault);
                    }
                }
            }
            Event::WatchlistUpdate {
                result: Err(detail),
            } => self.raise(AlarmKind::WatchlistUpdateRejected, detail),
            Event::WatchlistUpdate { result: Ok(_) } => {
                self.clear_alarm(AlarmKind::WatchlistUpdateRejected)
            }
            Event::DiskLevel { level, detail } => self.on_disk_level(level, detail),
            Event::Shutdown => {
                self.shutdown = true;
                if matches!(
                    self.phase,
                    Phase::Ready
                        | Phase::OutOfService
                        | Phase::Maintenance
                        | Phase::Notice
                        | Phase::Held
                ) {
                    self.finish_transit(now);
                } else if self.phase == Phase::Emergency {
                    // Doors stay released; nothing else to finish.
                    self.push(Action::ShutdownReady);
                } else if self.phase.pre_entry() {
                    self.abort_pre_entry(now, Reason::Shutdown);
                } else if self.phase.occupant_undecided() {
                    self.record(now, Outcome::Aborted, vec![Reason::Shutdown], None);
                    self.let_out(now);
                }
            }
        }
        self.settle(now);
    }

    /// Handles every deadline that has passed at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        for d in Door::ALL {
            let c = self.doors[idx(d)];
            if c.deadline.is_some_and(|t| t <= now) {
                self.doors[idx(d)].deadline = None;
                // Without the lane I/O there is no position feedback to judge by: the
                // door is timed afresh when the I/O is back.
                if c.at != Some(c.target) && !self.faults.contains(&Device::LaneIo) {
                    self.on_door_fault(now, d, "did not reach its position in time");
                }
            }
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            for record in std::mem::take(&mut self.retry) {
                self.unacked.push(record.clone());
                self.push(Action::Journal { record });
            }
        }
        if self.phase_deadline.is_some_and(|t| t <= now) {
            self.phase_deadline = None;
            self.on_phase_timeout(now);
        }
        if self.beam_deadline().is_some_and(|t| t <= now) {
            let ms = self.cfg.timeouts.beam_blocked_ms;
            for k in 0..2 {
                if self.beam_since[k].is_some_and(|t| t.plus(ms) <= now) {
                    self.on_beam_fault(now, k, "blocked with the lane empty");
                }
            }
        }
        self.settle(now);
    }

    // ---- outputs -------------------------------------------------------------------

    fn push(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    fn emit(&mut self, event: GateEvent) {
        self.push(Action::Emit { event });
    }

    fn show(&mut self, prompt: Prompt) {
        if self.prompt != prompt {
            self.prompt = prompt;
            self.push(Action::Display { prompt });
        }
    }

    fn raise(&mut self, alarm: AlarmKind, detail: impl Into<String>) {
        if self.alarms.insert(alarm) {
            self.emit(GateEvent::AlarmRaised {
                alarm,
                detail: detail.into(),
            });
        }
    }

    fn clear_alarm(&mut self, alarm: AlarmKind) {
        if self.alarms.remove(&alarm) {
            self.emit(GateEvent::AlarmCleared { alarm });
        }
    }

    fn set_phase(&mut self, now: Time, phase: Phase) {
        let deadline_ms = {
            let t = &self.cfg.timeouts;
            match phase {
                Phase::Reading => Some(t.document_read_ms),
                Phase::CheckingWatchlist => Some(t.watchlist_ms),
                Phase::Entering => Some(t.enter_ms),
                Phase::ClosingEntry => Some(t.occupancy_ms),
                Phase::Capturing { .. } => Some(t.capture_ms),
                Phase::Matching { .. } => Some(t.match_ms),
                Phase::Committing => Some(t.journal_ms),
                Phase::Exiting | Phase::LettingOut { .. } | Phase::ClosingExit => Some(t.leave_ms),
                Phase::Notice | Phase::Resuming => Some(t.notice_ms),
                _ => None,
            }
        };
        // Re-entering the same phase kind (e.g. the next capture attempt) restarts its
        // deadline; letting out keeps the deadline it started with.
        let keep = matches!(
            (self.phase, phase),
            (Phase::LettingOut { .. }, Phase::LettingOut { .. })
                | (Phase::Exiting, Phase::ClosingExit)
        );
        if !keep {
            self.phase_deadline = deadline_ms.map(|ms| now.plus(ms));
        }
        if self.phase != phase {
            let from = self.phase.name();
            self.phase = phase;
            if from != phase.name() {
                self.emit(GateEvent::StepChanged {
                    from: from.into(),
                    to: phase.name().into(),
                    mode: self.mode_in(phase),
                });
            }
        }
    }

    // ---- doors ---------------------------------------------------------------------

    fn drive(&mut self, door: Door, pos: DoorPosition, now: Time) {
        let c = &mut self.doors[idx(door)];
        c.target = pos;
        // Already there (reported since the last command): no change will be reported.
        let there = c.seen.take() == Some(pos);
        c.at = there.then_some(pos);
        c.deadline = (!there).then(|| now.plus(self.cfg.timeouts.door_travel_ms));
        self.push(match pos {
            DoorPosition::Open => Action::OpenDoor { door },
            DoorPosition::Closed => Action::CloseDoor { door },
        });
    }

    /// Wants `door` open; opens it only once the other door is closed (or in emergency).
    fn want_open(&mut self, door: Door, now: Time) {
        self.doors[idx(door)].want = DoorPosition::Open;
        let other_closed = self.doors[idx(door.other())].is_closed();
        if self.doors[idx(door)].target != DoorPosition::Open
            && (other_closed || self.phase == Phase::Emergency)
        {
            self.drive(door, DoorPosition::Open, now);
        }
    }

    /// Wants `door` closed; drives it only while its safety sensor is clear.
    fn want_closed(&mut self, door: Door, now: Time) {
        self.doors[idx(door)].want = DoorPosition::Closed;
        if self.doors[idx(door)].target != DoorPosition::Closed && !self.safety[idx(door)] {
            self.drive(door, DoorPosition::Closed, now);
        }
    }

    fn on_door_reached(&mut self, door: Door, pos: DoorPosition) {
        let c = &mut self.doors[idx(door)];
        c.seen = Some(pos);
        if pos == c.target {
            c.at = Some(pos);
            c.deadline = None;
            if pos == DoorPosition::Closed {
                c.reversals = 0;
                c.refused = false;
            }
        } else if pos == DoorPosition::Open && c.at == Some(DoorPosition::Closed) {
            // Opened without a command: someone forced it. Take it as open; the door
            // steering drives it closed again once its safety sensor is clear, and the
            // travel deadline turns a door that stays open into a door fault.
            c.target = DoorPosition::Open;
            c.at = Some(DoorPosition::Open);
            c.deadline = None;
            c.want = DoorPosition::Closed;
            self.raise(
                AlarmKind::ForcedDoor,
                format!("{door:?} door opened without a command"),
            );
        }
    }

    fn on_occupancy(&mut self, persons: u8, children: u8) {
        let before = self.occupancy;
        self.occupancy = persons;
        self.children = children.min(persons);
        // Someone came in from the far side: through the exit while a cleared traveller
        // leaves, or into a lane that expects nobody.
        let unexpected = match self.phase {
            Phase::Exiting | Phase::ClosingExit => persons > before,
            Phase::Ready | Phase::OutOfService | Phase::Held | Phase::Notice => persons > 0,
            _ => false,
        };
        if unexpected && persons > before && self.last_beam == Some(Sensor::ExitBeam) {
            self.raise(
                AlarmKind::WrongWay,
                "a person entered the lane from the exit side",
            );
        }
    }

    fn on_sensor(&mut self, now: Time, sensor: Sensor, active: bool) {
        match sensor {
            Sensor::EntryBeam | Sensor::ExitBeam => {
                let i = usize::from(sensor == Sensor::ExitBeam);
                self.beams[i] = active;
                if active {
                    self.last_beam = Some(sensor);
                    if self.beam_since[i].is_none() {
                        self.beam_since[i] = Some(now);
                    }
                    if let Some(t) = self.transit.as_mut() {
                        t.beam_seen[i] = true;
                    }
                } else {
                    self.beam_since[i] = None;
                }
            }
            Sensor::EntrySafety | Sensor::ExitSafety => {
                let door = if sensor == Sensor::EntrySafety {
                    Door::Entry
                } else {
                    Door::Exit
                };
                self.safety[idx(door)] = active;
                let c = self.doors[idx(door)];
                self.doors[idx(door)].refused = false;
                if active && c.target == DoorPosition::Closed && c.at != Some(DoorPosition::Closed)
                {
                    // Obstruction while closing: reverse (opening is always safe). One the
                    // lane I/O already refused to close on is counted once.
                    if !c.refused {
                        self.doors[idx(door)].reversals = c.reversals.saturating_add(1);
                    }
                    self.drive(door, DoorPosition::Open, now);
                    if self.doors[idx(door)].reversals > self.cfg.max_door_reversals {
                        self.on_door_fault(now, door, "obstructed on every closing attempt");
                    }
                }
            }
        }
    }

    fn on_door_refused(&mut self, now: Time, door: Door, position: DoorPosition) {
        let c = self.doors[idx(door)];
        if self.phase == Phase::Emergency || c.target != position || c.at == Some(position) {
            // Not (or no longer) what the machine commands.
            return;
        }
        match position {
            DoorPosition::Closed => {
                // The interlock holds the door open for an obstruction not reported yet;
                // the door stays commanded closed and closes once the sensor clears.
                if !c.refused && !self.safety[idx(door)] {
                    let c = &mut self.doors[idx(door)];
                    c.refused = true;
                    c.reversals = c.reversals.saturating_add(1);
                    if c.reversals > self.cfg.max_door_reversals {
                        self.on_door_fault(
                            now,
                            door,
                            "held open by its safety interlock on every closing attempt",
                        );
                    }
                }
            }
            DoorPosition::Open => self.on_door_fault(
                now,
                door,
                "refused to open by the lane interlock (the other door is not confirmed closed)",
            ),
        }
    }

    fn on_door_fault(&mut self, now: Time, door: Door, why: &str) {
        self.door_fault = true;
        self.raise(AlarmKind::DoorFault, format!("{door:?} door {why}"));
        self.fault_transit(now, Device::LaneIo);
    }

    /// Re-drives the doors towards what the current step wants.
    fn steer_doors(&mut self, now: Time) {
        for d in Door::ALL {
            let c = self.doors[idx(d)];
            if c.want == DoorPosition::Closed
                && c.target == DoorPosition::Open
                && !self.safety[idx(d)]
            {
                self.drive(d, DoorPosition::Closed, now);
            }
        }
    }

    // ---- level-triggered progress --------------------------------------------------

    fn settle(&mut self, now: Time) {
        self.steer_doors(now);
        // Each pass either changes phase or stops; bound the loop anyway.
        for _ in 0..16 {
            let before = (self.phase, self.doors);
            self.progress(now);
            if (self.phase, self.doors) == before {
                break;
            }
        }
    }

    fn progress(&mut self, now: Time) {
        match self.phase {
            Phase::OutOfService
                if !self.manual_oos
                    && !self.door_fault
                    && !self.beam_faulty()
                    && self.faults.is_empty() =>
            {
                // Back in service by itself once every device has recovered.
                self.clear_alarm(AlarmKind::DeviceFault);
                self.go_idle(now);
            }
            Phase::Ready | Phase::OutOfService | Phase::Held | Phase::Stopped => {
                self.want_closed(Door::Entry, now);
                self.want_closed(Door::Exit, now);
            }
            Phase::Maintenance => {}
            Phase::Resuming => {
                self.want_closed(Door::Exit, now);
                if self.occupancy > 0 || self.beams.iter().any(|b| *b) {
                    self.let_out(now);
                }
            }
            Phase::Reading | Phase::CheckingWatchlist | Phase::Notice => {}
            Phase::Emergency => {
                for d in Door::ALL {
                    self.want_open(d, now);
                }
            }
            Phase::Entering => {
                self.want_closed(Door::Exit, now);
                self.want_open(Door::Entry, now);
                let party = self.party();
                if party == Party::Crowd {
                    self.on_tailgating();
                } else if party == Party::AdultWithChild
                    && self.cfg.accompanied_child == ChildPolicy::Refer
                {
                    self.refer_child(now);
                } else if party != Party::Empty && !self.beams[0] && self.doors[0].is_open() {
                    if let Some(t) = self.transit.as_mut() {
                        t.crossed[0] = true;
                    }
                    self.show(Prompt::PleaseWait);
                    self.set_phase(now, Phase::ClosingEntry);
                }
            }
            Phase::ClosingEntry => {
                let party = self.party();
                if party == Party::Crowd {
                    self.on_tailgating();
                    self.set_phase(now, Phase::Entering);
                    return;
                }
                if party == Party::AdultWithChild
                    && self.cfg.accompanied_child == ChildPolicy::Refer
                {
                    self.refer_child(now);
                    return;
                }
                if party == Party::Empty || self.beams[0] {
                    // The traveller stepped back out: wait in `Entering` again.
                    self.set_phase(now, Phase::Entering);
                    return;
                }
                self.want_closed(Door::Entry, now);
                if self.doors[0].is_closed() && self.doors[1].is_closed() {
                    // The party is shut in: whether a child goes with the traveller is
                    // settled now (only reachable as `AdultWithChild` under `allow`).
                    if let Some(t) = self.transit.as_mut() {
                        t.child = party == Party::AdultWithChild;
                    }
                    self.start_capture(now, 1);
                }
            }
            Phase::Capturing { .. } | Phase::Matching { .. } | Phase::Committing => {
                self.want_closed(Door::Entry, now);
            }
            Phase::Exiting => {
                // Only reachable through a journaled clear decision (invariant 1).
                self.want_closed(Door::Entry, now);
                self.want_open(Door::Exit, now);
                if self.doors[1].is_open() && self.occupancy == 0 && !self.beams[1] {
                    if let Some(t) = self.transit.as_mut() {
                        t.crossed[1] = true;
                    }
                    self.set_phase(now, Phase::ClosingExit);
                }
            }
            Phase::ClosingExit => {
                if self.occupancy > 0 || self.beams[1] {
                    self.set_phase(now, Phase::Exiting);
                    return;
                }
                self.want_closed(Door::Exit, now);
                if self.doors[1].is_closed() {
                    self.finish_transit(now);
                }
            }
            Phase::LettingOut { closing } => {
                self.want_closed(Door::Exit, now);
                if !closing {
                    self.want_open(Door::Entry, now);
                    if self.doors[0].is_open() && self.occupancy == 0 && !self.beams[0] {
                        self.set_phase(now, Phase::LettingOut { closing: true });
                    }
                } else {
                    if self.occupancy > 0 || self.beams[0] {
                        self.set_phase(now, Phase::LettingOut { closing: false });
                        return;
                    }
                    self.want_closed(Door::Entry, now);
                    if self.doors[0].is_closed() && self.doors[1].is_closed() {
                        self.finish_transit(now);
                    }
                }
            }
        }
    }

    // ---- transit -------------------------------------------------------------------

    fn on_document_presented(&mut self, now: Time) {
        if self.phase != Phase::Ready {
            return;
        }
        let id = TxnId(self.next_txn);
        self.next_txn += 1;
        self.transit = Some(Transit::new(id, now, self.beams));
        self.emit(GateEvent::TransitStarted { txn: id });
        self.push(Action::ReadDocument);
        self.show(Prompt::ReadingDocument);
        self.set_phase(now, Phase::Reading);
    }

    fn on_document_read(&mut self, now: Time, result: Result<Document, ReadFailure>) {
        if self.phase != Phase::Reading {
            return;
        }
        let doc = match result {
            Ok(doc) => doc,
            Err(f) => {
                let reason = Reason::ChipUnreadable {
                    error: f.code,
                    detail: f.detail,
                };
                self.refer_pre_entry(now, vec![reason]);
                return;
            }
        };
        let reasons = decision::check_document(&doc, &self.cfg.policy, now.date());
        let key = DocumentKey {
            issuing_state: doc.issuing_state.clone(),
            document_number: doc.document_number.clone(),
        };
        if let Some(t) = self.transit.as_mut() {
            t.document = Some(doc);
        }
        if !reasons.is_empty() {
            self.refer_pre_entry(now, reasons);
            return;
        }
        self.push(Action::CheckWatchlist { key });
        self.set_phase(now, Phase::CheckingWatchlist);
    }

    fn on_watchlist(&mut self, now: Time, verdict: WatchlistVerdict) {
        if self.phase != Phase::CheckingWatchlist {
            return;
        }
        let decision = decision::watchlist_decision(&verdict);
        if matches!(verdict, WatchlistVerdict::Stale { .. }) {
            self.raise(
                AlarmKind::WatchlistStale,
                "watchlist past its staleness limit",
            );
        } else {
            self.clear_alarm(AlarmKind::WatchlistStale);
        }
        if let Some(t) = self.transit.as_mut() {
            t.watchlist = Some(verdict);
        }
        match decision {
            WatchlistDecision::Proceed if self.disk.0 == DiskLevel::StopClearing => {
                // The journal's disk is full: nobody new is let in (a record must always
                // still fit before a door opens). Raised again if acknowledged meanwhile.
                let detail = self.disk.1.clone();
                self.raise(AlarmKind::DiskFull, detail);
                self.refer_pre_entry(now, vec![Reason::DiskFull]);
            }
            WatchlistDecision::Proceed => {
                self.show(Prompt::Enter);
                self.set_phase(now, Phase::Entering);
            }
            WatchlistDecision::Refer(r) => self.refer_pre_entry(now, vec![r]),
            WatchlistDecision::Hold(r) => {
                let detail = format!("{r:?}");
                self.record(now, Outcome::Held, vec![r], None);
                self.raise(AlarmKind::WatchlistHold, detail);
                self.show(Prompt::WaitForOfficer);
                self.set_phase(now, Phase::Held);
            }
        }
    }

    /// The disk guard's level changed: one alarm per level above `Ok`. A traveller
    /// already let in finishes as usual (their record is committed before the exit
    /// opens, or they are let out through the entry if it cannot be); the next one is
    /// referred before entry while the level is `StopClearing` (in `on_watchlist`).
    fn on_disk_level(&mut self, level: DiskLevel, detail: String) {
        self.disk = (level, detail.clone());
        match level {
            DiskLevel::Ok => {
                self.clear_alarm(AlarmKind::DiskSpaceLow);
                self.clear_alarm(AlarmKind::DiskFull);
            }
            DiskLevel::Alarm => {
                self.clear_alarm(AlarmKind::DiskFull);
                self.raise(AlarmKind::DiskSpaceLow, detail);
            }
            DiskLevel::StopClearing => {
                self.clear_alarm(AlarmKind::DiskSpaceLow);
                self.raise(AlarmKind::DiskFull, detail);
            }
        }
    }

    /// Who is in the mantrap now.
    fn party(&self) -> Party {
        classify(self.occupancy, self.children)
    }

    /// Policy `refer`: one adult came in with one child. Both are sent back out through
    /// the entry to the counter; the exit stays shut; the operator is told.
    fn refer_child(&mut self, now: Time) {
        self.raise(
            AlarmKind::AccompaniedChild,
            "a traveller came in with a child: referred to the counter",
        );
        self.record(now, Outcome::Referred, vec![Reason::AccompaniedChild], None);
        // As `let_out`, with the prompt that tells the pair why (no capture runs yet).
        self.show(Prompt::AccompaniedChild);
        self.set_phase(now, Phase::LettingOut { closing: false });
    }

    fn on_tailgating(&mut self) {
        if let Some(t) = self.transit.as_mut() {
            if !t.tailgating {
                t.tailgating = true;
            }
        }
        self.raise(
            AlarmKind::Tailgating,
            format!("{} persons in the mantrap", self.occupancy),
        );
        self.show(Prompt::OnePersonOnly);
    }

    fn start_capture(&mut self, now: Time, attempt: u8) {
        if let Some(t) = self.transit.as_mut() {
            t.attempts = attempt;
        }
        self.push(Action::CaptureFingerprint { attempt });
        self.show(if attempt > 1 {
            Prompt::TryAgain
        } else {
            Prompt::PlaceThumb
        });
        self.set_phase(now, Phase::Capturing { attempt });
    }

    fn on_capture(&mut self, now: Time, result: Result<CaptureInfo, CaptureFailure>) {
        let Phase::Capturing { attempt } = self.phase else {
            return;
        };
        let p = &self.cfg.policy;
        match result {
            Ok(info) if info.minutiae >= p.min_minutiae && info.quality >= p.min_quality => {
                self.push(Action::MatchFingerprint { attempt });
                self.show(Prompt::PleaseWait);
                self.set_phase(now, Phase::Matching { attempt });
            }
            Ok(_) | Err(CaptureFailure::Poor) => {
                if let Some(t) = self.transit.as_mut() {
                    t.poor_captures += 1;
                }
                self.next_attempt(now, attempt);
            }
            Err(CaptureFailure::NoFinger) => self.next_attempt(now, attempt),
        }
    }

    fn on_match(&mut self, now: Time, score: f32) {
        let Phase::Matching { attempt } = self.phase else {
            return;
        };
        if let Some(t) = self.transit.as_mut() {
            t.last_score = Some(score);
        }
        if decision::is_match(score, &self.cfg.policy) {
            self.decide_clear(now, Vec::new(), None);
        } else {
            self.next_attempt(now, attempt);
        }
    }

    fn next_attempt(&mut self, now: Time, attempt: u8) {
        if attempt < self.cfg.policy.max_attempts {
            self.start_capture(now, attempt + 1);
            return;
        }
        let all_poor = self
            .transit
            .as_ref()
            .is_some_and(|t| t.last_score.is_none() && t.poor_captures > 0);
        let reason = if all_poor {
            Reason::BiometricQuality
        } else {
            Reason::BiometricMismatch
        };
        self.refer_inside(now, vec![reason], None);
    }

    fn decide_clear(&mut self, now: Time, reasons: Vec<Reason>, operator: Option<String>) {
        self.record(now, Outcome::Cleared, reasons, operator);
        self.show(Prompt::PleaseWait);
        self.set_phase(now, Phase::Committing);
    }

    fn on_journaled(&mut self, now: Time, txn: TxnId) {
        let Some(pos) = self.unacked.iter().position(|r| r.txn == txn) else {
            return;
        };
        let record = self.unacked.remove(pos);
        if self.faults.remove(&Device::Journal) {
            self.emit(GateEvent::DeviceRecovered {
                device: Device::Journal,
            });
            self.clear_alarm(AlarmKind::JournalFailure);
        }
        let awaited = self.transit.as_ref().is_some_and(|t| t.id == txn);
        if self.phase == Phase::Committing && awaited && record.outcome == Outcome::Cleared {
            self.show(Prompt::Proceed);
            self.set_phase(now, Phase::Exiting);
        }
    }

    fn on_journal_failed(&mut self, now: Time, txn: TxnId, detail: String) {
        let Some(pos) = self.unacked.iter().position(|r| r.txn == txn) else {
            return;
        };
        let record = self.unacked.remove(pos);
        if self.faults.insert(Device::Journal) {
            self.emit(GateEvent::DeviceFault {
                device: Device::Journal,
                detail: detail.clone(),
            });
        }
        self.raise(AlarmKind::JournalFailure, detail);
        let committing = self.phase == Phase::Committing
            && record.outcome == Outcome::Cleared
            && self.transit.as_ref().is_some_and(|t| t.id == txn);
        if committing {
            // The clear decision is not durable, so the exit stays shut: the traveller is
            // referred instead (invariant 1), and that record is retried like any other.
            if let Some(t) = self.transit.as_mut() {
                t.recorded = None;
            }
            self.refer_inside(now, vec![Reason::JournalFailure], None);
        } else {
            // Keep the record and write it again later: nothing journaled is ever dropped.
            self.retry.push(record);
            if self.retry_at.is_none() {
                self.retry_at = Some(now.plus(JOURNAL_RETRY_MS));
            }
        }
    }

    /// Refers before anyone entered: record, notice on the display, then ready.
    fn refer_pre_entry(&mut self, now: Time, reasons: Vec<Reason>) {
        self.record(now, Outcome::Referred, reasons, None);
        self.show(Prompt::GoToCounter);
        self.set_phase(now, Phase::Notice);
    }

    fn abort_pre_entry(&mut self, now: Time, reason: Reason) {
        if self.phase == Phase::Reading {
            self.push(Action::CancelDocumentRead);
        }
        self.record(now, Outcome::Aborted, vec![reason], None);
        self.finish_transit(now);
    }

    /// Refers someone inside the mantrap: record, then let them out through the entry.
    fn refer_inside(&mut self, now: Time, reasons: Vec<Reason>, operator: Option<String>) {
        self.record(now, Outcome::Referred, reasons, operator);
        self.let_out(now);
    }

    fn let_out(&mut self, now: Time) {
        if matches!(self.phase, Phase::Capturing { .. }) {
            self.push(Action::CancelCapture);
        }
        self.show(Prompt::GoToCounter);
        self.set_phase(now, Phase::LettingOut { closing: false });
    }

    /// Emits the one outcome record of the current transit (no-op if already recorded).
    fn record(
        &mut self,
        now: Time,
        outcome: Outcome,
        reasons: Vec<Reason>,
        operator: Option<String>,
    ) {
        let threshold = self.cfg.policy.biometric_threshold;
        let Some(t) = self.transit.as_mut() else {
            return;
        };
        if t.recorded.is_some() {
            return;
        }
        t.recorded = Some(outcome);
        let biometric = (t.attempts > 0).then_some(BiometricSummary {
            score: t.last_score,
            threshold,
            attempts: t.attempts,
        });
        let mut reasons = reasons;
        if t.tailgating && outcome != Outcome::Cleared && !reasons.contains(&Reason::Tailgating) {
            reasons.push(Reason::Tailgating);
        }
        // A child shut in with the traveller (policy `allow`) is noted whatever the outcome.
        if t.child && !reasons.contains(&Reason::AccompaniedChild) {
            reasons.push(Reason::AccompaniedChild);
        }
        let record = Record {
            txn: t.id,
            outcome,
            reasons,
            started_at: t.started_at,
            decided_at: now,
            document: t.document.clone(),
            watchlist: t.watchlist.clone(),
            biometric,
            operator,
        };
        self.unacked.push(record.clone());
        self.push(Action::Journal { record });
    }

    /// Ends the transit and returns to whatever the gate should be doing when idle.
    fn finish_transit(&mut self, now: Time) {
        if self.transit.as_ref().is_some_and(|t| t.recorded.is_none()) {
            // Defensive: every path records first; never leave a transit without one.
            self.record(now, Outcome::Aborted, vec![Reason::NeverEntered], None);
        }
        if let Some(t) = self.transit.take() {
            self.supervise_beams(now, &t);
        }
        self.clear_alarm(AlarmKind::Lingering);
        self.go_idle(now);
    }

    /// Counts transits through which a threshold beam stayed clear although somebody
    /// walked through it; too many in a row is a failed beam.
    fn supervise_beams(&mut self, now: Time, t: &Transit) {
        let limit = self.cfg.beam_silent_transits;
        for k in 0..2 {
            if !t.crossed[k] {
                continue;
            }
            if t.beam_seen[k] {
                self.beam_silent[k] = 0;
            } else {
                self.beam_silent[k] = self.beam_silent[k].saturating_add(1);
                if limit > 0 && self.beam_silent[k] >= limit {
                    let why = format!("never broke across {limit} transits");
                    self.on_beam_fault(now, k, &why);
                }
            }
        }
    }

    fn go_idle(&mut self, now: Time) {
        let phase = if self.shutdown {
            Phase::Stopped
        } else if self.maintenance {
            Phase::Maintenance
        } else if self.manual_oos
            || self.door_fault
            || self.beam_faulty()
            || !self.faults.is_empty()
        {
            Phase::OutOfService
        } else {
            Phase::Ready
        };
        self.show(match phase {
            Phase::Ready => Prompt::PresentDocument,
            _ => Prompt::OutOfService,
        });
        self.set_phase(now, phase);
        if phase == Phase::Stopped {
            self.push(Action::ShutdownReady);
        }
    }

    fn on_phase_timeout(&mut self, now: Time) {
        let timeout = |step| vec![Reason::Timeout { step }];
        match self.phase {
            Phase::Reading => {
                self.push(Action::CancelDocumentRead);
                self.refer_pre_entry(now, timeout(Step::DocumentRead));
            }
            Phase::CheckingWatchlist => self.refer_pre_entry(now, timeout(Step::Watchlist)),
            Phase::Entering | Phase::ClosingEntry => {
                let t = self.transit.as_ref();
                if t.is_some_and(|t| t.tailgating) {
                    self.refer_inside(now, vec![Reason::Tailgating], None);
                } else if self.occupancy > 0 || self.beams[0] {
                    let step = if self.phase == Phase::Entering {
                        Step::Enter
                    } else {
                        Step::Occupancy
                    };
                    self.refer_inside(now, timeout(step), None);
                } else {
                    self.record(now, Outcome::Aborted, vec![Reason::NeverEntered], None);
                    self.let_out(now);
                    self.show(Prompt::PresentDocument);
                }
            }
            Phase::Capturing { attempt } => {
                self.push(Action::CancelCapture);
                self.next_attempt(now, attempt);
            }
            Phase::Matching { attempt } => self.next_attempt(now, attempt),
            Phase::Committing => {
                // Whether the record landed is unknown until the journal answers, so the
                // decision stands and the exit stays shut until then; the operator is told.
                self.raise(AlarmKind::JournalFailure, "journal commit is late");
            }
            Phase::Exiting | Phase::ClosingExit | Phase::LettingOut { .. } => {
                if let Some(t) = self.transit.as_mut() {
                    if !t.lingering_alarm {
                        t.lingering_alarm = true;
                        self.raise(AlarmKind::Lingering, "traveller still in the lane");
                    }
                }
            }
            Phase::Notice => self.finish_transit(now),
            // Nobody reported inside: the transit ends; with the lane I/O down its
            // report is still to come, so keep waiting.
            Phase::Resuming if self.faults.contains(&Device::LaneIo) => {
                self.phase_deadline = Some(now.plus(self.cfg.timeouts.notice_ms));
            }
            Phase::Resuming => self.finish_transit(now),
            _ => {}
        }
    }

    // ---- faults, emergency, commands ---------------------------------------------

    fn on_fault(&mut self, now: Time, device: Device, detail: String) {
        let new = self.faults.insert(device);
        if new {
            self.emit(GateEvent::DeviceFault {
                device,
                detail: detail.clone(),
            });
            self.raise(AlarmKind::DeviceFault, format!("{device}: {detail}"));
        }
        self.fault_transit(now, device);
    }

    /// Safely ends a transit hit by a device fault; an idle gate goes out of service.
    fn fault_transit(&mut self, now: Time, device: Device) {
        let reasons = vec![Reason::DeviceFault { device }];
        match self.phase {
            p if p.pre_entry() => self.abort_pre_entry(now, Reason::DeviceFault { device }),
            p if p.occupant_undecided() => {
                self.record(now, Outcome::Aborted, reasons, None);
                self.let_out(now);
            }
            Phase::Ready | Phase::Notice => {
                if self.transit.is_some() {
                    self.finish_transit(now);
                } else {
                    self.go_idle(now);
                }
            }
            // A cleared traveller on the way out with the lane I/O gone: the record is
            // written and no door can be commanded or watched any more; the gate goes
            // out of service and closes the exit once the I/O is back.
            Phase::Exiting | Phase::ClosingExit if device == Device::LaneIo => {
                self.finish_transit(now);
            }
            // Other decided transits finish; held, emergency and maintenance stay as they are.
            _ => {}
        }
    }

    fn enter_emergency(&mut self, now: Time) {
        if self.transit.is_some() {
            self.record(now, Outcome::Aborted, vec![Reason::Emergency], None);
            if self.phase == Phase::Reading {
                self.push(Action::CancelDocumentRead);
            }
            if matches!(self.phase, Phase::Capturing { .. }) {
                self.push(Action::CancelCapture);
            }
            self.transit = None;
        }
        self.raise(AlarmKind::Emergency, "emergency release: all doors open");
        self.show(Prompt::Emergency);
        self.set_phase(now, Phase::Emergency);
        // Release every door at once, whatever the other door does (invariant 3).
        // Commanded even where the core believes the door open already (it may have
        // been forced): an emergency release never relies on remembered state.
        for d in Door::ALL {
            self.doors[idx(d)].want = DoorPosition::Open;
            self.drive(d, DoorPosition::Open, now);
        }
    }

    fn on_command(&mut self, now: Time, command: OperatorCommand, actor: Actor) {
        let result = if actor.role < command.required_role() {
            Err(format!("requires the {:?} role", command.required_role()))
        } else {
            self.execute(now, &command, &actor)
        };
        let (accepted, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.emit(GateEvent::Command {
            command,
            actor,
            accepted,
            detail,
        });
    }

    fn execute(
        &mut self,
        now: Time,
        command: &OperatorCommand,
        actor: &Actor,
    ) -> Result<String, String> {
        let user = Some(actor.user.clone());
        match command {
            OperatorCommand::OpenEntry | OperatorCommand::Refer => match self.phase {
                p if p.pre_entry() => {
                    if p == Phase::Reading {
                        self.push(Action::CancelDocumentRead);
                    }
                    self.record(now, Outcome::Referred, vec![Reason::OperatorRefer], user);
                    self.show(Prompt::GoToCounter);
                    self.set_phase(now, Phase::Notice);
                    Ok("traveller referred".into())
                }
                p if p.occupant_undecided() => {
                    self.refer_inside(now, vec![Reason::OperatorRefer], user);
                    Ok("traveller referred and let out through the entry".into())
                }
                Phase::Maintenance if *command == OperatorCommand::OpenEntry => {
                    self.want_open(Door::Entry, now);
                    Ok("entry door opened for maintenance".into())
                }
                _ => Err(format!(
                    "no traveller to refer in step {}",
                    self.phase.name()
                )),
            },
            OperatorCommand::OpenExit => match self.phase {
                Phase::Capturing { .. } | Phase::Matching { .. } => {
                    if matches!(self.phase, Phase::Capturing { .. }) {
                        self.push(Action::CancelCapture);
                    }
                    self.decide_clear(now, vec![Reason::OperatorOverride], user);
                    Ok("override journaled; exit opens once committed".into())
                }
                _ => Err(format!(
                    "the exit opens only for a traveller awaiting a decision, not in step {}",
                    self.phase.name()
                )),
            },
            OperatorCommand::ReleaseHold => {
                if self.phase != Phase::Held {
                    return Err("the gate is not holding anyone".into());
                }
                self.clear_alarm(AlarmKind::WatchlistHold);
                self.finish_transit(now);
                Ok("hold released".into())
            }
            OperatorCommand::OutOfService => {
                self.manual_oos = true;
                match self.phase {
                    Phase::Ready => self.go_idle(now),
                    p if p.pre_entry() => self.abort_pre_entry(now, Reason::Shutdown),
                    p if p.occupant_undecided() => {
                        self.record(now, Outcome::Aborted, vec![Reason::Shutdown], user);
                        self.let_out(now);
                    }
                    _ => {}
                }
                Ok("out of service".into())
            }
            OperatorCommand::InService => {
                self.manual_oos = false;
                self.door_fault = false;
                // A repaired beam is trusted again; one still blocked is found out again
                // after `beam_blocked_ms`.
                self.beam_fault = [false; 2];
                self.beam_silent = [0; 2];
                if self.faults.is_empty() {
                    self.clear_alarm(AlarmKind::DeviceFault);
                }
                self.clear_alarm(AlarmKind::DoorFault);
                if self.phase == Phase::OutOfService {
                    self.go_idle(now);
                }
                if self.phase == Phase::Ready {
                    Ok("in service".into())
                } else {
                    Ok(format!("in service once {} ends", self.phase.name()))
                }
            }
            OperatorCommand::EmergencyRelease => {
                self.enter_emergency(now);
                Ok("all doors released".into())
            }
            OperatorCommand::EmergencyReset => {
                if self.phase != Phase::Emergency {
                    return Err("no emergency to reset".into());
                }
                if self.emergency_input {
                    return Err("the emergency input is still active".into());
                }
                self.clear_alarm(AlarmKind::Emergency);
                self.go_idle(now);
                Ok("emergency reset".into())
            }
            OperatorCommand::MaintenanceOn => match self.phase {
                Phase::Ready | Phase::OutOfService => {
                    self.maintenance = true;
                    self.go_idle(now);
                    Ok("maintenance".into())
                }
                p => Err(format!("cannot enter maintenance during {}", p.name())),
            },
            OperatorCommand::MaintenanceOff => {
                if self.phase != Phase::Maintenance {
                    return Err("the gate is not in maintenance".into());
                }
                self.maintenance = false;
                self.want_closed(Door::Entry, now);
                self.go_idle(now);
                Ok("maintenance ended".into())
            }
            OperatorCommand::AcknowledgeAlarm { alarm } => {
                if self.alarms.contains(alarm) {
                    self.clear_alarm(*alarm);
                    Ok("acknowledged".into())
                } else {
                    Err(format!("no active {alarm:?} alarm"))
                }
            }
        }
    }
}

/// True when `role` may issue `command`.
pub fn permitted(role: Role, command: &OperatorCommand) -> bool {
    role >= command.required_role()
}
