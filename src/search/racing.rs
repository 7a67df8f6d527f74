//! Racing: which candidates earn more training seeds (issue 19, item 5).
//!
//! A candidate is judged by its *paired differences* from the baseline:
//! at each of its seeds, its fitness minus the baseline's fitness at the
//! same seed (common random numbers: the seed-to-seed noise they share
//! cancels). A failed run counts at the fitness floor, and a failed
//! candidate stops (the evaluator stops a candidate at its first failing
//! seed).
//!
//! **The rule** (an upper-confidence-bound race on the paired
//! differences). Seeds come in rungs of 1, 2, 4, … seeds, the last one
//! capped at `max_seeds` ([`next_rung`]). With `σ` the pooled
//! within-candidate standard deviation of the paired differences
//! ([`pooled_sd`]) and the reach of a candidate with `n` seeds
//! `h(n) = Z · σ / √n` ([`Z`] = 2):
//!
//! * the *bar* is the highest lower bound `mean − h(n)` over the
//!   candidates that did not fail: the current best, counted at what it
//!   has surely shown;
//! * a candidate is *within reach* when its upper bound `mean + h(n)` is
//!   at least the bar: it earns the next rung, up to `max_seeds`;
//! * a candidate whose upper bound is below the bar is *clearly worse*
//!   and stops where it is.
//!
//! The candidate that sets the bar is always within reach of it, so the
//! best keeps earning seeds until it has `max_seeds`. While no two seeds
//! of a candidate have been seen (fewer than [`MIN_DF`] degrees of freedom
//! pooled) σ is unknown, every reach is unbounded and every candidate that
//! did not fail earns its next rung: no candidate is dropped on a guess.
//!
//! Everything here is a pure function of the differences it is given, in
//! the order given (sums are taken in that order, so the caller passes a
//! deterministic order, e.g. by key): the engine runs one rung at a time
//! after a generation's first pass, as a barrier, so what earns seeds does
//! not depend on which worker finished first.
//!
//! Imports nothing of the crate: the engine turns records into
//! [`Entrant`]s and [`Call`]s into jobs.

/// How many reach units (`σ/√n`) separate "within reach" from "clearly
/// worse": 2 (one-sided ≈ 97.7 % under a normal model for each bound).
pub const Z: f64 = 2.0;

/// Pooled degrees of freedom needed before σ is estimated at all.
pub const MIN_DF: usize = 2;

/// One candidate in the race.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entrant<'a> {
    /// Paired differences from the baseline at the candidate's seeds, in
    /// seed order (a failed run's difference is the floor minus the
    /// baseline).
    pub diffs: &'a [f64],
    /// A run of the candidate failed: it stops.
    pub failed: bool,
    /// Whether it may earn seeds now (e.g. it is in the population or the
    /// hall of fame); every entrant counts for σ and the bar.
    pub eligible: bool,
}

impl Entrant<'_> {
    /// The mean paired difference (what selection reads); NaN without
    /// seeds.
    pub fn mean(&self) -> f64 {
        mean(self.diffs)
    }

    fn counts(&self) -> bool {
        !self.failed && !self.diffs.is_empty() && self.diffs.iter().all(|d| d.is_finite())
    }
}

/// What the race decides for one entrant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Train it up to this many seeds in all (the next rung).
    More(usize),
    /// It keeps the seeds it has.
    Stay(Why),
}

/// Why an entrant earns no more seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A run failed (or it has no finite difference).
    Failed,
    /// It already has `max_seeds` seeds.
    Full,
    /// Its upper bound is below the bar: clearly worse than the best.
    OutOfReach,
    /// Within reach, but not eligible now.
    Ineligible,
}

/// The state of the race: σ and the bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    /// Pooled σ of the paired differences; `None` before [`MIN_DF`].
    pub sd: Option<f64>,
    /// The highest lower bound (−∞ while σ is unknown or nobody counts).
    pub bar: f64,
}

impl Standing {
    /// The reach `h(n) = Z·σ/√n` (∞ while σ is unknown).
    pub fn reach(&self, n: usize) -> f64 {
        match self.sd {
            Some(sd) if n > 0 => Z * sd / (n as f64).sqrt(),
            _ => f64::INFINITY,
        }
    }
}

/// The rung after `n` seeds: `min(2n, max_seeds)`, or `None` when `n` is
/// already `max_seeds` (or more). A candidate with no seed starts at 1.
pub fn next_rung(n: usize, max_seeds: usize) -> Option<usize> {
    (n < max_seeds).then(|| (2 * n).clamp(1, max_seeds))
}

/// The seed counts a candidate passes through: 1, 2, 4, …, `max_seeds`.
pub fn rungs(max_seeds: usize) -> Vec<usize> {
    std::iter::successors(next_rung(0, max_seeds), |&n| next_rung(n, max_seeds)).collect()
}

/// The pooled sample standard deviation of the paired differences:
/// `√(Σ_c Σ_i (d_ci − mean_c)² / Σ_c (n_c − 1))` over the entrants that
/// count (not failed, all differences finite) with at least two seeds;
/// `None` when the pooled degrees of freedom are fewer than [`MIN_DF`].
pub fn pooled_sd(entrants: &[Entrant]) -> Option<f64> {
    let (mut ss, mut df) = (0.0f64, 0usize);
    for e in entrants.iter().filter(|e| e.counts() && e.diffs.len() >= 2) {
        let m = e.mean();
        ss += e.diffs.iter().map(|d| (d - m) * (d - m)).sum::<f64>();
        df += e.diffs.len() - 1;
    }
    (df >= MIN_DF).then(|| (ss / df as f64).sqrt())
}

/// The standing of the race over `entrants` (see the module docs).
pub fn standing(entrants: &[Entrant]) -> Standing {
    let sd = pooled_sd(entrants);
    let mut s = Standing {
        sd,
        bar: f64::NEG_INFINITY,
    };
    if sd.is_some() {
        s.bar = entrants
            .iter()
            .filter(|e| e.counts())
            .map(|e| e.mean() - s.reach(e.diffs.len()))
            .fold(f64::NEG_INFINITY, f64::max);
    }
    s
}

/// One [`Call`] per entrant, in order, with the standing they were made
/// against.
pub fn race(entrants: &[Entrant], max_seeds: usize) -> (Standing, Vec<Call>) {
    let s = standing(entrants);
    let calls = entrants.iter().map(|e| call(&s, e, max_seeds)).collect();
    (s, calls)
}

fn call(s: &Standing, e: &Entrant, max_seeds: usize) -> Call {
    let n = e.diffs.len();
    if !e.counts() {
        return Call::Stay(Why::Failed);
    }
    let Some(to) = next_rung(n, max_seeds) else {
        return Call::Stay(Why::Full);
    };
    if e.mean() + s.reach(n) < s.bar {
        return Call::Stay(Why::OutOfReach);
    }
    if !e.eligible {
        return Call::Stay(Why::Ineligible);
    }
    Call::More(to)
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(diffs: &[f64]) -> Entrant<'_> {
        Entrant {
            diffs,
            failed: false,
            eligible: true,
        }
    }

    #[test]
    fn rungs_double_up_to_the_cap() {
        assert_eq!(rungs(1), vec![1]);
        assert_eq!(rungs(4), vec![1, 2, 4]);
        assert_eq!(rungs(6), vec![1, 2, 4, 6]);
        assert_eq!(rungs(8), vec![1, 2, 4, 8]);
        assert_eq!(next_rung(0, 3), Some(1));
        assert_eq!(next_rung(2, 3), Some(3));
        assert_eq!(next_rung(3, 3), None);
        assert_eq!(next_rung(5, 3), None);
    }

    #[test]
    fn the_pooled_sd_is_the_within_candidate_spread() {
        // Two candidates: [1, 3] (ss 2, df 1) and [0, 0, 3] (ss 6, df 2):
        // √(8 / 3). A one-seed candidate and a failed one add nothing.
        let failed = Entrant {
            diffs: &[100.0, -100.0],
            failed: true,
            eligible: true,
        };
        let es = [at(&[1.0, 3.0]), at(&[0.0, 0.0, 3.0]), at(&[7.0]), failed];
        let sd = pooled_sd(&es).unwrap();
        assert!((sd - (8.0f64 / 3.0).sqrt()).abs() < 1e-15, "{sd}");
        // One degree of freedom is not enough.
        assert_eq!(pooled_sd(&[at(&[1.0, 3.0]), at(&[2.0])]), None);
        // A non-finite difference keeps its candidate out.
        assert_eq!(pooled_sd(&[at(&[1.0, f64::NAN, 2.0])]), None);
    }

    #[test]
    fn without_a_spread_everyone_alive_earns_the_next_rung() {
        let failed = Entrant {
            diffs: &[-0.1],
            failed: true,
            eligible: true,
        };
        let es = [at(&[0.01]), at(&[-0.05]), failed, at(&[])];
        let (s, calls) = race(&es, 4);
        assert_eq!(s.sd, None);
        assert_eq!(s.bar, f64::NEG_INFINITY);
        assert_eq!(
            calls,
            vec![
                Call::More(2),
                Call::More(2),
                Call::Stay(Why::Failed),
                Call::Stay(Why::Failed),
            ]
        );
    }

    /// σ = 0.01 (pooled from a and b, each with sample sd 0.01), Z = 2,
    /// h(1) = 0.02, h(2) ≈ 0.01414:
    /// a (n 2, mean 0.02): lower bound ≈ 0.00586, the bar;
    /// b (n 2, mean 0.005): upper ≈ 0.0191 ≥ bar: 4 seeds;
    /// c [-0.01]: upper 0.01 ≥ bar: 2 seeds;
    /// d [-0.02]: upper 0 < bar: clearly worse, stops.
    #[test]
    fn a_clearly_worse_candidate_stops_and_one_within_reach_goes_on() {
        let delta = 0.005 * 2f64.sqrt();
        let a = [0.02 - delta, 0.02 + delta];
        let b = [0.005 - delta, 0.005 + delta];
        let es = [at(&a), at(&b), at(&[-0.01]), at(&[-0.02])];
        let (s, calls) = race(&es, 4);
        let sd = s.sd.unwrap();
        assert!((sd - 0.01).abs() < 1e-12, "{sd}");
        assert!((s.bar - (0.02 - 0.02 / 2f64.sqrt())).abs() < 1e-12);
        assert_eq!(
            calls,
            vec![
                Call::More(4),
                Call::More(4),
                Call::More(2),
                Call::Stay(Why::OutOfReach),
            ]
        );
        // With max_seeds 2, a and b are full.
        let (_, calls) = race(&es, 2);
        assert_eq!(calls[0], Call::Stay(Why::Full));
        assert_eq!(calls[1], Call::Stay(Why::Full));
        assert_eq!(calls[2], Call::More(2));
    }

    #[test]
    fn the_bar_is_the_best_lower_bound() {
        // σ from two candidates with the same spread: d = m ± 0.01 gives
        // s = 0.01·√2 each, so σ = 0.01·√2 and h(2) = 2 · 0.01 = 0.02.
        let a = [0.05, 0.07]; // mean 0.06, lower bound 0.04
        let b = [0.00, 0.02]; // mean 0.01, upper 0.03 < 0.04: out of reach
        let c = [0.03]; // n 1: h(1) = 0.02·√2 ≈ 0.0283; upper ≈ 0.0583 ≥ 0.04
        let d = [0.011]; // upper ≈ 0.0393 < 0.04: out of reach
        let es = [at(&a), at(&b), at(&c), at(&d)];
        let (s, calls) = race(&es, 8);
        let sd = s.sd.unwrap();
        assert!((sd - 0.01 * 2f64.sqrt()).abs() < 1e-12, "{sd}");
        assert!((s.reach(2) - 0.02).abs() < 1e-12);
        assert!((s.bar - 0.04).abs() < 1e-12, "{}", s.bar);
        assert_eq!(
            calls,
            vec![
                Call::More(4),
                Call::Stay(Why::OutOfReach),
                Call::More(2),
                Call::Stay(Why::OutOfReach),
            ]
        );
    }

    #[test]
    fn ineligible_entrants_set_the_bar_but_earn_nothing() {
        let a = [0.05, 0.07];
        let b = [0.00, 0.02];
        let past = Entrant {
            diffs: &a,
            failed: false,
            eligible: false,
        };
        let (s, calls) = race(&[past, at(&b)], 8);
        assert!((s.bar - 0.04).abs() < 1e-12);
        assert_eq!(
            calls,
            vec![Call::Stay(Why::Ineligible), Call::Stay(Why::OutOfReach)]
        );
        // Without it the bar is b's own lower bound, and b goes on.
        let (_, calls) = race(&[at(&b), at(&[0.0, 0.01, 0.02])], 8);
        assert_eq!(calls[0], Call::More(4));
    }

    #[test]
    fn the_best_always_earns_seeds_until_it_is_full() {
        // Whatever the differences, the entrant with the highest lower
        // bound is within reach of itself.
        let cases: [&[f64]; 4] = [&[0.1, 0.3], &[-0.2, 0.0, 0.1], &[0.05], &[0.2, 0.2, 0.2]];
        let es: Vec<Entrant> = cases.iter().map(|d| at(d)).collect();
        let (s, calls) = race(&es, 3);
        let best = (0..es.len())
            .max_by(|&i, &j| {
                let lb = |k: usize| es[k].mean() - s.reach(es[k].diffs.len());
                lb(i).total_cmp(&lb(j))
            })
            .unwrap();
        assert!(matches!(calls[best], Call::More(_) | Call::Stay(Why::Full)));
    }
}
