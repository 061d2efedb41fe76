//! Fuzz secure-messaging response unwrapping (terminal side) and command unwrapping (chip
//! side) with arbitrary bytes: neither may panic, whatever the chip or terminal sends.
#![no_main]

use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::sm::SecureChannel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let suite = match sel & 3 {
        0 => CipherSuite::Tdes,
        1 => CipherSuite::Aes128,
        2 => CipherSuite::Aes192,
        _ => CipherSuite::Aes256,
    };
    // D.4 session keys for 3DES; fixed keys for AES
    let (k_enc, k_mac) = match suite {
        CipherSuite::Tdes => (
            vec![
                0x97, 0x9E, 0xC1, 0x3B, 0x1C, 0xBF, 0xE9, 0xDC, 0xD0, 0x1A, 0xB0, 0xFE, 0xD3,
                0x07, 0xEA, 0xE5,
            ],
            vec![
                0xF1, 0xCB, 0x1F, 0x1F, 0xB5, 0xAD, 0xF2, 0x08, 0x80, 0x6B, 0x89, 0xDC, 0x57,
                0x9D, 0xC1, 0xF8,
            ],
        ),
        s => (vec![0x11; s.key_len()], vec![0x22; s.key_len()]),
    };
    let ssc = [0x88, 0x70, 0x22, 0x12, 0x0C, 0x06, 0xC2, 0x27];
    let mut terminal = SecureChannel::new(suite, k_enc.clone(), k_mac.clone(), &ssc);
    let _ = terminal.unwrap_response(rest);
    let mut chip = SecureChannel::new(suite, k_enc, k_mac, &ssc);
    if let Ok(cmd) = chip.unwrap_command(rest) {
        // a command that verified must re-wrap without error
        let _ = chip.wrap_response(&cmd.data, 0x9000);
    }
    let _ = device_drivers::card::apdu::CommandApdu::parse(rest);
});
