//! `gated`'s runtime with the signed watchlist store: a gate built from a TOML
//! configuration (`[watchlist] dir / trusted_keys / updates_dir / max_age_s`) over a
//! real store on disk, real files dropped into the updates folder, small fake devices
//! in real time. Listed documents are held or referred, unlisted ones cleared, a
//! delta in `updates_dir` is picked up, a corrupt one raises an alarm while the old
//! list keeps serving, and past `max_age_s` everyone is referred with an alarm.
//! Person entries screen the holder (names from the chip's MRZ, date of birth,
//! nationality): an exact hit takes its action, a transliterated variant is referred,
//! another person is cleared, and the journal names the list and reason, never the person.

use device_drivers::devices::{
    CaptureError, ChipRead, DeviceFault, DeviceFuture, DocumentReader, FingerprintScanner, Holder,
    LaneCommand, LaneInput, LaneIo, LiveCapture, Presence, ReadError,
};
use gate_controller::config::GateConfig;
use gate_controller::record::AlarmKind;
use gate_controller::runtime::clock::MonotonicWallClock;
use gate_controller::runtime::{Devices, Gate, GateHandle, GateStatus, RunReport};
use gate_controller::types::{Document, DocumentKind, MrzDate, PaStatus};
use gate_controller::watchlist::delta::DeltaBuilder;
use gate_controller::watchlist::snapshot::SnapshotBuilder;
use gate_controller::watchlist::{
    Action, DocKey, ListId, OpenOptions, PartialDate, PersonEntry, SecretKey, TrustedKeys,
    WatchlistStore,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

fn doc(number: &str) -> Document {
    Document {
        kind: DocumentKind::Passport,
        issuing_state: "UTO".into(),
        document_number: number.into(),
        nationality: "UTO".into(),
        date_of_birth: MrzDate::parse("690806").expect("date"),
        date_of_expiry: MrzDate::parse("340623").expect("date"),
        passive_auth: PaStatus::Valid,
        mrz_matches_ocr: true,
        enrolled_thumbs: 2,
    }
}

/// Presents the documents (with their holders' names) sent on its channel, one at a time.
struct Reader {
    rx: mpsc::UnboundedReceiver<(Document, Holder)>,
    current: Option<(Document, Holder)>,
}

impl DocumentReader for Reader {
    fn next_presence(&mut self) -> DeviceFuture<'_, Result<Presence, DeviceFault>> {
        Box::pin(async move {
            match self.rx.recv().await {
                Some(d) => {
                    self.current = Some(d);
                    Ok(Presence::Placed)
                }
                None => std::future::pending().await,
            }
        })
    }
    fn read(&mut self) -> DeviceFuture<'_, Result<ChipRead, ReadError>> {
        Box::pin(async move {
            match self.current.take() {
                Some((document, holder)) => Ok(ChipRead {
                    document,
                    holder,
                    enrolled: Vec::new(),
                }),
                None => Err(ReadError::NoDocument),
            }
        })
    }
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

/// A scanner nobody touches (these tests end before the fingerprint step).
struct Scanner;

impl FingerprintScanner for Scanner {
    fn capture(&mut self, _t: Duration) -> DeviceFuture<'_, Result<LiveCapture, CaptureError>> {
        Box::pin(std::future::pending())
    }
    fn probe(&mut self) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
}

/// A lane that takes commands and reports nothing.
struct Lane;

impl LaneIo for Lane {
    fn command(&mut self, _c: LaneCommand) -> DeviceFuture<'_, Result<(), DeviceFault>> {
        Box::pin(async { Ok(()) })
    }
    fn next_input(&mut self) -> DeviceFuture<'_, Result<LaneInput, DeviceFault>> {
        Box::pin(std::future::pending())
    }
}

/// Writes a delta into `dir` under a hidden name, optionally flips a byte, then
/// renames it into place (as an operator's copy should), so the poller never sees half a file.
fn drop_delta(dir: &Path, name: &str, d: DeltaBuilder, k: &SecretKey, flip: Option<usize>) {
    let tmp = dir.join(format!(".{name}"));
    d.write(&tmp, k).expect("write delta");
    if let Some(back) = flip {
        let mut bytes = std::fs::read(&tmp).expect("read");
        let n = bytes.len();
        bytes[n - back] ^= 0x40;
        std::fs::write(&tmp, bytes).expect("corrupt");
    }
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn sk() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn dk(n: &str) -> DocKey {
    DocKey::new("UTO", n).expect("key")
}

fn list() -> ListId {
    ListId::new("sltd").expect("id")
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    updates: PathBuf,
    gates: u32,
}

/// A store with version 1 of list `sltd` (H1 hold, R1 refer, plus filler), created
/// `age_ms` ago; the public key in a file next to the config.
fn env(age_ms: u64) -> Env {
    env_with(age_ms, &[])
}

/// Like [`env`], with person entries in the list too.
fn env_with(age_ms: u64, persons: &[PersonEntry]) -> Env {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().to_owned();
    let k = sk();
    std::fs::write(root.join("authority.pub"), k.public().to_file_text()).expect("pub");
    let mut b = SnapshotBuilder::new(list(), 1, now_ms() - age_ms);
    b.add_document(dk("H1"), Action::Hold, "interpol-sltd")
        .expect("add");
    b.add_document(dk("R1"), Action::Refer, "lost")
        .expect("add");
    for i in 0..1000 {
        b.add_document(dk(&format!("F{i}")), Action::Refer, "lost")
            .expect("add");
    }
    for p in persons {
        b.add_person(p).expect("add person");
    }
    let snap = root.join("snap.wl");
    b.write(&snap, &k).expect("write");
    let store = WatchlistStore::open(
        &root.join("store"),
        TrustedKeys::from_keys([k.public()]),
        OpenOptions::default(),
    )
    .expect("open store");
    assert_eq!(store.install_snapshot_file(&snap).expect("install"), 1);
    let updates = root.join("updates");
    std::fs::create_dir_all(&updates).expect("mkdir");
    Env {
        _tmp: tmp,
        root,
        updates,
        gates: 0,
    }
}

struct Running {
    handle: GateHandle,
    task: tokio::task::JoinHandle<RunReport>,
    docs: mpsc::UnboundedSender<(Document, Holder)>,
}

impl Env {
    /// A gate built by `Gate::build` from a config file, with its own journal.
    fn gate(&mut self, max_age_s: u64) -> Running {
        self.gates += 1;
        let cfg_path = self.root.join(format!("gate{}.toml", self.gates));
        std::fs::write(
            &cfg_path,
            format!(
                r#"
[gate]
id = "gate-wl"
lane = "visitor"
direction = "arrival"

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal{n}.sqlite"

[watchlist]
dir = "store"
trusted_keys = ["authority.pub"]
updates_dir = "updates"
poll_interval_s = 1
max_age_s = {max_age_s}
"#,
                n = self.gates
            ),
        )
        .expect("write config");
        let (_, settings) = GateConfig::load_settings(&cfg_path).expect("valid config");
        let (tx, rx) = mpsc::unbounded_channel();
        let devices = Devices::new(
            Box::new(Reader { rx, current: None }),
            Box::new(Scanner),
            Box::new(Lane),
        );
        let (gate, handle) =
            Gate::build(&settings, devices, MonotonicWallClock::start()).expect("gate builds");
        let task = tokio::spawn(gate.run(std::future::pending()));
        Running {
            handle,
            task,
            docs: tx,
        }
    }
}

impl Running {
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&GateStatus) -> bool) -> GateStatus {
        let r = tokio::time::timeout(Duration::from_secs(30), self.handle.status.wait_for(pred))
            .await
            .map(|s| s.map(|s| s.clone()));
        match r {
            Ok(Ok(s)) => s,
            _ => panic!(
                "timed out waiting for {what}: {:?}",
                *self.handle.status.borrow()
            ),
        }
    }

    fn present(&self, number: &str) {
        self.docs
            .send((doc(number), Holder::default()))
            .expect("reader alive");
    }

    /// Presents document `number` of a holder with these MRZ names, date of birth
    /// (`YYMMDD`) and nationality.
    fn present_holder(&self, number: &str, surname: &str, given: &str, dob: &str, nat: &str) {
        let mut d = doc(number);
        d.date_of_birth = MrzDate::parse(dob).expect("date");
        d.nationality = nat.into();
        self.docs
            .send((d, Holder::new(surname, given)))
            .expect("reader alive");
    }

    fn stop(self) {
        self.task.abort();
    }
}

fn version(s: &GateStatus) -> Option<u64> {
    s.watchlist
        .as_ref()
        .and_then(|w| w.lists.first())
        .map(|l| l.version)
}

fn has(s: &GateStatus, a: AlarmKind) -> bool {
    s.machine.alarms.contains(&a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_documents_are_held_or_referred_unlisted_cleared() {
    let mut e = env(60_000);
    // Status shows the list's version and age.
    let mut g = e.gate(3600);
    let s = g
        .wait_for("the list in the status", |s| version(s) == Some(1))
        .await;
    let w = s.watchlist.expect("watchlist status");
    assert!(!w.stale);
    assert_eq!(w.lists[0].list_id, "sltd");
    assert_eq!(w.lists[0].doc_count, 1002);
    assert!((60_000..600_000).contains(&w.lists[0].age_ms), "{w:?}");
    g.present("H1");
    g.wait_for("a hold", |s| {
        s.machine.step == "held" && has(s, AlarmKind::WatchlistHold)
    })
    .await;
    g.stop();

    let mut g = e.gate(3600);
    g.present("R1");
    g.wait_for("a referral", |s| s.outcomes.referred == 1).await;
    assert_eq!(g.handle.status.borrow().outcomes.cleared, 0);
    g.stop();

    let mut g = e.gate(3600);
    g.present("N1");
    let s = g.wait_for("entry", |s| s.machine.step == "entering").await;
    assert_eq!(s.outcomes.referred, 0);
    assert!(s.machine.alarms.is_empty(), "{:?}", s.machine.alarms);
    g.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_picked_up_and_bad_ones_raise_an_alarm() {
    let mut e = env(60_000);
    let k = sk();
    let mut g = e.gate(3600);
    g.wait_for("version 1", |s| version(s) == Some(1)).await;
    // A delta listing N1 for a hold and taking R1 off is picked up by the running gate.
    let mut d = DeltaBuilder::new(list(), 1, 2, now_ms());
    d.add_document(dk("N1"), Action::Hold, "warrant")
        .expect("add");
    d.remove_document(dk("R1"));
    drop_delta(&e.updates, "sltd-2.wl", d, &k, None);
    g.wait_for("version 2", |s| version(s) == Some(2)).await;
    g.present("N1");
    g.wait_for("a hold on the new entry", |s| s.machine.step == "held")
        .await;

    // A corrupt delta (one flipped byte), and one signed by an unknown key: alarm,
    // version 2 keeps serving.
    let mut d = DeltaBuilder::new(list(), 2, 3, now_ms());
    d.remove_document(dk("H1"));
    let p3 = e.updates.join("sltd-3.wl");
    drop_delta(&e.updates, "sltd-3.wl", d, &k, Some(5));
    let s = g
        .wait_for("the rejected-update alarm", |s| {
            has(s, AlarmKind::WatchlistUpdateRejected)
        })
        .await;
    assert_eq!(version(&s), Some(2));
    g.stop();
    std::fs::remove_file(&p3).expect("rm");
    let mut d = DeltaBuilder::new(list(), 2, 3, now_ms());
    d.remove_document(dk("H1"));
    drop_delta(
        &e.updates,
        "sltd-3.wl",
        d,
        &SecretKey::from_seed([9; 32]),
        None,
    );

    // A new gate on the same store: the old list (with the delta) still decides.
    let mut g = e.gate(3600);
    g.wait_for("version 2 after a restart", |s| version(s) == Some(2))
        .await;
    g.wait_for("the rejected-update alarm (unknown key)", |s| {
        has(s, AlarmKind::WatchlistUpdateRejected)
    })
    .await;
    g.present("H1");
    g.wait_for("H1 still held", |s| s.machine.step == "held")
        .await;
    g.stop();
    let mut g = e.gate(3600);
    g.present("R1");
    g.wait_for("R1 (removed by the delta) cleared", |s| {
        s.machine.step == "entering"
    })
    .await;
    assert_eq!(version(&g.handle.status.borrow()), Some(2));

    // A good version 3 clears the alarm.
    std::fs::remove_file(&p3).expect("rm");
    let mut d = DeltaBuilder::new(list(), 2, 3, now_ms());
    d.remove_document(dk("H1"));
    drop_delta(&e.updates, "sltd-3.wl", d, &k, None);
    // The gate above still has the unknown-key file reported; it must now install v3.
    g.wait_for("version 3", |s| version(s) == Some(3)).await;
    g.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_age_everyone_is_referred_with_an_alarm() {
    // The list is two hours old, the limit one hour.
    let mut e = env(2 * 3600 * 1000);
    let mut g = e.gate(3600);
    let s = g
        .wait_for("a stale status", |s| {
            s.watchlist.as_ref().is_some_and(|w| w.stale)
        })
        .await;
    assert_eq!(version(&s), Some(1));
    g.present("N1");
    g.wait_for(
        "an unlisted traveller referred, with the stale alarm",
        |s| s.outcomes.referred == 1 && has(s, AlarmKind::WatchlistStale),
    )
    .await;
    assert_eq!(g.handle.status.borrow().outcomes.cleared, 0);
    g.stop();
    // A hold still holds.
    let mut g = e.gate(3600);
    g.present("H1");
    g.wait_for("a hold", |s| s.machine.step == "held").await;
    g.stop();
    // With a limit of three hours the same list clears.
    let mut g = e.gate(3 * 3600);
    g.present("N1");
    g.wait_for("entry", |s| s.machine.step == "entering").await;
    g.stop();
}

fn person(
    surname: &str,
    given: &str,
    dob: &str,
    nat: Option<&str>,
    action: Action,
    reason: &str,
) -> PersonEntry {
    PersonEntry {
        surname: surname.into(),
        given_names: given.into(),
        dob: PartialDate::parse(dob).expect("date"),
        nationality: nat.map(str::to_owned),
        action,
        reason: reason.into(),
    }
}

/// The bodies of every movement record and event in a gate's journal.
fn journal_text(root: &Path, gate: u32) -> (Vec<serde_json::Value>, String) {
    let conn =
        rusqlite::Connection::open(root.join(format!("journal{gate}.sqlite"))).expect("journal");
    let records: Vec<String> = conn
        .prepare("SELECT body FROM records ORDER BY seq")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let events: Vec<String> = conn
        .prepare("SELECT body FROM events ORDER BY id")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let all = format!("{}\n{}", records.join("\n"), events.join("\n"));
    (
        records
            .iter()
            .map(|b| serde_json::from_str(b).expect("record JSON"))
            .collect(),
        all,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_entries_screen_the_holder_exact_held_variant_referred_others_cleared() {
    let mut e = env_with(
        60_000,
        &[
            person(
                "Ivanova",
                "Olga",
                "1969-08-06",
                Some("UTO"),
                Action::Hold,
                "warrant-77",
            ),
            person("Müller", "Jürgen", "1969", None, Action::Hold, "red-notice"),
            person(
                "Ångström",
                "Anders",
                "1969-08",
                None,
                Action::Refer,
                "lost-docs",
            ),
        ],
    );
    let listed_names = [
        "IVANOVA", "OLGA", "MUELLER", "JUERGEN", "IWANOWA", "ANGSTROM", "ANDERS",
    ];

    // Exact: same names (MRZ spelling), same date of birth and nationality → hold,
    // on a document that is on no list.
    let mut g = e.gate(3600);
    let s = g
        .wait_for("the list in the status", |s| version(s) == Some(1))
        .await;
    assert_eq!(
        s.watchlist.as_ref().expect("status").lists[0].person_count,
        3
    );
    g.present_holder("N1", "IVANOVA", "OLGA", "690806", "UTO");
    g.wait_for("a hold on the person", |s| {
        s.machine.step == "held" && has(s, AlarmKind::WatchlistHold)
    })
    .await;
    g.stop();
    let (records, text) = journal_text(&e.root, e.gates);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "held", "{}", records[0]);
    assert_eq!(
        records[0]["watchlist"]["reason"], "person-exact:sltd:warrant-77",
        "{}",
        records[0]
    );
    assert_eq!(records[0]["watchlist"]["verdict"], "hold");

    // A diacritic-only variant is the same name once normalised: the entry's action.
    let mut g = e.gate(3600);
    g.present_holder("N2", "ANGSTROM", "ANDERS", "690815", "SWE");
    g.wait_for("a referral (exact, refer entry)", |s| {
        s.outcomes.referred == 1
    })
    .await;
    g.stop();
    let (records, _) = journal_text(&e.root, e.gates);
    assert_eq!(
        records[0]["watchlist"]["reason"], "person-exact:sltd:lost-docs",
        "{}",
        records[0]
    );

    // Transliterated variants (Ü written UE, V written W) are fuzzy candidates: referred,
    // never held, even though the entries say hold.
    for (n, surname, given, nat) in [
        ("N3", "MUELLER", "JUERGEN", "D"),
        ("N4", "IWANOWA", "OLGA", "UTO"),
    ] {
        let mut g = e.gate(3600);
        g.present_holder(n, surname, given, "690806", nat);
        g.wait_for("a referral of the variant", |s| s.outcomes.referred == 1)
            .await;
        let s = g.handle.status.borrow().clone();
        assert_eq!(s.outcomes.held, 0);
        assert!(!has(&s, AlarmKind::WatchlistHold));
        g.stop();
        let (records, _) = journal_text(&e.root, e.gates);
        assert_eq!(records[0]["outcome"], "referred", "{}", records[0]);
        let reason = records[0]["watchlist"]["reason"].as_str().unwrap_or("");
        assert!(reason.starts_with("person-fuzzy:sltd:"), "{reason}");
    }

    // Another person, and the listed name with another date of birth: cleared.
    for (n, surname, given, dob) in [
        ("N5", "SMITH", "JOHN", "690806"),
        ("N6", "IVANOVA", "OLGA", "850101"),
    ] {
        let mut g = e.gate(3600);
        g.present_holder(n, surname, given, dob, "UTO");
        let s = g.wait_for("entry", |s| s.machine.step == "entering").await;
        assert_eq!(s.outcomes.referred + s.outcomes.held, 0);
        assert!(s.machine.alarms.is_empty(), "{:?}", s.machine.alarms);
        g.stop();
    }

    // No journal of any of these gates holds a name.
    for gate in 1..=e.gates {
        let (_, text) = journal_text(&e.root, gate);
        for name in listed_names.iter().chain(&["SMITH", "JOHN"]) {
            assert!(
                !text.to_uppercase().contains(name),
                "journal {gate} names {name}: {text}"
            );
        }
    }
    let _ = text;
}
