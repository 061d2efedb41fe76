//! BER-TLV parser and the LDS parsers built on it: no input may panic.
#![no_main]

use device_drivers::card::{lds, tlv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(nodes) = tlv::Node::parse(data) {
        // Whatever parses re-encodes to something that parses to the same tree.
        let enc: Vec<u8> = nodes.iter().flat_map(|n| n.encode()).collect();
        assert_eq!(tlv::Node::parse(&enc).ok(), Some(nodes));
    }
    let _ = tlv::parse_all(data);
    let _ = lds::EfCom::parse(data);
    let _ = lds::Dg1::parse(data);
    if let Ok(dg2) = lds::Dg2::parse(data) {
        let _ = dg2.faces();
    }
    let _ = lds::Dg3::parse(data);
    let _ = lds::FacialRecord::parse(data);
    let _ = lds::SecurityInfos::parse_card_access(data);
    let _ = lds::SecurityInfos::parse_dg14(data);
    let _ = lds::Dg15::parse(data);
});
