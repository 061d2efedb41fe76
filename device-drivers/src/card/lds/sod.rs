//! The EF.SOD wrapper around the CMS ContentInfo (parsed by [`crate::card::pa`]).

use super::*;

/// Strips the EF.SOD wrapper (tag 77) and returns the CMS ContentInfo DER.
pub fn sod_content(data: &[u8]) -> Result<&[u8], LdsError> {
    Ok(Tlv::parse_exact(data, 0x77)
        .map_err(tlv_err("EF.SOD"))?
        .value)
}

/// Wraps a CMS ContentInfo into EF.SOD.
pub fn encode_sod(content_info: &[u8]) -> Vec<u8> {
    tlv::encode(0x77, content_info)
}
