//! `[devices.document] kind = "pcsc"`: the real document reader, an ICAO 9303 chip read
//! through pcscd, behind the [`DocumentReader`] trait (crate feature `pcsc`), keyed by
//! the page reader's OCR (`[devices.mrz]`).
//!
//! - **Start of a transit**: with an OCR reader (`[devices.mrz] kind = "serial"`), the
//!   MRZ read is what starts a transit: a read whose check digits hold is
//!   [`Presence::Placed`] (the chip is then awaited on the PC/SC reader for
//!   [`CHIP_WAIT`]: a document whose chip never answers is a dead chip, `no_answer`), a
//!   read whose check digits fail is [`Presence::Misread`] (the traveller presents
//!   again). With the bench seam (`kind = "file"`, or `mrz_file`), a card placed on the
//!   reader starts the transit and the MRZ is taken from the file at the read.
//! - **Presence of the chip**: a watcher thread ([`device_drivers::card::pcsc::watch`])
//!   reports cards coming and going in the readers whose name starts with `reader`; it
//!   re-establishes its PC/SC context by itself when pcscd restarts.
//! - **Access key**: the OCR MRZ (BAC, or PACE with the MRZ); a TD1 card's CAN when the
//!   OCR reader is set to read it (`read_can`): PACE-CAN. Check digits were verified
//!   before any APDU. The chip's DG1 is compared with the OCR MRZ (a mismatch refers).
//! - **Read**: on a blocking thread, [`read_for_gate`] — BAC/PACE, DG1/DG2/DG3, EF.SOD,
//!   passive authentication against the `csca` trust store, chip MRZ against OCR MRZ.
//!   Dropping the read future raises a cancel flag that fails the session's next APDU;
//!   the next read waits for that thread to end first.
//! - **Faults**: pcscd unreachable, the reader gone, a reader error during a read, the
//!   OCR reader gone are [`DeviceFault`]s; the shell then probes
//!   ([`DocumentReader::probe`]: pcscd's readers and the OCR's port) until both are back.
//!   A card pulled mid-read is the traveller's [`ReadError::Removed`], not a fault.

use super::devices::section::{DeviceSettings, DocumentDevice, MrzDevice};
use super::RuntimeError;
use crate::types::Device;
use device_drivers::card::gate::{read_error, read_for_gate, Cancellable, OcrMrz};
use device_drivers::card::pa::TrustStore;
use device_drivers::card::pcsc::{list_readers, watch, PcscTransport, ReaderEvent};
use device_drivers::devices::{
    ChipRead, DeviceFault, DeviceFuture, DocumentReader, FaultKind, MrzReader, MrzScan, Presence,
    ReadError,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;

/// How often the watcher thread looks at pcscd (and notices a stop).
const WATCH_POLL: Duration = Duration::from_millis(200);

/// How long a read started by an OCR read waits for the document's chip to show on the
/// PC/SC reader (a page reader's antenna sees it as the page is laid down).
pub const CHIP_WAIT: Duration = Duration::from_millis(2_500);

/// Where the access key comes from.
pub enum MrzSource {
    /// The page reader's OCR: its reads start transits.
    Ocr(Box<dyn MrzReader>),
    /// A bench file read at every chip read; a placed chip starts the transit.
    File(PathBuf),
}

/// Raises the cancel flag of a read when dropped before [`CancelOnDrop::disarm`].
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.store(true, Ordering::Relaxed);
        }
    }
}

type ReadOutcome = Result<ChipRead, ReadError>;

/// The PC/SC document reader (see the module documentation).
pub struct PcscReader {
    prefix: String,
    trust: Option<Arc<TrustStore>>,
    mrz: MrzSource,
    /// The last OCR read, waiting for its chip read (with the CAN, if read).
    pending: Option<(OcrMrz, Option<String>)>,
    events: UnboundedReceiver<ReaderEvent>,
    stop: Arc<AtomicBool>,
    /// The matching reader that holds a card, as last reported by the watcher.
    card_in: Option<String>,
    /// Whether the machine was last told a card is present.
    reported: bool,
    /// A fault seen by the watcher, not yet returned.
    fault: Option<DeviceFault>,
    /// Whether the reader was looked up once (a missing reader is a fault at start).
    checked: bool,
    /// The blocking thread of the last read (still running if that read was abandoned).
    inflight: Option<JoinHandle<ReadOutcome>>,
}

impl std::fmt::Debug for PcscReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscReader")
            .field("reader", &self.prefix)
            .field("card_in", &self.card_in)
            .finish_non_exhaustive()
    }
}

impl Drop for PcscReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn unavailable(detail: impl Into<String>) -> DeviceFault {
    DeviceFault::new(FaultKind::Unavailable, detail)
}

impl PcscReader {
    /// Starts watching pcscd for the readers named `prefix…`; `trust` is the CSCA store,
    /// `mrz` where the access key comes from. Must run inside a tokio runtime.
    pub fn start(
        prefix: &str,
        trust: Option<Arc<TrustStore>>,
        mrz: MrzSource,
    ) -> std::io::Result<PcscReader> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = unbounded_channel();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("pcsc-watch".into())
            .spawn(move || {
                watch(&flag, WATCH_POLL, |e| {
                    let _ = tx.send(e);
                })
            })?;
        Ok(PcscReader {
            prefix: prefix.to_string(),
            trust,
            mrz,
            pending: None,
            events,
            stop,
            card_in: None,
            reported: false,
            fault: None,
            checked: false,
            inflight: None,
        })
    }

    fn matches(&self, reader: &str) -> bool {
        reader.starts_with(&self.prefix)
    }

    fn apply(&mut self, e: ReaderEvent) {
        tracing::debug!(event = ?e, "pcsc");
        match e {
            ReaderEvent::ServiceUp => {}
            ReaderEvent::ServiceDown(d) => {
                self.card_in = None;
                self.fault = Some(unavailable(format!("pcscd is not reachable: {d}")));
            }
            ReaderEvent::CardPresent(r) if self.matches(&r) => self.card_in = Some(r),
            ReaderEvent::CardAbsent(r) if self.card_in.as_deref() == Some(r.as_str()) => {
                self.card_in = None;
            }
            ReaderEvent::ReaderGone(r) if self.matches(&r) => {
                if self.card_in.as_deref() == Some(r.as_str()) {
                    self.card_in = None;
                }
                self.fault = Some(unavailable(format!("reader {r:?} is gone")));
            }
            _ => {}
        }
    }

    /// Whether pcscd lists a reader named `prefix…` now.
    fn look_up(&self) -> impl std::future::Future<Output = Result<(), DeviceFault>> + Send {
        look_up(self.prefix.clone())
    }
}

/// Whether pcscd lists a reader named `prefix…` now.
async fn look_up(prefix: String) -> Result<(), DeviceFault> {
    let names = tokio::task::spawn_blocking(list_readers)
        .await
        .map_err(|e| unavailable(format!("reader lookup failed: {e}")))?
        .map_err(|e| unavailable(format!("pcscd: {e}")))?;
    if names.iter().any(|n| n.starts_with(&prefix)) {
        Ok(())
    } else {
        Err(unavailable(format!(
            "no PC/SC reader named {prefix:?}… (pcscd lists {names:?})"
        )))
    }
}

impl PcscReader {
    async fn read_chip(&mut self) -> ReadOutcome {
        // One session at a time: an abandoned read ends at its next APDU.
        if let Some(prev) = self.inflight.take() {
            let _ = prev.await;
        }
        while let Ok(e) = self.events.try_recv() {
            self.apply(e);
        }
        if let Some(f) = self.fault.clone() {
            return Err(ReadError::Device(f));
        }
        let (ocr, can) = match &self.mrz {
            MrzSource::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    ReadError::AccessDenied(format!("no OCR MRZ in {}: {e}", path.display()))
                })?;
                (OcrMrz::parse(&text).map_err(ReadError::AccessDenied)?, None)
            }
            MrzSource::Ocr(_) => self.pending.take().ok_or_else(|| {
                ReadError::AccessDenied("no MRZ was read for this document".into())
            })?,
        };
        if matches!(self.mrz, MrzSource::Ocr(_)) {
            self.await_chip().await?;
        }
        let Some(reader) = self.card_in.clone() else {
            return Err(ReadError::NoDocument);
        };
        let trust = self.trust.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(Some(cancel.clone()));
        let task = tokio::task::spawn_blocking(move || {
            let link = PcscTransport::connect(&reader).map_err(|e| read_error(e.into()))?;
            let mut link = Cancellable::new(link, &cancel);
            let (chip, summary) = read_for_gate(
                &mut link,
                &ocr,
                can.as_deref(),
                trust.as_deref(),
                SystemTime::now(),
            )?;
            // No personal or biometric data in the log: protocol facts only.
            tracing::info!(
                reader = %reader,
                access_control = summary.access_control,
                data_groups = ?summary.data_groups,
                apdus = summary.apdus,
                passive_auth = ?chip.document.passive_auth,
                passive_auth_detail = %summary.passive_auth_detail,
                mrz_matches_ocr = chip.document.mrz_matches_ocr,
                "chip read"
            );
            Ok(chip)
        });
        let task = self.inflight.insert(task);
        let result = task.await;
        self.inflight = None;
        guard.disarm();
        match result {
            Ok(r) => r,
            Err(e) => Err(ReadError::Device(unavailable(format!(
                "the read thread failed: {e}"
            )))),
        }
    }

    /// Waits up to [`CHIP_WAIT`] for a chip on the reader after an OCR read: none is a
    /// chip that does not answer (dead, shielded, or no chip at all).
    async fn await_chip(&mut self) -> Result<(), ReadError> {
        let wait = async {
            loop {
                if let Some(f) = self.fault.clone() {
                    return Err(ReadError::Device(f));
                }
                if self.card_in.is_some() {
                    return Ok(());
                }
                match self.events.recv().await {
                    Some(e) => self.apply(e),
                    None => {
                        return Err(ReadError::Device(unavailable("the PC/SC watcher stopped")))
                    }
                }
            }
        };
        match tokio::time::timeout(CHIP_WAIT, wait).await {
            Ok(r) => r,
            Err(_) => Err(ReadError::NoAnswer),
        }
    }

    /// The next OCR read as a presence change (see the module documentation).
    async fn next_ocr_presence(&mut self) -> Result<Presence, DeviceFault> {
        loop {
            if let Some(f) = self.fault.take() {
                return Err(f);
            }
            let MrzSource::Ocr(ocr) = &mut self.mrz else {
                return Err(unavailable("no OCR reader"));
            };
            tokio::select! {
                scan = ocr.next_scan() => match scan? {
                    MrzScan::Read { mrz, can } => {
                        self.pending = Some((mrz, can));
                        return Ok(Presence::Placed);
                    }
                    MrzScan::Misread(defect) => {
                        tracing::info!(%defect, "the OCR read of a document failed its checks");
                        return Ok(Presence::Misread);
                    }
                },
                e = self.events.recv() => match e {
                    Some(e) => self.apply(e),
                    None => return Err(unavailable("the PC/SC watcher stopped")),
                },
            }
        }
    }
}

impl DocumentReader for PcscReader {
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>> {
        Box::pin(async move {
            if !self.checked {
                self.checked = true;
                self.look_up().await?;
            }
            if matches!(self.mrz, MrzSource::Ocr(_)) {
                return self.next_ocr_presence().await;
            }
            loop {
                if let Some(f) = self.fault.take() {
                    return Err(f);
                }
                let present = self.card_in.is_some();
                if present != self.reported {
                    self.reported = present;
                    return Ok(if present {
                        Presence::Placed
                    } else {
                        Presence::Removed
                    });
                }
                match self.events.recv().await {
                    Some(e) => self.apply(e),
                    None => return Err(unavailable("the PC/SC watcher stopped")),
                }
            }
        })
    }

    fn read(&mut self) -> DeviceFuture<'_, Result<ChipRead, ReadError>> {
        Box::pin(self.read_chip())
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            while let Ok(e) = self.events.try_recv() {
                self.apply(e);
            }
            // What the watcher said is history now; the lookup tells the present.
            self.fault = None;
            if let MrzSource::Ocr(ocr) = &mut self.mrz {
                ocr.probe().await?;
            }
            self.look_up().await
        })
    }
}

/// The document reader of `[devices.document] kind = "pcsc"` with its MRZ source
/// (`[devices.mrz]`, or the bench's `mrz_file`). Must run inside a tokio runtime.
pub fn reader(cfg: &DeviceSettings) -> Result<Box<dyn DocumentReader>, RuntimeError> {
    let err = |detail: String| RuntimeError::Device {
        device: Device::DocumentReader,
        detail,
    };
    let DocumentDevice::Pcsc {
        reader,
        csca,
        mrz_file,
    } = &cfg.section.document
    else {
        return Err(err("devices.document.kind is not \"pcsc\"".into()));
    };
    let mrz =
        match (&cfg.section.mrz, mrz_file) {
            (
                Some(MrzDevice::Serial {
                    port,
                    baud,
                    framing,
                }),
                None,
            ) => {
                use device_drivers::mrz::serial::{SerialMrzReader, SerialMrzSettings};
                tracing::info!(port = %port.display(), baud, "OCR MRZ reader");
                let ocr = SerialMrzReader::new(SerialMrzSettings {
                    port: port.clone(),
                    baud: *baud,
                    framing: framing.clone(),
                })
                .map_err(|e| err(format!("devices.mrz: {e}")))?;
                MrzSource::Ocr(Box::new(ocr))
            }
            (Some(MrzDevice::File { path }), None) | (None, Some(path)) => {
                MrzSource::File(path.clone())
            }
            _ => return Err(err(
                "devices.mrz: a PC/SC reader needs one MRZ source (kind = \"serial\" or \"file\")"
                    .into(),
            )),
        };
    // Loaded once, when the configuration was validated (`DevicesSection::settings`).
    let trust = match (csca, &cfg.csca) {
        (None, _) => None,
        (Some(_), Some(t)) => Some(Arc::clone(t)),
        (Some(dir), None) => {
            return Err(err(format!(
                "devices.document.csca: the trust store {} was not loaded",
                dir.display()
            )))
        }
    };
    let real = PcscReader::start(reader, trust, mrz)
        .map_err(|e| err(format!("cannot start the PC/SC watcher: {e}")))?;
    Ok(Box::new(real))
}
