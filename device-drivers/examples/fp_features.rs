//! Development tool: dumps the matcher's per-comparison details as CSV for
//! studying score functions: `fp_features DIR > features.csv`. Parameters can be
//! overridden for sensitivity studies with FP_K, FP_TL, FP_TR, FP_TA, FP_PRIOR,
//! FP_ROOTS, FP_SCORED, FP_MERGE.
use device_drivers::fingerprint::eval;
use device_drivers::fingerprint::matcher::{compare_prepared, Params, Prepared};
use device_drivers::fingerprint::Template;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_default();
    let Ok(samples) = eval::load_dir(std::path::Path::new(&dir)) else {
        eprintln!("cannot load {dir}");
        std::process::exit(2);
    };
    let mut p = Params::default();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f32>().ok());
    if let Some(v) = env("FP_K") {
        p.neighbours = v as usize;
    }
    if let Some(v) = env("FP_TL") {
        p.length_tolerance = v;
    }
    if let Some(v) = env("FP_TR") {
        p.length_tolerance_rel = v;
    }
    if let Some(v) = env("FP_TA") {
        p.angle_tolerance_deg = v;
    }
    if let Some(v) = env("FP_PRIOR") {
        p.overlap_prior = v;
    }
    if let Some(v) = env("FP_ROOTS") {
        p.roots = v as usize;
    }
    if let Some(v) = env("FP_SCORED") {
        p.scored = v as usize;
    }
    if let Some(v) = env("FP_MERGE") {
        p.merge = v > 0.0;
    }
    eprintln!("{p:?}");
    let prepared: Vec<Prepared> = samples
        .iter()
        .map(|s| {
            Prepared::with_params(
                &Template::from_bytes(&s.bytes).unwrap_or_else(|_| std::process::exit(2)),
                &p,
            )
        })
        .collect();
    println!("db,a,b,genuine,score,paired,support,overlap_a,overlap_b,count_a,count_b,consistent");
    for i in 0..samples.len() {
        for j in i + 1..samples.len() {
            let (a, b) = (&samples[i], &samples[j]);
            if a.db != b.db {
                continue;
            }
            let d = compare_prepared(&prepared[i], &prepared[j], &p);
            println!(
                "{},{}_{},{}_{},{},{},{},{},{},{},{},{},{}",
                a.db,
                a.finger,
                a.impression,
                b.finger,
                b.impression,
                u8::from(a.finger == b.finger),
                d.score,
                d.paired,
                d.support,
                d.overlap_a,
                d.overlap_b,
                d.count_a,
                d.count_b,
                d.consistent
            );
        }
    }
}
