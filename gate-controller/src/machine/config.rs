//! The machine's configuration: the lane's policy and the deadline of every step.

use crate::decision::Policy;
use crate::party::ChildPolicy;
use serde::{Deserialize, Serialize};

/// Deadlines of every step, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Reading the chip after the document is presented.
    pub document_read_ms: u64,
    /// Watchlist verdict.
    pub watchlist_ms: u64,
    /// Traveller to enter once the entry is open (also the time allowed to resolve tailgating).
    pub enter_ms: u64,
    /// Exactly one occupant with the entry closed.
    pub occupancy_ms: u64,
    /// One fingerprint capture attempt.
    pub capture_ms: u64,
    /// One 1:1 comparison.
    pub match_ms: u64,
    /// Durable journal commit of a decision.
    pub journal_ms: u64,
    /// Traveller to leave the lane once told to (after that: a lingering alarm).
    pub leave_ms: u64,
    /// A door to reach its commanded position (after that: door fault).
    pub door_travel_ms: u64,
    /// How long a "go to the counter" notice stays up before the gate is ready again.
    pub notice_ms: u64,
    /// A threshold beam blocked this long while the gate is idle (doors closed, nobody
    /// counted) is taken for a failed sensor: out of service until `in_service`.
    pub beam_blocked_ms: u64,
}

impl Timeouts {
    /// Every deadline of `[timeouts]` out of 1..=3600000 ms, with its key.
    pub fn problems(&self) -> Vec<crate::problem::Problem> {
        let mut out = Vec::new();
        let mut bad =
            |key: &str, problem: String| out.push(crate::problem::Problem::new(key, problem));
        let t = self;
        for (key, v) in [
            ("timeouts.document_read_ms", t.document_read_ms),
            ("timeouts.watchlist_ms", t.watchlist_ms),
            ("timeouts.enter_ms", t.enter_ms),
            ("timeouts.occupancy_ms", t.occupancy_ms),
            ("timeouts.capture_ms", t.capture_ms),
            ("timeouts.match_ms", t.match_ms),
            ("timeouts.journal_ms", t.journal_ms),
            ("timeouts.leave_ms", t.leave_ms),
            ("timeouts.door_travel_ms", t.door_travel_ms),
            ("timeouts.notice_ms", t.notice_ms),
            ("timeouts.beam_blocked_ms", t.beam_blocked_ms),
        ] {
            if v == 0 || v > 3_600_000 {
                bad(key, format!("{v} must be between 1 and 3600000 ms"));
            }
        }
        out
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            document_read_ms: 8_000,
            watchlist_ms: 1_000,
            enter_ms: 15_000,
            occupancy_ms: 10_000,
            capture_ms: 8_000,
            match_ms: 2_000,
            journal_ms: 2_000,
            leave_ms: 20_000,
            door_travel_ms: 4_000,
            notice_ms: 3_000,
            beam_blocked_ms: 10_000,
        }
    }
}

/// Everything the core needs to know about its lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Eligibility and biometric policy.
    pub policy: Policy,
    /// Step deadlines.
    pub timeouts: Timeouts,
    /// How many times a closing door may be reversed by its safety sensor before the
    /// gate declares a door fault.
    pub max_door_reversals: u8,
    /// A threshold beam that stays clear through this many consecutive transits in which
    /// somebody walked through it is taken for a failed sensor (out of service). 0: off.
    pub beam_silent_transits: u8,
    /// One adult with one child in the mantrap: pass on the adult's clear decision
    /// (`allow`) or refer both to the counter (`refer`, the default).
    #[serde(default)]
    pub accompanied_child: ChildPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: Policy::default(),
            timeouts: Timeouts::default(),
            max_door_reversals: 3,
            beam_silent_transits: 3,
            accompanied_child: ChildPolicy::default(),
        }
    }
}
