//! A pure, seeded model of one gate lane: doors, beams, safety sensors, the document
//! reader, the fingerprint scanner and matcher, and the travellers who use them.
//!
//! No clock, no I/O, no threads: the driver passes `now` in, exactly like the state
//! machine. The same [`World`] therefore serves `gate-sim run` in virtual time and
//! `gated` / `gate-sim demo` in real time, each time behind the gate's own shell
//! (`gate_controller::runtime`), whose simulated devices translate its [`Signal`]s into
//! what a reader, a scanner or a lane I/O module would report:
//!
//! ```text
//! loop {
//!     let t = min(shell.poll_timeout(), world.next_wakeup());   // sleep until t
//!     for s in world.advance_to(t) { shell.input(device_report_of(s)) }
//!     if shell deadline <= t { shell.timeout() }
//!     while let Some(o) = shell.poll_output() { world.command(t, device_command_of(o)) }
//! }
//! ```
//!
//! Every random draw comes from one ChaCha generator seeded at [`World::new`], so a seed
//! and the same sequence of calls replay a run exactly.

mod params;
mod rng;
mod traveller;
mod world;

pub use params::{MsRange, Params, ParamsError, ScoreDist};
pub use rng::SimRng;
pub use traveller::{
    generate_document, Behaviour, Companion, Fate, Listing, TravellerId, TravellerSpec,
};
pub use world::{DoorView, Stream, TravellerView, World};

use crate::devices::{LaneCommand, LaneInput};
use crate::prompt::Prompt;
use crate::types::{CaptureFailure, CaptureInfo, Device, Document, Door, FaultKind, ReadFailure};
use serde::{Deserialize, Serialize};

/// Commands from the gate to the simulated devices (the lane I/O's are the driver's own
/// [`LaneCommand`]).
#[derive(Clone, Debug, PartialEq)]
pub enum WorldCommand {
    /// A command to the lane I/O, as the real lane I/O driver takes it (the simulated
    /// lane has no latch of its own: an emergency release reaches the doors through the
    /// machine's door commands).
    Lane(LaneCommand),
    /// Read the document lying on the reader.
    ReadDocument,
    /// Abandon the read in progress.
    CancelRead,
    /// Capture a thumbprint.
    Capture {
        /// Attempt number, from 1.
        attempt: u8,
    },
    /// Abandon the capture in progress.
    CancelCapture,
    /// Compare the last capture with the enrolled thumbs.
    Match {
        /// Attempt number.
        attempt: u8,
    },
    /// Show a prompt on the traveller display.
    Display {
        /// The prompt.
        cue: Prompt,
    },
}

/// What the simulated devices report, each as the real device's driver reports it (the
/// lane I/O's inputs are the driver's own [`LaneInput`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// A document was placed on the reader (by `traveller`; the machine ignores who).
    DocumentPresented {
        /// Who presented it.
        traveller: TravellerId,
    },
    /// The chip read finished.
    DocumentRead {
        /// The document, or why it could not be read.
        result: Result<Document, ReadFailure>,
    },
    /// What the lane I/O reports (sensors, head count, doors, the emergency input), as
    /// the real lane I/O driver reports it.
    Lane(LaneInput),
    /// A capture finished.
    FingerprintCaptured {
        /// Metadata, or why no template was produced.
        result: Result<CaptureInfo, CaptureFailure>,
    },
    /// The simulated matcher's best score for the last capture.
    MatchDone {
        /// Score, 0..1.
        score: f32,
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
}

/// Something that happens to the lane at a scheduled time, whatever the travellers do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Injection {
    /// The fingerprint scanner goes offline for `for_ms`.
    ScannerOffline {
        /// Duration.
        for_ms: u64,
    },
    /// The document reader goes offline for `for_ms`.
    ReaderOffline {
        /// Duration.
        for_ms: u64,
    },
    /// A door's motor does not move for `for_ms` (commands are remembered, carried out after).
    DoorStuck {
        /// Which door.
        door: Door,
        /// Duration.
        for_ms: u64,
    },
    /// Something (an arm reaching through, a bag) sits in a door's safety field.
    Obstruction {
        /// Which door's field.
        door: Door,
        /// Duration.
        for_ms: u64,
    },
    /// A threshold beam fails: held blocked (`blocked = true`, dirt, misaligned) or clear
    /// (`blocked = false`, dead receiver that never breaks), for `for_ms` or for good.
    BeamStuck {
        /// The door whose threshold beam fails.
        door: Door,
        /// The level it is stuck at.
        blocked: bool,
        /// Duration, or `None` to stay stuck.
        for_ms: Option<u64>,
    },
    /// Someone pulls a door open by hand, without a command, and holds it for `for_ms`;
    /// the motor then carries out its last command.
    ForceDoor {
        /// Which door.
        door: Door,
        /// How long it is held open.
        for_ms: u64,
    },
    /// A person on the far side walks into the lane the wrong way as soon as the exit
    /// stands open (within `for_ms`), goes 0.8 m in, and walks back out.
    WrongWay {
        /// How long they wait for the exit to open before giving up.
        for_ms: u64,
    },
    /// The link to the lane I/O (e.g. the Modbus TCP module) is lost for `for_ms`: the
    /// gate gets a lane I/O fault, sees no sensor or door change and cannot move a door
    /// until it returns; door commands sent meanwhile are carried out then (the I/O
    /// latches them), and the current input states are reported with the recovery.
    IoLinkLost {
        /// Duration.
        for_ms: u64,
    },
    /// The emergency input becomes active, and clears after `for_ms` if given.
    Emergency {
        /// Duration, or `None` to stay active.
        for_ms: Option<u64>,
    },
}
