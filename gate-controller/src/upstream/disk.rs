//! The disk guard: how full the journal's file system is, and what the gate must do
//! about it. `gated` polls [`check`] every `[journal] disk_check_ms`
//! (`runtime::disk::DiskGuard`) and feeds each change of level to the state
//! machine: at [`DiskLevel::Alarm`] the `disk_space_low` alarm, at
//! [`DiskLevel::StopClearing`] the `disk_full` alarm and every new traveller referred,
//! so that a movement record can always still be written before a door opens.

pub use crate::disk::{classify, used_percent, DiskGuardConfig, DiskLevel};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
