//! The tokio shell with small fake devices: whole transits in (paused) tokio time, a real
//! SQLite journal file, shutdown with a traveller inside, restart continuity, commands.

use device_drivers::devices::{
    BiometricTemplate, CaptureError, ChipRead, DeviceFault, DeviceFuture, DocumentReader,
    FaultKind, FingerprintScanner, Holder, LaneCommand, LaneInput, LaneIo, LiveCapture, Presence,
    ReadError, TemplateFormat,
};
use gate_controller::journal::Journal;
use gate_controller::machine::Config;
use gate_controller::record::{
    Actor, MatcherFailure, Mode, OperatorCommand, Outcome, Reason, Role,
};
use gate_controller::runtime::clock::MonotonicWallClock;
use gate_controller::runtime::matcher::SimMatcher;
use gate_controller::runtime::screening::InlineWatchlist;
use gate_controller::runtime::{Devices, FeedKind, Gate, GateHandle, RunReport};
use gate_controller::types::{
    CaptureInfo, ChipFailure, Document, DocumentKind, Door, DoorPosition, MrzDate, PaStatus, Sensor,
};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::sleep;

/// 2026-11-26T12:00:00Z.
const T0: u64 = 1_795_694_400_000;

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
        enrolled_thumbs: 2,
    }
}

fn sim_template(s: &str) -> BiometricTemplate {
    BiometricTemplate::new(TemplateFormat::Simulated, s.as_bytes().to_vec())
}

/// The fake world shared by the fake devices: who is where.
#[derive(Default)]
struct Lane {
    /// A traveller is waiting at the entry to walk in once it opens.
    waiting: bool,
    /// A traveller is inside the mantrap.
    inside: bool,
    /// Cleared records found in the journal each time the exit was commanded open.
    cleared_at_exit_open: Vec<u64>,
    /// Travellers who left through the exit / back through the entry.
    out_exit: u32,
    out_entry: u32,
}

struct Shared {
    lane: Mutex<Lane>,
    journal: PathBuf,
    presence: Mutex<Option<mpsc::UnboundedSender<Presence>>>,
    reads: Mutex<VecDeque<Result<(Document, &'static str), ReadError>>>,
    /// Live templates to return; `None` = the scanner never answers.
    captures: Mutex<VecDeque<Option<&'static str>>>,
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
            sleep(Duration::from_millis(300)).await;
            let next = self.shared.reads.lock().unwrap().pop_front();
            match next {
                Some(Ok((document, finger))) => Ok(ChipRead {
                    document,
                    holder: Holder::default(),
                    enrolled: vec![sim_template(finger)],
                }),
                Some(Err(e)) => Err(e),
                None => Err(ReadError::NoDocument),
            }
        })
    }
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

/// A live "template" the fake scanner answers with a timeout fault instead.
const TIMES_OUT: &str = "!timeout";

struct FakeScanner {
    shared: Arc<Shared>,
}

impl FingerprintScanner for FakeScanner {
    fn capture(
        &mut self,
        timeout: Duration,
    ) -> DeviceFuture<'_, Result<LiveCapture, CaptureError>> {
        Box::pin(async move {
            let next = self.shared.captures.lock().unwrap().pop_front();
            match next {
                // The scanner stops answering within its protocol timeout.
                Some(Some(TIMES_OUT)) => {
                    sleep(Duration::from_millis(400)).await;
                    Err(CaptureError::Device(DeviceFault::new(
                        FaultKind::Timeout,
                        "no reply to the capture command",
                    )))
                }
                Some(Some(finger)) => {
                    sleep(Duration::from_millis(400)).await;
                    Ok(LiveCapture {
                        info: CaptureInfo {
                            quality: 80,
                            minutiae: 40,
                        },
                        template: sim_template(finger),
                    })
                }
                Some(None) => std::future::pending().await,
                None => {
                    sleep(timeout).await;
                    Err(CaptureError::NoFinger)
                }
            }
        })
    }
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

struct FakeLane {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<(u64, LaneInput)>,
    rx: mpsc::UnboundedReceiver<(u64, LaneInput)>,
}

impl FakeLane {
    fn later(&self, ms: u64, inputs: Vec<LaneInput>) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            sleep(Duration::from_millis(ms)).await;
            for i in inputs {
                let _ = tx.send((0, i));
                sleep(Duration::from_millis(20)).await;
            }
        });
    }
}

fn beam(sensor: Sensor, active: bool) -> LaneInput {
    LaneInput::Sensor { sensor, active }
}

impl LaneIo for FakeLane {
    fn command(&mut self, command: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async move {
            let LaneCommand::Door { door, position } = command else {
                return Ok(());
            };
            self.later(50, vec![LaneInput::DoorReached { door, position }]);
            if position != DoorPosition::Open {
                return Ok(());
            }
            let mut lane = self.shared.lane.lock().unwrap();
            match door {
                Door::Exit => {
                    let j = Journal::open(&self.shared.journal).unwrap();
                    let cleared = j
                        .outcome_counts()
                        .unwrap()
                        .into_iter()
                        .find(|(o, _)| o == "cleared")
                        .map_or(0, |(_, n)| n);
                    lane.cleared_at_exit_open.push(cleared);
                    if lane.inside {
                        lane.inside = false;
                        lane.out_exit += 1;
                        drop(lane);
                        self.later(
                            200,
                            vec![
                                beam(Sensor::ExitBeam, true),
                                LaneInput::Occupancy { persons: 0 },
                                beam(Sensor::ExitBeam, false),
                            ],
                        );
                    }
                }
                Door::Entry if lane.inside => {
                    lane.inside = false;
                    lane.out_entry += 1;
                    drop(lane);
                    self.later(
                        200,
                        vec![
                            beam(Sensor::EntryBeam, true),
                            LaneInput::Occupancy { persons: 0 },
                            beam(Sensor::EntryBeam, false),
                        ],
                    );
                }
                Door::Entry if lane.waiting => {
                    lane.waiting = false;
                    lane.inside = true;
                    drop(lane);
                    self.later(
                        200,
                        vec![
                            beam(Sensor::EntryBeam, true),
                            LaneInput::Occupancy { persons: 1 },
                            beam(Sensor::EntryBeam, false),
                        ],
                    );
                }
                Door::Entry => {}
            }
            Ok(())
        })
    }
    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some((_, i)) => Ok(i),
                None => Err(DeviceFault::new(FaultKind::Link, "closed")),
            }
        })
    }
}

struct Rig {
    shared: Arc<Shared>,
    /// The lane's input channel (as the fake lane reports).
    lane_tx: mpsc::UnboundedSender<(u64, LaneInput)>,
    handle: GateHandle,
    task: tokio::task::JoinHandle<RunReport>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn rig(journal: &Path) -> Rig {
    let (ptx, prx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        lane: Mutex::new(Lane::default()),
        journal: journal.to_owned(),
        presence: Mutex::new(Some(ptx)),
        reads: Mutex::new(VecDeque::new()),
        captures: Mutex::new(VecDeque::new()),
    });
    let (ltx, lrx) = mpsc::unbounded_channel();
    let lane_tx = ltx.clone();
    let devices = Devices::new(
        Box::new(FakeReader {
            shared: shared.clone(),
            presence: prx,
        }),
        Box::new(FakeScanner {
            shared: shared.clone(),
        }),
        Box::new(FakeLane {
            shared: shared.clone(),
            tx: ltx,
            rx: lrx,
        }),
    );
    let mut j = Journal::open(journal).unwrap();
    j.claim_gate("test-gate").unwrap();
    let clock = MonotonicWallClock::anchored(tokio::time::Instant::now(), T0);
    let (gate, handle) = Gate::from_parts(
        "test-gate".into(),
        Config::default(),
        j,
        Box::new(InlineWatchlist::default()),
        Box::new(SimMatcher),
        devices,
        clock,
    )
    .unwrap();
    // The lane reports both doors closed at start.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gate.run(async {
        let _ = stop_rx.await;
    }));
    Rig {
        shared,
        lane_tx,
        handle,
        task,
        stop: Some(stop_tx),
    }
}

impl Rig {
    /// A traveller presents a document and will walk in when the entry opens.
    fn traveller(&self, number: &'static str, enrolled: &'static str, live: Option<&'static str>) {
        self.shared
            .reads
            .lock()
            .unwrap()
            .push_back(Ok((doc(number), enrolled)));
        self.shared.captures.lock().unwrap().push_back(live);
        self.shared.lane.lock().unwrap().waiting = true;
        let tx = self.shared.presence.lock().unwrap().clone().unwrap();
        tx.send(Presence::Placed).unwrap();
    }

    async fn wait_for(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&gate_controller::runtime::GateStatus) -> bool,
    ) {
        let ok = tokio::time::timeout(
            Duration::from_secs(120),
            self.handle.status.wait_for(|s| pred(s)),
        )
        .await
        .is_ok();
        assert!(
            ok,
            "timed out waiting for {what}: {:?}",
            *self.handle.status.borrow()
        );
    }

    async fn stop(mut self) -> (RunReport, Arc<Shared>) {
        let _ = self.stop.take().unwrap().send(());
        let report = tokio::time::timeout(Duration::from_secs(120), self.task)
            .await
            .expect("drained in time")
            .unwrap();
        (report, self.shared)
    }
}

#[tokio::test(start_paused = true)]
async fn clears_travellers_with_the_record_on_disk_before_the_exit_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    let mut feed = rig.handle.subscribe();
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    for (i, n) in ["A1", "A2", "A3"].into_iter().enumerate() {
        rig.traveller(n, "p/right", Some("p/right#1"));
        let want = i as u64 + 1;
        rig.wait_for("cleared", |s| {
            s.outcomes.cleared == want && s.machine.mode == Mode::Ready
        })
        .await;
    }
    let (report, shared) = rig.stop().await;
    assert!(report.clean);
    assert_eq!(report.status.outcomes.cleared, 3);
    assert_eq!(report.status.last_seq, 3);
    let lane = shared.lane.lock().unwrap();
    // Each time the exit was commanded open, that traveller's clear was already durable.
    assert_eq!(lane.cleared_at_exit_open, vec![1, 2, 3]);
    assert_eq!(lane.out_exit, 3);
    let mut records = 0;
    while let Ok(item) = feed.try_recv() {
        if let FeedKind::Record { outcome, .. } = item.kind {
            assert_eq!(outcome, Outcome::Cleared);
            records += 1;
        }
    }
    assert_eq!(records, 3);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.count().unwrap(), 3);
    assert!(
        j.event_count().unwrap() > 10,
        "transitions are in the events log"
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_finger_three_times_is_referred_and_let_out_through_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    {
        let mut c = rig.shared.captures.lock().unwrap();
        c.push_back(Some("p/index"));
        c.push_back(Some("p/index"));
    }
    rig.traveller("B1", "p/right", Some("p/index"));
    rig.wait_for("referred", |s| {
        s.outcomes.referred == 1 && s.machine.mode == Mode::Ready
    })
    .await;
    let (_, shared) = rig.stop().await;
    let lane = shared.lane.lock().unwrap();
    assert_eq!((lane.out_exit, lane.out_entry), (0, 1));
    assert!(
        lane.cleared_at_exit_open.is_empty(),
        "the exit never opened"
    );
    let j = Journal::open(&path).unwrap();
    let r = j.records_after(0, 10).unwrap();
    assert_eq!(r[0].record.reasons, vec![Reason::BiometricMismatch]);
    assert_eq!(r[0].record.biometric.unwrap().attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_a_traveller_inside_lets_them_out_and_records_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    // The scanner never answers: the traveller stands in the mantrap when we stop.
    rig.traveller("C1", "p/right", None);
    rig.wait_for("capturing", |s| s.machine.step == "capturing")
        .await;
    let (report, shared) = rig.stop().await;
    assert!(report.clean, "ShutdownReady after the traveller left");
    let lane = shared.lane.lock().unwrap();
    assert_eq!(lane.out_entry, 1, "let out through the entry");
    assert_eq!(lane.out_exit, 0);
    let j = Journal::open(&path).unwrap();
    let r = j.records_after(0, 10).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].record.outcome, Outcome::Aborted);
    assert_eq!(r[0].record.reasons, vec![Reason::Shutdown]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_continues_seq_and_transaction_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    for round in 0..2u64 {
        let mut rig = rig(&path);
        rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
            .await;
        for (i, n) in ["D1", "D2"].into_iter().enumerate() {
            rig.traveller(n, "p/right", Some("p/right"));
            let want = 2 * round + i as u64 + 1;
            rig.wait_for("one more", |s| {
                s.outcomes.total() == want && s.machine.mode == Mode::Ready
            })
            .await;
        }
        let want = 2 * (round + 1);
        let (report, _) = rig.stop().await;
        assert_eq!(report.status.last_seq, want);
    }
    let j = Journal::open(&path).unwrap();
    let r = j.records_after(0, 10).unwrap();
    assert_eq!(
        r.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let mut txns: Vec<u64> = r.iter().map(|r| r.record.txn.0).collect();
    txns.dedup();
    assert_eq!(txns.len(), 4, "transaction ids are not reused: {txns:?}");
    assert!(txns.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(start_paused = true)]
async fn a_crash_mid_transit_is_recorded_aborted_after_the_restart_and_lets_the_traveller_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut first = rig(&path);
    first
        .wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    // The scanner never answers: the traveller stays inside, undecided.
    first.traveller("D1", "p/right", None);
    first
        .wait_for("capturing", |s| s.machine.step == "capturing")
        .await;
    let txn = first.handle.status.borrow().machine.txn;
    // The process dies: no drain, no record.
    first.task.abort();
    let _ = first.task.await;
    assert_eq!(Journal::open(&path).unwrap().count().unwrap(), 0);

    let mut again = rig(&path);
    again.shared.lane.lock().unwrap().inside = true;
    // The lane I/O's first report: somebody is in the mantrap.
    again
        .lane_tx
        .send((0, LaneInput::Occupancy { persons: 1 }))
        .unwrap();
    again
        .wait_for("the cut-off transit ended", |s| {
            s.outcomes.total() == 1 && s.machine.mode == Mode::Ready
        })
        .await;
    let (_, shared) = again.stop().await;
    let r = Journal::open(&path).unwrap().records_after(0, 10).unwrap();
    assert_eq!(r.len(), 1, "exactly one record: {r:?}");
    assert_eq!(Some(r[0].record.txn), txn, "the cut-off transit's own id");
    assert_eq!(r[0].record.outcome, Outcome::Aborted);
    assert_eq!(r[0].record.reasons, vec![Reason::Restart]);
    let lane = shared.lane.lock().unwrap();
    assert_eq!(
        (lane.out_entry, lane.out_exit),
        (1, 0),
        "let out through the entry"
    );
}

#[tokio::test(start_paused = true)]
async fn operator_commands_are_answered_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    let actor = |role| Actor {
        user: "alice".into(),
        role,
        reason: "test".into(),
    };
    let r = rig
        .handle
        .command(OperatorCommand::MaintenanceOn, actor(Role::Operator))
        .await
        .unwrap();
    assert!(!r.accepted, "operators may not enter maintenance: {r:?}");
    let r = rig
        .handle
        .command(OperatorCommand::OutOfService, actor(Role::Operator))
        .await
        .unwrap();
    assert!(r.accepted, "{r:?}");
    rig.wait_for("out of service", |s| s.machine.mode == Mode::OutOfService)
        .await;
    let r = rig
        .handle
        .command(OperatorCommand::InService, actor(Role::Operator))
        .await
        .unwrap();
    assert!(r.accepted);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    rig.stop().await;
    let j = Journal::open(&path).unwrap();
    assert!(j.event_count().unwrap() >= 3);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_chip_is_referred_before_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    rig.shared
        .reads
        .lock()
        .unwrap()
        .push_back(Err(ReadError::AccessDenied("BAC refused".into())));
    let tx = rig.shared.presence.lock().unwrap().clone().unwrap();
    tx.send(Presence::Placed).unwrap();
    rig.wait_for("referred", |s| s.outcomes.referred == 1).await;
    rig.stop().await;
    let j = Journal::open(&path).unwrap();
    let r = j.records_after(0, 1).unwrap();
    assert!(matches!(
        &r[0].record.reasons[0],
        Reason::ChipUnreadable {
            error: ChipFailure::WrongKey,
            ..
        }
    ));
    let json = serde_json::to_value(&r[0].record).unwrap();
    assert_eq!(json["reasons"][0]["code"], "chip_unreadable");
    assert_eq!(json["reasons"][0]["error"], "wrong_key");
}

#[tokio::test(start_paused = true)]
async fn a_malformed_template_is_a_recorded_matcher_error_not_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    // The chip's enrolled thumb does not decode (an empty simulated finger).
    rig.traveller("M1", "#1", Some("p/right#1"));
    rig.wait_for("referred", |s| {
        s.outcomes.referred == 1 && s.machine.mode == Mode::Ready
    })
    .await;
    // The live capture does not decode (a drawn score out of range).
    rig.traveller("M2", "p/right", Some("~7.5"));
    rig.wait_for("referred", |s| {
        s.outcomes.referred == 2 && s.machine.mode == Mode::Ready
    })
    .await;
    let (_, shared) = rig.stop().await;
    assert_eq!(shared.lane.lock().unwrap().out_entry, 2);
    let j = Journal::open(&path).unwrap();
    let r = j.records_after(0, 10).unwrap();
    let want = [
        MatcherFailure::MalformedEnrolledTemplate,
        MatcherFailure::MalformedLiveTemplate,
    ];
    for (rec, error) in r.iter().zip(want) {
        let rec = &rec.record;
        assert_eq!(rec.outcome, Outcome::Referred);
        assert_eq!(rec.reasons, vec![Reason::MatcherError { error }]);
        let b = rec.biometric.expect("a capture was made");
        assert_eq!(b.score, None, "no score was made");
        assert_eq!(b.attempts, 1, "the same templates are not tried again");
    }
    let json = serde_json::to_value(&r[0].record).unwrap();
    assert_eq!(json["reasons"][0]["code"], "matcher_error");
    assert_eq!(json["reasons"][0]["error"], "malformed_enrolled_template");
}

#[tokio::test(start_paused = true)]
async fn a_scanner_fault_reaches_the_record_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut rig = rig(&path);
    rig.wait_for("ready", |s| s.machine.mode == Mode::Ready)
        .await;
    rig.traveller("F1", "p/right", Some(TIMES_OUT));
    rig.wait_for("aborted", |s| s.outcomes.aborted == 1).await;
    rig.stop().await;
    let j = Journal::open(&path).unwrap();
    let r = j.records_after(0, 1).unwrap();
    assert_eq!(
        r[0].record.reasons,
        vec![Reason::DeviceFault {
            device: gate_controller::types::Device::FingerprintScanner,
            kind: Some(FaultKind::Timeout),
        }]
    );
    let json = serde_json::to_value(&r[0].record).unwrap();
    assert_eq!(json["reasons"][0]["kind"], "timeout");
}
