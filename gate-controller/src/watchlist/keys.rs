//! Signing keys: key files (hex text), key ids, and the set of trusted public keys.
//!
//! Key file formats: the secret key file holds the 32-byte Ed25519 seed as 64 hex
//! digits and a newline; the public key file (`KEY.pub`) holds the 32-byte public
//! key the same way. A file of exactly 32 raw bytes is also accepted. The key id is
//! the first 8 bytes of SHA-256 of the public key; each signed file names the key id
//! that signed it, so several keys can be trusted at once during a rotation.

use super::WatchlistError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Identifies a public key: the first 8 bytes of its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The key id of a public key.
pub fn key_id(pk: &VerifyingKey) -> KeyId {
    let d = Sha256::digest(pk.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    KeyId(id)
}

/// Lowercase hex of some bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() != 64 || !t.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn read_32(path: &Path) -> Result<[u8; 32], WatchlistError> {
    let bytes = std::fs::read(path).map_err(|e| WatchlistError::io(path, e))?;
    if let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(arr);
    }
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(unhex32)
        .ok_or_else(|| {
            WatchlistError::KeyFile(format!(
                "{}: expected 64 hex digits (or 32 raw bytes) of an Ed25519 key",
                path.display()
            ))
        })
}

/// An authority's secret signing key.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        SecretKey(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from a 32-byte seed (tests, reproducible fixtures).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// Reads a secret key file (64 hex digits or 32 raw bytes).
    pub fn read(path: &Path) -> Result<Self, WatchlistError> {
        Ok(SecretKey(SigningKey::from_bytes(&read_32(path)?)))
    }

    /// The secret key file text (64 hex digits and a newline).
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex(self.0.as_bytes()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

/// An authority's public key, used to verify lists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Reads a public key file (64 hex digits or 32 raw bytes).
    pub fn read(path: &Path) -> Result<Self, WatchlistError> {
        let b = read_32(path)?;
        VerifyingKey::from_bytes(&b).map(PublicKey).map_err(|_| {
            WatchlistError::KeyFile(format!(
                "{}: not a valid Ed25519 public key",
                path.display()
            ))
        })
    }

    /// A public key from 64 hex digits (as in a key file or the configuration).
    pub fn from_hex(text: &str) -> Result<Self, WatchlistError> {
        let bad = || WatchlistError::KeyFile("not an Ed25519 public key (64 hex digits)".into());
        let b = unhex32(text).ok_or_else(bad)?;
        VerifyingKey::from_bytes(&b)
            .map(PublicKey)
            .map_err(|_| bad())
    }

    /// The public key file text (64 hex digits and a newline).
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex(self.0.as_bytes()))
    }

    /// The key id that signed files carry.
    pub fn id(&self) -> KeyId {
        key_id(&self.0)
    }

    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        self.0
            .verify_strict(msg, &Signature::from_bytes(sig))
            .is_ok()
    }
}

/// The public keys a gate trusts, by key id (several during a key rotation).
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<KeyId, PublicKey>,
}

impl TrustedKeys {
    /// An empty set (trusts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trusted key.
    pub fn add(&mut self, pk: PublicKey) {
        self.keys.insert(pk.id(), pk);
    }

    /// A set holding the given keys.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let mut t = Self::new();
        for k in keys {
            t.add(k);
        }
        t
    }

    /// Reads several public key files.
    pub fn read_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, WatchlistError> {
        let mut t = Self::new();
        for p in paths {
            t.add(PublicKey::read(p.as_ref())?);
        }
        Ok(t)
    }

    /// The key with this id, if trusted.
    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id)
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
