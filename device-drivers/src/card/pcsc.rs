//! PC/SC transport through pcscd (`pcsc` crate): reader discovery, waiting for a card, and
//! APDU exchange with the errors mapped to [`TransportError`].
//!
//! Blocking by design (PC/SC calls block); an async shell runs it on a blocking thread.

use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

use super::transport::{CardTransport, TransportError};

fn map_err(e: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    match e {
        E::NoSmartcard => TransportError::NoCard,
        E::RemovedCard | E::ResetCard | E::UnpoweredCard => TransportError::CardRemoved,
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
