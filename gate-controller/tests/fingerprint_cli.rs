//! `gatectl fingerprint` against the contract (CONTRACT.md), on templates
//! generated here from seeded synthetic fingers.

use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gatectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatectl"))
        .args(args)
        .output()
        .expect("gatectl runs")
}

fn write_impression(dir: &Path, name: &str, finger: u64, impression: u64) -> PathBuf {
    let t = Finger::generate(finger).impression(impression, &ImpressionParams::default());
    let p = dir.join(name);
    std::fs::write(&p, t.to_iso2005_bytes().expect("encodes")).expect("write");
    p
}

fn json_of(o: &Output) -> Value {
    let s = String::from_utf8(o.stdout.clone()).expect("utf8");
    assert_eq!(s.trim().lines().count(), 1, "exactly one JSON object: {s}");
    serde_json::from_str(s.trim()).expect("stdout is JSON")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

#[test]
fn match_same_finger_is_match_and_other_finger_is_no_match() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = write_impression(d.path(), "a.iso", 11, 1);
    let b = write_impression(d.path(), "b.iso", 11, 2);
    let c = write_impression(d.path(), "c.iso", 12, 1);

    let o = gatectl(&["fingerprint", "match", s(&a), s(&b), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json_of(&o);
    let score = v["score"].as_f64().expect("score");
    let threshold = v["threshold"].as_f64().expect("threshold");
    assert!((0.0..=1.0).contains(&score));
    assert!(score >= threshold);
    assert_eq!(v["decision"], "match");

    let o = gatectl(&["fingerprint", "match", s(&a), s(&c), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json_of(&o);
    assert!(v["score"].as_f64().expect("score") < v["threshold"].as_f64().expect("threshold"));
    assert_eq!(v["decision"], "no_match");

    let o = gatectl(&["fingerprint", "match", s(&a), s(&b)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("decision match"));
}

#[test]
fn threshold_comes_from_the_calibration_table_and_can_be_overridden() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = write_impression(d.path(), "a.iso", 21, 1);
    let b = write_impression(d.path(), "b.iso", 21, 2);
    let table = d.path().join("cal.toml");
    std::fs::write(
        &table,
        format!(
            "matcher = \"{}\"\ndefault_target_fmr = 0.01\ngenuine_comparisons = 1\nimpostor_comparisons = 1\n\
             [[threshold]]\ntarget_fmr = 0.01\nthreshold = 0.99\nfnmr = 0.5\n\
             [[threshold]]\ntarget_fmr = 0.001\nthreshold = 0.999\nfnmr = 0.6\n",
            device_drivers::fingerprint::eval::MATCHER_ID
        ),
    )
    .expect("write table");
    let v = json_of(&gatectl(&[
        "fingerprint",
        "match",
        s(&a),
        s(&b),
        "--json",
        "--calibration",
        s(&table),
    ]));
    assert!((v["threshold"].as_f64().expect("t") - 0.99).abs() < 1e-6);
    assert_eq!(v["decision"], "no_match");
    let v = json_of(&gatectl(&[
        "fingerprint",
        "match",
        s(&a),
        s(&b),
        "--json",
        "--calibration",
        s(&table),
        "--target-fmr",
        "0.001",
    ]));
    assert!((v["threshold"].as_f64().expect("t") - 0.999).abs() < 1e-6);
    let v = json_of(&gatectl(&[
        "fingerprint",
        "match",
        s(&a),
        s(&b),
        "--json",
        "--threshold",
        "0.01",
    ]));
    assert_eq!(v["decision"], "match");
    // A target below every row has no conservative threshold: bad input.
    let o = gatectl(&[
        "fingerprint",
        "match",
        s(&a),
        s(&b),
        "--calibration",
        s(&table),
        "--target-fmr",
        "0.00001",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // A table for another matcher is refused.
    let other = d.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&table)
            .expect("read")
            .replace("echannel", "other"),
    )
    .expect("write");
    let o = gatectl(&[
        "fingerprint",
        "match",
        s(&a),
        s(&b),
        "--calibration",
        s(&other),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn truncated_or_malformed_template_exits_2_naming_file_and_defect() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = write_impression(d.path(), "a.iso", 31, 1);
    let full = std::fs::read(&a).expect("read");
    let cut = d.path().join("cut.iso");
    std::fs::write(&cut, &full[..full.len() - 1]).expect("write");
    let o = gatectl(&["fingerprint", "match", s(&a), s(&cut), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cut.iso") && err.contains("truncated"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let junk = d.path().join("junk.iso");
    std::fs::write(&junk, b"GIF89a not a template").expect("write");
    let o = gatectl(&["fingerprint", "match", s(&junk), s(&a)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("junk.iso") && err.contains("bad magic"),
        "{err}"
    );

    let o = gatectl(&[
        "fingerprint",
        "match",
        s(&d.path().join("missing.iso")),
        s(&a),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.iso"));
}

fn synthetic_set(root: &Path, dbs: &[&str], fingers: u64, impressions: u64) {
    for (n, db) in dbs.iter().enumerate() {
        let dir = root.join(db);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..fingers {
            for i in 1..=impressions {
                write_impression(
                    &dir,
                    &format!("{}_{i}.iso", 101 + f),
                    1000 * n as u64 + f,
                    i,
                );
            }
        }
    }
}

#[test]
fn eval_reports_the_contract_keys_as_fractions() {
    let d = tempfile::tempdir().expect("tempdir");
    synthetic_set(d.path(), &["DB1_B", "DB2_B"], 4, 3);
    let o = gatectl(&["fingerprint", "eval", s(d.path()), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json_of(&o);
    // Per db: 4 fingers x C(3,2) genuine = 12, C(12,2) - 12 = 54 impostor.
    assert_eq!(v["genuine"], 24);
    assert_eq!(v["impostor"], 108);
    for k in ["eer", "zero_fmr", "ms_per_comparison"] {
        assert!(v[k].as_f64().is_some(), "{k}");
    }
    for k in ["0.01", "0.001", "0.0001"] {
        let r = v["fnmr_at_fmr"][k].as_f64().expect(k);
        assert!((0.0..=1.0).contains(&r));
    }
    let eer = v["eer"].as_f64().expect("eer");
    assert!(
        (0.0..=0.1).contains(&eer),
        "synthetic fingers separate well: {eer}"
    );
}

#[test]
fn eval_rejects_a_malformed_file_naming_it() {
    let d = tempfile::tempdir().expect("tempdir");
    synthetic_set(d.path(), &["DB1_B"], 2, 2);
    let bad = d.path().join("DB1_B").join("101_2.iso");
    let full = std::fs::read(&bad).expect("read");
    std::fs::write(&bad, &full[..full.len() - 3]).expect("write");
    let o = gatectl(&["fingerprint", "eval", s(d.path()), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("101_2.iso") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn calibrate_writes_a_table_that_match_accepts() {
    let d = tempfile::tempdir().expect("tempdir");
    synthetic_set(d.path(), &["DB1_B"], 4, 3);
    let out = d.path().join("cal.toml");
    let o = gatectl(&["fingerprint", "calibrate", s(d.path()), "--out", s(&out)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("table written");
    assert!(text.contains("target_fmr = 0.001"));
    let a = d.path().join("DB1_B").join("101_1.iso");
    let b = d.path().join("DB1_B").join("101_2.iso");
    let o = gatectl(&[
        "fingerprint",
        "match",
        s(&a),
        s(&b),
        "--json",
        "--calibration",
        s(&out),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn show_decodes_and_help_works() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = write_impression(d.path(), "a.iso", 41, 1);
    let v = json_of(&gatectl(&["fingerprint", "show", s(&a), "--json"]));
    assert_eq!(v["format"], "iso2005");
    for cmd in ["match", "eval", "calibrate", "show"] {
        let o = gatectl(&["fingerprint", cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{cmd}");
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn synth_writes_a_set_that_eval_reads() {
    let d = tempfile::tempdir().expect("tempdir");
    let o = gatectl(&[
        "fingerprint",
        "synth",
        "--out",
        s(d.path()),
        "--dbs",
        "2",
        "--fingers",
        "3",
        "--impressions",
        "2",
        "--seed",
        "9",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(d.path().join("DB2_S").join("103_2.iso").is_file());
    let v = json_of(&gatectl(&["fingerprint", "eval", s(d.path()), "--json"]));
    // Per db: 3 genuine pairs, C(6,2) - 3 = 12 impostor pairs.
    assert_eq!(v["genuine"], 6);
    assert_eq!(v["impostor"], 24);
    let o = gatectl(&[
        "fingerprint",
        "synth",
        "--out",
        s(d.path()),
        "--drop-rate",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
