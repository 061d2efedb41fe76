//! Development tool: runs the FVC-style evaluation and prints the rates and
//! the median thread-CPU time of one comparison (both records decoded).
//! `cargo run --release -p device-drivers --example fp_eval -- DIR`
use device_drivers::fingerprint::eval;
use device_drivers::fingerprint::matcher::compare_records;

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

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/fingerprints/fvc2002".into());
    let samples = match eval::load_dir(std::path::Path::new(&dir)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (mut genuine, mut impostor, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for (i, a) in samples.iter().enumerate() {
        for b in samples.iter().skip(i + 1).filter(|b| b.db == a.db) {
            let t0 = thread_cpu_ns();
            let Ok(d) = compare_records(&a.bytes, &b.bytes) else {
                eprintln!(
                    "{} or {} does not parse",
                    a.path.display(),
                    b.path.display()
                );
                std::process::exit(2);
            };
            cpu.push(thread_cpu_ns().saturating_sub(t0));
            if a.finger == b.finger {
                genuine.push(d.score);
            } else {
                impostor.push(d.score);
            }
        }
    }
    let r = eval::rates(&genuine, &impostor, &[0.01, 0.001, 0.0001]);
    cpu.sort_unstable();
    let median = cpu.get(cpu.len() / 2).copied().unwrap_or(0) as f64 / 1e6;
    let p90 = cpu.get(cpu.len() * 9 / 10).copied().unwrap_or(0) as f64 / 1e6;
    let max = cpu.last().copied().unwrap_or(0) as f64 / 1e6;
    println!("{r:?}");
    println!("thread CPU per comparison incl. decoding: median {median:.4} ms, p90 {p90:.4} ms, max {max:.4} ms");
}
