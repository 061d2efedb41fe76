//! Every shipped scenario is a claim about the gate that must hold whatever the seed:
//! each `configs/scenarios/*.toml` runs on seeds 1..=20 (in-process, in parallel threads)
//! and every expectation must hold with no invariant violation. A failure names the
//! scenario, the seed and each failed expectation, with the command that replays it.
//!
//! `rig-*.toml` files (real-time scenarios of `gate-sim rig`) are skipped.

use gate_sim::run::{run, Report};
use gate_sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The seeds every scenario must hold on.
const SEEDS: std::ops::RangeInclusive<u64> = 1..=20;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/scenarios")
}

/// The shipped scenario files, sorted, without the real-time `rig-*` ones.
fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("configs/scenarios exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rig-"))
        })
        .collect();
    files.sort();
    files
}

/// What went wrong in one run, or `None` if it held.
fn failure(file: &str, seed: u64, report: &Report) -> Option<String> {
    if report.ok() {
        return None;
    }
    let mut text = format!(
        "{file} seed {seed} (replay: gate-sim run configs/scenarios/{file} --seed {seed} --trace):"
    );
    for c in report.checks.iter().filter(|c| !c.passed) {
        text.push_str(&format!(
            "\n    expect.{}: want {}, got {}",
            c.expect, c.want, c.got
        ));
    }
    for v in &report.violations {
        text.push_str(&format!(
            "\n    invariant {} on gate {} at {} ms: {}",
            v.invariant, v.gate, v.at_ms, v.detail
        ));
    }
    Some(text)
}

#[test]
fn every_shipped_scenario_holds_on_seeds_1_to_20() {
    let files = shipped();
    assert!(files.len() >= 17, "the shipped scenarios are missing");
    let scenarios: Vec<(String, Scenario)> = files
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let s = Scenario::load(p).unwrap_or_else(|e| panic!("{e}"));
            (name, s)
        })
        .collect();
    // Longest first (busy-day), so the threads finish together.
    let mut jobs: Vec<(usize, u64)> = Vec::new();
    for (i, (name, _)) in scenarios.iter().enumerate() {
        for seed in SEEDS {
            jobs.push((i, seed));
        }
        if name == "busy-day.toml" {
            jobs.rotate_right(SEEDS.count());
        }
    }
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(i, seed)) = jobs.get(k) else {
                    break;
                };
                let (name, scenario) = &scenarios[i];
                let text = match run(scenario.clone(), seed, false) {
                    Ok(report) => failure(name, seed, &report),
                    Err(e) => Some(format!("{name} seed {seed}: the run failed: {e}")),
                };
                if let Some(text) = text {
                    failures
                        .lock()
                        .expect("no panic holds the lock")
                        .push((i, seed, text));
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("no panic holds the lock");
    failures.sort();
    let texts: Vec<String> = failures.into_iter().map(|(_, _, t)| t).collect();
    assert!(
        texts.is_empty(),
        "{} of {} runs failed:\n{}",
        texts.len(),
        jobs.len(),
        texts.join("\n")
    );
}
