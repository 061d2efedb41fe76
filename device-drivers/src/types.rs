//! Vocabulary shared by the drivers, the state machine, the journal and the simulator:
//! time, dates, doors, sensors, devices, documents, verdicts and records.
//!
//! Nothing here holds biometric data (templates or images): the core never sees it, so it
//! cannot reach the journal, the logs or the upstream (invariant 7 of DESIGN.md).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time in milliseconds, passed in by whoever drives the state machine.
///
/// `gated` maps its monotonic clock onto the wall clock at start-up (so values are
/// milliseconds since the Unix epoch and never go backwards); `gate-sim` uses virtual time.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    /// This time plus `ms` milliseconds.
    pub fn plus(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
    /// Milliseconds elapsed from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
    /// The civil (UTC) date of this instant, taking `self` as Unix milliseconds.
    pub fn date(self) -> Date {
        Date::from_unix_days((self.0 / 86_400_000) as i64)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A calendar date (proleptic Gregorian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date {
    /// Full year, e.g. 1969.
    pub year: i32,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
}

impl Date {
    /// Builds a date, rejecting impossible month/day combinations.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// The date `days` days after 1970-01-01 (Howard Hinnant's civil-from-days).
    pub fn from_unix_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// Days since 1970-01-01 (inverse of [`Date::from_unix_days`]).
    pub fn to_unix_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Whole years from `self` (a birth date) to `on`.
    pub fn age_on(self, on: Date) -> i32 {
        let mut age = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            age -= 1;
        }
        age
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// A date as printed in an MRZ: two-digit year, month, day. The century is resolved
/// against "today" by the decision rules ([`MrzDate::as_birth`], [`MrzDate::as_expiry`]),
/// never by reading a clock. The one MRZ date type of the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MrzDate {
    /// Two-digit year 0..=99.
    pub yy: u8,
    /// Month 1..=12.
    pub mm: u8,
    /// Day 1..=31.
    pub dd: u8,
}

impl MrzDate {
    /// Parses `YYMMDD`, rejecting impossible months and days (29 February is accepted:
    /// the century, and so the leap year, is not known here).
    pub fn parse(s: &str) -> Option<MrzDate> {
        let b = s.as_bytes();
        if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
        let d = MrzDate {
            yy: n(0),
            mm: n(2),
            dd: n(4),
        };
        Date::new(2000 + i32::from(d.yy), d.mm, d.dd).map(|_| d)
    }

    /// The date of birth this stands for, seen from `today`: the latest existing date
    /// with this day, month and two-digit year that is not after `today`. A birth date is
    /// always in the past, so every birth date of the last 100 years reads right (one
    /// printed with today's day and month reads as today: age 0, never 100). 29 February
    /// skips a century year that has none (`000229` in 2101 is 2000-02-29, not 2100).
    pub fn as_birth(self, today: Date) -> Option<Date> {
        let mut year = year_in_window(self.yy, today.year - 99);
        if (year, self.mm, self.dd) > (today.year, today.month, today.day) {
            year -= 100;
        }
        Date::new(year, self.mm, self.dd).or_else(|| Date::new(year - 100, self.mm, self.dd))
    }

    /// The expiry date this stands for, seen from `today`: the year with these two last
    /// digits from 50 years before `today`'s year to 49 years after it. ICAO 9303 leaves
    /// the century to the reader; documents are valid for at most ten years, so a date
    /// 50 years back is read as long expired and anything up to 49 years ahead as valid.
    /// `None` when the day does not exist in that year.
    pub fn as_expiry(self, today: Date) -> Option<Date> {
        Date::new(year_in_window(self.yy, today.year - 50), self.mm, self.dd)
    }
}

/// The one year ending in the two digits `yy` among the 100 years from `lowest`.
fn year_in_window(yy: u8, lowest: i32) -> i32 {
    lowest + (i32::from(yy) - lowest).rem_euclid(100)
}

impl fmt::Display for MrzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}{:02}{:02}", self.yy, self.mm, self.dd)
    }
}

/// One of the two mantrap doors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Door {
    /// The door the traveller enters through (and is let back out through on refer).
    Entry,
    /// The door to the far side, opened only for a clear decision.
    Exit,
}

impl Door {
    /// Both doors.
    pub const ALL: [Door; 2] = [Door::Entry, Door::Exit];
    /// The other door.
    pub fn other(self) -> Door {
        match self {
            Door::Entry => Door::Exit,
            Door::Exit => Door::Entry,
        }
    }
}

/// Where a door has been seen to arrive (position feedback).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorPosition {
    /// Fully open.
    Open,
    /// Fully closed (and locked where the door has a lock).
    Closed,
}

/// Binary sensors of a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensor {
    /// Beam across the entry threshold.
    EntryBeam,
    /// Beam across the exit threshold.
    ExitBeam,
    /// Obstruction (safety) sensor in the entry door's swept area.
    EntrySafety,
    /// Obstruction (safety) sensor in the exit door's swept area.
    ExitSafety,
}

impl Sensor {
    /// The safety sensor that guards `door`.
    pub fn safety_of(door: Door) -> Sensor {
        match door {
            Door::Entry => Sensor::EntrySafety,
            Door::Exit => Sensor::ExitSafety,
        }
    }
    /// The threshold beam at `door`.
    pub fn beam_of(door: Door) -> Sensor {
        match door {
            Door::Entry => Sensor::EntryBeam,
            Door::Exit => Sensor::ExitBeam,
        }
    }
}

/// The devices whose faults take a gate out of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    /// Document reader (PC/SC).
    DocumentReader,
    /// Fingerprint scanner (serial).
    FingerprintScanner,
    /// Door and sensor I/O.
    LaneIo,
    /// The durable journal.
    Journal,
    /// The watchlist store.
    Watchlist,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Device::DocumentReader => "document_reader",
            Device::FingerprintScanner => "fingerprint_scanner",
            Device::LaneIo => "lane_io",
            Device::Journal => "journal",
            Device::Watchlist => "watchlist",
        };
        f.write_str(s)
    }
}

/// Kind of travel document, from the MRZ document code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// TD3 passport (code `P`).
    Passport,
    /// TD1 identity card (codes `I`, `A`, `C`), including the resident ID card profile.
    IdCard,
    /// Anything else (visas, TD2 documents).
    Other,
}

/// Result of passive authentication of the chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaStatus {
    /// SOD signature, certificate chain and every read data group verified.
    Valid,
    /// A signature or a data-group hash did not verify: the chip data was altered.
    Invalid,
    /// The chain does not end at a trusted CSCA.
    Untrusted,
    /// Not performed.
    NotChecked,
}

/// What the gate learned from a document chip, minus any biometric data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Document kind.
    pub kind: DocumentKind,
    /// Issuing state (ICAO three-letter code).
    pub issuing_state: String,
    /// Document number as in the MRZ (without filler).
    pub document_number: String,
    /// Nationality (ICAO three-letter code).
    pub nationality: String,
    /// Date of birth from the chip MRZ.
    pub date_of_birth: MrzDate,
    /// Date of expiry from the chip MRZ.
    pub date_of_expiry: MrzDate,
    /// Passive authentication result.
    pub passive_auth: PaStatus,
    /// Whether the chip MRZ equals the MRZ read optically.
    pub mrz_matches_ocr: bool,
    /// Number of enrolled thumbprint templates found on the document (DG3).
    pub enrolled_thumbs: u8,
}

/// Key of a document in the watchlists.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocumentKey {
    /// Issuing state.
    pub issuing_state: String,
    /// Document number.
    pub document_number: String,
}

/// What the watchlists say about a traveller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum WatchlistVerdict {
    /// Not listed.
    Clear {
        /// Version of the list consulted.
        version: u64,
    },
    /// Listed (or a fuzzy person candidate): send to the counter.
    Refer {
        /// Version of the list consulted.
        version: u64,
        /// Reason code from the list.
        reason: String,
    },
    /// Listed for a hold: keep the doors shut and call an officer.
    Hold {
        /// Version of the list consulted.
        version: u64,
        /// Reason code from the list.
        reason: String,
    },
    /// The cached list is past its staleness limit: nobody may be cleared.
    Stale {
        /// Version of the list consulted.
        version: u64,
    },
}

impl WatchlistVerdict {
    /// The list version the verdict came from.
    pub fn version(&self) -> u64 {
        match self {
            WatchlistVerdict::Clear { version }
            | WatchlistVerdict::Refer { version, .. }
            | WatchlistVerdict::Hold { version, .. }
            | WatchlistVerdict::Stale { version } => *version,
        }
    }
}

/// Why a chip read produced no document, as recorded in the movement record (reason
/// `chip_unreadable`, field `error`). The snake_case names are the recorded codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChipFailure {
    /// Nothing on the reader when the read started (`no_card` in journals written by
    /// earlier versions of the simulator).
    #[serde(alias = "no_card")]
    NoDocument,
    /// The document was taken away during the read.
    CardRemoved,
    /// The chip did not answer (dead chip, shielded cover, no contactless interface).
    NoAnswer,
    /// The chip refused the access key (BAC/PACE): wrong or unreadable MRZ/CAN.
    WrongKey,
    /// Secure messaging broke (bad MAC, wrong SSC, protected error response).
    BadMac,
    /// The chip answered something ICAO 9303 does not allow, or malformed data.
    Protocol,
    /// The chip uses an algorithm the gate does not support.
    Unsupported,
    /// The reader itself failed during the read.
    ReaderFault,
}

impl ChipFailure {
    /// The recorded code, e.g. `wrong_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChipFailure::NoDocument => "no_document",
            ChipFailure::CardRemoved => "card_removed",
            ChipFailure::NoAnswer => "no_answer",
            ChipFailure::WrongKey => "wrong_key",
            ChipFailure::BadMac => "bad_mac",
            ChipFailure::Protocol => "protocol",
            ChipFailure::Unsupported => "unsupported",
            ChipFailure::ReaderFault => "reader_fault",
        }
    }
}

impl fmt::Display for ChipFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a document could not be read (typed by the driver, summarised here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFailure {
    /// What failed.
    pub code: ChipFailure,
    /// Human-readable detail for the audit trail.
    pub detail: String,
}

/// The ways a device can be broken (as opposed to a traveller's bad document or finger),
/// recorded with a device fault under these snake_case names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// The device is not there: unplugged reader, vanished serial port, no PC/SC service.
    Unavailable,
    /// The link to the device failed (I/O error, connection lost, Modbus exception).
    Link,
    /// The device did not answer within its protocol timeout.
    Timeout,
    /// The device answered something its protocol does not allow (bad checksum after
    /// retries, unknown error code, malformed frame).
    Protocol,
    /// The device reported a hardware error of its own, or supervision found one (a
    /// door that does not reach its position, a dead beam, a motor fault, the tamper
    /// switch).
    Hardware,
    /// Durable storage failed (the journal could not commit: I/O error, disk full).
    Storage,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Unavailable => "device unavailable",
            FaultKind::Link => "link failure",
            FaultKind::Timeout => "device timed out",
            FaultKind::Protocol => "protocol violation",
            FaultKind::Hardware => "hardware error",
            FaultKind::Storage => "storage failure",
        })
    }
}

/// Metadata of one fingerprint capture (never the template itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureInfo {
    /// Image/template quality 0..=100.
    pub quality: u8,
    /// Number of minutiae in the live template.
    pub minutiae: u16,
}

/// Why a capture produced no usable template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFailure {
    /// No finger was placed before the scanner's timeout.
    NoFinger,
    /// The scanner reported a capture error (wet/dry finger, smear).
    Poor,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(year: i32, month: u8, day: u8) -> Date {
        Date::new(year, month, day).unwrap()
    }

    fn mrz(s: &str) -> MrzDate {
        MrzDate::parse(s).unwrap()
    }

    #[test]
    fn birth_is_the_latest_date_not_after_today() {
        let today = d(2026, 11, 26);
        assert_eq!(mrz("690806").as_birth(today), Some(d(1969, 8, 6)));
        assert_eq!(mrz("200101").as_birth(today), Some(d(2020, 1, 1)));
        // Edges: born today is today (age 0); one day later in the year is 100 years ago.
        assert_eq!(mrz("261126").as_birth(today), Some(today));
        assert_eq!(mrz("261127").as_birth(today), Some(d(1926, 11, 27)));
        assert_eq!(mrz("270101").as_birth(today), Some(d(1927, 1, 1)));
        assert_eq!(mrz("251231").as_birth(today), Some(d(2025, 12, 31)));
        // The same rule at the other end of a century.
        let late = d(2099, 12, 31);
        assert_eq!(mrz("991231").as_birth(late), Some(late));
        assert_eq!(mrz("000101").as_birth(late), Some(d(2000, 1, 1)));
        // 29 February of a century year without one falls back a century.
        assert_eq!(mrz("000229").as_birth(d(2101, 1, 1)), Some(d(2000, 2, 29)));
        assert_eq!(mrz("000229").as_birth(d(2000, 2, 28)), None);
    }

    #[test]
    fn expiry_lies_from_50_years_back_to_49_ahead() {
        for today in [d(2026, 11, 26), d(2080, 6, 1), d(2050, 1, 1)] {
            let low = today.year - 50;
            let high = today.year + 49;
            let yy = |y: i32| format!("{:02}0101", y.rem_euclid(100));
            assert_eq!(mrz(&yy(low)).as_expiry(today).map(|x| x.year), Some(low));
            assert_eq!(mrz(&yy(high)).as_expiry(today).map(|x| x.year), Some(high));
            assert_eq!(
                mrz(&yy(today.year)).as_expiry(today).map(|x| x.year),
                Some(today.year)
            );
        }
        let today = d(2026, 11, 26);
        assert_eq!(mrz("940623").as_expiry(today), Some(d(1994, 6, 23)));
        assert_eq!(mrz("340623").as_expiry(today), Some(d(2034, 6, 23)));
        assert_eq!(mrz("760101").as_expiry(today), Some(d(1976, 1, 1)));
        assert_eq!(mrz("750101").as_expiry(today), Some(d(2075, 1, 1)));
        // 2100 has no 29 February: an expiry printed so is not a date.
        assert_eq!(mrz("000229").as_expiry(d(2080, 1, 1)), None);
    }

    #[test]
    fn failures_serialize_under_their_recorded_names() {
        let f = ReadFailure {
            code: ChipFailure::WrongKey,
            detail: "x".into(),
        };
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(j, r#"{"code":"wrong_key","detail":"x"}"#);
        let old: ChipFailure = serde_json::from_str(r#""no_card""#).unwrap();
        assert_eq!(old, ChipFailure::NoDocument);
        for c in [
            ChipFailure::NoDocument,
            ChipFailure::ReaderFault,
            ChipFailure::BadMac,
        ] {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(
            serde_json::to_string(&FaultKind::Link).unwrap(),
            r#""link""#
        );
        assert_eq!(
            serde_json::to_string(&FaultKind::Unavailable).unwrap(),
            r#""unavailable""#
        );
    }

    #[test]
    fn impossible_mrz_dates_do_not_parse() {
        assert!(MrzDate::parse("691306").is_none());
        assert!(MrzDate::parse("690231").is_none());
        assert!(MrzDate::parse("69083A").is_none());
        assert!(MrzDate::parse("6908061").is_none());
        assert!(MrzDate::parse("000229").is_some());
    }
}
