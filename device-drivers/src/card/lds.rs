//! Logical Data Structure (ICAO 9303 Part 10): EF.COM, DG1, DG2, DG3, DG14, DG15,
//! EF.CardAccess and the EF.SOD wrapper — parse and encode.
//!
//! Biometric payloads (face image, finger templates) are kept in memory only; nothing here
//! writes them anywhere.
//!
//! # Layout
//!
//! Every public item is re-exported here (`lds::Dg1`, `lds::SecurityInfos`, ...); one file
//! per structure: `error` ([`LdsError`]), `files` ([`LdsFile`], data-group tags), `com`
//! (EF.COM), `dg1`, `biometric` (the CBEFF wrapping DG2 and DG3 share), `dg2`, `dg3`,
//! `pace_info` (PACE protocols and domains), `security_info` (EF.CardAccess and DG14),
//! `dg15`, `sod` (the EF.SOD wrapper), and [`persona`] (seeded test documents).

use std::collections::BTreeMap;

use const_oid::ObjectIdentifier;
use thiserror::Error;

use super::mrz::{Mrz, MrzError};
use super::tlv::{self, Tlv, TlvError};

pub mod persona;

/// Object identifiers used by SecurityInfos.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// bsi-de protocols smartcard: 0.4.0.127.0.7.2.2.
    pub const BSI_PROTOCOLS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2");
    /// id-PACE: 0.4.0.127.0.7.2.2.4.
    pub const PACE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.4");
    /// id-CA: 0.4.0.127.0.7.2.2.3.
    pub const CA: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.3");
    /// id-PK (chip authentication public key): 0.4.0.127.0.7.2.2.1.
    pub const PK: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.1");
    /// id-TA: 0.4.0.127.0.7.2.2.2.
    pub const TA: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.2");
    /// id-icao-mrtd-security-aaProtocolObject: 2.23.136.1.1.5.
    pub const AA: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.5");
    /// ecdsa-plain-SHA256 (BSI TR-03111): 0.4.0.127.0.7.1.1.4.1.3.
    pub const ECDSA_PLAIN_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.3");
    /// ecdsa-plain-SHA384: 0.4.0.127.0.7.1.1.4.1.4.
    pub const ECDSA_PLAIN_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.4");
    /// ecdsa-plain-SHA512: 0.4.0.127.0.7.1.1.4.1.5.
    pub const ECDSA_PLAIN_SHA512: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.5");
    /// ecdsa-plain-SHA1: 0.4.0.127.0.7.1.1.4.1.1.
    pub const ECDSA_PLAIN_SHA1: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.1");
    /// ecdsa-plain-SHA224: 0.4.0.127.0.7.1.1.4.1.2.
    pub const ECDSA_PLAIN_SHA224: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.2");
}

mod biometric;
mod com;
mod dg1;
mod dg15;
mod dg2;
mod dg3;
mod error;
mod files;
mod pace_info;
mod security_info;
mod sod;
pub use biometric::*;
pub use com::*;
pub use dg1::*;
pub use dg15::*;
pub use dg2::*;
pub use dg3::*;
pub use error::*;
pub use files::*;
pub use pace_info::*;
pub use security_info::*;
pub use sod::*;

#[cfg(test)]
mod tests;
