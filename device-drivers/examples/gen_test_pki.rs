//! Generates the TEST-ONLY PKI (CSCA + DS, ECDSA P-256 and RSA 2048) into a directory.
//!
//! `cargo run --release -p device-drivers --example gen_test_pki -- configs/pki`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen_test_pki DIR");
        return ExitCode::from(2);
    };
    match device_drivers::card::pa::pki::generate_test_pki(&dir) {
        Ok(_) => {
            println!("test PKI written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("generating the test PKI failed: {e}");
            ExitCode::from(1)
        }
    }
}
