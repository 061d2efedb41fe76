//! Level-triggered progress: after every input, what the current step needs and how
//! far it can go.

use super::step::Phase;
use super::Machine;
use crate::party::{ChildPolicy, Party};
use crate::record::{AlarmKind, Prompt};
use crate::types::{Door, Time};

impl Machine {
    pub(super) fn settle(&mut self, now: Time) {
        self.steer_doors(now);
        // Each pass either changes phase or stops; bound the loop anyway.
        for _ in 0..16 {
            let before = (self.phase, self.doors);
            self.progress(now);
            if (self.phase, self.doors) == before {
                break;
            }
        }
    }

    pub(super) fn progress(&mut self, now: Time) {
        match self.phase {
            Phase::OutOfService
                if !self.manual_oos
                    && !self.door_fault
                    && !self.beam_faulty()
                    && self.faults.is_empty() =>
            {
                // Back in service by itself once every device has recovered.
                self.clear_alarm(AlarmKind::DeviceFault);
                self.go_idle(now);
            }
            Phase::Ready | Phase::OutOfService | Phase::Held | Phase::Stopped => {
                self.want_closed(Door::Entry, now);
                self.want_closed(Door::Exit, now);
            }
            Phase::Maintenance => {}
            Phase::Resuming => {
                self.want_closed(Door::Exit, now);
                if self.occupancy > 0 || self.beams.iter().any(|b| *b) {
                    self.let_out(now);
                }
            }
            Phase::Reading | Phase::CheckingWatchlist | Phase::Notice => {}
            Phase::Emergency => {
                for d in Door::ALL {
                    self.want_open(d, now);
                }
            }
            Phase::Entering => {
                self.want_closed(Door::Exit, now);
                self.want_open(Door::Entry, now);
                let party = self.party();
                if party == Party::Crowd {
                    self.on_tailgating();
                } else if party == Party::AdultWithChild
                    && self.cfg.accompanied_child == ChildPolicy::Refer
                {
                    self.refer_child(now);
                } else if party != Party::Empty && !self.beams[0] && self.doors[0].is_open() {
                    if let Some(t) = self.transit.as_mut() {
                        t.crossed[0] = true;
                    }
                    self.show(Prompt::PleaseWait);
                    self.set_phase(now, Phase::ClosingEntry);
                }
            }
            Phase::ClosingEntry => {
                let party = self.party();
                if party == Party::Crowd {
                    self.on_tailgating();
                    self.set_phase(now, Phase::Entering);
                    return;
                }
                if party == Party::AdultWithChild
                    && self.cfg.accompanied_child == ChildPolicy::Refer
                {
                    self.refer_child(now);
                    return;
                }
                if party == Party::Empty || self.beams[0] {
                    // The traveller stepped back out: wait in `Entering` again.
                    self.set_phase(now, Phase::Entering);
                    return;
                }
                self.want_closed(Door::Entry, now);
                if self.doors[0].is_closed() && self.doors[1].is_closed() {
                    // The party is shut in: whether a child goes with the traveller is
                    // settled now (only reachable as `AdultWithChild` under `allow`).
                    if let Some(t) = self.transit.as_mut() {
                        t.child = party == Party::AdultWithChild;
                    }
                    self.start_capture(now, 1);
                }
            }
            Phase::Capturing { .. } | Phase::Matching { .. } | Phase::Committing => {
                self.want_closed(Door::Entry, now);
            }
            Phase::Exiting => {
                // Only reachable through a journaled clear decision (invariant 1).
                self.want_closed(Door::Entry, now);
                self.want_open(Door::Exit, now);
                if self.doors[1].is_open() && self.occupancy == 0 && !self.beams[1] {
                    if let Some(t) = self.transit.as_mut() {
                        t.crossed[1] = true;
                    }
                    self.set_phase(now, Phase::ClosingExit);
                }
            }
            Phase::ClosingExit => {
                if self.occupancy > 0 || self.beams[1] {
                    self.set_phase(now, Phase::Exiting);
                    return;
                }
                self.want_closed(Door::Exit, now);
                if self.doors[1].is_closed() {
                    self.finish_transit(now);
                }
            }
            Phase::LettingOut { closing } => {
                self.want_closed(Door::Exit, now);
                if !closing {
                    self.want_open(Door::Entry, now);
                    if self.doors[0].is_open() && self.occupancy == 0 && !self.beams[0] {
                        self.set_phase(now, Phase::LettingOut { closing: true });
                    }
                } else {
                    if self.occupancy > 0 || self.beams[0] {
                        self.set_phase(now, Phase::LettingOut { closing: false });
                        return;
                    }
                    self.want_closed(Door::Entry, now);
                    if self.doors[0].is_closed() && self.doors[1].is_closed() {
                        self.finish_transit(now);
                    }
                }
            }
        }
    }
}
