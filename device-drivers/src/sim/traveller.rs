//! Who walks into the simulated lane: behaviours, the documents they carry, and how their
//! visit ended.

use super::rng::SimRng;
use crate::types::{Date, Document, DocumentKind, MrzDate, PaStatus, Time};
use serde::{Deserialize, Serialize};

/// How a simulated traveller behaves. Physical and biometric behaviours are played by the
/// world; document and watchlist behaviours shape the generated document and its listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Follows every prompt promptly; genuine thumb.
    Normal,
    /// Walks at half speed and reacts slowly.
    Slow,
    /// Presents the wrong finger: impostor scores on every attempt.
    WrongFinger,
    /// Carries an expired document.
    ExpiredDocument,
    /// Carries a document listed for a hold.
    WatchlistHold,
    /// Carries a document listed for a referral.
    WatchlistRefer,
    /// Steps into the mantrap, then turns round and walks back out before the entry closes.
    TurnsBack,
    /// Followed closely by a second person who steps back when told "one person only".
    Tailgater,
    /// Followed closely by a second person who stays put whatever the display says.
    StubbornTailgater,
    /// Presents the document but never walks in.
    NeverEnters,
    /// Genuine thumb, but most captures are unusable.
    PoorQuality,
    /// The chip does not answer.
    UnreadableChip,
    /// Pulls a suitcase behind: the beams and safety sensors see a longer body (the
    /// overhead occupancy sensor counts the person only).
    Luggage,
    /// An adult with a young child who walks close behind them and stays with them
    /// whatever the display says (the overhead sensor sees a short second person).
    WithChild,
}

impl Behaviour {
    /// Every behaviour, in a fixed order (for mixes and reports).
    pub const ALL: [Behaviour; 14] = [
        Behaviour::Normal,
        Behaviour::Slow,
        Behaviour::WrongFinger,
        Behaviour::ExpiredDocument,
        Behaviour::WatchlistHold,
        Behaviour::WatchlistRefer,
        Behaviour::TurnsBack,
        Behaviour::Tailgater,
        Behaviour::StubbornTailgater,
        Behaviour::NeverEnters,
        Behaviour::PoorQuality,
        Behaviour::UnreadableChip,
        Behaviour::Luggage,
        Behaviour::WithChild,
    ];

    /// The snake_case name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::Slow => "slow",
            Behaviour::WrongFinger => "wrong_finger",
            Behaviour::ExpiredDocument => "expired_document",
            Behaviour::WatchlistHold => "watchlist_hold",
            Behaviour::WatchlistRefer => "watchlist_refer",
            Behaviour::TurnsBack => "turns_back",
            Behaviour::Tailgater => "tailgater",
            Behaviour::StubbornTailgater => "stubborn_tailgater",
            Behaviour::NeverEnters => "never_enters",
            Behaviour::PoorQuality => "poor_quality",
            Behaviour::UnreadableChip => "unreadable_chip",
            Behaviour::Luggage => "luggage",
            Behaviour::WithChild => "with_child",
        }
    }

    /// Whether a second person follows this traveller in (a tailgater or a child).
    pub fn tailgated(self) -> Option<Companion> {
        match self {
            Behaviour::Tailgater => Some(Companion::StepsBack),
            Behaviour::StubbornTailgater => Some(Companion::Stubborn),
            Behaviour::WithChild => Some(Companion::Child),
            _ => None,
        }
    }
}

/// The second person of a pair: a tailgater, or the traveller's child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Companion {
    /// Steps back out when the display says "one person only".
    StepsBack,
    /// Stays in the mantrap until the traveller is sent back.
    Stubborn,
    /// A young child: short (below the overhead sensor's child height threshold unless
    /// tall for their age), keeps close to the adult, goes where the adult goes.
    Child,
}

/// A watchlist entry the world's generated documents are listed under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// `true` for a hold, `false` for a referral.
    pub hold: bool,
    /// Reason code of the list entry.
    pub reason: String,
}

/// One traveller to add to the world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TravellerSpec {
    /// Name for reports (scenario travellers); generated travellers have none.
    pub name: Option<String>,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// The document's chip content; `None` generates one fitting the behaviour on arrival.
    pub document: Option<Document>,
}

impl TravellerSpec {
    /// A traveller with a generated document.
    pub fn new(behaviour: Behaviour) -> TravellerSpec {
        TravellerSpec {
            name: None,
            behaviour,
            document: None,
        }
    }

    /// The same, named.
    pub fn named(name: impl Into<String>, behaviour: Behaviour) -> TravellerSpec {
        TravellerSpec {
            name: Some(name.into()),
            behaviour,
            document: None,
        }
    }
}

/// Identifier of a traveller in one world (in order of [`crate::sim::World::add_traveller`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TravellerId(pub u32);

/// How a traveller's visit to the lane ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Still queued or in the lane.
    Pending,
    /// Walked out through the exit door to the far side.
    PassedExit,
    /// Walked out through the exit during an emergency release.
    EmergencyExit,
    /// Entered the mantrap and walked back out through the entry.
    CameBack,
    /// Left from the reader without entering.
    LeftAtReader,
}

const STATES: [&str; 6] = ["UTO", "D<<", "FRA", "GBR", "CHN", "NLD"];

fn mrz(d: Date) -> MrzDate {
    MrzDate {
        yy: (d.year.rem_euclid(100)) as u8,
        mm: d.month,
        dd: d.day,
    }
}

/// Generates a chip's content for a traveller arriving at `now` with `behaviour`:
/// an adult, a valid passport or ID card, expired for [`Behaviour::ExpiredDocument`].
pub fn generate_document(rng: &mut SimRng, behaviour: Behaviour, now: Time) -> Document {
    let today = now.date().to_unix_days();
    let age_days = rng.between(18 * 365, 80 * 365 - 1) as i64;
    let birth = Date::from_unix_days(today - age_days);
    let expiry = if behaviour == Behaviour::ExpiredDocument {
        Date::from_unix_days(today - rng.between(1, 5 * 365 - 1) as i64)
    } else {
        Date::from_unix_days(today + rng.between(30, 10 * 365 - 1) as i64)
    };
    let letters: String = (0..2)
        .map(|_| char::from(b'A' + rng.below(26) as u8))
        .collect();
    let number = rng.below(10_000_000);
    let state = STATES[rng.below(STATES.len() as u64) as usize];
    let kind = if rng.chance(0.8) {
        DocumentKind::Passport
    } else {
        DocumentKind::IdCard
    };
    Document {
        kind,
        issuing_state: state.into(),
        document_number: format!("{letters}{number:07}"),
        nationality: state.into(),
        date_of_birth: mrz(birth),
        date_of_expiry: mrz(expiry),
        passive_auth: PaStatus::Valid,
        mrz_matches_ocr: true,
        enrolled_thumbs: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-26T12:00:00Z.
    const NOW: Time = Time(1_795_694_400_000);

    #[test]
    fn generated_documents_are_valid_or_expired_as_asked() {
        let mut rng = SimRng::new(1);
        let today = NOW.date();
        for _ in 0..200 {
            let d = generate_document(&mut rng, Behaviour::Normal, NOW);
            let exp = d.date_of_expiry.as_expiry(today).expect("a real date");
            assert!(exp > today, "{exp} not after {today}");
            let birth = d.date_of_birth.as_birth(today).expect("a real date");
            assert!(birth.age_on(today) >= 17);
            assert_eq!(d.document_number.len(), 9);
            let d = generate_document(&mut rng, Behaviour::ExpiredDocument, NOW);
            assert!(d.date_of_expiry.as_expiry(today).expect("date") < today);
        }
    }

    #[test]
    fn behaviour_names_round_trip_through_serde() {
        for b in Behaviour::ALL {
            let s = serde_json::to_string(&b).expect("serialises");
            assert_eq!(s, format!("\"{}\"", b.as_str()));
        }
    }
}
