//! `gatectl fingerprint` subcommands: compare two templates, evaluate the
//! matcher on an FVC-style folder, produce the calibration table, and show
//! a decoded record.

use crate::{CliError, CliResult};
use anyhow::{anyhow, Context};
use clap::Subcommand;
use device_drivers::fingerprint::eval::{self, CalibrationTable, EvalError};
use device_drivers::fingerprint::matcher::{compare, Params};
use device_drivers::fingerprint::synth::{Finger, ImpressionParams};
use device_drivers::fingerprint::{Record, Template};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Prints a line on stdout; a closed pipe (e.g. `| head`) is not an error worth a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The checked-in calibration table, embedded so `gatectl` works from any directory.
const EMBEDDED_CALIBRATION: &str = include_str!("../../../../configs/fingerprint-calibration.toml");

/// FMR targets reported by `eval` and tabulated by `calibrate`.
const TARGETS: [f64; 3] = [0.01, 0.001, 0.0001];

/// `gatectl fingerprint` subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Compare two minutiae templates (ISO/IEC 19794-2 2005/2011 or ANSI 378).
    ///
    /// Prints the score, the threshold for the target FMR from the
    /// calibration table, and the decision. Exit 0 whatever the decision;
    /// exit 2 when a file is missing, malformed or truncated.
    Match {
        /// First template (e.g. the enrolled reference).
        a: PathBuf,
        /// Second template (e.g. the live capture).
        b: PathBuf,
        /// Print one JSON object: score, threshold, decision.
        #[arg(long)]
        json: bool,
        /// Calibration table (TOML) to take the threshold from; default: the embedded configs/fingerprint-calibration.toml.
        #[arg(long, value_name = "FILE")]
        calibration: Option<PathBuf>,
        /// Target false-match rate; default: the table's default_target_fmr (0.001).
        #[arg(long, value_name = "FMR")]
        target_fmr: Option<f64>,
        /// Use this threshold instead of the calibration table.
        #[arg(long, value_name = "T", conflicts_with_all = ["calibration", "target_fmr"])]
        threshold: Option<f32>,
    },
    /// Evaluate the matcher on DIR/<db>/<finger>_<impression>.iso (FVC protocol).
    ///
    /// Genuine pairs: same db, same finger; impostor pairs: same db, different
    /// finger; every unordered pair once. Rates are fractions.
    Eval {
        /// Folder of db folders.
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Produce a calibration table (threshold per target FMR) from an evaluation folder.
    Calibrate {
        /// Folder of db folders (same layout as `eval`).
        dir: PathBuf,
        /// Where to write the TOML table (e.g. configs/fingerprint-calibration.toml).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Target FMR recorded as the table's default.
        #[arg(long, value_name = "FMR", default_value_t = 0.001)]
        default_target_fmr: f64,
    },
    /// Write a synthetic evaluation set: DIR/<db>/<finger>_<impression>.iso from seeded fingers.
    ///
    /// Every db gets its own fingers; each impression is a new capture with
    /// rotation, displacement, elastic distortion, missed and spurious minutiae.
    Synth {
        /// Output folder (created).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of db folders.
        #[arg(long, default_value_t = 1)]
        dbs: u32,
        /// Fingers per db.
        #[arg(long, default_value_t = 10)]
        fingers: u32,
        /// Impressions per finger.
        #[arg(long, default_value_t = 8)]
        impressions: u32,
        /// Seed of the whole set.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Maximum rotation in degrees.
        #[arg(long, default_value_t = 15.0)]
        rotation: f32,
        /// Elastic distortion amplitude in pixels.
        #[arg(long, default_value_t = 6.0)]
        distortion: f32,
        /// Probability that a minutia is missed.
        #[arg(long, default_value_t = 0.12)]
        drop_rate: f32,
        /// Expected number of spurious minutiae per impression.
        #[arg(long, default_value_t = 4.0)]
        spurious: f32,
    },
    /// Decode a record and print its fields (format, views, minutiae, extended data).
    Show {
        /// The record.
        file: PathBuf,
        /// Print the decoded record as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `gatectl fingerprint` subcommand.
pub fn run(cmd: Cmd) -> CliResult {
    match cmd {
        Cmd::Match {
            a,
            b,
            json,
            calibration,
            target_fmr,
            threshold,
        } => run_match(&a, &b, json, calibration.as_deref(), target_fmr, threshold),
        Cmd::Eval { dir, json } => run_eval(&dir, json),
        Cmd::Calibrate {
            dir,
            out,
            default_target_fmr,
        } => run_calibrate(&dir, &out, default_target_fmr),
        Cmd::Show { file, json } => run_show(&file, json),
        Cmd::Synth {
            out,
            dbs,
            fingers,
            impressions,
            seed,
            rotation,
            distortion,
            drop_rate,
            spurious,
        } => {
            let p = ImpressionParams {
                max_rotation_deg: rotation,
                distortion,
                drop_rate,
                spurious,
                ..ImpressionParams::default()
            };
            run_synth(&out, dbs, fingers, impressions, seed, &p)
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .with_context(|| format!("cannot read template {}", path.display()))
        .map_err(CliError::bad_input)
}

fn load_template(path: &Path) -> Result<Template, CliError> {
    let bytes = read_file(path)?;
    Template::from_bytes(&bytes).map_err(|e| {
        CliError::bad_input(anyhow!(
            "{}: not a valid minutiae record: {e}; supply a complete ISO/IEC 19794-2 or ANSI INCITS 378 record",
            path.display()
        ))
    })
}

fn load_calibration(path: Option<&Path>) -> Result<CalibrationTable, CliError> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read calibration table {}", p.display()))
                .map_err(CliError::bad_input)?,
            p.display().to_string(),
        ),
        None => (
            EMBEDDED_CALIBRATION.to_string(),
            "embedded calibration table".to_string(),
        ),
    };
    let table: CalibrationTable = toml::from_str(&text)
        .with_context(|| format!("{name} is not a valid calibration table"))
        .map_err(CliError::bad_input)?;
    if table.matcher != eval::MATCHER_ID {
        return Err(CliError::bad_input(anyhow!(
            "{name} was produced for matcher {:?}, this is {:?}; regenerate it with `gatectl fingerprint calibrate`",
            table.matcher,
            eval::MATCHER_ID
        )));
    }
    Ok(table)
}

fn run_match(
    a: &Path,
    b: &Path,
    json: bool,
    calibration: Option<&Path>,
    target_fmr: Option<f64>,
    threshold: Option<f32>,
) -> CliResult {
    let ta = load_template(a)?;
    let tb = load_template(b)?;
    let threshold = match threshold {
        Some(t) => t,
        None => {
            let table = load_calibration(calibration)?;
            let target = target_fmr.unwrap_or(table.default_target_fmr);
            table.threshold_for(target).ok_or_else(|| {
                CliError::bad_input(anyhow!(
                    "the calibration table has no threshold for target FMR {target}; choose a target it lists"
                ))
            })?
        }
    };
    let d = compare(&ta, &tb);
    let decision = if d.score >= threshold {
        "match"
    } else {
        "no_match"
    };
    if json {
        let v = json!({
            "score": d.score,
            "threshold": threshold,
            "decision": decision,
            "paired_minutiae": d.paired,
            "minutiae": [d.count_a, d.count_b],
        });
        out!("{v}");
    } else {
        out!(
            "score {:.4} threshold {:.4} decision {decision} ({} of {}/{} minutiae paired)",
            d.score,
            threshold,
            d.paired,
            d.count_a,
            d.count_b
        );
    }
    Ok(())
}

fn eval_error(e: EvalError) -> CliError {
    match e {
        EvalError::Io { .. }
        | EvalError::Format { .. }
        | EvalError::BadName { .. }
        | EvalError::NoPairs { .. } => CliError::bad_input(anyhow!("{e}")),
        _ => CliError::failed(anyhow!("{e}")),
    }
}

fn scores(dir: &Path) -> Result<eval::Scores, CliError> {
    let samples = eval::load_dir(dir).map_err(eval_error)?;
    let s = eval::run(&samples, &Params::default()).map_err(eval_error)?;
    if s.genuine.is_empty() || s.impostor.is_empty() {
        return Err(eval_error(EvalError::NoPairs {
            path: dir.to_path_buf(),
        }));
    }
    Ok(s)
}

fn run_eval(dir: &Path, json: bool) -> CliResult {
    let s = scores(dir)?;
    let r = eval::rates(&s.genuine, &s.impostor, &TARGETS);
    if json {
        let mut at = serde_json::Map::new();
        for (t, fnmr, _) in &r.fnmr_at_fmr {
            at.insert(t.to_string(), json!(fnmr));
        }
        let v = json!({
            "genuine": r.genuine,
            "impostor": r.impostor,
            "eer": r.eer,
            "fnmr_at_fmr": at,
            "zero_fmr": r.zero_fmr,
            "ms_per_comparison": s.ms_per_comparison,
        });
        out!("{v}");
    } else {
        out!("genuine comparisons   {}", r.genuine);
        out!("impostor comparisons  {}", r.impostor);
        out!("EER                   {:.2} %", r.eer * 100.0);
        for (t, fnmr, th) in &r.fnmr_at_fmr {
            out!(
                "FNMR at FMR {:<8}  {:.2} % (threshold {th:.4})",
                t,
                fnmr * 100.0
            );
        }
        out!("FNMR at zero FMR      {:.2} %", r.zero_fmr * 100.0);
        out!("ms per comparison     {:.4}", s.ms_per_comparison);
    }
    Ok(())
}

fn run_calibrate(dir: &Path, out: &Path, default_target_fmr: f64) -> CliResult {
    if !(default_target_fmr > 0.0 && default_target_fmr < 1.0) {
        return Err(CliError::bad_input(anyhow!(
            "--default-target-fmr must be a fraction between 0 and 1, got {default_target_fmr}"
        )));
    }
    let s = scores(dir)?;
    let mut targets = TARGETS.to_vec();
    if !targets
        .iter()
        .any(|t| (t - default_target_fmr).abs() < 1e-12)
    {
        targets.push(default_target_fmr);
        targets.sort_by(|a, b| b.total_cmp(a));
    }
    let table =
        CalibrationTable::from_scores(&s.genuine, &s.impostor, &targets, default_target_fmr);
    let body = toml::to_string(&table)
        .map_err(|e| CliError::failed(anyhow!("cannot serialise calibration table: {e}")))?;
    let text = format!(
        "# Fingerprint matcher calibration: decision threshold per target false-match rate.\n\
         # A comparison is a match when score >= threshold.\n\
         # Generated by `gatectl fingerprint calibrate {}` from {} genuine and {} impostor comparisons.\n\
         # With N impostor comparisons a target FMR below 1/N cannot be estimated; treat such rows as optimistic.\n\n{body}",
        dir.display(),
        s.genuine.len(),
        s.impostor.len()
    );
    std::fs::write(out, text)
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(CliError::failed)?;
    for e in &table.threshold {
        eprintln!(
            "target FMR {:<8} threshold {:.4} (FNMR {:.2} %)",
            e.target_fmr,
            e.threshold,
            e.fnmr * 100.0
        );
    }
    Ok(())
}

fn run_show(file: &Path, json: bool) -> CliResult {
    let bytes = read_file(file)?;
    let rec = Record::parse(&bytes).map_err(|e| {
        CliError::bad_input(anyhow!(
            "{}: not a valid minutiae record: {e}; supply a complete ISO/IEC 19794-2 or ANSI INCITS 378 record",
            file.display()
        ))
    })?;
    if json {
        let v = serde_json::to_value(&rec)
            .map_err(|e| CliError::failed(anyhow!("cannot serialise record: {e}")))?;
        out!("{v}");
    } else {
        let t = Template::from_record(&rec)
            .map_err(|e| CliError::bad_input(anyhow!("{}: {e}", file.display())))?;
        let format = match rec {
            Record::Iso2005(_) => "ISO/IEC 19794-2:2005",
            Record::Iso2011(_) => "ISO/IEC 19794-2:2011",
            Record::Ansi2004(_) => "ANSI INCITS 378-2004",
            Record::Ansi2009(_) => "ANSI INCITS 378-2009",
        };
        out!(
            "{format}: {}x{} px at {}x{} px/cm, first view: finger position {}, quality {}, {} minutiae",
            t.width,
            t.height,
            t.resolution_x,
            t.resolution_y,
            t.position,
            t.quality,
            t.minutiae.len()
        );
    }
    Ok(())
}

fn run_synth(
    out: &Path,
    dbs: u32,
    fingers: u32,
    impressions: u32,
    seed: u64,
    p: &ImpressionParams,
) -> CliResult {
    if !(0.0..=1.0).contains(&p.drop_rate)
        || p.spurious < 0.0
        || p.distortion < 0.0
        || fingers == 0
        || impressions == 0
    {
        return Err(CliError::bad_input(anyhow!(
            "--drop-rate must be in [0, 1], --spurious and --distortion non-negative, --fingers and --impressions at least 1"
        )));
    }
    for db in 1..=dbs {
        let dir = out.join(format!("DB{db}_S"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(CliError::failed)?;
        for f in 0..fingers {
            let finger = Finger::generate(
                seed.wrapping_mul(1_000_003)
                    .wrapping_add(u64::from(db) * 10_000 + u64::from(f)),
            );
            for i in 1..=impressions {
                let bytes = finger
                    .impression(u64::from(i), p)
                    .to_iso2005_bytes()
                    .map_err(|e| {
                        CliError::failed(anyhow!("cannot encode a synthetic template: {e}"))
                    })?;
                let path = dir.join(format!("{}_{i}.iso", 101 + f));
                std::fs::write(&path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))
                    .map_err(CliError::failed)?;
            }
        }
    }
    Ok(())
}
