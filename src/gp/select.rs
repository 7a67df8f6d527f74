//! Selection operators (DEAP's `selRandom`, `selBest`, `selTournament`,
//! `selDoubleTournament`) over a population given as fitness vectors; they
//! return indices into it, so they never copy individuals.
//!
//! Ties are broken deterministically: in a tournament the first aspirant
//! drawn among the best wins (as DEAP's `max` does), and `sel_best` keeps
//! population order among equals. The draws use [`Draw`], so a seeded
//! [`crate::gp::Prng`] gives the same selection everywhere.

use std::cmp::Ordering;

use crate::error::{Error, Result, Setting};
use crate::gp::Draw;

use super::objectives::Objectives;

/// `k` indices drawn uniformly with replacement (`selRandom`).
pub fn sel_random<R: Draw + ?Sized>(rng: &mut R, n: usize, k: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    (0..k).map(|_| rng.below(n)).collect()
}

/// The `k` best, best first; equal fitnesses keep population order
/// (`selBest`).
pub fn sel_best<F: AsRef<[f64]>>(objectives: &Objectives, fits: &[F], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..fits.len()).collect();
    idx.sort_by(|&a, &b| objectives.compare(fits[b].as_ref(), fits[a].as_ref()));
    idx.truncate(k);
    idx
}

/// The best of `candidates` by fitness; among equals the first listed.
fn best_of<F: AsRef<[f64]>>(objectives: &Objectives, fits: &[F], candidates: &[usize]) -> usize {
    let mut best = candidates[0];
    for &c in &candidates[1..] {
        if objectives.compare(fits[c].as_ref(), fits[best].as_ref()) == Ordering::Greater {
            best = c;
        }
    }
    best
}

/// DEAP's `selTournament`: each pick is the best of `size` aspirants drawn
/// uniformly with replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tournament {
    size: usize,
}

impl Tournament {
    pub fn new(size: usize) -> Result<Tournament> {
        if size == 0 {
            return Err(Error::setting(format!(
                "{} must be at least 1",
                Setting::TournamentSize
            )));
        }
        Ok(Tournament { size })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// `k` winners (indices into `fits`, repeats allowed).
    pub fn select<R: Draw + ?Sized, F: AsRef<[f64]>>(
        &self,
        rng: &mut R,
        objectives: &Objectives,
        fits: &[F],
        k: usize,
    ) -> Vec<usize> {
        (0..k)
            .map_while(|_| {
                let aspirants = sel_random(rng, fits.len(), self.size);
                (!aspirants.is_empty()).then(|| best_of(objectives, fits, &aspirants))
            })
            .collect()
    }
}

/// DEAP's `selDoubleTournament` (Luke and Panait's parsimony pressure): a
/// fitness tournament of `fitness_size` and a size tournament between two
/// contestants, where the smaller wins with probability
/// `parsimony_size / 2` (in [1, 2]; equal sizes: one half). With
/// `fitness_first`, the size tournament's contestants are winners of
/// fitness tournaments; otherwise the fitness tournament's aspirants are
/// winners of size tournaments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DoubleTournament {
    fitness_size: usize,
    parsimony_size: f64,
    fitness_first: bool,
}

impl DoubleTournament {
    pub fn new(
        fitness_size: usize,
        parsimony_size: f64,
        fitness_first: bool,
    ) -> Result<DoubleTournament> {
        if fitness_size == 0 {
            return Err(Error::setting(format!(
                "{} (the fitness tournament's) must be at least 1",
                Setting::TournamentSize
            )));
        }
        if !(1.0..=2.0).contains(&parsimony_size) {
            return Err(Error::setting(format!(
                "{} (the parsimony tournament's size) must be between 1 and 2, not {parsimony_size}",
                Setting::Parsimony
            )));
        }
        Ok(DoubleTournament {
            fitness_size,
            parsimony_size,
            fitness_first,
        })
    }

    /// `k` winners; `sizes[i]` is the node count of individual `i`.
    pub fn select<R: Draw + ?Sized, F: AsRef<[f64]>>(
        &self,
        rng: &mut R,
        objectives: &Objectives,
        fits: &[F],
        sizes: &[usize],
        k: usize,
    ) -> Vec<usize> {
        assert_eq!(fits.len(), sizes.len(), "one size per individual");
        if fits.is_empty() {
            return Vec::new();
        }
        let n = fits.len();
        (0..k)
            .map(|_| {
                if self.fitness_first {
                    let mut pick = |r: &mut R| {
                        self.fitness_round(r, objectives, fits, &mut |r: &mut R| r.below(n))
                    };
                    self.size_round(rng, sizes, &mut pick)
                } else {
                    let mut pick =
                        |r: &mut R| self.size_round(r, sizes, &mut |r: &mut R| r.below(n));
                    self.fitness_round(rng, objectives, fits, &mut pick)
                }
            })
            .collect()
    }

    /// The best of `fitness_size` aspirants, each given by `pick`.
    fn fitness_round<R: Draw + ?Sized, F: AsRef<[f64]>>(
        &self,
        rng: &mut R,
        objectives: &Objectives,
        fits: &[F],
        pick: &mut dyn FnMut(&mut R) -> usize,
    ) -> usize {
        let aspirants: Vec<usize> = (0..self.fitness_size).map(|_| pick(rng)).collect();
        best_of(objectives, fits, &aspirants)
    }

    /// The size tournament between two contestants given by `pick`.
    fn size_round<R: Draw + ?Sized>(
        &self,
        rng: &mut R,
        sizes: &[usize],
        pick: &mut dyn FnMut(&mut R) -> usize,
    ) -> usize {
        let a = pick(rng);
        let b = pick(rng);
        self.parsimony(rng, sizes, a, b)
    }

    /// The size tournament between `a` and `b`.
    fn parsimony<R: Draw + ?Sized>(
        &self,
        rng: &mut R,
        sizes: &[usize],
        a: usize,
        b: usize,
    ) -> usize {
        let (small, large) = if sizes[a] > sizes[b] { (b, a) } else { (a, b) };
        let p = if sizes[a] == sizes[b] {
            0.5
        } else {
            self.parsimony_size / 2.0
        };
        if rng.chance(p) {
            small
        } else {
            large
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::Prng;

    #[test]
    fn best_keeps_population_order_among_equals() {
        let o = Objectives::maximize();
        let fits = vec![vec![1.0], vec![3.0], vec![3.0], vec![f64::NAN], vec![2.0]];
        assert_eq!(sel_best(&o, &fits, 3), vec![1, 2, 4]);
        assert_eq!(sel_best(&o, &fits, 9), vec![1, 2, 4, 0, 3]);
    }

    #[test]
    fn zero_sizes_are_rejected() {
        assert!(Tournament::new(0).is_err());
        // Each refusal names its setting.
        let named = |e: Option<Error>| match e {
            Some(Error::Setting(n)) => n.settings(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            named(Tournament::new(0).err()),
            vec![Setting::TournamentSize]
        );
        assert_eq!(
            named(DoubleTournament::new(3, 0.9, true).err()),
            vec![Setting::Parsimony]
        );
        assert!(DoubleTournament::new(3, 0.9, true).is_err());
        assert!(DoubleTournament::new(3, 2.1, false).is_err());
        assert!(DoubleTournament::new(0, 1.4, false).is_err());
    }

    #[test]
    fn empty_populations_give_nothing() {
        let o = Objectives::maximize();
        let none: Vec<Vec<f64>> = Vec::new();
        let mut r = Prng::seed(0);
        assert!(Tournament::new(3)
            .unwrap()
            .select(&mut r, &o, &none, 4)
            .is_empty());
        let dt = DoubleTournament::new(3, 1.4, true).unwrap();
        assert!(dt.select(&mut r, &o, &none, &[], 4).is_empty());
    }
}
