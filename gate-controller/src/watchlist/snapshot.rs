//! Snapshots: a complete list at one version, laid out to be memory-mapped.
//!
//! Sections: 0 reason table; 1 directory (`2^d + 1` little-endian u32 offsets, one
//! bucket per value of the key's top `d` bits); 2 records, sorted: the low `8·kb`
//! bits of each mixed key (big-endian) then a u16 index into the reason table;
//! 3 unused; 4 binary fuse filter descriptor; 5 filter fingerprints; 6 person records.
//! The bucket number plus the stored low bits give back the whole 128-bit key,
//! so a found key is an exact match.

use super::format::{self, BodyCheck, FileKind, FileWriter, Header, ListId, Verified};
use super::keys::{KeyId, SecretKey, TrustedKeys};
use super::person::{self, PersonEntry, PersonRecord};
use super::{Action, Bytes, DocKey, ReadFailed, Reasons, Source, WatchlistError};
use std::path::Path;
use xorf::{BinaryFuse8, BinaryFuse8Ref, DmaSerializable, Filter, FilterRef};

const FILTER_MIN: usize = 64;
const DESC_LEN: usize = 20;

/// The most directory bits a snapshot may have (a 128 MB directory).
pub const MAX_DIR_BITS: u8 = 25;

/// Directory bits for `n` entries: about 2–4 entries per bucket (so a hit reads one
/// cache line or two of records), at most 2^[`MAX_DIR_BITS`] buckets.
pub fn dir_bits_for(n: u64) -> u8 {
    if n < 16 {
        0
    } else {
        (63 - n.leading_zeros() as u8 - 1).min(MAX_DIR_BITS)
    }
}

/// Directory bits that builds before 2026-11-27 chose (about 4–8 entries per bucket, at
/// most 2^24 buckets): snapshots written with them stay readable.
fn legacy_dir_bits_for(n: u64) -> u8 {
    if n < 16 {
        0
    } else {
        (63 - n.leading_zeros() as u8 - 2).min(24)
    }
}

/// Stored key width for `d` directory bits.
pub fn key_bytes_for(d: u8) -> u8 {
    (128 - d).div_ceil(8)
}

fn low_mask(kb: u8) -> u128 {
    if kb >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * u32::from(kb))) - 1
    }
}

fn bucket_of(k: u128, d: u8) -> usize {
    if d == 0 {
        0
    } else {
        (k >> (128 - u32::from(d))) as usize
    }
}

/// Collects entries and writes a signed snapshot file.
pub struct SnapshotBuilder {
    list_id: ListId,
    version: u64,
    created_at_ms: u64,
    reasons: Reasons,
    docs: Vec<(u128, u16)>,
    persons: Vec<PersonRecord>,
    legacy_directory: bool,
}

impl SnapshotBuilder {
    /// Starts a snapshot of `list_id` at `version`, created at `created_at_ms` (Unix ms).
    pub fn new(list_id: ListId, version: u64, created_at_ms: u64) -> Self {
        SnapshotBuilder {
            list_id,
            version,
            created_at_ms,
            reasons: Reasons::default(),
            docs: Vec::new(),
            persons: Vec::new(),
            legacy_directory: false,
        }
    }

    /// Writes the directory as builds before 2026-11-27 did (about 4–8 entries per
    /// bucket, a smaller directory but a longer read per hit). Readers accept both; this
    /// exists so that tests can prove older snapshots still load.
    #[doc(hidden)]
    pub fn legacy_directory(mut self) -> Self {
        self.legacy_directory = true;
        self
    }

    /// Reserves room for `n` document entries.
    pub fn reserve(&mut self, n: usize) {
        self.docs.reserve(n);
    }

    /// Adds a document entry.
    pub fn add_document(
        &mut self,
        key: DocKey,
        action: Action,
        reason: &str,
    ) -> Result<(), WatchlistError> {
        let v = self.reasons.intern(action, reason)?;
        self.docs.push((key.mixed(), v));
        Ok(())
    }

    /// Adds a person entry.
    pub fn add_person(&mut self, e: &PersonEntry) -> Result<(), WatchlistError> {
        let r = PersonRecord::from_entry(e, &mut self.reasons)?;
        self.persons.push(r);
        Ok(())
    }

    /// Sorts, checks and writes the signed file to `path` (synced). Returns the content hash.
    pub fn write(mut self, path: &Path, key: &SecretKey) -> Result<[u8; 32], WatchlistError> {
        if self.version == 0 {
            return Err(WatchlistError::Input("version must be at least 1".into()));
        }
        self.docs.sort_unstable();
        self.docs.dedup();
        if let Some(w) = self.docs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(WatchlistError::Input(format!(
                "the same document is listed twice with different action/reason (key {:032x})",
                w[0].0
            )));
        }
        let n = self.docs.len() as u64;
        if n > u64::from(u32::MAX) {
            return Err(WatchlistError::Input(
                "more than 2^32-1 document entries".into(),
            ));
        }
        let d = if self.legacy_directory {
            legacy_dir_bits_for(n)
        } else {
            dir_bits_for(n)
        };
        let kb = key_bytes_for(d);
        let filter =
            if self.docs.len() >= FILTER_MIN {
                let mut fk: Vec<u64> = self
                    .docs
                    .iter()
                    .map(|(k, _)| DocKey::from_mixed(*k).filter_key())
                    .collect();
                fk.sort_unstable();
                fk.dedup();
                Some(BinaryFuse8::try_from(&fk).map_err(|e| {
                    WatchlistError::Input(format!("filter construction failed: {e}"))
                })?)
            } else {
                None
            };
        let io = |e| WatchlistError::io(path, e);
        let mut w = FileWriter::create(path)?;
        w.begin(0).map_err(io)?;
        w.write(&self.reasons.encode()).map_err(io)?;
        w.end();
        // Directory.
        w.begin(1).map_err(io)?;
        let buckets = 1usize << d;
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut i = 0usize;
        for b in 0..=buckets {
            while i < self.docs.len() && bucket_of(self.docs[i].0, d) < b {
                i += 1;
            }
            buf.extend_from_slice(&(i as u32).to_le_bytes());
            if buf.len() >= 1 << 16 {
                w.write(&buf).map_err(io)?;
                buf.clear();
            }
        }
        w.write(&buf).map_err(io)?;
        buf.clear();
        w.end();
        // Records: low key bits (big-endian) followed by the value index (little-endian).
        w.begin(2).map_err(io)?;
        let skip = 16 - usize::from(kb);
        for (k, v) in &self.docs {
            buf.extend_from_slice(&k.to_be_bytes()[skip..]);
            buf.extend_from_slice(&v.to_le_bytes());
            if buf.len() >= 1 << 16 {
                w.write(&buf).map_err(io)?;
                buf.clear();
            }
        }
        w.write(&buf).map_err(io)?;
        w.end();
        if let Some(f) = &filter {
            let mut desc = [0u8; DESC_LEN];
            f.dma_copy_descriptor_to(&mut desc);
            w.begin(4).map_err(io)?;
            w.write(&desc).map_err(io)?;
            w.end();
            w.begin(5).map_err(io)?;
            w.write(f.dma_fingerprints()).map_err(io)?;
            w.end();
        }
        drop(filter);
        w.begin(6).map_err(io)?;
        w.write(&person::encode_records(&self.persons))
            .map_err(io)?;
        w.end();
        let header = Header {
            kind: FileKind::Snapshot,
            list_id: self.list_id,
            version: self.version,
            base_version: 0,
            created_at_ms: self.created_at_ms,
            doc_count: n,
            doc_remove_count: 0,
            person_count: self.persons.len() as u64,
            person_remove_count: 0,
            key_id: KeyId([0; 8]),
            body_len: 0,
            dir_bits: d,
            key_bytes: kb,
            sections: [(0, 0); format::SECTIONS],
            body_hash: [0; 32],
        };
        w.finish(header, key).map_err(io)
    }
}

/// How thoroughly to check a snapshot's structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Every key sorted and in its bucket, every value valid, every key in the filter: O(n).
    Full,
    /// Sizes, directory and tables only: O(buckets).
    Quick,
}

/// Parsed, validated section positions of a snapshot (the bytes live elsewhere).
#[derive(Debug)]
pub struct SnapshotData {
    pub(crate) reasons: Reasons,
    pub(crate) persons: Vec<PersonRecord>,
    n: usize,
    d: u8,
    kb: u8,
    dir: (usize, usize),
    recs: (usize, usize),
    filter: Option<([u8; DESC_LEN], (usize, usize))>,
}

fn range(h: &Header, i: usize) -> (usize, usize) {
    let (o, l) = h.sections.get(i).copied().unwrap_or((0, 0));
    (o as usize, (o + l) as usize)
}

fn filter_ok(desc: &[u8; DESC_LEN], fp_len: usize) -> bool {
    let seg_len = u64::from(u32::from_le_bytes([desc[8], desc[9], desc[10], desc[11]]));
    let mask = u64::from(u32::from_le_bytes([desc[12], desc[13], desc[14], desc[15]]));
    let scl = u64::from(u32::from_le_bytes([desc[16], desc[17], desc[18], desc[19]]));
    seg_len.is_power_of_two()
        && mask + 1 == seg_len
        && scl % seg_len == 0
        && scl > 0
        && scl + 2 * seg_len <= fp_len as u64
        && fp_len as u64 <= u64::from(u32::MAX)
}

impl SnapshotData {
    /// Validates a verified snapshot's layout.
    pub fn parse(v: &Verified<'_>, check: Check) -> Result<Self, WatchlistError> {
        let h = &v.header;
        let bad = |m: &str| WatchlistError::Corrupt(format!("snapshot: {m}"));
        if h.kind != FileKind::Snapshot {
            return Err(WatchlistError::WrongKind {
                expected: "snapshot",
                found: "delta",
            });
        }
        if h.doc_count > u64::from(u32::MAX)
            || h.base_version != 0
            || h.doc_remove_count != 0
            || h.person_remove_count != 0
        {
            return Err(bad("bad counts"));
        }
        let n = h.doc_count as usize;
        let d = h.dir_bits;
        let n_bits = [dir_bits_for(h.doc_count), legacy_dir_bits_for(h.doc_count)];
        if !n_bits.contains(&d) || h.key_bytes != key_bytes_for(d) {
            return Err(bad("bad directory bits or key width"));
        }
        let kb = h.key_bytes;
        let reasons = Reasons::decode(v.section(0))?;
        let dir_s = v.section(1);
        if dir_s.len() != ((1usize << d) + 1) * 4 {
            return Err(bad("directory size"));
        }
        let mut prev = 0u32;
        for (i, c) in dir_s.chunks_exact(4).enumerate() {
            let x = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if (i == 0 && x != 0) || x < prev || x as usize > n {
                return Err(bad("directory is not monotone"));
            }
            prev = x;
        }
        if prev as usize != n {
            return Err(bad("directory does not end at the entry count"));
        }
        if v.section(2).len() != n * (usize::from(kb) + 2) || !v.section(3).is_empty() {
            return Err(bad("record table size"));
        }
        let filter = match v.section(4).len() {
            0 if n < FILTER_MIN && v.section(5).is_empty() => None,
            DESC_LEN => {
                let mut desc = [0u8; DESC_LEN];
                desc.copy_from_slice(v.section(4));
                if !filter_ok(&desc, v.section(5).len()) {
                    return Err(bad("filter descriptor does not fit its fingerprints"));
                }
                Some((desc, range(h, 5)))
            }
            _ => return Err(bad("filter section")),
        };
        let persons = person::decode_records(v.section(6), h.person_count, &reasons)?;
        let s = SnapshotData {
            reasons,
            persons,
            n,
            d,
            kb,
            dir: range(h, 1),
            recs: range(h, 2),
            filter,
        };
        if check == Check::Full {
            s.check_entries(v)?;
        }
        Ok(s)
    }

    fn check_entries(&self, v: &Verified<'_>) -> Result<(), WatchlistError> {
        let bad = |m: String| WatchlistError::Corrupt(format!("snapshot: {m}"));
        let nreasons = self.reasons.items.len();
        let dir = v.section(1);
        let recs = v.section(2);
        let kb = usize::from(self.kb);
        let w = kb + 2;
        let filter = self
            .filter
            .as_ref()
            .map(|(desc, _)| BinaryFuse8Ref::from_dma(desc, v.section(5)));
        let mut prev: Option<u128> = None;
        for (b, c) in dir
            .chunks_exact(4)
            .zip(dir.chunks_exact(4).skip(1))
            .enumerate()
        {
            let lo = u32::from_le_bytes([c.0[0], c.0[1], c.0[2], c.0[3]]) as usize;
            let hi = u32::from_le_bytes([c.1[0], c.1[1], c.1[2], c.1[3]]) as usize;
            for i in lo..hi {
                let rec = recs.get(i * w..(i + 1) * w).unwrap_or(&[0; 18][..w]);
                let k = self.full_key(b, &rec[..kb]);
                if usize::from(u16::from_le_bytes([rec[kb], rec[kb + 1]])) >= nreasons {
                    return Err(bad(format!("entry {i}: value index out of range")));
                }
                if bucket_of(k, self.d) != b {
                    return Err(bad(format!("entry {i} is not in its bucket")));
                }
                if prev.is_some_and(|p| p >= k) {
                    return Err(bad(format!("entry {i} is out of order or duplicated")));
                }
                if let Some(f) = &filter {
                    if !f.contains(&DocKey::from_mixed(k).filter_key()) {
                        return Err(bad(format!("entry {i} is missing from the filter")));
                    }
                }
                prev = Some(k);
            }
        }
        Ok(())
    }

    fn full_key(&self, bucket: usize, low: &[u8]) -> u128 {
        let mut buf = [0u8; 16];
        let kb = low.len().min(16);
        buf[16 - kb..].copy_from_slice(&low[..kb]);
        let low = u128::from_be_bytes(buf);
        if self.d == 0 {
            low
        } else {
            ((bucket as u128) << (128 - u32::from(self.d))) | low
        }
    }

    /// Number of document entries.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the snapshot has no document entries.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Looks a key up in the file this was parsed from; returns the value index.
    /// The filter and directory are read from the mapped (hot) bytes; the record
    /// table is read with positioned reads, so lookups do not leave it resident.
    pub fn find<S: Source + ?Sized>(
        &self,
        src: &S,
        key: DocKey,
    ) -> Result<Option<u16>, ReadFailed> {
        let bytes = src.hot();
        let k = key.mixed();
        let bucket = bucket_of(k, self.d);
        let dir = bytes.get(self.dir.0..self.dir.1).ok_or(ReadFailed)?;
        let rd = |i: usize| -> Result<usize, ReadFailed> {
            let c = dir.get(i * 4..i * 4 + 4).ok_or(ReadFailed)?;
            Ok(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        };
        // The directory entry is loaded before the filter is probed so that its cache
        // miss overlaps the filter's three (they do not depend on each other).
        let (mut lo, mut hi) = (rd(bucket)?, rd(bucket + 1)?);
        if let Some((desc, (a, b))) = &self.filter {
            let fps = bytes.get(*a..*b).ok_or(ReadFailed)?;
            if !BinaryFuse8Ref::from_dma(desc, fps).contains(&key.filter_key()) {
                return Ok(None);
            }
        }
        if lo == hi {
            return Ok(None);
        }
        let kb = usize::from(self.kb);
        let w = kb + 2;
        let want = k & low_mask(self.kb);
        let decode = |rec: &[u8]| -> (u128, u16) {
            let mut buf = [0u8; 16];
            buf[16 - kb..].copy_from_slice(&rec[..kb]);
            (
                u128::from_be_bytes(buf),
                u16::from_le_bytes([rec[kb], rec[kb + 1]]),
            )
        };
        const SMALL: usize = 512;
        const BUF: usize = 2048;
        if (hi - lo) * w <= SMALL {
            // The usual case (about 8 entries): the whole bucket in one small read.
            let mut buf = [0u8; SMALL];
            let len = (hi - lo) * w;
            if !src.read_cold(self.recs.0 + lo * w, &mut buf[..len]) {
                return Err(ReadFailed);
            }
            for rec in buf[..len].chunks_exact(w) {
                let (got, v) = decode(rec);
                if got == want {
                    return Ok(Some(v));
                }
            }
            return Ok(None);
        }
        if (hi - lo) * w <= BUF {
            let mut buf = [0u8; BUF];
            let len = (hi - lo) * w;
            if !src.read_cold(self.recs.0 + lo * w, &mut buf[..len]) {
                return Err(ReadFailed);
            }
            for rec in buf[..len].chunks_exact(w) {
                let (got, v) = decode(rec);
                if got == want {
                    return Ok(Some(v));
                }
            }
            return Ok(None);
        }
        let mut rec = [0u8; 18];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if !src.read_cold(self.recs.0 + mid * w, &mut rec[..w]) {
                return Err(ReadFailed);
            }
            let (got, v) = decode(&rec[..w]);
            match got.cmp(&want) {
                std::cmp::Ordering::Equal => return Ok(Some(v)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// Every (mixed key, value index) in key order.
    pub fn iter<'a>(&'a self, bytes: &'a [u8]) -> impl Iterator<Item = (u128, u16)> + 'a {
        let dir = bytes.get(self.dir.0..self.dir.1).unwrap_or(&[]);
        let recs = bytes.get(self.recs.0..self.recs.1).unwrap_or(&[]);
        let kb = usize::from(self.kb);
        let w = kb + 2;
        dir.chunks_exact(4)
            .zip(dir.chunks_exact(4).skip(1))
            .enumerate()
            .flat_map(move |(b, (x, y))| {
                let lo = u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize;
                let hi = u32::from_le_bytes([y[0], y[1], y[2], y[3]]) as usize;
                (lo..hi).map(move |i| {
                    let rec = recs.get(i * w..(i + 1) * w).unwrap_or(&[0; 18][..w]);
                    let k = self.full_key(b, &rec[..kb]);
                    (k, u16::from_le_bytes([rec[kb], rec[kb + 1]]))
                })
            })
    }

    /// Reason entry for a value index.
    pub(crate) fn reason(&self, v: u16) -> Option<&(Action, std::sync::Arc<str>)> {
        self.reasons.get(v)
    }
}

/// A snapshot file, verified and ready for lookups.
pub struct Snapshot {
    /// The decoded header.
    pub header: Header,
    /// The content hash (identifies the file).
    pub content_hash: [u8; 32],
    pub(crate) data: SnapshotData,
    pub(crate) bytes: Bytes,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("header", &self.header)
            .finish()
    }
}

impl Snapshot {
    /// Verifies and parses snapshot bytes.
    pub fn from_bytes(
        bytes: Bytes,
        trusted: &TrustedKeys,
        body: BodyCheck,
        check: Check,
    ) -> Result<Self, WatchlistError> {
        let (header, content_hash, data) = {
            let v = format::verify(&bytes, trusted, body)?;
            let data = SnapshotData::parse(&v, check)?;
            (v.header, v.content_hash, data)
        };
        if check == Check::Full {
            // The full check read every page; let them go (lookups fault back in only
            // the filter and directory pages they use).
            bytes.release(0, bytes.len());
        }
        Ok(Snapshot {
            header,
            content_hash,
            data,
            bytes,
        })
    }

    /// Maps, verifies (full body hash and structure) and parses a snapshot file.
    pub fn open(path: &Path, trusted: &TrustedKeys) -> Result<Self, WatchlistError> {
        Self::from_bytes(Bytes::map(path)?, trusted, BodyCheck::Full, Check::Full)
    }

    /// Looks up a document key: `(action, reason)` when listed.
    pub fn lookup(&self, key: DocKey) -> Option<&(Action, std::sync::Arc<str>)> {
        let v = self.data.find(&self.bytes, key).ok()??;
        self.data.reason(v)
    }

    /// Number of document entries.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no document entries.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Re-hashes the body against the signed hash (for deferred checks). Pages of a
    /// memory-mapped file are released from this process once hashed, so the check
    /// does not leave the whole file resident.
    pub fn check_body(&self) -> Result<(), WatchlistError> {
        let body = self.bytes.get(format::HEADER_LEN..).unwrap_or(&[]);
        let release = |off: usize, len: usize| self.bytes.release(format::HEADER_LEN + off, len);
        if format::body_hash_with(body, format::hash_threads(), &release) != self.header.body_hash {
            return Err(WatchlistError::BodyHashMismatch);
        }
        Ok(())
    }
}
