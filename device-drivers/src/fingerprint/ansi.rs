//! ANSI INCITS 378-2004 and 378-2009 finger minutiae records (read only).
//!
//! 2004: `FMR\0`, `" 20\0"` (some writers put `"020\0"`), record length in 2 bytes (or 0x0000 followed by
//! 4 bytes), CBEFF product identifier (owner, type), capture equipment
//! (4 compliance bits, 12-bit ID), image size and resolution, view count,
//! reserved byte; views laid out as in ISO 19794-2:2005 but with extended
//! block lengths that count the 4-byte block header. Angles are in units of
//! 2 degrees.
//!
//! 2009: `FMR\0`, `"030\0"`, 4-byte record length, CBEFF product identifier,
//! capture equipment compliance (1 byte, top bit = certified) and ID
//! (2 bytes), view count, reserved byte; each view carries finger position,
//! view number, impression type, quality, quality algorithm vendor and ID,
//! its own image size and resolution, minutiae count, minutiae and
//! extended data.
//!
//! Readers of ANSI records only require the declared length not to exceed
//! the data (writers are known to leave padding after the last view).

use super::bytes::Reader;
use super::error::FormatError;
use super::iso2005::{check_magic, read_view, FingerView};
use super::record::{read_extended, read_minutia, BlockLength, ExtendedBlock, RecordMinutia};
use serde::Serialize;

/// An ANSI INCITS 378-2004 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ansi2004Record {
    /// CBEFF product identifier owner (vendor).
    pub vendor_id: u16,
    /// CBEFF product identifier type (vendor subformat).
    pub subformat: u16,
    /// Capture equipment compliance bits (4 bits; top bit = certified).
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
    /// Finger views (angles in 2-degree units).
    pub views: Vec<FingerView>,
}

/// One finger view of an ANSI INCITS 378-2009 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ansi2009View {
    /// Finger position code.
    pub position: u8,
    /// View number.
    pub view_number: u8,
    /// Impression type.
    pub impression_type: u8,
    /// Finger quality.
    pub quality: u8,
    /// Vendor of the quality algorithm.
    pub quality_vendor: u16,
    /// Quality algorithm identifier.
    pub quality_algorithm: u16,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution in pixels per centimetre.
    pub resolution_x: u16,
    /// Vertical resolution in pixels per centimetre.
    pub resolution_y: u16,
    /// Minutiae (angles in 2-degree units).
    pub minutiae: Vec<RecordMinutia>,
    /// Extended data blocks.
    pub extended: Vec<ExtendedBlock>,
}

/// An ANSI INCITS 378-2009 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ansi2009Record {
    /// CBEFF product identifier owner (vendor).
    pub vendor_id: u16,
    /// CBEFF product identifier type (vendor subformat).
    pub subformat: u16,
    /// Whether the capture equipment is certified.
    pub equipment_certified: bool,
    /// Capture equipment ID.
    pub equipment_id: u16,
    /// Finger views.
    pub views: Vec<Ansi2009View>,
}

fn check_declared(declared: u64, actual: usize) -> Result<(), FormatError> {
    if declared > actual as u64 {
        return Err(FormatError::LengthMismatch {
            declared,
            actual: actual as u64,
        });
    }
    Ok(())
}

impl Ansi2004Record {
    /// Parses an ANSI INCITS 378-2004 record.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_magic(data)?;
        let mut r = Reader::new(data);
        let magic = r.bytes(8, "format identifier and version")?;
        if magic != b"FMR\0 20\0" && magic != b"FMR\x00020\x00" {
            return Err(FormatError::UnsupportedVersion {
                found: magic.get(4..).unwrap_or_default().to_vec(),
            });
        }
        let short = r.u16("record length")?;
        let declared = if short == 0 {
            u64::from(r.u32("record length (long form)")?)
        } else {
            u64::from(short)
        };
        check_declared(declared, data.len())?;
        let vendor_id = r.u16("CBEFF product owner")?;
        let subformat = r.u16("CBEFF product type")?;
        let eq = r.u16("capture equipment")?;
        let width = r.u16("image width")?;
        let height = r.u16("image height")?;
        let resolution_x = r.u16("x resolution")?;
        let resolution_y = r.u16("y resolution")?;
        let nviews = r.u8("number of finger views")?;
        let _reserved = r.u8("reserved")?;
        let mut views = Vec::with_capacity(usize::from(nviews));
        for _ in 0..nviews {
            views.push(read_view(&mut r, BlockLength::WithHeader)?);
        }
        Ok(Ansi2004Record {
            vendor_id,
            subformat,
            equipment_compliance: (eq >> 12) as u8,
            equipment_id: eq & 0x0fff,
            width,
            height,
            resolution_x,
            resolution_y,
            views,
        })
    }
}

impl Ansi2009Record {
    /// Parses an ANSI INCITS 378-2009 record.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_magic(data)?;
        let mut r = Reader::new(data);
        let magic = r.bytes(8, "format identifier and version")?;
        if magic != b"FMR\x00030\x00" {
            return Err(FormatError::UnsupportedVersion {
                found: magic.get(4..).unwrap_or_default().to_vec(),
            });
        }
        let declared = u64::from(r.u32("record length")?);
        check_declared(declared, data.len())?;
        let vendor_id = r.u16("CBEFF product owner")?;
        let subformat = r.u16("CBEFF product type")?;
        let compliance = r.u8("capture equipment compliance")?;
        let equipment_id = r.u16("capture equipment ID")?;
        let nviews = r.u8("number of finger views")?;
        let _reserved = r.u8("reserved")?;
        let mut views = Vec::with_capacity(usize::from(nviews));
        for _ in 0..nviews {
            let position = r.u8("finger position")?;
            let view_number = r.u8("view number")?;
            let impression_type = r.u8("impression type")?;
            let quality = r.u8("finger quality")?;
            let quality_vendor = r.u16("quality algorithm vendor")?;
            let quality_algorithm = r.u16("quality algorithm")?;
            let width = r.u16("image width")?;
            let height = r.u16("image height")?;
            let resolution_x = r.u16("x resolution")?;
            let resolution_y = r.u16("y resolution")?;
            let count = r.u8("minutiae count")?;
            let mut minutiae = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                minutiae.push(read_minutia(&mut r, true)?);
            }
            let extended = read_extended(&mut r, BlockLength::WithHeader)?;
            views.push(Ansi2009View {
                position,
                view_number,
                impression_type,
                quality,
                quality_vendor,
                quality_algorithm,
                width,
                height,
                resolution_x,
                resolution_y,
                minutiae,
                extended,
            });
        }
        Ok(Ansi2009Record {
            vendor_id,
            subformat,
            equipment_certified: compliance & 0x80 != 0,
            equipment_id,
            views,
        })
    }
}
