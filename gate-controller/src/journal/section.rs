//! `[journal]` of the gate configuration: where movement records are committed, and the
//! disk guard of its file system.

use crate::disk::DiskGuardConfig;
use crate::problem::Problem;
use serde::Deserialize;
use std::path::PathBuf;

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

impl JournalSection {
    /// Every out-of-range value and unusable path of `[journal]`, with its key.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, problem: String| out.push(Problem::new(key, problem));
        let j = &self.path;
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
        disk_guard_problems(self, &mut bad);
        out
    }
}
