//! Passive authentication (ICAO 9303 Part 11, 5.1): EF.SOD (CMS SignedData) parsing, the
//! Document Signer certificate chain to a CSCA trust store, signature verification
//! (RSA PKCS#1 v1.5, RSA-PSS, ECDSA on P-256/P-384/brainpoolP256r1/brainpoolP384r1), data-group
//! hash comparison, chip-MRZ versus OCR-MRZ comparison, and Active Authentication (DG15).
//!
//! CMS is parsed with the project's own BER-TLV reader so that the exact signed bytes are kept
//! (signed attributes are verified as encoded, never re-encoded); certificates are decoded with
//! `x509-cert`.
//!
//! Outcome: [`PaStatus::Valid`] when every check passed; [`PaStatus::Invalid`] when the
//! document data contradicts its signature (tampered data group, bad SOD signature, forged or
//! expired certificate, malformed SOD); [`PaStatus::Untrusted`] when the signature is intact
//! but no CSCA in the trust store vouches for the Document Signer; [`PaStatus::NotChecked`]
//! when there was nothing to check against (no trust store or no SOD).
//!
//! # Layout
//!
//! Every public item is re-exported here (`pa::verify`, `pa::TrustStore`, ...); the files:
//!
//! - `error`: [`PaError`] and [`SignatureMismatch`];
//! - `algorithms`: digests ([`HashAlg`]) and curves ([`Curve`]) by OID;
//! - `keys`: public keys ([`PublicKey`]), signature schemes, signature verification;
//! - `signed_data`: CMS SignedData ([`SignedData`]);
//! - `sod`: EF.SOD and the LDS security object ([`Sod`]);
//! - `trust`: the CSCA trust store ([`TrustStore`]) and certificate checks;
//! - `verify`: passive authentication as a whole ([`verify`], [`PaReport`]);
//! - `compare`: chip MRZ against the optically read one ([`compare_mrz`]);
//! - `aa`: Active Authentication ([`verify_active_authentication`]);
//! - [`pki`]: a test PKI for the simulator and tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use thiserror::Error;
use x509_cert::Certificate;

use super::lds::{self, Dg15, LdsError};
use super::mrz::{Mrz, MrzKey};
use super::tlv::{self, Tlv, TlvError};

pub mod pki;

/// Object identifiers used by passive and active authentication.
pub mod oids {
    use const_oid::ObjectIdentifier;

    /// id-signedData.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// id-icao-mrtd-security-ldsSecurityObject.
    pub const LDS_SECURITY_OBJECT: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.23.136.1.1.1");
    /// id-icao-cscaMasterList.
    pub const CSCA_MASTER_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.2");
    /// contentType attribute.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// messageDigest attribute.
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// signingTime attribute.
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// SHA-1.
    pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    /// SHA-224.
    pub const SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
    /// SHA-256.
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// SHA-384.
    pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// SHA-512.
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// rsaEncryption.
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// sha1WithRSAEncryption.
    pub const SHA1_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption.
    pub const SHA384_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// sha224WithRSAEncryption.
    pub const SHA224_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.14");
    /// id-RSASSA-PSS.
    pub const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
    /// id-mgf1.
    pub const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// ecdsa-with-SHA1.
    pub const ECDSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
    /// ecdsa-with-SHA224.
    pub const ECDSA_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.1");
    /// ecdsa-with-SHA256.
    pub const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384.
    pub const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// ecdsa-with-SHA512.
    pub const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    /// prime256v1 / NIST P-256.
    pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 / NIST P-384.
    pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    /// brainpoolP256r1.
    pub const BRAINPOOL_P256R1: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7");
    /// brainpoolP384r1.
    pub const BRAINPOOL_P384R1: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.11");
}

mod aa;
mod algorithms;
mod compare;
mod error;
mod keys;
mod signed_data;
mod sod;
mod trust;
mod verify;
pub use aa::*;
pub use algorithms::*;
pub use compare::*;
pub use error::*;
pub use keys::*;
pub use signed_data::*;
pub use sod::*;
pub use trust::*;
pub use verify::*;

#[cfg(test)]
mod tests;
