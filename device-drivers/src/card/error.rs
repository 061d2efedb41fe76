//! How reading a document chip failed, in terms an audit trail can use: which side
//! misbehaved and how.

use super::apdu::{ApduError, ExchangeError};
use super::transport::TransportError;

/// Failure of a chip session (access control, secure messaging, file reading).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The access key (MRZ or CAN) does not open this chip: the chip refused the terminal's
    /// authentication, or its own proof does not verify under the key.
    #[error("wrong access key for {protocol}: {detail}")]
    WrongKey {
        /// `"BAC"` or `"PACE"`.
        protocol: &'static str,
        /// What showed the key to be wrong.
        detail: String,
    },
    /// A secure-messaging or authentication MAC from the chip did not verify.
    #[error("bad MAC from the chip: {0}")]
    BadMac(String),
    /// Authenticated data decrypted to something malformed (bad padding, wrong nonce echo).
    #[error("tampered data from the chip: {0}")]
    TamperedData(String),
    /// The chip offers only algorithms or domain parameters this reader does not implement.
    #[error("unknown or unsupported algorithm: {0}")]
    UnknownAlgorithm(String),
    /// The chip answered outside the protocol (missing data objects, malformed encodings,
    /// unprotected answers inside secure messaging, invalid points).
    #[error("protocol violation by the chip: {0}")]
    ProtocolViolation(String),
    /// The chip reported a secure-messaging error (`6987`/`6988`) and ended the session.
    #[error("chip rejected secure messaging (SW {0:04X})")]
    SecureMessagingRejected(u16),
    /// The chip refused a command with an error status word.
    #[error("{command} refused by the chip (SW {sw:04X})")]
    Status {
        /// The command that was refused.
        command: &'static str,
        /// The status word.
        sw: u16,
    },
    /// The card was removed or lost power during the session.
    #[error("card removed during the read")]
    CardRemoved,
    /// No card is present.
    #[error("no card in the reader")]
    NoCard,
    /// The reader or its service failed.
    #[error("reader failure: {0}")]
    Reader(String),
}

impl From<TransportError> for CardError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::NoCard => CardError::NoCard,
            TransportError::CardRemoved => CardError::CardRemoved,
            TransportError::Reader(s) => CardError::Reader(s),
            TransportError::Timeout => CardError::Reader("card did not answer in time".into()),
        }
    }
}

impl From<ApduError> for CardError {
    fn from(e: ApduError) -> Self {
        CardError::ProtocolViolation(e.to_string())
    }
}

impl From<ExchangeError> for CardError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Transport(t) => t.into(),
            ExchangeError::Malformed(m) => m.into(),
            other => CardError::ProtocolViolation(other.to_string()),
        }
    }
}

impl From<super::crypto::KeyLengthError> for CardError {
    fn from(e: super::crypto::KeyLengthError) -> Self {
        CardError::ProtocolViolation(e.to_string())
    }
}
