//! Writes the chip files of a seeded test persona (signed by the checked-in TEST DS) as
//! `<FID>.bin` files, e.g. to seed fuzzers or inspect with other tools.
//!
//! `cargo run -p device-drivers --example persona_files -- SEED OUT_DIR [passport|resident]`

use std::path::PathBuf;
use std::process::ExitCode;

use device_drivers::card::lds::persona::{DocumentKind, PersonaBuilder};
use device_drivers::card::lds::Finger;
use device_drivers::card::pa::pki;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(seed), Some(out)) = (
        args.first().and_then(|s| s.parse::<u64>().ok()),
        args.get(1),
    ) else {
        eprintln!("usage: persona_files SEED OUT_DIR [passport|resident]");
        return ExitCode::from(2);
    };
    let kind = match args.get(2).map(String::as_str) {
        Some("resident") => DocumentKind::ResidentCard,
        _ => DocumentKind::Passport,
    };
    let out = PathBuf::from(out);
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let pki = pki::load_test_pki(&pki::repo_test_pki_dir())?;
        let mut b = PersonaBuilder::new(seed).kind(kind);
        if kind == DocumentKind::ResidentCard {
            b = b.thumbs(vec![
                (Finger::RightThumb, b"FMR\0 020 (placeholder)".to_vec()),
                (Finger::LeftThumb, b"FMR\0 020 (placeholder)".to_vec()),
            ]);
        }
        let p = b.build(&pki.ds_p256)?;
        std::fs::create_dir_all(&out)?;
        for (fid, bytes) in &p.files {
            std::fs::write(out.join(format!("{fid:04X}.bin")), bytes)?;
        }
        println!("{}", p.mrz.to_lines()?.join("\n"));
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writing the persona failed: {e}");
            ExitCode::from(1)
        }
    }
}
