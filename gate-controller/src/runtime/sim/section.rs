//! `[sim]` of the gate configuration: the simulated lane and its traveller stream.

use crate::problem::Problem;
use device_drivers::sim::{Behaviour, Params as SimParams};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[sim]`: the simulated lane and its traveller stream.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSection {
    /// Seed of the traveller stream (same seed, same travellers).
    pub seed: u64,
    /// Mean gap between travellers arriving at the gate, in milliseconds of simulated time.
    pub mean_arrival_gap_ms: u64,
    /// Simulated time runs this many times faster than real time (1.0 = real time).
    pub speed: f64,
    /// Relative integer weights of traveller behaviours (`[sim.mix]`, behaviour names
    /// as in scenario files).
    pub mix: BTreeMap<Behaviour, u32>,
    /// Physical and timing model of the lane (`[sim.lane]`, see `device_drivers::sim::Params`).
    pub lane: SimParams,
}

impl Default for SimSection {
    fn default() -> Self {
        SimSection {
            seed: 1,
            mean_arrival_gap_ms: 4_000,
            speed: 1.0,
            mix: default_mix(),
            lane: SimParams::default(),
        }
    }
}

/// The default behaviour mix: mostly normal travellers, a few of every kind that ends
/// without an operator (holds and stubborn tailgaters need one, so they are left out).
pub fn default_mix() -> BTreeMap<Behaviour, u32> {
    [
        (Behaviour::Normal, 85),
        (Behaviour::Slow, 5),
        (Behaviour::WrongFinger, 2),
        (Behaviour::ExpiredDocument, 2),
        (Behaviour::WatchlistRefer, 1),
        (Behaviour::TurnsBack, 1),
        (Behaviour::Tailgater, 1),
        (Behaviour::NeverEnters, 1),
        (Behaviour::PoorQuality, 1),
        (Behaviour::UnreadableChip, 1),
    ]
    .into_iter()
    .collect()
}

impl SimSection {
    /// Every out-of-range value of `[sim]`, with its key.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, problem: String| out.push(Problem::new(key, problem));
        let s = self;
        if !(s.speed.is_finite() && s.speed > 0.0 && s.speed <= 1000.0) {
            bad(
                "sim.speed",
                format!("{} must be above 0 and at most 1000", s.speed),
            );
        }
        if s.mean_arrival_gap_ms == 0 {
            bad("sim.mean_arrival_gap_ms", "must be greater than 0".into());
        }
        if s.mix.values().all(|&w| w == 0) {
            bad(
                "sim.mix",
                "at least one behaviour needs a weight above 0".into(),
            );
        }
        match s.lane.validate() {
            Ok(()) => {}
            Err(device_drivers::sim::ParamsError::OutOfRange {
                key,
                value,
                expected,
            }) => bad(
                &format!("sim.lane.{key}"),
                format!("{value} must be {expected}"),
            ),
            Err(e) => bad("sim.lane", e.to_string()),
        }
        out
    }
}
