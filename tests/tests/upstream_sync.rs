//! `gated` syncing its journal to the reference upstream, as processes: real `gated` on
//! simulated devices (sped up), real `gate-sim upstream` over mutual TLS with the
//! development PKI of `gate-sim pki dev`, real SQLite files on both ends.
//!
//! - `crash_*`: `kill -9` of `gated` at seeded random moments, each followed by a
//!   restart; at the end the upstream holds every journaled row exactly once, gap-free,
//!   equal to the journal.
//! - `outage_*`: the upstream is down for a simulated hour of traffic; the gate keeps
//!   clearing; the backlog drains when the upstream returns; nothing lost or doubled.
//!
//! `ECHANNEL_CRASH_SEED=N` replays the crash test's kill moments; `ECHANNEL_CRASH_ROUNDS`
//! changes the number of kills (default 60).

mod support;

use std::time::{Duration, Instant};
use support::*;

#[test]
fn crash_kill9_of_gated_at_random_moments_loses_and_doubles_nothing_upstream() {
    let t0 = Instant::now();
    let seed: u64 = std::env::var("ECHANNEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(388_823);
    let rounds: u32 = std::env::var("ECHANNEL_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    assert!(rounds >= 1);
    eprintln!("crash test: seed {seed} (ECHANNEL_CRASH_SEED), {rounds} kills");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = "crash-gate";
    let pki = make_pki(dir.path(), gate);
    let upstream = Upstream::start(&pki, &dir.path().join("upstream.db"), 0);
    let admin = Admin::new(&upstream.url, &pki);
    let setup = GateSetup {
        dir: dir.path().to_path_buf(),
        gate: gate.into(),
        pki: pki.clone(),
        url: upstream.url.clone(),
    };
    // Fast travellers, small batches several in flight, a lazy poll: kills land with
    // rows journaled but not yet sent, sent but not yet acknowledged, and acknowledged
    // but not yet marked in the journal.
    let cfg = setup.config(
        "gate",
        "seed = 11\nspeed = 400.0\nmean_arrival_gap_ms = 2000",
        "batch_size = 4\nmax_in_flight = 3\nidle_poll_ms = 40\nbackoff_initial_ms = 20\nbackoff_max_ms = 200",
    );
    eprintln!("crash test: set up in {:?}", t0.elapsed());
    let t_kill = Instant::now();
    let mut killed_with_backlog = 0;
    let mut last_before = 0;
    let mut grew = 0;
    for round in 0..rounds {
        let mut g = Gated::start(&cfg);
        // From right after exec (start-up, schema checks) to well into the run.
        let wait = rng.range(20, 700);
        std::thread::sleep(Duration::from_millis(wait));
        g.kill9();
        let b = setup.backlog();
        if b.rows() > 0 {
            killed_with_backlog += 1;
        }
        if b.last_useq > last_before {
            grew += 1;
        }
        last_before = b.last_useq;
        if round % 10 == 0 {
            eprintln!(
                "round {round}: killed after {wait} ms; journal {} rows, acked {}",
                b.last_useq, b.acked
            );
        }
    }
    let kill_phase = t_kill.elapsed();
    let before_drain = setup.backlog();
    let drained = drain(&setup, &admin, Duration::from_secs(60));
    let (rows, moves, cleared) = assert_upstream_equals_journal(&setup, &admin);
    eprintln!(
        "crash test: {rounds} kills in {kill_phase:?} ({killed_with_backlog} with a backlog, {grew} after new rows); \
         before the drain {} rows, {} acknowledged; drained in {drained:?}; \
         upstream = journal: {rows} rows, {moves} movement records, {cleared} cleared; total {:?}",
        before_drain.last_useq,
        before_drain.acked,
        t0.elapsed()
    );
    assert!(
        cleared >= 20,
        "too few cleared transits to mean anything: {cleared}"
    );
    assert!(
        killed_with_backlog * 4 >= rounds,
        "only {killed_with_backlog} of {rounds} kills found rows unacknowledged"
    );
    assert!(
        grew * 2 >= rounds,
        "gated journaled in only {grew} of {rounds} runs"
    );
}

#[test]
fn outage_of_an_hour_the_gate_keeps_clearing_and_the_backlog_drains_on_return() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = "outage-gate";
    let pki = make_pki(dir.path(), gate);
    let db = dir.path().join("upstream.db");
    let mut upstream = Upstream::start(&pki, &db, 0);
    let port = upstream.port();
    let admin = Admin::new(&upstream.url, &pki);
    let setup = GateSetup {
        dir: dir.path().to_path_buf(),
        gate: gate.into(),
        pki: pki.clone(),
        url: upstream.url.clone(),
    };
    // One simulated hour = 3,600,000 ms / SPEED of real time.
    const SPEED: f64 = 300.0;
    let hour = Duration::from_secs_f64(3_600.0 / SPEED);
    let cfg = setup.config(
        "gate",
        &format!("seed = 23\nspeed = {SPEED:.1}\nmean_arrival_gap_ms = 4000"),
        "batch_size = 200\nidle_poll_ms = 100\nbackoff_initial_ms = 100\nbackoff_max_ms = 1000",
    );
    let mut g = Gated::start(&cfg);
    g.wait_line("upstream sync starting", Duration::from_secs(20));

    // Upstream up: rows flow.
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.watermark(gate) < 20 {
        assert!(Instant::now() < deadline, "nothing reached the upstream");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Upstream down for a simulated hour.
    upstream.kill9();
    let down_at = setup.backlog();
    let cleared_before = cleared_in_journal(&setup);
    std::thread::sleep(hour);
    let during = setup.backlog();
    let cleared_during = cleared_in_journal(&setup) - cleared_before;
    assert!(
        during.acked <= down_at.last_useq,
        "acknowledged {} while the upstream was down (journal had {} when it went down)",
        during.acked,
        down_at.last_useq
    );
    assert!(
        cleared_during >= 40,
        "the gate cleared only {cleared_during} travellers in a simulated hour without upstream"
    );
    let backlog_at_return = during.rows();
    assert!(backlog_at_return >= 300, "backlog {backlog_at_return}");

    // Back: the backlog drains while the gate keeps clearing.
    let t_back = Instant::now();
    let _upstream = Upstream::start(&pki, &db, port);
    let target = setup.backlog().last_useq;
    while admin.watermark(gate) < target {
        assert!(
            t_back.elapsed() < Duration::from_secs(60),
            "the backlog did not drain: watermark {} of {target}",
            admin.watermark(gate)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let drain_time = t_back.elapsed();
    g.kill9();
    let logs = g.drain_lines();
    assert!(
        logs.iter().any(|l| l.contains("upstream sync failed")),
        "gated logged no failed upload during the outage"
    );
    let final_drain = drain(&setup, &admin, Duration::from_secs(60));
    // Heartbeats reached the upstream too (the last one from the drain run).
    let summary = admin.gate_summary(gate).expect("gate summary");
    let hb = summary["last_heartbeat"].to_string();
    assert!(
        hb.contains("\"mode\"") && hb.contains("\"backlog\"") && hb.contains("disk_used_percent"),
        "no heartbeat held upstream: {summary}"
    );
    let (rows, moves, cleared) = assert_upstream_equals_journal(&setup, &admin);
    eprintln!(
        "outage test: simulated hour = {hour:?} real; {cleared_during} cleared and {backlog_at_return} rows \
         queued during the outage; {target} rows held {drain_time:?} after the upstream returned; \
         final drain {final_drain:?}; upstream = journal: {rows} rows, {moves} movement records, \
         {cleared} cleared; total {:?}",
        t0.elapsed()
    );
}

fn cleared_in_journal(setup: &GateSetup) -> usize {
    movements(&setup.journal_rows())
        .iter()
        .filter(|m| m.1 == gate_controller::record::Outcome::Cleared)
        .count()
}

#[test]
fn check_validates_the_upstream_table_and_its_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = "check-gate";
    let pki = make_pki(dir.path(), gate);
    let setup = GateSetup {
        dir: dir.path().to_path_buf(),
        gate: gate.into(),
        pki: pki.clone(),
        url: "https://127.0.0.1:8443".into(),
    };
    let check = |cfg: &std::path::Path| {
        let o = bin("gated")
            .arg("--check")
            .arg("--config")
            .arg(cfg)
            .output()
            .expect("gated --check runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = check(&setup.config("ok", "", ""));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check(&setup.config("typo", "", "batchsize = 3"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("upstream.batchsize"), "{err}");
    // Another gate's key does not fit this gate's certificate.
    let (code, err) = check(
        &setup
            .config("x", "", "")
            .with_replaced(&format!("clients/{gate}.key"), "clients/admin.key"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("upstream.key"), "{err}");
    let (code, err) = check(
        &setup
            .config("y", "", "")
            .with_replaced("ca.pem", "missing.pem"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("upstream.ca") && err.contains("missing.pem"),
        "{err}"
    );
}

trait Replace {
    fn with_replaced(self, from: &str, to: &str) -> Self;
}

impl Replace for std::path::PathBuf {
    fn with_replaced(self, from: &str, to: &str) -> Self {
        let text = std::fs::read_to_string(&self).expect("config");
        std::fs::write(&self, text.replace(from, to)).expect("config");
        self
    }
}
