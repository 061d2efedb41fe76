//! The mantrap occupancy the shell reports to the machine, from the lane's occupancy
//! input (overhead sensor or mat) and its mantrap beam array.
//!
//! The occupancy input counts; the mantrap beams only say that somebody is there. So the
//! machine is told `max(occupancy input, 1 if any mantrap beam is broken)`: a beam broken
//! while the mat reads nobody (a light child, a traveller stepping over it) still keeps
//! the doors from closing the lane as empty. Without an occupancy input the beams alone
//! give that presence floor (which drops back to 0 between beams, so an occupancy input
//! is recommended; see `docs/io.md`).

/// Occupancy estimate of one lane (pure, no I/O).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OccupancyEstimate {
    sensor: u8,
    /// Broken mantrap beams, bit `index` set while beam `index` is broken.
    beams: u64,
    reported: Option<u8>,
}

impl OccupancyEstimate {
    /// The persons in the mantrap by the current estimate.
    pub fn persons(&self) -> u8 {
        self.sensor.max(u8::from(self.beams != 0))
    }

    /// The occupancy input reported `persons`: the estimate to tell the machine (always
    /// told, as the input itself is a report).
    pub fn sensor(&mut self, persons: u8) -> u8 {
        self.sensor = persons;
        let p = self.persons();
        self.reported = Some(p);
        p
    }

    /// Mantrap beam `index` changed: the estimate to tell the machine, if it changed.
    /// Indices beyond the 64 the estimate tracks are ignored (the map allows 32).
    pub fn beam(&mut self, index: u8, active: bool) -> Option<u8> {
        let bit = 1u64.checked_shl(u32::from(index))?;
        if active {
            self.beams |= bit;
        } else {
            self.beams &= !bit;
        }
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
        assert_eq!(e.beam(0, true), Some(1), "someone breaks the first beam");
        assert_eq!(e.beam(1, true), None, "still one presence");
        assert_eq!(e.sensor(1), 1);
        assert_eq!(e.beam(0, false), None);
        assert_eq!(e.beam(1, false), None, "the mat still counts one");
        assert_eq!(e.sensor(2), 2, "the input counts; beams do not");
        assert_eq!(e.beam(2, true), None);
        assert_eq!(e.sensor(0), 1, "a broken beam while the mat reads nobody");
        assert_eq!(e.beam(2, false), Some(0));
        assert_eq!(e.persons(), 0);
    }

    #[test]
    fn out_of_range_beam_indices_are_ignored() {
        let mut e = OccupancyEstimate::default();
        assert_eq!(e.beam(200, true), None);
        assert_eq!(e.persons(), 0);
        assert_eq!(e.beam(63, true), Some(1));
    }
}
