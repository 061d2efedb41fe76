//! The state machine and its lane I/O: a lost link with an undecided traveller inside,
//! and the lane interlock refusing a door command. Virtual time, invariant checker on.

use gate_controller::machine::{Action, Event};
use gate_controller::record::{AlarmKind, GateEvent, Mode, Outcome, Reason};
use gate_controller::types::{Device, Door, DoorPosition, FaultKind, Sensor, WatchlistVerdict};

mod machine_harness;
use machine_harness::{valid_doc, Harness};

fn lane_link_lost() -> Event {
    Event::DeviceFault {
        device: Device::LaneIo,
        kind: FaultKind::Link,
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
            device: Device::LaneIo,
            kind: Some(FaultKind::Link),
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

/// Walks a valid traveller in and clears them: the exit opens, they are in the lane.
fn cleared_and_exiting(h: &mut Harness) {
    h.enter(valid_doc());
    h.capture(0.9);
    let r = h.records.last().expect("the clear record").clone();
    assert_eq!(r.outcome, Outcome::Cleared);
    let a = h.ev(Event::Journaled { txn: r.txn });
    assert!(a.contains(&Action::OpenDoor { door: Door::Exit }));
    h.reach(Door::Exit, DoorPosition::Open);
    assert_eq!(h.m.step(), "exiting");
}

#[test]
fn a_lost_lane_link_while_a_cleared_traveller_leaves_serves_nobody_until_they_are_out() {
    let mut h = Harness::new();
    cleared_and_exiting(&mut h);
    let a = h.ev(lane_link_lost());
    assert_eq!(h.m.mode(), Mode::OutOfService);
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
        "the feed hears of the mode change: {a:?}"
    );
    h.wait(5_000);
    h.wait(30_000);
    // The link is back and the traveller is still inside: nobody new is served and the
    // exit stays open for them.
    let a = h.ev(Event::DeviceRecovered {
        device: Device::LaneIo,
    });
    assert!(
        !a.contains(&Action::CloseDoor { door: Door::Exit }),
        "{a:?}"
    );
    assert_eq!(h.m.mode(), Mode::Transit);
    assert_eq!(h.m.step(), "exiting");
    let a = h.ev(Event::DocumentPresented);
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::OpenDoor { door: Door::Entry })),
        "a second traveller is not let in: {a:?}"
    );
    // They walk out: the exit closes behind them and the gate is ready again.
    h.beam(Sensor::ExitBeam, true);
    h.occupancy(0);
    let a = h.beam(Sensor::ExitBeam, false);
    assert!(a.contains(&Action::CloseDoor { door: Door::Exit }));
    h.reach(Door::Exit, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert_eq!(h.records.len(), 1, "one record, the clear one");
}

#[test]
fn a_cleared_traveller_who_left_while_the_link_was_down_is_closed_behind_on_recovery() {
    let mut h = Harness::new();
    cleared_and_exiting(&mut h);
    h.ev(lane_link_lost());
    h.wait(10_000);
    h.ev(Event::DeviceRecovered {
        device: Device::LaneIo,
    });
    // The I/O reports the lane as it is now: empty.
    let a = h.occupancy(0);
    assert!(a.contains(&Action::CloseDoor { door: Door::Exit }), "{a:?}");
    h.reach(Door::Exit, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
}

/// Found by `machine_props`: the exit reopened for its safety sensor reports "closed"
/// before it moves, then is commanded closed again. That earlier report may predate the
/// motion the reopening set off, so the entry stays shut until the exit reports closed
/// after the close command (invariant 2; the checker in the harness would fail the test).
#[test]
fn an_exit_reported_closed_before_its_close_command_does_not_open_the_entry() {
    let mut h = Harness::unreported(gate_controller::machine::Config::default());
    h.ev(Event::DocumentPresented);
    h.ev(Event::DocumentRead {
        result: Ok(valid_doc()),
    });
    let a = h.beam(Sensor::ExitSafety, true);
    assert!(a.contains(&Action::OpenDoor { door: Door::Exit }), "{a:?}");
    h.ev(Event::WatchlistChecked {
        verdict: WatchlistVerdict::Clear { version: 1 },
    });
    h.reach(Door::Exit, DoorPosition::Closed);
    let a = h.beam(Sensor::ExitSafety, false);
    assert!(a.contains(&Action::CloseDoor { door: Door::Exit }), "{a:?}");
    assert!(
        !a.contains(&Action::OpenDoor { door: Door::Entry }),
        "{a:?}"
    );
    // The exit reports closed after the command: now the entry opens.
    let a = h.reach(Door::Exit, DoorPosition::Closed);
    assert!(a.contains(&Action::OpenDoor { door: Door::Entry }), "{a:?}");
}
