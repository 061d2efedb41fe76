//! One factory per device: each `[devices.*]` table builds its own device from its own
//! `kind`, whatever the other tables say.
//!
//! The simulated lane world ([`super::sim`]) runs only when some device is `sim`, and
//! only the simulated devices are taken from it. Combinations that cannot work (a
//! simulated device behind a real one, a real device serving simulated travellers) are
//! refused by the configuration before anything is built
//! ([`section::DevicesSection::combination_problems`], `gated --check`).
//!
//! | table | kinds |
//! |---|---|
//! | `[devices.document]` | `sim`, `pcsc` (with `[devices.mrz]` `serial` or `file`) |
//! | `[devices.fingerprint]` | `sim`, `serial` |
//! | `[devices.io]` | `sim`, `modbus`, `gpio` |
//! | `[devices.mrz]` | absent, `sim`, `serial`, `file` |

pub mod section;

use self::section::{DocumentDevice, FingerprintDevice, IoDevice};
use super::clock::MonotonicWallClock;
use super::settings::GateSettings;
use super::{Devices, NoDisplay, RuntimeError};
use crate::types::Device;
use device_drivers::devices::{DocumentReader, FingerprintScanner, LaneIo};

/// Builds the devices of `cfg` on the current tokio runtime (nothing runs until the
/// gate does, except the simulated world's stepping task and the drivers' own
/// watchers). Refuses a configuration whose devices cannot work together.
pub fn build(cfg: &GateSettings, clock: MonotonicWallClock) -> Result<Devices, RuntimeError> {
    if let Some((key, what)) = cfg.devices.section.not_built().first() {
        return Err(RuntimeError::NotBuilt { key, what });
    }
    if let Some((key, why)) = cfg
        .devices
        .section
        .combination_problems()
        .into_iter()
        .next()
    {
        return Err(RuntimeError::Device {
            device: Device::LaneIo,
            detail: format!("{key}: {why}"),
        });
    }
    let world = if cfg.devices.section.any_sim() {
        Some(super::sim::devices(&cfg.sim, clock)?)
    } else {
        None
    };
    let (world_reader, world_scanner, world_io, display, screening) = match world {
        Some(w) => (
            Some(w.document),
            Some(w.fingerprint),
            Some(w.io),
            w.display,
            w.screening,
        ),
        None => (None, None, None, Box::new(NoDisplay) as _, None),
    };
    Ok(Devices {
        document: document(cfg, world_reader)?,
        fingerprint: fingerprint(&cfg.devices.section.fingerprint, world_scanner)?,
        io: io(&cfg.devices.section.io, world_io)?,
        display,
        screening,
    })
}

fn from_world<T: ?Sized>(d: Option<Box<T>>, device: Device) -> Result<Box<T>, RuntimeError> {
    d.ok_or_else(|| RuntimeError::Device {
        device,
        detail: "the simulated lane is not running".into(),
    })
}

/// `[devices.document]` (with `[devices.mrz]`).
fn document(
    cfg: &GateSettings,
    world: Option<Box<dyn DocumentReader>>,
) -> Result<Box<dyn DocumentReader>, RuntimeError> {
    match &cfg.devices.section.document {
        DocumentDevice::Sim => from_world(world, Device::DocumentReader),
        #[cfg(feature = "pcsc")]
        DocumentDevice::Pcsc { .. } => super::pcsc::reader(&cfg.devices),
        #[cfg(not(feature = "pcsc"))]
        DocumentDevice::Pcsc { .. } => Err(RuntimeError::NotBuilt {
            key: "devices.document.kind",
            what: "the PC/SC document reader",
        }),
    }
}

/// `[devices.fingerprint]`.
fn fingerprint(
    device: &FingerprintDevice,
    world: Option<Box<dyn FingerprintScanner>>,
) -> Result<Box<dyn FingerprintScanner>, RuntimeError> {
    match super::serial::scanner(device) {
        Some(real) => {
            if let FingerprintDevice::Serial { port, baud, .. } = device {
                tracing::info!(port = %port.display(), baud, "serial fingerprint scanner");
            }
            Ok(real)
        }
        None => from_world(world, Device::FingerprintScanner),
    }
}

/// `[devices.io]`. A real lane I/O beside simulated reader and scanner is watched by the
/// simulated lane (see [`super::sim::watched_by_world`]).
fn io(device: &IoDevice, world: Option<Box<dyn LaneIo>>) -> Result<Box<dyn LaneIo>, RuntimeError> {
    let real: Box<dyn LaneIo> = match device {
        IoDevice::Sim => return from_world(world, Device::LaneIo),
        IoDevice::Modbus { .. } => match super::modbus::lane_io(device)? {
            Some(m) => Box::new(m),
            None => return Err(not_this_kind()),
        },
        #[cfg(feature = "gpio")]
        IoDevice::Gpio { .. } => match super::gpio::lane_io(device)? {
            Some(g) => Box::new(g),
            None => return Err(not_this_kind()),
        },
        #[cfg(not(feature = "gpio"))]
        IoDevice::Gpio { .. } => {
            return Err(RuntimeError::NotBuilt {
                key: "devices.io.kind",
                what: "the GPIO lane I/O",
            })
        }
    };
    Ok(match world {
        Some(w) => super::sim::watched_by_world(real, w),
        None => real,
    })
}

fn not_this_kind() -> RuntimeError {
    RuntimeError::Device {
        device: Device::LaneIo,
        detail: "devices.io: the driver does not match its kind".into(),
    }
}
