//! Document keys: normalisation of (issuing state, document number), an exact
//! injective packing into 126 bits, and a bijective mix that spreads keys evenly
//! so that a sorted store can be bucketed by its top bits.
//!
//! Exactness: packing is injective on normalised input and the mix is a
//! bijection on `u128`, so two different documents never share a key and a
//! stored key identifies exactly one document.

use std::fmt;

/// Longest document number (after normalisation) that a key can hold.
pub const MAX_DOCNO_LEN: usize = 21;
/// Longest issuing-state code (ICAO 9303 three-letter codes; `D` for Germany).
pub const MAX_STATE_LEN: usize = 3;

/// Why a (state, document number) pair cannot be turned into a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The issuing state is not 1–3 letters A–Z (`<` filler and spaces ignored).
    #[error("issuing state {0:?} is not 1-3 letters A-Z")]
    BadState(String),
    /// The document number is empty, too long or has characters other than A–Z, 0–9.
    #[error(
        "document number {0:?} must be 1-{MAX_DOCNO_LEN} characters A-Z or 0-9 (spaces, '-' and '<' are ignored)"
    )]
    BadDocNumber(String),
}

/// The exact key of one document, in its mixed (evenly spread) form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey(u128);

impl fmt::Debug for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocKey({:032x})", self.0)
    }
}

fn symbol(c: u8) -> Option<u128> {
    match c {
        b'0'..=b'9' => Some(u128::from(c - b'0') + 1),
        b'A'..=b'Z' => Some(u128::from(c - b'A') + 11),
        _ => None,
    }
}

/// Normalises an issuing state: uppercase, `<` filler and spaces removed.
pub fn normalise_state(state: &str) -> Result<String, KeyError> {
    let s: String = state
        .chars()
        .filter(|c| *c != '<' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.is_empty() || s.len() > MAX_STATE_LEN || !s.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(KeyError::BadState(state.to_string()));
    }
    Ok(s)
}

/// Normalises a document number: uppercase, spaces, `-` and `<` removed.
pub fn normalise_docno(docno: &str) -> Result<String, KeyError> {
    let s: String = docno
        .chars()
        .filter(|c| !matches!(c, '<' | '-') && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.is_empty() || s.len() > MAX_DOCNO_LEN || !s.bytes().all(|b| symbol(b).is_some()) {
        return Err(KeyError::BadDocNumber(docno.to_string()));
    }
    Ok(s)
}

const M1: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
const M2: u128 = 0xd6e8_feb8_6659_fd93_2b7e_1516_28ae_d2a7;

/// A bijection on `u128` (xorshifts and odd multiplications are invertible).
pub(crate) fn mix(mut x: u128) -> u128 {
    x ^= x >> 67;
    x = x.wrapping_mul(M1);
    x ^= x >> 61;
    x = x.wrapping_mul(M2);
    x ^= x >> 64;
    x
}

impl DocKey {
    /// Builds the key of a document from its issuing state and number.
    pub fn new(state: &str, docno: &str) -> Result<Self, KeyError> {
        let st = normalise_state(state)?;
        let dn = normalise_docno(docno)?;
        let mut v: u128 = 0;
        let st = st.as_bytes();
        let dn = dn.as_bytes();
        for i in 0..MAX_STATE_LEN {
            v = v * 37 + st.get(i).and_then(|b| symbol(*b)).unwrap_or(0);
        }
        for i in 0..MAX_DOCNO_LEN {
            v = v * 37 + dn.get(i).and_then(|b| symbol(*b)).unwrap_or(0);
        }
        Ok(DocKey(mix(v)))
    }

    /// Rebuilds a key from its stored (mixed) form.
    pub fn from_mixed(v: u128) -> Self {
        DocKey(v)
    }

    /// The stored (mixed) form of the key.
    pub fn mixed(&self) -> u128 {
        self.0
    }

    /// The 64-bit value fed to the approximate in-RAM filter.
    pub fn filter_key(&self) -> u64 {
        ((self.0 >> 64) as u64) ^ (self.0 as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv_mul(m: u128) -> u128 {
        let mut inv = m;
        for _ in 0..7 {
            inv = inv.wrapping_mul(2u128.wrapping_sub(m.wrapping_mul(inv)));
        }
        inv
    }

    fn unxorshift(y: u128, s: u32) -> u128 {
        let mut x = y;
        for _ in 0..(128 / s + 1) {
            x = y ^ (x >> s);
        }
        x
    }

    fn unmix(mut x: u128) -> u128 {
        x = unxorshift(x, 64);
        x = x.wrapping_mul(inv_mul(M2));
        x = unxorshift(x, 61);
        x = x.wrapping_mul(inv_mul(M1));
        unxorshift(x, 67)
    }

    #[test]
    fn mix_is_invertible() {
        let mut x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for _ in 0..10_000 {
            assert_eq!(unmix(mix(x)), x);
            x = x.wrapping_mul(M1).wrapping_add(12345);
        }
    }

    #[test]
    fn normalisation_and_injectivity() {
        assert_eq!(
            DocKey::new("D<<", "c01x00t47"),
            DocKey::new("d", "C01X00T47")
        );
        assert_eq!(
            DocKey::new("UTO", "L898902C<"),
            DocKey::new("UTO", "L898 902-C")
        );
        // Padding cannot make two different inputs collide.
        assert_ne!(DocKey::new("UTO", "A1"), DocKey::new("UTO", "A10"));
        assert_ne!(DocKey::new("UT", "OA1"), DocKey::new("UTO", "A1"));
        assert_ne!(DocKey::new("UTO", "0"), DocKey::new("UTO", "00"));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(DocKey::new("", "1"), Err(KeyError::BadState(_))));
        assert!(matches!(
            DocKey::new("ABCD", "1"),
            Err(KeyError::BadState(_))
        ));
        assert!(matches!(
            DocKey::new("U1O", "1"),
            Err(KeyError::BadState(_))
        ));
        assert!(matches!(
            DocKey::new("ÜTO", "1"),
            Err(KeyError::BadState(_))
        ));
        assert!(matches!(
            DocKey::new("UTO", ""),
            Err(KeyError::BadDocNumber(_))
        ));
        assert!(matches!(
            DocKey::new("UTO", "12345678901234567890AB"),
            Err(KeyError::BadDocNumber(_))
        ));
        assert!(matches!(
            DocKey::new("UTO", "12_3"),
            Err(KeyError::BadDocNumber(_))
        ));
        assert!(DocKey::new("UTO", "12345678901234567890A").is_ok());
    }

    #[test]
    fn max_key_fits_in_126_bits() {
        // 37^24 < 2^126: the packed value never overflows u128.
        let mut v: u128 = 1;
        for _ in 0..24 {
            v = v.checked_mul(37).expect("fits");
        }
        assert!(v < (1u128 << 126));
    }
}
