//! What the state machine tells the world: movement records (one per transit), the
//! reasons behind each decision, alarms, operator commands and traveller prompts.
//!
//! These types carry no biometric data by construction: scores and thresholds only.

use crate::types::{
    ChipFailure, Device, Document, DocumentKind, FaultKind, PaStatus, Time, WatchlistVerdict,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifier of one transit, unique per gate (the shell seeds the counter from the journal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a transit ended. Every transit ends in exactly one (invariant 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The traveller was cleared and let through the exit.
    Cleared,
    /// The traveller was sent to the counter.
    Referred,
    /// Watchlist hold: an officer was called.
    Held,
    /// The transit was abandoned (never entered, turned back, fault, emergency, shutdown).
    Aborted,
}

impl Outcome {
    /// All outcomes, in report order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Cleared,
        Outcome::Referred,
        Outcome::Held,
        Outcome::Aborted,
    ];
    /// The lowercase name used in JSON and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Cleared => "cleared",
            Outcome::Referred => "referred",
            Outcome::Held => "held",
            Outcome::Aborted => "aborted",
        }
    }
}

/// A step of the transit with its own deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Reading the document chip.
    DocumentRead,
    /// Consulting the watchlists.
    Watchlist,
    /// Waiting for the traveller to enter the mantrap.
    Enter,
    /// Waiting for exactly one occupant with the entry closed.
    Occupancy,
    /// Fingerprint capture and matching.
    Biometric,
    /// Durable journal commit of the decision.
    Journal,
    /// Waiting for the traveller to leave.
    Leave,
    /// A door travelling to its commanded position.
    DoorTravel,
}

/// One reason behind a decision; recorded with the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// The document chip could not be read.
    ChipUnreadable {
        /// What failed (`wrong_key`, `bad_mac`, `no_answer`, ...).
        error: ChipFailure,
        /// Driver's detail.
        detail: String,
    },
    /// Passive authentication did not succeed.
    PassiveAuthentication {
        /// The PA status.
        status: PaStatus,
    },
    /// The chip MRZ differs from the MRZ read optically.
    MrzMismatch,
    /// The document has expired.
    DocumentExpired {
        /// Expiry date, ISO 8601.
        expiry: String,
    },
    /// The document's expiry or birth date is not a real date.
    InvalidDate,
    /// The traveller is younger than the lane's minimum age.
    UnderMinimumAge {
        /// Age in whole years.
        age: i32,
        /// Configured minimum.
        minimum: u8,
    },
    /// This lane does not take this kind of document.
    DocumentTypeNotAllowed {
        /// The kind presented.
        kind: DocumentKind,
    },
    /// Resident lane: the document carries no enrolled thumbprint.
    NotEnrolled,
    /// The watchlists refer the traveller.
    WatchlistRefer {
        /// Reason code from the list.
        reason: String,
    },
    /// The watchlists order a hold.
    WatchlistHold {
        /// Reason code from the list.
        reason: String,
    },
    /// The cached watchlist is past its staleness limit.
    WatchlistStale,
    /// No attempt matched the enrolled thumbs.
    BiometricMismatch,
    /// Captures were of too poor quality on every attempt.
    BiometricQuality,
    /// The matcher could not compare the templates (a malformed live or enrolled
    /// template): no score was made, so this is not a mismatch.
    MatcherError {
        /// What the matcher could not do.
        error: MatcherFailure,
    },
    /// A step ran past its deadline.
    Timeout {
        /// The step.
        step: Step,
    },
    /// More than one person in the mantrap.
    Tailgating,
    /// A child came in with the traveller: on a referral, why; on a clear (policy
    /// `allow`), that the child went through with the traveller. No biometric data.
    AccompaniedChild,
    /// The traveller never entered the mantrap.
    NeverEntered,
    /// A device failed during the transit.
    DeviceFault {
        /// Which device.
        device: Device,
        /// How it failed (absent only in records written before kinds were recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<FaultKind>,
    },
    /// Emergency release.
    Emergency,
    /// An operator referred the traveller.
    OperatorRefer,
    /// An operator let the traveller through the exit.
    OperatorOverride,
    /// The gate was shut down or put out of service by an operator.
    Shutdown,
    /// The process stopped (crashed, was killed) during the transit and started again:
    /// no decision survives a restart, whoever is inside is let out through the entry.
    Restart,
    /// The journal could not commit the decision.
    JournalFailure,
    /// The journal's file system is (nearly) full or cannot be measured: the disk guard
    /// refers every traveller before entry, so that records can still be written.
    DiskFull,
}

/// Why the fingerprint matcher made no score, as recorded (reason `matcher_error`,
/// field `error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatcherFailure {
    /// The live capture's template could not be decoded.
    MalformedLiveTemplate,
    /// The enrolled templates from the chip (DG3) could not be decoded.
    MalformedEnrolledTemplate,
    /// A template is in an encoding the configured matcher does not read.
    UnsupportedTemplate,
    /// No live template was held when the comparison was asked for.
    NoLiveTemplate,
}

/// Biometric summary of a transit: score and threshold only, never templates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BiometricSummary {
    /// Best comparison score of the last attempt (0..1), if any match ran.
    pub score: Option<f32>,
    /// Decision threshold in force.
    pub threshold: f32,
    /// Attempts used.
    pub attempts: u8,
}

/// The movement record of one transit: what was decided and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Transit id.
    pub txn: TxnId,
    /// Outcome.
    pub outcome: Outcome,
    /// Reasons (empty for a plain clear).
    pub reasons: Vec<Reason>,
    /// When the document was presented.
    pub started_at: Time,
    /// When the outcome was decided.
    pub decided_at: Time,
    /// Document data (no biometrics), when the chip was read.
    pub document: Option<Document>,
    /// Watchlist verdict, when consulted.
    pub watchlist: Option<WatchlistVerdict>,
    /// Biometric summary, when a capture was attempted.
    pub biometric: Option<BiometricSummary>,
    /// The operator whose command decided the outcome, if any.
    pub operator: Option<String>,
}

/// Roles of people who command a gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May watch.
    Viewer,
    /// May command the lane.
    Operator,
    /// May also reset emergencies and enter maintenance.
    Supervisor,
}

/// Who issued a command and why (journaled with the command).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// User name.
    pub user: String,
    /// Role the user authenticated with.
    pub role: Role,
    /// Free-text reason given with the command.
    pub reason: String,
}

/// Commands from operators (console, API) and the process itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OperatorCommand {
    /// Open the entry door for assistance (lets the traveller back out).
    OpenEntry,
    /// Let the traveller in the mantrap out through the exit (journaled as an override first).
    OpenExit,
    /// End a watchlist hold.
    ReleaseHold,
    /// Refer the current traveller to the counter.
    Refer,
    /// Take the gate out of service.
    OutOfService,
    /// Return the gate to service.
    InService,
    /// Release every door (same as the emergency input).
    EmergencyRelease,
    /// End an emergency once the input is clear (supervisor).
    EmergencyReset,
    /// Enter maintenance (supervisor).
    MaintenanceOn,
    /// Leave maintenance (supervisor).
    MaintenanceOff,
    /// Acknowledge an alarm.
    AcknowledgeAlarm {
        /// Which alarm.
        alarm: AlarmKind,
    },
}

impl OperatorCommand {
    /// The least role allowed to issue this command.
    pub fn required_role(&self) -> Role {
        match self {
            OperatorCommand::EmergencyReset
            | OperatorCommand::MaintenanceOn
            | OperatorCommand::MaintenanceOff => Role::Supervisor,
            _ => Role::Operator,
        }
    }
}

/// Kinds of alarm raised to operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A watchlist hold.
    WatchlistHold,
    /// More than one person in the mantrap.
    Tailgating,
    /// A device fault took the gate out of service.
    DeviceFault,
    /// A door did not reach its position in time or kept being obstructed.
    DoorFault,
    /// Emergency release is active.
    Emergency,
    /// A traveller stays in the lane past the deadline.
    Lingering,
    /// The watchlist is stale: everyone is referred.
    WatchlistStale,
    /// A watchlist update (snapshot or delta) was rejected; the last good version serves.
    WatchlistUpdateRejected,
    /// The journal failed: nobody can be cleared.
    JournalFailure,
    /// A door was opened without a command.
    ForcedDoor,
    /// Someone entered the lane from the exit side.
    WrongWay,
    /// A traveller came in with a child and was referred (policy `refer`).
    AccompaniedChild,
    /// The journal's file system is filling up (`[journal] disk_alarm_percent`); the gate
    /// still clears.
    DiskSpaceLow,
    /// The journal's file system is full (`[journal] disk_stop_clearing_percent`) or
    /// cannot be measured: travellers are referred before entry.
    DiskFull,
}

/// Traveller-facing prompts (defined with their texts in [`crate::prompt`]).
pub use crate::prompt::Prompt;

/// Coarse state of a gate as shown to operators and in `/v1/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Waiting for a traveller.
    Ready,
    /// A transit is in progress.
    Transit,
    /// Watchlist hold.
    Held,
    /// Out of service (fault or command).
    OutOfService,
    /// Emergency release.
    Emergency,
    /// Maintenance.
    Maintenance,
}

impl Mode {
    /// Lower-case name (`data-gate-state` in the console).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ready => "ready",
            Mode::Transit => "transit",
            Mode::Held => "held",
            Mode::OutOfService => "out_of_service",
            Mode::Emergency => "emergency",
            Mode::Maintenance => "maintenance",
        }
    }
}

/// Events for the events log and live feeds (SSE); never biometric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GateEvent {
    /// A transit started.
    TransitStarted {
        /// Transit id.
        txn: TxnId,
    },
    /// The gate moved from one step to another.
    StepChanged {
        /// Previous step name.
        from: String,
        /// New step name.
        to: String,
        /// Coarse mode after the change.
        mode: Mode,
    },
    /// An alarm was raised.
    AlarmRaised {
        /// Alarm kind.
        alarm: AlarmKind,
        /// Detail for the operator.
        detail: String,
    },
    /// An alarm was cleared or acknowledged.
    AlarmCleared {
        /// Alarm kind.
        alarm: AlarmKind,
    },
    /// An operator command was accepted or refused.
    Command {
        /// The command.
        command: OperatorCommand,
        /// Who and why.
        actor: Actor,
        /// Whether the gate carried it out.
        accepted: bool,
        /// Why not, or what happened.
        detail: String,
    },
    /// A device fault was reported.
    DeviceFault {
        /// Device.
        device: Device,
        /// How it failed (absent only in events written before kinds were recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<FaultKind>,
        /// Detail.
        detail: String,
    },
    /// A device recovered.
    DeviceRecovered {
        /// Device.
        device: Device,
    },
}
