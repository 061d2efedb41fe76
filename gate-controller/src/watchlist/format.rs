//! The signed file container shared by snapshots and deltas.
//!
//! A file is a 384-byte header followed by a body of up to eight sections, each
//! starting on a 64-byte boundary. The body hash is SHA-256 over the SHA-256 of
//! every 8 MiB chunk of the body (so large files verify on several cores); the
//! content hash is SHA-256 over a domain tag and the first 272 header bytes
//! (which include the body hash); the Ed25519 signature is over the content hash.
//! See docs/watchlist.md for the byte layout.

use super::keys::{KeyId, PublicKey, SecretKey, TrustedKeys};
use super::WatchlistError;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// File magic: the first 8 bytes of every watchlist file.
pub const MAGIC: [u8; 8] = *b"ECWLIST\x1a";
/// The container format version this code reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 384;
/// Number of section slots in the header.
pub const SECTIONS: usize = 8;
/// Body chunk size for the body hash.
pub const CHUNK: usize = 8 << 20;
const SIGNED_LEN: usize = 272;
const SIG_AT: usize = 304;
const DOMAIN: &[u8] = b"echannel watchlist file v1\0";

/// Whether a file is a full snapshot or a delta on top of a base version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// A complete list at one version.
    Snapshot,
    /// Changes from `base_version` to `version`.
    Delta,
}

/// A list identifier: 1–16 characters A–Z, a–z, 0–9, `_` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListId(std::sync::Arc<str>);

impl ListId {
    /// Validates a list id.
    pub fn new(s: &str) -> Result<Self, WatchlistError> {
        if s.is_empty()
            || s.len() > 16
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(WatchlistError::Input(format!(
                "list id {s:?} must be 1-16 characters A-Z, a-z, 0-9, '_' or '-'"
            )));
        }
        Ok(ListId(std::sync::Arc::from(s)))
    }

    /// The pseudo list id used for verdicts that come from the staleness policy.
    pub fn stale() -> Self {
        ListId(std::sync::Arc::from("stale"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ListId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The decoded header of a watchlist file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Snapshot or delta.
    pub kind: FileKind,
    /// Which list this file belongs to.
    pub list_id: ListId,
    /// The list version this file produces.
    pub version: u64,
    /// For deltas, the version they apply to (0 for snapshots).
    pub base_version: u64,
    /// Creation time, Unix milliseconds (drives the staleness policy).
    pub created_at_ms: u64,
    /// Document entries (snapshot) or document upserts (delta).
    pub doc_count: u64,
    /// Document removals (deltas only).
    pub doc_remove_count: u64,
    /// Person entries (snapshot) or person upserts (delta).
    pub person_count: u64,
    /// Person removals (deltas only).
    pub person_remove_count: u64,
    /// Which key signed the file.
    pub key_id: KeyId,
    /// Body length in bytes (file length minus the header).
    pub body_len: u64,
    /// Snapshot directory bits (keys bucketed by their top bits).
    pub dir_bits: u8,
    /// Snapshot stored key width in bytes.
    pub key_bytes: u8,
    /// Section (offset, length) pairs, offsets from the start of the file.
    pub sections: [(u64, u64); SECTIONS],
    /// SHA-256 tree hash of the body.
    pub body_hash: [u8; 32],
}

fn rd_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[10] = match self.kind {
            FileKind::Snapshot => 1,
            FileKind::Delta => 2,
        };
        h[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        let id = self.list_id.as_str().as_bytes();
        h[16..16 + id.len()].copy_from_slice(id);
        let nums = [
            self.version,
            self.base_version,
            self.created_at_ms,
            self.doc_count,
            self.doc_remove_count,
            self.person_count,
            self.person_remove_count,
        ];
        for (i, n) in nums.iter().enumerate() {
            h[32 + 8 * i..40 + 8 * i].copy_from_slice(&n.to_le_bytes());
        }
        h[88..96].copy_from_slice(&self.key_id.0);
        h[96..104].copy_from_slice(&self.body_len.to_le_bytes());
        h[104] = self.dir_bits;
        h[105] = self.key_bytes;
        for (i, (o, l)) in self.sections.iter().enumerate() {
            h[112 + 16 * i..120 + 16 * i].copy_from_slice(&o.to_le_bytes());
            h[120 + 16 * i..128 + 16 * i].copy_from_slice(&l.to_le_bytes());
        }
        h[240..272].copy_from_slice(&self.body_hash);
        h
    }

    fn decode(b: &[u8]) -> Result<Self, WatchlistError> {
        let h = b.get(..HEADER_LEN).ok_or(WatchlistError::Truncated {
            expected: HEADER_LEN as u64,
            found: b.len() as u64,
        })?;
        if h[0..8] != MAGIC {
            return Err(WatchlistError::BadMagic);
        }
        let fv = u16::from_le_bytes([h[8], h[9]]);
        if fv != FORMAT_VERSION {
            return Err(WatchlistError::UnsupportedFormat(fv));
        }
        let kind = match h[10] {
            1 => FileKind::Snapshot,
            2 => FileKind::Delta,
            k => return Err(WatchlistError::Corrupt(format!("unknown file kind {k}"))),
        };
        if h[11] != 0 || u32::from_le_bytes([h[12], h[13], h[14], h[15]]) != HEADER_LEN as u32 {
            return Err(WatchlistError::Corrupt("bad header length or flags".into()));
        }
        let id_end = h[16..32].iter().position(|c| *c == 0).unwrap_or(16);
        if h[16 + id_end..32].iter().any(|c| *c != 0) {
            return Err(WatchlistError::Corrupt("list id not NUL-padded".into()));
        }
        let id = std::str::from_utf8(&h[16..16 + id_end])
            .map_err(|_| WatchlistError::Corrupt("list id is not text".into()))?;
        let list_id =
            ListId::new(id).map_err(|_| WatchlistError::Corrupt(format!("bad list id {id:?}")))?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&h[88..96]);
        let mut sections = [(0u64, 0u64); SECTIONS];
        for (i, s) in sections.iter_mut().enumerate() {
            *s = (rd_u64(h, 112 + 16 * i), rd_u64(h, 120 + 16 * i));
        }
        let mut body_hash = [0u8; 32];
        body_hash.copy_from_slice(&h[240..272]);
        if h[106..112]
            .iter()
            .chain(&h[272..SIG_AT])
            .chain(&h[SIG_AT + 64..])
            .any(|c| *c != 0)
        {
            return Err(WatchlistError::Corrupt(
                "reserved header bytes are not zero".into(),
            ));
        }
        Ok(Header {
            kind,
            list_id,
            version: rd_u64(h, 32),
            base_version: rd_u64(h, 40),
            created_at_ms: rd_u64(h, 48),
            doc_count: rd_u64(h, 56),
            doc_remove_count: rd_u64(h, 64),
            person_count: rd_u64(h, 72),
            person_remove_count: rd_u64(h, 80),
            key_id: KeyId(key_id),
            body_len: rd_u64(h, 96),
            dir_bits: h[104],
            key_bytes: h[105],
            sections,
            body_hash,
        })
    }
}

fn content_hash_of(header_bytes: &[u8]) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(DOMAIN);
    d.update(header_bytes.get(..SIGNED_LEN).unwrap_or(&[]));
    d.finalize().into()
}

/// SHA-256 tree hash of a body: SHA-256(len ‖ SHA-256(chunk 0) ‖ SHA-256(chunk 1) ‖ …),
/// chunks hashed on up to `threads` cores.
pub fn body_hash(body: &[u8], threads: usize) -> [u8; 32] {
    body_hash_with(body, threads, &|_, _| {})
}

/// [`body_hash`], calling `done(offset, len)` after each chunk is hashed (used to
/// release the pages of a memory map once read).
pub fn body_hash_with(
    body: &[u8],
    threads: usize,
    done: &(dyn Fn(usize, usize) + Sync),
) -> [u8; 32] {
    let chunks: Vec<(usize, &[u8])> = body
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| (i * CHUNK, c))
        .collect();
    let mut hashes = vec![[0u8; 32]; chunks.len()];
    let threads = threads.clamp(1, 16).min(chunks.len().max(1));
    let per = chunks.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (cs, hs) in chunks.chunks(per).zip(hashes.chunks_mut(per)) {
            s.spawn(move || {
                for ((off, c), h) in cs.iter().zip(hs.iter_mut()) {
                    *h = Sha256::digest(c).into();
                    done(*off, c.len());
                }
            });
        }
    });
    let mut d = Sha256::new();
    d.update((body.len() as u64).to_le_bytes());
    for h in &hashes {
        d.update(h);
    }
    d.finalize().into()
}

/// Cores to use for hashing.
pub fn hash_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A file whose header is decoded and whose signature was checked.
#[derive(Debug)]
pub struct Verified<'a> {
    /// The decoded header.
    pub header: Header,
    /// SHA-256 content hash (what the signature covers); identifies the file.
    pub content_hash: [u8; 32],
    bytes: &'a [u8],
}

impl<'a> Verified<'a> {
    /// The bytes of section `i` (empty when unused).
    pub fn section(&self, i: usize) -> &'a [u8] {
        let (o, l) = self.header.sections.get(i).copied().unwrap_or((0, 0));
        self.bytes.get(o as usize..(o + l) as usize).unwrap_or(&[])
    }
}

/// Decodes only the header (no layout, length or signature checks).
pub fn decode_header(bytes: &[u8]) -> Result<Header, WatchlistError> {
    Header::decode(bytes)
}

/// Decodes the header and checks the layout, without any cryptography.
/// Used after signature checks, and by the fuzz target.
pub fn parse_layout(bytes: &[u8]) -> Result<Header, WatchlistError> {
    let header = Header::decode(bytes)?;
    let expected = (HEADER_LEN as u64)
        .checked_add(header.body_len)
        .ok_or_else(|| WatchlistError::Corrupt("body length overflows".into()))?;
    let found = bytes.len() as u64;
    if found < expected {
        return Err(WatchlistError::Truncated { expected, found });
    }
    if found > expected {
        return Err(WatchlistError::Corrupt(format!(
            "{} bytes of trailing data after the body",
            found - expected
        )));
    }
    let mut end = HEADER_LEN as u64;
    for (i, &(o, l)) in header.sections.iter().enumerate() {
        if o == 0 && l == 0 {
            continue;
        }
        let stop = o.saturating_add(l);
        if o % 64 != 0 || o < end || stop > expected {
            return Err(WatchlistError::Corrupt(format!(
                "section {i} lies outside the body or overlaps"
            )));
        }
        end = stop;
    }
    Ok(header)
}

/// How much of a file to check before trusting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyCheck {
    /// Verify the signature and re-hash the whole body (always for new files).
    Full,
    /// Verify the signature only; the caller re-hashes the body later
    /// (files already fully verified when they were installed in a store).
    Deferred,
}

/// Verifies a file: layout, trusted key id, signature, and (for `Full`) the body hash.
pub fn verify<'a>(
    bytes: &'a [u8],
    trusted: &TrustedKeys,
    check: BodyCheck,
) -> Result<Verified<'a>, WatchlistError> {
    let header = parse_layout(bytes)?;
    let pk = trusted
        .get(&header.key_id)
        .ok_or(WatchlistError::UnknownKey(header.key_id))?;
    let content_hash = content_hash_of(bytes);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(bytes.get(SIG_AT..SIG_AT + 64).unwrap_or(&[0u8; 64]));
    if !pk.verify(&content_hash, &sig) {
        return Err(WatchlistError::BadSignature);
    }
    if check == BodyCheck::Full {
        check_body(bytes, &header)?;
    }
    Ok(Verified {
        header,
        content_hash,
        bytes,
    })
}

/// Re-hashes the body and compares it with the signed body hash.
pub fn check_body(bytes: &[u8], header: &Header) -> Result<(), WatchlistError> {
    let body = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    if body_hash(body, hash_threads()) != header.body_hash {
        return Err(WatchlistError::BodyHashMismatch);
    }
    Ok(())
}

/// Only for parsing without a signature (fuzzing): a view that trusts the layout.
pub fn unverified(bytes: &[u8]) -> Result<Verified<'_>, WatchlistError> {
    let header = parse_layout(bytes)?;
    let content_hash = content_hash_of(bytes);
    Ok(Verified {
        header,
        content_hash,
        bytes,
    })
}

/// Streams a file to disk section by section, hashing as it goes, then signs the header.
pub struct FileWriter {
    out: BufWriter<File>,
    pos: u64,
    chunk: Sha256,
    chunk_fill: usize,
    chunk_hashes: Vec<[u8; 32]>,
    sections: [(u64, u64); SECTIONS],
    current: Option<(usize, u64)>,
}

impl FileWriter {
    /// Creates `path` (truncating it) and reserves room for the header.
    pub fn create(path: &Path) -> Result<Self, WatchlistError> {
        let f = File::create(path).map_err(|e| WatchlistError::io(path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        out.write_all(&[0u8; HEADER_LEN])
            .map_err(|e| WatchlistError::io(path, e))?;
        Ok(FileWriter {
            out,
            pos: HEADER_LEN as u64,
            chunk: Sha256::new(),
            chunk_fill: 0,
            chunk_hashes: Vec::new(),
            sections: [(0, 0); SECTIONS],
            current: None,
        })
    }

    fn raw(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        self.out.write_all(data)?;
        self.pos += data.len() as u64;
        while !data.is_empty() {
            let take = (CHUNK - self.chunk_fill).min(data.len());
            let (a, b) = data.split_at(take);
            self.chunk.update(a);
            self.chunk_fill += take;
            if self.chunk_fill == CHUNK {
                let h = std::mem::take(&mut self.chunk).finalize();
                self.chunk_hashes.push(h.into());
                self.chunk_fill = 0;
            }
            data = b;
        }
        Ok(())
    }

    /// Starts section `i` on a 64-byte boundary.
    pub fn begin(&mut self, i: usize) -> std::io::Result<()> {
        let pad = (64 - (self.pos % 64) as usize) % 64;
        self.raw(&[0u8; 64][..pad])?;
        self.current = Some((i, self.pos));
        Ok(())
    }

    /// Appends bytes to the current section.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.raw(data)
    }

    /// Ends the current section.
    pub fn end(&mut self) {
        if let Some((i, start)) = self.current.take() {
            if let Some(s) = self.sections.get_mut(i) {
                *s = (start, self.pos - start);
            }
        }
    }

    /// Fills in the header fields computed here, signs, writes the header and syncs.
    /// Returns the content hash.
    pub fn finish(mut self, mut header: Header, key: &SecretKey) -> std::io::Result<[u8; 32]> {
        if self.chunk_fill > 0 {
            let h = std::mem::take(&mut self.chunk).finalize();
            self.chunk_hashes.push(h.into());
        }
        let body_len = self.pos - HEADER_LEN as u64;
        let mut d = Sha256::new();
        d.update(body_len.to_le_bytes());
        for h in &self.chunk_hashes {
            d.update(h);
        }
        header.body_len = body_len;
        header.sections = self.sections;
        header.body_hash = d.finalize().into();
        header.key_id = key.public().id();
        let mut h = header.encode();
        let ch = content_hash_of(&h);
        h[SIG_AT..SIG_AT + 64].copy_from_slice(&key.sign(&ch));
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&h)?;
        let f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(ch)
    }
}

/// Public key lookup helper used by tests: is this file signed by `pk`?
pub fn signed_by(bytes: &[u8], pk: &PublicKey) -> bool {
    verify(bytes, &TrustedKeys::from_keys([*pk]), BodyCheck::Full).is_ok()
}
