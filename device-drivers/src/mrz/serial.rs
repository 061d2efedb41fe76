//! The serial OCR reader driver: [`MrzReader`] over a UART or USB-CDC port
//! (tokio-serial), decoding the reader's MRZ frames with [`MrzDecoder`].
//!
//! - The port is opened lazily (first [`MrzReader::next_scan`] or [`MrzReader::probe`]).
//! - A port that cannot be opened, or that fails or closes under the driver (reader
//!   unplugged, pty closed), is a [`FaultKind::Unavailable`] fault naming the port. The
//!   driver then drops the port and the partial frame; the next call or
//!   [`MrzReader::probe`] reopens it by path (so a udev symlink that comes back pointing
//!   at a new device node works).
//! - [`MrzReader::next_scan`] is cancel-safe: bytes are decoded as soon as they are
//!   read, decoded scans wait in the driver, and the decoder's partial frame lives in the
//!   driver, so a dropped call loses nothing.
//! - The reader is silent until a document is presented: silence is not a fault.
//!
//! Faults and defects never carry MRZ content.

use super::framing::{Framing, MrzDecoder, SettingError};
use crate::devices::{DeviceFault, DeviceFuture, FaultKind, MrzReader, MrzScan};
use crate::port::open_serial;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_serial::SerialStream;

/// The default baud rate of OCR readers' serial lines.
pub const DEFAULT_BAUD: u32 = 9600;

fn default_baud() -> u32 {
    DEFAULT_BAUD
}

/// Settings of the serial OCR reader (`[devices.mrz] kind = "serial"`): `port`, `baud`
/// and the [`Framing`] keys flattened beside them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialMrzSettings {
    /// Device path, e.g. `/dev/ttyACM0` or a udev symlink.
    pub port: PathBuf,
    /// Baud rate (8N1, no flow control; default 9600).
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// How the reader frames the MRZ.
    #[serde(flatten)]
    pub framing: Framing,
}

impl SerialMrzSettings {
    /// Settings for `port` with the defaults: 9600 baud, default framing.
    pub fn new(port: impl Into<PathBuf>) -> SerialMrzSettings {
        SerialMrzSettings {
            port: port.into(),
            baud: DEFAULT_BAUD,
            framing: Framing::default(),
        }
    }

    /// Checks the values (see [`Framing::validate`]; `baud` within 300–4000000, `port`
    /// not empty).
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.port.as_os_str().is_empty() {
            return Err(SettingError::new("port", "no port given"));
        }
        if !(300..=4_000_000).contains(&self.baud) {
            return Err(SettingError::new(
                "baud",
                format!("{} is outside 300–4000000", self.baud),
            ));
        }
        self.framing.validate()
    }
}

/// The serial OCR reader. Opens its port lazily.
pub struct SerialMrzReader {
    settings: SerialMrzSettings,
    port: Option<SerialStream>,
    decoder: MrzDecoder,
    /// Scans decoded and not yet returned.
    ready: VecDeque<MrzScan>,
    /// The decoder's clock starts here.
    epoch: Instant,
}

impl SerialMrzReader {
    /// A driver for the reader at `settings.port` (nothing is opened yet); fails on a
    /// setting it cannot work with.
    pub fn new(settings: SerialMrzSettings) -> Result<SerialMrzReader, SettingError> {
        settings.validate()?;
        Ok(SerialMrzReader {
            decoder: MrzDecoder::new(settings.framing.clone()),
            settings,
            port: None,
            ready: VecDeque::new(),
            epoch: Instant::now(),
        })
    }

    /// The configured port path.
    pub fn port(&self) -> &Path {
        &self.settings.port
    }

    /// Whether the port is open.
    pub fn is_open(&self) -> bool {
        self.port.is_some()
    }

    /// Noise lines and frames skipped since the driver started (diagnostics).
    pub fn discarded(&self) -> u64 {
        self.decoder.discarded()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn port_name(&self) -> String {
        self.settings.port.display().to_string()
    }

    /// Drops the port and the partial frame it was sending; the fault to report.
    fn gone(&mut self, detail: String) -> DeviceFault {
        self.port = None;
        self.decoder.reset();
        DeviceFault::new(FaultKind::Unavailable, detail)
    }

    fn ensure_open(&mut self) -> Result<(), DeviceFault> {
        if self.port.is_some() {
            return Ok(());
        }
        match open_serial(&self.settings.port, self.settings.baud) {
            Ok(p) => {
                self.port = Some(p);
                Ok(())
            }
            Err(e) => Err(self.gone(format!("OCR reader port unavailable: {e}"))),
        }
    }

    async fn scan(&mut self) -> Result<MrzScan, DeviceFault> {
        let mut buf = [0u8; 512];
        loop {
            if let Some(s) = self.ready.pop_front() {
                return Ok(s);
            }
            self.ensure_open()?;
            let wake = self
                .decoder
                .poll_timeout()
                .map(|t| self.epoch + Duration::from_millis(t));
            let Some(port) = self.port.as_mut() else {
                continue;
            };
            // Cancel-safe: a read that completes is decoded before the next await.
            let got = tokio::select! {
                r = port.read(&mut buf) => Some(r),
                () = sleep_until(wake) => None,
            };
            let now = self.now_ms();
            match got {
                None => {
                    let scans = self.decoder.handle_timeout(now);
                    self.ready.extend(scans);
                }
                Some(Ok(0)) => {
                    let name = self.port_name();
                    return Err(self.gone(format!("the OCR reader port {name} closed")));
                }
                Some(Ok(n)) => {
                    let scans = self.decoder.push(buf.get(..n).unwrap_or_default(), now);
                    self.ready.extend(scans);
                }
                Some(Err(e)) => {
                    let name = self.port_name();
                    return Err(self.gone(format!("reading the OCR reader port {name}: {e}")));
                }
            }
        }
    }

    fn check(&mut self) -> Result<(), DeviceFault> {
        if self.port.is_some() && std::fs::metadata(&self.settings.port).is_err() {
            let name = self.port_name();
            return Err(self.gone(format!("the OCR reader port {name} is gone")));
        }
        self.ensure_open()
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl MrzReader for SerialMrzReader {
    fn next_scan(&mut self) -> DeviceFuture<'_, Result<MrzScan, DeviceFault>> {
        Box::pin(self.scan())
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move { self.check() })
    }
}

impl std::fmt::Debug for SerialMrzReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialMrzReader")
            .field("settings", &self.settings)
            .field("open", &self.port.is_some())
            .field("pending_scans", &self.ready.len())
            .finish()
    }
}
