//! The watchlist as the shell consults it for `Action::CheckWatchlist`.
//!
//! An inline list from the config (`[[watchlist.entries]]`, documents only), and the
//! signed, memory-mapped store of [`crate::watchlist`] behind the same trait
//! (`runtime::watchlist::StoreScreening`), which also screens the holder (names, date
//! of birth, nationality) against the lists' person entries.

use super::watchlist::section::{WatchlistAction, WatchlistSection};
use crate::types::{Date, Document, DocumentKey, WatchlistVerdict};
use crate::watchlist::{PartialDate, PersonQuery};
use device_drivers::devices::Holder;
use std::collections::HashMap;

/// Answers watchlist queries for the shell.
pub trait Screening: Send {
    /// The verdict for a document.
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict;

    /// The verdict for a traveller: the document and, when the chip gave the holder's
    /// names, the holder. Lists without person entries screen the document only.
    fn check_traveller(&self, key: &DocumentKey, holder: Option<&PersonQuery>) -> WatchlistVerdict {
        let _ = holder;
        self.check(key)
    }

    /// Version and age of the signed lists behind this screening, if any (for the status).
    fn state(&self) -> Option<WatchlistState> {
        None
    }
}

/// The signed watchlists a gate serves, for its status.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WatchlistState {
    /// True when the lists are past `max_age` (or missing, or failed their integrity
    /// check): nobody is cleared.
    pub stale: bool,
    /// The staleness limit in seconds.
    pub max_age_s: u64,
    /// Each loaded list.
    pub lists: Vec<ListState>,
}

/// One list of a [`WatchlistState`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListState {
    /// List id.
    pub list_id: String,
    /// Current version (snapshot plus applied deltas).
    pub version: u64,
    /// When that version was created (Unix ms).
    pub created_at_ms: u64,
    /// Its age (ms).
    pub age_ms: u64,
    /// Document entries.
    pub doc_count: u64,
    /// Person entries.
    pub person_count: u64,
    /// `ok`, `pending` (background check running) or `failed`.
    pub integrity: &'static str,
    /// True when this list is past `max_age_s` or failed its integrity check.
    pub stale: bool,
}

/// The person query for the holder of `document`: names from the chip's MRZ (DG1), date
/// of birth (the century resolved as of `today`) and nationality from the document.
/// `None` when the chip gave no names (nothing to screen a person on).
pub fn holder_query(holder: &Holder, document: &Document, today: Date) -> Option<PersonQuery> {
    if holder.is_empty() {
        return None;
    }
    let b = document.date_of_birth;
    let dob = match b.as_birth(today) {
        Some(d) => PartialDate {
            year: u16::try_from(d.year).unwrap_or(0),
            month: d.month,
            day: d.day,
        },
        // Not a real date in any century: screen on month and day only.
        None => PartialDate {
            year: 0,
            month: b.mm,
            day: b.dd,
        },
    };
    let nationality = document.nationality.trim_matches('<').trim();
    Some(PersonQuery {
        surname: holder.surname.clone(),
        given_names: holder.given_names.clone(),
        dob,
        nationality: (!nationality.is_empty()).then(|| nationality.to_owned()),
    })
}

/// A watchlist held in memory, keyed by issuing state and document number (documents
/// only: person entries come with the signed store).
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

    /// An empty list reporting `version`.
    pub fn new(version: u64) -> InlineWatchlist {
        InlineWatchlist {
            version,
            entries: HashMap::new(),
        }
    }

    /// Lists a document (the simulator's scenario watchlists).
    pub fn insert(&mut self, key: DocumentKey, action: WatchlistAction, reason: String) {
        self.entries
            .insert((key.issuing_state, key.document_number), (action, reason));
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

/// Several watchlists consulted together: the strongest verdict wins (hold, then
/// refer, then stale, then clear, the earliest list among equals); a clear verdict
/// carries the first list's version.
pub struct Chained(pub Vec<Box<dyn Screening>>);

fn strength(v: &WatchlistVerdict) -> u8 {
    match v {
        WatchlistVerdict::Clear { .. } => 0,
        WatchlistVerdict::Stale { .. } => 1,
        WatchlistVerdict::Refer { .. } => 2,
        WatchlistVerdict::Hold { .. } => 3,
    }
}

impl Screening for Chained {
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict {
        self.check_traveller(key, None)
    }

    fn check_traveller(&self, key: &DocumentKey, holder: Option<&PersonQuery>) -> WatchlistVerdict {
        let mut best: Option<WatchlistVerdict> = None;
        for s in &self.0 {
            let v = s.check_traveller(key, holder);
            if best.as_ref().is_none_or(|b| strength(&v) > strength(b)) {
                best = Some(v);
            }
        }
        best.unwrap_or(WatchlistVerdict::Clear { version: 0 })
    }

    fn state(&self) -> Option<WatchlistState> {
        self.0.iter().find_map(|s| s.state())
    }
}

#[cfg(test)]
mod tests {
    use super::super::watchlist::section::WatchlistEntry;
    use super::*;

    #[test]
    fn the_holder_query_takes_the_chip_names_and_resolves_the_birth_century() {
        use crate::types::{DocumentKind, MrzDate, PaStatus};
        let mut doc = Document {
            kind: DocumentKind::Passport,
            issuing_state: "D".into(),
            document_number: "X1".into(),
            nationality: "D<<".into(),
            date_of_birth: MrzDate::parse("690806").expect("date"),
            date_of_expiry: MrzDate::parse("340623").expect("date"),
            passive_auth: PaStatus::Valid,
            mrz_matches_ocr: true,
            enrolled_thumbs: 0,
        };
        let today = Date::new(2026, 11, 27).expect("date");
        assert_eq!(holder_query(&Holder::default(), &doc, today), None);
        let q = holder_query(&Holder::new("MUELLER", "JUERGEN"), &doc, today).expect("query");
        assert_eq!(
            (q.surname.as_str(), q.given_names.as_str()),
            ("MUELLER", "JUERGEN")
        );
        assert_eq!(
            q.dob,
            PartialDate {
                year: 1969,
                month: 8,
                day: 6
            }
        );
        assert_eq!(q.nationality.as_deref(), Some("D"));
        doc.date_of_birth = MrzDate::parse("200229").expect("date");
        let q = holder_query(&Holder::new("A", ""), &doc, today).expect("query");
        assert_eq!(q.dob.year, 2020);
        doc.nationality = "<<<".into();
        let q = holder_query(&Holder::new("A", ""), &doc, today).expect("query");
        assert_eq!(q.nationality, None);
    }

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
            ..WatchlistSection::default()
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
