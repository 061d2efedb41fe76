//! Development tool: runs the FVC-style evaluation and prints the rates.
//! `cargo run --release -p device-drivers --example fp_eval -- DIR`
use device_drivers::fingerprint::eval;
use device_drivers::fingerprint::matcher::Params;

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
    let p = Params::default();
    let s = match eval::run(&samples, &p) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let r = eval::rates(&s.genuine, &s.impostor, &[0.01, 0.001, 0.0001]);
    println!("{r:?} ms/cmp {:.4}", s.ms_per_comparison);
}
