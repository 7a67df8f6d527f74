//! Who survives and who breeds, per algorithm:
//!
//! * (μ+λ) (the default): λ offspring by `varOr` from parents drawn
//!   uniformly (DEAP's `eaMuPlusLambda`); survivors are chosen from
//!   parents and offspring together: with one objective the `elite` best,
//!   then tournaments (or double tournaments) for the rest; with two,
//!   NSGA-II.
//! * simple: μ parents by tournament, offspring by `varAnd` replace the
//!   population (DEAP's `eaSimple`), except that the `elite` best of the
//!   old population replace the worst offspring.
//!
//! Why (μ+λ) is the default: a fitness evaluation is a training run, the
//! scarce resource. (μ+λ) never throws away an evaluated parent that is
//! better than the new offspring, makes each offspring by exactly one
//! operator (so fewer offspring are unchanged copies of a parent than with
//! `varAnd` at the same rates, and copies cost nothing here), and it is
//! the scheme NSGA-II is defined on, so single- and two-objective runs
//! behave alike.

use crate::gp::{Draw, PrimitiveSet};

use super::config::{Objective, SelectionKind, Settings};
use super::run::state::Individual;
use crate::gp::nsga2::sel_nsga2;
use crate::gp::objectives::Objectives;
use crate::gp::select::{sel_best, DoubleTournament, Tournament};

fn fits(pop: &[Individual]) -> Vec<&[f64]> {
    pop.iter().map(|i| i.fitness.as_slice()).collect()
}

/// `k` picks from `pop` by the configured tournament (repeats allowed).
pub fn tournament<R: Draw + ?Sized>(
    rng: &mut R,
    settings: &Settings,
    objectives: &Objectives,
    pop: &[Individual],
    k: usize,
) -> Vec<usize> {
    let f = fits(pop);
    match settings.selection {
        SelectionKind::Tournament { size } => Tournament::new(size)
            .expect("checked settings")
            .select(rng, objectives, &f, k),
        SelectionKind::DoubleTournament {
            fitness_size,
            parsimony,
        } => {
            let sizes: Vec<usize> = pop.iter().map(|i| i.tree.len()).collect();
            DoubleTournament::new(fitness_size, parsimony, true)
                .expect("checked settings")
                .select(rng, objectives, &f, &sizes, k)
        }
    }
}

/// (μ+λ) survivors: indices into `pool` (parents then offspring).
pub fn survivors_plus<R: Draw + ?Sized>(
    rng: &mut R,
    settings: &Settings,
    objectives: &Objectives,
    pool: &[Individual],
) -> Vec<usize> {
    let mu = settings.pop;
    if settings.objective == Objective::ScoreComplexity {
        return sel_nsga2(objectives, &fits(pool), mu);
    }
    let mut chosen = sel_best(objectives, &fits(pool), settings.elite.min(mu));
    let rest = mu - chosen.len();
    chosen.extend(tournament(rng, settings, objectives, pool, rest));
    chosen
}

/// The simple algorithm's next population: the offspring, with the
/// `elite` best of `old` in place of the worst offspring.
pub fn survivors_simple(
    settings: &Settings,
    objectives: &Objectives,
    old: &[Individual],
    offspring: Vec<Individual>,
) -> Vec<Individual> {
    let k = settings.elite.min(offspring.len());
    let mut next: Vec<Individual> = sel_best(objectives, &fits(old), k)
        .into_iter()
        .map(|i| old[i].clone())
        .collect();
    let ranked = sel_best(objectives, &fits(&offspring), offspring.len());
    let dropped: Vec<usize> = ranked[ranked.len() - k..].to_vec();
    next.extend(
        offspring
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !dropped.contains(i))
            .map(|(_, ind)| ind),
    );
    next
}

/// Height of each individual's tree.
pub fn heights(set: &PrimitiveSet, pop: &[Individual]) -> Vec<usize> {
    pop.iter().map(|i| i.tree.height(set)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::{Gene, Prng, Tree};

    fn ind(f: f64) -> Individual {
        Individual {
            tree: Tree {
                genes: vec![Gene::Term(0)],
            },
            key: f.to_bits(),
            fitness: vec![f],
        }
    }

    #[test]
    fn the_elite_always_survives() {
        let s = Settings {
            pop: 3,
            elite: 1,
            ..Settings::default()
        };
        let o = Objectives::maximize();
        let pool: Vec<Individual> = [0.1, 0.9, 0.2, 0.3, 0.4, 0.5].map(ind).to_vec();
        for seed in 0..20 {
            let chosen = survivors_plus(&mut Prng::seed(seed), &s, &o, &pool);
            assert_eq!(chosen.len(), 3);
            assert_eq!(chosen[0], 1);
        }
    }

    #[test]
    fn simple_replaces_the_worst_offspring_by_the_elite() {
        let s = Settings {
            pop: 3,
            elite: 1,
            ..Settings::default()
        };
        let o = Objectives::maximize();
        let old = [0.1, 0.9, 0.2].map(ind).to_vec();
        let off = [0.5, 0.05, 0.6].map(ind).to_vec();
        let next = survivors_simple(&s, &o, &old, off);
        let f: Vec<f64> = next.iter().map(|i| i.fitness[0]).collect();
        assert_eq!(f, [0.9, 0.5, 0.6]);
    }
}
