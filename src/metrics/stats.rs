//! Statistics over repeated runs (one value per seed): the mean with a
//! Student-t 95% confidence interval, Welch's unequal-variance t-test, the
//! paired t-test on seed-matched differences with the Student-t interval of
//! the mean difference, Holm's step-down adjustment of a family of
//! p-values, and the minimum detectable effect of a paired design. All
//! agree with scipy and statsmodels (`stats.t.interval`, `stats.ttest_ind(...,
//! equal_var=False)`, `stats.ttest_rel`, `multipletests(method="holm")`,
//! and the power of `stats.nct`) on the committed cases to 1e-9.
//!
//! Undefined quantities are NaN (or `None`), never errors: one run has a mean
//! but no spread, so its `sd` and `ci95` are NaN (write them as JSON
//! `null`). A point "interval" would claim a certainty that one seed does not
//! give. Non-finite inputs (a failed run's NaN) propagate; filter them first
//! if failures are scored separately.

use super::tdist::{student_t_quantile, student_t_sf, two_sided_power};

/// Mean, sample standard deviation (n − 1 in the denominator) and the 95%
/// Student-t confidence interval of the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    /// NaN when n = 0.
    pub mean: f64,
    /// NaN when n < 2.
    pub sd: f64,
    /// `mean ∓ t₀.₉₇₅(n−1) · sd/√n`; both NaN when n < 2.
    pub ci95: (f64, f64),
}

impl Summary {
    /// Half the width of the interval (the "±" of a table); NaN when n < 2.
    pub fn half_width(&self) -> f64 {
        (self.ci95.1 - self.ci95.0) / 2.0
    }
}

/// Summarize one value per run. See the module docs for n < 2.
pub fn summarize(xs: &[f64]) -> Summary {
    let n = xs.len();
    let mean = mean(xs);
    let sd = variance(xs, mean).sqrt();
    let half = student_t_quantile(0.975, n as f64 - 1.0) * sd / (n as f64).sqrt();
    Summary {
        n,
        mean,
        sd,
        ci95: (mean - half, mean + half),
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n − 1); NaN when n < 2.
fn variance(xs: &[f64], mean: f64) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Two-sided p-value of Welch's t-test that `a` and `b` have equal means.
///
/// `None` when undefined: fewer than two values on a side, a non-finite
/// value, or both samples constant with equal means. Both constant with
/// different means gives `Some(0.0)`, as scipy does.
pub fn welch_p(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let (ma, mb) = (mean(a), mean(b));
    let va = variance(a, ma) / a.len() as f64;
    let vb = variance(b, mb) / b.len() as f64;
    let se2 = va + vb;
    if se2 == 0.0 {
        return (ma != mb).then_some(0.0);
    }
    let t = (ma - mb) / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    Some((2.0 * student_t_sf(t.abs(), df)).min(1.0))
}

/// The paired comparison of seed-matched runs, from their differences
/// (contender − baseline, one per seed): the mean difference, its sample
/// standard deviation, the 95% Student-t interval of the mean difference
/// and the two-sided p-value of the paired t-test that it is 0 (scipy's
/// `ttest_rel(contender, baseline)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Seed pairs.
    pub n: usize,
    /// NaN when n = 0.
    pub mean_diff: f64,
    /// NaN when n < 2.
    pub sd_diff: f64,
    /// `mean_diff ∓ t₀.₉₇₅(n−1) · sd_diff/√n`; NaN when n < 2.
    pub ci95: (f64, f64),
    /// `None` when undefined: n < 2, a non-finite difference, or all
    /// differences 0. Constant non-zero differences give `Some(0.0)`, as
    /// scipy does.
    pub p: Option<f64>,
}

/// The paired t-test and interval of `diffs` (see [`Paired`]).
pub fn paired(diffs: &[f64]) -> Paired {
    let s = summarize(diffs);
    let finite = diffs.iter().all(|d| d.is_finite());
    let p = if diffs.len() < 2 || !finite {
        None
    } else if s.sd == 0.0 {
        (s.mean != 0.0).then_some(0.0)
    } else {
        let t = s.mean / (s.sd / (diffs.len() as f64).sqrt());
        Some((2.0 * student_t_sf(t.abs(), diffs.len() as f64 - 1.0)).min(1.0))
    };
    Paired {
        n: s.n,
        mean_diff: s.mean,
        sd_diff: s.sd,
        ci95: s.ci95,
        p,
    }
}

/// Holm's step-down adjustment of one family of p-values (statsmodels'
/// `multipletests(p, method="holm")`): with the m defined p-values sorted,
/// p₍ᵢ₎ becomes max over j ≤ i of min(1, (m − j + 1) · p₍ⱼ₎), so the
/// adjusted values keep the order of the raw ones. Rejecting where the
/// adjusted p is below α controls the family-wise error rate at α. `None`
/// entries (undefined tests) stay `None` and are not counted in m.
pub fn holm(ps: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<(usize, f64)> = ps
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let m = order.len();
    let mut out = vec![None; ps.len()];
    let mut running = 0.0f64;
    for (rank, (i, p)) in order.into_iter().enumerate() {
        running = running.max(((m - rank) as f64 * p).min(1.0));
        out[i] = Some(running);
    }
    out
}

/// The minimum detectable effect of a paired design: the smallest true
/// mean difference that a two-sided paired t-test at level `alpha` finds
/// with probability `power`, given the standard deviation of the
/// differences `sd_diff` and `n` seed pairs. Exact (noncentral t, as
/// statsmodels' `TTestPower().solve_power(nobs=n, alpha, power)` times
/// `sd_diff`), not the normal approximation, which understates it badly
/// for a few seeds. NaN when n < 2, `sd_diff` is not finite, or `power`
/// is not in (alpha, 1); 0 when `sd_diff` is 0.
pub fn paired_mde(sd_diff: f64, n: usize, alpha: f64, power: f64) -> f64 {
    let valid = n >= 2
        && sd_diff.is_finite()
        && sd_diff >= 0.0
        && alpha > 0.0
        && alpha < 1.0
        && power > alpha
        && power < 1.0;
    if !valid {
        return f64::NAN;
    }
    if sd_diff == 0.0 {
        return 0.0;
    }
    let df = (n - 1) as f64;
    let c = student_t_quantile(1.0 - alpha / 2.0, df);
    let power_at = two_sided_power(c, df);
    // Noncentrality λ = effect · √n / sd; the power rises with λ.
    let mut hi = 1.0;
    while power_at(hi) < power {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if power_at(mid) < power {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi) * sd_diff / (n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_samples_are_undefined_not_errors() {
        let one = summarize(&[3.0]);
        assert_eq!(one.mean, 3.0);
        assert!(one.sd.is_nan() && one.ci95.0.is_nan() && one.half_width().is_nan());
        assert!(summarize(&[]).mean.is_nan());
        assert_eq!(welch_p(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(welch_p(&[1.0, 1.0], &[1.0, 1.0]), None);
        assert_eq!(welch_p(&[1.0, 1.0], &[2.0, 2.0]), Some(0.0));
        assert_eq!(welch_p(&[1.0, f64::NAN], &[2.0, 2.0]), None);
    }

    #[test]
    fn paired_edges_are_values() {
        let one = paired(&[0.5]);
        assert_eq!((one.n, one.mean_diff, one.p), (1, 0.5, None));
        assert!(one.ci95.0.is_nan());
        assert_eq!(paired(&[0.0, 0.0, 0.0]).p, None);
        assert_eq!(paired(&[0.2, 0.2]).p, Some(0.0));
        assert_eq!(paired(&[0.2, 0.2]).ci95, (0.2, 0.2));
        assert_eq!(paired(&[0.2, f64::NAN]).p, None);
        assert!(paired(&[]).mean_diff.is_nan());
    }

    #[test]
    fn holm_is_monotone_capped_and_skips_undefined() {
        let adj = holm(&[Some(0.01), None, Some(0.04), Some(0.03), Some(0.5)]);
        // Sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.09, 0.09 (max of
        // 0.08 and 0.09), 0.5 (max of 0.5 and 0.09).
        let want = [Some(0.04), None, Some(0.09), Some(0.09), Some(0.5)];
        for (a, w) in adj.iter().zip(want) {
            match (a, w) {
                (Some(a), Some(w)) => assert!((a - w).abs() < 1e-15, "{a} vs {w}"),
                (a, w) => assert_eq!(*a, w),
            }
        }
        assert_eq!(holm(&[Some(0.6), Some(0.7)]), vec![Some(1.0), Some(1.0)]);
        assert_eq!(holm(&[]), vec![]);
    }

    #[test]
    fn mde_edges_and_the_large_sample_limit() {
        assert!(paired_mde(1.0, 1, 0.05, 0.8).is_nan());
        assert!(paired_mde(f64::NAN, 5, 0.05, 0.8).is_nan());
        assert!(paired_mde(1.0, 5, 0.05, 0.04).is_nan());
        assert_eq!(paired_mde(0.0, 5, 0.05, 0.8), 0.0);
        // For large n the t test is the z test: (z₀.₉₇₅ + z₀.₈)·sd/√n.
        let z = (1.959963984540054 + 0.8416212335729143) / 100.0;
        assert!((paired_mde(1.0, 10_000, 0.05, 0.8) - z).abs() < 1e-4 * z);
        // Scales with the SD.
        let (a, b) = (paired_mde(1.0, 5, 0.05, 0.8), paired_mde(3.0, 5, 0.05, 0.8));
        assert!((b - 3.0 * a).abs() < 1e-12 * b);
    }

    #[test]
    fn identical_samples_give_p_one() {
        assert_eq!(welch_p(&[1.0, 2.0], &[1.0, 2.0]), Some(1.0));
    }
}
