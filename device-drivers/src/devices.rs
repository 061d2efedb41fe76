//! The asynchronous device traits the gate daemon drives: a document reader, the page
//! reader's OCR of the machine-readable zone, a fingerprint scanner and the lane's
//! door/sensor I/O.
//!
//! # Shape
//!
//! The traits are *dyn-compatible* (`Box<dyn DocumentReader>`), so `gated` picks the
//! implementation named in its configuration at start-up (simulated, PC/SC, serial,
//! Modbus, GPIO) without generics leaking into the shell. Every asynchronous method returns
//! a boxed [`DeviceFuture`] borrowing the device mutably: one operation at a time per
//! device, which is how the hardware behaves anyway.
//!
//! # Cancellation
//!
//! Every future returned here must be **drop-safe**: the shell abandons an operation by
//! dropping its future (the state machine's `CancelDocumentRead`, `CancelCapture`, a
//! shutdown, a newer command). After a drop the device must be usable again by the next
//! call — a driver that cannot abort an exchange mid-way remembers that it must resync
//! (e.g. send the scanner's cancel command, reset the card session) before its next
//! request. Methods documented as *cancel-safe* additionally lose nothing when dropped:
//! an input change that has not been returned yet is returned by the next call.
//!
//! # Faults
//!
//! A broken device answers with a [`DeviceFault`] (typed by kind, with the driver's
//! detail). The shell turns it into the state machine's `DeviceFault` input and keeps
//! probing the device ([`DocumentReader::probe`], [`FingerprintScanner::probe`]) or
//! reading it ([`LaneIo::next_input`]) until it works again, then reports the recovery.
//! Problems of the *traveller's* document or finger (wrong key, tampered chip, no finger,
//! smeared print) are not faults: they are [`ReadError`] / [`CaptureError`] variants that
//! end up as reasons in the movement record.
//!
//! # Biometric data
//!
//! Templates travel only inside [`BiometricTemplate`], which is neither `Serialize` nor
//! printable (`Debug` shows the format and length only) and is wiped when dropped. The
//! shell hands them to its matcher and nowhere else (invariant 7 of DESIGN.md).

use crate::types::{CaptureInfo, ChipFailure, Document, Door, DoorPosition, ReadFailure, Sensor};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future borrowing its device: the return type of every async device
/// method (dyn-compatible, drop-safe; see the module documentation).
pub type DeviceFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub use crate::types::FaultKind;

/// A device fault with the driver's explanation (goes into the events log and the alarm).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct DeviceFault {
    /// What kind of failure.
    pub kind: FaultKind,
    /// Driver detail for the operator and the audit trail.
    pub detail: String,
}

impl DeviceFault {
    /// A fault of `kind` with `detail`.
    pub fn new(kind: FaultKind, detail: impl Into<String>) -> DeviceFault {
        DeviceFault {
            kind,
            detail: detail.into(),
        }
    }
}

/// Encoding of a [`BiometricTemplate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TemplateFormat {
    /// ISO/IEC 19794-2:2005 finger minutiae record.
    Iso19794_2_2005,
    /// ISO/IEC 19794-2:2011 finger minutiae record.
    Iso19794_2_2011,
    /// ISO/IEC 19794-2 on-card format, normal size (as in a DG3 CBEFF block).
    IsoCardNormal,
    /// ISO/IEC 19794-2 on-card format, compact size.
    IsoCardCompact,
    /// A token of the simulator's fingers, understood only by the simulated matcher.
    Simulated,
}

/// A fingerprint template (enrolled on a document or captured live). Opaque on purpose:
/// not serialisable, `Debug` prints no content, wiped on drop.
pub struct BiometricTemplate {
    format: TemplateFormat,
    bytes: Vec<u8>,
}

impl BiometricTemplate {
    /// Wraps template bytes of `format`.
    pub fn new(format: TemplateFormat, bytes: Vec<u8>) -> BiometricTemplate {
        BiometricTemplate { format, bytes }
    }
    /// The encoding.
    pub fn format(&self) -> TemplateFormat {
        self.format
    }
    /// The encoded template, for the matcher only.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for BiometricTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BiometricTemplate({:?}, {} bytes, redacted)",
            self.format,
            self.bytes.len()
        )
    }
}

impl Drop for BiometricTemplate {
    fn drop(&mut self) {
        self.bytes.fill(0);
        // Keep the wipe from being optimised away as a dead store.
        std::hint::black_box(&self.bytes);
    }
}

// ---- document reader ---------------------------------------------------------------

/// A change of what lies on the document reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// A document (chip) was placed on the reader.
    Placed,
    /// The document was taken away.
    Removed,
    /// A document was placed but its machine-readable zone could not be used (a check
    /// digit fails, a line is missing): the traveller is asked to present it again; no
    /// transit starts.
    Misread,
}

/// A chip read: the document data for the decision, the holder's names for the
/// watchlist's person screening, and the enrolled thumbprint templates (DG3) for the
/// shell's matcher. Names and templates never reach the state machine.
#[derive(Debug)]
pub struct ChipRead {
    /// Document data (no biometrics), with passive-authentication status and the
    /// comparison with the optically read MRZ already filled in by the driver.
    pub document: Document,
    /// The holder's names from the chip's MRZ (DG1); empty when the reader has none.
    pub holder: Holder,
    /// Enrolled thumbprint templates from DG3 (empty for documents without them).
    pub enrolled: Vec<BiometricTemplate>,
}

/// The document holder's names as the chip's MRZ (DG1) gives them, for the watchlist's
/// person screening only: the shell holds them until the watchlist check and they
/// never reach the state machine, the journal, the feed or the logs (`Debug` redacts them).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// Primary identifier (surname), fillers removed.
    pub surname: String,
    /// Secondary identifier (given names), words separated by spaces.
    pub given_names: String,
}

impl Holder {
    /// Names from an MRZ's primary and secondary identifiers.
    pub fn new(surname: impl Into<String>, given_names: impl Into<String>) -> Holder {
        Holder {
            surname: surname.into(),
            given_names: given_names.into(),
        }
    }

    /// True when no name is known.
    pub fn is_empty(&self) -> bool {
        self.surname.trim().is_empty() && self.given_names.trim().is_empty()
    }
}

impl fmt::Debug for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Holder")
            .field("known", &!self.is_empty())
            .finish_non_exhaustive()
    }
}

/// Why a chip read produced no document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Nothing on the reader when the read started.
    #[error("no document on the reader")]
    NoDocument,
    /// The document was taken away during the read.
    #[error("document removed during the read")]
    Removed,
    /// The chip did not answer (dead chip, shielded cover, no contactless interface).
    #[error("the chip did not answer")]
    NoAnswer,
    /// The chip refused the access key (BAC/PACE): wrong or unreadable MRZ/CAN.
    #[error("access control failed: {0}")]
    AccessDenied(String),
    /// Secure messaging broke (bad MAC, wrong SSC, protected error response).
    #[error("secure messaging failed: {0}")]
    SecureMessaging(String),
    /// The chip answered something ICAO 9303 does not allow, or malformed data.
    #[error("chip protocol violation: {0}")]
    Protocol(String),
    /// The chip uses an algorithm the gate does not support.
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
    /// The reader itself failed (a device fault, not the document's).
    #[error("reader fault: {0}")]
    Device(DeviceFault),
}

impl ReadError {
    /// The failure recorded in the movement record.
    pub fn code(&self) -> ChipFailure {
        match self {
            ReadError::NoDocument => ChipFailure::NoDocument,
            ReadError::Removed => ChipFailure::CardRemoved,
            ReadError::NoAnswer => ChipFailure::NoAnswer,
            ReadError::AccessDenied(_) => ChipFailure::WrongKey,
            ReadError::SecureMessaging(_) => ChipFailure::BadMac,
            ReadError::Protocol(_) => ChipFailure::Protocol,
            ReadError::Unsupported(_) => ChipFailure::Unsupported,
            ReadError::Device(_) => ChipFailure::ReaderFault,
        }
    }

    /// The summary the state machine records as the reason of a referral.
    pub fn to_failure(&self) -> ReadFailure {
        ReadFailure {
            code: self.code(),
            detail: self.to_string(),
        }
    }
}

/// A document reader (PC/SC with ICAO 9303 chip reading, or the simulator's).
///
/// The access key (MRZ from the reader's OCR, or a CAN) is the driver's business: it comes
/// from the driver's own MRZ source, and the driver compares the chip MRZ with it.
pub trait DocumentReader: Send {
    /// The next change on the reader. *Cancel-safe.* An `Err` is a reader fault; the
    /// shell then calls [`DocumentReader::probe`] until the reader works again.
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>>;

    /// Reads and verifies the chip of the document on the reader (access control, secure
    /// messaging, data groups, passive authentication). Dropping the future abandons the
    /// read; the next call starts a fresh card session.
    fn read(&mut self) -> DeviceFuture<'_, Result<ChipRead, ReadError>>;

    /// Checks that the reader is usable (reconnecting if needed). Drop-safe.
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>>;
}

// ---- MRZ (OCR) reader ----------------------------------------------------------------

/// What the page reader's OCR made of one presented document's machine-readable zone.
// One short-lived value per presented document: boxing the zone would only change the
// shape the shell matches on.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Eq)]
pub enum MrzScan {
    /// A zone whose check digits all hold: its key drives BAC or PACE-MRZ.
    Read {
        /// The zone (or, from a bench file, only its key fields).
        mrz: crate::card::gate::OcrMrz,
        /// The card access number, when the reader is set to read one (TD1 cards):
        /// it drives PACE-CAN.
        can: Option<String>,
    },
    /// The reader sent a zone the gate cannot use (a check digit fails, a line is
    /// missing or malformed): the traveller presents the document again. The detail
    /// names the defect, never the zone's content.
    Misread(String),
}

impl fmt::Debug for MrzScan {
    /// Redacted: the zone names the holder.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MrzScan::Read { can, .. } => f
                .debug_struct("Read")
                .field("can", &can.is_some())
                .finish_non_exhaustive(),
            MrzScan::Misread(d) => f.debug_tuple("Misread").field(d).finish(),
        }
    }
}

/// The OCR of a page or swipe reader: the MRZ of each document presented.
pub trait MrzReader: Send {
    /// The next document read. *Cancel-safe*: a read not yet returned is returned by the
    /// next call. An `Err` is a reader fault (port gone, reader silent); the shell then
    /// calls [`MrzReader::probe`] until it works again.
    fn next_scan(&mut self) -> DeviceFuture<'_, Result<MrzScan, DeviceFault>>;

    /// Checks that the reader is usable (reopening its port if needed). Drop-safe.
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>>;
}

// ---- fingerprint scanner -------------------------------------------------------------

/// One live capture: the template for the matcher and its metadata for the decision.
#[derive(Debug)]
pub struct LiveCapture {
    /// Quality and minutiae count (all the state machine sees).
    pub info: CaptureInfo,
    /// The live template (for the matcher only).
    pub template: BiometricTemplate,
}

/// Why a capture produced no template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// No finger was placed before the capture timeout.
    #[error("no finger placed in time")]
    NoFinger,
    /// The scanner could not extract a usable template (wet, dry, smeared, moved).
    #[error("poor capture: {0}")]
    Poor(String),
    /// The scanner itself failed.
    #[error("scanner fault: {0}")]
    Device(DeviceFault),
}

/// A fingerprint scanner (Suprema-style serial protocol, or the simulator's).
pub trait FingerprintScanner: Send {
    /// Captures one live print, waiting at most `timeout` for a finger. Dropping the future
    /// cancels the capture: the driver sends the scanner's cancel command before its next
    /// request.
    fn capture(&mut self, timeout: Duration)
        -> DeviceFuture<'_, Result<LiveCapture, CaptureError>>;

    /// Checks that the scanner answers (reopening the port if needed). Drop-safe.
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>>;
}

// ---- lane I/O ----------------------------------------------------------------------

/// An output command to the lane I/O (latched and applied on the next scan cycle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaneCommand {
    /// Drive a door towards a position.
    Door {
        /// Which door.
        door: Door,
        /// Target position.
        position: DoorPosition,
    },
    /// Emergency release commanded by the controller (operator): every door open and
    /// unlocked, lamps to "exit", held like the emergency input until
    /// [`LaneCommand::EmergencyReset`].
    EmergencyRelease,
    /// Supervisor reset of an emergency release: ends the hold once the emergency input
    /// is clear (a reset while the input is still active is discarded); the doors then
    /// follow their latched [`LaneCommand::Door`] commands again.
    EmergencyReset,
}

/// An input change of the lane I/O, reported once per change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaneInput {
    /// A binary sensor changed (beam broken, obstruction present).
    Sensor {
        /// Which sensor.
        sensor: Sensor,
        /// Whether it is now active.
        active: bool,
    },
    /// A door's position feedback reached a position.
    DoorReached {
        /// Which door.
        door: Door,
        /// Where it arrived.
        position: DoorPosition,
    },
    /// The occupancy estimate of the mantrap changed.
    Occupancy {
        /// Persons counted.
        persons: u8,
    },
    /// The overhead sensor's head count with heights changed: `persons` in the mantrap,
    /// of whom `children` are below its child height threshold (one report for both, so
    /// that a child is never seen counted as an adult in between).
    Headcount {
        /// Persons counted.
        persons: u8,
        /// Of those, persons below the child height threshold.
        children: u8,
    },
    /// The emergency (fire) input changed; a cut wire reads as active.
    Emergency {
        /// Whether emergency is signalled.
        active: bool,
    },
    /// The I/O works again after a fault; current input states follow as changes.
    Recovered,
    /// A beam of the mantrap beam array changed (index 0 nearest the entry).
    MantrapBeam {
        /// Position in the array.
        index: u8,
        /// Whether the beam is now broken.
        active: bool,
    },
    /// The cabinet tamper switch changed.
    Tamper {
        /// Whether tampering is signalled.
        active: bool,
    },
    /// A door motor's fault contact changed.
    MotorFault {
        /// Which door.
        door: Door,
        /// Whether the motor reports a fault.
        active: bool,
    },
    /// The I/O's local interlock keeps `door` open against a close command because its
    /// safety sensor is active and the door is not closed (reported once per episode).
    CloseRefused {
        /// Which door.
        door: Door,
    },
    /// The I/O's local interlock keeps `door` shut against an open command because the
    /// other door is not confirmed closed (reported once per episode).
    OpenRefused {
        /// Which door.
        door: Door,
    },
}

/// The lane's doors, beams, safety sensors and emergency input (embedded-hal scan cycle
/// over Modbus TCP or GPIO, or the simulator's).
pub trait LaneIo: Send {
    /// Latches an output command for the next scan cycle. Drop-safe: a dropped command
    /// may or may not have been latched, and the shell re-sends its last commands after a
    /// recovery.
    fn command(&mut self, command: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>>;

    /// The next input change. *Cancel-safe.* An `Err` is an I/O fault (link lost, module
    /// error); the shell keeps calling, and the driver answers [`LaneInput::Recovered`]
    /// once it works again.
    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_debug_shows_no_content() {
        let t = BiometricTemplate::new(TemplateFormat::Simulated, b"secret-minutiae".to_vec());
        let s = format!("{t:?}");
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("15 bytes"));
    }

    #[test]
    fn read_errors_map_to_recorded_codes() {
        let f = ReadError::AccessDenied("BAC mutual authentication refused".into()).to_failure();
        assert_eq!(f.code, ChipFailure::WrongKey);
        assert!(f.detail.contains("BAC"));
        assert_eq!(
            ReadError::Removed.to_failure().code,
            ChipFailure::CardRemoved
        );
        assert_eq!(ReadError::NoDocument.code().as_str(), "no_document");
    }

    #[test]
    fn traits_are_dyn_compatible() {
        fn takes(
            _: Option<Box<dyn DocumentReader>>,
            _: Option<Box<dyn FingerprintScanner>>,
            _: Option<Box<dyn LaneIo>>,
            _: Option<Box<dyn MrzReader>>,
        ) {
        }
        takes(None, None, None, None);
    }
}
