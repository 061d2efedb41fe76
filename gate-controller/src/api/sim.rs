//! A simulated gate behind a [`GateLink`], for API tests, browser tests, benchmarks and
//! demos that need no state machine: the caller sets the status and raises alarms; the
//! gate answers commands with simple, plausible rules and records them.

use super::link::{CommandReply, CommandRequest, EventFeed, GateHandle, GateLink, GateStatus};
use crate::record::{Actor, AlarmKind, GateEvent, Mode, OperatorCommand, Prompt};
use crate::types::DoorPosition;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One command the simulated gate received, with its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedCommand {
    /// The command.
    pub command: OperatorCommand,
    /// Who and why.
    pub actor: Actor,
    /// What the gate answered.
    pub reply: CommandReply,
}

type Shared = Arc<Mutex<Vec<ReceivedCommand>>>;

/// A fake gate: status and events are set by the caller; commands are answered.
#[derive(Debug)]
pub struct SimulatedGate {
    link: GateLink,
    status: Arc<watch::Sender<GateStatus>>,
    feed: EventFeed,
    received: Shared,
    task: JoinHandle<()>,
}

impl SimulatedGate {
    /// Starts a simulated gate named `gate_id` in the ready state (needs a tokio runtime).
    pub fn start(gate_id: &str) -> SimulatedGate {
        let mut initial = GateStatus::idle();
        initial.snapshot.entry = (DoorPosition::Closed, Some(DoorPosition::Closed));
        initial.snapshot.exit = (DoorPosition::Closed, Some(DoorPosition::Closed));
        let (link, handle) = GateLink::channel(gate_id, initial, 1);
        let GateHandle {
            status,
            events,
            mut commands,
        } = handle;
        let status = Arc::new(status);
        let received: Shared = Arc::new(Mutex::new(Vec::new()));
        let (st, feed, log) = (status.clone(), events.clone(), received.clone());
        let task = tokio::spawn(async move {
            while let Some(req) = commands.recv().await {
                answer(req, &st, &feed, &log);
            }
        });
        SimulatedGate {
            link,
            status,
            feed: events,
            received,
            task,
        }
    }

    /// The link to give to [`crate::api::router`].
    pub fn link(&self) -> GateLink {
        self.link.clone()
    }

    /// Raises `alarm` (status and event).
    pub fn raise_alarm(&self, alarm: AlarmKind, detail: &str) -> u64 {
        self.status.send_modify(|s| {
            if !s.snapshot.alarms.contains(&alarm) {
                s.snapshot.alarms.push(alarm);
                s.snapshot.alarms.sort();
            }
        });
        self.feed.publish(GateEvent::AlarmRaised {
            alarm,
            detail: detail.to_owned(),
        })
    }

    /// Moves the gate to `step` in `mode`, showing `prompt` (status and event).
    pub fn set_step(&self, mode: Mode, step: &'static str, prompt: Prompt) -> u64 {
        let mut from = "";
        self.status.send_modify(|s| {
            from = s.snapshot.step;
            s.snapshot.mode = mode;
            s.snapshot.step = step;
            s.snapshot.prompt = prompt;
        });
        self.feed.publish(GateEvent::StepChanged {
            from: from.to_owned(),
            to: step.to_owned(),
            mode,
        })
    }

    /// Changes the status in place (counters, devices, watchlist, backlog...).
    pub fn update(&self, f: impl FnOnce(&mut GateStatus)) {
        self.status.send_modify(f);
    }

    /// Publishes an arbitrary event; returns its id.
    pub fn publish(&self, event: GateEvent) -> u64 {
        self.feed.publish(event)
    }

    /// The current status.
    pub fn status(&self) -> GateStatus {
        self.status.borrow().clone()
    }

    /// Every command received so far, in order.
    pub fn received(&self) -> Vec<ReceivedCommand> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for SimulatedGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(req: CommandRequest, status: &watch::Sender<GateStatus>, feed: &EventFeed, log: &Shared) {
    let mut result: Result<String, String> = Ok(String::new());
    let mut cleared = None;
    let needed = req.command.required_role();
    status.send_modify(|s| {
        let snap = &mut s.snapshot;
        result = if req.actor.role < needed {
            Err(format!("requires the {needed:?} role"))
        } else {
            match &req.command {
                OperatorCommand::AcknowledgeAlarm { alarm } => {
                    if let Some(i) = snap.alarms.iter().position(|a| a == alarm) {
                        snap.alarms.remove(i);
                        cleared = Some(*alarm);
                        Ok("acknowledged".into())
                    } else {
                        Err(format!("no active {alarm:?} alarm"))
                    }
                }
                OperatorCommand::ReleaseHold => {
                    if snap.mode == Mode::Held {
                        snap.mode = Mode::Ready;
                        snap.step = "ready";
                        snap.prompt = Prompt::PresentDocument;
                        if let Some(i) = snap
                            .alarms
                            .iter()
                            .position(|a| *a == AlarmKind::WatchlistHold)
                        {
                            snap.alarms.remove(i);
                            cleared = Some(AlarmKind::WatchlistHold);
                        }
                        Ok("hold released".into())
                    } else {
                        Err("the gate is not holding anyone".into())
                    }
                }
                OperatorCommand::Refer => {
                    if snap.mode == Mode::Transit {
                        snap.prompt = Prompt::GoToCounter;
                        snap.step = "letting_out";
                        Ok("traveller referred".into())
                    } else {
                        Err("no traveller in the lane".into())
                    }
                }
                OperatorCommand::OpenEntry => {
                    snap.entry = (DoorPosition::Open, Some(DoorPosition::Open));
                    Ok("entry opened".into())
                }
                OperatorCommand::OpenExit => {
                    snap.exit = (DoorPosition::Open, Some(DoorPosition::Open));
                    Ok("exit opened".into())
                }
                OperatorCommand::OutOfService => {
                    snap.mode = Mode::OutOfService;
                    snap.step = "out_of_service";
                    snap.prompt = Prompt::OutOfService;
                    Ok("out of service".into())
                }
                OperatorCommand::InService
                | OperatorCommand::EmergencyReset
                | OperatorCommand::MaintenanceOff => {
                    snap.mode = Mode::Ready;
                    snap.step = "ready";
                    snap.prompt = Prompt::PresentDocument;
                    snap.alarms.retain(|a| *a != AlarmKind::Emergency);
                    Ok("back in service".into())
                }
                OperatorCommand::EmergencyRelease => {
                    snap.mode = Mode::Emergency;
                    snap.step = "emergency";
                    snap.prompt = Prompt::Emergency;
                    if !snap.alarms.contains(&AlarmKind::Emergency) {
                        snap.alarms.push(AlarmKind::Emergency);
                    }
                    Ok("all doors released".into())
                }
                OperatorCommand::MaintenanceOn => {
                    snap.mode = Mode::Maintenance;
                    snap.step = "maintenance";
                    snap.prompt = Prompt::OutOfService;
                    Ok("maintenance".into())
                }
            }
        };
    });
    let (accepted, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    if let Some(alarm) = cleared {
        feed.publish(GateEvent::AlarmCleared { alarm });
    }
    feed.publish(GateEvent::Command {
        command: req.command.clone(),
        actor: req.actor.clone(),
        accepted,
        detail: detail.clone(),
    });
    let reply = CommandReply { accepted, detail };
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(ReceivedCommand {
            command: req.command.clone(),
            actor: req.actor.clone(),
            reply: reply.clone(),
        });
    req.answer(reply);
}
