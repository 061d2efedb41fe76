//! Calibration campaign of the beam body counter (`gate_controller::beamcount`) against
//! the simulator's physical lane model (`device_drivers::sim::World`).
//!
//! Each trial puts one traveller (normal, slow, with luggage, with a child, or followed
//! by a tailgater) at the reader of a fresh lane, opens the entry door when the document
//! is read, closes it at 13 s, opens the exit at 14.5 s, and samples the lane's beams
//! every 20 ms scan for 20 s: the entry threshold beam, the three mantrap beams at ¼, ½
//! and ¾ of the 2.5 m lane and the exit beam. The
//! model's overhead head count is never shown to the counter; it is only the truth the
//! result is scored against.
//!
//! The model's bodies are rigid; what a real beam at hip height also sees is laid over
//! the clean signals, in metres along the lane (converted with each trial's walking
//! speed): a clear gap of up to 5 cm within a body's break (arm swing, legs) in half of
//! the breaks, a clear gap of up to 6 cm between a traveller and the suitcase they pull
//! (the handle), and one-scan electrical glitches; then the scan's 2-scan debounce.
//!
//! A further set, `far_tailgaters` (informational), puts the tailgater 0.35–1.5 m behind
//! (the model's `tailgate_gap_m`; its default is 0.10–0.35 m) and scores the count
//! against the model's own: did the second person get into the mantrap, and was the
//! count two at some time, and before the exit opened.
//!
//! Run: `cargo test --release -p gate-controller --test beam_count_campaign --
//! --nocapture` (prints the figures; asserts the targets: tailgaters ≥ 99 % detected,
//! single travellers incl. luggage ≤ 0.5 % counted as two).

use device_drivers::prompt::Prompt;
use device_drivers::sim::{Behaviour, Params, Signal, SimRng, TravellerSpec, World, WorldCommand};
use device_drivers::types::{Door, Sensor, Time};
use gate_controller::beamcount::{Beam, BeamCounter};

const SCAN_MS: u64 = 20;
const TRIAL_MS: u64 = 20_000;
/// When the entry closes behind whoever is in, and when the exit opens to let them out.
const CLOSE_ENTRY_MS: u64 = 13_000;
const OPEN_EXIT_MS: u64 = 14_500;
const MANTRAP_AT_M: [f64; 3] = [0.625, 1.25, 1.875];

/// The clean beam samples of one trial: `[entry, m0, m1, m2, exit]` per scan, and the most
/// people the model counted in the mantrap at once.
fn clean_trial(behaviour: Behaviour, seed: u64) -> (Vec<[bool; 5]>, u8) {
    clean_trial_with(behaviour, seed, Params::default())
}

/// [`clean_trial`] in a lane with other model parameters (the scan tick is set here).
fn clean_trial_with(behaviour: Behaviour, seed: u64, params: Params) -> (Vec<[bool; 5]>, u8) {
    let params = Params {
        tick_ms: SCAN_MS,
        ..params
    };
    let mut w = World::new(params, seed).expect("default lane is valid");
    w.command(
        Time(0),
        WorldCommand::Display {
            cue: Prompt::PresentDocument,
        },
    );
    w.add_traveller(Time(0), TravellerSpec::new(behaviour));
    let mut samples = Vec::new();
    let mut most = 0u8;
    let mut t = 0;
    while t <= TRIAL_MS {
        for s in w.advance_to(Time(t)) {
            if let Signal::DocumentPresented { .. } = s {
                w.command(Time(t), WorldCommand::ReadDocument);
            }
            if let Signal::DocumentRead { .. } = s {
                w.command(Time(t), open_cmd(Door::Entry));
                w.command(Time(t), WorldCommand::Display { cue: Prompt::Enter });
            }
        }
        samples.push([
            w.sensor(Sensor::EntryBeam),
            w.beam_blocked_at(MANTRAP_AT_M[0]),
            w.beam_blocked_at(MANTRAP_AT_M[1]),
            w.beam_blocked_at(MANTRAP_AT_M[2]),
            w.sensor(Sensor::ExitBeam),
        ]);
        if t == CLOSE_ENTRY_MS {
            w.command(Time(t), close_cmd(Door::Entry));
            w.command(
                Time(t),
                WorldCommand::Display {
                    cue: Prompt::PleaseWait,
                },
            );
        }
        if t == OPEN_EXIT_MS {
            w.command(Time(t), open_cmd(Door::Exit));
            w.command(
                Time(t),
                WorldCommand::Display {
                    cue: Prompt::Proceed,
                },
            );
        }
        most = most.max(w.occupancy());
        t += SCAN_MS;
    }
    (samples, most)
}

/// Walking speed seen in the clean signal: entry break → first mantrap break.
fn clean_speed(samples: &[[bool; 5]]) -> f64 {
    let rise = |k: usize| samples.iter().position(|s| s[k]);
    match (rise(0), rise(1)) {
        (Some(a), Some(b)) if b > a => MANTRAP_AT_M[0] / ((b - a) as f64 * SCAN_MS as f64 / 1000.0),
        _ => 1.2,
    }
}

/// Lays the real beams' imperfections over the clean signal (see the module docs).
fn noisy(samples: &[[bool; 5]], luggage: bool, rng: &mut SimRng) -> Vec<[bool; 5]> {
    let v = clean_speed(samples);
    let scans = |m: f64| ((m / v) * 1000.0 / SCAN_MS as f64).round() as usize;
    let mut out = samples.to_vec();
    for k in 0..5 {
        let mut i = 0;
        while i < samples.len() {
            if !samples[i][k] {
                i += 1;
                continue;
            }
            let start = i;
            while i < samples.len() && samples[i][k] {
                i += 1;
            }
            let len = i - start;
            let mut clear = |from: usize, n: usize| {
                for s in out.iter_mut().skip(from).take(n) {
                    s[k] = false;
                }
            };
            if rng.chance(0.5) && len > 2 {
                let n = scans(rng.uniform(0.0, 0.05));
                let at = start + 1 + rng.below((len - 1) as u64) as usize;
                clear(at, n.min(start + len - at));
            }
            if luggage {
                // The handle between the body (0.5 m) and the suitcase.
                let at = start + scans(0.5);
                if at < start + len {
                    clear(at, scans(rng.uniform(0.0, 0.06)).min(start + len - at));
                }
            }
        }
    }
    for s in out.iter_mut() {
        for b in s.iter_mut() {
            if rng.chance(0.002) {
                *b = !*b;
            }
        }
    }
    out
}

/// Debounces (2 scans, as `ScanLane`) and feeds the counter; the most bodies counted
/// and the count at the end.
fn count(samples: &[[bool; 5]], min_gap_m: f64) -> (u8, u8) {
    let (most, end, _) = count_until(samples, min_gap_m, OPEN_EXIT_MS);
    (most, end)
}

/// [`count`], plus the most bodies counted before `until_ms`.
fn count_until(samples: &[[bool; 5]], min_gap_m: f64, until_ms: u64) -> (u8, u8, u8) {
    let mut c = BeamCounter::default().with_min_gap_m(min_gap_m);
    let mut state = [false; 5];
    let mut most = 0;
    let mut most_before = 0;
    for (i, pair) in samples.windows(2).enumerate() {
        let now = (i as u64 + 1) * SCAN_MS;
        for k in 0..5 {
            if pair[0][k] == pair[1][k] && pair[1][k] != state[k] {
                state[k] = pair[1][k];
                let beam = match k {
                    0 => Beam::Entry,
                    4 => Beam::Exit,
                    _ => Beam::Mantrap(k as u8 - 1),
                };
                c.edge(now, beam, state[k]);
            }
        }
        most = most.max(c.bodies());
        if now < until_ms {
            most_before = most;
        }
    }
    (most, c.bodies(), most_before)
}

struct Figures {
    trials: u32,
    two_or_more: u32,
    /// Trials whose count was back at 0 at the end (everybody out through the exit).
    emptied: u32,
}

fn campaign(mix: &[Behaviour], n: u32, seed0: u64, min_gap_m: f64) -> Figures {
    let mut f = Figures {
        trials: 0,
        two_or_more: 0,
        emptied: 0,
    };
    for i in 0..n {
        let b = mix[i as usize % mix.len()];
        let seed = seed0.wrapping_add(u64::from(i));
        let (clean, _) = clean_trial(b, seed);
        let mut rng = SimRng::new(seed ^ 0x5eed);
        let s = noisy(&clean, b == Behaviour::Luggage, &mut rng);
        f.trials += 1;
        let (most, end) = count(&s, min_gap_m);
        if most >= 2 {
            f.two_or_more += 1;
        }
        if end == 0 {
            f.emptied += 1;
        }
    }
    f
}

#[test]
fn the_model_lane_really_has_two_people_for_a_tailgater_and_one_for_luggage() {
    let (_, most) = clean_trial(Behaviour::Tailgater, 7);
    assert_eq!(most, 2, "the model lets the tailgater in");
    let (s, most) = clean_trial(Behaviour::Luggage, 7);
    assert_eq!(most, 1);
    assert!(
        s.iter().any(|x| x[1]),
        "the traveller reaches the mantrap beams"
    );
    let (s, _) = clean_trial(Behaviour::Tailgater, 7);
    assert_eq!(
        count(&s, BeamCounter::MIN_GAP_M).0,
        2,
        "clean signals: two bodies"
    );
}

#[test]
fn tailgaters_detected_and_single_travellers_not_doubled() {
    let gap = BeamCounter::MIN_GAP_M;
    let tail = campaign(
        &[Behaviour::Tailgater, Behaviour::StubbornTailgater],
        1_000,
        1,
        gap,
    );
    let single = campaign(
        &[
            Behaviour::Normal,
            Behaviour::Luggage,
            Behaviour::Slow,
            Behaviour::Luggage,
        ],
        10_000,
        100_000,
        gap,
    );
    let child = campaign(&[Behaviour::WithChild], 200, 500_000, gap);
    let rate = |f: &Figures| f64::from(f.two_or_more) / f64::from(f.trials);
    println!(
        "beam count campaign (min gap {gap} m): tailgaters detected {}/{} = {:.2} %; \
         single travellers (normal, slow, luggage ×2) counted as two {}/{} = {:.3} %; \
         adults with a child counted as two {}/{} = {:.1} % (the beams cannot tell a \
         child; the adult_with_child input can)",
        tail.two_or_more,
        tail.trials,
        100.0 * rate(&tail),
        single.two_or_more,
        single.trials,
        100.0 * rate(&single),
        child.two_or_more,
        child.trials,
        100.0 * rate(&child),
    );
    println!(
        "after the exit opened, counts back at 0: single travellers {}/{}, adults with a \
         child {}/{}",
        single.emptied, single.trials, child.emptied, child.trials
    );
    assert!(
        rate(&tail) >= 0.99,
        "tailgater detection {:.3}",
        rate(&tail)
    );
    assert!(
        rate(&single) <= 0.005,
        "false two-person rate {:.4}",
        rate(&single)
    );
}

/// Tailgaters further behind than the model's default 0.10–0.35 m: the gap bands of the
/// far-tailgater set (1,000 trials in all, 0.35–1.5 m).
const FAR_BANDS: [(f64, f64); 4] = [(0.35, 0.6), (0.6, 0.8), (0.8, 1.05), (1.05, 1.5)];

/// One band of far tailgaters, scored against the model's own count (the second person
/// got into the mantrap, or not).
#[derive(Default)]
struct FarFigures {
    trials: u32,
    /// The model had two people in the mantrap at once.
    got_in: u32,
    /// Of those, counted as two or more at some time / before the exit opened.
    detected: u32,
    detected_before_exit: u32,
    /// The second person never got in (stopped outside the entry door) but the beams
    /// counted two.
    counted_outside: u32,
}

fn far_campaign(gap_m: (f64, f64), n: u32, seed0: u64) -> FarFigures {
    let params = Params {
        tailgate_gap_m: gap_m,
        ..Params::default()
    };
    let mix = [Behaviour::Tailgater, Behaviour::StubbornTailgater];
    let mut f = FarFigures::default();
    for i in 0..n {
        let b = mix[i as usize % mix.len()];
        let seed = seed0.wrapping_add(u64::from(i));
        let (clean, model_most) = clean_trial_with(b, seed, params.clone());
        let mut rng = SimRng::new(seed ^ 0x5eed);
        let s = noisy(&clean, false, &mut rng);
        let (most, _, before) = count_until(&s, BeamCounter::MIN_GAP_M, OPEN_EXIT_MS);
        f.trials += 1;
        if model_most >= 2 {
            f.got_in += 1;
            f.detected += u32::from(most >= 2);
            f.detected_before_exit += u32::from(before >= 2);
        } else if most >= 2 {
            f.counted_outside += 1;
        }
    }
    f
}

/// Far tailgaters (informational: the target is for the model's realistic gaps). The
/// leader stops with the front at the reader spot 1.8 m in; a second person more than
/// about 0.68 m behind then stops short of the first mantrap beam, and one more than
/// about 1.05 m behind stays outside the entry door.
#[test]
fn far_tailgaters() {
    let mut all = FarFigures::default();
    for (k, &band) in FAR_BANDS.iter().enumerate() {
        let f = far_campaign(band, 250, 700_000 + 10_000 * k as u64);
        println!(
            "far tailgaters {:.2}–{:.2} m behind: {} trials, the second got in {}; of those \
             counted as two {} ({:.1} %), before the exit opened {} ({:.1} %); stayed \
             outside but counted as two {}",
            band.0,
            band.1,
            f.trials,
            f.got_in,
            f.detected,
            100.0 * f64::from(f.detected) / f64::from(f.got_in.max(1)),
            f.detected_before_exit,
            100.0 * f64::from(f.detected_before_exit) / f64::from(f.got_in.max(1)),
            f.counted_outside,
        );
        all.trials += f.trials;
        all.got_in += f.got_in;
        all.detected += f.detected;
        all.detected_before_exit += f.detected_before_exit;
        all.counted_outside += f.counted_outside;
    }
    println!(
        "far tailgaters 0.35–1.50 m behind: {} trials, the second got in {}; of those \
         counted as two {} ({:.1} %), before the exit opened {} ({:.1} %); stayed outside \
         but counted as two {}",
        all.trials,
        all.got_in,
        all.detected,
        100.0 * f64::from(all.detected) / f64::from(all.got_in.max(1)),
        all.detected_before_exit,
        100.0 * f64::from(all.detected_before_exit) / f64::from(all.got_in.max(1)),
        all.counted_outside,
    );
    assert!(all.got_in > 0, "the model lets far tailgaters in");
}

/// The calibration sweep behind [`BeamCounter::MIN_GAP_M`] (slow; run on demand with
/// `-- --ignored --nocapture`).
#[test]
#[ignore]
fn calibration_sweep_of_the_minimum_gap() {
    for gap in [0.05, 0.06, 0.07, 0.075, 0.08, 0.085, 0.09] {
        let tail = campaign(
            &[Behaviour::Tailgater, Behaviour::StubbornTailgater],
            1_000,
            1,
            gap,
        );
        let single = campaign(
            &[
                Behaviour::Normal,
                Behaviour::Luggage,
                Behaviour::Slow,
                Behaviour::Luggage,
            ],
            4_000,
            100_000,
            gap,
        );
        println!(
            "min gap {gap:.3} m: tailgaters {}/{}, single travellers as two {}/{}",
            tail.two_or_more, tail.trials, single.two_or_more, single.trials
        );
    }
}

fn open_cmd(door: Door) -> WorldCommand {
    WorldCommand::Lane(device_drivers::devices::LaneCommand::Door {
        door,
        position: device_drivers::types::DoorPosition::Open,
    })
}

fn close_cmd(door: Door) -> WorldCommand {
    WorldCommand::Lane(device_drivers::devices::LaneCommand::Door {
        door,
        position: device_drivers::types::DoorPosition::Closed,
    })
}
