//! The watchlist as the shell consults it for `Action::CheckWatchlist`.
//!
//! For now an inline list from the config (`[watchlist]`); the signed, memory-mapped
//! store of [`crate::watchlist`] plugs in behind the same trait.

use crate::config::{WatchlistAction, WatchlistSection};
use crate::types::{DocumentKey, WatchlistVerdict};
use std::collections::HashMap;

/// Answers watchlist queries for the shell.
pub trait Screening: Send {
    /// The verdict for a document.
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict;
}

/// A watchlist held in memory, keyed by issuing state and document number.
#[derive(Clone, Debug, Default)]
pub struct InlineWatchlist {
    version: u64,
    entries: HashMap<(String, String), (WatchlistAction, String)>,
}

impl InlineWatchlist {
    /// Builds the list from the `[watchlist]` table.
    pub fn from_config(section: &WatchlistSection) -> InlineWatchlist {
        let entries = section
            .entries
            .iter()
            .map(|e| {
                (
                    (e.issuing_state.clone(), e.document_number.clone()),
                    (e.action, e.reason.clone()),
                )
            })
            .collect();
        InlineWatchlist {
            version: section.version,
            entries,
        }
    }

    /// Number of listed documents.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Screening for InlineWatchlist {
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict {
        let version = self.version;
        let k = (key.issuing_state.clone(), key.document_number.clone());
        match self.entries.get(&k) {
            None => WatchlistVerdict::Clear { version },
            Some((WatchlistAction::Refer, reason)) => WatchlistVerdict::Refer {
                version,
                reason: reason.clone(),
            },
            Some((WatchlistAction::Hold, reason)) => WatchlistVerdict::Hold {
                version,
                reason: reason.clone(),
            },
        }
    }
}

/// Several watchlists in turn: the first that lists the document decides; a clear
/// verdict carries the first list's version.
pub struct Chained(pub Vec<Box<dyn Screening>>);

impl Screening for Chained {
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict {
        let mut first = None;
        for s in &self.0 {
            let v = s.check(key);
            if !matches!(v, WatchlistVerdict::Clear { .. }) {
                return v;
            }
            first.get_or_insert(v);
        }
        first.unwrap_or(WatchlistVerdict::Clear { version: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WatchlistEntry;

    #[test]
    fn listed_documents_get_their_action_others_are_clear() {
        let w = InlineWatchlist::from_config(&WatchlistSection {
            version: 4,
            entries: vec![WatchlistEntry {
                issuing_state: "UTO".into(),
                document_number: "X1".into(),
                action: WatchlistAction::Hold,
                reason: "warrant".into(),
            }],
        });
        let key = |s: &str, n: &str| DocumentKey {
            issuing_state: s.into(),
            document_number: n.into(),
        };
        assert_eq!(
            w.check(&key("UTO", "X1")),
            WatchlistVerdict::Hold {
                version: 4,
                reason: "warrant".into()
            }
        );
        assert_eq!(
            w.check(&key("D", "X1")),
            WatchlistVerdict::Clear { version: 4 }
        );
    }
}
