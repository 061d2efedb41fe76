//! The world itself: a timer queue, door motors, bodies moving along the lane, the
//! travellers' minds, and the devices that answer the gate's commands.
//!
//! Geometry: positions are micrometres along the lane, the entry door's plane at 0, the
//! exit door's plane at the lane length. A body is an interval `[c - len/2, c + len/2]`
//! around its centre `c`. A beam at `p` is broken while a body strictly covers `p`; a
//! door's safety sensor watches from 5 cm outside the door to `safety_zone_m` inside; a
//! person is counted in the mantrap while their centre lies strictly between the doors.
//! Nobody steps into a door's zone unless that door is fully open, and nobody in a zone is
//! pushed: the safety sensor tells the gate not to close on them.

use super::params::{MsRange, Params, ParamsError, ScoreDist};
use super::rng::SimRng;
use super::traveller::{
    generate_document, Behaviour, Companion, Fate, Listing, TravellerId, TravellerSpec,
};
use super::{Injection, Signal, WorldCommand};
use crate::devices::{LaneCommand, LaneInput};
use crate::prompt::Prompt;
use crate::types::{
    CaptureFailure, CaptureInfo, ChipFailure, Device, Document, DocumentKey, Door, DoorPosition,
    FaultKind, ReadFailure, Sensor, Time,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

mod devices;
mod doors;
mod faults;
mod motion;
mod people;
mod sensors;
#[cfg(test)]
mod tests;
mod timers;

use self::doors::{DoorMove, DoorSim};
use self::people::{Body, CMind, IMind, Intruder, Mind, Tailgater, Traveller};
use self::timers::Timer;

const UM: f64 = 1_000_000.0;
/// How far outside the door plane its safety field reaches.
const OUTSIDE_FIELD_UM: i64 = 50_000;
/// Where a traveller in a queue waits at the reader: front 30 cm before the entry door.
const READER_FRONT_UM: i64 = -300_000;
/// The turns-back traveller walks in until their front is this far past the entry.
const TURN_BACK_FRONT_UM: i64 = 700_000;
/// Pause before the turns-back traveller walks out again.
const TURN_BACK_PAUSE_MS: u64 = 500;
/// How far a wrong-way intruder walks into the lane from the exit door.
const WRONG_WAY_DEPTH_UM: i64 = 800_000;
/// How long a wrong-way intruder stands inside before walking back out.
const WRONG_WAY_PAUSE_MS: u64 = 1_000;
/// A generated arrival is skipped while this many people already queue.
const MAX_QUEUE: usize = 30;

fn um(m: f64) -> i64 {
    (m * UM).round() as i64
}
/// A continuous stream of generated travellers (for real-time demos and `gated`).
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// Mean time between arrivals (exponentially distributed gaps).
    pub mean_gap_ms: u64,
    /// Behaviours with integer weights.
    pub mix: Vec<(Behaviour, u32)>,
}

/// A read-only view of one traveller.
#[derive(Clone, Debug, PartialEq)]
pub struct TravellerView {
    /// Identifier.
    pub id: TravellerId,
    /// Name from the scenario, if any.
    pub name: Option<String>,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// The document carried (known from arrival on).
    pub document: Option<Document>,
    /// How the visit ended so far.
    pub fate: Fate,
    /// Whether a tailgating companion reached the far side of the exit door.
    pub companion_passed_exit: bool,
    /// Whether a tailgating companion got into the mantrap (centre past the entry door).
    pub companion_entered: bool,
    /// Who followed the traveller, if anyone (a tailgater or their child).
    pub companion: Option<Companion>,
    /// Whether the overhead sensor measures the companion below its child height threshold.
    pub companion_short: bool,
}

/// State of one simulated door, for status pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorView {
    /// How far open, 0 (closed) ..= 1000 (open).
    pub open_permille: u16,
    /// Position last commanded.
    pub commanded: DoorPosition,
    /// Whether its motor is stuck.
    pub stuck: bool,
}

/// The seeded model of one lane. See the module documentation.
#[derive(Clone, Debug)]
pub struct World {
    p: Params,
    rng: SimRng,
    now: Time,
    seq: u64,
    timers: BTreeMap<(Time, u64), Timer>,
    travellers: Vec<Traveller>,
    queue: VecDeque<u32>,
    current: Option<u32>,
    in_lane: Vec<u32>,
    doors: [DoorSim; 2],
    display: Option<Prompt>,
    /// When the display last changed.
    display_since: Time,
    // sensors as last reported
    beams: [bool; 2],
    safety: [bool; 2],
    occupancy: u8,
    children: u8,
    // devices
    reader_token: u64,
    capture_token: u64,
    last_score: Option<f32>,
    offline: BTreeMap<Device, u32>,
    emergency: bool,
    /// Injected obstructions (an arm reaching through) per door's safety field.
    obstructed: [u32; 2],
    /// Injected beam faults: `Some(level)` holds the threshold beam at that level.
    beam_fault: [Option<bool>; 2],
    intruders: Vec<Intruder>,
    /// Door commands received while the lane I/O link is down, carried out on its return.
    io_latched: [Option<DoorPosition>; 2],
    stream: Option<Stream>,
    listings: HashMap<DocumentKey, Listing>,
    // geometry in micrometres
    len: i64,
    half: i64,
    zone: i64,
    stand_c: i64,
}

fn di(door: Door) -> usize {
    match door {
        Door::Entry => 0,
        Door::Exit => 1,
    }
}

fn uniform(rng: &mut SimRng, r: MsRange) -> u64 {
    rng.between(r.0, r.1)
}

fn normal(rng: &mut SimRng, d: ScoreDist) -> f32 {
    (d.mean + d.sd * rng.normal()).clamp(0.0, 1.0) as f32
}

impl World {
    /// A lane with both doors closed, nobody in it, the display blank, everything online.
    pub fn new(params: Params, seed: u64) -> Result<World, ParamsError> {
        params.validate()?;
        let len = um(params.lane_length_m);
        let half = um(params.body_length_m) / 2;
        let zone = um(params.safety_zone_m);
        let stand_c = um(params.stand_at_m) - half;
        let door = DoorSim {
            pos: 0,
            commanded: DoorPosition::Closed,
            motion: DoorMove::Still,
            stuck: 0,
            forced: 0,
            token: 0,
        };
        Ok(World {
            p: params,
            rng: SimRng::new(seed),
            now: Time(0),
            seq: 0,
            timers: BTreeMap::new(),
            travellers: Vec::new(),
            queue: VecDeque::new(),
            current: None,
            in_lane: Vec::new(),
            doors: [door.clone(), door],
            display: None,
            display_since: Time(0),
            beams: [false; 2],
            safety: [false; 2],
            occupancy: 0,
            children: 0,
            reader_token: 0,
            capture_token: 0,
            last_score: None,
            offline: BTreeMap::new(),
            emergency: false,
            obstructed: [0; 2],
            beam_fault: [None; 2],
            intruders: Vec::new(),
            io_latched: [None; 2],
            stream: None,
            listings: HashMap::new(),
            len,
            half,
            zone,
            stand_c,
        })
    }

    /// The parameters in force.
    pub fn params(&self) -> &Params {
        &self.p
    }

    // ---- driver API ------------------------------------------------------------------

    /// A traveller who joins the queue at `at`.
    pub fn add_traveller(&mut self, at: Time, spec: TravellerSpec) -> TravellerId {
        let id = self.travellers.len() as u32;
        let slow = spec.behaviour == Behaviour::Slow;
        let speed = if slow {
            self.p.slow_walk_speed_mps * 1000.0
        } else {
            self.p.walk_speed_mps * 1000.0 * self.rng.uniform(0.85, 1.15)
        };
        let speed = (speed.round() as i64).max(1);
        let reaction = if slow {
            self.p.slow_reaction_ms
        } else {
            self.p.reaction_ms
        };
        let tail = if spec.behaviour == Behaviour::Luggage {
            let (l0, l1) = self.p.luggage_m;
            um(self.rng.uniform(l0, l1.max(l0)))
        } else {
            0
        };
        let companion = spec.behaviour.tailgated().map(|kind| {
            let (g0, g1) = if kind == Companion::Child {
                self.p.child_gap_m
            } else {
                self.p.tailgate_gap_m
            };
            let gap = if g0 >= g1 {
                um(g0)
            } else {
                um(self.rng.uniform(g0, g1))
            };
            // Only a child is drawn a height: adults are all above the sensor's threshold
            // (and drawing nothing for them keeps older seeded runs as they were).
            let short = kind == Companion::Child && {
                let (h0, h1) = self.p.child_height_m;
                let height = self.rng.uniform(h0, h1.max(h0));
                let measured = height + self.p.height_noise_m * self.rng.normal();
                measured < self.p.child_height_threshold_m
            };
            Tailgater {
                kind,
                mind: CMind::Waiting,
                body: Body {
                    c: 0,
                    target: 0,
                    speed,
                    tail: 0,
                },
                gap,
                passed_exit: false,
                entered: false,
                short,
            }
        });
        self.travellers.push(Traveller {
            spec,
            document: None,
            listing: None,
            fate: Fate::Pending,
            mind: Mind::Scheduled,
            body: Body {
                c: 0,
                target: 0,
                speed,
                tail,
            },
            reaction,
            entered: false,
            presented: false,
            present_token: 0,
            presented_at: Time(0),
            read_started: false,
            companion,
        });
        self.schedule(at, Timer::Arrive(id));
        TravellerId(id)
    }

    /// Starts (or with `None` stops) a continuous stream of generated travellers from `now`.
    pub fn set_stream(&mut self, now: Time, stream: Option<Stream>) {
        self.timers.retain(|_, t| *t != Timer::StreamArrival);
        let start = stream.is_some();
        self.stream = stream;
        if start {
            let gap = self.stream_gap();
            self.schedule(now.plus(gap), Timer::StreamArrival);
        }
    }

    /// Schedules something to happen to the lane at `at`.
    pub fn inject(&mut self, at: Time, injection: Injection) {
        self.schedule(at, Timer::Inject(injection));
    }

    /// Carries out a command from the gate at `now`.
    pub fn command(&mut self, now: Time, command: WorldCommand) {
        let now = now.max(self.now);
        match command {
            WorldCommand::Lane(LaneCommand::Door { door, position }) if self.io_down() => {
                self.io_latched[di(door)] = Some(position)
            }
            WorldCommand::Lane(LaneCommand::Door { door, position }) => {
                self.drive(now, door, position)
            }
            // No latch of its own: the machine's door commands carry a release.
            WorldCommand::Lane(_) => {}
            WorldCommand::ReadDocument => self.read(now),
            WorldCommand::CancelRead => self.reader_token += 1,
            WorldCommand::Capture { .. } => self.capture(now),
            WorldCommand::CancelCapture => self.capture_token += 1,
            WorldCommand::Match { .. } => {
                let score = self.last_score.take().unwrap_or(0.0);
                self.schedule(now.plus(self.p.match_ms), Timer::MatchDone(score));
            }
            WorldCommand::Display { cue } => {
                if self.display != Some(cue) {
                    self.display = Some(cue);
                    self.display_since = now;
                    for i in self.in_lane.clone() {
                        let r = uniform(&mut self.rng, self.travellers[i as usize].reaction);
                        self.schedule(now.plus(r), Timer::Think(i));
                    }
                }
            }
        }
    }

    /// When the world next needs [`World::advance_to`], if ever without further commands.
    pub fn next_wakeup(&self) -> Option<Time> {
        let timer = self.timers.keys().next().map(|k| k.0);
        let tick = self.moving().then(|| {
            let t = self.p.tick_ms;
            Time((self.now.0 / t + 1) * t)
        });
        match (timer, tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the world up to `now` and returns what the devices reported, in order.
    pub fn advance_to(&mut self, now: Time) -> Vec<Signal> {
        let mut out = Vec::new();
        while let Some(t) = self.next_wakeup() {
            if t > now {
                break;
            }
            self.step(t, &mut out);
        }
        if now > self.now {
            self.step(now, &mut out);
        }
        out
    }

    // ---- views -----------------------------------------------------------------------

    /// The time of the last step.
    pub fn now(&self) -> Time {
        self.now
    }

    /// What the display shows.
    pub fn display(&self) -> Option<Prompt> {
        self.display
    }

    /// People waiting in the queue (not yet at the reader).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// People in the mantrap as last reported.
    pub fn occupancy(&self) -> u8 {
        self.occupancy
    }

    /// Of those, people below the overhead sensor's child height threshold.
    pub fn children(&self) -> u8 {
        self.children
    }

    /// Sensor state as last reported.
    pub fn sensor(&self, sensor: Sensor) -> bool {
        match sensor {
            Sensor::EntryBeam => self.beams[0],
            Sensor::ExitBeam => self.beams[1],
            Sensor::EntrySafety => self.safety[0],
            Sensor::ExitSafety => self.safety[1],
        }
    }

    /// Whether a beam across the lane at `at_m` metres from the entry door's plane is
    /// broken by someone as they stand now (for extra beams such as a mantrap array; the
    /// threshold beams are [`World::sensor`]).
    pub fn beam_blocked_at(&self, at_m: f64) -> bool {
        let p = um(at_m);
        let h = self.half;
        let covers = |c: i64, tail: i64| c - h - tail < p && c + h > p;
        self.in_lane.iter().any(|i| {
            let t = &self.travellers[*i as usize];
            let me = !matches!(t.mind, Mind::Gone | Mind::SteppingUp | Mind::Queued)
                && covers(t.body.c, t.body.tail);
            let companion = t.companion.as_ref().is_some_and(|c| {
                !matches!(c.mind, CMind::Gone) && t.mind != Mind::SteppingUp && covers(c.body.c, 0)
            });
            me || companion
        }) || self.intruders.iter().any(|x| {
            matches!(x.mind, IMind::In | IMind::Pausing | IMind::Out) && covers(x.body.c, 0)
        })
    }

    /// A door's state at `now`.
    pub fn door(&self, door: Door, now: Time) -> DoorView {
        let d = &self.doors[di(door)];
        let travel = self.p.door_travel_ms;
        DoorView {
            open_permille: (self.door_pos(door, now).min(travel) * 1000 / travel) as u16,
            commanded: d.commanded,
            stuck: d.stuck > 0,
        }
    }

    /// One traveller.
    pub fn traveller(&self, id: TravellerId) -> Option<TravellerView> {
        let t = self.travellers.get(id.0 as usize)?;
        Some(TravellerView {
            id,
            name: t.spec.name.clone(),
            behaviour: t.spec.behaviour,
            document: t.document.clone(),
            fate: t.fate,
            companion_passed_exit: t.companion.as_ref().is_some_and(|c| c.passed_exit),
            companion_entered: t.companion.as_ref().is_some_and(|c| c.entered),
            companion: t.companion.as_ref().map(|c| c.kind),
            companion_short: t.companion.as_ref().is_some_and(|c| c.short),
        })
    }

    /// Number of travellers added so far.
    pub fn traveller_count(&self) -> usize {
        self.travellers.len()
    }

    /// The watchlist entry of a document this world generated for a listed traveller.
    pub fn listing(&self, key: &DocumentKey) -> Option<&Listing> {
        self.listings.get(key)
    }
}
