//! One simulated gate: the real state machine, the invariant checker watching every step,
//! the seeded lane world, an in-memory journal and watchlist. Used by `gate-sim run`
//! (virtual time) and `gate-sim demo` (real time) alike.

use crate::scenario::OperatorPolicy;
use device_drivers::sim::{Params, ParamsError, Signal, TravellerId, World};
use device_drivers::types::{DocumentKey, Time, WatchlistVerdict};
use gate_controller::invariants::{Checker, Violation};
use gate_controller::machine::{Action, Config, Event, Machine};
use gate_controller::record::{
    Actor, AlarmKind, GateEvent, OperatorCommand, Outcome, Reason, Role, TxnId,
};
use gate_controller::sim_bridge::{command_of, event_of};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Version the in-memory watchlist reports.
pub const WATCHLIST_VERSION: u64 = 1;

/// An in-memory watchlist shared by the gates of a run.
#[derive(Clone, Debug, Default)]
pub struct Watchlist {
    entries: HashMap<DocumentKey, (bool, String)>,
}

impl Watchlist {
    /// Adds an entry (`hold` false means refer).
    pub fn insert(&mut self, key: DocumentKey, hold: bool, reason: String) {
        self.entries.insert(key, (hold, reason));
    }

    /// The verdict for `key`, consulting the world's generated listings after the list.
    pub fn verdict(&self, key: &DocumentKey, world: &World) -> WatchlistVerdict {
        let hit = self
            .entries
            .get(key)
            .cloned()
            .or_else(|| world.listing(key).map(|l| (l.hold, l.reason.clone())));
        let version = WATCHLIST_VERSION;
        match hit {
            None => WatchlistVerdict::Clear { version },
            Some((true, reason)) => WatchlistVerdict::Hold { version, reason },
            Some((false, reason)) => WatchlistVerdict::Refer { version, reason },
        }
    }
}

#[derive(Clone, Debug)]
enum Pending {
    Journaled(TxnId),
    Watchlist(WatchlistVerdict),
}

/// A moment a scenario trigger may wait for (see [`Gate::marks`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The state machine entered this step.
    Step(String),
    /// This traveller placed a document on the reader.
    Presented(TravellerId),
}

/// A violation with the gate and virtual time it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateViolation {
    /// Gate index.
    pub gate: usize,
    /// Virtual time.
    pub at: Time,
    /// The violation.
    pub violation: Violation,
}

/// One gate under simulation.
pub struct Gate {
    /// Index in the run.
    pub index: usize,
    /// The real state machine.
    pub machine: Machine,
    /// The invariant checker fed with every input and output.
    pub checker: Checker,
    /// The lane.
    pub world: World,
    journal_ms: u64,
    watchlist_ms: u64,
    pending: BTreeMap<(Time, u64), Pending>,
    seq: u64,
    presenter: Option<TravellerId>,
    txn_traveller: HashMap<TxnId, TravellerId>,
    /// Outcome recorded for each traveller who started a transit.
    pub traveller_outcome: HashMap<TravellerId, Outcome>,
    /// Travellers whose record says a child came with them (`accompanied_child` reason).
    pub with_child_recorded: HashMap<TravellerId, Outcome>,
    /// Transits started.
    pub transits: u64,
    /// Outcome records, in [`Outcome::ALL`] order.
    pub outcomes: [u64; 4],
    /// Alarms raised, by kind.
    pub alarms: BTreeMap<AlarmKind, u64>,
    /// Violations, in order.
    pub violations: Vec<GateViolation>,
    /// Alarms raised since the driver last took them (for simulated operators).
    pub raised: Vec<(Time, AlarmKind)>,
    /// Machine inputs handled (events and timeouts).
    pub inputs: u64,
    /// Closing doors driven open again before they closed (safety-sensor reversals).
    pub door_reversals: u64,
    /// For each emergency input, virtual ms until both doors were commanded open.
    pub emergency_latencies: Vec<u64>,
    /// A door is being driven closed and has not reported closed yet.
    closing: [bool; 2],
    /// Emergency input seen at, and the doors commanded open since.
    emergency_since: Option<(Time, [bool; 2])>,
    /// The last few events, newest last (for the demo).
    pub recent: VecDeque<(Time, String)>,
    keep_recent: usize,
    actions: Vec<Action>,
    /// Print every input and its actions to stderr (`gate-sim run --trace`).
    pub trace: bool,
    /// Whether [`Gate::marks`] is kept (scenarios with triggers).
    pub record_marks: bool,
    /// Step entries and document presentations since the driver last took them, in
    /// order, with their virtual time (only while `record_marks` is set).
    pub marks: Vec<(Time, Mark)>,
    /// When set, every machine input is appended here (`None` = a timeout), e.g. to
    /// replay a realistic transit in a benchmark.
    pub recorded: Option<Vec<(Time, Option<Event>)>>,
    start: Time,
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Cleared => 0,
        Outcome::Referred => 1,
        Outcome::Held => 2,
        Outcome::Aborted => 3,
    }
}

impl Gate {
    /// A gate ready at `start`, its doors being confirmed closed by the world.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        cfg: Config,
        params: Params,
        seed: u64,
        start: Time,
        journal_ms: u64,
        watchlist_ms: u64,
        keep_recent: usize,
    ) -> Result<Gate, ParamsError> {
        let mut world = World::new(params, seed)?;
        world.advance_to(start);
        let mut g = Gate {
            index,
            machine: Machine::new(cfg, start, 1),
            checker: Checker::new(),
            world,
            journal_ms,
            watchlist_ms,
            pending: BTreeMap::new(),
            seq: 0,
            presenter: None,
            txn_traveller: HashMap::new(),
            traveller_outcome: HashMap::new(),
            with_child_recorded: HashMap::new(),
            transits: 0,
            outcomes: [0; 4],
            alarms: BTreeMap::new(),
            violations: Vec::new(),
            raised: Vec::new(),
            inputs: 0,
            door_reversals: 0,
            emergency_latencies: Vec::new(),
            closing: [false; 2],
            emergency_since: None,
            recent: VecDeque::new(),
            keep_recent,
            actions: Vec::new(),
            trace: false,
            record_marks: false,
            marks: Vec::new(),
            recorded: None,
            start,
        };
        g.drain(start, None, &Watchlist::default());
        Ok(g)
    }

    /// When this gate next needs [`Gate::step`].
    pub fn wakeup(&self) -> Option<Time> {
        [
            self.machine.poll_timeout(),
            self.world.next_wakeup(),
            self.pending.keys().next().map(|k| k.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Everything due at `now`: world signals, journal and watchlist answers, deadlines.
    pub fn step(&mut self, now: Time, wl: &Watchlist) {
        for s in self.world.advance_to(now) {
            if let Signal::DocumentPresented { traveller } = s {
                self.presenter = Some(traveller);
                if self.record_marks {
                    self.marks.push((now, Mark::Presented(traveller)));
                }
            }
            self.feed(now, event_of(s), wl);
        }
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ev = match entry.remove() {
                Pending::Journaled(txn) => Event::Journaled { txn },
                Pending::Watchlist(verdict) => Event::WatchlistChecked { verdict },
            };
            self.feed(now, ev, wl);
        }
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.machine.handle_timeout(now);
            self.drain(now, None, wl);
        }
    }

    /// Feeds one event to the machine (operator commands come in here too).
    pub fn feed(&mut self, now: Time, ev: Event, wl: &Watchlist) {
        self.machine.handle(now, ev.clone());
        self.drain(now, Some(ev), wl);
    }

    fn drain(&mut self, now: Time, ev: Option<Event>, wl: &Watchlist) {
        self.inputs += 1;
        if let Some(r) = self.recorded.as_mut() {
            r.push((now, ev.clone()));
        }
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        while let Some(a) = self.machine.poll_action() {
            actions.push(a);
        }
        if self.trace {
            let t = now.since(self.start);
            let step = self.machine.step();
            eprintln!("[gate {} {:>9} ms] {:?} -> {step}", self.index, t, ev);
            for a in &actions {
                if !matches!(
                    a,
                    Action::Emit {
                        event: GateEvent::StepChanged { .. }
                    }
                ) {
                    eprintln!("[gate {} {:>9} ms]     {:?}", self.index, t, a);
                }
            }
        }
        self.watch_doors(now, ev.as_ref(), &actions);
        let before = self.checker.violations().len();
        self.checker.observe(ev.as_ref(), &actions);
        for v in &self.checker.violations()[before..] {
            self.violations.push(GateViolation {
                gate: self.index,
                at: now,
                violation: v.clone(),
            });
        }
        for a in &actions {
            self.execute(now, a, wl);
        }
        self.actions = actions;
    }

    /// Counts safety reversals and measures emergency release latency.
    fn watch_doors(&mut self, now: Time, ev: Option<&Event>, actions: &[Action]) {
        use device_drivers::types::{Door, DoorPosition};
        let k = |d: &Door| usize::from(*d == Door::Exit);
        match ev {
            Some(Event::DoorReached { door, position }) if *position == DoorPosition::Closed => {
                self.closing[k(door)] = false;
            }
            Some(Event::Emergency { active: true })
            | Some(Event::Operator {
                command: OperatorCommand::EmergencyRelease,
                ..
            }) if self.emergency_since.is_none() => {
                self.emergency_since = Some((now, [false; 2]));
            }
            _ => {}
        }
        for a in actions {
            match a {
                Action::CloseDoor { door } => self.closing[k(door)] = true,
                Action::OpenDoor { door } => {
                    let i = k(door);
                    if self.closing[i] && self.emergency_since.is_none() {
                        self.door_reversals += 1;
                    }
                    self.closing[i] = false;
                    if let Some((_, seen)) = self.emergency_since.as_mut() {
                        seen[i] = true;
                    }
                }
                _ => {}
            }
        }
        if let Some((at, [true, true])) = self.emergency_since {
            self.emergency_latencies.push(now.since(at));
            self.emergency_since = None;
        }
    }

    /// Emergency inputs after which the doors were not (yet) both commanded open.
    pub fn emergency_pending(&self) -> u64 {
        u64::from(self.emergency_since.is_some())
    }

    fn later(&mut self, at: Time, p: Pending) {
        self.seq += 1;
        self.pending.insert((at, self.seq), p);
    }

    fn note(&mut self, now: Time, text: String) {
        if self.keep_recent == 0 {
            return;
        }
        if self.recent.len() == self.keep_recent {
            self.recent.pop_front();
        }
        self.recent.push_back((now, text));
    }

    fn execute(&mut self, now: Time, a: &Action, wl: &Watchlist) {
        if let Some(cmd) = command_of(a) {
            self.world.command(now, cmd);
            return;
        }
        match a {
            Action::CheckWatchlist { key } => {
                let verdict = wl.verdict(key, &self.world);
                self.later(now.plus(self.watchlist_ms), Pending::Watchlist(verdict));
            }
            Action::Journal { record } => {
                self.outcomes[outcome_index(record.outcome)] += 1;
                if let Some(t) = self.txn_traveller.get(&record.txn) {
                    self.traveller_outcome.insert(*t, record.outcome);
                    if record.reasons.contains(&Reason::AccompaniedChild) {
                        self.with_child_recorded.insert(*t, record.outcome);
                    }
                }
                self.later(now.plus(self.journal_ms), Pending::Journaled(record.txn));
                if self.keep_recent > 0 {
                    let text = format!("txn {} {}", record.txn, record.outcome.as_str());
                    self.note(now, text);
                }
            }
            Action::Emit { event } => match event {
                GateEvent::TransitStarted { txn } => {
                    self.transits += 1;
                    if let Some(t) = self.presenter.take() {
                        self.txn_traveller.insert(*txn, t);
                    }
                }
                GateEvent::StepChanged { to, .. } if self.record_marks => {
                    self.marks.push((now, Mark::Step(to.clone())));
                }
                GateEvent::AlarmRaised { alarm, detail } => {
                    *self.alarms.entry(*alarm).or_insert(0) += 1;
                    self.raised.push((now, *alarm));
                    if self.keep_recent > 0 {
                        self.note(now, format!("alarm {alarm:?}: {detail}"));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Ends the run: a transit still in progress may lack its record.
    pub fn finish(&mut self, now: Time) {
        let before = self.checker.violations().len();
        self.checker.finish(self.machine.snapshot().txn);
        for v in &self.checker.violations()[before..] {
            self.violations.push(GateViolation {
                gate: self.index,
                at: now,
                violation: v.clone(),
            });
        }
    }

    /// Commands the simulated officers issue under `policy` for the alarms raised since
    /// the last call, each with the time it is due.
    pub fn standing_orders(&mut self, policy: &OperatorPolicy) -> Vec<(Time, Event)> {
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
                out.push((due, Event::Operator { command, actor }));
            }
        }
        out
    }

    /// People queueing or being served: a rough load figure for choosing a gate.
    pub fn load(&self) -> usize {
        use gate_controller::record::Mode;
        let busy = match self.machine.mode() {
            Mode::Ready => 0,
            Mode::Transit => 1,
            _ => 1_000,
        };
        self.world.queue_len() + busy
    }
}
