//! Process-level tests of the upstream link: `gate-sim upstream` as a child process on
//! 127.0.0.1, real mutual TLS, the gate side's client and sync task over a SQLite outbox.

mod support;

use gate_controller::upstream::client::{UpstreamClient, UpstreamError};
use gate_controller::upstream::sync::{self, SyncConfig, SyncStatus};
use gate_controller::upstream::wire::{Direction, GateInfo, UploadBatch, WireRecord};
use gate_controller::upstream::Outbox;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::sync::{oneshot, watch};

fn gate(id: &str) -> GateInfo {
    GateInfo {
        gate_id: id.into(),
        lane: "A1".into(),
        direction: Direction::Arrival,
    }
}

fn batch(gate_id: &str, seqs: impl IntoIterator<Item = u64>) -> UploadBatch {
    let g = gate(gate_id);
    UploadBatch {
        gate_id: gate_id.into(),
        records: seqs
            .into_iter()
            .map(|s| WireRecord::from_stored(&g, s, &movement(s)))
            .collect(),
    }
}

fn fast_config(id: &str) -> SyncConfig {
    let mut c = SyncConfig::new(gate(id));
    c.batch_size = 100;
    c.idle_poll_ms = 20;
    c.backoff_initial_ms = 20;
    c.backoff_max_ms = 200;
    c.retain_acked_rows = None;
    c
}

/// A running sync task with a handle to stop it.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<SyncStatus>,
    status: watch::Receiver<SyncStatus>,
}

fn start_sync(outbox: Arc<SqliteOutbox>, client: UpstreamClient, cfg: SyncConfig) -> Running {
    let (stop, rx) = oneshot::channel::<()>();
    let (tx, status) = watch::channel(SyncStatus::default());
    let task = tokio::spawn(async move {
        sync::run_with_status(outbox, client, cfg, tx, async {
            let _ = rx.await;
        })
        .await
        .expect("sync config")
    });
    Running {
        stop: Some(stop),
        task,
        status,
    }
}

impl Running {
    async fn stop(mut self) -> SyncStatus {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.expect("sync task")
    }
}

/// Asserts the server holds exactly 1..=n for the gate, once each, with watermark n.
async fn assert_exactly(admin: &Admin, gate_id: &str, n: u64) {
    let (wm, seqs, recs) = admin.records(gate_id).await;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "rows held for {gate_id}");
    assert_eq!(wm, n, "watermark of {gate_id}");
    // Spot-check content: the record of seq 3 is the movement record of transit 3.
    if n >= 3 {
        let r = &recs[2];
        assert_eq!(r["kind"], "movement");
        assert_eq!(r["data"]["transaction_id"], format!("{gate_id}-3"));
        assert_eq!(r["data"]["document"]["document_number"], "X00000003");
    }
}

#[tokio::test]
async fn upload_is_idempotent() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1"]);
    let up = Upstream::start(&p, &d.path().join("u.db"), 0);
    let c = client(&up.url, &p, "g1");
    let a = c.upload(&batch("g1", 1..=50)).await.unwrap();
    assert_eq!((a.watermark, a.stored, a.duplicates), (50, 50, 0));
    let b = c.upload(&batch("g1", 1..=50)).await.unwrap();
    assert_eq!((b.watermark, b.stored, b.duplicates), (50, 0, 50));
    let c2 = c.upload(&batch("g1", 40..=60)).await.unwrap();
    assert_eq!((c2.watermark, c2.stored, c2.duplicates), (60, 10, 11));
    assert_exactly(&Admin::new(&up.url, &p), "g1", 60).await;
}

#[tokio::test]
async fn gapped_and_out_of_order_batches_stop_the_watermark_at_the_gap() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1", "g2"]);
    let up = Upstream::start(&p, &d.path().join("u.db"), 0);
    let c = client(&up.url, &p, "g1");
    assert_eq!(
        c.upload(&batch("g1", [3, 1, 2])).await.unwrap().watermark,
        3
    );
    assert_eq!(c.upload(&batch("g1", 7..=9)).await.unwrap().watermark, 3);
    assert_eq!(c.upload(&batch("g1", [5])).await.unwrap().watermark, 3);
    assert_eq!(c.upload(&batch("g1", [4])).await.unwrap().watermark, 5);
    assert_eq!(c.upload(&batch("g1", [6])).await.unwrap().watermark, 9);
    // Another gate's sequence is independent.
    let c2 = client(&up.url, &p, "g2");
    assert_eq!(c2.upload(&batch("g2", [2])).await.unwrap().watermark, 0);
    assert_exactly(&Admin::new(&up.url, &p), "g1", 9).await;
}

#[tokio::test]
async fn wrong_client_certificate_is_refused_and_nothing_is_stored() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1", "g2"]);
    let other = pki(&d.path().join("other"), &["g1"]);
    let up = Upstream::start(&p, &d.path().join("u.db"), 0);
    // g2's (valid) certificate uploading for g1: 403.
    let c = client(&up.url, &p, "g2");
    match c.upload(&batch("g1", 1..=5)).await {
        Err(UpstreamError::Status { status: 403, .. }) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    // A certificate named g1 but from another CA: the handshake fails.
    let mut files = other.gate("g1");
    files.ca = p.ca(); // trusts the right server, presents the wrong client cert
    let c = UpstreamClient::new(&settings(&up.url, Some(files), 5_000)).unwrap();
    match c.upload(&batch("g1", 1..=5)).await {
        Err(UpstreamError::Transport(_)) => {}
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    // No client certificate at all (plain TLS client): refused.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(rustls_client_without_cert(&p.ca()))
        .build()
        .unwrap();
    assert!(http
        .post(format!("{}/v1/records", up.url))
        .json(&batch("g1", 1..=5))
        .send()
        .await
        .is_err());
    let (wm, seqs, _) = Admin::new(&up.url, &p).records("g1").await;
    assert_eq!((wm, seqs.len()), (0, 0));
}

fn rustls_client_without_cert(ca: &std::path::Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in gate_controller::upstream::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(gate_controller::upstream::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn wrong_server_certificate_client_refuses_and_keeps_records() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1"]);
    let other = pki(&d.path().join("other"), &["g1"]);
    let up = Upstream::start(&p, &d.path().join("u.db"), 0);
    let outbox = Arc::new(SqliteOutbox::open(&d.path().join("outbox.db")));
    outbox.append(&rows(1, 30));
    // The gate trusts another CA: the real server's certificate must be refused.
    let mut files = p.gate("g1");
    files.ca = other.ca();
    let c = UpstreamClient::new(&settings(&up.url, Some(files), 2_000)).unwrap();
    let run = start_sync(outbox.clone(), c, fast_config("g1"));
    let mut st = run.status.clone();
    let failed = tokio::time::timeout(
        Duration::from_secs(10),
        st.wait_for(|s| s.consecutive_failures >= 3),
    )
    .await
    .expect("sync should keep failing")
    .unwrap()
    .clone();
    let last = failed.last_error.unwrap_or_default();
    assert!(
        last.contains("certificate") || last.contains("Certificate"),
        "{last}"
    );
    run.stop().await;
    assert_eq!(outbox.acked_watermark().unwrap(), 0);
    assert_eq!(outbox.count(), 30);
    let (wm, seqs, _) = Admin::new(&up.url, &p).records("g1").await;
    assert_eq!((wm, seqs.len()), (0, 0));
}

#[tokio::test]
async fn outage_bad_upstream_answers_keep_records_and_retry() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1"]);
    let up = Upstream::start(&p, &d.path().join("u.db"), 0);
    let admin = Admin::new(&up.url, &p);
    let outbox = Arc::new(SqliteOutbox::open(&d.path().join("outbox.db")));
    let n = outbox.append(&rows(1, 250));
    // Stalls first (the client times out after 500 ms), then 503s, garbage bodies, and
    // answers lost after storing.
    admin.faults("stall", 2).await;
    let c = UpstreamClient::new(&settings(&up.url, Some(p.gate("g1")), 500)).unwrap();
    let mut cfg = fast_config("g1");
    cfg.max_in_flight = 2;
    let run = start_sync(outbox.clone(), c, cfg);
    let mut st = run.status.clone();
    tokio::time::timeout(
        Duration::from_secs(10),
        st.wait_for(|s| s.consecutive_failures >= 1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        outbox.acked_watermark().unwrap(),
        0,
        "nothing acknowledged during the stall"
    );
    assert!(eventually(15, || outbox.acked_watermark().unwrap() == n).await);
    assert_exactly(&admin, "g1", n).await;

    for mode in ["status503", "garbage", "store_then500"] {
        let from = outbox.acked_watermark().unwrap();
        admin.faults(mode, 3).await;
        let n2 = outbox.append(&rows(from + 1, 120));
        assert!(
            eventually(15, || outbox.acked_watermark().unwrap() == n2).await,
            "{mode}: backlog did not drain"
        );
        assert_exactly(&admin, "g1", n2).await;
    }
    let s = run.stop().await;
    assert!(
        s.rows_sent > outbox.acked_watermark().unwrap(),
        "rows were resent: {s:?}"
    );
}

#[tokio::test]
async fn outage_upstream_down_for_an_hour_of_traffic_then_backlog_drains() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1"]);
    let db = d.path().join("u.db");
    // Reserve a port, then leave it closed: the upstream is down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("https://127.0.0.1:{port}");
    let outbox = Arc::new(SqliteOutbox::open(&d.path().join("outbox.db")));
    let c = UpstreamClient::new(&settings(&url, Some(p.gate("g1")), 2_000)).unwrap();
    let mut cfg = fast_config("g1");
    cfg.retain_acked_rows = Some(1_000);
    let run = start_sync(outbox.clone(), c, cfg);
    // An hour of traffic at one transit every 8 s (450 transits) plus events, journaled
    // while the upstream is unreachable.
    let mut last = 0;
    for chunk in 0..9 {
        last = outbox.append(&rows(chunk * 60 + 1, 60));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(last, 540);
    let st = run.status.borrow().clone();
    assert!(st.consecutive_failures >= 1, "{st:?}");
    assert_eq!(outbox.acked_watermark().unwrap(), 0);
    assert_eq!(outbox.count(), 540);

    let up = Upstream::start(&p, &db, port);
    assert!(eventually(20, || outbox.acked_watermark().unwrap() == last).await);
    // Traffic continues after the return.
    let last = outbox.append(&rows(541, 100));
    assert!(eventually(10, || outbox.acked_watermark().unwrap() == last).await);
    run.stop().await;
    assert_exactly(&Admin::new(&up.url, &p), "g1", last).await;
    // Retention: at most 1,000 acknowledged rows (plus one batch) stay in the outbox.
    assert!(outbox.count() <= 1_000 + 100, "{}", outbox.count());
}

#[tokio::test]
async fn crash_upstream_killed_mid_drain_restarts_and_nothing_is_lost_or_doubled() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1", "g2"]);
    let db = d.path().join("u.db");
    let mut up = Upstream::start(&p, &db, 0);
    let port = up.port;
    let url = up.url.clone();
    let mut runs = Vec::new();
    let mut outboxes = Vec::new();
    for g in ["g1", "g2"] {
        let o = Arc::new(SqliteOutbox::open(&d.path().join(format!("{g}.db"))));
        o.append(&rows(1, 3_000));
        let c = UpstreamClient::new(&settings(&url, Some(p.gate(g)), 2_000)).unwrap();
        let mut cfg = fast_config(g);
        cfg.batch_size = 50;
        runs.push(start_sync(o.clone(), c, cfg));
        outboxes.push(o);
    }
    // kill -9 the upstream several times while it ingests.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        up.kill9();
        tokio::time::sleep(Duration::from_millis(100)).await;
        up = Upstream::start(&p, &db, port);
    }
    for o in &outboxes {
        assert!(eventually(30, || o.acked_watermark().unwrap() == 3_000).await);
    }
    for r in runs {
        r.stop().await;
    }
    let admin = Admin::new(&up.url, &p);
    assert_exactly(&admin, "g1", 3_000).await;
    assert_exactly(&admin, "g2", 3_000).await;
}

/// Child side of [`crash_gate_sync_killed_repeatedly_resumes_from_the_watermark`]: runs
/// the sync task over the outbox named in the environment until killed.
#[test]
#[ignore = "child process of a crash test"]
fn crash_child_sync_process() {
    let (Ok(db), Ok(url), Ok(pki_dir)) = (
        std::env::var("ECH_CHILD_OUTBOX"),
        std::env::var("ECH_CHILD_URL"),
        std::env::var("ECH_CHILD_PKI"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let p = gate_controller::upstream::pki::DevPki {
            dir: pki_dir.into(),
        };
        let outbox = Arc::new(SqliteOutbox::open(std::path::Path::new(&db)));
        let c = UpstreamClient::new(&settings(&url, Some(p.gate("g1")), 2_000)).unwrap();
        let mut cfg = fast_config("g1");
        cfg.batch_size = std::env::var("ECH_CHILD_BATCH")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(40);
        sync::run(outbox, c, cfg, std::future::pending())
            .await
            .unwrap();
    });
}

#[tokio::test]
async fn crash_gate_sync_killed_repeatedly_resumes_from_the_watermark() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1"]);
    let up = Upstream::start(&p, &d.path().join("u.db"), 0);
    let outbox_path = d.path().join("outbox.db");
    let outbox = SqliteOutbox::open(&outbox_path);
    let mut total = 0;
    let mut rng_state = 0x2545F4914F6CDD1Du64;
    let mut killed_mid_backlog = 0;
    let mut progress = Vec::new();
    for round in 0..20u64 {
        // The journal keeps growing between crashes.
        total = outbox.append(&rows(total + 1, 1_000));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_sync_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ECH_CHILD_OUTBOX", &outbox_path)
            .env("ECH_CHILD_URL", &up.url)
            .env("ECH_CHILD_PKI", &p.dir)
            .env("ECH_CHILD_BATCH", "10")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a pseudo-random moment (xorshift), sometimes before it did anything.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let ms = 10 + rng_state % 300;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let wm = outbox.acked_watermark().unwrap();
        assert!(
            wm <= total,
            "round {round}: watermark {wm} beyond the journal {total}"
        );
        if wm < total {
            killed_mid_backlog += 1;
        }
        progress.push(wm);
    }
    eprintln!("watermark after each kill: {progress:?}");
    // The kills really interrupted work, and work survived them.
    assert!(
        killed_mid_backlog >= 5,
        "only {killed_mid_backlog} kills with a backlog: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "watermark went back: {progress:?}"
    );
    assert!(
        progress.last().copied().unwrap_or(0) > 0,
        "no progress at all: {progress:?}"
    );
    // A last run that is allowed to finish.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_sync_process",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env("ECH_CHILD_OUTBOX", &outbox_path)
        .env("ECH_CHILD_URL", &up.url)
        .env("ECH_CHILD_PKI", &p.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let drained = eventually(30, || outbox.acked_watermark().unwrap() == total).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        drained,
        "watermark {} of {total}",
        outbox.acked_watermark().unwrap()
    );
    assert_exactly(&Admin::new(&up.url, &p), "g1", total).await;
}

/// PostgreSQL store: runs only when `ECHANNEL_PG_URL` names a reachable database (the
/// Makefile starts Debian's postgresql and sets it). Gate ids are unique per run, so the
/// database need not be empty.
#[tokio::test]
async fn postgres_dedup_gaps_and_sync_drain() {
    let Ok(pg) = std::env::var("ECHANNEL_PG_URL") else {
        eprintln!("ECHANNEL_PG_URL not set: PostgreSQL store not tested");
        return;
    };
    let run_id = format!("{:x}", gate_controller::upstream::wire::unix_ms_now());
    let g1 = format!("pg{run_id}-1");
    let g2 = format!("pg{run_id}-2");
    let d = tmp();
    let p = pki(&d.path().join("pki"), &[&g1, &g2]);
    let up = Upstream::start_args(
        &[
            "--tls-dir".as_ref(),
            p.dir.as_os_str(),
            "--postgres".as_ref(),
            pg.as_ref(),
        ],
        0,
    );
    let c = client(&up.url, &p, &g1);
    let a = c.upload(&batch(&g1, [1, 2, 4])).await.unwrap();
    assert_eq!((a.watermark, a.stored, a.duplicates), (2, 3, 0));
    let b = c.upload(&batch(&g1, [2, 3, 4])).await.unwrap();
    assert_eq!((b.watermark, b.stored, b.duplicates), (4, 1, 2));
    // Wrong gate for the certificate: refused.
    match client(&up.url, &p, &g2).upload(&batch(&g1, [5])).await {
        Err(UpstreamError::Status { status: 403, .. }) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    // A sync drain with an injected lost answer.
    let admin = Admin::new(&up.url, &p);
    admin.faults("store_then500", 2).await;
    let outbox = Arc::new(SqliteOutbox::open(&d.path().join("outbox.db")));
    let n = outbox.append(&rows(1, 1_000));
    let run = start_sync(outbox.clone(), client(&up.url, &p, &g2), fast_config(&g2));
    assert!(eventually(30, || outbox.acked_watermark().unwrap() == n).await);
    run.stop().await;
    assert_exactly(&admin, &g2, n).await;
    let (wm, seqs, _) = admin.records(&g1).await;
    assert_eq!((wm, seqs), (4, vec![1, 2, 3, 4]));
}

#[tokio::test]
async fn heartbeat_clock_and_watchlist_files() {
    let d = tmp();
    let p = pki(&d.path().join("pki"), &["g1"]);
    let wl = d.path().join("wl");
    std::fs::create_dir(&wl).unwrap();
    std::fs::write(
        wl.join("sltd-000001.snapshot"),
        b"\x00signed snapshot bytes\xff",
    )
    .unwrap();
    std::fs::write(wl.join("sltd-000002.delta"), b"delta two").unwrap();
    std::fs::write(wl.join(".hidden"), b"not served").unwrap();
    let up = Upstream::start_args(
        &[
            "--tls-dir".as_ref(),
            p.dir.as_os_str(),
            "--db".as_ref(),
            d.path().join("u.db").as_os_str(),
            "--watchlist-dir".as_ref(),
            wl.as_os_str(),
        ],
        0,
    );
    let c = client(&up.url, &p, "g1");
    let clock = c.clock().await.unwrap();
    assert!(clock.offset_ms.abs() < 2_000, "{clock:?}");
    let idx = c.watchlist_index(None).await.unwrap();
    let names: Vec<_> = idx.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["sltd-000001.snapshot", "sltd-000002.delta"]);
    assert_eq!(idx.files[1].size, 9);
    let after = c
        .watchlist_index(Some("sltd-000001.snapshot"))
        .await
        .unwrap();
    assert_eq!(after.files.len(), 1);
    assert_eq!(
        c.watchlist_file("sltd-000001.snapshot").await.unwrap(),
        b"\x00signed snapshot bytes\xff"
    );
    assert!(matches!(
        c.watchlist_file(".hidden").await,
        Err(UpstreamError::Status { status: 400, .. })
    ));
    assert!(matches!(
        c.watchlist_file("nope.delta").await,
        Err(UpstreamError::Status { status: 404, .. })
    ));
    c.upload(&batch("g1", 1..=3)).await.unwrap();
    let hb = gate_controller::upstream::wire::Heartbeat {
        gate_id: "g1".into(),
        sent_at_ms: gate_controller::upstream::wire::unix_ms_now(),
        mode: "ready".into(),
        alarms: vec!["watchlist_stale".into()],
        backlog: 0,
        acked_watermark: 3,
        watchlist_version: Some(2),
        disk_used_percent: Some(41.5),
        software_version: "test".into(),
    };
    let ack = c.heartbeat(&hb).await.unwrap();
    assert_eq!(ack.watermark, 3);
    let mut other = hb.clone();
    other.gate_id = "g9".into();
    assert!(matches!(
        c.heartbeat(&other).await,
        Err(UpstreamError::Status { status: 403, .. })
    ));
}
