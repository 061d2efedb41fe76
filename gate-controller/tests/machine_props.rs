//! Property tests: random event sequences (≥ 10,000 cases) against the invariants of
//! DESIGN.md, checked after every input by `invariants::Checker`.

use gate_controller::invariants::Checker;
use gate_controller::machine::{Action, Config, Event, Machine};
use gate_controller::record::{Actor, AlarmKind, OperatorCommand, Role, TxnId};
use gate_controller::types::{
    CaptureFailure, CaptureInfo, ChipFailure, Device, Document, DocumentKind, Door, DoorPosition,
    FaultKind, MrzDate, PaStatus, ReadFailure, Sensor, Time, WatchlistVerdict,
};
use gate_controller::upstream::disk::DiskLevel;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Present,
    ReadOk(u8),
    ReadErr,
    Watchlist(u8),
    Sensor(u8, bool),
    Occupancy(u8),
    ReachTarget(bool),
    ReachAny(bool, bool),
    CaptureOk(u8, u16),
    CaptureErr(bool),
    Match(f32),
    JournalAck,
    JournalFail,
    Command(u8, u8),
    Emergency(bool),
    Fault(u8),
    Recover(u8),
    Shutdown,
    Advance(u64),
    Disk(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Present),
        3 => (0u8..5).prop_map(Op::ReadOk),
        1 => Just(Op::ReadErr),
        3 => (0u8..4).prop_map(Op::Watchlist),
        6 => (0u8..4, any::<bool>()).prop_map(|(s, a)| Op::Sensor(s, a)),
        5 => (0u8..4).prop_map(Op::Occupancy),
        8 => any::<bool>().prop_map(Op::ReachTarget),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(d, p)| Op::ReachAny(d, p)),
        3 => (0u8..101, 0u16..60).prop_map(|(q, m)| Op::CaptureOk(q, m)),
        1 => any::<bool>().prop_map(Op::CaptureErr),
        3 => (0.0f32..1.0).prop_map(Op::Match),
        4 => Just(Op::JournalAck),
        1 => Just(Op::JournalFail),
        2 => (0u8..11, 0u8..3).prop_map(|(c, r)| Op::Command(c, r)),
        1 => any::<bool>().prop_map(Op::Emergency),
        1 => (0u8..5).prop_map(Op::Fault),
        2 => (0u8..5).prop_map(Op::Recover),
        1 => Just(Op::Shutdown),
        5 => (0u64..30_000).prop_map(Op::Advance),
        1 => (0u8..3).prop_map(Op::Disk),
    ]
}

fn document(variant: u8) -> Document {
    let mut d = Document {
        kind: DocumentKind::Passport,
        issuing_state: "UTO".into(),
        document_number: format!("X{variant}"),
        nationality: "UTO".into(),
        date_of_birth: MrzDate::parse("800101").unwrap(),
        date_of_expiry: MrzDate::parse("351231").unwrap(),
        passive_auth: PaStatus::Valid,
        mrz_matches_ocr: true,
        enrolled_thumbs: 2,
    };
    match variant {
        1 => d.date_of_expiry = MrzDate::parse("200101").unwrap(),
        2 => d.passive_auth = PaStatus::Invalid,
        3 => d.date_of_birth = MrzDate::parse("200101").unwrap(),
        _ => {}
    }
    d
}

const DEVICES: [Device; 5] = [
    Device::DocumentReader,
    Device::FingerprintScanner,
    Device::LaneIo,
    Device::Journal,
    Device::Watchlist,
];

fn command(c: u8) -> OperatorCommand {
    match c {
        0 => OperatorCommand::OpenEntry,
        1 => OperatorCommand::OpenExit,
        2 => OperatorCommand::ReleaseHold,
        3 => OperatorCommand::Refer,
        4 => OperatorCommand::OutOfService,
        5 => OperatorCommand::InService,
        6 => OperatorCommand::EmergencyRelease,
        7 => OperatorCommand::EmergencyReset,
        8 => OperatorCommand::MaintenanceOn,
        9 => OperatorCommand::MaintenanceOff,
        _ => OperatorCommand::AcknowledgeAlarm {
            alarm: AlarmKind::Tailgating,
        },
    }
}

struct Run {
    m: Machine,
    now: Time,
    checker: Checker,
    /// Records handed to the journal and not yet answered, oldest first.
    pending: std::collections::VecDeque<TxnId>,
}

impl Run {
    fn drain(&mut self, event: Option<&Event>) {
        let mut out = Vec::new();
        while let Some(a) = self.m.poll_action() {
            if let Action::Journal { record } = &a {
                self.pending.push_back(record.txn);
            }
            out.push(a);
        }
        self.checker.observe(event, &out);
    }

    fn apply(&mut self, op: Op) {
        let event = match op {
            Op::Advance(ms) => {
                self.now = self.now.plus(ms);
                if self.m.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.m.handle_timeout(self.now);
                    self.drain(None);
                }
                return;
            }
            Op::Present => Event::DocumentPresented,
            Op::ReadOk(v) => Event::DocumentRead {
                result: Ok(document(v)),
            },
            Op::ReadErr => Event::DocumentRead {
                result: Err(ReadFailure {
                    code: ChipFailure::BadMac,
                    detail: "secure messaging MAC mismatch".into(),
                }),
            },
            Op::Watchlist(v) => Event::WatchlistChecked {
                verdict: match v {
                    0 => WatchlistVerdict::Clear { version: 1 },
                    1 => WatchlistVerdict::Refer {
                        version: 1,
                        reason: "R".into(),
                    },
                    2 => WatchlistVerdict::Hold {
                        version: 1,
                        reason: "H".into(),
                    },
                    _ => WatchlistVerdict::Stale { version: 1 },
                },
            },
            Op::Sensor(s, active) => Event::Sensor {
                sensor: [
                    Sensor::EntryBeam,
                    Sensor::ExitBeam,
                    Sensor::EntrySafety,
                    Sensor::ExitSafety,
                ][usize::from(s % 4)],
                active,
            },
            Op::Occupancy(n) => Event::Occupancy { persons: n },
            Op::ReachTarget(exit) => {
                let door = if exit { Door::Exit } else { Door::Entry };
                Event::DoorReached {
                    door,
                    position: self.m.door(door).target,
                }
            }
            Op::ReachAny(exit, open) => Event::DoorReached {
                door: if exit { Door::Exit } else { Door::Entry },
                position: if open {
                    DoorPosition::Open
                } else {
                    DoorPosition::Closed
                },
            },
            Op::CaptureOk(quality, minutiae) => Event::FingerprintCaptured {
                result: Ok(CaptureInfo { quality, minutiae }),
            },
            Op::CaptureErr(nofinger) => Event::FingerprintCaptured {
                result: Err(if nofinger {
                    CaptureFailure::NoFinger
                } else {
                    CaptureFailure::Poor
                }),
            },
            Op::Match(score) => Event::MatchDone { score },
            Op::JournalAck => match self.pending.pop_front() {
                Some(txn) => Event::Journaled { txn },
                None => return,
            },
            Op::JournalFail => match self.pending.pop_front() {
                Some(txn) => Event::JournalFailed {
                    txn,
                    detail: "disk I/O error".into(),
                },
                None => return,
            },
            Op::Command(c, r) => Event::Operator {
                command: command(c),
                actor: Actor {
                    user: "u".into(),
                    role: [Role::Viewer, Role::Operator, Role::Supervisor][usize::from(r % 3)],
                    reason: "prop".into(),
                },
            },
            Op::Emergency(active) => Event::Emergency { active },
            Op::Fault(d) => Event::DeviceFault {
                device: DEVICES[usize::from(d % 5)],
                kind: FaultKind::Hardware,
                detail: "fault".into(),
            },
            Op::Recover(d) => Event::DeviceRecovered {
                device: DEVICES[usize::from(d % 5)],
            },
            Op::Shutdown => Event::Shutdown,
            Op::Disk(l) => Event::DiskLevel {
                level: [DiskLevel::Ok, DiskLevel::Alarm, DiskLevel::StopClearing]
                    [usize::from(l % 3)],
                detail: "disk".into(),
            },
        };
        self.now = self.now.plus(5);
        self.m.handle(self.now, event.clone());
        self.drain(Some(&event));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        max_shrink_iters: 20_000,
        .. ProptestConfig::default()
    })]

    /// Whatever happens, in whatever order, no invariant of DESIGN.md breaks.
    #[test]
    fn random_event_sequences_never_break_an_invariant(ops in prop::collection::vec(op(), 1..150)) {
        let now = Time(1_795_694_400_000);
        let mut run = Run {
            m: Machine::new(Config::default(), now, 1),
            now,
            checker: Checker::new(),
            pending: Default::default(),
        };
        run.drain(None);
        for op in ops {
            run.apply(op);
            prop_assert!(run.checker.violations().is_empty(), "{:?}", run.checker.violations());
        }
        // A cooperative journal then answers everything, retries included.
        for _ in 0..10 {
            while let Some(txn) = run.pending.pop_front() {
                run.now = run.now.plus(1);
                let e = Event::Journaled { txn };
                run.m.handle(run.now, e.clone());
                run.drain(Some(&e));
            }
            if run.m.journal_backlog() == 0 {
                break;
            }
            run.apply(Op::Advance(2_000));
        }
        prop_assert_eq!(run.m.journal_backlog(), 0);
        let in_progress = run.m.snapshot().txn;
        run.checker.finish(in_progress);
        prop_assert!(run.checker.violations().is_empty(), "{:?}", run.checker.violations());
    }
}
