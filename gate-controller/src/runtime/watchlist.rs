//! The signed watchlist store in `gated`: opening it from `[watchlist]`, answering
//! the machine's `CheckWatchlist` under the staleness policy, and polling
//! `updates_dir` for new snapshots and deltas.
//!
//! - [`StoreScreening`] answers lookups from a [`WatchlistStore`]. Past `max_age_s`
//!   (or with no list loaded, or a list that failed its integrity check) an unlisted
//!   document gets [`WatchlistVerdict::Stale`]: the machine refers the traveller and
//!   raises the `watchlist_stale` alarm. Listed documents keep their action.
//! - [`Updater`] ingests `updates_dir` every `poll_interval_s` (blocking I/O off the
//!   gate loop). Each installed file is reported as `Input::WatchlistUpdate(Ok)`;
//!   each rejected file (unsigned, untrusted key, corrupt, out of order) once as
//!   `Err`, which raises the `watchlist_update_rejected` alarm while the last good
//!   version keeps serving.

pub mod section;

pub use self::section::{WatchlistAction, WatchlistEntry, WatchlistSection};
use super::core::Input;
use super::screening::{ListState, Screening, WatchlistState};
use crate::problem::Problem;
use crate::types::{DocumentKey, WatchlistVerdict};
use crate::watchlist::{
    Action, Hit, MatchKind, OpenOptions, PersonQuery, PublicKey, TrustedKeys, Verdict,
    WatchlistError, WatchlistStore,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Whether a `trusted_keys` entry is an inline key (64 hex digits) rather than a path.
fn is_inline_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads one `trusted_keys` entry: 64 hex digits, or the path of a public key file.
pub fn trusted_key(entry: &str) -> Result<PublicKey, WatchlistError> {
    if is_inline_key(entry) {
        PublicKey::from_hex(entry)
    } else {
        PublicKey::read(Path::new(entry))
    }
}

impl WatchlistSection {
    /// Makes `dir`, `updates_dir` and key file paths relative to `base` (the
    /// directory of the configuration file).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.dir, &mut self.updates_dir].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for k in &mut self.trusted_keys {
            if !is_inline_key(k) && Path::new(k).is_relative() {
                *k = base.join(&*k).to_string_lossy().into_owned();
            }
        }
    }

    /// The trusted keys named in `trusted_keys`.
    pub fn trusted(&self) -> Result<TrustedKeys, WatchlistError> {
        let mut t = TrustedKeys::new();
        for k in &self.trusted_keys {
            t.add(trusted_key(k)?);
        }
        Ok(t)
    }
}

impl WatchlistSection {
    /// Every unusable value of `[watchlist]` (inline entries, store keys), with its key.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        {
            let mut bad = |key: &str, problem: String| out.push(Problem::new(key, problem));
            for (i, e) in self.entries.iter().enumerate() {
                if e.issuing_state.len() != 3
                    || !e
                        .issuing_state
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '<')
                {
                    bad(
                        &format!("watchlist.entries[{i}].issuing_state"),
                        format!("{:?} must be a three-letter ICAO code", e.issuing_state),
                    );
                }
                if e.document_number.is_empty()
                    || e.document_number.len() > 22
                    || !e.document_number.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    bad(
                        &format!("watchlist.entries[{i}].document_number"),
                        format!("{:?} must be 1 to 22 letters and digits", e.document_number),
                    );
                }
            }
        }
        out.extend(
            config_problems(self)
                .into_iter()
                .map(|(key, problem)| Problem::new(key, problem)),
        );
        out
    }
}

/// Problems with the store keys of `[watchlist]`: `(key, problem)`.
fn config_problems(w: &WatchlistSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if w.dir.is_some() && w.trusted_keys.is_empty() {
        out.push((
            "watchlist.trusted_keys".into(),
            "needs at least one public key when watchlist.dir is set".into(),
        ));
    }
    if w.dir.is_none() && w.updates_dir.is_some() {
        out.push((
            "watchlist.updates_dir".into(),
            "needs watchlist.dir (the store the updates go into)".into(),
        ));
    }
    for (i, k) in w.trusted_keys.iter().enumerate() {
        if let Err(e) = trusted_key(k) {
            out.push((format!("watchlist.trusted_keys[{i}]"), e.to_string()));
        }
    }
    if w.poll_interval_s == 0 {
        out.push((
            "watchlist.poll_interval_s".into(),
            "must be greater than 0".into(),
        ));
    }
    if w.max_age_s == 0 {
        out.push((
            "watchlist.max_age_s".into(),
            "must be greater than 0".into(),
        ));
    }
    out
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Document screening against a signed [`WatchlistStore`], with the staleness policy.
pub struct StoreScreening {
    store: Arc<WatchlistStore>,
    max_age: Duration,
}

impl StoreScreening {
    /// Screens against `store`; lists older than `max_age` make it stale.
    pub fn new(store: Arc<WatchlistStore>, max_age: Duration) -> StoreScreening {
        StoreScreening { store, max_age }
    }

    fn version(&self) -> u64 {
        self.store
            .lists()
            .iter()
            .map(|l| l.version())
            .max()
            .unwrap_or(0)
    }
}

/// The reason a verdict carries into the movement record: the list's reason code for a
/// document hit; for a person hit, `person-exact:` or `person-fuzzy:`, the list id and
/// the list's reason code (never the name that matched).
fn hit_reason(h: &Hit, person: bool) -> String {
    if !person || !matches!(h.kind, MatchKind::Exact | MatchKind::Fuzzy) {
        return h.reason.to_string();
    }
    let kind = if h.kind == MatchKind::Exact {
        "exact"
    } else {
        "fuzzy"
    };
    format!("person-{kind}:{}:{}", h.list_id, h.reason)
}

impl Screening for StoreScreening {
    fn check(&self, key: &DocumentKey) -> WatchlistVerdict {
        self.check_traveller(key, None)
    }

    fn check_traveller(&self, key: &DocumentKey, holder: Option<&PersonQuery>) -> WatchlistVerdict {
        let now = now_unix_ms();
        let document = self
            .store
            .lookup_document(&key.issuing_state, &key.document_number);
        let person = holder.map_or(Verdict::Clear, |q| self.store.lookup_person(q));
        // On equal actions the document hit is kept (the stronger evidence).
        let from_person = matches!((&document, &person), (Verdict::Clear, Verdict::Hit(_)))
            || matches!(
                (&document, &person),
                (Verdict::Hit(d), Verdict::Hit(p)) if p.action > d.action
            );
        match document.strongest(person) {
            Verdict::Hit(h) => {
                let reason = hit_reason(&h, from_person);
                if from_person {
                    // The list and the kind of match, never the name.
                    tracing::info!(list = %h.list_id, version = h.version, kind = ?h.kind, action = h.action.as_str(), "watchlist person match");
                }
                match h.action {
                    Action::Hold => WatchlistVerdict::Hold {
                        version: h.version,
                        reason,
                    },
                    Action::Refer => WatchlistVerdict::Refer {
                        version: h.version,
                        reason,
                    },
                }
            }
            Verdict::Clear if self.store.is_stale(now, self.max_age) => WatchlistVerdict::Stale {
                version: self.version(),
            },
            Verdict::Clear => WatchlistVerdict::Clear {
                version: self.version(),
            },
        }
    }

    fn state(&self) -> Option<WatchlistState> {
        let now = now_unix_ms();
        Some(WatchlistState {
            stale: self.store.is_stale(now, self.max_age),
            max_age_s: self.max_age.as_secs(),
            lists: self
                .store
                .status(now)
                .into_iter()
                .map(|s| ListState {
                    list_id: s.list_id,
                    version: s.version,
                    created_at_ms: s.created_at_ms,
                    age_ms: s.age_ms,
                    doc_count: s.doc_count,
                    person_count: s.person_count as u64,
                    stale: s.integrity == "failed"
                        || u128::from(s.age_ms) > self.max_age.as_millis(),
                    integrity: s.integrity,
                })
                .collect(),
        })
    }
}

/// Polls a folder for signed snapshots and deltas and installs them into the store.
pub struct Updater {
    store: Arc<WatchlistStore>,
    folder: PathBuf,
    every: Duration,
    reported: HashMap<PathBuf, (u64, Option<SystemTime>)>,
}

impl Updater {
    /// Polls `folder` every `every`.
    pub fn new(store: Arc<WatchlistStore>, folder: PathBuf, every: Duration) -> Updater {
        Updater {
            store,
            folder,
            every,
            reported: HashMap::new(),
        }
    }

    /// One poll: ingests the folder and returns what to tell the machine. A rejected
    /// file is reported once (again only if it changes).
    pub fn poll_once(&mut self) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        match self.store.ingest_folder(&self.folder) {
            Ok(outcomes) => {
                for (path, r) in outcomes {
                    match r {
                        Ok(v) => {
                            tracing::info!(file = %path.display(), version = v, "watchlist update installed");
                            self.reported.remove(&path);
                            out.push(Ok(v));
                        }
                        Err(e) => {
                            let md = std::fs::metadata(&path).ok();
                            let sig = (
                                md.as_ref().map_or(0, |m| m.len()),
                                md.and_then(|m| m.modified().ok()),
                            );
                            if self.reported.get(&path) != Some(&sig) {
                                tracing::warn!(file = %path.display(), error = %e, "watchlist update rejected; the last good version keeps serving");
                                self.reported.insert(path.clone(), sig);
                                out.push(Err(format!("{}: {e}", path.display())));
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let sig = (0, None);
                if self.reported.get(&self.folder) != Some(&sig) {
                    tracing::warn!(folder = %self.folder.display(), error = %e, "cannot read the watchlist updates folder");
                    self.reported.insert(self.folder.clone(), sig);
                    out.push(Err(e.to_string()));
                }
            }
        }
        out
    }

    /// Polls until `tx` closes (the gate stopped).
    pub async fn run(mut self, tx: mpsc::UnboundedSender<Input>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let r = tokio::task::spawn_blocking(move || {
                let out = self.poll_once();
                (self, out)
            })
            .await;
            let out;
            (self, out) = match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, "watchlist update poll failed");
                    return;
                }
            };
            for result in out {
                if tx.send(Input::WatchlistUpdate { result }).is_err() {
                    return;
                }
            }
        }
    }
}

/// The store of `[watchlist]`, ready for the gate: its screening, the problems met
/// while opening it (each becomes an alarm) and the updater, if `updates_dir` is set.
pub struct OpenedStore {
    /// Lookups under the staleness policy.
    pub screening: StoreScreening,
    /// Lists that could not be loaded.
    pub problems: Vec<String>,
    /// The poller of `updates_dir`.
    pub updater: Option<Updater>,
}

/// Opens the store named by `[watchlist] dir` (`None` when there is none). Snapshots
/// are served as soon as their signature and layout check out; their bodies are
/// re-hashed in the background (a failure refers everyone, see [`OpenOptions`]).
pub fn open(w: &WatchlistSection) -> Result<Option<OpenedStore>, WatchlistError> {
    let Some(dir) = &w.dir else {
        return Ok(None);
    };
    let trusted = w.trusted()?;
    let store = Arc::new(WatchlistStore::open(
        dir,
        trusted,
        OpenOptions {
            snapshot_body: crate::watchlist::format::BodyCheck::Deferred,
        },
    )?);
    let problems = store.problems();
    for l in store.lists() {
        tracing::info!(list = %l.list_id(), version = l.version(), documents = l.doc_count(), "watchlist loaded");
    }
    let updater = w.updates_dir.as_ref().map(|u| {
        Updater::new(
            store.clone(),
            u.clone(),
            Duration::from_secs(w.poll_interval_s),
        )
    });
    Ok(Some(OpenedStore {
        screening: StoreScreening::new(store, Duration::from_secs(w.max_age_s)),
        problems,
        updater,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document holding only `[watchlist]`.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        watchlist: WatchlistSection,
    }

    fn parse(text: &str) -> Result<WatchlistSection, toml::de::Error> {
        toml::from_str::<Doc>(text).map(|d| d.watchlist)
    }

    fn problems(text: &str) -> Vec<String> {
        let w = parse(text).expect("parses");
        w.problems().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn store_keys_are_validated() {
        let pk = crate::watchlist::SecretKey::from_seed([3; 32]).public();
        let hexkey = pk.to_file_text().trim().to_string();
        assert!(problems(&format!(
            "[watchlist]\ndir = \"s\"\ntrusted_keys = [\"{hexkey}\"]\nupdates_dir = \"u\"\n"
        ))
        .is_empty());
        assert_eq!(
            problems("[watchlist]\ndir = \"s\"\n"),
            vec!["watchlist.trusted_keys".to_string()]
        );
        assert_eq!(
            problems("[watchlist]\nupdates_dir = \"u\"\n"),
            vec!["watchlist.updates_dir".to_string()]
        );
        assert_eq!(
            problems("[watchlist]\ndir = \"s\"\ntrusted_keys = [\"/nonexistent/k.pub\"]\n"),
            vec!["watchlist.trusted_keys[0]".to_string()]
        );
        assert_eq!(
            problems(&format!(
                "[watchlist]\ndir = \"s\"\ntrusted_keys = [\"{hexkey}\"]\nmax_age_s = 0\npoll_interval_s = 0\n"
            )),
            vec![
                "watchlist.poll_interval_s".to_string(),
                "watchlist.max_age_s".to_string()
            ]
        );
        let e = parse("[watchlist]\nmax_age = 3\n").expect_err("unknown key");
        assert!(e.to_string().contains("max_age"), "{e}");
    }

    #[test]
    fn the_stronger_of_document_and_person_decides_and_names_its_source() {
        use crate::watchlist::snapshot::SnapshotBuilder;
        use crate::watchlist::{DocKey, ListId, PartialDate, PersonEntry, SecretKey};
        let dir = tempfile::tempdir().expect("dir");
        let k = SecretKey::from_seed([6; 32]);
        let mut b = SnapshotBuilder::new(ListId::new("nat").expect("id"), 2, now_unix_ms());
        b.add_document(
            DocKey::new("UTO", "R1").expect("key"),
            Action::Refer,
            "lost",
        )
        .expect("add");
        b.add_document(
            DocKey::new("UTO", "H1").expect("key"),
            Action::Hold,
            "stolen",
        )
        .expect("add");
        b.add_person(&PersonEntry {
            surname: "Ivanova".into(),
            given_names: "Olga".into(),
            dob: PartialDate::parse("1969").expect("date"),
            nationality: None,
            action: Action::Hold,
            reason: "warrant".into(),
        })
        .expect("person");
        let snap = dir.path().join("s.wl");
        b.write(&snap, &k).expect("write");
        let store = WatchlistStore::open(
            &dir.path().join("store"),
            TrustedKeys::from_keys([k.public()]),
            OpenOptions::default(),
        )
        .expect("store");
        store.install_snapshot_file(&snap).expect("install");
        let s = StoreScreening::new(Arc::new(store), Duration::from_secs(3600));
        let key = |n: &str| DocumentKey {
            issuing_state: "UTO".into(),
            document_number: n.into(),
        };
        let q = |surname: &str| PersonQuery {
            surname: surname.into(),
            given_names: "OLGA".into(),
            dob: PartialDate {
                year: 1969,
                month: 8,
                day: 6,
            },
            nationality: Some("UTO".into()),
        };
        let hold = |reason: &str| WatchlistVerdict::Hold {
            version: 2,
            reason: reason.into(),
        };
        let refer = |reason: &str| WatchlistVerdict::Refer {
            version: 2,
            reason: reason.into(),
        };
        // A refer document with an exact person hold: the person's hold.
        assert_eq!(
            s.check_traveller(&key("R1"), Some(&q("IVANOVA"))),
            hold("person-exact:nat:warrant")
        );
        // A hold document with a fuzzy person candidate: the document's hold.
        assert_eq!(
            s.check_traveller(&key("H1"), Some(&q("IWANOWA"))),
            hold("stolen")
        );
        // A refer document and a fuzzy candidate (refer): the document's reason.
        assert_eq!(
            s.check_traveller(&key("R1"), Some(&q("IWANOWA"))),
            refer("lost")
        );
        // An unlisted document: the fuzzy candidate refers, never holds.
        assert_eq!(
            s.check_traveller(&key("N1"), Some(&q("IWANOWA"))),
            refer("person-fuzzy:nat:warrant")
        );
        // Without names (or through `check`) only the document is screened.
        assert_eq!(
            s.check_traveller(&key("N1"), None),
            WatchlistVerdict::Clear { version: 2 }
        );
        assert_eq!(s.check(&key("R1")), refer("lost"));
        let st = s.state().expect("state");
        assert_eq!((st.lists[0].person_count, st.lists[0].stale), (1, false));
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let mut w = WatchlistSection {
            dir: Some("s".into()),
            updates_dir: Some("/abs/u".into()),
            trusted_keys: vec!["k.pub".into(), "a".repeat(64)],
            ..WatchlistSection::default()
        };
        w.resolve_paths(Path::new("/etc/gate"));
        assert_eq!(w.dir, Some(PathBuf::from("/etc/gate/s")));
        assert_eq!(w.updates_dir, Some(PathBuf::from("/abs/u")));
        assert_eq!(w.trusted_keys[0], "/etc/gate/k.pub");
        assert_eq!(w.trusted_keys[1], "a".repeat(64));
    }
}
