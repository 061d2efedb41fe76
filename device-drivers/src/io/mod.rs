//! Lane I/O: the doors, beams, safety sensors, lamps and emergency input of one lane,
//! driven as a PLC-style scan cycle over embedded-hal 1.0 digital pins.
//!
//! - [`map`]: the TOML pin map ([`IoMap`]), which numbered input/output is which signal.
//! - [`scan`]: [`ScanLane`], one scan = read every input → pure logic (debounce, change
//!   detection, local safety interlocks) → write every output.
//! - [`cycle`]: [`ScanLaneIo`], the tokio task that runs the scan every `cycle_ms`
//!   around a [`ProcessImage`] exchange and implements [`crate::devices::LaneIo`].
//! - `gpio` (feature `gpio`): pins on a Linux GPIO character device.
//!
//! Backends plug in as pins plus a process image: for GPIO the pins touch the hardware
//! directly and the image is a no-op ([`DirectPins`]); for remote I/O (Modbus TCP) the
//! pins read and write a shared image that the [`ProcessImage`] exchanges with the module
//! once per cycle. See `docs/io.md`.

pub mod cycle;
#[cfg(feature = "gpio")]
pub mod gpio;
pub mod map;
pub mod modbus;
#[cfg(test)]
mod props;
pub mod scan;
#[cfg(test)]
mod tests;

pub use cycle::{ScanLaneIo, DEFAULT_CYCLE_MS};
pub use map::{InputMap, IoMap, MapError, OutputMap, PinRef};
pub use scan::{door_index, Outputs, ScanLane, DEFAULT_DEBOUNCE_SCANS};

use crate::devices::{DeviceFault, DeviceFuture, FaultKind};

/// Why a scan (or building a scan driver) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// An input pin could not be read.
    #[error("reading input {index} ({signal}) failed: {detail}")]
    Input {
        /// Input number.
        index: u16,
        /// Signal name from the map.
        signal: String,
        /// The pin's error.
        detail: String,
    },
    /// An output pin could not be written.
    #[error("writing output {index} ({signal}) failed: {detail}")]
    Output {
        /// Output number.
        index: u16,
        /// Signal name from the map.
        signal: String,
        /// The pin's error.
        detail: String,
    },
    /// Fewer pins were given than the map's highest number needs.
    #[error("the I/O map needs {needed} {side} pins but {given} were given")]
    PinCount {
        /// `"input"` or `"output"`.
        side: &'static str,
        /// Highest number in the map + 1.
        needed: usize,
        /// Pins given.
        given: usize,
    },
    /// The map itself is invalid.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A backend could not provide a pin (e.g. a GPIO line could not be requested).
    #[error("{0}")]
    Backend(String),
}

impl From<IoError> for DeviceFault {
    fn from(e: IoError) -> DeviceFault {
        let kind = match e {
            IoError::Input { .. } | IoError::Output { .. } => FaultKind::Link,
            _ => FaultKind::Unavailable,
        };
        DeviceFault::new(kind, e.to_string())
    }
}

/// The exchange of a remote I/O module's process image, once per scan cycle: inputs are
/// fetched into the image before the scan, outputs sent from it after. Pins handed to
/// [`ScanLane`] read and write that image.
pub trait ProcessImage: Send {
    /// Fetches every input from the module into the image.
    fn read_inputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>>;
    /// Sends every output of the image to the module.
    fn write_outputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>>;
}

/// The process image of pins that act on the hardware directly (GPIO): no exchange.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectPins;

impl ProcessImage for DirectPins {
    fn read_inputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
    fn write_outputs(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}
