//! What motion leads to (arrivals, departures, followers, the next traveller) and the
//! sensors that report it: beams, safety fields, the overhead occupancy sensor.

use super::*;

impl World {
    /// Applies what motion led to: arrivals, departures, followers, the next traveller,
    /// then reports sensor changes.
    pub(super) fn settle(&mut self, now: Time, out: &mut Vec<Signal>) {
        let len = self.len;
        let h = self.half;
        let mut turned = Vec::new();
        for k in 0..self.in_lane.len() {
            let i = self.in_lane[k];
            let t = &mut self.travellers[i as usize];
            if t.body.c > 0 && t.body.c < len && t.mind != Mind::Gone {
                t.entered = true;
            }
            match t.mind {
                Mind::Entering if t.body.c == t.body.target => t.mind = Mind::Standing,
                Mind::TurningIn if t.body.c == t.body.target => {
                    t.mind = Mind::Pausing;
                    turned.push(i);
                }
                Mind::LeavingForward { emergency } if t.body.c - h > len + OUTSIDE_FIELD_UM => {
                    t.mind = Mind::Gone;
                    t.fate = if emergency {
                        Fate::EmergencyExit
                    } else {
                        Fate::PassedExit
                    };
                }
                Mind::LeavingBack if t.body.c + h < -OUTSIDE_FIELD_UM => {
                    t.mind = Mind::Gone;
                    t.fate = if t.entered {
                        Fate::CameBack
                    } else {
                        Fate::LeftAtReader
                    };
                }
                _ => {}
            }
            let leader = (t.mind, t.body);
            if let Some(c) = t.companion.as_mut() {
                if c.body.c > 0 && c.body.c < len && c.mind != CMind::Gone {
                    c.entered = true;
                }
                match c.mind {
                    CMind::Following => {
                        if matches!(leader.0, Mind::LeavingBack | Mind::Gone) && c.body.c <= 0 {
                            c.mind = CMind::SteppingBack;
                            c.body.target = -OUTSIDE_FIELD_UM - 4 * h;
                        } else if matches!(leader.0, Mind::LeavingForward { .. }) && c.body.c <= 0 {
                            // Shut out: gives up.
                            c.mind = CMind::SteppingBack;
                            c.body.target = -OUTSIDE_FIELD_UM - 4 * h;
                        } else {
                            c.body.target = leader.1.c - 2 * h - c.gap;
                        }
                    }
                    CMind::Waiting if matches!(leader.0, Mind::LeavingBack | Mind::Gone) => {
                        c.mind = CMind::Gone;
                    }
                    CMind::SteppingBack if c.body.c + h < -OUTSIDE_FIELD_UM => c.mind = CMind::Gone,
                    CMind::PushingThrough if c.body.c - h > len + OUTSIDE_FIELD_UM => {
                        c.mind = CMind::Gone;
                        c.passed_exit = true;
                    }
                    _ => {}
                }
            }
        }
        for i in turned {
            self.schedule(now.plus(TURN_BACK_PAUSE_MS), Timer::TurnBack(i));
        }
        for k in 0..self.intruders.len() {
            let x = &mut self.intruders[k];
            match x.mind {
                // Past the point where a closed exit stops them: the door was open.
                IMind::Waiting if x.body.c < len + OUTSIDE_FIELD_UM + h => x.mind = IMind::In,
                IMind::In if x.body.c == x.body.target => {
                    x.mind = IMind::Pausing;
                    self.schedule(now.plus(WRONG_WAY_PAUSE_MS), Timer::IntruderTurn(k));
                }
                IMind::Out if x.body.c == x.body.target => x.mind = IMind::Gone,
                _ => {}
            }
        }
        // The traveller at the reader is done with it once walking away from the reader.
        if let Some(i) = self.current {
            if matches!(
                self.travellers[i as usize].mind,
                Mind::LeavingForward { .. } | Mind::LeavingBack | Mind::Gone
            ) {
                self.current = None;
            }
        }
        let travellers = &self.travellers;
        self.in_lane.retain(|i| {
            let t = &travellers[*i as usize];
            t.mind != Mind::Gone || t.companion.as_ref().is_some_and(|c| c.mind != CMind::Gone)
        });
        if self.current.is_none() {
            if let Some(i) = self.queue.pop_front() {
                self.current = Some(i);
                self.travellers[i as usize].mind = Mind::SteppingUp;
                let d = uniform(&mut self.rng, self.p.step_up_ms);
                self.schedule(now.plus(d), Timer::StepUp(i));
            }
        }
        self.scan(out);
    }

    pub(super) fn scan(&mut self, out: &mut Vec<Signal>) {
        let h = self.half;
        let len = self.len;
        let zones = self.zones();
        let mut beams = [false; 2];
        let mut safety = [false; 2];
        let mut occupancy = 0u8;
        let mut children = 0u8;
        let mut look = |c: i64, tail: i64, short: bool| {
            let (lo, hi) = (c - h - tail, c + h);
            if lo < 0 && hi > 0 {
                beams[0] = true;
            }
            if lo < len && hi > len {
                beams[1] = true;
            }
            for (k, (_, zlo, zhi)) in zones.iter().enumerate() {
                if lo < *zhi && hi > *zlo {
                    safety[k] = true;
                }
            }
            if c > 0 && c < len {
                occupancy = occupancy.saturating_add(1);
                if short {
                    children = children.saturating_add(1);
                }
            }
        };
        for i in &self.in_lane {
            let t = &self.travellers[*i as usize];
            if matches!(t.mind, Mind::Gone | Mind::SteppingUp | Mind::Queued) {
            } else {
                look(t.body.c, t.body.tail, false);
            }
            if let Some(c) = &t.companion {
                if !matches!(c.mind, CMind::Gone) && t.mind != Mind::SteppingUp {
                    look(c.body.c, 0, c.short);
                }
            }
        }
        for x in &self.intruders {
            if matches!(x.mind, IMind::In | IMind::Pausing | IMind::Out) {
                look(x.body.c, 0, false);
            }
        }
        for k in 0..2 {
            if let Some(level) = self.beam_fault[k] {
                beams[k] = level;
            }
            if self.obstructed[k] > 0 {
                safety[k] = true;
            }
        }
        for (k, sensor) in [Sensor::EntryBeam, Sensor::ExitBeam]
            .into_iter()
            .enumerate()
        {
            if beams[k] != self.beams[k] {
                self.beams[k] = beams[k];
                out.push(Signal::Lane(LaneInput::Sensor {
                    sensor,
                    active: beams[k],
                }));
            }
        }
        for (k, sensor) in [Sensor::EntrySafety, Sensor::ExitSafety]
            .into_iter()
            .enumerate()
        {
            if safety[k] != self.safety[k] {
                self.safety[k] = safety[k];
                out.push(Signal::Lane(LaneInput::Sensor {
                    sensor,
                    active: safety[k],
                }));
            }
        }
        if occupancy != self.occupancy || children != self.children {
            // One signal for the whole count, so that the gate never sees a child
            // counted as an adult in between.
            let signal = if children > 0 || self.children > 0 {
                Signal::Lane(LaneInput::Headcount {
                    persons: occupancy,
                    children,
                })
            } else {
                Signal::Lane(LaneInput::Occupancy { persons: occupancy })
            };
            self.occupancy = occupancy;
            self.children = children;
            out.push(signal);
        }
    }
}
