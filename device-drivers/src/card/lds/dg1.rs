//! DG1: the MRZ as stored on the chip.

use super::*;

/// DG1: the MRZ as stored on the chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dg1 {
    /// The parsed MRZ (every check digit verified).
    pub mrz: Mrz,
}

impl Dg1 {
    /// Parses DG1 (tag 61 → 5F1F).
    pub fn parse(data: &[u8]) -> Result<Dg1, LdsError> {
        const F: &str = "DG1";
        let top = Tlv::parse_exact(data, 0x61).map_err(tlv_err(F))?;
        let m = top.require(0x5F1F, F).map_err(tlv_err(F))?;
        let text = std::str::from_utf8(m.value)
            .map_err(|_| structure(F, m.value_offset(), "MRZ is not ASCII"))?;
        Ok(Dg1 {
            mrz: Mrz::parse(text)?,
        })
    }

    /// Encodes DG1.
    pub fn encode(&self) -> Result<Vec<u8>, LdsError> {
        let s = self.mrz.to_mrz_string()?;
        Ok(tlv::encode_constructed(
            0x61,
            &[tlv::encode(0x5F1F, s.as_bytes())],
        ))
    }
}
