//! CBEFF biometric information templates, the wrapping DG2, DG3 and DG4 share.

use super::*;

/// CBEFF format owner of ISO/IEC JTC 1 SC 37 (biometric data blocks per ISO/IEC 19794).
pub const FORMAT_OWNER_SC37: u16 = 0x0101;
/// CBEFF format type of an ISO/IEC 19794-5 face image record.
pub const FORMAT_TYPE_FACE: u16 = 0x0008;
/// CBEFF format type used by the resident profile for ISO/IEC 19794-2 finger-minutiae records.
pub const FORMAT_TYPE_FINGER_MINUTIAE: u16 = 0x0001;
/// CBEFF biometric type: facial features.
pub const BIOMETRIC_TYPE_FACE: u8 = 0x02;
/// CBEFF biometric type: finger.
pub const BIOMETRIC_TYPE_FINGER: u8 = 0x08;
/// CBEFF biometric subtype: right thumb.
pub const SUBTYPE_RIGHT_THUMB: u8 = 0x05;
/// CBEFF biometric subtype: left thumb.
pub const SUBTYPE_LEFT_THUMB: u8 = 0x06;

/// A CBEFF biometric header template (tag A1), the fields ICAO 9303 uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BiometricHeader {
    /// ICAO header version (tag 80), normally `0101`.
    pub version: Option<Vec<u8>>,
    /// Biometric type (tag 81).
    pub biometric_type: Option<Vec<u8>>,
    /// Biometric subtype (tag 82).
    pub subtype: Option<u8>,
    /// Creation date and time (tag 83, 7 bytes BCD).
    pub creation: Option<Vec<u8>>,
    /// Validity period (tag 85, 8 bytes BCD).
    pub validity: Option<Vec<u8>>,
    /// Creator of the template (tag 86).
    pub creator: Option<Vec<u8>>,
    /// Format owner (tag 87).
    pub format_owner: u16,
    /// Format type (tag 88).
    pub format_type: u16,
}

/// One biometric information template (tag 7F60): header + biometric data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiometricTemplate {
    /// The biometric header template.
    pub header: BiometricHeader,
    /// The biometric data block (tag 5F2E), opaque at this level.
    pub data: Vec<u8>,
}

pub(super) fn u16_value(file: &'static str, t: &Tlv<'_>) -> Result<u16, LdsError> {
    match t.value {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(structure(
            file,
            t.offset,
            format!("tag {} needs 2 bytes", t.tag),
        )),
    }
}

/// Parses a CBEFF biometric information group template inside a data group (DG2/DG3/DG4).
pub(super) fn parse_biometric_group(
    file: &'static str,
    data: &[u8],
    outer_tag: u32,
) -> Result<Vec<BiometricTemplate>, LdsError> {
    let e = tlv_err(file);
    let top = Tlv::parse_exact(data, outer_tag).map_err(&e)?;
    let group = top.require(0x7F61, file).map_err(&e)?;
    let kids = group.children().map_err(&e)?;
    let count_tlv = kids
        .first()
        .filter(|k| k.tag.0 == 0x02)
        .ok_or_else(|| structure(file, group.offset, "no instance count (tag 02)"))?;
    let count = match count_tlv.value {
        [n] => usize::from(*n),
        _ => {
            return Err(structure(
                file,
                count_tlv.offset,
                "instance count not 1 byte",
            ))
        }
    };
    let mut out = Vec::new();
    for bit in kids.iter().skip(1) {
        if bit.tag.0 != 0x7F60 {
            return Err(structure(
                file,
                bit.offset,
                format!("expected 7F60 template, found {}", bit.tag),
            ));
        }
        let parts = bit.children().map_err(&e)?;
        let bht = parts
            .iter()
            .find(|p| (0xA1..=0xAF).contains(&p.tag.0))
            .ok_or_else(|| structure(file, bit.offset, "no biometric header template (A1)"))?;
        let bdb = parts
            .iter()
            .find(|p| p.tag.0 == 0x5F2E || p.tag.0 == 0x7F2E)
            .ok_or_else(|| structure(file, bit.offset, "no biometric data block (5F2E)"))?;
        let mut header = BiometricHeader::default();
        let mut owner = None;
        let mut ftype = None;
        for f in bht.children().map_err(&e)? {
            match f.tag.0 {
                0x80 => header.version = Some(f.value.to_vec()),
                0x81 => header.biometric_type = Some(f.value.to_vec()),
                0x82 => header.subtype = f.value.first().copied(),
                0x83 => header.creation = Some(f.value.to_vec()),
                0x85 => header.validity = Some(f.value.to_vec()),
                0x86 => header.creator = Some(f.value.to_vec()),
                0x87 => owner = Some(u16_value(file, &f)?),
                0x88 => ftype = Some(u16_value(file, &f)?),
                _ => {}
            }
        }
        header.format_owner =
            owner.ok_or_else(|| structure(file, bht.offset, "no format owner (87)"))?;
        header.format_type =
            ftype.ok_or_else(|| structure(file, bht.offset, "no format type (88)"))?;
        out.push(BiometricTemplate {
            header,
            data: bdb.value.to_vec(),
        });
    }
    if out.len() != count {
        return Err(structure(
            file,
            count_tlv.offset,
            format!("instance count says {count}, found {}", out.len()),
        ));
    }
    Ok(out)
}

pub(super) fn encode_biometric_group(outer_tag: u32, templates: &[BiometricTemplate]) -> Vec<u8> {
    let mut kids = vec![tlv::encode(0x02, &[templates.len() as u8])];
    for t in templates {
        let h = &t.header;
        let mut hf = Vec::new();
        if let Some(v) = &h.version {
            hf.push(tlv::encode(0x80, v));
        }
        if let Some(v) = &h.biometric_type {
            hf.push(tlv::encode(0x81, v));
        }
        if let Some(v) = h.subtype {
            hf.push(tlv::encode(0x82, &[v]));
        }
        if let Some(v) = &h.creation {
            hf.push(tlv::encode(0x83, v));
        }
        if let Some(v) = &h.validity {
            hf.push(tlv::encode(0x85, v));
        }
        if let Some(v) = &h.creator {
            hf.push(tlv::encode(0x86, v));
        }
        hf.push(tlv::encode(0x87, &h.format_owner.to_be_bytes()));
        hf.push(tlv::encode(0x88, &h.format_type.to_be_bytes()));
        kids.push(tlv::encode_constructed(
            0x7F60,
            &[
                tlv::encode_constructed(0xA1, &hf),
                tlv::encode(0x5F2E, &t.data),
            ],
        ));
    }
    tlv::encode_constructed(outer_tag, &[tlv::encode_constructed(0x7F61, &kids)])
}
