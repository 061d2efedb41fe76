//! DG15: the Active Authentication public key.

use super::*;

/// DG15: the Active Authentication public key (SubjectPublicKeyInfo DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dg15 {
    /// SubjectPublicKeyInfo, DER.
    pub public_key_info: Vec<u8>,
}

impl Dg15 {
    /// Parses DG15 (tag 6F around a SubjectPublicKeyInfo).
    pub fn parse(data: &[u8]) -> Result<Dg15, LdsError> {
        let top = Tlv::parse_exact(data, 0x6F).map_err(tlv_err("DG15"))?;
        Tlv::parse_exact(top.value, 0x30).map_err(|source| LdsError::Tlv {
            file: "DG15",
            source,
        })?;
        Ok(Dg15 {
            public_key_info: top.value.to_vec(),
        })
    }

    /// Encodes DG15.
    pub fn encode(&self) -> Vec<u8> {
        tlv::encode(0x6F, &self.public_key_info)
    }
}
