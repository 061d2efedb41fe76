//! The digest algorithms and elliptic curves of ICAO 9303 signatures, by OID.

use super::*;

/// Digest algorithms used by ICAO 9303.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HashAlg {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The algorithm for a digest OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<HashAlg> {
        Some(match *o {
            oids::SHA1 => HashAlg::Sha1,
            oids::SHA224 => HashAlg::Sha224,
            oids::SHA256 => HashAlg::Sha256,
            oids::SHA384 => HashAlg::Sha384,
            oids::SHA512 => HashAlg::Sha512,
            _ => return None,
        })
    }

    /// The digest OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlg::Sha1 => oids::SHA1,
            HashAlg::Sha224 => oids::SHA224,
            HashAlg::Sha256 => oids::SHA256,
            HashAlg::Sha384 => oids::SHA384,
            HashAlg::Sha512 => oids::SHA512,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            HashAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlg::Sha224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Elliptic curves supported for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// brainpoolP256r1.
    BrainpoolP256r1,
    /// brainpoolP384r1.
    BrainpoolP384r1,
}

impl Curve {
    pub(super) fn from_oid(o: &ObjectIdentifier) -> Option<Curve> {
        Some(match *o {
            oids::P256 => Curve::P256,
            oids::P384 => Curve::P384,
            oids::BRAINPOOL_P256R1 => Curve::BrainpoolP256r1,
            oids::BRAINPOOL_P384R1 => Curve::BrainpoolP384r1,
            _ => return None,
        })
    }

    /// The named-curve OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => oids::P256,
            Curve::P384 => oids::P384,
            Curve::BrainpoolP256r1 => oids::BRAINPOOL_P256R1,
            Curve::BrainpoolP384r1 => oids::BRAINPOOL_P384R1,
        }
    }

    /// Field size in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 | Curve::BrainpoolP256r1 => 32,
            Curve::P384 | Curve::BrainpoolP384r1 => 48,
        }
    }

    /// Matches explicit domain parameters (as many CSCA certificates carry them) by prime.
    pub(super) fn from_prime(p: &[u8]) -> Option<Curve> {
        let p: &[u8] = match p {
            [0, rest @ ..] => rest,
            _ => p,
        };
        const P256_P: [u8; 32] =
            hex_literal::hex!("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF");
        const BP256_P: [u8; 32] =
            hex_literal::hex!("A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377");
        const P384_P: [u8; 48] = hex_literal::hex!(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF"
        );
        const BP384_P: [u8; 48] = hex_literal::hex!(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71874700133107EC53"
        );
        if p == P256_P {
            Some(Curve::P256)
        } else if p == BP256_P {
            Some(Curve::BrainpoolP256r1)
        } else if p == P384_P {
            Some(Curve::P384)
        } else if p == BP384_P {
            Some(Curve::BrainpoolP384r1)
        } else {
            None
        }
    }
}
