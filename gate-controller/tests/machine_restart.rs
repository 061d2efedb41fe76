//! A restart in the middle of a transit (`Machine::resume`): the transit the
//! journal shows started without a record ends `aborted` (reason `restart`), whoever is
//! inside is let out through the entry, the exit stays shut, and an empty lane goes back
//! to ready.

mod machine_harness;

use gate_controller::machine::{Action, Config, Event, Machine};
use gate_controller::record::{Outcome, Prompt, Reason, TxnId};
use gate_controller::types::{Door, DoorPosition, Sensor, Time};
use machine_harness::{Harness, T0};

/// A machine just restarted after transit 7 was cut off, doors reported closed.
fn restarted() -> Harness {
    let mut h = Harness::with_config(Config::default());
    h.m = Machine::new(Config::default(), Time(T0), 8);
    h.m.resume(h.now, Some(TxnId(7)));
    h.actions.clear();
    h.records.clear();
    let mut first = Vec::new();
    while let Some(a) = h.m.poll_action() {
        if let Action::Journal { record } = &a {
            h.records.push(record.clone());
        }
        first.push(a);
    }
    h.actions = first;
    h.reach(Door::Entry, DoorPosition::Closed);
    h.reach(Door::Exit, DoorPosition::Closed);
    h
}

/// The lane I/O confirms the close command the restarted machine sent to `door` (a
/// report from before the command does not count as closed: the previous process may
/// have left an open command latched that set the door moving).
fn confirm_closed(h: &mut Harness, door: Door) {
    assert!(
        h.actions
            .iter()
            .any(|a| matches!(a, Action::CloseDoor { door: d } if *d == door)),
        "{door:?} driven closed: {:?}",
        h.actions
    );
    h.reach(door, DoorPosition::Closed);
}

/// A machine just restarted (`unfinished`: the transit cut off without a record), its
/// first actions taken and forgotten, nothing reported yet.
fn resumed(unfinished: Option<TxnId>) -> Harness {
    let mut h = Harness::with_config(Config::default());
    h.m = Machine::new(Config::default(), Time(T0), 8);
    h.m.resume(h.now, unfinished);
    while h.m.poll_action().is_some() {}
    h.actions.clear();
    h
}

fn opened(h: &Harness, door: Door) -> bool {
    h.actions
        .iter()
        .any(|a| matches!(a, Action::OpenDoor { door: d } if *d == door))
}

#[test]
fn the_cut_off_transit_is_recorded_aborted_once() {
    let mut h = restarted();
    assert_eq!(h.records.len(), 1);
    let r = &h.records[0];
    assert_eq!(r.txn, TxnId(7));
    assert_eq!(r.outcome, Outcome::Aborted);
    assert_eq!(r.reasons, vec![Reason::Restart]);
    assert_eq!(h.m.step(), "resuming");
    h.ev(Event::Journaled { txn: TxnId(7) });
    // Nobody reported inside: back to ready after the notice time, nothing opened.
    h.wait(3_100);
    assert_eq!(h.m.step(), "ready");
    assert!(!opened(&h, Door::Entry) && !opened(&h, Door::Exit));
    assert_eq!(h.records.len(), 1, "no second record");
    // The next transit gets a new id above the cut-off one.
    h.ev(Event::DocumentPresented);
    assert_eq!(h.m.snapshot().txn, Some(TxnId(8)));
}

#[test]
fn someone_inside_is_let_out_through_the_entry_and_the_exit_stays_shut() {
    let mut h = restarted();
    h.ev(Event::Journaled { txn: TxnId(7) });
    h.ev(Event::Occupancy { persons: 1 });
    assert_eq!(h.m.step(), "letting_out");
    assert_eq!(h.m.snapshot().prompt, Prompt::GoToCounter);
    confirm_closed(&mut h, Door::Exit);
    assert!(opened(&h, Door::Entry), "{:?}", h.actions);
    h.ev(Event::DoorReached {
        door: Door::Entry,
        position: DoorPosition::Open,
    });
    h.ev(Event::Sensor {
        sensor: Sensor::EntryBeam,
        active: true,
    });
    h.ev(Event::Occupancy { persons: 0 });
    h.ev(Event::Sensor {
        sensor: Sensor::EntryBeam,
        active: false,
    });
    h.ev(Event::DoorReached {
        door: Door::Entry,
        position: DoorPosition::Closed,
    });
    assert_eq!(h.m.step(), "ready");
    assert!(
        !opened(&h, Door::Exit),
        "the exit never opens: {:?}",
        h.actions
    );
    assert_eq!(h.records.len(), 1);
}

#[test]
fn with_the_lane_io_down_it_waits_for_the_lane_to_report() {
    let mut h = restarted();
    h.ev(Event::DeviceFault {
        device: gate_controller::types::Device::LaneIo,
        kind: gate_controller::types::FaultKind::Link,
        detail: "link lost".into(),
    });
    h.wait(10_000);
    assert_eq!(
        h.m.step(),
        "resuming",
        "keeps waiting while the I/O is down"
    );
    h.ev(Event::DeviceRecovered {
        device: gate_controller::types::Device::LaneIo,
    });
    h.ev(Event::Occupancy { persons: 1 });
    assert_eq!(h.m.step(), "letting_out");
}

#[test]
fn a_door_reported_closed_before_the_restart_s_close_command_is_not_taken_closed() {
    // The previous process latched the exit open just before it died: the exit still
    // reads closed when the new process starts, then moves. The new process's close
    // command is not taken as done on the old report, so the entry stays shut for
    // someone inside until the exit confirms it is closed.
    let mut h = resumed(None);
    h.reach(Door::Entry, DoorPosition::Closed);
    h.reach(Door::Exit, DoorPosition::Closed);
    h.ev(Event::Occupancy { persons: 1 });
    assert_eq!(h.m.step(), "letting_out");
    assert!(
        !opened(&h, Door::Entry),
        "the entry waits for the exit's confirmation: {:?}",
        h.actions
    );
    h.reach(Door::Exit, DoorPosition::Closed);
    assert!(opened(&h, Door::Entry), "{:?}", h.actions);
}

#[test]
fn after_a_restart_with_every_record_written_an_occupant_is_still_let_out() {
    let mut h = resumed(None);
    h.reach(Door::Entry, DoorPosition::Closed);
    h.reach(Door::Exit, DoorPosition::Closed);
    assert_eq!(h.m.step(), "resuming");
    // A document presented meanwhile starts nothing.
    h.ev(Event::DocumentPresented);
    assert_eq!(h.m.snapshot().txn, None);
    h.ev(Event::Occupancy { persons: 2 });
    assert_eq!(h.m.step(), "letting_out");
    confirm_closed(&mut h, Door::Exit);
    assert!(opened(&h, Door::Entry));
    assert!(!opened(&h, Door::Exit));
    assert!(h.records.is_empty(), "no record without a transit");
}

#[test]
fn a_lane_that_never_reports_its_doors_still_lets_the_occupant_out_after_the_notice_time() {
    let mut h = resumed(Some(TxnId(7)));
    // Somebody inside, but no door feedback reported (not wired, or a lane I/O that
    // reports only changes).
    h.ev(Event::Occupancy { persons: 1 });
    assert_eq!(h.m.step(), "letting_out");
    assert!(
        !h.actions
            .iter()
            .any(|a| matches!(a, Action::OpenDoor { .. } | Action::CloseDoor { .. })),
        "no door driven before the lane has said where they are: {:?}",
        h.actions
    );
    h.wait(Config::default().timeouts.notice_ms + 10);
    confirm_closed(&mut h, Door::Exit);
    assert!(opened(&h, Door::Entry), "{:?}", h.actions);
    assert!(!opened(&h, Door::Exit));
}
