//! Seeded test personas: a TD3 passport or a TD1 resident ID card with MRZ, face image,
//! enrolled thumbs (DG3), optional PACE and Active Authentication, and an EF.SOD signed by a
//! test Document Signer — as the file map a virtual chip serves.
//!
//! The same seed always gives the same persona (names, dates, numbers, face bytes, AA key and,
//! with an ECDSA or RSA PKCS#1 DS key, the same SOD bytes).

use std::collections::BTreeMap;

use thiserror::Error;

use super::{
    oid, ChipFiles, Cipher, Dg1, Dg15, Dg2, Dg3, EfCom, FaceImage, FacialRecord, Finger,
    KeyAgreement, LdsError, LdsFile, Mapping, PaceInfo, PaceProtocol, SecurityInfo, SecurityInfos,
};
use crate::card::mrz::{Mrz, MrzError, MrzFormat};
use crate::card::pa::pki::{self, Issued, PkiError, SigningKey};
use crate::card::pa::HashAlg;

/// Why a persona could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PersonaError {
    /// The MRZ fields do not fit.
    #[error("persona MRZ: {0}")]
    Mrz(#[from] MrzError),
    /// An LDS file could not be encoded.
    #[error("persona LDS: {0}")]
    Lds(#[from] LdsError),
    /// Signing failed.
    #[error("persona signing: {0}")]
    Pki(#[from] PkiError),
}

/// Which document the persona carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DocumentKind {
    /// TD3 e-passport (document code `P`).
    Passport,
    /// TD1 resident ID card (document code `IR`) whose DG3 carries the enrolled thumbs.
    ResidentCard,
}

/// A small deterministic generator (SplitMix64) so personas depend only on their seed.
#[derive(Debug, Clone)]
pub struct SeedRng(u64);

impl SeedRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SeedRng {
        SeedRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or("")
    }
}

const SURNAMES: &[&str] = &[
    "ERIKSSON", "CHAN", "WONG", "LEE", "SMITH", "GARCIA", "MULLER", "TANAKA", "OKAFOR", "SILVA",
    "NGUYEN", "KOWALSKI", "HANSEN", "ROSSI", "DUBOIS", "PATEL",
];
const GIVEN_F: &[&str] = &[
    "ANNA", "MARIA", "MEI", "LING", "SOFIA", "AMARA", "YUKI", "CLARA",
];
const GIVEN_M: &[&str] = &[
    "JOHN", "WEI", "KENJI", "LUCAS", "OMAR", "PIOTR", "LARS", "RAJ",
];

/// Builds personas.
#[derive(Debug, Clone)]
pub struct PersonaBuilder {
    seed: u64,
    kind: DocumentKind,
    issuing_state: String,
    thumbs: Vec<(Finger, Vec<u8>)>,
    face_size: usize,
    pace_parameter_id: Option<u32>,
    active_authentication: bool,
    hash: HashAlg,
    mrz: Option<Mrz>,
}

impl PersonaBuilder {
    /// A passport persona for `seed` (PACE ECDH-GM AES-128 on P-256, AA with P-256, ~13 KB face).
    pub fn new(seed: u64) -> PersonaBuilder {
        PersonaBuilder {
            seed,
            kind: DocumentKind::Passport,
            issuing_state: "UTO".into(),
            thumbs: Vec::new(),
            face_size: 13_000,
            pace_parameter_id: Some(12),
            active_authentication: true,
            hash: HashAlg::Sha256,
            mrz: None,
        }
    }

    /// Chooses the document kind.
    pub fn kind(mut self, kind: DocumentKind) -> Self {
        self.kind = kind;
        self
    }

    /// The issuing state (3 letters).
    pub fn issuing_state(mut self, state: &str) -> Self {
        self.issuing_state = state.to_string();
        self
    }

    /// Enrolled finger templates (ISO/IEC 19794-2 records) for DG3.
    pub fn thumbs(mut self, thumbs: Vec<(Finger, Vec<u8>)>) -> Self {
        self.thumbs = thumbs;
        self
    }

    /// Size in bytes of the synthetic JPEG in DG2.
    pub fn face_size(mut self, bytes: usize) -> Self {
        self.face_size = bytes;
        self
    }

    /// PACE standardized domain parameter id (12 = P-256, 13 = brainpoolP256r1, ...), or
    /// `None` for a BAC-only chip without EF.CardAccess.
    pub fn pace(mut self, parameter_id: Option<u32>) -> Self {
        self.pace_parameter_id = parameter_id;
        self
    }

    /// Whether the chip has an Active Authentication key (DG15, P-256, ecdsa-plain-SHA256).
    pub fn active_authentication(mut self, on: bool) -> Self {
        self.active_authentication = on;
        self
    }

    /// Hash algorithm of the SOD.
    pub fn hash(mut self, hash: HashAlg) -> Self {
        self.hash = hash;
        self
    }

    /// Uses this MRZ instead of a generated one.
    pub fn mrz(mut self, mrz: Mrz) -> Self {
        self.kind = match mrz.format {
            MrzFormat::Td3 => DocumentKind::Passport,
            _ => DocumentKind::ResidentCard,
        };
        self.mrz = Some(mrz);
        self
    }

    fn generate_mrz(&self, rng: &mut SeedRng) -> Mrz {
        let female = rng.below(2) == 0;
        let surname = rng.pick(SURNAMES).to_string();
        let given = if female {
            format!("{} {}", rng.pick(GIVEN_F), rng.pick(GIVEN_F))
        } else {
            rng.pick(GIVEN_M).to_string()
        };
        let letters = |rng: &mut SeedRng, n: usize| -> String {
            (0..n)
                .map(|_| char::from(b'A' + rng.below(26) as u8))
                .collect()
        };
        let digits = |rng: &mut SeedRng, n: usize| -> String {
            (0..n)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect()
        };
        let date = |rng: &mut SeedRng, y0: u64, span: u64| {
            format!(
                "{:02}{:02}{:02}",
                (y0 + rng.below(span)) % 100,
                1 + rng.below(12),
                1 + rng.below(28)
            )
        };
        let dob = date(rng, 1950, 56);
        let expiry = date(rng, 2027, 9);
        let (format, code, number, optional) = match self.kind {
            DocumentKind::Passport => (
                MrzFormat::Td3,
                "P".to_string(),
                format!("{}{}", letters(rng, 2), digits(rng, 7)),
                digits(rng, 8),
            ),
            DocumentKind::ResidentCard => (
                MrzFormat::Td1,
                "IR".to_string(),
                format!("R{}", digits(rng, 8)),
                String::new(),
            ),
        };
        Mrz {
            format,
            document_code: code,
            issuing_state: self.issuing_state.clone(),
            document_number: number,
            surname,
            given_names: given,
            nationality: self.issuing_state.clone(),
            date_of_birth: dob,
            sex: if female { 'F' } else { 'M' },
            date_of_expiry: expiry,
            optional_data: optional,
            optional_data_2: String::new(),
        }
    }

    /// Builds the persona and signs its SOD with `ds`.
    pub fn build(&self, ds: &Issued) -> Result<Persona, PersonaError> {
        let mut rng = SeedRng::new(self.seed);
        let mrz = match &self.mrz {
            Some(m) => m.clone(),
            None => self.generate_mrz(&mut rng),
        };
        let can: String = (0..6)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        let face_image = synthetic_jpeg(&mut rng, self.face_size);
        let mut dgs: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        dgs.insert(1, Dg1 { mrz: mrz.clone() }.encode()?);
        let face = FacialRecord {
            version: *b"010\0",
            images: vec![FaceImage {
                gender: match mrz.sex {
                    'M' => 1,
                    'F' => 2,
                    _ => 0,
                },
                eye_colour: 0,
                hair_colour: 0,
                property_mask: 0,
                expression: 1,
                pose_angles: [0, 0, 0],
                pose_uncertainty: [0, 0, 0],
                feature_points: Vec::new(),
                face_image_type: 1,
                image_data_type: 0,
                width: 480,
                height: 600,
                colour_space: 1,
                source_type: 2,
                device_type: 0,
                quality: 0,
                image: face_image.clone(),
            }],
        };
        dgs.insert(2, Dg2::from_face(&face).encode());
        if !self.thumbs.is_empty() {
            dgs.insert(
                3,
                Dg3 {
                    fingers: self.thumbs.clone(),
                }
                .encode(),
            );
        }
        let mut infos = Vec::new();
        let pace_info = self.pace_parameter_id.map(|id| {
            SecurityInfo::Pace(PaceInfo {
                protocol: PaceProtocol {
                    key_agreement: KeyAgreement::Ecdh,
                    mapping: Mapping::Generic,
                    cipher: Cipher::Aes128,
                },
                version: 2,
                parameter_id: Some(id),
            })
        });
        if let Some(p) = &pace_info {
            infos.push(p.clone());
        }
        let aa_key = if self.active_authentication {
            let secret =
                HashAlg::Sha256.digest(&[b"aa-key".as_slice(), &self.seed.to_be_bytes()].concat());
            let key = SigningKey::p256_from_bytes(&secret)?;
            infos.push(SecurityInfo::ActiveAuthentication {
                version: 1,
                signature_algorithm: oid::ECDSA_PLAIN_SHA256,
            });
            dgs.insert(
                15,
                Dg15 {
                    public_key_info: key.public_key().to_spki(),
                }
                .encode(),
            );
            Some(key)
        } else {
            None
        };
        if !infos.is_empty() {
            dgs.insert(14, SecurityInfos { infos }.encode_dg14());
        }
        let sod = pki::sign_sod(ds, self.hash, &dgs)?;
        let mut files = ChipFiles::new();
        files.insert(
            LdsFile::Com.fid(),
            EfCom {
                lds_version: "0107".into(),
                unicode_version: "040000".into(),
                data_groups: dgs.keys().copied().collect(),
            }
            .encode(),
        );
        for (n, bytes) in &dgs {
            files.insert(LdsFile::Dg(*n).fid(), bytes.clone());
        }
        files.insert(LdsFile::Sod.fid(), sod);
        if let Some(p) = pace_info {
            files.insert(
                LdsFile::CardAccess.fid(),
                SecurityInfos { infos: vec![p] }.encode(),
            );
        }
        Ok(Persona {
            mrz,
            can,
            files,
            face_image,
            thumbs: self.thumbs.clone(),
            aa_key,
        })
    }
}

/// A synthetic baseline-JPEG-shaped blob (SOI, JFIF APP0, filler without markers, EOI).
fn synthetic_jpeg(rng: &mut SeedRng, size: usize) -> Vec<u8> {
    let mut out = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    while out.len() + 2 < size {
        let v = rng.next_u64().to_le_bytes();
        for b in v {
            if out.len() + 2 >= size {
                break;
            }
            out.push(if b == 0xFF { 0xFE } else { b });
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A test persona: its MRZ, the chip's files and the secrets a virtual chip needs.
#[derive(Debug, Clone)]
pub struct Persona {
    /// The MRZ printed on the document (and in DG1).
    pub mrz: Mrz,
    /// The 6-digit card access number printed on the document (PACE with CAN).
    pub can: String,
    /// FID → file content, everything the chip serves (EF.COM, DGs, EF.SOD, EF.CardAccess).
    pub files: ChipFiles,
    /// The face image inside DG2.
    pub face_image: Vec<u8>,
    /// The enrolled thumbs inside DG3.
    pub thumbs: Vec<(Finger, Vec<u8>)>,
    /// The Active Authentication private key, when the chip has DG15.
    pub aa_key: Option<SigningKey>,
}

impl Persona {
    /// The ICAO 9303 specimen passport (ERIKSSON, ANNA MARIA, L898902C, born 690806, expires
    /// 940623), signed by `ds`, BAC only (no EF.CardAccess) unless `pace` names a domain.
    pub fn specimen(ds: &Issued, pace: Option<u32>) -> Result<Persona, PersonaError> {
        let mrz = Mrz::parse(
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<14",
        )?;
        PersonaBuilder::new(0x1CA0_9303)
            .mrz(mrz)
            .pace(pace)
            .build(ds)
    }

    /// The data groups (number → file bytes) present on the chip.
    pub fn data_groups(&self) -> BTreeMap<u8, Vec<u8>> {
        self.files
            .iter()
            .filter_map(|(fid, bytes)| match LdsFile::from_fid(*fid) {
                Some(LdsFile::Dg(n)) => Some((n, bytes.clone())),
                _ => None,
            })
            .collect()
    }

    /// One file's content.
    pub fn file(&self, file: LdsFile) -> Option<&[u8]> {
        self.files.get(&file.fid()).map(|v| v.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::pa::pki::{load_test_pki, repo_test_pki_dir};

    #[test]
    fn same_seed_same_persona() {
        let pki = load_test_pki(&repo_test_pki_dir()).unwrap();
        let a = PersonaBuilder::new(7).build(&pki.ds_p256).unwrap();
        let b = PersonaBuilder::new(7).build(&pki.ds_p256).unwrap();
        let c = PersonaBuilder::new(8).build(&pki.ds_p256).unwrap();
        assert_eq!(a.mrz, b.mrz);
        assert_eq!(a.files, b.files);
        assert_ne!(a.mrz, c.mrz);
        assert_eq!(a.can, b.can);
        assert_eq!(a.can.len(), 6);
        assert!(a.can.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn passport_files_parse() {
        let pki = load_test_pki(&repo_test_pki_dir()).unwrap();
        let p = PersonaBuilder::new(42).build(&pki.ds_p256).unwrap();
        assert_eq!(p.mrz.format, MrzFormat::Td3);
        let com = EfCom::parse(p.file(LdsFile::Com).unwrap()).unwrap();
        assert_eq!(com.data_groups, vec![1, 2, 14, 15]);
        let dg1 = Dg1::parse(p.file(LdsFile::Dg(1)).unwrap()).unwrap();
        assert_eq!(dg1.mrz, p.mrz);
        let dg2 = Dg2::parse(p.file(LdsFile::Dg(2)).unwrap()).unwrap();
        assert_eq!(dg2.faces().unwrap()[0].images[0].image, p.face_image);
        let dg2_len = p.file(LdsFile::Dg(2)).unwrap().len();
        assert!((13_000..13_200).contains(&dg2_len), "{dg2_len}");
        let ca = SecurityInfos::parse_card_access(p.file(LdsFile::CardAccess).unwrap()).unwrap();
        assert_eq!(ca.pace()[0].parameter_id, Some(12));
        let dg14 = SecurityInfos::parse_dg14(p.file(LdsFile::Dg(14)).unwrap()).unwrap();
        assert_eq!(
            dg14.active_authentication_algorithm(),
            Some(oid::ECDSA_PLAIN_SHA256)
        );
        assert!(p.aa_key.is_some());
    }

    #[test]
    fn resident_card_carries_thumbs() {
        let pki = load_test_pki(&repo_test_pki_dir()).unwrap();
        let thumbs = vec![
            (Finger::RightThumb, b"FMR\0right".to_vec()),
            (Finger::LeftThumb, b"FMR\0left".to_vec()),
        ];
        let p = PersonaBuilder::new(3)
            .kind(DocumentKind::ResidentCard)
            .thumbs(thumbs.clone())
            .pace(None)
            .active_authentication(false)
            .build(&pki.ds_rsa)
            .unwrap();
        assert_eq!(p.mrz.format, MrzFormat::Td1);
        assert_eq!(p.mrz.document_code, "IR");
        assert!(p.file(LdsFile::CardAccess).is_none());
        assert!(p.file(LdsFile::Dg(15)).is_none());
        let dg3 = Dg3::parse(p.file(LdsFile::Dg(3)).unwrap()).unwrap();
        assert_eq!(dg3.fingers, thumbs);
    }

    #[test]
    fn specimen_persona() {
        let pki = load_test_pki(&repo_test_pki_dir()).unwrap();
        let p = Persona::specimen(&pki.ds_p256, None).unwrap();
        assert_eq!(p.mrz.document_number, "L898902C");
        assert_eq!(
            p.mrz.key().mrz_information().unwrap(),
            "L898902C<369080619406236"
        );
        assert!(p.file(LdsFile::CardAccess).is_none());
    }
}
