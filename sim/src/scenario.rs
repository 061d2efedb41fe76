//! Scenario files: what happens on the simulated control point (gates, travellers,
//! generated traffic, watchlist entries, faults, emergencies, operator commands) and what
//! the run is expected to show. Unknown keys are rejected; every error names the key.
//! The format is documented in `docs/scenarios.md`.

use device_drivers::sim::{Behaviour, Params};
use device_drivers::types::Door;
use gate_controller::machine::Timeouts;
use gate_controller::party::ChildPolicy;
use gate_controller::record::{AlarmKind, OperatorCommand, Outcome, Role};
use gate_controller::upstream::disk::DiskLevel;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use thiserror::Error;

/// Why a scenario file was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema.
    #[error("scenario {path}: {detail}")]
    Syntax {
        /// File.
        path: String,
        /// Location and problem.
        detail: String,
    },
    /// A value is out of range or inconsistent with the rest of the file.
    #[error("scenario {path}: key `{key}`: {problem}")]
    Invalid {
        /// File.
        path: String,
        /// Dotted key.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
}

/// An expected count: an exact number or a `{ min, max }` range (either bound optional).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Count {
    /// Exactly this many.
    Exact(u64),
    /// Within bounds.
    Range(Bounds),
}

/// Bounds of a [`Count`] range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// At least.
    pub min: Option<u64>,
    /// At most.
    pub max: Option<u64>,
}

impl Count {
    /// Whether `n` satisfies the expectation.
    pub fn accepts(self, n: u64) -> bool {
        match self {
            Count::Exact(e) => n == e,
            Count::Range(Bounds { min, max }) => {
                min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)
            }
        }
    }
    /// Human form: `= 3`, `>= 1`, `1..=3`.
    pub fn describe(self) -> String {
        match self {
            Count::Exact(e) => format!("= {e}"),
            Count::Range(Bounds {
                min: Some(a),
                max: Some(b),
            }) => format!("{a}..={b}"),
            Count::Range(Bounds { min: Some(a), .. }) => format!(">= {a}"),
            Count::Range(Bounds { max: Some(b), .. }) => format!("<= {b}"),
            Count::Range(_) => "any".into(),
        }
    }
}

/// The step names of the gate's state machine, as `Machine::step()` reports them and
/// `when = { step = ... }` accepts them.
pub const STEPS: [&str; 17] = [
    "ready",
    "reading_document",
    "checking_watchlist",
    "entering",
    "closing_entry",
    "capturing",
    "matching",
    "committing",
    "exiting",
    "closing_exit",
    "letting_out",
    "notice",
    "held",
    "out_of_service",
    "emergency",
    "maintenance",
    "stopped",
];

/// `when = { gate = 0, step = "closing_entry" }`: the moment a gate's state machine
/// enters a step (a change of step; the `ready` a gate starts in is not an entry).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTrigger {
    /// Gate whose machine is watched (default: the entry's own `gate`; required when
    /// the entry has none and the scenario has more than one gate).
    pub gate: Option<usize>,
    /// One of [`STEPS`].
    pub step: String,
}

/// When a triggered `[[fault]]`, `[[emergency]]` or `[[command]]` fires, resolved from
/// its `when`, `after` and `delay_ms` keys (validated: the gate exists, the step and the
/// traveller are known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// The watched gate and step, from `when`.
    pub step: Option<(usize, String)>,
    /// The named traveller, from `after`: the trigger point is their first document
    /// presentation (with `step`: the first entry into that step from then on).
    pub after: Option<String>,
    /// Delay after the trigger point.
    pub delay_ms: u64,
}

/// How an entry is scheduled.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// At a fixed time, seconds from the start.
    At(f64),
    /// On a trigger.
    On(Trigger),
}

/// The scheduling keys of one `[[fault]]`, `[[emergency]]` or `[[command]]`, for
/// validation.
struct ScheduleKeys<'a> {
    at_s: Option<f64>,
    when: Option<&'a StepTrigger>,
    after: Option<&'a String>,
    delay_ms: Option<u64>,
    gate: Option<usize>,
}

/// The scheduling keys shared by `[[fault]]`, `[[emergency]]` and `[[command]]`.
fn schedule_of(
    at_s: Option<f64>,
    when: Option<&StepTrigger>,
    after: Option<&String>,
    delay_ms: Option<u64>,
    gate: Option<usize>,
) -> Schedule {
    if when.is_none() && after.is_none() {
        return Schedule::At(at_s.unwrap_or(0.0));
    }
    Schedule::On(Trigger {
        step: when.map(|w| (w.gate.or(gate).unwrap_or(0), w.step.clone())),
        after: after.cloned(),
        delay_ms: delay_ms.unwrap_or(0),
    })
}

impl FaultEntry {
    /// When the fault happens (validated: exactly one of `at_s` and a trigger).
    pub fn schedule(&self) -> Schedule {
        schedule_of(
            self.at_s,
            self.when.as_ref(),
            self.after.as_ref(),
            self.delay_ms,
            self.gate,
        )
    }
}

impl EmergencyEntry {
    /// When the input becomes active (validated: exactly one of `at_s` and a trigger).
    pub fn schedule(&self) -> Schedule {
        schedule_of(
            self.at_s,
            self.when.as_ref(),
            self.after.as_ref(),
            self.delay_ms,
            self.gate,
        )
    }
}

impl CommandEntry {
    /// When the command is given (validated: exactly one of `at_s` and a trigger).
    pub fn schedule(&self) -> Schedule {
        schedule_of(
            self.at_s,
            self.when.as_ref(),
            self.after.as_ref(),
            self.delay_ms,
            self.gate,
        )
    }
}

/// The whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name in reports (default: the file stem).
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Seed used when `--seed` is not given.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Number of gates.
    #[serde(default = "default_gates")]
    pub gates: usize,
    /// Virtual time after which the run stops.
    #[serde(default = "default_max_duration")]
    pub max_duration_s: f64,
    /// How long each record commit of the gate's journal holds its shell up.
    #[serde(default = "default_journal_ms")]
    pub journal_commit_ms: u64,
    /// Accepted for older files; no effect (the shell looks the in-memory watchlist up
    /// at once, as `gated` does).
    #[serde(default = "default_watchlist_ms")]
    pub watchlist_latency_ms: u64,
    /// Lane physics, traveller and matcher model.
    #[serde(default)]
    pub world: Params,
    /// State-machine step deadlines.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Decision policy overrides.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Who may be in the mantrap with the traveller (as `[lane]` of the gate config).
    #[serde(default)]
    pub lane: LaneSpec,
    /// Individually listed travellers.
    #[serde(default, rename = "traveller")]
    pub travellers: Vec<TravellerEntry>,
    /// Generated traffic.
    pub traffic: Option<Traffic>,
    /// Watchlist entries (in addition to those of generated watchlisted travellers).
    #[serde(default, rename = "watchlist")]
    pub watchlist: Vec<WatchlistEntry>,
    /// Device faults.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultEntry>,
    /// Emergency inputs.
    #[serde(default, rename = "emergency")]
    pub emergencies: Vec<EmergencyEntry>,
    /// Operator commands.
    #[serde(default, rename = "command")]
    pub commands: Vec<CommandEntry>,
    /// Standing orders for the simulated operators.
    #[serde(default)]
    pub operator: OperatorPolicy,
    /// What the run must show.
    #[serde(default)]
    pub expect: Expect,
}

/// How simulated officers respond to alarms on their own (for long runs such as a busy
/// day, where nobody scripts every release). Each delay is counted from the alarm.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorPolicy {
    /// Release a watchlist hold this long after it was raised.
    pub release_hold_after_s: Option<f64>,
    /// Acknowledge tailgating and lingering alarms this long after they were raised.
    pub acknowledge_after_s: Option<f64>,
    /// Put a gate back in service this long after a door fault.
    pub in_service_after_door_fault_s: Option<f64>,
}

fn default_seed() -> u64 {
    1
}
fn default_gates() -> usize {
    1
}
fn default_max_duration() -> f64 {
    3_600.0
}
fn default_journal_ms() -> u64 {
    2
}
fn default_watchlist_ms() -> u64 {
    1
}

/// Overrides of the lane's decision policy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Biometric threshold (default 0.5).
    pub biometric_threshold: Option<f32>,
    /// Capture attempts (default 3).
    pub max_attempts: Option<u8>,
    /// Minimum age (default 11).
    pub min_age: Option<u8>,
}

/// `[lane]`: who may be in the mantrap with the traveller.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneSpec {
    /// One adult with one child: `allow` or `refer` (default `refer`).
    #[serde(default)]
    pub accompanied_child: ChildPolicy,
}

/// One listed traveller.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravellerEntry {
    /// Name (for expectations and reports).
    pub name: Option<String>,
    /// Behaviour (default `normal`).
    #[serde(default = "default_behaviour")]
    pub behaviour: Behaviour,
    /// Arrival time in seconds from the start.
    #[serde(default)]
    pub at_s: f64,
    /// Gate index (default 0).
    #[serde(default)]
    pub gate: usize,
    /// Document number on the chip (default generated).
    pub document_number: Option<String>,
    /// Issuing state on the chip (default generated).
    pub issuing_state: Option<String>,
}

fn default_behaviour() -> Behaviour {
    Behaviour::Normal
}

/// Generated travellers: Poisson arrivals, each joining the gate with the shortest queue.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// How many travellers.
    pub count: u64,
    /// Mean arrival rate over the whole control point.
    pub rate_per_hour: f64,
    /// When the first may arrive, seconds from the start.
    #[serde(default)]
    pub start_s: f64,
    /// Behaviour weights, e.g. `{ normal = 90, slow = 5 }` (default: all normal).
    #[serde(default)]
    pub mix: BTreeMap<String, u32>,
}

/// Action of a watchlist entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListAction {
    /// Send to the counter.
    Refer,
    /// Hold for an officer.
    Hold,
}

/// One watchlist entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchlistEntry {
    /// Issuing state.
    pub issuing_state: String,
    /// Document number.
    pub document_number: String,
    /// Action.
    pub action: ListAction,
    /// Reason code (default `SCENARIO`).
    #[serde(default = "default_reason")]
    pub reason: String,
}

fn default_reason() -> String {
    "SCENARIO".into()
}

/// Kinds of device fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Fingerprint scanner offline.
    ScannerOffline,
    /// Document reader offline.
    ReaderOffline,
    /// A door motor does not move (needs `door`).
    DoorStuck,
    /// Something sits in a door's safety field, e.g. an arm reaching through (needs `door`).
    Obstruction,
    /// A door's threshold beam is held blocked (dirt, misalignment) (needs `door`).
    BeamBlocked,
    /// A door's threshold beam never breaks (dead receiver) (needs `door`).
    BeamDead,
    /// Someone pulls a door open by hand without a command and holds it (needs `door`).
    ForcedDoor,
    /// A person on the far side walks in through the exit when it opens, then back out;
    /// `for_s` is how long they wait for it.
    WrongWay,
    /// The link to the lane I/O module (Modbus TCP) is lost: a lane I/O fault; no sensor
    /// or door change reaches the gate and door commands wait until the link returns.
    IoLinkLost,
    /// Every journal commit fails (an I/O error on the journal's disk) for `for_s`.
    JournalFail,
    /// Every journal commit holds the gate's shell up `stall_ms` for `for_s`.
    JournalStall,
    /// The disk guard measures the journal's file system at `level` (`alarm` or
    /// `stop_clearing`) for `for_s`.
    DiskFull,
    /// `gated` crashes (state in memory lost) and starts again from its journal.
    Crash,
    /// The system clock is stepped by `step_s` seconds (an NTP correction; negative:
    /// backwards). The running gate keeps its monotonic time; it reads the stepped
    /// clock when its process next starts.
    ClockStep,
}

/// The disk guard's levels in scenario files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskLevelName {
    /// Raise the disk alarm, keep clearing.
    Alarm,
    /// Raise the alarm and stop clearing.
    StopClearing,
}

/// A fault of the gate's computer rather than of its lane: storage, process, clock.
#[derive(Clone, Debug, PartialEq)]
pub enum ShellFault {
    /// Journal commits fail or stall (both off: the storage is healthy again).
    Storage {
        /// Every commit fails.
        fail_commits: bool,
        /// Every commit takes this long (`None`: the ordinary `journal_commit_ms`).
        stall_ms: Option<u64>,
        /// For how long (0: for good).
        for_ms: u64,
    },
    /// The disk guard reports a level.
    Disk {
        /// The level.
        level: DiskLevel,
        /// What the guard says.
        detail: String,
        /// For how long (0: for good).
        for_ms: u64,
    },
    /// The process crashes and restarts from its journal.
    Crash,
    /// The system clock is stepped.
    ClockStep {
        /// By how much, in ms.
        ms: i64,
    },
}

impl ShellFault {
    /// When the fault ends by itself: (after how many ms, what undoes it).
    pub fn ends(&self) -> Option<(u64, ShellFault)> {
        match self {
            ShellFault::Storage { for_ms, .. } if *for_ms > 0 => Some((
                *for_ms,
                ShellFault::Storage {
                    fail_commits: false,
                    stall_ms: None,
                    for_ms: 0,
                },
            )),
            ShellFault::Disk { for_ms, .. } if *for_ms > 0 => Some((
                *for_ms,
                ShellFault::Disk {
                    level: DiskLevel::Ok,
                    detail: "journal file system 40.0 % used (simulated)".into(),
                    for_ms: 0,
                },
            )),
            _ => None,
        }
    }
}

impl FaultKind {
    /// Whether the fault needs a `door`.
    pub fn needs_door(self) -> bool {
        !matches!(
            self,
            FaultKind::ScannerOffline
                | FaultKind::ReaderOffline
                | FaultKind::WrongWay
                | FaultKind::IoLinkLost
                | FaultKind::JournalFail
                | FaultKind::JournalStall
                | FaultKind::DiskFull
                | FaultKind::Crash
                | FaultKind::ClockStep
        )
    }

    /// Whether the fault lasts `for_s` (the others happen at an instant).
    pub fn needs_duration(self) -> bool {
        !matches!(self, FaultKind::Crash | FaultKind::ClockStep)
    }
}

/// One device fault.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    /// When, seconds from the start (`None` when the fault has a trigger instead).
    pub at_s: Option<f64>,
    /// Fires when a gate's state machine first enters a step (see [`StepTrigger`]).
    pub when: Option<StepTrigger>,
    /// Fires when this named traveller first presents a document (with `when`: at the
    /// first entry into that step from then on).
    pub after: Option<String>,
    /// Delay after the trigger, in milliseconds (only with `when` or `after`).
    pub delay_ms: Option<u64>,
    /// Gate index (default: every gate).
    pub gate: Option<usize>,
    /// What fails.
    pub kind: FaultKind,
    /// For how long (every kind but `crash` and `clock_step`).
    #[serde(default)]
    pub for_s: f64,
    /// Which door, for `door_stuck`.
    pub door: Option<Door>,
    /// `journal_stall`: how long each commit takes, in ms.
    pub stall_ms: Option<u64>,
    /// `disk_full`: the disk guard's level.
    pub level: Option<DiskLevelName>,
    /// `clock_step`: by how many seconds the system clock jumps (negative: backwards).
    pub step_s: Option<f64>,
}

impl FaultEntry {
    /// What the lane world is made to do (`None` for a door fault without its door).
    pub fn injection(&self) -> Option<device_drivers::sim::Injection> {
        use device_drivers::sim::Injection;
        let for_ms = (self.for_s * 1000.0).round() as u64;
        Some(match (self.kind, self.door) {
            (FaultKind::ScannerOffline, _) => Injection::ScannerOffline { for_ms },
            (FaultKind::ReaderOffline, _) => Injection::ReaderOffline { for_ms },
            (FaultKind::DoorStuck, Some(door)) => Injection::DoorStuck { door, for_ms },
            (FaultKind::Obstruction, Some(door)) => Injection::Obstruction { door, for_ms },
            (FaultKind::BeamBlocked, Some(door)) => Injection::BeamStuck {
                door,
                blocked: true,
                for_ms: Some(for_ms),
            },
            (FaultKind::BeamDead, Some(door)) => Injection::BeamStuck {
                door,
                blocked: false,
                for_ms: Some(for_ms),
            },
            (FaultKind::ForcedDoor, Some(door)) => Injection::ForceDoor { door, for_ms },
            (FaultKind::WrongWay, _) => Injection::WrongWay { for_ms },
            (FaultKind::IoLinkLost, _) => Injection::IoLinkLost { for_ms },
            (
                FaultKind::JournalFail
                | FaultKind::JournalStall
                | FaultKind::DiskFull
                | FaultKind::Crash
                | FaultKind::ClockStep,
                _,
            )
            | (_, None) => return None,
        })
    }

    /// What the gate's computer is made to do (`None` for a fault of the lane).
    pub fn shell_fault(&self) -> Option<ShellFault> {
        let for_ms = (self.for_s * 1000.0).round() as u64;
        Some(match self.kind {
            FaultKind::JournalFail => ShellFault::Storage {
                fail_commits: true,
                stall_ms: None,
                for_ms,
            },
            FaultKind::JournalStall => ShellFault::Storage {
                fail_commits: false,
                stall_ms: Some(self.stall_ms.unwrap_or(0)),
                for_ms,
            },
            FaultKind::DiskFull => {
                let (level, used) = match self.level.unwrap_or(DiskLevelName::StopClearing) {
                    DiskLevelName::Alarm => (DiskLevel::Alarm, 92.0),
                    DiskLevelName::StopClearing => (DiskLevel::StopClearing, 98.5),
                };
                ShellFault::Disk {
                    level,
                    detail: format!("journal file system {used:.1} % used (simulated)"),
                    for_ms,
                }
            }
            FaultKind::Crash => ShellFault::Crash,
            FaultKind::ClockStep => ShellFault::ClockStep {
                ms: (self.step_s.unwrap_or(0.0) * 1000.0).round() as i64,
            },
            _ => return None,
        })
    }
}

/// One emergency input.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyEntry {
    /// When, seconds from the start (`None` when the input has a trigger instead).
    pub at_s: Option<f64>,
    /// Fires when a gate's state machine first enters a step (see [`StepTrigger`]).
    pub when: Option<StepTrigger>,
    /// Fires when this named traveller first presents a document (with `when`: at the
    /// first entry into that step from then on).
    pub after: Option<String>,
    /// Delay after the trigger, in milliseconds (only with `when` or `after`).
    pub delay_ms: Option<u64>,
    /// How long the input stays active (default: for good).
    pub for_s: Option<f64>,
    /// Gate index (default: every gate).
    pub gate: Option<usize>,
}

/// Names of operator commands in scenario files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    /// See [`OperatorCommand::OpenEntry`].
    OpenEntry,
    /// See [`OperatorCommand::OpenExit`].
    OpenExit,
    /// See [`OperatorCommand::ReleaseHold`].
    ReleaseHold,
    /// See [`OperatorCommand::Refer`].
    Refer,
    /// See [`OperatorCommand::OutOfService`].
    OutOfService,
    /// See [`OperatorCommand::InService`].
    InService,
    /// See [`OperatorCommand::EmergencyRelease`].
    EmergencyRelease,
    /// See [`OperatorCommand::EmergencyReset`].
    EmergencyReset,
    /// See [`OperatorCommand::MaintenanceOn`].
    MaintenanceOn,
    /// See [`OperatorCommand::MaintenanceOff`].
    MaintenanceOff,
    /// See [`OperatorCommand::AcknowledgeAlarm`] (needs `alarm`).
    AcknowledgeAlarm,
}

/// One operator command.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandEntry {
    /// When, seconds from the start (`None` when the command has a trigger instead).
    pub at_s: Option<f64>,
    /// Fires when a gate's state machine first enters a step (see [`StepTrigger`]).
    pub when: Option<StepTrigger>,
    /// Fires when this named traveller first presents a document (with `when`: at the
    /// first entry into that step from then on).
    pub after: Option<String>,
    /// Delay after the trigger, in milliseconds (only with `when` or `after`).
    pub delay_ms: Option<u64>,
    /// Gate index (default: every gate).
    pub gate: Option<usize>,
    /// The command.
    pub command: CommandName,
    /// Alarm to acknowledge, for `acknowledge_alarm`.
    pub alarm: Option<AlarmKind>,
    /// Who (default `operator`).
    #[serde(default = "default_user")]
    pub user: String,
    /// Role (default `operator`).
    #[serde(default = "default_role")]
    pub role: Role,
    /// Why (default `scenario`).
    #[serde(default = "default_why")]
    pub reason: String,
}

fn default_user() -> String {
    "operator".into()
}
fn default_role() -> Role {
    Role::Operator
}
fn default_why() -> String {
    "scenario".into()
}

impl CommandEntry {
    /// The machine command (validated: `alarm` is present for `acknowledge_alarm`).
    pub fn operator_command(&self) -> Option<OperatorCommand> {
        Some(match self.command {
            CommandName::OpenEntry => OperatorCommand::OpenEntry,
            CommandName::OpenExit => OperatorCommand::OpenExit,
            CommandName::ReleaseHold => OperatorCommand::ReleaseHold,
            CommandName::Refer => OperatorCommand::Refer,
            CommandName::OutOfService => OperatorCommand::OutOfService,
            CommandName::InService => OperatorCommand::InService,
            CommandName::EmergencyRelease => OperatorCommand::EmergencyRelease,
            CommandName::EmergencyReset => OperatorCommand::EmergencyReset,
            CommandName::MaintenanceOn => OperatorCommand::MaintenanceOn,
            CommandName::MaintenanceOff => OperatorCommand::MaintenanceOff,
            CommandName::AcknowledgeAlarm => {
                OperatorCommand::AcknowledgeAlarm { alarm: self.alarm? }
            }
        })
    }
}

/// Expected counts per outcome.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeCounts {
    /// Cleared.
    pub cleared: Option<Count>,
    /// Referred.
    pub referred: Option<Count>,
    /// Held.
    pub held: Option<Count>,
    /// Aborted.
    pub aborted: Option<Count>,
}

impl OutcomeCounts {
    /// The expectation for `outcome`, if any.
    pub fn get(&self, outcome: Outcome) -> Option<Count> {
        match outcome {
            Outcome::Cleared => self.cleared,
            Outcome::Referred => self.referred,
            Outcome::Held => self.held,
            Outcome::Aborted => self.aborted,
        }
    }
}

/// What the run must show (no invariant violation is always expected).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Outcome counts over all gates.
    #[serde(default)]
    pub outcomes: OutcomeCounts,
    /// Number of transits started.
    pub transits: Option<Count>,
    /// Outcome of named travellers: `cleared`, `referred`, `held`, `aborted`, or `none`
    /// (never started a transit).
    #[serde(default)]
    pub travellers: BTreeMap<String, String>,
    /// Alarms raised, by kind (`tailgating`, `watchlist_hold`, `device_fault`, ...).
    #[serde(default)]
    pub alarms: BTreeMap<String, Count>,
    /// The run must end (every traveller done) within this virtual time.
    pub max_duration_s: Option<f64>,
    /// Every listed and generated traveller has finished by the end of the run.
    #[serde(default)]
    pub all_done: bool,
    /// Closing doors reversed by their safety sensor, over all gates.
    pub door_reversals: Option<Count>,
    /// Every emergency input released both doors within this many milliseconds of
    /// virtual time (the machine's reaction; the I/O scan adds at most one cycle).
    pub emergency_release_max_ms: Option<u64>,
    /// Final coarse state of every gate (`ready`, `out_of_service`, `emergency`, ...).
    pub final_state: Option<String>,
}

/// The outcome names accepted in `expect.travellers`.
pub const TRAVELLER_OUTCOMES: [&str; 5] = ["cleared", "referred", "held", "aborted", "none"];

/// Parses a behaviour name.
pub fn behaviour_named(name: &str) -> Option<Behaviour> {
    Behaviour::ALL.into_iter().find(|b| b.as_str() == name)
}

/// Parses an alarm kind name.
pub fn alarm_named(name: &str) -> Option<AlarmKind> {
    serde_json::from_value(serde_json::Value::String(name.into())).ok()
}

fn line_of(text: &str, offset: usize) -> (usize, String) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let content = text.lines().nth(line - 1).unwrap_or("").trim().to_string();
    (line, content)
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        Scenario::parse(&text, &path.display().to_string(), &stem)
    }

    /// Parses and validates scenario text; `path` names it in errors, `stem` is the
    /// default name.
    pub fn parse(text: &str, path: &str, stem: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| {
            let msg: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let msg = msg.join("; ");
            let detail = match e.span() {
                Some(span) => {
                    let (line, content) = line_of(text, span.start);
                    format!("line {line} (`{content}`): {msg}")
                }
                None => msg,
            };
            ScenarioError::Syntax {
                path: path.into(),
                detail,
            }
        })?;
        if s.name.is_none() {
            s.name = Some(stem.into());
        }
        s.validate()
            .map_err(|(key, problem)| ScenarioError::Invalid {
                path: path.into(),
                key,
                problem,
            })?;
        Ok(s)
    }

    /// Name in reports.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("scenario")
    }

    /// Checks the scheduling keys of one `[[fault]]`, `[[emergency]]` or `[[command]]`
    /// (`table` is e.g. `fault[2]`): exactly one of `at_s` and a trigger (`when`,
    /// `after`), `delay_ms` only with a trigger, known gate, step and traveller.
    fn check_schedule(
        &self,
        table: &str,
        keys: ScheduleKeys<'_>,
        travellers: &BTreeSet<String>,
    ) -> Result<(), (String, String)> {
        let ScheduleKeys {
            at_s,
            when,
            after,
            delay_ms,
            gate,
        } = keys;
        let err = |key: &str, problem: String| Err((format!("{table}.{key}"), problem));
        let triggered = when.is_some() || after.is_some();
        match (at_s, triggered) {
            (Some(_), true) => {
                let key = if when.is_some() { "when" } else { "after" };
                return err(
                    key,
                    "cannot be combined with `at_s`: give a time or a trigger, not both".into(),
                );
            }
            (None, false) => {
                return err(
                    "at_s",
                    "is required (or a trigger: `when = { step = ... }` or `after = \"name\"`)"
                        .into(),
                );
            }
            (Some(v), false) => {
                if !(v.is_finite() && (0.0..=864_000.0).contains(&v)) {
                    return err("at_s", format!("is {v}; expected seconds in 0..=864000"));
                }
            }
            (None, true) => {}
        }
        if let Some(d) = delay_ms {
            if !triggered {
                return err("delay_ms", "only applies with `when` or `after`".into());
            }
            if d > 864_000_000 {
                return err("delay_ms", format!("is {d}; expected at most 864000000"));
            }
        }
        if let Some(w) = when {
            match (w.gate, gate) {
                (Some(g), _) | (None, Some(g)) if g >= self.gates => {
                    return err(
                        "when.gate",
                        format!(
                            "is {g}, but the scenario has {} gate(s) (0-based)",
                            self.gates
                        ),
                    );
                }
                (None, None) if self.gates > 1 => {
                    return err(
                        "when.gate",
                        "is required: the entry applies to every gate and the scenario has \
                         more than one"
                            .into(),
                    );
                }
                _ => {}
            }
            if !STEPS.contains(&w.step.as_str()) {
                return err(
                    "when.step",
                    format!("unknown step `{}`; known: {}", w.step, STEPS.join(", ")),
                );
            }
        }
        if let Some(name) = after {
            if !travellers.contains(name) {
                return err(
                    "after",
                    format!("`{name}` names no [[traveller]] of this scenario"),
                );
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: String, problem: &str| Err((key, problem.to_string()));
        let time = |key: String, v: f64| {
            if v.is_finite() && (0.0..=864_000.0).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("is {v}; expected seconds in 0..=864000")))
            }
        };
        let gate = |key: String, g: usize| {
            if g < self.gates {
                Ok(())
            } else {
                Err((
                    key,
                    format!(
                        "is {g}, but the scenario has {} gate(s) (0-based)",
                        self.gates
                    ),
                ))
            }
        };
        if !(1..=64).contains(&self.gates) {
            return bad("gates".into(), "must be between 1 and 64");
        }
        time("max_duration_s".into(), self.max_duration_s)?;
        if self.max_duration_s <= 0.0 {
            return bad("max_duration_s".into(), "must be positive");
        }
        if self.journal_commit_ms > 60_000 || self.watchlist_latency_ms > 60_000 {
            return bad(
                "journal_commit_ms".into(),
                "latencies must be at most 60000 ms",
            );
        }
        if let Err(e) = self.world.validate() {
            let device_drivers::sim::ParamsError::OutOfRange {
                key,
                value,
                expected,
            } = e
            else {
                return bad("world".into(), "invalid");
            };
            return Err((
                format!("world.{key}"),
                format!("is {value}; must be {expected}"),
            ));
        }
        if let Some(t) = self.policy.biometric_threshold {
            if !(0.0..=1.0).contains(&t) {
                return bad("policy.biometric_threshold".into(), "must be in 0..=1");
            }
        }
        if self.policy.max_attempts == Some(0) {
            return bad("policy.max_attempts".into(), "must be at least 1");
        }
        let mut names = BTreeSet::new();
        for (k, t) in self.travellers.iter().enumerate() {
            time(format!("traveller[{k}].at_s"), t.at_s)?;
            gate(format!("traveller[{k}].gate"), t.gate)?;
            if let Some(n) = &t.name {
                if !names.insert(n.clone()) {
                    return bad(format!("traveller[{k}].name"), "repeats an earlier name");
                }
            }
            for (key, v) in [
                ("document_number", &t.document_number),
                ("issuing_state", &t.issuing_state),
            ] {
                if let Some(v) = v {
                    if v.is_empty()
                        || v.len() > 20
                        || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '<')
                    {
                        return bad(
                            format!("traveller[{k}].{key}"),
                            "must be 1 to 20 letters, digits or '<'",
                        );
                    }
                }
            }
        }
        if let Some(tr) = &self.traffic {
            if tr.count > 1_000_000 {
                return bad("traffic.count".into(), "must be at most 1000000");
            }
            if !(tr.rate_per_hour.is_finite() && tr.rate_per_hour > 0.0 && tr.rate_per_hour <= 1e6)
            {
                return bad("traffic.rate_per_hour".into(), "must be in (0, 1000000]");
            }
            time("traffic.start_s".into(), tr.start_s)?;
            for name in tr.mix.keys() {
                if behaviour_named(name).is_none() {
                    let known: Vec<&str> = Behaviour::ALL.iter().map(|b| b.as_str()).collect();
                    return Err((
                        format!("traffic.mix.{name}"),
                        format!("unknown behaviour; known: {}", known.join(", ")),
                    ));
                }
            }
            if !tr.mix.is_empty() && tr.mix.values().all(|w| *w == 0) {
                return bad("traffic.mix".into(), "needs at least one positive weight");
            }
        }
        for (k, f) in self.faults.iter().enumerate() {
            self.check_schedule(
                &format!("fault[{k}]"),
                ScheduleKeys {
                    at_s: f.at_s,
                    when: f.when.as_ref(),
                    after: f.after.as_ref(),
                    delay_ms: f.delay_ms,
                    gate: f.gate,
                },
                &names,
            )?;
            time(format!("fault[{k}].for_s"), f.for_s)?;
            if f.kind.needs_duration() && f.for_s <= 0.0 {
                return bad(
                    format!("fault[{k}].for_s"),
                    "is required for this kind (> 0)",
                );
            }
            let only = |key: &str, set: bool, kind: FaultKind| -> Result<(), (String, String)> {
                if set && f.kind != kind {
                    return Err((
                        format!("fault[{k}].{key}"),
                        "does not apply to this kind of fault".to_string(),
                    ));
                }
                if !set && f.kind == kind {
                    return Err((
                        format!("fault[{k}].{key}"),
                        "is required for this kind".to_string(),
                    ));
                }
                Ok(())
            };
            only("stall_ms", f.stall_ms.is_some(), FaultKind::JournalStall)?;
            only("step_s", f.step_s.is_some(), FaultKind::ClockStep)?;
            if f.level.is_some() && f.kind != FaultKind::DiskFull {
                return bad(
                    format!("fault[{k}].level"),
                    "does not apply to this kind of fault",
                );
            }
            if let Some(st) = f.step_s {
                if !st.is_finite() || st.abs() > 365.0 * 86_400.0 {
                    return bad(
                        format!("fault[{k}].step_s"),
                        "must be within a year either way",
                    );
                }
            }
            if f.stall_ms.is_some_and(|ms| ms > 60_000) {
                return bad(format!("fault[{k}].stall_ms"), "must be at most 60000");
            }
            if let Some(g) = f.gate {
                gate(format!("fault[{k}].gate"), g)?;
            }
            match (f.kind.needs_door(), f.door) {
                (true, None) => {
                    return bad(
                        format!("fault[{k}].door"),
                        "is required for this kind (entry or exit)",
                    )
                }
                (false, Some(_)) => {
                    return bad(
                        format!("fault[{k}].door"),
                        "does not apply to this kind of fault",
                    )
                }
                _ => {}
            }
        }
        for (k, e) in self.emergencies.iter().enumerate() {
            self.check_schedule(
                &format!("emergency[{k}]"),
                ScheduleKeys {
                    at_s: e.at_s,
                    when: e.when.as_ref(),
                    after: e.after.as_ref(),
                    delay_ms: e.delay_ms,
                    gate: e.gate,
                },
                &names,
            )?;
            if let Some(f) = e.for_s {
                time(format!("emergency[{k}].for_s"), f)?;
            }
            if let Some(g) = e.gate {
                gate(format!("emergency[{k}].gate"), g)?;
            }
        }
        for (k, c) in self.commands.iter().enumerate() {
            self.check_schedule(
                &format!("command[{k}]"),
                ScheduleKeys {
                    at_s: c.at_s,
                    when: c.when.as_ref(),
                    after: c.after.as_ref(),
                    delay_ms: c.delay_ms,
                    gate: c.gate,
                },
                &names,
            )?;
            if let Some(g) = c.gate {
                gate(format!("command[{k}].gate"), g)?;
            }
            match (c.command, c.alarm) {
                (CommandName::AcknowledgeAlarm, None) => {
                    return bad(
                        format!("command[{k}].alarm"),
                        "is required for acknowledge_alarm",
                    )
                }
                (CommandName::AcknowledgeAlarm, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return bad(
                        format!("command[{k}].alarm"),
                        "only applies to acknowledge_alarm",
                    )
                }
            }
        }
        for (name, outcome) in &self.expect.travellers {
            if !names.contains(name) {
                return bad(
                    format!("expect.travellers.{name}"),
                    "names no [[traveller]] of this scenario",
                );
            }
            if !TRAVELLER_OUTCOMES.contains(&outcome.as_str()) {
                return Err((
                    format!("expect.travellers.{name}"),
                    format!(
                        "is `{outcome}`; expected one of {}",
                        TRAVELLER_OUTCOMES.join(", ")
                    ),
                ));
            }
        }
        for name in self.expect.alarms.keys() {
            if alarm_named(name).is_none() {
                return bad(
                    format!("expect.alarms.{name}"),
                    "unknown alarm kind; known: watchlist_hold, tailgating, device_fault, \
                     door_fault, emergency, lingering, watchlist_stale, journal_failure, \
                     disk_space_low, disk_full",
                );
            }
        }
        for (key, v) in [
            (
                "operator.release_hold_after_s",
                self.operator.release_hold_after_s,
            ),
            (
                "operator.acknowledge_after_s",
                self.operator.acknowledge_after_s,
            ),
            (
                "operator.in_service_after_door_fault_s",
                self.operator.in_service_after_door_fault_s,
            ),
        ] {
            if let Some(v) = v {
                time(key.into(), v)?;
            }
        }
        if let Some(d) = self.expect.max_duration_s {
            time("expect.max_duration_s".into(), d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, "test.toml", "test")
    }

    #[test]
    fn a_minimal_scenario_takes_the_defaults() {
        let s = parse("[[traveller]]\nname = \"anna\"\n").expect("valid");
        assert_eq!(s.name(), "test");
        assert_eq!((s.seed, s.gates), (1, 1));
        assert_eq!(s.travellers[0].behaviour, Behaviour::Normal);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("gatez = 2\n").unwrap_err().to_string();
        assert!(e.contains("gatez") && e.contains("line 1"), "{e}");
        let e = parse("[world]\ndoor_travel = 5\n").unwrap_err().to_string();
        assert!(e.contains("door_travel"), "{e}");
        let e = parse("[expect.outcomes]\ncleard = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cleard"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_line() {
        let e = parse("seed = 1\ngates = \"two\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gates = \"two\""), "{e}");
    }

    #[test]
    fn inconsistent_values_name_the_key() {
        let cases = [
            ("gates = 2\n[[traveller]]\ngate = 2\n", "traveller[0].gate"),
            (
                "[[fault]]\nat_s = 1\nkind = \"door_stuck\"\nfor_s = 3\n",
                "fault[0].door",
            ),
            (
                "[traffic]\ncount = 3\nrate_per_hour = 10\nmix = { walking = 1 }\n",
                "traffic.mix.walking",
            ),
            (
                "[expect.travellers]\nbob = \"cleared\"\n",
                "expect.travellers.bob",
            ),
            ("[expect.alarms]\nfire = 1\n", "expect.alarms.fire"),
            ("[world]\nwalk_speed_mps = 0\n", "world.walk_speed_mps"),
            ("max_duration_s = -1\n", "max_duration_s"),
            (
                "[[command]]\nat_s = 1\ncommand = \"acknowledge_alarm\"\n",
                "command[0].alarm",
            ),
        ];
        for (text, key) in cases {
            match parse(text) {
                Err(ScenarioError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn triggers_parse_and_resolve_their_gate() {
        let s = parse(
            "gates = 2\n[[traveller]]\nname = \"ben\"\n\
             [[fault]]\ngate = 1\nwhen = { step = \"closing_exit\" }\nafter = \"ben\"\n\
             delay_ms = 300\nkind = \"obstruction\"\ndoor = \"exit\"\nfor_s = 1\n\
             [[emergency]]\nafter = \"ben\"\n\
             [[command]]\nat_s = 5\ncommand = \"in_service\"\n",
        )
        .expect("valid");
        assert_eq!(
            s.faults[0].schedule(),
            Schedule::On(Trigger {
                step: Some((1, "closing_exit".into())),
                after: Some("ben".into()),
                delay_ms: 300,
            })
        );
        assert_eq!(
            s.emergencies[0].schedule(),
            Schedule::On(Trigger {
                step: None,
                after: Some("ben".into()),
                delay_ms: 0,
            })
        );
        assert_eq!(s.commands[0].schedule(), Schedule::At(5.0));
    }

    #[test]
    fn bad_triggers_name_the_key() {
        let fault = "kind = \"scanner_offline\"\nfor_s = 1\n";
        let cases = [
            (
                format!("[[fault]]\nat_s = 1\nwhen = {{ step = \"capturing\" }}\n{fault}"),
                "fault[0].when",
            ),
            (
                format!("[[traveller]]\nname = \"a\"\n[[fault]]\nat_s = 1\nafter = \"a\"\n{fault}"),
                "fault[0].after",
            ),
            (
                format!("[[fault]]\nwhen = {{ step = \"capturing_thumb\" }}\n{fault}"),
                "fault[0].when.step",
            ),
            (
                "[[emergency]]\nafter = \"nobody\"\n".to_string(),
                "emergency[0].after",
            ),
            (
                "gates = 2\n[[emergency]]\nwhen = { step = \"capturing\" }\n".to_string(),
                "emergency[0].when.gate",
            ),
            (
                "[[emergency]]\nwhen = { gate = 1, step = \"capturing\" }\n".to_string(),
                "emergency[0].when.gate",
            ),
            (format!("[[fault]]\n{fault}"), "fault[0].at_s"),
            (
                format!("[[fault]]\nat_s = 2\ndelay_ms = 5\n{fault}"),
                "fault[0].delay_ms",
            ),
            (
                "[[command]]\nwhen = { step = \"held\" }\nat_s = 3\ncommand = \"release_hold\"\n"
                    .to_string(),
                "command[0].when",
            ),
        ];
        for (text, key) in cases {
            match parse(&text) {
                Err(ScenarioError::Invalid {
                    key: k, problem, ..
                }) => {
                    assert_eq!(k, key, "{text}: {problem}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = parse("[[emergency]]\nwhen = { step = \"capturing\", gat = 0 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gat"), "{e}");
    }

    #[test]
    fn a_misspelt_bound_is_an_error_not_any_count() {
        let e = parse("[expect.outcomes]\ncleared = { mni = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cleared"), "{e}");
        let e = parse("[expect]\ntransits = -1\n").unwrap_err().to_string();
        assert!(e.contains("transits"), "{e}");
    }

    #[test]
    fn counts_accept_exact_and_ranges() {
        let s =
            parse("[expect.outcomes]\ncleared = 3\nreferred = { min = 1 }\nheld = { max = 0 }\n")
                .expect("valid");
        assert!(s
            .expect
            .outcomes
            .cleared
            .is_some_and(|c| c.accepts(3) && !c.accepts(4)));
        assert!(s
            .expect
            .outcomes
            .referred
            .is_some_and(|c| c.accepts(9) && !c.accepts(0)));
        assert!(s
            .expect
            .outcomes
            .held
            .is_some_and(|c| c.accepts(0) && !c.accepts(1)));
    }
}
