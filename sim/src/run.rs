//! `gate-sim run`: every gate of a scenario in one virtual-time event loop. The loop
//! always jumps to the earliest of the machines' deadlines, the worlds' wakeups, the
//! in-memory journal/watchlist answers and the scenario's scheduled items; the invariant
//! checker sees every input of every gate.

use crate::observed::{Mark, SimGate, WATCHLIST_VERSION};
use crate::scenario::{
    behaviour_named, Expect, ListAction, Scenario, Schedule, ShellFault, Traffic, Trigger,
};
use device_drivers::sim::{
    generate_document, Behaviour, Companion, Fate, Injection, SimRng, TravellerId, TravellerSpec,
};
use device_drivers::types::{DocumentKey, Time};
use gate_controller::config::WatchlistAction;
use gate_controller::machine::Config;
use gate_controller::record::{Actor, OperatorCommand, Outcome};
use gate_controller::runtime::screening::InlineWatchlist;
use serde::Serialize;
use std::collections::BTreeMap;

/// Virtual start of every run: 2026-11-26T08:00:00Z in Unix milliseconds.
pub const START: Time = Time(1_795_680_000_000);

/// Most violations listed one by one in the report.
const MAX_LISTED: usize = 20;
/// A run that handles this many inputs at one instant is stuck.
const MAX_INPUTS_PER_INSTANT: u32 = 100_000;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}

#[derive(Clone, Debug)]
enum Op {
    Arrival(Behaviour),
    Command {
        gate: Option<usize>,
        command: OperatorCommand,
        actor: Actor,
    },
    Shell {
        gates: Vec<usize>,
        fault: ShellFault,
    },
}

/// What a triggered entry does when it fires.
#[derive(Clone, Debug)]
enum Deferred {
    /// Something happens to these gates' lanes.
    Inject {
        gates: Vec<usize>,
        injection: Injection,
    },
    /// An operator command (to one gate or every gate).
    Command {
        gate: Option<usize>,
        command: OperatorCommand,
        actor: Actor,
    },
    /// Something happens to these gates' computers (storage, process, clock).
    Shell {
        gates: Vec<usize>,
        fault: ShellFault,
    },
}

/// A `[[fault]]`, `[[emergency]]` or `[[command]]` waiting for its trigger.
#[derive(Clone, Debug)]
struct Armed {
    /// The table it comes from, e.g. `fault[1]`.
    table: String,
    /// The resolved trigger.
    trigger: Trigger,
    /// The `after` traveller (gate, id), if any.
    after: Option<(usize, TravellerId)>,
    /// Whether the `after` traveller has presented a document.
    after_seen: bool,
    /// What to do.
    action: Deferred,
    /// When it fired (the trigger point plus `delay_ms`).
    fired: Option<Time>,
}

impl Armed {
    /// The trigger in words, for reports.
    fn describe(&self) -> String {
        let step = self
            .trigger
            .step
            .as_ref()
            .map(|(g, s)| format!("gate {g} enters `{s}`"));
        let after = self
            .trigger
            .after
            .as_ref()
            .map(|n| format!("traveller `{n}` presents a document"));
        let delay = match self.trigger.delay_ms {
            0 => String::new(),
            d => format!(", + {d} ms"),
        };
        match (step, after) {
            (Some(s), Some(a)) => format!("{s} once {a}{delay}"),
            (Some(x), None) | (None, Some(x)) => format!("{x}{delay}"),
            (None, None) => "never".into(),
        }
    }
}

/// Outcome counts in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Cleared.
    pub cleared: u64,
    /// Referred.
    pub referred: u64,
    /// Held.
    pub held: u64,
    /// Aborted.
    pub aborted: u64,
}

/// Expectation tally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Expectations met.
    pub passed: u64,
    /// Expectations not met.
    pub failed: u64,
}

/// One expectation and what the run showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Dotted key in the scenario.
    pub expect: String,
    /// What was expected.
    pub want: String,
    /// What happened.
    pub got: String,
    /// Whether it held.
    pub passed: bool,
}

/// One invariant violation in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ViolationReport {
    /// Gate index.
    pub gate: usize,
    /// Invariant: 1..=7 from DESIGN.md, or `P1` (nobody reaches the far side without a
    /// clear decision of their own).
    pub invariant: String,
    /// Virtual milliseconds from the start.
    pub at_ms: u64,
    /// What happened.
    pub detail: String,
}

/// Per-gate figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GateReport {
    /// Gate index.
    pub gate: usize,
    /// Transits started.
    pub transits: u64,
    /// Outcome counts.
    pub outcomes: Outcomes,
    /// Coarse state at the end.
    pub state: String,
    /// Machine inputs handled.
    pub inputs: u64,
}

/// Emergency releases in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmergencyReleases {
    /// Emergency inputs (active edges) over all gates.
    pub count: u64,
    /// Longest virtual time from the input to both doors commanded open, in ms.
    pub max_latency_ms: u64,
    /// Inputs after which the doors were not both commanded open.
    pub unreleased: u64,
}

/// Wall-clock figures (only with `--timing`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Wall time of the run.
    pub wall_ms: f64,
    /// Transits per second of wall time.
    pub transits_per_s: f64,
    /// Machine inputs per second of wall time.
    pub inputs_per_s: f64,
}

/// The report of `gate-sim run` (the JSON keys are a contract; see CONTRACT.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Transits started over all gates.
    pub transits: u64,
    /// Outcome records over all gates.
    pub outcomes: Outcomes,
    /// Expectations met and not met.
    pub expectations: Tally,
    /// Number of invariant violations.
    pub invariant_violations: u64,
    /// Number of gates.
    pub gates: usize,
    /// Travellers planned (listed and generated).
    pub travellers: u64,
    /// Travellers still queued or in a lane when the run ended.
    pub unfinished_travellers: u64,
    /// Virtual time from the start to the end of the run, in seconds.
    pub virtual_duration_s: f64,
    /// Whether the run stopped at `max_duration_s` with work left.
    pub hit_time_limit: bool,
    /// Alarms raised, by kind.
    pub alarms: BTreeMap<String, u64>,
    /// Each expectation with what happened.
    pub checks: Vec<Check>,
    /// The first violations in detail.
    pub violations: Vec<ViolationReport>,
    /// Per-gate figures.
    pub per_gate: Vec<GateReport>,
    /// Closing doors reversed by their safety sensor (an obstruction), over all gates.
    pub door_reversals: u64,
    /// Tailgating followers who got into a mantrap (the others were shut out).
    pub tailgaters_entered: u64,
    /// Accompanying children (`with_child`) who got into the mantrap.
    pub children_entered: u64,
    /// Travellers whose outcome record notes an accompanying child (`accompanied_child`).
    pub children_recorded: u64,
    /// Accompanying children who reached the far side of the exit (each on a clear
    /// decision that notes them, or it is a `P1` violation).
    pub children_passed_exit: u64,
    /// Emergency inputs seen, and the longest time from one to both doors commanded open.
    pub emergency_releases: EmergencyReleases,
    /// Restarts of the gates' processes (`crash` faults).
    pub restarts: u64,
    /// Transits started and ended that have no record in their gate's journal.
    pub records_lost: u64,
    /// Transits with more than one record in their gate's journal.
    pub records_doubled: u64,
    /// People still in a mantrap when the run ended.
    pub left_inside: u64,
    /// Wall-clock figures, only with `--timing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

impl Report {
    /// Whether every expectation held and no invariant broke.
    pub fn ok(&self) -> bool {
        self.expectations.failed == 0 && self.invariant_violations == 0
    }
}

/// A prepared run of one scenario with one seed.
pub struct Run {
    scenario: Scenario,
    seed: u64,
    /// The gates.
    pub gates: Vec<SimGate>,
    ops: BTreeMap<(Time, u64), Op>,
    seq: u64,
    named: BTreeMap<String, (usize, TravellerId)>,
    armed: Vec<Armed>,
    trace: bool,
    planned: u64,
    end: Time,
    rng: SimRng,
}

fn outcome_key(o: Outcome) -> usize {
    Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

impl Run {
    /// Builds the gates and schedules everything the scenario lists.
    pub fn new(scenario: Scenario, seed: u64) -> anyhow::Result<Run> {
        let mut cfg = Config {
            timeouts: scenario.timeouts.clone(),
            ..Config::default()
        };
        if let Some(t) = scenario.policy.biometric_threshold {
            cfg.policy.biometric_threshold = t;
        }
        if let Some(n) = scenario.policy.max_attempts {
            cfg.policy.max_attempts = n;
        }
        if let Some(a) = scenario.policy.min_age {
            cfg.policy.min_age = a;
        }
        cfg.accompanied_child = scenario.lane.accompanied_child;
        let mut watchlist = InlineWatchlist::new(WATCHLIST_VERSION);
        for w in &scenario.watchlist {
            let key = DocumentKey {
                issuing_state: w.issuing_state.clone(),
                document_number: w.document_number.clone(),
            };
            let action = match w.action {
                ListAction::Hold => WatchlistAction::Hold,
                ListAction::Refer => WatchlistAction::Refer,
            };
            watchlist.insert(key, action, w.reason.clone());
        }
        let mut gates = Vec::with_capacity(scenario.gates);
        for g in 0..scenario.gates {
            let wseed = splitmix(seed ^ splitmix(g as u64 + 1));
            let gate = SimGate::new(
                g,
                cfg.clone(),
                scenario.world.clone(),
                wseed,
                START,
                scenario.journal_commit_ms,
                watchlist.clone(),
            )?;
            gates.push(gate);
        }
        let mut run = Run {
            end: START.plus(ms(scenario.max_duration_s)),
            seed,
            gates,
            ops: BTreeMap::new(),
            seq: 0,
            named: BTreeMap::new(),
            armed: Vec::new(),
            trace: false,
            planned: 0,
            rng: SimRng::new(splitmix(seed)),
            scenario,
        };
        run.schedule_all();
        Ok(run)
    }

    fn op(&mut self, at: Time, op: Op) {
        self.seq += 1;
        self.ops.insert((at, self.seq), op);
    }

    fn gates_of(&self, gate: Option<usize>) -> Vec<usize> {
        match gate {
            Some(g) => vec![g],
            None => (0..self.gates.len()).collect(),
        }
    }

    fn schedule_all(&mut self) {
        let s = self.scenario.clone();
        for t in &s.travellers {
            let at = START.plus(ms(t.at_s));
            let mut spec = TravellerSpec::new(t.behaviour);
            spec.name = t.name.clone();
            if t.document_number.is_some() || t.issuing_state.is_some() {
                let mut doc = generate_document(&mut self.rng, t.behaviour, at);
                if let Some(n) = &t.document_number {
                    doc.document_number = n.clone();
                }
                if let Some(st) = &t.issuing_state {
                    doc.issuing_state = st.clone();
                    doc.nationality = st.clone();
                }
                spec.document = Some(doc);
            }
            let id = self.gates[t.gate].shell.world().add_traveller(at, spec);
            self.planned += 1;
            if let Some(n) = &t.name {
                self.named.insert(n.clone(), (t.gate, id));
            }
        }
        if let Some(tr) = &s.traffic {
            for (t, pick) in traffic_arrivals(tr, &mut self.rng) {
                self.op(START.plus(t), Op::Arrival(pick));
                self.planned += 1;
            }
        }
        for (k, f) in s.faults.iter().enumerate() {
            let gates = self.gates_of(f.gate);
            let action = match (f.injection(), f.shell_fault()) {
                (Some(injection), _) => Deferred::Inject { gates, injection },
                (None, Some(fault)) => Deferred::Shell { gates, fault },
                (None, None) => continue,
            };
            self.plan(format!("fault[{k}]"), f.schedule(), action);
        }
        for (k, e) in s.emergencies.iter().enumerate() {
            let injection = Injection::Emergency {
                for_ms: e.for_s.map(ms),
            };
            let gates = self.gates_of(e.gate);
            self.plan(
                format!("emergency[{k}]"),
                e.schedule(),
                Deferred::Inject { gates, injection },
            );
        }
        for (k, c) in s.commands.iter().enumerate() {
            let Some(command) = c.operator_command() else {
                continue;
            };
            let actor = Actor {
                user: c.user.clone(),
                role: c.role,
                reason: c.reason.clone(),
            };
            self.plan(
                format!("command[{k}]"),
                c.schedule(),
                Deferred::Command {
                    gate: c.gate,
                    command,
                    actor,
                },
            );
        }
        let watch = !self.armed.is_empty();
        for g in &mut self.gates {
            g.record_marks = watch;
        }
    }

    /// Schedules `action` at its time, or arms its trigger.
    fn plan(&mut self, table: String, schedule: Schedule, action: Deferred) {
        match schedule {
            Schedule::At(at_s) => self.carry_out(START.plus(ms(at_s)), action),
            Schedule::On(trigger) => {
                let after = trigger
                    .after
                    .as_ref()
                    .and_then(|n| self.named.get(n).copied());
                self.armed.push(Armed {
                    table,
                    trigger,
                    after,
                    after_seen: false,
                    action,
                    fired: None,
                });
            }
        }
    }

    /// Hands `action` to the lanes or the operator queue, due at `at`.
    fn carry_out(&mut self, at: Time, action: Deferred) {
        match action {
            Deferred::Inject { gates, injection } => {
                for g in gates {
                    self.gates[g].shell.world().inject(at, injection.clone());
                }
            }
            Deferred::Command {
                gate,
                command,
                actor,
            } => self.op(
                at,
                Op::Command {
                    gate,
                    command,
                    actor,
                },
            ),
            Deferred::Shell { gates, fault } => {
                // The storage fault's end (if any) is scheduled with it.
                if let Some((after, end)) = fault.ends() {
                    self.op(
                        at.plus(after),
                        Op::Shell {
                            gates: gates.clone(),
                            fault: end,
                        },
                    );
                }
                self.op(at, Op::Shell { gates, fault });
            }
        }
    }

    /// Takes every gate's marks and fires the triggers they complete.
    fn fire_triggers(&mut self) {
        if self.armed.is_empty() {
            return;
        }
        for g in 0..self.gates.len() {
            if self.gates[g].marks.is_empty() {
                continue;
            }
            let marks = std::mem::take(&mut self.gates[g].marks);
            for (at, mark) in marks {
                let mut due = Vec::new();
                for (i, a) in self.armed.iter_mut().enumerate() {
                    if a.fired.is_some() {
                        continue;
                    }
                    let hit = match &mark {
                        Mark::Presented(id) if a.after == Some((g, *id)) && !a.after_seen => {
                            a.after_seen = true;
                            a.trigger.step.is_none()
                        }
                        Mark::Step(step) => {
                            a.trigger
                                .step
                                .as_ref()
                                .is_some_and(|(wg, ws)| *wg == g && ws == step)
                                && (a.trigger.after.is_none() || a.after_seen)
                        }
                        Mark::Presented(_) => false,
                    };
                    if hit {
                        let when = at.plus(a.trigger.delay_ms);
                        a.fired = Some(when);
                        due.push(i);
                    }
                }
                for i in due {
                    let (when, action) = (self.armed[i].fired, self.armed[i].action.clone());
                    if self.trace {
                        eprintln!(
                            "[run    {:>9} ms] {} fires ({}), due at {} ms",
                            at.since(START),
                            self.armed[i].table,
                            self.armed[i].describe(),
                            when.map_or(0, |w| w.since(START))
                        );
                    }
                    if let Some(when) = when {
                        self.carry_out(when, action);
                    }
                }
            }
        }
    }

    /// The scenario's standing orders: schedule the simulated officers' responses.
    fn respond(&mut self, g: usize) {
        for (at, command, actor) in self.gates[g].standing_orders(&self.scenario.operator) {
            self.op(
                at,
                Op::Command {
                    gate: Some(g),
                    command,
                    actor,
                },
            );
        }
    }

    /// Carries out a fault of a gate's computer at `t`.
    fn shell_fault(&mut self, g: usize, t: Time, fault: &ShellFault) -> anyhow::Result<()> {
        if self.trace {
            eprintln!("[gate {g} {:>9} ms] shell fault {fault:?}", t.since(START));
        }
        let gate = &mut self.gates[g];
        gate.step(t);
        match fault {
            ShellFault::Storage {
                fail_commits,
                stall_ms,
                ..
            } => gate.shell.set_storage_faults(*fail_commits, *stall_ms),
            ShellFault::Disk { level, detail, .. } => {
                gate.shell.disk_level(t, *level, detail.clone());
            }
            ShellFault::Crash => gate.shell.crash_and_restart(t)?,
            ShellFault::ClockStep { ms } => gate.shell.step_wall_clock(*ms),
        }
        gate.absorb();
        if !self.gates[g].raised.is_empty() {
            self.respond(g);
        }
        Ok(())
    }

    fn next_time(&self) -> Option<Time> {
        let gates = self.gates.iter().filter_map(SimGate::wakeup).min();
        let ops = self.ops.keys().next().map(|k| k.0);
        match (gates, ops) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs to the end (nothing left to do, or the duration limit) and reports.
    pub fn execute(mut self) -> anyhow::Result<Report> {
        let (end, hit_limit) = self.advance()?;
        for g in &mut self.gates {
            g.finish();
        }
        Ok(self.report(end, hit_limit))
    }

    /// Plays the event loop to its end: (end of the run, whether the time limit cut it).
    fn advance(&mut self) -> anyhow::Result<(Time, bool)> {
        let mut last = START;
        let mut same = 0u32;
        let mut hit_limit = false;
        while let Some(t) = self.next_time() {
            if t > self.end {
                hit_limit = true;
                break;
            }
            if t == last {
                same += 1;
                if same > MAX_INPUTS_PER_INSTANT {
                    anyhow::bail!(
                        "the simulation made no progress at {} ms (seed {}): please report this",
                        t.since(START),
                        self.seed
                    );
                }
            } else {
                same = 0;
                last = t;
            }
            for g in 0..self.gates.len() {
                if self.gates[g].wakeup().is_some_and(|w| w <= t) {
                    self.gates[g].step(t);
                }
                if !self.gates[g].raised.is_empty() {
                    self.respond(g);
                }
            }
            self.fire_triggers();
            while let Some(entry) = self.ops.first_entry() {
                if entry.key().0 > t {
                    break;
                }
                match entry.remove() {
                    Op::Arrival(b) => {
                        let g = (0..self.gates.len())
                            .min_by_key(|g| (self.gates[*g].load(), *g))
                            .unwrap_or(0);
                        self.gates[g]
                            .shell
                            .world()
                            .add_traveller(t, TravellerSpec::new(b));
                    }
                    Op::Command {
                        gate,
                        command,
                        actor,
                    } => {
                        for g in self.gates_of(gate) {
                            self.gates[g].operator(t, command.clone(), actor.clone());
                        }
                    }
                    Op::Shell { gates, fault } => {
                        for g in gates {
                            self.shell_fault(g, t, &fault)?;
                        }
                    }
                }
                self.fire_triggers();
            }
        }
        let end = if hit_limit { self.end } else { last };
        Ok((end, hit_limit))
    }

    fn report(&self, end: Time, hit_limit: bool) -> Report {
        let mut outcomes = [0u64; 4];
        let mut transits = 0;
        let mut alarms: BTreeMap<String, u64> = BTreeMap::new();
        let mut violations = Vec::new();
        let mut per_gate = Vec::new();
        let mut unfinished = 0u64;
        let mut added = 0u64;
        let mut door_reversals = 0u64;
        let mut tailgaters_entered = 0u64;
        let mut children_entered = 0u64;
        let mut children_recorded = 0u64;
        let mut children_passed_exit = 0u64;
        let mut releases = EmergencyReleases::default();
        let (mut restarts, mut records_lost, mut records_doubled, mut left_inside) =
            (0u64, 0u64, 0u64, 0u64);
        for g in &self.gates {
            restarts += g.shell.restarts;
            let audit = g.shell.journal_audit();
            records_lost += audit.lost;
            records_doubled += audit.doubled;
            if let Some(detail) = audit.unreadable {
                violations.push(ViolationReport {
                    gate: g.index,
                    invariant: "5".into(),
                    at_ms: end.since(START),
                    detail,
                });
            }
            left_inside += u64::from(g.shell.world().occupancy());
            for (k, n) in g.outcomes.iter().enumerate() {
                outcomes[k] += n;
            }
            transits += g.transits;
            door_reversals += g.door_reversals;
            releases.count += g.emergency_latencies.len() as u64 + g.emergency_pending();
            releases.unreleased += g.emergency_pending();
            for l in &g.emergency_latencies {
                releases.max_latency_ms = releases.max_latency_ms.max(*l);
            }
            for (a, n) in &g.alarms {
                let name = serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                *alarms.entry(name).or_insert(0) += n;
            }
            for v in g.violations() {
                violations.push(ViolationReport {
                    gate: g.index,
                    invariant: v.violation.invariant.to_string(),
                    at_ms: v.at.since(START),
                    detail: v.violation.detail.clone(),
                });
            }
            let world = g.shell.world();
            for k in 0..world.traveller_count() {
                let id = TravellerId(k as u32);
                let Some(view) = world.traveller(id) else {
                    continue;
                };
                added += 1;
                let child = view.companion == Some(Companion::Child);
                if child {
                    children_entered += u64::from(view.companion_entered);
                    children_passed_exit += u64::from(view.companion_passed_exit);
                } else {
                    tailgaters_entered += u64::from(view.companion_entered);
                }
                let with_child = g.with_child_recorded.get(&id).copied();
                children_recorded += u64::from(with_child.is_some());
                let outcome = g.traveller_outcome.get(&id).copied();
                if view.fate == Fate::Pending {
                    unfinished += 1;
                }
                if view.fate == Fate::PassedExit && outcome != Some(Outcome::Cleared) {
                    violations.push(ViolationReport {
                        gate: g.index,
                        invariant: "P1".into(),
                        at_ms: end.since(START),
                        detail: format!(
                            "traveller {} ({}) passed the exit with outcome {:?}",
                            k,
                            view.behaviour.as_str(),
                            outcome
                        ),
                    });
                }
                let child_cleared = child && with_child == Some(Outcome::Cleared);
                if view.companion_passed_exit && !child_cleared {
                    let who = if child { "child" } else { "tailgater" };
                    violations.push(ViolationReport {
                        gate: g.index,
                        invariant: "P1".into(),
                        at_ms: end.since(START),
                        detail: format!(
                            "the {who} of traveller {k} passed the exit without a clear \
                             decision that notes them"
                        ),
                    });
                }
            }
            drop(world);
            let o = |x: usize| g.outcomes[x];
            per_gate.push(GateReport {
                gate: g.index,
                transits: g.transits,
                outcomes: Outcomes {
                    cleared: o(0),
                    referred: o(1),
                    held: o(2),
                    aborted: o(3),
                },
                state: g.shell.core().mode().as_str().into(),
                inputs: g.shell.inputs,
            });
        }
        unfinished += self.planned.saturating_sub(added);
        let duration_s = end.since(START) as f64 / 1000.0;
        let mut checks = self.checks(
            &outcomes, transits, &alarms, duration_s, hit_limit, unfinished,
        );
        let e = &self.scenario.expect;
        if let Some(c) = e.door_reversals {
            checks.push(Check {
                expect: "door_reversals".into(),
                want: c.describe(),
                got: door_reversals.to_string(),
                passed: c.accepts(door_reversals),
            });
        }
        if let Some(max) = e.emergency_release_max_ms {
            checks.push(Check {
                expect: "emergency_release_max_ms".into(),
                want: format!("<= {max} ms, every input released"),
                got: format!(
                    "{} ms over {} input(s), {} unreleased",
                    releases.max_latency_ms, releases.count, releases.unreleased
                ),
                passed: releases.count > 0
                    && releases.unreleased == 0
                    && releases.max_latency_ms <= max,
            });
        }
        if let Some(want) = &e.final_state {
            let states: Vec<&str> = per_gate.iter().map(|g| g.state.as_str()).collect();
            checks.push(Check {
                expect: "final_state".into(),
                want: want.clone(),
                got: states.join(", "),
                passed: states.iter().all(|s| s == want),
            });
        }
        for a in &self.armed {
            let key = if a.trigger.step.is_some() {
                "when"
            } else {
                "after"
            };
            let (got, passed) = match a.fired {
                Some(w) if w <= end => (format!("fired at {} ms", w.since(START)), true),
                Some(w) => (
                    format!("due at {} ms, after the end of the run", w.since(START)),
                    false,
                ),
                None => ("never fired".to_string(), false),
            };
            checks.push(Check {
                expect: format!("{}.{key}", a.table),
                want: format!("fires: {}", a.describe()),
                got,
                passed,
            });
        }
        let failed = checks.iter().filter(|c| !c.passed).count() as u64;
        let invariant_violations = violations.len() as u64;
        violations.truncate(MAX_LISTED);
        Report {
            scenario: self.scenario.name().to_string(),
            seed: self.seed,
            transits,
            outcomes: Outcomes {
                cleared: outcomes[0],
                referred: outcomes[1],
                held: outcomes[2],
                aborted: outcomes[3],
            },
            expectations: Tally {
                passed: checks.len() as u64 - failed,
                failed,
            },
            invariant_violations,
            gates: self.gates.len(),
            travellers: self.planned,
            unfinished_travellers: unfinished,
            virtual_duration_s: duration_s,
            hit_time_limit: hit_limit,
            alarms,
            checks,
            violations,
            per_gate,
            door_reversals,
            tailgaters_entered,
            children_entered,
            children_recorded,
            children_passed_exit,
            emergency_releases: releases,
            restarts,
            records_lost,
            records_doubled,
            left_inside,
            timing: None,
        }
    }

    fn checks(
        &self,
        outcomes: &[u64; 4],
        transits: u64,
        alarms: &BTreeMap<String, u64>,
        duration_s: f64,
        hit_limit: bool,
        unfinished: u64,
    ) -> Vec<Check> {
        let outcome_of = |name: &str| {
            self.named
                .get(name)
                .and_then(|(g, id)| self.gates[*g].traveller_outcome.get(id))
                .map_or("none", |o| o.as_str())
                .to_string()
        };
        let ran = RunFigures {
            outcomes,
            transits,
            alarms: Some(alarms),
            duration_s,
            hit_limit,
            unfinished,
        };
        expectation_checks(&self.scenario.expect, &ran, &outcome_of)
    }
}

/// Generated arrivals of `[traffic]`: (ms from the start, behaviour), in time order.
pub fn traffic_arrivals(tr: &Traffic, rng: &mut SimRng) -> Vec<(u64, Behaviour)> {
    let mix: Vec<(Behaviour, u32)> = if tr.mix.is_empty() {
        vec![(Behaviour::Normal, 1)]
    } else {
        tr.mix
            .iter()
            .filter_map(|(k, w)| behaviour_named(k).map(|b| (b, *w)))
            .collect()
    };
    let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
    let mean_gap = 3_600_000.0 / tr.rate_per_hour;
    let mut t = ms(tr.start_s) as f64;
    let mut out = Vec::new();
    for _ in 0..tr.count {
        t += rng.exponential(mean_gap);
        let mut x = rng.below(total);
        let mut pick = Behaviour::Normal;
        for (b, w) in &mix {
            if x < u64::from(*w) {
                pick = *b;
                break;
            }
            x -= u64::from(*w);
        }
        out.push((t.round() as u64, pick));
    }
    out
}

/// What a run showed, for [`expectation_checks`].
pub struct RunFigures<'a> {
    /// Outcome counts in the order of `Outcome::ALL`.
    pub outcomes: &'a [u64; 4],
    /// Transits started.
    pub transits: u64,
    /// Alarms raised by kind (`None`: the runner cannot see alarms).
    pub alarms: Option<&'a BTreeMap<String, u64>>,
    /// Time from the start to the end of the run, in seconds.
    pub duration_s: f64,
    /// Whether the run stopped at `max_duration_s` with work left.
    pub hit_limit: bool,
    /// Travellers not finished at the end.
    pub unfinished: u64,
}

/// The checks of `[expect]` (outcomes, transits, travellers, alarms, max_duration_s,
/// all_done) against what a run showed; `outcome_of` gives a named traveller's outcome
/// (`cleared`, ..., `none`).
pub fn expectation_checks(
    e: &Expect,
    ran: &RunFigures<'_>,
    outcome_of: &dyn Fn(&str) -> String,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for o in Outcome::ALL {
        if let Some(c) = e.outcomes.get(o) {
            let n = ran.outcomes[outcome_key(o)];
            checks.push(Check {
                expect: format!("outcomes.{}", o.as_str()),
                want: c.describe(),
                got: n.to_string(),
                passed: c.accepts(n),
            });
        }
    }
    if let Some(c) = e.transits {
        checks.push(Check {
            expect: "transits".into(),
            want: c.describe(),
            got: ran.transits.to_string(),
            passed: c.accepts(ran.transits),
        });
    }
    for (name, want) in &e.travellers {
        let got = outcome_of(name);
        checks.push(Check {
            expect: format!("travellers.{name}"),
            want: want.clone(),
            passed: got == *want,
            got,
        });
    }
    if let Some(alarms) = ran.alarms {
        for (kind, c) in &e.alarms {
            let n = alarms.get(kind).copied().unwrap_or(0);
            checks.push(Check {
                expect: format!("alarms.{kind}"),
                want: c.describe(),
                got: n.to_string(),
                passed: c.accepts(n),
            });
        }
    }
    let (duration_s, unfinished) = (ran.duration_s, ran.unfinished);
    if let Some(max) = e.max_duration_s {
        let done = !ran.hit_limit && unfinished == 0;
        checks.push(Check {
            expect: "max_duration_s".into(),
            want: format!("all travellers done within {max} s"),
            got: if done {
                format!("done after {duration_s} s")
            } else {
                format!("{unfinished} traveller(s) unfinished after {duration_s} s")
            },
            passed: done && duration_s <= max,
        });
    }
    if e.all_done {
        checks.push(Check {
            expect: "all_done".into(),
            want: "0 unfinished travellers".into(),
            got: format!("{unfinished} unfinished"),
            passed: unfinished == 0,
        });
    }
    checks
}

/// Runs `scenario` with `seed`; `trace` prints every machine input and output to stderr.
pub fn run(scenario: Scenario, seed: u64, trace: bool) -> anyhow::Result<Report> {
    let mut r = Run::new(scenario, seed)?;
    r.trace = trace;
    for g in &mut r.gates {
        g.trace = trace;
    }
    r.execute()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::STEPS;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// `STEPS` (what `when.step` accepts) is a copy of the machine's step names: every
    /// step the machine enters in these shipped scenarios must be in it, and the common
    /// ones must be seen, or the list has drifted from `Machine::step()`.
    #[test]
    fn the_machine_enters_only_steps_that_when_accepts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/scenarios");
        let mut seen = BTreeSet::new();
        for name in [
            "happy-path",
            "biometric-mismatch",
            "watchlist-hold",
            "timeout",
            "scanner-fault-recovery",
            "stuck-beam",
            "emergency-during-transit",
            "tailgating",
            "expired-document",
        ] {
            let s = Scenario::load(&dir.join(format!("{name}.toml"))).expect("loads");
            let mut r = Run::new(s, 1).expect("builds");
            assert!(
                r.armed.is_empty(),
                "{name}: marks would be taken by triggers"
            );
            for g in &mut r.gates {
                g.record_marks = true;
            }
            r.advance().expect("runs");
            for g in &r.gates {
                for (_, m) in &g.marks {
                    if let Mark::Step(step) = m {
                        seen.insert(step.clone());
                    }
                }
            }
        }
        for step in &seen {
            assert!(STEPS.contains(&step.as_str()), "unknown step `{step}`");
        }
        for step in [
            "ready",
            "reading_document",
            "checking_watchlist",
            "entering",
            "closing_entry",
            "capturing",
            "matching",
            "committing",
            "exiting",
            "closing_exit",
            "letting_out",
            "held",
            "out_of_service",
            "emergency",
        ] {
            assert!(seen.contains(step), "`{step}` never seen: {seen:?}");
        }
    }
}
