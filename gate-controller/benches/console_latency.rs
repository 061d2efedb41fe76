//! Event-to-console latency with 100 simulated gates, each with its own API server on
//! loopback, shown on one console in headless Chromium.
//!
//! `cargo bench -p gate-controller --bench console_latency [-- GATES SECONDS]` (default 100, 10 s).
//! Every 20 ms one gate raises or clears an alarm; the console records, for each raised
//! alarm, the time from publication on the gate (`ts`, Unix ms) to the end of the tile's
//! DOM update (same host clock). Needs chromium and chromium-driver.

#[path = "../tests/common/mod.rs"]
mod common;

use common::browser::*;
use common::*;
use gate_controller::record::{AlarmKind, GateEvent};
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
    let n: usize = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(1);
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut peers = Vec::new();
        for i in 1..n {
            peers.push(TestGate::start(&format!("gate-{:03}", i + 1), &config()).await);
        }
        let mut cfg = config();
        cfg.peers = peers.iter().map(|p| p.url()).collect();
        let main = TestGate::start("gate-001", &cfg).await;
        let mut gates: Vec<&TestGate> = vec![&main];
        gates.extend(peers.iter());

        let d = start_driver().await;
        let c = browser(&d).await;
        let t0 = Instant::now();
        sign_in(&c, &main.url(), OPERATOR).await;
        wait_for(
            &c,
            "every gate online",
            &format!("document.querySelectorAll('.tile[data-gate-state=\"ready\"]').length === {n}"),
            Duration::from_secs(60),
        )
        .await;
        println!("console_latency: {n} gates online on the console after {:.2} s", t0.elapsed().as_secs_f64());
        js(&c, "window.__echannel.latencies.length = 0; return 0;").await;

        let mut active = vec![false; n];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut raised = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            tick.tick().await;
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % n as u64) as usize;
            let g = gates[i];
            if active[i] {
                g.sim.update(|s| s.snapshot.alarms.clear());
                g.sim.publish(GateEvent::AlarmCleared { alarm: AlarmKind::Tailgating });
            } else {
                g.sim.raise_alarm(AlarmKind::Tailgating, "bench");
                raised += 1;
            }
            active[i] = !active[i];
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        screenshot(&c, "console-100-gates.png").await;
        let v = js(&c, "return window.__echannel.latencies;").await;
        let mut lat: Vec<f64> = v.as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
        lat.sort_by(|a, b| a.total_cmp(b));
        println!(
            "console_latency: {} alarms raised, {} seen on the console in {secs} s",
            raised,
            lat.len()
        );
        println!(
            "console_latency ms (publish -> tile updated): p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
        let _ = c.close().await;
    });
}
