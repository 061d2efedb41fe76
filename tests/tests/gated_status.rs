//! `/v1/status` of a real `gated` process: the `watchlist` field from its signed store
//! (version, age, stale flag, each list) and `upstream_backlog` from its journal's outbox
//! while a real `gate-sim upstream` (mutual TLS, SQLite) is up, down and back. Read over
//! real TCP with the one-time local tokens `gated` prints.

mod support;

use gate_controller::watchlist::snapshot::SnapshotBuilder;
use gate_controller::watchlist::{Action, DocKey, ListId, PartialDate, PersonEntry, SecretKey};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::*;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// A store with list `national` version 3 (two documents, one person), created `age_ms`
/// ago, and the authority's public key next to it.
fn store(dir: &Path, age_ms: u64) {
    let k = SecretKey::from_seed([5; 32]);
    std::fs::write(dir.join("authority.pub"), k.public().to_file_text()).expect("pub");
    let mut b = SnapshotBuilder::new(ListId::new("national").expect("id"), 3, now_ms() - age_ms);
    for n in ["H1", "R1"] {
        b.add_document(DocKey::new("UTO", n).expect("key"), Action::Refer, "lost")
            .expect("add");
    }
    b.add_person(&PersonEntry {
        surname: "Ivanova".into(),
        given_names: "Olga".into(),
        dob: PartialDate::parse("1969-08-06").expect("date"),
        nationality: Some("UTO".into()),
        action: Action::Hold,
        reason: "warrant".into(),
    })
    .expect("person");
    let snap = dir.join("national-3.wl");
    b.write(&snap, &k).expect("write");
    let s = gate_controller::watchlist::WatchlistStore::open(
        &dir.join("store"),
        gate_controller::watchlist::TrustedKeys::from_keys([k.public()]),
        gate_controller::watchlist::OpenOptions::default(),
    )
    .expect("store");
    assert_eq!(s.install_snapshot_file(&snap).expect("install"), 3);
}

fn config(setup: &GateSetup, api_port: u16) -> PathBuf {
    let p = setup.dir.join("gate.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[gate]
id = "{gate}"
lane = "visitor"
direction = "arrival"
drain_timeout_ms = 20000

[journal]
# the host disk's usage is not what this test is about
disk_alarm_percent = 99.8
disk_stop_clearing_percent = 99.9
path = "journal.sqlite"

[sim]
mean_arrival_gap_ms = 3600000

[watchlist]
dir = "store"
trusted_keys = ["authority.pub"]
max_age_s = 3600

[api]
listen = "127.0.0.1:{api_port}"

[upstream]
url = "{url}"
ca = "{pki}/ca.pem"
cert = "{pki}/clients/{gate}.pem"
key = "{pki}/clients/{gate}.key"
keep_all_acked = true
connect_timeout_ms = 500
timeout_ms = 3000
idle_poll_ms = 100
backoff_initial_ms = 100
backoff_max_ms = 500

[log]
format = "json"
"#,
            gate = setup.gate,
            url = setup.url,
            pki = setup.pki.display(),
        ),
    )
    .expect("write config");
    p
}

fn command(port: u16, token: &str, command: &str) {
    let body = format!(r#"{{"command":"{command}","reason":"status test"}}"#);
    let (code, body) = http(port, "POST", "/v1/commands", token, &body);
    assert_eq!(code, 200, "{command}: {body}");
}

#[test]
fn status_shows_the_signed_watchlists_and_the_upstream_backlog_of_a_running_gated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = "status-gate";
    let pki = make_pki(dir.path(), gate);
    let db = dir.path().join("upstream.db");
    let mut upstream = Upstream::start(&pki, &db, 0);
    let port = upstream.port();
    store(dir.path(), 90_000);
    let setup = GateSetup {
        dir: dir.path().to_path_buf(),
        gate: gate.into(),
        pki: pki.clone(),
        url: upstream.url.clone(),
    };
    let api = free_port();
    let mut g = Gated::start(&config(&setup, api));
    let token = |l: String| l.rsplit(' ').next().unwrap_or("").to_owned();
    let sup = token(g.wait_line("local-supervisor (supervisor)", Duration::from_secs(30)));
    let view = token(g.wait_line("local-viewer (viewer)", Duration::from_secs(5)));

    // The signed list: version, publication time and age, limit, per-list details.
    let s = wait_status(api, &view, Duration::from_secs(10), "the watchlist", |s| {
        s["watchlist"]["lists"][0]["integrity"] == "ok"
    });
    let w = &s["watchlist"];
    assert_eq!(w["version"], 3, "{w}");
    assert_eq!(w["stale"], false, "{w}");
    assert_eq!(w["max_age_s"], 3600, "{w}");
    let age = w["age_s"].as_u64().expect("age_s");
    assert!((90..300).contains(&age), "{w}");
    let l = &w["lists"][0];
    assert_eq!(l["list_id"], "national", "{w}");
    assert_eq!(l["version"], 3, "{w}");
    assert_eq!(l["documents"], 2, "{w}");
    assert_eq!(l["persons"], 1, "{w}");
    assert_eq!(l["stale"], false, "{w}");
    assert_eq!(l["published_at"], w["published_at"], "{w}");
    assert!(s["upstream_backlog"].is_u64(), "{s}");

    // Upstream up: everything journaled so far is acknowledged, the status says 0.
    wait_status(
        api,
        &view,
        Duration::from_secs(30),
        "an empty backlog",
        |s| s["upstream_backlog"] == 0,
    );
    assert_eq!(setup.backlog().rows(), 0);

    // Upstream down: commands are journaled and wait; the status shows exactly the
    // rows the journal holds unacknowledged.
    upstream.kill9();
    for c in ["out_of_service", "in_service", "out_of_service"] {
        command(api, &sup, c);
    }
    let s = wait_status(api, &view, Duration::from_secs(10), "the backlog", |s| {
        let b = setup.backlog().rows();
        b >= 3 && s["upstream_backlog"] == b
    });
    let held = s["upstream_backlog"].as_u64().expect("backlog");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(api, &view)["upstream_backlog"], held);
    assert_eq!(setup.backlog().rows(), held);

    // Upstream back on its port: the backlog drains and the status follows.
    let _upstream = Upstream::start(&pki, &db, port);
    wait_status(
        api,
        &view,
        Duration::from_secs(30),
        "the drained backlog",
        |s| s["upstream_backlog"] == 0,
    );
    assert_eq!(setup.backlog().rows(), 0);
    g.kill9();
}
