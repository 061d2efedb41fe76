//! `gatectl watchlist` contract tests and the kill-during-apply crash test.

use gate_controller::watchlist::delta::{Delta, DeltaBuilder};
use gate_controller::watchlist::snapshot::{Snapshot, SnapshotBuilder};
use gate_controller::watchlist::{
    Action, DocKey, ListId, OpenOptions, PublicKey, SecretKey, TrustedKeys, WatchList,
    WatchlistStore,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn gatectl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatectl"))
}

fn run(args: &[&str], cwd: &Path) -> Output {
    gatectl()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("gatectl runs")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(s.trim().lines().count(), 1, "exactly one JSON object: {s}");
    serde_json::from_str(s.trim()).expect("valid JSON")
}

fn expect_exit2(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} should mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn cli_contract_keygen_build_delta_lookup_and_exit_codes() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path();
    assert!(run(&["watchlist", "keygen", "--out", "k"], p)
        .status
        .success());
    assert!(run(&["watchlist", "keygen", "--out", "other"], p)
        .status
        .success());
    let pk = std::fs::read_to_string(p.join("k.pub")).expect("pub");
    assert_eq!(pk.trim().len(), 64, "public key file is 64 hex digits");
    // Refuses to overwrite a key.
    assert_eq!(
        run(&["watchlist", "keygen", "--out", "k"], p).status.code(),
        Some(1)
    );
    std::fs::write(
        p.join("list.csv"),
        "issuing_state,document_number,action,reason\nUTO,L898902C,hold,STOLEN\nD,C01X00T47,refer,\"LOST, reported\"\n",
    )
    .expect("csv");
    let o = run(
        &[
            "watchlist",
            "build",
            "--key",
            "k",
            "--input",
            "list.csv",
            "--version",
            "1",
            "--out",
            "l.wl",
        ],
        p,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&run(
        &[
            "watchlist",
            "lookup",
            "--list",
            "l.wl",
            "--pubkey",
            "k.pub",
            "UTO",
            "L898902C",
            "--json",
        ],
        p,
    ));
    assert_eq!(v["hit"], true);
    assert_eq!(v["action"], "hold");
    assert_eq!(v["reason"], "STOLEN");
    assert_eq!(v["version"], 1);
    let v = json(&run(
        &[
            "watchlist",
            "lookup",
            "--list",
            "l.wl",
            "--pubkey",
            "k.pub",
            "D<<",
            "C01X00T47",
            "--json",
        ],
        p,
    ));
    assert_eq!(
        (v["hit"].clone(), v["action"].clone(), v["reason"].clone()),
        (true.into(), "refer".into(), "LOST, reported".into())
    );
    let v = json(&run(
        &[
            "watchlist",
            "lookup",
            "--list",
            "l.wl",
            "--pubkey",
            "k.pub",
            "UTO",
            "L898902D",
            "--json",
        ],
        p,
    ));
    assert_eq!(v["hit"], false);
    // Delta: remove one, add one.
    std::fs::write(
        p.join("rm.csv"),
        "issuing_state,document_number\nUTO,L898902C\n",
    )
    .expect("csv");
    std::fs::write(
        p.join("add.csv"),
        "issuing_state,document_number,action,reason\nFRA,12AB34567,refer,X\n",
    )
    .expect("csv");
    let o = run(
        &[
            "watchlist",
            "delta",
            "--key",
            "k",
            "--base",
            "1",
            "--version",
            "2",
            "--add",
            "add.csv",
            "--remove",
            "rm.csv",
            "--out",
            "d2.wl",
        ],
        p,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lk = |doc: [&str; 2], deltas: &[&str]| {
        let mut a = vec![
            "watchlist",
            "lookup",
            "--list",
            "l.wl",
            "--pubkey",
            "k.pub",
            "--json",
        ];
        for x in deltas {
            a.extend(["--delta", x]);
        }
        a.extend(doc);
        run(&a, p)
    };
    let v = json(&lk(["UTO", "L898902C"], &["d2.wl"]));
    assert_eq!(
        (v["hit"].clone(), v["version"].clone()),
        (false.into(), 2.into())
    );
    let v = json(&lk(["FRA", "12AB34567"], &["d2.wl"]));
    assert_eq!(
        (v["hit"].clone(), v["action"].clone()),
        (true.into(), "refer".into())
    );
    // Exit 2: delta that does not apply to the base version.
    expect_exit2(
        &lk(["FRA", "12AB34567"], &["d2.wl", "d2.wl"]),
        "applies to version 1",
    );
    // Exit 2: wrong key.
    expect_exit2(
        &run(
            &[
                "watchlist",
                "lookup",
                "--list",
                "l.wl",
                "--pubkey",
                "other.pub",
                "UTO",
                "X1",
            ],
            p,
        ),
        "not among the trusted public keys",
    );
    // Exit 2: truncated body.
    let bytes = std::fs::read(p.join("l.wl")).expect("read");
    std::fs::write(p.join("t.wl"), &bytes[..bytes.len() - 5]).expect("write");
    expect_exit2(
        &run(
            &[
                "watchlist",
                "lookup",
                "--list",
                "t.wl",
                "--pubkey",
                "k.pub",
                "UTO",
                "X1",
            ],
            p,
        ),
        "truncated",
    );
    // Exit 2: bad signature (signature bytes altered) and altered body.
    let mut b = bytes.clone();
    b[310] ^= 1;
    std::fs::write(p.join("s.wl"), &b).expect("write");
    expect_exit2(
        &run(
            &[
                "watchlist",
                "lookup",
                "--list",
                "s.wl",
                "--pubkey",
                "k.pub",
                "UTO",
                "X1",
            ],
            p,
        ),
        "bad signature",
    );
    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(p.join("b.wl"), &b).expect("write");
    expect_exit2(
        &run(
            &[
                "watchlist",
                "lookup",
                "--list",
                "b.wl",
                "--pubkey",
                "k.pub",
                "UTO",
                "X1",
            ],
            p,
        ),
        "body hash",
    );
    // Exit 2: bad CSV, naming the line.
    std::fs::write(
        p.join("bad.csv"),
        "issuing_state,document_number,action,reason\nUTO,L898902C,arrest,X\n",
    )
    .expect("csv");
    expect_exit2(
        &run(
            &[
                "watchlist",
                "build",
                "--key",
                "k",
                "--input",
                "bad.csv",
                "--version",
                "1",
                "--out",
                "x.wl",
            ],
            p,
        ),
        "bad.csv:2",
    );
    std::fs::write(p.join("hdr.csv"), "state,doc\nUTO,1\n").expect("csv");
    expect_exit2(
        &run(
            &[
                "watchlist",
                "build",
                "--key",
                "k",
                "--input",
                "hdr.csv",
                "--version",
                "1",
                "--out",
                "x.wl",
            ],
            p,
        ),
        "header must start with issuing_state,document_number,action,reason",
    );
    // --help works.
    assert!(run(&["watchlist", "lookup", "--help"], p).status.success());
}

fn doc(seed: u64, i: u64) -> DocKey {
    DocKey::new("UTO", &format!("S{seed}N{i}")).expect("key")
}

fn write_pub(path: &Path, pk: &PublicKey) {
    std::fs::write(path, pk.to_file_text()).expect("write pub");
}

/// Kills `gatectl watchlist apply` at random moments while it applies deltas into a
/// store; after every kill, the reopened store must hold exactly the previous or the
/// new version (same content digest as the reference), never a mix or a broken store.
#[test]
fn killed_during_delta_apply_store_is_old_or_new_never_a_mix() {
    let d = tempfile::tempdir().expect("tmp");
    let p = d.path();
    let k = SecretKey::from_seed([5; 32]);
    write_pub(&p.join("k.pub"), &k.public());
    let trusted = TrustedKeys::from_keys([k.public()]);
    let id = ListId::new("sltd").expect("id");
    let mut b = SnapshotBuilder::new(id.clone(), 1, 1);
    for i in 0..20_000 {
        b.add_document(doc(1, i), Action::Refer, "LOST")
            .expect("add");
    }
    b.write(&p.join("snap.wl"), &k).expect("snapshot");
    const DELTAS: u64 = 8;
    let mut reference = vec![WatchList::from_snapshot(Arc::new(
        Snapshot::open(&p.join("snap.wl"), &trusted).expect("open"),
    ))];
    let mut delta_paths: Vec<PathBuf> = Vec::new();
    for v in 1..=DELTAS {
        let mut db = DeltaBuilder::new(id.clone(), v, v + 1, v * 1000);
        for i in 0..8_000 {
            db.add_document(doc(v + 1, i), Action::Hold, "NEW")
                .expect("add");
        }
        for i in (0..20_000).step_by(DELTAS as usize + 1).map(|i| i + v) {
            db.remove_document(doc(1, i));
        }
        let path = p.join(format!("delta{v}.wl"));
        db.write(&path, &k).expect("delta");
        let next = reference
            .last()
            .expect("ref")
            .apply(&Delta::open(&path, &trusted).expect("delta"))
            .expect("apply");
        reference.push(next);
        delta_paths.push(path);
    }
    let digests: Vec<[u8; 32]> = reference.iter().map(|l| l.content_digest()).collect();
    let store_dir = p.join("store");
    WatchlistStore::open(&store_dir, trusted.clone(), OpenOptions::default())
        .expect("store")
        .install_snapshot_file(&p.join("snap.wl"))
        .expect("install");
    // Time one uninterrupted run to spread the kills over it.
    let spawn = |v: u64| {
        gatectl()
            .args(["watchlist", "apply", "--store"])
            .arg(&store_dir)
            .args(["--pubkey"])
            .arg(p.join("k.pub"))
            .arg(&delta_paths[(v - 1) as usize])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gatectl")
    };
    let t = Instant::now();
    assert!(spawn(1).wait().expect("wait").success());
    // Kill delays are drawn below a bound that adapts so that kills cluster around
    // the commit point: it grows after a kill that left the old version and shrinks
    // after one that let the new version through.
    let mut bound = t.elapsed().as_micros().max(1000) as u64;
    let mut rng = 0x1234_5678u64;
    let (mut kept_old, mut got_new) = (0, 0);
    for _round in 0..20 {
        let s = WatchlistStore::open(&store_dir, trusted.clone(), OpenOptions::default())
            .expect("open");
        let v = s.status(0)[0].version;
        drop(s);
        if v > DELTAS {
            break;
        }
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = (rng >> 33) % bound;
        let mut child = spawn(v);
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        let _ = child.wait();
        let s = WatchlistStore::open(&store_dir, trusted.clone(), OpenOptions::default())
            .expect("reopen");
        assert!(
            s.problems().is_empty(),
            "store broken after a kill: {:?}",
            s.problems()
        );
        let after = s.status(0)[0].version;
        assert!(
            after == v || after == v + 1,
            "version {after} after applying {v}->{}",
            v + 1
        );
        let digest = s.lists()[0].content_digest();
        assert_eq!(
            digest,
            digests[(after - 1) as usize],
            "content of version {after} differs from the reference"
        );
        if after == v {
            kept_old += 1;
            bound += bound / 4;
        } else {
            got_new += 1;
            bound -= bound / 8;
        }
    }
    eprintln!("kills: {kept_old} left the old version, {got_new} the new one");
    assert!(kept_old + got_new >= 8, "too few kill rounds ran");
}
