//! Device faults and the emergency release.

use super::signals::Action;
use super::step::Phase;
use super::{idx, Machine};
use crate::record::{AlarmKind, GateEvent, Mode, Outcome, Prompt, Reason};
use crate::types::{Device, Door, DoorPosition, FaultKind, Time};

impl Machine {
    pub(super) fn on_fault(&mut self, now: Time, device: Device, kind: FaultKind, detail: String) {
        let mode = self.mode();
        let new = self.faults.insert(device);
        if new {
            self.emit(GateEvent::DeviceFault {
                device,
                kind: Some(kind),
                detail: detail.clone(),
            });
            self.raise(AlarmKind::DeviceFault, format!("{device}: {detail}"));
        }
        let phase = self.phase;
        self.fault_transit(now, device, kind);
        self.report_mode_change(phase, mode);
    }

    /// A transit that goes on in the same step while the lane I/O fails or recovers
    /// changes the gate's mode (out of service ↔ transit) without a step change: the
    /// feed is told all the same.
    pub(super) fn report_mode_change(&mut self, phase: Phase, mode: Mode) {
        if self.phase == phase && self.mode() != mode {
            let name = phase.name();
            self.emit(GateEvent::StepChanged {
                from: name.into(),
                to: name.into(),
                mode: self.mode(),
            });
        }
    }

    /// Safely ends a transit hit by a device fault; an idle gate goes out of service.
    pub(super) fn fault_transit(&mut self, now: Time, device: Device, kind: FaultKind) {
        let reason = Reason::DeviceFault {
            device,
            kind: Some(kind),
        };
        let reasons = vec![reason.clone()];
        match self.phase {
            p if p.pre_entry() => self.abort_pre_entry(now, reason),
            p if p.occupant_undecided() => {
                self.record(now, Outcome::Aborted, reasons, None);
                self.let_out(now);
            }
            Phase::Ready | Phase::Notice => {
                if self.transit.is_some() {
                    self.finish_transit(now);
                } else {
                    self.go_idle(now);
                }
            }
            // A cleared traveller on the way out with the lane I/O gone: the record is
            // written, but whether they have left is unknown until the I/O is back. The
            // transit stays open (out of service meanwhile, see `mode_in`) so that nobody
            // new is served and the exit never closes on them; once the I/O reports
            // again, the exit closes behind them as usual. Decided transits, held,
            // emergency and maintenance stay as they are.
            _ => {}
        }
    }

    pub(super) fn enter_emergency(&mut self, now: Time) {
        if self.transit.is_some() {
            self.record(now, Outcome::Aborted, vec![Reason::Emergency], None);
            if self.phase == Phase::Reading {
                self.push(Action::CancelDocumentRead);
            }
            if matches!(self.phase, Phase::Capturing { .. }) {
                self.push(Action::CancelCapture);
            }
            self.transit = None;
        }
        self.raise(AlarmKind::Emergency, "emergency release: all doors open");
        self.show(Prompt::Emergency);
        self.set_phase(now, Phase::Emergency);
        // Release every door at once, whatever the other door does (invariant 3).
        // Commanded even where the core believes the door open already (it may have
        // been forced): an emergency release never relies on remembered state.
        for d in Door::ALL {
            self.doors[idx(d)].want = DoorPosition::Open;
            self.drive(d, DoorPosition::Open, now);
        }
    }
}
