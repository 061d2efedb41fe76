//! `gate-sim rig SCENARIO.toml`: one simulated lane's world in real time with every
//! device on its real transport, so that an all-real `gated` configuration runs end to
//! end on one machine (see `docs/rig.md`):
//!
//! - **I/O**: the doors, beams, lamps and emergency input are the [`LaneModel`] served
//!   as a Modbus TCP I/O module (as `gate-sim lane`); the scenario's clock starts when a
//!   gate first connects to it.
//! - **Documents**: when a traveller presents their document, its MRZ goes out on the OCR
//!   reader's pty (each line ended by CR LF) and its chip (a seeded TD1 resident card
//!   persona, PACE or BAC, DG3 = the enrolment impression of the traveller's synthetic
//!   thumb, signed by the repo's TEST DS) goes into vpcd; it is taken out when the
//!   traveller walks in or goes away.
//! - **Thumbs**: the SFM scanner on its pty answers a capture with a new impression of
//!   the thumb of the traveller at the gate (an impostor's for `wrong_finger`, a smeared
//!   one for `poor_quality`); nobody there: no finger.
//! - **People** follow the doors (as in `gate-sim lane`), or, with `--display URL`, the
//!   gate's traveller display (`/display/events`) as a traveller would.
//!
//! The report has the keys of `gate-sim run` plus `travellers` (name → outcome as the
//! world saw it), `passage_ms` and a `timeline` per traveller; with `--timing`, the
//! gate's own share of each step ([`timing`]).

pub mod timing;

use crate::lane::{serve_model, CoilLog, LaneModel, LaneServer, ServeOptions};
use crate::run::{
    expectation_checks, traffic_arrivals, Check, Outcomes, RunFigures, Tally, ViolationReport,
};
use crate::scenario::{FaultKind, Scenario};
use device_drivers::card::bac::MrzKey;
use device_drivers::card::chip::{ChipConfig, VirtualChip, FID_CARD_ACCESS};
use device_drivers::card::crypto::CipherSuite;
use device_drivers::card::lds::persona::{DocumentKind, Persona, PersonaBuilder};
use device_drivers::card::lds::Finger as FingerPosition;
use device_drivers::card::pa::pki::{Issued, SigningKey};
use device_drivers::card::pace::{PaceCurve, PaceInfo};
use device_drivers::card::vpcd;
use device_drivers::card::{system_rng, SystemRng};
use device_drivers::fingerprint::pty::PtyScanner;
use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
use device_drivers::mrz::framing::{encode, Framing};
use device_drivers::prompt::Prompt;
use device_drivers::sim::{
    Behaviour, Companion, Fate, Injection, Signal, SimRng, TravellerId, TravellerSpec, World,
};
use device_drivers::types::{Door, DoorPosition, Time};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timing::{ChipEvent, ChipLog, Marks, TimedCard, Timing};

const DS_CERT: &[u8] = include_bytes!("../../configs/pki/ds/ds-p256.der");
const DS_KEY: &str = include_str!("../../configs/pki/test-only-keys/ds-p256.key.pem");

/// Issuing state of every rig persona.
pub const ISSUING_STATE: &str = "UTO";
/// Document numbers of `watchlist_hold` travellers, in order of arrival (then again from
/// the first): put them into the gate's watchlist as `hold` entries of issuing state
/// [`ISSUING_STATE`].
pub const HOLD_NUMBERS: [&str; 9] = [
    "RIGHOLD01",
    "RIGHOLD02",
    "RIGHOLD03",
    "RIGHOLD04",
    "RIGHOLD05",
    "RIGHOLD06",
    "RIGHOLD07",
    "RIGHOLD08",
    "RIGHOLD09",
];
/// Document numbers of `watchlist_refer` travellers, likewise (`refer` entries).
pub const REFER_NUMBERS: [&str; 9] = [
    "RIGREFR01",
    "RIGREFR02",
    "RIGREFR03",
    "RIGREFR04",
    "RIGREFR05",
    "RIGREFR06",
    "RIGREFR07",
    "RIGREFR08",
    "RIGREFR09",
];
/// Most travellers (listed and generated) a rig scenario may have.
pub const MAX_TRAVELLERS: u64 = 1_000;
/// Default: how long someone who presented waits at the reader for the entry door to open
/// (while they cannot see the gate's display) before they take their document and go.
pub const DEFAULT_PATIENCE_MS: u64 = 20_000;
/// Default: likewise for a `watchlist_hold` traveller (who expects to be kept waiting).
pub const DEFAULT_HOLD_PATIENCE_MS: u64 = 60_000;
/// After the last traveller is done, how long the rig waits for the exit to close behind
/// them (for their passage time) before it reports.
const SETTLE_MS: u64 = 10_000;
/// The OCR reader's read time: the chip is in the reader's field as soon as the document
/// lies on the reader, the MRZ lines leave the reader this long after (page readers take
/// about 0.3-1.5 s to image the page and read it).
pub const DEFAULT_OCR_MS: u64 = 500;

/// The device loop's period.
const TICK: Duration = Duration::from_millis(20);
/// After the end, the I/O module keeps serving this long (the gate sees the lane idle).
const LINGER: Duration = Duration::from_secs(2);

/// Options of `gate-sim rig` besides the scenario.
#[derive(Clone, Debug)]
pub struct RigOptions {
    /// vpcd `HOST:PORT` the chips are served to.
    pub vpcd: String,
    /// `HOST:PORT` the Modbus TCP I/O module listens on.
    pub modbus: String,
    /// Where the OCR reader's pty is linked.
    pub mrz_pty: PathBuf,
    /// Where the fingerprint scanner's pty is linked.
    pub scanner_pty: PathBuf,
    /// Base URL of the gate's API (`http://HOST:PORT`): the people read its traveller
    /// display; `None`: they follow the doors.
    pub display: Option<String>,
    /// See [`DEFAULT_PATIENCE_MS`].
    pub patience_ms: u64,
    /// See [`DEFAULT_HOLD_PATIENCE_MS`].
    pub hold_patience_ms: u64,
    /// See [`DEFAULT_OCR_MS`].
    pub ocr_ms: u64,
    /// Progress lines on stderr.
    pub verbose: bool,
    /// Stamp every input and command and add the `timing` object to the report.
    pub timing: bool,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            vpcd: vpcd::DEFAULT_VPCD_ADDR.into(),
            modbus: "127.0.0.1:5502".into(),
            mrz_pty: PathBuf::from("target/rig/mrz"),
            scanner_pty: PathBuf::from("target/rig/scanner"),
            display: None,
            patience_ms: DEFAULT_PATIENCE_MS,
            hold_patience_ms: DEFAULT_HOLD_PATIENCE_MS,
            ocr_ms: DEFAULT_OCR_MS,
            verbose: true,
            timing: false,
        }
    }
}

/// Why the rig did not run.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// The scenario cannot be run by the rig (exit 2): key and problem.
    #[error("scenario {path}: key `{key}`: {problem}")]
    Scenario {
        /// File.
        path: String,
        /// Dotted key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A device could not be set up (exit 1).
    #[error("{0}")]
    Setup(String),
}

/// Checks that the rig can serve `s`; `Err((key, problem))` otherwise.
pub fn check_scenario(s: &Scenario) -> Result<(), (String, String)> {
    let no = |key: &str, problem: &str| Err((key.to_string(), problem.to_string()));
    if s.gates != 1 {
        return no("gates", "the rig serves one lane: set gates = 1");
    }
    for (k, f) in s.faults.iter().enumerate() {
        if f.shell_fault().is_some() {
            return Err((
                format!("fault[{k}].kind"),
                "storage, process and clock faults are played by `gate-sim run` only; the \
                 rig's gate is a real gated"
                    .into(),
            ));
        }
        if f.at_s.is_none() {
            return Err((
                format!("fault[{k}].when"),
                "the rig cannot see the gate's steps or travellers' presentations as triggers: \
                 give the fault a time (at_s)"
                    .into(),
            ));
        }
        if matches!(
            f.kind,
            FaultKind::ScannerOffline | FaultKind::ReaderOffline | FaultKind::IoLinkLost
        ) {
            return Err((
                format!("fault[{k}].kind"),
                "the rig cannot take a real device offline (unplug it, or kill pcscd, instead); \
                 it plays door_stuck, obstruction, beam_blocked, beam_dead, forced_door and wrong_way"
                    .into(),
            ));
        }
    }
    for (k, e) in s.emergencies.iter().enumerate() {
        if e.at_s.is_none() {
            return Err((
                format!("emergency[{k}].when"),
                "the rig cannot see the gate's steps as triggers: give the emergency a time (at_s)"
                    .into(),
            ));
        }
    }
    if !s.commands.is_empty() {
        return no(
            "command[0]",
            "the rig has no operator: send commands through gated's API",
        );
    }
    // `[operator]` standing orders are for `gate-sim run`: at the rig, gated's officers
    // (its API) answer alarms and release holds; they are ignored here.
    if !s.watchlist.is_empty() {
        return no(
            "watchlist[0]",
            "the rig cannot change the gate's watchlist: put entries into the gate's config \
             (watchlist_hold / watchlist_refer travellers carry the documented RIGHOLDnn / RIGREFRnn numbers)",
        );
    }
    let e = &s.expect;
    if !e.alarms.is_empty() {
        return no("expect.alarms", "the rig does not see the gate's alarms");
    }
    if e.door_reversals.is_some() {
        return no(
            "expect.door_reversals",
            "the rig does not count door reversals",
        );
    }
    if e.emergency_release_max_ms.is_some() {
        return no(
            "expect.emergency_release_max_ms",
            "the rig does not measure emergency releases",
        );
    }
    if e.final_state.is_some() {
        return no(
            "expect.final_state",
            "the rig does not see the gate's state",
        );
    }
    let generated = s.traffic.as_ref().map_or(0, |t| t.count);
    if s.travellers.len() as u64 + generated > MAX_TRAVELLERS {
        return no(
            "traffic.count",
            "the rig runs in real time: at most 1000 travellers in all",
        );
    }
    for (k, t) in s.travellers.iter().enumerate() {
        if let Some(n) = &t.document_number {
            let hold = n.starts_with("RIGHOLD");
            let refer = n.starts_with("RIGREFR");
            if (hold && t.behaviour != Behaviour::WatchlistHold)
                || (refer && t.behaviour != Behaviour::WatchlistRefer)
            {
                return Err((
                    format!("traveller[{k}].document_number"),
                    "RIGHOLD* and RIGREFR* numbers are kept for watchlist_hold and \
                     watchlist_refer travellers"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One traveller of the rig: who they are, what they carry, how their thumb looks.
pub struct RigTraveller {
    /// Name in the report (the scenario's, or `traffic-N` for generated ones).
    pub name: String,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// Arrival, ms from the clock start.
    pub at_ms: u64,
    /// Their document.
    pub persona: Persona,
    /// Whether the chip offers PACE (it always takes BAC as well).
    pub pace: bool,
    /// Seed of their synthetic right thumb, the one they give (DG3 holds its impression
    /// 1, and the left thumb's).
    pub finger_seed: u64,
}

impl RigTraveller {
    /// The MRZ lines as printed.
    pub fn mrz_lines(&self) -> Vec<String> {
        self.persona.mrz.to_lines().unwrap_or_default()
    }

    /// The MRZ as the OCR reader sends it by default: each line ended by CR LF.
    pub fn ocr_bytes(&self) -> Vec<u8> {
        encode(&self.mrz_lines(), None, &Framing::default())
    }

    /// A fresh virtual chip of their document.
    pub fn chip(&self) -> VirtualChip<SystemRng> {
        let m = &self.persona.mrz;
        let key = MrzKey::new(&m.document_number, &m.date_of_birth, &m.date_of_expiry)
            .unwrap_or_else(|_| MrzKey::new("L898902C", "690806", "940623").expect("specimen"));
        let pace = self
            .pace
            .then(|| PaceInfo::ecdh_gm(CipherSuite::Aes128, PaceCurve::P256));
        let mut cfg = ChipConfig::new(key, pace);
        cfg.can = Some(self.persona.can.clone());
        cfg.bac = true;
        let mut chip = VirtualChip::new(cfg, system_rng());
        for (fid, bytes) in &self.persona.files {
            if *fid != FID_CARD_ACCESS {
                chip.set_file(*fid, bytes.clone());
            }
        }
        chip
    }

    /// What they put on the scanner: their own thumb, an impostor's (`wrong_finger`),
    /// or their own badly smeared (`poor_quality`).
    pub fn thumb(&self) -> (Finger, ImpressionParams) {
        match self.behaviour {
            Behaviour::WrongFinger => (
                Finger::generate(splitmix(self.finger_seed ^ 0x1D05_7E12)),
                ImpressionParams::default(),
            ),
            Behaviour::PoorQuality => (
                Finger::generate(self.finger_seed),
                ImpressionParams {
                    drop_rate: 0.9,
                    spurious: 0.0,
                    position_noise: 8.0,
                    angle_noise_deg: 30.0,
                    ..ImpressionParams::default()
                },
            ),
            _ => (
                Finger::generate(self.finger_seed),
                ImpressionParams::default(),
            ),
        }
    }
}

/// The repo's TEST Document Signer (PA valid against `configs/pki/csca`).
pub fn test_ds() -> anyhow::Result<Issued> {
    Ok(Issued {
        cert_der: DS_CERT.to_vec(),
        key: SigningKey::from_pkcs8_pem(DS_KEY)
            .map_err(|e| anyhow::anyhow!("embedded TEST DS key: {e}"))?,
    })
}

/// `YYMMDD` of `date`.
fn yymmdd(d: device_drivers::types::Date) -> String {
    format!("{:02}{:02}{:02}", d.year.rem_euclid(100), d.month, d.day)
}

/// The travellers of `s` with seed `seed`, in order of arrival ids (listed first, then
/// generated); `today_days` (days since 1970) dates the expired documents.
pub fn plan(s: &Scenario, seed: u64, today_days: i64) -> anyhow::Result<Vec<RigTraveller>> {
    let ds = test_ds()?;
    let mut rng = SimRng::new(splitmix(seed));
    // (name, behaviour, arrival ms, document number, issuing state)
    type Wanted = (String, Behaviour, u64, Option<String>, Option<String>);
    let mut wanted: Vec<Wanted> = Vec::new();
    for (k, t) in s.travellers.iter().enumerate() {
        let name = t
            .name
            .clone()
            .unwrap_or_else(|| format!("traveller-{}", k + 1));
        wanted.push((
            name,
            t.behaviour,
            (t.at_s * 1000.0).round() as u64,
            t.document_number.clone(),
            t.issuing_state.clone(),
        ));
    }
    if let Some(tr) = &s.traffic {
        for (k, (at, b)) in traffic_arrivals(tr, &mut rng).into_iter().enumerate() {
            wanted.push((format!("traffic-{}", k + 1), b, at, None, None));
        }
    }
    let (mut holds, mut refers) = (0usize, 0usize);
    let mut out = Vec::with_capacity(wanted.len());
    for (k, (name, behaviour, at_ms, number, state)) in wanted.into_iter().enumerate() {
        let pseed = splitmix(seed ^ splitmix(k as u64 + 0x5249_4700));
        let finger_seed = splitmix(pseed ^ 0xF1F1);
        let pace = pseed & 1 == 0;
        // DG3 holds both thumbs (the resident profile); they give the right one.
        let enrol = |seed: u64| {
            Finger::generate(seed)
                .impression(1, &ImpressionParams::default())
                .to_iso2005_bytes()
                .map_err(|e| anyhow::anyhow!("enrolment template: {e}"))
        };
        let thumbs = vec![
            (FingerPosition::RightThumb, enrol(finger_seed)?),
            (
                FingerPosition::LeftThumb,
                enrol(splitmix(finger_seed ^ 0x1EF7))?,
            ),
        ];
        let builder = PersonaBuilder::new(pseed)
            .kind(DocumentKind::ResidentCard)
            .issuing_state(state.as_deref().unwrap_or(ISSUING_STATE))
            .pace(pace.then_some(12))
            .face_size(8_000)
            .thumbs(thumbs);
        let mut persona = builder.build(&ds)?;
        let mut mrz = persona.mrz.clone();
        let mut changed = false;
        let listed = match behaviour {
            Behaviour::WatchlistHold => {
                holds += 1;
                Some(HOLD_NUMBERS[(holds - 1) % HOLD_NUMBERS.len()])
            }
            Behaviour::WatchlistRefer => {
                refers += 1;
                Some(REFER_NUMBERS[(refers - 1) % REFER_NUMBERS.len()])
            }
            _ => None,
        };
        if let Some(n) = number.as_deref().or(listed) {
            mrz.document_number = n.to_string();
            changed = true;
        }
        let today = device_drivers::types::Date::from_unix_days(today_days);
        if behaviour == Behaviour::ExpiredDocument {
            let back = 30 + (pseed >> 8) % 700;
            let d = device_drivers::types::Date::from_unix_days(today_days - back as i64);
            mrz.date_of_expiry = yymmdd(d);
            changed = true;
        } else {
            // The generated expiry (2027-2035) must still lie ahead, whatever today is.
            let ahead = device_drivers::types::MrzDate::parse(&mrz.date_of_expiry)
                .and_then(|d| d.as_expiry(today))
                .is_some_and(|d| d.to_unix_days() > today_days + 30);
            if !ahead {
                let fwd = 365 + (pseed >> 8) % 3000;
                let d = device_drivers::types::Date::from_unix_days(today_days + fwd as i64);
                mrz.date_of_expiry = yymmdd(d);
                changed = true;
            }
        }
        if changed {
            persona = builder.mrz(mrz).build(&ds)?;
        }
        out.push(RigTraveller {
            name,
            behaviour,
            at_ms,
            persona,
            pace,
            finger_seed,
        });
    }
    Ok(out)
}

/// The world of the lane with every traveller added at their arrival time (traveller
/// `k` of the plan gets id `k`) and the scenario's lane faults and emergencies injected.
pub fn world(s: &Scenario, seed: u64, plan: &[RigTraveller]) -> anyhow::Result<World> {
    let mut w = World::new(s.world.clone(), splitmix(seed ^ 0x1A2E))
        .map_err(|e| anyhow::anyhow!("world: {e}"))?;
    for t in plan {
        let mut spec = TravellerSpec::named(t.name.clone(), t.behaviour);
        let m = &t.persona.mrz;
        let parse = |d: &str| device_drivers::types::MrzDate::parse(d);
        if let (Some(dob), Some(exp)) = (parse(&m.date_of_birth), parse(&m.date_of_expiry)) {
            spec.document = Some(device_drivers::types::Document {
                kind: device_drivers::types::DocumentKind::IdCard,
                issuing_state: m.issuing_state.clone(),
                document_number: m.document_number.clone(),
                nationality: m.nationality.clone(),
                date_of_birth: dob,
                date_of_expiry: exp,
                passive_auth: device_drivers::types::PaStatus::Valid,
                mrz_matches_ocr: true,
                enrolled_thumbs: 1,
            });
        }
        w.add_traveller(Time(t.at_ms), spec);
    }
    let ms = |s: f64| (s * 1000.0).round() as u64;
    for f in &s.faults {
        // Triggered faults were refused by `check_scenario`.
        let Some(at_s) = f.at_s else { continue };
        let at = Time(ms(at_s));
        // Offline and link-loss faults were refused by `check_scenario`.
        let Some(inj) = f.injection() else { continue };
        w.inject(at, inj);
    }
    for e in &s.emergencies {
        let Some(at_s) = e.at_s else { continue };
        w.inject(
            Time(ms(at_s)),
            Injection::Emergency {
                for_ms: e.for_s.map(ms),
            },
        );
    }
    Ok(w)
}

// ---- devices -------------------------------------------------------------------------

/// A chip in the vpcd reader: served on its own thread until taken out.
struct Card {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Card {
    /// Puts `chip` of `who` on the reader (connecting to vpcd = card inserted; if pcscd
    /// restarts the card is inserted again); its APDUs are noted in `log`.
    fn insert(addr: &str, chip: VirtualChip<SystemRng>, who: TravellerId, log: &ChipLog) -> Card {
        timing::note_chip(log, who, ChipEvent::Inserted);
        let mut chip = TimedCard::new(chip, who, log.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let addr = addr.to_string();
        let thread = std::thread::Builder::new()
            .name("rig-card".into())
            .spawn(move || {
                let _ = vpcd::serve_forever(&addr, &mut chip, &flag, Duration::from_millis(200));
            })
            .ok();
        Card { stop, thread }
    }

    /// Takes the card off the reader.
    fn remove(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The OCR reader's end of its pty: what the rig sends is what the gate's MRZ reader
/// reads.
pub struct OcrPort(device_drivers::mrz::pty::PtyOcr);

impl OcrPort {
    /// Opens the pty and links its slave end at `link` (replacing what is there).
    pub fn start(link: &Path) -> std::io::Result<OcrPort> {
        device_drivers::mrz::pty::PtyOcr::start(link).map(OcrPort)
    }

    /// Sends the MRZ `lines` with the reader's default framing: each line ended by CR LF,
    /// no STX/ETX, no checksum (the CAN is not sent).
    pub fn send_mrz(&self, lines: &[String]) -> std::io::Result<()> {
        self.0.send_mrz(lines, None, &Framing::default())
    }
}

fn ensure_parent(p: &Path) -> std::io::Result<()> {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => std::fs::create_dir_all(d),
        _ => Ok(()),
    }
}

// ---- report --------------------------------------------------------------------------

/// Passage times of cleared travellers: document presented → exit closed behind them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Passage {
    /// Median, ms (`null` if nobody was cleared).
    pub p50: Option<u64>,
    /// 90th percentile, ms.
    pub p90: Option<u64>,
    /// Cleared travellers measured.
    pub count: u64,
}

/// One traveller in the report's timeline (times in ms since the clock start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// Name.
    pub name: String,
    /// Behaviour.
    pub behaviour: String,
    /// Issuing state of their document.
    pub issuing_state: String,
    /// Document number.
    pub document_number: String,
    /// `PACE` (the chip also takes BAC) or `BAC`.
    pub access: String,
    /// Planned arrival at the lane.
    pub arrival_ms: u64,
    /// Document presented (MRZ sent, chip inserted).
    pub presented_ms: Option<u64>,
    /// Entry door driven open for them.
    pub let_in_ms: Option<u64>,
    /// Left the lane (through the exit, or back out).
    pub left_ms: Option<u64>,
    /// Exit door closed behind them (cleared travellers).
    pub exit_closed_ms: Option<u64>,
    /// Outcome as the world saw it.
    pub outcome: String,
}

/// The report of `gate-sim rig` (the keys of `gate-sim run`'s report where they apply).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RigReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Travellers who presented their document (each starts a transit at the gate).
    pub transits: u64,
    /// Outcomes as the world saw them.
    pub outcomes: Outcomes,
    /// Expectations met and not met.
    pub expectations: Tally,
    /// Number of invariant violations seen on the I/O.
    pub invariant_violations: u64,
    /// Name → outcome (`cleared`, `referred`, `held`, `aborted`, `none`).
    pub travellers: BTreeMap<String, String>,
    /// Passage times of cleared travellers.
    pub passage_ms: Passage,
    /// Number of gates (always 1).
    pub gates: usize,
    /// Travellers still queued or in the lane at the end.
    pub unfinished_travellers: u64,
    /// Time on the scenario's clock (real time since a gate first connected) at the end,
    /// in seconds.
    pub virtual_duration_s: f64,
    /// Whether the run stopped at `max_duration_s` with work left.
    pub hit_time_limit: bool,
    /// Whether the run was stopped (SIGINT/SIGTERM) before its end.
    pub interrupted: bool,
    /// Each expectation with what happened.
    pub checks: Vec<Check>,
    /// The violations in detail.
    pub violations: Vec<ViolationReport>,
    /// Every traveller's way through the lane.
    pub timeline: Vec<TimelineEntry>,
    /// With `--timing`: the gate's share of each step (see [`timing`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

impl RigReport {
    /// Whether every expectation held and no invariant broke.
    pub fn ok(&self) -> bool {
        self.expectations.failed == 0 && self.invariant_violations == 0
    }
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// What the rig saw of one traveller.
#[derive(Clone, Debug, Default)]
struct Seen {
    presented: Option<u64>,
    let_in: Option<u64>,
    left: Option<u64>,
    exit_closed: Option<u64>,
    /// Kept waiting for an officer (the display said so, or, following the doors, a
    /// `watchlist_hold` traveller never let in).
    held: bool,
    fate: Option<Fate>,
}

fn outcome_of(b: Behaviour, s: &Seen) -> &'static str {
    match s.fate {
        Some(Fate::PassedExit) => "cleared",
        Some(Fate::EmergencyExit) => "aborted",
        Some(Fate::CameBack) if b == Behaviour::TurnsBack => "aborted",
        Some(Fate::CameBack) => "referred",
        Some(Fate::LeftAtReader) if s.held => "held",
        Some(Fate::LeftAtReader) if b == Behaviour::NeverEnters && s.let_in.is_some() => "aborted",
        Some(Fate::LeftAtReader) => "referred",
        _ if s.held => "held",
        _ => "none",
    }
}

// ---- the run -------------------------------------------------------------------------

/// Everything the device loop needs.
struct Devices {
    ocr: OcrPort,
    scanner: PtyScanner,
    vpcd: String,
    card: Option<(TravellerId, Card)>,
    verbose: bool,
    /// APDUs of every chip, with when.
    chips: ChipLog,
    /// MRZs fully written on the OCR pty.
    mrz_sent: Vec<(Instant, TravellerId)>,
    /// The OCR read under way: when it is done (world time), whose, the lines.
    ocr_pending: Option<(Time, TravellerId, Vec<String>)>,
    /// See [`RigOptions::ocr_ms`].
    ocr_ms: u64,
}

impl Devices {
    fn log(&self, now: Time, what: &str) {
        if self.verbose {
            eprintln!("gate-sim rig: t={} ms {what}", now.0);
        }
    }

    fn present(&mut self, now: Time, id: TravellerId, t: &RigTraveller) {
        if let Some((_, card)) = self.card.take() {
            card.remove();
        }
        let (finger, params) = t.thumb();
        self.scanner
            .set_finger(Some((finger, params)), 1_000 + u64::from(id.0) * 100);
        // The chip is in the field at once; the OCR read comes after the reader's read time.
        self.ocr_pending = Some((now.plus(self.ocr_ms), id, t.mrz_lines()));
        self.ocr_due(now);
        if t.behaviour == Behaviour::UnreadableChip {
            self.log(
                now,
                &format!(
                    "{} presents {} (MRZ sent, the chip does not answer)",
                    t.name, t.persona.mrz.document_number
                ),
            );
        } else {
            self.card = Some((id, Card::insert(&self.vpcd, t.chip(), id, &self.chips)));
            self.log(
                now,
                &format!(
                    "{} ({}) presents {} {} ({})",
                    t.name,
                    t.behaviour.as_str(),
                    t.persona.mrz.issuing_state,
                    t.persona.mrz.document_number,
                    if t.pace { "PACE" } else { "BAC" }
                ),
            );
        }
    }

    /// Sends the OCR read under way once its time has come.
    fn ocr_due(&mut self, now: Time) {
        let Some((at, id, _)) = &self.ocr_pending else {
            return;
        };
        if *at > now {
            return;
        }
        let id = *id;
        if let Some((_, _, lines)) = self.ocr_pending.take() {
            match self.ocr.send_mrz(&lines) {
                Ok(()) => self.mrz_sent.push((Instant::now(), id)),
                Err(e) => eprintln!("gate-sim rig: cannot send the MRZ on the OCR pty: {e}"),
            }
        }
    }

    fn take_back(&mut self, id: TravellerId) {
        if self
            .ocr_pending
            .as_ref()
            .is_some_and(|(_, who, _)| *who == id)
        {
            self.ocr_pending = None;
        }
        if self.card.as_ref().is_some_and(|(who, _)| *who == id) {
            if let Some((_, card)) = self.card.take() {
                card.remove();
            }
        }
    }
}

struct Tick {
    now: Time,
    signals: Vec<(Time, Signal)>,
    fates: Vec<Fate>,
    display: Option<Prompt>,
    presenting: Option<TravellerId>,
    admitted: Vec<(TravellerId, Time)>,
    entry_open_driven: bool,
    exit_closed: bool,
    companions_through: Vec<usize>,
    unsafe_closes: Vec<(Time, Door)>,
}

fn observe(server: &LaneServer, n: usize) -> Tick {
    server.with_model(|m, now| {
        let w = m.world();
        let mut fates = Vec::with_capacity(n);
        let mut companions_through = Vec::new();
        for k in 0..n {
            let v = w.traveller(TravellerId(k as u32));
            fates.push(v.as_ref().map_or(Fate::Pending, |v| v.fate));
            if v.is_some_and(|v| v.companion_passed_exit && v.companion != Some(Companion::Child)) {
                companions_through.push(k);
            }
        }
        let exit = w.door(Door::Exit, now);
        Tick {
            now,
            signals: m.take_signals(),
            fates,
            display: m.gate_display(),
            presenting: m.presenting().map(|(id, _)| id),
            admitted: m.take_admitted(),
            entry_open_driven: m.coils()[crate::lane::coil::ENTRY_DRIVE_OPEN]
                && !m.coils()[crate::lane::coil::ENTRY_LOCK],
            exit_closed: exit.open_permille == 0 && exit.commanded == DoorPosition::Closed,
            companions_through,
            unsafe_closes: m.unsafe_closes().to_vec(),
        }
    })
}

/// Runs `scenario` with `seed` on the real transports of `opts` until every traveller is
/// done, `max_duration_s` has passed since the clock start, or `stop` is raised.
pub fn run(
    scenario: &Scenario,
    path: &str,
    seed: u64,
    opts: &RigOptions,
    stop: Arc<AtomicBool>,
) -> Result<RigReport, RigError> {
    check_scenario(scenario).map_err(|(key, problem)| RigError::Scenario {
        path: path.into(),
        key,
        problem,
    })?;
    let setup = |what: &str, e: &dyn std::fmt::Display| RigError::Setup(format!("{what}: {e}"));
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(20_000);
    let plan = plan(scenario, seed, today).map_err(|e| setup("cannot build the personas", &e))?;
    let world = world(scenario, seed, &plan).map_err(|e| setup("cannot build the lane", &e))?;
    let mut model = LaneModel::with_world(world, Time(0));
    model.keep_signals();
    model.set_patience(Some(opts.patience_ms));

    for p in [&opts.mrz_pty, &opts.scanner_pty] {
        ensure_parent(p).map_err(|e| {
            setup(
                &format!("cannot create the directory of {}", p.display()),
                &e,
            )
        })?;
    }
    let ocr = OcrPort::start(&opts.mrz_pty).map_err(|e| {
        setup(
            &format!("cannot open the OCR pty at {}", opts.mrz_pty.display()),
            &e,
        )
    })?;
    let scanner = PtyScanner::start(&opts.scanner_pty).map_err(|e| {
        setup(
            &format!(
                "cannot open the scanner pty at {}",
                opts.scanner_pty.display()
            ),
            &e,
        )
    })?;
    scanner.set_finger(None, 0);
    let coil_log = opts.timing.then(CoilLog::default);
    if opts.timing {
        scanner.record_events();
        model.keep_input_changes(Time(0));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| setup("cannot start the runtime", &e))?;
    let serve_opts = ServeOptions {
        speed: 1.0,
        unit_id: None,
        start_on_connect: true,
        log_coils: false,
        coil_log: coil_log.clone(),
    };
    let server = rt
        .block_on(serve_model(&opts.modbus, model, &serve_opts))
        .map_err(|e| RigError::Setup(e.to_string()))?;
    let server = Arc::new(server);
    if opts.verbose {
        eprintln!(
            "gate-sim rig: {} traveller(s); Modbus TCP I/O on {}, OCR reader at {}, scanner at {}, chips through vpcd at {}{}; the clock starts when a gate connects",
            plan.len(),
            server.addr,
            opts.mrz_pty.display(),
            opts.scanner_pty.display(),
            opts.vpcd,
            opts.display
                .as_deref()
                .map(|d| format!(", display {d}"))
                .unwrap_or_default()
        );
    }
    let display_task = opts
        .display
        .clone()
        .map(|url| rt.spawn(display::follow(url, server.clone())));
    let devices = Devices {
        ocr,
        scanner,
        vpcd: opts.vpcd.clone(),
        card: None,
        verbose: opts.verbose,
        chips: ChipLog::default(),
        mrz_sent: Vec::new(),
        ocr_pending: None,
        ocr_ms: opts.ocr_ms,
    };
    let limit_ms = (scenario.max_duration_s * 1000.0).round() as u64;
    let result = device_loop(&server, &plan, devices, opts, limit_ms, &stop);
    if let Some(t) = display_task {
        t.abort();
    }
    let marks = match (opts.timing, server.started_at()) {
        (true, Some(origin)) => {
            let mut m = result.marks.clone();
            let inputs = server.with_model(|m, _| m.take_input_changes());
            m.inputs = inputs
                .into_iter()
                .map(|(t, k, on)| (t.0.saturating_mul(1000), k, on))
                .collect();
            let coils = coil_log
                .map(|l| std::mem::take(&mut *l.lock().unwrap_or_else(|e| e.into_inner())))
                .unwrap_or_default();
            m.coils = coils
                .into_iter()
                .map(|(t, k, on)| (timing::micros(origin, t), k, on))
                .collect();
            Some(m)
        }
        (true, None) => Some(Marks::default()),
        _ => None,
    };
    drop(server);
    rt.shutdown_timeout(Duration::from_millis(500));
    Ok(report(scenario, seed, &plan, result, marks.as_ref()))
}

struct Loop {
    seen: Vec<Seen>,
    end_ms: u64,
    hit_limit: bool,
    interrupted: bool,
    violations: Vec<ViolationReport>,
    /// The chip, OCR and scanner stamps (µs since the clock start; inputs and coils are
    /// added by [`run`]).
    marks: Marks,
}

fn device_loop(
    server: &LaneServer,
    plan: &[RigTraveller],
    mut dev: Devices,
    opts: &RigOptions,
    limit_ms: u64,
    stop: &AtomicBool,
) -> Loop {
    let n = plan.len();
    let mut seen = vec![Seen::default(); n];
    let mut violations = Vec::new();
    let mut through_reported = vec![false; n];
    let mut unsafe_reported = 0usize;
    let mut done_since: Option<u64> = None;
    let mut waiting_logged = false;
    let (hit_limit, interrupted, end_ms) = loop {
        std::thread::sleep(TICK);
        if stop.load(Ordering::Relaxed) {
            break (false, true, server.now().0);
        }
        if !server.started() {
            if !waiting_logged && opts.verbose {
                eprintln!("gate-sim rig: waiting for a gate to connect to the I/O module");
                waiting_logged = true;
            }
            continue;
        }
        let tick = observe(server, n);
        let now = tick.now;
        dev.ocr_due(now);
        for (t, s) in &tick.signals {
            if let Signal::DocumentPresented { traveller } = s {
                let k = traveller.0 as usize;
                if let Some(p) = plan.get(k) {
                    seen[k].presented.get_or_insert(t.0);
                    // A hold traveller waits longer for the door while nobody sees a display.
                    let patience = if p.behaviour == Behaviour::WatchlistHold {
                        opts.hold_patience_ms
                    } else {
                        opts.patience_ms
                    };
                    server.with_model(|m, _| m.set_patience(Some(patience)));
                    dev.present(*t, *traveller, p);
                }
            }
        }
        if let Some(id) = tick.presenting {
            if tick.display == Some(Prompt::WaitForOfficer) {
                seen[id.0 as usize].held = true;
            }
        }
        for (id, t) in &tick.admitted {
            if let Some(s) = seen.get_mut(id.0 as usize) {
                s.let_in.get_or_insert(t.0);
            }
        }
        // The one let in takes their document and walks in.
        if let Some((who, _)) = dev.card.as_ref() {
            let who = *who;
            let k = who.0 as usize;
            if tick.entry_open_driven || tick.fates.get(k).is_some_and(|f| *f != Fate::Pending) {
                dev.take_back(who);
                dev.log(now, &format!("{} took the document back", plan[k].name));
            }
        }
        for (k, f) in tick.fates.iter().enumerate() {
            if *f != Fate::Pending && seen[k].fate.is_none() {
                seen[k].fate = Some(*f);
                seen[k].left = Some(now.0);
                // Following the doors, a hold traveller sent away unseen was held.
                if tick.display.is_none()
                    && plan[k].behaviour == Behaviour::WatchlistHold
                    && *f == Fate::LeftAtReader
                    && seen[k].let_in.is_none()
                {
                    seen[k].held = true;
                }
                dev.take_back(TravellerId(k as u32));
                if tick.presenting.is_none() {
                    dev.scanner.set_finger(None, 0);
                }
                dev.log(
                    now,
                    &format!(
                        "{} left: {}",
                        plan[k].name,
                        outcome_of(plan[k].behaviour, &seen[k])
                    ),
                );
            }
            if *f == Fate::PassedExit && seen[k].exit_closed.is_none() && tick.exit_closed {
                seen[k].exit_closed = Some(now.0);
            }
        }
        for k in &tick.companions_through {
            if !through_reported[*k] {
                through_reported[*k] = true;
                violations.push(ViolationReport {
                    gate: 0,
                    invariant: "P1".into(),
                    at_ms: now.0,
                    detail: format!(
                        "the tailgater of {} reached the far side of the exit",
                        plan[*k].name
                    ),
                });
            }
        }
        for (t, door) in tick.unsafe_closes.iter().skip(unsafe_reported) {
            violations.push(ViolationReport {
                gate: 0,
                invariant: "safety".into(),
                at_ms: t.0,
                detail: format!(
                    "the {} door was driven closed while its safety field was occupied",
                    match door {
                        Door::Entry => "entry",
                        Door::Exit => "exit",
                    }
                ),
            });
        }
        unsafe_reported = tick.unsafe_closes.len();
        let all_done = tick.fates.iter().all(|f| *f != Fate::Pending);
        let closing_pending = seen
            .iter()
            .any(|s| s.fate == Some(Fate::PassedExit) && s.exit_closed.is_none());
        if all_done {
            let since = *done_since.get_or_insert(now.0);
            if !closing_pending || now.0 >= since + SETTLE_MS {
                break (false, false, now.0);
            }
        }
        if now.0 >= limit_ms {
            break (!all_done, false, now.0);
        }
    };
    if let Some((_, card)) = dev.card.take() {
        card.remove();
    }
    if !interrupted {
        std::thread::sleep(LINGER);
    }
    let marks = match server.started_at() {
        Some(origin) if opts.timing => {
            let us = |t: Instant| timing::micros(origin, t);
            let chips = std::mem::take(&mut *dev.chips.lock().unwrap_or_else(|e| e.into_inner()));
            Marks {
                mrz: dev.mrz_sent.iter().map(|(t, id)| (us(*t), *id)).collect(),
                chip: chips.into_iter().map(|(t, id, e)| (us(t), id, e)).collect(),
                scanner: dev
                    .scanner
                    .take_events()
                    .into_iter()
                    .map(|(t, e)| (us(t), e))
                    .collect(),
                ..Marks::default()
            }
        }
        _ => Marks::default(),
    };
    Loop {
        seen,
        end_ms,
        hit_limit,
        interrupted,
        violations,
        marks,
    }
}

fn report(
    s: &Scenario,
    seed: u64,
    plan: &[RigTraveller],
    l: Loop,
    marks: Option<&Marks>,
) -> RigReport {
    let mut counts = [0u64; 4];
    let mut travellers = BTreeMap::new();
    let mut timeline = Vec::new();
    let mut passages = Vec::new();
    let mut cleared = Vec::new();
    let mut transits = 0;
    let mut unfinished = 0;
    for (t, seen) in plan.iter().zip(&l.seen) {
        let outcome = outcome_of(t.behaviour, seen);
        match outcome {
            "cleared" => counts[0] += 1,
            "referred" => counts[1] += 1,
            "held" => counts[2] += 1,
            "aborted" => counts[3] += 1,
            _ => {}
        }
        if seen.presented.is_some() {
            transits += 1;
        }
        if seen.fate.is_none() {
            unfinished += 1;
        }
        if let (Some(p), Some(c), "cleared") = (seen.presented, seen.exit_closed, outcome) {
            passages.push(c.saturating_sub(p));
        }
        if outcome == "cleared" {
            cleared.push((TravellerId(timeline.len() as u32), t.name.clone()));
        }
        travellers.insert(t.name.clone(), outcome.to_string());
        let m = &t.persona.mrz;
        timeline.push(TimelineEntry {
            name: t.name.clone(),
            behaviour: t.behaviour.as_str().into(),
            issuing_state: m.issuing_state.clone(),
            document_number: m.document_number.clone(),
            access: if t.pace { "PACE" } else { "BAC" }.into(),
            arrival_ms: t.at_ms,
            presented_ms: seen.presented,
            let_in_ms: seen.let_in,
            left_ms: seen.left,
            exit_closed_ms: seen.exit_closed,
            outcome: outcome.into(),
        });
    }
    passages.sort_unstable();
    let duration_s = l.end_ms as f64 / 1000.0;
    let ran = RunFigures {
        outcomes: &counts,
        transits,
        alarms: None,
        duration_s,
        hit_limit: l.hit_limit || l.interrupted,
        unfinished,
    };
    let lookup = |name: &str| {
        travellers
            .get(name)
            .cloned()
            .unwrap_or_else(|| "none".to_string())
    };
    let checks = expectation_checks(&s.expect, &ran, &lookup);
    let failed = checks.iter().filter(|c| !c.passed).count() as u64;
    RigReport {
        scenario: s.name().to_string(),
        seed,
        transits,
        outcomes: Outcomes {
            cleared: counts[0],
            referred: counts[1],
            held: counts[2],
            aborted: counts[3],
        },
        expectations: Tally {
            passed: checks.len() as u64 - failed,
            failed,
        },
        invariant_violations: l.violations.len() as u64,
        travellers,
        passage_ms: Passage {
            p50: percentile(&passages, 0.5),
            p90: percentile(&passages, 0.9),
            count: passages.len() as u64,
        },
        gates: 1,
        unfinished_travellers: unfinished,
        virtual_duration_s: duration_s,
        hit_time_limit: l.hit_limit,
        interrupted: l.interrupted,
        checks,
        violations: l.violations,
        timeline,
        timing: marks.map(|m| timing::measure(m, &cleared, &passages)),
    }
}

/// The gate's traveller display as the people in the lane see it.
mod display {
    use super::LaneServer;
    use device_drivers::prompt::Prompt;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// `http://HOST:PORT[/prefix]` → (`HOST:PORT`, path of the events).
    fn target(url: &str) -> Option<(String, String)> {
        let rest = url.strip_prefix("http://")?;
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        Some((host.to_string(), format!("{prefix}/display/events")))
    }

    /// Follows the display at `url` for ever, reconnecting; while it cannot be read the
    /// people follow the doors.
    pub async fn follow(url: String, server: Arc<LaneServer>) {
        let Some((host, path)) = target(&url) else {
            eprintln!("gate-sim rig: --display {url:?} is not an http://HOST:PORT URL; the people follow the doors");
            return;
        };
        loop {
            let _ = read(&host, &path, &server).await;
            server.with_model(|m, now| m.set_gate_display(now, None));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn read(host: &str, path: &str, server: &LaneServer) -> std::io::Result<()> {
        let mut s = tokio::net::TcpStream::connect(host).await?;
        // HTTP/1.0: the body is the rest of the connection (no chunking to undo).
        let req =
            format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut lines = BufReader::new(s).lines();
        while let Some(line) = lines.next_line().await? {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                continue;
            };
            if let Some(cue) = v["prompt"].as_str().and_then(Prompt::from_code) {
                server.with_model(|m, now| m.set_gate_display(now, Some(cue)));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn display_urls() {
            assert_eq!(
                super::target("http://127.0.0.1:8080"),
                Some(("127.0.0.1:8080".into(), "/display/events".into()))
            );
            assert_eq!(
                super::target("http://h:1/gate/"),
                Some(("h:1".into(), "/gate/display/events".into()))
            );
            assert_eq!(super::target("https://h:1"), None);
        }
    }
}
