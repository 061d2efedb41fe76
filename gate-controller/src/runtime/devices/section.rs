//! `[devices.*]` of the gate configuration: which implementation each device uses and
//! its settings, validated into [`DeviceSettings`] (with the CSCA trust store of a PC/SC
//! reader loaded once, here, and shared with the reader).

use crate::beamcount::BeamGeometry;
use crate::problem::Problem;
use device_drivers::card::pa::TrustStore;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    pub fn beam_geometry(&self) -> BeamGeometry {
        match self {
            IoDevice::Modbus {
                first_mantrap_beam_m,
                ..
            }
            | IoDevice::Gpio {
                first_mantrap_beam_m,
                ..
            } => BeamGeometry {
                first_mantrap_m: *first_mantrap_beam_m,
            },
            IoDevice::Sim => BeamGeometry::default(),
        }
    }
}

fn default_first_mantrap_beam_m() -> f64 {
    BeamGeometry::default().first_mantrap_m
}

/// Problems of `devices.io.first_mantrap_beam_m`.
fn geometry_problems(io: &IoDevice, bad: &mut impl FnMut(&str, String)) {
    let m = io.beam_geometry().first_mantrap_m;
    let (lo, hi) = BeamGeometry::FIRST_MANTRAP_RANGE_M;
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

/// The devices of `[devices]`, validated, with the CSCA trust store loaded.
#[derive(Clone, Debug)]
pub struct DeviceSettings {
    /// The tables as written (paths resolved).
    pub section: DevicesSection,
    /// The trust store of `[devices.document] csca` (absent: passive authentication is
    /// `not_checked`), loaded once when the configuration was validated.
    pub csca: Option<Arc<TrustStore>>,
}

impl DevicesSection {
    /// Makes the device paths (`csca`, `mrz_file`, MRZ and scanner ports) relative to
    /// `dir` (the directory of the configuration file).
    pub fn resolve_paths(&mut self, dir: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        };
        if let DocumentDevice::Pcsc { csca, mrz_file, .. } = &mut self.document {
            if let Some(c) = csca {
                resolve(c);
            }
            if let Some(f) = mrz_file {
                resolve(f);
            }
        }
        match &mut self.mrz {
            Some(MrzDevice::File { path }) => resolve(path),
            Some(MrzDevice::Serial { port, .. }) => resolve(port),
            _ => {}
        }
        if let FingerprintDevice::Serial { port, .. } = &mut self.fingerprint {
            resolve(port);
        }
    }

    /// Every unusable value of `[devices.*]`, with its key (empty = valid).
    pub fn problems(&self) -> Vec<Problem> {
        self.settings().err().unwrap_or_default()
    }

    /// The validated devices (loading the CSCA trust store), or every problem with its key.
    pub fn settings(&self) -> Result<DeviceSettings, Vec<Problem>> {
        let mut out = Vec::new();
        let mut trust = None;
        let mut bad = |key: &str, problem: String| out.push(Problem::new(key, problem));
        if let DocumentDevice::Pcsc {
            reader,
            csca,
            mrz_file,
        } = &self.document
        {
            if reader.trim().is_empty() {
                bad("devices.document.reader", "must name a PC/SC reader".into());
            }
            if let Some(dir) = csca {
                match TrustStore::load_dir(dir) {
                    Ok(t) if t.anchors().is_empty() => bad(
                        "devices.document.csca",
                        format!("{} holds no CSCA certificate", dir.display()),
                    ),
                    Ok(t) => trust = Some(Arc::new(t)),
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
        match &self.mrz {
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
        match &self.fingerprint {
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
        match &self.io {
            IoDevice::Gpio { chip, .. } if chip.as_os_str().is_empty() => {
                bad("devices.io.chip", "must name a GPIO chip".into())
            }
            _ => {}
        }
        geometry_problems(&self.io, &mut bad);
        for (key, problem) in self.combination_problems() {
            bad(key, problem);
        }
        if let IoDevice::Gpio {
            cycle_ms,
            debounce_scans,
            map,
            ..
        } = &self.io
        {
            scan_problems(*cycle_ms, *debounce_scans, &mut bad);
            if let Some(problem) = map_problem(map.as_ref()) {
                bad("devices.io.map", problem);
            }
        }
        if let IoDevice::Modbus {
            address,
            timeout_ms,
            cycle_ms,
            debounce_scans,
            ..
        } = &self.io
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
        if out.is_empty() {
            Ok(DeviceSettings {
                section: self.clone(),
                csca: trust,
            })
        } else {
            Err(out)
        }
    }

    /// Parts of `[devices]` that are valid but not implemented in this build:
    /// `(key, what)`. `gated` refuses to start while any remain.
    pub fn not_built(&self) -> Vec<(&'static str, &'static str)> {
        #[cfg_attr(all(feature = "pcsc", feature = "gpio"), allow(unused_mut))]
        let mut out = Vec::new();
        #[cfg(not(feature = "pcsc"))]
        if let DocumentDevice::Pcsc { .. } = self.document {
            out.push((
                "devices.document.kind",
                "the PC/SC document reader (\"pcsc\"; build gated with `--features pcsc`)",
            ));
        }
        match self.io {
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
}

/// Why the pin map of a `kind = "gpio"` lane I/O cannot be used, if it cannot: none
/// given (the reference map numbers inputs and outputs from 0 each, which collide on one
/// chip), or a line used as both an input and an output. `None` without the `gpio`
/// feature (`gated` then refuses the kind as not built).
pub fn map_problem(map: Option<&device_drivers::io::IoMap>) -> Option<String> {
    let Some(_map) = map else {
        return Some(
            "a GPIO lane needs its own pin map ([devices.io.map.inputs] and \
             [devices.io.map.outputs] with the chip's line offsets): the reference map \
             numbers inputs and outputs from 0 each, which collide on one chip"
                .into(),
        );
    };
    #[cfg(feature = "gpio")]
    if let Err(e) = device_drivers::io::gpio::line_plan(_map) {
        return Some(e.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document holding only `[devices.*]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        devices: DevicesSection,
    }

    fn parse(text: &str) -> Result<DevicesSection, toml::de::Error> {
        toml::from_str::<Doc>(text).map(|d| d.devices)
    }

    #[test]
    fn first_mantrap_beam_m_is_read_and_checked() {
        let io = |extra: &str| {
            format!("[devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:502\"\n{extra}")
        };
        let c = parse(&io("")).unwrap();
        assert_eq!(c.io.beam_geometry().first_mantrap_m, 0.625);
        let c = parse(&io("first_mantrap_beam_m = 0.8\n")).unwrap();
        assert_eq!(c.io.beam_geometry().first_mantrap_m, 0.8);
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
            parse("").unwrap().io.beam_geometry(),
            BeamGeometry::default()
        );
    }

    /// The CSCA trust store is loaded by validation and carried in the settings, so the
    /// PC/SC reader takes it from there instead of reading the directory again.
    #[test]
    fn settings_carry_the_loaded_trust_store() {
        let csca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pki/csca");
        let text = |csca: &str| {
            format!(
                "[devices.document]\nkind = \"pcsc\"\nreader = \"Virtual PCD\"\n{csca}\
                 [devices.mrz]\nkind = \"file\"\npath = \"mrz.txt\"\n\
                 [devices.fingerprint]\nkind = \"serial\"\nport = \"/dev/ttyS9\"\n\
                 [devices.io]\nkind = \"modbus\"\naddress = \"127.0.0.1:5502\"\n"
            )
        };
        let d = parse(&text(&format!("csca = {:?}\n", csca.display().to_string()))).unwrap();
        let s = d.settings().expect("valid devices");
        let trust = s.csca.expect("the trust store is loaded");
        assert!(!trust.anchors().is_empty());
        let d = parse(&text("")).unwrap();
        assert!(d.settings().expect("valid devices").csca.is_none());
        let d = parse(&text("csca = \"/nonexistent/csca\"\n")).unwrap();
        let p = d
            .settings()
            .expect_err("an unreadable trust store is a problem");
        assert_eq!(p[0].key, "devices.document.csca", "{p:?}");
    }
}
