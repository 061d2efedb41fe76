//! The gate with a real PC/SC document reader (`[devices.document] kind = "pcsc"`, the MRZ
//! from the bench file `[devices.mrz] kind = "file"`), built by gated's device factory,
//! reading seeded persona chips served through pcscd + vsmartcard's vpcd; the lane is a
//! small in-process one (`common/lane.rs`) with a scanner giving the chip holder's
//! synthetic thumb (enrolled in the persona's DG3), compared by the minutiae matcher.
//!
//! Needs Debian `pcscd` and `vsmartcard-vpcd`, pcscd running, and the crate feature `pcsc`:
//!
//! ```text
//! cargo test -p gate-controller --features pcsc --test gated_pcsc -- --ignored --test-threads 1 --skip gate_recovers_after_pcscd_restart
//! ECHANNEL_PCSCD_RESTART=1 cargo test -p gate-controller --features pcsc --test gated_pcsc -- --ignored --exact gate_recovers_after_pcscd_restart
//! ```

#![cfg(feature = "pcsc")]

#[path = "common/lane.rs"]
mod lane;

use device_drivers::card::bac::MrzKey;
use device_drivers::card::chip::{ChipConfig, Fault, VirtualChip};
use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::lds::persona::{Persona, PersonaBuilder};
use device_drivers::card::lds::LdsFile;
use device_drivers::card::pa::pki;
use device_drivers::card::pace::{PaceCurve, PaceInfo};
use device_drivers::card::vpcd::{self, VpcdEnd};
use gate_controller::config::GateConfig;
use gate_controller::runtime::clock::MonotonicWallClock;
use gate_controller::runtime::{Devices, Gate, GateHandle, GateStatus, RunReport};
use gate_controller::types::Device;
use rand10::rngs::StdRng;
use rand10::SeedableRng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A chip serving `p`, BAC only or PACE (P-256, AES-128).
fn chip(p: &Persona, pace: bool) -> VirtualChip<StdRng> {
    let m = p.mrz.key();
    let key = MrzKey::new(&m.document_number, &m.date_of_birth, &m.date_of_expiry).unwrap();
    let info = pace.then(|| PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256));
    let mut c = VirtualChip::new(ChipConfig::new(key, info), StdRng::seed_from_u64(11));
    for (fid, bytes) in &p.files {
        if *fid != LdsFile::CardAccess.fid() {
            c.set_file(*fid, bytes.clone());
        }
    }
    c
}

/// Persona `seed`, whose DG3 holds the enrolment impression of synthetic finger `seed`
/// (the finger the test scanner gives for them, see [`transit`]).
fn persona(seed: u64) -> Persona {
    let pki = pki::load_test_pki(&pki::repo_test_pki_dir()).unwrap();
    let enrolled = device_drivers::fingerprint::synth::Finger::generate(seed)
        .impression(
            1,
            &device_drivers::fingerprint::synth::ImpressionParams::default(),
        )
        .to_iso2005_bytes()
        .unwrap();
    let p = PersonaBuilder::new(seed)
        .thumbs(vec![(
            device_drivers::card::lds::Finger::RightThumb,
            enrolled,
        )])
        .build(&pki.ds_p256)
        .unwrap();
    FINGERS
        .lock()
        .unwrap()
        .insert(p.mrz.document_number.clone(), seed);
    p
}

/// Document number → the seed of its holder's synthetic finger.
static FINGERS: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn mrz_text(p: &Persona) -> String {
    p.mrz.to_lines().unwrap().join("\n") + "\n"
}

/// A card on the vpcd reader until dropped (then the card leaves the field).
struct ServedCard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<VpcdEnd, String>>>,
}

impl ServedCard {
    fn insert(mut chip: VirtualChip<StdRng>) -> ServedCard {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            vpcd::serve_forever(
                vpcd::DEFAULT_VPCD_ADDR,
                &mut chip,
                &flag,
                Duration::from_millis(200),
            )
            .map_err(|e| e.to_string())
        });
        ServedCard {
            stop,
            thread: Some(thread),
        }
    }

    /// Takes the card away; how the vpcd link ended.
    fn remove(mut self) -> Result<VpcdEnd, String> {
        self.stop.store(true, Ordering::Relaxed);
        let r = self.thread.take().unwrap().join().unwrap();
        // give pcscd time to notice the card left
        std::thread::sleep(Duration::from_millis(700));
        r
    }
}

impl Drop for ServedCard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Running {
    dir: tempfile::TempDir,
    lane: Arc<std::sync::Mutex<lane::Lane>>,
    /// The finger the scanner gives at the next capture.
    finger: Arc<std::sync::Mutex<Option<u64>>>,
    handle: GateHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<RunReport>,
}

impl Running {
    fn mrz_file(&self) -> PathBuf {
        self.dir.path().join("mrz.txt")
    }

    fn status(&self) -> GateStatus {
        self.handle.status.borrow().clone()
    }

    /// Waits until `f` holds for the status, or panics after `secs` naming `what`.
    async fn wait(&self, secs: u64, what: &str, f: impl Fn(&GateStatus) -> bool) -> GateStatus {
        let t0 = Instant::now();
        loop {
            let s = self.status();
            if f(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "timed out waiting for {what}; status: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The journaled records (outcome, reasons as JSON text), oldest first.
    fn records(&self) -> Vec<(String, String)> {
        let c = rusqlite::Connection::open(self.dir.path().join("journal.sqlite")).unwrap();
        let mut st = c.prepare("SELECT body FROM records ORDER BY seq").unwrap();
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(&b.unwrap()).unwrap();
                (
                    v["outcome"].as_str().unwrap_or("").to_string(),
                    v["reasons"].to_string(),
                )
            })
            .collect();
        rows
    }

    async fn stop(mut self) -> RunReport {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the gate drains")
            .unwrap()
    }
}

/// The gate as `gated` builds it from a config file, with the PC/SC reader.
async fn start_gate() -> Running {
    start_gate_with(|_| String::new()).await
}

/// Like [`start_gate`]; `prepare` gets the gate's directory (before the gate is built)
/// and returns extra configuration text.
async fn start_gate_with(prepare: impl FnOnce(&Path) -> String) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let extra = prepare(dir.path());
    let cfg_path = dir.path().join("gate.toml");
    std::fs::write(
        &cfg_path,
        format!(
            r#"
[gate]
id = "pcsc-01"
lane = "visitor"
direction = "arrival"

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[devices.document]
kind = "pcsc"
reader = "Virtual PCD"
csca = "{}"

[devices.mrz]
kind = "file"
path = "mrz.txt"

# Built by the test as a small in-process lane and scanner (common/lane.rs).
[devices.fingerprint]
kind = "serial"
port = "/dev/null-scanner"

[devices.io]
kind = "modbus"
address = "127.0.0.1:1"

[matcher]
kind = "minutiae"

[log]
format = "text"

{}
"#,
            repo().join("configs/pki/csca").display(),
            extra
        ),
    )
    .unwrap();
    let (cfg, settings) = GateConfig::load_settings(&cfg_path).unwrap();
    assert!(cfg.not_built().is_empty(), "{:?}", cfg.not_built());
    let clock = MonotonicWallClock::start();
    let (io, lane_state) = lane::FakeLane::new();
    let finger = Arc::new(std::sync::Mutex::new(None));
    let devices = Devices::new(
        gate_controller::runtime::pcsc::reader(&settings.devices).unwrap(),
        Box::new(lane::SynthFinger {
            finger: finger.clone(),
        }),
        Box::new(io),
    );
    let (gate, handle) = Gate::build(&settings, devices, clock).unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gate.run(async {
        let _ = rx.await;
    }));
    let r = Running {
        dir,
        lane: lane_state,
        finger,
        handle,
        stop: Some(stop),
        task,
    };
    r.wait(15, "the gate to wait for a document", |s| {
        s.machine.faults.is_empty() && s.machine.step == "ready"
    })
    .await;
    r
}

fn total(s: &GateStatus) -> u64 {
    s.outcomes.total()
}

/// Serves `chip` with `mrz` in the OCR file until the transit ends; the new record.
async fn transit(g: &Running, chip: VirtualChip<StdRng>, mrz: &str) -> (String, String) {
    std::fs::write(g.mrz_file(), mrz).unwrap();
    g.lane.lock().unwrap().waiting = true;
    // The holder of the chip gives their thumb (the document number keys the finger).
    let number = device_drivers::card::gate::OcrMrz::parse(mrz)
        .map(|m| m.key().document_number)
        .unwrap_or_default();
    *g.finger.lock().unwrap() = FINGERS.lock().unwrap().get(&number).copied();
    let before = total(&g.status());
    let card = ServedCard::insert(chip);
    g.wait(60, "the transit to end", |s| total(s) > before)
        .await;
    let _ = card.remove();
    g.wait(15, "the gate to be ready again", |s| {
        s.machine.step == "ready"
    })
    .await;
    g.records().pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pcscd with vsmartcard-vpcd running"]
async fn gate_clears_bac_and_pace_chips_and_refers_tampered_and_wrong_mrz() {
    let g = start_gate().await;
    // A BAC chip and a PACE chip, PA valid: cleared.
    let p = persona(101);
    let (outcome, reasons) = transit(&g, chip(&p, false), &mrz_text(&p)).await;
    assert_eq!(outcome, "cleared", "BAC persona: {reasons}");
    let p = persona(102);
    let (outcome, reasons) = transit(&g, chip(&p, true), &mrz_text(&p)).await;
    assert_eq!(outcome, "cleared", "PACE persona: {reasons}");

    // A data group altered after signing: PA invalid, referred.
    let mut p = persona(103);
    let dg2 = p.files.get_mut(&LdsFile::Dg(2).fid()).unwrap();
    let i = dg2.len() - 10;
    dg2[i] ^= 0x40;
    let (outcome, reasons) = transit(&g, chip(&p, true), &mrz_text(&p)).await;
    assert_eq!(outcome, "referred", "{reasons}");
    assert!(reasons.contains("passive"), "{reasons}");

    // The OCR read another document's MRZ: the chip refuses the key, a clean referral.
    let p = persona(104);
    let other = persona(105);
    let (outcome, reasons) = transit(&g, chip(&p, false), &mrz_text(&other)).await;
    assert_ne!(outcome, "cleared", "{reasons}");
    assert!(reasons.contains("wrong_key"), "{reasons}");
    // No OCR MRZ at all: the same, no panic.
    let _ = std::fs::remove_file(g.mrz_file());
    let before = total(&g.status());
    g.lane.lock().unwrap().waiting = true;
    let card = ServedCard::insert(chip(&p, true));
    g.wait(60, "the transit without MRZ to end", |s| total(s) > before)
        .await;
    drop(card);
    let (outcome, reasons) = g.records().pop().unwrap();
    assert_ne!(outcome, "cleared", "{reasons}");

    // The reader never faulted, and the gate still clears.
    assert!(g.status().machine.faults.is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    g.wait(15, "ready", |s| s.machine.step == "ready").await;
    let p = persona(106);
    let (outcome, reasons) = transit(&g, chip(&p, true), &mrz_text(&p)).await;
    assert_eq!(outcome, "cleared", "{reasons}");
    let report = g.stop().await;
    assert!(report.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pcscd with vsmartcard-vpcd running"]
async fn card_pulled_mid_read_is_a_clean_failure() {
    let g = start_gate().await;
    let p = persona(201);
    let mut c = chip(&p, true);
    c.inject(Fault::PulledAt(7)); // a PACE read takes 11 APDUs
    std::fs::write(g.mrz_file(), mrz_text(&p)).unwrap();
    let before = total(&g.status());
    g.lane.lock().unwrap().waiting = true;
    let card = ServedCard::insert(c);
    g.wait(60, "the pulled-card transit to end", |s| total(s) > before)
        .await;
    assert_eq!(card.remove(), Ok(VpcdEnd::CardPulled));
    let (outcome, reasons) = g.records().pop().unwrap();
    assert_ne!(outcome, "cleared", "{reasons}");
    assert!(reasons.contains("card_removed"), "{reasons}");
    assert!(g.status().machine.faults.is_empty());
    // The next traveller is served normally.
    g.wait(15, "ready", |s| s.machine.step == "ready").await;
    let p = persona(202);
    let (outcome, reasons) = transit(&g, chip(&p, false), &mrz_text(&p)).await;
    assert_eq!(outcome, "cleared", "{reasons}");
    g.stop().await;
}

fn pcscd_pid() -> Option<i32> {
    std::fs::read_to_string("/run/pcscd/pcscd.pid")
        .ok()?
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .parse()
        .ok()
}

/// Restarts pcscd while the gate runs: opt in with ECHANNEL_PCSCD_RESTART=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts pcscd; opt in with ECHANNEL_PCSCD_RESTART=1"]
async fn gate_recovers_after_pcscd_restart() {
    if std::env::var("ECHANNEL_PCSCD_RESTART").as_deref() != Ok("1") {
        eprintln!("skipped: set ECHANNEL_PCSCD_RESTART=1");
        return;
    }
    let g = start_gate().await;
    let pid = pcscd_pid().expect("pcscd pid in /run/pcscd/pcscd.pid");
    let killed = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    g.wait(20, "the reader fault", |s| {
        s.machine.faults.contains(&Device::DocumentReader)
    })
    .await;
    // pcscd removes its pid file on exit; start it again once the old one is gone.
    let t0 = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "pcscd did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = std::process::Command::new("pcscd").status().unwrap();
    assert!(started.success());
    g.wait(30, "the reader to recover", |s| {
        s.machine.faults.is_empty() && s.machine.step == "ready"
    })
    .await;
    let p = persona(301);
    let (outcome, reasons) = transit(&g, chip(&p, true), &mrz_text(&p)).await;
    assert_eq!(outcome, "cleared", "{reasons}");
    g.stop().await;
}

/// A signed store in `dir` whose list `national` has person entries: `hold` the holder
/// of `exact` exactly as the chip names them, and `variant`'s holder with a spelling
/// variant of the surname (last letter doubled: the same transliteration skeleton).
fn person_store(dir: &Path, exact: &Persona, variant: &Persona) -> String {
    use gate_controller::watchlist::snapshot::SnapshotBuilder;
    use gate_controller::watchlist::{Action, ListId, PartialDate, PersonEntry, SecretKey};
    let k = SecretKey::from_seed([4; 32]);
    std::fs::write(dir.join("authority.pub"), k.public().to_file_text()).unwrap();
    // The century as the gate resolves it: the latest that is not in the future.
    let dob = |p: &Persona| {
        let today = gate_controller::types::Time(now_ms()).date();
        let d = gate_controller::types::MrzDate::parse(&p.mrz.date_of_birth)
            .and_then(|d| d.as_birth(today))
            .unwrap();
        PartialDate::parse(&format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)).unwrap()
    };
    let entry = |p: &Persona, surname: String| PersonEntry {
        surname,
        given_names: p.mrz.given_names.clone(),
        dob: dob(p),
        nationality: Some(p.mrz.nationality.clone()),
        action: Action::Hold,
        reason: "warrant".into(),
    };
    let mut b = SnapshotBuilder::new(ListId::new("national").unwrap(), 1, now_ms());
    b.add_person(&entry(exact, exact.mrz.surname.clone()))
        .unwrap();
    let s = &variant.mrz.surname;
    let doubled = format!("{s}{}", &s[s.len() - 1..]);
    b.add_person(&entry(variant, doubled)).unwrap();
    let snap = dir.join("national-1.wl");
    b.write(&snap, &k).unwrap();
    let store = gate_controller::watchlist::WatchlistStore::open(
        &dir.join("store"),
        gate_controller::watchlist::TrustedKeys::from_keys([k.public()]),
        gate_controller::watchlist::OpenOptions::default(),
    )
    .unwrap();
    store.install_snapshot_file(&snap).unwrap();
    "[watchlist]\ndir = \"store\"\ntrusted_keys = [\"authority.pub\"]\n".into()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The holder's names from the chip's DG1 screened against person entries, end to end:
/// another traveller cleared, a spelling variant referred (never held), the exact name
/// held; the journal names the list and reason, never the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pcscd with vsmartcard-vpcd running"]
async fn holders_named_on_a_person_list_are_held_or_referred_from_the_chip_names() {
    let (listed, variant, other) = (persona(401), persona(402), persona(403));
    assert_ne!(listed.mrz.surname, other.mrz.surname);
    let g = start_gate_with(|dir| person_store(dir, &listed, &variant)).await;
    let (outcome, reasons) = transit(&g, chip(&other, true), &mrz_text(&other)).await;
    assert_eq!(outcome, "cleared", "{reasons}");
    let (outcome, reasons) = transit(&g, chip(&variant, true), &mrz_text(&variant)).await;
    assert_eq!(outcome, "referred", "{reasons}");
    assert!(
        reasons.contains("person-fuzzy:national:warrant"),
        "{reasons}"
    );
    // The exact hit: held (the gate stays held until an officer releases it).
    std::fs::write(g.mrz_file(), mrz_text(&listed)).unwrap();
    g.lane.lock().unwrap().waiting = true;
    let card = ServedCard::insert(chip(&listed, false));
    g.wait(60, "the hold", |s| s.machine.step == "held").await;
    drop(card);
    let (outcome, reasons) = g.records().pop().unwrap();
    assert_eq!(outcome, "held", "{reasons}");
    assert!(
        reasons.contains("person-exact:national:warrant"),
        "{reasons}"
    );
    let c = rusqlite::Connection::open(g.dir.path().join("journal.sqlite")).unwrap();
    let text: String = c
        .query_row(
            "SELECT group_concat(body, ' ') FROM (SELECT body FROM records UNION ALL SELECT body FROM events)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for p in [&listed, &variant, &other] {
        assert!(
            !text.contains(&p.mrz.surname),
            "the journal names {}",
            p.mrz.surname
        );
    }
    // A hold is left only by an operator: no drain, just stop the task.
    g.task.abort();
}
