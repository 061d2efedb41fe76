//! Serve a virtual eMRTD chip (specimen MRZ, synthetic DG1/DG2, no EF.SOD) to pcscd
//! through vsmartcard's vpcd driver, for manual tests with PC/SC tools.
//!
//! `cargo run -p device-drivers --example vpcd_chip -- [--bac-only] [--curve p256|p384|bp256|bp384] [--addr 127.0.0.1:35963]`
//! Stop with Ctrl-C.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use device_drivers::card::bac::MrzKey;
use device_drivers::card::chip::{dg_fid, ChipConfig, VirtualChip, FID_COM};
use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::pace::{PaceCurve, PaceInfo};
use device_drivers::card::vpcd;
use rand10::rngs::StdRng;
use rand10::SeedableRng;

fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![tag, 0x82, (v.len() >> 8) as u8, v.len() as u8];
    o.extend_from_slice(v);
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut addr = vpcd::DEFAULT_VPCD_ADDR.to_string();
    let mut pace = Some(PaceInfo::ecdh_gm(
        CipherSuite::Aes128,
        PaceCurve::BrainpoolP256r1,
    ));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bac-only" => pace = None,
            "--addr" => addr = it.next().cloned().unwrap_or(addr),
            "--curve" => {
                let curve = match it.next().map(String::as_str) {
                    Some("p256") => PaceCurve::P256,
                    Some("p384") => PaceCurve::P384,
                    Some("bp384") => PaceCurve::BrainpoolP384r1,
                    _ => PaceCurve::BrainpoolP256r1,
                };
                pace = Some(PaceInfo::ecdh_gm(CipherSuite::Aes128, curve));
            }
            other => {
                eprintln!("unknown argument {other}; see the file's doc comment");
                std::process::exit(2);
            }
        }
    }
    let key = MrzKey::new("L898902C", "690806", "940623").expect("specimen MRZ key");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut chip = VirtualChip::new(ChipConfig::new(key, pace), StdRng::seed_from_u64(seed));
    chip.set_file(
        FID_COM,
        hex::decode("60145F0104303130365F36063034303030305C026175").expect("hex"),
    );
    let mrz =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<L898902C<3UTO6908061F9406236ZE184226B<<<<<14";
    let mut dg1 = vec![0x5F, 0x1F, 88];
    dg1.extend_from_slice(mrz.as_bytes());
    chip.set_file(dg_fid(1), tlv(0x61, &dg1));
    chip.set_file(dg_fid(2), tlv(0x75, &vec![0xA5; 15_000]));
    let stop = AtomicBool::new(false);
    eprintln!("serving the specimen chip to vpcd at {addr}");
    match vpcd::serve_forever(&addr, &mut chip, &stop, Duration::from_millis(500)) {
        Ok(end) => eprintln!("ended: {end:?}"),
        Err(e) => {
            eprintln!("vpcd link failed: {e}");
            std::process::exit(1);
        }
    }
}
