//! The link to a card: anything that can send a command APDU and return the response bytes
//! (a PC/SC reader, a vpcd-served virtual chip, an in-process virtual chip).

/// Why an exchange with the card could not happen at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No card is present in the reader.
    #[error("no card in the reader")]
    NoCard,
    /// The card was removed (or lost power) during the session.
    #[error("card removed during the session")]
    CardRemoved,
    /// The reader itself is gone or the reader service failed.
    #[error("reader unavailable: {0}")]
    Reader(String),
    /// The card did not answer in time.
    #[error("card did not answer in time")]
    Timeout,
}

/// A synchronous APDU link. Implementations send `apdu` unchanged and return the complete
/// response (data followed by SW1-SW2); they do not interpret status words.
pub trait CardTransport {
    /// Send one command APDU, return the response bytes.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: CardTransport + ?Sized> CardTransport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}

impl<T: CardTransport + ?Sized> CardTransport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}
