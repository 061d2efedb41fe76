//! The disk guard in the state machine (`Event::DiskLevel`): `disk_space_low` at
//! `Alarm`, `disk_full` and referral before entry at `StopClearing`, both cleared at
//! `Ok`; a traveller already let in finishes safely. Driven in virtual time with the
//! invariant checker watching every step.

use gate_controller::machine::{Action, Event};
use gate_controller::record::{
    Actor, AlarmKind, GateEvent, Mode, OperatorCommand, Outcome, Prompt, Reason, Role,
};
use gate_controller::types::{Door, DoorPosition, Sensor, WatchlistVerdict};
use gate_controller::upstream::disk::DiskLevel;

mod machine_harness;
use machine_harness::{valid_doc, Harness};

fn disk(h: &mut Harness, level: DiskLevel) -> Vec<Action> {
    h.ev(Event::DiskLevel {
        level,
        detail: format!("journal file system at {level:?}"),
    })
}

fn alarms(h: &Harness) -> Vec<AlarmKind> {
    h.m.snapshot().alarms
}

fn raised(actions: &[Action]) -> Vec<AlarmKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit {
                event: GateEvent::AlarmRaised { alarm, .. },
            } => Some(*alarm),
            _ => None,
        })
        .collect()
}

fn cleared(actions: &[Action]) -> Vec<AlarmKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit {
                event: GateEvent::AlarmCleared { alarm },
            } => Some(*alarm),
            _ => None,
        })
        .collect()
}

fn opens(actions: &[Action], door: Door) -> bool {
    actions.contains(&Action::OpenDoor { door })
}

/// Presents a valid document with a clear watchlist verdict: the actions of the verdict.
fn present(h: &mut Harness) -> Vec<Action> {
    h.ev(Event::DocumentPresented);
    let a = h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    assert!(a.iter().any(|a| matches!(a, Action::CheckWatchlist { .. })));
    h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Clear { version: 7 },
    })
}

#[test]
fn each_level_raises_its_alarm_and_ok_clears_them() {
    let mut h = Harness::new();
    let a = disk(&mut h, DiskLevel::Alarm);
    assert_eq!(raised(&a), [AlarmKind::DiskSpaceLow]);
    assert!(a.iter().any(|a| matches!(
        a,
        Action::Emit { event: GateEvent::AlarmRaised { detail, .. } } if detail.contains("Alarm")
    )));
    assert_eq!(alarms(&h), [AlarmKind::DiskSpaceLow]);
    assert_eq!(h.m.mode(), Mode::Ready);

    let a = disk(&mut h, DiskLevel::StopClearing);
    assert_eq!(raised(&a), [AlarmKind::DiskFull]);
    assert_eq!(cleared(&a), [AlarmKind::DiskSpaceLow]);
    assert_eq!(alarms(&h), [AlarmKind::DiskFull]);

    let a = disk(&mut h, DiskLevel::Alarm);
    assert_eq!(raised(&a), [AlarmKind::DiskSpaceLow]);
    assert_eq!(cleared(&a), [AlarmKind::DiskFull]);

    let a = disk(&mut h, DiskLevel::StopClearing);
    assert_eq!(alarms(&h), [AlarmKind::DiskFull], "{a:?}");
    let a = disk(&mut h, DiskLevel::Ok);
    assert_eq!(cleared(&a), [AlarmKind::DiskFull]);
    assert!(alarms(&h).is_empty());
    assert!(raised(&a).is_empty());
    // No door moves for a disk level, in any direction.
    assert!(!h
        .actions
        .iter()
        .any(|a| matches!(a, Action::OpenDoor { .. })));
}

#[test]
fn while_the_disk_is_full_the_next_traveller_is_referred_before_entry() {
    let mut h = Harness::new();
    disk(&mut h, DiskLevel::StopClearing);
    let a = present(&mut h);
    assert!(!opens(&a, Door::Entry), "{a:?}");
    assert!(a.contains(&Action::Display {
        prompt: Prompt::GoToCounter
    }));
    let r = h.records.last().expect("a record").clone();
    assert_eq!(r.outcome, Outcome::Referred);
    assert_eq!(r.reasons, [Reason::DiskFull]);
    assert!(r.document.is_some(), "the record says who was referred");
    h.wait(5_000);
    assert_eq!(h.m.mode(), Mode::Ready);

    // A second one, too; at `Alarm` only the alarm is raised and travellers go in.
    let a = present(&mut h);
    assert!(!opens(&a, Door::Entry));
    assert_eq!(h.records.len(), 2);
    h.wait(5_000);
    disk(&mut h, DiskLevel::Alarm);
    h.enter(valid_doc());
    let a = h.capture(0.9);
    let r = h.records.last().expect("a record").clone();
    assert_eq!(r.outcome, Outcome::Cleared, "{a:?}");
    assert_eq!(alarms(&h), [AlarmKind::DiskSpaceLow]);
}

#[test]
fn back_to_ok_the_gate_clears_again() {
    let mut h = Harness::new();
    disk(&mut h, DiskLevel::StopClearing);
    present(&mut h);
    h.wait(5_000);
    disk(&mut h, DiskLevel::Ok);
    assert!(alarms(&h).is_empty());
    h.enter(valid_doc());
    h.capture(0.9);
    let r = h.records.last().expect("a record").clone();
    assert_eq!(r.outcome, Outcome::Cleared);
    let a = h.ev(Event::Journaled { txn: r.txn });
    assert!(opens(&a, Door::Exit));
}

#[test]
fn a_watchlist_hold_still_holds_when_the_disk_is_full() {
    let mut h = Harness::new();
    disk(&mut h, DiskLevel::StopClearing);
    h.ev(Event::DocumentPresented);
    h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Hold {
            version: 3,
            reason: "SLTD".into(),
        },
    });
    assert_eq!(h.m.mode(), Mode::Held);
    assert_eq!(h.records.last().map(|r| r.outcome), Some(Outcome::Held));
}

#[test]
fn a_traveller_inside_when_the_disk_fills_finishes_and_leaves_through_the_exit() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    let a = disk(&mut h, DiskLevel::StopClearing);
    // Nothing moves: the traveller is neither trapped nor let out undecided.
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::OpenDoor { .. } | Action::CloseDoor { .. })),
        "{a:?}"
    );
    assert_eq!(alarms(&h), [AlarmKind::DiskFull]);
    let a = h.capture(0.9);
    assert!(!opens(&a, Door::Exit), "not before the record is committed");
    let r = h.records.last().expect("a record").clone();
    assert_eq!(r.outcome, Outcome::Cleared);
    let a = h.ev(Event::Journaled { txn: r.txn });
    assert!(opens(&a, Door::Exit));
    h.reach(Door::Exit, DoorPosition::Open);
    h.beam(Sensor::ExitBeam, true);
    h.occupancy(0);
    h.beam(Sensor::ExitBeam, false);
    h.reach(Door::Exit, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    // The next one is referred.
    present(&mut h);
    assert_eq!(
        h.records.last().map(|r| r.reasons.clone()),
        Some(vec![Reason::DiskFull])
    );
}

#[test]
fn a_traveller_inside_whose_record_cannot_be_written_is_let_out_through_the_entry() {
    let mut h = Harness::new();
    h.enter(valid_doc());
    disk(&mut h, DiskLevel::StopClearing);
    h.capture(0.9);
    let r = h.records.last().expect("a record").clone();
    let a = h.ev(Event::JournalFailed {
        txn: r.txn,
        detail: "database or disk is full".into(),
    });
    assert!(!h.actions.contains(&Action::OpenDoor { door: Door::Exit }));
    assert!(opens(&a, Door::Entry), "{a:?}");
    let r = h.records.last().expect("a record");
    assert_eq!(r.outcome, Outcome::Referred);
    assert_eq!(r.reasons, [Reason::JournalFailure]);
}

#[test]
fn a_traveller_walking_in_when_the_disk_fills_is_not_turned_around() {
    let mut h = Harness::new();
    let a = present(&mut h);
    assert!(opens(&a, Door::Entry));
    disk(&mut h, DiskLevel::StopClearing);
    h.reach(Door::Entry, DoorPosition::Open);
    h.beam(Sensor::EntryBeam, true);
    h.occupancy(1);
    h.beam(Sensor::EntryBeam, false);
    let a = h.reach(Door::Entry, DoorPosition::Closed);
    assert!(
        a.contains(&Action::CaptureFingerprint { attempt: 1 }),
        "{a:?}"
    );
}

#[test]
fn an_acknowledged_disk_full_alarm_returns_with_the_next_referral() {
    let mut h = Harness::new();
    disk(&mut h, DiskLevel::StopClearing);
    h.ev(Event::Operator {
        command: OperatorCommand::AcknowledgeAlarm {
            alarm: AlarmKind::DiskFull,
        },
        actor: Actor {
            user: "op".into(),
            role: Role::Operator,
            reason: "seen".into(),
        },
    });
    assert!(alarms(&h).is_empty());
    let a = present(&mut h);
    assert_eq!(raised(&a), [AlarmKind::DiskFull]);
    assert!(!opens(&a, Door::Entry));
}
