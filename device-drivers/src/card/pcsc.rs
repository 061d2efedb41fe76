//! PC/SC transport through pcscd (`pcsc` crate): reader discovery, waiting for a card, and
//! APDU exchange with the errors mapped to [`TransportError`].
//!
//! Blocking by design (PC/SC calls block); an async shell runs it on a blocking thread.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State, PNP_NOTIFICATION};

use super::transport::{CardTransport, TransportError};

fn map_err(e: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    match e {
        E::NoSmartcard => TransportError::NoCard,
        // NotTransacted: the card under an open handle went away (pcsc-lite reports a card
        // swapped between connect and transmit this way).
        E::RemovedCard | E::ResetCard | E::UnpoweredCard | E::NotTransacted => {
            TransportError::CardRemoved
        }
        E::Timeout => TransportError::Timeout,
        other => TransportError::Reader(other.to_string()),
    }
}

/// Names of the readers pcscd knows now (empty when there are none).
pub fn list_readers() -> Result<Vec<String>, TransportError> {
    let ctx = Context::establish(Scope::User).map_err(map_err)?;
    match ctx.list_readers_owned() {
        Ok(r) => Ok(r
            .into_iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(map_err(e)),
    }
}

/// Block until a card is present in `reader` or `timeout` passes (`Err(NoCard)`).
pub fn wait_for_card(reader: &str, timeout: Duration) -> Result<(), TransportError> {
    let ctx = Context::establish(Scope::User).map_err(map_err)?;
    let name =
        CString::new(reader).map_err(|_| TransportError::Reader("bad reader name".into()))?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match ctx.get_status_change(left, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Err(TransportError::NoCard),
            Err(e) => return Err(map_err(e)),
        }
        let st = states[0].event_state();
        if st.contains(State::UNKNOWN) || st.contains(State::IGNORE) {
            return Err(TransportError::Reader(format!("reader {reader} is gone")));
        }
        if st.contains(State::PRESENT) && !st.contains(State::MUTE) {
            return Ok(());
        }
        states[0].sync_current_state();
        if left.is_zero() {
            return Err(TransportError::NoCard);
        }
    }
}

/// A card connected through a PC/SC reader.
pub struct PcscTransport {
    _ctx: Context,
    card: pcsc::Card,
    buf: Vec<u8>,
}

impl PcscTransport {
    /// Connect (shared mode, any protocol) to the card in `reader`.
    pub fn connect(reader: &str) -> Result<Self, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(map_err)?;
        let name: &CStr =
            &CString::new(reader).map_err(|_| TransportError::Reader("bad reader name".into()))?;
        let card = ctx
            .connect(name, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| match e {
                pcsc::Error::UnknownReader => {
                    TransportError::Reader(format!("no reader named {reader:?}"))
                }
                other => map_err(other),
            })?;
        Ok(PcscTransport {
            _ctx: ctx,
            card,
            buf: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }
}

impl CardTransport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let r = self
            .card
            .transmit(apdu, &mut self.buf)
            .map(<[u8]>::to_vec)
            .map_err(map_err)?;
        if r.len() < 2 {
            // No status word: the card went mute (vpcd reports a closed card socket this
            // way). Ask the reader; a card that is still present yet mute counts as removed.
            return Err(match self.card.status2_owned() {
                Err(e) if map_err(e) != TransportError::CardRemoved => map_err(e),
                _ => TransportError::CardRemoved,
            });
        }
        Ok(r)
    }
}

/// Something that happened to pcscd, a reader or a card, as seen by [`watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderEvent {
    /// pcscd answers (at start, and again after it was down).
    ServiceUp,
    /// pcscd is not reachable (stopped, restarting); [`watch`] keeps retrying.
    ServiceDown(String),
    /// A card is present and powered in `reader`.
    CardPresent(String),
    /// `reader` has no card any more.
    CardAbsent(String),
    /// `reader` disappeared (unplugged, or its driver went away).
    ReaderGone(String),
}

fn is_service_error(e: pcsc::Error) -> bool {
    matches!(
        e,
        pcsc::Error::NoService
            | pcsc::Error::ServiceStopped
            | pcsc::Error::InvalidHandle
            | pcsc::Error::CommError
            | pcsc::Error::InternalError
    )
}

/// Watch pcscd for card and reader changes until `stop` is raised (checked every `poll`),
/// reporting each change to `on_event`. Survives pcscd restarts and readers coming and
/// going: the context is re-established and the reader list rebuilt. Blocking: run it on
/// its own thread (an async shell forwards the events into its runtime).
pub fn watch(stop: &AtomicBool, poll: Duration, mut on_event: impl FnMut(ReaderEvent)) {
    let mut service_up: Option<bool> = None;
    while !stop.load(Ordering::Relaxed) {
        let ctx = match Context::establish(Scope::User) {
            Ok(c) => c,
            Err(e) => {
                if service_up != Some(false) {
                    on_event(ReaderEvent::ServiceDown(e.to_string()));
                    service_up = Some(false);
                }
                std::thread::sleep(poll);
                continue;
            }
        };
        // present/absent per reader, as last reported
        let mut known: BTreeMap<String, bool> = BTreeMap::new();
        let mut states = vec![ReaderState::new(
            PNP_NOTIFICATION().to_owned(),
            State::UNAWARE,
        )];
        let mut first = true;
        let down = loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let readers = match ctx.list_readers_owned() {
                Ok(r) => r,
                Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
                Err(e) if is_service_error(e) => break e.to_string(),
                Err(_) => Vec::new(),
            };
            if first || service_up != Some(true) {
                // list_readers succeeded: the service is really there
                if service_up != Some(true) {
                    on_event(ReaderEvent::ServiceUp);
                    service_up = Some(true);
                }
                first = false;
            }
            // readers that went away
            let names: Vec<String> = readers
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            known.retain(|name, _| {
                let keep = names.contains(name);
                if !keep {
                    on_event(ReaderEvent::ReaderGone(name.clone()));
                }
                keep
            });
            states.retain(|s| {
                s.name() == PNP_NOTIFICATION()
                    || names.iter().any(|n| n.as_bytes() == s.name().to_bytes())
            });
            for r in readers {
                if !states.iter().any(|s| s.name() == r.as_c_str()) {
                    states.push(ReaderState::new(r, State::UNAWARE));
                }
            }
            match ctx.get_status_change(poll, &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) if is_service_error(e) => break e.to_string(),
                Err(_) => {}
            }
            for s in states.iter_mut() {
                if s.name() == PNP_NOTIFICATION() {
                    s.sync_current_state();
                    continue;
                }
                let name = s.name().to_string_lossy().into_owned();
                let ev = s.event_state();
                if ev.contains(State::UNKNOWN) || ev.contains(State::IGNORE) {
                    continue; // reported as gone once it leaves the list
                }
                let present = ev.contains(State::PRESENT) && !ev.contains(State::MUTE);
                if known.get(&name) != Some(&present) {
                    let had = known.insert(name.clone(), present);
                    if present {
                        on_event(ReaderEvent::CardPresent(name));
                    } else if had.is_some() {
                        on_event(ReaderEvent::CardAbsent(name));
                    }
                }
                s.sync_current_state();
            }
        };
        if service_up != Some(false) {
            on_event(ReaderEvent::ServiceDown(down));
            service_up = Some(false);
        }
        for (name, present) in std::mem::take(&mut known) {
            if present {
                on_event(ReaderEvent::CardAbsent(name));
            }
        }
        std::thread::sleep(poll);
    }
}

/// A [`watch`] loop running on its own thread, delivering events on a channel; dropping
/// the handle stops the thread.
pub struct Watcher {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Events as they happen.
    pub events: std::sync::mpsc::Receiver<ReaderEvent>,
}

impl Watcher {
    /// Start watching pcscd (see [`watch`]); `poll` bounds how late a stop is noticed.
    pub fn spawn(poll: Duration) -> std::io::Result<Self> {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, events) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pcsc-watch".into())
            .spawn(move || {
                watch(&flag, poll, |e| {
                    let _ = tx.send(e);
                })
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
            events,
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
