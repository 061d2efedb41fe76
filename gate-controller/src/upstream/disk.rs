//! The disk guard: how full the journal's file system is, and what the gate must do
//! about it. `gated` polls [`check`] every `[journal] disk_check_ms`
//! ([`crate::runtime::disk::DiskGuard`]) and feeds each change of level to the state
//! machine: at [`DiskLevel::Alarm`] the `disk_space_low` alarm, at
//! [`DiskLevel::StopClearing`] the `disk_full` alarm and every new traveller referred,
//! so that a movement record can always still be written before a door opens.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Thresholds of the disk guard, in percent of the file system's capacity in use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskGuardConfig {
    /// Raise the disk alarm at or above this usage (default 80).
    #[serde(default = "d_alarm")]
    pub alarm_percent: f64,
    /// Stop clearing (refer everyone) at or above this usage (default 95).
    #[serde(default = "d_stop")]
    pub stop_clearing_percent: f64,
}

fn d_alarm() -> f64 {
    80.0
}
fn d_stop() -> f64 {
    95.0
}

impl Default for DiskGuardConfig {
    fn default() -> Self {
        DiskGuardConfig {
            alarm_percent: d_alarm(),
            stop_clearing_percent: d_stop(),
        }
    }
}

/// What the gate must do about the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskLevel {
    /// Nothing to do.
    Ok,
    /// Raise the disk alarm; keep clearing.
    Alarm,
    /// Raise the alarm and stop clearing: refer everyone.
    StopClearing,
}

/// One reading of the disk guard.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskStatus {
    /// Capacity in use, in percent (of the space available to unprivileged users, as `df`).
    pub used_percent: f64,
    /// Bytes still available to the gate's (unprivileged) process.
    pub available_bytes: u64,
    /// The verdict.
    pub level: DiskLevel,
}

/// Why the disk could not be measured.
#[derive(Debug, thiserror::Error)]
#[error("cannot measure the file system of {path}: {source}")]
pub struct DiskError {
    /// The path measured.
    pub path: String,
    /// The OS error.
    pub source: nix::Error,
}

/// The verdict for a usage, given the thresholds (pure; used by [`check`]).
pub fn classify(used_percent: f64, cfg: &DiskGuardConfig) -> DiskLevel {
    if used_percent >= cfg.stop_clearing_percent {
        DiskLevel::StopClearing
    } else if used_percent >= cfg.alarm_percent {
        DiskLevel::Alarm
    } else {
        DiskLevel::Ok
    }
}

/// Usage in percent as `df` computes it: used / (used + available to unprivileged users).
pub fn used_percent(total_blocks: u64, free_blocks: u64, avail_blocks: u64) -> f64 {
    let used = total_blocks.saturating_sub(free_blocks);
    let denom = used.saturating_add(avail_blocks);
    if denom == 0 {
        100.0
    } else {
        used as f64 * 100.0 / denom as f64
    }
}

/// Measures the file system holding `path` (the journal file or its directory).
pub fn check(path: &Path, cfg: &DiskGuardConfig) -> Result<DiskStatus, DiskError> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|source| DiskError {
        path: path.display().to_string(),
        source,
    })?;
    let frag = s.fragment_size() as u64;
    let pct = used_percent(
        s.blocks() as u64,
        s.blocks_free() as u64,
        s.blocks_available() as u64,
    );
    Ok(DiskStatus {
        used_percent: pct,
        available_bytes: (s.blocks_available() as u64).saturating_mul(frag),
        level: classify(pct, cfg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let c = DiskGuardConfig::default();
        assert_eq!(classify(0.0, &c), DiskLevel::Ok);
        assert_eq!(classify(79.9, &c), DiskLevel::Ok);
        assert_eq!(classify(80.0, &c), DiskLevel::Alarm);
        assert_eq!(classify(94.99, &c), DiskLevel::Alarm);
        assert_eq!(classify(95.0, &c), DiskLevel::StopClearing);
        assert_eq!(classify(100.0, &c), DiskLevel::StopClearing);
    }

    #[test]
    fn percent_like_df() {
        // 100 blocks, 30 free of which 20 available to users: 70 / 90 used.
        let p = used_percent(100, 30, 20);
        assert!((p - 77.777).abs() < 0.01, "{p}");
        assert_eq!(used_percent(0, 0, 0), 100.0);
        assert_eq!(used_percent(100, 100, 100), 0.0);
    }

    #[test]
    fn measures_a_real_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let s = check(dir.path(), &DiskGuardConfig::default()).unwrap();
        assert!((0.0..=100.0).contains(&s.used_percent));
        assert!(s.available_bytes > 0);
        assert_eq!(
            s.level,
            classify(s.used_percent, &DiskGuardConfig::default())
        );
        assert!(check(Path::new("/no/such/dir/x"), &DiskGuardConfig::default()).is_err());
    }
}
