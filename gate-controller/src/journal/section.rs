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

#[cfg(test)]
mod tests {
    use super::*;

    /// A document holding only `[journal]`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        journal: JournalSection,
    }

    /// `[journal]` with `path = "journal.sqlite"` and `keys`.
    fn journal(keys: &str) -> Result<Doc, toml::de::Error> {
        toml::from_str(&format!("[journal]\npath = \"journal.sqlite\"\n{keys}"))
    }

    #[test]
    fn disk_guard_keys_take_defaults_and_are_range_checked_by_name() {
        let c = journal("").unwrap();
        assert_eq!(c.journal.disk_guard(), DiskGuardConfig::default());
        assert_eq!(c.journal.disk_check_ms, 5_000);
        assert_eq!(c.journal.dir(), PathBuf::from("."));
        // Integers and floats both read as percentages.
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
                .journal
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
        // Unknown keys are refused.
        let e = journal("disk_alarm = 80").unwrap_err();
        assert!(e.to_string().contains("disk_alarm"), "{e}");
    }
}
