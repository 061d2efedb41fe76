//! `gate-sim card` and `gatectl doc read` end to end: the simulator serves the ICAO specimen
//! (or a seeded persona) through a real pcscd with vsmartcard's vpcd driver, and `gatectl`
//! reads it as integrators do. The live tests need pcscd with `vsmartcard-vpcd` running
//! (`make services`) and the `gatectl` binary next to `gate-sim` (it is built on demand):
//!
//! `cargo test -p sim --test card_vpcd -- --ignored --test-threads 1`
//!
//! The argument-validation tests run without pcscd.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SPECIMEN_KEY: &str = "L898902C,690806,940623";

fn gate_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gate-sim"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `gatectl` from the same target directory, built first if it is not there.
fn gatectl() -> Command {
    let path = Path::new(env!("CARGO_BIN_EXE_gate-sim")).with_file_name("gatectl");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "gate-controller", "--bin", "gatectl"])
            .current_dir(repo())
            .status()
            .expect("run cargo build for gatectl");
        assert!(st.success(), "building gatectl failed");
    }
    Command::new(path)
}

/// A running `gate-sim card`; stopped with SIGTERM (and reaped) when dropped.
struct ServedCard {
    child: Child,
    /// The first stdout line (what is served, with its MRZ key and CAN).
    banner: String,
}

impl ServedCard {
    fn start(args: &[&str]) -> ServedCard {
        let mut child = gate_sim()
            .arg("card")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gate-sim card");
        let mut banner = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut banner)
            .expect("read the banner");
        assert!(
            banner.starts_with("serving "),
            "gate-sim card did not start (pcscd with vpcd running?): {banner:?}"
        );
        ServedCard { child, banner }
    }

    /// The value printed after `flag` in the banner.
    fn banner_value(&self, flag: &str) -> String {
        let i = self.banner.find(flag).expect("flag in banner") + flag.len();
        self.banner[i..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// SIGTERM, then the exit status and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(st.success());
        let out = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        // give pcscd time to see the card leave before the next test
        std::thread::sleep(Duration::from_millis(1000));
        (out.code(), err)
    }
}

impl Drop for ServedCard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            std::thread::sleep(Duration::from_millis(1000));
        }
    }
}

fn doc_read(key_args: &[&str], extra: &[&str]) -> Output {
    gatectl()
        .args(["doc", "read", "--reader", "Virtual PCD"])
        .args(key_args)
        .args(extra)
        .output()
        .expect("run gatectl")
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "gatectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn csca() -> String {
    repo().join("configs/pki/csca").display().to_string()
}

fn assert_specimen_mrz(v: &serde_json::Value) {
    let m = &v["mrz"];
    assert_eq!(m["document_code"], "P");
    assert_eq!(m["issuing_state"], "UTO");
    assert_eq!(m["document_number"], "L898902C");
    assert_eq!(m["surname"], "ERIKSSON");
    assert_eq!(m["given_names"], "ANNA MARIA");
    assert_eq!(m["nationality"], "UTO");
    assert_eq!(m["date_of_birth"], "690806");
    assert_eq!(m["sex"], "F");
    assert_eq!(m["date_of_expiry"], "940623");
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd"]
fn specimen_read_with_bac_and_valid_pa() {
    let card = ServedCard::start(&["--vpcd", "127.0.0.1:35963", "--specimen"]);
    assert!(card.banner.contains("ERIKSSON"), "{}", card.banner);
    let out = doc_read(
        &["--mrz-key", SPECIMEN_KEY],
        &["--csca", &csca(), "--json", "--wait", "10"],
    );
    let v = json(&out);
    assert_eq!(v["access_control"], "BAC");
    assert_specimen_mrz(&v);
    assert_eq!(v["data_groups"], serde_json::json!([1, 2, 14, 15]));
    assert_eq!(v["passive_authentication"]["status"], "valid", "{v}");
    let s = &v["stats"];
    // EF.CardAccess (absent), SELECT, GET CHALLENGE, EXT AUTH, EF.COM, 4 DGs, EF.SOD
    assert_eq!(s["apdus"], 10, "{v}");
    assert!(s["bytes_in"].as_u64().unwrap() > 13_000, "{v}");
    assert!(s["bytes_out"].as_u64().unwrap() > 0, "{v}");
    assert!(s["elapsed_ms"].is_u64(), "{v}");
    // without a trust store the chain is not checked
    let v = json(&doc_read(&["--mrz-key", SPECIMEN_KEY], &["--json"]));
    assert_eq!(v["passive_authentication"]["status"], "not_checked");
    let (code, err) = card.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stopped"), "{err}");
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd"]
fn specimen_read_with_pace_by_mrz_and_by_can() {
    let card = ServedCard::start(&["--specimen", "--pace", "bp256"]);
    let can = card.banner_value("--can ");
    let v = json(&doc_read(
        &["--mrz-key", SPECIMEN_KEY],
        &["--csca", &csca(), "--json", "--wait", "10"],
    ));
    assert_eq!(v["access_control"], "PACE");
    assert_specimen_mrz(&v);
    assert_eq!(v["passive_authentication"]["status"], "valid", "{v}");
    let v = json(&doc_read(&["--can", &can], &["--csca", &csca(), "--json"]));
    assert_eq!(v["access_control"], "PACE");
    assert_specimen_mrz(&v);
    // a wrong CAN is a wrong key
    let wrong = if can == "000000" { "111111" } else { "000000" };
    let out = doc_read(&["--can", wrong], &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let (code, err) = card.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd"]
fn seeded_persona_is_read_with_its_printed_key() {
    let card = ServedCard::start(&["--persona", "42", "--pace"]);
    let key = card.banner_value("--mrz-key ");
    let v = json(&doc_read(
        &["--mrz-key", &key],
        &["--csca", &csca(), "--json", "--wait", "10"],
    ));
    assert_eq!(v["access_control"], "PACE");
    let docno = key.split(',').next().unwrap();
    assert_eq!(v["mrz"]["document_number"], docno);
    assert_eq!(v["passive_authentication"]["status"], "valid", "{v}");
    card.stop();
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd"]
fn wrong_mrz_key_fails_cleanly() {
    let card = ServedCard::start(&["--specimen"]);
    // wait for the card with the right key first, so the failure below is the key's
    json(&doc_read(
        &["--mrz-key", SPECIMEN_KEY],
        &["--json", "--wait", "10"],
    ));
    let out = doc_read(&["--mrz-key", "L898902C,690806,940624"], &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no JSON on failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access key does not open the chip"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    card.stop();
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd"]
fn card_pulled_mid_read_fails_cleanly() {
    // APDU 6 is EF.COM, after BAC: the card leaves during the read
    let mut card = ServedCard::start(&["--specimen", "--pull-at", "6"]);
    let out = doc_read(&["--mrz-key", SPECIMEN_KEY], &["--json", "--wait", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no JSON on failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("left reader") || err.contains("no card") || err.contains("failed"),
        "{err}"
    );
    // the simulator ends by itself after the pull
    let st = card.child.wait().expect("gate-sim exits after the pull");
    assert_eq!(st.code(), Some(0));
    std::thread::sleep(Duration::from_millis(1000));
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd"]
fn no_card_fails_cleanly() {
    let out = doc_read(&["--mrz-key", SPECIMEN_KEY], &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no card"), "{err}");
    // with --wait it gives up after the wait
    let t0 = std::time::Instant::now();
    let out = doc_read(&["--mrz-key", SPECIMEN_KEY], &["--wait", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(t0.elapsed() >= Duration::from_millis(900));
    // an unknown reader is a failed operation too
    let out = gatectl()
        .args([
            "doc",
            "read",
            "--reader",
            "No Such Reader",
            "--mrz-key",
            SPECIMEN_KEY,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No Such Reader"), "{err}");
}

#[test]
fn card_usage_errors_exit_2() {
    for args in [
        vec!["card"],                                       // no document
        vec!["card", "--specimen", "--persona", "1"],       // both
        vec!["card", "--specimen", "--pace", "p521"],       // unknown curve
        vec!["card", "--specimen", "--vpcd", "nohostport"], // bad address
        vec!["card", "--specimen", "--no-bac"],             // PACE-only needs --pace
        vec!["card", "--persona", "x"],                     // bad seed
    ] {
        let out = gate_sim().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn card_without_vpcd_fails_with_a_message() {
    // a port where nothing listens
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let out = gate_sim()
        .args(["card", "--specimen", "--vpcd", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to vpcd"), "{err}");
}
