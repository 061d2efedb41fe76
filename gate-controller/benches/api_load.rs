//! API latency under a fixed request rate over loopback (open loop: requests are sent on
//! schedule whatever the answers do, so queueing shows in the figures).
//!
//! `cargo bench -p gate-controller --bench api_load [-- RATE SECONDS]` (default 200 req/s, 10 s):
//! 90 % `GET /v1/status`, 10 % `POST /v1/commands`, each on a new connection, while 20
//! SSE clients follow `/v1/events` and the gate publishes 50 events/s.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use gate_controller::record::AlarmKind;
use std::time::{Duration, Instant};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rate: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(200);
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let g = TestGate::start("bench", &config()).await;
        let addr = g.addr;
        let mut followers = Vec::new();
        for _ in 0..20 {
            followers.push(tokio::spawn(async move {
                let mut s = SseStream::open(addr, "/v1/events", Some(VIEWER), None).await;
                let mut n = 0u64;
                while s.next(Duration::from_secs(30)).await.is_some() {
                    n += 1;
                }
                n
            }));
        }
        let sim = std::sync::Arc::new(g);
        let publisher = {
            let sim = sim.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let mut k = 0u64;
                loop {
                    tick.tick().await;
                    k += 1;
                    if k.is_multiple_of(2) {
                        sim.sim.raise_alarm(AlarmKind::Lingering, "bench");
                    } else {
                        sim.sim.update(|s| s.snapshot.alarms.clear());
                        sim.sim
                            .publish(gate_controller::record::GateEvent::AlarmCleared {
                                alarm: AlarmKind::Lingering,
                            });
                    }
                }
            })
        };
        let total = rate * secs;
        let period = Duration::from_nanos(1_000_000_000 / rate);
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            tokio::time::sleep_until(start + period * i as u32).await;
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let status = if i % 10 == 9 {
                    post(
                        addr,
                        "/v1/commands",
                        Some(OPERATOR),
                        r#"{"command":"open_entry","reason":"load test"}"#,
                    )
                    .await
                    .status
                } else {
                    get(addr, "/v1/status", Some(VIEWER)).await.status
                };
                (t.elapsed().as_secs_f64() * 1000.0, status)
            }));
        }
        let mut lat = Vec::with_capacity(tasks.len());
        let mut bad = 0;
        for t in tasks {
            if let Ok((ms, status)) = t.await {
                if status != 200 {
                    bad += 1;
                }
                lat.push(ms);
            }
        }
        let wall = start.elapsed().as_secs_f64();
        publisher.abort();
        lat.sort_by(|a, b| a.total_cmp(b));
        println!(
            "api_load: {} requests in {:.1} s ({:.0} req/s offered {rate}), non-200: {bad}",
            lat.len(),
            wall,
            lat.len() as f64 / wall
        );
        println!(
            "api_load latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
        for f in &followers {
            f.abort();
        }
    });
}
