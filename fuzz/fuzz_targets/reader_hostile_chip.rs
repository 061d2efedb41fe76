//! Fuzz the terminal's whole read flow against a hostile chip: every response APDU comes
//! from the fuzzer input (2-byte length, then the bytes). The reader must end in a typed
//! error or a result, never panic or loop.
#![no_main]

use device_drivers::card::bac::{AccessKey, MrzKey};
use device_drivers::card::reader::{read_document, ReadOptions};
use device_drivers::card::transport::{CardTransport, TransportError};
use libfuzzer_sys::fuzz_target;

struct Hostile<'a> {
    input: &'a [u8],
    sent: usize,
}

impl CardTransport for Hostile<'_> {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent += 1;
        assert!(self.sent < 10_000, "reader does not terminate");
        let [a, b, rest @ ..] = self.input else {
            return Err(TransportError::CardRemoved);
        };
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(rest.len());
        let (resp, tail) = rest.split_at(n);
        self.input = tail;
        Ok(resp.to_vec())
    }
}

/// Deterministic "random" bytes: the fuzzer controls the chip, not the terminal's nonces.
struct Counter(u8);
impl rand_core::TryRng for Counter {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.0 = self.0.wrapping_add(1);
        Ok(u32::from(self.0) * 0x0101_0101)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(1);
        Ok(u64::from(self.0) * 0x0101_0101_0101_0101)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for d in dst {
            self.0 = self.0.wrapping_add(7);
            *d = self.0 | 1;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Counter {}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else {
        return;
    };
    let key = if mode & 1 == 0 {
        AccessKey::Mrz(MrzKey::new("L898902C", "690806", "940623").unwrap())
    } else {
        AccessKey::can("123456").unwrap()
    };
    let opts = ReadOptions {
        extended_length: mode & 2 == 0,
        short_file_identifiers: mode & 4 == 0,
        ..ReadOptions::default()
    };
    let mut t = Hostile { input, sent: 0 };
    let _ = read_document(&mut t, &key, &opts, &mut Counter(mode));
});
