//! What goes in and out of the machine: [`Event`]s from the shell, [`Action`]s for it.

use crate::disk::DiskLevel;
use crate::record::{Actor, GateEvent, MatcherFailure, OperatorCommand, Prompt, Record, TxnId};
use crate::types::{
    CaptureFailure, CaptureInfo, Device, Document, DocumentKey, Door, DoorPosition, FaultKind,
    ReadFailure, Sensor, WatchlistVerdict,
};
use serde::{Deserialize, Serialize};

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
    /// The matcher could not compare the last capture with the enrolled thumbs (no
    /// score: the traveller is referred with a matcher error, not a mismatch).
    MatchFailed {
        /// Why not.
        error: MatcherFailure,
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
        /// What kind of failure.
        kind: FaultKind,
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
