//! The chip's MRZ (DG1) against the MRZ read optically or the typed key.

use super::*;

/// Result of comparing the chip's MRZ (DG1) with the MRZ read optically.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MrzComparison {
    /// True when every compared field is equal.
    pub equal: bool,
    /// Names of the fields that differ.
    pub mismatched: Vec<&'static str>,
}

/// Compares the chip MRZ with the OCR MRZ field by field.
pub fn compare_mrz(chip: &Mrz, ocr: &Mrz) -> MrzComparison {
    let mut mismatched = Vec::new();
    let fields: [(&'static str, bool); 12] = [
        ("format", chip.format == ocr.format),
        ("document_code", chip.document_code == ocr.document_code),
        ("issuing_state", chip.issuing_state == ocr.issuing_state),
        (
            "document_number",
            chip.document_number == ocr.document_number,
        ),
        ("surname", chip.surname == ocr.surname),
        ("given_names", chip.given_names == ocr.given_names),
        ("nationality", chip.nationality == ocr.nationality),
        ("date_of_birth", chip.date_of_birth == ocr.date_of_birth),
        ("sex", chip.sex == ocr.sex),
        ("date_of_expiry", chip.date_of_expiry == ocr.date_of_expiry),
        ("optional_data", chip.optional_data == ocr.optional_data),
        (
            "optional_data_2",
            chip.optional_data_2 == ocr.optional_data_2,
        ),
    ];
    for (name, same) in fields {
        if !same {
            mismatched.push(name);
        }
    }
    MrzComparison {
        equal: mismatched.is_empty(),
        mismatched,
    }
}

/// Compares the chip MRZ with an access key (when only the key was typed, not a full MRZ).
pub fn mrz_matches_key(chip: &Mrz, key: &MrzKey) -> bool {
    chip.document_number == key.document_number
        && chip.date_of_birth == key.date_of_birth
        && chip.date_of_expiry == key.date_of_expiry
}
