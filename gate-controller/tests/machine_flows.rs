//! Whole-transit flows of the state machine, driven step by step in virtual time with
//! the invariant checker watching every step.

use gate_controller::machine::{Action, Config, Event};
use gate_controller::record::{
    Actor, AlarmKind, Mode, OperatorCommand, Outcome, Prompt, Reason, Role,
};
use gate_controller::types::{
    Device, Door, DoorPosition, FaultKind, MrzDate, Sensor, WatchlistVerdict,
};

mod machine_harness;
use machine_harness::{valid_doc, Harness};

fn supervisor() -> Actor {
    Actor {
        user: "sup".into(),
        role: Role::Supervisor,
        reason: "test".into(),
    }
}

#[test]
fn happy_path_journals_before_the_exit_opens() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    let a = h.capture(0.9);
    let record = a
        .iter()
        .find_map(|a| match a {
            Action::Journal { record } => Some(record.clone()),
            _ => None,
        })
        .expect("a record");
    assert_eq!(record.outcome, Outcome::Cleared);
    assert!(!a.contains(&Action::OpenDoor { door: Door::Exit }));
    let a = h.ev(Event::Journaled { txn: record.txn });
    assert!(a.contains(&Action::OpenDoor { door: Door::Exit }));
    assert!(a.contains(&Action::Display {
        prompt: Prompt::Proceed
    }));
    h.reach(Door::Exit, DoorPosition::Open);
    h.beam(Sensor::ExitBeam, true);
    h.occupancy(0);
    let a = h.ev(Event::Sensor {
        sensor: Sensor::ExitBeam,
        active: false,
    });
    assert!(a.contains(&Action::CloseDoor { door: Door::Exit }));
    h.reach(Door::Exit, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert_eq!(h.records.len(), 1);
    let b = record.biometric.unwrap();
    assert_eq!(b.attempts, 1);
    assert_eq!(b.score, Some(0.9));
}

#[test]
fn three_failed_attempts_refer_and_let_the_traveller_out_through_the_entry() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    let a1 = h.capture(0.1);
    assert!(a1.contains(&Action::CaptureFingerprint { attempt: 2 }));
    let a2 = h.capture(0.2);
    assert!(a2.contains(&Action::CaptureFingerprint { attempt: 3 }));
    let a3 = h.capture(0.3);
    assert!(a3.contains(&Action::OpenDoor { door: Door::Entry }));
    assert!(!h.actions.contains(&Action::OpenDoor { door: Door::Exit }));
    let r = h.records.last().unwrap();
    assert_eq!(r.outcome, Outcome::Referred);
    assert_eq!(r.reasons, vec![Reason::BiometricMismatch]);
    assert_eq!(h.m.snapshot().prompt, Prompt::GoToCounter);
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
}

#[test]
fn watchlist_hold_keeps_doors_shut_until_an_operator_releases() {
    let mut h = Harness::new();
    h.ev(Event::DocumentPresented);
    h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    let a = h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Hold {
            version: 3,
            reason: "SLTD".into(),
        },
    });
    assert!(!a.iter().any(|a| matches!(a, Action::OpenDoor { .. })));
    assert_eq!(h.m.mode(), Mode::Held);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::WatchlistHold));
    // Time alone and a viewer's command do not end it.
    h.wait(3_600_000);
    let viewer = Actor {
        user: "v".into(),
        role: Role::Viewer,
        reason: "try".into(),
    };
    h.ev(Event::Operator {
        command: OperatorCommand::ReleaseHold,
        actor: viewer,
    });
    assert_eq!(h.m.mode(), Mode::Held);
    h.ev(Event::Operator {
        command: OperatorCommand::ReleaseHold,
        actor: supervisor(),
    });
    assert_eq!(h.m.mode(), Mode::Ready);
    assert_eq!(h.records.len(), 1);
    assert_eq!(h.records[0].outcome, Outcome::Held);
}

#[test]
fn expired_document_is_referred_before_entry() {
    let mut h = Harness::new();
    h.ev(Event::DocumentPresented);
    let mut d = valid_doc();
    d.date_of_expiry = MrzDate::parse("940623").unwrap();
    let a = h.ev(Event::DocumentRead { result: Ok(d) });
    assert!(a.contains(&Action::Display {
        prompt: Prompt::GoToCounter
    }));
    assert_eq!(h.records[0].outcome, Outcome::Referred);
    h.wait(5_000);
    assert_eq!(h.m.mode(), Mode::Ready);
}

#[test]
fn emergency_releases_every_door_at_once_and_needs_a_supervisor_reset() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    let a = h.ev(Event::Emergency { active: true });
    assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
    assert!(a.contains(&Action::OpenDoor { door: Door::Exit }));
    assert_eq!(h.records.last().unwrap().outcome, Outcome::Aborted);
    h.ev(Event::Emergency { active: false });
    assert_eq!(h.m.mode(), Mode::Emergency);
    let op = Actor {
        user: "op".into(),
        role: Role::Operator,
        reason: "clear".into(),
    };
    h.ev(Event::Operator {
        command: OperatorCommand::EmergencyReset,
        actor: op,
    });
    assert_eq!(h.m.mode(), Mode::Emergency);
    h.ev(Event::Operator {
        command: OperatorCommand::EmergencyReset,
        actor: supervisor(),
    });
    assert_eq!(h.m.mode(), Mode::Ready);
}

#[test]
fn scanner_fault_lets_the_traveller_out_and_recovery_returns_to_service() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    h.ev(Event::DeviceFault {
        device: Device::FingerprintScanner,
        kind: FaultKind::Unavailable,
        detail: "port vanished".into(),
    });
    assert_eq!(h.records.last().unwrap().outcome, Outcome::Aborted);
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::OutOfService);
    h.ev(Event::DeviceRecovered {
        device: Device::FingerprintScanner,
    });
    assert_eq!(h.m.mode(), Mode::Ready);
}

#[test]
fn a_closing_door_reverses_on_obstruction_and_never_closes_on_a_person() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    h.capture(0.1);
    h.capture(0.1);
    h.capture(0.1);
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    // Entry starts closing; someone steps into its swept area.
    let a = h.ev(Event::Sensor {
        sensor: Sensor::EntrySafety,
        active: true,
    });
    assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
    h.reach(Door::Entry, DoorPosition::Open);
    let a = h.ev(Event::Sensor {
        sensor: Sensor::EntrySafety,
        active: false,
    });
    assert!(a.contains(&Action::CloseDoor { door: Door::Entry }));
}

#[test]
fn shutdown_with_a_traveller_inside_lets_them_out_first() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    let a = h.ev(Event::Shutdown);
    assert!(!a.contains(&Action::ShutdownReady));
    assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    let a = h.ev(Event::DoorReached {
        door: Door::Entry,
        position: DoorPosition::Closed,
    });
    assert!(a.contains(&Action::ShutdownReady));
    assert_eq!(h.records.last().unwrap().outcome, Outcome::Aborted);
}

#[test]
fn tailgater_keeps_exit_shut_and_is_sent_back() {
    let mut h = Harness::new();
    h.ev(Event::DocumentPresented);
    h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Clear { version: 1 },
    });
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(2);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::Tailgating));
    assert_eq!(h.m.snapshot().prompt, Prompt::OnePersonOnly);
    assert!(
        !h.actions.contains(&Action::CloseDoor { door: Door::Entry })
            || h.m.step() != "closing_entry"
    );
    // The second person steps back out: the entry closes behind the one traveller.
    let a = h.ev(Event::Occupancy { persons: 1 });
    assert!(a.contains(&Action::CloseDoor { door: Door::Entry }));
    assert_eq!(h.m.step(), "closing_entry");
}

#[test]
fn a_stubborn_tailgater_gets_both_referred_when_the_enter_deadline_passes() {
    let mut h = Harness::new();
    h.ev(Event::DocumentPresented);
    h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Clear { version: 1 },
    });
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(2);
    h.wait(20_000);
    let r = h.records.last().unwrap();
    assert_eq!(r.outcome, Outcome::Referred);
    assert_eq!(r.reasons, vec![Reason::Tailgating]);
    assert!(!h.actions.contains(&Action::OpenDoor { door: Door::Exit }));
    h.occupancy(0);
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
}

#[test]
fn a_failed_journal_write_keeps_the_exit_shut_and_refers() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    h.capture(0.95);
    let txn = h.records.last().unwrap().txn;
    let a = h.ev(Event::JournalFailed {
        txn,
        detail: "disk I/O error".into(),
    });
    assert!(!a.contains(&Action::OpenDoor { door: Door::Exit }));
    assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
    let r = h.records.last().unwrap();
    assert_eq!((r.txn, r.outcome), (txn, Outcome::Referred));
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::JournalFailure));
    // The journal works again: the referral lands and the gate recovers by itself.
    h.ev(Event::Journaled { txn });
    h.reach(Door::Entry, DoorPosition::Open);
    h.occupancy(0);
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert_eq!(h.m.journal_backlog(), 0);
}

#[test]
fn a_door_opened_without_command_raises_a_forced_door_alarm_and_is_closed_again() {
    let mut h = Harness::new();
    let a = h.ev(Event::DoorReached {
        door: Door::Exit,
        position: DoorPosition::Open,
    });
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::ForcedDoor));
    assert!(a.contains(&Action::CloseDoor { door: Door::Exit }));
    // It stays open: after the travel deadline the gate goes out of service.
    h.wait(5_000);
    assert_eq!(h.m.mode(), Mode::OutOfService);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::DoorFault));
}

#[test]
fn someone_coming_in_through_the_exit_raises_a_wrong_way_alarm() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    let txn = {
        h.capture(0.9);
        h.records.last().unwrap().txn
    };
    h.ev(Event::Journaled { txn });
    h.reach(Door::Exit, DoorPosition::Open);
    h.beam(Sensor::ExitBeam, true);
    h.occupancy(0);
    h.beam(Sensor::ExitBeam, false);
    // Before the exit has closed, a person walks in from the far side.
    h.beam(Sensor::ExitBeam, true);
    h.occupancy(1);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::WrongWay));
    assert!(!h
        .actions
        .ends_with(&[Action::CloseDoor { door: Door::Exit }]));
}

fn operator() -> Actor {
    Actor {
        user: "op".into(),
        role: Role::Operator,
        reason: "test".into(),
    }
}

impl Harness {
    /// A cleared traveller walks out through the exit, breaking the exit beam or not.
    fn leave_through_exit(&mut self, exit_beam_breaks: bool) {
        let a = self.capture(0.9);
        let txn = a
            .iter()
            .find_map(|a| match a {
                Action::Journal { record } => Some(record.txn),
                _ => None,
            })
            .expect("a clear record");
        self.ev(Event::Journaled { txn });
        self.reach(Door::Exit, DoorPosition::Open);
        if exit_beam_breaks {
            self.beam(Sensor::ExitBeam, true);
        }
        self.occupancy(0);
        if exit_beam_breaks {
            self.beam(Sensor::ExitBeam, false);
        }
        self.reach(Door::Exit, DoorPosition::Closed);
    }
}

#[test]
fn a_beam_blocked_in_an_empty_lane_takes_the_gate_out_of_service_until_in_service() {
    let mut h = Harness::new();
    let blocked_ms = Config::default().timeouts.beam_blocked_ms;
    h.beam(Sensor::EntryBeam, true);
    // Short blockages (a hand, a bag swung past) are tolerated.
    h.wait(blocked_ms - 100);
    assert_eq!(h.m.mode(), Mode::Ready);
    let deadline = h.m.poll_timeout().expect("the supervision deadline");
    assert!(deadline <= h.now.plus(100));
    h.wait(100);
    assert_eq!(h.m.mode(), Mode::OutOfService);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::DeviceFault));
    // No transit starts while it is out.
    h.ev(Event::DocumentPresented);
    assert_eq!(h.m.snapshot().txn, None);
    // Cleared beam alone does not return it; the operator's in_service does.
    h.beam(Sensor::EntryBeam, false);
    assert_eq!(h.m.mode(), Mode::OutOfService);
    h.ev(Event::Operator {
        command: OperatorCommand::InService,
        actor: operator(),
    });
    assert_eq!(h.m.mode(), Mode::Ready);
    assert!(!h.m.snapshot().alarms.contains(&AlarmKind::DeviceFault));
    // A beam still blocked after in_service is found out again.
    h.beam(Sensor::EntryBeam, true);
    h.wait(blocked_ms);
    assert_eq!(h.m.mode(), Mode::OutOfService);
}

#[test]
fn an_exit_beam_that_never_breaks_across_transits_takes_the_gate_out_of_service() {
    let mut h = Harness::new();
    let n = Config::default().beam_silent_transits;
    assert!(n >= 2);
    // A silent transit followed by a normal one resets the count.
    h.enter(valid_doc());
    h.leave_through_exit(false);
    h.enter(valid_doc());
    h.leave_through_exit(true);
    for k in 0..n {
        assert_eq!(h.m.mode(), Mode::Ready, "after {k} silent transits");
        h.enter(valid_doc());
        h.leave_through_exit(false);
    }
    assert_eq!(h.m.mode(), Mode::OutOfService);
    assert!(h.m.snapshot().alarms.contains(&AlarmKind::DeviceFault));
    let cleared = h
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Cleared)
        .count();
    assert_eq!(cleared, usize::from(n) + 2);
}
