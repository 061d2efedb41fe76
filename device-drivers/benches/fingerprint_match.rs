//! 1:1 comparison speed, decoding of both ISO 19794-2 records included.
//!
//! `fvc2002`: a rotating set of genuine and impostor pairs from the FVC2002
//! templates when the shared data is present (ECHANNEL_SHARED, default
//! `<workspace>/../shared`); `synthetic`: seeded synthetic impressions,
//! always available. Each iteration decodes two records and compares them.
//!
//! Besides wall-clock time (`decode_and_compare/*`), the same work is
//! measured in this thread's CPU time (`cpu/decode_and_compare/*`), which a
//! busy shared machine does not inflate; the contract figure is one core.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use device_drivers::fingerprint::matcher::compare_records;
use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
use std::hint::black_box;
use std::path::PathBuf;

fn fvc_pairs() -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let root = std::env::var_os("ECHANNEL_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data/fingerprints/fvc2002");
    let mut pairs = Vec::new();
    for db in ["DB1_B", "DB2_B", "DB3_B", "DB4_B"] {
        let dir = root.join(db);
        let read = |f: u32, i: u32| std::fs::read(dir.join(format!("{f}_{i}.iso"))).ok();
        for f in 101..=110u32 {
            // One genuine and one impostor pair per finger.
            pairs.push((read(f, 1)?, read(f, 2)?));
            pairs.push((read(f, 3)?, read(if f == 110 { 101 } else { f + 1 }, 4)?));
        }
    }
    Some(pairs)
}

fn synthetic_pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    let p = ImpressionParams::default();
    (0..40u64)
        .map(|s| {
            let f = Finger::generate(s);
            let other = if s % 2 == 0 {
                f.clone()
            } else {
                Finger::generate(s + 1000)
            };
            let a = f.impression(1, &p).to_iso2005_bytes().unwrap_or_default();
            let b = other
                .impression(2, &p)
                .to_iso2005_bytes()
                .unwrap_or_default();
            (a, b)
        })
        .collect()
}

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in nanoseconds.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass and nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, v1: &u64, v2: &u64) -> u64 {
        v1 + v2
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        for v in values {
            *v /= 1000.0;
        }
        "µs (cpu)"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        for v in values {
            *v /= 1000.0;
        }
        "µs (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench_cpu(c: &mut Criterion<ThreadCpu>) {
    let mut sets = vec![("synthetic", synthetic_pairs())];
    if let Some(p) = fvc_pairs() {
        sets.insert(0, ("fvc2002", p));
    }
    for (name, pairs) in sets {
        let mut i = 0usize;
        c.bench_function(&format!("cpu/decode_and_compare/{name}"), |b| {
            b.iter(|| {
                let (x, y) = &pairs[i % pairs.len()];
                i += 1;
                black_box(
                    compare_records(black_box(x), black_box(y))
                        .map(|d| d.score)
                        .unwrap_or(0.0),
                )
            })
        });
    }
}

fn bench(c: &mut Criterion) {
    let mut sets = vec![("synthetic", synthetic_pairs())];
    if let Some(p) = fvc_pairs() {
        sets.insert(0, ("fvc2002", p));
    } else {
        eprintln!("fvc2002 templates not found: benchmarking synthetic pairs only");
    }
    for (name, pairs) in sets {
        let mut i = 0usize;
        c.bench_function(&format!("decode_and_compare/{name}"), |b| {
            b.iter(|| {
                let (x, y) = &pairs[i % pairs.len()];
                i += 1;
                black_box(
                    compare_records(black_box(x), black_box(y))
                        .map(|d| d.score)
                        .unwrap_or(0.0),
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_cpu
}
criterion_main!(benches, cpu_benches);
