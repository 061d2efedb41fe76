//! ISO/IEC 19794-2:2011 finger minutiae record format (version "030").
//!
//! Layout: a 15-byte general header (`FMR\0`, `"030\0"`, 4-byte record
//! length, 2-byte number of representations, certification flag), then per
//! finger representation: 4-byte representation length, capture date-time
//! (9 bytes), capture device technology (1), vendor (2) and type (2),
//! quality records (count, then 5 bytes each: score, vendor, algorithm),
//! certification records when the flag is set (count, then 3 bytes each:
//! authority, scheme), finger position, representation number, X/Y
//! resolution, impression type, image width and height, minutia field
//! length (4 bits: 5 or 6) and ridge ending type (4 bits), minutiae count,
//! minutiae, and extended data whose block lengths include the block header.

use super::bytes::{fit, Reader, Writer};
use super::error::FormatError;
use super::iso2005::check_magic;
use super::record::{
    read_extended, read_minutia, write_extended, write_minutia, BlockLength, ExtendedBlock,
    RecordMinutia,
};
use serde::Serialize;

/// Magic and version bytes of an ISO/IEC 19794-2:2011 record.
pub const MAGIC_2011: [u8; 8] = *b"FMR\x00030\x00";

/// Capture date and time (UTC) of a representation; 0xFF/0xFFFF fields mean "not given".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaptureDateTime {
    /// Year.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=59.
    pub second: u8,
    /// Millisecond 0..=999.
    pub millisecond: u16,
}

/// A quality record: a score from an identified algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QualityRecord {
    /// Score 0..=100, 255 = failed.
    pub score: u8,
    /// Vendor of the quality algorithm.
    pub vendor: u16,
    /// Quality algorithm identifier.
    pub algorithm: u16,
}

/// A certification record (present when the general header's flag is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CertificationRecord {
    /// Certification authority.
    pub authority: u16,
    /// Certification scheme.
    pub scheme: u8,
}

/// One finger representation of an ISO/IEC 19794-2:2011 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Representation {
    /// When it was captured.
    pub capture_datetime: CaptureDateTime,
    /// Capture device technology identifier (0 = unknown).
    pub device_technology: u8,
    /// Capture device vendor.
    pub device_vendor: u16,
    /// Capture device type.
    pub device_type: u16,
    /// Quality records.
    pub quality_records: Vec<QualityRecord>,
    /// Certification records (only encoded when the record's flag is set).
    pub certifications: Vec<CertificationRecord>,
    /// Finger position code.
    pub position: u8,
    /// Representation (view) number.
    pub representation_number: u8,
    /// Horizontal resolution in pixels per centimetre.
    pub resolution_x: u16,
    /// Vertical resolution in pixels per centimetre.
    pub resolution_y: u16,
    /// Impression type.
    pub impression_type: u8,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Ridge ending type: 0 valley skeleton bifurcation, 1 ridge skeleton end.
    pub ending_type: u8,
    /// Whether each minutia carries a quality byte (field length 6, not 5).
    pub minutia_quality: bool,
    /// Minutiae (angles in 360/256-degree units).
    pub minutiae: Vec<RecordMinutia>,
    /// Extended data blocks.
    pub extended: Vec<ExtendedBlock>,
}

/// An ISO/IEC 19794-2:2011 finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Iso2011Record {
    /// Whether representations carry certification records.
    pub certification_flag: bool,
    /// Finger representations.
    pub representations: Vec<Representation>,
}

fn read_representation(r: &mut Reader<'_>, cert: bool) -> Result<Representation, FormatError> {
    let start = r.pos();
    let len = r.u32("representation length")? as usize;
    let body_len = len.checked_sub(4).ok_or(FormatError::BadLength {
        offset: start,
        field: "representation length",
        declared: len as u64,
        detail: "less than its own 4-byte length field",
    })?;
    if body_len > r.remaining() {
        return Err(FormatError::BadLength {
            offset: start,
            field: "representation length",
            declared: len as u64,
            detail: "more than the bytes left in the record",
        });
    }
    let mut b = r.sub(body_len, "representation")?;
    let capture_datetime = CaptureDateTime {
        year: b.u16("capture year")?,
        month: b.u8("capture month")?,
        day: b.u8("capture day")?,
        hour: b.u8("capture hour")?,
        minute: b.u8("capture minute")?,
        second: b.u8("capture second")?,
        millisecond: b.u16("capture millisecond")?,
    };
    let device_technology = b.u8("capture device technology")?;
    let device_vendor = b.u16("capture device vendor")?;
    let device_type = b.u16("capture device type")?;
    let nq = b.u8("quality record count")?;
    let mut quality_records = Vec::with_capacity(usize::from(nq));
    for _ in 0..nq {
        quality_records.push(QualityRecord {
            score: b.u8("quality score")?,
            vendor: b.u16("quality vendor")?,
            algorithm: b.u16("quality algorithm")?,
        });
    }
    let mut certifications = Vec::new();
    if cert {
        let nc = b.u8("certification record count")?;
        for _ in 0..nc {
            certifications.push(CertificationRecord {
                authority: b.u16("certification authority")?,
                scheme: b.u8("certification scheme")?,
            });
        }
    }
    let position = b.u8("finger position")?;
    let representation_number = b.u8("representation number")?;
    let resolution_x = b.u16("x resolution")?;
    let resolution_y = b.u16("y resolution")?;
    let impression_type = b.u8("impression type")?;
    let width = b.u16("image width")?;
    let height = b.u16("image height")?;
    let fl_off = b.pos();
    let fl = b.u8("minutia field length / ending type")?;
    let minutia_quality = match fl >> 4 {
        5 => false,
        6 => true,
        v => {
            return Err(FormatError::InvalidValue {
                offset: fl_off,
                field: "minutia field length",
                value: u64::from(v),
            })
        }
    };
    let count = b.u8("minutiae count")?;
    let mut minutiae = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        minutiae.push(read_minutia(&mut b, minutia_quality)?);
    }
    let extended = read_extended(&mut b, BlockLength::WithHeader)?;
    if b.remaining() > 0 {
        return Err(FormatError::TrailingBytes {
            offset: b.pos(),
            count: b.remaining(),
        });
    }
    Ok(Representation {
        capture_datetime,
        device_technology,
        device_vendor,
        device_type,
        quality_records,
        certifications,
        position,
        representation_number,
        resolution_x,
        resolution_y,
        impression_type,
        width,
        height,
        ending_type: fl & 0x0f,
        minutia_quality,
        minutiae,
        extended,
    })
}

fn write_representation(w: &mut Writer, p: &Representation, cert: bool) -> Result<(), FormatError> {
    let start = w.len();
    w.u32(0);
    let d = &p.capture_datetime;
    w.u16(d.year);
    w.u8(d.month);
    w.u8(d.day);
    w.u8(d.hour);
    w.u8(d.minute);
    w.u8(d.second);
    w.u16(d.millisecond);
    w.u8(p.device_technology);
    w.u16(p.device_vendor);
    w.u16(p.device_type);
    w.u8(fit(p.quality_records.len(), "quality record count")?);
    for q in &p.quality_records {
        w.u8(q.score);
        w.u16(q.vendor);
        w.u16(q.algorithm);
    }
    if cert {
        w.u8(fit(p.certifications.len(), "certification record count")?);
        for c in &p.certifications {
            w.u16(c.authority);
            w.u8(c.scheme);
        }
    } else if !p.certifications.is_empty() {
        return Err(FormatError::Unencodable {
            field: "certification records without the certification flag",
            value: p.certifications.len() as u64,
        });
    }
    w.u8(p.position);
    w.u8(p.representation_number);
    w.u16(p.resolution_x);
    w.u16(p.resolution_y);
    w.u8(p.impression_type);
    w.u16(p.width);
    w.u16(p.height);
    if p.ending_type > 15 {
        return Err(FormatError::Unencodable {
            field: "ridge ending type",
            value: u64::from(p.ending_type),
        });
    }
    w.u8(if p.minutia_quality { 0x60 } else { 0x50 } | p.ending_type);
    w.u8(fit(p.minutiae.len(), "minutiae count")?);
    for m in &p.minutiae {
        write_minutia(w, m, p.minutia_quality)?;
    }
    write_extended(w, &p.extended, BlockLength::WithHeader)?;
    let len = fit(w.len() - start, "representation length")?;
    w.patch_u32(start, len);
    Ok(())
}

impl Iso2011Record {
    /// Parses a complete record; the declared length must equal the input length.
    pub fn parse(data: &[u8]) -> Result<Self, FormatError> {
        check_magic(data)?;
        let mut r = Reader::new(data);
        let magic = r.bytes(8, "format identifier and version")?;
        if magic != MAGIC_2011 {
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
        let n = r.u16("number of representations")?;
        let cert_off = r.pos();
        let cert = match r.u8("certification flag")? {
            0 => false,
            1 => true,
            v => {
                return Err(FormatError::InvalidValue {
                    offset: cert_off,
                    field: "certification flag",
                    value: u64::from(v),
                })
            }
        };
        let mut representations = Vec::with_capacity(usize::from(n.min(256)));
        for _ in 0..n {
            representations.push(read_representation(&mut r, cert)?);
        }
        if r.remaining() > 0 {
            return Err(FormatError::TrailingBytes {
                offset: r.pos(),
                count: r.remaining(),
            });
        }
        Ok(Iso2011Record {
            certification_flag: cert,
            representations,
        })
    }

    /// Encodes the record, computing every length field.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut w = Writer::default();
        w.bytes(&MAGIC_2011);
        w.u32(0);
        w.u16(fit(
            self.representations.len(),
            "number of representations",
        )?);
        w.u8(u8::from(self.certification_flag));
        for p in &self.representations {
            write_representation(&mut w, p, self.certification_flag)?;
        }
        let len = fit(w.len(), "record length")?;
        w.patch_u32(8, len);
        Ok(w.buf)
    }
}

/// Heuristic used to tell an ISO 19794-2:2011 record from an ANSI 378-2009
/// one (same magic): the representation lengths must tile the record.
pub(crate) fn looks_like_2011(data: &[u8]) -> bool {
    let mut r = Reader::new(data);
    let parsed = (|| -> Result<bool, FormatError> {
        r.bytes(8, "magic")?;
        let total = u64::from(r.u32("length")?);
        let n = r.u16("count")?;
        r.u8("flag")?;
        let mut sum = 15u64;
        for _ in 0..n {
            let len = r.u32("rep length")? as usize;
            if len < 34 {
                return Ok(false);
            }
            sum += len as u64;
            r.bytes(len - 4, "rep")?;
        }
        Ok(sum == total)
    })();
    parsed.unwrap_or(false)
}
