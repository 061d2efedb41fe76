//! DG2: the encoded face, an ISO/IEC 19794-5 facial record in a CBEFF template.

use super::*;

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

pub(super) struct Reader<'a> {
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
