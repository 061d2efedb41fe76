//! The state machine driven step by step in virtual time with the invariant checker
//! watching every step: the harness the machine flow tests share.
#![allow(dead_code, clippy::new_without_default)]

use gate_controller::invariants::Checker;
use gate_controller::machine::{Action, Config, Event, Machine};
use gate_controller::record::Record;
use gate_controller::types::{
    CaptureInfo, Document, DocumentKind, Door, DoorPosition, MrzDate, PaStatus, Sensor, Time,
    WatchlistVerdict,
};

/// 2026-11-26T12:00:00Z in Unix milliseconds.
pub const T0: u64 = 1_795_694_400_000;

/// A machine, virtual time, the invariant checker, and everything the machine did.
pub struct Harness {
    pub m: Machine,
    pub now: Time,
    pub checker: Checker,
    pub actions: Vec<Action>,
    pub records: Vec<Record>,
}

impl Harness {
    /// A machine on the default configuration, both doors reported closed.
    pub fn new() -> Harness {
        Harness::with_config(Config::default())
    }

    /// A machine on `cfg`, both doors reported closed.
    pub fn with_config(cfg: Config) -> Harness {
        let mut h = Harness::unreported(cfg);
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

    /// A machine on `cfg` whose doors have reported nothing yet.
    pub fn unreported(cfg: Config) -> Harness {
        let now = Time(T0);
        let mut h = Harness {
            m: Machine::new(cfg, now, 1),
            now,
            checker: Checker::new(),
            actions: Vec::new(),
            records: Vec::new(),
        };
        h.drain(None);
        h
    }

    pub fn drain(&mut self, event: Option<&Event>) -> Vec<Action> {
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

    pub fn ev(&mut self, e: Event) -> Vec<Action> {
        self.now = self.now.plus(10);
        self.m.handle(self.now, e.clone());
        self.drain(Some(&e))
    }

    pub fn wait(&mut self, ms: u64) -> Vec<Action> {
        self.now = self.now.plus(ms);
        self.m.handle_timeout(self.now);
        self.drain(None)
    }

    pub fn reach(&mut self, door: Door, position: DoorPosition) -> Vec<Action> {
        self.ev(Event::DoorReached { door, position })
    }

    pub fn occupancy(&mut self, persons: u8) -> Vec<Action> {
        self.ev(Event::Occupancy { persons })
    }

    pub fn beam(&mut self, sensor: Sensor, active: bool) -> Vec<Action> {
        self.ev(Event::Sensor { sensor, active })
    }

    /// Presents a valid document and walks the traveller in until capture starts.
    pub fn enter(&mut self, doc: Document) {
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

    pub fn capture(&mut self, score: f32) -> Vec<Action> {
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

/// A valid passport (the ICAO 9303 specimen).
pub fn valid_doc() -> Document {
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
