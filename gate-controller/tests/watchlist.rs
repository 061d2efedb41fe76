//! Watchlist acceptance tests: 1 M entries exact, deltas, tampering, store behaviour.

use gate_controller::watchlist::delta::{Delta, DeltaBuilder};
use gate_controller::watchlist::format::{self, BodyCheck};
use gate_controller::watchlist::snapshot::{Check, Snapshot, SnapshotBuilder};
use gate_controller::watchlist::{
    Action, Bytes, DocKey, ListId, MatchKind, OpenOptions, PartialDate, PersonEntry, PersonQuery,
    SecretKey, TrustedKeys, Verdict, WatchList, WatchlistError, WatchlistStore,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Synthetic document `i` of stream `seed`: 3-letter state, 9 alphanumerics.
fn doc(seed: u64, i: u64) -> (String, String) {
    const AL: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut a = splitmix(seed.wrapping_mul(0x1000_0000_01b3) ^ splitmix(i));
    let mut b = splitmix(a);
    let mut st = String::new();
    for _ in 0..3 {
        st.push((b'A' + (a % 26) as u8) as char);
        a /= 26;
    }
    let mut dn = String::new();
    for _ in 0..9 {
        dn.push(AL[(b % 36) as usize] as char);
        b /= 36;
    }
    (st, dn)
}

fn key(seed: u64, i: u64) -> DocKey {
    let (s, d) = doc(seed, i);
    DocKey::new(&s, &d).expect("valid synthetic key")
}

/// A fast synthetic key for the 1 M tests: the mix is a bijection, so uniformly
/// random 128-bit values stand for distinct documents (the string path is covered
/// by the smaller tests and the key unit tests).
fn fast_key(seed: u64, i: u64) -> DocKey {
    let a = splitmix(seed.wrapping_mul(0x1000_0000_01b3) ^ splitmix(i));
    DocKey::from_mixed((u128::from(a) << 64) | u128::from(splitmix(a)))
}

fn action_of(i: u64) -> (Action, &'static str) {
    if i.is_multiple_of(7) {
        (Action::Hold, "STOLEN")
    } else {
        (Action::Refer, "LOST")
    }
}

fn sk(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn trusted(k: &SecretKey) -> TrustedKeys {
    TrustedKeys::from_keys([k.public()])
}

fn build_snapshot(path: &Path, k: &SecretKey, n: u64, version: u64) {
    build_snapshot_with(path, k, n, version, key)
}

fn build_snapshot_with(
    path: &Path,
    k: &SecretKey,
    n: u64,
    version: u64,
    key: fn(u64, u64) -> DocKey,
) {
    let mut b = SnapshotBuilder::new(ListId::new("sltd").expect("id"), version, 1_000);
    b.reserve(n as usize);
    for i in 0..n {
        let (a, r) = action_of(i);
        b.add_document(key(1, i), a, r).expect("add");
    }
    b.write(path, k).expect("write snapshot");
}

fn verdict_action(v: &Verdict) -> Option<(Action, String)> {
    match v {
        Verdict::Clear => None,
        Verdict::Hit(h) => Some((h.action, h.reason.to_string())),
    }
}

const MILLION: u64 = 1_000_000;

#[test]
fn million_entries_members_found_nonmembers_not_and_deltas_apply() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let p = dir.path().join("s.wl");
    build_snapshot_with(&p, &k, MILLION, 1, fast_key);
    let snap = Arc::new(Snapshot::open(&p, &trusted(&k)).expect("open"));
    assert_eq!(snap.len(), MILLION as usize);
    let list = WatchList::from_snapshot(snap);
    for i in 0..MILLION {
        let v = list.lookup_document(fast_key(1, i));
        let (a, r) = action_of(i);
        assert_eq!(verdict_action(&v), Some((a, r.to_string())), "member {i}");
    }
    for i in 0..MILLION {
        assert_eq!(
            list.lookup_document(fast_key(2, i)),
            Verdict::Clear,
            "non-member {i}"
        );
    }
    // Delta: remove 100 k members, add 100 k new, change 10 k existing.
    let dp = dir.path().join("d.wl");
    let mut d = DeltaBuilder::new(ListId::new("sltd").expect("id"), 1, 2, 2_000);
    for i in 0..100_000 {
        d.remove_document(fast_key(1, i));
        d.add_document(fast_key(3, i), Action::Hold, "NEW")
            .expect("add");
    }
    for i in 100_000..110_000 {
        d.add_document(fast_key(1, i), Action::Hold, "UPGRADED")
            .expect("add");
    }
    d.write(&dp, &k).expect("write delta");
    let delta = Delta::open(&dp, &trusted(&k)).expect("delta");
    let l2 = list.apply(&delta).expect("apply");
    assert_eq!(l2.version(), 2);
    assert_eq!(l2.doc_count(), MILLION);
    for i in 0..100_000 {
        assert_eq!(
            l2.lookup_document(fast_key(1, i)),
            Verdict::Clear,
            "removed {i}"
        );
        assert_eq!(
            verdict_action(&l2.lookup_document(fast_key(3, i))),
            Some((Action::Hold, "NEW".into()))
        );
    }
    for i in 100_000..110_000 {
        assert_eq!(
            verdict_action(&l2.lookup_document(fast_key(1, i))),
            Some((Action::Hold, "UPGRADED".into()))
        );
    }
    for i in (110_000..MILLION).step_by(13) {
        let (a, r) = action_of(i);
        assert_eq!(
            verdict_action(&l2.lookup_document(fast_key(1, i))),
            Some((a, r.to_string()))
        );
    }
    // The old version is untouched.
    assert_eq!(
        verdict_action(&list.lookup_document(fast_key(1, 5))),
        Some((Action::Refer, "LOST".into()))
    );
    assert_eq!(list.lookup_document(fast_key(3, 5)), Verdict::Clear);
    // A delta for another base is refused.
    assert!(matches!(
        l2.apply(&delta),
        Err(WatchlistError::NotApplicable {
            base: 1,
            current: 2
        })
    ));
    // Tampering with the big file is caught too (a few positions; the dense sweep is below).
    let bytes = std::fs::read(&p).expect("read");
    for pos in (0..bytes.len()).step_by(bytes.len() / 17) {
        let mut b = bytes.clone();
        b[pos] ^= 0x01;
        assert!(
            format::verify(&b, &trusted(&k), BodyCheck::Full).is_err(),
            "flip at {pos}"
        );
    }
}

fn small_files(dir: &Path, k: &SecretKey) -> (Vec<u8>, Vec<u8>) {
    let p = dir.join("s.wl");
    let mut b = SnapshotBuilder::new(ListId::new("sltd").expect("id"), 1, 1_000);
    for i in 0..5_000 {
        let (a, r) = action_of(i);
        b.add_document(key(1, i), a, r).expect("add");
    }
    b.add_person(&PersonEntry {
        surname: "Eriksson".into(),
        given_names: "Anna Maria".into(),
        dob: PartialDate::parse("1969-08-06").expect("date"),
        nationality: Some("UTO".into()),
        action: Action::Hold,
        reason: "INTERPOL".into(),
    })
    .expect("person");
    b.write(&p, k).expect("write");
    let dp = dir.join("d.wl");
    let mut d = DeltaBuilder::new(ListId::new("sltd").expect("id"), 1, 2, 2_000);
    for i in 0..300 {
        d.remove_document(key(1, i));
        d.add_document(key(3, i), Action::Hold, "NEW").expect("add");
    }
    d.write(&dp, k).expect("write");
    (
        std::fs::read(&p).expect("read"),
        std::fs::read(&dp).expect("read"),
    )
}

fn check_snapshot(b: &[u8], t: &TrustedKeys) -> Result<(), WatchlistError> {
    Snapshot::from_bytes(Bytes::Owned(b.to_vec()), t, BodyCheck::Full, Check::Full).map(|_| ())
}

#[test]
fn snapshots_with_the_older_larger_buckets_still_load_and_answer_exactly() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let n = 100_000u64;
    let write = |name: &str, legacy: bool| {
        let p = dir.path().join(name);
        let mut b = SnapshotBuilder::new(ListId::new("sltd").expect("id"), 1, 1_000);
        if legacy {
            b = b.legacy_directory();
        }
        for i in 0..n {
            let (a, r) = action_of(i);
            b.add_document(fast_key(1, i), a, r).expect("add");
        }
        b.write(&p, &k).expect("write snapshot");
        p
    };
    let new = write("new.wl", false);
    let old = write("old.wl", true);
    let size = |p: &Path| std::fs::metadata(p).expect("meta").len();
    // 100 k entries: 2^15 buckets now, 2^14 before (one u32 each); same key width.
    assert_eq!(size(&new) - size(&old), (1 << 15) * 4 - (1 << 14) * 4);
    for p in [&new, &old] {
        let list =
            WatchList::from_snapshot(Arc::new(Snapshot::open(p, &trusted(&k)).expect("open")));
        for i in 0..n {
            let (a, r) = action_of(i);
            assert_eq!(
                verdict_action(&list.lookup_document(fast_key(1, i))),
                Some((a, r.to_string())),
                "member {i} of {}",
                p.display()
            );
            assert_eq!(list.lookup_document(fast_key(2, i)), Verdict::Clear);
        }
    }
}

#[test]
fn every_flipped_byte_wrong_key_and_truncation_are_rejected() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let t = trusted(&k);
    let (snap, delta) = small_files(dir.path(), &k);
    check_snapshot(&snap, &t).expect("pristine snapshot verifies");
    Delta::from_bytes(&delta, &t).expect("pristine delta verifies");
    // Every header byte and a dense sample of body positions, several bit patterns.
    let positions: Vec<usize> = (0..format::HEADER_LEN)
        .chain((format::HEADER_LEN..snap.len()).step_by(61))
        .collect();
    for (n, &pos) in positions.iter().enumerate() {
        let mask = [0x01u8, 0x80, 0xff][n % 3];
        let mut b = snap.clone();
        b[pos] ^= mask;
        assert!(
            check_snapshot(&b, &t).is_err(),
            "snapshot flip {mask:#x} at {pos} accepted"
        );
    }
    for pos in (0..format::HEADER_LEN).chain((format::HEADER_LEN..delta.len()).step_by(29)) {
        let mut b = delta.clone();
        b[pos] ^= 0x04;
        assert!(
            Delta::from_bytes(&b, &t).is_err(),
            "delta flip at {pos} accepted"
        );
    }
    // Wrong key.
    let other = trusted(&sk(2));
    assert!(matches!(
        check_snapshot(&snap, &other),
        Err(WatchlistError::UnknownKey(_))
    ));
    assert!(matches!(
        Delta::from_bytes(&delta, &other),
        Err(WatchlistError::UnknownKey(_))
    ));
    // Same key id but another key: a forged key id cannot pass the signature.
    // Truncation at every length of the delta and a sample of the snapshot.
    for cut in (0..delta.len()).step_by(31) {
        assert!(
            Delta::from_bytes(&delta[..cut], &t).is_err(),
            "delta cut at {cut} accepted"
        );
    }
    for cut in (0..snap.len()).step_by(101) {
        let e = check_snapshot(&snap[..cut], &t).expect_err("truncated snapshot accepted");
        if cut >= format::HEADER_LEN {
            assert!(
                matches!(e, WatchlistError::Truncated { .. }),
                "cut {cut}: {e}"
            );
        }
    }
    // Trailing garbage.
    let mut longer = snap.clone();
    longer.push(0);
    assert!(check_snapshot(&longer, &t).is_err());
    // Wrong kind.
    assert!(matches!(
        Delta::from_bytes(&snap, &t),
        Err(WatchlistError::WrongKind { .. })
    ));
    assert!(matches!(
        check_snapshot(&delta, &t),
        Err(WatchlistError::WrongKind { .. })
    ));
}

#[test]
fn key_rotation_trusts_several_keys() {
    let dir = tempfile::tempdir().expect("tmp");
    let (old, new) = (sk(1), sk(2));
    let p = dir.path().join("s.wl");
    build_snapshot(&p, &new, 100, 1);
    let both = TrustedKeys::from_keys([old.public(), new.public()]);
    assert!(Snapshot::open(&p, &both).is_ok());
    assert!(matches!(
        Snapshot::open(&p, &trusted(&old)),
        Err(WatchlistError::UnknownKey(_))
    ));
}

fn store_with_snapshot(dir: &Path, k: &SecretKey) -> WatchlistStore {
    let (_, _) = small_files(dir, k);
    let s = WatchlistStore::open(&dir.join("store"), trusted(k), OpenOptions::default())
        .expect("store");
    assert_eq!(
        s.install_snapshot_file(&dir.join("s.wl")).expect("install"),
        1
    );
    s
}

#[test]
fn store_applies_persists_and_rejects_bad_deltas_keeping_the_last_good_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let s = store_with_snapshot(dir.path(), &k);
    let (st, dn) = doc(1, 0);
    assert!(matches!(s.lookup_document(&st, &dn), Verdict::Hit(_)));
    // Corrupt delta: rejected, version 1 keeps serving.
    let dp = dir.path().join("d.wl");
    let good = std::fs::read(&dp).expect("read");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let badp = dir.path().join("bad.wl");
    std::fs::write(&badp, &bad).expect("write");
    assert!(matches!(
        s.apply_delta_file(&badp),
        Err(WatchlistError::BodyHashMismatch)
    ));
    // Unsigned (signed by an untrusted key).
    let mut d = DeltaBuilder::new(ListId::new("sltd").expect("id"), 1, 2, 2_000);
    d.remove_document(key(1, 0));
    let evil = dir.path().join("evil.wl");
    d.write(&evil, &sk(9)).expect("write");
    assert!(matches!(
        s.apply_delta_file(&evil),
        Err(WatchlistError::UnknownKey(_))
    ));
    // Out of order: a delta 2 -> 3 before 1 -> 2.
    let mut d = DeltaBuilder::new(ListId::new("sltd").expect("id"), 2, 3, 3_000);
    d.remove_document(key(1, 1));
    let d3 = dir.path().join("d3.wl");
    d.write(&d3, &k).expect("write");
    assert!(matches!(
        s.apply_delta_file(&d3),
        Err(WatchlistError::NotApplicable {
            base: 2,
            current: 1
        })
    ));
    assert_eq!(s.status(5_000)[0].version, 1);
    assert!(matches!(s.lookup_document(&st, &dn), Verdict::Hit(_)));
    // The good delta, then the next one.
    assert_eq!(s.apply_delta_file(&dp).expect("apply"), 2);
    assert_eq!(s.lookup_document(&st, &dn), Verdict::Clear);
    assert!(matches!(
        s.apply_delta_file(&dp),
        Err(WatchlistError::NotNewer {
            current: 2,
            offered: 2
        })
    ));
    assert_eq!(s.apply_delta_file(&d3).expect("apply"), 3);
    let digest = s.lists()[0].content_digest();
    drop(s);
    // Reopen: version 3 with the same content, in both open modes.
    for mode in [BodyCheck::Full, BodyCheck::Deferred] {
        let s = WatchlistStore::open(
            &dir.path().join("store"),
            trusted(&k),
            OpenOptions {
                snapshot_body: mode,
            },
        )
        .expect("reopen");
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(s.status(0)[0].version, 3);
        assert_eq!(s.lists()[0].content_digest(), digest);
        let (st3, dn3) = doc(3, 5);
        assert!(matches!(s.lookup_document(&st3, &dn3), Verdict::Hit(_)));
    }
    // Only the referenced files remain.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("store/sltd"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

#[test]
fn deferred_check_refers_everyone_when_the_stored_snapshot_is_corrupt() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let s = store_with_snapshot(dir.path(), &k);
    drop(s);
    let sub = dir.path().join("store/sltd");
    let snap = std::fs::read_dir(&sub)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snapshot-"))
        })
        .expect("snapshot file");
    let mut b = std::fs::read(&snap).expect("read");
    let last = b.len() - 10;
    b[last] ^= 0x20; // inside the person section
    std::fs::write(&snap, &b).expect("write");
    // Full open refuses the list; the store reports it and is stale.
    let s = WatchlistStore::open(
        &dir.path().join("store"),
        trusted(&k),
        OpenOptions::default(),
    )
    .expect("open");
    assert_eq!(s.problems().len(), 1);
    assert!(s.is_stale(0, Duration::from_secs(3600)));
    drop(s);
    // Deferred open serves, then flags the failure and refers everyone.
    let s = WatchlistStore::open(
        &dir.path().join("store"),
        trusted(&k),
        OpenOptions {
            snapshot_body: BodyCheck::Deferred,
        },
    )
    .expect("open");
    let mut tries = 0;
    while s.status(0)[0].integrity == "pending" && tries < 500 {
        std::thread::sleep(Duration::from_millis(10));
        tries += 1;
    }
    assert_eq!(s.status(0)[0].integrity, "failed");
    assert!(s.is_stale(0, Duration::from_secs(3600)));
    match s.lookup_document("ZZZ", "NOTLISTED1") {
        Verdict::Hit(h) => assert_eq!((h.action, h.kind), (Action::Refer, MatchKind::Integrity)),
        v => panic!("expected an integrity refer, got {v:?}"),
    }
}

#[test]
fn staleness_policy_refers_everyone_past_the_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let s = store_with_snapshot(dir.path(), &k); // created_at 1 000 ms
    let day = Duration::from_secs(86_400);
    assert!(!s.is_stale(1_000 + 86_400_000, day));
    assert!(s.is_stale(1_001 + 86_400_000, day));
    assert_eq!(s.status(61_000)[0].age_ms, 60_000);
    assert_eq!(
        s.decide_document(2_000, day, "ZZZ", "NOTLISTED1"),
        Verdict::Clear
    );
    match s.decide_document(1_000 + 2 * 86_400_000, day, "ZZZ", "NOTLISTED1") {
        Verdict::Hit(h) => assert_eq!((h.action, h.kind), (Action::Refer, MatchKind::Stale)),
        v => panic!("expected stale refer, got {v:?}"),
    }
    // A hit stays a hit (hold is not weakened to refer).
    let (st, dn) = doc(1, 0);
    match s.decide_document(1_000 + 2 * 86_400_000, day, &st, &dn) {
        Verdict::Hit(h) => assert_eq!((h.action, h.kind), (Action::Hold, MatchKind::Exact)),
        v => panic!("expected hold, got {v:?}"),
    }
    // An empty store is stale.
    let empty = WatchlistStore::open(
        &dir.path().join("empty"),
        trusted(&k),
        OpenOptions::default(),
    )
    .expect("open");
    assert!(empty.is_stale(0, day));
}

#[test]
fn person_lookups_exact_fuzzy_and_delta_changes() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let s = store_with_snapshot(dir.path(), &k);
    let q = |sur: &str, giv: &str| PersonQuery {
        surname: sur.into(),
        given_names: giv.into(),
        dob: PartialDate::parse("1969-08-06").expect("date"),
        nationality: Some("UTO".into()),
    };
    match s.lookup_person(&q("ERIKSSON", "ANNA MARIA")) {
        Verdict::Hit(h) => assert_eq!((h.action, h.kind), (Action::Hold, MatchKind::Exact)),
        v => panic!("{v:?}"),
    }
    match s.lookup_person(&q("ERIKSON", "ANNA")) {
        Verdict::Hit(h) => assert_eq!((h.action, h.kind), (Action::Refer, MatchKind::Fuzzy)),
        v => panic!("{v:?}"),
    }
    assert_eq!(s.lookup_person(&q("SMITH", "ANNA MARIA")), Verdict::Clear);
    // A delta removes her and adds another person.
    let mut d = DeltaBuilder::new(ListId::new("sltd").expect("id"), 1, 2, 2_000);
    d.remove_person(&PersonEntry {
        surname: "ERIKSSON".into(),
        given_names: "ANNA MARIA".into(),
        dob: PartialDate::parse("1969-08-06").expect("date"),
        nationality: Some("UTO".into()),
        action: Action::Hold,
        reason: "x".into(),
    })
    .expect("remove");
    d.add_person(&PersonEntry {
        surname: "Smith".into(),
        given_names: "".into(),
        dob: PartialDate::parse("1969").expect("date"),
        nationality: None,
        action: Action::Refer,
        reason: "NAT-STOP".into(),
    })
    .expect("add");
    let dp = dir.path().join("p.wl");
    d.write(&dp, &k).expect("write");
    s.apply_delta_file(&dp).expect("apply");
    assert_eq!(
        s.lookup_person(&q("ERIKSSON", "ANNA MARIA")),
        Verdict::Clear
    );
    assert!(matches!(
        s.lookup_person(&q("SMITH", "ANNA MARIA")),
        Verdict::Hit(_)
    ));
}

#[test]
fn ingest_folder_applies_in_version_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let k = sk(1);
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    build_snapshot(&inbox.join("a-snap.wl"), &k, 1000, 1);
    for v in 2..6u64 {
        let mut d = DeltaBuilder::new(ListId::new("sltd").expect("id"), v - 1, v, 1_000 * v);
        d.remove_document(key(1, v));
        d.write(&inbox.join(format!("z-delta-{}.wl", 9 - v)), &k)
            .expect("write");
    }
    let s = WatchlistStore::open(
        &dir.path().join("store"),
        trusted(&k),
        OpenOptions::default(),
    )
    .expect("open");
    let r = s.ingest_folder(&inbox).expect("ingest");
    assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
    assert_eq!(s.status(0)[0].version, 5);
    assert_eq!(s.lookup_key(key(1, 3)), Verdict::Clear);
    assert!(matches!(s.lookup_key(key(1, 6)), Verdict::Hit(_)));
    // Running it again changes nothing.
    assert!(s.ingest_folder(&inbox).expect("ingest").is_empty());
}

#[test]
fn random_garbage_never_panics() {
    let mut x = 1u64;
    let mut buf = Vec::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (snap, delta) = small_files(dir.path(), &sk(1));
    for round in 0..3000u32 {
        x = splitmix(x);
        buf.clear();
        let base = if round.is_multiple_of(2) {
            &snap
        } else {
            &delta
        };
        buf.extend_from_slice(&base[..(x as usize % base.len())]);
        for _ in 0..(x % 8) {
            x = splitmix(x);
            if !buf.is_empty() {
                let i = x as usize % buf.len();
                buf[i] = (x >> 32) as u8;
            }
        }
        gate_controller::watchlist::fuzz_parse(&buf);
    }
}
