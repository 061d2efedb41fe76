//! Bodies moving along the lane: door zones nobody steps into while a door is not open,
//! and walking at each body's speed.

use super::*;

impl World {
    /// Door zones `[lo, hi]` in micrometres.
    pub(super) fn zones(&self) -> [(Door, i64, i64); 2] {
        [
            (Door::Entry, -OUTSIDE_FIELD_UM, self.zone),
            (
                Door::Exit,
                self.len - self.zone,
                self.len + OUTSIDE_FIELD_UM,
            ),
        ]
    }

    /// Where a body at `c` (with `tail` trailing behind) heading for `to` may get to,
    /// stopping at closed doors' zones.
    pub(super) fn limit(&self, c: i64, to: i64, tail: i64, now: Time) -> i64 {
        let h = self.half;
        let mut to = to;
        for (door, lo, hi) in self.zones() {
            if self.door_open(door, now) {
                continue;
            }
            if to > c && c + h <= lo && to + h > lo {
                to = lo - h;
            }
            if to < c && c - h - tail >= hi && to - h - tail < hi {
                to = hi + h + tail;
            }
        }
        to
    }

    pub(super) fn wants_to_move(&self, b: &Body, now: Time) -> bool {
        if b.c == b.target {
            return false;
        }
        let toward = if b.target > b.c { b.c + 1 } else { b.c - 1 };
        self.limit(b.c, toward, b.tail, now) != b.c
    }

    pub(super) fn moving(&self) -> bool {
        self.in_lane.iter().any(|i| {
            let t = &self.travellers[*i as usize];
            (t.mind != Mind::Gone && self.wants_to_move(&t.body, self.now))
                || t.companion
                    .as_ref()
                    .is_some_and(|c| c.mind != CMind::Gone && self.wants_to_move(&c.body, self.now))
        }) || self.intruders.iter().any(|x| {
            matches!(x.mind, IMind::Waiting | IMind::In | IMind::Out)
                && self.wants_to_move(&x.body, self.now)
        })
    }

    /// Moves a body for `dt` ms, with the doors as they stand at the start of the interval.
    pub(super) fn move_body(&self, b: Body, dt: u64) -> Body {
        if b.c == b.target || dt == 0 {
            return b;
        }
        let step = b.speed.saturating_mul(dt as i64);
        let to = if b.target > b.c {
            (b.c + step).min(b.target)
        } else {
            (b.c - step).max(b.target)
        };
        Body {
            c: self.limit(b.c, to, b.tail, self.now),
            ..b
        }
    }

    pub(super) fn move_bodies(&mut self, t: Time) {
        if t <= self.now {
            return;
        }
        let dt = t.since(self.now);
        for k in 0..self.in_lane.len() {
            let i = self.in_lane[k] as usize;
            let body = self.move_body(self.travellers[i].body, dt);
            self.travellers[i].body = body;
            if let Some(mut c) = self.travellers[i].companion.clone() {
                if c.mind == CMind::Following {
                    // Keeps the gap to where the leader is now, not where they were.
                    c.body.target = body.c - 2 * self.half - c.gap;
                }
                let cb = self.move_body(c.body, dt);
                if let Some(c) = self.travellers[i].companion.as_mut() {
                    c.body = cb;
                }
            }
        }
        for k in 0..self.intruders.len() {
            let x = self.intruders[k];
            if matches!(x.mind, IMind::Waiting | IMind::In | IMind::Out) {
                self.intruders[k].body = self.move_body(x.body, dt);
            }
        }
        self.now = t;
    }
}
