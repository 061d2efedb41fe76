//! Decision rules with recorded reasons: document validity and eligibility, watchlist
//! verdicts, biometric scores. Pure functions; "today" is passed in.

use crate::problem::Problem;
use crate::record::Reason;
use crate::types::{Date, Document, DocumentKind, PaStatus, WatchlistVerdict};
use serde::{Deserialize, Serialize};

/// Which travellers a lane serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneKind {
    /// Any eligible e-passport holder.
    Visitor,
    /// Residents with an enrolled ID card (DG3 thumbprints required).
    Resident,
}

/// Travel direction the gate controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Entering the country.
    Arrival,
    /// Leaving the country.
    Departure,
}

impl Direction {
    /// Lower-case name (journal, upstream).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Arrival => "arrival",
            Direction::Departure => "departure",
        }
    }
}

/// Eligibility policy of a lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Lane kind.
    pub lane: LaneKind,
    /// Document kinds this lane accepts.
    pub allowed_documents: Vec<DocumentKind>,
    /// Minimum age in whole years (default 11).
    pub min_age: u8,
    /// Whether passive authentication must be `valid` (true in production).
    pub require_passive_auth: bool,
    /// Biometric decision threshold (score ≥ threshold is a match).
    pub biometric_threshold: f32,
    /// Maximum capture attempts (default 3).
    pub max_attempts: u8,
    /// Captures with fewer minutiae are rejected as poor ("try again").
    pub min_minutiae: u16,
    /// Captures below this quality (0..100) are rejected as poor.
    pub min_quality: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lane: LaneKind::Visitor,
            allowed_documents: vec![DocumentKind::Passport, DocumentKind::IdCard],
            min_age: 11,
            require_passive_auth: true,
            biometric_threshold: 0.5,
            max_attempts: 3,
            min_minutiae: 12,
            min_quality: 20,
        }
    }
}

/// `[policy]`: eligibility and biometric policy (see [`Policy`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    /// Minimum age in whole years.
    pub min_age: u8,
    /// Document kinds the lane accepts.
    pub allowed_documents: Vec<DocumentKind>,
    /// Whether passive authentication must be valid.
    pub require_passive_auth: bool,
    /// Score at or above which a comparison is a match (0..1).
    pub biometric_threshold: f32,
    /// Capture attempts before a referral.
    pub max_attempts: u8,
    /// Minimum minutiae of a usable capture.
    pub min_minutiae: u16,
    /// Minimum quality (0..100) of a usable capture.
    pub min_quality: u8,
}

impl Default for PolicySection {
    fn default() -> Self {
        let p = Policy::default();
        PolicySection {
            min_age: p.min_age,
            allowed_documents: p.allowed_documents,
            require_passive_auth: p.require_passive_auth,
            biometric_threshold: p.biometric_threshold,
            max_attempts: p.max_attempts,
            min_minutiae: p.min_minutiae,
            min_quality: p.min_quality,
        }
    }
}

impl PolicySection {
    /// Every out-of-range or inconsistent value of `[policy]` on a lane of kind `lane`,
    /// with its key.
    pub fn problems(&self, lane: LaneKind) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, problem: String| out.push(Problem::new(key, problem));
        let p = self;
        if p.min_age > 120 {
            bad(
                "policy.min_age",
                format!("{} is not a plausible age", p.min_age),
            );
        }
        if p.allowed_documents.is_empty() {
            bad(
                "policy.allowed_documents",
                "must list at least one document kind".into(),
            );
        }
        if !(p.biometric_threshold.is_finite() && (0.0..=1.0).contains(&p.biometric_threshold)) {
            bad(
                "policy.biometric_threshold",
                format!("{} must be between 0 and 1", p.biometric_threshold),
            );
        }
        if !(1..=10).contains(&p.max_attempts) {
            bad(
                "policy.max_attempts",
                format!("{} must be between 1 and 10", p.max_attempts),
            );
        }
        if p.min_quality > 100 {
            bad(
                "policy.min_quality",
                format!("{} must be between 0 and 100", p.min_quality),
            );
        }
        if lane == LaneKind::Resident && !p.allowed_documents.contains(&DocumentKind::IdCard) {
            bad(
                "policy.allowed_documents",
                "a resident lane must accept id_card (the resident ID card)".into(),
            );
        }
        out
    }

    /// The eligibility policy of a lane of kind `lane`.
    pub fn policy(&self, lane: LaneKind) -> Policy {
        Policy {
            lane,
            allowed_documents: self.allowed_documents.clone(),
            min_age: self.min_age,
            require_passive_auth: self.require_passive_auth,
            biometric_threshold: self.biometric_threshold,
            max_attempts: self.max_attempts,
            min_minutiae: self.min_minutiae,
            min_quality: self.min_quality,
        }
    }
}

/// Checks a document against the policy on `today`; empty means eligible.
pub fn check_document(doc: &Document, policy: &Policy, today: Date) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if policy.require_passive_auth && doc.passive_auth != PaStatus::Valid {
        reasons.push(Reason::PassiveAuthentication {
            status: doc.passive_auth,
        });
    }
    if !doc.mrz_matches_ocr {
        reasons.push(Reason::MrzMismatch);
    }
    match doc.date_of_expiry.as_expiry(today) {
        Some(expiry) if expiry < today => reasons.push(Reason::DocumentExpired {
            expiry: expiry.to_string(),
        }),
        Some(_) => {}
        None => reasons.push(Reason::InvalidDate),
    }
    match doc.date_of_birth.as_birth(today) {
        Some(birth) => {
            let age = birth.age_on(today);
            if age < i32::from(policy.min_age) {
                reasons.push(Reason::UnderMinimumAge {
                    age,
                    minimum: policy.min_age,
                });
            }
        }
        None => reasons.push(Reason::InvalidDate),
    }
    if !policy.allowed_documents.contains(&doc.kind) {
        reasons.push(Reason::DocumentTypeNotAllowed { kind: doc.kind });
    }
    if policy.lane == LaneKind::Resident && doc.enrolled_thumbs == 0 {
        reasons.push(Reason::NotEnrolled);
    }
    reasons.dedup();
    reasons
}

/// What a watchlist verdict means for the transit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchlistDecision {
    /// Go on.
    Proceed,
    /// Send to the counter, with this reason.
    Refer(Reason),
    /// Hold, with this reason.
    Hold(Reason),
}

/// Maps a watchlist verdict to a decision.
pub fn watchlist_decision(verdict: &WatchlistVerdict) -> WatchlistDecision {
    match verdict {
        WatchlistVerdict::Clear { .. } => WatchlistDecision::Proceed,
        WatchlistVerdict::Refer { reason, .. } => {
            WatchlistDecision::Refer(Reason::WatchlistRefer {
                reason: reason.clone(),
            })
        }
        WatchlistVerdict::Hold { reason, .. } => WatchlistDecision::Hold(Reason::WatchlistHold {
            reason: reason.clone(),
        }),
        WatchlistVerdict::Stale { .. } => WatchlistDecision::Refer(Reason::WatchlistStale),
    }
}

/// Whether a biometric score is a match under the policy.
pub fn is_match(score: f32, policy: &Policy) -> bool {
    score.is_finite() && score >= policy.biometric_threshold
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MrzDate;

    fn doc() -> Document {
        Document {
            kind: DocumentKind::Passport,
            issuing_state: "UTO".into(),
            document_number: "L898902C".into(),
            nationality: "UTO".into(),
            date_of_birth: MrzDate::parse("690806").unwrap(),
            date_of_expiry: MrzDate::parse("940623").unwrap(),
            passive_auth: PaStatus::Valid,
            mrz_matches_ocr: true,
            enrolled_thumbs: 0,
        }
    }

    #[test]
    fn specimen_expired_in_1994_is_refused_today() {
        let today = Date::new(2026, 11, 26).unwrap();
        let r = check_document(&doc(), &Policy::default(), today);
        assert_eq!(
            r,
            vec![Reason::DocumentExpired {
                expiry: "1994-06-23".into()
            }]
        );
    }

    #[test]
    fn specimen_valid_on_a_day_before_expiry() {
        let today = Date::new(1993, 1, 1).unwrap();
        assert!(check_document(&doc(), &Policy::default(), today).is_empty());
    }

    #[test]
    fn minimum_age_counts_whole_years() {
        let mut d = doc();
        d.date_of_expiry = MrzDate::parse("300101").unwrap();
        d.date_of_birth = MrzDate::parse("151127").unwrap();
        let today = Date::new(2026, 11, 26).unwrap();
        assert_eq!(
            check_document(&d, &Policy::default(), today),
            vec![Reason::UnderMinimumAge {
                age: 10,
                minimum: 11
            }]
        );
        let tomorrow = Date::new(2026, 11, 27).unwrap();
        assert!(check_document(&d, &Policy::default(), tomorrow).is_empty());
    }

    #[test]
    fn resident_lane_needs_enrolment_and_allowed_type() {
        let mut d = doc();
        d.date_of_expiry = MrzDate::parse("300101").unwrap();
        let p = Policy {
            lane: LaneKind::Resident,
            allowed_documents: vec![DocumentKind::IdCard],
            ..Policy::default()
        };
        let today = Date::new(2026, 11, 26).unwrap();
        let r = check_document(&d, &p, today);
        assert!(r.contains(&Reason::NotEnrolled));
        assert!(r.contains(&Reason::DocumentTypeNotAllowed {
            kind: DocumentKind::Passport
        }));
    }

    #[test]
    fn failed_passive_authentication_and_mrz_mismatch_are_reasons() {
        let mut d = doc();
        d.date_of_expiry = MrzDate::parse("300101").unwrap();
        d.passive_auth = PaStatus::Invalid;
        d.mrz_matches_ocr = false;
        let today = Date::new(2026, 11, 26).unwrap();
        let r = check_document(&d, &Policy::default(), today);
        assert_eq!(
            r,
            vec![
                Reason::PassiveAuthentication {
                    status: PaStatus::Invalid
                },
                Reason::MrzMismatch
            ]
        );
    }

    #[test]
    fn nan_score_never_matches() {
        assert!(!is_match(f32::NAN, &Policy::default()));
        assert!(is_match(0.5, &Policy::default()));
        assert!(!is_match(0.49, &Policy::default()));
    }
}
