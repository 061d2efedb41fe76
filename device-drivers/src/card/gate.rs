//! A whole chip read as the gate needs it: access key from the optically read MRZ, the
//! data groups the decision uses (DG1, DG2, DG3), EF.SOD, passive authentication against
//! the CSCA trust store, and the mapping onto the gate's [`Document`] with the enrolled
//! thumbs of DG3 as [`BiometricTemplate`]s.
//!
//! Synchronous and generic over [`CardTransport`], so the same code runs against a PC/SC
//! reader (on a blocking thread of the async shell) and against an in-process virtual chip
//! in tests. The face image of DG2 is read (it is covered by the SOD) and dropped here:
//! it never leaves this function.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use super::bac::AccessKey;
use super::error::CardError;
use super::lds::{Dg1, Dg3};
use super::mrz::{Mrz, MrzKey};
use super::pa::{self, TrustStore};
use super::reader::{read_document, ReadOptions};
use super::transport::{CardTransport, TransportError};
use crate::devices::{
    BiometricTemplate, ChipRead, DeviceFault, FaultKind, Holder, ReadError, TemplateFormat,
};
use crate::types::{Document, DocumentKind, MrzDate};

/// The MRZ the page reader's OCR produced: the full zone (2 or 3 lines), or only the
/// three fields that key BAC/PACE (`DOCNO,YYMMDD,YYMMDD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcrMrz {
    /// The whole MRZ with valid check digits.
    Full(Mrz),
    /// Document number, date of birth, date of expiry.
    Key(MrzKey),
}

impl OcrMrz {
    /// Parses OCR output: MRZ lines (blank lines and surrounding spaces ignored) or the
    /// `DOCNO,YYMMDD,YYMMDD` key form.
    pub fn parse(text: &str) -> Result<OcrMrz, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("the OCR MRZ is empty".into());
        }
        if t.contains(',') && !t.contains('\n') {
            return MrzKey::parse(t)
                .map(OcrMrz::Key)
                .map_err(|e| format!("the OCR MRZ key is malformed: {e}"));
        }
        let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        Mrz::parse(&lines.join("\n"))
            .map(OcrMrz::Full)
            .map_err(|e| format!("the OCR MRZ is malformed: {e}"))
    }

    /// The BAC/PACE key fields.
    pub fn key(&self) -> MrzKey {
        match self {
            OcrMrz::Full(m) => m.key(),
            OcrMrz::Key(k) => k.clone(),
        }
    }

    /// Whether the chip's MRZ (DG1) is the one read optically: every field for a full
    /// OCR MRZ, the three key fields for a key.
    pub fn matches(&self, chip: &Mrz) -> bool {
        match self {
            OcrMrz::Full(m) => m == chip,
            OcrMrz::Key(k) => *k == chip.key(),
        }
    }
}

/// Data groups the gate reads: DG1 (MRZ), DG2 (face, for PA only), DG3 (thumbs, where the
/// chip lets us).
pub const GATE_DATA_GROUPS: [u8; 3] = [1, 2, 3];

/// The link of a read that can be abandoned: once `cancel` is raised every further APDU
/// fails, so an abandoned read on a blocking thread ends at its next exchange.
pub struct Cancellable<'a, T> {
    inner: T,
    cancel: &'a AtomicBool,
}

impl<'a, T> Cancellable<'a, T> {
    /// Wraps `inner`; raise `cancel` to stop the session.
    pub fn new(inner: T, cancel: &'a AtomicBool) -> Self {
        Cancellable { inner, cancel }
    }
}

impl<T: CardTransport> CardTransport for Cancellable<'_, T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(TransportError::Reader("the read was abandoned".into()));
        }
        self.inner.transmit(apdu)
    }
}

/// How a chip's misbehaviour is recorded: the [`ReadError`] of the device traits.
pub fn read_error(e: CardError) -> ReadError {
    match e {
        CardError::WrongKey { .. } => ReadError::AccessDenied(e.to_string()),
        CardError::BadMac(_) | CardError::SecureMessagingRejected(_) => {
            ReadError::SecureMessaging(e.to_string())
        }
        CardError::TamperedData(_) => ReadError::SecureMessaging(e.to_string()),
        CardError::UnknownAlgorithm(_) => ReadError::Unsupported(e.to_string()),
        CardError::ProtocolViolation(_) | CardError::Status { .. } => {
            ReadError::Protocol(e.to_string())
        }
        CardError::CardRemoved => ReadError::Removed,
        CardError::NoCard => ReadError::NoDocument,
        CardError::Reader(detail) => {
            ReadError::Device(DeviceFault::new(FaultKind::Unavailable, detail))
        }
    }
}

fn document_kind(code: &str) -> DocumentKind {
    match code.chars().next() {
        Some('P') => DocumentKind::Passport,
        Some('I' | 'A' | 'C') => DocumentKind::IdCard,
        _ => DocumentKind::Other,
    }
}

/// The encoding of an ISO/IEC 19794-2 record from its header.
fn template_format(bytes: &[u8]) -> TemplateFormat {
    match bytes.get(..8) {
        Some(h) if h.starts_with(b"FMR\0") && &h[4..8] == b" 20\0" => {
            TemplateFormat::Iso19794_2_2005
        }
        Some(h) if h.starts_with(b"FMR\0") && &h[4..8] == b"030\0" => {
            TemplateFormat::Iso19794_2_2011
        }
        _ => TemplateFormat::IsoCardNormal,
    }
}

/// The BAC/PACE key of an OCR MRZ (an unusable one is the traveller's problem: the
/// chip cannot be opened with it).
pub fn access_key(ocr: &OcrMrz) -> Result<AccessKey, ReadError> {
    super::bac::MrzKey::from_fields(&ocr.key())
        .map(AccessKey::Mrz)
        .map_err(|e| ReadError::AccessDenied(format!("the OCR MRZ cannot key the chip: {e}")))
}

/// What a gate read found besides the document, for logs and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSummary {
    /// `"PACE"` or `"BAC"`.
    pub access_control: &'static str,
    /// Data groups read.
    pub data_groups: Vec<u8>,
    /// The passive-authentication explanation.
    pub passive_auth_detail: String,
    /// APDUs exchanged.
    pub apdus: u64,
}

/// Reads and verifies the chip on `t` for the gate: opens it with the OCR MRZ (or, when
/// the OCR reader read one, the card access number `can`: PACE-CAN), reads
/// [`GATE_DATA_GROUPS`] and EF.SOD, runs passive authentication against `trust` (at
/// `at`), parses DG1 and DG3. A chip whose DG1 or DG3 does not parse is a protocol
/// violation; PA failures are not errors but the document's `passive_auth` status.
pub fn read_for_gate(
    t: &mut dyn CardTransport,
    ocr: &OcrMrz,
    can: Option<&str>,
    trust: Option<&TrustStore>,
    at: SystemTime,
) -> Result<(ChipRead, ReadSummary), ReadError> {
    let opts = ReadOptions {
        data_groups: GATE_DATA_GROUPS.to_vec(),
        ..ReadOptions::default()
    };
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let key = match can {
        Some(c) => AccessKey::can(c).map_err(|e| {
            ReadError::AccessDenied(format!("the OCR CAN cannot key the chip: {e}"))
        })?,
        None => access_key(ocr)?,
    };
    let raw = read_document(t, &key, &opts, &mut rng).map_err(read_error)?;
    let report = pa::verify(raw.ef_sod.as_deref(), &raw.data_groups, trust, at);
    let dg1 = raw
        .data_groups
        .get(&1)
        .ok_or_else(|| ReadError::Protocol("the chip has no readable DG1".into()))?;
    let chip_mrz = Dg1::parse(dg1)
        .map_err(|e| ReadError::Protocol(format!("DG1: {e}")))?
        .mrz;
    let enrolled: Vec<BiometricTemplate> = match raw.data_groups.get(&3) {
        None => Vec::new(),
        Some(b) => Dg3::parse(b)
            .map_err(|e| ReadError::Protocol(format!("DG3: {e}")))?
            .fingers
            .into_iter()
            .map(|(_, t)| BiometricTemplate::new(template_format(&t), t))
            .collect(),
    };
    let date = |field: &str, s: &str| {
        MrzDate::parse(s)
            .ok_or_else(|| ReadError::Protocol(format!("DG1 {field} {s:?} is not a date")))
    };
    let document = Document {
        kind: document_kind(&chip_mrz.document_code),
        issuing_state: chip_mrz.issuing_state.clone(),
        document_number: chip_mrz.document_number.clone(),
        nationality: chip_mrz.nationality.clone(),
        date_of_birth: date("date of birth", &chip_mrz.date_of_birth)?,
        date_of_expiry: date("date of expiry", &chip_mrz.date_of_expiry)?,
        passive_auth: report.status,
        mrz_matches_ocr: ocr.matches(&chip_mrz),
        enrolled_thumbs: u8::try_from(enrolled.len()).unwrap_or(u8::MAX),
    };
    let data_groups: BTreeMap<u8, ()> = raw.data_groups.keys().map(|k| (*k, ())).collect();
    let summary = ReadSummary {
        access_control: raw.access_control.name(),
        data_groups: data_groups.into_keys().collect(),
        passive_auth_detail: report.detail,
        apdus: raw.stats.apdus,
    };
    let holder = Holder::new(chip_mrz.surname.clone(), chip_mrz.given_names.clone());
    Ok((
        ChipRead {
            document,
            holder,
            enrolled,
        },
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::chip::{ChipConfig, Fault, VirtualChip};
    use crate::card::crypto::CipherSuite;
    use crate::card::lds::persona::{DocumentKind as PersonaKind, Persona, PersonaBuilder};
    use crate::card::lds::{Finger, LdsFile};
    use crate::card::pa::pki;
    use crate::card::pace::{PaceCurve, PaceInfo};
    use crate::types::{ChipFailure, PaStatus};
    use rand10::rngs::StdRng;
    use rand10::SeedableRng;

    fn chip(p: &Persona, pace: bool) -> VirtualChip<StdRng> {
        let info = pace.then(|| PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256));
        let AccessKey::Mrz(key) = access_key(&OcrMrz::Full(p.mrz.clone())).unwrap() else {
            unreachable!()
        };
        let mut c = VirtualChip::new(ChipConfig::new(key, info), StdRng::seed_from_u64(3));
        for (fid, bytes) in &p.files {
            if *fid != LdsFile::CardAccess.fid() {
                c.set_file(*fid, bytes.clone());
            }
        }
        c
    }

    fn setup() -> (pki::TestPki, TrustStore) {
        let dir = pki::repo_test_pki_dir();
        let p = pki::load_test_pki(&dir).unwrap();
        let t = TrustStore::load_dir(&dir.join("csca")).unwrap();
        (p, t)
    }

    #[test]
    fn resident_card_reads_valid_with_thumbs() {
        let (p, trust) = setup();
        let persona = PersonaBuilder::new(7)
            .kind(PersonaKind::ResidentCard)
            .thumbs(vec![
                (Finger::RightThumb, b"FMR\0 20\0right".to_vec()),
                (Finger::LeftThumb, b"FMR\0 20\0left".to_vec()),
            ])
            .build(&p.ds_p256)
            .unwrap();
        let ocr = OcrMrz::parse(&persona.mrz.to_lines().unwrap().join("\n")).unwrap();
        for pace in [false, true] {
            let mut c = chip(&persona, pace);
            let (r, s) =
                read_for_gate(&mut c, &ocr, None, Some(&trust), SystemTime::now()).unwrap();
            assert_eq!(r.document.passive_auth, PaStatus::Valid, "{s:?}");
            assert!(r.document.mrz_matches_ocr);
            assert_eq!(r.document.kind, DocumentKind::IdCard);
            assert_eq!(r.document.enrolled_thumbs, 2);
            assert_eq!(
                r.holder,
                Holder::new(persona.mrz.surname.clone(), persona.mrz.given_names.clone())
            );
            assert!(!r.holder.is_empty());
            assert!(!format!("{r:?}").contains(&persona.mrz.surname));
            assert_eq!(r.enrolled[0].format(), TemplateFormat::Iso19794_2_2005);
            assert_eq!(s.access_control, if pace { "PACE" } else { "BAC" });
            assert_eq!(s.data_groups, vec![1, 2, 3]);
        }
    }

    #[test]
    fn tampered_dg2_is_pa_invalid_and_untrusted_without_anchor() {
        let (p, trust) = setup();
        let mut persona = PersonaBuilder::new(8).build(&p.ds_p256).unwrap();
        let ocr = OcrMrz::Key(persona.mrz.key());
        let dg2 = persona.files.get_mut(&LdsFile::Dg(2).fid()).unwrap();
        let last = dg2.len() - 3;
        dg2[last] ^= 0x01;
        let (r, s) = read_for_gate(
            &mut chip(&persona, true),
            &ocr,
            None,
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(r.document.passive_auth, PaStatus::Invalid, "{s:?}");
        assert!(s.passive_auth_detail.contains("DG2") || s.passive_auth_detail.contains("2"));
        let (r, _) = read_for_gate(
            &mut chip(&persona, true),
            &ocr,
            None,
            None,
            SystemTime::now(),
        )
        .unwrap();
        assert_ne!(r.document.passive_auth, PaStatus::Valid);
    }

    #[test]
    fn wrong_mrz_pulled_card_and_ocr_mismatch() {
        let (p, trust) = setup();
        let persona = PersonaBuilder::new(9).pace(None).build(&p.ds_p256).unwrap();
        let mut wrong = persona.mrz.key();
        wrong.date_of_expiry = "010101".into();
        let e = read_for_gate(
            &mut chip(&persona, false),
            &OcrMrz::Key(wrong),
            None,
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ChipFailure::WrongKey, "{e}");
        let mut c = chip(&persona, false);
        c.inject(Fault::PulledAt(8));
        let e = read_for_gate(
            &mut c,
            &OcrMrz::Key(persona.mrz.key()),
            None,
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(e, ReadError::Removed);
        // Same key fields, another name in the OCR: the chip opens but does not match.
        let mut other = persona.mrz.clone();
        other.surname = "SOMEONE".into();
        let (r, _) = read_for_gate(
            &mut chip(&persona, false),
            &OcrMrz::Full(other),
            None,
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap();
        assert!(!r.document.mrz_matches_ocr);
        assert_eq!(r.document.passive_auth, PaStatus::Valid);
    }

    #[test]
    fn a_can_read_by_the_ocr_opens_the_chip_with_pace_can() {
        let (p, trust) = setup();
        let persona = PersonaBuilder::new(12)
            .kind(PersonaKind::ResidentCard)
            .build(&p.ds_p256)
            .unwrap();
        let mut c = chip(&persona, true);
        c.set_can(Some(persona.can.clone()));
        // The MRZ key is wrong on purpose: only the CAN can open the chip.
        let mut wrong = persona.mrz.key();
        wrong.date_of_expiry = "010101".into();
        let (r, s) = read_for_gate(
            &mut c,
            &OcrMrz::Key(wrong.clone()),
            Some(&persona.can),
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(s.access_control, "PACE");
        assert_eq!(r.document.passive_auth, PaStatus::Valid);
        // Another CAN is refused, as a wrong key.
        let mut c = chip(&persona, true);
        c.set_can(Some(persona.can.clone()));
        let other = if persona.can == "000000" {
            "111111"
        } else {
            "000000"
        };
        let e = read_for_gate(
            &mut c,
            &OcrMrz::Key(wrong.clone()),
            Some(other),
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ChipFailure::WrongKey, "{e}");
        // A malformed CAN never reaches the chip.
        let e = read_for_gate(
            &mut chip(&persona, true),
            &OcrMrz::Key(wrong),
            Some("12a"),
            Some(&trust),
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ChipFailure::WrongKey, "{e}");
    }

    #[test]
    fn abandoned_read_stops_at_the_next_apdu() {
        let (p, _) = setup();
        let persona = PersonaBuilder::new(10).build(&p.ds_p256).unwrap();
        let cancel = AtomicBool::new(true);
        let mut t = Cancellable::new(chip(&persona, true), &cancel);
        let e = read_for_gate(
            &mut t,
            &OcrMrz::Key(persona.mrz.key()),
            None,
            None,
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ChipFailure::ReaderFault);
    }

    #[test]
    fn ocr_text_forms() {
        let full = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n  L898902C<3UTO6908061F9406236ZE184226B<<<<<14\n";
        let m = OcrMrz::parse(full).unwrap();
        assert_eq!(m.key().document_number, "L898902C");
        let k = OcrMrz::parse("l898902c,690806,940623").unwrap();
        assert_eq!(k.key(), m.key());
        assert!(OcrMrz::parse("").is_err());
        assert!(OcrMrz::parse("P<UTO garbage").is_err());
        assert!(OcrMrz::parse("X,1,2").is_err());
    }
}
