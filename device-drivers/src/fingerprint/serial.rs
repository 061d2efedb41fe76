//! The serial fingerprint scanner driver: [`FingerprintScanner`] over a UART (tokio-serial)
//! speaking the SFM-style subset of `docs/fingerprint-serial.md`.
//!
//! - Every request waits at most `reply_timeout` for its reply (a scan waits the capture
//!   timeout on top); silence is a [`FaultKind::Timeout`] fault.
//! - Line noise is skipped (the codec resynchronises); a reply lost to a bad checksum, or
//!   a `DATA_ERROR` answer from the scanner, makes the driver cancel and send the request
//!   again, at most `retries` times, then it is a [`FaultKind::Protocol`] fault.
//! - A port that cannot be opened, or that fails or closes under the driver (USB adapter
//!   unplugged, pty closed), is a [`FaultKind::Unavailable`] fault. The driver then drops
//!   the port; [`FingerprintScanner::probe`] reopens it by path (so a udev symlink that
//!   comes back pointing at a new device node works) and checks that the scanner answers.
//! - A dropped capture future leaves a scan pending on the scanner: the driver sends CA
//!   (cancel) before its next request.
//!
//! Templates are handled only as [`BiometricTemplate`]s; fault details carry protocol
//! codes and counts, never template bytes.

use super::sfm::{cmd, flag, param, Frame, Outgoing, Packet, SfmCodec, SfmError};
use super::Template;
use crate::devices::{
    BiometricTemplate, CaptureError, DeviceFault, DeviceFuture, FaultKind, FingerprintScanner,
    LiveCapture, TemplateFormat,
};
use crate::port::open_serial;
use crate::types::CaptureInfo;
use bytes::BytesMut;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use tokio_serial::SerialStream;
use tokio_util::codec::{Decoder, Encoder};

/// How long to wait for an intact reply after a corrupted packet before asking again.
const SUSPECT_WAIT: Duration = Duration::from_millis(150);

/// Settings of the serial scanner (`[devices.fingerprint] kind = "serial"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialSettings {
    /// Device path, e.g. `/dev/ttyUSB0` or a udev symlink.
    pub port: PathBuf,
    /// Baud rate (8N1, no flow control).
    pub baud: u32,
    /// How long a request may wait for its reply (a scan: this on top of the capture
    /// timeout).
    pub reply_timeout: Duration,
    /// How often a request lost to a corrupted reply is sent again before it is a fault.
    pub retries: u32,
}

impl SerialSettings {
    /// Settings for `port` with the defaults: 115200 baud, 1 s reply timeout, 2 retries.
    pub fn new(port: impl Into<PathBuf>) -> SerialSettings {
        SerialSettings {
            port: port.into(),
            baud: 115_200,
            reply_timeout: Duration::from_millis(1_000),
            retries: 2,
        }
    }
}

/// Why an exchange failed (becomes a [`DeviceFault`]).
#[derive(Debug)]
enum LinkError {
    Gone(String),
    Timeout(String),
    Protocol(String),
}

impl LinkError {
    fn fault(self) -> DeviceFault {
        match self {
            LinkError::Gone(d) => DeviceFault::new(FaultKind::Unavailable, d),
            LinkError::Timeout(d) => DeviceFault::new(FaultKind::Timeout, d),
            LinkError::Protocol(d) => DeviceFault::new(FaultKind::Protocol, d),
        }
    }
}

/// An open port with its receive buffer and framing state.
struct Link {
    port: SerialStream,
    rx: BytesMut,
    codec: SfmCodec,
    /// Bytes skipped as line noise and corrupted frames seen (diagnostics).
    garbage: usize,
    bad_frames: usize,
}

impl Link {
    async fn send(&mut self, item: Outgoing) -> Result<(), LinkError> {
        let mut buf = BytesMut::new();
        self.codec
            .encode(item, &mut buf)
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        self.port
            .write_all(&buf)
            .await
            .map_err(|e| LinkError::Gone(format!("writing to the scanner port: {e}")))?;
        self.port
            .flush()
            .await
            .map_err(|e| LinkError::Gone(format!("writing to the scanner port: {e}")))
    }

    /// The next frame (garbage runs are counted, not returned) before `deadline`.
    async fn recv(&mut self, deadline: Instant, what: &str) -> Result<Frame, LinkError> {
        loop {
            match self.codec.decode(&mut self.rx) {
                Ok(Some(Frame::Garbage(n))) => {
                    self.garbage += n;
                    continue;
                }
                Ok(Some(f)) => {
                    if matches!(f, Frame::BadPacket { .. } | Frame::BadData { .. }) {
                        self.bad_frames += 1;
                    }
                    return Ok(f);
                }
                Ok(None) => {}
                Err(SfmError::DataTooLarge(n)) => {
                    self.rx.clear();
                    self.codec = SfmCodec::default();
                    return Err(LinkError::Protocol(format!(
                        "the scanner announced a data packet of {n} bytes"
                    )));
                }
                Err(e) => return Err(LinkError::Gone(e.to_string())),
            }
            self.rx.reserve(512);
            match timeout_at(deadline, self.port.read_buf(&mut self.rx)).await {
                Err(_) => {
                    return Err(LinkError::Timeout(format!(
                        "no answer from the scanner to {what}"
                    )))
                }
                Ok(Ok(0)) => return Err(LinkError::Gone("the scanner port closed".into())),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(LinkError::Gone(format!(
                        "reading from the scanner port: {e}"
                    )))
                }
            }
        }
    }
}

/// The serial fingerprint scanner. Opens its port lazily (first capture or probe).
pub struct SerialScanner {
    settings: SerialSettings,
    link: Option<Link>,
    /// Scan timeout last written to the scanner (seconds), if known.
    scan_timeout_s: Option<u32>,
    /// A scan was sent and its result not read (the capture future was dropped).
    cancel_pending: bool,
}

impl SerialScanner {
    /// A driver for the scanner at `settings.port` (nothing is opened yet).
    pub fn new(settings: SerialSettings) -> SerialScanner {
        SerialScanner {
            settings,
            link: None,
            scan_timeout_s: None,
            cancel_pending: false,
        }
    }

    /// The configured port path.
    pub fn port(&self) -> &Path {
        &self.settings.port
    }

    /// Whether the port is open.
    pub fn is_open(&self) -> bool {
        self.link.is_some()
    }

    /// Line-noise bytes skipped and corrupted frames seen on the current port.
    pub fn noise(&self) -> (usize, usize) {
        self.link
            .as_ref()
            .map_or((0, 0), |l| (l.garbage, l.bad_frames))
    }

    /// Opens the port and resets the scanner (CA), unless already open.
    async fn ensure_open(&mut self) -> Result<(), LinkError> {
        if self.link.is_some() {
            return Ok(());
        }
        let port = open_serial(&self.settings.port, self.settings.baud).map_err(LinkError::Gone)?;
        self.link = Some(Link {
            port,
            rx: BytesMut::with_capacity(1024),
            codec: SfmCodec::default(),
            garbage: 0,
            bad_frames: 0,
        });
        self.scan_timeout_s = None;
        // Whatever the scanner was doing for a previous host is cancelled.
        self.cancel_pending = true;
        Ok(())
    }

    /// Sends `req` and returns the reply carrying its command code, resending after a
    /// corrupted reply or a `DATA_ERROR` answer.
    async fn transact(&mut self, req: Packet, what: &str) -> Result<Packet, LinkError> {
        let retries = self.settings.retries;
        let deadline_every = self.settings.reply_timeout;
        let link = self
            .link
            .as_mut()
            .ok_or_else(|| LinkError::Gone("port not open".into()))?;
        for _ in 0..=retries {
            link.send(Outgoing::Packet(req)).await?;
            let mut deadline = Instant::now() + deadline_every;
            let mut suspect = false;
            loop {
                let frame = match link.recv(deadline, what).await {
                    Ok(f) => f,
                    // A corrupted packet and then silence: the reply was lost.
                    Err(LinkError::Timeout(_)) if suspect => break,
                    Err(e) => return Err(e),
                };
                match frame {
                    Frame::Packet(p) if p.command == req.command => {
                        if p.size > 0 {
                            // Not expected for SW/SR/CA: read and drop it.
                            let _ = link.recv(deadline, what).await?;
                        }
                        return Ok(p);
                    }
                    Frame::Packet(p) if p.flag == flag::DATA_ERROR => break,
                    // Noise that looked like a packet, or the reply itself corrupted:
                    // an intact reply may still follow, shortly.
                    Frame::BadPacket { .. } => {
                        suspect = true;
                        deadline = deadline.min(Instant::now() + SUSPECT_WAIT);
                    }
                    // Stale replies (of a cancelled scan) and their data.
                    Frame::Packet(_) | Frame::Data(_) | Frame::BadData { .. } => {}
                    Frame::Garbage(_) => {}
                }
            }
            // Let a reply in flight arrive before asking again.
            tokio::time::sleep(Duration::from_millis(20)).await;
            link.rx.clear();
            link.codec = SfmCodec::default();
        }
        Err(LinkError::Protocol(format!(
            "{what}: no intact reply after {} attempts",
            retries + 1
        )))
    }

    async fn cancel_if_pending(&mut self) -> Result<(), LinkError> {
        if self.cancel_pending {
            let r = self
                .transact(Packet::new(cmd::CANCEL, 0, 0), "cancel (CA)")
                .await?;
            if r.flag != flag::SUCCESS {
                return Err(LinkError::Protocol(format!(
                    "cancel (CA) answered 0x{:02X}",
                    r.flag
                )));
            }
            self.cancel_pending = false;
        }
        Ok(())
    }

    async fn set_scan_timeout(&mut self, timeout: Duration) -> Result<(), LinkError> {
        let secs = (timeout.as_millis().div_ceil(1000) as u32).clamp(1, 60);
        if self.scan_timeout_s == Some(secs) {
            return Ok(());
        }
        let r = self
            .transact(
                Packet::new(cmd::WRITE_PARAM, 0x30 + secs, param::TIMEOUT),
                "write timeout (SW)",
            )
            .await?;
        if r.flag != flag::SUCCESS {
            return Err(LinkError::Protocol(format!(
                "the scanner refused a {secs} s timeout (0x{:02X})",
                r.flag
            )));
        }
        self.scan_timeout_s = Some(secs);
        Ok(())
    }

    /// One scan: `Ok(Ok)` a template, `Ok(Err)` the traveller's problem, `Err` a fault.
    async fn scan(
        &mut self,
        timeout: Duration,
    ) -> Result<Result<LiveCapture, CaptureError>, LinkError> {
        self.ensure_open().await?;
        self.cancel_if_pending().await?;
        self.set_scan_timeout(timeout).await?;
        let wait = Duration::from_secs(u64::from(self.scan_timeout_s.unwrap_or(60)))
            + self.settings.reply_timeout;
        let retries = self.settings.retries;
        let mut corrupted = 0;
        loop {
            if corrupted > retries {
                return Err(LinkError::Protocol(format!(
                    "scan (ST): {corrupted} corrupted or refused replies"
                )));
            }
            let link = self
                .link
                .as_mut()
                .ok_or_else(|| LinkError::Gone("port not open".into()))?;
            link.send(Outgoing::Packet(Packet::new(cmd::SCAN_TEMPLATE, 0, 0)))
                .await?;
            self.cancel_pending = true;
            let mut deadline = Instant::now() + wait;
            let mut suspect = false;
            let retry = loop {
                let link = self
                    .link
                    .as_mut()
                    .ok_or_else(|| LinkError::Gone("port not open".into()))?;
                let frame = match link.recv(deadline, "scan (ST)").await {
                    Ok(f) => f,
                    Err(LinkError::Timeout(_)) if suspect => break true,
                    Err(e) => return Err(e),
                };
                let p = match frame {
                    Frame::Packet(p) => p,
                    Frame::BadPacket { .. } => {
                        suspect = true;
                        deadline = deadline.min(Instant::now() + SUSPECT_WAIT);
                        continue;
                    }
                    Frame::BadData { .. } => break true,
                    Frame::Data(_) | Frame::Garbage(_) => continue,
                };
                if p.command == 0 && p.flag == flag::DATA_ERROR {
                    break true;
                }
                if p.command != cmd::SCAN_TEMPLATE {
                    continue; // a stale reply
                }
                match p.flag {
                    flag::SCAN_SUCCESS | flag::CANCELED => continue,
                    flag::SUCCESS if p.size > 0 => {
                        let body = match link.recv(deadline, "scan (ST) data").await? {
                            Frame::Data(d) => d,
                            _ => break true,
                        };
                        self.cancel_pending = false;
                        let Ok(t) = Template::from_bytes(&body) else {
                            break true;
                        };
                        let info = CaptureInfo {
                            quality: t.quality,
                            minutiae: t.minutiae.len().min(usize::from(u16::MAX)) as u16,
                        };
                        return Ok(Ok(LiveCapture {
                            info,
                            template: BiometricTemplate::new(TemplateFormat::Iso19794_2_2005, body),
                        }));
                    }
                    flag::TIME_OUT => {
                        self.cancel_pending = false;
                        return Ok(Err(CaptureError::NoFinger));
                    }
                    flag::SCAN_FAIL => {
                        self.cancel_pending = false;
                        return Ok(Err(CaptureError::Poor(
                            "the finger could not be scanned (wet, dry or smudged)".into(),
                        )));
                    }
                    flag::TRY_AGAIN => {
                        self.cancel_pending = false;
                        return Ok(Err(CaptureError::Poor("capture quality too low".into())));
                    }
                    flag::BUSY => break true,
                    other => {
                        self.cancel_pending = false;
                        return Err(LinkError::Protocol(format!(
                            "scan (ST) answered the unknown code 0x{other:02X}"
                        )));
                    }
                }
            };
            if retry {
                corrupted += 1;
                // The reply was lost: reset the scanner and scan again.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(l) = self.link.as_mut() {
                    l.rx.clear();
                    l.codec = SfmCodec::default();
                }
                self.cancel_pending = true;
                self.cancel_if_pending().await?;
            }
        }
    }

    async fn check(&mut self) -> Result<(), LinkError> {
        self.ensure_open().await?;
        self.cancel_if_pending().await?;
        let r = self
            .transact(
                Packet::new(cmd::READ_PARAM, 0, param::TIMEOUT),
                "read timeout (SR)",
            )
            .await?;
        if r.flag != flag::SUCCESS {
            return Err(LinkError::Protocol(format!(
                "read timeout (SR) answered 0x{:02X}",
                r.flag
            )));
        }
        self.scan_timeout_s = r.param.checked_sub(0x30).filter(|s| (1..=60).contains(s));
        Ok(())
    }

    fn drop_link(&mut self) {
        self.link = None;
        self.scan_timeout_s = None;
        self.cancel_pending = false;
    }
}

impl FingerprintScanner for SerialScanner {
    fn capture(
        &mut self,
        timeout: Duration,
    ) -> DeviceFuture<'_, Result<LiveCapture, CaptureError>> {
        Box::pin(async move {
            match self.scan(timeout).await {
                Ok(r) => r,
                Err(e) => {
                    self.drop_link();
                    Err(CaptureError::Device(e.fault()))
                }
            }
        })
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            let r = self.check().await;
            if r.is_err() {
                self.drop_link();
            }
            r.map_err(LinkError::fault)
        })
    }
}

impl std::fmt::Debug for SerialScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialScanner")
            .field("settings", &self.settings)
            .field("open", &self.link.is_some())
            .finish()
    }
}
