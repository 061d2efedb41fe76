//! Body counting from beam timing: how many people are in the mantrap, judged from the
//! entry threshold beam, the mantrap beam array and the exit threshold beam alone (for
//! lanes whose occupancy input is one bit, or missing). Pure: no clock, no I/O; every
//! edge comes with the scan cycle's `now_ms`.
//!
//! The lane geometry it relies on: a body walking in breaks the entry beam, then the
//! first mantrap beam ([`BeamGeometry::first_mantrap_m`] further in), then the others in
//! order; somebody coming from the exit side breaks the exit beam, then the last mantrap
//! beam.
//!
//! - **Inward bodies.** Each break of the entry beam is a candidate body. A candidate is
//!   counted in once the first mantrap beam breaks after it (the body went on into the
//!   lane); a break of the entry beam that is never followed by the first mantrap beam
//!   (a step in and back out) counts nobody.
//! - **Gaps.** A new break of the entry beam after a clear gap is a *second* body only if
//!   the gap, converted to a distance with the walking speed measured for the body in
//!   front (entry beam → first mantrap beam), is at least [`BeamCounter::MIN_GAP_M`]:
//!   shorter gaps are legs, arm swing, a trolley handle or beam chatter, and the break
//!   belongs to the body before it.
//! - **Outward bodies.** A break of the entry beam that starts right after the first
//!   mantrap beam cleared, with no inward candidate pending, is someone walking back
//!   out: one body less (undone if the first mantrap beam breaks again before the next
//!   entry break, i.e. the body turned round inside).
//! - **Far followers.** Once a deeper mantrap beam (index ≥ 1) broke after the first
//!   one cleared, the body that cleared it moved on in: an entry break before the first
//!   mantrap beam breaks again cannot be that body walking out, and is an inward
//!   candidate. An entry break already taken as walking out is one too if, while it
//!   lasts (within [`BeamCounter::OUTWARD_WINDOW_MS`] of the first beam clearing), a
//!   deeper beam breaks: the body in front kept walking in.
//! - **Two at once.** A deeper mantrap beam changing while the entry beam is broken by
//!   such a candidate, with the first mantrap beam clear between them, shows two bodies
//!   at once (one body cannot break both without the beam between): the candidate is
//!   counted at once, until the entry beam clears (it stepped in or back out; it counts
//!   again when it reaches the first mantrap beam).
//! - **Exit.** Each break of the exit beam that ends is a body leaving forward (one
//!   less); if the last mantrap beam then breaks with nothing in between (within
//!   [`BeamCounter::WRONG_WAY_WINDOW_MS`], and not a blink of it), it was somebody
//!   coming in the wrong way: the body is counted in and [`BeamCounter::wrong_way`] is
//!   set.

/// Where the beams the counter uses lie along the lane, in metres from the entry beam
/// (`[devices.io] first_mantrap_beam_m` in `gated`'s configuration).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeamGeometry {
    /// Distance from the entry threshold beam to the first mantrap beam.
    pub first_mantrap_m: f64,
}

impl BeamGeometry {
    /// The distances [`BeamGeometry::first_mantrap_m`] may take, in metres (the
    /// configuration key `devices.io.first_mantrap_beam_m` is checked against it).
    pub const FIRST_MANTRAP_RANGE_M: (f64, f64) = (0.1, 3.0);
}

impl Default for BeamGeometry {
    /// The reference lane: 2.5 m long, mantrap beams at ¼, ½ and ¾ of it.
    fn default() -> Self {
        BeamGeometry {
            first_mantrap_m: 0.625,
        }
    }
}

/// Which beam an edge came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beam {
    /// The entry threshold beam.
    Entry,
    /// Mantrap beam `n` (0 nearest the entry).
    Mantrap(u8),
    /// The exit threshold beam.
    Exit,
}

/// A break of the entry beam not yet judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    /// When the break began.
    rise_ms: u64,
    /// The clear gap before it, if it followed an earlier break.
    gap_ms: Option<u64>,
}

/// Counts bodies in the mantrap from beam edges (see the module docs).
#[derive(Clone, Debug)]
pub struct BeamCounter {
    geometry: BeamGeometry,
    min_gap_m: f64,
    /// Bodies counted in the mantrap.
    inside: u8,
    entry: bool,
    /// Broken mantrap beams, bit `n` for beam `n`.
    mantrap: u64,
    /// Highest mantrap beam index seen (the one nearest the exit).
    last_index: u8,
    exit: bool,
    /// The last edge of any beam: which, rising or not, when.
    last: Option<(Beam, bool, u64)>,
    /// When the entry beam last cleared.
    entry_fall_ms: Option<u64>,
    /// Breaks of the entry beam waiting for the first mantrap beam.
    pending: Vec<Candidate>,
    /// Walking speed of the last body counted in, in m/s.
    speed_mps: Option<f64>,
    /// The current entry break, taken as somebody walking out (one body less).
    outward: Option<Candidate>,
    /// When the first mantrap beam last cleared.
    first_fall_ms: Option<u64>,
    /// A deeper mantrap beam (index ≥ 1) broke since the first mantrap beam last
    /// cleared, with the first one still clear: the body that cleared it moved on in.
    deeper_since_first_fall: bool,
    /// A body breaking the entry beam while the body in front is deeper in, counted
    /// until the entry beam clears or the first mantrap beam breaks.
    doorway: bool,
    /// When the last mantrap beam (nearest the exit) last cleared.
    last_fall_ms: Option<u64>,
    /// The last exit break took one body off (0 or 1), to restore if it was wrong-way.
    exit_took: u8,
    wrong_way: bool,
}

impl Default for BeamCounter {
    fn default() -> Self {
        BeamCounter::new(BeamGeometry::default())
    }
}

impl BeamCounter {
    /// The shortest clear gap (in metres, along the lane) between two breaks of the entry
    /// beam that makes them two bodies. Calibrated against the simulator's lane model
    /// (`tests/beam_count_campaign.rs`): arm/leg gaps up to 6 cm and trolley-handle gaps
    /// up to 8 cm stay one body; tailgaters keep 10–35 cm.
    pub const MIN_GAP_M: f64 = 0.09;
    /// The speed assumed when no body has been measured yet (a brisk walk, so that a gap
    /// converts to the larger distance and a tailgater is not missed).
    pub const DEFAULT_SPEED_MPS: f64 = 1.4;
    /// Measured speeds are clamped to this range (m/s).
    pub const SPEED_RANGE: (f64, f64) = (0.2, 3.0);
    /// A break of the entry beam starting at most this long after the first mantrap beam
    /// cleared is somebody walking out.
    pub const OUTWARD_WINDOW_MS: u64 = 1_500;
    /// The last mantrap beam breaking at most this long after the exit beam cleared is
    /// somebody coming in from the exit side (a 0.5 m body clears the exit beam about
    /// 0.125 m before it reaches a last beam 0.625 m inside, even at a crawl).
    pub const WRONG_WAY_WINDOW_MS: u64 = 700;
    /// A break of the entry beam not followed by the first mantrap beam within this long
    /// is forgotten (somebody stepped in and back out).
    pub const STALE_MS: u64 = 10_000;

    /// A counter for a lane with this geometry, nobody counted.
    pub fn new(geometry: BeamGeometry) -> BeamCounter {
        BeamCounter {
            geometry,
            min_gap_m: Self::MIN_GAP_M,
            inside: 0,
            entry: false,
            mantrap: 0,
            last_index: 0,
            exit: false,
            last: None,
            entry_fall_ms: None,
            pending: Vec::new(),
            speed_mps: None,
            outward: None,
            first_fall_ms: None,
            deeper_since_first_fall: false,
            doorway: false,
            last_fall_ms: None,
            exit_took: 0,
            wrong_way: false,
        }
    }

    /// The same counter with another shortest body gap than [`BeamCounter::MIN_GAP_M`]
    /// (for calibration campaigns).
    pub fn with_min_gap_m(mut self, min_gap_m: f64) -> BeamCounter {
        self.min_gap_m = min_gap_m;
        self
    }

    /// The lane geometry the counter was made for.
    pub fn geometry(&self) -> BeamGeometry {
        self.geometry
    }

    /// Bodies counted in the mantrap.
    pub fn bodies(&self) -> u8 {
        self.inside.saturating_add(u8::from(self.doorway))
    }

    /// Whether somebody came in from the exit side since the last [`BeamCounter::clear`].
    pub fn wrong_way(&self) -> bool {
        self.wrong_way
    }

    /// Whether any beam the counter follows is broken.
    pub fn any_broken(&self) -> bool {
        self.entry || self.exit || self.mantrap != 0
    }

    /// Forgets every body (the occupancy input says the lane is empty and no beam is
    /// broken) and the wrong-way flag.
    pub fn clear(&mut self) {
        let (geometry, min_gap_m) = (self.geometry, self.min_gap_m);
        let (entry, mantrap, exit, last_index) =
            (self.entry, self.mantrap, self.exit, self.last_index);
        *self = BeamCounter::new(geometry).with_min_gap_m(min_gap_m);
        self.entry = entry;
        self.mantrap = mantrap;
        self.exit = exit;
        self.last_index = last_index;
    }

    /// Feeds one debounced beam edge at `now_ms` (scan-cycle time, never decreasing).
    /// Repeated reports of a beam's current state are ignored, and so are mantrap
    /// indices beyond 63.
    pub fn edge(&mut self, now_ms: u64, beam: Beam, active: bool) {
        match beam {
            Beam::Entry => {
                if self.entry == active {
                    return;
                }
                self.entry = active;
                if active {
                    self.entry_rise(now_ms);
                } else {
                    self.entry_fall_ms = Some(now_ms);
                    // Stepped in past the beam, or back out: not seen until the first
                    // mantrap beam.
                    self.doorway = false;
                }
            }
            Beam::Mantrap(n) => {
                let Some(bit) = 1u64.checked_shl(u32::from(n)) else {
                    return;
                };
                if (self.mantrap & bit != 0) == active {
                    return;
                }
                self.last_index = self.last_index.max(n);
                if active {
                    self.mantrap |= bit;
                    let brisk = self.speed_mps.unwrap_or(0.0).max(Self::DEFAULT_SPEED_MPS);
                    // A blink of the last beam under a suitcase leaving is not somebody
                    // coming in.
                    let blink = self
                        .last_fall_ms
                        .is_some_and(|t| !self.gap_is_body(now_ms.saturating_sub(t), brisk));
                    if n == self.last_index
                        && !blink
                        && matches!(self.last, Some((Beam::Exit, false, t))
                            if now_ms.saturating_sub(t) <= Self::WRONG_WAY_WINDOW_MS)
                    {
                        // The exit beam, then the last mantrap beam: coming in the wrong way.
                        self.inside = self.inside.saturating_add(self.exit_took + 1);
                        self.exit_took = 0;
                        self.wrong_way = true;
                    } else if n == 0 {
                        self.deeper_since_first_fall = false;
                        self.doorway = false;
                        self.first_mantrap_rise(now_ms);
                    } else {
                        self.deeper_rise(now_ms);
                        self.check_doorway();
                    }
                } else {
                    self.mantrap &= !bit;
                    if n > 0 {
                        self.check_doorway();
                    }
                    if n == 0 {
                        self.first_fall_ms = Some(now_ms);
                        self.deeper_since_first_fall = false;
                    }
                    if n == self.last_index {
                        self.last_fall_ms = Some(now_ms);
                    }
                }
            }
            Beam::Exit => {
                if self.exit == active {
                    return;
                }
                self.exit = active;
                if active {
                    if let Some((Beam::Exit, false, t)) = self.last {
                        let speed = self.speed_mps.unwrap_or(Self::DEFAULT_SPEED_MPS);
                        if !self.gap_is_body(now_ms.saturating_sub(t), speed) {
                            // Chatter, or the trolley behind the one who just left.
                            self.inside = self.inside.saturating_add(self.exit_took);
                        }
                    }
                    self.exit_took = 0;
                } else {
                    self.exit_took = u8::from(self.inside > 0);
                    self.inside -= self.exit_took;
                }
            }
        }
        self.last = Some((beam, active, now_ms));
    }

    fn entry_rise(&mut self, now_ms: u64) {
        let was_outward = self.outward.take();
        let gap_ms = self.entry_fall_ms.map(|t| now_ms.saturating_sub(t));
        // A gap too short to be a body even at a brisk walk is chatter within the break
        // before: it never starts an outward crossing.
        let brisk = self.speed_mps.unwrap_or(0.0).max(Self::DEFAULT_SPEED_MPS);
        let chatter = gap_ms.is_some_and(|g| !self.gap_is_body(g, brisk));
        if chatter && was_outward.is_some() {
            self.outward = was_outward;
            return;
        }
        if let (Some((Beam::Mantrap(0), false, t)), false, false) =
            (self.last, chatter, self.deeper_since_first_fall)
        {
            if now_ms.saturating_sub(t) <= Self::OUTWARD_WINDOW_MS {
                // The first mantrap beam cleared, then the entry beam broke: walking out.
                self.outward = Some(Candidate {
                    rise_ms: now_ms,
                    gap_ms,
                });
                self.inside = self.inside.saturating_sub(1);
                return;
            }
        }
        if let (Some(gap), Some(speed), true) = (gap_ms, self.speed_mps, self.pending.is_empty()) {
            // The body in front is counted and its speed measured: judge the gap now.
            if !self.gap_is_body(gap, speed) {
                // Legs, arm swing, a trolley handle: the body before this break.
                return;
            }
        }
        self.pending
            .retain(|c| now_ms.saturating_sub(c.rise_ms) <= Self::STALE_MS);
        self.pending.push(Candidate {
            rise_ms: now_ms,
            gap_ms,
        });
    }

    /// A mantrap beam beyond the first broke (not a wrong-way entry).
    fn deeper_rise(&mut self, now_ms: u64) {
        if self.mantrap & 1 != 0 || self.first_fall_ms.is_none() {
            return;
        }
        // The body that cleared the first mantrap beam moved on in: an entry break from
        // now on (until the first beam breaks again) is not that body walking out.
        self.deeper_since_first_fall = true;
        let Some(c) = self.outward else {
            return;
        };
        let since_first = self
            .first_fall_ms
            .map_or(u64::MAX, |t| now_ms.saturating_sub(t));
        if self.entry && since_first <= Self::OUTWARD_WINDOW_MS {
            // The entry beam broke just after the body in front cleared the first mantrap
            // beam, and while it is still broken that body reaches a deeper beam: the
            // entry break is a second body walking in behind it, not the first walking
            // out.
            self.outward = None;
            self.inside = self.inside.saturating_add(1);
            self.pending
                .retain(|p| now_ms.saturating_sub(p.rise_ms) <= Self::STALE_MS);
            self.pending.push(c);
        }
    }

    /// A deeper mantrap beam changed: the body in front is moving there. If the entry
    /// beam is broken now by a break that began after that body cleared the first
    /// mantrap beam, and the first mantrap beam is clear between them, two bodies are in
    /// the lane at once (one body cannot break the entry beam and a deeper beam without
    /// the first mantrap beam between them).
    fn check_doorway(&mut self) {
        let Some(fall) = self.first_fall_ms else {
            return;
        };
        if self.entry
            && self.mantrap & 1 == 0
            && self.deeper_since_first_fall
            && self.pending.iter().any(|c| c.rise_ms > fall)
        {
            self.doorway = true;
        }
    }

    fn first_mantrap_rise(&mut self, now_ms: u64) {
        if let Some(c) = self.outward.take() {
            // Not somebody walking out after all: restore them.
            self.inside = self.inside.saturating_add(1);
            let brisk = self.speed_mps.unwrap_or(0.0).max(Self::DEFAULT_SPEED_MPS);
            let blink = self
                .first_fall_ms
                .is_some_and(|t| !self.gap_is_body(now_ms.saturating_sub(t), brisk));
            if blink {
                // The first mantrap beam only blinked (arm swing) under the body in
                // front: the entry break is a body walking in behind it.
                self.pending.push(c);
            }
            return;
        }
        self.pending
            .retain(|c| now_ms.saturating_sub(c.rise_ms) <= Self::STALE_MS);
        if self.pending.is_empty() {
            return;
        }
        // The oldest pending break is the body now reaching the first mantrap beam.
        let first = self.pending.remove(0);
        let dt = now_ms.saturating_sub(first.rise_ms).max(1) as f64 / 1000.0;
        let (lo, hi) = Self::SPEED_RANGE;
        let speed = (self.geometry.first_mantrap_m / dt).clamp(lo, hi);
        self.speed_mps = Some(speed);
        self.inside = self.inside.saturating_add(1);
        // Breaks that followed it after too short a gap were part of it.
        let min_gap_m = self.min_gap_m;
        self.pending.retain(|c| {
            c.gap_ms
                .is_none_or(|g| g as f64 / 1000.0 * speed >= min_gap_m)
        });
    }

    fn gap_is_body(&self, gap_ms: u64, speed_mps: f64) -> bool {
        gap_ms as f64 / 1000.0 * speed_mps >= self.min_gap_m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Beam::{Entry, Exit, Mantrap};

    /// Drives the counter with `(ms, beam, active)` edges and returns the count after.
    fn run(c: &mut BeamCounter, edges: &[(u64, Beam, bool)]) -> u8 {
        for &(t, b, a) in edges {
            c.edge(t, b, a);
        }
        c.bodies()
    }

    /// One rigid body (`len_m` long, trolley included) walking in at `v` m/s from `t0`:
    /// the entry and first mantrap beam edges, the lane's beams at 0 and 0.625 m.
    fn walk_in(t0: u64, len_m: f64, v: f64) -> Vec<(u64, Beam, bool)> {
        let ms = |m: f64| t0 + (m / v * 1000.0).round() as u64;
        let mut e = vec![
            (t0, Entry, true),
            (ms(len_m), Entry, false),
            (ms(0.625), Mantrap(0), true),
            (ms(0.625 + len_m), Mantrap(0), false),
        ];
        e.sort_by_key(|x| x.0);
        e
    }

    /// The beam edges of bodies moving along the reference lane (entry beam at 0, mantrap
    /// beams at 0.625, 1.25 and 1.875 m, exit beam at 2.5 m), sampled every millisecond.
    /// Each body is `(length_m, path)`, the path being `(ms, front_m)` points joined by
    /// straight lines (the front stays at its first and last point outside them).
    fn lane_edges(bodies: &[(f64, &[(u64, f64)])], until_ms: u64) -> Vec<(u64, Beam, bool)> {
        let front = |path: &[(u64, f64)], t: u64| -> f64 {
            let (first, last) = (path[0], path[path.len() - 1]);
            if t <= first.0 {
                return first.1;
            }
            if t >= last.0 {
                return last.1;
            }
            let k = path.windows(2).position(|w| t <= w[1].0).unwrap_or(0);
            let ((t0, x0), (t1, x1)) = (path[k], path[k + 1]);
            x0 + (x1 - x0) * (t - t0) as f64 / (t1 - t0).max(1) as f64
        };
        let beams = [
            (0.0, Entry),
            (0.625, Mantrap(0)),
            (1.25, Mantrap(1)),
            (1.875, Mantrap(2)),
            (2.5, Exit),
        ];
        let mut state = [false; 5];
        let mut out = Vec::new();
        for t in 0..=until_ms {
            for (k, &(at, beam)) in beams.iter().enumerate() {
                let broken = bodies.iter().any(|&(len, path)| {
                    let f = front(path, t);
                    f > at && f - len < at
                });
                if broken != state[k] {
                    state[k] = broken;
                    out.push((t, beam, broken));
                }
            }
        }
        out
    }

    /// Where a front walking at `v` m/s from `x0` at `t0` is after `dx` metres more.
    fn at(t0: u64, x0: f64, dx: f64, v: f64) -> (u64, f64) {
        (t0 + (dx.abs() / v * 1000.0).round() as u64, x0 + dx)
    }

    /// A traveller 0.5 m deep walking in at 1.2 m/s to the reader spot (front 1.8 m),
    /// a second person `gap_m` behind at the same speed; both walk on 1 m at 3 s.
    fn pair(gap_m: f64) -> Vec<(u64, Beam, bool)> {
        let v = 1.2;
        let lead_start = -0.1;
        let stop = at(0, lead_start, 1.9, v);
        let lead = [(0, lead_start), stop, (3_000, 1.8), at(3_000, 1.8, 1.0, v)];
        let back = 0.5 + gap_m;
        let tail: Vec<(u64, f64)> = lead.iter().map(|&(t, x)| (t, x - back)).collect();
        lane_edges(&[(0.5, &lead), (0.5, &tail)], 6_000)
    }

    #[test]
    fn a_far_tailgater_is_a_second_body() {
        // 0.70 m: the second person breaks the entry beam after the first cleared the
        // first mantrap beam and before it reached the second; 1.0 m: after it reached
        // the second.
        for gap in [0.4, 0.62, 0.66, 0.7, 0.74, 0.8, 1.0, 1.2] {
            let mut c = BeamCounter::default();
            let e = pair(gap);
            assert!(e.contains(&(e[0].0, Entry, true)));
            // Two already before both walk on at 3 s (while the second person was in
            // the entry beam with the first deeper in, or once past the first mantrap
            // beam).
            let standing = e.iter().position(|x| x.0 >= 3_000).unwrap_or(e.len());
            let mut most = 0;
            for &(t, b, a) in &e[..standing] {
                c.edge(t, b, a);
                most = most.max(c.bodies());
            }
            assert_eq!(most, 2, "gap {gap} m: {e:?}");
            assert_eq!(run(&mut c, &e[standing..]), 2, "gap {gap} m: {e:?}");
        }
    }

    #[test]
    fn a_far_tailgater_stepping_back_out_of_the_doorway_is_taken_off() {
        // 0.9 m behind: the second person stops in the entry beam (front 0.4 m in) while
        // the first walks on to the reader spot, then steps back out.
        let v = 1.2;
        let lead = [(0, -0.1), at(0, -0.1, 1.9, v)];
        let (t1, x1) = at(0, -1.5, 1.9, v);
        let (t2, x2) = at(t1 + 2_000, x1, -1.0, v);
        let tail = [(0, -1.5), (t1, x1), (t1 + 2_000, x1), (t2, x2)];
        let e = lane_edges(&[(0.5, &lead), (0.5, &tail)], t2 + 100);
        let mut c = BeamCounter::default();
        let standing = e.iter().position(|x| x.0 >= t1).unwrap_or(e.len());
        assert_eq!(run(&mut c, &e[..standing]), 2, "{e:?}");
        assert_eq!(run(&mut c, &e[standing..]), 1, "{e:?}");
    }

    #[test]
    fn a_single_traveller_walking_back_out_from_deep_in_is_none() {
        let v = 1.1;
        let (t1, x1) = at(0, -0.1, 1.7, v); // front at 1.6 m: beam 1 broken
        let (t2, x2) = at(t1 + 1_500, x1, -2.3, v); // back out past the entry beam
        let path = [(0, -0.1), (t1, x1), (t1 + 1_500, x1), (t2, x2)];
        let e = lane_edges(&[(0.5, &path)], t2 + 100);
        let mut c = BeamCounter::default();
        assert_eq!(
            run(&mut c, &e[..2]),
            0,
            "not in until the first mantrap beam"
        );
        assert_eq!(run(&mut c, &e[2..3]), 1);
        assert_eq!(run(&mut c, &e[3..]), 0, "{e:?}");
        // The same with a suitcase 0.6 m behind (1.1 m in all: the first mantrap beam is
        // still broken when the second breaks on the way in, and when the entry beam
        // breaks on the way out). Backing out, the entry beam breaks before the first
        // mantrap beam clears, so the count stays one too high (the known limit), but
        // never reads two.
        let mut c = BeamCounter::default();
        let e = lane_edges(&[(1.1, &path)], t2 + 100);
        let mut most = 0;
        for &(t, b, a) in &e {
            c.edge(t, b, a);
            most = most.max(c.bodies());
        }
        assert_eq!(most, 1, "{e:?}");
    }

    #[test]
    fn turning_round_after_walking_back_out_is_still_one() {
        let v = 1.1;
        let (t1, x1) = at(0, -0.1, 1.7, v);
        // Back until the back is 0.2 m outside the entry beam, then in again.
        let (t2, x2) = at(t1 + 1_000, x1, -1.5, v);
        let (t3, x3) = at(t2 + 300, x2, 1.5, v);
        let path = [
            (0, -0.1),
            (t1, x1),
            (t1 + 1_000, x1),
            (t2, x2),
            (t2 + 300, x2),
            (t3, x3),
        ];
        let e = lane_edges(&[(0.5, &path)], t3 + 100);
        let mut c = BeamCounter::default();
        assert_eq!(run(&mut c, &e), 1, "{e:?}");
    }

    #[test]
    fn a_second_person_stepping_back_out_while_the_first_stands_still_is_taken_off() {
        // The first stands at the reader spot (front 1.8 m, no beam broken); the second
        // walks in past the first mantrap beam, then out again.
        let lead = [(0, -0.1), at(0, -0.1, 1.9, 1.2)];
        let v = 1.0;
        let start = (2_000, -0.2);
        let (t1, x1) = at(2_000, -0.2, 1.2, v); // front at 1.0 m: past beam 0
        let (t2, x2) = at(t1 + 800, x1, -1.4, v);
        let tail = [start, (t1, x1), (t1 + 800, x1), (t2, x2)];
        let e = lane_edges(&[(0.5, &lead), (0.5, &tail)], t2 + 100);
        let mut c = BeamCounter::default();
        let split = e.iter().position(|x| x.0 >= t1).unwrap_or(e.len());
        assert_eq!(run(&mut c, &e[..split]), 2);
        assert_eq!(run(&mut c, &e[split..]), 1, "{e:?}");
    }

    #[test]
    fn one_body_walking_in_is_one() {
        let mut c = BeamCounter::default();
        assert_eq!(run(&mut c, &walk_in(1_000, 0.5, 1.2)), 1);
        assert!(!c.wrong_way());
    }

    #[test]
    fn a_tailgater_ten_centimetres_behind_is_a_second_body() {
        let mut c = BeamCounter::default();
        let v = 1.38; // fastest walker: the 10 cm gap lasts 72 ms
        let first_clear = (1_000.0 + 1.125 / v * 1000.0) as u64;
        let second_reach = (1_000.0 + 1.225 / v * 1000.0) as u64;
        let edges = [
            (1_000, Entry, true),
            ((1_000.0 + 0.5 / v * 1000.0) as u64, Entry, false),
            ((1_000.0 + 0.6 / v * 1000.0) as u64, Entry, true),
            ((1_000.0 + 0.625 / v * 1000.0) as u64, Mantrap(0), true),
            ((1_000.0 + 1.1 / v * 1000.0) as u64, Entry, false),
            (first_clear, Mantrap(0), false),
            (second_reach, Mantrap(0), true),
        ];
        assert_eq!(run(&mut c, &edges), 2);
    }

    #[test]
    fn short_gaps_from_legs_or_a_trolley_handle_stay_one_body() {
        let v = 0.6; // slow: the same gap in cm lasts longest
        let ms = |m: f64| 1_000 + (m / v * 1000.0).round() as u64;
        let mut c = BeamCounter::default();
        let edges = [
            (ms(0.0), Entry, true),
            (ms(0.5), Entry, false), // body passed; an 8 cm handle gap
            (ms(0.58), Entry, true), // the suitcase
            (ms(0.625), Mantrap(0), true),
            (ms(1.2), Entry, false),
            (ms(1.125), Mantrap(0), false),
            (ms(1.205), Mantrap(0), true),
            (ms(1.825), Mantrap(0), false),
        ];
        let mut edges = edges.to_vec();
        edges.sort_by_key(|x| x.0);
        assert_eq!(run(&mut c, &edges), 1);
    }

    #[test]
    fn chatter_on_the_entry_beam_is_not_a_body() {
        let mut c = BeamCounter::default();
        let mut e = walk_in(0, 0.5, 1.2);
        e.extend([(100, Entry, false), (120, Entry, true)]);
        e.sort_by_key(|x| x.0);
        assert_eq!(run(&mut c, &e), 1);
        // Repeated reports of a level change nothing.
        c.edge(900, Entry, false);
        c.edge(900, Mantrap(0), false);
        assert_eq!(c.bodies(), 1);
    }

    #[test]
    fn stepping_in_and_back_out_counts_nobody() {
        let mut c = BeamCounter::default();
        let e = [
            (0, Entry, true),
            (400, Entry, false),
            (1_500, Entry, true), // the same body going back out
            (1_900, Entry, false),
        ];
        assert_eq!(run(&mut c, &e), 0);
        // The next traveller (well after the stale limit) is one body.
        let later = walk_in(20_000, 0.5, 1.2);
        assert_eq!(run(&mut c, &later), 1);
    }

    #[test]
    fn walking_back_out_past_the_first_beam_takes_one_off() {
        let mut c = BeamCounter::default();
        run(&mut c, &walk_in(0, 0.5, 1.2));
        let e = [
            (3_000, Mantrap(0), true),
            (3_400, Mantrap(0), false),
            (3_500, Entry, true),
            (3_900, Entry, false),
        ];
        assert_eq!(run(&mut c, &e), 0);
    }

    #[test]
    fn turning_round_at_the_entry_is_still_one() {
        let mut c = BeamCounter::default();
        run(&mut c, &walk_in(0, 0.5, 1.2));
        let e = [
            (3_000, Mantrap(0), true),
            (3_400, Mantrap(0), false),
            (3_500, Entry, true),
            (3_600, Entry, false),
            (3_800, Mantrap(0), true), // back in
        ];
        assert_eq!(run(&mut c, &e), 1);
    }

    #[test]
    fn leaving_through_the_exit_empties_the_count_and_exit_chatter_does_not() {
        let mut c = BeamCounter::default();
        run(&mut c, &walk_in(0, 0.5, 1.2));
        let e = [
            (5_000, Mantrap(2), true),
            (5_400, Mantrap(2), false),
            (5_500, Exit, true),
            (5_700, Exit, false),
            (5_720, Exit, true), // chatter
            (5_900, Exit, false),
        ];
        assert_eq!(run(&mut c, &e), 0);
        assert!(!c.wrong_way());
    }

    #[test]
    fn coming_in_from_the_exit_side_is_wrong_way() {
        let mut c = BeamCounter::default();
        // Mantrap beams 0..=2 known (the last one is the nearest the exit).
        c.edge(0, Mantrap(2), true);
        c.edge(10, Mantrap(2), false);
        assert_eq!(c.bodies(), 0);
        let e = [
            (1_000, Exit, true),
            (1_400, Exit, false),
            (1_500, Mantrap(2), true),
        ];
        assert_eq!(run(&mut c, &e), 1);
        assert!(c.wrong_way());
        c.clear();
        assert!(!c.wrong_way());
        assert_eq!(c.bodies(), 0);
        assert!(c.any_broken(), "clear keeps the beams' levels");
    }

    #[test]
    fn wild_edge_streams_never_panic() {
        let mut c = BeamCounter::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let beam = match x % 5 {
                0 => Entry,
                1 => Exit,
                _ => Mantrap((x >> 8) as u8),
            };
            c.edge(i * (x % 7), beam, x & 0x100 != 0);
        }
        let _ = c.bodies();
    }
}
