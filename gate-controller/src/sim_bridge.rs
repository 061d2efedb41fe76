//! The two-line glue between the state machine and the simulated lane of
//! [`device_drivers::sim`]: every [`Signal`] is exactly one [`Event`], and every device
//! [`Action`] is one [`WorldCommand`]. `gate-sim` and `gated` (`[devices] kind = "sim"`)
//! both drive a [`device_drivers::sim::World`] through these functions.

use crate::machine::{Action, Event};
use crate::record::Prompt;
use device_drivers::sim::{Cue, Signal, WorldCommand};

/// The machine event a simulated device signal stands for.
pub fn event_of(signal: Signal) -> Event {
    match signal {
        Signal::DocumentPresented { .. } => Event::DocumentPresented,
        Signal::DocumentRead { result } => Event::DocumentRead { result },
        Signal::Sensor { sensor, active } => Event::Sensor { sensor, active },
        Signal::Occupancy { persons } => Event::Occupancy { persons },
        Signal::Headcount { persons, children } => Event::Headcount { persons, children },
        Signal::DoorReached { door, position } => Event::DoorReached { door, position },
        Signal::FingerprintCaptured { result } => Event::FingerprintCaptured { result },
        Signal::MatchDone { score } => Event::MatchDone { score },
        Signal::Emergency { active } => Event::Emergency { active },
        Signal::DeviceFault {
            device,
            kind,
            detail,
        } => Event::DeviceFault {
            device,
            kind,
            detail,
        },
        Signal::DeviceRecovered { device } => Event::DeviceRecovered { device },
    }
}

/// The display cue the simulated travellers read for a prompt.
pub fn cue_of(prompt: Prompt) -> Cue {
    match prompt {
        Prompt::PresentDocument => Cue::PresentDocument,
        Prompt::ReadingDocument => Cue::ReadingDocument,
        Prompt::Enter => Cue::Enter,
        Prompt::OnePersonOnly => Cue::OnePersonOnly,
        Prompt::PlaceThumb => Cue::PlaceThumb,
        Prompt::TryAgain => Cue::TryAgain,
        Prompt::PleaseWait => Cue::PleaseWait,
        Prompt::Proceed => Cue::Proceed,
        Prompt::GoToCounter => Cue::GoToCounter,
        Prompt::WaitForOfficer => Cue::WaitForOfficer,
        Prompt::OutOfService => Cue::OutOfService,
        Prompt::Emergency => Cue::Emergency,
        Prompt::AccompaniedChild => Cue::AccompaniedChild,
        Prompt::PresentAgain => Cue::PresentAgain,
    }
}

/// The simulated-device command for a machine action; `None` for actions the driver
/// carries out itself (watchlist, journal, events, shutdown).
pub fn command_of(action: &Action) -> Option<WorldCommand> {
    Some(match action {
        Action::OpenDoor { door } => WorldCommand::OpenDoor { door: *door },
        Action::CloseDoor { door } => WorldCommand::CloseDoor { door: *door },
        Action::ReadDocument => WorldCommand::ReadDocument,
        Action::CancelDocumentRead => WorldCommand::CancelRead,
        Action::CaptureFingerprint { attempt } => WorldCommand::Capture { attempt: *attempt },
        Action::CancelCapture => WorldCommand::CancelCapture,
        Action::MatchFingerprint { attempt } => WorldCommand::Match { attempt: *attempt },
        Action::Display { prompt } => WorldCommand::Display {
            cue: cue_of(*prompt),
        },
        Action::CheckWatchlist { .. }
        | Action::Journal { .. }
        | Action::Emit { .. }
        | Action::ShutdownReady => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prompt_maps_to_the_cue_of_the_same_name() {
        for p in Prompt::ALL {
            let name = serde_json::to_value(p).expect("serialises");
            let name = name.as_str().expect("a string");
            assert_eq!(Cue::from_code(name), Some(cue_of(p)), "{name}");
        }
    }
}
