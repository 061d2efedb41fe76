//! `[log]` of the gate configuration: the filter and format of `gated`'s log, and setting
//! up the subscriber from it.

use crate::problem::Problem;
use serde::Deserialize;

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

impl LogSection {
    /// A `level` that is not a valid filter, with its key.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, problem: String| out.push(Problem::new(key, problem));
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            bad(
                "log.level",
                format!(
                    "{:?} is not a valid filter (e.g. \"info\", \"gate_controller=debug\")",
                    self.level
                ),
            );
        }
        out
    }
}
