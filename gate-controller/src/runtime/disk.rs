//! The disk guard in `gated`: measures the journal's file system
//! ([`crate::upstream::disk::check`], statvfs) every `[journal] disk_check_ms`, off the
//! gate loop, and feeds each *change* of level to the core as [`Input::DiskLevel`]. The
//! machine raises `disk_space_low` at `Alarm`, raises `disk_full` and refers every new
//! traveller at `StopClearing`, and clears both at `Ok`.
//!
//! A file system that cannot be measured counts as `StopClearing` (the error is logged
//! and goes into the alarm's detail): the gate must never clear somebody whose record
//! might not fit.

use super::core::Input;
use crate::journal::section::JournalSection;
use crate::upstream::disk::{self, DiskError, DiskGuardConfig, DiskLevel, DiskStatus};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// The disk guard of one gate: where to measure, the thresholds, how often, and the
/// level last reported to the core.
#[derive(Clone, Debug)]
pub struct DiskGuard {
    dir: PathBuf,
    cfg: DiskGuardConfig,
    every: Duration,
    /// The level the core knows (it starts at `Ok`).
    reported: DiskLevel,
    /// The last measurement error logged (logged again only when it changes).
    last_error: Option<String>,
    /// How a measurement is taken ([`disk::check`]; a slow one in tests).
    probe: Probe,
}

/// One measurement of the file system holding a path.
type Probe = fn(&std::path::Path, &DiskGuardConfig) -> Result<DiskStatus, DiskError>;

impl DiskGuard {
    /// A guard for the file system of `dir`.
    pub fn new(dir: PathBuf, cfg: DiskGuardConfig, every: Duration) -> DiskGuard {
        DiskGuard {
            dir,
            cfg,
            every,
            reported: DiskLevel::Ok,
            last_error: None,
            probe: disk::check,
        }
    }

    /// The guard `[journal]` configures: the journal's directory, its thresholds and
    /// `disk_check_ms`.
    pub fn from_config(journal: &JournalSection) -> DiskGuard {
        DiskGuard::new(
            journal.dir(),
            journal.disk_guard(),
            Duration::from_millis(journal.disk_check_ms),
        )
    }

    /// Measures now (blocking: a statvfs call) and answers the input for the core if the
    /// level changed.
    pub fn poll(&mut self) -> Option<Input> {
        let reading = (self.probe)(&self.dir, &self.cfg);
        self.step(reading)
    }

    /// Folds one measurement in: the input for the core if the level changed.
    pub fn step(&mut self, reading: Result<DiskStatus, DiskError>) -> Option<Input> {
        let (level, detail) = match reading {
            Ok(s) => {
                self.last_error = None;
                let detail = format!(
                    "journal file system {:.1} % used, {} MB available (alarm at {} %, referring everyone at {} %)",
                    s.used_percent,
                    s.available_bytes / 1_000_000,
                    hundredths(self.cfg.alarm_percent),
                    hundredths(self.cfg.stop_clearing_percent)
                );
                (s.level, detail)
            }
            Err(e) => {
                let detail = format!("{e}: travellers are referred until it can be measured");
                if self.last_error.as_deref() != Some(detail.as_str()) {
                    tracing::error!(error = %e, "disk guard: cannot measure the journal's file system");
                    self.last_error = Some(detail.clone());
                }
                (DiskLevel::StopClearing, detail)
            }
        };
        if level == self.reported {
            return None;
        }
        match level {
            DiskLevel::Ok => tracing::info!(%detail, "disk guard: ok"),
            DiskLevel::Alarm => tracing::warn!(%detail, "disk guard: disk space low"),
            DiskLevel::StopClearing => {
                tracing::error!(%detail, "disk guard: disk full, travellers are referred")
            }
        }
        self.reported = level;
        Some(Input::DiskLevel { level, detail })
    }

    /// Measures every `disk_check_ms` (the first time one interval from now: `Gate::build`
    /// measured already) and sends level changes to `tx` until it closes.
    ///
    /// A measurement still unanswered after one interval (a hung network mount, say)
    /// counts as a failed one (`ETIMEDOUT`: travellers are referred); it is awaited again
    /// at the next tick rather than started a second time.
    pub async fn run(mut self, tx: mpsc::UnboundedSender<Input>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut pending = None;
        loop {
            tick.tick().await;
            let (dir, cfg, probe) = (self.dir.clone(), self.cfg, self.probe);
            let measuring = pending
                .get_or_insert_with(|| tokio::task::spawn_blocking(move || probe(&dir, &cfg)));
            let reading = match tokio::time::timeout(self.every, measuring).await {
                Err(_elapsed) => Err(DiskError {
                    path: self.dir.display().to_string(),
                    source: nix::errno::Errno::ETIMEDOUT,
                }),
                Ok(joined) => {
                    pending = None;
                    match joined {
                        Ok(reading) => reading,
                        Err(_) => continue,
                    }
                }
            };
            if let Some(input) = self.step(reading) {
                if tx.send(input).is_err() {
                    return;
                }
            }
        }
    }
}

/// `x` rounded to two decimals (a threshold for the alarm's detail: `80`, `92.5`).
fn hundredths(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(used_percent: f64, cfg: &DiskGuardConfig) -> Result<DiskStatus, DiskError> {
        Ok(DiskStatus {
            used_percent,
            available_bytes: 1 << 30,
            level: disk::classify(used_percent, cfg),
        })
    }

    fn level(input: Option<Input>) -> Option<DiskLevel> {
        match input {
            Some(Input::DiskLevel { level, .. }) => Some(level),
            Some(other) => panic!("not a disk level: {other:?}"),
            None => None,
        }
    }

    #[test]
    fn only_level_changes_reach_the_core() {
        let cfg = DiskGuardConfig::default();
        let mut g = DiskGuard::new(PathBuf::from("."), cfg, Duration::from_secs(5));
        assert_eq!(level(g.step(reading(10.0, &cfg))), None, "Ok is the start");
        assert_eq!(level(g.step(reading(81.0, &cfg))), Some(DiskLevel::Alarm));
        assert_eq!(level(g.step(reading(82.0, &cfg))), None);
        assert_eq!(
            level(g.step(reading(96.0, &cfg))),
            Some(DiskLevel::StopClearing)
        );
        assert_eq!(level(g.step(reading(99.0, &cfg))), None);
        assert_eq!(level(g.step(reading(50.0, &cfg))), Some(DiskLevel::Ok));
        assert_eq!(level(g.step(reading(50.0, &cfg))), None);
    }

    #[test]
    fn a_file_system_that_cannot_be_measured_stops_clearing() {
        let cfg = DiskGuardConfig::default();
        let mut g = DiskGuard::new(
            PathBuf::from("/no/such/dir/for/the/journal"),
            cfg,
            Duration::from_secs(5),
        );
        match g.poll() {
            Some(Input::DiskLevel { level, detail }) => {
                assert_eq!(level, DiskLevel::StopClearing);
                assert!(detail.contains("/no/such/dir/for/the/journal"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert!(g.poll().is_none(), "still failing: no change");
        let err = Err(DiskError {
            path: "x".into(),
            source: nix::errno::Errno::EIO,
        });
        assert!(g.step(err).is_none(), "another error: same level");
        assert_eq!(level(g.step(reading(10.0, &cfg))), Some(DiskLevel::Ok));
    }

    #[test]
    fn a_real_file_system_is_measured_against_the_thresholds() {
        let dir = tempfile::tempdir().expect("dir");
        let used = disk::check(dir.path(), &DiskGuardConfig::default())
            .expect("statvfs")
            .used_percent;
        assert!(used > 0.0 && used < 100.0, "{used}");
        // Both thresholds below the usage: stop clearing; both above: nothing to say.
        let low = DiskGuardConfig {
            alarm_percent: used / 4.0,
            stop_clearing_percent: used / 2.0,
        };
        let mut g = DiskGuard::new(dir.path().to_owned(), low, Duration::from_secs(5));
        assert_eq!(level(g.poll()), Some(DiskLevel::StopClearing));
        let high = DiskGuardConfig {
            alarm_percent: used + (100.0 - used) / 2.0,
            stop_clearing_percent: 100.0,
        };
        let mut g = DiskGuard::new(dir.path().to_owned(), high, Duration::from_secs(5));
        assert_eq!(level(g.poll()), None);
    }

    /// A measurement that takes 400 ms the first time (every 50 ms): it times out, the
    /// gate stops clearing, and when it answers the level follows the answer. The hung
    /// call is not started again meanwhile.
    #[tokio::test]
    async fn a_measurement_that_hangs_stops_clearing_until_it_answers() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CALLS: AtomicU32 = AtomicU32::new(0);
        fn slow_once(_: &std::path::Path, cfg: &DiskGuardConfig) -> Result<DiskStatus, DiskError> {
            if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(400));
            }
            Ok(DiskStatus {
                used_percent: 10.0,
                available_bytes: 1 << 30,
                level: disk::classify(10.0, cfg),
            })
        }
        let mut g = DiskGuard::new(
            PathBuf::from("/journal"),
            DiskGuardConfig::default(),
            Duration::from_millis(50),
        );
        g.probe = slow_once;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(g.run(tx));
        let wait = Duration::from_secs(10);
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(Input::DiskLevel { level, detail })) => {
                assert_eq!(level, DiskLevel::StopClearing);
                assert!(detail.contains("/journal"), "{detail}");
                assert!(detail.to_lowercase().contains("timed out"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            CALLS.load(Ordering::SeqCst),
            1,
            "no second call while one hangs"
        );
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(Input::DiskLevel { level, .. })) => assert_eq!(level, DiskLevel::Ok),
            other => panic!("{other:?}"),
        }
        task.abort();
    }
}
