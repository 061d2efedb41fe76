//! Passive-authentication verification time for a persona with DG1 + DG2 (~15 KB face):
//! SOD parse, DG hashes, SOD signature, DS chain to CSCA. Target: ≤ 20 ms.
//!
//! `cargo bench -p device-drivers --bench pa`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use device_drivers::card::lds::persona::PersonaBuilder;
use device_drivers::card::lds::LdsFile;
use device_drivers::card::pa::{self, pki, PaStatus, TrustStore};

fn bench_pa(c: &mut Criterion) {
    let dir = pki::repo_test_pki_dir();
    let test_pki = pki::load_test_pki(&dir).expect("checked-in test PKI");
    let trust = TrustStore::load_dir(&dir.join("csca")).expect("trust store");
    let at = pki::jan1(2026);
    for (name, ds) in [("p256", &test_pki.ds_p256), ("rsa2048", &test_pki.ds_rsa)] {
        let persona = PersonaBuilder::new(1)
            .face_size(15_000)
            .pace(None)
            .active_authentication(false)
            .build(ds)
            .expect("persona");
        let dgs = persona.data_groups();
        let dg_bytes: usize = dgs.values().map(Vec::len).sum();
        let sod = persona.file(LdsFile::Sod).expect("SOD").to_vec();
        let report = pa::verify(Some(&sod), &dgs, Some(&trust), at);
        assert_eq!(report.status, PaStatus::Valid, "{}", report.detail);
        eprintln!(
            "{name}: DG1+DG2 = {dg_bytes} bytes, SOD = {} bytes",
            sod.len()
        );
        c.bench_function(&format!("pa_verify_dg1_dg2_15k_{name}"), |b| {
            b.iter(|| pa::verify(Some(black_box(&sod)), black_box(&dgs), Some(&trust), at))
        });
    }
}

criterion_group!(benches, bench_pa);
criterion_main!(benches);
