//! Property tests of invariants 2–4 of DESIGN.md at the driver level: random input
//! histories (lasting changes plus one-scan glitches on every input, the emergency loop
//! included) and random latched commands; after every scan the written pins must obey:
//!
//! - invariant 3: the emergency input reads active → in that same scan every door is
//!   driven open and unlocked; the hold ends only after a reset latched with the input
//!   clear;
//! - invariant 2: entry and exit are never both driven open except in an emergency hold,
//!   or when both doors' safety sensors are active (then invariant 4 wins: see
//!   `scan.rs`);
//! - invariant 4: a door is never driven closed while its safety sensor reads active,
//!   unless its position feedback reads closed (a closed door does not move);
//! - a door driven open is never locked.

use super::tests::bank::Bank;
use super::*;
use crate::devices::LaneCommand;
use crate::types::{Door, DoorPosition};
use proptest::prelude::*;
use std::collections::VecDeque;

const EMERGENCY: usize = 12;
const CLOSED: [usize; 2] = [0, 2];
const SAFETY: [usize; 2] = [4, 5];

#[derive(Clone, Debug)]
struct Step {
    /// Inputs that change for good before this scan.
    flips: [bool; 16],
    /// Inputs that read inverted in this scan only.
    glitches: [bool; 16],
    /// Commands latched before this scan.
    commands: Vec<LaneCommand>,
}

fn command() -> impl Strategy<Value = LaneCommand> {
    let door = prop_oneof![Just(Door::Entry), Just(Door::Exit)];
    let position = prop_oneof![Just(DoorPosition::Open), Just(DoorPosition::Closed)];
    prop_oneof![
        10 => (door, position).prop_map(|(door, position)| LaneCommand::Door { door, position }),
        1 => Just(LaneCommand::EmergencyRelease),
        4 => Just(LaneCommand::EmergencyReset),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::array::uniform16(prop::bool::weighted(0.08)),
        prop::bool::weighted(0.2),
        prop::array::uniform16(prop::bool::weighted(0.04)),
        prop::collection::vec(command(), 0..3),
    )
        .prop_map(|(mut flips, emergency_flip, glitches, commands)| {
            // The emergency loop changes for good less often than the rest.
            flips[EMERGENCY] &= emergency_flip;
            Step {
                flips,
                glitches,
                commands,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn interlocks_hold_under_sensor_noise(
        debounce in 1u8..4,
        steps in prop::collection::vec(step(), 1..300),
    ) {
        let mut level = [false; 16];
        level[CLOSED[0]] = true;
        level[CLOSED[1]] = true;
        level[EMERGENCY] = true;
        let inputs = Bank::new(&level);
        let outputs = Bank::new(&[false; 9]);
        let mut lane = ScanLane::new(IoMap::default(), inputs.pins(), outputs.pins())
            .unwrap()
            .with_debounce_scans(debounce);
        // A reset latched since the emergency input last read active or a release was
        // latched (it may be applied a few scans later, once the input is debounced clear).
        let mut reset_since_trigger = false;
        let mut safety_history: VecDeque<[bool; 2]> = VecDeque::new();
        for (t, s) in steps.iter().enumerate() {
            let was_held = lane.emergency_hold();
            let mut release_latched = false;
            for c in &s.commands {
                lane.latch(*c);
                match c {
                    LaneCommand::EmergencyReset => {
                        // A reset right after a release in the same cycle may end it.
                        release_latched = false;
                        reset_since_trigger = true;
                    }
                    LaneCommand::EmergencyRelease => {
                        release_latched = true;
                        reset_since_trigger = false;
                    }
                    _ => {}
                }
            }
            let mut read = [false; 16];
            for i in 0..16 {
                level[i] ^= s.flips[i];
                read[i] = level[i] ^ s.glitches[i];
                inputs.set(i, read[i]);
            }
            lane.scan(t as u64 * 20).unwrap();

            let o = outputs.levels();
            let drive = [o[0], o[2]];
            let lock = [o[1], o[3]];
            let emergency = !read[EMERGENCY];
            let safety = [read[SAFETY[0]], read[SAFETY[1]]];
            safety_history.push_back(safety);
            if safety_history.len() > usize::from(debounce) {
                safety_history.pop_front();
            }
            let safety_recent = [
                safety_history.iter().any(|s| s[0]),
                safety_history.iter().any(|s| s[1]),
            ];

            // Invariant 3.
            if emergency || release_latched {
                prop_assert!(lane.emergency_hold(), "scan {t}: emergency without hold");
                prop_assert_eq!(drive, [true, true], "scan {}: emergency, doors not all driven open", t);
                prop_assert_eq!(lock, [false, false], "scan {}: emergency, a door locked", t);
            }
            if emergency {
                reset_since_trigger = false;
            }
            if was_held && !lane.emergency_hold() {
                prop_assert!(
                    reset_since_trigger && !emergency,
                    "scan {t}: hold ended without reset"
                );
                reset_since_trigger = false;
            }
            // Invariant 2.
            if drive[0] && drive[1] {
                prop_assert!(
                    lane.emergency_hold() || (safety_recent[0] && safety_recent[1]),
                    "scan {t}: both doors driven open outside emergency"
                );
            }
            for i in 0..2 {
                // Invariant 4.
                if !drive[i] && safety[i] {
                    prop_assert!(
                        read[CLOSED[i]],
                        "scan {t}: door {i} driven closed with its safety sensor active"
                    );
                }
                prop_assert!(!(drive[i] && lock[i]), "scan {t}: door {i} driven open while locked");
            }
        }
    }
}

/// Doors that move one step per scan towards their drive output (`TRAVEL` steps from
/// closed to open), with position feedback at both ends.
const TRAVEL: u8 = 3;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The interlocks never stall a controller that follows the mantrap protocol (close
    /// the other door, wait for its closed feedback, then open): every request is served
    /// within a bounded number of scans, under one-scan glitches on the beams.
    #[test]
    fn interlocks_do_not_stall_a_correct_controller(
        debounce in 1u8..4,
        requests in prop::collection::vec(prop::option::of(prop_oneof![Just(Door::Entry), Just(Door::Exit)]), 1..12),
        beam_noise in prop::collection::vec(prop::array::uniform2(prop::bool::weighted(0.2)), 400),
    ) {
        let mut level = [false; 16];
        level[EMERGENCY] = true;
        let inputs = Bank::new(&level);
        let outputs = Bank::new(&[false; 9]);
        let mut lane = ScanLane::new(IoMap::default(), inputs.pins(), outputs.pins())
            .unwrap()
            .with_debounce_scans(debounce);
        let mut pos = [0u8; 2];
        let mut closed_seen = [false; 2];
        let budget = 2 * usize::from(TRAVEL) + 3 * usize::from(debounce) + 4;
        let mut t = 0usize;
        for target in &requests {
            for scan in 0..budget + 5 {
                // The controller: close every door but the target; open the target once
                // the other door has reported closed.
                for d in Door::ALL {
                    let i = door_index(d);
                    if Some(d) != *target {
                        lane.latch(LaneCommand::Door { door: d, position: DoorPosition::Closed });
                    } else if closed_seen[1 - i] {
                        lane.latch(LaneCommand::Door { door: d, position: DoorPosition::Open });
                    }
                }
                for i in 0..2 {
                    inputs.set(CLOSED[i], pos[i] == 0);
                    inputs.set(CLOSED[i] + 1, pos[i] == TRAVEL);
                    inputs.set(6 + i, beam_noise[t % beam_noise.len()][i]);
                }
                t += 1;
                for c in lane.scan(t as u64 * 20).unwrap() {
                    if let crate::devices::LaneInput::DoorReached { door, position } = c {
                        closed_seen[door_index(door)] = position == DoorPosition::Closed;
                    }
                }
                let o = outputs.levels();
                let drive = [o[0], o[2]];
                prop_assert!(!(drive[0] && drive[1]), "scan {t}: both doors driven open");
                for i in 0..2 {
                    if drive[i] && pos[i] < TRAVEL {
                        pos[i] += 1;
                        closed_seen[i] = false;
                    } else if !drive[i] && pos[i] > 0 {
                        pos[i] -= 1;
                    }
                }
                if scan >= budget {
                    let want = |d: Door| if Some(d) == *target { TRAVEL } else { 0 };
                    prop_assert_eq!(
                        pos,
                        [want(Door::Entry), want(Door::Exit)],
                        "request {:?} not served within {} scans", target, budget
                    );
                }
            }
        }
    }
}
