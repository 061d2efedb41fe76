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
//! 2. **Consolidation by expansion.** From each root the pairing grows along
//!    agreeing edges, cheapest edge first, so that only minutiae whose
//!    relations to already-paired minutiae agree are paired. Every further
//!    agreeing edge between two already-paired minutiae counts as *support*.
//!    Because only *local* geometry is compared, elastic distortion that
//!    bends the whole print does not break a pairing, while the requirement
//!    that pairs be chained by agreeing edges keeps chance pairings small.
//! 3. **Score.** The consolidation with the most support wins. Its evidence
//!    is `support × paired / sqrt((overlap_a + c)(overlap_b + c))`, where the
//!    overlaps count the minutiae of each print lying in the area both prints
//!    cover (found through the rigid transform fitted to the pairs): missing
//!    area is not held against a genuine pair, and the constant `c` keeps a
//!    tiny overlap from looking like a perfect one. The evidence `e` is
//!    mapped to `e / (e + 10)`, a score in `[0, 1)`.
//!
//! Coordinates are rescaled to 500 dpi (197 px/cm) from the templates'
//! declared resolution, so templates from different sensors compare.
//! Angles are held in 1/256 turn, so angle differences wrap for free.

use super::{FormatError, Template};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::f32::consts::TAU;

/// Tunable parameters of the matcher; [`Params::default`] is the set the
/// calibration table belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Neighbours per minutia used to build edges.
    pub neighbours: usize,
    /// Absolute edge length tolerance in pixels at 500 dpi.
    pub length_tolerance: f32,
    /// Relative edge length tolerance (fraction of the length).
    pub length_tolerance_rel: f32,
    /// Angle tolerance for the two edge angles, in degrees.
    pub angle_tolerance_deg: f32,
    /// Number of root pairs expanded.
    pub roots: usize,
    /// Pseudo-count added to the overlap counts in the score.
    pub overlap_prior: f32,
    /// Best-supported consolidations whose overlap is measured and scored.
    pub scored: usize,
    /// Whether disjoint consolidations whose rigid transforms agree with the
    /// best one are merged into it (pairings broken by distortion or gaps).
    pub merge: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            neighbours: 8,
            length_tolerance: 10.0,
            length_tolerance_rel: 0.05,
            angle_tolerance_deg: 16.0,
            roots: 30,
            overlap_prior: 4.0,
            scored: 1,
            merge: true,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    x: f32,
    y: f32,
    /// Direction in 1/256 turn.
    dir: u8,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    to: u16,
    len: f32,
    /// Edge direction relative to the origin minutia's direction (1/256 turn).
    ref_angle: u8,
    /// Edge direction relative to the target minutia's direction (1/256 turn).
    nb_angle: u8,
}

/// A template preprocessed for matching (positions at 500 dpi, neighbour
/// edges sorted by length).
#[derive(Debug, Clone)]
pub struct Prepared {
    points: Vec<Point>,
    /// Neighbour edges of every minutia, flattened, each run sorted by length.
    edges: Vec<Edge>,
    /// Start offset into `edges` per minutia (len = points + 1).
    offsets: Vec<u32>,
    /// All edges with their origin, bucketed by reference angle
    /// ([`ANGLE_BINS`] bins) and sorted by length within a bucket.
    by_bin: Vec<Vec<(u16, Edge)>>,
}

/// Buckets of the reference-angle index (256 / 16 = 16 units = 22.5 degrees each).
const ANGLE_BINS: usize = 16;

#[inline]
fn turn_u8(rad: f32) -> u8 {
    ((rad * (256.0 / TAU)).round() as i32 & 0xff) as u8
}

#[inline]
fn adiff(a: u8, b: u8) -> f32 {
    f32::from((a.wrapping_sub(b) as i8).unsigned_abs())
}

fn edge_between(points: &[Point], i: usize, j: usize) -> Edge {
    let a = points[i];
    let b = points[j];
    let e = turn_u8((b.y - a.y).atan2(b.x - a.x));
    Edge {
        to: j as u16,
        len: (b.x - a.x).hypot(b.y - a.y),
        ref_angle: e.wrapping_sub(a.dir),
        nb_angle: e.wrapping_sub(b.dir),
    }
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
                dir: m.angle,
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
                    cand.push(((b.x - a.x).powi(2) + (b.y - a.y).powi(2), j));
                }
            }
            if k < cand.len() {
                cand.select_nth_unstable_by(k, |x, y| x.0.total_cmp(&y.0));
                cand.truncate(k);
            }
            cand.sort_by(|x, y| x.0.total_cmp(&y.0));
            edges.extend(cand.iter().map(|&(_, j)| edge_between(&points, i, j)));
        }
        offsets.push(edges.len() as u32);
        let mut by_bin: Vec<Vec<(u16, Edge)>> = vec![Vec::new(); ANGLE_BINS];
        for i in 0..n {
            let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
            for &x in edges.get(s..e).unwrap_or(&[]) {
                by_bin[usize::from(x.ref_angle) * ANGLE_BINS / 256].push((i as u16, x));
            }
        }
        for bin in &mut by_bin {
            bin.sort_by(|x, y| x.1.len.total_cmp(&y.1.len));
        }
        Prepared {
            points,
            edges,
            offsets,
            by_bin,
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
        self.edges.get(s..e).unwrap_or(&[])
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
    /// Pairs that land within 25 px of each other under the fitted rigid transform.
    pub consistent: usize,
}

/// Tolerances resolved into the units the inner loops use.
struct Tol {
    abs: f32,
    rel: f32,
    angle: f32,
}

impl Tol {
    fn new(p: &Params) -> Self {
        Tol {
            abs: p.length_tolerance,
            rel: p.length_tolerance_rel.clamp(0.0, 0.9),
            angle: (p.angle_tolerance_deg * 256.0 / 360.0).max(0.5),
        }
    }

    /// Lowest candidate length that can agree with an edge of length `l`.
    #[inline]
    fn low(&self, l: f32) -> f32 {
        l * (1.0 - self.rel) - self.abs
    }

    /// Highest candidate length that can agree with an edge of length `l`.
    #[inline]
    fn high(&self, l: f32) -> f32 {
        (l + self.abs) / (1.0 - self.rel)
    }

    /// Cost in `[0, 3)` of pairing edge `e` with `f`, or `None` outside tolerance.
    #[inline]
    fn cost(&self, e: &Edge, f: &Edge) -> Option<f32> {
        let tl = self.abs + self.rel * e.len.max(f.len);
        let dl = (e.len - f.len).abs();
        if dl > tl {
            return None;
        }
        let da = adiff(e.ref_angle, f.ref_angle);
        if da > self.angle {
            return None;
        }
        let db = adiff(e.nb_angle, f.nb_angle);
        if db > self.angle {
            return None;
        }
        Some(dl / tl + (da + db) / self.angle)
    }
}

/// Every pair of agreeing edges of two templates, grouped by the pair of
/// origin minutiae: `group(i, k)` lists `(j, l, cost)` for edges `i→j` of
/// the first template agreeing with edges `k→l` of the second.
struct AgreeTable {
    nb: usize,
    offsets: Vec<u32>,
    items: Vec<(u16, u16, f32)>,
}

impl AgreeTable {
    fn build(a: &Prepared, b: &Prepared, t: &Tol) -> Self {
        let nb = b.len();
        let mut raw: Vec<(u32, u16, u16, f32)> = Vec::with_capacity(a.edges.len() * 8);
        let width = 256 / ANGLE_BINS;
        let tol = t.angle.ceil() as usize;
        for i in 0..a.len() {
            for e in a.edges_of(i) {
                let (lo, hi) = (t.low(e.len), t.high(e.len));
                // Reference-angle bins overlapping [ref - tol, ref + tol], wrapping.
                let first = (usize::from(e.ref_angle) + 256 - tol) % 256;
                let nbins = ((first % width) + 2 * tol) / width + 1;
                for step in 0..nbins.min(ANGLE_BINS) {
                    let bin = &b.by_bin[(first / width + step) % ANGLE_BINS];
                    let start = bin.partition_point(|x| x.1.len < lo);
                    for &(k, f) in bin.iter().skip(start) {
                        if f.len > hi {
                            break;
                        }
                        if let Some(c) = t.cost(e, &f) {
                            raw.push(((i * nb) as u32 + u32::from(k), e.to, f.to, c));
                        }
                    }
                }
            }
        }
        // Counting sort by origin pair.
        let mut offsets = vec![0u32; a.len() * nb + 1];
        for r in &raw {
            offsets[r.0 as usize + 1] += 1;
        }
        for x in 1..offsets.len() {
            offsets[x] += offsets[x - 1];
        }
        let mut fill = offsets.clone();
        let mut items = vec![(0u16, 0u16, 0f32); raw.len()];
        for r in raw {
            let slot = &mut fill[r.0 as usize];
            items[*slot as usize] = (r.1, r.2, r.3);
            *slot += 1;
        }
        AgreeTable { nb, offsets, items }
    }

    fn group(&self, i: usize, k: usize) -> &[(u16, u16, f32)] {
        let key = i * self.nb + k;
        match (self.offsets.get(key), self.offsets.get(key + 1)) {
            (Some(&s), Some(&e)) => self.items.get(s as usize..e as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Local similarity of minutiae `i` and `k`: greedy one-to-one assignment
    /// of their agreeing edges, cheapest first, each worth `1 - cost/3`.
    fn local_similarity(&self, i: usize, k: usize) -> f32 {
        let g = self.group(i, k);
        match g.len() {
            0 => 0.0,
            1 => 1.0 - g[0].2 / 3.0,
            _ => {
                // Greedy: take the cheapest remaining agreement, drop every
                // other one that reuses either of its edges; no allocation.
                let n = g.len().min(64);
                let mut dead: u64 = 0;
                let mut sim = 0.0;
                loop {
                    let mut best: Option<usize> = None;
                    for (x, item) in g.iter().enumerate().take(n) {
                        if dead & (1 << x) == 0 && best.is_none_or(|b| item.2 < g[b].2) {
                            best = Some(x);
                        }
                    }
                    let Some(b) = best else { break };
                    let (bj, bl, bc) = g[b];
                    sim += 1.0 - bc / 3.0;
                    for (x, item) in g.iter().enumerate().take(n) {
                        if item.0 == bj || item.1 == bl {
                            dead |= 1 << x;
                        }
                    }
                }
                sim
            }
        }
    }
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
        o.cost.total_cmp(&self.cost)
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

fn push_candidates(table: &AgreeTable, ia: usize, ib: usize, heap: &mut BinaryHeap<Cand>) {
    for &(j, l, c) in table.group(ia, ib) {
        heap.push(Cand {
            cost: c,
            a: j,
            b: l,
        });
    }
}

fn expand(
    a: &Prepared,
    b: &Prepared,
    root: (usize, usize),
    table: &AgreeTable,
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
    push_candidates(table, root.0, root.1, &mut s.heap);
    while let Some(c) = s.heap.pop() {
        let (ia, ib) = (usize::from(c.a), usize::from(c.b));
        let pa = s.pair_a[ia];
        let pb = s.pair_b[ib];
        if pa == NONE && pb == NONE {
            s.pair_a[ia] = c.b;
            s.pair_b[ib] = c.a;
            pairs.push((c.a, c.b));
            push_candidates(table, ia, ib, &mut s.heap);
        } else if pa == c.b {
            support += 1;
        }
    }
    Expansion { pairs, support }
}

/// Least-squares rigid transform (cos, sin, tx, ty) mapping b onto a.
fn fit_rigid(a: &Prepared, b: &Prepared, pairs: &[(u16, u16)]) -> (f32, f32, f32, f32) {
    let n = pairs.len().max(1) as f32;
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
    pts.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1)));
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
    for (i, &a) in h.iter().enumerate() {
        let b = h[(i + 1) % h.len()];
        let (ex, ey) = (b.0 - a.0, b.1 - a.1);
        let l = ex.hypot(ey).max(1e-6);
        // Signed distance to the edge line; positive inside for CCW hulls.
        worst = worst.min((ex * (q.1 - a.1) - ey * (q.0 - a.0)) / l);
    }
    worst >= -margin
}

/// Margin around each print's minutiae hull that still counts as covered (pixels at 500 dpi).
const HULL_MARGIN: f32 = 15.0;

/// Compares two prepared templates.
pub fn compare_prepared(a: &Prepared, b: &Prepared, p: &Params) -> MatchDetails {
    let d = MatchDetails {
        count_a: a.len(),
        count_b: b.len(),
        ..MatchDetails::default()
    };
    if a.len() < 2 || b.len() < 2 {
        return d;
    }
    let t = Tol::new(p);
    let table = AgreeTable::build(a, b, &t);
    // 1. Local similarities, keep the best roots.
    let mut roots: Vec<(f32, u16, u16)> = Vec::with_capacity(a.len() * b.len());
    for i in 0..a.len() {
        for k in 0..b.len() {
            let s = table.local_similarity(i, k);
            if s > 0.0 {
                roots.push((s, i as u16, k as u16));
            }
        }
    }
    let nroots = p.roots.min(roots.len());
    if nroots == 0 {
        return d;
    }
    roots.select_nth_unstable_by(nroots - 1, |x, y| y.0.total_cmp(&x.0));
    roots.truncate(nroots);
    // 2. Expand each root, keep the best supported consolidation.
    let mut s = Scratch {
        pair_a: Vec::new(),
        pair_b: Vec::new(),
        heap: BinaryHeap::new(),
    };
    let mut expansions: Vec<Expansion> = roots
        .iter()
        .map(|&(_, i, k)| expand(a, b, (usize::from(i), usize::from(k)), &table, &mut s))
        .collect();
    // 3. Score the best-supported consolidations, keep the highest score.
    expansions.sort_by_key(|e| std::cmp::Reverse((e.support, e.pairs.len())));
    if p.merge && expansions.len() > 1 {
        merge_consistent(a, b, &mut expansions);
    }
    expansions
        .iter()
        .take(p.scored.max(1))
        .map(|e| score_expansion(a, b, e, p))
        .max_by(|x, y| x.score.total_cmp(&y.score))
        .unwrap_or(d)
}

/// Merges into the first (best) consolidation every other one that shares
/// no minutia with it and whose fitted rigid transform agrees with it: same
/// rotation within 20 degrees, and its minutiae land within 30 pixels of
/// where the best consolidation's transform puts them.
fn merge_consistent(a: &Prepared, b: &Prepared, expansions: &mut [Expansion]) {
    const MAX_ROT: f32 = 0.35;
    const MAX_SHIFT: f32 = 30.0;
    let Some((first, rest)) = expansions.split_first_mut() else {
        return;
    };
    if first.pairs.len() < 3 {
        return;
    }
    let t0 = fit_rigid(a, b, &first.pairs);
    let apply = |t: (f32, f32, f32, f32), q: Point| {
        (t.0 * q.x - t.1 * q.y + t.2, t.1 * q.x + t.0 * q.y + t.3)
    };
    let mut used_a = vec![false; a.len()];
    let mut used_b = vec![false; b.len()];
    for &(i, k) in &first.pairs {
        used_a[usize::from(i)] = true;
        used_b[usize::from(k)] = true;
    }
    for e in rest.iter() {
        if e.pairs.len() < 3
            || e.pairs
                .iter()
                .any(|&(i, k)| used_a[usize::from(i)] || used_b[usize::from(k)])
        {
            continue;
        }
        let t = fit_rigid(a, b, &e.pairs);
        // Angle between the two rotations: atan2(sin(r - r0), cos(r - r0)).
        let dr = (t.1 * t0.0 - t.0 * t0.1).atan2(t.0 * t0.0 + t.1 * t0.1);
        let n = e.pairs.len() as f32;
        let (cx, cy) = e.pairs.iter().fold((0.0, 0.0), |acc, &(_, k)| {
            let q = b.points[usize::from(k)];
            (acc.0 + q.x / n, acc.1 + q.y / n)
        });
        let c = Point {
            x: cx,
            y: cy,
            dir: 0,
        };
        let (p0, p1) = (apply(t0, c), apply(t, c));
        if dr.abs() > MAX_ROT || (p0.0 - p1.0).hypot(p0.1 - p1.1) > MAX_SHIFT {
            continue;
        }
        for &(i, k) in &e.pairs {
            used_a[usize::from(i)] = true;
            used_b[usize::from(k)] = true;
        }
        first.pairs.extend_from_slice(&e.pairs);
        first.support += e.support;
    }
}

/// Details and score of one consolidation: overlap through the rigid
/// transform fitted to its pairs.
fn score_expansion(a: &Prepared, b: &Prepared, e: &Expansion, p: &Params) -> MatchDetails {
    let mut d = MatchDetails {
        count_a: a.len(),
        count_b: b.len(),
        paired: e.pairs.len(),
        support: e.support,
        ..MatchDetails::default()
    };
    if e.pairs.len() >= 3 {
        let (cs, sn, tx, ty) = fit_rigid(a, b, &e.pairs);
        let tb: Vec<(f32, f32)> = b
            .points
            .iter()
            .map(|q| (cs * q.x - sn * q.y + tx, sn * q.x + cs * q.y + ty))
            .collect();
        let ha = hull(a.points.iter().map(|q| (q.x, q.y)).collect());
        let hb = hull(tb.clone());
        d.overlap_b = tb.iter().filter(|&&q| inside(&ha, q, HULL_MARGIN)).count();
        d.consistent = e
            .pairs
            .iter()
            .filter(|&&(i, k)| {
                let q = a.points[usize::from(i)];
                let r = tb[usize::from(k)];
                (q.x - r.0).hypot(q.y - r.1) <= 25.0
            })
            .count();
        d.overlap_a = a
            .points
            .iter()
            .filter(|q| inside(&hb, (q.x, q.y), HULL_MARGIN))
            .count();
    } else {
        d.overlap_a = a.len();
        d.overlap_b = b.len();
    }
    d.score = score_of(&d, p);
    d
}

/// Maps a consolidation to a similarity in `[0, 1)`.
fn score_of(d: &MatchDetails, p: &Params) -> f32 {
    if d.paired < 2 {
        return 0.0;
    }
    let m = d.paired as f32;
    let na = d.overlap_a.max(d.paired) as f32 + p.overlap_prior;
    let nb = d.overlap_b.max(d.paired) as f32 + p.overlap_prior;
    let evidence = d.support as f32 * m / (na * nb).sqrt();
    (evidence / (evidence + 10.0)).clamp(0.0, 1.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::synth::{Finger, ImpressionParams};
    use crate::fingerprint::{Minutia, MinutiaKind};

    fn finger_template(seed: u64) -> Template {
        let f = Finger::generate(seed);
        let p = ImpressionParams {
            max_rotation_deg: 0.0,
            max_shift: 0.0,
            distortion: 0.0,
            drop_rate: 0.0,
            spurious: 0.0,
            position_noise: 0.0,
            angle_noise_deg: 0.0,
        };
        f.impression(0, &p)
    }

    /// Rotates (about the image centre, in ISO terms: counter-clockwise) and shifts a template.
    fn moved(t: &Template, degrees: f32, dx: f32, dy: f32) -> Template {
        let (sn, cs) = degrees.to_radians().sin_cos();
        let mut out = t.clone();
        out.width = 1000;
        out.height = 1000;
        out.minutiae = t
            .minutiae
            .iter()
            .map(|m| {
                // Work with y up, then back to image rows.
                let (x, y) = (f32::from(m.x) - 150.0, 200.0 - f32::from(m.y));
                let (rx, ry) = (cs * x - sn * y, sn * x + cs * y);
                let turn = (degrees * 256.0 / 360.0).round() as i32;
                Minutia {
                    x: (rx + 500.0 + dx).round() as u16,
                    y: (500.0 - ry + dy).round() as u16,
                    angle: ((i32::from(m.angle) + turn).rem_euclid(256)) as u8,
                    ..*m
                }
            })
            .collect();
        out
    }

    #[test]
    fn a_template_matches_itself_and_any_rotation_of_itself() {
        let t = finger_template(3);
        let own = compare(&t, &t);
        assert_eq!(own.paired, t.minutiae.len());
        assert!(own.score > 0.8, "{own:?}");
        for deg in [17.0, 90.0, 180.0, 271.0] {
            let d = compare(&t, &moved(&t, deg, 40.0, -25.0));
            assert!(d.score > 0.75, "{deg} degrees: {d:?}");
            assert!(
                d.paired * 10 >= t.minutiae.len() * 9,
                "{deg} degrees: {d:?}"
            );
        }
    }

    #[test]
    fn partial_overlap_still_matches() {
        let t = finger_template(4);
        // Keep only the upper half of the print.
        let mut half = t.clone();
        half.minutiae.retain(|m| m.y < 200);
        let d = compare(&t, &half);
        assert!(d.overlap_a < t.minutiae.len(), "{d:?}");
        assert!(d.score > 0.6, "{d:?}");
        let other = compare(&finger_template(5), &half);
        assert!(other.score < 0.3, "{other:?}");
    }

    #[test]
    fn degenerate_templates_score_zero_without_panicking() {
        let t = finger_template(6);
        let empty = Template {
            minutiae: Vec::new(),
            ..t.clone()
        };
        let one = Template {
            minutiae: t.minutiae[..1].to_vec(),
            ..t.clone()
        };
        assert_eq!(compare(&t, &empty).score, 0.0);
        assert_eq!(compare(&one, &t).score, 0.0);
        assert_eq!(compare(&empty, &empty).score, 0.0);
        // All minutiae on one spot: no geometry, no match, no panic.
        let m = Minutia {
            x: 10,
            y: 10,
            angle: 0,
            kind: MinutiaKind::Ending,
            quality: 0,
        };
        let stacked = Template {
            minutiae: vec![m; 40],
            ..t.clone()
        };
        let d = compare(&stacked, &stacked);
        assert!((0.0..=1.0).contains(&d.score));
    }

    #[test]
    fn resolution_is_normalised() {
        let t = finger_template(7);
        // The same finger described at 1000 dpi (394 px/cm): coordinates doubled.
        let mut hi = t.clone();
        hi.resolution_x = 394;
        hi.resolution_y = 394;
        for m in &mut hi.minutiae {
            m.x *= 2;
            m.y *= 2;
        }
        assert!(compare(&t, &hi).score > 0.8);
    }

    #[test]
    fn scores_are_bounded_and_nearly_symmetric() {
        let p = ImpressionParams::default();
        for s in 0..5u64 {
            let a = Finger::generate(s).impression(1, &p);
            let b = Finger::generate(s).impression(2, &p);
            let (x, y) = (compare(&a, &b).score, compare(&b, &a).score);
            assert!((0.0..1.0).contains(&x) && (0.0..1.0).contains(&y));
            assert!((x - y).abs() < 0.15, "{x} vs {y}");
        }
    }
}
