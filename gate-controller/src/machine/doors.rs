//! Door control: one controller per door, the interlock (invariant 2) and the
//! safety sensor that a closing door yields to (invariant 4).

use super::signals::Action;
use super::step::Phase;
use super::{idx, Machine};
use crate::record::AlarmKind;
use crate::types::{Device, Door, DoorPosition, FaultKind, Sensor, Time};

/// A door as the core sees it: what it last drove, what it wants, where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorCtl {
    /// Position last commanded.
    pub target: DoorPosition,
    /// Position the door should end up in.
    pub want: DoorPosition,
    /// Last position reported, `None` while moving or unknown.
    pub at: Option<DoorPosition>,
    pub(super) deadline: Option<Time>,
    pub(super) reversals: u8,
    /// The lane I/O refused to close it; the obstruction is already counted.
    pub(super) refused: bool,
    /// The position last reported and not yet followed by a command: a door commanded
    /// open where it already stands open reports nothing new (e.g. after a restart).
    pub(super) seen: Option<DoorPosition>,
    /// Not commanded by this process yet (after a restart, until its first command):
    /// where it stands is only known from reports, and what drives it may be a command
    /// the previous process left latched in the lane I/O.
    pub(super) uncommanded: bool,
}

impl DoorCtl {
    pub(super) fn new() -> Self {
        DoorCtl {
            target: DoorPosition::Closed,
            want: DoorPosition::Closed,
            at: None,
            deadline: None,
            reversals: 0,
            refused: false,
            seen: None,
            uncommanded: false,
        }
    }
    /// Commanded closed and seen closed.
    pub fn is_closed(&self) -> bool {
        !self.uncommanded
            && self.target == DoorPosition::Closed
            && self.at == Some(DoorPosition::Closed)
    }
    /// Commanded open and seen open.
    pub fn is_open(&self) -> bool {
        !self.uncommanded
            && self.target == DoorPosition::Open
            && self.at == Some(DoorPosition::Open)
    }
}

impl Machine {
    pub(super) fn drive(&mut self, door: Door, pos: DoorPosition, now: Time) {
        let c = &mut self.doors[idx(door)];
        c.target = pos;
        // Reported open since the last command and now commanded open: it is there (open
        // is where a door hurts nobody, and it keeps the other door shut). A door reported
        // closed is believed closed only on a report that follows the close command, the
        // lane I/O's confirmation of it (docs/io.md): the command before may have set it
        // moving since that report, and the other door's interlock relies on "closed".
        // That holds for the first command after a restart too: the previous process may
        // have left an open command latched in the lane I/O that has just set the door
        // moving while it still reads closed. A door that stays silent is a door fault.
        let there = c.seen.take() == Some(pos) && pos == DoorPosition::Open;
        c.uncommanded = false;
        c.at = there.then_some(pos);
        c.deadline = (!there).then(|| now.plus(self.cfg.timeouts.door_travel_ms));
        self.push(match pos {
            DoorPosition::Open => Action::OpenDoor { door },
            DoorPosition::Closed => Action::CloseDoor { door },
        });
    }

    /// Wants `door` open; opens it only once the other door is closed (or in emergency).
    pub(super) fn want_open(&mut self, door: Door, now: Time) {
        self.doors[idx(door)].want = DoorPosition::Open;
        if self.lane_unreported() {
            return;
        }
        let other_closed = self.doors[idx(door.other())].is_closed();
        let c = self.doors[idx(door)];
        if (c.target != DoorPosition::Open || c.uncommanded)
            && (other_closed || self.phase == Phase::Emergency)
        {
            self.drive(door, DoorPosition::Open, now);
        }
    }

    /// Wants `door` closed; drives it only while its safety sensor is clear.
    pub(super) fn want_closed(&mut self, door: Door, now: Time) {
        self.doors[idx(door)].want = DoorPosition::Closed;
        if self.lane_unreported() {
            return;
        }
        let c = self.doors[idx(door)];
        if (c.target != DoorPosition::Closed || c.uncommanded) && !self.safety[idx(door)] {
            self.drive(door, DoorPosition::Closed, now);
        }
    }

    /// After a restart, until the lane I/O has reported both doors (or the resuming
    /// step's time is up): no door is driven before its safety sensor is known
    /// (invariant 4). An emergency release does not wait.
    pub(super) fn lane_unreported(&self) -> bool {
        self.unreported.iter().any(|u| *u)
    }

    pub(super) fn on_door_reached(&mut self, door: Door, pos: DoorPosition) {
        self.unreported[idx(door)] = false;
        let c = &mut self.doors[idx(door)];
        c.seen = Some(pos);
        if pos == c.target {
            c.at = Some(pos);
            c.deadline = None;
            if pos == DoorPosition::Closed {
                c.reversals = 0;
                c.refused = false;
            }
        } else if pos == DoorPosition::Open && c.at == Some(DoorPosition::Closed) {
            // Opened without a command: someone forced it. Take it as open; the door
            // steering drives it closed again once its safety sensor is clear, and the
            // travel deadline turns a door that stays open into a door fault.
            c.target = DoorPosition::Open;
            c.at = Some(DoorPosition::Open);
            c.deadline = None;
            c.want = DoorPosition::Closed;
            self.raise(
                AlarmKind::ForcedDoor,
                format!("{door:?} door opened without a command"),
            );
        }
    }

    pub(super) fn on_occupancy(&mut self, persons: u8, children: u8) {
        let before = self.occupancy;
        self.occupancy = persons;
        self.children = children.min(persons);
        // Someone came in from the far side: through the exit while a cleared traveller
        // leaves, or into a lane that expects nobody.
        let unexpected = match self.phase {
            Phase::Exiting | Phase::ClosingExit => persons > before,
            Phase::Ready | Phase::OutOfService | Phase::Held | Phase::Notice => persons > 0,
            _ => false,
        };
        if unexpected && persons > before && self.last_beam == Some(Sensor::ExitBeam) {
            self.raise(
                AlarmKind::WrongWay,
                "a person entered the lane from the exit side",
            );
        }
    }

    pub(super) fn on_sensor(&mut self, now: Time, sensor: Sensor, active: bool) {
        match sensor {
            Sensor::EntryBeam | Sensor::ExitBeam => {
                let i = usize::from(sensor == Sensor::ExitBeam);
                self.beams[i] = active;
                if active {
                    self.last_beam = Some(sensor);
                    if self.beam_since[i].is_none() {
                        self.beam_since[i] = Some(now);
                    }
                    if let Some(t) = self.transit.as_mut() {
                        t.beam_seen[i] = true;
                    }
                } else {
                    self.beam_since[i] = None;
                }
            }
            Sensor::EntrySafety | Sensor::ExitSafety => {
                let door = if sensor == Sensor::EntrySafety {
                    Door::Entry
                } else {
                    Door::Exit
                };
                self.safety[idx(door)] = active;
                let c = self.doors[idx(door)];
                self.doors[idx(door)].refused = false;
                if active && c.target == DoorPosition::Closed && c.at != Some(DoorPosition::Closed)
                {
                    // Obstruction while closing: reverse (opening is always safe). One the
                    // lane I/O already refused to close on is counted once.
                    if !c.refused {
                        self.doors[idx(door)].reversals = c.reversals.saturating_add(1);
                    }
                    self.drive(door, DoorPosition::Open, now);
                    if self.doors[idx(door)].reversals > self.cfg.max_door_reversals {
                        self.on_door_fault(now, door, "obstructed on every closing attempt");
                    }
                }
            }
        }
    }

    pub(super) fn on_door_refused(&mut self, now: Time, door: Door, position: DoorPosition) {
        let c = self.doors[idx(door)];
        if self.phase == Phase::Emergency || c.target != position || c.at == Some(position) {
            // Not (or no longer) what the machine commands.
            return;
        }
        match position {
            DoorPosition::Closed => {
                // The interlock holds the door open for an obstruction not reported yet;
                // the door stays commanded closed and closes once the sensor clears.
                if !c.refused && !self.safety[idx(door)] {
                    let c = &mut self.doors[idx(door)];
                    c.refused = true;
                    c.reversals = c.reversals.saturating_add(1);
                    if c.reversals > self.cfg.max_door_reversals {
                        self.on_door_fault(
                            now,
                            door,
                            "held open by its safety interlock on every closing attempt",
                        );
                    }
                }
            }
            DoorPosition::Open => self.on_door_fault(
                now,
                door,
                "refused to open by the lane interlock (the other door is not confirmed closed)",
            ),
        }
    }

    pub(super) fn on_door_fault(&mut self, now: Time, door: Door, why: &str) {
        self.door_fault = true;
        self.raise(AlarmKind::DoorFault, format!("{door:?} door {why}"));
        self.fault_transit(now, Device::LaneIo, FaultKind::Hardware);
    }

    /// Re-drives the doors towards what the current step wants.
    pub(super) fn steer_doors(&mut self, now: Time) {
        for d in Door::ALL {
            let c = self.doors[idx(d)];
            if c.want == DoorPosition::Closed
                && c.target == DoorPosition::Open
                && !self.safety[idx(d)]
            {
                self.drive(d, DoorPosition::Closed, now);
            }
        }
    }
}
