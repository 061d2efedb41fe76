//! The mantrap occupancy the shell reports to the machine, from the lane's occupancy
//! input (overhead sensor or mat), its mantrap beam array and its threshold beams.
//!
//! The occupancy input counts; a broken mantrap beam says that somebody is there; and
//! the beam body counter ([`crate::beamcount`]) counts bodies from the order and timing
//! of the entry beam, the mantrap beams and the exit beam. So the machine is told
//! `max(occupancy input, 1 if any mantrap beam is broken, beam body count if ≥ 2)`: a
//! beam broken while the mat reads nobody (a light child, a traveller stepping over it)
//! still keeps the doors from closing the lane as empty, and two bodies walking in close
//! together are two persons even where the occupancy input is one bit. A beam count of
//! one adds nothing to the presence floor (a count the beams got wrong by one, e.g. a
//! traveller backing out with a suitcase, cannot hold an empty lane occupied). The body
//! counter is forgotten whenever the occupancy input reads nobody with no beam broken
//! (also when a mantrap or exit beam clears after the input went to nobody).
//! Without an occupancy input the presence floor drops back to 0 between beams, so an
//! occupancy input is recommended; see `docs/io.md`.

use crate::beamcount::{Beam, BeamCounter, BeamGeometry};

/// Occupancy estimate of one lane (pure, no I/O: times are passed in).
#[derive(Clone, Debug, Default)]
pub struct OccupancyEstimate {
    sensor: u8,
    /// An occupancy input has reported (the lane has one).
    sensor_seen: bool,
    /// Broken mantrap beams, bit `index` set while beam `index` is broken.
    beams: u64,
    counter: BeamCounter,
    reported: Option<u8>,
}

impl OccupancyEstimate {
    /// An estimate for a lane whose beams lie as `geometry` says, nobody counted.
    pub fn new(geometry: BeamGeometry) -> OccupancyEstimate {
        OccupancyEstimate {
            counter: BeamCounter::new(geometry),
            ..OccupancyEstimate::default()
        }
    }

    /// The lane geometry the beam body counter works with.
    pub fn geometry(&self) -> BeamGeometry {
        self.counter.geometry()
    }

    /// The persons in the mantrap by the current estimate.
    pub fn persons(&self) -> u8 {
        let bodies = self.counter.bodies();
        let counted = if bodies >= 2 { bodies } else { 0 };
        self.sensor.max(u8::from(self.beams != 0)).max(counted)
    }

    /// Bodies the beam counter sees in the mantrap (for status and tests).
    pub fn beam_bodies(&self) -> u8 {
        self.counter.bodies()
    }

    /// The occupancy input reported `persons`: the estimate to tell the machine (always
    /// told, as the input itself is a report).
    pub fn sensor(&mut self, persons: u8) -> u8 {
        self.sensor = persons;
        self.sensor_seen = true;
        self.forget_if_empty();
        let p = self.persons();
        self.reported = Some(p);
        p
    }

    /// Mantrap beam `index` changed at `now_ms`: the estimate to tell the machine, if it
    /// changed. Indices beyond the 64 the estimate tracks are ignored (the map allows 32).
    pub fn beam(&mut self, now_ms: u64, index: u8, active: bool) -> Option<u8> {
        let bit = 1u64.checked_shl(u32::from(index))?;
        if active {
            self.beams |= bit;
        } else {
            self.beams &= !bit;
        }
        self.counter.edge(now_ms, Beam::Mantrap(index), active);
        self.forget_if_empty();
        self.changed()
    }

    /// A threshold beam changed at `now_ms` (`entry` true for the entry beam, false for
    /// the exit beam): the estimate to tell the machine, if it changed.
    pub fn threshold(&mut self, now_ms: u64, entry: bool, active: bool) -> Option<u8> {
        let beam = if entry { Beam::Entry } else { Beam::Exit };
        self.counter.edge(now_ms, beam, active);
        if !entry {
            self.forget_if_empty();
        }
        self.changed()
    }

    /// The occupancy input reads nobody and no beam is broken: the lane is empty. Not
    /// applied when the entry beam clears (a body walking in is then between the entry
    /// beam and the first mantrap beam, and the input may not have caught up yet).
    fn forget_if_empty(&mut self) {
        if self.sensor_seen && self.sensor == 0 && !self.counter.any_broken() {
            self.counter.clear();
        }
    }

    fn changed(&mut self) -> Option<u8> {
        let p = self.persons();
        if self.reported.unwrap_or(0) == p {
            return None;
        }
        self.reported = Some(p);
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beams_give_a_presence_floor_under_the_occupancy_input() {
        let mut e = OccupancyEstimate::default();
        assert_eq!(e.beam(0, 0, true), Some(1), "someone breaks the first beam");
        assert_eq!(e.beam(0, 1, true), None, "still one presence");
        assert_eq!(e.sensor(1), 1);
        assert_eq!(e.beam(0, 0, false), None);
        assert_eq!(e.beam(0, 1, false), None, "the mat still counts one");
        assert_eq!(e.sensor(2), 2, "the input counts; beams do not");
        assert_eq!(e.beam(0, 2, true), None);
        assert_eq!(e.sensor(0), 1, "a broken beam while the mat reads nobody");
        assert_eq!(e.beam(0, 2, false), Some(0));
        assert_eq!(e.persons(), 0);
    }

    #[test]
    fn out_of_range_beam_indices_are_ignored() {
        let mut e = OccupancyEstimate::default();
        assert_eq!(e.beam(0, 200, true), None);
        assert_eq!(e.persons(), 0);
        assert_eq!(e.beam(0, 63, true), Some(1));
    }

    /// Feeds beam edges `(ms, which, active)`: 'E' entry, 'X' exit, '0'..'9' mantrap.
    fn feed(e: &mut OccupancyEstimate, edges: &[(u64, char, bool)]) -> Vec<u8> {
        let mut told = Vec::new();
        for &(t, b, a) in edges {
            let r = match b {
                'E' => e.threshold(t, true, a),
                'X' => e.threshold(t, false, a),
                d => e.beam(t, d.to_digit(10).map_or(99, |d| d as u8), a),
            };
            told.extend(r);
        }
        told
    }

    #[test]
    fn two_bodies_close_together_are_two_persons_with_a_one_bit_input() {
        let mut e = OccupancyEstimate::default();
        assert_eq!(e.sensor(1), 1, "the one-bit input: somebody");
        // 1.2 m/s: a 0.5 m body, a 0.2 m gap, a second body; beam 0 at 0.625 m.
        let told = feed(
            &mut e,
            &[
                (0, 'E', true),
                (417, 'E', false),
                (521, '0', true),
                (583, 'E', true),
                (938, '0', false),
                (1_000, 'E', false),
                (1_104, '0', true),
            ],
        );
        assert_eq!(e.beam_bodies(), 2);
        assert_eq!(e.persons(), 2);
        assert_eq!(told.last(), Some(&2), "the machine is told two persons");
    }

    #[test]
    fn one_body_adds_nothing_to_the_presence_floor_and_an_empty_input_forgets() {
        let mut e = OccupancyEstimate::default();
        let told = feed(
            &mut e,
            &[
                (0, 'E', true),
                (417, 'E', false),
                (521, '0', true),
                (938, '0', false),
            ],
        );
        assert_eq!(told, vec![1, 0], "presence while the beam is broken only");
        assert_eq!(e.beam_bodies(), 1);
        assert_eq!(e.sensor(0), 0);
        assert_eq!(e.beam_bodies(), 0, "the input says empty, no beam broken");
        // The input reads nobody before the last beam clears: forgotten then.
        feed(
            &mut e,
            &[(5_000, 'E', true), (5_417, 'E', false), (5_521, '0', true)],
        );
        assert_eq!(e.beam_bodies(), 1);
        assert_eq!(e.sensor(0), 1, "the beam still shows somebody");
        assert_eq!(e.beam_bodies(), 1);
        feed(&mut e, &[(5_938, '0', false)]);
        assert_eq!(e.beam_bodies(), 0);
    }
}
