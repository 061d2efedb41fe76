//! CPU cost of the chip-reading path, in process (no link delays): secure messaging per
//! chunk, a PACE handshake per curve, and a whole read of DG1 + DG2 (15 kB) + EF.SOD.
//! Link time under the link model is a pure number, see the reader's link-model test.

use criterion::{criterion_group, criterion_main, Criterion};
use device_drivers::card::apdu::CommandApdu;
use device_drivers::card::bac::{AccessKey, MrzKey};
use device_drivers::card::chip::{dg_fid, ChipConfig, VirtualChip, FID_COM, FID_SOD};
use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::pace::{PaceCurve, PaceInfo};
use device_drivers::card::reader::{read_document, ReadOptions};
use device_drivers::card::sm::SecureChannel;
use rand10::rngs::StdRng;
use rand10::SeedableRng;

fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![tag, 0x82, (v.len() >> 8) as u8, v.len() as u8];
    o.extend_from_slice(v);
    o
}

fn key() -> MrzKey {
    MrzKey::new("L898902C", "690806", "940623").unwrap()
}

fn chip(pace: Option<PaceInfo>) -> VirtualChip<StdRng> {
    let mut c = VirtualChip::new(ChipConfig::new(key(), pace), StdRng::seed_from_u64(1));
    c.set_file(
        FID_COM,
        hex::decode("60145F0104303130365F36063034303030305C026175").unwrap(),
    );
    c.set_file(dg_fid(1), tlv(0x61, &[b'<'; 91]));
    c.set_file(dg_fid(2), tlv(0x75, &vec![0xA5; 15_000]));
    c.set_file(FID_SOD, tlv(0x77, &vec![0x5A; 1_800]));
    c
}

fn bench(c: &mut Criterion) {
    for suite in [CipherSuite::Tdes, CipherSuite::Aes128] {
        c.bench_function(&format!("sm_read_chunk_223B_{suite:?}"), |b| {
            let k = vec![0x11; suite.key_len()];
            let mut term = SecureChannel::new(suite, k.clone(), k.clone(), &[0]);
            let mut card = SecureChannel::new(suite, k.clone(), k, &[0]);
            let cmd = CommandApdu::new(0, 0xB0, 0, 0).with_le(223);
            let data = vec![0x42; 223];
            b.iter(|| {
                let w = term.wrap_command(&cmd).unwrap();
                card.unwrap_command(&w).unwrap();
                let r = card.wrap_response(&data, 0x9000).unwrap();
                term.unwrap_response(&r).unwrap()
            })
        });
    }
    let mut rng = StdRng::seed_from_u64(2);
    for (name, pace) in [
        ("bac", None),
        (
            "pace_p256",
            Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256)),
        ),
        (
            "pace_bp256",
            Some(PaceInfo::ecdh_gm(
                CipherSuite::Aes128,
                PaceCurve::BrainpoolP256r1,
            )),
        ),
        (
            "pace_bp384",
            Some(PaceInfo::ecdh_gm(
                CipherSuite::Aes256,
                PaceCurve::BrainpoolP384r1,
            )),
        ),
    ] {
        c.bench_function(&format!("read_dg1_dg2_sod_{name}"), |b| {
            b.iter(|| {
                let mut ch = chip(pace.clone());
                read_document(
                    &mut ch,
                    &AccessKey::Mrz(key()),
                    &ReadOptions::default(),
                    &mut rng,
                )
                .unwrap()
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
