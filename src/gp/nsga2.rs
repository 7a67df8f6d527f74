//! NSGA-II (Deb et al. 2002; DEAP's `selNSGA2`): fast non-dominated
//! sorting, crowding distance, and the selection that fills the next
//! population front by front, breaking the last front by crowding.
//!
//! Deterministic: fronts list indices in increasing order, and ties in
//! crowding distance go to the lower index. Objectives are compared by
//! their weighted values ([`Objectives::weighted_at`]), so each may be
//! maximised or minimised and NaN is the worst value.

use super::objectives::Objectives;

/// Pareto fronts, best first, each in increasing index order. Sorting
/// stops once the fronts hold at least `k` individuals (all of them when
/// `k >= fits.len()`).
pub fn sort_nondominated<F: AsRef<[f64]>>(
    objectives: &Objectives,
    fits: &[F],
    k: usize,
) -> Vec<Vec<usize>> {
    let n = fits.len();
    let want = k.min(n);
    if want == 0 {
        return Vec::new();
    }
    let mut dominated_by = vec![0usize; n];
    let mut dominates: Vec<Vec<usize>> = vec![Vec::new(); n];
    for p in 0..n {
        for q in p + 1..n {
            let (a, b) = (fits[p].as_ref(), fits[q].as_ref());
            if objectives.dominates(a, b) {
                dominates[p].push(q);
                dominated_by[q] += 1;
            } else if objectives.dominates(b, a) {
                dominates[q].push(p);
                dominated_by[p] += 1;
            }
        }
    }
    let mut fronts: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&p| dominated_by[p] == 0).collect();
    let mut taken = 0;
    while !current.is_empty() && taken < want {
        taken += current.len();
        let mut next = Vec::new();
        for &p in &current {
            for &q in &dominates[p] {
                dominated_by[q] -= 1;
                if dominated_by[q] == 0 {
                    next.push(q);
                }
            }
        }
        next.sort_unstable();
        fronts.push(std::mem::replace(&mut current, next));
    }
    fronts
}

/// Crowding distance of each member of `front` (same order), as DEAP
/// computes it: per objective, sort the front by value; the two ends get
/// +∞; every other member adds (next − previous) / (objectives · range).
/// An objective whose values are all equal adds nothing. Non-finite values
/// (failures) stay out of the range; a member next to one gets +∞.
pub fn crowding_distance<F: AsRef<[f64]>>(
    objectives: &Objectives,
    fits: &[F],
    front: &[usize],
) -> Vec<f64> {
    let m = front.len();
    let mut dist = vec![0.0f64; m];
    if m == 0 {
        return dist;
    }
    let nobj = objectives.len() as f64;
    for obj in 0..objectives.len() {
        let value = |pos: usize| objectives.weighted_at(fits[front[pos]].as_ref(), obj);
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| value(a).total_cmp(&value(b)).then(front[a].cmp(&front[b])));
        dist[order[0]] = f64::INFINITY;
        dist[order[m - 1]] = f64::INFINITY;
        let finite: Vec<f64> = order
            .iter()
            .map(|&p| value(p))
            .filter(|v| v.is_finite())
            .collect();
        let range = match (finite.first(), finite.last()) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => 0.0,
        };
        for w in order.windows(3) {
            let gap = value(w[2]) - value(w[0]);
            if !gap.is_finite() {
                dist[w[1]] = f64::INFINITY;
            } else if range > 0.0 && range.is_finite() {
                dist[w[1]] += gap / (nobj * range);
            }
        }
    }
    dist
}

/// DEAP's `selNSGA2`: whole fronts while they fit, then the most isolated
/// members (largest crowding distance, lower index on ties) of the first
/// front that does not. Returns `min(k, fits.len())` distinct indices.
pub fn sel_nsga2<F: AsRef<[f64]>>(objectives: &Objectives, fits: &[F], k: usize) -> Vec<usize> {
    let fronts = sort_nondominated(objectives, fits, k);
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    for front in &fronts {
        if chosen.len() + front.len() <= k {
            chosen.extend(front);
            continue;
        }
        let dist = crowding_distance(objectives, fits, front);
        let mut order: Vec<usize> = (0..front.len()).collect();
        order.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]).then(front[a].cmp(&front[b])));
        let room = k - chosen.len();
        chosen.extend(order[..room].iter().map(|&p| front[p]));
        break;
    }
    chosen
}
