//! `[watchlist]` of the gate configuration: inline entries and the signed list store.
//! Validated by [`super::WatchlistSection::problems`].

use serde::Deserialize;
use std::path::PathBuf;

/// `[watchlist]`: inline entries and/or the signed list store (`dir`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchlistSection {
    /// Version reported with every verdict of the inline entries.
    pub version: u64,
    /// Listed documents (inline).
    pub entries: Vec<WatchlistEntry>,
    /// Directory of the signed list store (absent: inline entries only).
    pub dir: Option<PathBuf>,
    /// Trusted Ed25519 public keys: 64 hex digits, or a key file path.
    pub trusted_keys: Vec<String>,
    /// Folder polled for signed snapshots and deltas.
    pub updates_dir: Option<PathBuf>,
    /// Seconds between polls of `updates_dir`.
    pub poll_interval_s: u64,
    /// Seconds after which a list is stale (the gate refers everyone).
    pub max_age_s: u64,
}

impl Default for WatchlistSection {
    fn default() -> Self {
        WatchlistSection {
            version: 0,
            entries: Vec::new(),
            dir: None,
            trusted_keys: Vec::new(),
            updates_dir: None,
            poll_interval_s: 30,
            max_age_s: 86_400,
        }
    }
}

/// One `[[watchlist.entries]]` item.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchlistEntry {
    /// Issuing state (ICAO three-letter code).
    pub issuing_state: String,
    /// Document number as in the MRZ.
    pub document_number: String,
    /// What to do on a hit.
    pub action: WatchlistAction,
    /// Reason code recorded with the verdict.
    pub reason: String,
}

/// What a watchlist hit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchlistAction {
    /// Send the traveller to the counter.
    Refer,
    /// Keep the doors shut and call an officer.
    Hold,
}
