//! The synchronous heart of the shell: the state machine plus everything the shell does
//! *between* device signals — journal commits, watchlist look-ups, fingerprint matching.
//!
//! [`Core`] is driven by the tokio loop in [`super::Gate`] (and directly by the decision
//! latency bench): feed an [`Input`], then carry out the [`Output`]s it yields, in order.
//! Actions the shell can finish on the spot are finished here, and their answers fed
//! back into the machine before any output leaves:
//!
//! - `Journal(record)` → durable SQLite commit, then `Journaled` or `JournalFailed`;
//! - `CheckWatchlist(key)` → the watchlist (the document, and the holder's names, date
//!   of birth and nationality against person entries), then `WatchlistChecked`;
//! - `MatchFingerprint` → the matcher over the templates held here, then `MatchDone`.
//!
//! So an `OpenDoor(Exit)` output can only follow a record that is on disk (invariant 1).
//! Templates (enrolled from the chip, live from the scanner) are held here only until
//! the comparison, and the holder's names only until the watchlist check; neither goes
//! to the machine, the journal, the feed or the logs.

use super::clock::Clock;
use super::matcher::Matcher;
use super::screening::{holder_query, Screening};
use crate::journal::Journal;
use crate::machine::{Action, Event, Machine, Snapshot};
use crate::record::{
    Actor, GateEvent, MatcherFailure, Mode, OperatorCommand, Outcome, Prompt, Record, TxnId,
};
use crate::types::{CaptureFailure, Device, Door, DoorPosition, FaultKind, Sensor, Time};
use crate::watchlist::PersonQuery;
use device_drivers::devices::{
    BiometricTemplate, CaptureError, ChipRead, DeviceFault, LaneCommand, LaneInput, LiveCapture,
    Presence, ReadError,
};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// A signal from a device (or the process) for the core.
#[derive(Debug)]
pub enum Input {
    /// The document reader saw a document placed or removed.
    Presence(Presence),
    /// A chip read finished (`op` is the one from [`Output::ReadDocument`]).
    DocumentRead {
        /// Operation id.
        op: u64,
        /// The read.
        result: Result<ChipRead, ReadError>,
    },
    /// A capture finished (`op` is the one from [`Output::Capture`]).
    Captured {
        /// Operation id.
        op: u64,
        /// The capture.
        result: Result<LiveCapture, CaptureError>,
    },
    /// A lane input changed.
    Lane(LaneInput),
    /// A device failed.
    Fault {
        /// Device.
        device: Device,
        /// What happened, typed by the driver.
        fault: DeviceFault,
    },
    /// A device works again.
    Recovered {
        /// Device.
        device: Device,
    },
    /// A watchlist update was installed (`Ok(version)`) or rejected (`Err(why)`).
    WatchlistUpdate {
        /// The new version, or why the update was rejected.
        result: Result<u64, String>,
    },
    /// The disk guard's level for the journal's file system changed (see
    /// `runtime::disk::DiskGuard`).
    DiskLevel {
        /// The new level.
        level: crate::upstream::disk::DiskLevel,
        /// Usage or error, for the operator.
        detail: String,
    },
    /// Stop: finish or safely abort the transit, then report [`Output::ShutdownReady`].
    Shutdown,
}

/// Something for the shell to carry out, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Start a chip read; answer with [`Input::DocumentRead`] carrying `op`.
    ReadDocument {
        /// Operation id.
        op: u64,
    },
    /// Abandon the chip read in progress.
    CancelDocumentRead,
    /// Start a capture; answer with [`Input::Captured`] carrying `op`.
    Capture {
        /// Operation id.
        op: u64,
        /// How long the scanner may wait for a finger.
        timeout: Duration,
    },
    /// Abandon the capture in progress.
    CancelCapture,
    /// Drive the lane outputs.
    Lane(LaneCommand),
    /// Show a prompt on the traveller display.
    Display(Prompt),
    /// Publish on the live feed.
    Feed(FeedItem),
    /// Nothing is in progress any more: the process may exit.
    ShutdownReady,
}

/// One item of the gate's live feed (SSE, console, logs); never biometric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedItem {
    /// When it happened.
    pub at: Time,
    /// What happened.
    #[serde(flatten)]
    pub kind: FeedKind,
}

/// What a [`FeedItem`] reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedKind {
    /// A state-machine event (step, alarm, command, device).
    Event {
        /// The event.
        event: GateEvent,
    },
    /// A movement record was durably journaled.
    Record {
        /// Sequence number.
        seq: u64,
        /// Transit.
        txn: TxnId,
        /// Outcome.
        outcome: Outcome,
    },
}

/// The answer to an operator command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandReply {
    /// Whether the gate carried it out.
    pub accepted: bool,
    /// What happened, or why not.
    pub detail: String,
}

/// Outcome counters since the journal was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// Cleared transits.
    pub cleared: u64,
    /// Referred transits.
    pub referred: u64,
    /// Held transits.
    pub held: u64,
    /// Aborted transits.
    pub aborted: u64,
}

impl OutcomeCounts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Cleared => self.cleared += 1,
            Outcome::Referred => self.referred += 1,
            Outcome::Held => self.held += 1,
            Outcome::Aborted => self.aborted += 1,
        }
    }
    /// All transits.
    pub fn total(&self) -> u64 {
        self.cleared + self.referred + self.held + self.aborted
    }
}

/// The gate's status for status pages, the console and the watchdog.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateStatus {
    /// Gate id.
    pub gate_id: String,
    /// When this status was taken.
    pub at: Time,
    /// The state machine's view.
    pub machine: Snapshot,
    /// Records by outcome.
    pub outcomes: OutcomeCounts,
    /// Highest journal sequence number.
    pub last_seq: u64,
    /// Records handed to the journal and not yet acknowledged.
    pub journal_backlog: usize,
    /// The signed watchlists in force (version, age), when `gated` serves from a store.
    pub watchlist: Option<super::screening::WatchlistState>,
}

/// Most events kept in memory while the journal cannot write them.
const MAX_PENDING_EVENTS: usize = 10_000;

/// Storage trouble the simulator makes the journal's disk show (`gate-sim` scenario
/// faults `journal_fail` and `journal_stall`); `gated` itself never sets any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageFaults {
    /// Every commit (record or events) fails as an I/O error would.
    pub fail_commits: bool,
    /// Every record commit holds the shell up this long before it completes (a slow or
    /// stalled disk; the in-memory journal's ordinary commit latency too).
    pub record_stall_ms: u64,
    /// Every commit of queued events holds the shell up this long.
    pub event_stall_ms: u64,
}

/// The state machine with the journal, the watchlist and the matcher.
pub struct Core {
    gate_id: String,
    machine: Machine,
    journal: Journal,
    screening: Box<dyn Screening>,
    matcher: Box<dyn Matcher>,
    clock: Arc<dyn Clock>,
    enrolled: Vec<BiometricTemplate>,
    /// The holder of the document being checked, for the watchlist's person entries.
    holder: Option<PersonQuery>,
    live: Option<BiometricTemplate>,
    next_op: u64,
    doc_op: Option<u64>,
    capture_op: Option<u64>,
    followups: VecDeque<Event>,
    out: VecDeque<Output>,
    /// Records the machine asked to journal, written once the outputs queued before
    /// them have left (a door command never waits for a disk).
    unwritten: VecDeque<Record>,
    last_command: Option<CommandReply>,
    /// Whether the lane I/O was last told to hold an emergency release.
    lane_emergency: bool,
    /// Lane hardware conditions that keep the gate out of service: a door motor fault
    /// (entry, exit) and the tamper switch.
    lane_trouble: [bool; 3],
    /// Mantrap occupancy from the occupancy input and the mantrap beams.
    occupancy: super::occupancy::OccupancyEstimate,
    outcomes: OutcomeCounts,
    last_seq: u64,
    stopped: bool,
    storage: StorageFaults,
    /// Every machine input with its time (`None`: a timeout), when recording.
    recorded: Option<Vec<(Time, Option<Event>)>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("gate_id", &self.gate_id)
            .field("step", &self.machine.step())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for `gate_id` around `machine` (whose transaction ids must start at
    /// `journal.next_txn()`).
    pub fn new(
        gate_id: String,
        machine: Machine,
        journal: Journal,
        screening: Box<dyn Screening>,
        matcher: Box<dyn Matcher>,
        clock: Arc<dyn Clock>,
    ) -> Core {
        let mut outcomes = OutcomeCounts::default();
        for (name, n) in journal.outcome_counts().unwrap_or_default() {
            match name.as_str() {
                "cleared" => outcomes.cleared = n,
                "referred" => outcomes.referred = n,
                "held" => outcomes.held = n,
                "aborted" => outcomes.aborted = n,
                _ => {}
            }
        }
        let last_seq = journal.last_seq().unwrap_or(0);
        let mut core = Core {
            gate_id,
            machine,
            journal,
            screening,
            matcher,
            clock,
            enrolled: Vec::new(),
            holder: None,
            live: None,
            next_op: 1,
            doc_op: None,
            capture_op: None,
            followups: VecDeque::new(),
            out: VecDeque::new(),
            unwritten: VecDeque::new(),
            last_command: None,
            lane_emergency: false,
            lane_trouble: [false; 3],
            occupancy: Default::default(),
            outcomes,
            last_seq,
            stopped: false,
            storage: StorageFaults::default(),
            recorded: None,
        };
        core.pump();
        core
    }

    /// Starts a gate's shell on `journal`, as `gated` does at every start: transaction
    /// ids continue after the journal's, and if the journal already holds anything this
    /// is a restart, so the machine resumes (whoever is inside is let out first; a
    /// transit cut off without its record ends aborted, see [`Machine::resume`]).
    pub fn start(
        gate_id: String,
        machine_cfg: crate::machine::Config,
        journal: Journal,
        screening: Box<dyn Screening>,
        matcher: Box<dyn Matcher>,
        clock: Arc<dyn Clock>,
    ) -> Result<Core, crate::journal::JournalError> {
        let first_txn = journal.next_txn()?;
        let now = clock.now();
        let mut machine = Machine::new(machine_cfg, now, first_txn);
        if journal.count()? > 0 || journal.event_count()? > 0 {
            let unfinished = journal.unfinished_transit()?;
            if let Some(txn) = unfinished {
                tracing::warn!(
                    txn = txn.0,
                    "the last transit has no record: ending it as aborted (restart)"
                );
            }
            machine.resume(now, unfinished);
        }
        tracing::info!(
            gate = %gate_id,
            first_txn,
            records = journal.count()?,
            last_seq = journal.last_seq()?,
            "journal opened"
        );
        Ok(Core::new(
            gate_id, machine, journal, screening, matcher, clock,
        ))
    }

    /// The process dies here (simulated crash): the machine, the device operations and
    /// every event not yet written are lost; what the journal holds is kept and handed
    /// back for the next [`Core::start`].
    pub fn crash(self) -> Journal {
        let mut journal = self.journal;
        journal.lose_unwritten();
        journal
    }

    /// Makes the journal's storage misbehave (simulation only).
    pub fn set_storage_faults(&mut self, faults: StorageFaults) {
        self.storage = faults;
    }

    /// Starts (or stops) recording every machine input, e.g. to replay realistic
    /// transits in a benchmark of the machine alone.
    pub fn record_machine_inputs(&mut self, on: bool) {
        self.recorded = on.then(Vec::new);
    }

    /// The machine inputs recorded since [`Core::record_machine_inputs`].
    pub fn take_recorded(&mut self) -> Vec<(Time, Option<Event>)> {
        self.recorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn feed(&mut self, now: Time, event: Event) {
        if let Some(r) = self.recorded.as_mut() {
            r.push((now, Some(event.clone())));
        }
        self.machine.handle(now, event);
    }

    /// Sets where the lane's beams lie for the beam body counter (`[devices.io]
    /// first_mantrap_beam_m`); call before the first input: the occupancy estimate
    /// starts afresh.
    pub fn set_beam_geometry(&mut self, geometry: crate::beamcount::BeamGeometry) {
        self.occupancy = super::occupancy::OccupancyEstimate::new(geometry);
    }

    /// The lane geometry the beam body counter works with.
    pub fn beam_geometry(&self) -> crate::beamcount::BeamGeometry {
        self.occupancy.geometry()
    }

    /// Feeds a device or process signal.
    pub fn input(&mut self, input: Input) {
        // Threshold beams also feed the beam body counter: the machine hears the beam
        // first, then the occupancy it changed (so that a count rising after the exit
        // beam reads as somebody coming in from the exit side).
        let threshold = match &input {
            Input::Lane(LaneInput::Sensor { sensor, active }) => match sensor {
                Sensor::EntryBeam => Some((true, *active)),
                Sensor::ExitBeam => Some((false, *active)),
                _ => None,
            },
            _ => None,
        };
        if let Some(event) = self.translate(input) {
            let now = self.clock.now();
            self.feed(now, event);
        }
        if let Some((entry, active)) = threshold {
            let now = self.clock.now();
            if let Some(persons) = self.occupancy.threshold(now.0, entry, active) {
                self.feed(now, Event::Occupancy { persons });
            }
        }
        self.pump();
    }

    /// Handles every deadline that has passed.
    pub fn timeout(&mut self) {
        let now = self.clock.now();
        if let Some(r) = self.recorded.as_mut() {
            r.push((now, None));
        }
        self.machine.handle_timeout(now);
        self.pump();
    }

    /// Feeds an operator command and answers whether the gate carried it out.
    pub fn operator(&mut self, command: OperatorCommand, actor: Actor) -> CommandReply {
        self.last_command = None;
        let now = self.clock.now();
        self.feed(now, Event::Operator { command, actor });
        self.pump();
        self.last_command.take().unwrap_or(CommandReply {
            accepted: false,
            detail: "the gate did not answer the command".into(),
        })
    }

    /// The next output to carry out. Records are committed here, once every output
    /// queued before them has been taken: an emergency release or a safety reversal
    /// reaches the doors before a slow disk is waited for, and an exit opened on a
    /// decision still follows that decision's commit (it is queued only once the
    /// machine hears `Journaled`).
    pub fn poll_output(&mut self) -> Option<Output> {
        while self.out.is_empty() && !self.unwritten.is_empty() {
            while let Some(record) = self.unwritten.pop_front() {
                self.journal_record(record);
            }
            self.pump();
        }
        self.out.pop_front()
    }

    /// The machine's next deadline.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.machine.poll_timeout()
    }

    /// Writes queued events durably (call after carrying out the outputs, so the
    /// decision path does not wait for it). Errors are logged and the events kept.
    pub fn flush_events(&mut self) {
        if self.journal.pending_events() == 0 {
            return;
        }
        if self.storage.fail_commits {
            tracing::error!(
                pending = self.journal.pending_events(),
                "cannot write events to the journal: simulated storage failure"
            );
            return;
        }
        if self.storage.event_stall_ms > 0 {
            self.clock.block(self.storage.event_stall_ms);
        }
        if let Err(e) = self.journal.flush_events() {
            tracing::error!(error = %e, pending = self.journal.pending_events(), "cannot write events to the journal");
        }
    }

    /// Whether the machine reported `ShutdownReady`.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The current status.
    pub fn status(&self) -> GateStatus {
        GateStatus {
            gate_id: self.gate_id.clone(),
            at: self.clock.now(),
            machine: self.machine.snapshot(),
            outcomes: self.outcomes,
            last_seq: self.last_seq,
            journal_backlog: self.machine.journal_backlog(),
            watchlist: self.screening.state(),
        }
    }

    /// The coarse mode.
    pub fn mode(&self) -> Mode {
        self.machine.mode()
    }

    /// The journal (read-only queries).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The lane commands that restore the doors to what the machine last commanded
    /// (sent after the lane I/O recovers).
    pub fn door_commands(&self) -> Vec<LaneCommand> {
        let mut out = Vec::with_capacity(3);
        if self.lane_emergency {
            out.push(LaneCommand::EmergencyRelease);
        }
        out.extend(Door::ALL.iter().map(|&door| LaneCommand::Door {
            door,
            position: self.machine.door(door).target,
        }));
        out
    }

    /// A door motor fault or the tamper switch changed: the first condition takes the gate
    /// out of service with a device-fault alarm naming it; the lane I/O counts as
    /// recovered once every condition has cleared.
    fn lane_trouble_changed(&mut self, slot: usize, active: bool, what: &str) -> Option<Event> {
        let before = self.lane_trouble.iter().any(|&t| t);
        if let Some(t) = self.lane_trouble.get_mut(slot) {
            *t = active;
        }
        let after = self.lane_trouble.iter().any(|&t| t);
        if active {
            Some(Event::DeviceFault {
                device: Device::LaneIo,
                kind: FaultKind::Hardware,
                detail: what.to_string(),
            })
        } else if before && !after {
            Some(Event::DeviceRecovered {
                device: Device::LaneIo,
            })
        } else {
            None
        }
    }

    /// Tells the lane I/O when the machine enters or leaves emergency release, ahead of
    /// the door commands that follow: the scan driver's own interlock keeps the doors
    /// from being both open except under a latched emergency release, and holds a
    /// release until it is reset.
    fn sync_lane_emergency(&mut self) {
        let emergency = self.machine.mode() == Mode::Emergency;
        if emergency != self.lane_emergency {
            self.lane_emergency = emergency;
            self.out.push_back(Output::Lane(if emergency {
                LaneCommand::EmergencyRelease
            } else {
                LaneCommand::EmergencyReset
            }));
        }
    }

    fn op(&mut self) -> u64 {
        let op = self.next_op;
        self.next_op += 1;
        op
    }

    /// Turns a device signal into a machine event, keeping templates here and
    /// dropping answers to operations that were cancelled or superseded.
    fn translate(&mut self, input: Input) -> Option<Event> {
        match input {
            Input::WatchlistUpdate { result } => Some(Event::WatchlistUpdate { result }),
            Input::DiskLevel { level, detail } => Some(Event::DiskLevel { level, detail }),
            Input::Presence(Presence::Placed) => Some(Event::DocumentPresented),
            Input::Presence(Presence::Removed) => None,
            Input::Presence(Presence::Misread) => Some(Event::DocumentMisread),
            Input::DocumentRead { op, result } => {
                if self.doc_op != Some(op) {
                    tracing::debug!(op, "dropping the answer of an abandoned chip read");
                    return None;
                }
                self.doc_op = None;
                match result {
                    Ok(chip) => {
                        self.enrolled = chip.enrolled;
                        let today = self.clock.now().date();
                        self.holder = holder_query(&chip.holder, &chip.document, today);
                        Some(Event::DocumentRead {
                            result: Ok(chip.document),
                        })
                    }
                    Err(ReadError::Device(f)) => Some(Event::DeviceFault {
                        device: Device::DocumentReader,
                        kind: f.kind,
                        detail: f.to_string(),
                    }),
                    Err(e) => Some(Event::DocumentRead {
                        result: Err(e.to_failure()),
                    }),
                }
            }
            Input::Captured { op, result } => {
                if self.capture_op != Some(op) {
                    tracing::debug!(op, "dropping the answer of an abandoned capture");
                    return None;
                }
                self.capture_op = None;
                match result {
                    Ok(c) => {
                        self.live = Some(c.template);
                        Some(Event::FingerprintCaptured { result: Ok(c.info) })
                    }
                    Err(CaptureError::NoFinger) => Some(Event::FingerprintCaptured {
                        result: Err(CaptureFailure::NoFinger),
                    }),
                    Err(CaptureError::Device(f)) => Some(Event::DeviceFault {
                        device: Device::FingerprintScanner,
                        kind: f.kind,
                        detail: f.to_string(),
                    }),
                    // Poor captures, and any capture problem a newer driver reports.
                    Err(_) => Some(Event::FingerprintCaptured {
                        result: Err(CaptureFailure::Poor),
                    }),
                }
            }
            Input::Lane(l) => match l {
                LaneInput::Sensor { sensor, active } => Some(Event::Sensor { sensor, active }),
                LaneInput::DoorReached { door, position } => {
                    Some(Event::DoorReached { door, position })
                }
                LaneInput::Occupancy { persons } => Some(Event::Occupancy {
                    persons: self.occupancy.sensor(persons),
                }),
                LaneInput::Headcount { persons, children } => Some(Event::Headcount {
                    persons: self.occupancy.sensor(persons),
                    children,
                }),
                LaneInput::MantrapBeam { index, active } => {
                    let now_ms = self.clock.now().0;
                    self.occupancy
                        .beam(now_ms, index, active)
                        .map(|persons| Event::Occupancy { persons })
                }
                LaneInput::CloseRefused { door } => Some(Event::DoorRefused {
                    door,
                    position: DoorPosition::Closed,
                }),
                LaneInput::OpenRefused { door } => Some(Event::DoorRefused {
                    door,
                    position: DoorPosition::Open,
                }),
                LaneInput::Emergency { active } => Some(Event::Emergency { active }),
                LaneInput::Recovered => {
                    for c in self.door_commands() {
                        self.out.push_back(Output::Lane(c));
                    }
                    Some(Event::DeviceRecovered {
                        device: Device::LaneIo,
                    })
                }
                LaneInput::MotorFault { door, active } => {
                    let (slot, what) = match door {
                        Door::Entry => (0, "entry door motor fault"),
                        Door::Exit => (1, "exit door motor fault"),
                    };
                    self.lane_trouble_changed(slot, active, what)
                }
                LaneInput::Tamper { active } => {
                    self.lane_trouble_changed(2, active, "tamper switch: the cabinet is open")
                }
                // Inputs a newer driver may report that the machine has no use for.
                _ => None,
            },
            Input::Fault { device, fault } => Some(Event::DeviceFault {
                device,
                kind: fault.kind,
                detail: fault.to_string(),
            }),
            Input::Recovered { device } => Some(Event::DeviceRecovered { device }),
            Input::Shutdown => Some(Event::Shutdown),
        }
    }

    /// Drains the machine's actions, finishing the in-shell ones and feeding their
    /// answers back, until the machine has nothing more to say.
    fn pump(&mut self) {
        loop {
            self.sync_lane_emergency();
            while let Some(action) = self.machine.poll_action() {
                self.execute(action);
            }
            match self.followups.pop_front() {
                Some(event) => {
                    let now = self.clock.now();
                    self.feed(now, event);
                }
                None => break,
            }
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::ReadDocument => {
                self.enrolled.clear();
                self.holder = None;
                let op = self.op();
                self.doc_op = Some(op);
                self.out.push_back(Output::ReadDocument { op });
            }
            Action::CancelDocumentRead => {
                self.doc_op = None;
                self.out.push_back(Output::CancelDocumentRead);
            }
            Action::CheckWatchlist { key } => {
                let holder = self.holder.take();
                let verdict = self.screening.check_traveller(&key, holder.as_ref());
                self.followups
                    .push_back(Event::WatchlistChecked { verdict });
            }
            Action::OpenDoor { door } => self.out.push_back(Output::Lane(LaneCommand::Door {
                door,
                position: crate::types::DoorPosition::Open,
            })),
            Action::CloseDoor { door } => self.out.push_back(Output::Lane(LaneCommand::Door {
                door,
                position: crate::types::DoorPosition::Closed,
            })),
            Action::CaptureFingerprint { attempt } => {
                self.live = None;
                let op = self.op();
                self.capture_op = Some(op);
                let ms = self.machine.config().timeouts.capture_ms;
                tracing::debug!(attempt, op, "capture");
                self.out.push_back(Output::Capture {
                    op,
                    timeout: Duration::from_millis(ms),
                });
            }
            Action::CancelCapture => {
                self.capture_op = None;
                self.live = None;
                self.out.push_back(Output::CancelCapture);
            }
            Action::MatchFingerprint { attempt } => {
                let compared = match self.live.take() {
                    Some(live) => self.matcher.best(&live, &self.enrolled).map_err(|e| {
                        tracing::warn!(attempt, error = %e, "fingerprint comparison failed");
                        e.failure()
                    }),
                    None => Err(MatcherFailure::NoLiveTemplate),
                };
                self.followups.push_back(match compared {
                    Ok(score) => Event::MatchDone { score },
                    Err(error) => Event::MatchFailed { error },
                });
            }
            Action::Display { prompt } => self.out.push_back(Output::Display(prompt)),
            // Written when the outputs queued so far have been taken (see `poll_output`).
            Action::Journal { record } => self.unwritten.push_back(record),
            Action::Emit { event } => {
                let now = self.clock.now();
                let txn = self.machine.snapshot().txn;
                log_event(&event);
                if let GateEvent::Command {
                    accepted, detail, ..
                } = &event
                {
                    self.last_command = Some(CommandReply {
                        accepted: *accepted,
                        detail: detail.clone(),
                    });
                }
                if self.journal.pending_events() < MAX_PENDING_EVENTS {
                    self.journal.append_event(now, txn, event.clone());
                } else {
                    tracing::error!("events backlog full; an event is not journaled");
                }
                self.out.push_back(Output::Feed(FeedItem {
                    at: now,
                    kind: FeedKind::Event { event },
                }));
            }
            Action::ShutdownReady => {
                self.stopped = true;
                self.enrolled.clear();
                self.holder = None;
                self.live = None;
                self.out.push_back(Output::ShutdownReady);
            }
        }
    }

    fn journal_record(&mut self, record: Record) {
        let txn = record.txn;
        if self.storage.fail_commits {
            tracing::error!(
                txn = txn.0,
                "movement record not journaled: simulated storage failure"
            );
            self.followups.push_back(Event::JournalFailed {
                txn,
                detail: "journal write failed: input/output error (simulated)".into(),
            });
            return;
        }
        if self.storage.record_stall_ms > 0 {
            self.clock.block(self.storage.record_stall_ms);
        }
        let now = self.clock.now();
        match self.journal.append_record(now, &record) {
            Ok(seq) => {
                if seq > self.last_seq {
                    self.last_seq = seq;
                    self.outcomes.add(record.outcome);
                }
                tracing::info!(
                    seq,
                    txn = txn.0,
                    outcome = record.outcome.as_str(),
                    reasons = %serde_json::to_string(&record.reasons).unwrap_or_default(),
                    "movement record journaled"
                );
                self.out.push_back(Output::Feed(FeedItem {
                    at: now,
                    kind: FeedKind::Record {
                        seq,
                        txn,
                        outcome: record.outcome,
                    },
                }));
                self.followups.push_back(Event::Journaled { txn });
            }
            Err(e) => {
                tracing::error!(txn = txn.0, error = %e, "movement record not journaled");
                self.followups.push_back(Event::JournalFailed {
                    txn,
                    detail: e.to_string(),
                });
            }
        }
    }
}

fn log_event(event: &GateEvent) {
    match event {
        GateEvent::AlarmRaised { alarm, detail } => {
            tracing::warn!(alarm = ?alarm, %detail, "alarm raised")
        }
        GateEvent::DeviceFault { device, detail, .. } => {
            tracing::warn!(%device, %detail, "device fault")
        }
        GateEvent::Command {
            command,
            actor,
            accepted,
            detail,
        } => tracing::info!(
            command = ?command,
            user = %actor.user,
            role = ?actor.role,
            reason = %actor.reason,
            accepted,
            %detail,
            "operator command"
        ),
        GateEvent::StepChanged { from, to, mode } => {
            tracing::debug!(%from, %to, mode = mode.as_str(), "step")
        }
        other => tracing::info!(event = ?other, "gate event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Config;
    use crate::record::Role;
    use crate::runtime::clock::MonotonicWallClock;
    use crate::runtime::matcher::SimMatcher;
    use crate::runtime::screening::InlineWatchlist;

    fn lane_commands(core: &mut Core) -> Vec<LaneCommand> {
        let mut out = Vec::new();
        while let Some(o) = core.poll_output() {
            if let Output::Lane(c) = o {
                out.push(c);
            }
        }
        out
    }

    fn supervisor() -> Actor {
        Actor {
            user: "sup".into(),
            role: Role::Supervisor,
            reason: "drill".into(),
        }
    }

    fn core(dir: &std::path::Path) -> Core {
        let clock = MonotonicWallClock::start();
        let journal = Journal::open(&dir.join("j.sqlite")).expect("journal");
        let machine = Machine::new(
            Config::default(),
            clock.now(),
            journal.next_txn().expect("txn"),
        );
        let mut core = Core::new(
            "g".into(),
            machine,
            journal,
            Box::new(InlineWatchlist::default()),
            Box::new(SimMatcher),
            Arc::new(clock),
        );
        for door in Door::ALL {
            core.input(Input::Lane(LaneInput::DoorReached {
                door,
                position: DoorPosition::Closed,
            }));
        }
        let _ = lane_commands(&mut core);
        core
    }

    #[test]
    fn a_motor_fault_or_tamper_takes_the_gate_out_of_service_until_all_clear() {
        let dir = tempfile::tempdir().expect("dir");
        let mut core = core(dir.path());
        assert_eq!(core.mode(), Mode::Ready);
        core.input(Input::Lane(LaneInput::MotorFault {
            door: Door::Exit,
            active: true,
        }));
        assert_eq!(core.mode(), Mode::OutOfService);
        assert!(core
            .status()
            .machine
            .alarms
            .contains(&crate::record::AlarmKind::DeviceFault));
        core.input(Input::Lane(LaneInput::Tamper { active: true }));
        core.input(Input::Lane(LaneInput::MotorFault {
            door: Door::Exit,
            active: false,
        }));
        assert_eq!(core.mode(), Mode::OutOfService, "tamper still open");
        core.input(Input::Lane(LaneInput::Tamper { active: false }));
        assert_eq!(core.mode(), Mode::Ready);
    }

    #[test]
    fn the_lane_hears_of_an_emergency_release_before_the_doors_and_of_its_reset() {
        let dir = tempfile::tempdir().expect("dir");
        let mut core = core(dir.path());
        let reply = core.operator(OperatorCommand::EmergencyRelease, supervisor());
        assert!(reply.accepted, "{}", reply.detail);
        let cmds = lane_commands(&mut core);
        assert_eq!(
            cmds.first(),
            Some(&LaneCommand::EmergencyRelease),
            "{cmds:?}"
        );
        let opens = cmds
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    LaneCommand::Door {
                        position: DoorPosition::Open,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(opens, 2, "{cmds:?}");
        // After a lane I/O recovery the release is restored first, too.
        assert_eq!(
            core.door_commands().first(),
            Some(&LaneCommand::EmergencyRelease)
        );
        let reply = core.operator(OperatorCommand::EmergencyReset, supervisor());
        assert!(reply.accepted, "{}", reply.detail);
        let cmds = lane_commands(&mut core);
        assert_eq!(cmds.first(), Some(&LaneCommand::EmergencyReset), "{cmds:?}");
        assert!(!cmds.contains(&LaneCommand::EmergencyRelease), "{cmds:?}");
    }

    #[test]
    fn mantrap_beams_and_interlock_refusals_reach_the_machine() {
        let dir = tempfile::tempdir().expect("dir");
        let mut core = core(dir.path());
        // A mantrap beam broken with no occupancy input: somebody is there.
        core.input(Input::Lane(LaneInput::MantrapBeam {
            index: 1,
            active: true,
        }));
        assert_eq!(core.status().machine.occupancy, 1);
        core.input(Input::Lane(LaneInput::Occupancy { persons: 0 }));
        assert_eq!(
            core.status().machine.occupancy,
            1,
            "the beam is still broken"
        );
        core.input(Input::Lane(LaneInput::MantrapBeam {
            index: 1,
            active: false,
        }));
        assert_eq!(core.status().machine.occupancy, 0);
        // A refused open of a door the machine commanded open (for maintenance here) is
        // a door fault.
        let reply = core.operator(OperatorCommand::MaintenanceOn, supervisor());
        assert!(reply.accepted, "{}", reply.detail);
        let reply = core.operator(OperatorCommand::OpenEntry, supervisor());
        assert!(reply.accepted, "{}", reply.detail);
        let _ = lane_commands(&mut core);
        core.input(Input::Lane(LaneInput::OpenRefused { door: Door::Entry }));
        assert!(core
            .status()
            .machine
            .alarms
            .contains(&crate::record::AlarmKind::DoorFault));
    }

    #[test]
    fn disk_levels_reach_the_machine_the_feed_and_the_journal() {
        use crate::record::AlarmKind;
        use crate::upstream::disk::DiskLevel;
        let dir = tempfile::tempdir().expect("dir");
        let mut core = core(dir.path());
        core.flush_events();
        let events = core.journal().event_count().expect("events");
        let feed = |core: &mut Core| {
            let mut out = Vec::new();
            while let Some(o) = core.poll_output() {
                if let Output::Feed(FeedItem {
                    kind: FeedKind::Event { event },
                    ..
                }) = o
                {
                    out.push(event);
                }
            }
            out
        };
        core.input(Input::DiskLevel {
            level: DiskLevel::StopClearing,
            detail: "journal file system 97.0 % used".into(),
        });
        assert_eq!(core.status().machine.alarms, [AlarmKind::DiskFull]);
        assert_eq!(core.mode(), Mode::Ready);
        let f = feed(&mut core);
        assert!(
            f.contains(&GateEvent::AlarmRaised {
                alarm: AlarmKind::DiskFull,
                detail: "journal file system 97.0 % used".into()
            }),
            "{f:?}"
        );
        core.input(Input::DiskLevel {
            level: DiskLevel::Ok,
            detail: "journal file system 40.0 % used".into(),
        });
        assert!(core.status().machine.alarms.is_empty());
        let f = feed(&mut core);
        assert!(
            f.contains(&GateEvent::AlarmCleared {
                alarm: AlarmKind::DiskFull
            }),
            "{f:?}"
        );
        core.flush_events();
        assert_eq!(
            core.journal().event_count().expect("events"),
            events + 2,
            "raised and cleared are journaled"
        );
    }

    /// A record waits for the outputs queued before it: an emergency release reaches the
    /// doors at once, the aborted record is committed after them, however slow the disk.
    #[test]
    fn door_commands_leave_before_a_slow_commit() {
        use crate::runtime::clock::VirtualClock;
        let dir = tempfile::tempdir().expect("dir");
        let clock = VirtualClock::at(Time(1_000_000));
        let journal = Journal::open(&dir.path().join("j.sqlite")).expect("journal");
        let mut core = Core::start(
            "g".into(),
            Config::default(),
            journal,
            Box::new(InlineWatchlist::default()),
            Box::new(SimMatcher),
            Arc::new(clock.clone()),
        )
        .expect("starts");
        for door in Door::ALL {
            core.input(Input::Lane(LaneInput::DoorReached {
                door,
                position: DoorPosition::Closed,
            }));
        }
        let _ = lane_commands(&mut core);
        core.input(Input::Presence(Presence::Placed));
        let _ = lane_commands(&mut core);
        core.set_storage_faults(StorageFaults {
            record_stall_ms: 5_000,
            ..StorageFaults::default()
        });
        core.input(Input::Lane(LaneInput::Emergency { active: true }));
        let mut opened_at = Vec::new();
        let mut recorded_at = None;
        while let Some(o) = core.poll_output() {
            match o {
                Output::Lane(LaneCommand::Door {
                    position: DoorPosition::Open,
                    ..
                }) => opened_at.push(clock.now()),
                Output::Feed(FeedItem {
                    kind: FeedKind::Record { outcome, .. },
                    ..
                }) => recorded_at = Some((clock.now(), outcome)),
                _ => {}
            }
        }
        assert_eq!(opened_at, [Time(1_000_000); 2]);
        assert_eq!(recorded_at, Some((Time(1_005_000), Outcome::Aborted)));
        assert_eq!(core.journal().count().expect("count"), 1);
    }

    /// A clock the test sets by hand (scan-cycle times of a beam sequence).
    struct HandClock(std::sync::atomic::AtomicU64);

    impl Clock for HandClock {
        fn now(&self) -> Time {
            Time(self.0.load(std::sync::atomic::Ordering::SeqCst))
        }
    }

    #[test]
    fn two_bodies_in_the_beams_reach_the_machine_as_two_persons() {
        let dir = tempfile::tempdir().expect("dir");
        let clock = Arc::new(HandClock(std::sync::atomic::AtomicU64::new(1_000_000)));
        let journal = Journal::open(&dir.path().join("j.sqlite")).expect("journal");
        let machine = Machine::new(
            Config::default(),
            clock.now(),
            journal.next_txn().expect("txn"),
        );
        let mut core = Core::new(
            "g".into(),
            machine,
            journal,
            Box::new(InlineWatchlist::default()),
            Box::new(SimMatcher),
            clock.clone(),
        );
        // A one-bit occupancy input says "somebody"; two bodies 20 cm apart at 1.2 m/s
        // walk through the entry beam and the first mantrap beam.
        core.input(Input::Lane(LaneInput::Occupancy { persons: 1 }));
        assert_eq!(core.status().machine.occupancy, 1);
        let edges: [(u64, Option<u8>, bool); 7] = [
            (0, None, true),
            (417, None, false),
            (521, Some(0), true),
            (583, None, true),
            (938, Some(0), false),
            (1_000, None, false),
            (1_104, Some(0), true),
        ];
        for (t, beam, active) in edges {
            clock
                .0
                .store(1_000_000 + t, std::sync::atomic::Ordering::SeqCst);
            core.input(Input::Lane(match beam {
                None => LaneInput::Sensor {
                    sensor: Sensor::EntryBeam,
                    active,
                },
                Some(index) => LaneInput::MantrapBeam { index, active },
            }));
        }
        assert_eq!(core.status().machine.occupancy, 2);
        // The overhead input reads nobody only once the lane is empty: forgotten then.
        core.input(Input::Lane(LaneInput::MantrapBeam {
            index: 0,
            active: false,
        }));
        core.input(Input::Lane(LaneInput::Occupancy { persons: 0 }));
        assert_eq!(core.status().machine.occupancy, 0);
    }

    /// The same beam timing is one body on the reference lane and two on a lane whose
    /// first mantrap beam lies twice as far in (the walking speed, and with it the gap
    /// in metres, doubles).
    #[test]
    fn the_beam_geometry_decides_how_long_a_gap_is() {
        let persons = |first_mantrap_m: Option<f64>| {
            let dir = tempfile::tempdir().expect("dir");
            let clock = Arc::new(HandClock(std::sync::atomic::AtomicU64::new(1_000_000)));
            let journal = Journal::open(&dir.path().join("j.sqlite")).expect("journal");
            let machine = Machine::new(
                Config::default(),
                clock.now(),
                journal.next_txn().expect("txn"),
            );
            let mut core = Core::new(
                "g".into(),
                machine,
                journal,
                Box::new(InlineWatchlist::default()),
                Box::new(SimMatcher),
                clock.clone(),
            );
            if let Some(m) = first_mantrap_m {
                core.set_beam_geometry(crate::beamcount::BeamGeometry { first_mantrap_m: m });
            }
            // A 100 ms gap in the entry beam; the first body takes 1 s from the entry
            // beam to the first mantrap beam (0.625 m/s: a 6 cm gap; 1.25 m/s: 12 cm).
            let edges: [(u64, Option<u8>, bool); 7] = [
                (0, None, true),
                (400, None, false),
                (500, None, true),
                (1_000, Some(0), true),
                (1_300, None, false),
                (1_400, Some(0), false),
                (1_600, Some(0), true),
            ];
            let mut most = 0;
            for (t, beam, active) in edges {
                clock
                    .0
                    .store(1_000_000 + t, std::sync::atomic::Ordering::SeqCst);
                core.input(Input::Lane(match beam {
                    None => LaneInput::Sensor {
                        sensor: Sensor::EntryBeam,
                        active,
                    },
                    Some(index) => LaneInput::MantrapBeam { index, active },
                }));
                most = most.max(core.status().machine.occupancy);
            }
            (core.beam_geometry().first_mantrap_m, most)
        };
        assert_eq!(persons(None), (0.625, 1));
        assert_eq!(persons(Some(1.25)), (1.25, 2));
    }
}
