//! Fuzzes the watchlist file parser: header, layout, signature check, snapshot and
//! delta section decoding (the structural parse also runs without a valid signature).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gate_controller::watchlist::fuzz_parse(data);
});
