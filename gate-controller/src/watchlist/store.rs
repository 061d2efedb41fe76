//! `WatchlistStore`: the directory of lists a gate serves from.
//!
//! Layout: `DIR/<list_id>/MANIFEST` names the snapshot file and the delta files
//! applied on top of it, in order; the files sit beside it. Every change writes
//! the new file to a temporary name, syncs it, renames it into place, then does the
//! same for the manifest and syncs the directory. The manifest rename is the commit
//! point: a crash before it leaves the old version intact (the new file is an
//! unreferenced leftover, removed at the next open); a crash after it leaves the new
//! version. Readers hold an `Arc` of an immutable [`WatchList`], swapped in one step,
//! so a lookup sees the old or the new version, never a mix.

use super::delta::Delta;
use super::format::{self, BodyCheck, FileKind, ListId};
use super::keys::{hex, TrustedKeys};
use super::list::{WatchList, INTEGRITY_FAILED, INTEGRITY_OK};
use super::snapshot::{Check, Snapshot};
use super::{Action, Bytes, DocKey, Hit, MatchKind, PersonQuery, Verdict, WatchlistError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const MANIFEST: &str = "MANIFEST";
const MANIFEST_MAGIC: &str = "echannel-watchlist-manifest 1";

/// How a store checks its files when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// `Full` re-hashes every snapshot before serving. `Deferred` serves as soon as the
    /// signature and layout check out and re-hashes in a background thread; if that
    /// fails, the list answers `refer` for everyone (integrity alarm in `status`).
    /// Files in a store were fully verified when they were installed.
    pub snapshot_body: BodyCheck,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            snapshot_body: BodyCheck::Full,
        }
    }
}

/// Status of one list, for `/v1/status` and alarms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListStatus {
    /// The list id.
    pub list_id: String,
    /// Current version.
    pub version: u64,
    /// Creation time of the current version (Unix ms).
    pub created_at_ms: u64,
    /// Age of the current version at `now` (ms; 0 if created in the future).
    pub age_ms: u64,
    /// Document entries.
    pub doc_count: u64,
    /// Person entries.
    pub person_count: usize,
    /// Deltas applied on top of the snapshot.
    pub deltas: usize,
    /// `ok`, `pending` (background check running) or `failed`.
    pub integrity: &'static str,
}

/// What happened to one file of an ingested folder: its path and the new version or the error.
pub type IngestOutcome = (PathBuf, Result<u64, WatchlistError>);

/// The set of lists a gate serves, persisted in a directory.
pub struct WatchlistStore {
    dir: PathBuf,
    trusted: TrustedKeys,
    lists: RwLock<BTreeMap<ListId, Arc<WatchList>>>,
    writer: Mutex<()>,
    problems: Mutex<Vec<String>>,
}

fn sync_dir(dir: &Path) -> Result<(), WatchlistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WatchlistError::io(dir, e))
}

/// Writes `data` to `dir/name` atomically: temp file, sync, rename, sync directory.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), WatchlistError> {
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut f = File::create(&tmp).map_err(|e| WatchlistError::io(&tmp, e))?;
    f.write_all(data).map_err(|e| WatchlistError::io(&tmp, e))?;
    f.sync_all().map_err(|e| WatchlistError::io(&tmp, e))?;
    drop(f);
    let dst = dir.join(name);
    fs::rename(&tmp, &dst).map_err(|e| WatchlistError::io(&dst, e))?;
    sync_dir(dir)
}

struct Manifest {
    list_id: ListId,
    snapshot: String,
    deltas: Vec<String>,
}

impl Manifest {
    fn encode(&self) -> String {
        let mut s = format!(
            "{MANIFEST_MAGIC}\nlist {}\nsnapshot {}\n",
            self.list_id, self.snapshot
        );
        for d in &self.deltas {
            s.push_str(&format!("delta {d}\n"));
        }
        let sum = hex(&Sha256::digest(s.as_bytes()));
        s.push_str(&format!("check {sum}\n"));
        s
    }

    fn decode(text: &str) -> Result<Self, WatchlistError> {
        let bad = |m: &str| WatchlistError::Store(format!("manifest: {m}"));
        let body_end = text
            .rfind("check ")
            .ok_or_else(|| bad("no checksum line"))?;
        let (body, check) = text.split_at(body_end);
        if check.trim_end() != format!("check {}", hex(&Sha256::digest(body.as_bytes()))) {
            return Err(bad("checksum mismatch"));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MANIFEST_MAGIC) {
            return Err(bad("bad first line"));
        }
        let list_id = lines
            .next()
            .and_then(|l| l.strip_prefix("list "))
            .ok_or_else(|| bad("no list line"))
            .and_then(ListId::new)?;
        let snapshot = lines
            .next()
            .and_then(|l| l.strip_prefix("snapshot "))
            .ok_or_else(|| bad("no snapshot line"))?
            .to_string();
        let mut deltas = Vec::new();
        for l in lines {
            deltas.push(
                l.strip_prefix("delta ")
                    .ok_or_else(|| bad("unexpected line"))?
                    .to_string(),
            );
        }
        let safe = |n: &str| {
            !n.is_empty()
                && !n.starts_with('.')
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !safe(&snapshot) || !deltas.iter().all(|d| safe(d)) {
            return Err(bad("bad file name"));
        }
        Ok(Manifest {
            list_id,
            snapshot,
            deltas,
        })
    }
}

fn file_name(kind: &str, base: u64, version: u64, hash: &[u8; 32]) -> String {
    format!("{kind}-{base:020}-{version:020}-{}.wl", hex(&hash[..8]))
}

impl WatchlistStore {
    /// Opens (creating if needed) a store directory and loads the latest version of
    /// every list in it. A list that fails to load is left out and reported by
    /// [`problems`](Self::problems); the store itself only fails on directory errors.
    pub fn open(
        dir: &Path,
        trusted: TrustedKeys,
        opts: OpenOptions,
    ) -> Result<Self, WatchlistError> {
        fs::create_dir_all(dir).map_err(|e| WatchlistError::io(dir, e))?;
        let store = WatchlistStore {
            dir: dir.to_path_buf(),
            trusted,
            lists: RwLock::new(BTreeMap::new()),
            writer: Mutex::new(()),
            problems: Mutex::new(Vec::new()),
        };
        let mut subdirs: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| WatchlistError::io(dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join(MANIFEST).is_file())
            .collect();
        subdirs.sort();
        for sub in subdirs {
            match store.load_list(&sub, opts) {
                Ok(list) => {
                    store
                        .write_lists()
                        .insert(list.list_id().clone(), Arc::new(list));
                }
                Err(e) => store.problem(format!("{}: {e}", sub.display())),
            }
        }
        Ok(store)
    }

    fn problem(&self, p: String) {
        if let Ok(mut g) = self.problems.lock() {
            g.push(p);
        }
    }

    fn write_lists(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<ListId, Arc<WatchList>>> {
        self.lists.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read_lists(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<ListId, Arc<WatchList>>> {
        self.lists.read().unwrap_or_else(|e| e.into_inner())
    }

    fn load_list(&self, sub: &Path, opts: OpenOptions) -> Result<WatchList, WatchlistError> {
        let mpath = sub.join(MANIFEST);
        let text = fs::read_to_string(&mpath).map_err(|e| WatchlistError::io(&mpath, e))?;
        let m = Manifest::decode(&text)?;
        let spath = sub.join(&m.snapshot);
        let check = if opts.snapshot_body == BodyCheck::Full {
            Check::Full
        } else {
            Check::Quick
        };
        let snap = Arc::new(Snapshot::from_bytes(
            Bytes::map(&spath)?,
            &self.trusted,
            opts.snapshot_body,
            check,
        )?);
        if snap.header.list_id != m.list_id {
            return Err(WatchlistError::Store(format!(
                "{} is not a snapshot of list {}",
                m.snapshot, m.list_id
            )));
        }
        let integrity = Arc::new(AtomicU8::new(INTEGRITY_OK));
        if opts.snapshot_body == BodyCheck::Deferred {
            integrity.store(
                super::list::INTEGRITY_PENDING,
                std::sync::atomic::Ordering::Release,
            );
            let (s, flag) = (snap.clone(), integrity.clone());
            std::thread::spawn(move || {
                let ok = s.check_body().is_ok();
                flag.store(
                    if ok { INTEGRITY_OK } else { INTEGRITY_FAILED },
                    std::sync::atomic::Ordering::Release,
                );
            });
        }
        let mut list = WatchList::with_integrity(snap, integrity);
        for d in &m.deltas {
            let delta = Delta::open(&sub.join(d), &self.trusted)?;
            list = list.apply(&delta)?;
        }
        // Remove leftovers of interrupted updates and superseded files.
        if let Ok(rd) = fs::read_dir(sub) {
            for e in rd.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().to_string();
                let keep = name == MANIFEST || name == m.snapshot || m.deltas.contains(&name);
                if !keep && (name.starts_with(".tmp-") || name.ends_with(".wl")) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(list)
    }

    /// Problems met while opening (lists that could not be loaded).
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The current version of a list.
    pub fn list(&self, id: &ListId) -> Option<Arc<WatchList>> {
        self.read_lists().get(id).cloned()
    }

    /// Every list's current version.
    pub fn lists(&self) -> Vec<Arc<WatchList>> {
        self.read_lists().values().cloned().collect()
    }

    /// Installs a new snapshot (a first list, or a newer full version of a list).
    /// The file is copied into the store, fully verified there, then committed.
    pub fn install_snapshot_file(&self, path: &Path) -> Result<u64, WatchlistError> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let src = Bytes::map(path)?;
        let header = format::parse_layout(&src)?;
        if header.kind != FileKind::Snapshot {
            return Err(WatchlistError::WrongKind {
                expected: "snapshot",
                found: "delta",
            });
        }
        let cur = self.list(&header.list_id);
        if let Some(c) = &cur {
            if header.version <= c.version() {
                return Err(WatchlistError::NotNewer {
                    current: c.version(),
                    offered: header.version,
                });
            }
        }
        let sub = self.dir.join(header.list_id.as_str());
        fs::create_dir_all(&sub).map_err(|e| WatchlistError::io(&sub, e))?;
        let tmp = sub.join(".tmp-snapshot");
        {
            let mut f = File::create(&tmp).map_err(|e| WatchlistError::io(&tmp, e))?;
            f.write_all(&src).map_err(|e| WatchlistError::io(&tmp, e))?;
            f.sync_all().map_err(|e| WatchlistError::io(&tmp, e))?;
            // The copy sits in the page cache in the small pieces it was written in;
            // dropping it (it is synced, so clean) lets the full check below read it
            // back in large folios, which makes every later lookup's read cheaper.
            Bytes::evict_cached(&f);
        }
        drop(src);
        let snap = match Snapshot::from_bytes(
            Bytes::map(&tmp)?,
            &self.trusted,
            BodyCheck::Full,
            Check::Full,
        ) {
            Ok(s) if s.header == header => s,
            Ok(_) => {
                let _ = fs::remove_file(&tmp);
                return Err(WatchlistError::Store(
                    "file changed while it was being installed".into(),
                ));
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let name = file_name("snapshot", 0, header.version, &snap.content_hash);
        let dst = sub.join(&name);
        fs::rename(&tmp, &dst).map_err(|e| WatchlistError::io(&dst, e))?;
        sync_dir(&sub)?;
        let m = Manifest {
            list_id: header.list_id.clone(),
            snapshot: name,
            deltas: Vec::new(),
        };
        write_atomic(&sub, MANIFEST, m.encode().as_bytes())?;
        let list = Arc::new(WatchList::from_snapshot(Arc::new(snap)));
        let version = list.version();
        self.write_lists().insert(header.list_id, list);
        self.collect_garbage(&sub, &m);
        Ok(version)
    }

    fn collect_garbage(&self, sub: &Path, m: &Manifest) {
        if let Ok(rd) = fs::read_dir(sub) {
            for e in rd.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".wl") && name != m.snapshot && !m.deltas.contains(&name) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Verifies a delta file and applies it atomically and durably. On any error
    /// (bad signature, unknown key, corrupt, wrong list, wrong base version) nothing
    /// changes and the current version keeps serving. Returns the new version.
    pub fn apply_delta_file(&self, path: &Path) -> Result<u64, WatchlistError> {
        let bytes = fs::read(path).map_err(|e| WatchlistError::io(path, e))?;
        self.apply_delta_bytes(&bytes)
    }

    /// Like [`apply_delta_file`](Self::apply_delta_file) for bytes already in memory
    /// (for example fetched from the upstream).
    pub fn apply_delta_bytes(&self, bytes: &[u8]) -> Result<u64, WatchlistError> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let delta = Delta::from_bytes(bytes, &self.trusted)?;
        let h = &delta.header;
        let cur = self.list(&h.list_id).ok_or_else(|| {
            WatchlistError::Store(format!("no snapshot installed for list {}", h.list_id))
        })?;
        if h.version <= cur.version() {
            return Err(WatchlistError::NotNewer {
                current: cur.version(),
                offered: h.version,
            });
        }
        let next = cur.apply(&delta)?;
        let sub = self.dir.join(h.list_id.as_str());
        let mpath = sub.join(MANIFEST);
        let text = fs::read_to_string(&mpath).map_err(|e| WatchlistError::io(&mpath, e))?;
        let mut m = Manifest::decode(&text)?;
        let name = file_name("delta", h.base_version, h.version, &delta.content_hash);
        write_atomic(&sub, &name, bytes)?;
        m.deltas.push(name);
        write_atomic(&sub, MANIFEST, m.encode().as_bytes())?;
        let version = next.version();
        self.write_lists().insert(h.list_id.clone(), Arc::new(next));
        Ok(version)
    }

    /// Applies every file in `folder` that moves a list forward (snapshots newer than
    /// the current version, deltas whose base is the current version), in version
    /// order. Files already applied are skipped; hidden files (names starting with
    /// `.`, e.g. a copy in progress) and subfolders are ignored; any other file whose
    /// header cannot be read is reported as an error. Returns what happened to each file.
    pub fn ingest_folder(&self, folder: &Path) -> Result<Vec<IngestOutcome>, WatchlistError> {
        let mut files: Vec<(u64, u64, PathBuf, FileKind, ListId)> = Vec::new();
        let mut out = Vec::new();
        for e in fs::read_dir(folder)
            .map_err(|e| WatchlistError::io(folder, e))?
            .filter_map(|e| e.ok())
        {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.')
                || !e.file_type().is_ok_and(|t| t.is_file())
            {
                continue;
            }
            let mut head = vec![0u8; format::HEADER_LEN];
            if let Err(err) =
                File::open(&p).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            {
                out.push((p.clone(), Err(WatchlistError::io(&p, err))));
                continue;
            }
            // Only the header is decoded here; the full file is verified when applied.
            match format_header_only(&head) {
                Ok(h) => files.push((h.version, h.base_version, p, h.kind, h.list_id)),
                Err(err) => out.push((p, Err(err))),
            }
        }
        files.sort();
        for (version, base, p, kind, list_id) in files {
            let current = self.list(&list_id).map(|l| l.version());
            if current.is_some_and(|c| version <= c) {
                continue;
            }
            let r = match kind {
                FileKind::Snapshot => self.install_snapshot_file(&p),
                FileKind::Delta if current == Some(base) => self.apply_delta_file(&p),
                FileKind::Delta => Err(WatchlistError::NotApplicable {
                    base,
                    current: current.unwrap_or(0),
                }),
            };
            out.push((p, r));
        }
        Ok(out)
    }

    /// Exact document lookup across all lists (the strongest hit wins).
    /// A state or number that cannot be a key cannot be listed, so it is `Clear`.
    pub fn lookup_document(&self, state: &str, docno: &str) -> Verdict {
        let Ok(key) = DocKey::new(state, docno) else {
            return Verdict::Clear;
        };
        self.lookup_key(key)
    }

    /// Lookup by a prepared key.
    pub fn lookup_key(&self, key: DocKey) -> Verdict {
        let lists = self.read_lists();
        lists
            .values()
            .fold(Verdict::Clear, |v, l| v.strongest(l.lookup_document(key)))
    }

    /// Person lookup across all lists: exact hits take the entry's action, fuzzy ones refer.
    pub fn lookup_person(&self, q: &PersonQuery) -> Verdict {
        let lists = self.read_lists();
        lists
            .values()
            .fold(Verdict::Clear, |v, l| v.strongest(l.lookup_person(q)))
    }

    /// Status of every list at `now_unix_ms`.
    pub fn status(&self, now_unix_ms: u64) -> Vec<ListStatus> {
        self.read_lists()
            .values()
            .map(|l| ListStatus {
                list_id: l.list_id().to_string(),
                version: l.version(),
                created_at_ms: l.created_at_ms(),
                age_ms: now_unix_ms.saturating_sub(l.created_at_ms()),
                doc_count: l.doc_count(),
                person_count: l.person_count(),
                deltas: l.delta_hashes().len(),
                integrity: l.integrity_state(),
            })
            .collect()
    }

    /// True when the gate must stop clearing: no list is loaded, a list failed its
    /// integrity check, or a list is older than `max_age` at `now_unix_ms`.
    pub fn is_stale(&self, now_unix_ms: u64, max_age: Duration) -> bool {
        let max = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let st = self.status(now_unix_ms);
        st.is_empty() || st.iter().any(|s| s.age_ms > max || s.integrity == "failed")
    }

    /// The document verdict under the staleness policy: when stale, a `Clear`
    /// becomes `Refer` ("watchlist stale"); hits are kept.
    pub fn decide_document(
        &self,
        now_unix_ms: u64,
        max_age: Duration,
        state: &str,
        docno: &str,
    ) -> Verdict {
        stale_guard(
            self.lookup_document(state, docno),
            self.is_stale(now_unix_ms, max_age),
        )
    }

    /// The person verdict under the staleness policy.
    pub fn decide_person(&self, now_unix_ms: u64, max_age: Duration, q: &PersonQuery) -> Verdict {
        stale_guard(self.lookup_person(q), self.is_stale(now_unix_ms, max_age))
    }
}

/// Turns `Clear` into `Refer` when the lists are stale (pure policy).
pub fn stale_guard(v: Verdict, stale: bool) -> Verdict {
    match v {
        Verdict::Clear if stale => Verdict::Hit(Hit {
            action: Action::Refer,
            reason: Arc::from("watchlist stale"),
            list_id: ListId::stale(),
            version: 0,
            kind: MatchKind::Stale,
        }),
        v => v,
    }
}

fn format_header_only(head: &[u8]) -> Result<format::Header, WatchlistError> {
    format::decode_header(head)
}
