//! Eval (needs /work/shared): resident ID-card personas whose DG3 carries real ISO/IEC
//! 19794-2 thumb records from the shared FVC2002 set; passive authentication must be valid,
//! DG3 must round-trip byte for byte, and a one-byte change in a template must be caught.
//!
//! `cargo test -p device-drivers --test resident_eval -- --ignored`
//! (shared data located via `ECHANNEL_SHARED`, default `<workspace>/../shared`)

use std::path::PathBuf;

use device_drivers::card::lds::persona::{DocumentKind, PersonaBuilder};
use device_drivers::card::lds::{Dg3, Finger, LdsFile};
use device_drivers::card::pa::{self, pki, PaError, PaStatus, TrustStore};

fn shared() -> PathBuf {
    std::env::var_os("ECHANNEL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

#[test]
#[ignore = "eval: needs the shared FVC2002 templates (make eval)"]
fn resident_cards_with_fvc_thumbs_pass_pa() {
    let fvc = shared().join("data/fingerprints/fvc2002");
    let test_pki = pki::load_test_pki(&pki::repo_test_pki_dir()).unwrap();
    let trust = TrustStore::load_dir(&pki::repo_test_pki_dir().join("csca")).unwrap();
    let mut cards = 0;
    for (i, db) in ["DB1_B", "DB2_B", "DB3_B", "DB4_B"].iter().enumerate() {
        for finger in 101u32..=110 {
            let read = |m: u32| {
                let p = fvc.join(db).join(format!("{finger}_{m}.iso"));
                std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            };
            let thumbs = vec![(Finger::RightThumb, read(1)), (Finger::LeftThumb, read(2))];
            let ds = if i % 2 == 0 {
                &test_pki.ds_p256
            } else {
                &test_pki.ds_rsa
            };
            let p = PersonaBuilder::new(u64::from(finger) * 10 + i as u64)
                .kind(DocumentKind::ResidentCard)
                .thumbs(thumbs.clone())
                .build(ds)
                .unwrap();
            let sod = p.file(LdsFile::Sod).unwrap();
            let r = pa::verify(Some(sod), &p.data_groups(), Some(&trust), pki::jan1(2026));
            assert_eq!(r.status, PaStatus::Valid, "{db}/{finger}: {}", r.detail);
            let dg3 = Dg3::parse(p.file(LdsFile::Dg(3)).unwrap()).unwrap();
            assert_eq!(dg3.fingers, thumbs);
            assert!(dg3.fingers.iter().all(|(_, t)| t.starts_with(b"FMR\0")));
            // Substitute one minutia byte of the right thumb's record.
            let mut dgs = p.data_groups();
            let dg3_bytes = dgs.get_mut(&3).unwrap();
            let n = dg3_bytes.len();
            dg3_bytes[n / 2] ^= 0x01;
            let r = pa::verify(Some(sod), &dgs, Some(&trust), pki::jan1(2026));
            assert_eq!(r.status, PaStatus::Invalid);
            assert_eq!(r.error, Some(PaError::HashMismatch { dg: 3 }));
            cards += 1;
        }
    }
    assert_eq!(cards, 40);
}
