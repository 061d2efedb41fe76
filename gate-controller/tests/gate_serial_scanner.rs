//! The gate with `[devices.fingerprint] kind = "serial"` and `[matcher] kind = "minutiae"`:
//! the real serial driver over a real pty to the simulated SFM scanner, the ISO 19794-2
//! matcher, a real SQLite journal, and small fake document reader and lane. The document
//! carries an ISO template of a synthetic finger; the scanner serves new impressions of a
//! finger on each scan. Real time (pty I/O), a few seconds per transit.

#![cfg(unix)]

#[path = "common/lane.rs"]
mod lane;

use device_drivers::devices::{
    BiometricTemplate, ChipRead, DeviceFault, DeviceFuture, DocumentReader, Holder, Presence,
    ReadError, TemplateFormat,
};
use device_drivers::fingerprint::pty::PtyScanner;
use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
use gate_controller::config::GateConfig;
use gate_controller::journal::Journal;
use gate_controller::record::{Mode, Outcome, Reason};
use gate_controller::runtime::clock::MonotonicWallClock;
use gate_controller::runtime::devices::section::DeviceSettings;
use gate_controller::runtime::settings::GateSettings;
use gate_controller::runtime::{Devices, Gate, GateHandle, GateStatus, RunReport};
use gate_controller::types::{Device, Document, DocumentKind, MrzDate, PaStatus};
use lane::{FakeLane, Lane};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::sleep;

fn doc(number: &str) -> Document {
    Document {
        kind: DocumentKind::Passport,
        issuing_state: "UTO".into(),
        document_number: number.into(),
        nationality: "UTO".into(),
        date_of_birth: MrzDate::parse("690806").unwrap(),
        date_of_expiry: MrzDate::parse("340623").unwrap(),
        passive_auth: PaStatus::Valid,
        mrz_matches_ocr: true,
        enrolled_thumbs: 1,
    }
}

/// The DG3 template of `finger`: its enrolment impression as an ISO 19794-2:2005 record.
fn enrolled(finger: u64) -> Vec<u8> {
    Finger::generate(finger)
        .impression(1, &ImpressionParams::default())
        .to_iso2005_bytes()
        .unwrap()
}

struct Shared {
    lane: Arc<Mutex<Lane>>,
    reads: Mutex<VecDeque<(Document, Vec<u8>)>>,
}

struct FakeReader {
    shared: Arc<Shared>,
    presence: mpsc::UnboundedReceiver<Presence>,
}

impl DocumentReader for FakeReader {
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>> {
        Box::pin(async move {
            match self.presence.recv().await {
                Some(p) => Ok(p),
                None => std::future::pending().await,
            }
        })
    }
    fn read(&mut self) -> DeviceFuture<'_, Result<ChipRead, ReadError>> {
        Box::pin(async move {
            sleep(Duration::from_millis(100)).await;
            let next = self.shared.reads.lock().unwrap().pop_front();
            match next {
                Some((document, dg3)) => Ok(ChipRead {
                    document,
                    holder: Holder::default(),
                    enrolled: vec![BiometricTemplate::new(TemplateFormat::Iso19794_2_2005, dg3)],
                }),
                None => Err(ReadError::NoDocument),
            }
        })
    }
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

struct Rig {
    shared: Arc<Shared>,
    presence: mpsc::UnboundedSender<Presence>,
    handle: GateHandle,
    task: tokio::task::JoinHandle<RunReport>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Rig {
    fn traveller(&self, number: &str, dg3: Vec<u8>) {
        self.shared
            .reads
            .lock()
            .unwrap()
            .push_back((doc(number), dg3));
        self.shared.lane.lock().unwrap().waiting = true;
        self.presence.send(Presence::Placed).unwrap();
    }

    async fn wait_for(&mut self, what: &str, pred: impl Fn(&GateStatus) -> bool) {
        let ok = tokio::time::timeout(Duration::from_secs(60), self.handle.status.wait_for(pred))
            .await
            .is_ok();
        assert!(
            ok,
            "timed out waiting for {what}: {:?}",
            *self.handle.status.borrow()
        );
    }
}

/// The gate as gated builds it from this configuration, with the fake reader and lane.
fn rig(dir: &Path, port: &Path) -> Rig {
    let toml = format!(
        r#"
[gate]
id = "gate-serial"
lane = "visitor"
direction = "arrival"

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "{journal}"

[policy]
# The calibrated threshold for a target FMR of 0.1 % (configs/fingerprint-calibration.toml).
biometric_threshold = 0.4686
max_attempts = 3

[timeouts]
capture_ms = 4000

[devices.fingerprint]
kind = "serial"
port = "{port}"
baud = 115200
reply_timeout_ms = 300
retries = 2

[matcher]
kind = "minutiae"
"#,
        journal = dir.join("journal.sqlite").display(),
        port = port.display(),
    );
    let cfg = GateConfig::parse(&toml, &dir.join("gate.toml")).expect("valid configuration");
    assert!(cfg.not_built().is_empty(), "{:?}", cfg.not_built());
    let scanner = gate_controller::runtime::serial::scanner(&cfg.devices.fingerprint)
        .expect("a serial scanner");
    let (fake_lane, lane) = FakeLane::new();
    let shared = Arc::new(Shared {
        lane,
        reads: Mutex::new(VecDeque::new()),
    });
    let (ptx, prx) = mpsc::unbounded_channel();
    let devices = Devices::new(
        Box::new(FakeReader {
            shared: shared.clone(),
            presence: prx,
        }),
        scanner,
        Box::new(fake_lane),
    );
    // The settings gated would build, but for the document reader: the fake one stands
    // where the configuration (alone) would need a real one, so the devices' combination
    // check is not applied here.
    let settings = GateSettings {
        gate_id: cfg.gate.id.clone(),
        machine: cfg.machine_config(),
        journal: cfg.journal.clone(),
        devices: DeviceSettings {
            section: cfg.devices.clone(),
            csca: None,
        },
        matcher: cfg.matcher.clone(),
        sim: cfg.sim.clone(),
        watchlist: cfg.watchlist.clone(),
    };
    let (gate, handle) =
        Gate::build(&settings, devices, MonotonicWallClock::start()).expect("gate built");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gate.run(async {
        let _ = stop_rx.await;
    }));
    Rig {
        shared,
        presence: ptx,
        handle,
        task,
        stop,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clears_the_right_finger_refers_a_wrong_one_and_survives_the_scanner_vanishing() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("ttyFP0");
    let mut sim = PtyScanner::start(&port).expect("openpty");
    let finger = 4242;
    // Whoever stands at the gate puts this finger on the scanner: a new impression
    // (displacement, rotation, distortion, missing and spurious minutiae) per scan.
    sim.set_finger(
        Some((Finger::generate(finger), ImpressionParams::default())),
        1_000,
    );
    let mut rig = rig(dir.path(), &port);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;

    // 1. The document's template is of the same finger: cleared.
    rig.traveller("S1", enrolled(finger));
    rig.wait_for("cleared", |s| {
        s.outcomes.cleared == 1 && s.machine.mode == Mode::Ready
    })
    .await;
    let scans_after_first = sim.scans();
    assert!(scans_after_first >= 1);

    // 2. The document belongs to someone else: every attempt fails, referred.
    rig.traveller("S2", enrolled(finger + 1));
    rig.wait_for("referred", |s| {
        s.outcomes.referred == 1 && s.machine.mode == Mode::Ready
    })
    .await;
    assert_eq!(sim.scans() - scans_after_first, 3, "three attempts");

    // 3. The scanner vanishes while the traveller waits at it: out of service.
    sim.set_finger(None, 0);
    rig.traveller("S3", enrolled(finger));
    rig.wait_for("capturing", |s| s.machine.step == "capturing")
        .await;
    sleep(Duration::from_millis(300)).await;
    sim.vanish();
    rig.wait_for("out of service", |s| s.machine.mode == Mode::OutOfService)
        .await;
    // It comes back: the gate probes it and returns to service by itself.
    sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.handle.status.borrow().machine.mode, Mode::OutOfService);
    sim.reappear().expect("plugged back in");
    sim.set_finger(
        Some((Finger::generate(finger), ImpressionParams::default())),
        2_000,
    );
    rig.wait_for("back in service", |s| s.machine.mode == Mode::Ready)
        .await;

    // 4. And clears the next traveller.
    let cleared_before = rig.handle.status.borrow().outcomes.cleared;
    rig.traveller("S4", enrolled(finger));
    rig.wait_for("cleared again", |s| {
        s.outcomes.cleared == cleared_before + 1 && s.machine.mode == Mode::Ready
    })
    .await;

    let _ = rig.stop.send(());
    let report = tokio::time::timeout(Duration::from_secs(30), rig.task)
        .await
        .expect("drained")
        .unwrap();
    assert!(report.clean);
    {
        let lane = rig.shared.lane.lock().unwrap();
        assert_eq!(lane.out_exit, 2, "S1 and S4 through the exit");
        assert_eq!(lane.out_entry, 2, "S2 and S3 back through the entry");
    }

    let journal_path = dir.path().join("journal.sqlite");
    let j = Journal::open(&journal_path).unwrap();
    let records = j.records_after(0, 10).unwrap();
    let by_doc = |n: &str| {
        records
            .iter()
            .find(|r| {
                r.record
                    .document
                    .as_ref()
                    .map(|d| d.document_number.as_str())
                    == Some(n)
            })
            .unwrap_or_else(|| panic!("record of {n}"))
    };
    let s1 = &by_doc("S1").record;
    assert_eq!(s1.outcome, Outcome::Cleared);
    let b = s1.biometric.as_ref().expect("biometric summary");
    assert!(b.score.unwrap_or(0.0) >= 0.4686, "{b:?}");
    let s2 = &by_doc("S2").record;
    assert_eq!(s2.outcome, Outcome::Referred);
    assert_eq!(s2.reasons, vec![Reason::BiometricMismatch]);
    assert_eq!(s2.biometric.as_ref().unwrap().attempts, 3);
    let s3 = &by_doc("S3").record;
    assert!(
        s3.reasons.iter().any(|r| matches!(
            r,
            Reason::DeviceFault {
                device: Device::FingerprintScanner,
                kind: Some(_),
            }
        )),
        "{:?}",
        s3.reasons
    );
    assert_eq!(by_doc("S4").record.outcome, Outcome::Cleared);

    // No biometric data in the journal: neither the enrolled records nor any ISO header.
    drop(j);
    let mut bytes = std::fs::read(&journal_path).unwrap();
    for extra in ["journal.sqlite-wal", "journal.sqlite-shm"] {
        if let Ok(b) = std::fs::read(dir.path().join(extra)) {
            bytes.extend(b);
        }
    }
    assert!(
        !bytes.windows(8).any(|w| w == b"FMR\0 20\0"),
        "a template in the journal"
    );
    let dg3 = enrolled(finger);
    assert!(
        !bytes.windows(32).any(|w| w == &dg3[24..56]),
        "minutiae in the journal"
    );
}
