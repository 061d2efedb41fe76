//! FVC-style evaluation of the matcher: loading a folder of templates,
//! running every genuine and impostor comparison, and error rates (EER,
//! FNMR at a target FMR) computed from the score distributions.
//!
//! Folder layout: `DIR/<db>/<finger>_<impression>.<ext>`. Genuine pairs are
//! impressions of the same finger in the same db, impostor pairs are
//! impressions of different fingers in the same db; every unordered pair is
//! compared once. A comparison decides "match" when `score >= threshold`.

use super::matcher::{compare_prepared, Params, Prepared};
use super::{FormatError, Template};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

/// Why a folder could not be evaluated.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A template file is malformed.
    #[error("{path}: {source}")]
    Format {
        /// The template file.
        path: PathBuf,
        /// The defect.
        source: FormatError,
    },
    /// A file name is not `<finger>_<impression>.<ext>`.
    #[error("{path}: file name is not <finger>_<impression>.<ext>")]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// No genuine or no impostor pair could be formed.
    #[error("{path}: no genuine or no impostor pairs (need at least two fingers with two impressions in one db)")]
    NoPairs {
        /// The folder.
        path: PathBuf,
    },
}

/// One template of an evaluation set.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Which db folder.
    pub db: String,
    /// Finger identifier (file name before `_`).
    pub finger: String,
    /// Impression identifier (file name after `_`).
    pub impression: String,
    /// Where it came from.
    pub path: PathBuf,
    /// The raw record.
    pub bytes: Vec<u8>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads every template of an FVC-style folder and checks that each parses.
pub fn load_dir(dir: &Path) -> Result<Vec<Sample>, EvalError> {
    let mut dbs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dbs.sort();
    let mut out = Vec::new();
    for db in dbs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&db)
            .map_err(io(&db))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let Some((finger, impression)) = stem.split_once('_') else {
                return Err(EvalError::BadName { path: f });
            };
            let bytes = std::fs::read(&f).map_err(io(&f))?;
            if let Err(source) = Template::from_bytes(&bytes) {
                return Err(EvalError::Format { path: f, source });
            }
            out.push(Sample {
                db: db
                    .file_name()
                    .and_then(|s| s.to_str())
                    .unwrap_or("")
                    .to_string(),
                finger: finger.to_string(),
                impression: impression.to_string(),
                path: f.clone(),
                bytes,
            });
        }
    }
    Ok(out)
}

/// Scores of all genuine and impostor comparisons of a set.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// Genuine comparison scores.
    pub genuine: Vec<f32>,
    /// Impostor comparison scores.
    pub impostor: Vec<f32>,
    /// Mean wall-clock milliseconds per comparison, decoding and preparing both templates included.
    pub ms_per_comparison: f64,
}

/// Runs every genuine and impostor comparison of `samples`, decoding both
/// records for every comparison (as a gate does).
pub fn run(samples: &[Sample], params: &Params) -> Result<Scores, EvalError> {
    let mut s = Scores::default();
    let start = Instant::now();
    for (i, a) in samples.iter().enumerate() {
        for b in samples.iter().skip(i + 1) {
            if a.db != b.db {
                continue;
            }
            let ta = Template::from_bytes(&a.bytes).map_err(|source| EvalError::Format {
                path: a.path.clone(),
                source,
            })?;
            let tb = Template::from_bytes(&b.bytes).map_err(|source| EvalError::Format {
                path: b.path.clone(),
                source,
            })?;
            let d = compare_prepared(
                &Prepared::with_params(&ta, params),
                &Prepared::with_params(&tb, params),
                params,
            );
            if a.finger == b.finger {
                s.genuine.push(d.score);
            } else {
                s.impostor.push(d.score);
            }
        }
    }
    let n = s.genuine.len() + s.impostor.len();
    if n > 0 {
        s.ms_per_comparison = start.elapsed().as_secs_f64() * 1000.0 / n as f64;
    }
    Ok(s)
}

/// Error rates of a score set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// Number of genuine comparisons.
    pub genuine: usize,
    /// Number of impostor comparisons.
    pub impostor: usize,
    /// Equal error rate (fraction).
    pub eer: f64,
    /// `(target FMR, FNMR at the lowest threshold whose FMR ≤ target, that threshold)`.
    pub fnmr_at_fmr: Vec<(f64, f64, f32)>,
    /// FNMR at the lowest threshold with no false match.
    pub zero_fmr: f64,
}

/// Lowest threshold `t` such that at most `floor(target · N)` impostor
/// scores are `>= t`.
pub fn threshold_for_fmr(impostor: &[f32], target: f64) -> f32 {
    let mut imp: Vec<f32> = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target * imp.len() as f64 + 1e-9).floor() as usize;
    match imp.get(allowed) {
        Some(&s) => next_up(s),
        None => 0.0,
    }
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let b = x.to_bits();
    f32::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

/// Fraction of `scores` below `t` (false non-match rate for genuine scores).
pub fn below(scores: &[f32], t: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|&&s| s < t).count() as f64 / scores.len() as f64
}

/// Fraction of `scores` at or above `t` (false match rate for impostor scores).
pub fn at_or_above(scores: &[f32], t: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len() as f64
}

/// Equal error rate: over all candidate thresholds, the mean of FMR and FNMR
/// where they are closest.
pub fn eer(genuine: &[f32], impostor: &[f32]) -> f64 {
    let mut ts: Vec<f32> = genuine.iter().chain(impostor.iter()).copied().collect();
    ts.sort_by(|a, b| a.total_cmp(b));
    ts.dedup();
    let mut g = genuine.to_vec();
    g.sort_by(|a, b| a.total_cmp(b));
    let mut im = impostor.to_vec();
    im.sort_by(|a, b| a.total_cmp(b));
    let (ng, ni) = (g.len().max(1) as f64, im.len().max(1) as f64);
    let mut best = (f64::MAX, 1.0);
    for &t in ts
        .iter()
        .chain(std::iter::once(&next_up(*ts.last().unwrap_or(&0.0))))
    {
        let fnmr = g.partition_point(|&s| s < t) as f64 / ng;
        let fmr = (im.len() - im.partition_point(|&s| s < t)) as f64 / ni;
        let gap = (fmr - fnmr).abs();
        if gap < best.0 {
            best = (gap, (fmr + fnmr) / 2.0);
        }
    }
    best.1
}

/// Computes the contract's error rates for the given FMR targets.
pub fn rates(genuine: &[f32], impostor: &[f32], targets: &[f64]) -> Rates {
    let fnmr_at_fmr = targets
        .iter()
        .map(|&t| {
            let th = threshold_for_fmr(impostor, t);
            (t, below(genuine, th), th)
        })
        .collect();
    let zt = threshold_for_fmr(impostor, 0.0);
    Rates {
        genuine: genuine.len(),
        impostor: impostor.len(),
        eer: eer(genuine, impostor),
        fnmr_at_fmr,
        zero_fmr: below(genuine, zt),
    }
}

/// One row of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationEntry {
    /// Target false-match rate (fraction).
    pub target_fmr: f64,
    /// Decision threshold: match when `score >= threshold`.
    pub threshold: f32,
    /// FNMR measured at this threshold on the calibration data.
    pub fnmr: f64,
}

/// A calibration table: decision thresholds per target false-match rate,
/// produced from data by `gatectl fingerprint calibrate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationTable {
    /// Matcher identification the table was produced with.
    pub matcher: String,
    /// Target FMR used when none is configured.
    pub default_target_fmr: f64,
    /// Genuine comparisons behind the table.
    pub genuine_comparisons: usize,
    /// Impostor comparisons behind the table.
    pub impostor_comparisons: usize,
    /// Rows, by decreasing target FMR.
    pub threshold: Vec<CalibrationEntry>,
}

impl CalibrationTable {
    /// Builds a table from score sets for the given target FMRs.
    pub fn from_scores(
        genuine: &[f32],
        impostor: &[f32],
        targets: &[f64],
        default_target_fmr: f64,
    ) -> Self {
        CalibrationTable {
            matcher: MATCHER_ID.to_string(),
            default_target_fmr,
            genuine_comparisons: genuine.len(),
            impostor_comparisons: impostor.len(),
            threshold: targets
                .iter()
                .map(|&t| {
                    let th = threshold_for_fmr(impostor, t);
                    CalibrationEntry {
                        target_fmr: t,
                        threshold: th,
                        fnmr: below(genuine, th),
                    }
                })
                .collect(),
        }
    }

    /// Threshold for a target FMR: the row with the largest target not above
    /// it (the conservative choice), or `None` when every row is above it.
    pub fn threshold_for(&self, target_fmr: f64) -> Option<f32> {
        self.threshold
            .iter()
            .filter(|e| e.target_fmr <= target_fmr * (1.0 + 1e-9))
            .max_by(|a, b| a.target_fmr.total_cmp(&b.target_fmr))
            .map(|e| e.threshold)
    }
}

/// Identifies the matcher algorithm and version a calibration belongs to.
pub const MATCHER_ID: &str = "echannel-edge-expansion-1";
