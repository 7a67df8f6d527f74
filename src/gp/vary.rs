//! DEAP's variation algorithms over a population slice: `varAnd`
//! (crossover and mutation, each with its own probability, as in
//! `eaSimple`) and `varOr` (crossover, mutation *or* reproduction, as in
//! `eaMuPlusLambda`). Both apply the static [`Limit`] to every operator, as
//! DEAP's decorated `mate` and `mutate` do.
//!
//! Unlike DEAP, every offspring says which parent it came from and whether
//! it is an unchanged clone of that parent (its genes equal the parent's),
//! so the engine can copy the parent's fitness instead of evaluating it
//! again. DEAP's `varAnd` deletes the fitness of anything an operator
//! touched, even when the operator changed nothing.

use crate::error::{Error, Result, Setting};

use super::crossover::cx_one_point;
use super::limit::Limit;
use super::mutate::Mutation;
use super::pset::PrimitiveSet;
use super::rng::Draw;
use super::tree::Tree;

/// What made an offspring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Copied (no operator applied).
    Copy,
    Crossover,
    Mutation,
    /// Crossover, then mutation (`varAnd` only).
    CrossoverMutation,
}

/// One child of a variation step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offspring {
    pub tree: Tree,
    /// Index in the population of the parent this child replaces or was
    /// copied from (for crossover, the parent whose root it keeps).
    pub parent: usize,
    pub origin: Origin,
    /// The child's genes equal its parent's: its fitness is the parent's.
    pub clone: bool,
}

/// The variation operators and their probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Variation {
    cxpb: f64,
    mutpb: f64,
    mutations: Vec<(Mutation, f64)>,
    limit: Limit,
}

impl Variation {
    /// `cxpb` and `mutpb` are probabilities; `mutations` lists the
    /// mutation operators with positive weights (one is drawn per mutation
    /// in proportion to its weight; with a single operator nothing is
    /// drawn, as in DEAP).
    pub fn new(
        cxpb: f64,
        mutpb: f64,
        mutations: Vec<(Mutation, f64)>,
        limit: Limit,
    ) -> Result<Variation> {
        for (name, setting, p) in [
            ("crossover", Setting::Cxpb, cxpb),
            ("mutation", Setting::Mutpb, mutpb),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::setting(format!(
                    "{setting} {p}: the {name} probability must be between 0 and 1"
                )));
            }
        }
        if mutations.is_empty() {
            return Err(Error::setting(format!(
                "{}: at least one mutation operator is needed",
                Setting::Mutations
            )));
        }
        if let Some((m, w)) = mutations.iter().find(|(_, w)| !(w.is_finite() && *w > 0.0)) {
            return Err(Error::setting(format!(
                "{}: the weight of mutation `{}` must be positive, not {w}",
                Setting::Mutations,
                m.name()
            )));
        }
        Ok(Variation {
            cxpb,
            mutpb,
            mutations,
            limit,
        })
    }

    pub fn cxpb(&self) -> f64 {
        self.cxpb
    }

    pub fn mutpb(&self) -> f64 {
        self.mutpb
    }

    pub fn mutations(&self) -> &[(Mutation, f64)] {
        &self.mutations
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// One-point crossover under the limit: a child over it becomes a copy
    /// of its own parent.
    pub fn mate<R: Draw + ?Sized>(
        &self,
        rng: &mut R,
        set: &PrimitiveSet,
        a: &Tree,
        b: &Tree,
    ) -> (Tree, Tree) {
        let (c, d) = cx_one_point(rng, set, a, b);
        let mut kids = [c, d];
        self.limit.enforce(set, &[a, b], &mut kids);
        let [c, d] = kids;
        (c, d)
    }

    /// One mutation (drawn by weight) under the limit.
    pub fn mutate<R: Draw + ?Sized>(&self, rng: &mut R, set: &PrimitiveSet, t: &Tree) -> Tree {
        let m = match self.mutations.as_slice() {
            [(only, _)] => *only,
            many => {
                let w: Vec<f64> = many.iter().map(|(_, w)| *w).collect();
                many[rng.weighted(&w)].0
            }
        };
        let mut out = [m.apply(rng, set, t)];
        self.limit.enforce(set, &[t], &mut out);
        let [out] = out;
        out
    }
}

/// DEAP's `varAnd`: every consecutive pair is crossed with probability
/// `cxpb`, then every child is mutated with probability `mutpb`. Offspring
/// `i` descends from `population[i]`.
pub fn var_and<R: Draw + ?Sized>(
    rng: &mut R,
    set: &PrimitiveSet,
    population: &[Tree],
    v: &Variation,
) -> Vec<Offspring> {
    let mut kids: Vec<(Tree, Origin)> = population
        .iter()
        .map(|t| (t.clone(), Origin::Copy))
        .collect();
    for i in (1..kids.len()).step_by(2) {
        if rng.chance(v.cxpb) {
            let (a, b) = v.mate(rng, set, &kids[i - 1].0, &kids[i].0);
            kids[i - 1] = (a, Origin::Crossover);
            kids[i] = (b, Origin::Crossover);
        }
    }
    for kid in kids.iter_mut() {
        if rng.chance(v.mutpb) {
            kid.0 = v.mutate(rng, set, &kid.0);
            kid.1 = match kid.1 {
                Origin::Copy => Origin::Mutation,
                _ => Origin::CrossoverMutation,
            };
        }
    }
    kids.into_iter()
        .enumerate()
        .map(|(i, (tree, origin))| offspring(tree, i, origin, population))
        .collect()
}

/// DEAP's `varOr`: `lambda` offspring, each from crossover of two distinct
/// random parents (probability `cxpb`; the first child is kept), mutation
/// of a random parent (`mutpb`) or a copy of a random parent (the rest).
/// `cxpb + mutpb` must not exceed 1. A population of one individual is
/// crossed with a copy of itself; an empty one gives no offspring.
pub fn var_or<R: Draw + ?Sized>(
    rng: &mut R,
    set: &PrimitiveSet,
    population: &[Tree],
    v: &Variation,
    lambda: usize,
) -> Result<Vec<Offspring>> {
    if v.cxpb + v.mutpb > 1.0 {
        return Err(Error::setting(format!(
            "varOr needs {} + {} of at most 1, not {} + {}",
            Setting::Cxpb,
            Setting::Mutpb,
            v.cxpb,
            v.mutpb
        )));
    }
    if population.is_empty() {
        return Ok(Vec::new());
    }
    let n = population.len();
    let mut out = Vec::with_capacity(lambda);
    for _ in 0..lambda {
        let choice = rng.unit();
        let kid = if choice < v.cxpb {
            let (i, j) = two_distinct(rng, n);
            let (a, _) = v.mate(rng, set, &population[i], &population[j]);
            (a, i, Origin::Crossover)
        } else if choice < v.cxpb + v.mutpb {
            let i = rng.below(n);
            (v.mutate(rng, set, &population[i]), i, Origin::Mutation)
        } else {
            let i = rng.below(n);
            (population[i].clone(), i, Origin::Copy)
        };
        out.push(offspring(kid.0, kid.1, kid.2, population));
    }
    Ok(out)
}

/// Two distinct indices below `n` (`random.sample(range(n), 2)`); with
/// `n == 1`, the same index twice.
fn two_distinct<R: Draw + ?Sized>(rng: &mut R, n: usize) -> (usize, usize) {
    if n < 2 {
        return (0, 0);
    }
    let i = rng.below(n);
    let j = rng.below(n - 1);
    (i, if j >= i { j + 1 } else { j })
}

fn offspring(tree: Tree, parent: usize, origin: Origin, population: &[Tree]) -> Offspring {
    let clone = tree == population[parent];
    Offspring {
        tree,
        parent,
        origin,
        clone,
    }
}
