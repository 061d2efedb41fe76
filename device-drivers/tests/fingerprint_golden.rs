//! Eval (needs /work/shared): golden records with their field-by-field
//! decoding (fingerprintio test resources), the truncated records of
//! `invalid/`, and every FVC template parsing and re-encoding bit-exactly.
//!
//! Run with `cargo test -p device-drivers --test fingerprint_golden -- --ignored`
//! (ECHANNEL_SHARED overrides the shared folder, default `<workspace>/../shared`).

use device_drivers::fingerprint::record::{ExtendedBlock, MinutiaKind, RecordMinutia};
use device_drivers::fingerprint::{FormatError, Iso2005Record, Iso2011Record, Record, Template};
use serde_json::Value;
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("ECHANNEL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data/fingerprints")
}

fn load(name: &str) -> (Vec<u8>, Value) {
    let dir = shared().join("golden");
    let bytes = std::fs::read(dir.join(format!("{name}.dat"))).expect("golden record present");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("golden json present"),
    )
    .expect("golden json parses");
    (bytes, json)
}

fn position(name: &str) -> u8 {
    match name {
        "UNKNOWN" => 0,
        "RIGHT_THUMB" => 1,
        "RIGHT_INDEX" => 2,
        "RIGHT_MIDDLE" => 3,
        "RIGHT_RING" => 4,
        "RIGHT_LITTLE" => 5,
        "LEFT_THUMB" => 6,
        "LEFT_INDEX" => 7,
        "LEFT_MIDDLE" => 8,
        "LEFT_RING" => 9,
        "LEFT_LITTLE" => 10,
        other => panic!("unknown position {other}"),
    }
}

fn scan_type(name: &str) -> u8 {
    match name {
        "LIVE_PLAIN" => 0,
        "LIVE_ROLLED" => 1,
        "NONLIVE_PLAIN" => 2,
        "NONLIVE_ROLLED" => 3,
        other => panic!("unknown scan type {other}"),
    }
}

fn kind(name: &str) -> MinutiaKind {
    match name {
        "ENDING" => MinutiaKind::Ending,
        "BIFURCATION" => MinutiaKind::Bifurcation,
        "OTHER" | "EITHER" => MinutiaKind::Other,
        other => panic!("unknown minutia type {other}"),
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

fn check_minutiae(ms: &[RecordMinutia], json: &Value) {
    let js = json["minutiae"].as_array().expect("minutiae array");
    assert_eq!(ms.len(), js.len());
    for (m, j) in ms.iter().zip(js) {
        assert_eq!(m.kind, kind(j["type"].as_str().expect("type")), "{j}");
        assert_eq!(u64::from(m.x), u(j, "positionX"));
        assert_eq!(u64::from(m.y), u(j, "positionY"));
        assert_eq!(u64::from(m.angle), u(j, "angle"));
        assert_eq!(u64::from(m.quality), u(j, "quality"));
    }
}

fn b64(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = alphabet.iter().position(|&a| a == c).expect("base64 char") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn check_extended(blocks: &[ExtendedBlock], json: &Value) {
    let mut others = Vec::new();
    let mut counts = None;
    for b in blocks {
        match b {
            ExtendedBlock::RidgeCounts(rc) => counts = Some(rc),
            ExtendedBlock::CoreDelta(_) => panic!("no core/delta block in the golden samples"),
            ExtendedBlock::Other { type_id, data } => others.push((*type_id, data.clone())),
        }
    }
    match (&json["counts"], counts) {
        (Value::Null, None) => {}
        (j, Some(rc)) => {
            let method = match j["type"].as_str() {
                Some("NONSPECIFIC") => 0,
                Some("QUADRANTS") => 1,
                Some("OCTANTS") => 2,
                other => panic!("count type {other:?}"),
            };
            assert_eq!(rc.method, method);
            let edges = j["edges"].as_array().expect("edges");
            assert_eq!(rc.edges.len(), edges.len());
            for (e, je) in rc.edges.iter().zip(edges) {
                assert_eq!(
                    (u64::from(e.from), u64::from(e.to), u64::from(e.count)),
                    (u(je, "from"), u(je, "to"), u(je, "count"))
                );
            }
        }
        (j, None) => panic!("expected ridge counts {j}"),
    }
    let jext = json["extensions"].as_array().expect("extensions");
    assert_eq!(others.len(), jext.len());
    for ((t, d), je) in others.iter().zip(jext) {
        assert_eq!(u64::from(*t), u(je, "type"));
        assert_eq!(*d, b64(je["data"].as_str().expect("data")));
    }
}

#[test]
#[ignore = "eval: needs ../shared/data/fingerprints"]
fn golden_iso2005() {
    let (bytes, json) = load("iso19794p2v2005-sample");
    let Record::Iso2005(r) = Record::parse(&bytes).expect("parses") else {
        panic!("detected as ISO 2005")
    };
    assert_eq!(u64::from(r.equipment_id), u(&json, "sensorId"));
    assert_eq!(
        r.equipment_compliance != 0,
        json["sensorCertified"].as_bool().expect("bool")
    );
    assert_eq!(u64::from(r.width), u(&json, "width"));
    assert_eq!(u64::from(r.height), u(&json, "height"));
    assert_eq!(u64::from(r.resolution_x), u(&json, "resolutionX"));
    assert_eq!(u64::from(r.resolution_y), u(&json, "resolutionY"));
    let fps = json["fingerprints"].as_array().expect("fingerprints");
    assert_eq!(r.views.len(), fps.len());
    for (v, j) in r.views.iter().zip(fps) {
        assert_eq!(
            v.position,
            position(j["position"].as_str().expect("position"))
        );
        assert_eq!(u64::from(v.view_number), u(j, "view"));
        assert_eq!(
            v.impression_type,
            scan_type(j["scanType"].as_str().expect("scan"))
        );
        assert_eq!(u64::from(v.quality), u(j, "quality"));
        check_minutiae(&v.minutiae, j);
        check_extended(&v.extended, j);
    }
    assert_eq!(
        r.to_bytes().expect("encodes"),
        bytes,
        "re-encoding is bit-exact"
    );
}

#[test]
#[ignore = "eval: needs ../shared/data/fingerprints"]
fn golden_iso2011() {
    let (bytes, json) = load("iso19794p2v2011-sample");
    let Record::Iso2011(r) = Record::parse(&bytes).expect("parses") else {
        panic!("detected as ISO 2011")
    };
    let fps = json["fingerprints"].as_array().expect("fingerprints");
    assert_eq!(r.representations.len(), fps.len());
    for (v, j) in r.representations.iter().zip(fps) {
        let dt = &j["datetime"];
        let d = v.capture_datetime;
        assert_eq!(
            [
                u64::from(d.year),
                u64::from(d.month),
                u64::from(d.day),
                u64::from(d.hour),
                u64::from(d.minute),
                u64::from(d.second),
                u64::from(d.millisecond)
            ],
            [
                u(dt, "year"),
                u(dt, "month"),
                u(dt, "day"),
                u(dt, "hour"),
                u(dt, "minute"),
                u(dt, "second"),
                u(dt, "millisecond")
            ]
        );
        assert_eq!(j["sensorType"].as_str(), Some("UNKNOWN"));
        assert_eq!(v.device_technology, 0);
        assert_eq!(u64::from(v.device_vendor), u(j, "sensorVendor"));
        assert_eq!(u64::from(v.device_type), u(j, "sensorId"));
        let q = j["qrecords"].as_array().expect("qrecords");
        assert_eq!(v.quality_records.len(), q.len());
        for (qr, jq) in v.quality_records.iter().zip(q) {
            assert_eq!(
                (
                    u64::from(qr.score),
                    u64::from(qr.vendor),
                    u64::from(qr.algorithm)
                ),
                (u(jq, "quality"), u(jq, "vendor"), u(jq, "algorithm"))
            );
        }
        assert_eq!(
            v.certifications.len(),
            j["certificates"].as_array().expect("certs").len()
        );
        assert_eq!(
            v.position,
            position(j["position"].as_str().expect("position"))
        );
        assert_eq!(u64::from(v.representation_number), u(j, "view"));
        assert_eq!(u64::from(v.resolution_x), u(j, "resolutionX"));
        assert_eq!(u64::from(v.resolution_y), u(j, "resolutionY"));
        assert_eq!(
            v.impression_type,
            scan_type(j["scanType"].as_str().expect("scan"))
        );
        assert_eq!(u64::from(v.width), u(j, "width"));
        assert_eq!(u64::from(v.height), u(j, "height"));
        assert_eq!(
            j["endingType"].as_str(),
            Some(if v.ending_type == 0 {
                "VALLEY_SKELETON_BIFURCATION"
            } else {
                "RIDGE_SKELETON_END"
            })
        );
        check_minutiae(&v.minutiae, j);
        check_extended(&v.extended, j);
    }
    assert_eq!(
        r.to_bytes().expect("encodes"),
        bytes,
        "re-encoding is bit-exact"
    );
}

#[test]
#[ignore = "eval: needs ../shared/data/fingerprints"]
fn golden_ansi2004() {
    let (bytes, json) = load("ansi378v2004-sample");
    let Record::Ansi2004(r) = Record::parse(&bytes).expect("parses") else {
        panic!("detected as ANSI 2004")
    };
    assert_eq!(u64::from(r.vendor_id), u(&json, "vendorId"));
    assert_eq!(u64::from(r.subformat), u(&json, "subformat"));
    assert_eq!(u64::from(r.equipment_id), u(&json, "sensorId"));
    assert_eq!(
        r.equipment_compliance & 0x8 != 0,
        json["sensorCertified"].as_bool().expect("bool")
    );
    assert_eq!(u64::from(r.width), u(&json, "width"));
    assert_eq!(u64::from(r.height), u(&json, "height"));
    assert_eq!(u64::from(r.resolution_x), u(&json, "resolutionX"));
    assert_eq!(u64::from(r.resolution_y), u(&json, "resolutionY"));
    let fps = json["fingerprints"].as_array().expect("fingerprints");
    assert_eq!(r.views.len(), fps.len());
    for (v, j) in r.views.iter().zip(fps) {
        assert_eq!(
            v.position,
            position(j["position"].as_str().expect("position"))
        );
        assert_eq!(u64::from(v.view_number), u(j, "view"));
        assert_eq!(
            v.impression_type,
            scan_type(j["scanType"].as_str().expect("scan"))
        );
        assert_eq!(u64::from(v.quality), u(j, "quality"));
        check_minutiae(&v.minutiae, j);
        check_extended(&v.extended, j);
    }
}

#[test]
#[ignore = "eval: needs ../shared/data/fingerprints"]
fn golden_ansi2009() {
    let (bytes, json) = load("ansi378v2009-sample");
    let Record::Ansi2009(r) = Record::parse(&bytes).expect("parses") else {
        panic!("detected as ANSI 2009")
    };
    assert_eq!(u64::from(r.vendor_id), u(&json, "vendorId"));
    assert_eq!(u64::from(r.subformat), u(&json, "subformat"));
    assert_eq!(u64::from(r.equipment_id), u(&json, "sensorId"));
    assert_eq!(
        r.equipment_certified,
        json["sensorCertified"].as_bool().expect("bool")
    );
    let fps = json["fingerprints"].as_array().expect("fingerprints");
    assert_eq!(r.views.len(), fps.len());
    for (v, j) in r.views.iter().zip(fps) {
        assert_eq!(
            v.position,
            position(j["position"].as_str().expect("position"))
        );
        assert_eq!(u64::from(v.view_number), u(j, "view"));
        assert_eq!(
            v.impression_type,
            scan_type(j["scanType"].as_str().expect("scan"))
        );
        assert_eq!(u64::from(v.quality), u(j, "quality"));
        assert_eq!(u64::from(v.quality_vendor), u(j, "qualityVendorId"));
        assert_eq!(u64::from(v.quality_algorithm), u(j, "qualityAlgorithmId"));
        assert_eq!(u64::from(v.width), u(j, "width"));
        assert_eq!(u64::from(v.height), u(j, "height"));
        assert_eq!(u64::from(v.resolution_x), u(j, "resolutionX"));
        assert_eq!(u64::from(v.resolution_y), u(j, "resolutionY"));
        check_minutiae(&v.minutiae, j);
        check_extended(&v.extended, j);
    }
    // ANSI 2009 angles are 2-degree units: 56 * 2 = 112 degrees = 80 in 1/256 turn.
    let t = Template::from_bytes(&bytes).expect("template");
    assert_eq!(t.minutiae[0].angle, 80);
}

#[test]
#[ignore = "eval: needs ../shared/data/fingerprints"]
fn invalid_records_are_rejected_with_the_defect() {
    let dir = shared().join("invalid");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("invalid dir") {
        let p = e.expect("entry").path();
        let bytes = std::fs::read(&p).expect("read");
        let err = Record::parse(&bytes).expect_err("truncated record must be rejected");
        assert!(
            matches!(err, FormatError::LengthMismatch { declared, actual } if declared > actual),
            "{}: {err}",
            p.display()
        );
        assert!(err.to_string().contains("truncated"), "{err}");
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
#[ignore = "eval: needs ../shared/data/fingerprints"]
fn every_fvc_template_parses_and_reencodes_exactly() {
    let root = shared().join("fvc2002");
    let mut n = 0;
    for db in std::fs::read_dir(&root).expect("fvc dir") {
        for f in std::fs::read_dir(db.expect("db").path()).expect("db dir") {
            let p = f.expect("file").path();
            let bytes = std::fs::read(&p).expect("read");
            let r = Iso2005Record::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(r.to_bytes().expect("encode"), bytes, "{}", p.display());
            let t = Template::from_bytes(&bytes).expect("template");
            assert!((6..=81).contains(&t.minutiae.len()), "{}", p.display());
            let r11 = Iso2011Record::parse(&t.to_iso2011().to_bytes().expect("2011 encode"))
                .expect("2011 parse");
            assert_eq!(
                Template::from_record(&Record::Iso2011(r11))
                    .expect("t")
                    .minutiae,
                t.minutiae
            );
            n += 1;
        }
    }
    assert_eq!(n, 320);
}
