//! Logical Data Structure (ICAO 9303 Part 10): EF.COM, DG1, DG2, DG3, DG14, DG15,
//! EF.CardAccess and the EF.SOD wrapper — parse and encode.
//!
//! Biometric payloads (face image, finger templates) are kept in memory only; nothing here
//! writes them anywhere.

use std::collections::BTreeMap;

use const_oid::ObjectIdentifier;
use thiserror::Error;

use super::mrz::{Mrz, MrzError};
use super::tlv::{self, Tlv, TlvError};

pub mod persona;

/// How an LDS file misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LdsError {
    /// The BER-TLV framing is broken.
    #[error("{file}: {source}")]
    Tlv {
        /// Which file was being parsed.
        file: &'static str,
        /// The TLV defect.
        source: TlvError,
    },
    /// The MRZ in DG1 is malformed.
    #[error("DG1: {0}")]
    Mrz(#[from] MrzError),
    /// The file is well framed but its content breaks the structure the standard requires.
    #[error("{file}: bad structure at offset {offset}: {detail}")]
    Structure {
        /// Which file.
        file: &'static str,
        /// Offset of the offending element.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
}

fn tlv_err(file: &'static str) -> impl Fn(TlvError) -> LdsError {
    move |source| LdsError::Tlv { file, source }
}

fn structure(file: &'static str, offset: usize, detail: impl Into<String>) -> LdsError {
    LdsError::Structure {
        file,
        offset,
        detail: detail.into(),
    }
}

/// Elementary files of the eMRTD application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LdsFile {
    /// EF.COM (FID 011E, tag 60).
    Com,
    /// EF.SOD (FID 011D, tag 77).
    Sod,
    /// EF.CardAccess (FID 011C, in the master file; untagged SET).
    CardAccess,
    /// Data group 1–16.
    Dg(u8),
}

impl LdsFile {
    /// The file identifier used by SELECT.
    pub fn fid(self) -> u16 {
        match self {
            LdsFile::Com => 0x011E,
            LdsFile::Sod => 0x011D,
            LdsFile::CardAccess => 0x011C,
            LdsFile::Dg(n) => 0x0100 + u16::from(n),
        }
    }

    /// The short file identifier used by READ BINARY with P1 = 0x80 | SFI.
    pub fn sfi(self) -> u8 {
        match self {
            LdsFile::Com => 0x1E,
            LdsFile::Sod => 0x1D,
            LdsFile::CardAccess => 0x1C,
            LdsFile::Dg(n) => n,
        }
    }

    /// The file from its FID, if it is one of the LDS files.
    pub fn from_fid(fid: u16) -> Option<LdsFile> {
        match fid {
            0x011E => Some(LdsFile::Com),
            0x011D => Some(LdsFile::Sod),
            0x011C => Some(LdsFile::CardAccess),
            0x0101..=0x0110 => Some(LdsFile::Dg((fid - 0x0100) as u8)),
            _ => None,
        }
    }

    /// The outer tag of the file's content (EF.CardAccess has none of its own: 0x31, a SET).
    pub fn tag(self) -> u8 {
        match self {
            LdsFile::Com => 0x60,
            LdsFile::Sod => 0x77,
            LdsFile::CardAccess => 0x31,
            LdsFile::Dg(n) => dg_tag(n).unwrap_or(0),
        }
    }
}

/// The outer tag of data group `n` (1–16).
pub fn dg_tag(n: u8) -> Option<u8> {
    const TAGS: [u8; 16] = [
        0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
        0x70,
    ];
    TAGS.get(usize::from(n).checked_sub(1)?).copied()
}

/// The data-group number for an outer tag.
pub fn dg_number(tag: u8) -> Option<u8> {
    (1..=16).find(|n| dg_tag(*n) == Some(tag))
}

/// EF.COM: LDS version, Unicode version and the list of data groups present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfCom {
    /// LDS version as 4 digits, e.g. `0107` (tag 5F01).
    pub lds_version: String,
    /// Unicode version as 6 digits, e.g. `040000` (tag 5F36).
    pub unicode_version: String,
    /// Data-group numbers present (from the tag list, tag 5C).
    pub data_groups: Vec<u8>,
}

impl EfCom {
    /// Parses EF.COM.
    pub fn parse(data: &[u8]) -> Result<EfCom, LdsError> {
        const F: &str = "EF.COM";
        let top = Tlv::parse_exact(data, 0x60).map_err(tlv_err(F))?;
        let text = |tag: u32| -> Result<String, LdsError> {
            let t = top.require(tag, F).map_err(tlv_err(F))?;
            String::from_utf8(t.value.to_vec())
                .map_err(|_| structure(F, t.offset, format!("tag {tag:X} is not text")))
        };
        let list = top.require(0x5C, F).map_err(tlv_err(F))?;
        let data_groups = list
            .value
            .iter()
            .enumerate()
            .map(|(i, t)| {
                dg_number(*t).ok_or_else(|| {
                    structure(
                        F,
                        list.value_offset() + i,
                        format!("{t:02X} is not a data-group tag"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(EfCom {
            lds_version: text(0x5F01)?,
            unicode_version: text(0x5F36)?,
            data_groups,
        })
    }

    /// Encodes EF.COM.
    pub fn encode(&self) -> Vec<u8> {
        let tags: Vec<u8> = self.data_groups.iter().filter_map(|n| dg_tag(*n)).collect();
        tlv::encode_constructed(
            0x60,
            &[
                tlv::encode(0x5F01, self.lds_version.as_bytes()),
                tlv::encode(0x5F36, self.unicode_version.as_bytes()),
                tlv::encode(0x5C, &tags),
            ],
        )
    }
}

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

fn u16_value(file: &'static str, t: &Tlv<'_>) -> Result<u16, LdsError> {
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
fn parse_biometric_group(
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

fn encode_biometric_group(outer_tag: u32, templates: &[BiometricTemplate]) -> Vec<u8> {
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

/// One face image of an ISO/IEC 19794-5 (2005) facial record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceImage {
    /// Gender code (0 unspecified, 1 male, 2 female, 0xFF unknown).
    pub gender: u8,
    /// Eye colour code.
    pub eye_colour: u8,
    /// Hair colour code.
    pub hair_colour: u8,
    /// 24-bit property mask.
    pub property_mask: u32,
    /// Expression code.
    pub expression: u16,
    /// Pose angles yaw, pitch, roll (encoded).
    pub pose_angles: [u8; 3],
    /// Pose angle uncertainties.
    pub pose_uncertainty: [u8; 3],
    /// Feature points, 8 bytes each, kept encoded.
    pub feature_points: Vec<[u8; 8]>,
    /// Face image type (0 basic, 1 full frontal, 2 token frontal).
    pub face_image_type: u8,
    /// Image data type (0 JPEG, 1 JPEG 2000).
    pub image_data_type: u8,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Image colour space.
    pub colour_space: u8,
    /// Source type.
    pub source_type: u8,
    /// Device type.
    pub device_type: u16,
    /// Quality.
    pub quality: u16,
    /// The encoded image (JPEG / JPEG 2000), memory only.
    pub image: Vec<u8>,
}

/// An ISO/IEC 19794-5 facial record: general header + face images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacialRecord {
    /// Version bytes from the general header (normally `010\0`).
    pub version: [u8; 4],
    /// The face images.
    pub images: Vec<FaceImage>,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    file: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LdsError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        match end {
            Some(end) => {
                let s = self.data.get(self.pos..end).unwrap_or_default();
                self.pos = end;
                Ok(s)
            }
            None => Err(structure(
                self.file,
                self.pos,
                format!(
                    "{what} needs {n} bytes, {} left",
                    self.data.len().saturating_sub(self.pos)
                ),
            )),
        }
    }
    fn u8(&mut self, what: &str) -> Result<u8, LdsError> {
        Ok(self.take(1, what)?.first().copied().unwrap_or(0))
    }
    fn u16(&mut self, what: &str) -> Result<u16, LdsError> {
        let b = self.take(2, what)?;
        Ok(b.iter().fold(0u16, |a, x| (a << 8) | u16::from(*x)))
    }
    fn u24(&mut self, what: &str) -> Result<u32, LdsError> {
        let b = self.take(3, what)?;
        Ok(b.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x)))
    }
    fn u32(&mut self, what: &str) -> Result<u32, LdsError> {
        let b = self.take(4, what)?;
        Ok(b.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x)))
    }
    fn arr3(&mut self, what: &str) -> Result<[u8; 3], LdsError> {
        let b = self.take(3, what)?;
        Ok([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
            b.get(2).copied().unwrap_or(0),
        ])
    }
}

impl FacialRecord {
    /// Parses an ISO/IEC 19794-5 record (the DG2 biometric data block).
    pub fn parse(data: &[u8]) -> Result<FacialRecord, LdsError> {
        const F: &str = "DG2 face record";
        let mut r = Reader {
            data,
            pos: 0,
            file: F,
        };
        if r.take(4, "format identifier")? != b"FAC\0" {
            return Err(structure(F, 0, "format identifier is not FAC\\0"));
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(r.take(4, "version")?);
        let record_len = r.u32("record length")? as usize;
        if record_len != data.len() {
            return Err(structure(
                F,
                8,
                format!(
                    "record length {record_len} but {} bytes present",
                    data.len()
                ),
            ));
        }
        let count = r.u16("number of images")?;
        let mut images = Vec::new();
        for _ in 0..count {
            let start = r.pos;
            let block_len = r.u32("facial record data length")? as usize;
            let n_points = r.u16("number of feature points")?;
            let gender = r.u8("gender")?;
            let eye_colour = r.u8("eye colour")?;
            let hair_colour = r.u8("hair colour")?;
            let property_mask = r.u24("property mask")?;
            let expression = r.u16("expression")?;
            let pose_angles = r.arr3("pose angles")?;
            let pose_uncertainty = r.arr3("pose uncertainty")?;
            let mut feature_points = Vec::new();
            for _ in 0..n_points {
                let mut p = [0u8; 8];
                p.copy_from_slice(r.take(8, "feature point")?);
                feature_points.push(p);
            }
            let face_image_type = r.u8("face image type")?;
            let image_data_type = r.u8("image data type")?;
            let width = r.u16("width")?;
            let height = r.u16("height")?;
            let colour_space = r.u8("colour space")?;
            let source_type = r.u8("source type")?;
            let device_type = r.u16("device type")?;
            let quality = r.u16("quality")?;
            let header_len = r.pos - start;
            let image_len = block_len.checked_sub(header_len).ok_or_else(|| {
                structure(
                    F,
                    start,
                    format!("data block length {block_len} is too small"),
                )
            })?;
            let image = r.take(image_len, "image data")?.to_vec();
            images.push(FaceImage {
                gender,
                eye_colour,
                hair_colour,
                property_mask,
                expression,
                pose_angles,
                pose_uncertainty,
                feature_points,
                face_image_type,
                image_data_type,
                width,
                height,
                colour_space,
                source_type,
                device_type,
                quality,
                image,
            });
        }
        if r.pos != data.len() {
            return Err(structure(F, r.pos, "bytes after the last face image"));
        }
        Ok(FacialRecord { version, images })
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for im in &self.images {
            let block_len = 20 + 8 * im.feature_points.len() + 12 + im.image.len();
            body.extend_from_slice(&(block_len as u32).to_be_bytes());
            body.extend_from_slice(&(im.feature_points.len() as u16).to_be_bytes());
            body.extend_from_slice(&[im.gender, im.eye_colour, im.hair_colour]);
            body.extend_from_slice(&im.property_mask.to_be_bytes()[1..]);
            body.extend_from_slice(&im.expression.to_be_bytes());
            body.extend_from_slice(&im.pose_angles);
            body.extend_from_slice(&im.pose_uncertainty);
            for p in &im.feature_points {
                body.extend_from_slice(p);
            }
            body.extend_from_slice(&[im.face_image_type, im.image_data_type]);
            body.extend_from_slice(&im.width.to_be_bytes());
            body.extend_from_slice(&im.height.to_be_bytes());
            body.extend_from_slice(&[im.colour_space, im.source_type]);
            body.extend_from_slice(&im.device_type.to_be_bytes());
            body.extend_from_slice(&im.quality.to_be_bytes());
            body.extend_from_slice(&im.image);
        }
        let mut out = Vec::with_capacity(14 + body.len());
        out.extend_from_slice(b"FAC\0");
        out.extend_from_slice(&self.version);
        out.extend_from_slice(&((14 + body.len()) as u32).to_be_bytes());
        out.extend_from_slice(&(self.images.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

/// DG2: encoded face(s), each a CBEFF template holding an ISO/IEC 19794-5 record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dg2 {
    /// The CBEFF templates (header + raw 19794-5 record).
    pub templates: Vec<BiometricTemplate>,
}

impl Dg2 {
    /// Parses DG2 (CBEFF structure only; see [`Dg2::faces`]).
    pub fn parse(data: &[u8]) -> Result<Dg2, LdsError> {
        Ok(Dg2 {
            templates: parse_biometric_group("DG2", data, 0x75)?,
        })
    }

    /// Parses the ISO/IEC 19794-5 record of every template.
    pub fn faces(&self) -> Result<Vec<FacialRecord>, LdsError> {
        self.templates
            .iter()
            .map(|t| FacialRecord::parse(&t.data))
            .collect()
    }

    /// A DG2 with one face record (JPEG) in the usual ICAO header.
    pub fn from_face(record: &FacialRecord) -> Dg2 {
        Dg2 {
            templates: vec![BiometricTemplate {
                header: BiometricHeader {
                    version: Some(vec![0x01, 0x01]),
                    biometric_type: Some(vec![BIOMETRIC_TYPE_FACE]),
                    subtype: None,
                    format_owner: FORMAT_OWNER_SC37,
                    format_type: FORMAT_TYPE_FACE,
                    ..Default::default()
                },
                data: record.encode(),
            }],
        }
    }

    /// Encodes DG2.
    pub fn encode(&self) -> Vec<u8> {
        encode_biometric_group(0x75, &self.templates)
    }
}

/// Which finger an enrolled template belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Finger {
    /// Right thumb.
    RightThumb,
    /// Left thumb.
    LeftThumb,
    /// Another finger, by CBEFF subtype.
    Other(u8),
}

impl Finger {
    /// CBEFF subtype byte.
    pub fn subtype(self) -> u8 {
        match self {
            Finger::RightThumb => SUBTYPE_RIGHT_THUMB,
            Finger::LeftThumb => SUBTYPE_LEFT_THUMB,
            Finger::Other(s) => s,
        }
    }

    fn from_subtype(s: u8) -> Finger {
        match s {
            SUBTYPE_RIGHT_THUMB => Finger::RightThumb,
            SUBTYPE_LEFT_THUMB => Finger::LeftThumb,
            other => Finger::Other(other),
        }
    }
}

/// DG3 of the resident ID-card profile: enrolled thumbs as CBEFF-wrapped ISO/IEC 19794-2
/// minutiae records (opaque bytes here; the fingerprint module parses them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dg3 {
    /// (finger, 19794-2 record) in file order.
    pub fingers: Vec<(Finger, Vec<u8>)>,
}

impl Dg3 {
    /// Parses DG3; every template must be a finger record of SC 37.
    pub fn parse(data: &[u8]) -> Result<Dg3, LdsError> {
        let templates = parse_biometric_group("DG3", data, 0x63)?;
        let mut fingers = Vec::new();
        for t in templates {
            if t.header.format_owner != FORMAT_OWNER_SC37 {
                return Err(structure(
                    "DG3",
                    0,
                    format!(
                        "format owner {:04X} is not ISO SC 37",
                        t.header.format_owner
                    ),
                ));
            }
            if let Some(bt) = &t.header.biometric_type {
                if bt.last() != Some(&BIOMETRIC_TYPE_FINGER) {
                    return Err(structure("DG3", 0, "biometric type is not finger"));
                }
            }
            let subtype = t
                .header
                .subtype
                .ok_or_else(|| structure("DG3", 0, "finger template without subtype (82)"))?;
            fingers.push((Finger::from_subtype(subtype), t.data));
        }
        Ok(Dg3 { fingers })
    }

    /// Encodes DG3.
    pub fn encode(&self) -> Vec<u8> {
        let templates: Vec<BiometricTemplate> = self
            .fingers
            .iter()
            .map(|(f, data)| BiometricTemplate {
                header: BiometricHeader {
                    version: Some(vec![0x01, 0x01]),
                    biometric_type: Some(vec![BIOMETRIC_TYPE_FINGER]),
                    subtype: Some(f.subtype()),
                    format_owner: FORMAT_OWNER_SC37,
                    format_type: FORMAT_TYPE_FINGER_MINUTIAE,
                    ..Default::default()
                },
                data: data.clone(),
            })
            .collect();
        encode_biometric_group(0x63, &templates)
    }
}

/// Object identifiers used by SecurityInfos.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// bsi-de protocols smartcard: 0.4.0.127.0.7.2.2.
    pub const BSI_PROTOCOLS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2");
    /// id-PACE: 0.4.0.127.0.7.2.2.4.
    pub const PACE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.4");
    /// id-CA: 0.4.0.127.0.7.2.2.3.
    pub const CA: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.3");
    /// id-PK (chip authentication public key): 0.4.0.127.0.7.2.2.1.
    pub const PK: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.1");
    /// id-TA: 0.4.0.127.0.7.2.2.2.
    pub const TA: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.127.0.7.2.2.2");
    /// id-icao-mrtd-security-aaProtocolObject: 2.23.136.1.1.5.
    pub const AA: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.5");
    /// ecdsa-plain-SHA256 (BSI TR-03111): 0.4.0.127.0.7.1.1.4.1.3.
    pub const ECDSA_PLAIN_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.3");
    /// ecdsa-plain-SHA384: 0.4.0.127.0.7.1.1.4.1.4.
    pub const ECDSA_PLAIN_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.4");
    /// ecdsa-plain-SHA512: 0.4.0.127.0.7.1.1.4.1.5.
    pub const ECDSA_PLAIN_SHA512: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.5");
    /// ecdsa-plain-SHA1: 0.4.0.127.0.7.1.1.4.1.1.
    pub const ECDSA_PLAIN_SHA1: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.1");
    /// ecdsa-plain-SHA224: 0.4.0.127.0.7.1.1.4.1.2.
    pub const ECDSA_PLAIN_SHA224: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("0.4.0.127.0.7.1.1.4.1.2");
}

/// PACE key agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KeyAgreement {
    /// Diffie-Hellman over a MODP group.
    Dh,
    /// Elliptic-curve Diffie-Hellman.
    Ecdh,
}

/// PACE mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mapping {
    /// Generic Mapping.
    Generic,
    /// Integrated Mapping.
    Integrated,
    /// Chip Authentication Mapping (ECDH only).
    ChipAuthentication,
}

/// Symmetric cipher of a PACE / CA protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Cipher {
    /// Two-key 3DES, CBC, Retail MAC.
    Des3,
    /// AES-128, CBC, CMAC.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl Cipher {
    fn from_arc(a: u32) -> Option<Cipher> {
        match a {
            1 => Some(Cipher::Des3),
            2 => Some(Cipher::Aes128),
            3 => Some(Cipher::Aes192),
            4 => Some(Cipher::Aes256),
            _ => None,
        }
    }
    fn arc(self) -> u32 {
        match self {
            Cipher::Des3 => 1,
            Cipher::Aes128 => 2,
            Cipher::Aes192 => 3,
            Cipher::Aes256 => 4,
        }
    }
    /// Session key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Des3 | Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }
}

/// A PACE protocol as named by its OID (`id-PACE-<KA>-<mapping>-<cipher>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PaceProtocol {
    /// DH or ECDH.
    pub key_agreement: KeyAgreement,
    /// GM, IM or CAM.
    pub mapping: Mapping,
    /// The cipher.
    pub cipher: Cipher,
}

impl PaceProtocol {
    /// Decodes a PACE protocol OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<PaceProtocol> {
        let arcs: Vec<u32> = o.arcs().collect();
        let prefix: Vec<u32> = oid::PACE.arcs().collect();
        if arcs.len() != prefix.len() + 2 || !arcs.starts_with(&prefix) {
            return None;
        }
        let (ka, mapping) = match arcs.get(prefix.len())? {
            1 => (KeyAgreement::Dh, Mapping::Generic),
            2 => (KeyAgreement::Ecdh, Mapping::Generic),
            3 => (KeyAgreement::Dh, Mapping::Integrated),
            4 => (KeyAgreement::Ecdh, Mapping::Integrated),
            6 => (KeyAgreement::Ecdh, Mapping::ChipAuthentication),
            _ => return None,
        };
        Some(PaceProtocol {
            key_agreement: ka,
            mapping,
            cipher: Cipher::from_arc(*arcs.get(prefix.len() + 1)?)?,
        })
    }

    /// The protocol OID.
    pub fn oid(&self) -> ObjectIdentifier {
        let m = match (self.key_agreement, self.mapping) {
            (KeyAgreement::Dh, Mapping::Generic) => 1,
            (KeyAgreement::Ecdh, Mapping::Generic) => 2,
            (KeyAgreement::Dh, Mapping::Integrated) => 3,
            (KeyAgreement::Ecdh, Mapping::Integrated) => 4,
            (_, Mapping::ChipAuthentication) => 6,
        };
        // Appending two small arcs to a valid constant OID cannot fail.
        oid::PACE
            .push_arc(m)
            .and_then(|o| o.push_arc(self.cipher.arc()))
            .unwrap_or(oid::PACE)
    }

    /// The ICAO name, e.g. `PACE-ECDH-GM-AES-128`.
    pub fn name(&self) -> String {
        let ka = match self.key_agreement {
            KeyAgreement::Dh => "DH",
            KeyAgreement::Ecdh => "ECDH",
        };
        let m = match self.mapping {
            Mapping::Generic => "GM",
            Mapping::Integrated => "IM",
            Mapping::ChipAuthentication => "CAM",
        };
        let c = match self.cipher {
            Cipher::Des3 => "3DES",
            Cipher::Aes128 => "AES-128",
            Cipher::Aes192 => "AES-192",
            Cipher::Aes256 => "AES-256",
        };
        format!("PACE-{ka}-{m}-{c}")
    }
}

/// Standardized PACE domain parameters (ICAO 9303 Part 11, 9.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StandardizedDomain {
    /// 0: 1024-bit MODP group with 160-bit prime order subgroup.
    Modp1024_160,
    /// 1: 2048-bit MODP group with 224-bit prime order subgroup.
    Modp2048_224,
    /// 2: 2048-bit MODP group with 256-bit prime order subgroup.
    Modp2048_256,
    /// 8: NIST P-192.
    P192,
    /// 9: brainpoolP192r1.
    BrainpoolP192r1,
    /// 10: NIST P-224.
    P224,
    /// 11: brainpoolP224r1.
    BrainpoolP224r1,
    /// 12: NIST P-256.
    P256,
    /// 13: brainpoolP256r1.
    BrainpoolP256r1,
    /// 14: brainpoolP320r1.
    BrainpoolP320r1,
    /// 15: NIST P-384.
    P384,
    /// 16: brainpoolP384r1.
    BrainpoolP384r1,
    /// 17: brainpoolP512r1.
    BrainpoolP512r1,
    /// 18: NIST P-521.
    P521,
}

impl StandardizedDomain {
    /// The domain for a parameterId.
    pub fn from_id(id: u32) -> Option<StandardizedDomain> {
        use StandardizedDomain::*;
        Some(match id {
            0 => Modp1024_160,
            1 => Modp2048_224,
            2 => Modp2048_256,
            8 => P192,
            9 => BrainpoolP192r1,
            10 => P224,
            11 => BrainpoolP224r1,
            12 => P256,
            13 => BrainpoolP256r1,
            14 => BrainpoolP320r1,
            15 => P384,
            16 => BrainpoolP384r1,
            17 => BrainpoolP512r1,
            18 => P521,
            _ => return None,
        })
    }
}

/// PACEInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceInfo {
    /// Protocol (from the OID).
    pub protocol: PaceProtocol,
    /// Version (must be 2).
    pub version: u32,
    /// Domain parameter id (standardized id, or a reference to PACEDomainParameterInfo).
    pub parameter_id: Option<u32>,
}

impl PaceInfo {
    /// The standardized domain, if the parameter id names one.
    pub fn domain(&self) -> Option<StandardizedDomain> {
        self.parameter_id.and_then(StandardizedDomain::from_id)
    }
}

/// One SecurityInfo of EF.CardAccess, EF.CardSecurity or DG14.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityInfo {
    /// PACEInfo.
    Pace(PaceInfo),
    /// ActiveAuthenticationInfo: the signature algorithm AA uses with an EC key.
    ActiveAuthentication {
        /// Version (1).
        version: u32,
        /// Signature algorithm OID (e.g. ecdsa-plain-SHA256).
        signature_algorithm: ObjectIdentifier,
    },
    /// ChipAuthenticationInfo.
    ChipAuthentication {
        /// The protocol OID (id-CA-...).
        protocol: ObjectIdentifier,
        /// Version.
        version: u32,
        /// Key id.
        key_id: Option<u32>,
    },
    /// ChipAuthenticationPublicKeyInfo.
    ChipAuthenticationPublicKey {
        /// The protocol OID (id-PK-DH / id-PK-ECDH).
        protocol: ObjectIdentifier,
        /// SubjectPublicKeyInfo, DER.
        public_key: Vec<u8>,
        /// Key id.
        key_id: Option<u32>,
    },
    /// TerminalAuthenticationInfo.
    TerminalAuthentication {
        /// Version.
        version: u32,
    },
    /// A SecurityInfo this code does not interpret, kept whole.
    Other {
        /// The protocol OID.
        protocol: ObjectIdentifier,
        /// The whole encoded SecurityInfo.
        raw: Vec<u8>,
    },
}

fn der_uint(file: &'static str, t: &Tlv<'_>) -> Result<u32, LdsError> {
    if t.tag.0 != 0x02 {
        return Err(structure(
            file,
            t.offset,
            format!("expected INTEGER, found {}", t.tag),
        ));
    }
    let v = t.value;
    if v.is_empty() || v.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(structure(file, t.offset, "INTEGER is empty or negative"));
    }
    let trimmed: &[u8] = match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    if trimmed.len() > 4 {
        return Err(structure(file, t.offset, "INTEGER too large"));
    }
    Ok(trimmed.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
}

fn encode_uint(v: u32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    let mut body = bytes.get(skip..).unwrap_or_default().to_vec();
    if body.first().is_some_and(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    tlv::encode(0x02, &body)
}

fn encode_oid(o: &ObjectIdentifier) -> Vec<u8> {
    tlv::encode(0x06, o.as_bytes())
}

fn is_under(o: &ObjectIdentifier, prefix: &ObjectIdentifier, extra: usize) -> bool {
    let a: Vec<u32> = o.arcs().collect();
    let p: Vec<u32> = prefix.arcs().collect();
    a.len() == p.len() + extra && a.starts_with(&p)
}

impl SecurityInfo {
    fn parse_one(file: &'static str, t: &Tlv<'_>) -> Result<SecurityInfo, LdsError> {
        let e = tlv_err(file);
        if t.tag.0 != 0x30 {
            return Err(structure(file, t.offset, "SecurityInfo is not a SEQUENCE"));
        }
        let kids = t.children().map_err(&e)?;
        let (first, rest) = kids
            .split_first()
            .ok_or_else(|| structure(file, t.offset, "empty SecurityInfo"))?;
        if first.tag.0 != 0x06 {
            return Err(structure(
                file,
                first.offset,
                "SecurityInfo has no protocol OID",
            ));
        }
        let protocol = ObjectIdentifier::from_bytes(first.value)
            .map_err(|err| structure(file, first.offset, format!("bad OID: {err}")))?;
        let int_at = |i: usize| -> Result<Option<u32>, LdsError> {
            rest.get(i).map(|x| der_uint(file, x)).transpose()
        };
        let need_int = |i: usize, what: &str| -> Result<u32, LdsError> {
            int_at(i)?.ok_or_else(|| structure(file, t.offset, format!("missing {what}")))
        };
        if let Some(p) = PaceProtocol::from_oid(&protocol) {
            return Ok(SecurityInfo::Pace(PaceInfo {
                protocol: p,
                version: need_int(0, "PACE version")?,
                parameter_id: int_at(1)?,
            }));
        }
        if protocol == oid::AA {
            let alg = rest.get(1).filter(|x| x.tag.0 == 0x06).ok_or_else(|| {
                structure(
                    file,
                    t.offset,
                    "ActiveAuthenticationInfo lacks its algorithm",
                )
            })?;
            return Ok(SecurityInfo::ActiveAuthentication {
                version: need_int(0, "AA version")?,
                signature_algorithm: ObjectIdentifier::from_bytes(alg.value)
                    .map_err(|err| structure(file, alg.offset, format!("bad OID: {err}")))?,
            });
        }
        if is_under(&protocol, &oid::CA, 2) {
            return Ok(SecurityInfo::ChipAuthentication {
                protocol,
                version: need_int(0, "CA version")?,
                key_id: int_at(1)?,
            });
        }
        if is_under(&protocol, &oid::PK, 1) {
            let key = rest
                .first()
                .filter(|x| x.tag.0 == 0x30)
                .ok_or_else(|| structure(file, t.offset, "CA public key info lacks its key"))?;
            return Ok(SecurityInfo::ChipAuthenticationPublicKey {
                protocol,
                public_key: key.raw.to_vec(),
                key_id: int_at(1)?,
            });
        }
        if protocol == oid::TA {
            return Ok(SecurityInfo::TerminalAuthentication {
                version: need_int(0, "TA version")?,
            });
        }
        Ok(SecurityInfo::Other {
            protocol,
            raw: t.raw.to_vec(),
        })
    }

    /// Encodes this SecurityInfo (DER).
    pub fn encode(&self) -> Vec<u8> {
        let parts = match self {
            SecurityInfo::Pace(p) => {
                let mut v = vec![encode_oid(&p.protocol.oid()), encode_uint(p.version)];
                if let Some(id) = p.parameter_id {
                    v.push(encode_uint(id));
                }
                v
            }
            SecurityInfo::ActiveAuthentication {
                version,
                signature_algorithm,
            } => vec![
                encode_oid(&oid::AA),
                encode_uint(*version),
                encode_oid(signature_algorithm),
            ],
            SecurityInfo::ChipAuthentication {
                protocol,
                version,
                key_id,
            } => {
                let mut v = vec![encode_oid(protocol), encode_uint(*version)];
                if let Some(k) = key_id {
                    v.push(encode_uint(*k));
                }
                v
            }
            SecurityInfo::ChipAuthenticationPublicKey {
                protocol,
                public_key,
                key_id,
            } => {
                let mut v = vec![encode_oid(protocol), public_key.clone()];
                if let Some(k) = key_id {
                    v.push(encode_uint(*k));
                }
                v
            }
            SecurityInfo::TerminalAuthentication { version } => {
                vec![encode_oid(&oid::TA), encode_uint(*version)]
            }
            SecurityInfo::Other { raw, .. } => return raw.clone(),
        };
        tlv::encode_constructed(0x30, &parts)
    }
}

/// A SET OF SecurityInfo (EF.CardAccess, EF.CardSecurity content, DG14 content).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityInfos {
    /// The infos in file order.
    pub infos: Vec<SecurityInfo>,
}

impl SecurityInfos {
    fn parse_set(file: &'static str, data: &[u8]) -> Result<SecurityInfos, LdsError> {
        let set = Tlv::parse_exact(data, 0x31).map_err(tlv_err(file))?;
        let infos = set
            .children()
            .map_err(tlv_err(file))?
            .iter()
            .map(|t| SecurityInfo::parse_one(file, t))
            .collect::<Result<_, _>>()?;
        Ok(SecurityInfos { infos })
    }

    /// Parses EF.CardAccess.
    pub fn parse_card_access(data: &[u8]) -> Result<SecurityInfos, LdsError> {
        Self::parse_set("EF.CardAccess", data)
    }

    /// Parses DG14 (tag 6E around the SET).
    pub fn parse_dg14(data: &[u8]) -> Result<SecurityInfos, LdsError> {
        let top = Tlv::parse_exact(data, 0x6E).map_err(tlv_err("DG14"))?;
        Self::parse_set("DG14", top.value)
    }

    /// Encodes the SET (EF.CardAccess content). DER requires SET OF elements sorted by encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = self.infos.iter().map(|i| i.encode()).collect();
        parts.sort();
        tlv::encode_constructed(0x31, &parts)
    }

    /// Encodes as DG14.
    pub fn encode_dg14(&self) -> Vec<u8> {
        tlv::encode(0x6E, &self.encode())
    }

    /// The PACEInfos, in file order.
    pub fn pace(&self) -> Vec<&PaceInfo> {
        self.infos
            .iter()
            .filter_map(|i| match i {
                SecurityInfo::Pace(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// The AA signature algorithm from ActiveAuthenticationInfo, if present.
    pub fn active_authentication_algorithm(&self) -> Option<ObjectIdentifier> {
        self.infos.iter().find_map(|i| match i {
            SecurityInfo::ActiveAuthentication {
                signature_algorithm,
                ..
            } => Some(*signature_algorithm),
            _ => None,
        })
    }
}

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

/// The content of a chip's files, keyed by FID: what a reader got, or what a virtual chip serves.
pub type ChipFiles = BTreeMap<u16, Vec<u8>>;

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn card_access_g1() {
        let ca = hex!("31143012060A04007F0007020204020202010202010D");
        let infos = SecurityInfos::parse_card_access(&ca).unwrap();
        let pace = infos.pace();
        assert_eq!(pace.len(), 1);
        let p = pace[0];
        assert_eq!(p.protocol.name(), "PACE-ECDH-GM-AES-128");
        assert_eq!(p.protocol.key_agreement, KeyAgreement::Ecdh);
        assert_eq!(p.protocol.mapping, Mapping::Generic);
        assert_eq!(p.protocol.cipher, Cipher::Aes128);
        assert_eq!(p.version, 2);
        assert_eq!(p.parameter_id, Some(13));
        assert_eq!(p.domain(), Some(StandardizedDomain::BrainpoolP256r1));
        assert_eq!(infos.encode(), ca.to_vec());
    }

    #[test]
    fn card_access_truncations_never_panic() {
        let ca = hex!("31143012060A04007F0007020204020202010202010D");
        for cut in 0..ca.len() {
            assert!(SecurityInfos::parse_card_access(&ca[..cut]).is_err());
        }
    }

    #[test]
    fn pace_oids_round_trip() {
        for ka in [1u32, 2, 3, 4, 6] {
            for c in 1..=4 {
                let o = oid::PACE.push_arc(ka).unwrap().push_arc(c).unwrap();
                let p = PaceProtocol::from_oid(&o).unwrap();
                assert_eq!(p.oid(), o);
            }
        }
        assert!(PaceProtocol::from_oid(&oid::PACE).is_none());
        assert!(
            PaceProtocol::from_oid(&oid::PACE.push_arc(5).unwrap().push_arc(1).unwrap()).is_none()
        );
    }

    #[test]
    fn ef_com_specimen() {
        // ICAO 9303 Part 10 example: LDS 1.7, Unicode 4.0.0, DG1 and DG2.
        let data = hex!("60 14 5F01 04 30313037 5F36 06 303430303030 5C 02 6175");
        let com = EfCom::parse(&data).unwrap();
        assert_eq!(com.lds_version, "0107");
        assert_eq!(com.unicode_version, "040000");
        assert_eq!(com.data_groups, vec![1, 2]);
        assert_eq!(com.encode(), data.to_vec());
        let bad = hex!("60 14 5F01 04 30313037 5F36 06 303430303030 5C 02 6199");
        assert!(matches!(
            EfCom::parse(&bad),
            Err(LdsError::Structure { offset: 21, .. })
        ));
    }

    #[test]
    fn dg1_specimen_round_trip() {
        let mrz = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C<3UTO6908061F9406236ZE184226B<<<<<14";
        let data = tlv::encode_constructed(0x61, &[tlv::encode(0x5F1F, mrz.as_bytes())]);
        let dg1 = Dg1::parse(&data).unwrap();
        assert_eq!(dg1.mrz.document_number, "L898902C");
        assert_eq!(dg1.encode().unwrap(), data);
        // A flipped MRZ byte is caught by the check digits.
        let mut bad = data.clone();
        let n = bad.len();
        bad[n - 3] = b'9';
        assert!(matches!(Dg1::parse(&bad), Err(LdsError::Mrz(_))));
    }

    fn face() -> FacialRecord {
        FacialRecord {
            version: *b"010\0",
            images: vec![FaceImage {
                gender: 2,
                eye_colour: 1,
                hair_colour: 2,
                property_mask: 0x000001,
                expression: 1,
                pose_angles: [0, 0, 0],
                pose_uncertainty: [0, 0, 0],
                feature_points: vec![[1, 2, 3, 4, 5, 6, 7, 8]],
                face_image_type: 1,
                image_data_type: 0,
                width: 480,
                height: 640,
                colour_space: 1,
                source_type: 2,
                device_type: 0,
                quality: 0,
                image: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9],
            }],
        }
    }

    #[test]
    fn dg2_round_trip_and_header() {
        let rec = face();
        let dg2 = Dg2::from_face(&rec);
        let enc = dg2.encode();
        let back = Dg2::parse(&enc).unwrap();
        assert_eq!(back, dg2);
        assert_eq!(back.templates[0].header.format_type, FORMAT_TYPE_FACE);
        let faces = back.faces().unwrap();
        assert_eq!(faces[0], rec);
        assert_eq!(faces[0].images[0].width, 480);
        // The 19794-5 record starts with FAC\0 and declares its own length.
        let raw = rec.encode();
        assert_eq!(&raw[..4], b"FAC\0");
        assert_eq!(
            u32::from_be_bytes(raw[8..12].try_into().unwrap()) as usize,
            raw.len()
        );
    }

    #[test]
    fn dg2_structural_errors() {
        let rec = face();
        let mut raw = rec.encode();
        raw[0] = b'X';
        assert!(FacialRecord::parse(&raw).is_err());
        let raw = rec.encode();
        for cut in 0..raw.len() {
            assert!(FacialRecord::parse(&raw[..cut]).is_err());
        }
        let enc = Dg2::from_face(&rec).encode();
        for cut in 0..enc.len() {
            assert!(Dg2::parse(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn dg3_round_trip() {
        let dg3 = Dg3 {
            fingers: vec![
                (Finger::RightThumb, b"FMR\0 020 right".to_vec()),
                (Finger::LeftThumb, b"FMR\0 020 left".to_vec()),
            ],
        };
        let enc = dg3.encode();
        assert_eq!(enc[0], 0x63);
        let back = Dg3::parse(&enc).unwrap();
        assert_eq!(back, dg3);
        for cut in 0..enc.len() {
            assert!(Dg3::parse(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn dg3_count_mismatch_is_reported() {
        let dg3 = Dg3 {
            fingers: vec![(Finger::RightThumb, vec![1, 2, 3])],
        };
        let mut enc = dg3.encode();
        // Patch the instance count (02 01 01) to 2.
        let pos = enc
            .windows(3)
            .position(|w| w == [0x02, 0x01, 0x01])
            .unwrap();
        enc[pos + 2] = 2;
        assert!(matches!(Dg3::parse(&enc), Err(LdsError::Structure { .. })));
    }

    #[test]
    fn dg14_and_dg15_round_trip() {
        let infos = SecurityInfos {
            infos: vec![
                SecurityInfo::Pace(PaceInfo {
                    protocol: PaceProtocol {
                        key_agreement: KeyAgreement::Ecdh,
                        mapping: Mapping::Generic,
                        cipher: Cipher::Aes256,
                    },
                    version: 2,
                    parameter_id: Some(12),
                }),
                SecurityInfo::ActiveAuthentication {
                    version: 1,
                    signature_algorithm: oid::ECDSA_PLAIN_SHA256,
                },
                SecurityInfo::TerminalAuthentication { version: 1 },
            ],
        };
        let enc = infos.encode_dg14();
        let back = SecurityInfos::parse_dg14(&enc).unwrap();
        assert_eq!(back.infos.len(), 3);
        for i in &infos.infos {
            assert!(back.infos.contains(i));
        }
        assert_eq!(
            back.active_authentication_algorithm(),
            Some(oid::ECDSA_PLAIN_SHA256)
        );
        let dg15 = Dg15 {
            public_key_info: hex!("3003 0201 05").to_vec(),
        };
        assert_eq!(Dg15::parse(&dg15.encode()).unwrap(), dg15);
        assert!(Dg15::parse(&hex!("6F 03 040105")).is_err());
    }

    #[test]
    fn file_ids() {
        assert_eq!(LdsFile::Dg(1).fid(), 0x0101);
        assert_eq!(LdsFile::Dg(15).sfi(), 15);
        assert_eq!(LdsFile::from_fid(0x011D), Some(LdsFile::Sod));
        assert_eq!(LdsFile::Dg(2).tag(), 0x75);
        assert_eq!(dg_number(0x6F), Some(15));
        assert_eq!(dg_tag(0), None);
        assert_eq!(dg_tag(17), None);
    }
}
