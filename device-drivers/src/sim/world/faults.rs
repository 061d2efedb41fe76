//! Injected faults (devices offline, stuck doors, obstructions, beam faults, forced
//! doors, intruders, the lane I/O link, the emergency input) and the lane I/O link's
//! return.

use super::*;

impl World {
    pub(super) fn io_down(&self) -> bool {
        self.offline.contains_key(&Device::LaneIo)
    }

    /// The lane I/O link is back: report the current input states and carry out the door
    /// commands latched meanwhile.
    /// Every lane input as it stands at `now` (beams, safety fields, occupancy, doors
    /// that are fully open or closed, the emergency input): what a lane I/O driver reports
    /// when it (re)connects, e.g. after the link returns or the gate's process restarts.
    pub fn inputs_now(&self, now: Time) -> Vec<Signal> {
        let mut out = Vec::with_capacity(8);
        for (k, sensor) in [Sensor::EntryBeam, Sensor::ExitBeam]
            .into_iter()
            .enumerate()
        {
            out.push(Signal::Lane(LaneInput::Sensor {
                sensor,
                active: self.beams[k],
            }));
        }
        for (k, sensor) in [Sensor::EntrySafety, Sensor::ExitSafety]
            .into_iter()
            .enumerate()
        {
            out.push(Signal::Lane(LaneInput::Sensor {
                sensor,
                active: self.safety[k],
            }));
        }
        out.push(if self.children > 0 {
            Signal::Lane(LaneInput::Headcount {
                persons: self.occupancy,
                children: self.children,
            })
        } else {
            Signal::Lane(LaneInput::Occupancy {
                persons: self.occupancy,
            })
        });
        for door in Door::ALL {
            let pos = self.door_pos(door, now);
            let at = if pos == 0 {
                Some(DoorPosition::Closed)
            } else if pos >= self.p.door_travel_ms {
                Some(DoorPosition::Open)
            } else {
                None
            };
            if let Some(position) = at {
                out.push(Signal::Lane(LaneInput::DoorReached { door, position }));
            }
        }
        out.push(Signal::Lane(LaneInput::Emergency {
            active: self.emergency,
        }));
        out
    }

    pub(super) fn io_back(&mut self, now: Time, out: &mut Vec<Signal>) {
        out.extend(self.inputs_now(now));
        for door in Door::ALL {
            if let Some(to) = self.io_latched[di(door)].take() {
                self.drive(now, door, to);
            }
        }
    }

    pub(super) fn apply(&mut self, now: Time, inj: Injection, out: &mut Vec<Signal>) {
        let offline = |w: &mut World, device: Device, for_ms: u64, out: &mut Vec<Signal>| {
            let n = w.offline.entry(device).or_insert(0);
            *n += 1;
            if *n == 1 {
                // A lost lane link is the link's failure; a reader or scanner gone is
                // the device missing.
                let kind = if device == Device::LaneIo {
                    FaultKind::Link
                } else {
                    FaultKind::Unavailable
                };
                out.push(Signal::DeviceFault {
                    device,
                    kind,
                    detail: format!("simulated: offline for {for_ms} ms"),
                });
            }
            w.schedule(now.plus(for_ms), Timer::DeviceBack(device));
        };
        match inj {
            Injection::ScannerOffline { for_ms } => {
                self.capture_token += 1;
                offline(self, Device::FingerprintScanner, for_ms, out);
            }
            Injection::ReaderOffline { for_ms } => {
                self.reader_token += 1;
                offline(self, Device::DocumentReader, for_ms, out);
            }
            Injection::DoorStuck { door, for_ms } => {
                let pos = self.door_pos(door, now);
                let d = &mut self.doors[di(door)];
                d.pos = pos;
                d.motion = DoorMove::Still;
                d.token += 1;
                d.stuck += 1;
                self.schedule(now.plus(for_ms), Timer::DoorUnstuck(door));
            }
            Injection::Obstruction { door, for_ms } => {
                self.obstructed[di(door)] += 1;
                self.schedule(now.plus(for_ms), Timer::ObstructionOff(door));
            }
            Injection::BeamStuck {
                door,
                blocked,
                for_ms,
            } => {
                self.beam_fault[di(door)] = Some(blocked);
                if let Some(ms) = for_ms {
                    self.schedule(now.plus(ms), Timer::BeamReleased(door));
                }
            }
            Injection::ForceDoor { door, for_ms } => {
                let pos = self.door_pos(door, now);
                let travel = self.p.door_travel_ms;
                let d = &mut self.doors[di(door)];
                d.forced += 1;
                d.pos = pos;
                d.token += 1;
                d.motion = DoorMove::Still;
                if pos < travel {
                    // Pulled open by hand: about as fast as the motor would.
                    d.motion = DoorMove::Moving {
                        to: DoorPosition::Open,
                        from: pos,
                        since: now,
                    };
                    let token = d.token;
                    self.schedule(now.plus(travel - pos), Timer::DoorArrive(door, token));
                }
                self.schedule(now.plus(for_ms), Timer::DoorReleased(door));
            }
            Injection::WrongWay { for_ms } => {
                let far = self.len + OUTSIDE_FIELD_UM + 4 * self.half;
                let speed = (self.p.walk_speed_mps * 1000.0).round() as i64;
                self.intruders.push(Intruder {
                    mind: IMind::Waiting,
                    body: Body {
                        c: far,
                        target: self.len - WRONG_WAY_DEPTH_UM,
                        speed: speed.max(1),
                        tail: 0,
                    },
                });
                let k = self.intruders.len() - 1;
                self.schedule(now.plus(for_ms), Timer::IntruderGivesUp(k));
            }
            Injection::IoLinkLost { for_ms } => {
                offline(self, Device::LaneIo, for_ms, out);
            }
            Injection::Emergency { for_ms } => {
                if !self.emergency {
                    self.emergency = true;
                    out.push(Signal::Lane(LaneInput::Emergency { active: true }));
                }
                if let Some(ms) = for_ms {
                    self.schedule(now.plus(ms), Timer::EmergencyOff);
                }
            }
        }
    }
}
