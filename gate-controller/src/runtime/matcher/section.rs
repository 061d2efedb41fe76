//! `[matcher]` of the gate configuration: which 1:1 fingerprint comparison runs.

use serde::Deserialize;

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
