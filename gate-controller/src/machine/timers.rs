//! Deadlines: what each step does when its time is up.

use super::signals::Action;
use super::step::Phase;
use super::Machine;
use crate::record::{AlarmKind, Outcome, Prompt, Reason, Step};
use crate::types::{Device, Time};

impl Machine {
    pub(super) fn on_phase_timeout(&mut self, now: Time) {
        let timeout = |step| vec![Reason::Timeout { step }];
        match self.phase {
            Phase::Reading => {
                self.push(Action::CancelDocumentRead);
                self.refer_pre_entry(now, timeout(Step::DocumentRead));
            }
            Phase::CheckingWatchlist => self.refer_pre_entry(now, timeout(Step::Watchlist)),
            Phase::Entering | Phase::ClosingEntry => {
                let t = self.transit.as_ref();
                if t.is_some_and(|t| t.tailgating) {
                    self.refer_inside(now, vec![Reason::Tailgating], None);
                } else if self.occupancy > 0 || self.beams[0] {
                    let step = if self.phase == Phase::Entering {
                        Step::Enter
                    } else {
                        Step::Occupancy
                    };
                    self.refer_inside(now, timeout(step), None);
                } else {
                    self.record(now, Outcome::Aborted, vec![Reason::NeverEntered], None);
                    self.let_out(now);
                    self.show(Prompt::PresentDocument);
                }
            }
            Phase::Capturing { attempt } => {
                self.push(Action::CancelCapture);
                self.next_attempt(now, attempt);
            }
            Phase::Matching { attempt } => self.next_attempt(now, attempt),
            Phase::Committing => {
                // Whether the record landed is unknown until the journal answers, so the
                // decision stands and the exit stays shut until then; the operator is told.
                self.raise(AlarmKind::JournalFailure, "journal commit is late");
            }
            Phase::Exiting | Phase::ClosingExit | Phase::LettingOut { .. } => {
                if let Some(t) = self.transit.as_mut() {
                    if !t.lingering_alarm {
                        t.lingering_alarm = true;
                        self.raise(AlarmKind::Lingering, "traveller still in the lane");
                    }
                }
            }
            Phase::Notice => self.finish_transit(now),
            // Nobody reported inside: the transit ends; with the lane I/O down its
            // report is still to come, so keep waiting.
            // The doors are not known yet (`unreported_until` settles that): wait on.
            Phase::Resuming if self.lane_unreported() || self.faults.contains(&Device::LaneIo) => {
                self.phase_deadline = Some(now.plus(self.cfg.timeouts.notice_ms));
            }
            Phase::Resuming => self.finish_transit(now),
            _ => {}
        }
    }
}
