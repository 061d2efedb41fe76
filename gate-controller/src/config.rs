//! The gate's configuration file (TOML): parsing, validation and the mapping onto the
//! state machine's [`machine::Config`].
//!
//! Every table rejects unknown keys, and every error names the key (`policy.min_age`,
//! `devices.io.address`, ...) and the problem, so `gated --check` can tell an integrator
//! exactly what to fix. Every key is documented in `docs/configuration.md` and in
//! `configs/gate.example.toml`.

pub use crate::api::config::ApiSection;
use crate::decision::LaneKind;
pub use crate::decision::{Direction, PolicySection};
pub use crate::journal::section::JournalSection;
pub use crate::logging::{LogFormat, LogSection};
use crate::machine::{self, Timeouts};
pub use crate::party::LaneSection;
pub use crate::problem::Problem;
pub use crate::runtime::devices::section::{
    DevicesSection, DocumentDevice, FingerprintDevice, IoDevice, MrzDevice,
};
pub use crate::runtime::matcher::section::MatcherSection;
use crate::runtime::settings::GateSettings;
pub use crate::runtime::sim::section::SimSection;
pub use crate::runtime::watchlist::section::{WatchlistAction, WatchlistEntry, WatchlistSection};
use serde::Deserialize;
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

impl GateSection {
    /// Problems of `[gate]`, with their keys.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let id = &self.id;
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            out.push(Problem::new(
                "gate.id",
                format!("{id:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'"),
            ));
        }
        if self.drain_timeout_ms == 0 {
            out.push(Problem::new(
                "gate.drain_timeout_ms",
                "must be greater than 0",
            ));
        }
        out
    }
}

fn default_reversals() -> u8 {
    3
}
fn default_drain() -> u64 {
    60_000
}

impl GateConfig {
    /// Reads, parses and validates the file at `path`. Relative paths inside the file
    /// (the journal) are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<GateConfig, ConfigError> {
        GateConfig::load_settings(path).map(|(cfg, _)| cfg)
    }

    /// [`GateConfig::load`], also returning the validated settings the shell builds the
    /// gate from (the files they name, such as the CSCA trust store, read once here).
    pub fn load_settings(path: &Path) -> Result<(GateConfig, GateSettings), ConfigError> {
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
            cfg.devices.resolve_paths(dir);
        }
        if let (Some(u), Some(dir)) = (cfg.upstream.as_mut(), path.parent()) {
            u.resolve_paths(dir);
        }
        if let Some(dir) = path.parent() {
            cfg.watchlist.resolve_paths(dir);
        }
        match cfg.settings() {
            Ok(settings) => Ok((cfg, settings)),
            Err(problems) => Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            }),
        }
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
        self.settings().err().unwrap_or_default()
    }

    /// The validated settings of every section, or every problem with its key. Files the
    /// sections name (the CSCA trust store) are read here.
    pub fn settings(&self) -> Result<GateSettings, Vec<Problem>> {
        let mut out = self.gate.problems();
        out.extend(self.policy.problems(self.gate.lane));
        out.extend(self.timeouts.problems());
        out.extend(self.journal.problems());
        let devices = self.devices.settings();
        if let Err(p) = &devices {
            out.extend(p.iter().cloned());
        }
        out.extend(self.sim.problems());
        out.extend(self.watchlist.problems());
        if let Some(u) = &self.upstream {
            out.extend(u.problems(&self.gate.id));
        }
        out.extend(self.api.problems());
        if matches!(self.devices.document, DocumentDevice::Pcsc { .. })
            && self.matcher == MatcherSection::Sim
        {
            out.push(Problem::new(
                "matcher.kind",
                "\"sim\" compares simulated templates only; a real scanner and real \
                 documents need kind = \"minutiae\"",
            ));
        }
        out.extend(self.log.problems());
        match devices {
            Ok(devices) if out.is_empty() => Ok(GateSettings {
                gate_id: self.gate.id.clone(),
                machine: self.machine_config(),
                journal: self.journal.clone(),
                devices,
                matcher: self.matcher.clone(),
                sim: self.sim.clone(),
                watchlist: self.watchlist.clone(),
            }),
            _ => Err(out),
        }
    }

    /// Parts of the configuration that are valid but not implemented in this build:
    /// `(key, what)`. `gated` refuses to start while any remain.
    pub fn not_built(&self) -> Vec<(&'static str, &'static str)> {
        self.devices.not_built()
    }

    /// The eligibility policy of the state machine.
    pub fn policy(&self) -> crate::decision::Policy {
        self.policy.policy(self.gate.lane)
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
    fn unknown_journal_keys_are_named() {
        let s = MINIMAL.replace(
            "path = \"journal.sqlite\"",
            "path = \"journal.sqlite\"\ndisk_alarm = 80",
        );
        let e = parse(&s).unwrap_err();
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
}
