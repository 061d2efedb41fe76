//! Timing and geometry of the simulated lane, the traveller model and the simulated
//! matcher. Every field has a realistic default; scenario files override single keys.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A closed interval `[min, max]` of milliseconds from which a duration is drawn uniformly.
pub type MsRange = (u64, u64);

/// A normal distribution of matcher scores, clamped to `0..=1`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreDist {
    /// Mean score.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
}

/// Parameters of one simulated lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Time a door takes from fully closed to fully open (and back).
    pub door_travel_ms: u64,
    /// Latency of position feedback when a door is commanded where it already is.
    pub io_latency_ms: u64,
    /// Physics step while anybody moves (the lane I/O scan cycle).
    pub tick_ms: u64,
    /// Distance between the entry and the exit door.
    pub lane_length_m: f64,
    /// Depth of one person (front to back).
    pub body_length_m: f64,
    /// Depth of the safety (obstruction) sensor's field on the lane side of each door.
    pub safety_zone_m: f64,
    /// Where a traveller's front stops in the mantrap for the thumbprint (from the entry).
    pub stand_at_m: f64,
    /// Mean walking speed of a normal traveller (each one varies ±15 %).
    pub walk_speed_mps: f64,
    /// Walking speed of a slow traveller.
    pub slow_walk_speed_mps: f64,
    /// Reaction time of a normal traveller to a prompt or a door.
    pub reaction_ms: MsRange,
    /// Reaction time of a slow traveller.
    pub slow_reaction_ms: MsRange,
    /// Time for the next traveller in the queue to step up to the reader.
    pub step_up_ms: MsRange,
    /// A document on the reader that is not read within this time is taken back and
    /// presented again.
    pub represent_ms: u64,
    /// Chip read time (BAC/PACE, data groups, passive authentication).
    pub chip_read_ms: MsRange,
    /// Time to answer a read when no document lies on the reader.
    pub no_card_ms: u64,
    /// Capture time once the thumb is on the scanner.
    pub capture_ms: MsRange,
    /// The scanner gives up with "no finger" after this long.
    pub scanner_timeout_ms: u64,
    /// One 1:1 comparison.
    pub match_ms: u64,
    /// Scores of a genuine comparison (right thumb).
    pub genuine: ScoreDist,
    /// Scores of an impostor comparison (wrong finger or wrong person).
    pub impostor: ScoreDist,
    /// Chance that a normal traveller's capture is unusable (smudge, dry finger).
    pub poor_capture_prob: f64,
    /// The same for a traveller with poor-quality fingers.
    pub poor_quality_capture_prob: f64,
    /// Gap a tailgater keeps behind the leader.
    pub tailgate_gap_m: (f64, f64),
    /// Length of the suitcase a `luggage` traveller pulls behind.
    pub luggage_m: (f64, f64),
    /// Gap between a `with_child` adult's back and the child's front (0: holding on).
    pub child_gap_m: (f64, f64),
    /// Standing height of the accompanying child (young children, about 2–9 years).
    pub child_height_m: (f64, f64),
    /// The overhead sensor's child height threshold: a head measured below it is
    /// counted as a child. Adults in the model are all taller.
    pub child_height_threshold_m: f64,
    /// Standard deviation of the overhead sensor's height measurement.
    pub height_noise_m: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            door_travel_ms: 1_200,
            io_latency_ms: 20,
            tick_ms: 50,
            lane_length_m: 2.5,
            body_length_m: 0.5,
            safety_zone_m: 0.35,
            stand_at_m: 1.8,
            walk_speed_mps: 1.2,
            slow_walk_speed_mps: 0.6,
            reaction_ms: (300, 1_200),
            slow_reaction_ms: (1_000, 3_000),
            step_up_ms: (1_000, 2_500),
            represent_ms: 3_000,
            chip_read_ms: (1_500, 3_000),
            no_card_ms: 300,
            capture_ms: (1_000, 2_000),
            scanner_timeout_ms: 6_000,
            match_ms: 40,
            genuine: ScoreDist {
                mean: 0.75,
                sd: 0.12,
            },
            impostor: ScoreDist {
                mean: 0.15,
                sd: 0.10,
            },
            poor_capture_prob: 0.03,
            poor_quality_capture_prob: 0.8,
            tailgate_gap_m: (0.1, 0.35),
            luggage_m: (0.4, 0.7),
            child_gap_m: (0.0, 0.3),
            child_height_m: (0.85, 1.35),
            child_height_threshold_m: 1.25,
            height_noise_m: 0.03,
        }
    }
}

/// A parameter set that cannot describe a lane.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// A value is outside the range it must lie in.
    #[error("world parameter `{key}` is {value}, but it must be {expected}")]
    OutOfRange {
        /// Key of the parameter.
        key: &'static str,
        /// Offending value, as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

fn check(
    ok: bool,
    key: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> Result<(), ParamsError> {
    if ok {
        Ok(())
    } else {
        Err(ParamsError::OutOfRange {
            key,
            value: value.to_string(),
            expected,
        })
    }
}

fn check_range(key: &'static str, r: MsRange) -> Result<(), ParamsError> {
    check(
        r.0 <= r.1 && r.1 <= 3_600_000,
        key,
        format!("[{}, {}]", r.0, r.1),
        "[min, max] with min <= max <= 3600000",
    )
}

impl Params {
    /// Checks that the lane is physically possible; [`crate::sim::World::new`] calls it.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let len = self.lane_length_m;
        let body = self.body_length_m;
        check(
            self.door_travel_ms > 0 && self.door_travel_ms <= 60_000,
            "door_travel_ms",
            self.door_travel_ms,
            "in 1..=60000",
        )?;
        check(
            self.tick_ms > 0 && self.tick_ms <= 1_000,
            "tick_ms",
            self.tick_ms,
            "in 1..=1000",
        )?;
        check(
            self.io_latency_ms <= 1_000,
            "io_latency_ms",
            self.io_latency_ms,
            "at most 1000",
        )?;
        check(
            (1.0..=20.0).contains(&len),
            "lane_length_m",
            len,
            "between 1 and 20",
        )?;
        check(
            (0.1..=2.0).contains(&body) && body < len / 2.0,
            "body_length_m",
            body,
            "between 0.1 and 2, and under half the lane",
        )?;
        check(
            (0.0..=1.0).contains(&self.safety_zone_m),
            "safety_zone_m",
            self.safety_zone_m,
            "between 0 and 1",
        )?;
        check(
            self.stand_at_m - body > self.safety_zone_m
                && self.stand_at_m < len - self.safety_zone_m,
            "stand_at_m",
            self.stand_at_m,
            "inside the lane, clear of both safety zones",
        )?;
        check(
            (0.1..=5.0).contains(&self.walk_speed_mps),
            "walk_speed_mps",
            self.walk_speed_mps,
            "between 0.1 and 5",
        )?;
        check(
            (0.1..=5.0).contains(&self.slow_walk_speed_mps),
            "slow_walk_speed_mps",
            self.slow_walk_speed_mps,
            "between 0.1 and 5",
        )?;
        check_range("reaction_ms", self.reaction_ms)?;
        check_range("slow_reaction_ms", self.slow_reaction_ms)?;
        check_range("step_up_ms", self.step_up_ms)?;
        check_range("chip_read_ms", self.chip_read_ms)?;
        check_range("capture_ms", self.capture_ms)?;
        check(
            self.represent_ms > 0,
            "represent_ms",
            self.represent_ms,
            "positive",
        )?;
        for (key, d) in [("genuine", self.genuine), ("impostor", self.impostor)] {
            check(
                (0.0..=1.0).contains(&d.mean) && (0.0..=1.0).contains(&d.sd),
                key,
                format!("{{ mean = {}, sd = {} }}", d.mean, d.sd),
                "a mean and sd between 0 and 1",
            )?;
        }
        for (key, p) in [
            ("poor_capture_prob", self.poor_capture_prob),
            ("poor_quality_capture_prob", self.poor_quality_capture_prob),
        ] {
            check(
                (0.0..=1.0).contains(&p),
                key,
                p,
                "a probability between 0 and 1",
            )?;
        }
        let (g0, g1) = self.tailgate_gap_m;
        check(
            (0.0..=2.0).contains(&g0) && g0 <= g1 && g1 <= 2.0,
            "tailgate_gap_m",
            format!("[{g0}, {g1}]"),
            "[min, max] within 0..=2 m",
        )?;
        let (l0, l1) = self.luggage_m;
        check(
            (0.0..=1.5).contains(&l0) && l0 <= l1 && l1 <= 1.5,
            "luggage_m",
            format!("[{l0}, {l1}]"),
            "[min, max] within 0..=1.5 m",
        )?;
        let (c0, c1) = self.child_gap_m;
        check(
            (0.0..=1.0).contains(&c0) && c0 <= c1 && c1 <= 1.0,
            "child_gap_m",
            format!("[{c0}, {c1}]"),
            "[min, max] within 0..=1 m",
        )?;
        let (h0, h1) = self.child_height_m;
        check(
            (0.5..=1.8).contains(&h0) && h0 <= h1 && h1 <= 1.8,
            "child_height_m",
            format!("[{h0}, {h1}]"),
            "[min, max] within 0.5..=1.8 m",
        )?;
        check(
            (0.8..=1.5).contains(&self.child_height_threshold_m),
            "child_height_threshold_m",
            self.child_height_threshold_m,
            "between 0.8 and 1.5 (adults in the model are 1.5 m and taller)",
        )?;
        check(
            (0.0..=0.2).contains(&self.height_noise_m),
            "height_noise_m",
            self.height_noise_m,
            "between 0 and 0.2",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Params::default().validate(), Ok(()));
    }

    #[test]
    fn an_impossible_lane_is_rejected_with_its_key() {
        let p = Params {
            stand_at_m: 2.4,
            ..Params::default()
        };
        match p.validate() {
            Err(ParamsError::OutOfRange { key, .. }) => assert_eq!(key, "stand_at_m"),
            other => panic!("unexpected {other:?}"),
        }
        let p = Params {
            chip_read_ms: (3_000, 1_000),
            ..Params::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chip_read_ms"));
    }
}
