//! Symmetric primitives of ICAO Doc 9303 Part 11: key derivation (section 9.7.1),
//! CBC encryption with 2-key 3DES and AES, ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC")
//! and AES-CMAC, both truncated to 8 bytes, and ISO/IEC 9797-1 padding method 2.

use aes::{Aes128, Aes192, Aes256};
use cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use cmac::Mac;
use des::{Des, TdesEde2};
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// Block cipher (and with it MAC algorithm and KDF hash) of a secure channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// 2-key 3DES in CBC mode, ISO 9797-1 MAC algorithm 3, SHA-1 KDF (BAC and PACE).
    Tdes,
    /// AES-128 in CBC mode, CMAC, SHA-1 KDF.
    Aes128,
    /// AES-192 in CBC mode, CMAC, SHA-256 KDF.
    Aes192,
    /// AES-256 in CBC mode, CMAC, SHA-256 KDF.
    Aes256,
}

impl CipherSuite {
    /// Cipher block length in bytes (8 for 3DES, 16 for AES); also the SSC length.
    pub fn block_len(self) -> usize {
        match self {
            CipherSuite::Tdes => 8,
            _ => 16,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            CipherSuite::Tdes | CipherSuite::Aes128 => 16,
            CipherSuite::Aes192 => 24,
            CipherSuite::Aes256 => 32,
        }
    }
}

/// A symmetric key too short or too long for its cipher: an internal invariant was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key of {got} bytes does not fit the cipher")]
pub struct KeyLengthError {
    /// The length that was offered.
    pub got: usize,
}

/// Derivation counter: encryption key.
pub const KDF_ENC: u32 = 1;
/// Derivation counter: MAC key.
pub const KDF_MAC: u32 = 2;
/// Derivation counter: PACE password key Kπ.
pub const KDF_PI: u32 = 3;

/// ICAO 9303-11 §9.7.1 key derivation: `H(secret ‖ counter)` cut to the cipher's key length;
/// 3DES keys get their DES parity bits adjusted.
pub fn kdf(suite: CipherSuite, secret: &[u8], counter: u32) -> Vec<u8> {
    let c = counter.to_be_bytes();
    let mut key = match suite {
        CipherSuite::Tdes | CipherSuite::Aes128 => {
            let mut h = Sha1::new();
            h.update(secret);
            h.update(c);
            h.finalize()[..16].to_vec()
        }
        CipherSuite::Aes192 | CipherSuite::Aes256 => {
            let mut h = Sha256::new();
            h.update(secret);
            h.update(c);
            h.finalize()[..suite.key_len()].to_vec()
        }
    };
    if suite == CipherSuite::Tdes {
        adjust_parity(&mut key);
    }
    key
}

/// Set the low bit of every byte so that each byte has odd parity (DES key parity).
pub fn adjust_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let ones = (*b & 0xFE).count_ones();
        *b = (*b & 0xFE) | u8::from(ones % 2 == 0);
    }
}

/// ISO/IEC 9797-1 padding method 2: append `80` then zeros up to a multiple of `block`.
pub fn pad(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    out.push(0x80);
    while out.len() % block != 0 {
        out.push(0);
    }
    out
}

/// Remove ISO/IEC 9797-1 padding method 2; `None` when the padding is malformed.
pub fn unpad(data: &[u8]) -> Option<&[u8]> {
    let pos = data.iter().rposition(|&b| b != 0)?;
    if data.get(pos) == Some(&0x80) {
        data.get(..pos)
    } else {
        None
    }
}

fn cbc_encrypt_with<C: BlockCipherEncrypt>(c: &C, iv: &[u8], data: &[u8], bl: usize) -> Vec<u8> {
    let mut prev = iv.to_vec();
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(bl) {
        let mut block: Array<u8, C::BlockSize> = Array::default();
        for (i, b) in block.iter_mut().enumerate() {
            *b = chunk.get(i).copied().unwrap_or(0) ^ prev.get(i).copied().unwrap_or(0);
        }
        c.encrypt_block(&mut block);
        out.extend_from_slice(&block);
        prev = block.to_vec();
    }
    out
}

fn cbc_decrypt_with<C: BlockCipherDecrypt>(c: &C, iv: &[u8], data: &[u8], bl: usize) -> Vec<u8> {
    let mut prev = iv.to_vec();
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(bl) {
        let mut block: Array<u8, C::BlockSize> = Array::default();
        for (i, b) in block.iter_mut().enumerate() {
            *b = chunk.get(i).copied().unwrap_or(0);
        }
        c.decrypt_block(&mut block);
        for (i, b) in block.iter().enumerate() {
            out.push(b ^ prev.get(i).copied().unwrap_or(0));
        }
        prev = chunk.to_vec();
    }
    out
}

/// Which way [`cbc`] runs.
#[derive(Clone, Copy)]
enum Direction {
    Encrypt,
    Decrypt,
}

fn cbc_with<C>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    bl: usize,
    dir: Direction,
) -> Result<Vec<u8>, KeyLengthError>
where
    C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt,
{
    let c = C::new_from_slice(key).map_err(|_| KeyLengthError { got: key.len() })?;
    Ok(match dir {
        Direction::Encrypt => cbc_encrypt_with(&c, iv, data, bl),
        Direction::Decrypt => cbc_decrypt_with(&c, iv, data, bl),
    })
}

fn cbc(
    suite: CipherSuite,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    dir: Direction,
) -> Result<Vec<u8>, KeyLengthError> {
    let bl = suite.block_len();
    match suite {
        CipherSuite::Tdes => cbc_with::<TdesEde2>(key, iv, data, bl, dir),
        CipherSuite::Aes128 => cbc_with::<Aes128>(key, iv, data, bl, dir),
        CipherSuite::Aes192 => cbc_with::<Aes192>(key, iv, data, bl, dir),
        CipherSuite::Aes256 => cbc_with::<Aes256>(key, iv, data, bl, dir),
    }
}

/// CBC-encrypt `data` (a whole number of blocks; a short last block is zero-filled).
pub fn cbc_encrypt(
    suite: CipherSuite,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, KeyLengthError> {
    cbc(suite, key, iv, data, Direction::Encrypt)
}

/// CBC-decrypt `data` (a whole number of blocks).
pub fn cbc_decrypt(
    suite: CipherSuite,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, KeyLengthError> {
    cbc(suite, key, iv, data, Direction::Decrypt)
}

/// ISO/IEC 9797-1 MAC algorithm 3 (single-DES CBC with a final 3DES step) over `data`,
/// which must already be padded to 8-byte blocks.
fn retail_mac(key: &[u8], data: &[u8]) -> Result<[u8; 8], KeyLengthError> {
    let bad = || KeyLengthError { got: key.len() };
    let ka = Des::new_from_slice(key.get(..8).ok_or_else(bad)?).map_err(|_| bad())?;
    let kb = Des::new_from_slice(key.get(8..16).ok_or_else(bad)?).map_err(|_| bad())?;
    let mut state: Array<u8, cipher::consts::U8> = Array::default();
    for chunk in data.chunks(8) {
        for (i, s) in state.iter_mut().enumerate() {
            *s ^= chunk.get(i).copied().unwrap_or(0);
        }
        ka.encrypt_block(&mut state);
    }
    kb.decrypt_block(&mut state);
    ka.encrypt_block(&mut state);
    let mut out = [0u8; 8];
    out.copy_from_slice(&state);
    Ok(out)
}

fn cmac8<C>(key: &[u8], data: &[u8]) -> Result<[u8; 8], KeyLengthError>
where
    cmac::Cmac<C>: KeyInit + Mac,
    C: cmac::block_api::CmacCipher,
{
    let mut m = <cmac::Cmac<C> as KeyInit>::new_from_slice(key)
        .map_err(|_| KeyLengthError { got: key.len() })?;
    m.update(data);
    let full = m.finalize().into_bytes();
    let mut out = [0u8; 8];
    out.copy_from_slice(full.get(..8).ok_or(KeyLengthError { got: key.len() })?);
    Ok(out)
}

/// The 8-byte MAC of `data` without any padding added here: 3DES requires `data` already
/// padded to 8-byte blocks; AES uses CMAC over the bytes as given.
pub fn mac_raw(suite: CipherSuite, key: &[u8], data: &[u8]) -> Result<[u8; 8], KeyLengthError> {
    match suite {
        CipherSuite::Tdes => retail_mac(key, data),
        CipherSuite::Aes128 => cmac8::<Aes128>(key, data),
        CipherSuite::Aes192 => cmac8::<Aes192>(key, data),
        CipherSuite::Aes256 => cmac8::<Aes256>(key, data),
    }
}

/// The 8-byte MAC used by BAC and secure messaging: padding method 2 to the cipher's block
/// length, then retail MAC (3DES) or CMAC (AES).
pub fn mac_padded(suite: CipherSuite, key: &[u8], data: &[u8]) -> Result<[u8; 8], KeyLengthError> {
    mac_raw(suite, key, &pad(data, suite.block_len()))
}

/// The MAC used for PACE authentication tokens: padded retail MAC for 3DES, plain CMAC
/// (no extra padding) for AES.
pub fn mac_token(suite: CipherSuite, key: &[u8], data: &[u8]) -> Result<[u8; 8], KeyLengthError> {
    match suite {
        CipherSuite::Tdes => mac_padded(suite, key, data),
        _ => mac_raw(suite, key, data),
    }
}

/// Encrypt one block with the cipher in ECB mode (the AES secure-messaging IV `E(KSenc, SSC)`).
pub fn encrypt_block(
    suite: CipherSuite,
    key: &[u8],
    block: &[u8],
) -> Result<Vec<u8>, KeyLengthError> {
    cbc_encrypt(suite, key, &vec![0u8; suite.block_len()], block)
}

/// SHA-1 of `data` (BAC key seed, PACE MRZ password).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// Compare two byte strings in constant time.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A random source that replays scripted bytes, so tests can inject the nonces and keys of
/// the ICAO worked examples. Once the script is used up it yields a counter pattern.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct ScriptedRng {
    script: std::collections::VecDeque<u8>,
    counter: u8,
}

#[cfg(test)]
impl ScriptedRng {
    /// Queue `bytes` to be returned next.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> &mut Self {
        self.script.extend(bytes.iter().copied());
        self
    }
}

#[cfg(test)]
impl rand_core::TryRng for ScriptedRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for d in dst {
            *d = match self.script.pop_front() {
                Some(b) => b,
                None => {
                    self.counter = self.counter.wrapping_add(0x3B);
                    self.counter
                }
            };
        }
        Ok(())
    }
}

#[cfg(test)]
impl rand_core::TryCryptoRng for ScriptedRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn bac_basic_keys_from_seed() {
        // ICAO 9303-11 Appendix D.2
        let seed = h("239AB9CB282DAF66231DC5A4DF6BFBAE");
        assert_eq!(
            kdf(CipherSuite::Tdes, &seed, KDF_ENC),
            h("AB94FDECF2674FDFB9B391F85D7F76F2")
        );
        assert_eq!(
            kdf(CipherSuite::Tdes, &seed, KDF_MAC),
            h("7962D9ECE03D1ACD4C76089DCE131543")
        );
    }

    #[test]
    fn padding_round_trip_and_rejects_bad() {
        assert_eq!(pad(&[1, 2, 3], 8), h("0102038000000000"));
        assert_eq!(pad(&[0; 8], 8).len(), 16);
        assert_eq!(unpad(&h("0102038000000000")), Some(&[1u8, 2, 3][..]));
        assert_eq!(unpad(&h("0102030000000000")), None);
        assert_eq!(unpad(&[]), None);
    }

    #[test]
    fn cbc_round_trips_for_every_suite() {
        for s in [
            CipherSuite::Tdes,
            CipherSuite::Aes128,
            CipherSuite::Aes192,
            CipherSuite::Aes256,
        ] {
            let key: Vec<u8> = (0..s.key_len() as u8).collect();
            let iv = vec![7u8; s.block_len()];
            let data: Vec<u8> = (0..48u8).collect();
            let c = cbc_encrypt(s, &key, &iv, &data).unwrap();
            assert_ne!(c, data);
            assert_eq!(cbc_decrypt(s, &key, &iv, &c).unwrap(), data);
        }
        assert!(cbc_encrypt(CipherSuite::Aes128, &[0; 5], &[0; 16], &[0; 16]).is_err());
    }

    #[test]
    fn aes_cmac_rfc4493_example_2() {
        // RFC 4493 example 2 (16-byte message), first 8 bytes of the tag
        let key = h("2b7e151628aed2a6abf7158809cf4f3c");
        let msg = h("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            mac_raw(CipherSuite::Aes128, &key, &msg).unwrap().to_vec(),
            h("070a16b46b4d4144")
        );
    }
}
