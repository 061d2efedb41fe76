//! The MRZ (OCR) reader: the page or swipe reader's optical read of the machine-readable
//! zone, as an [`MrzReader`](crate::devices::MrzReader).
//!
//! - [`framing`]: how readers frame the MRZ lines on their serial line ([`Framing`], the
//!   `[devices.mrz]` framing keys) and a sans-IO [`MrzDecoder`] that finds MRZ frames in
//!   a noisy byte stream; [`encode`] frames an MRZ for simulators.
//! - [`serial`]: [`SerialMrzReader`], the driver of a reader on a serial or USB-CDC port
//!   (`kind = "serial"`).
//! - [`file`]: [`FileMrzReader`], a bench seam reading the MRZ from a text file
//!   (`kind = "file"`).
//! - [`pty`]: a simulated reader on a real pseudo-terminal ([`PtyOcr`]) for tests and
//!   the simulator rig.
//!
//! No MRZ content (names, numbers, dates) is ever put into a fault, a defect or a log:
//! defects name what failed. See `docs/mrz.md`.

pub mod file;
pub mod framing;
#[cfg(unix)]
pub mod pty;
pub mod serial;
#[cfg(test)]
mod tests;

pub use file::FileMrzReader;
pub use framing::{encode, Checksum, Framing, MrzDecoder, SettingError, Terminator};
#[cfg(unix)]
pub use pty::PtyOcr;
pub use serial::{SerialMrzReader, SerialMrzSettings};
