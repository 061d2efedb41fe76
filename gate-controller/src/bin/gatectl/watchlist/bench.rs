//! `gatectl watchlist bench`: the opt-in scale benchmark (hidden; not run in CI).
//!
//! `bench build --entries N --dir DIR` writes a signed snapshot of N synthetic
//! documents, a delta with `--delta-changes` changes (half removals of listed
//! documents, half new documents) and installs the snapshot into `DIR/store`.
//! `bench query --dir DIR` then measures, in a fresh process: cold start to the
//! first answer, resident memory after a warm-up, per-lookup latency percentiles for
//! hits and misses, and the time to apply the delta. Figures are printed as JSON.
//! Every `bench query` starts from the installed snapshot (the store's manifest is
//! put back from the copy `bench build` keeps), so runs can be repeated.

use crate::{CliError, CliResult};
use anyhow::anyhow;
use clap::Subcommand;
use gate_controller::watchlist::delta::DeltaBuilder;
use gate_controller::watchlist::format::BodyCheck;
use gate_controller::watchlist::snapshot::SnapshotBuilder;
use gate_controller::watchlist::{
    Action, DocKey, ListId, OpenOptions, SecretKey, TrustedKeys, Verdict, WatchlistStore,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Benchmark subcommands.
#[derive(Subcommand)]
pub enum BenchCmd {
    /// Build the synthetic snapshot and delta, and install the snapshot into DIR/store.
    Build {
        /// Number of document entries.
        #[arg(long)]
        entries: u64,
        /// Working directory.
        #[arg(long)]
        dir: PathBuf,
        /// Changes in the delta.
        #[arg(long, default_value_t = 1_000_000)]
        delta_changes: u64,
    },
    /// Measure cold start, memory, latency and delta apply on DIR/store.
    Query {
        /// Working directory (from `bench build`).
        #[arg(long)]
        dir: PathBuf,
        /// Lookups per latency sample (hits and misses each).
        #[arg(long, default_value_t = 1_000_000)]
        lookups: u64,
        /// Re-hash the snapshot before serving instead of in the background.
        #[arg(long)]
        full_check: bool,
    },
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The synthetic document `i` of stream `seed`: a 3-letter state and 9 alphanumerics.
fn doc(seed: u64, i: u64) -> DocKey {
    const AL: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut a = splitmix(seed ^ splitmix(i));
    let mut b = splitmix(a);
    let mut st = [0u8; 3];
    for c in st.iter_mut() {
        *c = b'A' + (a % 26) as u8;
        a /= 26;
    }
    let mut dn = [0u8; 9];
    for c in dn.iter_mut() {
        *c = AL[(b % 36) as usize];
        b /= 36;
    }
    let st = std::str::from_utf8(&st).unwrap_or("UTO");
    let dn = std::str::from_utf8(&dn).unwrap_or("0");
    DocKey::new(st, dn).unwrap_or_else(|_| DocKey::from_mixed(u128::from(i)))
}

const MEMBERS: u64 = 1;
const MISSES: u64 = 2;
const ADDED: u64 = 3;

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError::failed(anyhow!("{e}"))
}

fn rss() -> serde_json::Value {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb / 1024)
    };
    serde_json::json!({"rss_mb": get("VmRSS:"), "rss_anon_mb": get("RssAnon:"), "rss_file_mb": get("RssFile:")})
}

/// Runs a benchmark subcommand.
pub fn run(cmd: BenchCmd) -> CliResult {
    match cmd {
        BenchCmd::Build {
            entries,
            dir,
            delta_changes,
        } => build(entries, &dir, delta_changes),
        BenchCmd::Query {
            dir,
            lookups,
            full_check,
        } => query(&dir, lookups, full_check),
    }
}

fn build(n: u64, dir: &Path, changes: u64) -> CliResult {
    std::fs::create_dir_all(dir).map_err(fail)?;
    let sk = SecretKey::from_seed([7u8; 32]);
    std::fs::write(dir.join("key.pub"), sk.public().to_file_text()).map_err(fail)?;
    let id = ListId::new("sltd").map_err(fail)?;
    let snap_path = dir.join("snapshot.wl");
    let t = Instant::now();
    let mut b = SnapshotBuilder::new(id.clone(), 1, 1_700_000_000_000);
    b.reserve(n as usize);
    for i in 0..n {
        let a = if i.is_multiple_of(10) {
            Action::Hold
        } else {
            Action::Refer
        };
        b.add_document(
            doc(MEMBERS, i),
            a,
            if i.is_multiple_of(3) {
                "SLTD-STOLEN"
            } else {
                "SLTD-LOST"
            },
        )
        .map_err(fail)?;
    }
    let t_gen = t.elapsed();
    b.write(&snap_path, &sk).map_err(fail)?;
    let t_build = t.elapsed();
    let size = std::fs::metadata(&snap_path).map_err(fail)?.len();
    let t = Instant::now();
    let mut d = DeltaBuilder::new(id, 1, 2, 1_700_000_100_000);
    for i in 0..changes / 2 {
        d.remove_document(doc(MEMBERS, i));
        d.add_document(doc(ADDED, i), Action::Hold, "NEW")
            .map_err(fail)?;
    }
    d.write(&dir.join("delta.wl"), &sk).map_err(fail)?;
    let t_delta = t.elapsed();
    let store_dir = dir.join("store");
    let _ = std::fs::remove_dir_all(&store_dir);
    let trusted = TrustedKeys::from_keys([sk.public()]);
    let store = WatchlistStore::open(&store_dir, trusted, OpenOptions::default()).map_err(fail)?;
    let t = Instant::now();
    store.install_snapshot_file(&snap_path).map_err(fail)?;
    let t_install = t.elapsed();
    // `bench query` applies the delta to the store; this copy lets every run start
    // from the installed snapshot again.
    std::fs::copy(store_dir.join("sltd").join(MANIFEST), dir.join(INSTALLED)).map_err(fail)?;
    println!(
        "{}",
        serde_json::json!({
            "entries": n,
            "generate_s": t_gen.as_secs_f64(),
            "build_s": t_build.as_secs_f64(),
            "file_bytes": size,
            "bytes_per_entry": size as f64 / n.max(1) as f64,
            "delta_build_s": t_delta.as_secs_f64(),
            "install_verify_s": t_install.as_secs_f64(),
        })
    );
    Ok(())
}

fn percentiles(mut ns: Vec<u64>) -> serde_json::Value {
    ns.sort_unstable();
    let p = |q: f64| {
        ns.get(((ns.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    serde_json::json!({"p50_ns": p(0.5), "p99_ns": p(0.99), "p999_ns": p(0.999), "max_ns": p(1.0)})
}

/// The store's manifest file name, and the copy `bench build` keeps of it.
const MANIFEST: &str = "MANIFEST";
const INSTALLED: &str = "MANIFEST.installed";

/// Puts the store back at the installed snapshot (a previous run applied the delta).
fn reset_store(dir: &Path) -> Result<(), CliError> {
    let saved = dir.join(INSTALLED);
    if !saved.exists() {
        return Err(fail(format!(
            "{} is missing: run `bench build` first",
            saved.display()
        )));
    }
    let list = dir.join("store").join("sltd");
    let tmp = list.join("MANIFEST.bench-tmp");
    std::fs::copy(&saved, &tmp).map_err(fail)?;
    std::fs::rename(&tmp, list.join(MANIFEST)).map_err(fail)
}

fn query(dir: &Path, lookups: u64, full_check: bool) -> CliResult {
    reset_store(dir)?;
    let t0 = Instant::now();
    let trusted = TrustedKeys::read_files(&[dir.join("key.pub")]).map_err(fail)?;
    let opts = OpenOptions {
        snapshot_body: if full_check {
            BodyCheck::Full
        } else {
            BodyCheck::Deferred
        },
    };
    let store = WatchlistStore::open(&dir.join("store"), trusted, opts).map_err(fail)?;
    let first = store.lookup_key(doc(MEMBERS, 0));
    let cold = t0.elapsed();
    if !matches!(first, Verdict::Hit(_)) {
        return Err(fail("first lookup missed a member"));
    }
    let n = store.status(0).first().map(|s| s.doc_count).unwrap_or(0);
    if n == 0 {
        return Err(fail("empty store: run bench build first"));
    }
    let rss_open = rss();
    while store.status(0).iter().any(|s| s.integrity == "pending") {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let verified = t0.elapsed();
    let rss_verified = rss();
    // Warm-up: a realistic mix, mostly travellers not on the list (1 % hits).
    let mut errors = 0u64;
    for i in 0..lookups {
        let hit = i.is_multiple_of(100);
        let k = if hit {
            doc(MEMBERS, splitmix(i) % n)
        } else {
            doc(MISSES, i)
        };
        if matches!(store.lookup_key(k), Verdict::Hit(_)) != hit {
            errors += 1;
        }
    }
    let rss_warm = rss();
    let mut miss_ns = Vec::with_capacity(lookups as usize);
    let mut hit_ns = Vec::with_capacity(lookups as usize);
    let keys: Vec<DocKey> = (0..lookups).map(|i| doc(MISSES, lookups + i)).collect();
    for k in &keys {
        let t = Instant::now();
        let v = store.lookup_key(*k);
        miss_ns.push(t.elapsed().as_nanos() as u64);
        if v != Verdict::Clear {
            errors += 1;
        }
    }
    let keys: Vec<DocKey> = (0..lookups)
        .map(|i| doc(MEMBERS, splitmix(i ^ 0x55) % n))
        .collect();
    for k in &keys {
        let t = Instant::now();
        let v = store.lookup_key(*k);
        hit_ns.push(t.elapsed().as_nanos() as u64);
        if v == Verdict::Clear {
            errors += 1;
        }
    }
    let rss_after_hits = rss();
    let t = Instant::now();
    let v = store
        .apply_delta_file(&dir.join("delta.wl"))
        .map_err(fail)?;
    let t_delta = t.elapsed();
    let mut delta_errors = 0u64;
    for i in (0..50_000).step_by(7) {
        if store.lookup_key(doc(MEMBERS, i)) != Verdict::Clear {
            delta_errors += 1;
        }
        if store.lookup_key(doc(ADDED, i)) == Verdict::Clear {
            delta_errors += 1;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "entries": n,
            "open_mode": if full_check { "full" } else { "deferred" },
            "cold_start_to_first_lookup_ms": cold.as_secs_f64() * 1e3,
            "rss_after_open": rss_open,
            "rss_after_warmup": rss_warm,
            "rss_after_1M_hits": rss_after_hits,
            "miss_latency": percentiles(miss_ns),
            "hit_latency": percentiles(hit_ns),
            "wrong_answers": errors,
            "delta_apply_ms": t_delta.as_secs_f64() * 1e3,
            "version_after_delta": v,
            "wrong_answers_after_delta": delta_errors,
            "fully_verified_after_ms": verified.as_secs_f64() * 1e3,
            "rss_after_background_verify": rss_verified,
            "integrity": store.status(0).first().map(|s| s.integrity),
        })
    );
    Ok(())
}
