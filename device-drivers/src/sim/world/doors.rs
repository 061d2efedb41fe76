//! The door motors: where a door is, and driving it.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DoorMove {
    Still,
    Moving {
        to: DoorPosition,
        from: u64,
        since: Time,
    },
}

#[derive(Clone, Debug)]
pub(super) struct DoorSim {
    /// Travel done from closed, in ms of motor time (`0` closed, `travel` open).
    pub(super) pos: u64,
    pub(super) commanded: DoorPosition,
    pub(super) motion: DoorMove,
    pub(super) stuck: u32,
    /// Held open by force (someone pulls it); commands are remembered, carried out after.
    pub(super) forced: u32,
    pub(super) token: u64,
}

impl World {
    pub(super) fn door_pos(&self, door: Door, now: Time) -> u64 {
        let d = &self.doors[di(door)];
        match d.motion {
            DoorMove::Still => d.pos,
            DoorMove::Moving { to, from, since } => {
                let moved = now.since(since);
                match to {
                    DoorPosition::Open => (from + moved).min(self.p.door_travel_ms),
                    DoorPosition::Closed => from.saturating_sub(moved),
                }
            }
        }
    }

    pub(super) fn door_open(&self, door: Door, now: Time) -> bool {
        let d = &self.doors[di(door)];
        d.commanded == DoorPosition::Open && self.door_pos(door, now) >= self.p.door_travel_ms
    }

    pub(super) fn drive(&mut self, now: Time, door: Door, to: DoorPosition) {
        let pos = self.door_pos(door, now);
        let travel = self.p.door_travel_ms;
        let d = &mut self.doors[di(door)];
        d.pos = pos;
        d.commanded = to;
        d.token += 1;
        d.motion = DoorMove::Still;
        let remaining = match to {
            DoorPosition::Open => travel - pos.min(travel),
            DoorPosition::Closed => pos,
        };
        if d.forced > 0 {
            // Held open by hand: the motor cannot move it; the command waits.
        } else if remaining == 0 {
            self.schedule(now.plus(self.p.io_latency_ms), Timer::DoorFeedback(door));
        } else if d.stuck == 0 {
            d.motion = DoorMove::Moving {
                to,
                from: pos,
                since: now,
            };
            let token = d.token;
            self.schedule(now.plus(remaining), Timer::DoorArrive(door, token));
        }
    }
}
