//! ISO/IEC 19794-2:2005 finger minutiae record format (version " 20").
//!
//! Layout: a 24-byte header (`FMR\0`, `" 20\0"`, 4-byte record length,
//! capture equipment compliance (4 bits) and ID (12 bits), image width,
//! height, X/Y resolution in pixels per centimetre, number of finger views,
//! a reserved byte), then per view a 4-byte header (finger position; view
//! number (4 bits) and impression type (4 bits); finger quality; minutiae
//! count), 6 bytes per minutia and an extended data area whose block
//! lengths count the block body only.

use super::bytes::{fit, Reader, Writer};
use super::error::FormatError;
use super::record::{
    read_extended, read_minutia, write_extended, write_minutia, BlockLength, ExtendedBlock,
    RecordMinutia,
};
use serde::Serialize;

/// Magic and version bytes of an ISO/IEC 19794-2:2005 record.
pub const MAGIC_2005: [u8; 8] = *b"FMR\0 20\0";

/// One finger view of an ISO/IEC 19794-2:2005 or ANSI INCITS 378-2004 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerView {
    /// Finger position code (0 unknown, 1 right thumb ... 6 left thumb, 7 left index ...).
    pub position: u8,
    /// View number (4 bits).
    pub view_number: u8,
    /// Impression type (4 bits): 0 live plain, 1 live rolled, 2 non-live plain, ...
    pub impression_type: u8,
    /// Finger quality 0..=100.
    pub quality: u8,
    /// Minutiae in record order.
    pub minutiae: Vec<RecordMinutia>,
    /// Extended data blocks.
    pub extended: Vec<ExtendedBlock>,
}

/// An ISO/IEC 19794-2:2005 finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Iso2005Record {
    /// Capture equipment compliance bits (4 bits; non-zero = certified).
    pub equipment_compliance: u8,
    /// Capture equipment ID (12 bits).
    pub equipment_id: u16,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution in pixels per centimetre.
    pub resolution_x: u16,
    /// Vertical resolution in pixels per centimetre.
    pub resolution_y: u16,
    /// Finger views.
    pub views: Vec<FingerView>,
}

pub(crate) fn read_view(r: &mut Reader<'_>, conv: BlockLength) -> Result<FingerView, FormatError> {
    let position = r.u8("finger position")?;
    let vi = r.u8("view number / impression type")?;
    let quality = r.u8("finger quality")?;
    let count = r.u8("minutiae count")?;
    let mut minutiae = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        minutiae.push(read_minutia(r, true)?);
    }
    let extended = read_extended(r, conv)?;
    Ok(FingerView {
        position,
        view_number: vi >> 4,
        impression_type: vi & 0x0f,
        quality,
        minutiae,
        extended,
    })
}

pub(crate) fn write_view(
    w: &mut Writer,
    v: &FingerView,
    conv: BlockLength,
) -> Result<(), FormatError> {
    if v.view_number > 15 || v.impression_type > 15 {
        return Err(FormatError::Unencodable {
            field: "view number / impression type",
            value: u64::from(v.view_number.max(v.impression_type)),
        });
    }
    w.u8(v.position);
    w.u8((v.view_number << 4) | v.impression_type);
    w.u8(v.quality);
    w.u8(fit(v.minutiae.len(), "minutiae count")?);
    for m in &v.minutiae {
        write_minutia(w, m, true)?;
    }
    write_extended(w, &v.extended, conv)
}

pub(crate) fn check_magic(data: &[u8]) -> Result<(), FormatError> {
    match data.get(..4) {
        Some(b"FMR\0") => Ok(()),
        _ => Err(FormatError::BadMagic {
            found: data.iter().take(4).copied().collect(),
        }),
    }
}

impl Iso2005Record {
    /// Parses a complete record; the declared length must equal the input length.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_magic(data)?;
        let mut r = Reader::new(data);
        let magic = r.bytes(8, "format identifier and version")?;
        if magic != MAGIC_2005 {
            return Err(FormatError::UnsupportedVersion {
                found: magic.get(4..).unwrap_or_default().to_vec(),
            });
        }
        let declared = r.u32("record length")?;
        if u64::from(declared) != data.len() as u64 {
            return Err(FormatError::LengthMismatch {
                declared: u64::from(declared),
                actual: data.len() as u64,
            });
        }
        let eq = r.u16("capture equipment")?;
        let width = r.u16("image width")?;
        let height = r.u16("image height")?;
        let resolution_x = r.u16("x resolution")?;
        let resolution_y = r.u16("y resolution")?;
        let nviews = r.u8("number of finger views")?;
        let _reserved = r.u8("reserved")?;
        let mut views = Vec::with_capacity(usize::from(nviews));
        for _ in 0..nviews {
            views.push(read_view(&mut r, BlockLength::BodyOnly)?);
        }
        if r.remaining() > 0 {
            return Err(FormatError::TrailingBytes {
                offset: r.pos(),
                count: r.remaining(),
            });
        }
        Ok(Iso2005Record {
            equipment_compliance: (eq >> 12) as u8,
            equipment_id: eq & 0x0fff,
            width,
            height,
            resolution_x,
            resolution_y,
            views,
        })
    }

    /// Encodes the record, computing the length field.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        if self.equipment_compliance > 15 || self.equipment_id > 0x0fff {
            return Err(FormatError::Unencodable {
                field: "capture equipment",
                value: u64::from(self.equipment_id),
            });
        }
        let mut w = Writer::default();
        w.bytes(&MAGIC_2005);
        w.u32(0);
        w.u16((u16::from(self.equipment_compliance) << 12) | self.equipment_id);
        w.u16(self.width);
        w.u16(self.height);
        w.u16(self.resolution_x);
        w.u16(self.resolution_y);
        w.u8(fit(self.views.len(), "number of finger views")?);
        w.u8(0);
        for v in &self.views {
            write_view(&mut w, v, BlockLength::BodyOnly)?;
        }
        let len = fit(w.len(), "record length")?;
        w.patch_u32(8, len);
        Ok(w.buf)
    }
}
