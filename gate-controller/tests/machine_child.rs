//! The accompanied-child policy (`[lane] accompanied_child`): flows of an adult with a
//! child, two adults, two children and a child with a tailgater under both policies, and
//! property tests that the exit never opens for a party the policy does not let through.

use gate_controller::machine::{Action, Config, Event};
use gate_controller::party::{classify, ChildPolicy, Party};
use gate_controller::record::{AlarmKind, GateEvent, Mode, Outcome, Prompt, Reason};
use gate_controller::types::{CaptureInfo, Door, DoorPosition, Sensor, WatchlistVerdict};
use proptest::prelude::*;

mod machine_harness;
use machine_harness::{valid_doc, Harness};

/// A machine with the accompanied-child `policy`.
fn harness(policy: ChildPolicy) -> Harness {
    Harness::with_config(Config {
        accompanied_child: policy,
        ..Config::default()
    })
}

impl Harness {
    fn heads(&mut self, persons: u8, children: u8) -> Vec<Action> {
        self.ev(Event::Headcount { persons, children })
    }

    /// Document, watchlist, entry open; the traveller steps in (entry beam broken).
    fn start(&mut self) {
        self.ev(Event::DocumentPresented);
        self.ev(Event::DocumentRead {
            result: Ok(valid_doc()),
        });
        let a = self.ev(Event::WatchlistChecked {
            verdict: WatchlistVerdict::Clear { version: 1 },
        });
        assert!(a.contains(&Action::OpenDoor { door: Door::Entry }));
        self.reach(Door::Entry, DoorPosition::Open);
        self.beam(Sensor::EntryBeam, true);
        self.heads(1, 0);
    }

    fn capture_and_match(&mut self, score: f32) -> Vec<Action> {
        self.ev(Event::FingerprintCaptured {
            result: Ok(CaptureInfo {
                quality: 80,
                minutiae: 40,
            }),
        });
        self.ev(Event::MatchDone { score })
    }

    fn exit_opened(&self) -> bool {
        self.actions
            .contains(&Action::OpenDoor { door: Door::Exit })
    }

    fn alarm_raised(&self, alarm: AlarmKind) -> bool {
        self.actions.iter().any(|a| {
            matches!(a, Action::Emit { event: GateEvent::AlarmRaised { alarm: k, .. } } if *k == alarm)
        })
    }
}

#[test]
fn refer_sends_an_adult_with_a_child_to_the_counter_and_keeps_the_exit_shut() {
    let mut h = harness(ChildPolicy::Refer);
    h.start();
    let a = h.heads(2, 1);
    assert!(a.contains(&Action::Display {
        prompt: Prompt::AccompaniedChild
    }));
    assert!(h.alarm_raised(AlarmKind::AccompaniedChild));
    assert!(!h.alarm_raised(AlarmKind::Tailgating));
    let r = h.records.last().expect("a record");
    assert_eq!(r.outcome, Outcome::Referred);
    assert_eq!(r.reasons, vec![Reason::AccompaniedChild]);
    assert!(r.biometric.is_none(), "no capture of anyone");
    assert_eq!(h.m.step(), "letting_out");
    // Both walk back out; the entry closes behind them; the gate is ready again.
    h.heads(1, 1);
    h.heads(0, 0);
    let a = h.beam(Sensor::EntryBeam, false);
    assert!(a.contains(&Action::CloseDoor { door: Door::Entry }));
    h.reach(Door::Entry, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert!(!h.exit_opened());
    assert!(!h
        .actions
        .iter()
        .any(|a| matches!(a, Action::CaptureFingerprint { .. })));
    assert_eq!(h.records.len(), 1);
}

#[test]
fn allow_lets_the_pair_through_on_the_adults_clear_decision_and_notes_the_child() {
    let mut h = harness(ChildPolicy::Allow);
    h.start();
    let a = h.heads(2, 1);
    assert!(
        !a.contains(&Action::CloseDoor { door: Door::Entry }),
        "child in the beam"
    );
    let a = h.beam(Sensor::EntryBeam, false);
    assert!(a.contains(&Action::CloseDoor { door: Door::Entry }));
    let a = h.reach(Door::Entry, DoorPosition::Closed);
    assert!(a.contains(&Action::CaptureFingerprint { attempt: 1 }));
    let a = h.capture_and_match(0.9);
    let r = a
        .iter()
        .find_map(|a| match a {
            Action::Journal { record } => Some(record.clone()),
            _ => None,
        })
        .expect("the clear record");
    assert_eq!(r.outcome, Outcome::Cleared);
    assert_eq!(r.reasons, vec![Reason::AccompaniedChild]);
    assert!(!h.exit_opened(), "not before the record is durable");
    let a = h.ev(Event::Journaled { txn: r.txn });
    assert!(a.contains(&Action::OpenDoor { door: Door::Exit }));
    h.reach(Door::Exit, DoorPosition::Open);
    h.beam(Sensor::ExitBeam, true);
    h.heads(1, 1);
    h.heads(0, 0);
    let a = h.beam(Sensor::ExitBeam, false);
    assert!(a.contains(&Action::CloseDoor { door: Door::Exit }));
    h.reach(Door::Exit, DoorPosition::Closed);
    assert_eq!(h.m.mode(), Mode::Ready);
    assert!(!h.alarm_raised(AlarmKind::Tailgating));
    assert!(!h.alarm_raised(AlarmKind::AccompaniedChild));
    // The record holds a score and threshold of the adult only: no child biometrics.
    let json = serde_json::to_string(&r).expect("serialises");
    assert!(
        !json.contains("template") && !json.contains("image"),
        "{json}"
    );
}

#[test]
fn a_child_who_steps_out_again_before_the_entry_closes_is_not_recorded() {
    let mut h = harness(ChildPolicy::Allow);
    h.start();
    h.heads(2, 1);
    h.heads(1, 0);
    h.beam(Sensor::EntryBeam, false);
    h.reach(Door::Entry, DoorPosition::Closed);
    let a = h.capture_and_match(0.9);
    let r = a
        .iter()
        .find_map(|a| match a {
            Action::Journal { record } => Some(record.clone()),
            _ => None,
        })
        .expect("a record");
    assert_eq!(r.outcome, Outcome::Cleared);
    assert!(r.reasons.is_empty(), "{:?}", r.reasons);
}

/// Two adults, two children, a child with a tailgater: tailgating under either policy.
#[test]
fn anything_but_one_adult_with_one_child_is_tailgating_under_both_policies() {
    for policy in [ChildPolicy::Allow, ChildPolicy::Refer] {
        for (persons, children) in [(2, 0), (2, 2), (3, 1), (3, 0)] {
            let mut h = harness(policy);
            h.start();
            let a = h.heads(persons, children);
            let case = format!("{policy:?} {persons} persons, {children} children");
            assert!(
                a.contains(&Action::Display {
                    prompt: Prompt::OnePersonOnly
                }),
                "{case}"
            );
            assert!(h.alarm_raised(AlarmKind::Tailgating), "{case}");
            let a = h.beam(Sensor::EntryBeam, false);
            assert!(
                !a.contains(&Action::CloseDoor { door: Door::Entry }),
                "{case}: the entry stays open while they are two"
            );
            // They stay: referred for tailgating at the entering deadline, never cleared.
            h.wait(Config::default().timeouts.enter_ms);
            let r = h.records.last().expect("a record");
            assert_eq!(r.outcome, Outcome::Referred, "{case}");
            assert_eq!(r.reasons, vec![Reason::Tailgating], "{case}");
            assert!(!h.exit_opened(), "{case}");
        }
    }
}

#[test]
fn a_plain_occupancy_count_keeps_the_child_count_within_it() {
    // A sensor mixing the two events: `Occupancy` never leaves more children than persons.
    let mut h = harness(ChildPolicy::Refer);
    h.start();
    h.ev(Event::Occupancy { persons: 1 });
    h.beam(Sensor::EntryBeam, false);
    assert_eq!(h.m.step(), "closing_entry");
    h.heads(0, 0);
    h.ev(Event::Occupancy { persons: 2 });
    assert!(
        h.alarm_raised(AlarmKind::Tailgating),
        "two adults without heights"
    );
}

#[test]
fn the_event_keeps_its_wire_form() {
    let e: Event =
        serde_json::from_str(r#"{"type":"headcount","persons":2,"children":1}"#).expect("parses");
    assert_eq!(
        e,
        Event::Headcount {
            persons: 2,
            children: 1
        }
    );
    let old: Event = serde_json::from_str(r#"{"type":"occupancy","persons":1}"#).expect("old");
    assert_eq!(old, Event::Occupancy { persons: 1 });
    let cfg: Config = serde_json::from_value(serde_json::json!({
        "policy": serde_json::to_value(Config::default().policy).expect("policy"),
        "timeouts": serde_json::to_value(Config::default().timeouts).expect("timeouts"),
        "max_door_reversals": 3,
        "beam_silent_transits": 3,
    }))
    .expect("a config without the key");
    assert_eq!(cfg.accompanied_child, ChildPolicy::Refer);
}

// ---- properties ---------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Document presented, read valid, watchlist clear.
    Start,
    Heads(u8, u8),
    Beam(bool, bool),
    /// Every door reports the position it was last commanded to.
    DoorsFollow,
    Capture,
    Match(f32),
    JournalAck,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Start),
        6 => (0u8..4, 0u8..3).prop_map(|(p, c)| Op::Heads(p, c)),
        4 => (any::<bool>(), any::<bool>()).prop_map(|(d, a)| Op::Beam(d, a)),
        6 => Just(Op::DoorsFollow),
        3 => Just(Op::Capture),
        3 => (0.3f32..1.0).prop_map(Op::Match),
        4 => Just(Op::JournalAck),
        2 => (0u64..20_000).prop_map(Op::Advance),
    ]
}

/// Plays `ops` and checks, at every exit opening, who was shut in the mantrap when the
/// thumbprint capture began; and under `refer` that an adult seen with a child before
/// the entry closed is never cleared.
fn play(policy: ChildPolicy, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = harness(policy);
    let (mut persons, mut children) = (0u8, 0u8);
    let mut shut_in: Option<Party> = None;
    let mut child_seen_entering = false;
    for op in ops {
        let step_before = h.m.step();
        let out = match op {
            Op::Start => {
                let mut a = h.ev(Event::DocumentPresented);
                a.extend(h.ev(Event::DocumentRead {
                    result: Ok(valid_doc()),
                }));
                a.extend(h.ev(Event::WatchlistChecked {
                    verdict: WatchlistVerdict::Clear { version: 1 },
                }));
                a
            }
            Op::Heads(p, c) => {
                persons = p;
                children = c.min(p);
                let a = h.heads(p, c);
                if matches!(step_before, "entering" | "closing_entry")
                    && classify(p, c) == Party::AdultWithChild
                {
                    child_seen_entering = true;
                }
                a
            }
            Op::Beam(exit, active) => {
                let s = if exit {
                    Sensor::ExitBeam
                } else {
                    Sensor::EntryBeam
                };
                h.beam(s, active)
            }
            Op::DoorsFollow => {
                let mut a = Vec::new();
                for d in Door::ALL {
                    let pos = h.m.door(d).target;
                    a.extend(h.reach(d, pos));
                }
                a
            }
            Op::Capture => h.ev(Event::FingerprintCaptured {
                result: Ok(CaptureInfo {
                    quality: 80,
                    minutiae: 40,
                }),
            }),
            Op::Match(score) => h.ev(Event::MatchDone { score }),
            Op::JournalAck => {
                let mut a = Vec::new();
                for r in h.records.clone() {
                    a.extend(h.ev(Event::Journaled { txn: r.txn }));
                }
                a
            }
            Op::Advance(ms) => h.wait(ms),
        };
        for a in &out {
            match a {
                Action::CaptureFingerprint { attempt: 1 } => {
                    shut_in = Some(classify(persons, children));
                }
                Action::OpenDoor { door: Door::Exit } => {
                    let ok = match shut_in {
                        Some(Party::One) => true,
                        Some(Party::AdultWithChild) => policy == ChildPolicy::Allow,
                        _ => false,
                    };
                    prop_assert!(ok, "{policy:?}: exit opened for {shut_in:?}");
                }
                Action::Journal { record } if record.outcome == Outcome::Cleared => {
                    let noted = record.reasons.contains(&Reason::AccompaniedChild);
                    prop_assert_eq!(noted, shut_in == Some(Party::AdultWithChild));
                    if policy == ChildPolicy::Refer {
                        prop_assert!(!child_seen_entering, "refer: cleared with a child");
                    }
                }
                Action::Emit {
                    event: GateEvent::TransitStarted { .. },
                } => {
                    shut_in = None;
                    child_seen_entering = false;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn allow_never_opens_the_exit_for_two_adults_or_more(ops in prop::collection::vec(op(), 1..120)) {
        play(ChildPolicy::Allow, ops)?;
    }

    #[test]
    fn refer_never_opens_the_exit_for_an_adult_with_a_child(ops in prop::collection::vec(op(), 1..120)) {
        play(ChildPolicy::Refer, ops)?;
    }
}
