//! Why an LDS file does not parse: [`LdsError`].

use super::*;

/// How an LDS file misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LdsError {
    /// The BER-TLV framing is broken.
    #[error("{file}: {source}")]
    Tlv {
        /// Which file was being parsed.
        file: &'static str,
        /// The TLV defect.
        source: TlvError,
    },
    /// The MRZ in DG1 is malformed.
    #[error("DG1: {0}")]
    Mrz(#[from] MrzError),
    /// The file is well framed but its content breaks the structure the standard requires.
    #[error("{file}: bad structure at offset {offset}: {detail}")]
    Structure {
        /// Which file.
        file: &'static str,
        /// Offset of the offending element.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
}

pub(super) fn tlv_err(file: &'static str) -> impl Fn(TlvError) -> LdsError {
    move |source| LdsError::Tlv { file, source }
}

pub(super) fn structure(file: &'static str, offset: usize, detail: impl Into<String>) -> LdsError {
    LdsError::Structure {
        file,
        offset,
        detail: detail.into(),
    }
}
