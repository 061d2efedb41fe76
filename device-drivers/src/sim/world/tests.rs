//! The lane world's own tests.

use super::*;

/// 2026-11-26T12:00:00Z.
const T0: Time = Time(1_795_694_400_000);

/// Steps the world from wakeup to wakeup until `want` matches a signal (or `limit_ms`
/// passes); returns the time it matched and the signal.
fn until_sig(
    w: &mut World,
    limit_ms: u64,
    want: impl Fn(&Signal) -> bool,
) -> Option<(Time, Signal)> {
    let end = w.now().plus(limit_ms);
    while let Some(t) = w.next_wakeup() {
        if t > end {
            break;
        }
        if let Some(s) = w.advance_to(t).into_iter().find(&want) {
            return Some((t, s));
        }
    }
    None
}

fn until(w: &mut World, limit_ms: u64, want: impl Fn(&Signal) -> bool) -> Option<Time> {
    until_sig(w, limit_ms, want).map(|(t, _)| t)
}

fn world(seed: u64) -> World {
    let mut w = World::new(Params::default(), seed).expect("valid params");
    w.advance_to(T0);
    w.command(
        T0,
        WorldCommand::Display {
            cue: Prompt::PresentDocument,
        },
    );
    w
}

fn cmd(w: &mut World, c: WorldCommand) {
    let now = w.now();
    w.command(now, c);
}

/// Plays the gate's part for one traveller up to the capture; returns the capture result.
fn walk_in(w: &mut World) -> Signal {
    assert!(until(w, 10_000, |s| matches!(s, Signal::DocumentPresented { .. })).is_some());
    cmd(w, WorldCommand::ReadDocument);
    let t = until(w, 5_000, |s| {
        matches!(s, Signal::DocumentRead { result: Ok(_) })
    });
    let t = t.expect("a read");
    let read = t.since(T0);
    assert!(read >= 1_500, "{read}");
    cmd(w, WorldCommand::Display { cue: Prompt::Enter });
    cmd(w, open_cmd(Door::Entry));
    let opened = until(w, 2_000, |s| {
        *s == Signal::Lane(LaneInput::DoorReached {
            door: Door::Entry,
            position: DoorPosition::Open,
        })
    });
    assert_eq!(opened.map(|o| o.since(t)), Some(1_200));
    assert!(until(w, 10_000, |s| *s
        == Signal::Lane(LaneInput::Occupancy { persons: 1 }))
    .is_some());
    assert!(until(w, 5_000, |s| {
        *s == Signal::Lane(LaneInput::Sensor {
            sensor: Sensor::EntrySafety,
            active: false,
        })
    })
    .is_some());
    assert!(!w.sensor(Sensor::EntryBeam));
    cmd(w, close_cmd(Door::Entry));
    assert!(until(w, 2_000, |s| matches!(
        s,
        Signal::Lane(LaneInput::DoorReached { .. })
    ))
    .is_some());
    cmd(w, WorldCommand::Capture { attempt: 1 });
    cmd(
        w,
        WorldCommand::Display {
            cue: Prompt::PlaceThumb,
        },
    );
    let got = until_sig(w, 10_000, |s| {
        matches!(s, Signal::FingerprintCaptured { .. })
    });
    got.expect("a capture").1
}

fn score(w: &mut World) -> f32 {
    cmd(w, WorldCommand::Match { attempt: 1 });
    let end = w.now().plus(1_000);
    while let Some(t) = w.next_wakeup() {
        if t > end {
            break;
        }
        for s in w.advance_to(t) {
            if let Signal::MatchDone { score } = s {
                return score;
            }
        }
    }
    panic!("no match result");
}

#[test]
fn a_normal_traveller_walks_through_with_the_gate_playing_along() {
    let mut w = world(7);
    let id = w.add_traveller(T0, TravellerSpec::named("anna", Behaviour::Normal));
    let cap = walk_in(&mut w);
    assert_eq!(w.occupancy(), 1);
    if let Signal::FingerprintCaptured { result: Ok(info) } = cap {
        assert!(info.quality >= 40);
        let s = score(&mut w);
        assert!(s > 0.2, "genuine score {s}");
    }
    cmd(
        &mut w,
        WorldCommand::Display {
            cue: Prompt::Proceed,
        },
    );
    cmd(&mut w, open_cmd(Door::Exit));
    assert!(until(&mut w, 10_000, |s| *s
        == Signal::Lane(LaneInput::Occupancy { persons: 0 }))
    .is_some());
    assert!(until(&mut w, 10_000, |s| {
        *s == Signal::Lane(LaneInput::Sensor {
            sensor: Sensor::ExitSafety,
            active: false,
        })
    })
    .is_some());
    assert_eq!(w.traveller(id).map(|t| t.fate), Some(Fate::PassedExit));
}

#[test]
fn nobody_walks_through_a_closed_door() {
    let mut w = world(3);
    let id = w.add_traveller(T0, TravellerSpec::new(Behaviour::Normal));
    assert!(until(&mut w, 10_000, |s| matches!(
        s,
        Signal::DocumentPresented { .. }
    ))
    .is_some());
    cmd(&mut w, WorldCommand::ReadDocument);
    assert!(until(&mut w, 5_000, |s| matches!(s, Signal::DocumentRead { .. })).is_some());
    cmd(&mut w, WorldCommand::Display { cue: Prompt::Enter });
    // The entry never opens: no beam, no safety, nobody inside, ever.
    let seen = until(&mut w, 30_000, |s| {
        matches!(
            s,
            Signal::Lane(LaneInput::Sensor { .. }) | Signal::Lane(LaneInput::Occupancy { .. })
        )
    });
    assert_eq!(seen, None);
    assert_eq!(w.traveller(id).map(|t| t.fate), Some(Fate::Pending));
    // Once it opens they walk in.
    cmd(&mut w, open_cmd(Door::Entry));
    assert!(until(&mut w, 5_000, |s| *s
        == Signal::Lane(LaneInput::Occupancy { persons: 1 }))
    .is_some());
}

#[test]
fn a_stuck_door_does_not_move_until_released() {
    let mut w = world(1);
    w.inject(
        T0.plus(100),
        Injection::DoorStuck {
            door: Door::Exit,
            for_ms: 5_000,
        },
    );
    w.advance_to(T0.plus(200));
    cmd(&mut w, open_cmd(Door::Exit));
    let t = until(&mut w, 10_000, |s| {
        matches!(s, Signal::Lane(LaneInput::DoorReached { .. }))
    });
    assert_eq!(t, Some(T0.plus(5_100 + 1_200)));
}

#[test]
fn faults_and_emergency_are_reported_at_their_times() {
    let mut w = world(1);
    w.inject(T0.plus(1_000), Injection::ScannerOffline { for_ms: 2_000 });
    w.inject(T0.plus(1_500), Injection::ScannerOffline { for_ms: 2_000 });
    w.inject(T0.plus(4_000), Injection::Emergency { for_ms: Some(500) });
    let mut log = Vec::new();
    while let Some(t) = w.next_wakeup() {
        for s in w.advance_to(t) {
            log.push((t.since(T0), s));
        }
    }
    let fault = Device::FingerprintScanner;
    assert_eq!(
        log,
        vec![
            (
                1_000,
                Signal::DeviceFault {
                    device: fault,
                    kind: FaultKind::Unavailable,
                    detail: "simulated: offline for 2000 ms".into()
                }
            ),
            (3_500, Signal::DeviceRecovered { device: fault }),
            (4_000, Signal::Lane(LaneInput::Emergency { active: true })),
            (4_500, Signal::Lane(LaneInput::Emergency { active: false })),
        ]
    );
}

#[test]
fn wrong_finger_scores_stay_below_genuine_ones() {
    let mut w = World::new(Params::default(), 11).expect("params");
    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    for _ in 0..2_000 {
        genuine.push(normal(&mut w.rng, w.p.genuine));
        impostor.push(normal(&mut w.rng, w.p.impostor));
    }
    let above = |v: &[f32]| v.iter().filter(|s| **s >= 0.5).count();
    // Genuine: ~2 % below 0.5; impostor: ~0.02 % above.
    assert!(above(&genuine) > 1_900, "{}", above(&genuine));
    assert!(above(&impostor) < 5, "{}", above(&impostor));
}

#[test]
fn a_tailgater_breaks_occupancy_two_and_steps_back_when_told() {
    let mut w = world(5);
    let id = w.add_traveller(T0, TravellerSpec::new(Behaviour::Tailgater));
    assert!(until(&mut w, 10_000, |s| matches!(
        s,
        Signal::DocumentPresented { .. }
    ))
    .is_some());
    cmd(&mut w, WorldCommand::ReadDocument);
    assert!(until(&mut w, 5_000, |s| matches!(s, Signal::DocumentRead { .. })).is_some());
    cmd(&mut w, WorldCommand::Display { cue: Prompt::Enter });
    cmd(&mut w, open_cmd(Door::Entry));
    assert!(until(&mut w, 10_000, |s| *s
        == Signal::Lane(LaneInput::Occupancy { persons: 2 }))
    .is_some());
    cmd(
        &mut w,
        WorldCommand::Display {
            cue: Prompt::OnePersonOnly,
        },
    );
    assert!(until(&mut w, 10_000, |s| *s
        == Signal::Lane(LaneInput::Occupancy { persons: 1 }))
    .is_some());
    assert!(until(&mut w, 10_000, |s| {
        *s == Signal::Lane(LaneInput::Sensor {
            sensor: Sensor::EntrySafety,
            active: false,
        })
    })
    .is_some());
    assert_eq!(w.traveller(id).map(|t| t.fate), Some(Fate::Pending));
}

#[test]
fn a_young_child_is_counted_apart_and_stays_with_the_adult() {
    let p = Params {
        child_height_m: (0.9, 1.0),
        ..Params::default()
    };
    let mut w = World::new(p, 5).expect("valid params");
    w.advance_to(T0);
    cmd(
        &mut w,
        WorldCommand::Display {
            cue: Prompt::PresentDocument,
        },
    );
    let id = w.add_traveller(T0, TravellerSpec::new(Behaviour::WithChild));
    assert!(until(&mut w, 10_000, |s| matches!(
        s,
        Signal::DocumentPresented { .. }
    ))
    .is_some());
    cmd(&mut w, WorldCommand::ReadDocument);
    assert!(until(&mut w, 5_000, |s| matches!(s, Signal::DocumentRead { .. })).is_some());
    cmd(&mut w, WorldCommand::Display { cue: Prompt::Enter });
    cmd(&mut w, open_cmd(Door::Entry));
    let two = Signal::Lane(LaneInput::Headcount {
        persons: 2,
        children: 1,
    });
    assert!(until(&mut w, 10_000, |s| *s == two).is_some());
    // Never reported as two adults on the way.
    cmd(
        &mut w,
        WorldCommand::Display {
            cue: Prompt::OnePersonOnly,
        },
    );
    let left = until(&mut w, 5_000, |s| {
        matches!(
            s,
            Signal::Lane(LaneInput::Occupancy { .. }) | Signal::Lane(LaneInput::Headcount { .. })
        )
    });
    assert_eq!(left, None, "a child does not leave the adult");
    assert_eq!((w.occupancy(), w.children()), (2, 1));
    let v = w.traveller(id).expect("view");
    assert_eq!(v.companion, Some(Companion::Child));
    assert!(v.companion_short && v.companion_entered);
}

#[test]
fn the_same_seed_and_calls_replay_exactly() {
    let run = |seed| {
        let mut w = world(seed);
        for k in 0..5 {
            w.add_traveller(T0.plus(k * 500), TravellerSpec::new(Behaviour::Normal));
        }
        w.set_stream(
            T0,
            Some(Stream {
                mean_gap_ms: 2_000,
                mix: vec![(Behaviour::Normal, 1)],
            }),
        );
        let mut log = Vec::new();
        for _ in 0..200 {
            let Some(t) = w.next_wakeup() else { break };
            for s in w.advance_to(t) {
                if matches!(s, Signal::DocumentPresented { .. }) {
                    w.command(t, WorldCommand::ReadDocument);
                }
                log.push((t, format!("{s:?}")));
            }
        }
        log
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn random_commands_never_break_the_world() {
    let cues = [
        Prompt::PresentDocument,
        Prompt::Enter,
        Prompt::OnePersonOnly,
        Prompt::PlaceThumb,
        Prompt::Proceed,
        Prompt::GoToCounter,
        Prompt::WaitForOfficer,
        Prompt::OutOfService,
        Prompt::Emergency,
    ];
    for seed in 0..40 {
        let mut rng = SimRng::new(seed);
        let mut w = world(seed);
        for k in 0..6 {
            let b = Behaviour::ALL[rng.below(Behaviour::ALL.len() as u64) as usize];
            w.add_traveller(T0.plus(k * 2_000), TravellerSpec::new(b));
        }
        w.inject(
            T0.plus(rng.below(60_000)),
            Injection::ScannerOffline { for_ms: 5_000 },
        );
        w.inject(
            T0.plus(rng.below(60_000)),
            Injection::DoorStuck {
                door: Door::Exit,
                for_ms: 3_000,
            },
        );
        let mut now = T0;
        let mut commanded = [DoorPosition::Closed; 2];
        for _ in 0..600 {
            now = now.plus(rng.between(1, 399));
            for s in w.advance_to(now) {
                match s {
                    Signal::Lane(LaneInput::DoorReached { door, position }) => {
                        assert_eq!(
                            position,
                            commanded[di(door)],
                            "seed {seed}: reached an uncommanded position"
                        );
                    }
                    Signal::Lane(LaneInput::Occupancy { persons }) => {
                        assert!(persons <= 4, "seed {seed}")
                    }
                    Signal::MatchDone { score } => assert!((0.0..=1.0).contains(&score)),
                    _ => {}
                }
            }
            let cmd = match rng.below(8) {
                0 | 1 => {
                    let door = if rng.chance(0.5) {
                        Door::Entry
                    } else {
                        Door::Exit
                    };
                    let open = rng.chance(0.5);
                    commanded[di(door)] = if open {
                        DoorPosition::Open
                    } else {
                        DoorPosition::Closed
                    };
                    if open {
                        open_cmd(door)
                    } else {
                        close_cmd(door)
                    }
                }
                2 => WorldCommand::ReadDocument,
                3 => WorldCommand::Capture { attempt: 1 },
                4 => WorldCommand::Match { attempt: 1 },
                5 => WorldCommand::CancelCapture,
                _ => WorldCommand::Display {
                    cue: cues[rng.below(cues.len() as u64) as usize],
                },
            };
            w.command(now, cmd);
        }
    }
}

fn open_cmd(door: Door) -> WorldCommand {
    WorldCommand::Lane(crate::devices::LaneCommand::Door {
        door,
        position: DoorPosition::Open,
    })
}

fn close_cmd(door: Door) -> WorldCommand {
    WorldCommand::Lane(crate::devices::LaneCommand::Door {
        door,
        position: DoorPosition::Closed,
    })
}
