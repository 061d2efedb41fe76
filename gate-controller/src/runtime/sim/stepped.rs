//! `gated`'s shell ([`Core`]: machine, journal, watchlist, matcher) on a virtual clock,
//! with the simulated lane behind the same translation to device-trait types as in real
//! time ([`super::adapter`]). `gate-sim run` and its campaigns step one of these per gate:
//! the driver jumps from one [`VirtualGate::wakeup`] to the next, thousands of transits
//! per second, seeded and replayable.
//!
//! The [`Checker`] watches the shell's boundary: the inputs as the devices reported them,
//! the door commands as the lane I/O got them, and every record as read back from the
//! journal after its commit. The journal is the SQLite [`Journal`] in memory.
//!
//! Beside the lane's own faults (injected into the [`World`]), the driver plays the faults
//! of the gate's computer: the journal's storage failing or stalling
//! ([`VirtualGate::set_storage_faults`]), the disk guard's levels
//! ([`VirtualGate::disk_level`]), the process crashing and starting again from its
//! journal ([`VirtualGate::crash_and_restart`], through [`Core::start`] as `gated` does)
//! and the system clock being stepped ([`VirtualGate::step_wall_clock`]).

use super::adapter::SimListings;
use super::adapter::{chip_read, lock, Adapter, ReaderMsg, Routed, Shared};
use crate::invariants::{Checker, Heard, Sent, Violation};
use crate::journal::{Journal, JournalError, StoredRecord};
use crate::machine::Config;
use crate::record::{Actor, OperatorCommand};
use crate::runtime::clock::{Clock, VirtualClock};
use crate::runtime::core::{CommandReply, Core, FeedKind, Input, Output, StorageFaults};
use crate::runtime::matcher::SimMatcher;
use crate::runtime::screening::{Chained, InlineWatchlist, Screening};
use crate::types::{Device, Time};
use crate::upstream::disk::DiskLevel;
use device_drivers::devices::{CaptureError, LaneCommand, LaneInput, ReadError};
use device_drivers::sim::{Params, ParamsError, Signal, TravellerId, World, WorldCommand};
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a simulated gate could not be built or restarted.
#[derive(Debug, thiserror::Error)]
pub enum SteppedError {
    /// The lane parameters are invalid.
    #[error("sim.lane: {0}")]
    Params(#[from] ParamsError),
    /// The journal could not be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// One input the shell took in, for the driver's statistics.
#[derive(Clone, Debug, PartialEq)]
pub enum Took {
    /// A lane input.
    Lane(LaneInput),
    /// An operator command.
    Operator(OperatorCommand),
    /// A deadline passed.
    Timeout,
    /// The reader, the scanner, the disk guard or a device fault.
    Other,
}

/// What happened at a simulated gate, in order, for the driver to read.
#[derive(Clone, Debug, PartialEq)]
pub enum Logged {
    /// A traveller placed their document on the reader (the world knows who).
    Presented(TravellerId),
    /// The shell took in an input.
    Took(Took),
    /// The shell carried out an output.
    Out(Output),
    /// A record read back from the journal after its commit.
    Committed(StoredRecord),
    /// The gate's process crashed and started again from its journal.
    Restarted,
}

/// A violation with the (world) time it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedViolation {
    /// World time.
    pub at: Time,
    /// The violation.
    pub violation: Violation,
}

/// The journal held against the transits the shell started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalAudit {
    /// Records in the journal.
    pub records: u64,
    /// Transits started (and not still in progress) without a record.
    pub lost: u64,
    /// Transits with more than one record.
    pub doubled: u64,
    /// Why the journal could not be read, if it could not.
    pub unreadable: Option<String>,
}

/// What a simulated gate is made of.
#[derive(Clone, Debug)]
pub struct VirtualGateSpec {
    /// Gate id (journal and feed).
    pub gate_id: String,
    /// The state machine's configuration.
    pub machine: Config,
    /// The lane.
    pub params: Params,
    /// The lane's seed.
    pub seed: u64,
    /// Watchlist entries besides the world's own listings.
    pub watchlist: InlineWatchlist,
    /// The journal's ordinary commit latency (ms of virtual time the shell waits).
    pub commit_ms: u64,
}

/// One gate: the shell on a virtual clock, its lane, and the checker.
pub struct VirtualGate {
    spec: VirtualGateSpec,
    core: Core,
    world: Shared,
    clock: VirtualClock,
    /// The gate's clock minus world time (changes only when the process starts again
    /// after the system clock was stepped).
    offset_ms: i64,
    /// How far the system clock was stepped since the process started.
    wall_step_ms: i64,
    adapter: Adapter,
    doc_op: Option<u64>,
    capture_op: Option<u64>,
    storage: StorageFaults,
    disk: Option<(DiskLevel, String)>,
    checker: Checker,
    violations: Vec<TimedViolation>,
    log: Vec<(Time, Logged)>,
    /// Shell inputs handled (device signals, deadlines, operator commands).
    pub inputs: u64,
    /// Process restarts.
    pub restarts: u64,
}

impl std::fmt::Debug for VirtualGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualGate")
            .field("gate_id", &self.spec.gate_id)
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// Events queued before they are written without waiting for a record.
const EVENT_BATCH: usize = 512;

/// Most inputs one [`VirtualGate::step`] hands the shell.
const MAX_INPUTS_PER_STEP: u32 = 100_000;

fn shift(t: Time, by: i64) -> Time {
    Time(t.0.saturating_add_signed(by))
}

impl VirtualGate {
    /// A gate started at world time `start` on a fresh in-memory journal, its doors being
    /// confirmed closed by the world.
    pub fn new(spec: VirtualGateSpec, start: Time) -> Result<VirtualGate, SteppedError> {
        let mut world = World::new(spec.params.clone(), spec.seed)?;
        world.advance_to(start);
        let world: Shared = Arc::new(Mutex::new(world));
        let clock = VirtualClock::at(start);
        let core = start_core(&spec, Journal::open_in_memory()?, &world, &clock)?;
        let storage = StorageFaults {
            fail_commits: false,
            record_stall_ms: spec.commit_ms,
            event_stall_ms: 0,
        };
        let mut g = VirtualGate {
            spec,
            core,
            world,
            clock,
            offset_ms: 0,
            wall_step_ms: 0,
            adapter: Adapter::default(),
            doc_op: None,
            capture_op: None,
            storage,
            disk: None,
            checker: Checker::new(),
            violations: Vec::new(),
            log: Vec::new(),
            inputs: 0,
            restarts: 0,
        };
        g.core.set_storage_faults(storage);
        g.settle_outputs(Heard::Other);
        Ok(g)
    }

    /// World time now (the gate's clock may run ahead of the driver's after a stall).
    pub fn now(&self) -> Time {
        shift(self.clock.now(), -self.offset_ms)
    }

    /// The lane.
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// The shell (status, mode, journal).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Starts (or stops) recording every machine input (see
    /// [`Core::record_machine_inputs`]).
    pub fn record_machine_inputs(&mut self, on: bool) {
        self.core.record_machine_inputs(on);
    }

    /// The machine inputs recorded so far.
    pub fn take_recorded(&mut self) -> Vec<(Time, Option<crate::machine::Event>)> {
        self.core.take_recorded()
    }

    /// Invariant violations so far.
    pub fn violations(&self) -> &[TimedViolation] {
        &self.violations
    }

    /// Takes what happened since the last call.
    pub fn take_log(&mut self) -> Vec<(Time, Logged)> {
        std::mem::take(&mut self.log)
    }

    /// When this gate next needs [`VirtualGate::step`] (world time).
    pub fn wakeup(&self) -> Option<Time> {
        let core = self.core.poll_timeout().map(|t| shift(t, -self.offset_ms));
        let world = self.world().next_wakeup();
        let next = match (core, world) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| t.max(self.now()))
    }

    /// Everything due by world time `t`: world signals, the machine's deadlines.
    pub fn step(&mut self, t: Time) {
        self.clock.advance_to(shift(t, self.offset_ms));
        // A machine whose deadline does not move on when handled would spin here; the
        // driver sees the gate still due at the same instant and reports no progress.
        for _ in 0..MAX_INPUTS_PER_STEP {
            let now = self.now();
            let signals = self.world().advance_to(now);
            if !signals.is_empty() {
                for s in signals {
                    self.signal(s);
                }
                continue;
            }
            if self
                .core
                .poll_timeout()
                .is_some_and(|d| d <= self.clock.now())
            {
                self.call(Took::Timeout, Heard::Other, Call::Timeout);
                continue;
            }
            break;
        }
    }

    /// An operator command at world time `t`.
    pub fn operator(&mut self, t: Time, command: OperatorCommand, actor: Actor) -> CommandReply {
        self.clock.advance_to(shift(t, self.offset_ms));
        let took = Took::Operator(command.clone());
        let reply = self.call_operator(took, command, actor);
        reply.unwrap_or_else(|| CommandReply {
            accepted: false,
            detail: "no reply".into(),
        })
    }

    /// The journal's storage starts or stops failing or stalling: with `stall_ms` every
    /// commit (records and events) takes that long; without, records take the spec's
    /// ordinary commit latency.
    pub fn set_storage_faults(&mut self, fail_commits: bool, stall_ms: Option<u64>) {
        self.storage = StorageFaults {
            fail_commits,
            record_stall_ms: stall_ms.unwrap_or(self.spec.commit_ms),
            event_stall_ms: stall_ms.unwrap_or(0),
        };
        self.core.set_storage_faults(self.storage);
    }

    /// The disk guard measures the journal's file system at `level`.
    pub fn disk_level(&mut self, t: Time, level: DiskLevel, detail: String) {
        self.clock.advance_to(shift(t, self.offset_ms));
        self.disk = Some((level, detail.clone()));
        self.call(
            Took::Other,
            Heard::Other,
            Call::Input(Input::DiskLevel { level, detail }),
        );
    }

    /// The system clock is stepped by `ms` (an NTP correction). The running shell keeps
    /// its monotonic time; a process started after this reads the stepped clock.
    pub fn step_wall_clock(&mut self, ms: i64) {
        self.wall_step_ms += ms;
    }

    /// The gate's process dies at world time `t` (everything in memory lost, the device
    /// connections dropped, the journal kept) and starts again from its journal, as
    /// `gated` would under systemd: [`Core::start`], the lane I/O reporting every input.
    pub fn crash_and_restart(&mut self, t: Time) -> Result<(), SteppedError> {
        self.step(t);
        // Everything gated would have written by now (it writes after every input).
        self.core.flush_events();
        let now = self.now();
        {
            let mut w = self.world();
            w.command(now, WorldCommand::CancelRead);
            w.command(now, WorldCommand::CancelCapture);
        }
        self.offset_ms += std::mem::take(&mut self.wall_step_ms);
        self.clock = VirtualClock::at(shift(now, self.offset_ms));
        let placeholder = start_core(
            &self.spec,
            Journal::open_in_memory()?,
            &self.world,
            &self.clock,
        )?;
        let old = std::mem::replace(&mut self.core, placeholder);
        let journal = old.crash();
        self.core = start_core(&self.spec, journal, &self.world, &self.clock)?;
        self.core.set_storage_faults(self.storage);
        self.adapter.forget_capture();
        self.doc_op = None;
        self.capture_op = None;
        self.restarts += 1;
        self.checker.restarted();
        self.log.push((now, Logged::Restarted));
        self.settle_outputs(Heard::Other);
        if let Some((level, detail)) = self.disk.clone() {
            self.call(
                Took::Other,
                Heard::Other,
                Call::Input(Input::DiskLevel { level, detail }),
            );
        }
        let inputs = self.world().inputs_now(now);
        for s in inputs {
            self.signal(s);
        }
        Ok(())
    }

    /// Reads the whole journal back and holds it against every transit the shell
    /// started, across restarts.
    pub fn journal_audit(&self) -> JournalAudit {
        let rows = match self.core.journal().records_after(0, usize::MAX >> 1) {
            Ok(r) => r,
            Err(e) => {
                return JournalAudit {
                    unreadable: Some(format!("the journal cannot be read back: {e}")),
                    ..JournalAudit::default()
                }
            }
        };
        let mut per: std::collections::BTreeMap<crate::record::TxnId, u64> = Default::default();
        for r in &rows {
            *per.entry(r.record.txn).or_insert(0) += 1;
        }
        let in_progress = self.core.status().machine.txn;
        let lost = self
            .checker
            .record_counts()
            .keys()
            .filter(|t| !per.contains_key(*t) && Some(**t) != in_progress)
            .count() as u64;
        JournalAudit {
            records: rows.len() as u64,
            lost,
            doubled: per.values().filter(|n| **n > 1).count() as u64,
            unreadable: None,
        }
    }

    /// Ends the run: every transit but the one in progress must have its record.
    pub fn finish(&mut self) {
        self.core.flush_events();
        let before = self.checker.violations().len();
        self.checker.finish(self.core.status().machine.txn);
        self.collect_violations(before);
    }

    fn signal(&mut self, s: Signal) {
        if let Signal::DocumentPresented { traveller } = s {
            let now = self.now();
            self.log.push((now, Logged::Presented(traveller)));
        }
        let input = match self.adapter.route(s) {
            Routed::Reader(ReaderMsg::Presence(p)) => Input::Presence(p),
            Routed::Reader(ReaderMsg::Read(result)) => match self.doc_op.take() {
                Some(op) => Input::DocumentRead {
                    op,
                    result: chip_read(result),
                },
                None => return,
            },
            Routed::Reader(ReaderMsg::Fault(f)) => match self.doc_op.take() {
                Some(op) => Input::DocumentRead {
                    op,
                    result: Err(ReadError::Device(f)),
                },
                None => Input::Fault {
                    device: Device::DocumentReader,
                    fault: f,
                },
            },
            Routed::Scanner(result) => match (self.capture_op.take(), result) {
                (Some(op), result) => Input::Captured { op, result },
                (None, Err(CaptureError::Device(f))) => Input::Fault {
                    device: Device::FingerprintScanner,
                    fault: f,
                },
                (None, _) => return,
            },
            Routed::Lane(Ok(i)) => Input::Lane(i),
            Routed::Lane(Err(f)) => Input::Fault {
                device: Device::LaneIo,
                fault: f,
            },
            Routed::Recovered(device) => Input::Recovered { device },
            Routed::World(c) => {
                let now = self.now();
                self.world().command(now, c);
                return;
            }
            Routed::Nothing => return,
        };
        let (took, heard) = match &input {
            Input::Lane(l) => (Took::Lane(*l), heard_of(l)),
            _ => (Took::Other, Heard::Other),
        };
        self.call(took, heard, Call::Input(input));
    }

    fn call(&mut self, took: Took, heard: Heard<'_>, call: Call) {
        let now = self.now();
        self.log.push((now, Logged::Took(took)));
        self.checker.heard(heard);
        match call {
            Call::Input(i) => self.core.input(i),
            Call::Timeout => self.core.timeout(),
        }
        self.inputs += 1;
        self.after_call();
    }

    fn call_operator(
        &mut self,
        took: Took,
        command: OperatorCommand,
        actor: Actor,
    ) -> Option<CommandReply> {
        let now = self.now();
        self.log.push((now, Logged::Took(took)));
        self.checker.heard(Heard::Operator(&command));
        let reply = self.core.operator(command, actor);
        self.inputs += 1;
        self.after_call();
        Some(reply)
    }

    /// Outputs of a start (no input).
    fn settle_outputs(&mut self, heard: Heard<'_>) {
        self.checker.heard(heard);
        self.after_call();
    }

    fn after_call(&mut self) {
        let before = self.checker.violations().len();
        while let Some(o) = self.core.poll_output() {
            self.carry_out(&o);
            let now = self.now();
            self.log.push((now, Logged::Out(o)));
        }
        self.checker.done();
        // `gated` writes queued events after every input. Here they ride with the next
        // record's commit instead (the same rows, fewer transactions) and are written
        // before anything that would see the difference: a crash, the end of the run,
        // or storage trouble, whose stalls and failures must hit each write as in gated.
        let storage_trouble = self.storage.fail_commits || self.storage.event_stall_ms > 0;
        if storage_trouble || self.core.journal().pending_events() >= EVENT_BATCH {
            self.core.flush_events();
        }
        self.collect_violations(before);
    }

    fn collect_violations(&mut self, before: usize) {
        let now = self.now();
        for v in &self.checker.violations()[before..] {
            self.violations.push(TimedViolation {
                at: now,
                violation: v.clone(),
            });
        }
    }

    fn carry_out(&mut self, o: &Output) {
        let now = self.now();
        let command = match o {
            Output::ReadDocument { op } => {
                self.doc_op = Some(*op);
                Some(WorldCommand::ReadDocument)
            }
            Output::CancelDocumentRead => {
                self.doc_op = None;
                Some(WorldCommand::CancelRead)
            }
            Output::Capture { op, .. } => {
                self.capture_op = Some(*op);
                Some(WorldCommand::Capture { attempt: 0 })
            }
            Output::CancelCapture => {
                self.capture_op = None;
                Some(WorldCommand::CancelCapture)
            }
            Output::Lane(c) => {
                match *c {
                    LaneCommand::Door { door, position } => {
                        self.checker.sent(Sent::Door { door, position })
                    }
                    LaneCommand::EmergencyRelease => self.checker.sent(Sent::EmergencyRelease),
                    _ => {}
                }
                Some(WorldCommand::Lane(*c))
            }
            Output::Display(p) => Some(WorldCommand::Display { cue: *p }),
            Output::Feed(item) => {
                match &item.kind {
                    FeedKind::Event { event } => self.checker.sent(Sent::Event(event)),
                    FeedKind::Record { seq, .. } => {
                        // What the journal really holds, not what the machine asked for.
                        match self.core.journal().records_after(seq.saturating_sub(1), 1) {
                            Ok(mut rows) if rows.first().is_some_and(|r| r.seq == *seq) => {
                                let stored = rows.remove(0);
                                self.checker.sent(Sent::Committed(&stored.record));
                                self.log.push((now, Logged::Committed(stored)));
                            }
                            _ => self.violations.push(TimedViolation {
                                at: now,
                                violation: Violation {
                                    invariant: 5,
                                    step: 0,
                                    detail: format!(
                                        "record {seq} reported committed is not in the journal"
                                    ),
                                },
                            }),
                        }
                    }
                }
                None
            }
            Output::ShutdownReady => None,
        };
        if let Some(c) = command {
            self.world().command(now, c);
        }
    }
}

enum Call {
    Input(Input),
    Timeout,
}

fn heard_of(l: &LaneInput) -> Heard<'static> {
    match *l {
        LaneInput::Sensor { sensor, active } => Heard::Sensor { sensor, active },
        LaneInput::DoorReached { door, position } => Heard::DoorReached { door, position },
        LaneInput::Emergency { active } => Heard::Emergency { active },
        _ => Heard::Other,
    }
}

fn start_core(
    spec: &VirtualGateSpec,
    journal: Journal,
    world: &Shared,
    clock: &VirtualClock,
) -> Result<Core, JournalError> {
    let screening: Box<dyn Screening> = Box::new(Chained(vec![
        Box::new(spec.watchlist.clone()),
        Box::new(SimListings {
            world: world.clone(),
        }),
    ]));
    Core::start(
        spec.gate_id.clone(),
        spec.machine.clone(),
        journal,
        screening,
        Box::new(SimMatcher),
        Arc::new(clock.clone()),
    )
}
