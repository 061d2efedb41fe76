//! A checker for the invariants of DESIGN.md, fed with every input and every output of a
//! [`Machine`](crate::machine::Machine) ([`Checker::observe`], the property tests) or of
//! the shell around it ([`Checker::heard`] / [`Checker::sent`], `gate-sim`: door commands
//! as the lane I/O got them, records as read back from the journal). It knows nothing of
//! the machine's internals, only what crossed its boundary.
//!
//! 1. The exit door is commanded open (outside emergency) only after a *clear* record
//!    for the current transit was emitted and acknowledged as durably journaled.
//! 2. A door is commanded open (outside emergency) only while the other door is commanded
//!    closed and reported closed. Exception: re-opening a closing door because its safety
//!    sensor became active (invariant 4 wins: never close on a person).
//! 3. An emergency input opens every door in the same step.
//! 4. A door is never commanded closed while its safety sensor is active.
//! 5. Every transit ends in exactly one outcome record.
//! 6. A watchlist hold is left only by an operator's release (or, for life safety, an
//!    emergency release, or a process shutdown, which keeps the record and the alarm).
//! 7. Biometric data never reaches a record: enforced by the types (records hold scores
//!    only); [`check_record_has_no_biometrics`] checks a record's serialised form.

use crate::machine::{Action, Event};
use crate::record::{GateEvent, Mode, OperatorCommand, Record, TxnId};
use crate::types::{Door, DoorPosition, Sensor};
use std::collections::BTreeMap;
use std::fmt;

/// One broken invariant, with the step at which it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Invariant number (1..=7) of DESIGN.md.
    pub invariant: u8,
    /// Index of the input (event or timeout) at which it broke.
    pub step: u64,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant {} broken at step {}: {}",
            self.invariant, self.step, self.detail
        )
    }
}

fn i(door: Door) -> usize {
    match door {
        Door::Entry => 0,
        Door::Exit => 1,
    }
}

/// Observes a machine's inputs and outputs and records violations.
#[derive(Clone, Debug)]
pub struct Checker {
    step: u64,
    mode: Mode,
    commanded: [DoorPosition; 2],
    reported: [Option<DoorPosition>; 2],
    safety: [bool; 2],
    current: Option<TxnId>,
    pending_clear: Option<TxnId>,
    durable_clear: Option<TxnId>,
    records: BTreeMap<TxnId, u32>,
    violations: Vec<Violation>,
    /// Per input: the door a safety sensor just re-opened, an emergency input, and
    /// whether a hold may be left.
    reversal: Option<Door>,
    emergency_input: bool,
    hold_release: bool,
}

/// An input of the shell, as the checker needs to know it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Heard<'a> {
    /// A binary sensor changed.
    Sensor {
        /// Which.
        sensor: Sensor,
        /// Now active.
        active: bool,
    },
    /// The lane reported a door position.
    DoorReached {
        /// Which door.
        door: Door,
        /// Where it is.
        position: DoorPosition,
    },
    /// The emergency input changed.
    Emergency {
        /// Now active.
        active: bool,
    },
    /// An operator command.
    Operator(&'a OperatorCommand),
    /// A shutdown request.
    Shutdown,
    /// Anything else (timeouts, reader, scanner, watchlist, disk).
    Other,
}

/// An output of the shell, as the checker needs to know it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sent<'a> {
    /// A door command sent to the lane I/O.
    Door {
        /// Which door.
        door: Door,
        /// Where to.
        position: DoorPosition,
    },
    /// The lane I/O was told to latch an emergency release.
    EmergencyRelease,
    /// An event published on the feed.
    Event(&'a GateEvent),
    /// A record as read back from the journal after its commit.
    Committed(&'a Record),
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    /// A checker for a machine just built (doors commanded closed at construction).
    pub fn new() -> Checker {
        Checker {
            step: 0,
            mode: Mode::Ready,
            commanded: [DoorPosition::Closed; 2],
            reported: [None; 2],
            safety: [false; 2],
            current: None,
            pending_clear: None,
            durable_clear: None,
            records: BTreeMap::new(),
            violations: Vec::new(),
            reversal: None,
            emergency_input: false,
            hold_release: false,
        }
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn violate(&mut self, invariant: u8, detail: String) {
        self.violations.push(Violation {
            invariant,
            step: self.step,
            detail,
        });
    }

    /// Checks one input (`None` for a timeout) and the actions the machine emitted for it
    /// (a machine driven directly: a record counts as durable once `Journaled` says so).
    pub fn observe(&mut self, event: Option<&Event>, actions: &[Action]) {
        let heard = match event {
            Some(Event::Sensor { sensor, active }) => Heard::Sensor {
                sensor: *sensor,
                active: *active,
            },
            Some(Event::DoorReached { door, position }) => Heard::DoorReached {
                door: *door,
                position: *position,
            },
            Some(Event::Emergency { active }) => Heard::Emergency { active: *active },
            Some(Event::Operator { command, .. }) => Heard::Operator(command),
            Some(Event::Shutdown) => Heard::Shutdown,
            _ => Heard::Other,
        };
        self.heard(heard);
        match event {
            Some(Event::Journaled { txn }) if self.pending_clear == Some(*txn) => {
                self.durable_clear = Some(*txn);
            }
            Some(Event::JournalFailed { txn, .. }) => {
                if let Some(n) = self.records.get_mut(txn) {
                    *n = n.saturating_sub(1);
                }
                if self.pending_clear == Some(*txn) {
                    self.pending_clear = None;
                }
            }
            _ => {}
        }
        for a in actions {
            match a {
                Action::OpenDoor { door } => self.sent(Sent::Door {
                    door: *door,
                    position: DoorPosition::Open,
                }),
                Action::CloseDoor { door } => self.sent(Sent::Door {
                    door: *door,
                    position: DoorPosition::Closed,
                }),
                Action::Journal { record } => {
                    self.count_record(record);
                    if record.outcome == crate::record::Outcome::Cleared {
                        self.pending_clear = Some(record.txn);
                    }
                }
                Action::Emit { event } => self.sent(Sent::Event(event)),
                _ => {}
            }
        }
        self.done();
    }

    /// Starts checking one input the shell took in (a device signal, an operator
    /// command, a timeout as [`Heard::Other`]); follow with [`Checker::sent`] for each
    /// output it produced, then [`Checker::done`].
    pub fn heard(&mut self, input: Heard<'_>) {
        self.step += 1;
        self.reversal = None;
        self.emergency_input = false;
        self.hold_release = matches!(
            input,
            Heard::Operator(OperatorCommand::ReleaseHold | OperatorCommand::EmergencyRelease)
                | Heard::Emergency { active: true }
                | Heard::Shutdown
        );
        match input {
            Heard::Sensor { sensor, active } => {
                let door = match sensor {
                    Sensor::EntrySafety => Some(Door::Entry),
                    Sensor::ExitSafety => Some(Door::Exit),
                    _ => None,
                };
                if let Some(d) = door {
                    self.safety[i(d)] = active;
                    if active
                        && self.commanded[i(d)] == DoorPosition::Closed
                        && self.reported[i(d)] != Some(DoorPosition::Closed)
                    {
                        self.reversal = Some(d);
                    }
                }
            }
            Heard::DoorReached { door, position } if position == self.commanded[i(door)] => {
                self.reported[i(door)] = Some(position);
            }
            // Somewhere it was not sent (forced, or a report from before the command):
            // not where it was commanded until it says so.
            Heard::DoorReached { door, .. } => self.reported[i(door)] = None,
            Heard::Emergency { active: true } => self.emergency_input = true,
            _ => {}
        }
    }

    /// Checks one output of the input being checked: a door command that went to the
    /// lane I/O, an event on the feed, or a record read back from the journal after its
    /// commit (which makes a clear record durable at once).
    pub fn sent(&mut self, output: Sent<'_>) {
        if let Sent::Door { door, position } = output {
            // A command repeated to a door already commanded so (the shell re-asserts
            // the doors when the lane I/O comes back) changes nothing at the door: it
            // was checked when first sent, and what was reported since still holds.
            if self.commanded[i(door)] == position {
                return;
            }
        }
        match output {
            Sent::Door {
                door: d,
                position: DoorPosition::Open,
            } => {
                let emergency = self.mode == Mode::Emergency;
                let reversal = self.reversal == Some(d);
                let other = d.other();
                let other_closed = self.commanded[i(other)] == DoorPosition::Closed
                    && self.reported[i(other)] == Some(DoorPosition::Closed);
                if !emergency && !other_closed && !reversal {
                    self.violate(
                        2,
                        format!("{d:?} door commanded open while the {other:?} door is not closed"),
                    );
                }
                if d == Door::Exit && !emergency && !reversal {
                    match (self.current, self.durable_clear) {
                        (Some(c), Some(j)) if c == j => {}
                        (c, j) => self.violate(
                            1,
                            format!(
                                "exit commanded open for transit {c:?} without a durable clear \
                                 record (last durable clear: {j:?})"
                            ),
                        ),
                    }
                }
                self.commanded[i(d)] = DoorPosition::Open;
                self.reported[i(d)] = None;
            }
            Sent::Door { door, .. } => {
                if self.safety[i(door)] {
                    self.violate(
                        4,
                        format!("{door:?} door commanded closed while its safety sensor is active"),
                    );
                }
                self.commanded[i(door)] = DoorPosition::Closed;
                self.reported[i(door)] = None;
            }
            Sent::EmergencyRelease => self.mode = Mode::Emergency,
            Sent::Committed(record) => {
                self.count_record(record);
                if record.outcome == crate::record::Outcome::Cleared {
                    self.pending_clear = Some(record.txn);
                    self.durable_clear = Some(record.txn);
                }
            }
            Sent::Event(GateEvent::TransitStarted { txn }) => {
                self.current = Some(*txn);
                self.records.entry(*txn).or_insert(0);
            }
            Sent::Event(GateEvent::StepChanged { from, mode, .. }) => {
                if from == "held" && *mode != Mode::Held && !self.hold_release {
                    self.violate(6, format!("hold left to {mode:?} without a release"));
                }
                self.mode = *mode;
            }
            Sent::Event(_) => {}
        }
    }

    /// Ends the input begun with [`Checker::heard`]: an emergency input must have left
    /// every door commanded open.
    pub fn done(&mut self) {
        if self.emergency_input {
            for d in Door::ALL {
                if self.commanded[i(d)] != DoorPosition::Open {
                    self.violate(
                        3,
                        format!("{d:?} door not commanded open on emergency input"),
                    );
                }
            }
        }
        self.emergency_input = false;
    }

    /// The gate's process restarted: what the shell had been told of the doors is gone
    /// (the lane reports them again), and the new process starts in `ready` until its
    /// machine says otherwise. Door commands latched in the lane I/O stand.
    pub fn restarted(&mut self) {
        self.reported = [None; 2];
        self.mode = Mode::Ready;
    }

    fn count_record(&mut self, record: &Record) {
        if let Err(e) = check_record_has_no_biometrics(record) {
            self.violate(7, e);
        }
        let n = {
            let n = self.records.entry(record.txn).or_insert(0);
            *n += 1;
            *n
        };
        if n > 1 {
            let txn = record.txn;
            self.violate(5, format!("transit {txn} has {n} outcome records"));
        }
    }

    /// Checks, once the run is over, that every transit has exactly one record
    /// (a transit still in progress at the end may have none yet).
    pub fn finish(&mut self, in_progress: Option<TxnId>) {
        let missing: Vec<TxnId> = self
            .records
            .iter()
            .filter(|(t, n)| **n == 0 && Some(**t) != in_progress)
            .map(|(t, _)| *t)
            .collect();
        for t in missing {
            self.violate(5, format!("transit {t} ended without an outcome record"));
        }
    }

    /// Transits seen and how many records each has (for reports and tests).
    pub fn record_counts(&self) -> &BTreeMap<TxnId, u32> {
        &self.records
    }
}

/// Keys that would mean biometric data in a record.
const BIOMETRIC_KEYS: [&str; 5] = ["template", "minutiae", "image", "face", "fingerprint"];

/// Checks that a record's serialised form carries no biometric fields (invariant 7).
pub fn check_record_has_no_biometrics(record: &Record) -> Result<(), String> {
    let value =
        serde_json::to_value(record).map_err(|e| format!("record does not serialise: {e}"))?;
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let k = k.to_ascii_lowercase();
                    if let Some(bad) = BIOMETRIC_KEYS.iter().find(|b| k.contains(*b)) {
                        return Err(format!(
                            "record field `{k}` looks like biometric data ({bad})"
                        ));
                    }
                    stack.push(v);
                }
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, Reason};
    use crate::types::Time;

    fn closed(c: &mut Checker) {
        for door in Door::ALL {
            c.observe(
                Some(&Event::DoorReached {
                    door,
                    position: DoorPosition::Closed,
                }),
                &[],
            );
        }
    }

    fn record(txn: u64, outcome: Outcome) -> Record {
        Record {
            txn: TxnId(txn),
            outcome,
            reasons: vec![Reason::NeverEntered],
            started_at: Time(0),
            decided_at: Time(1),
            document: None,
            watchlist: None,
            biometric: None,
            operator: None,
        }
    }

    fn started(c: &mut Checker, txn: u64) {
        let e = GateEvent::TransitStarted { txn: TxnId(txn) };
        c.observe(None, &[Action::Emit { event: e }]);
    }

    #[test]
    fn exit_open_without_durable_clear_breaks_invariant_1() {
        let mut c = Checker::new();
        closed(&mut c);
        started(&mut c, 1);
        c.observe(
            None,
            &[Action::Journal {
                record: record(1, Outcome::Cleared),
            }],
        );
        c.observe(None, &[Action::OpenDoor { door: Door::Exit }]);
        assert_eq!(c.violations()[0].invariant, 1);
    }

    #[test]
    fn exit_open_after_durable_clear_is_fine() {
        let mut c = Checker::new();
        closed(&mut c);
        started(&mut c, 1);
        let r = record(1, Outcome::Cleared);
        c.observe(None, &[Action::Journal { record: r }]);
        c.observe(Some(&Event::Journaled { txn: TxnId(1) }), &[]);
        c.observe(None, &[Action::OpenDoor { door: Door::Exit }]);
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }

    #[test]
    fn opening_a_door_while_the_other_is_open_breaks_invariant_2() {
        let mut c = Checker::new();
        closed(&mut c);
        c.observe(None, &[Action::OpenDoor { door: Door::Entry }]);
        c.observe(None, &[Action::OpenDoor { door: Door::Exit }]);
        assert!(c.violations().iter().any(|v| v.invariant == 2));
    }

    #[test]
    fn emergency_without_releasing_doors_breaks_invariant_3() {
        let mut c = Checker::new();
        closed(&mut c);
        c.observe(Some(&Event::Emergency { active: true }), &[]);
        assert_eq!(c.violations().len(), 2);
        assert!(c.violations().iter().all(|v| v.invariant == 3));
    }

    #[test]
    fn closing_on_an_active_safety_sensor_breaks_invariant_4() {
        let mut c = Checker::new();
        closed(&mut c);
        c.observe(None, &[Action::OpenDoor { door: Door::Entry }]);
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        let e = Event::Sensor {
            sensor: Sensor::EntrySafety,
            active: true,
        };
        c.observe(Some(&e), &[Action::CloseDoor { door: Door::Entry }]);
        assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
        assert_eq!(c.violations()[0].invariant, 4);
    }

    #[test]
    fn a_close_command_repeated_to_a_closed_door_changes_nothing() {
        let mut c = Checker::new();
        closed(&mut c);
        let e = Event::Sensor {
            sensor: Sensor::ExitSafety,
            active: true,
        };
        // Already commanded closed and reported closed: the shell re-asserting it moves
        // nothing, so it cannot close on anyone.
        c.observe(Some(&e), &[Action::CloseDoor { door: Door::Exit }]);
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }

    #[test]
    fn two_records_or_none_break_invariant_5() {
        let mut c = Checker::new();
        started(&mut c, 1);
        started(&mut c, 2);
        let r = record(1, Outcome::Referred);
        c.observe(None, &[Action::Journal { record: r.clone() }]);
        c.observe(None, &[Action::Journal { record: r }]);
        c.finish(None);
        let v: Vec<u8> = c.violations().iter().map(|v| v.invariant).collect();
        assert_eq!(v, vec![5, 5]);
    }

    #[test]
    fn leaving_a_hold_without_release_breaks_invariant_6() {
        let mut c = Checker::new();
        let to_ready = GateEvent::StepChanged {
            from: "held".into(),
            to: "ready".into(),
            mode: Mode::Ready,
        };
        c.observe(
            Some(&Event::DocumentPresented),
            &[Action::Emit { event: to_ready }],
        );
        assert_eq!(c.violations()[0].invariant, 6);
    }

    #[test]
    fn records_serialise_without_biometric_keys() {
        assert!(check_record_has_no_biometrics(&record(1, Outcome::Cleared)).is_ok());
    }
}
