//! Person entries and matching: normalised names (case, diacritics, name order,
//! common transliterations), full or partial dates of birth, nationality.
//!
//! An exact match (same normalised name tokens, compatible date of birth and
//! nationality) takes the entry's action. A fuzzy candidate (same transliteration
//! skeletons, or a subset of the names) is always `Refer`: it never clears and
//! never holds.

use super::{Action, Reader, Reasons, WatchlistError};
use std::collections::HashMap;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A date of birth with possibly unknown month or day (or year).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PartialDate {
    /// Year (0 = unknown).
    pub year: u16,
    /// Month 1–12 (0 = unknown).
    pub month: u8,
    /// Day 1–31 (0 = unknown).
    pub day: u8,
}

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or an empty string (unknown).
    pub fn parse(s: &str) -> Result<Self, WatchlistError> {
        let bad = || {
            WatchlistError::Input(format!(
                "date of birth {s:?} must be YYYY, YYYY-MM or YYYY-MM-DD"
            ))
        };
        let s = s.trim();
        if s.is_empty() {
            return Ok(PartialDate::default());
        }
        let mut parts = s.split('-');
        let mut d = PartialDate::default();
        let y = parts.next().ok_or_else(bad)?;
        if y.len() != 4 {
            return Err(bad());
        }
        d.year = y.parse().map_err(|_| bad())?;
        if let Some(m) = parts.next() {
            d.month = m.parse().map_err(|_| bad())?;
            if !(1..=12).contains(&d.month) {
                return Err(bad());
            }
        }
        if let Some(day) = parts.next() {
            d.day = day.parse().map_err(|_| bad())?;
            if !(1..=31).contains(&d.day) {
                return Err(bad());
            }
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(d)
    }

    /// Whether every known part is known in both and equal.
    fn compatible(&self, q: &PartialDate) -> bool {
        let part = |a: u32, b: u32| a == 0 || b == 0 || a == b;
        part(self.year.into(), q.year.into())
            && part(self.month.into(), q.month.into())
            && part(self.day.into(), q.day.into())
    }

    /// Whether the query's date pins down every part that the entry's date names.
    fn exactly_covers(&self, q: &PartialDate) -> bool {
        let part = |a: u32, b: u32| a == 0 || a == b;
        part(self.year.into(), q.year.into())
            && part(self.month.into(), q.month.into())
            && part(self.day.into(), q.day.into())
    }
}

/// A person on a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonEntry {
    /// Surname(s) as listed.
    pub surname: String,
    /// Given name(s) as listed.
    pub given_names: String,
    /// Date of birth, possibly partial.
    pub dob: PartialDate,
    /// ICAO nationality code, or `None` for any.
    pub nationality: Option<String>,
    /// What to do on an exact match.
    pub action: Action,
    /// Reason code.
    pub reason: String,
}

/// The traveller being checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonQuery {
    /// Surname(s) (from the document).
    pub surname: String,
    /// Given name(s).
    pub given_names: String,
    /// Date of birth (partial if the document has unknown parts).
    pub dob: PartialDate,
    /// Nationality code.
    pub nationality: Option<String>,
}

fn fold_char(c: char, out: &mut String) {
    match c {
        'ß' => out.push_str("SS"),
        'Æ' | 'æ' => out.push_str("AE"),
        'Œ' | 'œ' => out.push_str("OE"),
        'Ø' | 'ø' => out.push('O'),
        'Ł' | 'ł' => out.push('L'),
        'Đ' | 'đ' | 'Ð' | 'ð' => out.push('D'),
        'Þ' | 'þ' => out.push_str("TH"),
        'ı' => out.push('I'),
        c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_uppercase()),
        c if c.is_alphanumeric() => out.push(c), // other scripts kept as-is
        _ => out.push(' '),
    }
}

/// Normalises a name to uppercase ASCII-folded tokens: diacritics removed, `<`,
/// hyphens, apostrophes and punctuation split tokens.
pub fn name_tokens(name: &str) -> Vec<String> {
    let mut folded = String::with_capacity(name.len());
    for c in name.nfkd().filter(|c| !is_combining_mark(*c)) {
        fold_char(c, &mut folded);
    }
    folded.split_whitespace().map(|t| t.to_string()).collect()
}

/// The transliteration skeleton of a token: common spelling variants
/// (KH/H, PH/F, W/V, Y/J/I, C/K/Q, Z/S, OU/U, AE/A, …) fold to one form,
/// doubled letters collapse and vowels after the first letter are dropped.
pub fn skeleton(token: &str) -> String {
    const RULES: [(&str, &str); 18] = [
        ("SCH", "SH"),
        ("TCH", "CH"),
        ("DZH", "J"),
        ("DJ", "J"),
        ("KH", "H"),
        ("PH", "F"),
        ("CK", "K"),
        ("TH", "T"),
        ("AE", "A"),
        ("OE", "O"),
        ("UE", "U"),
        ("OU", "U"),
        ("EE", "I"),
        ("W", "V"),
        ("Q", "K"),
        ("C", "K"),
        ("Z", "S"),
        ("X", "KS"),
    ];
    let mut t = token.to_string();
    for (a, b) in RULES {
        t = t.replace(a, b);
    }
    t = t.replace(['Y', 'J'], "I");
    let mut out = String::with_capacity(t.len());
    let mut prev: Option<char> = None;
    for (i, c) in t.chars().enumerate() {
        if Some(c) == prev {
            continue;
        }
        prev = Some(c);
        if i > 0 && matches!(c, 'A' | 'E' | 'I' | 'O' | 'U' | 'H') {
            continue;
        }
        out.push(c);
    }
    // Dropped vowels may bring equal consonants together again.
    let mut dedup = String::with_capacity(out.len());
    let mut prev: Option<char> = None;
    for c in out.chars() {
        if Some(c) != prev {
            dedup.push(c);
        }
        prev = Some(c);
    }
    dedup
}

#[derive(Clone, Debug)]
struct Indexed {
    tokens: Vec<String>,
    surname_skels: Vec<String>,
    given_skels: Vec<String>,
    dob: PartialDate,
    nationality: Option<String>,
    value: u16,
}

/// An in-memory index of the person entries of one list version.
#[derive(Clone, Debug, Default)]
pub struct PersonIndex {
    entries: Vec<Indexed>,
    by_skeleton: HashMap<String, Vec<u32>>,
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn norm_nat(n: &Option<String>) -> Option<String> {
    n.as_ref()
        .map(|s| s.trim().trim_matches('<').to_ascii_uppercase())
        .filter(|s| !s.is_empty())
}

/// The identity of a person entry (used for removals): normalised tokens, date, nationality.
pub(crate) fn identity(e: &PersonRecord) -> (Vec<String>, PartialDate, Option<String>) {
    let mut t = name_tokens(&e.surname);
    t.extend(name_tokens(&e.given_names));
    (sorted(t), e.dob, norm_nat(&e.nationality))
}

/// A person entry as stored in a file (reason as a table index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersonRecord {
    pub(crate) surname: String,
    pub(crate) given_names: String,
    pub(crate) dob: PartialDate,
    pub(crate) nationality: Option<String>,
    pub(crate) value: u16,
}

impl PersonRecord {
    pub(crate) fn from_entry(
        e: &PersonEntry,
        reasons: &mut Reasons,
    ) -> Result<Self, WatchlistError> {
        if e.surname.len() > 255 || e.given_names.len() > 255 {
            return Err(WatchlistError::Input(
                "person name longer than 255 bytes".into(),
            ));
        }
        if name_tokens(&e.surname).is_empty() {
            return Err(WatchlistError::Input(format!(
                "person entry {:?} has no surname",
                e.surname
            )));
        }
        let nationality = norm_nat(&e.nationality);
        if let Some(n) = &nationality {
            if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(WatchlistError::Input(format!(
                    "nationality {n:?} must be 1-3 letters"
                )));
            }
        }
        Ok(PersonRecord {
            surname: e.surname.clone(),
            given_names: e.given_names.clone(),
            dob: e.dob,
            nationality,
            value: reasons.intern(e.action, &e.reason)?,
        })
    }
}

/// Encodes person records for a file section.
pub(crate) fn encode_records(recs: &[PersonRecord]) -> Vec<u8> {
    let mut out = (recs.len() as u32).to_le_bytes().to_vec();
    for r in recs {
        out.extend_from_slice(&r.value.to_le_bytes());
        let mut nat = [0u8; 3];
        if let Some(n) = &r.nationality {
            for (d, s) in nat.iter_mut().zip(n.bytes()) {
                *d = s;
            }
        }
        out.extend_from_slice(&nat);
        out.extend_from_slice(&r.dob.year.to_le_bytes());
        out.push(r.dob.month);
        out.push(r.dob.day);
        out.push(r.surname.len() as u8);
        out.extend_from_slice(r.surname.as_bytes());
        out.push(r.given_names.len() as u8);
        out.extend_from_slice(r.given_names.as_bytes());
    }
    out
}

/// Decodes a person section; `count` must match the header.
pub(crate) fn decode_records(
    b: &[u8],
    count: u64,
    reasons: &Reasons,
) -> Result<Vec<PersonRecord>, WatchlistError> {
    let bad = |m: &str| WatchlistError::Corrupt(format!("person section: {m}"));
    if b.is_empty() && count == 0 {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(b);
    let n = r.u32().ok_or_else(|| bad("truncated"))?;
    if u64::from(n) != count {
        return Err(bad("count does not match the header"));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let value = r.u16().ok_or_else(|| bad("truncated"))?;
        if reasons.get(value).is_none() {
            return Err(bad("reason index out of range"));
        }
        let nat = r.bytes(3).ok_or_else(|| bad("truncated"))?;
        let nat_s: String = nat
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as char)
            .collect();
        if !nat_s.bytes().all(|c| c.is_ascii_uppercase()) {
            return Err(bad("bad nationality"));
        }
        let year = r.u16().ok_or_else(|| bad("truncated"))?;
        let month = r.u8().ok_or_else(|| bad("truncated"))?;
        let day = r.u8().ok_or_else(|| bad("truncated"))?;
        if month > 12 || day > 31 {
            return Err(bad("bad date of birth"));
        }
        let mut text = || -> Result<String, WatchlistError> {
            let len = r.u8().ok_or_else(|| bad("truncated"))?;
            let s = r.bytes(usize::from(len)).ok_or_else(|| bad("truncated"))?;
            String::from_utf8(s.to_vec()).map_err(|_| bad("name is not UTF-8"))
        };
        let surname = text()?;
        let given_names = text()?;
        out.push(PersonRecord {
            surname,
            given_names,
            dob: PartialDate { year, month, day },
            nationality: if nat_s.is_empty() { None } else { Some(nat_s) },
            value,
        });
    }
    if !r.rest().is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Result of a person lookup: entry value index and exactness.
pub(crate) struct PersonMatch {
    pub(crate) value: u16,
    pub(crate) exact: bool,
}

impl PersonIndex {
    /// Indexes person records (values index into the list's reason table).
    pub(crate) fn build(recs: &[PersonRecord]) -> Self {
        let mut idx = PersonIndex::default();
        for (i, r) in recs.iter().enumerate() {
            let s_tokens = name_tokens(&r.surname);
            let g_tokens = name_tokens(&r.given_names);
            let surname_skels: Vec<String> = s_tokens.iter().map(|t| skeleton(t)).collect();
            let given_skels: Vec<String> = g_tokens.iter().map(|t| skeleton(t)).collect();
            for s in surname_skels.iter().chain(&given_skels) {
                let post = idx.by_skeleton.entry(s.clone()).or_default();
                if post.last() != Some(&(i as u32)) {
                    post.push(i as u32);
                }
            }
            let mut tokens = s_tokens;
            tokens.extend(g_tokens);
            idx.entries.push(Indexed {
                tokens: sorted(tokens),
                surname_skels,
                given_skels,
                dob: r.dob,
                nationality: r.nationality.clone(),
                value: r.value,
            });
        }
        idx
    }

    /// Number of indexed entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no person entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Finds the strongest match for a traveller, if any. Exact matches win over fuzzy ones.
    pub(crate) fn lookup(&self, q: &PersonQuery, reasons: &Reasons) -> Option<PersonMatch> {
        let mut q_tokens = name_tokens(&q.surname);
        q_tokens.extend(name_tokens(&q.given_names));
        if q_tokens.is_empty() {
            return None;
        }
        let q_skels: Vec<String> = q_tokens.iter().map(|t| skeleton(t)).collect();
        let q_sorted = sorted(q_tokens);
        let q_nat = norm_nat(&q.nationality);
        let mut cands: Vec<u32> = q_skels
            .iter()
            .filter_map(|s| self.by_skeleton.get(s))
            .flatten()
            .copied()
            .collect();
        cands.sort_unstable();
        cands.dedup();
        let mut best: Option<PersonMatch> = None;
        for c in cands {
            let Some(e) = self.entries.get(c as usize) else {
                continue;
            };
            if !e.dob.compatible(&q.dob) {
                continue;
            }
            if let (Some(en), Some(qn)) = (&e.nationality, &q_nat) {
                if en != qn {
                    continue;
                }
            }
            let has = |s: &String| q_skels.contains(s);
            let surnames_ok = e.surname_skels.iter().all(has);
            let given_ok = e.given_skels.is_empty() || e.given_skels.iter().any(has);
            if !(surnames_ok && given_ok) {
                continue;
            }
            let exact = e.tokens == q_sorted
                && e.dob.exactly_covers(&q.dob)
                && (e.nationality.is_none() || q_nat.is_some());
            let action = reasons.get(e.value).map(|r| r.0);
            let m = PersonMatch {
                value: e.value,
                exact,
            };
            let better = match &best {
                None => true,
                Some(b) => {
                    let b_action = reasons.get(b.value).map(|r| r.0);
                    (m.exact && !b.exact) || (m.exact == b.exact && action > b_action)
                }
            };
            if better {
                best = Some(m);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(entries: &[PersonEntry]) -> (PersonIndex, Reasons) {
        let mut reasons = Reasons::default();
        let recs: Vec<PersonRecord> = entries
            .iter()
            .map(|e| PersonRecord::from_entry(e, &mut reasons))
            .collect::<Result<_, _>>()
            .expect("valid entries");
        (PersonIndex::build(&recs), reasons)
    }

    fn entry(s: &str, g: &str, dob: &str, nat: Option<&str>, a: Action) -> PersonEntry {
        PersonEntry {
            surname: s.into(),
            given_names: g.into(),
            dob: PartialDate::parse(dob).expect("date"),
            nationality: nat.map(String::from),
            action: a,
            reason: "TEST".into(),
        }
    }

    fn q(s: &str, g: &str, dob: &str, nat: &str) -> PersonQuery {
        PersonQuery {
            surname: s.into(),
            given_names: g.into(),
            dob: PartialDate::parse(dob).expect("date"),
            nationality: Some(nat.into()),
        }
    }

    #[test]
    fn tokens_fold_case_and_diacritics() {
        assert_eq!(
            name_tokens("Müller-Lüdenscheidt, José"),
            vec!["MULLER", "LUDENSCHEIDT", "JOSE"]
        );
        assert_eq!(
            name_tokens("ERIKSSON<<ANNA<MARIA"),
            vec!["ERIKSSON", "ANNA", "MARIA"]
        );
        assert_eq!(
            name_tokens("Straße Łukasz Øster"),
            vec!["STRASSE", "LUKASZ", "OSTER"]
        );
    }

    #[test]
    fn skeletons_fold_transliterations() {
        assert_eq!(skeleton("MOHAMMED"), skeleton("MUHAMMAD"));
        assert_eq!(skeleton("MOHAMED"), skeleton("MOHAMMAD"));
        assert_eq!(skeleton("YUSUF"), skeleton("JUSUF"));
        assert_eq!(skeleton("YOUSSEF"), skeleton("YUSUF"));
        assert_eq!(skeleton("IVANOVA"), skeleton("IWANOWA"));
        assert_eq!(skeleton("MUELLER"), skeleton("MULLER"));
        assert_eq!(skeleton("KHALED"), skeleton("HALED"));
        assert_ne!(skeleton("SMITH"), skeleton("JONES"));
    }

    #[test]
    fn exact_fuzzy_and_clear() {
        let (i, r) = idx(&[
            entry(
                "Eriksson",
                "Anna Maria",
                "1969-08-06",
                Some("UTO"),
                Action::Hold,
            ),
            entry("Mohammed", "Ali", "1980", None, Action::Hold),
        ]);
        // Exact, any case/diacritics/order.
        let m = i
            .lookup(&q("ERIKSSON", "ANNA MARIA", "1969-08-06", "UTO"), &r)
            .expect("hit");
        assert!(m.exact);
        let m = i
            .lookup(&q("anna maria", "Eriksson", "1969-08-06", "UTO"), &r)
            .expect("hit");
        assert!(m.exact, "swapped name order still exact");
        // Partial DOB on the entry: any date in 1980 matches exactly.
        let m = i
            .lookup(&q("MOHAMMED", "ALI", "1980-03-04", "XXA"), &r)
            .expect("hit");
        assert!(m.exact);
        // Transliteration variant: fuzzy.
        let m = i
            .lookup(&q("MUHAMMAD", "ALI", "1980-03-04", "XXA"), &r)
            .expect("hit");
        assert!(!m.exact);
        // Missing one given name: fuzzy.
        let m = i
            .lookup(&q("ERIKSSON", "ANNA", "1969-08-06", "UTO"), &r)
            .expect("hit");
        assert!(!m.exact);
        // Unknown DOB day on the document: fuzzy, not exact.
        let m = i
            .lookup(&q("ERIKSSON", "ANNA MARIA", "1969-08", "UTO"), &r)
            .expect("hit");
        assert!(!m.exact);
        // Different DOB, different nationality, different name: clear.
        assert!(i
            .lookup(&q("ERIKSSON", "ANNA MARIA", "1970-08-06", "UTO"), &r)
            .is_none());
        assert!(i
            .lookup(&q("ERIKSSON", "ANNA MARIA", "1969-08-06", "D"), &r)
            .is_none());
        assert!(i
            .lookup(&q("SMITH", "JOHN", "1969-08-06", "UTO"), &r)
            .is_none());
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let mut reasons = Reasons::default();
        let e = entry("Ériksson", "Anna", "1969-08", Some("UTO"), Action::Refer);
        let rec = PersonRecord::from_entry(&e, &mut reasons).expect("ok");
        let enc = encode_records(std::slice::from_ref(&rec));
        let dec = decode_records(&enc, 1, &reasons).expect("decodes");
        assert_eq!(dec, vec![rec]);
        for cut in 0..enc.len() {
            assert!(decode_records(&enc[..cut], 1, &reasons).is_err());
        }
        assert!(decode_records(&enc, 2, &reasons).is_err());
    }
}
