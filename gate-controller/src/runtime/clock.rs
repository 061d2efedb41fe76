//! Time for the shell: tokio's monotonic clock mapped once onto the wall clock.
//!
//! The state machine takes [`Time`] (Unix milliseconds) as an input. `gated` reads the
//! wall clock exactly once, at start-up, and from then on counts tokio's monotonic
//! [`Instant`]: the machine's time never goes backwards when NTP steps the system clock,
//! and `tokio::time::pause()` drives it in tests.

use crate::types::Time;
use tokio::time::Instant;

/// A source of "now" for the shell's core (injectable for tests and benches).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Time;

    /// Blocks the caller for `ms` (a stalled disk write holds the shell up this long).
    /// Real clocks sleep; a virtual clock moves on by `ms`.
    fn block(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// A clock the driver sets: virtual time for `gate-sim run`, campaigns and tests. Clones
/// share the same time. It never goes backwards: setting an earlier time is ignored.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl VirtualClock {
    /// A clock that reads `t`.
    pub fn at(t: Time) -> VirtualClock {
        VirtualClock(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(t.0)))
    }

    /// Moves the clock on to `t` (no-op if it already reads later).
    pub fn advance_to(&self, t: Time) {
        self.0.fetch_max(t.0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Time {
        Time(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn block(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The wall clock as of start-up, advanced by the monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicWallClock {
    origin: Instant,
    origin_ms: u64,
}

impl MonotonicWallClock {
    /// Reads the system clock once and anchors the monotonic clock to it.
    pub fn start() -> MonotonicWallClock {
        let origin_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        MonotonicWallClock::anchored(Instant::now(), origin_ms)
    }

    /// A clock that reads `origin_ms` at `origin`.
    pub fn anchored(origin: Instant, origin_ms: u64) -> MonotonicWallClock {
        MonotonicWallClock { origin, origin_ms }
    }

    /// The monotonic instant at which this clock reads `t` (now, if `t` is in the past
    /// before the anchor).
    pub fn instant_at(&self, t: Time) -> Instant {
        let ms = t.0.saturating_sub(self.origin_ms);
        self.origin + std::time::Duration::from_millis(ms)
    }
}

impl Clock for MonotonicWallClock {
    fn now(&self) -> Time {
        Time(
            self.origin_ms
                .saturating_add(self.origin.elapsed().as_millis() as u64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn time_follows_the_monotonic_clock_from_the_anchor() {
        let c = MonotonicWallClock::anchored(Instant::now(), 1_000_000);
        assert_eq!(c.now(), Time(1_000_000));
        tokio::time::advance(std::time::Duration::from_millis(1_500)).await;
        assert_eq!(c.now(), Time(1_001_500));
        assert_eq!(
            c.instant_at(Time(1_002_000)) - Instant::now(),
            std::time::Duration::from_millis(500)
        );
    }

    #[test]
    fn a_virtual_clock_only_moves_forward_and_a_stall_moves_it_on() {
        let c = VirtualClock::at(Time(1_000));
        let shared = c.clone();
        c.advance_to(Time(1_500));
        c.advance_to(Time(1_200));
        assert_eq!(shared.now(), Time(1_500));
        shared.block(250);
        assert_eq!(c.now(), Time(1_750));
    }
}
