//! `[devices.document] kind = "pcsc"`: the real document reader, an ICAO 9303 chip read
//! through pcscd, behind the [`DocumentReader`] trait (crate feature `pcsc`).
//!
//! - **Presence**: a watcher thread ([`device_drivers::card::pcsc::watch`]) reports cards
//!   coming and going in the readers whose name starts with `reader`; it re-establishes
//!   its PC/SC context by itself when pcscd restarts.
//! - **Access key**: the MRZ the page reader's OCR read, taken from `mrz_file` at every
//!   read (the MRZ lines, or `DOCNO,YYMMDD,YYMMDD`). A missing or unreadable file is a
//!   failed read (`wrong_key`): without an MRZ the chip cannot be opened.
//! - **Read**: on a blocking thread, [`read_for_gate`] — BAC/PACE, DG1/DG2/DG3, EF.SOD,
//!   passive authentication against the `csca` trust store, chip MRZ against OCR MRZ.
//!   Dropping the read future raises a cancel flag that fails the session's next APDU;
//!   the next read waits for that thread to end first.
//! - **Faults**: pcscd unreachable, the reader gone, a reader error during a read are
//!   [`DeviceFault`]s; the shell then probes ([`DocumentReader::probe`] lists the readers)
//!   until the reader is back. A card pulled mid-read is the traveller's
//!   [`ReadError::Removed`], not a fault.
//!
//! With the other devices simulated, [`devices`] pairs the real reader with the simulated
//! lane: see [`SimTravellerReader`].

use super::clock::MonotonicWallClock;
use super::{Devices, RuntimeError};
use crate::config::{DocumentDevice, FingerprintDevice, GateConfig, IoDevice};
use crate::types::Device;
use device_drivers::card::gate::{read_error, read_for_gate, Cancellable, OcrMrz};
use device_drivers::card::pa::TrustStore;
use device_drivers::card::pcsc::{list_readers, watch, PcscTransport, ReaderEvent};
use device_drivers::devices::{
    ChipRead, DeviceFault, DeviceFuture, DocumentReader, FaultKind, Presence, ReadError,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;

/// How often the watcher thread looks at pcscd (and notices a stop).
const WATCH_POLL: Duration = Duration::from_millis(200);

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
    mrz_file: PathBuf,
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
    /// `mrz_file` where the OCR's MRZ is found. Must run inside a tokio runtime.
    pub fn start(
        prefix: &str,
        trust: Option<Arc<TrustStore>>,
        mrz_file: &Path,
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
            mrz_file: mrz_file.to_path_buf(),
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
    async fn look_up(&self) -> Result<(), DeviceFault> {
        let prefix = self.prefix.clone();
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
        let Some(reader) = self.card_in.clone() else {
            return Err(ReadError::NoDocument);
        };
        let text = tokio::fs::read_to_string(&self.mrz_file)
            .await
            .map_err(|e| {
                ReadError::AccessDenied(format!("no OCR MRZ in {}: {e}", self.mrz_file.display()))
            })?;
        let ocr = OcrMrz::parse(&text).map_err(ReadError::AccessDenied)?;
        let trust = self.trust.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(Some(cancel.clone()));
        let task = tokio::task::spawn_blocking(move || {
            let link = PcscTransport::connect(&reader).map_err(|e| read_error(e.into()))?;
            let mut link = Cancellable::new(link, &cancel);
            let (chip, summary) =
                read_for_gate(&mut link, &ocr, trust.as_deref(), SystemTime::now())?;
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
}

impl DocumentReader for PcscReader {
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>> {
        Box::pin(async move {
            if !self.checked {
                self.checked = true;
                self.look_up().await?;
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
            self.look_up().await
        })
    }
}

/// How long a read waits for the simulated traveller to reach the reader and present.
const TRAVELLER_WAIT: Duration = Duration::from_secs(15);

/// A real PC/SC reader in a simulated lane (`kind = "pcsc"` with simulated fingerprint
/// and I/O): the chip on the real reader is what the gate reads and decides on; the
/// simulated traveller at the reader is who walks through the lane and gives the finger.
///
/// - presence comes from the real reader, reported once a simulated traveller has
///   stepped up to the reader and presented (the chip belongs to that traveller);
/// - a read waits (up to 15 s) until a simulated traveller has presented at the
///   simulated reader, then reads the real chip and lets the simulated read run
///   alongside (so the simulated traveller knows the read started and walks in on
///   "enter");
/// - the document is the real chip's; the enrolled thumbs are the simulated
///   traveller's, because the live finger is simulated too and a simulated finger can
///   only be compared with simulated templates.
pub struct SimTravellerReader {
    real: PcscReader,
    sim: Box<dyn DocumentReader>,
    /// A simulated traveller has presented and waits for the read.
    waiting: bool,
    /// A real card arrived before any simulated traveller presented: not reported yet.
    held: bool,
}

impl SimTravellerReader {
    /// Pairs the real reader with the simulated lane's reader.
    pub fn new(real: PcscReader, sim: Box<dyn DocumentReader>) -> SimTravellerReader {
        SimTravellerReader {
            real,
            sim,
            waiting: false,
            held: false,
        }
    }
}

impl DocumentReader for SimTravellerReader {
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>> {
        Box::pin(async move {
            let SimTravellerReader {
                real,
                sim,
                waiting,
                held,
            } = self;
            loop {
                if *held && *waiting {
                    *held = false;
                    return Ok(Presence::Placed);
                }
                tokio::select! {
                    r = real.next_presence() => match r {
                        // The chip is on the reader; the gate sees it once the simulated
                        // traveller who carries it has stepped up and presented.
                        Ok(Presence::Placed) if !*waiting => *held = true,
                        Ok(Presence::Removed) if *held => *held = false,
                        other => return other,
                    },
                    p = sim.next_presence() => match p {
                        Ok(Presence::Placed) => *waiting = true,
                        Ok(Presence::Removed) => *waiting = false,
                        Err(f) => return Err(f),
                    },
                }
            }
        })
    }

    fn read(&mut self) -> DeviceFuture<'_, Result<ChipRead, ReadError>> {
        Box::pin(async move {
            let SimTravellerReader {
                real, sim, waiting, ..
            } = self;
            if !*waiting {
                let wait = async {
                    loop {
                        if let Ok(Presence::Placed) = sim.next_presence().await {
                            return;
                        }
                    }
                };
                if tokio::time::timeout(TRAVELLER_WAIT, wait).await.is_err() {
                    tracing::warn!("no simulated traveller presented at the reader");
                }
            }
            *waiting = false;
            let (chip, simulated) = tokio::join!(real.read(), sim.read());
            let mut chip = chip?;
            match simulated {
                Ok(s) => {
                    chip.document.enrolled_thumbs = s.document.enrolled_thumbs;
                    chip.enrolled = s.enrolled;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the simulated traveller's read failed");
                    chip.enrolled.clear();
                }
            }
            Ok(chip)
        })
    }

    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        self.real.probe()
    }
}

/// The devices of `[devices.document] kind = "pcsc"` with the fingerprint scanner and
/// the lane I/O simulated (`[sim]`). Must run inside a tokio runtime.
pub fn devices(cfg: &GateConfig, clock: MonotonicWallClock) -> Result<Devices, RuntimeError> {
    let DocumentDevice::Pcsc {
        reader,
        csca,
        mrz_file,
    } = &cfg.devices.document
    else {
        return Err(RuntimeError::Device {
            device: Device::DocumentReader,
            detail: "devices.document.kind is not \"pcsc\"".into(),
        });
    };
    if cfg.devices.fingerprint != FingerprintDevice::Sim || cfg.devices.io != IoDevice::Sim {
        return Err(RuntimeError::NotBuilt {
            key: "devices.document.kind",
            what: "the PC/SC reader with real fingerprint or I/O devices",
        });
    }
    let trust = match csca {
        None => None,
        Some(dir) => Some(Arc::new(TrustStore::load_dir(dir).map_err(|e| {
            RuntimeError::Device {
                device: Device::DocumentReader,
                detail: format!("devices.document.csca: {e}"),
            }
        })?)),
    };
    let real = PcscReader::start(reader, trust, mrz_file).map_err(|e| RuntimeError::Device {
        device: Device::DocumentReader,
        detail: format!("cannot start the PC/SC watcher: {e}"),
    })?;
    let mut d = super::sim::devices(&cfg.sim, clock)?;
    d.document = Box::new(SimTravellerReader::new(real, d.document));
    Ok(d)
}
