//! MRZ parser and MRZ-key parser: no input may panic; what parses must format back.
#![no_main]

use device_drivers::card::mrz::{Mrz, MrzKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = Mrz::parse(text) {
        let lines = m.to_lines().expect("a parsed MRZ formats");
        let back = Mrz::parse(&lines.join("\n")).expect("a formatted MRZ parses");
        assert_eq!(back, m);
        let _ = m.key().mrz_information();
    }
    if let Ok(k) = MrzKey::parse(text) {
        let _ = k.mrz_information();
    }
});
