//! Operator commands: who may do what, and what each does to the gate.

use super::signals::Action;
use super::step::Phase;
use super::Machine;
use crate::record::{Actor, AlarmKind, GateEvent, OperatorCommand, Outcome, Prompt, Reason};
use crate::types::{Door, Time};

impl Machine {
    pub(super) fn on_command(&mut self, now: Time, command: OperatorCommand, actor: Actor) {
        let result = if actor.role < command.required_role() {
            Err(format!("requires the {:?} role", command.required_role()))
        } else {
            self.execute(now, &command, &actor)
        };
        let (accepted, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.emit(GateEvent::Command {
            command,
            actor,
            accepted,
            detail,
        });
    }

    pub(super) fn execute(
        &mut self,
        now: Time,
        command: &OperatorCommand,
        actor: &Actor,
    ) -> Result<String, String> {
        let user = Some(actor.user.clone());
        match command {
            OperatorCommand::OpenEntry | OperatorCommand::Refer => match self.phase {
                p if p.pre_entry() => {
                    if p == Phase::Reading {
                        self.push(Action::CancelDocumentRead);
                    }
                    self.record(now, Outcome::Referred, vec![Reason::OperatorRefer], user);
                    self.show(Prompt::GoToCounter);
                    self.set_phase(now, Phase::Notice);
                    Ok("traveller referred".into())
                }
                p if p.occupant_undecided() => {
                    self.refer_inside(now, vec![Reason::OperatorRefer], user);
                    Ok("traveller referred and let out through the entry".into())
                }
                Phase::Maintenance if *command == OperatorCommand::OpenEntry => {
                    self.want_open(Door::Entry, now);
                    Ok("entry door opened for maintenance".into())
                }
                _ => Err(format!(
                    "no traveller to refer in step {}",
                    self.phase.name()
                )),
            },
            OperatorCommand::OpenExit => match self.phase {
                Phase::Capturing { .. } | Phase::Matching { .. } => {
                    if matches!(self.phase, Phase::Capturing { .. }) {
                        self.push(Action::CancelCapture);
                    }
                    self.decide_clear(now, vec![Reason::OperatorOverride], user);
                    Ok("override journaled; exit opens once committed".into())
                }
                _ => Err(format!(
                    "the exit opens only for a traveller awaiting a decision, not in step {}",
                    self.phase.name()
                )),
            },
            OperatorCommand::ReleaseHold => {
                if self.phase != Phase::Held {
                    return Err("the gate is not holding anyone".into());
                }
                self.clear_alarm(AlarmKind::WatchlistHold);
                self.finish_transit(now);
                Ok("hold released".into())
            }
            OperatorCommand::OutOfService => {
                self.manual_oos = true;
                match self.phase {
                    Phase::Ready => self.go_idle(now),
                    p if p.pre_entry() => self.abort_pre_entry(now, Reason::Shutdown),
                    p if p.occupant_undecided() => {
                        self.record(now, Outcome::Aborted, vec![Reason::Shutdown], user);
                        self.let_out(now);
                    }
                    _ => {}
                }
                Ok("out of service".into())
            }
            OperatorCommand::InService => {
                self.manual_oos = false;
                self.door_fault = false;
                // A repaired beam is trusted again; one still blocked is found out again
                // after `beam_blocked_ms`.
                self.beam_fault = [false; 2];
                self.beam_silent = [0; 2];
                if self.faults.is_empty() {
                    self.clear_alarm(AlarmKind::DeviceFault);
                }
                self.clear_alarm(AlarmKind::DoorFault);
                if self.phase == Phase::OutOfService {
                    self.go_idle(now);
                }
                if self.phase == Phase::Ready {
                    Ok("in service".into())
                } else {
                    Ok(format!("in service once {} ends", self.phase.name()))
                }
            }
            OperatorCommand::EmergencyRelease => {
                self.enter_emergency(now);
                Ok("all doors released".into())
            }
            OperatorCommand::EmergencyReset => {
                if self.phase != Phase::Emergency {
                    return Err("no emergency to reset".into());
                }
                if self.emergency_input {
                    return Err("the emergency input is still active".into());
                }
                self.clear_alarm(AlarmKind::Emergency);
                self.go_idle(now);
                Ok("emergency reset".into())
            }
            OperatorCommand::MaintenanceOn => match self.phase {
                Phase::Ready | Phase::OutOfService => {
                    self.maintenance = true;
                    self.go_idle(now);
                    Ok("maintenance".into())
                }
                p => Err(format!("cannot enter maintenance during {}", p.name())),
            },
            OperatorCommand::MaintenanceOff => {
                if self.phase != Phase::Maintenance {
                    return Err("the gate is not in maintenance".into());
                }
                self.maintenance = false;
                self.want_closed(Door::Entry, now);
                self.go_idle(now);
                Ok("maintenance ended".into())
            }
            OperatorCommand::AcknowledgeAlarm { alarm } => {
                if self.alarms.contains(alarm) {
                    self.clear_alarm(*alarm);
                    Ok("acknowledged".into())
                } else {
                    Err(format!("no active {alarm:?} alarm"))
                }
            }
        }
    }
}
