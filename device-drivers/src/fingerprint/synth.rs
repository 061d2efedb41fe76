//! Seeded synthetic fingers for the simulator and for tests.
//!
//! A [`Finger`] is a seeded set of minutiae laid on a smooth ridge-flow field
//! (a loop around a core point), spaced like real minutiae at 500 dpi. Each
//! [`Finger::impression`] is a new capture: the finger lands displaced and
//! rotated, the skin stretches (a smooth elastic displacement field), the
//! sensor window crops it, minutiae are dropped and spurious ones appear,
//! positions and angles jitter, and a quality is reported. Everything is
//! derived from the seeds, so a scenario replays exactly.

use super::{Minutia, MinutiaKind, Template};
use std::f32::consts::{PI, TAU};

/// A small deterministic PRNG (SplitMix64), so that synthetic data depends
/// only on its seed and on no external crate's algorithm choices.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Approximately normal with mean 0 and the given standard deviation.
    pub fn normal(&mut self, sd: f32) -> f32 {
        // Irwin-Hall with 4 terms: variance 4/12.
        let s: f32 = (0..4).map(|_| self.unit()).sum::<f32>() - 2.0;
        s * sd * (3.0f32).sqrt()
    }
}

/// Image geometry of the synthetic sensor (500 dpi).
pub const SENSOR_WIDTH: u16 = 300;
/// Image height of the synthetic sensor.
pub const SENSOR_HEIGHT: u16 = 400;

/// A synthetic finger: its master minutiae in finger coordinates (pixels at 500 dpi).
#[derive(Debug, Clone, PartialEq)]
pub struct Finger {
    /// Seed it was generated from.
    pub seed: u64,
    /// Master minutiae: x, y, direction (radians), kind.
    pub minutiae: Vec<(f32, f32, f32, MinutiaKind)>,
}

/// How one capture deviates from the master finger.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpressionParams {
    /// Maximum rotation, degrees (uniform in ±).
    pub max_rotation_deg: f32,
    /// Maximum displacement, pixels (uniform in ± on each axis).
    pub max_shift: f32,
    /// Amplitude of the elastic displacement field, pixels.
    pub distortion: f32,
    /// Probability that a real minutia is missed.
    pub drop_rate: f32,
    /// Expected number of spurious minutiae.
    pub spurious: f32,
    /// Standard deviation of position noise, pixels.
    pub position_noise: f32,
    /// Standard deviation of angle noise, degrees.
    pub angle_noise_deg: f32,
}

impl Default for ImpressionParams {
    fn default() -> Self {
        ImpressionParams {
            max_rotation_deg: 15.0,
            max_shift: 30.0,
            distortion: 6.0,
            drop_rate: 0.12,
            spurious: 4.0,
            position_noise: 2.0,
            angle_noise_deg: 6.0,
        }
    }
}

impl Finger {
    /// Generates a finger from a seed: 35 to 60 minutiae at least 14 px
    /// apart inside an elliptical print, directions following a loop-shaped
    /// ridge flow around a core.
    pub fn generate(seed: u64) -> Finger {
        let mut r = SplitMix64::new(seed ^ 0x5eed_f1a9_e000_0000);
        let target = 35 + (r.next_u64() % 26) as usize;
        let (cx, cy) = (r.range(130.0, 170.0), r.range(160.0, 220.0));
        let flow_twist = r.range(-0.6, 0.6);
        let mut minutiae: Vec<(f32, f32, f32, MinutiaKind)> = Vec::with_capacity(target);
        let mut attempts = 0;
        while minutiae.len() < target && attempts < 20_000 {
            attempts += 1;
            let x = r.range(20.0, 280.0);
            let y = r.range(20.0, 380.0);
            // Elliptical print area.
            if ((x - 150.0) / 135.0).powi(2) + ((y - 200.0) / 185.0).powi(2) > 1.0 {
                continue;
            }
            if minutiae.iter().any(|m| (m.0 - x).hypot(m.1 - y) < 14.0) {
                continue;
            }
            // Loop flow: tangent to circles around the core, bending to
            // horizontal ridges far below it.
            let (dx, dy) = (x - cx, y - cy);
            let tangent = dy.atan2(dx) + PI / 2.0;
            let w = (dy / 150.0).clamp(0.0, 1.0);
            let flow = tangent * (1.0 - w) + flow_twist * w;
            // A minutia points along the ridge, either way.
            let dir =
                (flow + if r.unit() < 0.5 { 0.0 } else { PI } + r.normal(0.1)).rem_euclid(TAU);
            let kind = if r.unit() < 0.55 {
                MinutiaKind::Ending
            } else {
                MinutiaKind::Bifurcation
            };
            minutiae.push((x, y, dir, kind));
        }
        Finger { seed, minutiae }
    }

    /// One capture of this finger as a template at 500 dpi on a 300×400 sensor.
    pub fn impression(&self, seed: u64, p: &ImpressionParams) -> Template {
        let mut r = SplitMix64::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ self.seed);
        let rot = r
            .range(-p.max_rotation_deg, p.max_rotation_deg)
            .to_radians();
        let (tx, ty) = (
            r.range(-p.max_shift, p.max_shift),
            r.range(-p.max_shift, p.max_shift),
        );
        // Elastic field: three Gaussian bumps of random displacement.
        let bumps: Vec<(f32, f32, f32, f32)> = (0..3)
            .map(|_| {
                (
                    r.range(0.0, 300.0),
                    r.range(0.0, 400.0),
                    r.normal(p.distortion),
                    r.normal(p.distortion),
                )
            })
            .collect();
        let (sn, cs) = rot.sin_cos();
        let (cx, cy) = (150.0, 200.0);
        let warp = |x: f32, y: f32| -> (f32, f32) {
            let (mut wx, mut wy) = (x, y);
            for &(bx, by, ax, ay) in &bumps {
                let g = (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * 90.0f32.powi(2))).exp();
                wx += ax * g;
                wy += ay * g;
            }
            // Rotation about the sensor centre (y down: clockwise on screen
            // is counter-clockwise in ISO angle terms), then shift.
            let (dx, dy) = (wx - cx, wy - cy);
            (cx + cs * dx + sn * dy + tx, cy - sn * dx + cs * dy + ty)
        };
        let mut out: Vec<Minutia> = Vec::with_capacity(self.minutiae.len() + 8);
        let quality = (90.0 - 60.0 * p.drop_rate - p.distortion).clamp(10.0, 100.0) as u8;
        for &(x, y, dir, kind) in &self.minutiae {
            if r.unit() < p.drop_rate {
                continue;
            }
            let (wx, wy) = warp(x, y);
            // Local direction change of the warp, measured along the minutia direction.
            let (ex, ey) = warp(x + 4.0 * dir.cos(), y - 4.0 * dir.sin());
            let ndir = (-(ey - wy)).atan2(ex - wx) + r.normal(p.angle_noise_deg.to_radians());
            let (nx, ny) = (
                wx + r.normal(p.position_noise),
                wy + r.normal(p.position_noise),
            );
            push_minutia(&mut out, nx, ny, ndir, kind, quality);
        }
        let spurious = (p.spurious + r.normal(p.spurious.sqrt())).round().max(0.0) as usize;
        for _ in 0..spurious {
            let kind = if r.unit() < 0.5 {
                MinutiaKind::Ending
            } else {
                MinutiaKind::Bifurcation
            };
            push_minutia(
                &mut out,
                r.range(10.0, 290.0),
                r.range(10.0, 390.0),
                r.range(0.0, TAU),
                kind,
                quality / 2,
            );
        }
        Template {
            width: SENSOR_WIDTH,
            height: SENSOR_HEIGHT,
            resolution_x: 197,
            resolution_y: 197,
            position: 1,
            quality,
            minutiae: out,
        }
    }
}

fn push_minutia(out: &mut Vec<Minutia>, x: f32, y: f32, dir: f32, kind: MinutiaKind, quality: u8) {
    if !(0.0..f32::from(SENSOR_WIDTH)).contains(&x)
        || !(0.0..f32::from(SENSOR_HEIGHT)).contains(&y)
        || out.len() >= 255
    {
        return;
    }
    out.push(Minutia {
        x: x as u16,
        y: y as u16,
        angle: ((dir.rem_euclid(TAU) * 256.0 / TAU).round() as u32 % 256) as u8,
        kind,
        quality,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::matcher::compare;

    #[test]
    fn same_seed_same_finger_and_impression() {
        let f = Finger::generate(7);
        assert_eq!(f, Finger::generate(7));
        assert_ne!(f, Finger::generate(8));
        let p = ImpressionParams::default();
        assert_eq!(f.impression(1, &p), f.impression(1, &p));
        assert_ne!(f.impression(1, &p), f.impression(2, &p));
        assert!((35..=60).contains(&f.minutiae.len()));
    }

    #[test]
    fn impressions_of_one_finger_match_better_than_other_fingers() {
        let p = ImpressionParams::default();
        let mut worst_genuine = f32::MAX;
        let mut best_impostor = 0.0f32;
        for s in 0..6u64 {
            let f = Finger::generate(100 + s);
            let g = Finger::generate(200 + s);
            let a = f.impression(1, &p);
            worst_genuine = worst_genuine.min(compare(&a, &f.impression(2, &p)).score);
            best_impostor = best_impostor.max(compare(&a, &g.impression(2, &p)).score);
        }
        assert!(
            worst_genuine > best_impostor,
            "genuine {worst_genuine} impostor {best_impostor}"
        );
        // Mild synthetic captures sit far from the FVC-calibrated thresholds (0.36..0.55).
        assert!(worst_genuine > 0.55, "genuine {worst_genuine}");
        assert!(best_impostor < 0.3, "impostor {best_impostor}");
    }
}
