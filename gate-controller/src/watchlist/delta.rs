//! Deltas: the changes that take a list from `base_version` to `version`.
//!
//! Sections: 0 reason table; 1 upserted keys (16-byte big-endian mixed keys,
//! strictly increasing); 2 their values (u16); 3 removed keys (16 bytes, strictly
//! increasing, disjoint from the upserts); 4 upserted persons; 5 removed persons.

use super::format::{self, BodyCheck, FileKind, FileWriter, Header, ListId, Verified};
use super::keys::{KeyId, SecretKey, TrustedKeys};
use super::person::{self, PersonEntry, PersonRecord};
use super::{Action, DocKey, Reasons, WatchlistError};
use std::path::Path;

/// Collects changes and writes a signed delta file.
pub struct DeltaBuilder {
    list_id: ListId,
    base_version: u64,
    version: u64,
    created_at_ms: u64,
    reasons: Reasons,
    upserts: Vec<(u128, u16)>,
    removes: Vec<u128>,
    person_upserts: Vec<PersonRecord>,
    person_removes: Vec<PersonRecord>,
}

fn write_keys(w: &mut FileWriter, keys: impl Iterator<Item = u128>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for k in keys {
        buf.extend_from_slice(&k.to_be_bytes());
        if buf.len() >= 1 << 16 {
            w.write(&buf)?;
            buf.clear();
        }
    }
    w.write(&buf)
}

impl DeltaBuilder {
    /// Starts a delta of `list_id` from `base_version` to `version`.
    pub fn new(list_id: ListId, base_version: u64, version: u64, created_at_ms: u64) -> Self {
        DeltaBuilder {
            list_id,
            base_version,
            version,
            created_at_ms,
            reasons: Reasons::default(),
            upserts: Vec::new(),
            removes: Vec::new(),
            person_upserts: Vec::new(),
            person_removes: Vec::new(),
        }
    }

    /// Adds (or replaces) a document entry.
    pub fn add_document(
        &mut self,
        key: DocKey,
        action: Action,
        reason: &str,
    ) -> Result<(), WatchlistError> {
        let v = self.reasons.intern(action, reason)?;
        self.upserts.push((key.mixed(), v));
        Ok(())
    }

    /// Removes a document entry.
    pub fn remove_document(&mut self, key: DocKey) {
        self.removes.push(key.mixed());
    }

    /// Adds (or replaces) a person entry.
    pub fn add_person(&mut self, e: &PersonEntry) -> Result<(), WatchlistError> {
        let r = PersonRecord::from_entry(e, &mut self.reasons)?;
        self.person_upserts.push(r);
        Ok(())
    }

    /// Removes a person entry (matched on normalised name, date of birth, nationality).
    pub fn remove_person(&mut self, e: &PersonEntry) -> Result<(), WatchlistError> {
        let r = PersonRecord::from_entry(e, &mut self.reasons)?;
        self.person_removes.push(r);
        Ok(())
    }

    /// Checks and writes the signed delta to `path` (synced). Returns the content hash.
    pub fn write(mut self, path: &Path, key: &SecretKey) -> Result<[u8; 32], WatchlistError> {
        if self.version <= self.base_version {
            return Err(WatchlistError::Input(format!(
                "delta version {} must be greater than its base {}",
                self.version, self.base_version
            )));
        }
        self.upserts.sort_unstable();
        self.upserts.dedup();
        if self.upserts.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(WatchlistError::Input(
                "a document is added twice with different action/reason".into(),
            ));
        }
        self.removes.sort_unstable();
        self.removes.dedup();
        if sorted_intersect(
            self.upserts.iter().map(|u| u.0),
            self.removes.iter().copied(),
        ) {
            return Err(WatchlistError::Input(
                "a document is both added and removed".into(),
            ));
        }
        let io = |e| WatchlistError::io(path, e);
        let mut w = FileWriter::create(path)?;
        w.begin(0).map_err(io)?;
        w.write(&self.reasons.encode()).map_err(io)?;
        w.end();
        w.begin(1).map_err(io)?;
        write_keys(&mut w, self.upserts.iter().map(|u| u.0)).map_err(io)?;
        w.end();
        w.begin(2).map_err(io)?;
        let vals: Vec<u8> = self
            .upserts
            .iter()
            .flat_map(|u| u.1.to_le_bytes())
            .collect();
        w.write(&vals).map_err(io)?;
        w.end();
        w.begin(3).map_err(io)?;
        write_keys(&mut w, self.removes.iter().copied()).map_err(io)?;
        w.end();
        w.begin(4).map_err(io)?;
        w.write(&person::encode_records(&self.person_upserts))
            .map_err(io)?;
        w.end();
        w.begin(5).map_err(io)?;
        w.write(&person::encode_records(&self.person_removes))
            .map_err(io)?;
        w.end();
        let header = Header {
            kind: FileKind::Delta,
            list_id: self.list_id,
            version: self.version,
            base_version: self.base_version,
            created_at_ms: self.created_at_ms,
            doc_count: self.upserts.len() as u64,
            doc_remove_count: self.removes.len() as u64,
            person_count: self.person_upserts.len() as u64,
            person_remove_count: self.person_removes.len() as u64,
            key_id: KeyId([0; 8]),
            body_len: 0,
            dir_bits: 0,
            key_bytes: 16,
            sections: [(0, 0); format::SECTIONS],
            body_hash: [0; 32],
        };
        w.finish(header, key).map_err(io)
    }
}

fn sorted_intersect(a: impl Iterator<Item = u128>, b: impl Iterator<Item = u128>) -> bool {
    let mut b = b.peekable();
    for x in a {
        while b.peek().is_some_and(|y| *y < x) {
            b.next();
        }
        if b.peek() == Some(&x) {
            return true;
        }
    }
    false
}

/// A verified delta, decoded into memory.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The decoded header.
    pub header: Header,
    /// Content hash (identifies the file).
    pub content_hash: [u8; 32],
    pub(crate) reasons: Reasons,
    pub(crate) upserts: Vec<(u128, u16)>,
    pub(crate) removes: Vec<u128>,
    pub(crate) person_upserts: Vec<PersonRecord>,
    pub(crate) person_removes: Vec<PersonRecord>,
}

fn read_keys(b: &[u8], count: u64, what: &str) -> Result<Vec<u128>, WatchlistError> {
    if b.len() as u64 != count.saturating_mul(16) {
        return Err(WatchlistError::Corrupt(format!(
            "delta: {what} size does not match the header"
        )));
    }
    let keys: Vec<u128> = b
        .chunks_exact(16)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            u128::from_be_bytes(a)
        })
        .collect();
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(WatchlistError::Corrupt(format!(
            "delta: {what} are not strictly increasing"
        )));
    }
    Ok(keys)
}

impl Delta {
    /// Decodes a verified delta and checks its structure.
    pub fn parse(v: &Verified<'_>) -> Result<Self, WatchlistError> {
        let h = &v.header;
        if h.kind != FileKind::Delta {
            return Err(WatchlistError::WrongKind {
                expected: "delta",
                found: "snapshot",
            });
        }
        if h.version <= h.base_version {
            return Err(WatchlistError::Corrupt(
                "delta: version is not above its base".into(),
            ));
        }
        let reasons = Reasons::decode(v.section(0))?;
        let keys = read_keys(v.section(1), h.doc_count, "added keys")?;
        let vals = v.section(2);
        if vals.len() as u64 != h.doc_count.saturating_mul(2) {
            return Err(WatchlistError::Corrupt("delta: value table size".into()));
        }
        let mut upserts = Vec::with_capacity(keys.len());
        for (k, c) in keys.into_iter().zip(vals.chunks_exact(2)) {
            let val = u16::from_le_bytes([c[0], c[1]]);
            if reasons.get(val).is_none() {
                return Err(WatchlistError::Corrupt(
                    "delta: value index out of range".into(),
                ));
            }
            upserts.push((k, val));
        }
        let removes = read_keys(v.section(3), h.doc_remove_count, "removed keys")?;
        if sorted_intersect(upserts.iter().map(|u| u.0), removes.iter().copied()) {
            return Err(WatchlistError::Corrupt(
                "delta: a key is both added and removed".into(),
            ));
        }
        let person_upserts = person::decode_records(v.section(4), h.person_count, &reasons)?;
        let person_removes = person::decode_records(v.section(5), h.person_remove_count, &reasons)?;
        Ok(Delta {
            header: v.header.clone(),
            content_hash: v.content_hash,
            reasons,
            upserts,
            removes,
            person_upserts,
            person_removes,
        })
    }

    /// Verifies (signature and full body) and decodes delta bytes.
    pub fn from_bytes(bytes: &[u8], trusted: &TrustedKeys) -> Result<Self, WatchlistError> {
        let v = format::verify(bytes, trusted, BodyCheck::Full)?;
        Self::parse(&v)
    }

    /// Reads, verifies and decodes a delta file.
    pub fn open(path: &Path, trusted: &TrustedKeys) -> Result<Self, WatchlistError> {
        let bytes = std::fs::read(path).map_err(|e| WatchlistError::io(path, e))?;
        Self::from_bytes(&bytes, trusted)
    }

    /// Number of document changes (adds + removes).
    pub fn doc_changes(&self) -> usize {
        self.upserts.len() + self.removes.len()
    }
}
