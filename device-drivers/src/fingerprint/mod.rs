//! Fingerprint minutiae templates: codecs for ISO/IEC 19794-2 (2005, 2011,
//! on-card normal and compact) and ANSI INCITS 378 (2004, 2009, read), a
//! common in-memory [`Template`], and the 1:1 [`matcher`].

pub mod ansi;
mod bytes;
pub mod card;
pub mod error;
pub mod eval;
pub mod iso2005;
pub mod iso2011;
pub mod matcher;
#[cfg(unix)]
pub mod pty;
pub mod record;
pub mod serial;
pub mod sfm;
pub mod synth;
#[cfg(test)]
mod tests;

pub use ansi::{Ansi2004Record, Ansi2009Record, Ansi2009View};
pub use card::{CardFormat, CardMinutia};
pub use error::FormatError;
pub use iso2005::{FingerView, Iso2005Record};
pub use iso2011::{Iso2011Record, Representation};
pub use record::{ExtendedBlock, MinutiaKind, RecordMinutia};

use serde::Serialize;

/// A parsed finger minutiae record of any supported format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Record {
    /// ISO/IEC 19794-2:2005.
    Iso2005(Iso2005Record),
    /// ISO/IEC 19794-2:2011.
    Iso2011(Iso2011Record),
    /// ANSI INCITS 378-2004.
    Ansi2004(Ansi2004Record),
    /// ANSI INCITS 378-2009.
    Ansi2009(Ansi2009Record),
}

impl Record {
    /// Detects the format from the header and parses the record.
    ///
    /// `FMR\0 20\0` is ISO 19794-2:2005 when bytes 8..12 hold a 4-byte
    /// length (high half zero, low half at least 24), ANSI 378-2004
    /// otherwise; `FMR\x00030\x00` is ISO 19794-2:2011 when the representation
    /// lengths tile the declared record length, ANSI 378-2009 otherwise.
    pub fn parse(data: &[u8]) -> Result<Record, FormatError> {
        iso2005::check_magic(data)?;
        match data.get(4..8) {
            Some(b" 20\0") => {
                let hi = data.get(8..10).map(|b| u16::from_be_bytes([b[0], b[1]]));
                let lo = data.get(10..12).map(|b| u16::from_be_bytes([b[0], b[1]]));
                match (hi, lo) {
                    (Some(0), Some(lo)) if lo < 24 => {
                        Ansi2004Record::parse(data).map(Record::Ansi2004)
                    }
                    (Some(h), _) if h != 0 => Ansi2004Record::parse(data).map(Record::Ansi2004),
                    _ => Iso2005Record::parse(data).map(Record::Iso2005),
                }
            }
            Some(b"020\0") => Ansi2004Record::parse(data).map(Record::Ansi2004),
            Some(b"030\0") => {
                if iso2011::looks_like_2011(data) {
                    Iso2011Record::parse(data).map(Record::Iso2011)
                } else {
                    Ansi2009Record::parse(data).map(Record::Ansi2009)
                }
            }
            other => Err(FormatError::UnsupportedVersion {
                found: other
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| data.get(4..).unwrap_or_default().to_vec()),
            }),
        }
    }
}

/// A minutia in the common in-memory form used for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Minutia {
    /// X in pixels from the left edge.
    pub x: u16,
    /// Y in pixels from the top edge.
    pub y: u16,
    /// Direction in units of 1/256 turn, counter-clockwise from the X axis.
    pub angle: u8,
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// Quality 0..=100 (0 = not reported).
    pub quality: u8,
}

impl Minutia {
    /// Direction in radians, `[0, 2π)`.
    pub fn radians(&self) -> f32 {
        f32::from(self.angle) * (std::f32::consts::TAU / 256.0)
    }
}

/// One finger's minutiae with the image geometry they refer to: the common
/// form every record format converts to and the matcher consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    /// Image width in pixels (0 = unknown).
    pub width: u16,
    /// Image height in pixels (0 = unknown).
    pub height: u16,
    /// Horizontal resolution in pixels per centimetre (0 = unknown, 197 ≈ 500 dpi).
    pub resolution_x: u16,
    /// Vertical resolution in pixels per centimetre.
    pub resolution_y: u16,
    /// Finger position code (0 = unknown).
    pub position: u8,
    /// Finger quality 0..=100.
    pub quality: u8,
    /// The minutiae.
    pub minutiae: Vec<Minutia>,
}

fn from_iso_minutiae(ms: &[RecordMinutia]) -> Vec<Minutia> {
    ms.iter()
        .map(|m| Minutia {
            x: m.x,
            y: m.y,
            angle: m.angle,
            kind: m.kind,
            quality: m.quality,
        })
        .collect()
}

fn from_ansi_minutiae(ms: &[RecordMinutia]) -> Vec<Minutia> {
    ms.iter()
        .map(|m| Minutia {
            x: m.x,
            y: m.y,
            // 2-degree units to 1/256 turn, rounded.
            angle: ((u32::from(m.angle) * 512 + 180) / 360 % 256) as u8,
            kind: m.kind,
            quality: m.quality,
        })
        .collect()
}

impl Template {
    /// Parses a record of any supported format and takes its first finger view.
    pub fn from_bytes(data: &[u8]) -> Result<Template, FormatError> {
        Template::from_record(&Record::parse(data)?)
    }

    /// Takes the first finger view of a parsed record.
    pub fn from_record(rec: &Record) -> Result<Template, FormatError> {
        match rec {
            Record::Iso2005(r) => {
                let v = r.views.first().ok_or(FormatError::NoFingerView)?;
                Ok(Template {
                    width: r.width,
                    height: r.height,
                    resolution_x: r.resolution_x,
                    resolution_y: r.resolution_y,
                    position: v.position,
                    quality: v.quality,
                    minutiae: from_iso_minutiae(&v.minutiae),
                })
            }
            Record::Iso2011(r) => {
                let v = r.representations.first().ok_or(FormatError::NoFingerView)?;
                Ok(Template {
                    width: v.width,
                    height: v.height,
                    resolution_x: v.resolution_x,
                    resolution_y: v.resolution_y,
                    position: v.position,
                    quality: v.quality_records.first().map_or(0, |q| q.score),
                    minutiae: from_iso_minutiae(&v.minutiae),
                })
            }
            Record::Ansi2004(r) => {
                let v = r.views.first().ok_or(FormatError::NoFingerView)?;
                Ok(Template {
                    width: r.width,
                    height: r.height,
                    resolution_x: r.resolution_x,
                    resolution_y: r.resolution_y,
                    position: v.position,
                    quality: v.quality,
                    minutiae: from_ansi_minutiae(&v.minutiae),
                })
            }
            Record::Ansi2009(r) => {
                let v = r.views.first().ok_or(FormatError::NoFingerView)?;
                Ok(Template {
                    width: v.width,
                    height: v.height,
                    resolution_x: v.resolution_x,
                    resolution_y: v.resolution_y,
                    position: v.position,
                    quality: v.quality,
                    minutiae: from_ansi_minutiae(&v.minutiae),
                })
            }
        }
    }

    fn record_minutiae(&self) -> Vec<RecordMinutia> {
        self.minutiae
            .iter()
            .map(|m| RecordMinutia {
                kind: m.kind,
                x: m.x,
                y: m.y,
                angle: m.angle,
                quality: m.quality,
            })
            .collect()
    }

    /// This template as a single-view ISO/IEC 19794-2:2005 record.
    pub fn to_iso2005(&self) -> Iso2005Record {
        Iso2005Record {
            equipment_compliance: 0,
            equipment_id: 0,
            width: self.width,
            height: self.height,
            resolution_x: self.resolution_x,
            resolution_y: self.resolution_y,
            views: vec![FingerView {
                position: self.position,
                view_number: 0,
                impression_type: 0,
                quality: self.quality,
                minutiae: self.record_minutiae(),
                extended: Vec::new(),
            }],
        }
    }

    /// Encodes this template as an ISO/IEC 19794-2:2005 record.
    pub fn to_iso2005_bytes(&self) -> Result<Vec<u8>, FormatError> {
        self.to_iso2005().to_bytes()
    }

    /// This template as a single-representation ISO/IEC 19794-2:2011 record
    /// (capture date and time marked "not given").
    pub fn to_iso2011(&self) -> Iso2011Record {
        Iso2011Record {
            certification_flag: false,
            representations: vec![Representation {
                capture_datetime: iso2011::CaptureDateTime {
                    year: 0xffff,
                    month: 0xff,
                    day: 0xff,
                    hour: 0xff,
                    minute: 0xff,
                    second: 0xff,
                    millisecond: 0xffff,
                },
                device_technology: 0,
                device_vendor: 0,
                device_type: 0,
                quality_records: Vec::new(),
                certifications: Vec::new(),
                position: self.position,
                representation_number: 0,
                resolution_x: self.resolution_x,
                resolution_y: self.resolution_y,
                impression_type: 0,
                width: self.width,
                height: self.height,
                ending_type: 0,
                minutia_quality: true,
                minutiae: self.record_minutiae(),
                extended: Vec::new(),
            }],
        }
    }

    /// Converts to an on-card format (coordinates rescaled from the template's
    /// resolution to the card unit; 197 px/cm assumed when unknown).
    pub fn to_card(&self, format: CardFormat) -> Result<Vec<u8>, FormatError> {
        let (rx, ry) = (
            res_or_default(self.resolution_x),
            res_or_default(self.resolution_y),
        );
        let per_cm = card_units_per_cm(format);
        let ms: Vec<CardMinutia> = self
            .minutiae
            .iter()
            .map(|m| CardMinutia {
                kind: m.kind,
                x: ((u32::from(m.x) * per_cm + rx / 2) / rx).min(u32::from(u16::MAX)) as u16,
                y: ((u32::from(m.y) * per_cm + ry / 2) / ry).min(u32::from(u16::MAX)) as u16,
                angle: match format {
                    CardFormat::Normal => m.angle,
                    CardFormat::Compact => ((u16::from(m.angle) + 2) / 4 % 64) as u8,
                },
            })
            .collect();
        card::encode_card(&ms, format)
    }

    /// Reads an on-card minutiae object; the template's resolution is the
    /// card unit (1000 px/cm for normal, 100 px/cm for compact).
    pub fn from_card(data: &[u8], format: CardFormat) -> Result<Template, FormatError> {
        let ms = card::parse_card(data, format)?;
        let res = card_units_per_cm(format) as u16;
        Ok(Template {
            width: 0,
            height: 0,
            resolution_x: res,
            resolution_y: res,
            position: 0,
            quality: 0,
            minutiae: ms
                .iter()
                .map(|m| Minutia {
                    x: m.x,
                    y: m.y,
                    angle: match format {
                        CardFormat::Normal => m.angle,
                        CardFormat::Compact => m.angle.wrapping_mul(4),
                    },
                    kind: m.kind,
                    quality: 0,
                })
                .collect(),
        })
    }
}

fn res_or_default(r: u16) -> u32 {
    if r == 0 {
        197
    } else {
        u32::from(r)
    }
}

fn card_units_per_cm(format: CardFormat) -> u32 {
    match format {
        CardFormat::Normal => 1000,
        CardFormat::Compact => 100,
    }
}
