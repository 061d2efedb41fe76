//! The disk guard of a real `gated` process (simulated lane, API over real TCP): the
//! thresholds of `[journal]` are set relative to how full the temporary directory's file
//! system really is right now (statvfs, cross-checked with `df`).
//!
//! - Thresholds above the usage: no disk alarm, travellers are cleared.
//! - `disk_alarm_percent` below the usage: `disk_space_low` in `/v1/status`, travellers
//!   are still cleared.
//! - `disk_stop_clearing_percent` below the usage: `disk_full`, nobody is cleared, every
//!   traveller is referred with reason `disk_full`.
//! - The journal's directory disappears under a running gate (statvfs fails): `disk_full`;
//!   the directory is back: the alarm clears and travellers are cleared again.

mod support;

use gate_controller::record::{Outcome, Reason};
use gate_controller::upstream::disk::{check, DiskGuardConfig};
use gate_controller::upstream::wire::WireBody;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;
use support::*;

/// Generous bound on anything the gate should do within a few seconds.
const WITHIN: Duration = Duration::from_secs(60);

/// How full the file system holding `dir` is, in percent (statvfs, as `df` computes it).
fn used_percent(dir: &Path) -> f64 {
    let used = check(dir, &DiskGuardConfig::default())
        .expect("statvfs of the temporary directory")
        .used_percent;
    // `df` rounds up to whole percent; the two must agree (when df is there to ask).
    if let Ok(out) = std::process::Command::new("df")
        .args(["-P", "--"])
        .arg(dir)
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let df = text
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(4))
            .and_then(|p| p.trim_end_matches('%').parse::<f64>().ok());
        if let Some(df) = df {
            assert!(
                (df - used).abs() <= 2.0,
                "statvfs says {used:.2} % used, df says {df} %"
            );
        }
    }
    assert!(
        used > 0.0 && used < 99.0,
        "the temporary file system is {used:.2} % full: the thresholds cannot be placed around it"
    );
    used
}

/// Writes the gate's config in `dir` (journal at `journal`, relative to `dir`) with the
/// disk thresholds, a fast simulated lane of ordinary travellers and the API on `api`.
fn config(dir: &Path, journal: &str, api: u16, alarm: f64, stop: f64) -> PathBuf {
    let p = dir.join("gate.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[gate]
id = "disk-gate"
lane = "visitor"
direction = "arrival"
drain_timeout_ms = 20000

[timeouts]
notice_ms = 200

[journal]
path = "{journal}"
disk_alarm_percent = {alarm}
disk_stop_clearing_percent = {stop}
disk_check_ms = 200

[sim]
seed = 7
speed = 10.0
mean_arrival_gap_ms = 2000

[sim.mix]
normal = 100

[api]
listen = "127.0.0.1:{api}"

[log]
format = "json"
"#
        ),
    )
    .expect("write config");
    let out = bin("gated")
        .args(["--check", "--config"])
        .arg(&p)
        .output()
        .expect("gated --check runs");
    assert!(
        out.status.success(),
        "gated --check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

/// Starts gated on `cfg` and answers it with its local viewer token.
fn start(cfg: &Path, dir: &Path) -> (GatedProcess, Receiver<String>, String) {
    let (g, rx) = spawn_gated(cfg, dir);
    let token = viewer_token(&rx, Duration::from_secs(30));
    (g, rx, token)
}

fn count(v: &serde_json::Value, outcome: &str) -> u64 {
    v["counters"][outcome].as_u64().unwrap_or(0)
}

fn disk_alarms(v: &serde_json::Value) -> (bool, bool) {
    (has_alarm(v, "disk_space_low"), has_alarm(v, "disk_full"))
}

/// Every movement record in the journal at `journal`: (outcome, reasons).
fn movements(dir: &Path, journal: &str) -> Vec<(Outcome, Vec<Reason>)> {
    let setup = GateSetup {
        dir: dir.to_path_buf(),
        gate: "disk-gate".into(),
        pki: PathBuf::new(),
        url: String::new(),
    };
    assert_eq!(setup.journal(), dir.join(journal));
    setup
        .journal_rows()
        .into_iter()
        .filter_map(|r| match r.body {
            WireBody::Movement(m) => Some((m.outcome, m.reasons)),
            WireBody::Event(_) => None,
        })
        .collect()
}

#[test]
fn thresholds_above_the_usage_raise_no_disk_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let used = used_percent(dir.path());
    let alarm = used + (100.0 - used) / 2.0;
    let api = free_port();
    let cfg = config(dir.path(), "journal.sqlite", api, alarm, 100.0);
    let (_g, _rx, token) = start(&cfg, dir.path());
    let v = wait_status(api, &token, WITHIN, "two cleared travellers", |v| {
        assert_eq!(disk_alarms(v), (false, false), "used {used:.2} %: {v}");
        count(v, "cleared") >= 2
    });
    no_disk_referral(dir.path(), &v);
}

/// Nobody was referred for the disk (a traveller referred for another reason, such as a
/// chip read that the loaded machine made too slow, is not what these tests are about).
fn no_disk_referral(dir: &Path, status: &serde_json::Value) {
    let moves = movements(dir, "journal.sqlite");
    assert!(
        moves.iter().all(|(_, r)| !r.contains(&Reason::DiskFull)),
        "{moves:?} {status}"
    );
}

#[test]
fn an_alarm_threshold_below_the_usage_raises_disk_space_low_and_the_gate_still_clears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let used = used_percent(dir.path());
    let api = free_port();
    let cfg = config(dir.path(), "journal.sqlite", api, used / 2.0, 100.0);
    let (_g, _rx, token) = start(&cfg, dir.path());
    wait_status(api, &token, WITHIN, "the disk_space_low alarm", |v| {
        disk_alarms(v) == (true, false)
    });
    let v = wait_status(api, &token, WITHIN, "two cleared travellers", |v| {
        assert_eq!(disk_alarms(v), (true, false), "{v}");
        count(v, "cleared") >= 2
    });
    no_disk_referral(dir.path(), &v);
}

#[test]
fn a_stop_threshold_below_the_usage_raises_disk_full_and_refers_every_traveller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let used = used_percent(dir.path());
    let api = free_port();
    let cfg = config(dir.path(), "journal.sqlite", api, used / 4.0, used / 2.0);
    let (_g, _rx, token) = start(&cfg, dir.path());
    // gated measures before it opens the lane: nobody is ever cleared.
    wait_status(api, &token, WITHIN, "the disk_full alarm", |v| {
        assert_eq!(count(v, "cleared"), 0, "used {used:.2} %: {v}");
        disk_alarms(v) == (false, true)
    });
    let v = wait_status(api, &token, WITHIN, "three referred travellers", |v| {
        assert_eq!(
            count(v, "cleared"),
            0,
            "nobody is cleared on a full disk: {v}"
        );
        count(v, "referred") >= 3
    });
    assert_eq!(disk_alarms(&v), (false, true), "{v}");
    // Referring is not a fault: the gate stays in service.
    assert!(
        v["mode"] == "ready" || v["mode"] == "transit",
        "the gate stays in service: {v}"
    );
    assert_eq!(v["faults"], serde_json::json!([]), "{v}");
    // Whatever the pacing (a busy machine can make a simulated traveller's chip read
    // fail first), nobody is cleared, and each traveller whose document was read is
    // referred for the full disk alone.
    let moves = wait_disk_full_referrals(dir.path(), "journal.sqlite", 3);
    for (outcome, reasons) in &moves {
        assert_ne!(*outcome, Outcome::Cleared, "{moves:?}");
        let document_read = !reasons
            .iter()
            .any(|r| matches!(r, Reason::ChipUnreadable { .. } | Reason::Timeout { .. }));
        if document_read {
            assert_eq!(*outcome, Outcome::Referred, "{moves:?}");
            assert_eq!(reasons, &[Reason::DiskFull], "{moves:?}");
        }
    }
}

/// Polls the journal until it holds `n` records referred for `disk_full`; returns them all.
fn wait_disk_full_referrals(dir: &Path, journal: &str, n: usize) -> Vec<(Outcome, Vec<Reason>)> {
    let start = std::time::Instant::now();
    loop {
        let moves = movements(dir, journal);
        let full = moves
            .iter()
            .filter(|(o, r)| *o == Outcome::Referred && r == &[Reason::DiskFull])
            .count();
        if full >= n {
            return moves;
        }
        assert!(
            start.elapsed() < WITHIN,
            "{n} referrals for disk_full within {WITHIN:?}: {moves:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_journal_directory_that_cannot_be_measured_stops_clearing_until_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let used = used_percent(dir.path());
    let jdir = dir.path().join("journal");
    std::fs::create_dir(&jdir).expect("journal dir");
    let api = free_port();
    let alarm = used + (100.0 - used) / 2.0;
    let cfg = config(dir.path(), "journal/j.sqlite", api, alarm, 100.0);
    let (_g, _rx, token) = start(&cfg, dir.path());
    wait_status(api, &token, WITHIN, "a cleared traveller", |v| {
        assert_eq!(disk_alarms(v), (false, false), "{v}");
        count(v, "cleared") >= 1
    });
    // The journal's directory goes away (the open journal lives on, unlinked): statvfs
    // fails, which counts as a full disk.
    std::fs::remove_dir_all(&jdir).expect("remove the journal dir");
    let v = wait_status(api, &token, WITHIN, "the disk_full alarm", |v| {
        disk_alarms(v) == (false, true)
    });
    let cleared = count(&v, "cleared");
    let referred = count(&v, "referred");
    let v = wait_status(api, &token, WITHIN, "a traveller referred", |v| {
        count(v, "referred") > referred
    });
    // At most the one traveller already let in when the directory went away is cleared.
    assert!(count(&v, "cleared") <= cleared + 1, "{v}");
    // Back: the alarm clears and the gate clears travellers again.
    std::fs::create_dir(&jdir).expect("journal dir again");
    let v = wait_status(api, &token, WITHIN, "the alarm cleared", |v| {
        disk_alarms(v) == (false, false)
    });
    let cleared = count(&v, "cleared");
    wait_status(api, &token, WITHIN, "a traveller cleared again", |v| {
        count(v, "cleared") > cleared
    });
}
