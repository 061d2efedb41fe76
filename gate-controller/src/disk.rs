//! The disk guard's thresholds and levels (pure: no I/O). The journal's file system is
//! measured by `upstream::disk::check` (statvfs) in the shell; the state machine
//! gets each change of [`DiskLevel`].

use serde::{Deserialize, Serialize};

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
}
