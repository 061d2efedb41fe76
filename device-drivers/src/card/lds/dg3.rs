//! DG3: enrolled fingers (the resident ID-card profile's thumbs).

use super::*;

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
