//! Upstream benchmarks against a real `gate-sim upstream` process over loopback TLS:
//! - `drain`: one gate's backlog of 20,000 rows drained by the sync task (rows/s);
//! - `ingest_100_gates/sqlite` (and `/postgres` when `ECHANNEL_PG_URL` is set): 100 gates
//!   each draining 200 rows at once (20,000 rows per iteration).

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gate_controller::upstream::sync::{self, SyncConfig};
use gate_controller::upstream::wire::{Direction, GateInfo};
use gate_controller::upstream::Outbox;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

fn config(id: &str, batch: usize) -> SyncConfig {
    let mut c = SyncConfig::new(GateInfo {
        gate_id: id.into(),
        lane: "A1".into(),
        direction: Direction::Arrival,
    });
    c.batch_size = batch;
    c.max_in_flight = 4;
    c.idle_poll_ms = 2;
    c.backoff_initial_ms = 10;
    c.backoff_max_ms = 100;
    c.retain_acked_rows = Some(0);
    c
}

/// Appends `per_gate` rows to every outbox, then times until every one is acknowledged.
fn drain_all(
    rt: &tokio::runtime::Runtime,
    up: &Upstream,
    p: &gate_controller::upstream::pki::DevPki,
    outboxes: &[(String, Arc<SqliteOutbox>)],
    per_gate: u64,
    batch: usize,
) -> Duration {
    let targets: Vec<u64> = outboxes
        .iter()
        .map(|(_, o)| {
            let from = o.acked_watermark().unwrap_or(0);
            o.append(&rows(from + 1, per_gate))
        })
        .collect();
    rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for ((g, o), target) in outboxes.iter().zip(targets) {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let o2 = Arc::clone(o);
            let c = client(&up.url, p, g);
            let cfg = config(g, batch);
            let h = tokio::spawn(async move {
                sync::run(o2, c, cfg, async {
                    let _ = rx.await;
                })
                .await
            });
            tasks.push((Arc::clone(o), target, tx, h));
        }
        for (o, target, _, _) in &tasks {
            while o.acked_watermark().unwrap_or(0) < *target {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let elapsed = start.elapsed();
        for (_, _, tx, h) in tasks {
            let _ = tx.send(());
            let _ = h.await;
        }
        elapsed
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let d = tmp();
    let gates: Vec<String> = (0..100).map(|i| format!("b{i:03}")).collect();
    let gate_refs: Vec<&str> = gates.iter().map(String::as_str).collect();
    let p = pki(&d.path().join("pki"), &gate_refs);

    // Drain of one gate's backlog.
    let up = Upstream::start(&p, &d.path().join("drain.db"), 0);
    let one = vec![(
        "b000".to_string(),
        Arc::new(SqliteOutbox::open(&d.path().join("drain-outbox.db"))),
    )];
    let mut g = c.benchmark_group("upstream");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("drain", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| drain_all(&rt, &up, &p, &one, 20_000, 1_000))
                .sum()
        })
    });
    drop(up);

    // 100 gates at once.
    let outboxes: Vec<(String, Arc<SqliteOutbox>)> = gates
        .iter()
        .map(|g| {
            (
                g.clone(),
                Arc::new(SqliteOutbox::open(&d.path().join(format!("{g}.db")))),
            )
        })
        .collect();
    let up = Upstream::start(&p, &d.path().join("ingest.db"), 0);
    g.bench_function("ingest_100_gates/sqlite", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| drain_all(&rt, &up, &p, &outboxes, 200, 200))
                .sum()
        })
    });
    drop(up);

    if let Ok(pg) = std::env::var("ECHANNEL_PG_URL") {
        // Fresh gate ids are not needed: rows continue each outbox's sequence. Clear the
        // tables of these gates first so that a previous run's rows do not collide.
        let up = Upstream::start_args(
            &[
                "--tls-dir".as_ref(),
                p.dir.as_os_str(),
                "--postgres".as_ref(),
                pg.as_ref(),
            ],
            0,
        );
        let fresh: Vec<(String, Arc<SqliteOutbox>)> = gates
            .iter()
            .map(|g| {
                (
                    g.clone(),
                    Arc::new(SqliteOutbox::open(&d.path().join(format!("pg-{g}.db")))),
                )
            })
            .collect();
        // Continue after whatever the server already holds for these gate ids.
        rt.block_on(async {
            let admin = Admin::new(&up.url, &p);
            for (g, o) in &fresh {
                let (wm, _, _) = admin.records(g).await;
                o.mark_acked(wm).unwrap_or(());
            }
        });
        g.bench_function("ingest_100_gates/postgres", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| drain_all(&rt, &up, &p, &fresh, 200, 200))
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
