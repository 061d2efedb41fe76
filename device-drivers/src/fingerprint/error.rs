//! Typed errors of the fingerprint template codecs.

use thiserror::Error;

/// Why a fingerprint minutiae record could not be parsed or encoded.
///
/// Every variant names the defect and, where it has one, the byte offset at
/// which it was found, so that the message can go into an audit trail as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before a field could be read.
    #[error("truncated at offset {offset}: {field} needs {needed} byte(s), only {available} left")]
    Truncated {
        /// Offset of the field that could not be read.
        offset: usize,
        /// Name of the field.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The record does not start with the format identifier `FMR\0`.
    #[error("bad magic: expected \"FMR\\0\", found {found:02x?}")]
    BadMagic {
        /// The first bytes of the input (up to four).
        found: Vec<u8>,
    },
    /// The version field names a version this codec does not know.
    #[error("unsupported version {found:02x?} (expected \" 20\\0\" or \"030\\0\")")]
    UnsupportedVersion {
        /// The four version bytes.
        found: Vec<u8>,
    },
    /// The record length in the header does not match the bytes present.
    #[error("length mismatch: header declares {declared} bytes but the record has {actual} ({})", if declared > actual { "truncated" } else { "trailing bytes" })]
    LengthMismatch {
        /// Length declared in the header.
        declared: u64,
        /// Length of the input.
        actual: u64,
    },
    /// A length field inside the record contradicts the data around it.
    #[error("bad {field} at offset {offset}: declares {declared} bytes, {detail}")]
    BadLength {
        /// Offset of the length field.
        offset: usize,
        /// Name of the length field.
        field: &'static str,
        /// Value of the length field.
        declared: u64,
        /// What it contradicts.
        detail: &'static str,
    },
    /// A field holds a value the standard forbids.
    #[error("invalid {field} at offset {offset}: {value}")]
    InvalidValue {
        /// Offset of the field.
        offset: usize,
        /// Name of the field.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// Data follows the last structure the header announces.
    #[error("{count} unexpected trailing byte(s) at offset {offset}")]
    TrailingBytes {
        /// Offset of the first unexpected byte.
        offset: usize,
        /// How many bytes follow.
        count: usize,
    },
    /// A value does not fit the field it must be encoded into.
    #[error("cannot encode {field}: value {value} does not fit")]
    Unencodable {
        /// Name of the field.
        field: &'static str,
        /// The value that does not fit.
        value: u64,
    },
    /// The record holds no finger view to take minutiae from.
    #[error("the record holds no finger view")]
    NoFingerView,
}
