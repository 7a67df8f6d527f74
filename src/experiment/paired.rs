//! Paired comparisons against a baseline: the verdicts of an experiment.
//!
//! Every activation of an experiment trains from the same initial weights
//! and in the same batch order for a given seed (common random numbers), so
//! its runs pair up with the baseline's seed by seed, and the seed-to-seed
//! noise that the two share cancels in the differences. For one metric and
//! one family of contenders (the activations compared with the baseline in
//! one table), each contender gets the mean of its seed-matched differences
//! (contender − baseline), the 95% Student-t interval of that mean, the
//! two-sided paired t-test p, the Holm-adjusted p over the family, and a
//! [`Verdict`] at [`ALPHA`] in the metric's own direction.
//!
//! Plain per-seed values in, typed outcomes out: `train`, the search's
//! final verdict and a racing rule call [`against_baseline`] (a family) or
//! [`difference`] (one contender, unadjusted) the same way.

use serde_json::{json, Value};

use crate::fitness::evaluate::finite;
use crate::metrics::{holm, paired, paired_mde, Paired};

/// The level of every test and of the family-wise error rate.
pub const ALPHA: f64 = 0.05;
/// The power at which the minimum detectable effect is stated.
pub const POWER: f64 = 0.8;

/// A contender against the baseline on one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Holm p < α and the difference goes the metric's good way.
    Better,
    /// Holm p < α and the difference goes the other way.
    Worse,
    /// Holm p ≥ α, or undefined.
    NoDifference,
}

impl Verdict {
    /// The `better` of the JSON contract: `true`, `false`, or `None` (null)
    /// for no difference.
    pub fn better(self) -> Option<bool> {
        match self {
            Verdict::Better => Some(true),
            Verdict::Worse => Some(false),
            Verdict::NoDifference => None,
        }
    }

    /// `better`, `worse` or `no difference`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoDifference => "no difference",
        }
    }
}

/// One contender against the baseline on one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Difference {
    /// n seed pairs, mean difference (contender − baseline), its SD, 95%
    /// interval and the two-sided paired t-test p.
    pub test: Paired,
    /// Holm-adjusted over the family; `None` when `test.p` is.
    pub p_holm: Option<f64>,
    pub verdict: Verdict,
}

impl Difference {
    /// The smallest true difference this design detects with [`POWER`] at
    /// [`ALPHA`] (two-sided, unadjusted), from the SD of the differences
    /// and n: the resolution of the comparison. NaN with fewer than two
    /// pairs.
    pub fn mde(&self) -> f64 {
        paired_mde(self.test.sd_diff, self.test.n, ALPHA, POWER)
    }

    /// `{"mean_diff", "ci95": [lo, hi], "p", "p_holm", "n", "better"}`
    /// (undefined numbers are null; `better` is null unless p_holm < α).
    pub fn to_json(&self) -> Value {
        let t = &self.test;
        json!({
            "mean_diff": finite(t.mean_diff),
            "ci95": [finite(t.ci95.0), finite(t.ci95.1)],
            "p": t.p.map_or(Value::Null, finite),
            "p_holm": self.p_holm.map_or(Value::Null, finite),
            "n": t.n,
            "better": self.verdict.better(),
        })
    }
}

/// The seed-matched differences contender − baseline: one per position
/// where both have a value (positions are seeds, in the same order).
pub fn differences(baseline: &[Option<f64>], contender: &[Option<f64>]) -> Vec<f64> {
    baseline
        .iter()
        .zip(contender)
        .filter_map(|(b, c)| Some((*c)? - (*b)?))
        .collect()
}

/// Every contender against the baseline on one metric, as one Holm family.
/// `baseline[s]` and `contenders[i][s]` are the values at seed position
/// `s` (`None`: no value there, e.g. a failed run of a metric that a
/// failure does not score). `higher_is_better` gives the verdicts their
/// direction.
pub fn against_baseline(
    baseline: &[Option<f64>],
    contenders: &[Vec<Option<f64>>],
    higher_is_better: bool,
) -> Vec<Difference> {
    let tests: Vec<Paired> = contenders
        .iter()
        .map(|c| paired(&differences(baseline, c)))
        .collect();
    let adjusted = holm(&tests.iter().map(|t| t.p).collect::<Vec<_>>());
    tests
        .into_iter()
        .zip(adjusted)
        .map(|(test, p_holm)| Difference {
            test,
            p_holm,
            verdict: verdict(&test, p_holm, higher_is_better),
        })
        .collect()
}

/// One contender alone (a family of one: the Holm p is the p).
pub fn difference(
    baseline: &[Option<f64>],
    contender: &[Option<f64>],
    higher_is_better: bool,
) -> Difference {
    against_baseline(baseline, &[contender.to_vec()], higher_is_better)[0]
}

fn verdict(t: &Paired, p_holm: Option<f64>, higher_is_better: bool) -> Verdict {
    match p_holm {
        Some(p) if p < ALPHA && t.mean_diff != 0.0 => {
            if (t.mean_diff > 0.0) == higher_is_better {
                Verdict::Better
            } else {
                Verdict::Worse
            }
        }
        _ => Verdict::NoDifference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter().copied().map(Some).collect()
    }

    #[test]
    fn differences_pair_by_seed_and_skip_missing_values() {
        let d = differences(&[Some(1.0), None, Some(3.0)], &[Some(1.5), Some(9.0), None]);
        assert_eq!(d, vec![0.5]);
    }

    #[test]
    fn verdicts_follow_the_holm_p_and_the_metric_direction() {
        let base = some(&[0.30, 0.32, 0.31, 0.29]);
        // Consistently above the baseline by ~0.05; a noisy one; one below.
        let up = some(&[0.35, 0.37, 0.36, 0.35]);
        let noise = some(&[0.31, 0.30, 0.33, 0.28]);
        let down = some(&[0.20, 0.23, 0.21, 0.19]);
        let family = vec![up.clone(), noise, down.clone()];
        let d = against_baseline(&base, &family, true);
        assert_eq!(d[0].verdict, Verdict::Better);
        assert_eq!(d[1].verdict, Verdict::NoDifference);
        assert_eq!(d[2].verdict, Verdict::Worse);
        // Holm: at least the raw p, monotone in the raw p.
        for x in &d {
            assert!(x.p_holm.unwrap() >= x.test.p.unwrap());
        }
        // Lower is better (perplexity): the same numbers turn around.
        let l = against_baseline(&base, &family, false);
        assert_eq!(l[0].verdict, Verdict::Worse);
        assert_eq!(l[2].verdict, Verdict::Better);
        // A family of one is unadjusted.
        let one = difference(&base, &up, true);
        assert_eq!(one.p_holm, one.test.p);
        let v = d[0].to_json();
        assert_eq!(v["better"], true);
        assert_eq!(v["n"], 4);
        assert!(d[1].to_json()["better"].is_null());
    }

    #[test]
    fn a_significant_raw_p_can_lose_to_holm() {
        // Two contenders with raw p just under 0.05: Holm doubles the
        // smaller one, so neither is called.
        let base = some(&[1.0, 2.0, 3.0]);
        // Differences 0.2, 0.3, 0.4: t = 5.2 on 2 degrees of freedom.
        let a = some(&[1.2, 2.3, 3.4]);
        let p = difference(&base, &a, true).test.p.unwrap();
        assert!(p < ALPHA, "{p}");
        let d = against_baseline(&base, &[a.clone(), a], true);
        assert!(d[0].p_holm.unwrap() >= ALPHA);
        assert_eq!(d[0].verdict, Verdict::NoDifference);
    }

    #[test]
    fn one_pair_has_no_test_and_no_verdict() {
        let d = difference(&[Some(1.0)], &[Some(2.0)], true);
        assert_eq!((d.test.n, d.test.p, d.p_holm), (1, None, None));
        assert_eq!(d.verdict, Verdict::NoDifference);
        assert!(d.mde().is_nan());
        let v = d.to_json();
        assert!(v["p"].is_null() && v["ci95"][0].is_null() && v["better"].is_null());
    }
}
