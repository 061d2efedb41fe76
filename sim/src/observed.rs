//! One gate of a `gate-sim run`: `gated`'s shell on a virtual clock
//! ([`VirtualGate`]) and what the run reads from its log: outcomes per traveller, alarms,
//! door reversals, emergency release latencies, the marks scenario triggers wait for.
//! Nothing here drives the machine; it only watches what the shell took in and sent out.

use crate::scenario::OperatorPolicy;
use device_drivers::devices::{LaneCommand, LaneInput};
use device_drivers::sim::{Params, TravellerId};
use device_drivers::types::{Door, DoorPosition, Time};
use gate_controller::machine::Config;
use gate_controller::record::{
    Actor, AlarmKind, GateEvent, OperatorCommand, Outcome, Reason, Role, TxnId,
};
use gate_controller::runtime::screening::InlineWatchlist;
use gate_controller::runtime::sim::stepped::{
    Logged, SteppedError, TimedViolation, Took, VirtualGate, VirtualGateSpec,
};
use gate_controller::runtime::{FeedKind, Output};
use std::collections::{BTreeMap, HashMap};

/// Version the scenario's watchlist reports.
pub const WATCHLIST_VERSION: u64 = 1;

/// A moment a scenario trigger may wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The state machine entered this step.
    Step(String),
    /// This traveller placed a document on the reader.
    Presented(TravellerId),
}

/// One gate under simulation, with what the run learned from its shell.
pub struct SimGate {
    /// Index in the run.
    pub index: usize,
    /// The shell, its lane and its checker.
    pub shell: VirtualGate,
    presenter: Option<TravellerId>,
    txn_traveller: HashMap<TxnId, TravellerId>,
    /// Outcome recorded (in the journal) for each traveller who started a transit.
    pub traveller_outcome: HashMap<TravellerId, Outcome>,
    /// Travellers whose record says a child came with them (`accompanied_child` reason).
    pub with_child_recorded: HashMap<TravellerId, Outcome>,
    /// Transits started.
    pub transits: u64,
    /// Records committed, in [`Outcome::ALL`] order.
    pub outcomes: [u64; 4],
    /// Alarms raised, by kind.
    pub alarms: BTreeMap<AlarmKind, u64>,
    /// Alarms raised since the driver last took them (for simulated operators).
    pub raised: Vec<(Time, AlarmKind)>,
    /// Closing doors driven open again before they closed (safety-sensor reversals).
    pub door_reversals: u64,
    /// For each emergency input, virtual ms until both doors were commanded open.
    pub emergency_latencies: Vec<u64>,
    closing: [bool; 2],
    emergency_since: Option<(Time, [bool; 2])>,
    /// Print every input and output of the shell to stderr (`gate-sim run --trace`).
    pub trace: bool,
    /// Whether [`SimGate::marks`] is kept (scenarios with triggers).
    pub record_marks: bool,
    /// Step entries and document presentations since the driver last took them.
    pub marks: Vec<(Time, Mark)>,
    start: Time,
}

fn outcome_index(o: Outcome) -> usize {
    Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

fn k(d: Door) -> usize {
    usize::from(d == Door::Exit)
}

impl SimGate {
    /// A gate ready at `start`, its doors being confirmed closed by the world.
    pub fn new(
        index: usize,
        machine: Config,
        params: Params,
        seed: u64,
        start: Time,
        commit_ms: u64,
        watchlist: InlineWatchlist,
    ) -> Result<SimGate, SteppedError> {
        let spec = VirtualGateSpec {
            gate_id: format!("sim-{index}"),
            machine,
            params,
            seed,
            watchlist,
            commit_ms,
        };
        let shell = VirtualGate::new(spec, start)?;
        let mut g = SimGate {
            index,
            shell,
            presenter: None,
            txn_traveller: HashMap::new(),
            traveller_outcome: HashMap::new(),
            with_child_recorded: HashMap::new(),
            transits: 0,
            outcomes: [0; 4],
            alarms: BTreeMap::new(),
            raised: Vec::new(),
            door_reversals: 0,
            emergency_latencies: Vec::new(),
            closing: [false; 2],
            emergency_since: None,
            trace: false,
            record_marks: false,
            marks: Vec::new(),
            start,
        };
        g.absorb();
        Ok(g)
    }

    /// When this gate next needs [`SimGate::step`].
    pub fn wakeup(&self) -> Option<Time> {
        self.shell.wakeup()
    }

    /// Everything due at `now`.
    pub fn step(&mut self, now: Time) {
        self.shell.step(now);
        self.absorb();
    }

    /// An operator command at `now`.
    pub fn operator(&mut self, now: Time, command: OperatorCommand, actor: Actor) {
        let reply = self.shell.operator(now, command, actor);
        if self.trace {
            eprintln!(
                "[gate {} {:>9} ms]     reply: {reply:?}",
                self.index,
                now.since(self.start)
            );
        }
        self.absorb();
    }

    /// Invariant violations so far.
    pub fn violations(&self) -> &[TimedViolation] {
        self.shell.violations()
    }

    /// Reads the shell's log since the last call.
    pub fn absorb(&mut self) {
        for (at, item) in self.shell.take_log() {
            if self.trace {
                self.print(at, &item);
            }
            match item {
                Logged::Presented(t) => {
                    self.presenter = Some(t);
                    if self.record_marks {
                        self.marks.push((at, Mark::Presented(t)));
                    }
                }
                Logged::Took(took) => self.took(at, &took),
                Logged::Out(o) => self.out(at, o),
                Logged::Committed(stored) => {
                    let r = &stored.record;
                    self.outcomes[outcome_index(r.outcome)] += 1;
                    if let Some(t) = self.txn_traveller.get(&r.txn) {
                        self.traveller_outcome.insert(*t, r.outcome);
                        if r.reasons.contains(&Reason::AccompaniedChild) {
                            self.with_child_recorded.insert(*t, r.outcome);
                        }
                    }
                }
                Logged::Restarted => {
                    self.closing = [false; 2];
                }
            }
        }
    }

    fn print(&self, at: Time, item: &Logged) {
        let t = at.since(self.start);
        let step = self.shell.core().status().machine.step;
        match item {
            Logged::Took(took) => {
                eprintln!("[gate {} {:>9} ms] {took:?} -> {step}", self.index, t)
            }
            Logged::Out(Output::Feed(f)) => {
                if let FeedKind::Event {
                    event: GateEvent::StepChanged { .. },
                } = f.kind
                {
                    return;
                }
                eprintln!("[gate {} {:>9} ms]     {:?}", self.index, t, f.kind)
            }
            other => eprintln!("[gate {} {:>9} ms]     {other:?}", self.index, t),
        }
    }

    fn took(&mut self, at: Time, took: &Took) {
        match took {
            Took::Lane(LaneInput::DoorReached {
                door,
                position: DoorPosition::Closed,
            }) => self.closing[k(*door)] = false,
            Took::Lane(LaneInput::Emergency { active: true })
            | Took::Operator(OperatorCommand::EmergencyRelease)
                if self.emergency_since.is_none() =>
            {
                self.emergency_since = Some((at, [false; 2]));
            }
            _ => {}
        }
    }

    fn out(&mut self, at: Time, o: Output) {
        match o {
            Output::Lane(LaneCommand::Door { door, position }) => {
                let i = k(door);
                if position == DoorPosition::Closed {
                    self.closing[i] = true;
                } else {
                    if self.closing[i] && self.emergency_since.is_none() {
                        self.door_reversals += 1;
                    }
                    self.closing[i] = false;
                    if let Some((since, seen)) = self.emergency_since.as_mut() {
                        seen[i] = true;
                        if *seen == [true, true] {
                            self.emergency_latencies.push(at.since(*since));
                            self.emergency_since = None;
                        }
                    }
                }
            }
            Output::Feed(item) => {
                if let FeedKind::Event { event } = item.kind {
                    match event {
                        GateEvent::TransitStarted { txn } => {
                            self.transits += 1;
                            if let Some(t) = self.presenter.take() {
                                self.txn_traveller.insert(txn, t);
                            }
                        }
                        GateEvent::StepChanged { to, .. } if self.record_marks => {
                            self.marks.push((at, Mark::Step(to)));
                        }
                        GateEvent::AlarmRaised { alarm, .. } => {
                            *self.alarms.entry(alarm).or_insert(0) += 1;
                            self.raised.push((at, alarm));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Emergency inputs after which the doors were not (yet) both commanded open.
    pub fn emergency_pending(&self) -> u64 {
        u64::from(self.emergency_since.is_some())
    }

    /// Ends the run: a transit still in progress may lack its record.
    pub fn finish(&mut self) {
        self.shell.finish();
    }

    /// Commands the simulated officers issue under `policy` for the alarms raised since
    /// the last call, each with the time it is due.
    pub fn standing_orders(
        &mut self,
        policy: &OperatorPolicy,
    ) -> Vec<(Time, OperatorCommand, Actor)> {
        let mut out = Vec::new();
        for (at, alarm) in std::mem::take(&mut self.raised) {
            let command = match alarm {
                AlarmKind::WatchlistHold => policy
                    .release_hold_after_s
                    .map(|d| (d, OperatorCommand::ReleaseHold)),
                AlarmKind::Tailgating | AlarmKind::Lingering => policy
                    .acknowledge_after_s
                    .map(|d| (d, OperatorCommand::AcknowledgeAlarm { alarm })),
                AlarmKind::DoorFault => policy
                    .in_service_after_door_fault_s
                    .map(|d| (d, OperatorCommand::InService)),
                _ => None,
            };
            if let Some((delay, command)) = command {
                let actor = Actor {
                    user: "sim-officer".into(),
                    role: Role::Operator,
                    reason: format!("standing order on {alarm:?}"),
                };
                let due = at.plus((delay * 1000.0).round() as u64);
                out.push((due, command, actor));
            }
        }
        out
    }

    /// People queueing or being served: a rough load figure for choosing a gate.
    pub fn load(&self) -> usize {
        use gate_controller::record::Mode;
        let busy = match self.shell.core().mode() {
            Mode::Ready => 0,
            Mode::Transit => 1,
            _ => 1_000,
        };
        self.shell.world().queue_len() + busy
    }
}
