//! Fitness values and how they compare. A fitness is a plain `f64` vector,
//! one value per objective; each objective is maximised or minimised
//! ([`Sense`], DEAP's weight sign). Comparisons use *weighted* values
//! (the value, negated for a minimised objective).
//!
//! Failures: a fitness with a NaN anywhere, or with the worst possible
//! value in any objective (−∞ maximised, +∞ minimised), is a failure, and
//! a failure weighs −∞ in *every* objective. So a candidate that failed
//! training but happens to be small never sits on a Pareto front, and all
//! failures tie. [`Objectives::worst`] is the fitness to give a failure.
//!
//! Pure: imports nothing from the crate.

use std::cmp::Ordering;

/// Whether an objective is better high or low.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sense {
    Maximize,
    Minimize,
}

/// The directions of a run's objectives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Objectives {
    senses: Vec<Sense>,
}

impl Objectives {
    pub fn new(senses: Vec<Sense>) -> Objectives {
        Objectives { senses }
    }

    /// One objective, higher is better.
    pub fn maximize() -> Objectives {
        Objectives::new(vec![Sense::Maximize])
    }

    pub fn senses(&self) -> &[Sense] {
        &self.senses
    }

    pub fn len(&self) -> usize {
        self.senses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senses.is_empty()
    }

    /// Objective `i` of `f` as a value to maximise; −∞ for a failure.
    pub fn weighted_at(&self, f: &[f64], i: usize) -> f64 {
        if self.is_failure(f) {
            f64::NEG_INFINITY
        } else {
            self.raw_weighted(f, i)
        }
    }

    /// Objective `i`, sign applied, no failure rule.
    fn raw_weighted(&self, f: &[f64], i: usize) -> f64 {
        match self.senses[i] {
            Sense::Maximize => f[i],
            Sense::Minimize => -f[i],
        }
    }

    /// All weighted values of `f`.
    pub fn weighted(&self, f: &[f64]) -> Vec<f64> {
        (0..self.len()).map(|i| self.weighted_at(f, i)).collect()
    }

    /// DEAP's fitness order: weighted values compared lexicographically
    /// (`Greater` means `a` is better).
    pub fn compare(&self, a: &[f64], b: &[f64]) -> Ordering {
        debug_assert!(a.len() == self.len() && b.len() == self.len());
        for i in 0..self.len() {
            let o = self.weighted_at(a, i).total_cmp(&self.weighted_at(b, i));
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Pareto dominance: `a` is no worse than `b` in every objective and
    /// better in at least one.
    pub fn dominates(&self, a: &[f64], b: &[f64]) -> bool {
        let mut better = false;
        for i in 0..self.len() {
            let (x, y) = (self.weighted_at(a, i), self.weighted_at(b, i));
            if x < y {
                return false;
            }
            better |= x > y;
        }
        better
    }

    /// The fitness of a failed evaluation: −∞ for maximised objectives,
    /// +∞ for minimised ones.
    pub fn worst(&self) -> Vec<f64> {
        self.senses
            .iter()
            .map(|s| match s {
                Sense::Maximize => f64::NEG_INFINITY,
                Sense::Minimize => f64::INFINITY,
            })
            .collect()
    }

    /// A fitness with a NaN or a worst-possible value in any objective.
    pub fn is_failure(&self, f: &[f64]) -> bool {
        (0..self.len()).any(|i| {
            let v = self.raw_weighted(f, i);
            v.is_nan() || v == f64::NEG_INFINITY
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_worst_lose_to_everything() {
        let o = Objectives::new(vec![Sense::Maximize, Sense::Minimize]);
        let ok = [0.5, 10.0];
        assert_eq!(o.compare(&ok, &o.worst()), Ordering::Greater);
        assert_eq!(o.compare(&ok, &[f64::NAN, 1.0]), Ordering::Greater);
        assert!(o.dominates(&ok, &o.worst()));
        assert!(o.is_failure(&o.worst()) && o.is_failure(&[f64::NAN, 0.0]));
        assert!(!o.is_failure(&ok));
        // A failed candidate is not better in its other objectives.
        assert!(o.dominates(&ok, &[f64::NAN, 0.0]));
        assert_eq!(o.compare(&[f64::NAN, 0.0], &o.worst()), Ordering::Equal);
    }

    #[test]
    fn minimised_objectives_prefer_low_values() {
        let o = Objectives::new(vec![Sense::Maximize, Sense::Minimize]);
        assert!(o.dominates(&[1.0, 3.0], &[1.0, 5.0]));
        assert!(!o.dominates(&[1.0, 5.0], &[1.0, 3.0]));
        assert!(!o.dominates(&[1.0, 3.0], &[1.0, 3.0]));
        assert!(!o.dominates(&[2.0, 5.0], &[1.0, 3.0]));
    }
}
