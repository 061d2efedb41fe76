//! The one translation between the simulated lane ([`World`]) and the device traits'
//! types, used by both drivers of the world: [`super::devices`] (real time, behind the
//! device trait objects `gated` runs) and [`super::stepped::VirtualGate`] (virtual time,
//! `gate-sim run`). A world [`Signal`] becomes what the matching device would report; a
//! shell output becomes the [`WorldCommand`] the simulated device carries out.

use crate::types::{CaptureFailure, CaptureInfo, Device, Document, DocumentKey, WatchlistVerdict};
use device_drivers::devices::{
    BiometricTemplate, CaptureError, ChipRead, DeviceFault, Holder, LaneInput, LiveCapture,
    Presence, ReadError, TemplateFormat,
};
use device_drivers::sim::{Signal, World, WorldCommand};
use device_drivers::types::{ChipFailure, ReadFailure};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// Marker of a simulated enrolled template.
pub const ENROLLED_MARK: &[u8] = b"~enrolled";

/// The world, shared by the driver and the watchlist of its listings.
pub(crate) type Shared = Arc<Mutex<World>>;
/// Simulated devices currently offline (their probes fail).
pub(crate) type Offline = Arc<Mutex<BTreeSet<Device>>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the world half-updated in a way that
    // matters more than stopping the simulation; keep going with its state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the document reader reports.
#[derive(Debug)]
pub(crate) enum ReaderMsg {
    /// A document was placed.
    Presence(Presence),
    /// The chip read finished.
    Read(Result<Document, ReadFailure>),
    /// The reader failed.
    Fault(DeviceFault),
}

/// Where a world signal goes.
#[derive(Debug)]
pub(crate) enum Routed {
    /// To the document reader.
    Reader(ReaderMsg),
    /// To the fingerprint scanner (a finished capture).
    Scanner(Result<LiveCapture, CaptureError>),
    /// To the lane I/O.
    Lane(Result<LaneInput, DeviceFault>),
    /// The reader or the scanner works again (a driver learns this by probing it).
    Recovered(Device),
    /// Back to the world at once (the simulated matcher scores a finished capture).
    World(WorldCommand),
    /// Nowhere.
    Nothing,
}

/// The signal-to-device translation, with the state it needs.
#[derive(Debug, Default)]
pub(crate) struct Adapter {
    /// Devices the world took offline.
    pub(crate) offline: Offline,
    /// A capture waiting for the world's match score.
    captured: Option<CaptureInfo>,
}

impl Adapter {
    /// Where `s` goes, as the device it comes from would report it.
    pub(crate) fn route(&mut self, s: Signal) -> Routed {
        match s {
            Signal::DocumentPresented { .. } => {
                Routed::Reader(ReaderMsg::Presence(Presence::Placed))
            }
            Signal::DocumentRead { result } => Routed::Reader(ReaderMsg::Read(result)),
            Signal::Lane(input) => Routed::Lane(Ok(input)),
            Signal::FingerprintCaptured { result } => match result {
                Ok(info) => {
                    self.captured = Some(info);
                    Routed::World(WorldCommand::Match { attempt: 0 })
                }
                Err(CaptureFailure::NoFinger) => Routed::Scanner(Err(CaptureError::NoFinger)),
                Err(CaptureFailure::Poor) => {
                    Routed::Scanner(Err(CaptureError::Poor("simulated poor capture".into())))
                }
            },
            Signal::MatchDone { score } => match self.captured.take() {
                Some(info) => {
                    let template = BiometricTemplate::new(
                        TemplateFormat::Simulated,
                        format!("~{score}").into_bytes(),
                    );
                    Routed::Scanner(Ok(LiveCapture { info, template }))
                }
                None => Routed::Nothing,
            },
            Signal::DeviceFault {
                device,
                kind,
                detail,
            } => {
                lock(&self.offline).insert(device);
                let f = DeviceFault::new(kind, detail);
                match device {
                    Device::DocumentReader => Routed::Reader(ReaderMsg::Fault(f)),
                    Device::FingerprintScanner => {
                        self.captured = None;
                        Routed::Scanner(Err(CaptureError::Device(f)))
                    }
                    _ => Routed::Lane(Err(f)),
                }
            }
            Signal::DeviceRecovered { device } => {
                lock(&self.offline).remove(&device);
                match device {
                    Device::DocumentReader | Device::FingerprintScanner => {
                        Routed::Recovered(device)
                    }
                    _ => Routed::Lane(Ok(LaneInput::Recovered)),
                }
            }
        }
    }

    /// Drops a capture waiting for its score (the gate's process went away).
    pub(crate) fn forget_capture(&mut self) {
        self.captured = None;
    }

    /// Whether `device` is offline.
    pub(crate) fn is_offline(offline: &Offline, device: Device) -> bool {
        lock(offline).contains(&device)
    }
}

/// A chip read as the reader driver hands it over: simulated documents carry one
/// placeholder template per enrolled thumb.
pub(crate) fn chip_read(result: Result<Document, ReadFailure>) -> Result<ChipRead, ReadError> {
    match result {
        Ok(document) => {
            let enrolled = (0..document.enrolled_thumbs)
                .map(|_| BiometricTemplate::new(TemplateFormat::Simulated, ENROLLED_MARK.to_vec()))
                .collect();
            Ok(ChipRead {
                document,
                holder: Holder::default(),
                enrolled,
            })
        }
        Err(f) => Err(match f.code {
            ChipFailure::CardRemoved => ReadError::Removed,
            ChipFailure::NoDocument => ReadError::NoDocument,
            ChipFailure::NoAnswer => ReadError::NoAnswer,
            ChipFailure::WrongKey => ReadError::AccessDenied(f.detail),
            ChipFailure::BadMac => ReadError::SecureMessaging(f.detail),
            ChipFailure::Unsupported => ReadError::Unsupported(f.detail),
            _ => ReadError::Protocol(format!("{}: {}", f.code, f.detail)),
        }),
    }
}

/// The watchlist entries of the world's generated watchlisted travellers.
pub(crate) struct SimListings {
    pub(crate) world: Shared,
}

impl super::super::screening::Screening for SimListings {
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict {
        let w = lock(&self.world);
        match w.listing(key) {
            None => WatchlistVerdict::Clear { version: 0 },
            Some(l) if l.hold => WatchlistVerdict::Hold {
                version: 0,
                reason: l.reason.clone(),
            },
            Some(l) => WatchlistVerdict::Refer {
                version: 0,
                reason: l.reason.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Prompt;

    #[test]
    fn every_prompt_parses_back_from_its_name() {
        for p in Prompt::ALL {
            let name = serde_json::to_value(p).expect("serialises");
            let name = name.as_str().expect("a string");
            assert_eq!(Prompt::from_code(name), Some(p), "{name}");
        }
    }

    #[test]
    fn a_capture_reaches_the_scanner_only_with_the_worlds_score() {
        let mut a = Adapter::default();
        let info = CaptureInfo {
            quality: 80,
            minutiae: 40,
        };
        let r = a.route(Signal::FingerprintCaptured { result: Ok(info) });
        assert!(
            matches!(r, Routed::World(WorldCommand::Match { .. })),
            "{r:?}"
        );
        match a.route(Signal::MatchDone { score: 0.5 }) {
            Routed::Scanner(Ok(c)) => {
                assert_eq!(c.info, info);
                assert_eq!(c.template.bytes(), b"~0.5");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            a.route(Signal::MatchDone { score: 0.5 }),
            Routed::Nothing
        ));
    }
}
