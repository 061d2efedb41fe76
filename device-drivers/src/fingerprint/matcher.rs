//! 1:1 minutiae matcher.
//!
//! The matcher works on rotation- and translation-invariant *edges*: for
//! every minutia, the vectors to its nearest neighbours described by their
//! length and by the edge direction relative to each end's ridge direction.
//!
//! 1. **Local similarity.** Every minutia pair (one from each template) is
//!    scored by how many of their neighbour edges agree (greedy one-to-one
//!    assignment within length and angle tolerances). The best pairs become
//!    candidate *roots*.
//! 2. **Consolidation by expansion.** From each root the pairing grows
//!    breadth-first along agreeing edges, cheapest edge first, so that only
//!    minutiae whose relations to already-paired minutiae agree are paired.
//!    Because it only ever compares *local* geometry, elastic distortion that
//!    bends the whole print does not break it, while the requirement that
//!    pairs be chained by agreeing edges keeps spurious pairings apart.
//! 3. **Score.** The largest consolidated pairing is scored by the number of
//!    paired minutiae relative to the minutiae that lie in the overlapping
//!    area of both prints (estimated through the rigid transform fitted to
//!    the pairs), so partial overlap is not punished; the result is mapped
//!    into `[0, 1]`.
//!
//! Coordinates are rescaled to 500 dpi (197 px/cm) from the templates'
//! declared resolution, so templates from different sensors compare.

use super::{FormatError, Template};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::f32::consts::{PI, TAU};

/// Tunable parameters of the matcher; [`Params::default`] is the calibrated set.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Neighbours per minutia used to build edges.
    pub neighbours: usize,
    /// Absolute edge length tolerance in pixels at 500 dpi.
    pub length_tolerance: f32,
    /// Relative edge length tolerance (fraction of the length).
    pub length_tolerance_rel: f32,
    /// Angle tolerance in radians for the edge angles.
    pub angle_tolerance: f32,
    /// Number of root pairs expanded.
    pub roots: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            neighbours: 8,
            length_tolerance: 8.0,
            length_tolerance_rel: 0.08,
            angle_tolerance: PI / 8.0,
            roots: 30,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    x: f32,
    y: f32,
    dir: f32,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    to: u16,
    len: f32,
    /// Edge direction relative to the origin minutia's direction.
    ref_angle: f32,
    /// Edge direction relative to the target minutia's direction.
    nb_angle: f32,
}

/// A template preprocessed for matching (positions at 500 dpi, neighbour edges).
#[derive(Debug, Clone)]
pub struct Prepared {
    points: Vec<Point>,
    /// `neighbours` edges per minutia, flattened.
    edges: Vec<Edge>,
    /// Start offset into `edges` per minutia (len = points + 1).
    offsets: Vec<u32>,
}

#[inline]
fn wrap(a: f32) -> f32 {
    // Into (-PI, PI].
    let mut a = a % TAU;
    if a > PI {
        a -= TAU;
    } else if a <= -PI {
        a += TAU;
    }
    a
}

impl Prepared {
    /// Prepares a template with the default parameters.
    pub fn new(t: &Template) -> Self {
        Prepared::with_params(t, &Params::default())
    }

    /// Prepares a template for the given parameters.
    pub fn with_params(t: &Template, p: &Params) -> Self {
        let sx = 197.0
            / if t.resolution_x == 0 {
                197.0
            } else {
                f32::from(t.resolution_x)
            };
        let sy = 197.0
            / if t.resolution_y == 0 {
                197.0
            } else {
                f32::from(t.resolution_y)
            };
        // Y axis pointing up so that ISO's counter-clockwise angles and atan2 agree.
        let points: Vec<Point> = t
            .minutiae
            .iter()
            .map(|m| Point {
                x: f32::from(m.x) * sx,
                y: -f32::from(m.y) * sy,
                dir: m.radians(),
            })
            .collect();
        let n = points.len();
        let k = p.neighbours.min(n.saturating_sub(1));
        let mut edges = Vec::with_capacity(n * k);
        let mut offsets = Vec::with_capacity(n + 1);
        let mut cand: Vec<(f32, usize)> = Vec::with_capacity(n);
        for (i, a) in points.iter().enumerate() {
            offsets.push(edges.len() as u32);
            cand.clear();
            for (j, b) in points.iter().enumerate() {
                if j != i {
                    let d2 = (b.x - a.x).powi(2) + (b.y - a.y).powi(2);
                    cand.push((d2, j));
                }
            }
            if k < cand.len() {
                cand.select_nth_unstable_by(k, |x, y| {
                    x.0.partial_cmp(&y.0).unwrap_or(Ordering::Equal)
                });
                cand.truncate(k);
            }
            for &(d2, j) in cand.iter() {
                let b = points[j];
                let e = (b.y - a.y).atan2(b.x - a.x);
                edges.push(Edge {
                    to: j as u16,
                    len: d2.sqrt(),
                    ref_angle: wrap(e - a.dir),
                    nb_angle: wrap(e - b.dir),
                });
            }
        }
        offsets.push(edges.len() as u32);
        Prepared {
            points,
            edges,
            offsets,
        }
    }

    /// Number of minutiae.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the template has no minutiae.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn edges_of(&self, i: usize) -> &[Edge] {
        let s = self.offsets[i] as usize;
        let e = self.offsets[i + 1] as usize;
        &self.edges[s..e]
    }
}

/// Everything the matcher found for one comparison (for diagnostics and calibration).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MatchDetails {
    /// Normalised similarity in `[0, 1]`.
    pub score: f32,
    /// Paired minutiae of the best consolidation.
    pub paired: usize,
    /// Agreeing edges between paired minutiae beyond those that built the pairing.
    pub support: usize,
    /// Minutiae of the first template inside the overlap area.
    pub overlap_a: usize,
    /// Minutiae of the second template inside the overlap area.
    pub overlap_b: usize,
    /// Minutiae in the first template.
    pub count_a: usize,
    /// Minutiae in the second template.
    pub count_b: usize,
}

/// Cost of matching edge `e` (probe) to `f` (candidate), or `None` when outside tolerance.
#[inline]
fn edge_cost(e: &Edge, f: &Edge, p: &Params) -> Option<f32> {
    let tl = p.length_tolerance + p.length_tolerance_rel * e.len.max(f.len);
    let dl = (e.len - f.len).abs();
    if dl > tl {
        return None;
    }
    let da = wrap(e.ref_angle - f.ref_angle).abs();
    if da > p.angle_tolerance {
        return None;
    }
    let db = wrap(e.nb_angle - f.nb_angle).abs();
    if db > p.angle_tolerance {
        return None;
    }
    Some(dl / tl + da / p.angle_tolerance + db / p.angle_tolerance)
}

/// Local similarity of minutia `i` of `a` and `k` of `b`: greedy assignment of their edges.
fn local_similarity(a: &Prepared, i: usize, b: &Prepared, k: usize, p: &Params) -> f32 {
    let ea = a.edges_of(i);
    let eb = b.edges_of(k);
    let mut used: u64 = 0;
    let mut sim = 0.0;
    for e in ea {
        let mut best = f32::MAX;
        let mut best_j = usize::MAX;
        for (j, f) in eb.iter().enumerate().take(64) {
            if used & (1 << j) != 0 {
                continue;
            }
            if let Some(c) = edge_cost(e, f, p) {
                if c < best {
                    best = c;
                    best_j = j;
                }
            }
        }
        if best_j != usize::MAX {
            used |= 1 << best_j;
            sim += 1.0 - best / 3.0;
        }
    }
    sim
}

#[derive(Debug, PartialEq)]
struct Cand {
    cost: f32,
    a: u16,
    b: u16,
}
impl Eq for Cand {}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on cost.
        o.cost.partial_cmp(&self.cost).unwrap_or(Ordering::Equal)
    }
}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

struct Expansion {
    pairs: Vec<(u16, u16)>,
    support: usize,
}

struct Scratch {
    pair_a: Vec<u16>,
    pair_b: Vec<u16>,
    heap: BinaryHeap<Cand>,
}

const NONE: u16 = u16::MAX;

fn push_candidates(
    a: &Prepared,
    b: &Prepared,
    ia: usize,
    ib: usize,
    p: &Params,
    heap: &mut BinaryHeap<Cand>,
) {
    for e in a.edges_of(ia) {
        for f in b.edges_of(ib) {
            if let Some(c) = edge_cost(e, f, p) {
                heap.push(Cand {
                    cost: c,
                    a: e.to,
                    b: f.to,
                });
            }
        }
    }
}

fn expand(
    a: &Prepared,
    b: &Prepared,
    root: (usize, usize),
    p: &Params,
    s: &mut Scratch,
) -> Expansion {
    s.pair_a.clear();
    s.pair_a.resize(a.len(), NONE);
    s.pair_b.clear();
    s.pair_b.resize(b.len(), NONE);
    s.heap.clear();
    let mut pairs = Vec::with_capacity(a.len().min(b.len()));
    let mut support = 0;
    s.pair_a[root.0] = root.1 as u16;
    s.pair_b[root.1] = root.0 as u16;
    pairs.push((root.0 as u16, root.1 as u16));
    push_candidates(a, b, root.0, root.1, p, &mut s.heap);
    while let Some(c) = s.heap.pop() {
        let (ia, ib) = (usize::from(c.a), usize::from(c.b));
        let pa = s.pair_a[ia];
        let pb = s.pair_b[ib];
        if pa == NONE && pb == NONE {
            s.pair_a[ia] = c.b;
            s.pair_b[ib] = c.a;
            pairs.push((c.a, c.b));
            push_candidates(a, b, ia, ib, p, &mut s.heap);
        } else if pa == c.b {
            support += 1;
        }
    }
    Expansion { pairs, support }
}

/// Least-squares rigid transform (rotation + translation) mapping b onto a.
fn fit_rigid(a: &Prepared, b: &Prepared, pairs: &[(u16, u16)]) -> (f32, f32, f32, f32) {
    let n = pairs.len() as f32;
    let (mut ax, mut ay, mut bx, mut by) = (0.0, 0.0, 0.0, 0.0);
    for &(i, k) in pairs {
        let pa = a.points[usize::from(i)];
        let pb = b.points[usize::from(k)];
        ax += pa.x;
        ay += pa.y;
        bx += pb.x;
        by += pb.y;
    }
    ax /= n;
    ay /= n;
    bx /= n;
    by /= n;
    let (mut sxx, mut sxy) = (0.0f32, 0.0f32);
    for &(i, k) in pairs {
        let pa = a.points[usize::from(i)];
        let pb = b.points[usize::from(k)];
        let (u, v) = (pb.x - bx, pb.y - by);
        let (x, y) = (pa.x - ax, pa.y - ay);
        sxx += u * x + v * y;
        sxy += u * y - v * x;
    }
    let th = sxy.atan2(sxx);
    let (sn, cs) = th.sin_cos();
    let tx = ax - (cs * bx - sn * by);
    let ty = ay - (sn * bx + cs * by);
    (cs, sn, tx, ty)
}

/// Convex hull (monotone chain), counter-clockwise.
fn hull(mut pts: Vec<(f32, f32)>) -> Vec<(f32, f32)> {
    pts.sort_by(|p, q| p.partial_cmp(q).unwrap_or(Ordering::Equal));
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut h: Vec<(f32, f32)> = Vec::with_capacity(pts.len() * 2);
    for &p in &pts {
        while h.len() >= 2 && cross(h[h.len() - 2], h[h.len() - 1], p) <= 0.0 {
            h.pop();
        }
        h.push(p);
    }
    let lower = h.len() + 1;
    for &p in pts.iter().rev().skip(1) {
        while h.len() >= lower && cross(h[h.len() - 2], h[h.len() - 1], p) <= 0.0 {
            h.pop();
        }
        h.push(p);
    }
    h.pop();
    h
}

/// Whether `q` lies inside the convex polygon `h` or within `margin` of it.
fn inside(h: &[(f32, f32)], q: (f32, f32), margin: f32) -> bool {
    if h.len() < 3 {
        return h.iter().any(|p| (p.0 - q.0).hypot(p.1 - q.1) <= margin);
    }
    let mut worst = f32::MAX;
    for i in 0..h.len() {
        let a = h[i];
        let b = h[(i + 1) % h.len()];
        let (ex, ey) = (b.0 - a.0, b.1 - a.1);
        let l = ex.hypot(ey).max(1e-6);
        // Signed distance to the edge line; positive inside for CCW hulls.
        let d = (ex * (q.1 - a.1) - ey * (q.0 - a.0)) / l;
        worst = worst.min(d);
    }
    worst >= -margin
}

/// Compares two prepared templates.
pub fn compare_prepared(a: &Prepared, b: &Prepared, p: &Params) -> MatchDetails {
    let mut d = MatchDetails {
        count_a: a.len(),
        count_b: b.len(),
        ..MatchDetails::default()
    };
    if a.len() < 2 || b.len() < 2 {
        return d;
    }
    // 1. Local similarities, keep the best roots.
    let mut roots: Vec<(f32, u16, u16)> = Vec::with_capacity(a.len() * b.len());
    for i in 0..a.len() {
        for k in 0..b.len() {
            let s = local_similarity(a, i, b, k, p);
            if s > 0.0 {
                roots.push((s, i as u16, k as u16));
            }
        }
    }
    let nroots = p.roots.min(roots.len());
    if nroots == 0 {
        return d;
    }
    roots.select_nth_unstable_by(nroots - 1, |x, y| {
        y.0.partial_cmp(&x.0).unwrap_or(Ordering::Equal)
    });
    roots.truncate(nroots);
    // 2. Expand each root, keep the largest consolidation.
    let mut s = Scratch {
        pair_a: Vec::new(),
        pair_b: Vec::new(),
        heap: BinaryHeap::new(),
    };
    let mut best: Option<Expansion> = None;
    for &(_, i, k) in &roots {
        let e = expand(a, b, (usize::from(i), usize::from(k)), p, &mut s);
        let better = match &best {
            None => true,
            Some(bb) => (e.pairs.len(), e.support) > (bb.pairs.len(), bb.support),
        };
        if better {
            best = Some(e);
        }
    }
    let Some(best) = best else { return d };
    d.paired = best.pairs.len();
    d.support = best.support;
    // 3. Overlap through the rigid transform fitted to the pairs.
    if best.pairs.len() >= 3 {
        let (cs, sn, tx, ty) = fit_rigid(a, b, &best.pairs);
        let tb: Vec<(f32, f32)> = b
            .points
            .iter()
            .map(|q| (cs * q.x - sn * q.y + tx, sn * q.x + cs * q.y + ty))
            .collect();
        let ha = hull(a.points.iter().map(|q| (q.x, q.y)).collect());
        let hb = hull(tb.clone());
        const MARGIN: f32 = 15.0;
        d.overlap_b = tb.iter().filter(|&&q| inside(&ha, q, MARGIN)).count();
        d.overlap_a = a
            .points
            .iter()
            .filter(|q| inside(&hb, (q.x, q.y), MARGIN))
            .count();
    } else {
        d.overlap_a = a.len();
        d.overlap_b = b.len();
    }
    d.score = score_of(&d);
    d
}

/// Maps the consolidation to a similarity in `[0, 1]`.
fn score_of(d: &MatchDetails) -> f32 {
    let m = d.paired as f32;
    if d.paired < 2 {
        return 0.0;
    }
    let na = (d.overlap_a.max(d.paired) as f32).max(8.0);
    let nb = (d.overlap_b.max(d.paired) as f32).max(8.0);
    let frac = m * m / (na * nb);
    // Saturating evidence term: more paired minutiae = more certainty.
    let evidence = 1.0 - (-m / 8.0).exp();
    (frac.sqrt() * evidence).clamp(0.0, 1.0)
}

/// Compares two templates with the default parameters.
pub fn compare(a: &Template, b: &Template) -> MatchDetails {
    let p = Params::default();
    compare_prepared(
        &Prepared::with_params(a, &p),
        &Prepared::with_params(b, &p),
        &p,
    )
}

/// Decodes two records (any supported format) and compares them.
pub fn compare_records(a: &[u8], b: &[u8]) -> Result<MatchDetails, FormatError> {
    let ta = Template::from_bytes(a)?;
    let tb = Template::from_bytes(b)?;
    Ok(compare(&ta, &tb))
}
