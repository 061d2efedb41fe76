//! ISO/IEC 19794-2 on-card minutiae formats (the minutiae data object of a
//! biometric data template on a smart card), normal and compact size.
//!
//! * Normal size, 5 bytes per minutia: type (2 bits) and X (14 bits), two
//!   reserved bits and Y (14 bits), both in units of 0.01 mm; angle in
//!   units of 360/256 degrees.
//! * Compact size, 3 bytes per minutia: X and Y in units of 0.1 mm (one
//!   byte each), type (2 bits) and angle (6 bits, units of 360/64 degrees).
//!
//! Only the minutiae data object's value is coded here; the surrounding
//! BER-TLV of ISO/IEC 7816-11 belongs to the card layer.

use super::bytes::{Reader, Writer};
use super::error::FormatError;
use super::record::MinutiaKind;
use serde::Serialize;

/// Which on-card format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CardFormat {
    /// 5 bytes per minutia, 0.01 mm coordinates, 8-bit angle.
    Normal,
    /// 3 bytes per minutia, 0.1 mm coordinates, 6-bit angle.
    Compact,
}

impl CardFormat {
    /// Bytes per minutia.
    pub fn minutia_len(self) -> usize {
        match self {
            CardFormat::Normal => 5,
            CardFormat::Compact => 3,
        }
    }
}

/// A minutia as an on-card format stores it (units of that format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CardMinutia {
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// X in 0.01 mm (normal) or 0.1 mm (compact).
    pub x: u16,
    /// Y in 0.01 mm (normal) or 0.1 mm (compact).
    pub y: u16,
    /// Angle in 360/256 (normal) or 360/64 (compact) degree units.
    pub angle: u8,
}

/// Parses the value of an on-card minutiae data object.
pub fn parse_card(data: &[u8], format: CardFormat) -> Result<Vec<CardMinutia>, FormatError> {
    let n = format.minutia_len();
    if !data.len().is_multiple_of(n) {
        return Err(FormatError::BadLength {
            offset: 0,
            field: "card minutiae data",
            declared: data.len() as u64,
            detail: "not a whole number of minutiae",
        });
    }
    let mut r = Reader::new(data);
    let mut out = Vec::with_capacity(data.len() / n);
    while r.remaining() > 0 {
        let off = r.pos();
        out.push(match format {
            CardFormat::Normal => {
                let xw = r.u16("card minutia x")?;
                let yw = r.u16("card minutia y")?;
                CardMinutia {
                    kind: MinutiaKind::from_code((xw >> 14) as u8, off)?,
                    x: xw & 0x3fff,
                    y: yw & 0x3fff,
                    angle: r.u8("card minutia angle")?,
                }
            }
            CardFormat::Compact => {
                let x = u16::from(r.u8("card minutia x")?);
                let y = u16::from(r.u8("card minutia y")?);
                let ta = r.u8("card minutia type/angle")?;
                CardMinutia {
                    kind: MinutiaKind::from_code(ta >> 6, off + 2)?,
                    x,
                    y,
                    angle: ta & 0x3f,
                }
            }
        });
    }
    Ok(out)
}

/// Encodes minutiae as the value of an on-card minutiae data object.
pub fn encode_card(minutiae: &[CardMinutia], format: CardFormat) -> Result<Vec<u8>, FormatError> {
    let mut w = Writer::default();
    for m in minutiae {
        match format {
            CardFormat::Normal => {
                if m.x > 0x3fff || m.y > 0x3fff {
                    return Err(FormatError::Unencodable {
                        field: "card minutia coordinate",
                        value: u64::from(m.x.max(m.y)),
                    });
                }
                w.u16((u16::from(m.kind.code()) << 14) | m.x);
                w.u16(m.y);
                w.u8(m.angle);
            }
            CardFormat::Compact => {
                let x = u8::try_from(m.x).map_err(|_| FormatError::Unencodable {
                    field: "compact card minutia x",
                    value: u64::from(m.x),
                })?;
                let y = u8::try_from(m.y).map_err(|_| FormatError::Unencodable {
                    field: "compact card minutia y",
                    value: u64::from(m.y),
                })?;
                if m.angle > 63 {
                    return Err(FormatError::Unencodable {
                        field: "compact card minutia angle",
                        value: u64::from(m.angle),
                    });
                }
                w.u8(x);
                w.u8(y);
                w.u8((m.kind.code() << 6) | m.angle);
            }
        }
    }
    Ok(w.buf)
}
