//! The gate's configuration file (TOML): parsing, validation and the mapping onto the
//! state machine's [`machine::Config`].
//!
//! Every table rejects unknown keys, and every error names the key (`policy.min_age`,
//! `devices.io.address`, ...) and the problem, so `gated --check` can tell an integrator
//! exactly what to fix. Every key is documented in `docs/configuration.md` and in
//! `configs/gate.example.toml`.

use crate::decision::{LaneKind, Policy};
use crate::machine::{self, Timeouts};
use crate::types::DocumentKind;
use crate::upstream::disk::DiskGuardConfig;
use device_drivers::sim::{Behaviour, Params as SimParams};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("{path}: {key}: {problem}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Dotted key where the problem is (`.` for the top level).
        key: String,
        /// What is wrong, with the line and column when known.
        problem: String,
    },
    /// One or more values are out of range or inconsistent.
    #[error("{path}: {}", join(.problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem with its key.
        problems: Vec<Problem>,
    },
}

/// The sections whose `kind` selects a variant without settings, and those kinds.
/// serde's `deny_unknown_fields` does not reach the unit variants of an internally tagged
/// enum, so stray keys beside these kinds are found here.
const FIELDLESS_KINDS: [(&str, &[&str]); 4] = [
    ("devices.document", &["sim"]),
    ("devices.fingerprint", &["sim"]),
    ("devices.io", &["sim"]),
    ("matcher", &["sim", "minutiae"]),
];

/// The first key (dotted, and the section's kind) sitting beside a kind that takes none.
fn extra_key_of_fieldless_kind(text: &str) -> Option<(String, String)> {
    let root: toml::Table = toml::from_str(text).ok()?;
    for (section, kinds) in FIELDLESS_KINDS {
        let mut table = Some(&root);
        for part in section.split('.') {
            table = table.and_then(|t| t.get(part)).and_then(|v| v.as_table());
        }
        let Some(table) = table else { continue };
        let kind = table.get("kind").and_then(|v| v.as_str()).unwrap_or("sim");
        if !kinds.contains(&kind) {
            continue;
        }
        if let Some(extra) = table.keys().find(|k| k.as_str() != "kind") {
            return Some((format!("{section}.{extra}"), kind.to_string()));
        }
    }
    None
}

/// One validation problem: the dotted key and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `policy.biometric_threshold`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The whole configuration of one gate.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Identity and role of the gate.
    pub gate: GateSection,
    /// Eligibility and biometric policy.
    #[serde(default)]
    pub policy: PolicySection,
    /// Who may be in the mantrap with the traveller.
    #[serde(default)]
    pub lane: LaneSection,
    /// Step deadlines of the state machine.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// The durable journal.
    pub journal: JournalSection,
    /// Which device implementations to use.
    #[serde(default)]
    pub devices: DevicesSection,
    /// The fingerprint matcher.
    #[serde(default)]
    pub matcher: MatcherSection,
    /// The simulated traveller stream (for `kind = "sim"` devices).
    #[serde(default)]
    pub sim: SimSection,
    /// The watchlist consulted before anyone enters.
    #[serde(default)]
    pub watchlist: WatchlistSection,
    /// The HTTP API (served once the API issue lands).
    #[serde(default)]
    pub api: ApiSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Sync of the journal to the central system; absent = no sync.
    #[serde(default)]
    pub upstream: Option<crate::upstream::section::UpstreamSection>,
}

/// Travel direction the gate controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Entering the country.
    Arrival,
    /// Leaving the country.
    Departure,
}

impl Direction {
    /// Lower-case name (journal, upstream).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Arrival => "arrival",
            Direction::Departure => "departure",
        }
    }
}

/// `[gate]`: identity and role of the gate.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// Gate id, unique in the control point (journal, upstream, console).
    pub id: String,
    /// Which travellers the lane serves.
    pub lane: LaneKind,
    /// Arrival or departure.
    pub direction: Direction,
    /// How often a closing door may be reversed by its safety sensor before the gate
    /// declares a door fault.
    #[serde(default = "default_reversals")]
    pub max_door_reversals: u8,
    /// How long `gated` waits, after SIGTERM/SIGINT, for the current transit to finish or
    /// be safely aborted before it gives up.
    #[serde(default = "default_drain")]
    pub drain_timeout_ms: u64,
}

fn default_reversals() -> u8 {
    3
}
fn default_drain() -> u64 {
    60_000
}

/// `[policy]`: eligibility and biometric policy (see [`Policy`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    /// Minimum age in whole years.
    pub min_age: u8,
    /// Document kinds the lane accepts.
    pub allowed_documents: Vec<DocumentKind>,
    /// Whether passive authentication must be valid.
    pub require_passive_auth: bool,
    /// Score at or above which a comparison is a match (0..1).
    pub biometric_threshold: f32,
    /// Capture attempts before a referral.
    pub max_attempts: u8,
    /// Minimum minutiae of a usable capture.
    pub min_minutiae: u16,
    /// Minimum quality (0..100) of a usable capture.
    pub min_quality: u8,
}

impl Default for PolicySection {
    fn default() -> Self {
        let p = Policy::default();
        PolicySection {
            min_age: p.min_age,
            allowed_documents: p.allowed_documents,
            require_passive_auth: p.require_passive_auth,
            biometric_threshold: p.biometric_threshold,
            max_attempts: p.max_attempts,
            min_minutiae: p.min_minutiae,
            min_quality: p.min_quality,
        }
    }
}

/// `[lane]`: who may be in the mantrap with the traveller.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaneSection {
    /// One adult with one child (below the overhead sensor's child height threshold):
    /// `"allow"` (pass on the adult's clear decision) or `"refer"` (default: both to the
    /// counter). Anything else in the mantrap with the traveller is tailgating.
    pub accompanied_child: crate::party::ChildPolicy,
}

/// `[journal]`: where movement records are committed, and the disk guard of its file
/// system.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// SQLite file (created if missing; its directory must exist and be writable).
    pub path: PathBuf,
    /// Usage of the journal's file system, in percent, at or above which the
    /// `disk_space_low` alarm is raised (the gate still clears).
    #[serde(default = "default_disk_alarm_percent")]
    pub disk_alarm_percent: f64,
    /// Usage, in percent, at or above which the gate stops clearing: every traveller is
    /// referred before entry and the `disk_full` alarm is raised.
    #[serde(default = "default_disk_stop_clearing_percent")]
    pub disk_stop_clearing_percent: f64,
    /// How often the journal's file system is measured, in milliseconds.
    #[serde(default = "default_disk_check_ms")]
    pub disk_check_ms: u64,
}

fn default_disk_alarm_percent() -> f64 {
    DiskGuardConfig::default().alarm_percent
}
fn default_disk_stop_clearing_percent() -> f64 {
    DiskGuardConfig::default().stop_clearing_percent
}
fn default_disk_check_ms() -> u64 {
    5_000
}

/// Bounds of `journal.disk_check_ms`.
const DISK_CHECK_MS: (u64, u64) = (100, 60_000);

impl JournalSection {
    /// The thresholds of the disk guard.
    pub fn disk_guard(&self) -> DiskGuardConfig {
        DiskGuardConfig {
            alarm_percent: self.disk_alarm_percent,
            stop_clearing_percent: self.disk_stop_clearing_percent,
        }
    }

    /// The directory whose file system the disk guard measures (the journal's).
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// Problems of the disk guard's keys in `[journal]`.
fn disk_guard_problems(j: &JournalSection, bad: &mut impl FnMut(&str, String)) {
    let percent = |v: f64| v.is_finite() && v > 0.0 && v <= 100.0;
    let (alarm, stop) = (j.disk_alarm_percent, j.disk_stop_clearing_percent);
    if !percent(alarm) {
        bad(
            "journal.disk_alarm_percent",
            format!("{alarm} must be above 0 and at most 100"),
        );
    }
    if !percent(stop) {
        bad(
            "journal.disk_stop_clearing_percent",
            format!("{stop} must be above 0 and at most 100"),
        );
    }
    if percent(alarm) && percent(stop) && alarm >= stop {
        bad(
            "journal.disk_alarm_percent",
            format!("{alarm} must be below journal.disk_stop_clearing_percent ({stop})"),
        );
    }
    let (lo, hi) = DISK_CHECK_MS;
    if !(lo..=hi).contains(&j.disk_check_ms) {
        bad(
            "journal.disk_check_ms",
            format!("{} must be between {lo} and {hi}", j.disk_check_ms),
        );
    }
}

/// `[devices]`: one table per device.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesSection {
    /// `[devices.document]`.
    pub document: DocumentDevice,
    /// `[devices.fingerprint]`.
    pub fingerprint: FingerprintDevice,
    /// `[devices.io]`.
    pub io: IoDevice,
    /// `[devices.mrz]`: the page reader's OCR (absent: none; a PC/SC reader then takes
    /// its MRZ from `[devices.document] mrz_file`).
    pub mrz: Option<MrzDevice>,
}

impl DevicesSection {
    /// Whether any device is simulated, so that the simulated lane world must run.
    pub fn any_sim(&self) -> bool {
        self.document == DocumentDevice::Sim
            || self.fingerprint == FingerprintDevice::Sim
            || self.io == IoDevice::Sim
            || self.mrz == Some(MrzDevice::Sim)
    }

    /// Combinations of device kinds that cannot work together, as `(key, why)`: a
    /// simulated device never stands behind a real one, and a real device never serves
    /// the simulated lane's travellers.
    pub fn combination_problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let real_document = matches!(self.document, DocumentDevice::Pcsc { .. });
        if real_document {
            if self.fingerprint == FingerprintDevice::Sim {
                out.push((
                    "devices.fingerprint.kind",
                    "\"sim\" cannot serve a real document reader (devices.document.kind = \
                     \"pcsc\"): the simulated scanner has no traveller at a real reader; use \
                     a real scanner (\"serial\")"
                        .to_string(),
                ));
            }
            if self.io == IoDevice::Sim {
                out.push((
                    "devices.io.kind",
                    "\"sim\" cannot serve a real document reader (devices.document.kind = \
                     \"pcsc\"): the simulated lane's travellers do not carry the document on \
                     the real reader; use a real lane I/O (\"modbus\" or \"gpio\")"
                        .to_string(),
                ));
            }
        } else if self.fingerprint != FingerprintDevice::Sim {
            out.push((
                "devices.fingerprint.kind",
                "a real scanner needs a real document reader (devices.document.kind = \
                 \"pcsc\"): the simulated documents carry no thumbprint a live finger could \
                 match"
                    .to_string(),
            ));
        }
        let legacy_file = match &self.document {
            DocumentDevice::Pcsc { mrz_file, .. } => mrz_file.is_some(),
            DocumentDevice::Sim => false,
        };
        match (&self.mrz, real_document) {
            (Some(MrzDevice::Sim), true) => out.push((
                "devices.mrz.kind",
                "\"sim\" cannot key a real chip (devices.document.kind = \"pcsc\"): use the \
                 page reader's OCR (\"serial\") or, on a bench, \"file\""
                    .to_string(),
            )),
            (Some(MrzDevice::Serial { .. } | MrzDevice::File { .. }), false) => out.push((
                "devices.mrz.kind",
                "a real MRZ reader needs a real document reader (devices.document.kind = \
                 \"pcsc\"): the simulated documents are read by the simulated reader"
                    .to_string(),
            )),
            (Some(_), true) if legacy_file => out.push((
                "devices.document.mrz_file",
                "give the MRZ source once: [devices.mrz] or devices.document.mrz_file, \
                 not both"
                    .to_string(),
            )),
            (None, true) if !legacy_file => out.push((
                "devices.mrz",
                "a PC/SC reader needs the MRZ that keys the chip: add [devices.mrz] with \
                 kind = \"serial\" (the page reader's OCR) or kind = \"file\""
                    .to_string(),
            )),
            _ => {}
        }
        out
    }
}

/// `[devices.mrz]`: the page or swipe reader's OCR of the machine-readable zone, whose
/// read starts a transit and keys BAC/PACE (see `docs/mrz.md`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MrzDevice {
    /// The simulated lane's documents (the simulated reader reads them; nothing to add).
    Sim,
    /// An OCR reader sending the MRZ lines as ASCII on a serial or USB-CDC port.
    Serial {
        /// Device path, e.g. `/dev/ttyACM0`.
        port: PathBuf,
        /// Baud rate (ignored by USB-CDC readers).
        #[serde(default = "default_mrz_baud")]
        baud: u32,
        /// How the reader frames a read (`[devices.mrz.framing]`; defaults: lines ended by
        /// CR, LF or CR LF, no STX/ETX, no checksum, no CAN line).
        #[serde(default, deserialize_with = "framing_strict")]
        framing: device_drivers::mrz::framing::Framing,
    },
    /// A bench seam: the MRZ (lines, or `DOCNO,YYMMDD,YYMMDD`) typed into a file, read
    /// whenever a chip is placed on the reader.
    File {
        /// The file.
        path: PathBuf,
    },
}

/// A bench MRZ file must be a file name in an existing directory (it may appear later).
fn mrz_file_problem(f: &Path, key: &str, bad: &mut impl FnMut(&str, String)) {
    if f.as_os_str().is_empty() {
        bad(key, "must name a file".into());
    } else if f.is_dir() {
        bad(key, format!("{} is a directory, not a file", f.display()));
    } else {
        let dir = match f.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bad(key, format!("directory {} does not exist", dir.display()));
        }
    }
}

/// `[devices.mrz.framing]`, refusing unknown keys like every other table (the driver's
/// `Framing` accepts any, so that it can be flattened elsewhere).
fn framing_strict<'de, D>(d: D) -> Result<device_drivers::mrz::framing::Framing, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    const KEYS: &[&str] = &[
        "terminator",
        "stx_etx",
        "checksum",
        "read_can",
        "frame_gap_ms",
    ];
    let table = toml::Table::deserialize(d)?;
    if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(D::Error::unknown_field(k, KEYS));
    }
    device_drivers::mrz::framing::Framing::deserialize(table).map_err(D::Error::custom)
}

fn default_mrz_baud() -> u32 {
    9_600
}

/// `[devices.document]`: the document reader.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DocumentDevice {
    /// The simulator's reader (travellers from `[sim]`).
    #[default]
    Sim,
    /// A PC/SC reader through pcscd (ICAO 9303 chip reading; see `docs/card.md`).
    Pcsc {
        /// Reader name as pcscd lists it (a prefix is enough).
        reader: String,
        /// Directory of CSCA certificates (DER or PEM files) for passive authentication;
        /// absent = PA is `not_checked` (and the gate refers when PA is required).
        #[serde(default)]
        csca: Option<PathBuf>,
        /// File holding the MRZ (the lines, or `DOCNO,YYMMDD,YYMMDD`), read at every chip
        /// read to key BAC/PACE: the same as `[devices.mrz] kind = "file"` (a bench
        /// seam; a gate has `[devices.mrz] kind = "serial"`).
        #[serde(default)]
        mrz_file: Option<PathBuf>,
    },
}

/// `[devices.fingerprint]`: the fingerprint scanner.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FingerprintDevice {
    /// The simulator's scanner.
    #[default]
    Sim,
    /// A Suprema-style scanner on a serial port.
    Serial {
        /// Device path, e.g. `/dev/ttyUSB0`.
        port: PathBuf,
        /// Baud rate.
        #[serde(default = "default_baud")]
        baud: u32,
        /// How long a request waits for the scanner's reply, in ms (a scan waits
        /// `timeouts.capture_ms` on top).
        #[serde(default = "default_reply_timeout_ms")]
        reply_timeout_ms: u64,
        /// Requests resent after a corrupted reply before the scanner is faulted.
        #[serde(default = "default_retries")]
        retries: u32,
    },
}

fn default_baud() -> u32 {
    115_200
}

fn default_reply_timeout_ms() -> u64 {
    1_000
}

fn default_retries() -> u32 {
    2
}

/// `[devices.io]`: doors, sensors and emergency input.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum IoDevice {
    /// The simulator's lane.
    #[default]
    Sim,
    /// A Modbus TCP remote I/O module (register map: `docs/io.md`).
    Modbus {
        /// `HOST:PORT` of the module.
        address: String,
        /// Modbus unit (slave) id.
        #[serde(default = "default_unit_id")]
        unit_id: u8,
        /// Bound on each Modbus request, in milliseconds.
        #[serde(default = "default_modbus_timeout_ms")]
        timeout_ms: u64,
        /// Scan cycle (read inputs → logic → write outputs), in milliseconds.
        #[serde(default = "default_cycle_ms")]
        cycle_ms: u64,
        /// Consecutive equal scans before an input change counts.
        #[serde(default = "default_debounce_scans")]
        debounce_scans: u8,
        /// Pin map (`[devices.io.map]`); absent: the reference map.
        #[serde(default)]
        map: Option<device_drivers::io::IoMap>,
        /// Distance from the entry beam to the first mantrap beam, in metres (the beam
        /// body counter's geometry).
        #[serde(default = "default_first_mantrap_beam_m")]
        first_mantrap_beam_m: f64,
    },
    /// The Linux GPIO character device (feature `gpio`; see `docs/io.md`).
    Gpio {
        /// GPIO chip, e.g. `/dev/gpiochip0`.
        chip: PathBuf,
        /// Scan cycle (read inputs → logic → write outputs), in milliseconds.
        #[serde(default = "default_cycle_ms")]
        cycle_ms: u64,
        /// Consecutive equal scans before an input change counts.
        #[serde(default = "default_debounce_scans")]
        debounce_scans: u8,
        /// Pin map (`[devices.io.map]`; numbers are the chip's line offsets). Required in
        /// practice: the reference map numbers inputs and outputs from 0 each.
        #[serde(default)]
        map: Option<device_drivers::io::IoMap>,
        /// Distance from the entry beam to the first mantrap beam, in metres (the beam
        /// body counter's geometry).
        #[serde(default = "default_first_mantrap_beam_m")]
        first_mantrap_beam_m: f64,
    },
}

impl IoDevice {
    /// Where the beams the body counter uses lie (`first_mantrap_beam_m`; the reference
    /// lane's for the simulated lane, which reports no mantrap beams).
    pub fn beam_geometry(&self) -> crate::beamcount::BeamGeometry {
        match self {
            IoDevice::Modbus {
                first_mantrap_beam_m,
                ..
            }
            | IoDevice::Gpio {
                first_mantrap_beam_m,
                ..
            } => crate::beamcount::BeamGeometry {
                first_mantrap_m: *first_mantrap_beam_m,
            },
            IoDevice::Sim => crate::beamcount::BeamGeometry::default(),
        }
    }
}

fn default_first_mantrap_beam_m() -> f64 {
    crate::beamcount::BeamGeometry::default().first_mantrap_m
}

/// Problems of `devices.io.first_mantrap_beam_m`.
fn geometry_problems(io: &IoDevice, bad: &mut impl FnMut(&str, String)) {
    let m = io.beam_geometry().first_mantrap_m;
    let (lo, hi) = crate::beamcount::BeamGeometry::FIRST_MANTRAP_RANGE_M;
    if !(m.is_finite() && (lo..=hi).contains(&m)) {
        bad(
            "devices.io.first_mantrap_beam_m",
            format!("{m} must be a distance in metres between {lo} and {hi}"),
        );
    }
}

fn default_unit_id() -> u8 {
    1
}

fn default_modbus_timeout_ms() -> u64 {
    200
}

fn default_cycle_ms() -> u64 {
    device_drivers::io::DEFAULT_CYCLE_MS
}

fn default_debounce_scans() -> u8 {
    device_drivers::io::DEFAULT_DEBOUNCE_SCANS
}

/// Problems of the scan driver keys of a `gpio` lane I/O.
fn scan_problems(cycle_ms: u64, debounce_scans: u8, bad: &mut impl FnMut(&str, String)) {
    if !(1..=1_000).contains(&cycle_ms) {
        bad(
            "devices.io.cycle_ms",
            format!("{cycle_ms} must be in 1..=1000"),
        );
    }
    if debounce_scans == 0 {
        bad("devices.io.debounce_scans", "must be at least 1".into());
    }
}

/// `[matcher]`: the 1:1 fingerprint comparison.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MatcherSection {
    /// The simulator's matcher (understands simulated templates only).
    #[default]
    Sim,
    /// The ISO/IEC 19794-2 minutiae matcher.
    Minutiae,
}

/// `[sim]`: the simulated lane and its traveller stream.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSection {
    /// Seed of the traveller stream (same seed, same travellers).
    pub seed: u64,
    /// Mean gap between travellers arriving at the gate, in milliseconds of simulated time.
    pub mean_arrival_gap_ms: u64,
    /// Simulated time runs this many times faster than real time (1.0 = real time).
    pub speed: f64,
    /// Relative integer weights of traveller behaviours (`[sim.mix]`, behaviour names
    /// as in scenario files).
    pub mix: BTreeMap<Behaviour, u32>,
    /// Physical and timing model of the lane (`[sim.lane]`, see `device_drivers::sim::Params`).
    pub lane: SimParams,
}

impl Default for SimSection {
    fn default() -> Self {
        SimSection {
            seed: 1,
            mean_arrival_gap_ms: 4_000,
            speed: 1.0,
            mix: default_mix(),
            lane: SimParams::default(),
        }
    }
}

/// The default behaviour mix: mostly normal travellers, a few of every kind that ends
/// without an operator (holds and stubborn tailgaters need one, so they are left out).
pub fn default_mix() -> BTreeMap<Behaviour, u32> {
    [
        (Behaviour::Normal, 85),
        (Behaviour::Slow, 5),
        (Behaviour::WrongFinger, 2),
        (Behaviour::ExpiredDocument, 2),
        (Behaviour::WatchlistRefer, 1),
        (Behaviour::TurnsBack, 1),
        (Behaviour::Tailgater, 1),
        (Behaviour::NeverEnters, 1),
        (Behaviour::PoorQuality, 1),
        (Behaviour::UnreadableChip, 1),
    ]
    .into_iter()
    .collect()
}

/// `[watchlist]`: inline entries and/or the signed list store (`dir`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchlistSection {
    /// Version reported with every verdict of the inline entries.
    pub version: u64,
    /// Listed documents (inline).
    pub entries: Vec<WatchlistEntry>,
    /// Directory of the signed list store (absent: inline entries only).
    pub dir: Option<PathBuf>,
    /// Trusted Ed25519 public keys: 64 hex digits, or a key file path.
    pub trusted_keys: Vec<String>,
    /// Folder polled for signed snapshots and deltas.
    pub updates_dir: Option<PathBuf>,
    /// Seconds between polls of `updates_dir`.
    pub poll_interval_s: u64,
    /// Seconds after which a list is stale (the gate refers everyone).
    pub max_age_s: u64,
}

impl Default for WatchlistSection {
    fn default() -> Self {
        WatchlistSection {
            version: 0,
            entries: Vec::new(),
            dir: None,
            trusted_keys: Vec::new(),
            updates_dir: None,
            poll_interval_s: 30,
            max_age_s: 86_400,
        }
    }
}

/// One `[[watchlist.entries]]` item.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchlistEntry {
    /// Issuing state (ICAO three-letter code).
    pub issuing_state: String,
    /// Document number as in the MRZ.
    pub document_number: String,
    /// What to do on a hit.
    pub action: WatchlistAction,
    /// Reason code recorded with the verdict.
    pub reason: String,
}

/// What a watchlist hit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchlistAction {
    /// Send the traveller to the counter.
    Refer,
    /// Keep the doors shut and call an officer.
    Hold,
}

/// `[api]`: the HTTP API, operator console and traveller display (see `docs/api.md`).
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Listen address, e.g. `127.0.0.1:8080`; absent = no API.
    pub listen: Option<SocketAddr>,
    /// Users (`[[api.tokens]]`: `user`, `role`, `sha256` of the bearer token). None on a
    /// loopback address: one-time local tokens are made at start-up.
    pub tokens: Vec<crate::api::TokenEntry>,
    /// Base URLs of the other gates shown on this gate's console.
    pub peers: Vec<String>,
    /// Failed logins allowed at once from one address (default 5).
    pub login_burst: Option<u32>,
    /// Failed logins regained per minute per address (default 6).
    pub login_refill_per_minute: Option<u32>,
}

/// `[log]`: logging.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// Filter in `tracing` env-filter syntax (`info`, `gate_controller=debug,info`);
    /// `RUST_LOG` overrides it.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Json,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line (for journald and log shippers).
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

impl GateConfig {
    /// Reads, parses and validates the file at `path`. Relative paths inside the file
    /// (the journal) are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<GateConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = GateConfig::parse(&text, path)?;
        if let Some(dir) = path.parent() {
            let resolve = |p: &mut PathBuf| {
                if p.is_relative() && !p.as_os_str().is_empty() {
                    *p = dir.join(&*p);
                }
            };
            resolve(&mut cfg.journal.path);
            if let DocumentDevice::Pcsc { csca, mrz_file, .. } = &mut cfg.devices.document {
                if let Some(c) = csca {
                    resolve(c);
                }
                if let Some(f) = mrz_file {
                    resolve(f);
                }
            }
            match &mut cfg.devices.mrz {
                Some(MrzDevice::File { path }) => resolve(path),
                Some(MrzDevice::Serial { port, .. }) => resolve(port),
                _ => {}
            }
            if let FingerprintDevice::Serial { port, .. } = &mut cfg.devices.fingerprint {
                resolve(port);
            }
        }
        if let (Some(u), Some(dir)) = (cfg.upstream.as_mut(), path.parent()) {
            u.resolve_paths(dir);
        }
        if let Some(dir) = path.parent() {
            cfg.watchlist.resolve_paths(dir);
        }
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            });
        }
        Ok(cfg)
    }

    /// Parses `text` (named `origin` in errors) without validating values.
    pub fn parse(text: &str, origin: &Path) -> Result<GateConfig, ConfigError> {
        let de = toml::Deserializer::new(text);
        let cfg: GateConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let mut problem = inner.message().trim().to_string();
            if let Some(span) = inner.span() {
                let (line, col) = line_col(text, span.start);
                problem = format!("{problem} (line {line}, column {col})");
            }
            ConfigError::Syntax {
                path: origin.to_owned(),
                key: key_of(&key, &problem),
                problem,
            }
        })?;
        match extra_key_of_fieldless_kind(text) {
            Some((key, kind)) => Err(ConfigError::Syntax {
                path: origin.to_owned(),
                problem: format!("unknown key: kind = \"{kind}\" takes no other keys"),
                key,
            }),
            None => Ok(cfg),
        }
    }

    /// Every out-of-range or inconsistent value, with its key (empty = valid).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, problem: String| {
            out.push(Problem {
                key: key.into(),
                problem,
            })
        };
        let id = &self.gate.id;
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            bad(
                "gate.id",
                format!("{id:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'"),
            );
        }
        if self.gate.drain_timeout_ms == 0 {
            bad("gate.drain_timeout_ms", "must be greater than 0".into());
        }
        let p = &self.policy;
        if p.min_age > 120 {
            bad(
                "policy.min_age",
                format!("{} is not a plausible age", p.min_age),
            );
        }
        if p.allowed_documents.is_empty() {
            bad(
                "policy.allowed_documents",
                "must list at least one document kind".into(),
            );
        }
        if !(p.biometric_threshold.is_finite() && (0.0..=1.0).contains(&p.biometric_threshold)) {
            bad(
                "policy.biometric_threshold",
                format!("{} must be between 0 and 1", p.biometric_threshold),
            );
        }
        if !(1..=10).contains(&p.max_attempts) {
            bad(
                "policy.max_attempts",
                format!("{} must be between 1 and 10", p.max_attempts),
            );
        }
        if p.min_quality > 100 {
            bad(
                "policy.min_quality",
                format!("{} must be between 0 and 100", p.min_quality),
            );
        }
        if self.gate.lane == LaneKind::Resident
            && !p.allowed_documents.contains(&DocumentKind::IdCard)
        {
            bad(
                "policy.allowed_documents",
                "a resident lane must accept id_card (the resident ID card)".into(),
            );
        }
        let t = &self.timeouts;
        for (key, v) in [
            ("timeouts.document_read_ms", t.document_read_ms),
            ("timeouts.watchlist_ms", t.watchlist_ms),
            ("timeouts.enter_ms", t.enter_ms),
            ("timeouts.occupancy_ms", t.occupancy_ms),
            ("timeouts.capture_ms", t.capture_ms),
            ("timeouts.match_ms", t.match_ms),
            ("timeouts.journal_ms", t.journal_ms),
            ("timeouts.leave_ms", t.leave_ms),
            ("timeouts.door_travel_ms", t.door_travel_ms),
            ("timeouts.notice_ms", t.notice_ms),
            ("timeouts.beam_blocked_ms", t.beam_blocked_ms),
        ] {
            if v == 0 || v > 3_600_000 {
                bad(key, format!("{v} must be between 1 and 3600000 ms"));
            }
        }
        let j = &self.journal.path;
        if j.as_os_str().is_empty() {
            bad("journal.path", "must not be empty".into());
        } else if j.is_dir() {
            bad(
                "journal.path",
                format!("{} is a directory, not a file", j.display()),
            );
        } else {
            let dir = match j.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dir.is_dir() {
                bad(
                    "journal.path",
                    format!("directory {} does not exist", dir.display()),
                );
            }
        }
        if let DocumentDevice::Pcsc {
            reader,
            csca,
            mrz_file,
        } = &self.devices.document
        {
            if reader.trim().is_empty() {
                bad("devices.document.reader", "must name a PC/SC reader".into());
            }
            if let Some(dir) = csca {
                match device_drivers::card::pa::TrustStore::load_dir(dir) {
                    Ok(t) if t.anchors().is_empty() => bad(
                        "devices.document.csca",
                        format!("{} holds no CSCA certificate", dir.display()),
                    ),
                    Ok(_) => {}
                    Err(e) => bad(
                        "devices.document.csca",
                        format!("cannot load the trust store {}: {e}", dir.display()),
                    ),
                }
            }
            if let Some(f) = mrz_file {
                mrz_file_problem(f, "devices.document.mrz_file", &mut bad);
            }
        }
        match &self.devices.mrz {
            Some(MrzDevice::File { path }) => mrz_file_problem(path, "devices.mrz.path", &mut bad),
            Some(MrzDevice::Serial {
                port,
                baud,
                framing,
            }) => {
                let settings = device_drivers::mrz::serial::SerialMrzSettings {
                    port: port.clone(),
                    baud: *baud,
                    framing: framing.clone(),
                };
                if let Err(e) = settings.validate() {
                    let key = match e.field {
                        "port" | "baud" => format!("devices.mrz.{}", e.field),
                        f => format!("devices.mrz.framing.{f}"),
                    };
                    bad(&key, e.detail.clone());
                }
            }
            _ => {}
        }
        match &self.devices.fingerprint {
            FingerprintDevice::Serial { port, .. } if port.as_os_str().is_empty() => {
                bad("devices.fingerprint.port", "must name a serial port".into())
            }
            FingerprintDevice::Serial { baud, .. } if *baud == 0 => {
                bad("devices.fingerprint.baud", "must be greater than 0".into())
            }
            FingerprintDevice::Serial {
                reply_timeout_ms, ..
            } if !(10..=60_000).contains(reply_timeout_ms) => bad(
                "devices.fingerprint.reply_timeout_ms",
                format!("{reply_timeout_ms} must be between 10 and 60000"),
            ),
            FingerprintDevice::Serial { retries, .. } if *retries > 10 => bad(
                "devices.fingerprint.retries",
                format!("{retries} must be at most 10"),
            ),
            _ => {}
        }
        match &self.devices.io {
            IoDevice::Gpio { chip, .. } if chip.as_os_str().is_empty() => {
                bad("devices.io.chip", "must name a GPIO chip".into())
            }
            _ => {}
        }
        let s = &self.sim;
        if !(s.speed.is_finite() && s.speed > 0.0 && s.speed <= 1000.0) {
            bad(
                "sim.speed",
                format!("{} must be above 0 and at most 1000", s.speed),
            );
        }
        if s.mean_arrival_gap_ms == 0 {
            bad("sim.mean_arrival_gap_ms", "must be greater than 0".into());
        }
        if s.mix.values().all(|&w| w == 0) {
            bad(
                "sim.mix",
                "at least one behaviour needs a weight above 0".into(),
            );
        }
        match s.lane.validate() {
            Ok(()) => {}
            Err(device_drivers::sim::ParamsError::OutOfRange {
                key,
                value,
                expected,
            }) => bad(
                &format!("sim.lane.{key}"),
                format!("{value} must be {expected}"),
            ),
            Err(e) => bad("sim.lane", e.to_string()),
        }
        for (i, e) in self.watchlist.entries.iter().enumerate() {
            if e.issuing_state.len() != 3
                || !e
                    .issuing_state
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '<')
            {
                bad(
                    &format!("watchlist.entries[{i}].issuing_state"),
                    format!("{:?} must be a three-letter ICAO code", e.issuing_state),
                );
            }
            if e.document_number.is_empty()
                || e.document_number.len() > 22
                || !e.document_number.chars().all(|c| c.is_ascii_alphanumeric())
            {
                bad(
                    &format!("watchlist.entries[{i}].document_number"),
                    format!("{:?} must be 1 to 22 letters and digits", e.document_number),
                );
            }
        }
        disk_guard_problems(&self.journal, &mut bad);
        if let Some(u) = &self.upstream {
            for p in u.problems(&self.gate.id) {
                bad(&p.key, p.problem);
            }
        }
        for (key, problem) in crate::api::config::section_problems(&self.api) {
            bad(&key, problem);
        }
        for (key, problem) in crate::runtime::watchlist::config_problems(&self.watchlist) {
            bad(&key, problem);
        }
        geometry_problems(&self.devices.io, &mut bad);
        for (key, problem) in self.devices.combination_problems() {
            bad(key, problem);
        }
        if matches!(self.devices.document, DocumentDevice::Pcsc { .. })
            && self.matcher == MatcherSection::Sim
        {
            bad(
                "matcher.kind",
                "\"sim\" compares simulated templates only; a real scanner and real \
                 documents need kind = \"minutiae\""
                    .into(),
            );
        }
        if let IoDevice::Gpio {
            cycle_ms,
            debounce_scans,
            map,
            ..
        } = &self.devices.io
        {
            scan_problems(*cycle_ms, *debounce_scans, &mut bad);
            if let Some(problem) = crate::runtime::gpio::map_problem(map.as_ref()) {
                bad("devices.io.map", problem);
            }
        }
        if let IoDevice::Modbus {
            address,
            timeout_ms,
            cycle_ms,
            debounce_scans,
            ..
        } = &self.devices.io
        {
            let port = address.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
            if !matches!(port, Some((h, Ok(p))) if !h.is_empty() && p != 0) {
                bad(
                    "devices.io.address",
                    format!("{address:?} must be HOST:PORT with a port in 1..=65535"),
                );
            }
            if !(1..=10_000).contains(timeout_ms) {
                bad(
                    "devices.io.timeout_ms",
                    format!("{timeout_ms} must be in 1..=10000"),
                );
            }
            if !(1..=1_000).contains(cycle_ms) {
                bad(
                    "devices.io.cycle_ms",
                    format!("{cycle_ms} must be in 1..=1000"),
                );
            }
            if *debounce_scans == 0 {
                bad("devices.io.debounce_scans", "must be at least 1".into());
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            bad(
                "log.level",
                format!(
                    "{:?} is not a valid filter (e.g. \"info\", \"gate_controller=debug\")",
                    self.log.level
                ),
            );
        }
        out
    }

    /// Parts of the configuration that are valid but not implemented in this build:
    /// `(key, what)`. `gated` refuses to start while any remain.
    pub fn not_built(&self) -> Vec<(&'static str, &'static str)> {
        #[cfg_attr(all(feature = "pcsc", feature = "gpio"), allow(unused_mut))]
        let mut out = Vec::new();
        #[cfg(not(feature = "pcsc"))]
        if let DocumentDevice::Pcsc { .. } = self.devices.document {
            out.push((
                "devices.document.kind",
                "the PC/SC document reader (\"pcsc\"; build gated with `--features pcsc`)",
            ));
        }
        match self.devices.io {
            IoDevice::Modbus { .. } => {}
            #[cfg(not(feature = "gpio"))]
            IoDevice::Gpio { .. } => out.push((
                "devices.io.kind",
                "the GPIO lane I/O (\"gpio\"; build gated with `--features gpio`)",
            )),
            #[cfg(feature = "gpio")]
            IoDevice::Gpio { .. } => {}
            IoDevice::Sim => {}
        }
        out
    }

    /// The eligibility policy of the state machine.
    pub fn policy(&self) -> Policy {
        let p = &self.policy;
        Policy {
            lane: self.gate.lane,
            allowed_documents: p.allowed_documents.clone(),
            min_age: p.min_age,
            require_passive_auth: p.require_passive_auth,
            biometric_threshold: p.biometric_threshold,
            max_attempts: p.max_attempts,
            min_minutiae: p.min_minutiae,
            min_quality: p.min_quality,
        }
    }

    /// The state machine's configuration.
    pub fn machine_config(&self) -> machine::Config {
        machine::Config {
            policy: self.policy(),
            timeouts: self.timeouts.clone(),
            max_door_reversals: self.gate.max_door_reversals,
            accompanied_child: self.lane.accompanied_child,
            ..machine::Config::default()
        }
    }
}

/// 1-based line and column of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The dotted key of an error: the path serde reached, plus the unknown field's own name
/// when the problem is an unknown key (so `[gate] colour = 1` reports `gate.colour`).
fn key_of(path: &str, problem: &str) -> String {
    let unknown = problem
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    match (path, unknown) {
        (".", Some(field)) => field.to_string(),
        (p, Some(field)) if p != field && !p.ends_with(&format!(".{field}")) => {
            format!("{p}.{field}")
        }
        (p, _) => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[gate]
id = "gate-01"
lane = "visitor"
direction = "arrival"

[journal]
path = "journal.sqlite"
"#;

    fn parse(s: &str) -> Result<GateConfig, ConfigError> {
        GateConfig::parse(s, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.gate.id, "gate-01");
        assert_eq!(c.policy.min_age, 11);
        assert_eq!(c.policy.max_attempts, 3);
        assert_eq!(c.devices.document, DocumentDevice::Sim);
        assert_eq!(c.timeouts, Timeouts::default());
        let m = c.machine_config();
        assert_eq!(m.policy.lane, LaneKind::Visitor);
        assert_eq!(m.max_door_reversals, 3);
        assert!(c
            .problems()
            .iter()
            .all(|p| p.key == "journal.path" || p.key.is_empty()));
    }

    #[test]
    fn unknown_key_is_named_with_its_table() {
        let s = MINIMAL.replace(
            "direction = \"arrival\"",
            "direction = \"arrival\"\ncolour = \"red\"",
        );
        let e = parse(&s).unwrap_err();
        let ConfigError::Syntax { key, problem, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(key, "gate.colour");
        assert!(problem.contains("unknown field"), "{problem}");
        assert!(problem.contains("line 6"), "{problem}");
    }

    #[test]
    fn unknown_top_level_table_is_named() {
        let e = parse(&format!("{MINIMAL}\n[bogus]\nx = 1\n")).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Syntax { key, .. } if key == "bogus"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_nested_device_table_is_named() {
        let s = format!(
            "{MINIMAL}\n[devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:502\"\nspeed = 3\n"
        );
        let e = parse(&s).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("devices.io"), "{msg}");
        assert!(msg.contains("speed"), "{msg}");
    }

    #[test]
    fn keys_beside_a_kind_without_settings_are_unknown_keys() {
        for (table, kind, key) in [
            ("devices.io", "sim", "address"),
            ("devices.document", "sim", "reader"),
            ("devices.fingerprint", "sim", "port"),
            ("matcher", "minutiae", "threshold"),
            ("matcher", "sim", "x"),
        ] {
            let s = format!("{MINIMAL}\n[{table}]\nkind = \"{kind}\"\n{key} = 1\n");
            match parse(&s) {
                Err(ConfigError::Syntax {
                    key: k, problem, ..
                }) => {
                    assert_eq!(k, format!("{table}.{key}"));
                    assert!(problem.contains(kind), "{problem}");
                }
                other => panic!("{table}.{key} beside kind {kind}: {other:?}"),
            }
        }
        let s =
            format!("{MINIMAL}\n[devices.io]\nkind = \"sim\"\n[matcher]\nkind = \"minutiae\"\n");
        assert!(parse(&s).is_ok());
    }

    #[test]
    fn wrong_type_and_bad_enum_name_the_key() {
        let s = MINIMAL.replace("lane = \"visitor\"", "lane = \"vip\"");
        let msg = parse(&s).unwrap_err().to_string();
        assert!(msg.contains("gate.lane"), "{msg}");
        let s = format!("{MINIMAL}\n[policy]\nmin_age = \"eleven\"\n");
        let msg = parse(&s).unwrap_err().to_string();
        assert!(msg.contains("policy.min_age"), "{msg}");
    }

    #[test]
    fn out_of_range_values_are_problems_naming_the_key() {
        let s = format!(
            "{MINIMAL}\n[policy]\nbiometric_threshold = 1.5\nmax_attempts = 0\n[timeouts]\nenter_ms = 0\n"
        );
        let c = parse(&s).unwrap();
        let keys: Vec<String> = c.problems().into_iter().map(|p| p.key).collect();
        assert!(
            keys.contains(&"policy.biometric_threshold".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"policy.max_attempts".to_string()),
            "{keys:?}"
        );
        assert!(keys.contains(&"timeouts.enter_ms".to_string()), "{keys:?}");
    }

    #[test]
    fn disk_guard_keys_take_defaults_and_are_range_checked_by_name() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.journal.disk_guard(), DiskGuardConfig::default());
        assert_eq!(c.journal.disk_check_ms, 5_000);
        assert_eq!(c.journal.dir(), PathBuf::from("."));
        // Integers and floats both read as percentages.
        let journal = |keys: &str| {
            let s = MINIMAL.replace(
                "path = \"journal.sqlite\"",
                &format!("path = \"journal.sqlite\"\n{keys}"),
            );
            parse(&s)
        };
        let c = journal(
            "disk_alarm_percent = 70\ndisk_stop_clearing_percent = 92.5\ndisk_check_ms = 1000",
        )
        .unwrap();
        assert_eq!(
            c.journal.disk_guard(),
            DiskGuardConfig {
                alarm_percent: 70.0,
                stop_clearing_percent: 92.5
            }
        );
        assert_eq!(c.journal.disk_check_ms, 1_000);
        let problems = |keys: &str| {
            journal(keys)
                .unwrap()
                .problems()
                .into_iter()
                .filter(|p| p.key.starts_with("journal.disk"))
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        };
        assert!(problems("disk_alarm_percent = 1\ndisk_stop_clearing_percent = 100").is_empty());
        let p = problems("disk_alarm_percent = 95\ndisk_stop_clearing_percent = 90");
        assert_eq!(
            p,
            ["journal.disk_alarm_percent: 95 must be below journal.disk_stop_clearing_percent (90)"]
        );
        let p = problems("disk_alarm_percent = 90\ndisk_stop_clearing_percent = 90");
        assert_eq!(p.len(), 1, "{p:?}");
        let p = problems("disk_alarm_percent = 0\ndisk_stop_clearing_percent = 101");
        assert_eq!(
            p,
            [
                "journal.disk_alarm_percent: 0 must be above 0 and at most 100",
                "journal.disk_stop_clearing_percent: 101 must be above 0 and at most 100"
            ]
        );
        let p = problems("disk_alarm_percent = nan");
        assert_eq!(p.len(), 1, "{p:?}");
        for ms in [0, 99, 60_001] {
            let p = problems(&format!("disk_check_ms = {ms}"));
            assert_eq!(
                p,
                [format!(
                    "journal.disk_check_ms: {ms} must be between 100 and 60000"
                )]
            );
        }
        // Unknown keys are named.
        let e = journal("disk_alarm = 80").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Syntax { key, .. } if key == "journal.disk_alarm"),
            "{e}"
        );
    }

    #[test]
    fn devices_not_built_in_this_build_parse_and_are_listed() {
        let s = format!(
            "{MINIMAL}\n[devices.document]\nkind = \"pcsc\"\nreader = \"ACS\"\nmrz_file = \"mrz.txt\"\n[devices.fingerprint]\nkind = \"serial\"\nport = \"/dev/ttyUSB0\"\n[devices.io]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\n"
        );
        let c = parse(&s).unwrap();
        let keys: Vec<&str> = c.not_built().into_iter().map(|(k, _)| k).collect();
        let mut expected = Vec::new();
        if cfg!(not(feature = "gpio")) {
            expected.push("devices.io.kind");
        }
        if cfg!(not(feature = "pcsc")) {
            expected.insert(0, "devices.document.kind");
        }
        assert_eq!(keys, expected);
    }

    #[test]
    fn the_gpio_lane_keys_are_checked() {
        let io = "[devices.io]\nkind = \"gpio\"\nchip = \"/dev/gpiochip0\"\ncycle_ms = 0\ndebounce_scans = 0\n";
        let c = parse(&format!("{MINIMAL}\n{io}")).unwrap();
        let keys: Vec<String> = c.problems().into_iter().map(|p| p.key).collect();
        for k in [
            "devices.io.cycle_ms",
            "devices.io.debounce_scans",
            "devices.io.map",
        ] {
            assert!(keys.contains(&k.to_string()), "{k}: {keys:?}");
        }
        let e = parse(&format!("{MINIMAL}\n{io}line = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn the_serial_scanner_keys_are_checked() {
        let s = format!(
            "{MINIMAL}\n[devices.fingerprint]\nkind = \"serial\"\nport = \"/dev/ttyUSB0\"\nreply_timeout_ms = 0\nretries = 11\n[matcher]\nkind = \"minutiae\"\n"
        );
        let c = parse(&s).unwrap();
        assert!(c.not_built().is_empty(), "serial and minutiae are built");
        let keys: Vec<String> = c.problems().into_iter().map(|p| p.key).collect();
        assert!(
            keys.contains(&"devices.fingerprint.reply_timeout_ms".into()),
            "{keys:?}"
        );
        let s = format!(
            "{MINIMAL}\n[devices.fingerprint]\nkind = \"serial\"\nport = \"/dev/ttyUSB0\"\nparity = \"even\"\n"
        );
        let e = parse(&s).unwrap_err().to_string();
        assert!(e.contains("parity"), "{e}");
    }

    #[test]
    fn watchlist_entries_are_validated() {
        let s = format!(
            "{MINIMAL}\n[watchlist]\nversion = 3\n[[watchlist.entries]]\nissuing_state = \"UTO\"\ndocument_number = \"X1\"\naction = \"hold\"\nreason = \"interpol\"\n[[watchlist.entries]]\nissuing_state = \"utopia\"\ndocument_number = \"X 2\"\naction = \"refer\"\nreason = \"r\"\n"
        );
        let c = parse(&s).unwrap();
        assert_eq!(c.watchlist.entries[0].action, WatchlistAction::Hold);
        let keys: Vec<String> = c.problems().into_iter().map(|p| p.key).collect();
        assert!(
            keys.contains(&"watchlist.entries[1].issuing_state".into()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"watchlist.entries[1].document_number".into()),
            "{keys:?}"
        );
        let bad = s.replace("action = \"hold\"", "action = \"arrest\"");
        assert!(parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("watchlist.entries"));
    }

    #[test]
    fn load_resolves_the_journal_beside_the_file_and_checks_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gate.toml");
        std::fs::write(&p, MINIMAL).unwrap();
        let c = GateConfig::load(&p).unwrap();
        assert_eq!(c.journal.path, dir.path().join("journal.sqlite"));
        std::fs::write(
            &p,
            MINIMAL.replace("journal.sqlite", "missing/dir/j.sqlite"),
        )
        .unwrap();
        let e = GateConfig::load(&p).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { problems, .. } if problems[0].key == "journal.path"),
            "{e}"
        );
    }

    /// The devices besides a real document reader that make a valid all-real lane.
    const REAL_REST: &str = "[devices.fingerprint]\nkind = \"serial\"\nport = \"/dev/ttyS9\"\n\
        [devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:5502\"\n[matcher]\nkind = \"minutiae\"\n";

    #[test]
    fn mrz_framing_keys_are_read_and_unknown_ones_refused() {
        let ok = parse(&format!(
            "{MINIMAL}[devices.mrz]\nkind = \"serial\"\nport = \"/dev/ttyACM0\"\n\
             [devices.mrz.framing]\nterminator = \"cr\"\nread_can = true\n"
        ))
        .unwrap();
        let Some(MrzDevice::Serial { framing, baud, .. }) = &ok.devices.mrz else {
            panic!("{:?}", ok.devices.mrz)
        };
        assert!(framing.read_can);
        assert_eq!(*baud, 9600);
        let e = parse(&format!(
            "{MINIMAL}[devices.mrz]\nkind = \"serial\"\nport = \"/dev/ttyACM0\"\n\
             [devices.mrz.framing]\nterminater = \"cr\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("terminater"), "{e}");
    }

    #[test]
    fn pcsc_reader_keys_are_resolved_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gate.toml");
        let csca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pki/csca");
        let doc = format!(
            "{MINIMAL}\n[devices.document]\nkind = \"pcsc\"\nreader = \"Virtual PCD\"\ncsca = {:?}\nmrz_file = \"ocr/mrz.txt\"\n{REAL_REST}",
            csca.display().to_string()
        );
        std::fs::write(&p, &doc).unwrap();
        let e = GateConfig::load(&p).unwrap_err();
        assert!(e.to_string().contains("devices.document.mrz_file"), "{e}");
        std::fs::create_dir(dir.path().join("ocr")).unwrap();
        let c = GateConfig::load(&p).unwrap();
        let DocumentDevice::Pcsc { mrz_file, .. } = &c.devices.document else {
            panic!("{c:?}")
        };
        assert_eq!(*mrz_file, Some(dir.path().join("ocr/mrz.txt")));
        std::fs::write(&p, doc.replace(&csca.display().to_string(), "empty")).unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let e = GateConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("devices.document.csca") && e.contains("no CSCA"),
            "{e}"
        );
        let e = parse(&format!(
            "{MINIMAL}\n[devices.document]\nkind = \"pcsc\"\nreader = \"x\"\nmrz_file = \"m\"\ncsca_dir = \"x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("devices.document") && e.contains("csca_dir"),
            "{e}"
        );
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let e = GateConfig::load(Path::new("/nonexistent/gate.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }

    #[test]
    fn lane_accompanied_child_defaults_to_refer_and_is_validated() {
        use crate::party::ChildPolicy;
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.machine_config().accompanied_child, ChildPolicy::Refer);
        let c = parse(&format!(
            "{MINIMAL}\n[lane]\naccompanied_child = \"allow\"\n"
        ))
        .unwrap();
        assert_eq!(c.machine_config().accompanied_child, ChildPolicy::Allow);
        let msg = parse(&format!(
            "{MINIMAL}\n[lane]\naccompanied_child = \"maybe\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(msg.contains("lane.accompanied_child"), "{msg}");
        let msg = parse(&format!("{MINIMAL}\n[lane]\nchildren = 2\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("lane.children"), "{msg}");
    }

    #[test]
    fn first_mantrap_beam_m_is_read_and_checked() {
        let io = |extra: &str| {
            format!(
                "{MINIMAL}\n[devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:502\"\n{extra}"
            )
        };
        let c = parse(&io("")).unwrap();
        assert_eq!(c.devices.io.beam_geometry().first_mantrap_m, 0.625);
        let c = parse(&io("first_mantrap_beam_m = 0.8\n")).unwrap();
        assert_eq!(c.devices.io.beam_geometry().first_mantrap_m, 0.8);
        assert!(c
            .problems()
            .iter()
            .all(|p| !p.key.contains("first_mantrap")));
        for bad in ["0.05", "3.5", "-1.0", "nan", "inf"] {
            let c = parse(&io(&format!("first_mantrap_beam_m = {bad}\n"))).unwrap();
            let p = c.problems();
            assert!(
                p.iter().any(|p| p.key == "devices.io.first_mantrap_beam_m"
                    && p.problem.contains("between 0.1 and 3")),
                "{bad}: {p:?}"
            );
        }
        // The simulated lane reports no mantrap beams: its counter keeps the reference
        // lane's geometry.
        assert_eq!(
            parse(MINIMAL).unwrap().devices.io.beam_geometry(),
            crate::beamcount::BeamGeometry::default()
        );
    }
}
