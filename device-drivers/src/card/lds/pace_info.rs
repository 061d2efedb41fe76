//! PACE protocols and domain parameters as EF.CardAccess names them (`PACEInfo`).

use super::*;

/// PACE key agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KeyAgreement {
    /// Diffie-Hellman over a MODP group.
    Dh,
    /// Elliptic-curve Diffie-Hellman.
    Ecdh,
}

/// PACE mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mapping {
    /// Generic Mapping.
    Generic,
    /// Integrated Mapping.
    Integrated,
    /// Chip Authentication Mapping (ECDH only).
    ChipAuthentication,
}

/// Symmetric cipher of a PACE / CA protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Cipher {
    /// Two-key 3DES, CBC, Retail MAC.
    Des3,
    /// AES-128, CBC, CMAC.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl Cipher {
    fn from_arc(a: u32) -> Option<Cipher> {
        match a {
            1 => Some(Cipher::Des3),
            2 => Some(Cipher::Aes128),
            3 => Some(Cipher::Aes192),
            4 => Some(Cipher::Aes256),
            _ => None,
        }
    }
    fn arc(self) -> u32 {
        match self {
            Cipher::Des3 => 1,
            Cipher::Aes128 => 2,
            Cipher::Aes192 => 3,
            Cipher::Aes256 => 4,
        }
    }
    /// Session key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Des3 | Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }
}

/// A PACE protocol as named by its OID (`id-PACE-<KA>-<mapping>-<cipher>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PaceProtocol {
    /// DH or ECDH.
    pub key_agreement: KeyAgreement,
    /// GM, IM or CAM.
    pub mapping: Mapping,
    /// The cipher.
    pub cipher: Cipher,
}

impl PaceProtocol {
    /// Decodes a PACE protocol OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<PaceProtocol> {
        let arcs: Vec<u32> = o.arcs().collect();
        let prefix: Vec<u32> = oid::PACE.arcs().collect();
        if arcs.len() != prefix.len() + 2 || !arcs.starts_with(&prefix) {
            return None;
        }
        let (ka, mapping) = match arcs.get(prefix.len())? {
            1 => (KeyAgreement::Dh, Mapping::Generic),
            2 => (KeyAgreement::Ecdh, Mapping::Generic),
            3 => (KeyAgreement::Dh, Mapping::Integrated),
            4 => (KeyAgreement::Ecdh, Mapping::Integrated),
            6 => (KeyAgreement::Ecdh, Mapping::ChipAuthentication),
            _ => return None,
        };
        Some(PaceProtocol {
            key_agreement: ka,
            mapping,
            cipher: Cipher::from_arc(*arcs.get(prefix.len() + 1)?)?,
        })
    }

    /// The protocol OID.
    pub fn oid(&self) -> ObjectIdentifier {
        let m = match (self.key_agreement, self.mapping) {
            (KeyAgreement::Dh, Mapping::Generic) => 1,
            (KeyAgreement::Ecdh, Mapping::Generic) => 2,
            (KeyAgreement::Dh, Mapping::Integrated) => 3,
            (KeyAgreement::Ecdh, Mapping::Integrated) => 4,
            (_, Mapping::ChipAuthentication) => 6,
        };
        // Appending two small arcs to a valid constant OID cannot fail.
        oid::PACE
            .push_arc(m)
            .and_then(|o| o.push_arc(self.cipher.arc()))
            .unwrap_or(oid::PACE)
    }

    /// The ICAO name, e.g. `PACE-ECDH-GM-AES-128`.
    pub fn name(&self) -> String {
        let ka = match self.key_agreement {
            KeyAgreement::Dh => "DH",
            KeyAgreement::Ecdh => "ECDH",
        };
        let m = match self.mapping {
            Mapping::Generic => "GM",
            Mapping::Integrated => "IM",
            Mapping::ChipAuthentication => "CAM",
        };
        let c = match self.cipher {
            Cipher::Des3 => "3DES",
            Cipher::Aes128 => "AES-128",
            Cipher::Aes192 => "AES-192",
            Cipher::Aes256 => "AES-256",
        };
        format!("PACE-{ka}-{m}-{c}")
    }
}

/// Standardized PACE domain parameters (ICAO 9303 Part 11, 9.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StandardizedDomain {
    /// 0: 1024-bit MODP group with 160-bit prime order subgroup.
    Modp1024_160,
    /// 1: 2048-bit MODP group with 224-bit prime order subgroup.
    Modp2048_224,
    /// 2: 2048-bit MODP group with 256-bit prime order subgroup.
    Modp2048_256,
    /// 8: NIST P-192.
    P192,
    /// 9: brainpoolP192r1.
    BrainpoolP192r1,
    /// 10: NIST P-224.
    P224,
    /// 11: brainpoolP224r1.
    BrainpoolP224r1,
    /// 12: NIST P-256.
    P256,
    /// 13: brainpoolP256r1.
    BrainpoolP256r1,
    /// 14: brainpoolP320r1.
    BrainpoolP320r1,
    /// 15: NIST P-384.
    P384,
    /// 16: brainpoolP384r1.
    BrainpoolP384r1,
    /// 17: brainpoolP512r1.
    BrainpoolP512r1,
    /// 18: NIST P-521.
    P521,
}

impl StandardizedDomain {
    /// The domain for a parameterId.
    pub fn from_id(id: u32) -> Option<StandardizedDomain> {
        use StandardizedDomain::*;
        Some(match id {
            0 => Modp1024_160,
            1 => Modp2048_224,
            2 => Modp2048_256,
            8 => P192,
            9 => BrainpoolP192r1,
            10 => P224,
            11 => BrainpoolP224r1,
            12 => P256,
            13 => BrainpoolP256r1,
            14 => BrainpoolP320r1,
            15 => P384,
            16 => BrainpoolP384r1,
            17 => BrainpoolP512r1,
            18 => P521,
            _ => return None,
        })
    }
}

/// PACEInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceInfo {
    /// Protocol (from the OID).
    pub protocol: PaceProtocol,
    /// Version (must be 2).
    pub version: u32,
    /// Domain parameter id (standardized id, or a reference to PACEDomainParameterInfo).
    pub parameter_id: Option<u32>,
}

impl PaceInfo {
    /// The standardized domain, if the parameter id names one.
    pub fn domain(&self) -> Option<StandardizedDomain> {
        self.parameter_id.and_then(StandardizedDomain::from_id)
    }
}
