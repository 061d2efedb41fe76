//! Why passive or active authentication failed: [`PaError`] and its constructors.

use super::*;

/// Why passive or active authentication failed, precisely enough for the decision record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PaError {
    /// EF.SOD (or a master list) has broken TLV framing.
    #[error("{what}: {source}")]
    Tlv {
        /// Which structure.
        what: &'static str,
        /// The TLV defect.
        source: TlvError,
    },
    /// A structure is well framed but not what the standard requires.
    #[error("{what}: bad structure at offset {offset}: {detail}")]
    Structure {
        /// Which structure.
        what: &'static str,
        /// Offset of the offending element.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// An LDS file could not be parsed.
    #[error(transparent)]
    Lds(#[from] LdsError),
    /// An algorithm or curve this implementation does not support.
    #[error("unsupported {what}: {oid}")]
    UnknownAlgorithm {
        /// What kind of algorithm (digest, signature, curve).
        what: &'static str,
        /// Its OID.
        oid: String,
    },
    /// A certificate that does not decode.
    #[error("{which} certificate is malformed: {detail}")]
    BadCertificate {
        /// Which certificate (DS, CSCA, ...).
        which: String,
        /// The decoder's complaint.
        detail: String,
    },
    /// A public key that does not decode or is not on its curve.
    #[error("{which} public key is malformed: {detail}")]
    BadPublicKey {
        /// Whose key.
        which: String,
        /// What is wrong.
        detail: String,
    },
    /// A signature that does not verify.
    #[error("{what} signature does not verify: tampered data or wrong key")]
    BadSignature {
        /// Which signature.
        what: String,
    },
    /// A data group whose hash differs from the one signed in EF.SOD.
    #[error("DG{dg} hash differs from EF.SOD: the data group was tampered with")]
    HashMismatch {
        /// The data group number.
        dg: u8,
    },
    /// A data group read from the chip that EF.SOD does not cover.
    #[error("DG{dg} was read but EF.SOD holds no hash for it")]
    DataGroupNotInSod {
        /// The data group number.
        dg: u8,
    },
    /// The messageDigest signed attribute does not match the LDS security object.
    #[error("messageDigest attribute does not match the LDS security object: tampered EF.SOD")]
    MessageDigestMismatch,
    /// EF.SOD carries no certificate matching its signer.
    #[error("EF.SOD carries no Document Signer certificate matching its signer identifier")]
    NoDsCertificate,
    /// No CSCA in the trust store has the DS certificate's issuer name.
    #[error("no CSCA in the trust store issued the DS certificate (issuer {issuer})")]
    NoTrustAnchor {
        /// The DS issuer name.
        issuer: String,
    },
    /// CSCAs with the right name exist but none signed the DS certificate.
    #[error("DS certificate (issuer {issuer}) is not signed by any trusted CSCA of that name")]
    ChainSignature {
        /// The DS issuer name.
        issuer: String,
    },
    /// A certificate outside its validity period at the checking time.
    #[error("{which} certificate is not valid at {at} (valid {not_before} to {not_after})")]
    CertificateNotValid {
        /// Which certificate.
        which: String,
        /// The checking time.
        at: String,
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// A trust-store file that could not be read.
    #[error("trust store {path}: {detail}")]
    TrustStore {
        /// The file or directory.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

impl PaError {
    /// The PA status this failure leads to.
    pub fn status(&self) -> PaStatus {
        match self {
            PaError::NoDsCertificate
            | PaError::NoTrustAnchor { .. }
            | PaError::ChainSignature { .. }
            | PaError::TrustStore { .. } => PaStatus::Untrusted,
            _ => PaStatus::Invalid,
        }
    }
}

pub(super) fn tlv_err(what: &'static str) -> impl Fn(TlvError) -> PaError {
    move |source| PaError::Tlv { what, source }
}

pub(super) fn bad(what: &'static str, offset: usize, detail: impl Into<String>) -> PaError {
    PaError::Structure {
        what,
        offset,
        detail: detail.into(),
    }
}

/// A signature that does not verify under the given key and scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("signature does not verify")]
pub struct SignatureMismatch;
