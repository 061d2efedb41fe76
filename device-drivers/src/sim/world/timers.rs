//! The world's timer queue: what is due when, and what each timer does when it fires.

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Timer {
    Arrive(u32),
    StreamArrival,
    StepUp(u32),
    Think(u32),
    RepresentCheck(u32, u64),
    TurnBack(u32),
    DoorArrive(Door, u64),
    DoorFeedback(Door),
    ReadDone(u64, Option<u32>),
    CaptureDone(u64, Result<CaptureInfo, CaptureFailure>, Option<f32>),
    MatchDone(f32),
    Inject(Injection),
    DeviceBack(Device),
    DoorUnstuck(Door),
    EmergencyOff,
    ObstructionOff(Door),
    BeamReleased(Door),
    DoorReleased(Door),
    IntruderTurn(usize),
    IntruderGivesUp(usize),
}

impl World {
    pub(super) fn schedule(&mut self, at: Time, timer: Timer) {
        self.seq += 1;
        self.timers.insert((at, self.seq), timer);
    }

    pub(super) fn step(&mut self, t: Time, out: &mut Vec<Signal>) {
        self.move_bodies(t);
        let from = out.len();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let timer = entry.remove();
            self.fire(t, timer, out);
        }
        self.settle(t, out);
        if self.io_down() {
            // Nothing of the lane reaches the gate while the I/O link is down.
            let mut k = 0;
            out.retain(|s| {
                k += 1;
                k <= from
                    || !matches!(
                        s,
                        Signal::Lane(LaneInput::Sensor { .. })
                            | Signal::Lane(LaneInput::Occupancy { .. })
                            | Signal::Lane(LaneInput::DoorReached { .. })
                            | Signal::Lane(LaneInput::Emergency { .. })
                    )
            });
        }
    }

    pub(super) fn fire(&mut self, now: Time, timer: Timer, out: &mut Vec<Signal>) {
        match timer {
            Timer::Arrive(i) => self.arrive(now, i),
            Timer::StreamArrival => {
                if let Some(b) = self.stream_pick() {
                    if self.queue.len() < MAX_QUEUE {
                        self.add_traveller(now, TravellerSpec::new(b));
                    }
                }
                let gap = self.stream_gap();
                self.schedule(now.plus(gap), Timer::StreamArrival);
            }
            Timer::StepUp(i) => {
                let half = self.half;
                let t = &mut self.travellers[i as usize];
                t.mind = Mind::AtReader;
                t.body.c = READER_FRONT_UM - half;
                t.body.target = t.body.c;
                if let Some(c) = t.companion.as_mut() {
                    c.body.c = READER_FRONT_UM - 3 * half - c.gap;
                    c.body.target = c.body.c;
                }
                self.in_lane.push(i);
                let r = uniform(&mut self.rng, self.travellers[i as usize].reaction);
                self.schedule(now.plus(r), Timer::Think(i));
            }
            Timer::Think(i) => self.think(now, i, out),
            Timer::RepresentCheck(i, token) => {
                let t = &mut self.travellers[i as usize];
                if t.present_token == token && t.presented && !t.read_started {
                    t.presented = false;
                    let r = uniform(&mut self.rng, t.reaction);
                    self.schedule(now.plus(r), Timer::Think(i));
                }
            }
            Timer::TurnBack(i) => {
                let t = &mut self.travellers[i as usize];
                if t.mind == Mind::Pausing {
                    t.mind = Mind::LeavingBack;
                    t.body.target = -OUTSIDE_FIELD_UM - 4 * self.half;
                }
            }
            Timer::DoorArrive(door, token) => {
                let d = &mut self.doors[di(door)];
                if let DoorMove::Moving { to, .. } = d.motion {
                    if d.token == token {
                        d.motion = DoorMove::Still;
                        d.pos = match to {
                            DoorPosition::Open => self.p.door_travel_ms,
                            DoorPosition::Closed => 0,
                        };
                        out.push(Signal::Lane(LaneInput::DoorReached { door, position: to }));
                    }
                }
            }
            Timer::DoorFeedback(door) => {
                let d = &self.doors[di(door)];
                let at = match d.pos {
                    0 => Some(DoorPosition::Closed),
                    p if p >= self.p.door_travel_ms => Some(DoorPosition::Open),
                    _ => None,
                };
                if d.motion == DoorMove::Still {
                    if let Some(position) = at.filter(|a| *a == d.commanded) {
                        out.push(Signal::Lane(LaneInput::DoorReached { door, position }));
                    }
                }
            }
            Timer::ReadDone(token, who) => {
                if token == self.reader_token {
                    let result = self.read_result(who);
                    out.push(Signal::DocumentRead { result });
                }
            }
            Timer::CaptureDone(token, result, score) => {
                if token == self.capture_token {
                    self.last_score = score;
                    out.push(Signal::FingerprintCaptured { result });
                }
            }
            Timer::MatchDone(score) => out.push(Signal::MatchDone { score }),
            Timer::Inject(inj) => self.apply(now, inj, out),
            Timer::DeviceBack(device) => {
                let n = self.offline.entry(device).or_insert(0);
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.offline.remove(&device);
                    out.push(Signal::DeviceRecovered { device });
                    if device == Device::LaneIo {
                        self.io_back(now, out);
                    }
                }
            }
            Timer::DoorUnstuck(door) => {
                let d = &mut self.doors[di(door)];
                d.stuck = d.stuck.saturating_sub(1);
                if d.stuck == 0 {
                    let to = d.commanded;
                    self.drive(now, door, to);
                }
            }
            Timer::EmergencyOff => {
                if self.emergency {
                    self.emergency = false;
                    out.push(Signal::Lane(LaneInput::Emergency { active: false }));
                }
            }
            Timer::ObstructionOff(door) => {
                let n = &mut self.obstructed[di(door)];
                *n = n.saturating_sub(1);
            }
            Timer::BeamReleased(door) => self.beam_fault[di(door)] = None,
            Timer::DoorReleased(door) => {
                let d = &mut self.doors[di(door)];
                d.forced = d.forced.saturating_sub(1);
                if d.forced == 0 {
                    let to = d.commanded;
                    self.drive(now, door, to);
                }
            }
            Timer::IntruderTurn(k) => {
                let far = self.len + OUTSIDE_FIELD_UM + 4 * self.half;
                if let Some(x) = self.intruders.get_mut(k) {
                    if x.mind == IMind::Pausing {
                        x.mind = IMind::Out;
                        x.body.target = far;
                    }
                }
            }
            Timer::IntruderGivesUp(k) => {
                if let Some(x) = self.intruders.get_mut(k) {
                    if x.mind == IMind::Waiting {
                        x.mind = IMind::Gone;
                    }
                }
            }
        }
    }
}
