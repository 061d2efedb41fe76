//! One problem of a configuration value: the dotted key and what is wrong with it.
//!
//! Every module that owns a section of the gate's configuration reports what is wrong
//! with it as [`Problem`]s; `config` gathers them for `gated --check`.

use std::fmt;

/// One validation problem: the dotted key and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `policy.biometric_threshold`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

impl Problem {
    /// A problem of `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}
