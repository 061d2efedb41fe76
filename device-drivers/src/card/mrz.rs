//! Machine readable zone (ICAO 9303 Parts 3–6): TD1, TD2 and TD3 parsing and formatting with
//! every check digit, and the MRZ key (document number, birth, expiry) that keys BAC and PACE.

use thiserror::Error;

pub use crate::types::MrzDate;

/// How an MRZ misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MrzError {
    /// The text has neither 3×30 (TD1), 2×36 (TD2) nor 2×44 (TD3) characters.
    #[error("MRZ has {0} characters; expected 90 (TD1), 72 (TD2) or 88 (TD3)")]
    BadLength(usize),
    /// A line has the wrong length.
    #[error("MRZ line {line} has {found} characters, expected {expected}")]
    BadLineLength {
        /// 1-based line number.
        line: usize,
        /// Required length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// The text is split into the wrong number of lines for its size.
    #[error("MRZ has {found} lines, expected {expected}")]
    BadLineCount {
        /// Lines the format has.
        expected: usize,
        /// Lines present.
        found: usize,
    },
    /// A character outside `A-Z 0-9 <`.
    #[error("MRZ character {found:?} at position {position} is not one of A-Z, 0-9, <")]
    BadCharacter {
        /// 0-based position in the concatenated MRZ.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// A check digit that does not match its field.
    #[error("MRZ check digit of {field} is {found:?}, computed {expected}")]
    CheckDigit {
        /// The field the digit protects.
        field: &'static str,
        /// The computed digit.
        expected: char,
        /// The digit present.
        found: char,
    },
    /// A field with an impossible value (date, sex, too long for its slot).
    #[error("MRZ field {field} is invalid: {detail}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// The three ICAO machine-readable travel-document sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MrzFormat {
    /// ID-card size, 3 lines of 30.
    Td1,
    /// 2 lines of 36.
    Td2,
    /// Passport booklet, 2 lines of 44.
    Td3,
}

impl MrzFormat {
    /// (number of lines, line length).
    pub fn shape(self) -> (usize, usize) {
        match self {
            MrzFormat::Td1 => (3, 30),
            MrzFormat::Td2 => (2, 36),
            MrzFormat::Td3 => (2, 44),
        }
    }
}

/// The ICAO 7-3-1 check digit of `field`, or `None` if it holds a character outside `A-Z0-9<`.
pub fn check_digit(field: &str) -> Option<char> {
    let mut sum = 0u32;
    for (i, c) in field.chars().enumerate() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            '<' => 0,
            _ => return None,
        };
        sum += v * [7, 3, 1][i % 3];
    }
    char::from_digit(sum % 10, 10)
}

/// A parsed MRZ. Text fields have their `<` fillers removed (inner `<` in names become spaces);
/// dates stay as the raw `YYMMDD` of the document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mrz {
    /// TD1, TD2 or TD3.
    pub format: MrzFormat,
    /// Document code, e.g. `P`, `I`, `AC` (fillers removed).
    pub document_code: String,
    /// Issuing state or organisation (3 letters, fillers removed).
    pub issuing_state: String,
    /// Document number (any length; > 9 uses the TD1 extension in the optional data).
    pub document_number: String,
    /// Primary identifier.
    pub surname: String,
    /// Secondary identifier, words separated by single spaces.
    pub given_names: String,
    /// Nationality (3 letters).
    pub nationality: String,
    /// Date of birth, `YYMMDD` (may contain `<` for unknown parts).
    pub date_of_birth: String,
    /// `M`, `F` or `<` (unspecified; shown as `X` in the VIZ).
    pub sex: char,
    /// Date of expiry, `YYMMDD`.
    pub date_of_expiry: String,
    /// Optional data (TD3: personal number; TD1: line-1 optional data), fillers removed.
    pub optional_data: String,
    /// TD1 line-2 optional data, fillers removed (empty for TD2/TD3).
    pub optional_data_2: String,
}

fn trim_filler(s: &str) -> String {
    s.trim_end_matches('<').to_string()
}

fn slice(s: &str, from: usize, to: usize) -> &str {
    // All characters are checked ASCII before slicing, so byte and char offsets coincide.
    s.get(from..to).unwrap_or("")
}

fn char_at(s: &str, i: usize) -> char {
    s.as_bytes().get(i).map(|b| *b as char).unwrap_or('<')
}

fn verify(field: &'static str, data: &str, found: char) -> Result<(), MrzError> {
    let expected = check_digit(data).ok_or(MrzError::BadField {
        field,
        detail: "non-MRZ character".into(),
    })?;
    if expected != found {
        return Err(MrzError::CheckDigit {
            field,
            expected,
            found,
        });
    }
    Ok(())
}

/// Splits the name field into (primary, secondary identifier).
fn split_names(field: &str) -> (String, String) {
    let trimmed = field.trim_end_matches('<');
    let (primary, secondary) = match trimmed.find("<<") {
        Some(i) => (&trimmed[..i], &trimmed[i + 2..]),
        None => (trimmed, ""),
    };
    let words = |s: &str| {
        s.split('<')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    (words(primary), words(secondary))
}

fn names_field(surname: &str, given: &str) -> String {
    let enc = |s: &str| {
        s.split_whitespace()
            .map(|w| w.replace(['-', '\''], "<"))
            .collect::<Vec<_>>()
            .join("<")
    };
    if given.trim().is_empty() {
        enc(surname)
    } else {
        format!("{}<<{}", enc(surname), enc(given))
    }
}

fn pad(s: &str, len: usize) -> String {
    let mut out: String = s.chars().take(len).collect();
    while out.len() < len {
        out.push('<');
    }
    out
}

fn check_date(field: &'static str, s: &str, allow_unknown: bool) -> Result<(), MrzError> {
    if s.len() != 6 {
        return Err(MrzError::BadField {
            field,
            detail: format!("{s:?} is not YYMMDD"),
        });
    }
    if allow_unknown && s.chars().any(|c| c == '<') {
        return Ok(());
    }
    match MrzDate::parse(s) {
        Some(_) => Ok(()),
        None => Err(MrzError::BadField {
            field,
            detail: format!("{s:?} is not a date YYMMDD"),
        }),
    }
}

impl Mrz {
    /// Parses an MRZ given as its lines (newline-separated, surrounding whitespace ignored)
    /// or as the concatenated characters, verifying every check digit.
    pub fn parse(text: &str) -> Result<Mrz, MrzError> {
        let joined: String = text.split_whitespace().collect();
        for (position, found) in joined.chars().enumerate() {
            if !(found.is_ascii_uppercase() || found.is_ascii_digit() || found == '<') {
                return Err(MrzError::BadCharacter { position, found });
            }
        }
        let lines: Vec<&str> = text.split_whitespace().collect();
        let format = match joined.len() {
            90 => MrzFormat::Td1,
            72 => MrzFormat::Td2,
            88 => MrzFormat::Td3,
            n => return Err(MrzError::BadLength(n)),
        };
        let (count, width) = format.shape();
        if lines.len() > 1 && lines.len() != count {
            return Err(MrzError::BadLineCount {
                expected: count,
                found: lines.len(),
            });
        }
        if lines.len() == count {
            for (i, l) in lines.iter().enumerate() {
                if l.len() != width {
                    return Err(MrzError::BadLineLength {
                        line: i + 1,
                        expected: width,
                        found: l.len(),
                    });
                }
            }
        }
        let mrz = match format {
            MrzFormat::Td1 => Self::parse_td1(&joined)?,
            MrzFormat::Td2 | MrzFormat::Td3 => Self::parse_td23(&joined, format)?,
        };
        check_date("date_of_birth", &mrz.date_of_birth, true)?;
        check_date("date_of_expiry", &mrz.date_of_expiry, false)?;
        if !matches!(mrz.sex, 'M' | 'F' | '<' | 'X') {
            return Err(MrzError::BadField {
                field: "sex",
                detail: format!("{:?} is not M, F or <", mrz.sex),
            });
        }
        Ok(mrz)
    }

    fn parse_td1(s: &str) -> Result<Mrz, MrzError> {
        let l1 = slice(s, 0, 30);
        let l2 = slice(s, 30, 60);
        let l3 = slice(s, 60, 90);
        let mut doc_no = slice(l1, 5, 14).to_string();
        let mut doc_cd = char_at(l1, 14);
        let mut optional = slice(l1, 15, 30).to_string();
        if doc_cd == '<' && !optional.starts_with('<') {
            // Long document number: the remainder and its check digit open the optional data.
            let ext_len = optional.find('<').unwrap_or(optional.len());
            if ext_len < 2 {
                return Err(MrzError::BadField {
                    field: "document_number",
                    detail: "long-number extension has no check digit".into(),
                });
            }
            let ext = optional[..ext_len].to_string();
            doc_no.push_str(&ext[..ext_len - 1]);
            doc_cd = char_at(&ext, ext_len - 1);
            optional = optional[ext_len..].to_string();
        }
        verify("document_number", &doc_no, doc_cd)?;
        verify("date_of_birth", slice(l2, 0, 6), char_at(l2, 6))?;
        verify("date_of_expiry", slice(l2, 8, 14), char_at(l2, 14))?;
        let composite = format!(
            "{}{}{}{}",
            slice(l1, 5, 30),
            slice(l2, 0, 7),
            slice(l2, 8, 15),
            slice(l2, 18, 29)
        );
        verify("composite", &composite, char_at(l2, 29))?;
        let (surname, given_names) = split_names(l3);
        Ok(Mrz {
            format: MrzFormat::Td1,
            document_code: trim_filler(slice(l1, 0, 2)),
            issuing_state: trim_filler(slice(l1, 2, 5)),
            document_number: trim_filler(&doc_no),
            surname,
            given_names,
            nationality: trim_filler(slice(l2, 15, 18)),
            date_of_birth: slice(l2, 0, 6).to_string(),
            sex: char_at(l2, 7),
            date_of_expiry: slice(l2, 8, 14).to_string(),
            optional_data: trim_filler(optional.trim_start_matches('<')),
            optional_data_2: trim_filler(slice(l2, 18, 29)),
        })
    }

    fn parse_td23(s: &str, format: MrzFormat) -> Result<Mrz, MrzError> {
        let w = format.shape().1;
        let l1 = slice(s, 0, w);
        let l2 = slice(s, w, 2 * w);
        verify("document_number", slice(l2, 0, 9), char_at(l2, 9))?;
        verify("date_of_birth", slice(l2, 13, 19), char_at(l2, 19))?;
        verify("date_of_expiry", slice(l2, 21, 27), char_at(l2, 27))?;
        let (optional, composite_end) = if format == MrzFormat::Td3 {
            let opt = slice(l2, 28, 42);
            let cd = char_at(l2, 42);
            // An all-filler personal number may carry '<' or '0' as its check digit.
            if !(cd == '<' && opt.chars().all(|c| c == '<')) {
                verify("optional_data", opt, cd)?;
            }
            (opt, 43)
        } else {
            (slice(l2, 28, 35), 35)
        };
        let composite = format!(
            "{}{}{}",
            slice(l2, 0, 10),
            slice(l2, 13, 20),
            slice(l2, 21, composite_end)
        );
        verify("composite", &composite, char_at(l2, composite_end))?;
        let (surname, given_names) = split_names(slice(l1, 5, w));
        Ok(Mrz {
            format,
            document_code: trim_filler(slice(l1, 0, 2)),
            issuing_state: trim_filler(slice(l1, 2, 5)),
            document_number: trim_filler(slice(l2, 0, 9)),
            surname,
            given_names,
            nationality: trim_filler(slice(l2, 10, 13)),
            date_of_birth: slice(l2, 13, 19).to_string(),
            sex: char_at(l2, 20),
            date_of_expiry: slice(l2, 21, 27).to_string(),
            optional_data: trim_filler(optional),
            optional_data_2: String::new(),
        })
    }

    /// Formats the MRZ as its lines, computing every check digit. Fails if a field is too long
    /// for its slot or holds characters outside the MRZ set.
    pub fn to_lines(&self) -> Result<Vec<String>, MrzError> {
        let fields: [(&'static str, &str); 8] = [
            ("document_code", &self.document_code),
            ("issuing_state", &self.issuing_state),
            ("document_number", &self.document_number),
            ("nationality", &self.nationality),
            ("date_of_birth", &self.date_of_birth),
            ("date_of_expiry", &self.date_of_expiry),
            ("optional_data", &self.optional_data),
            ("optional_data_2", &self.optional_data_2),
        ];
        for (field, v) in fields {
            if !v
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<')
            {
                return Err(MrzError::BadField {
                    field,
                    detail: format!("{v:?} has characters outside A-Z, 0-9, <"),
                });
            }
        }
        let limit = |field: &'static str, v: &str, max: usize| {
            if v.len() > max {
                Err(MrzError::BadField {
                    field,
                    detail: format!("{} characters, at most {max} fit", v.len()),
                })
            } else {
                Ok(())
            }
        };
        limit("document_code", &self.document_code, 2)?;
        limit("issuing_state", &self.issuing_state, 3)?;
        limit("nationality", &self.nationality, 3)?;
        check_date("date_of_birth", &self.date_of_birth, true)?;
        check_date("date_of_expiry", &self.date_of_expiry, false)?;
        let cd = |field: &'static str, s: &str| {
            check_digit(s).ok_or(MrzError::BadField {
                field,
                detail: "non-MRZ character".into(),
            })
        };
        let sex = if self.sex == 'X' { '<' } else { self.sex };
        let names = names_field(&self.surname, &self.given_names);
        if !names
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<')
        {
            return Err(MrzError::BadField {
                field: "name",
                detail: "names must be transliterated to A-Z".into(),
            });
        }
        let dob = &self.date_of_birth;
        let exp = &self.date_of_expiry;
        match self.format {
            MrzFormat::Td1 => {
                let (doc_field, opt1) = if self.document_number.len() <= 9 {
                    let d = pad(&self.document_number, 9);
                    let c = cd("document_number", &d)?;
                    (format!("{d}{c}"), self.optional_data.clone())
                } else {
                    let head = &self.document_number[..9];
                    let tail = &self.document_number[9..];
                    let c = cd("document_number", &self.document_number)?;
                    (
                        format!("{head}<"),
                        format!("{tail}{c}<{}", self.optional_data),
                    )
                };
                limit("optional_data", &opt1, 15)?;
                limit("optional_data_2", &self.optional_data_2, 11)?;
                let l1 = format!(
                    "{}{}{}{}",
                    pad(&self.document_code, 2),
                    pad(&self.issuing_state, 3),
                    doc_field,
                    pad(&opt1, 15)
                );
                let l2_head = format!(
                    "{dob}{}{sex}{exp}{}{}{}",
                    cd("date_of_birth", dob)?,
                    cd("date_of_expiry", exp)?,
                    pad(&self.nationality, 3),
                    pad(&self.optional_data_2, 11)
                );
                let composite = format!(
                    "{}{}{}{}",
                    slice(&l1, 5, 30),
                    slice(&l2_head, 0, 7),
                    slice(&l2_head, 8, 15),
                    slice(&l2_head, 18, 29)
                );
                let l2 = format!("{l2_head}{}", cd("composite", &composite)?);
                Ok(vec![l1, l2, pad(&names, 30)])
            }
            MrzFormat::Td2 | MrzFormat::Td3 => {
                let w = self.format.shape().1;
                limit("document_number", &self.document_number, 9)?;
                let d = pad(&self.document_number, 9);
                let l1 = format!(
                    "{}{}{}",
                    pad(&self.document_code, 2),
                    pad(&self.issuing_state, 3),
                    pad(&names, w - 5)
                );
                let mut l2 = format!(
                    "{d}{}{}{dob}{}{sex}{exp}{}",
                    cd("document_number", &d)?,
                    pad(&self.nationality, 3),
                    cd("date_of_birth", dob)?,
                    cd("date_of_expiry", exp)?,
                );
                if self.format == MrzFormat::Td3 {
                    limit("optional_data", &self.optional_data, 14)?;
                    let opt = pad(&self.optional_data, 14);
                    let opt_cd = if self.optional_data.is_empty() {
                        '<'
                    } else {
                        cd("optional_data", &opt)?
                    };
                    l2.push_str(&opt);
                    l2.push(opt_cd);
                } else {
                    limit("optional_data", &self.optional_data, 7)?;
                    l2.push_str(&pad(&self.optional_data, 7));
                }
                let composite = format!(
                    "{}{}{}",
                    slice(&l2, 0, 10),
                    slice(&l2, 13, 20),
                    slice(&l2, 21, l2.len())
                );
                l2.push(cd("composite", &composite)?);
                Ok(vec![l1, l2])
            }
        }
    }

    /// The MRZ as the concatenated characters, as stored in DG1.
    pub fn to_mrz_string(&self) -> Result<String, MrzError> {
        Ok(self.to_lines()?.concat())
    }

    /// The access key for BAC / PACE.
    pub fn key(&self) -> MrzKey {
        MrzKey {
            document_number: self.document_number.clone(),
            date_of_birth: self.date_of_birth.clone(),
            date_of_expiry: self.date_of_expiry.clone(),
        }
    }
}

/// The three MRZ fields that key BAC and PACE-MRZ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MrzKey {
    /// Document number without fillers.
    pub document_number: String,
    /// Date of birth, `YYMMDD`.
    pub date_of_birth: String,
    /// Date of expiry, `YYMMDD`.
    pub date_of_expiry: String,
}

impl MrzKey {
    /// Parses the `DOCNO,YYMMDD,YYMMDD` form of `gatectl doc read --mrz-key` (case-insensitive).
    pub fn parse(s: &str) -> Result<MrzKey, MrzError> {
        let parts: Vec<&str> = s.split(',').collect();
        let [doc, dob, exp] = parts.as_slice() else {
            return Err(MrzError::BadField {
                field: "mrz_key",
                detail: "expected DOCNO,YYMMDD,YYMMDD".into(),
            });
        };
        MrzKey::new(doc, dob, exp)
    }

    /// The key from its three fields as printed (surrounding spaces and trailing `<`
    /// fillers of the number ignored, letters upper-cased): a document number in the MRZ
    /// alphabet, a date of birth `YYMMDD` (`<` for unknown parts allowed) and a date of
    /// expiry `YYMMDD`.
    pub fn new(
        document_number: &str,
        date_of_birth: &str,
        date_of_expiry: &str,
    ) -> Result<MrzKey, MrzError> {
        let doc = document_number
            .trim()
            .to_ascii_uppercase()
            .trim_end_matches('<')
            .to_string();
        if doc.is_empty()
            || !doc
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<')
        {
            return Err(MrzError::BadField {
                field: "document_number",
                detail: format!("{doc:?} is not an MRZ document number"),
            });
        }
        let (dob, exp) = (date_of_birth.trim(), date_of_expiry.trim());
        check_date("date_of_birth", dob, true)?;
        check_date("date_of_expiry", exp, false)?;
        Ok(MrzKey {
            document_number: doc,
            date_of_birth: dob.to_string(),
            date_of_expiry: exp.to_string(),
        })
    }

    /// The "MRZ information" string hashed into Kseed / the PACE password:
    /// document number (padded to 9) + check digit, birth + check digit, expiry + check digit.
    pub fn mrz_information(&self) -> Result<String, MrzError> {
        // Numbers longer than 9 characters are used whole (ICAO 9303 Part 11, 4.3.2).
        let doc = if self.document_number.len() >= 9 {
            self.document_number.clone()
        } else {
            pad(&self.document_number, 9)
        };
        let cd = |field: &'static str, s: &str| {
            check_digit(s).ok_or(MrzError::BadField {
                field,
                detail: format!("{s:?} has characters outside A-Z, 0-9, <"),
            })
        };
        Ok(format!(
            "{doc}{}{}{}{}{}",
            cd("document_number", &doc)?,
            self.date_of_birth,
            cd("date_of_birth", &self.date_of_birth)?,
            self.date_of_expiry,
            cd("date_of_expiry", &self.date_of_expiry)?
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD3: &str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C<3UTO6908061F9406236ZE184226B<<<<<14";
    const TD1: &str = "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<";
    const TD2: &str = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6";

    #[test]
    fn check_digits_of_specimens() {
        assert_eq!(check_digit("L898902C<"), Some('3'));
        assert_eq!(check_digit("690806"), Some('1'));
        assert_eq!(check_digit("940623"), Some('6'));
        assert_eq!(check_digit("ZE184226B<<<<<"), Some('1'));
        assert_eq!(check_digit("D23145890"), Some('7'));
        assert_eq!(check_digit("520727"), Some('3'));
        assert_eq!(check_digit("a"), None);
    }

    #[test]
    fn td3_specimen() {
        let m = Mrz::parse(TD3).unwrap();
        assert_eq!(m.format, MrzFormat::Td3);
        assert_eq!(m.document_code, "P");
        assert_eq!(m.issuing_state, "UTO");
        assert_eq!(m.surname, "ERIKSSON");
        assert_eq!(m.given_names, "ANNA MARIA");
        assert_eq!(m.document_number, "L898902C");
        assert_eq!(m.nationality, "UTO");
        assert_eq!(m.date_of_birth, "690806");
        assert_eq!(m.sex, 'F');
        assert_eq!(m.date_of_expiry, "940623");
        assert_eq!(m.optional_data, "ZE184226B");
        assert_eq!(m.to_lines().unwrap().join("\n"), TD3);
        assert_eq!(
            m.key().mrz_information().unwrap(),
            "L898902C<369080619406236"
        );
    }

    #[test]
    fn td1_specimen() {
        let m = Mrz::parse(TD1).unwrap();
        assert_eq!(m.format, MrzFormat::Td1);
        assert_eq!(m.document_code, "I");
        assert_eq!(m.document_number, "D23145890");
        assert_eq!(m.date_of_birth, "740812");
        assert_eq!(m.date_of_expiry, "120415");
        assert_eq!(m.sex, 'F');
        assert_eq!(m.surname, "ERIKSSON");
        assert_eq!(m.given_names, "ANNA MARIA");
        assert_eq!(m.to_lines().unwrap().join("\n"), TD1);
    }

    #[test]
    fn td2_specimen() {
        let m = Mrz::parse(TD2).unwrap();
        assert_eq!(m.format, MrzFormat::Td2);
        assert_eq!(m.document_number, "D23145890");
        assert_eq!(m.to_lines().unwrap().join("\n"), TD2);
    }

    #[test]
    fn concatenated_form_parses() {
        let joined: String = TD3.split('\n').collect();
        assert_eq!(Mrz::parse(&joined).unwrap(), Mrz::parse(TD3).unwrap());
        assert_eq!(Mrz::parse(TD3).unwrap().to_mrz_string().unwrap(), joined);
    }

    #[test]
    fn every_check_digit_is_enforced() {
        // Positions (in the joined TD3) of: doc no, birth, expiry, optional, composite digits.
        let joined: String = TD3.split('\n').collect();
        let expect = [
            (44 + 9, "document_number"),
            (44 + 19, "date_of_birth"),
            (44 + 27, "date_of_expiry"),
            (44 + 42, "optional_data"),
            (44 + 43, "composite"),
        ];
        for (pos, field) in expect {
            let mut b = joined.clone().into_bytes();
            b[pos] = if b[pos] == b'0' { b'1' } else { b'0' };
            let err = Mrz::parse(std::str::from_utf8(&b).unwrap()).unwrap_err();
            assert!(
                matches!(err, MrzError::CheckDigit { field: f, .. } if f == field),
                "{field}: {err:?}"
            );
        }
        // A change in the data (not the digit) is caught too.
        let tampered = TD3.replace("L898902C", "L898902D");
        assert!(matches!(
            Mrz::parse(&tampered),
            Err(MrzError::CheckDigit {
                field: "document_number",
                ..
            })
        ));
    }

    #[test]
    fn td1_composite_enforced() {
        let bad = TD1.replace("<<<6\nERI", "<<<5\nERI");
        assert!(matches!(
            Mrz::parse(&bad),
            Err(MrzError::CheckDigit {
                field: "composite",
                ..
            })
        ));
    }

    #[test]
    fn td1_long_document_number_round_trips() {
        let mut m = Mrz::parse(TD1).unwrap();
        m.document_number = "D23145890123".into();
        m.optional_data = "AB".into();
        let lines = m.to_lines().unwrap();
        assert_eq!(&lines[0][14..15], "<");
        let back = Mrz::parse(&lines.join("\n")).unwrap();
        assert_eq!(back.document_number, "D23145890123");
        assert_eq!(back.optional_data, "AB");
    }

    #[test]
    fn bad_inputs_are_typed() {
        assert_eq!(Mrz::parse("P<UTO"), Err(MrzError::BadLength(5)));
        let lower = TD3.replace("ERIKSSON", "eriksson");
        assert!(matches!(
            Mrz::parse(&lower),
            Err(MrzError::BadCharacter { position: 5, .. })
        ));
        let bad_lines = format!("{}\n{}", &TD3[..43], &TD3[43..]);
        assert_eq!(
            Mrz::parse(&bad_lines),
            Err(MrzError::BadLineCount {
                expected: 2,
                found: 3
            })
        );
        let shifted = format!("{}\n{}", &TD3[..43], &TD3[43..].replace('\n', ""));
        assert!(matches!(
            Mrz::parse(&shifted),
            Err(MrzError::BadLineLength { line: 1, .. })
        ));
    }

    #[test]
    fn mrz_key_parse() {
        let k = MrzKey::parse("l898902c,690806,940623").unwrap();
        assert_eq!(k.mrz_information().unwrap(), "L898902C<369080619406236");
        assert!(MrzKey::parse("L898902C,690806").is_err());
        assert!(MrzKey::parse("L898902C,691306,940623").is_err());
        assert!(MrzKey::parse("L89-8902C,690806,940623").is_err());
        // G.1 PACE password: T22000129 / 640812 / 101031.
        let g1 = MrzKey::parse("T22000129,640812,101031").unwrap();
        assert_eq!(g1.mrz_information().unwrap(), "T22000129364081251010318");
    }

    #[test]
    fn names_with_hyphens_format() {
        let mut m = Mrz::parse(TD3).unwrap();
        m.surname = "VAN DER BERG".into();
        m.given_names = "JEAN-PAUL".into();
        let back = Mrz::parse(&m.to_lines().unwrap().join("\n")).unwrap();
        assert_eq!(back.surname, "VAN DER BERG");
        assert_eq!(back.given_names, "JEAN PAUL");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "[A-Z0-9<\n]{0,100}") {
            let _ = Mrz::parse(&s);
        }

        #[test]
        fn arbitrary_unicode_never_panics(s in ".{0,100}") {
            let _ = Mrz::parse(&s);
            let _ = MrzKey::parse(&s);
        }
    }
}
