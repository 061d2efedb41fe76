//! `gate-sim lane --modbus HOST:PORT`: one simulated lane served as a Modbus TCP I/O
//! module, so that a separate `gated` drives its doors over the real protocol.
//!
//! The physical model is the simulator's [`World`] (doors, bodies walking along the lane,
//! beams, safety fields, emergency input), stepped in real time. Its sensor states are
//! the module's **discrete inputs**; its **coils** drive the doors and lamps. The register
//! map is the reference I/O map of `docs/io.md` ("Modbus TCP register map").
//!
//! The simulated people here see no display: they follow the doors, as a person follows
//! a door opening in front of them. The one at the reader walks in when the entry door is
//! driven open, walks on when the exit door is driven open, and goes back out when the
//! entry door re-opens behind them (a referral). Their documents and thumbs are not used:
//! the document reader and fingerprint scanner live in `gated` (simulated there).
//!
//! `gate-sim rig` builds the same model around a world of scenario travellers
//! ([`LaneModel::with_world`]) and serves it with [`serve_model`] (the clock starting at
//! the first connection): it reads the world's signals ([`LaneModel::keep_signals`]) to
//! play their documents and thumbs on real devices, lets someone nobody lets in leave the
//! reader after a while ([`LaneModel::set_patience`]), and, when the gate's traveller
//! display can be read, has the people follow it instead of the doors
//! ([`LaneModel::set_gate_display`]).
//!
//! The lane's safety inputs can be worked from outside ([`LaneModel::control`], the
//! `--control` stdin of `gate-sim lane`): cut and restore the emergency loop, open and
//! close the cabinet (tamper), and read every input and coil (lamps and buzzer included)
//! with how the gate answered the last emergency cut.
//!
//! [`LaneModel`] is pure (time passed in) and tested in virtual time; [`serve`] wraps it
//! in the Modbus TCP server with a real-time clock.

use device_drivers::devices::{LaneCommand, LaneInput};
use device_drivers::prompt::Prompt;
use device_drivers::sim::{Behaviour, Params, Signal, Stream, TravellerId, World, WorldCommand};
use device_drivers::types::{Door, DoorPosition, Sensor, Time};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// Number of discrete inputs (addresses 0..17).
pub const INPUTS: usize = 17;
/// Number of coils (addresses 0..9).
pub const COILS: usize = 9;

/// Discrete input addresses (reference map).
pub mod input {
    /// Entry door fully closed.
    pub const ENTRY_CLOSED: usize = 0;
    /// Entry door fully open.
    pub const ENTRY_OPEN: usize = 1;
    /// Exit door fully closed.
    pub const EXIT_CLOSED: usize = 2;
    /// Exit door fully open.
    pub const EXIT_OPEN: usize = 3;
    /// Something in the entry door's safety field.
    pub const ENTRY_SAFETY: usize = 4;
    /// Something in the exit door's safety field.
    pub const EXIT_SAFETY: usize = 5;
    /// Entry threshold beam broken.
    pub const ENTRY_BEAM: usize = 6;
    /// Exit threshold beam broken.
    pub const EXIT_BEAM: usize = 7;
    /// Mantrap beams 1..=3 broken (at ¼, ½, ¾ of the lane).
    pub const MANTRAP_BEAMS: [usize; 3] = [8, 9, 10];
    /// Someone in the mantrap (overhead sensor).
    pub const OCCUPANCY: usize = 11;
    /// Emergency loop, normally closed: 1 = normal, 0 = emergency (or a cut wire).
    pub const EMERGENCY_NC: usize = 12;
    /// Tamper switch: 1 while the cabinet is open (`tamper on` on the control input).
    pub const TAMPER: usize = 13;
    /// Entry door motor fault (motor stuck).
    pub const ENTRY_MOTOR_FAULT: usize = 14;
    /// Exit door motor fault (motor stuck).
    pub const EXIT_MOTOR_FAULT: usize = 15;
    /// The overhead sensor sees one adult with one child (optional input, not in the
    /// reference map: wire it as `adult_with_child = { index = 16 }`).
    pub const ADULT_WITH_CHILD: usize = 16;
}

/// Coil addresses (reference map).
pub mod coil {
    /// 1 drives the entry door open, 0 closed.
    pub const ENTRY_DRIVE_OPEN: usize = 0;
    /// 1 locks the entry door (a locked door does not open).
    pub const ENTRY_LOCK: usize = 1;
    /// 1 drives the exit door open, 0 closed.
    pub const EXIT_DRIVE_OPEN: usize = 2;
    /// 1 locks the exit door.
    pub const EXIT_LOCK: usize = 3;
    /// Entry green arrow.
    pub const ENTRY_LAMP_GREEN: usize = 4;
    /// Entry red cross.
    pub const ENTRY_LAMP_RED: usize = 5;
    /// Exit green arrow.
    pub const EXIT_LAMP_GREEN: usize = 6;
    /// Exit red cross.
    pub const EXIT_LAMP_RED: usize = 7;
    /// Buzzer.
    pub const BUZZER: usize = 8;
}

/// Names of the discrete inputs, by address (as in `docs/io.md`).
pub const INPUT_NAMES: [&str; INPUTS] = [
    "entry_closed",
    "entry_open",
    "exit_closed",
    "exit_open",
    "entry_safety",
    "exit_safety",
    "entry_beam",
    "exit_beam",
    "mantrap_beam_1",
    "mantrap_beam_2",
    "mantrap_beam_3",
    "occupancy",
    "emergency",
    "tamper",
    "entry_motor_fault",
    "exit_motor_fault",
    "adult_with_child",
];

/// Names of the coils, by address (as in `docs/io.md`).
pub const COIL_NAMES: [&str; COILS] = [
    "entry_drive_open",
    "entry_lock",
    "exit_drive_open",
    "exit_lock",
    "entry_lamp_green",
    "entry_lamp_red",
    "exit_lamp_green",
    "exit_lamp_red",
    "buzzer",
];

/// Errors of `gate-sim lane`.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// The lane file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The lane file is not valid.
    #[error("{path}: {detail}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The Modbus listener cannot be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// `--config FILE` of `gate-sim lane` (TOML, every key optional).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaneFile {
    /// Seed of the people arriving (overridden by `--seed`).
    pub seed: u64,
    /// Mean gap between people arriving at the lane, in ms of simulated time.
    pub mean_arrival_gap_ms: u64,
    /// Simulated time runs this many times faster than real time.
    pub speed: f64,
    /// Modbus unit id the module answers; absent: any unit id.
    pub unit_id: Option<u8>,
    /// Physical and timing model of the lane (as `[sim.lane]` of the gate config).
    pub lane: Params,
}

impl Default for LaneFile {
    fn default() -> Self {
        LaneFile {
            seed: 1,
            mean_arrival_gap_ms: 2_000,
            speed: 1.0,
            unit_id: None,
            lane: Params::default(),
        }
    }
}

impl LaneFile {
    /// Reads and checks a lane file.
    pub fn load(path: &Path) -> Result<LaneFile, LaneError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LaneError::Read {
            path: p.clone(),
            source,
        })?;
        let f: LaneFile = toml::from_str(&text).map_err(|e| LaneError::Invalid {
            path: p.clone(),
            detail: e.to_string(),
        })?;
        f.check()
            .map_err(|detail| LaneError::Invalid { path: p, detail })?;
        Ok(f)
    }

    fn check(&self) -> Result<(), String> {
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 1000.0) {
            return Err(format!("speed must be in (0, 1000], got {}", self.speed));
        }
        if self.mean_arrival_gap_ms == 0 {
            return Err("mean_arrival_gap_ms must be at least 1".into());
        }
        self.lane.validate().map_err(|e| format!("lane: {e}"))
    }
}

/// Where the person at the front of the lane is, as seen from the doors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nobody let in yet.
    Idle,
    /// The entry door was driven open: come in.
    Entering,
    /// The entry door closed behind someone (or the exit is open).
    Inside,
}

/// An emergency cut from the control input, as the module saw the gate answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Release {
    cut_at: Time,
    /// Discrete-input reads that returned the cut loop before the release was written.
    reads: u32,
    /// When a coil write first drove both doors open and unlocked with every green
    /// arrow lit and no red cross, and after how many such reads.
    released: Option<(Time, u32)>,
}

/// The simulated lane behind the Modbus registers. Pure: every call takes `now`.
#[derive(Debug)]
pub struct LaneModel {
    world: World,
    coils: [bool; COILS],
    phase: Phase,
    /// The person at the reader has "presented" (is ready to walk in).
    ready: bool,
    emergency: bool,
    /// The cabinet tamper switch (set from the control input).
    tamper: bool,
    /// The last emergency cut from the control input and how the I/O answered it.
    release: Option<Release>,
    mantrap_at_m: [f64; 3],
    /// What the world reported, kept for [`LaneModel::take_signals`] (`gate-sim rig`);
    /// `None`: not kept.
    signals: Option<Vec<(Time, Signal)>>,
    /// The traveller at the reader who presented their document, and since when.
    presented: Option<(TravellerId, Time)>,
    /// How long someone who presented waits at the reader for the entry door before they
    /// take their document back and go to the counter; `None`: for ever.
    patience_ms: Option<u64>,
    /// The prompt on the gate's traveller display, when the people can see it (`gate-sim
    /// rig --display`): they follow it instead of guessing from the doors.
    gate_display: Option<Prompt>,
    /// Doors driven closed while their safety field was occupied, as the gate had read
    /// it (time, door).
    unsafe_closes: Vec<(Time, Door)>,
    /// Who was let in (the entry driven open while they stood at the reader), and when.
    admitted: Vec<(TravellerId, Time)>,
    /// The safety fields `[entry, exit]` as the gate last read them.
    safety_read: [bool; 2],
    /// Input changes kept for [`LaneModel::take_input_changes`], with the inputs as
    /// last seen; `None`: not kept.
    input_changes: Option<(Vec<InputChange>, [bool; INPUTS])>,
}

/// A discrete input of the module that changed: when (world time), which (address),
/// and its new state.
pub type InputChange = (Time, usize, bool);

impl LaneModel {
    /// A lane with both doors closed and people arriving from `now`.
    pub fn new(file: &LaneFile, seed: u64, now: Time) -> Result<LaneModel, String> {
        let mut world = World::new(file.lane.clone(), seed).map_err(|e| e.to_string())?;
        world.advance_to(now);
        world.set_stream(
            now,
            Some(Stream {
                mean_gap_ms: file.mean_arrival_gap_ms,
                mix: vec![(Behaviour::Normal, 1)],
            }),
        );
        Ok(LaneModel::with_world(world, now))
    }

    /// A lane around `world` as it is (its travellers added, or a stream set, by the
    /// caller), both doors closed.
    pub fn with_world(world: World, now: Time) -> LaneModel {
        let len = world.params().lane_length_m;
        let mut m = LaneModel {
            world,
            coils: [false; COILS],
            phase: Phase::Idle,
            ready: false,
            emergency: false,
            tamper: false,
            release: None,
            mantrap_at_m: [len * 0.25, len * 0.5, len * 0.75],
            signals: None,
            presented: None,
            patience_ms: None,
            gate_display: None,
            unsafe_closes: Vec::new(),
            admitted: Vec::new(),
            safety_read: [false; 2],
            input_changes: None,
        };
        m.cue(now);
        m
    }

    /// The world (read-only views).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Keeps every signal of the world from now on for [`LaneModel::take_signals`].
    pub fn keep_signals(&mut self) {
        self.signals.get_or_insert_with(Vec::new);
    }

    /// Keeps every change of a discrete input from now on, at the world time it happens
    /// (however late a read sees it), for [`LaneModel::take_input_changes`].
    pub fn keep_input_changes(&mut self, now: Time) {
        let inputs = self.inputs(now);
        self.input_changes
            .get_or_insert_with(|| (Vec::new(), inputs));
    }

    /// The input changes kept since the last call, oldest first.
    pub fn take_input_changes(&mut self) -> Vec<InputChange> {
        self.input_changes
            .as_mut()
            .map(|(kept, _)| std::mem::take(kept))
            .unwrap_or_default()
    }

    /// Notes the inputs that changed by `t`.
    fn note_inputs(&mut self, t: Time) {
        if self.input_changes.is_none() {
            return;
        }
        let now = self.inputs(t);
        if let Some((kept, last)) = self.input_changes.as_mut() {
            for (k, (was, is)) in last.iter().zip(now).enumerate() {
                if *was != is {
                    kept.push((t, k, is));
                }
            }
            *last = now;
        }
    }

    /// The signals kept since the last call, with their times.
    pub fn take_signals(&mut self) -> Vec<(Time, Signal)> {
        self.signals
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// How long someone who presented their document waits at the reader for the entry
    /// door to open before they take it back and go (`None`: for ever). Only while the
    /// people cannot see the gate's display.
    pub fn set_patience(&mut self, ms: Option<u64>) {
        self.patience_ms = ms;
    }

    /// The traveller who presented their document at the reader and has not yet walked
    /// in or left, with when they presented.
    pub fn presenting(&self) -> Option<(TravellerId, Time)> {
        self.presented
    }

    /// The gate's traveller display as the people see it (`None`: they cannot see it,
    /// and follow the doors).
    pub fn set_gate_display(&mut self, now: Time, cue: Option<Prompt>) {
        self.step(now);
        if cue.is_none() && self.gate_display.is_some() {
            // They were following the display: their patience starts again.
            if let Some((_, at)) = self.presented.as_mut() {
                *at = now;
            }
        }
        self.gate_display = cue;
        self.cue(now);
        self.step(now);
    }

    /// The prompt on the gate's display as last seen, if the people can see it.
    pub fn gate_display(&self) -> Option<Prompt> {
        self.gate_display
    }

    /// Doors driven closed while something was in their safety field (time, door).
    pub fn unsafe_closes(&self) -> &[(Time, Door)] {
        &self.unsafe_closes
    }

    /// Who was let in since the last call (the entry driven open while they stood at the
    /// reader with their document presented), and when.
    pub fn take_admitted(&mut self) -> Vec<(TravellerId, Time)> {
        std::mem::take(&mut self.admitted)
    }

    /// The world (for views and injections).
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// Runs the lane up to `now`, wake-up by wake-up (people react at the time things
    /// happen, however long the gap since the last call).
    pub fn step(&mut self, now: Time) {
        loop {
            let t = match self.world.next_wakeup() {
                Some(t) if t < now => t,
                _ => now,
            };
            let signals = self.world.advance_to(t);
            let quiet = signals.is_empty();
            for s in &signals {
                match s {
                    // The document reader is not part of the lane: take it as read so
                    // that the person walks in when the door opens.
                    Signal::DocumentPresented { traveller } => {
                        self.world.command(t, WorldCommand::ReadDocument);
                        self.ready = true;
                        self.presented = Some((*traveller, t));
                        // Their document lies on the reader: from now on they wait for the
                        // door (not: "present your document" still shown, so go away).
                        if self.gate_display.is_none() && !self.emergency {
                            self.world.command(
                                t,
                                WorldCommand::Display {
                                    cue: Prompt::ReadingDocument,
                                },
                            );
                        }
                    }
                    Signal::Lane(LaneInput::Emergency { active }) => self.emergency = *active,
                    _ => {}
                }
            }
            if let Some(kept) = self.signals.as_mut() {
                kept.extend(signals.into_iter().map(|s| (t, s)));
            }
            if let Some((id, _)) = self.presented {
                let gone = self
                    .world
                    .traveller(id)
                    .is_none_or(|v| v.fate != device_drivers::sim::Fate::Pending);
                if gone {
                    // Left from the reader (or already through): the next one may step up.
                    self.presented = None;
                    if self.phase == Phase::Idle {
                        self.ready = false;
                    }
                }
            }
            self.cue(t);
            self.note_inputs(t);
            if t >= now && quiet {
                break;
            }
        }
    }

    /// When the lane next needs [`LaneModel::step`] without register traffic.
    pub fn next_wakeup(&self) -> Option<Time> {
        self.world.next_wakeup()
    }

    /// The discrete inputs at `now` (after [`LaneModel::step`]).
    pub fn inputs(&self, now: Time) -> [bool; INPUTS] {
        let w = &self.world;
        let mut i = [false; INPUTS];
        let entry = w.door(Door::Entry, now);
        let exit = w.door(Door::Exit, now);
        i[input::ENTRY_CLOSED] = entry.open_permille == 0;
        i[input::ENTRY_OPEN] = entry.open_permille >= 1000;
        i[input::EXIT_CLOSED] = exit.open_permille == 0;
        i[input::EXIT_OPEN] = exit.open_permille >= 1000;
        i[input::ENTRY_SAFETY] = w.sensor(Sensor::EntrySafety);
        i[input::EXIT_SAFETY] = w.sensor(Sensor::ExitSafety);
        i[input::ENTRY_BEAM] = w.sensor(Sensor::EntryBeam);
        i[input::EXIT_BEAM] = w.sensor(Sensor::ExitBeam);
        for (k, at) in input::MANTRAP_BEAMS.iter().zip(self.mantrap_at_m) {
            i[*k] = w.beam_blocked_at(at);
        }
        i[input::OCCUPANCY] = w.occupancy() > 0;
        i[input::EMERGENCY_NC] = !self.emergency;
        i[input::TAMPER] = self.tamper;
        i[input::ENTRY_MOTOR_FAULT] = entry.stuck;
        i[input::EXIT_MOTOR_FAULT] = exit.stuck;
        i[input::ADULT_WITH_CHILD] = w.occupancy() == 2 && w.children() == 1;
        i
    }

    /// The coils as last written.
    pub fn coils(&self) -> [bool; COILS] {
        self.coils
    }

    /// Cuts (`true`) or restores the emergency loop at `now`: the input reads 0 while it
    /// is cut, and the people in the lane leave it.
    pub fn set_emergency(&mut self, now: Time, cut: bool) {
        self.step(now);
        if cut {
            if !self.emergency {
                self.release = Some(Release {
                    cut_at: now,
                    reads: 0,
                    released: None,
                });
            }
            self.world.inject(
                now,
                device_drivers::sim::Injection::Emergency { for_ms: None },
            );
        } else if self.emergency {
            // Clears at `now` (the world's emergency ends by its timer).
            self.world.inject(
                now,
                device_drivers::sim::Injection::Emergency { for_ms: Some(0) },
            );
        }
        self.step(now);
    }

    /// Opens (`true`) or closes the cabinet: the tamper input follows.
    pub fn set_tamper(&mut self, open: bool) {
        self.tamper = open;
    }

    /// Every input and coil by name, with the simulated time: the `state` answer of the
    /// control input.
    pub fn state(&self, now: Time) -> serde_json::Value {
        let inputs = self.inputs(now);
        let named = |names: &[&str], bits: &[bool]| -> serde_json::Map<String, serde_json::Value> {
            names
                .iter()
                .zip(bits)
                .map(|(n, b)| ((*n).to_string(), serde_json::Value::from(u8::from(*b))))
                .collect()
        };
        let release = self.release.map(|r| {
            serde_json::json!({
                "cut_at_ms": r.cut_at.0,
                "released_at_ms": r.released.map(|(t, _)| t.0),
                "reads_before_release": r.released.map(|(_, n)| n),
            })
        });
        serde_json::json!({
            "t_ms": now.0,
            "inputs": named(&INPUT_NAMES, &inputs),
            "coils": named(&COIL_NAMES, &self.coils),
            "emergency_release": release,
        })
    }

    /// Carries out one line of the control input at `now` and returns the answer line:
    /// `emergency on|off` (cut / restore the emergency loop), `tamper on|off`, `state`
    /// (every input and coil as one JSON object). `Err` names a bad line.
    pub fn control(&mut self, now: Time, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let on_off = |w: Option<&&str>| match w.copied() {
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            _ => Err(format!(
                "{line:?}: expected `on` or `off` after {:?}",
                words.first().copied().unwrap_or("")
            )),
        };
        match words.first().copied() {
            Some("emergency") if words.len() == 2 => {
                let cut = on_off(words.get(1))?;
                self.set_emergency(now, cut);
                Ok(format!("ok emergency {}", if cut { "on" } else { "off" }))
            }
            Some("tamper") if words.len() == 2 => {
                let open = on_off(words.get(1))?;
                self.set_tamper(open);
                Ok(format!("ok tamper {}", if open { "on" } else { "off" }))
            }
            Some("state") if words.len() == 1 => {
                self.step(now);
                Ok(self.state(now).to_string())
            }
            _ => Err(format!(
                "{line:?}: unknown command (emergency on|off, tamper on|off, state)"
            )),
        }
    }

    /// Writes coils from `addr` at `now`; door drive changes become door commands.
    pub fn write_coils(&mut self, now: Time, addr: usize, bits: &[bool]) {
        self.step(now);
        let before = self.drives();
        for (k, b) in bits.iter().enumerate() {
            if let Some(c) = self.coils.get_mut(addr + k) {
                *c = *b;
            }
        }
        self.note_release(now);
        let after = self.drives();
        for (k, door) in Door::ALL.into_iter().enumerate() {
            if before[k] != after[k] {
                let field = match door {
                    Door::Entry => Sensor::EntrySafety,
                    Door::Exit => Sensor::ExitSafety,
                };
                // The gate knew (its last read showed the field occupied) and it still is.
                if !after[k]
                    && self.safety_read[k]
                    && self.world.sensor(field)
                    && self.world.door(door, now).open_permille > 0
                {
                    self.unsafe_closes.push((now, door));
                }
                if after[k] && door == Door::Entry {
                    // Let in: they take their document and walk in.
                    if let Some((id, _)) = self.presented.take() {
                        self.admitted.push((id, now));
                    }
                }
                let position = if after[k] {
                    DoorPosition::Open
                } else {
                    DoorPosition::Closed
                };
                self.world.command(
                    now,
                    WorldCommand::Lane(LaneCommand::Door { door, position }),
                );
            }
        }
        self.cue(now);
        self.step(now);
    }

    /// Notes the first coil state that releases the lane after an emergency cut.
    fn note_release(&mut self, now: Time) {
        let c = self.coils;
        let released = c[coil::ENTRY_DRIVE_OPEN]
            && c[coil::EXIT_DRIVE_OPEN]
            && !c[coil::ENTRY_LOCK]
            && !c[coil::EXIT_LOCK]
            && c[coil::ENTRY_LAMP_GREEN]
            && c[coil::EXIT_LAMP_GREEN]
            && !c[coil::ENTRY_LAMP_RED]
            && !c[coil::EXIT_LAMP_RED];
        if let Some(r) = self.release.as_mut() {
            if released && r.released.is_none() && r.reads > 0 {
                r.released = Some((now, r.reads));
            }
        }
    }

    /// Effective door drives: open commanded and not locked.
    fn drives(&self) -> [bool; 2] {
        [
            self.coils[coil::ENTRY_DRIVE_OPEN] && !self.coils[coil::ENTRY_LOCK],
            self.coils[coil::EXIT_DRIVE_OPEN] && !self.coils[coil::EXIT_LOCK],
        ]
    }

    /// What the people make of the doors (see the module documentation).
    fn cue(&mut self, now: Time) {
        let [entry, exit] = self.drives();
        let occupied = self.world.occupancy() > 0;
        let cue = if self.emergency {
            Prompt::Emergency
        } else if exit {
            self.phase = Phase::Inside;
            Prompt::Proceed
        } else {
            match self.phase {
                Phase::Idle | Phase::Entering if entry => {
                    self.phase = Phase::Entering;
                    // Someone still to step up to the reader comes forward first.
                    if self.ready {
                        Prompt::Enter
                    } else {
                        Prompt::PresentDocument
                    }
                }
                Phase::Idle if occupied => Prompt::PleaseWait,
                // Nobody lets them in: they take their document back and go.
                Phase::Idle
                    if self.presented.is_some_and(|(_, at)| {
                        self.patience_ms
                            .is_some_and(|p| now.0 >= at.0.saturating_add(p))
                    }) =>
                {
                    Prompt::GoToCounter
                }
                // Their document lies on the reader: they wait for the door.
                Phase::Idle if self.presented.is_some() => Prompt::ReadingDocument,
                Phase::Idle => Prompt::PresentDocument,
                Phase::Entering => {
                    self.phase = Phase::Inside;
                    Prompt::PleaseWait
                }
                Phase::Inside if entry => Prompt::GoToCounter,
                Phase::Inside if occupied => Prompt::PleaseWait,
                // The lane is free again. Someone who already put their document on the
                // reader meanwhile keeps waiting for the door (they are the next one in).
                Phase::Inside => {
                    self.phase = Phase::Idle;
                    self.ready = self.presented.is_some();
                    if self.ready {
                        Prompt::ReadingDocument
                    } else {
                        Prompt::PresentDocument
                    }
                }
            }
        };
        // People who can see the gate's display follow it (an emergency they see anyway).
        let cue = match self.gate_display {
            Some(shown) if !self.emergency => shown,
            _ => cue,
        };
        if self.world.display() != Some(cue) {
            self.world.command(now, WorldCommand::Display { cue });
        }
    }
}

/// Answers one Modbus request against the model at `now`.
pub fn answer(
    model: &mut LaneModel,
    now: Time,
    req: &Request<'_>,
) -> Result<Response, ExceptionCode> {
    fn range(addr: u16, n: usize, len: usize) -> Result<std::ops::Range<usize>, ExceptionCode> {
        if n == 0 || n > 2000 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let a = usize::from(addr);
        if a + n > len {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(a..a + n)
    }
    model.step(now);
    match req {
        Request::ReadDiscreteInputs(a, n) => {
            let r = range(*a, usize::from(*n), INPUTS)?;
            let inputs = model.inputs(now);
            for (k, i) in [input::ENTRY_SAFETY, input::EXIT_SAFETY]
                .into_iter()
                .enumerate()
            {
                if r.contains(&i) {
                    model.safety_read[k] = inputs[i];
                }
            }
            if let Some(rel) = model.release.as_mut() {
                if rel.released.is_none()
                    && !inputs[input::EMERGENCY_NC]
                    && r.contains(&input::EMERGENCY_NC)
                {
                    rel.reads += 1;
                }
            }
            Ok(Response::ReadDiscreteInputs(inputs[r].to_vec()))
        }
        Request::ReadCoils(a, n) => {
            let r = range(*a, usize::from(*n), COILS)?;
            Ok(Response::ReadCoils(model.coils[r].to_vec()))
        }
        Request::WriteSingleCoil(a, v) => {
            let r = range(*a, 1, COILS)?;
            model.write_coils(now, r.start, &[*v]);
            Ok(Response::WriteSingleCoil(*a, *v))
        }
        Request::WriteMultipleCoils(a, bits) => {
            let r = range(*a, bits.len(), COILS)?;
            model.write_coils(now, r.start, bits);
            Ok(Response::WriteMultipleCoils(*a, bits.len() as u16))
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

/// Simulated time: real time since the start times the speed factor; 0 until started.
#[derive(Clone, Debug)]
struct Clock {
    start: Arc<std::sync::OnceLock<tokio::time::Instant>>,
    speed: f64,
}

impl Clock {
    fn new(speed: f64, started: bool) -> Clock {
        let start = Arc::new(std::sync::OnceLock::new());
        if started {
            let _ = start.set(tokio::time::Instant::now());
        }
        Clock { start, speed }
    }

    fn now(&self) -> Time {
        match self.start.get() {
            Some(s) => Time((s.elapsed().as_secs_f64() * 1000.0 * self.speed) as u64),
            None => Time(0),
        }
    }

    /// Starts the clock if it is not running yet.
    fn start(&self) {
        let _ = self.start.get_or_init(tokio::time::Instant::now);
    }
}

type Shared = Arc<Mutex<LaneModel>>;

fn lock(m: &Mutex<LaneModel>) -> MutexGuard<'_, LaneModel> {
    // A panic while holding the lock stops nothing important: keep the lane's state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Modbus service of one connection.
#[derive(Clone)]
struct LaneService {
    model: Shared,
    clock: Clock,
    unit_id: Option<u8>,
    /// Log every coil change on stderr.
    log_coils: bool,
    /// Keep every coil change with when its request arrived.
    coil_log: Option<CoilLog>,
}

/// Coil changes as written by the gate: when the request arrived (monotonic), which
/// coil (address), and its new state, oldest first.
pub type CoilLog = Arc<Mutex<Vec<(std::time::Instant, usize, bool)>>>;

impl Service for LaneService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: SlaveRequest<'static>) -> Self::Future {
        if self.unit_id.is_some_and(|u| u != req.slave) {
            return std::future::ready(Err(ExceptionCode::GatewayTargetDevice));
        }
        let arrived = std::time::Instant::now();
        let now = self.clock.now();
        let mut m = lock(&self.model);
        let before = m.coils();
        let r = answer(&mut m, now, &req.request);
        let after = m.coils();
        drop(m);
        if let Some(log) = &self.coil_log {
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            for (k, (b, a)) in before.iter().zip(after).enumerate() {
                if *b != a {
                    log.push((arrived, k, a));
                }
            }
        }
        if self.log_coils {
            for (k, name) in COIL_NAMES.iter().enumerate() {
                if before[k] != after[k] {
                    eprintln!(
                        "gate-sim lane: t={} ms coil {name} = {}",
                        now.0,
                        u8::from(after[k])
                    );
                }
            }
        }
        std::future::ready(r)
    }
}

/// A running lane module.
pub struct LaneServer {
    /// Where it listens.
    pub addr: SocketAddr,
    model: Shared,
    clock: Clock,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LaneServer {
    /// Runs `f` on the model at the current simulated time (tests, injections).
    pub fn with_model<R>(&self, f: impl FnOnce(&mut LaneModel, Time) -> R) -> R {
        let now = self.clock.now();
        let mut m = lock(&self.model);
        m.step(now);
        f(&mut m, now)
    }

    /// Whether the lane's clock runs (with [`ServeOptions::start_on_connect`]: since the
    /// first Modbus connection).
    pub fn started(&self) -> bool {
        self.clock.start.get().is_some()
    }

    /// The lane's simulated time (0 until started).
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// When the lane's clock started (its time 0), if it runs.
    pub fn started_at(&self) -> Option<std::time::Instant> {
        self.clock.start.get().map(|s| s.into_std())
    }
}

/// How [`serve_model`] serves a lane.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Simulated time runs this many times faster than real time.
    pub speed: f64,
    /// Modbus unit id answered; `None`: any.
    pub unit_id: Option<u8>,
    /// The clock stands at 0 until the first Modbus client connects.
    pub start_on_connect: bool,
    /// Log every coil change on stderr.
    pub log_coils: bool,
    /// Keep every coil change written by the gate here (`gate-sim rig --timing`).
    pub coil_log: Option<CoilLog>,
}

impl Drop for LaneServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds `addr` and serves the simulated lane of `file` (seed `seed`) on the current
/// tokio runtime until the returned server is dropped. Every coil change (door drives,
/// locks, lamps, buzzer) is logged on stderr as `gate-sim lane: t=MS ms coil NAME = 0|1`.
pub async fn serve(addr: &str, file: &LaneFile, seed: u64) -> Result<LaneServer, LaneError> {
    let model = LaneModel::new(file, seed, Time(0)).map_err(|detail| LaneError::Invalid {
        path: "lane".into(),
        detail,
    })?;
    let opts = ServeOptions {
        speed: file.speed,
        unit_id: file.unit_id,
        start_on_connect: false,
        log_coils: true,
        coil_log: None,
    };
    serve_model(addr, model, &opts).await
}

/// Binds `addr` and serves `model` (at simulated time 0) on the current tokio runtime
/// until the returned server is dropped.
pub async fn serve_model(
    addr: &str,
    model: LaneModel,
    opts: &ServeOptions,
) -> Result<LaneServer, LaneError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| LaneError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| LaneError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    let clock = Clock::new(opts.speed, !opts.start_on_connect);
    let model: Shared = Arc::new(Mutex::new(model));
    let service = LaneService {
        model: model.clone(),
        clock: clock.clone(),
        unit_id: opts.unit_id,
        log_coils: opts.log_coils,
        coil_log: opts.coil_log.clone(),
    };
    let server = {
        let clock = clock.clone();
        tokio::spawn(async move {
            let server = Server::new(listener);
            let new_service = |_peer: SocketAddr| {
                // The scenario's clock starts when a gate first connects.
                clock.start();
                Ok(Some(service.clone()))
            };
            let on_connected =
                |stream, peer| async move { accept_tcp_connection(stream, peer, &new_service) };
            if let Err(e) = server
                .serve(&on_connected, |e| {
                    tracing::debug!("Modbus connection ended: {e}")
                })
                .await
            {
                tracing::warn!("Modbus listener stopped: {e}");
            }
        })
    };
    // People keep walking between requests.
    let stepper = {
        let model = model.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            loop {
                let wait = {
                    let now = clock.now();
                    let mut m = lock(&model);
                    m.step(now);
                    m.next_wakeup()
                        .map_or(50, |t| t.0.saturating_sub(now.0))
                        .clamp(1, 50)
                };
                let real = (wait as f64 / clock.speed).max(1.0);
                tokio::time::sleep(Duration::from_millis(real as u64)).await;
            }
        })
    };
    Ok(LaneServer {
        addr: local,
        model,
        clock,
        tasks: vec![server, stepper],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LaneModel {
        let f = LaneFile {
            mean_arrival_gap_ms: 500,
            ..LaneFile::default()
        };
        LaneModel::new(&f, 7, Time(0)).unwrap()
    }

    /// Steps `m` in 20 ms cycles until `want` holds for the inputs (or `limit_ms`).
    fn until(
        m: &mut LaneModel,
        now: &mut Time,
        limit_ms: u64,
        want: impl Fn(&[bool; INPUTS]) -> bool,
    ) -> bool {
        let end = now.plus(limit_ms);
        while *now < end {
            *now = now.plus(20);
            m.step(*now);
            if want(&m.inputs(*now)) {
                return true;
            }
        }
        false
    }

    fn write(m: &mut LaneModel, now: Time, coils: &[(usize, bool)]) {
        for (a, v) in coils {
            let r = answer(m, now, &Request::WriteSingleCoil(*a as u16, *v));
            assert!(r.is_ok());
        }
    }

    #[test]
    fn idle_lane_reads_closed_doors_and_no_emergency() {
        let mut m = model();
        let i = m.inputs(Time(0));
        assert!(i[input::ENTRY_CLOSED] && i[input::EXIT_CLOSED]);
        assert!(!i[input::ENTRY_OPEN] && !i[input::EXIT_OPEN]);
        assert!(i[input::EMERGENCY_NC], "normally closed loop reads 1");
        let r = answer(&mut m, Time(0), &Request::ReadDiscreteInputs(0, 17)).unwrap();
        assert_eq!(r, Response::ReadDiscreteInputs(i.to_vec()));
    }

    #[test]
    fn a_person_walks_through_when_the_doors_open_in_turn() {
        let mut m = model();
        let mut now = Time(0);
        // Let someone reach the reader.
        now = now.plus(5_000);
        m.step(now);
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, true)]);
        assert!(until(&mut m, &mut now, 3_000, |i| i[input::ENTRY_OPEN]));
        assert!(
            until(&mut m, &mut now, 5_000, |i| i[input::ENTRY_BEAM]),
            "nobody entered"
        );
        assert!(until(&mut m, &mut now, 5_000, |i| !i[input::ENTRY_BEAM]
            && i[input::OCCUPANCY]));
        // A mantrap beam saw them on the way.
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, false)]);
        assert!(until(&mut m, &mut now, 5_000, |i| i[input::ENTRY_CLOSED]));
        write(&mut m, now, &[(coil::EXIT_DRIVE_OPEN, true)]);
        assert!(
            until(&mut m, &mut now, 5_000, |i| i[input::EXIT_BEAM]),
            "nobody left"
        );
        assert!(until(&mut m, &mut now, 8_000, |i| !i[input::EXIT_BEAM]
            && !i[input::OCCUPANCY]));
        write(&mut m, now, &[(coil::EXIT_DRIVE_OPEN, false)]);
        assert!(until(&mut m, &mut now, 3_000, |i| i[input::EXIT_CLOSED]));
        // And the next one can come in.
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, true)]);
        assert!(
            until(&mut m, &mut now, 8_000, |i| i[input::ENTRY_BEAM]),
            "next did not enter"
        );
    }

    #[test]
    fn the_next_traveller_who_presents_as_the_lane_frees_waits_for_the_door() {
        let mut w = World::new(Params::default(), 9).unwrap();
        for name in ["a", "b"] {
            w.add_traveller(
                Time(0),
                device_drivers::sim::TravellerSpec::named(name, Behaviour::Normal),
            );
        }
        let mut m = LaneModel::with_world(w, Time(0));
        m.keep_signals();
        m.set_patience(Some(20_000));
        let mut now = Time(0);
        while m.presenting().is_none() {
            now = now.plus(20);
            m.step(now);
            assert!(now.0 < 10_000, "nobody presented");
        }
        // The gate lets the first one through.
        write(
            &mut m,
            now,
            &[(coil::ENTRY_DRIVE_OPEN, true), (coil::ENTRY_LOCK, false)],
        );
        assert!(until(&mut m, &mut now, 8_000, |i| !i[input::ENTRY_BEAM]
            && i[input::OCCUPANCY]));
        write(
            &mut m,
            now,
            &[(coil::ENTRY_DRIVE_OPEN, false), (coil::ENTRY_LOCK, true)],
        );
        assert!(until(&mut m, &mut now, 5_000, |i| i[input::ENTRY_CLOSED]));
        write(
            &mut m,
            now,
            &[(coil::EXIT_DRIVE_OPEN, true), (coil::EXIT_LOCK, false)],
        );
        assert!(until(&mut m, &mut now, 8_000, |i| !i[input::EXIT_BEAM]
            && !i[input::OCCUPANCY]));
        write(
            &mut m,
            now,
            &[(coil::EXIT_DRIVE_OPEN, false), (coil::EXIT_LOCK, true)],
        );
        let b = TravellerId(1);
        let end = now.plus(10_000);
        let mut presented = None;
        while now < end {
            now = now.plus(20);
            m.step(now);
            if presented.is_none() && m.presenting().is_some_and(|(id, _)| id == b) {
                presented = Some(now);
            }
            let fate = m.world().traveller(b).unwrap().fate;
            assert_eq!(
                fate,
                device_drivers::sim::Fate::Pending,
                "b left at {now:?} (presented at {presented:?}, display {:?})",
                m.world().display()
            );
        }
        assert!(presented.is_some(), "b never presented");
    }

    /// A lane with one traveller of `b` arriving at 0, signals kept.
    fn one(b: Behaviour) -> LaneModel {
        let mut w = World::new(Params::default(), 9).unwrap();
        w.add_traveller(Time(0), device_drivers::sim::TravellerSpec::named("a", b));
        let mut m = LaneModel::with_world(w, Time(0));
        m.keep_signals();
        m
    }

    fn fate(m: &LaneModel) -> device_drivers::sim::Fate {
        m.world().traveller(TravellerId(0)).unwrap().fate
    }

    #[test]
    fn a_presenter_nobody_lets_in_leaves_after_their_patience() {
        let mut m = one(Behaviour::Normal);
        m.set_patience(Some(4_000));
        let mut now = Time(0);
        while m.presenting().is_none() {
            now = now.plus(20);
            m.step(now);
            assert!(now.0 < 10_000, "nobody presented");
        }
        let (id, at) = m.presenting().unwrap();
        assert_eq!(id, TravellerId(0));
        let sigs = m.take_signals();
        assert!(sigs
            .iter()
            .any(|(_, s)| matches!(s, Signal::DocumentPresented { .. })));
        m.step(at.plus(3_500));
        assert_eq!(
            fate(&m),
            device_drivers::sim::Fate::Pending,
            "left too early"
        );
        let mut now = at.plus(3_500);
        while fate(&m) == device_drivers::sim::Fate::Pending {
            now = now.plus(20);
            m.step(now);
            assert!(now.0 < at.0 + 15_000, "never left");
        }
        assert_eq!(fate(&m), device_drivers::sim::Fate::LeftAtReader);
        assert_eq!(m.presenting(), None);
    }

    #[test]
    fn people_who_see_the_gate_display_follow_it_not_the_doors() {
        let mut m = one(Behaviour::Normal);
        m.set_patience(Some(1_000));
        m.set_gate_display(Time(0), Some(Prompt::PresentDocument));
        let mut now = Time(0);
        while m.presenting().is_none() {
            now = now.plus(20);
            m.step(now);
            assert!(now.0 < 10_000, "nobody presented");
        }
        m.set_gate_display(now, Some(Prompt::WaitForOfficer));
        // Held far past their patience: they stay.
        now = now.plus(20_000);
        m.step(now);
        assert_eq!(fate(&m), device_drivers::sim::Fate::Pending);
        // The display goes dark (the gate restarts): their patience starts again.
        m.set_gate_display(now, None);
        m.step(now.plus(500));
        assert_eq!(fate(&m), device_drivers::sim::Fate::Pending);
        let end = now.plus(10_000);
        while fate(&m) == device_drivers::sim::Fate::Pending && now < end {
            now = now.plus(20);
            m.step(now);
        }
        assert_eq!(fate(&m), device_drivers::sim::Fate::LeftAtReader);
    }

    #[test]
    fn a_door_driven_closed_on_an_occupied_safety_field_is_noted() {
        let mut m = model();
        let mut now = Time(5_000);
        m.step(now);
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, true)]);
        assert!(until(&mut m, &mut now, 8_000, |i| i[input::ENTRY_SAFETY]));
        // Closing on a field the gate has not read occupied yet is no fault of the gate.
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, false)]);
        assert!(m.unsafe_closes().is_empty());
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, true)]);
        answer(&mut m, now, &Request::ReadDiscreteInputs(0, INPUTS as u16)).unwrap();
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, false)]);
        assert_eq!(m.unsafe_closes(), &[(now, Door::Entry)]);
    }

    #[test]
    fn mantrap_beams_see_a_person_walking_in() {
        let mut m = model();
        let mut now = Time(5_000);
        m.step(now);
        write(&mut m, now, &[(coil::ENTRY_DRIVE_OPEN, true)]);
        assert!(until(&mut m, &mut now, 8_000, |i| i[input::MANTRAP_BEAMS[0]]));
    }

    #[test]
    fn a_locked_door_does_not_open() {
        let mut m = model();
        let now = Time(1_000);
        write(
            &mut m,
            now,
            &[(coil::ENTRY_LOCK, true), (coil::ENTRY_DRIVE_OPEN, true)],
        );
        let mut t = now;
        assert!(!until(&mut m, &mut t, 3_000, |i| !i[input::ENTRY_CLOSED]));
        write(&mut m, t, &[(coil::ENTRY_LOCK, false)]);
        assert!(until(&mut m, &mut t, 3_000, |i| i[input::ENTRY_OPEN]));
    }

    #[test]
    fn emergency_reads_zero_on_the_normally_closed_input() {
        let mut m = model();
        m.world_mut().inject(
            Time(100),
            device_drivers::sim::Injection::Emergency { for_ms: Some(500) },
        );
        m.step(Time(200));
        assert!(!m.inputs(Time(200))[input::EMERGENCY_NC]);
        m.step(Time(700));
        assert!(m.inputs(Time(700))[input::EMERGENCY_NC]);
    }

    #[test]
    fn the_control_input_cuts_the_emergency_loop_opens_the_cabinet_and_reports_the_state() {
        let mut m = model();
        assert_eq!(
            m.control(Time(100), "emergency on").unwrap(),
            "ok emergency on"
        );
        assert!(
            !m.inputs(Time(100))[input::EMERGENCY_NC],
            "a cut loop reads 0"
        );
        m.step(Time(5_000));
        assert!(
            !m.inputs(Time(5_000))[input::EMERGENCY_NC],
            "held until restored"
        );
        m.control(Time(5_000), "emergency off").unwrap();
        assert!(m.inputs(Time(5_010))[input::EMERGENCY_NC]);
        // Restoring a loop that is not cut changes nothing.
        m.control(Time(5_020), "emergency off").unwrap();
        assert!(m.inputs(Time(5_020))[input::EMERGENCY_NC]);

        m.control(Time(6_000), "tamper on").unwrap();
        assert!(m.inputs(Time(6_000))[input::TAMPER]);
        write(
            &mut m,
            Time(6_000),
            &[(coil::EXIT_LAMP_GREEN, true), (coil::BUZZER, true)],
        );
        let v: serde_json::Value =
            serde_json::from_str(&m.control(Time(6_010), "state").unwrap()).unwrap();
        assert_eq!(v["inputs"]["tamper"], 1, "{v}");
        assert_eq!(v["inputs"]["emergency"], 1, "{v}");
        assert_eq!(v["coils"]["exit_lamp_green"], 1, "{v}");
        assert_eq!(v["coils"]["buzzer"], 1, "{v}");
        assert_eq!(v["coils"]["entry_lamp_green"], 0, "{v}");
        m.control(Time(6_020), "tamper off").unwrap();
        // An emergency release as the gate's scan writes it: one read shows the cut loop,
        // the write that follows releases the lane.
        m.control(Time(8_000), "emergency on").unwrap();
        let r = answer(
            &mut m,
            Time(8_005),
            &Request::ReadDiscreteInputs(0, INPUTS as u16),
        )
        .unwrap();
        assert_eq!(
            r,
            Response::ReadDiscreteInputs(m.inputs(Time(8_005)).to_vec())
        );
        let release = [true, false, true, false, true, false, true, false, true];
        answer(
            &mut m,
            Time(8_006),
            &Request::WriteMultipleCoils(0, release.to_vec().into()),
        )
        .unwrap();
        let v = m.state(Time(8_010));
        assert_eq!(v["emergency_release"]["cut_at_ms"], 8_000, "{v}");
        assert_eq!(v["emergency_release"]["released_at_ms"], 8_006, "{v}");
        assert_eq!(v["emergency_release"]["reads_before_release"], 1, "{v}");
        assert!(!m.inputs(Time(6_020))[input::TAMPER]);

        for bad in ["", "emergency", "emergency maybe", "tamper on now", "fire"] {
            let e = m.control(Time(7_000), bad).unwrap_err();
            assert!(
                e.contains("emergency on|off") || e.contains("on` or `off"),
                "{e}"
            );
        }
    }

    #[test]
    fn illegal_addresses_and_functions_are_exceptions() {
        let mut m = model();
        let t = Time(0);
        assert_eq!(
            answer(&mut m, t, &Request::ReadDiscreteInputs(10, 8)),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            answer(&mut m, t, &Request::ReadDiscreteInputs(u16::MAX, 1)),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            answer(&mut m, t, &Request::ReadDiscreteInputs(0, 0)),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            answer(&mut m, t, &Request::WriteSingleCoil(9, true)),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            answer(
                &mut m,
                t,
                &Request::WriteMultipleCoils(5, vec![true; 5].into())
            ),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            answer(&mut m, t, &Request::ReadHoldingRegisters(0, 1)),
            Err(ExceptionCode::IllegalFunction)
        );
        // Nothing was written by the refused requests.
        assert_eq!(m.coils(), [false; COILS]);
    }

    #[test]
    fn lane_file_rejects_unknown_keys_and_bad_values() {
        let e = toml::from_str::<LaneFile>("sped = 2\n").unwrap_err();
        assert!(e.to_string().contains("sped"), "{e}");
        let f: LaneFile = toml::from_str("speed = 0\n").unwrap();
        assert!(f.check().unwrap_err().contains("speed"));
        let f: LaneFile = toml::from_str("[lane]\nstand_at_m = 9.0\n").unwrap();
        assert!(f.check().unwrap_err().contains("stand_at_m"));
    }

    #[tokio::test]
    async fn the_modbus_client_drives_the_served_lane_over_tcp() {
        use device_drivers::io::modbus::{ModbusConfig, ModbusImage};
        use device_drivers::io::ProcessImage;
        use embedded_hal::digital::{InputPin, OutputPin};
        let f = LaneFile {
            mean_arrival_gap_ms: 300,
            speed: 10.0,
            unit_id: Some(1),
            ..LaneFile::default()
        };
        let server = serve("127.0.0.1:0", &f, 3).await.unwrap();
        let mut img = ModbusImage::new(ModbusConfig::new(server.addr.to_string()));
        let mut ins = img.input_pins();
        let mut outs = img.output_pins();
        img.read_inputs().await.unwrap();
        assert!(ins[input::ENTRY_CLOSED].is_high().unwrap());
        assert!(ins[input::EMERGENCY_NC].is_high().unwrap());
        outs[coil::ENTRY_DRIVE_OPEN].set_high().unwrap();
        outs[coil::ENTRY_LAMP_GREEN].set_high().unwrap();
        img.write_outputs().await.unwrap();
        assert!(server.with_model(|m, _| m.coils()[coil::ENTRY_LAMP_GREEN]));
        // The door opens and someone walks in (10x speed: ~1 s real at most).
        let mut seen_open = false;
        let mut seen_beam = false;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            img.read_inputs().await.unwrap();
            seen_open |= ins[input::ENTRY_OPEN].is_high().unwrap();
            seen_beam |= ins[input::ENTRY_BEAM].is_high().unwrap();
            if seen_open && seen_beam {
                break;
            }
        }
        assert!(seen_open && seen_beam, "open {seen_open} beam {seen_beam}");
        // A wrong unit id is refused with an exception, not a dropped link.
        let mut other = ModbusImage::new(ModbusConfig {
            unit_id: 9,
            ..ModbusConfig::new(server.addr.to_string())
        });
        let e = other.read_inputs().await.unwrap_err();
        assert!(e.detail.contains("GatewayTargetDevice"), "{e}");
        assert!(other.is_connected());
    }
}
