//! Cached signed watchlists: the gate's offline answer to "is this document or
//! person on a list?".
//!
//! - [`key`]: exact document keys (normalised issuing state + document number).
//! - [`keys`]: Ed25519 key files, key ids, trusted keys (rotation).
//! - [`format`]: the signed, memory-mappable file container.
//! - [`snapshot`] / [`delta`]: full lists and changes, builders and readers.
//! - [`person`]: person entries and name normalisation / fuzzy matching.
//! - [`list`]: an immutable view of one list (snapshot plus applied deltas).
//! - [`store`]: [`WatchlistStore`], the directory of lists that `gated` serves from,
//!   with atomic, crash-safe delta application and the staleness policy.

pub mod delta;
pub mod format;
pub mod key;
pub mod keys;
pub mod list;
pub mod person;
pub mod snapshot;
pub mod store;

pub use format::{FileKind, ListId};
pub use key::DocKey;
pub use keys::{KeyId, PublicKey, SecretKey, TrustedKeys};
pub use list::WatchList;
pub use person::{PartialDate, PersonEntry, PersonQuery};
pub use store::{ListStatus, OpenOptions, WatchlistStore};

use std::path::Path;
use std::sync::Arc;

/// What a gate does with a traveller who matches a list entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Send the traveller to the counter.
    Refer,
    /// Keep the traveller in the gate until an operator acts.
    Hold,
}

impl Action {
    /// The CSV / JSON spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Refer => "refer",
            Action::Hold => "hold",
        }
    }

    /// Parses `refer` or `hold` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, WatchlistError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "refer" => Ok(Action::Refer),
            "hold" => Ok(Action::Hold),
            _ => Err(WatchlistError::Input(format!(
                "action {s:?} must be 'refer' or 'hold'"
            ))),
        }
    }

    fn code(&self) -> u8 {
        match self {
            Action::Refer => 1,
            Action::Hold => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Action::Refer),
            2 => Some(Action::Hold),
            _ => None,
        }
    }
}

/// How a hit was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// The key or normalised identity matched exactly.
    Exact,
    /// A person entry is a plausible but inexact match (always `Refer`).
    Fuzzy,
    /// Not a real match: the list could not be trusted (integrity failure), refer to be safe.
    Integrity,
    /// Not a real match: the lists are older than the staleness limit, refer everyone.
    Stale,
}

/// One list entry matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// What the gate must do.
    pub action: Action,
    /// The reason code from the list.
    pub reason: Arc<str>,
    /// Which list matched.
    pub list_id: ListId,
    /// That list's version.
    pub version: u64,
    /// Exact or fuzzy.
    pub kind: MatchKind,
}

/// The answer of a watchlist lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// On no list.
    Clear,
    /// On a list (the strongest hit when several lists match).
    Hit(Hit),
}

impl Verdict {
    /// Keeps the stronger of two verdicts (hold > refer > clear).
    pub fn strongest(self, other: Verdict) -> Verdict {
        match (&self, &other) {
            (_, Verdict::Clear) => self,
            (Verdict::Clear, _) => other,
            (Verdict::Hit(a), Verdict::Hit(b)) => {
                if b.action > a.action {
                    other
                } else {
                    self
                }
            }
        }
    }
}

/// Everything that can go wrong with watchlist files and stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchlistError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is shorter than its header says.
    #[error("file is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes the header announces.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Not a watchlist file.
    #[error("not an echannel watchlist file (bad magic)")]
    BadMagic,
    /// A container version this build cannot read.
    #[error("unsupported watchlist format version {0}")]
    UnsupportedFormat(u16),
    /// Signed by a key that is not trusted.
    #[error("signed by key id {0}, which is not among the trusted public keys (wrong key?)")]
    UnknownKey(KeyId),
    /// The signature does not verify.
    #[error("bad signature: the file was altered or not signed by the trusted key")]
    BadSignature,
    /// The body does not match the signed body hash.
    #[error("body hash mismatch: the file body is corrupt or was altered after signing")]
    BodyHashMismatch,
    /// Structurally invalid content.
    #[error("corrupt watchlist file: {0}")]
    Corrupt(String),
    /// A snapshot was given where a delta was expected, or the reverse.
    #[error("expected a {expected} file, found a {found} file")]
    WrongKind {
        /// The expected kind.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// The file belongs to another list.
    #[error("file is for list {found:?}, not {expected:?}")]
    WrongList {
        /// The list being updated.
        expected: String,
        /// The list named in the file.
        found: String,
    },
    /// A delta whose base is not the current version.
    #[error("delta applies to version {base} but the list is at version {current}")]
    NotApplicable {
        /// The delta's base version.
        base: u64,
        /// The list's current version.
        current: u64,
    },
    /// A snapshot or delta that would not move the list forward.
    #[error("version {offered} is not newer than the current version {current}")]
    NotNewer {
        /// The current version.
        current: u64,
        /// The version offered.
        offered: u64,
    },
    /// A document key could not be built.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// Bad builder input (CSV, arguments).
    #[error("{0}")]
    Input(String),
    /// A key file is malformed.
    #[error("{0}")]
    KeyFile(String),
    /// The list store directory is inconsistent.
    #[error("watchlist store: {0}")]
    Store(String),
}

impl WatchlistError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        WatchlistError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The (action, reason) table shared by entries of one file.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reasons {
    pub(crate) items: Vec<(Action, Arc<str>)>,
    index: std::collections::HashMap<(Action, Arc<str>), u16>,
}

impl Reasons {
    /// Interns an (action, reason) pair.
    pub(crate) fn intern(&mut self, action: Action, reason: &str) -> Result<u16, WatchlistError> {
        if reason.len() > 255 {
            return Err(WatchlistError::Input(format!(
                "reason {reason:?} is longer than 255 bytes"
            )));
        }
        let k: (Action, Arc<str>) = (action, Arc::from(reason));
        if let Some(i) = self.index.get(&k) {
            return Ok(*i);
        }
        let i = u16::try_from(self.items.len()).map_err(|_| {
            WatchlistError::Input("more than 65536 distinct (action, reason) pairs".into())
        })?;
        self.items.push(k.clone());
        self.index.insert(k, i);
        Ok(i)
    }

    pub(crate) fn get(&self, i: u16) -> Option<&(Action, Arc<str>)> {
        self.items.get(usize::from(i))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = (self.items.len() as u32).to_le_bytes().to_vec();
        for (a, r) in &self.items {
            out.push(a.code());
            out.push(r.len() as u8);
            out.extend_from_slice(r.as_bytes());
        }
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, WatchlistError> {
        let bad = |m: &str| WatchlistError::Corrupt(format!("reason table: {m}"));
        let mut r = Reader::new(b);
        let n = r.u32().ok_or_else(|| bad("truncated"))?;
        let mut out = Reasons::default();
        for _ in 0..n {
            let a = r
                .u8()
                .and_then(Action::from_code)
                .ok_or_else(|| bad("bad action"))?;
            let len = r.u8().ok_or_else(|| bad("truncated"))?;
            let s = r.bytes(usize::from(len)).ok_or_else(|| bad("truncated"))?;
            let s = std::str::from_utf8(s).map_err(|_| bad("reason is not UTF-8"))?;
            let i = out.intern(a, s)?;
            if usize::from(i) + 1 != out.items.len() {
                return Err(bad("duplicate entry"));
            }
        }
        if !r.rest().is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(out)
    }
}

/// A bounds-checked little-endian reader over a byte slice.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Some(a)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).and_then(|s| s.first().copied())
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.b
    }
}

/// The bytes of a watchlist file: memory-mapped from disk or owned.
pub enum Bytes {
    /// A read-only memory map of a file that is never modified in place, and the
    /// open file (for positioned reads of cold data).
    Mapped(memmap2::Mmap, std::fs::File),
    /// Bytes held in memory.
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m, _) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A positioned read failed (I/O error or out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadFailed;

/// Where lookups read a file from: hot parts (filter, directory) are sliced from
/// memory, cold parts (the record table) are copied out by offset.
pub trait Source {
    /// The whole file as a slice (mapped or owned).
    fn hot(&self) -> &[u8];
    /// Reads `buf.len()` bytes at `off`; false on failure.
    fn read_cold(&self, off: usize, buf: &mut [u8]) -> bool;
}

impl Source for [u8] {
    fn hot(&self) -> &[u8] {
        self
    }
    fn read_cold(&self, off: usize, buf: &mut [u8]) -> bool {
        match self.get(off..off.saturating_add(buf.len())) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
}

impl Source for Bytes {
    fn hot(&self) -> &[u8] {
        self
    }
    fn read_cold(&self, off: usize, buf: &mut [u8]) -> bool {
        match self {
            Bytes::Mapped(_, f) => {
                std::os::unix::fs::FileExt::read_exact_at(f, buf, off as u64).is_ok()
            }
            Bytes::Owned(v) => v.as_slice().read_cold(off, buf),
        }
    }
}

impl Bytes {
    /// Maps a file read-only.
    pub fn map(path: &Path) -> Result<Self, WatchlistError> {
        let f = std::fs::File::open(path).map_err(|e| WatchlistError::io(path, e))?;
        let len = f.metadata().map_err(|e| WatchlistError::io(path, e))?.len();
        if len == 0 {
            return Ok(Bytes::Owned(Vec::new()));
        }
        // SAFETY: watchlist files are written once to a temporary name, synced and
        // renamed into place; nothing writes to or truncates a file after that, so
        // the mapped bytes do not change under the map.
        let m = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| WatchlistError::io(path, e))?;
        // Pages this map faults in from disk come into the page cache as 2 MB folios
        // (where the kernel and file system support it): the filter and directory are
        // then mapped with huge pages (fewer TLB misses), and a positioned read of the
        // record table walks a much smaller page-cache tree. Refused (THP off): no harm.
        let _ = m.advise(memmap2::Advice::HugePage);
        Ok(Bytes::Mapped(m, f))
    }

    /// Asks the kernel to drop `file`'s clean pages from the page cache, so that the
    /// next mapping of it reads it back through [`Bytes::map`] in large folios.
    /// Best effort: a refusal only costs lookup speed.
    pub(crate) fn evict_cached(file: &std::fs::File) {
        let _ = nix::fcntl::posix_fadvise(
            file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }

    /// Drops this process's mapping of the pages in `off..off + len` (they stay in the
    /// page cache; the next access faults them back in). No-op for owned bytes.
    pub fn release(&self, off: usize, len: usize) {
        if let Bytes::Mapped(m, _) = self {
            let len = len.min(m.len().saturating_sub(off));
            // SAFETY: a read-only shared mapping of a file that is never modified (see
            // `map`): dropping its pages only makes the next access fault them back in
            // with the same contents.
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, len) };
        }
    }
}

/// Parses arbitrary bytes as a watchlist file without any signature (fuzzing entry point).
/// Must never panic; the result is discarded.
pub fn fuzz_parse(data: &[u8]) {
    let trusted = TrustedKeys::new();
    let _ = format::verify(data, &trusted, format::BodyCheck::Full);
    if let Ok(v) = format::unverified(data) {
        match v.header.kind {
            FileKind::Snapshot => {
                if let Ok(s) = snapshot::SnapshotData::parse(&v, snapshot::Check::Full) {
                    if let Ok(k) = DocKey::new("UTO", "L898902C") {
                        let _ = s.find(data, k);
                    }
                }
            }
            FileKind::Delta => {
                let _ = delta::Delta::parse(&v);
            }
        }
    }
}
