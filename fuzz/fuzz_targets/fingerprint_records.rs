//! Fuzz target: every fingerprint record parser (format detection, ISO
//! 19794-2 2005/2011, ANSI 378 2004/2009, on-card normal/compact) on
//! arbitrary bytes. Whatever parses must re-encode and parse back to the
//! same value, and must be comparable by the matcher without panicking.
#![no_main]

use device_drivers::fingerprint::card::{parse_card, CardFormat};
use device_drivers::fingerprint::matcher::compare;
use device_drivers::fingerprint::{Ansi2004Record, Ansi2009Record, Iso2005Record, Iso2011Record, Record, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Ansi2004Record::parse(data);
    let _ = Ansi2009Record::parse(data);
    if let Ok(r) = Iso2005Record::parse(data) {
        let bytes = r.to_bytes().expect("a parsed 2005 record re-encodes");
        assert_eq!(Iso2005Record::parse(&bytes).expect("re-encoded 2005 parses"), r);
    }
    if let Ok(r) = Iso2011Record::parse(data) {
        let bytes = r.to_bytes().expect("a parsed 2011 record re-encodes");
        assert_eq!(Iso2011Record::parse(&bytes).expect("re-encoded 2011 parses"), r);
    }
    for f in [CardFormat::Normal, CardFormat::Compact] {
        let _ = parse_card(data, f);
        let _ = Template::from_card(data, f);
    }
    if let Ok(rec) = Record::parse(data) {
        if let Ok(t) = Template::from_record(&rec) {
            let d = compare(&t, &t);
            assert!((0.0..=1.0).contains(&d.score));
        }
    }
});
