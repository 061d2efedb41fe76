//! The PLC-style scan cycle of one lane: read every input → pure logic (debounce, change
//! detection, local safety interlocks) → write every output.
//!
//! The interlocks here are defence in depth beside the state machine, which already
//! keeps invariants 2–4 of DESIGN.md; they hold even if the controller sends a wrong
//! command or stops talking:
//!
//! - **Emergency** (the emergency input, acted on in the scan that first reads it, or a
//!   [`LaneCommand::EmergencyRelease`]): both doors driven open and unlocked, both lamps
//!   green, buzzer on, whatever is latched; held until the input is clear *and* a
//!   [`LaneCommand::EmergencyReset`] has been latched.
//! - **Safety sensor**: a door that is not confirmed closed is never driven closed while
//!   its safety sensor is active; it is kept open instead (reported as
//!   [`LaneInput::CloseRefused`]).
//! - **Mantrap**: a door is driven open on command only while the other door is driven
//!   closed and confirmed closed by its position feedback (otherwise
//!   [`LaneInput::OpenRefused`]); so outside emergency at most one door is driven open.
//!   The one exception is physical: both doors ajar with both safety sensors active, where
//!   not hurting anyone wins and both are kept open.
//!
//! Inputs are debounced (a change counts once it has been read in `debounce_scans`
//! consecutive scans), except that the emergency input takes effect in the first scan
//! that reads it active, and the interlocks use the raw safety reading as well as the
//! debounced one (either active counts as active).

use super::map::{IoMap, PinRef};
use super::IoError;
use crate::devices::{LaneCommand, LaneInput};
use crate::types::{Door, DoorPosition, Sensor};
use embedded_hal::digital::{InputPin, OutputPin, PinState};

/// Default number of consecutive equal scans before an input change counts.
pub const DEFAULT_DEBOUNCE_SCANS: u8 = 2;

/// Logical state of every output after a scan (before polarity), indexed by door
/// (`[entry, exit]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    /// Door drive: `true` drives the door open, `false` drives it closed.
    pub drive_open: [bool; 2],
    /// Door lock engaged.
    pub lock: [bool; 2],
    /// Green arrow lamp.
    pub green: [bool; 2],
    /// Red cross lamp.
    pub red: [bool; 2],
    /// Buzzer.
    pub buzzer: bool,
}

/// Index of `door` in the `[entry, exit]` arrays of [`Outputs`].
pub fn door_index(door: Door) -> usize {
    match door {
        Door::Entry => 0,
        Door::Exit => 1,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum In {
    Closed(Door),
    Open(Door),
    Safety(Door),
    Beam(Door),
    Mantrap(u8),
    Occupancy,
    AdultWithChild,
    Emergency,
    Tamper,
    MotorFault(Door),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Drive(Door),
    Lock(Door),
    Green(Door),
    Red(Door),
    Buzzer,
}

/// Counts consecutive equal readings of one input.
#[derive(Clone, Copy, Debug, Default)]
struct Debounce {
    stable: Option<bool>,
    candidate: bool,
    count: u8,
}

impl Debounce {
    /// Feeds one reading; returns the new stable value if it changed.
    fn update(&mut self, level: bool, scans: u8) -> Option<bool> {
        if level == self.candidate && self.count > 0 {
            self.count = self.count.saturating_add(1);
        } else {
            self.candidate = level;
            self.count = 1;
        }
        if self.count >= scans && self.stable != Some(level) {
            self.stable = Some(level);
            return Some(level);
        }
        None
    }

    /// Takes `level` as stable at once (the emergency input going active).
    fn force(&mut self, level: bool, scans: u8) -> Option<bool> {
        self.candidate = level;
        self.count = scans;
        if self.stable != Some(level) {
            self.stable = Some(level);
            return Some(level);
        }
        None
    }
}

struct InSlot {
    sig: In,
    name: String,
    pin: PinRef,
    deb: Debounce,
    /// Logical level read in the last scan.
    level: bool,
}

struct OutSlot {
    sig: Out,
    name: String,
    pin: PinRef,
}

/// One lane's scan-cycle driver over embedded-hal pins. `inputs[k]` / `outputs[k]` is
/// the pin of input / output number `k` of the [`IoMap`]; pins at numbers the map does
/// not use are never touched.
pub struct ScanLane<I, O> {
    map: IoMap,
    inputs: Vec<I>,
    outputs: Vec<O>,
    ins: Vec<InSlot>,
    outs: Vec<OutSlot>,
    debounce_scans: u8,
    latched: [DoorPosition; 2],
    hold: bool,
    reset_pending: bool,
    out: Outputs,
    close_refused: [bool; 2],
    open_refused: [bool; 2],
    /// Per door: a command to confirm, and whether its outputs have been written yet.
    confirm: [Option<(DoorPosition, bool)>; 2],
    scans: u64,
    last_scan_ms: Option<u64>,
}

impl<I: InputPin, O: OutputPin> ScanLane<I, O> {
    /// A scan driver for `map` over the given pins (indexed by map number). Fails if the
    /// map is invalid or names a number beyond the pins given. Both doors start latched
    /// closed; nothing is read or written before the first [`ScanLane::scan`].
    pub fn new(map: IoMap, inputs: Vec<I>, outputs: Vec<O>) -> Result<ScanLane<I, O>, IoError> {
        map.validate()?;
        if inputs.len() < map.input_count() {
            return Err(IoError::PinCount {
                side: "input",
                needed: map.input_count(),
                given: inputs.len(),
            });
        }
        if outputs.len() < map.output_count() {
            return Err(IoError::PinCount {
                side: "output",
                needed: map.output_count(),
                given: outputs.len(),
            });
        }
        let mut ins: Vec<InSlot> = input_signals(&map)
            .into_iter()
            .map(|(sig, name, pin)| InSlot {
                sig,
                name,
                pin,
                deb: Debounce::default(),
                level: false,
            })
            .collect();
        ins.sort_by_key(|s| s.pin.index);
        let mut outs: Vec<OutSlot> = output_signals(&map)
            .into_iter()
            .map(|(sig, name, pin)| OutSlot { sig, name, pin })
            .collect();
        outs.sort_by_key(|s| s.pin.index);
        Ok(ScanLane {
            map,
            inputs,
            outputs,
            ins,
            outs,
            debounce_scans: DEFAULT_DEBOUNCE_SCANS,
            latched: [DoorPosition::Closed; 2],
            hold: false,
            reset_pending: false,
            out: Outputs::default(),
            close_refused: [false; 2],
            open_refused: [false; 2],
            confirm: [None; 2],
            scans: 0,
            last_scan_ms: None,
        })
    }

    /// Sets how many consecutive equal scans make an input change count (at least 1;
    /// 1 disables debouncing). The emergency input always acts in its first scan.
    pub fn with_debounce_scans(mut self, scans: u8) -> ScanLane<I, O> {
        self.debounce_scans = scans.max(1);
        self
    }

    /// The map this lane was built with.
    pub fn map(&self) -> &IoMap {
        &self.map
    }

    /// Latches a command for the next scan. Door commands replace the door's previous
    /// one; an emergency release takes effect at the next scan whatever comes after it
    /// except a reset.
    ///
    /// A door command is confirmed: the first scan after its outputs were written that
    /// reads the door's feedback at the commanded position (raw and debounced), while the
    /// outputs drive it there (no emergency hold, no interlock against it), reports
    /// [`LaneInput::DoorReached`], even when the door was there already and no change is
    /// seen. So a controller can tell "closed after my command" from "closed in a report
    /// older than my command" (a restarted controller, a command left latched).
    pub fn latch(&mut self, cmd: LaneCommand) {
        match cmd {
            LaneCommand::Door { door, position } => {
                self.latched[door_index(door)] = position;
                self.confirm[door_index(door)] = Some((position, false));
            }
            LaneCommand::EmergencyRelease => {
                self.hold = true;
                self.reset_pending = false;
            }
            LaneCommand::EmergencyReset => self.reset_pending = true,
        }
    }

    /// One scan cycle at `now_ms` (the caller's clock; only recorded): reads every mapped
    /// input, runs the logic, writes every mapped output, and returns the input changes.
    ///
    /// A failed input read aborts the scan before anything is written (the state is kept
    /// as it was); a failed output write still attempts the other outputs and then
    /// reports the first failure.
    pub fn scan(&mut self, now_ms: u64) -> Result<Vec<LaneInput>, IoError> {
        // 1. Read every input.
        let levels = self.read_levels()?;
        self.scans += 1;
        self.last_scan_ms = Some(now_ms);

        // 2. Debounce and change detection.
        let n = self.debounce_scans;
        let mut changes = Vec::new();
        let mut child_changed = false;
        for (s, level) in self.ins.iter_mut().zip(levels) {
            s.level = level;
            let changed = if s.sig == In::Emergency && level {
                s.deb.force(true, n)
            } else {
                s.deb.update(level, n)
            };
            if changed.is_some() && s.sig == In::AdultWithChild {
                child_changed = true;
                continue;
            }
            if let Some(v) = changed {
                if let Some(i) = report(s.sig, v) {
                    if s.sig == In::Emergency {
                        changes.insert(0, i);
                    } else {
                        changes.push(i);
                    }
                }
            }
        }

        self.merge_headcount(&mut changes, child_changed);
        self.confirm_commands(&mut changes);

        // 3. Logic.
        self.logic(&mut changes);

        // 4. Write every output.
        self.write_outputs()?;
        self.commands_written();
        Ok(changes)
    }

    /// Reports the door commands whose outputs were written before this scan and whose
    /// door now stands where they sent it (unless this scan reports its arrival anyway).
    fn confirm_commands(&mut self, changes: &mut Vec<LaneInput>) {
        for door in Door::ALL {
            let i = door_index(door);
            let Some((position, true)) = self.confirm[i] else {
                continue;
            };
            // Only while the outputs drive the door where it was sent (not while an
            // emergency hold or an interlock keeps it elsewhere).
            if self.out.drive_open[i] != (position == DoorPosition::Open) {
                continue;
            }
            let feedback = match position {
                DoorPosition::Closed => In::Closed(door),
                DoorPosition::Open => In::Open(door),
            };
            if self.stable(feedback).is_none() {
                // No such feedback wired, or not settled yet: nothing to confirm with.
                if !self.ins.iter().any(|s| s.sig == feedback) {
                    self.confirm[i] = None;
                }
                continue;
            }
            if self.level(feedback) && self.stable(feedback) == Some(true) {
                self.confirm[i] = None;
                let reported = changes
                    .iter()
                    .any(|c| matches!(c, LaneInput::DoorReached { door: d, .. } if *d == door));
                if !reported {
                    changes.push(LaneInput::DoorReached { door, position });
                }
            }
        }
    }

    /// The outputs of every latched door command have reached the pins.
    fn commands_written(&mut self) {
        for (_, written) in self.confirm.iter_mut().flatten() {
            *written = true;
        }
    }

    /// Applies the latched commands at once, between two scans: reads every input's raw
    /// level (for the interlocks), runs the logic and writes every output, so that a
    /// command does not wait for the next scan. Debounce and change detection stay with
    /// [`ScanLane::scan`]: this read neither counts as a debounce scan nor reports an
    /// input change; only the interlocks' reports ([`LaneInput::CloseRefused`],
    /// [`LaneInput::OpenRefused`]) are returned.
    pub fn apply(&mut self) -> Result<Vec<LaneInput>, IoError> {
        let levels = self.read_levels()?;
        for (s, level) in self.ins.iter_mut().zip(levels) {
            s.level = level;
        }
        let mut changes = Vec::new();
        self.logic(&mut changes);
        self.write_outputs()?;
        self.commands_written();
        Ok(changes)
    }

    /// The logical level of every mapped input, in the order of `ins`.
    fn read_levels(&mut self) -> Result<Vec<bool>, IoError> {
        let mut levels = Vec::with_capacity(self.ins.len());
        for s in &self.ins {
            let pin = &mut self.inputs[usize::from(s.pin.index)];
            let high = pin.is_high().map_err(|e| IoError::Input {
                index: s.pin.index,
                signal: s.name.clone(),
                detail: format!("{e:?}"),
            })?;
            levels.push(high != s.pin.active_low);
        }
        Ok(levels)
    }

    /// Writes every mapped output; a failure still attempts the others and then reports
    /// the first.
    fn write_outputs(&mut self) -> Result<(), IoError> {
        let mut first_err = None;
        for s in &self.outs {
            let v = logical(&self.out, s.sig);
            let state = PinState::from(v != s.pin.active_low);
            if let Err(e) = self.outputs[usize::from(s.pin.index)].set_state(state) {
                first_err.get_or_insert_with(|| IoError::Output {
                    index: s.pin.index,
                    signal: s.name.clone(),
                    detail: format!("{e:?}"),
                });
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// With an "adult with child" input wired, the head count is reported as one
    /// [`LaneInput::Headcount`] whenever it or the occupancy input changes while it is
    /// active (so that the gate never sees a child counted as a second adult).
    fn merge_headcount(&self, changes: &mut Vec<LaneInput>, child_changed: bool) {
        let Some(child) = self.stable(In::AdultWithChild) else {
            return;
        };
        let occupancy_changed = changes
            .iter()
            .any(|c| matches!(c, LaneInput::Occupancy { .. }));
        if !(child_changed || child && occupancy_changed) {
            return;
        }
        changes.retain(|c| !matches!(c, LaneInput::Occupancy { .. }));
        let occupied = self.stable(In::Occupancy) == Some(true);
        changes.push(if child {
            LaneInput::Headcount {
                persons: 2,
                children: 1,
            }
        } else {
            LaneInput::Headcount {
                persons: u8::from(occupied),
                children: 0,
            }
        });
    }

    fn level(&self, sig: In) -> bool {
        self.ins.iter().any(|s| s.sig == sig && s.level)
    }

    fn stable(&self, sig: In) -> Option<bool> {
        self.ins
            .iter()
            .find(|s| s.sig == sig)
            .and_then(|s| s.deb.stable)
    }

    fn logic(&mut self, changes: &mut Vec<LaneInput>) {
        let em_raw = self.level(In::Emergency);
        if em_raw {
            self.hold = true;
            // A reset latched while the input is active is void.
            self.reset_pending = false;
        }
        if self.reset_pending {
            if self.hold && self.stable(In::Emergency) == Some(false) {
                self.hold = false;
                self.reset_pending = false;
            } else if !self.hold {
                self.reset_pending = false;
            }
        }
        if self.hold {
            self.out = Outputs {
                drive_open: [true; 2],
                lock: [false; 2],
                green: [true; 2],
                red: [false; 2],
                buzzer: true,
            };
            self.close_refused = [false; 2];
            self.open_refused = [false; 2];
            return;
        }

        let mut forced = [false; 2];
        let mut at_closed = [false; 2];
        let mut want = [false; 2];
        for d in Door::ALL {
            let i = door_index(d);
            let safety = self.level(In::Safety(d)) || self.stable(In::Safety(d)) == Some(true);
            at_closed[i] = self.level(In::Closed(d)) && self.stable(In::Closed(d)) == Some(true);
            forced[i] = safety && !at_closed[i];
            want[i] = self.latched[i] == DoorPosition::Open;
        }
        let prev = self.out.drive_open;
        let open = match forced {
            [false, false] => {
                let can = |i: usize| want[i] && (prev[i] || (!prev[1 - i] && at_closed[1 - i]));
                match [can(0), can(1)] {
                    // Both commanded open (a controller bug, or the doors after an
                    // emergency reset): keep only one that is already open.
                    [true, true] => match prev {
                        [true, false] => [true, false],
                        [false, true] => [false, true],
                        _ => [false, false],
                    },
                    c => c,
                }
            }
            // A door held open by its safety sensor keeps the other one shut; both only
            // when both are obstructed and ajar.
            f => f,
        };
        let mut out = Outputs::default();
        for i in 0..2 {
            out.drive_open[i] = open[i];
            out.lock[i] = !open[i];
            out.green[i] = open[i] && want[i];
            out.red[i] = !out.green[i];
            out.buzzer |= open[i] && !want[i];
        }
        self.out = out;
        for d in Door::ALL {
            let i = door_index(d);
            let close_refused = open[i] && !want[i];
            if close_refused && !self.close_refused[i] {
                changes.push(LaneInput::CloseRefused { door: d });
            }
            self.close_refused[i] = close_refused;
            let open_refused = want[i] && !open[i];
            if open_refused && !self.open_refused[i] {
                changes.push(LaneInput::OpenRefused { door: d });
            }
            self.open_refused[i] = open_refused;
        }
    }

    /// The current debounced state of every input, as the changes that would report it
    /// from scratch (emergency first); sent after [`LaneInput::Recovered`].
    pub fn snapshot(&self) -> Vec<LaneInput> {
        let mut v = Vec::new();
        for s in &self.ins {
            if let Some(i) = s.deb.stable.and_then(|b| report(s.sig, b)) {
                if s.sig == In::Emergency {
                    v.insert(0, i);
                } else {
                    v.push(i);
                }
            }
        }
        v
    }

    /// The logical outputs written by the last scan.
    pub fn outputs(&self) -> Outputs {
        self.out
    }

    /// Whether an emergency hold is in force (doors released).
    pub fn emergency_hold(&self) -> bool {
        self.hold
    }

    /// Number of completed scans (input reads that succeeded).
    pub fn scans(&self) -> u64 {
        self.scans
    }

    /// The `now_ms` of the last scan, if any.
    pub fn last_scan_ms(&self) -> Option<u64> {
        self.last_scan_ms
    }

    /// Gives the pins back.
    pub fn release(self) -> (Vec<I>, Vec<O>) {
        (self.inputs, self.outputs)
    }
}

/// The lane input that reports `sig` settling at `v`, if any (door feedback reports only
/// arrivals).
fn report(sig: In, v: bool) -> Option<LaneInput> {
    Some(match sig {
        In::Closed(door) if v => LaneInput::DoorReached {
            door,
            position: DoorPosition::Closed,
        },
        In::Open(door) if v => LaneInput::DoorReached {
            door,
            position: DoorPosition::Open,
        },
        In::Closed(_) | In::Open(_) => return None,
        In::Safety(d) => LaneInput::Sensor {
            sensor: Sensor::safety_of(d),
            active: v,
        },
        In::Beam(d) => LaneInput::Sensor {
            sensor: Sensor::beam_of(d),
            active: v,
        },
        In::Mantrap(index) => LaneInput::MantrapBeam { index, active: v },
        In::Occupancy => LaneInput::Occupancy {
            persons: u8::from(v),
        },
        In::AdultWithChild if v => LaneInput::Headcount {
            persons: 2,
            children: 1,
        },
        In::AdultWithChild => return None,
        In::Emergency => LaneInput::Emergency { active: v },
        In::Tamper => LaneInput::Tamper { active: v },
        In::MotorFault(door) => LaneInput::MotorFault { door, active: v },
    })
}

fn logical(o: &Outputs, sig: Out) -> bool {
    match sig {
        Out::Drive(d) => o.drive_open[door_index(d)],
        Out::Lock(d) => o.lock[door_index(d)],
        Out::Green(d) => o.green[door_index(d)],
        Out::Red(d) => o.red[door_index(d)],
        Out::Buzzer => o.buzzer,
    }
}

fn input_signals(map: &IoMap) -> Vec<(In, String, PinRef)> {
    let m = &map.inputs;
    let mut v: Vec<(In, &str, PinRef)> = vec![
        (In::Closed(Door::Entry), "entry_closed", m.entry_closed),
        (In::Open(Door::Entry), "entry_open", m.entry_open),
        (In::Closed(Door::Exit), "exit_closed", m.exit_closed),
        (In::Open(Door::Exit), "exit_open", m.exit_open),
        (In::Safety(Door::Entry), "entry_safety", m.entry_safety),
        (In::Safety(Door::Exit), "exit_safety", m.exit_safety),
        (In::Beam(Door::Entry), "entry_beam", m.entry_beam),
        (In::Beam(Door::Exit), "exit_beam", m.exit_beam),
        (In::Emergency, "emergency", m.emergency),
    ];
    let optional = [
        (In::Occupancy, "occupancy", m.occupancy),
        (In::AdultWithChild, "adult_with_child", m.adult_with_child),
        (In::Tamper, "tamper", m.tamper),
        (
            In::MotorFault(Door::Entry),
            "entry_motor_fault",
            m.entry_motor_fault,
        ),
        (
            In::MotorFault(Door::Exit),
            "exit_motor_fault",
            m.exit_motor_fault,
        ),
    ];
    v.extend(
        optional
            .into_iter()
            .filter_map(|(s, n, p)| p.map(|p| (s, n, p))),
    );
    let mut v: Vec<(In, String, PinRef)> = v
        .into_iter()
        .map(|(s, n, p)| (s, n.to_string(), p))
        .collect();
    // The map allows at most MAX_MANTRAP_BEAMS (< 256) beams, so the index fits a u8.
    for (i, p) in m.mantrap_beams.iter().enumerate() {
        v.push((
            In::Mantrap(u8::try_from(i).unwrap_or(u8::MAX)),
            format!("mantrap_beams[{i}]"),
            *p,
        ));
    }
    v
}

fn output_signals(map: &IoMap) -> Vec<(Out, String, PinRef)> {
    let m = &map.outputs;
    let mut v: Vec<(Out, &str, PinRef)> = vec![
        (
            Out::Drive(Door::Entry),
            "entry_drive_open",
            m.entry_drive_open,
        ),
        (Out::Lock(Door::Entry), "entry_lock", m.entry_lock),
        (Out::Drive(Door::Exit), "exit_drive_open", m.exit_drive_open),
        (Out::Lock(Door::Exit), "exit_lock", m.exit_lock),
        (
            Out::Green(Door::Entry),
            "entry_lamp_green",
            m.entry_lamp_green,
        ),
        (Out::Red(Door::Entry), "entry_lamp_red", m.entry_lamp_red),
        (Out::Green(Door::Exit), "exit_lamp_green", m.exit_lamp_green),
        (Out::Red(Door::Exit), "exit_lamp_red", m.exit_lamp_red),
    ];
    if let Some(p) = m.buzzer {
        v.push((Out::Buzzer, "buzzer", p));
    }
    v.into_iter()
        .map(|(s, n, p)| (s, n.to_string(), p))
        .collect()
}
