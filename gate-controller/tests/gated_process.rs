//! `gated` as a process: `--check` exit codes and messages (CONTRACT.md), and a gate on
//! simulated devices that clears travellers, stops on SIGTERM, restarts with its records
//! and sequence intact, and lets a traveller out when stopped mid-transit.

use gate_controller::journal::Journal;
use gate_controller::record::{Outcome, Reason};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn gated() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gated"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(config: &Path) -> (i32, String) {
    let out = gated()
        .arg("--check")
        .arg("--config")
        .arg(config)
        .output()
        .expect("gated runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("gate.toml");
    let text = format!(
        r#"
[gate]
id = "test-gate"
lane = "visitor"
direction = "arrival"
drain_timeout_ms = 20000

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[log]
level = "gate_controller=debug,info"
format = "json"
{extra}
"#
    );
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_accepts_the_example_config() {
    let (code, err) = check(&repo_root().join("configs/gate.example.toml"));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn check_rejects_an_unknown_key_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(dir.path(), "[policy]\nmin_age = 11\nmax_atempts = 3\n");
    let (code, err) = check(&p);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("policy.max_atempts"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
    assert_eq!(err.lines().count(), 2, "one sentence and a hint: {err}");
}

#[test]
fn check_rejects_a_bad_value_naming_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(dir.path(), "[policy]\nbiometric_threshold = 7.5\n");
    let (code, err) = check(&p);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("policy.biometric_threshold: 7.5 must be between 0 and 1"),
        "{err}"
    );
}

#[test]
fn check_rejects_a_missing_file_and_a_journal_in_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(&dir.path().join("nope.toml"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read the config file"), "{err}");
    let p = config(dir.path(), "");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("journal.sqlite", "no/such/dir/j.sqlite");
    std::fs::write(&p, text).unwrap();
    let (code, err) = check(&p);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("journal.path"), "{err}");
}

#[test]
fn a_gpio_lane_without_its_own_pin_map_is_refused_naming_the_map() {
    // GPIO is built by default now (feature `gpio`); the reference map cannot be laid
    // out on one chip, so a GPIO lane needs its own map (tests/tests/gpio_lane.rs runs
    // gated with one).
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "[devices.io]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\n",
    );
    let (code, err) = check(&p);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("devices.io.map"), "{err}");
    assert!(!err.contains("not built"), "{err}");
    let out = gated().arg("--config").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("devices.io.map"), "{err}");
}

#[test]
fn bad_usage_is_exit_2() {
    let out = gated().arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A running `gated` with its stderr (JSON log lines) forwarded to a channel.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = gated()
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gated starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines }
    }

    /// Waits for a log line containing `needle`.
    fn wait_line(&mut self, needle: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!("no log line with {needle:?} within {within:?}");
    }

    fn sigterm(&mut self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait(mut self, within: Duration) -> (ExitStatus, Vec<String>) {
        let end = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let rest: Vec<String> = self.lines.try_iter().collect();
                return (st, rest);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("gated did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn records(path: &Path) -> Vec<gate_controller::journal::StoredRecord> {
    Journal::open(path)
        .unwrap()
        .records_after(0, 100_000)
        .unwrap()
}

#[test]
fn records_survive_a_restart_and_the_sequence_continues() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "[sim]\nseed = 7\nspeed = 8.0\nmean_arrival_gap_ms = 500\n[sim.mix]\nnormal = 1\n",
    );
    let journal = dir.path().join("journal.sqlite");
    let mut first = 0;
    for round in 1..=2 {
        let mut d = Daemon::start(&p);
        d.wait_line("gate running", Duration::from_secs(10));
        // Let it clear two more travellers.
        for _ in 0..2 {
            d.wait_line("\"outcome\":\"cleared\"", Duration::from_secs(20));
        }
        d.sigterm();
        let (st, rest) = d.wait(Duration::from_secs(20));
        assert!(st.success(), "exit {st:?}: {rest:?}");
        assert!(rest.iter().any(|l| l.contains("gate stopped")), "{rest:?}");
        let r = records(&journal);
        if round == 1 {
            first = r.len();
            assert!(first >= 2);
        } else {
            assert!(r.len() >= first + 2, "{} then {}", first, r.len());
        }
        // Nothing biometric in what was journaled (invariant 7).
        for rec in &r {
            gate_controller::invariants::check_record_has_no_biometrics(&rec.record).unwrap();
        }
        // Gap-free sequence from 1, transaction ids unique and increasing.
        let seqs: Vec<u64> = r.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=r.len() as u64).collect::<Vec<_>>());
        assert!(r.windows(2).all(|w| w[0].record.txn < w[1].record.txn));
    }
}

#[test]
fn sigterm_with_a_traveller_inside_lets_them_out_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = config(
        dir.path(),
        "[sim]\nseed = 3\nspeed = 1.0\nmean_arrival_gap_ms = 500\n[sim.mix]\nnormal = 1\n",
    );
    let journal = dir.path().join("journal.sqlite");
    let mut d = Daemon::start(&p);
    d.wait_line("\"to\":\"capturing\"", Duration::from_secs(25));
    d.sigterm();
    let (st, rest) = d.wait(Duration::from_secs(25));
    assert!(st.success(), "exit {st:?}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("\"to\":\"letting_out\"")),
        "the traveller was let out: {rest:?}"
    );
    let r = records(&journal);
    let last = r.last().expect("a record");
    assert_eq!(last.record.outcome, Outcome::Aborted);
    assert_eq!(last.record.reasons, vec![Reason::Shutdown]);
    assert!(r
        .iter()
        .all(|r| r.record.outcome != Outcome::Cleared || r.seq < last.seq));
}
