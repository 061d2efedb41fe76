//! One list as the gate sees it: an immutable snapshot, the document changes of
//! every delta applied since (an in-RAM overlay), and the person index.
//!
//! A `WatchList` is never modified: applying a delta builds a new one, so a
//! reader holding an `Arc<WatchList>` sees one version from start to end.

use super::delta::Delta;
use super::format::ListId;
use super::person::{self, PersonIndex, PersonQuery, PersonRecord};
use super::snapshot::Snapshot;
use super::{Action, DocKey, Hit, MatchKind, Reasons, Verdict, WatchlistError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Keys are already evenly mixed: hash a key by folding it to 64 bits.
#[derive(Default)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, x: u128) {
        self.0 = ((x >> 64) as u64) ^ (x as u64);
    }
}

type Overlay = HashMap<u128, u32, BuildHasherDefault<FoldHasher>>;
const REMOVED: u32 = u32::MAX;

/// Integrity state of the snapshot behind a list.
pub(crate) const INTEGRITY_PENDING: u8 = 0;
pub(crate) const INTEGRITY_OK: u8 = 1;
pub(crate) const INTEGRITY_FAILED: u8 = 2;

/// An immutable view of one list version.
pub struct WatchList {
    base: Arc<Snapshot>,
    integrity: Arc<AtomicU8>,
    reasons: Reasons,
    overlay: Arc<Overlay>,
    persons: Arc<(Vec<PersonRecord>, PersonIndex)>,
    version: u64,
    created_at_ms: u64,
    doc_count: u64,
    deltas: Vec<[u8; 32]>,
}

impl std::fmt::Debug for WatchList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchList")
            .field("list_id", self.list_id())
            .field("version", &self.version)
            .field("doc_count", &self.doc_count)
            .finish()
    }
}

impl WatchList {
    /// A list at the snapshot's version, with no deltas.
    pub fn from_snapshot(base: Arc<Snapshot>) -> Self {
        Self::with_integrity(base, Arc::new(AtomicU8::new(INTEGRITY_OK)))
    }

    pub(crate) fn with_integrity(base: Arc<Snapshot>, integrity: Arc<AtomicU8>) -> Self {
        let reasons = base.data.reasons.clone();
        let recs = base.data.persons.clone();
        let index = PersonIndex::build(&recs);
        WatchList {
            version: base.header.version,
            created_at_ms: base.header.created_at_ms,
            doc_count: base.data.len() as u64,
            base,
            integrity,
            reasons,
            overlay: Arc::new(Overlay::default()),
            persons: Arc::new((recs, index)),
            deltas: Vec::new(),
        }
    }

    /// The list id.
    pub fn list_id(&self) -> &ListId {
        &self.base.header.list_id
    }

    /// The current version (of the last applied file).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Creation time of the last applied file, Unix ms.
    pub fn created_at_ms(&self) -> u64 {
        self.created_at_ms
    }

    /// Number of document entries in this version.
    pub fn doc_count(&self) -> u64 {
        self.doc_count
    }

    /// Number of person entries in this version.
    pub fn person_count(&self) -> usize {
        self.persons.0.len()
    }

    /// Document changes held in RAM on top of the snapshot.
    pub fn overlay_len(&self) -> usize {
        self.overlay.len()
    }

    /// `ok`, `pending` or `failed`: the state of the snapshot's body check.
    pub fn integrity_state(&self) -> &'static str {
        match self.integrity.load(Ordering::Acquire) {
            INTEGRITY_OK => "ok",
            INTEGRITY_FAILED => "failed",
            _ => "pending",
        }
    }

    /// The base snapshot.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.base
    }

    /// Content hashes of the applied deltas, in order.
    pub fn delta_hashes(&self) -> &[[u8; 32]] {
        &self.deltas
    }

    fn base_has(&self, k: u128) -> bool {
        matches!(
            self.base.data.find(&self.base.bytes, DocKey::from_mixed(k)),
            Ok(Some(_))
        )
    }

    /// A new list with `delta` applied; errors if the delta is for another list or version.
    pub fn apply(&self, delta: &Delta) -> Result<WatchList, WatchlistError> {
        let h = &delta.header;
        if h.list_id != *self.list_id() {
            return Err(WatchlistError::WrongList {
                expected: self.list_id().to_string(),
                found: h.list_id.to_string(),
            });
        }
        if h.base_version != self.version {
            return Err(WatchlistError::NotApplicable {
                base: h.base_version,
                current: self.version,
            });
        }
        let mut reasons = self.reasons.clone();
        let mut remap = Vec::with_capacity(delta.reasons.items.len());
        for (a, r) in &delta.reasons.items {
            remap.push(reasons.intern(*a, r)?);
        }
        let map = |v: u16| -> Result<u16, WatchlistError> {
            remap
                .get(usize::from(v))
                .copied()
                .ok_or_else(|| WatchlistError::Corrupt("delta value index out of range".into()))
        };
        let mut overlay: Overlay = (*self.overlay).clone();
        overlay.reserve(delta.doc_changes());
        let mut count = self.doc_count as i64;
        for &(k, v) in &delta.upserts {
            let before = match overlay.insert(k, u32::from(map(v)?)) {
                Some(old) => old != REMOVED,
                None => self.base_has(k),
            };
            if !before {
                count += 1;
            }
        }
        for &k in &delta.removes {
            let before = match overlay.insert(k, REMOVED) {
                Some(old) => old != REMOVED,
                None => self.base_has(k),
            };
            if before {
                count -= 1;
            }
        }
        let persons = if delta.person_upserts.is_empty() && delta.person_removes.is_empty() {
            self.persons.clone()
        } else {
            let mut recs = self.persons.0.clone();
            let gone: Vec<_> = delta
                .person_removes
                .iter()
                .chain(&delta.person_upserts)
                .map(person::identity)
                .collect();
            recs.retain(|r| !gone.contains(&person::identity(r)));
            for p in &delta.person_upserts {
                let mut p = p.clone();
                p.value = map(p.value)?;
                recs.push(p);
            }
            let index = PersonIndex::build(&recs);
            Arc::new((recs, index))
        };
        let mut deltas = self.deltas.clone();
        deltas.push(delta.content_hash);
        Ok(WatchList {
            base: self.base.clone(),
            integrity: self.integrity.clone(),
            reasons,
            overlay: Arc::new(overlay),
            persons,
            version: h.version,
            created_at_ms: h.created_at_ms,
            doc_count: count.max(0) as u64,
            deltas,
        })
    }

    fn hit(&self, v: u16, kind: MatchKind) -> Verdict {
        let (action, reason) = match self.reasons.get(v) {
            Some((a, r)) => (*a, r.clone()),
            None => (Action::Refer, Arc::from("invalid entry")),
        };
        let action = if kind == MatchKind::Fuzzy {
            Action::Refer
        } else {
            action
        };
        Verdict::Hit(Hit {
            action,
            reason,
            list_id: self.list_id().clone(),
            version: self.version,
            kind,
        })
    }

    fn integrity_failed(&self) -> Option<Verdict> {
        (self.integrity.load(Ordering::Acquire) == INTEGRITY_FAILED).then(|| {
            Verdict::Hit(Hit {
                action: Action::Refer,
                reason: Arc::from("watchlist integrity failure"),
                list_id: self.list_id().clone(),
                version: self.version,
                kind: MatchKind::Integrity,
            })
        })
    }

    /// Exact document lookup.
    pub fn lookup_document(&self, key: DocKey) -> Verdict {
        if let Some(v) = self.integrity_failed() {
            return v;
        }
        match self.overlay.get(&key.mixed()) {
            Some(&REMOVED) => Verdict::Clear,
            Some(&v) => self.hit(v as u16, MatchKind::Exact),
            None => match self.base.data.find(&self.base.bytes, key) {
                Ok(Some(v)) => self.hit(v, MatchKind::Exact),
                Ok(None) => Verdict::Clear,
                // The file could not be read: never answer clear on a failed read.
                Err(_) => Verdict::Hit(Hit {
                    action: Action::Refer,
                    reason: Arc::from("watchlist read failure"),
                    list_id: self.list_id().clone(),
                    version: self.version,
                    kind: MatchKind::Integrity,
                }),
            },
        }
    }

    /// Person lookup: exact matches take the entry's action, fuzzy ones refer.
    pub fn lookup_person(&self, q: &PersonQuery) -> Verdict {
        if let Some(v) = self.integrity_failed() {
            return v;
        }
        match self.persons.1.lookup(q, &self.reasons) {
            Some(m) => self.hit(
                m.value,
                if m.exact {
                    MatchKind::Exact
                } else {
                    MatchKind::Fuzzy
                },
            ),
            None => Verdict::Clear,
        }
    }

    /// A digest of the list's logical content (every effective entry in key
    /// order, then persons): equal lists give equal digests whatever files built them.
    /// O(entries); meant for tests and audits.
    pub fn content_digest(&self) -> [u8; 32] {
        let mut d = Sha256::new();
        d.update(self.list_id().as_str().as_bytes());
        d.update(self.version.to_le_bytes());
        let mut over: Vec<(u128, u32)> = self.overlay.iter().map(|(k, v)| (*k, *v)).collect();
        over.sort_unstable();
        let mut oi = over.into_iter().peekable();
        let mut emit = |k: u128, v: u16| {
            d.update(k.to_be_bytes());
            if let Some((a, r)) = self.reasons.get(v) {
                d.update([a.code(), r.len() as u8]);
                d.update(r.as_bytes());
            }
        };
        for (k, v) in self.base.data.iter(&self.base.bytes) {
            while let Some(&(ok, ov)) = oi.peek() {
                if ok >= k {
                    break;
                }
                if ov != REMOVED {
                    emit(ok, ov as u16);
                }
                oi.next();
            }
            if let Some(&(ok, ov)) = oi.peek() {
                if ok == k {
                    if ov != REMOVED {
                        emit(ok, ov as u16);
                    }
                    oi.next();
                    continue;
                }
            }
            emit(k, v);
        }
        for (ok, ov) in oi {
            if ov != REMOVED {
                emit(ok, ov as u16);
            }
        }
        let mut ps: Vec<String> = self
            .persons
            .0
            .iter()
            .map(|p| {
                let r = self
                    .reasons
                    .get(p.value)
                    .map(|(a, r)| format!("{}:{r}", a.as_str()))
                    .unwrap_or_default();
                format!("{:?}|{r}", person::identity(p))
            })
            .collect();
        ps.sort();
        for p in ps {
            d.update(p.as_bytes());
            d.update([0]);
        }
        d.finalize().into()
    }
}
