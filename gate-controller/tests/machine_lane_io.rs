//! The state machine and its lane I/O: a lost link with an undecided traveller inside,
//! and the lane interlock refusing a door command. Virtual time, invariant checker on.

use gate_controller::invariants::Checker;
use gate_controller::machine::{Action, Config, Event, Machine};
use gate_controller::record::{AlarmKind, GateEvent, Mode, Outcome, Reason, Record};
use gate_controller::types::{
    CaptureInfo, Device, Document, DocumentKind, Door, DoorPosition, MrzDate, PaStatus, Sensor,
    Time, WatchlistVerdict,
};

/// 2026-11-26T12:00:00Z in Unix milliseconds.
const T0: u64 = 1_795_694_400_000;

struct Harness {
    m: Machine,
    now: Time,
    checker: Checker,
    actions: Vec<Action>,
    records: Vec<Record>,
}

impl Harness {
    fn new() -> Harness {
        let now = Time(T0);
        let m = Machine::new(Config::default(), now, 1);
        let mut h = Harness {
            m,
            now,
            checker: Checker::new(),
            actions: Vec::new(),
            records: Vec::new(),
        };
        h.drain(None);
        h.ev(Event::DoorReached {
            door: Door::Entry,
            position: DoorPosition::Closed,
        });
        h.ev(Event::DoorReached {
            door: Door::Exit,
            position: DoorPosition::Closed,
        });
        h
    }

    fn drain(&mut self, event: Option<&Event>) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.m.poll_action() {
            if let Action::Journal { record } = &a {
                self.records.push(record.clone());
            }
            out.push(a);
        }
        self.checker.observe(event, &out);
        assert!(
            self.checker.violations().is_empty(),
            "{:?}",
            self.checker.violations()
        );
        self.actions.extend(out.clone());
        out
    }

    fn ev(&mut self, e: Event) -> Vec<Action> {
        self.now = self.now.plus(10);
        self.m.handle(self.now, e.clone());
        self.drain(Some(&e))
    }

    fn wait(&mut self, ms: u64) -> Vec<Action> {
        self.now = self.now.plus(ms);
        self.m.handle_timeout(self.now);
        self.drain(None)
    }

    fn reach(&mut self, door: Door, position: DoorPosition) {
        self.ev(Event::DoorReached { door, position });
    }

    fn occupancy(&mut self, persons: u8) {
        self.ev(Event::Occupancy { persons });
    }

    fn beam(&mut self, sensor: Sensor, active: bool) {
        self.ev(Event::Sensor { sensor, active });
    }

    /// Presents a valid document and walks the traveller in until capture starts.
    fn enter(&mut self, doc: Document) {
        self.ev(Event::DocumentPresented);
        let a = self.ev(Event::DocumentRead { result: Ok(doc) });
        assert!(a.iter().any(|a| matches!(a, Action::CheckWatchlist { .. })));
        let a = self.ev(Event::WatchlistChecked {
            verdict: WatchlistVerdict::Clear { version: 7 },
        });
        assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
        self.reach(Door::Entry, DoorPosition::Open);
        self.beam(Sensor::EntryBeam, true);
        self.occupancy(1);
        let a = self.ev(Event::Sensor {
            sensor: Sensor::EntryBeam,
            active: false,
        });
        assert!(a.contains(&Action::CloseDoor { door: Door::Entry }));
        let a = self.ev(Event::DoorReached {
            door: Door::Entry,
            position: DoorPosition::Closed,
        });
        assert!(a.contains(&Action::CaptureFingerprint { attempt: 1 }));
    }

    fn capture(&mut self, score: f32) -> Vec<Action> {
        let a = self.ev(Event::FingerprintCaptured {
            result: Ok(CaptureInfo {
                quality: 80,
                minutiae: 40,
            }),
        });
        assert!(a
            .iter()
            .any(|a| matches!(a, Action::MatchFingerprint { .. })));
        self.ev(Event::MatchDone { score })
    }
}

fn valid_doc() -> Document {
    Document {
        kind: DocumentKind::Passport,
        issuing_state: "UTO".into(),
        document_number: "L898902C".into(),
        nationality: "UTO".into(),
        date_of_birth: MrzDate::parse("690806").unwrap(),
        date_of_expiry: MrzDate::parse("340623").unwrap(),
        passive_auth: PaStatus::Valid,
        mrz_matches_ocr: true,
        enrolled_thumbs: 2,
    }
}

fn lane_link_lost() -> Event {
    Event::DeviceFault {
        device: Device::LaneIo,
        detail: "Modbus module 127.0.0.1:1502 unreachable".into(),
    }
}

#[test]
fn a_lost_lane_link_with_an_undecided_traveller_inside_is_out_of_service_until_let_out() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    assert_eq!(h.m.mode(), Mode::Transit);
    let a = h.ev(lane_link_lost());
    // Out of service with the alarm while the link is down, not "transit".
    assert_eq!(h.m.mode(), Mode::OutOfService);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::DeviceFault));
    assert!(
        a.iter().any(|a| matches!(
            a,
            Action::Emit {
                event: GateEvent::StepChanged {
                    mode: Mode::OutOfService,
                    ..
                }
            }
        )),
        "the step change reports out of service: {a:?}"
    );
    let r = h.records.last().expect("a record");
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!(
        r.reasons,
        vec![Reason::DeviceFault {
            device: Device::LaneIo
        }]
    );
    // Time passes with the link down: still out of service, the exit never opens.
    h.wait(5_000);
    h.wait(30_000);
    assert_eq!(h.m.mode(), Mode::OutOfService);
    assert!(!h.actions.contains(&Action::OpenDoor { door: Door::Exit }));
    assert!(!h.m.snapshot().alarms.is_empty());
    // The link is back: the traveller is let out through the entry.
    h.ev(Event::DeviceRecovered {
        device: Device::LaneIo,
    });
    assert_eq!(h.m.step(), "letting_out");
    assert_eq!(h.m.mode(), Mode::Transit);
    assert_eq!(h.m.snapshot().entry.0, DoorPosition::Open);
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert!(!h.actions.contains(&Action::OpenDoor { door: Door::Exit }));
    assert_eq!(h.records.len(), 1);
}

#[test]
fn a_close_refused_by_the_interlock_counts_as_one_obstruction() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    h.capture(0.1);
    h.capture(0.1);
    h.capture(0.1);
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    assert_eq!(
        h.m.snapshot().entry.0,
        DoorPosition::Closed,
        "entry closing"
    );
    // Each round: the interlock refuses the close (before the debounced sensor report
    // arrives), then the sensor report reverses the door, then it clears.
    for round in 1..=3 {
        let a = h.ev(Event::DoorRefused {
            door: Door::Entry,
            position: DoorPosition::Closed,
        });
        assert!(a.iter().all(|a| !matches!(a, Action::CloseDoor { .. })));
        h.ev(Event::Sensor {
            sensor: Sensor::EntrySafety,
            active: true,
        });
        h.reach(Door::Entry, DoorPosition::Open);
        let a = h.ev(Event::Sensor {
            sensor: Sensor::EntrySafety,
            active: false,
        });
        assert!(
            a.contains(&Action::CloseDoor { door: Door::Entry }),
            "round {round}: closing again"
        );
        assert!(!h.m.snapshot().alarms.contains(&AlarmKind::DoorFault));
    }
    // The fourth refusal is one too many (max_door_reversals = 3): door fault.
    h.ev(Event::DoorRefused {
        door: Door::Entry,
        position: DoorPosition::Closed,
    });
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::DoorFault));
}

#[test]
fn a_close_refused_for_a_one_scan_glitch_closes_normally() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    h.capture(0.1);
    h.capture(0.1);
    h.capture(0.1);
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    h.ev(Event::DoorRefused {
        door: Door::Entry,
        position: DoorPosition::Closed,
    });
    // A second report of the same refusal is not counted again.
    h.ev(Event::DoorRefused {
        door: Door::Entry,
        position: DoorPosition::Closed,
    });
    assert_eq!(
        h.m.snapshot().entry.0,
        DoorPosition::Closed,
        "still commanded closed"
    );
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert!(!h.m.snapshot().alarms.contains(&AlarmKind::DoorFault));
}

#[test]
fn an_open_refused_by_the_interlock_is_a_door_fault() {
    let mut h = Harness::new();
    h.ev(Event::DocumentPresented);
    h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    let a = h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Clear { version: 7 },
    });
    assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
    h.ev(Event::DoorRefused {
        door: Door::Entry,
        position: DoorPosition::Open,
    });
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::DoorFault));
    assert_eq!(h.records.last().unwrap().outcome, Outcome::Aborted);
    // Whoever may have stepped in is let out through the entry, then out of service.
    assert_eq!(h.m.step(), "letting_out");
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::OutOfService);
    assert!(!h.actions.contains(&Action::OpenDoor { door: Door::Exit }));
    // A refusal of something not commanded (a stale report) is ignored.
    let mut h = Harness::new();
    h.ev(Event::DoorRefused {
        door: Door::Exit,
        position: DoorPosition::Open,
    });
    assert_eq!(h.m.mode(), Mode::Ready);
    assert!(h.m.snapshot().alarms.is_empty());
}
