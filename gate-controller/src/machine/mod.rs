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

use crate::disk::DiskLevel;
use crate::record::{
    AlarmKind, GateEvent, Mode, OperatorCommand, Outcome, Prompt, Reason, Record, Role, TxnId,
};
use crate::types::{Device, Door, DoorPosition, FaultKind, Sensor, Time};
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};

mod commands;
mod config;
mod doors;
mod progress;
mod signals;
mod step;
mod supervision;
mod timers;
mod transit;

pub use config::{Config, Timeouts};
pub use doors::DoorCtl;
pub use signals::{Action, Event};
use step::{Phase, Transit};

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
    /// Doors not yet reported since a restart (see [`Machine::resume`]).
    unreported: [bool; 2],
    /// When the doors are driven on what is known if the lane I/O has still not reported
    /// them (whatever the step: someone found inside is being let out meanwhile).
    unreported_until: Option<Time>,
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
            unreported: [false; 2],
            unreported_until: None,
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
        // The doors are not driven until the lane has said where they are and whether
        // someone stands in them: the close commands queued by `new` are taken back.
        self.actions
            .retain(|a| !matches!(a, Action::OpenDoor { .. } | Action::CloseDoor { .. }));
        for c in &mut self.doors {
            c.deadline = None;
            c.uncommanded = true;
        }
        self.unreported = [true; 2];
        self.unreported_until = Some(now.plus(self.cfg.timeouts.notice_ms));
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
            .chain(self.unreported_until.filter(|_| self.lane_unreported()))
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
            kind: Some(FaultKind::Hardware),
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
            Event::MatchFailed { error } => self.on_match_failed(now, error),
            Event::Journaled { txn } => self.on_journaled(now, txn),
            Event::JournalFailed { txn, detail } => self.on_journal_failed(now, txn, detail),
            Event::Operator { command, actor } => self.on_command(now, command, actor),
            Event::Emergency { active } => {
                self.emergency_input = active;
                if active {
                    self.enter_emergency(now);
                }
            }
            Event::DeviceFault {
                device,
                kind,
                detail,
            } => self.on_fault(now, device, kind, detail),
            Event::DoorRefused { door, position } => self.on_door_refused(now, door, position),
            Event::DeviceRecovered { device } => {
                let (phase, mode) = (self.phase, self.mode());
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
                    self.report_mode_change(phase, mode);
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
        if self.lane_unreported() && self.unreported_until.is_some_and(|t| t <= now) {
            if self.faults.contains(&Device::LaneIo) {
                // The lane I/O is down: its report is still to come.
                self.unreported_until = Some(now.plus(self.cfg.timeouts.notice_ms));
            } else {
                // The lane said nothing of its doors in time: drive them on what is known.
                self.unreported_until = None;
                self.unreported = [false; 2];
                self.progress(now);
            }
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
}

/// True when `role` may issue `command`.
pub fn permitted(role: Role, command: &OperatorCommand) -> bool {
    role >= command.required_role()
}
