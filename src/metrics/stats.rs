//! Statistics over repeated runs (one value per seed): the mean with a
//! Student-t 95% confidence interval, and Welch's unequal-variance t-test.
//! Both agree with scipy (`stats.t.interval`, `stats.ttest_ind(...,
//! equal_var=False)`) on the committed cases to 1e-9.
//!
//! Undefined quantities are NaN (or `None`), never errors: one run has a mean
//! but no spread, so its `sd` and `ci95` are NaN (write them as JSON
//! `null`). A point "interval" would claim a certainty that one seed does not
//! give. Non-finite inputs (a failed run's NaN) propagate; filter them first
//! if failures are scored separately.

use super::tdist::{student_t_quantile, student_t_sf};

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
    fn identical_samples_give_p_one() {
        assert_eq!(welch_p(&[1.0, 2.0], &[1.0, 2.0]), Some(1.0));
    }
}
