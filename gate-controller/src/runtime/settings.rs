//! What the shell needs to build a gate, validated: made from the configuration file by
//! `config::GateConfig::settings` (or put together by tests and the simulator).

use super::devices::section::DeviceSettings;
use super::matcher::section::MatcherSection;
use super::sim::section::SimSection;
use super::watchlist::section::WatchlistSection;
use crate::journal::section::JournalSection;
use crate::machine;

/// The validated settings of one gate, as `Gate::build` and `devices::build` take them.
#[derive(Clone, Debug)]
pub struct GateSettings {
    /// Gate id (journal, upstream, console).
    pub gate_id: String,
    /// The state machine's configuration.
    pub machine: machine::Config,
    /// The journal and its disk guard.
    pub journal: JournalSection,
    /// The devices, with the CSCA trust store loaded.
    pub devices: DeviceSettings,
    /// The fingerprint matcher.
    pub matcher: MatcherSection,
    /// The simulated lane (for `kind = "sim"` devices).
    pub sim: SimSection,
    /// The watchlist.
    pub watchlist: WatchlistSection,
}

/// The settings of a test gate from a TOML text with `[gate] id`, `[journal]` and
/// optionally `[devices.*]` (everything else at its default).
#[cfg(test)]
pub(crate) fn from_toml(text: &str) -> GateSettings {
    use super::devices::section::DevicesSection;
    #[derive(serde::Deserialize)]
    struct Doc {
        gate: toml::Table,
        journal: JournalSection,
        #[serde(default)]
        devices: DevicesSection,
    }
    let doc: Doc = toml::from_str(text).expect("test settings parse");
    let problems = doc.journal.problems();
    assert!(problems.is_empty(), "{problems:?}");
    GateSettings {
        gate_id: doc
            .gate
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("g")
            .to_owned(),
        machine: machine::Config::default(),
        journal: doc.journal,
        devices: doc.devices.settings().expect("valid devices"),
        matcher: MatcherSection::default(),
        sim: SimSection::default(),
        watchlist: WatchlistSection::default(),
    }
}
