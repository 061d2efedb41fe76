//! EF.SOD / CMS parsing and the full passive-authentication path on arbitrary bytes.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use device_drivers::card::pa::{self, PaStatus, PublicKey, Sod, TrustStore};
use libfuzzer_sys::fuzz_target;

fn trust() -> &'static TrustStore {
    static T: OnceLock<TrustStore> = OnceLock::new();
    T.get_or_init(|| {
        TrustStore::load_dir(&pa::pki::repo_test_pki_dir().join("csca")).unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = Sod::parse(data);
    let _ = PublicKey::from_spki("fuzz", data);
    let _ = pa::SignedData::parse("fuzz", data);
    let mut dgs = BTreeMap::new();
    dgs.insert(1u8, vec![0x61, 0x00]);
    let r = pa::verify(Some(data), &dgs, Some(trust()), pa::pki::jan1(2026));
    // Random bytes never carry a valid signature over DG1.
    assert_ne!(r.status, PaStatus::Valid);
});
