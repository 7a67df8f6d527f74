//! Tree generation with DEAP's semantics: `genFull`, `genGrow` and
//! `genHalfAndHalf` (ramped half-and-half when called with a height range).
//!
//! A height is drawn uniformly from `min..=max`; nodes are then chosen
//! top-down in prefix order. `Full` puts every leaf at exactly that height;
//! `Grow` stops at a node at depth `d` when `d` is the height, or when
//! `d >= min` and a draw falls below the set's terminal ratio (terminals
//! and ephemerals over all entries). A leaf is chosen uniformly among the
//! terminals and ephemeral generators (an ephemeral draws its value then),
//! an inner node uniformly among the primitives.

use super::pset::PrimitiveSet;
use super::rng::Draw;
use super::tree::{Gene, Tree};

/// How a generator decides where leaves go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Every leaf at exactly the drawn height (`genFull`).
    Full,
    /// Leaves anywhere from `min` to the drawn height (`genGrow`).
    Grow,
    /// Full or grow with equal odds (`genHalfAndHalf`); with a range of
    /// heights this is Koza's ramped half-and-half.
    HalfAndHalf,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Full => "full",
            Method::Grow => "grow",
            Method::HalfAndHalf => "half-and-half",
        }
    }
}

/// A random leaf: a terminal, or a fresh value from an ephemeral generator.
pub fn random_leaf<R: Draw + ?Sized>(rng: &mut R, set: &PrimitiveSet) -> Gene {
    let n_t = set.terminals().len();
    let i = rng.below(n_t + set.ephemerals().len());
    if i < n_t {
        Gene::Term(i as u16)
    } else {
        let e = i - n_t;
        Gene::erc(e, set.ephemerals()[e].draw(rng))
    }
}

/// A random primitive with `arity` arguments, if the set has one.
pub fn random_primitive_of_arity<R: Draw + ?Sized>(
    rng: &mut R,
    set: &PrimitiveSet,
    arity: usize,
) -> Option<Gene> {
    let same: Vec<usize> = (0..set.primitives().len())
        .filter(|&p| set.primitives()[p].arity == arity)
        .collect();
    (!same.is_empty()).then(|| Gene::Prim(same[rng.below(same.len())] as u16))
}

impl Tree {
    /// Generate a tree of height in `min..=max` (a `max` below `min` is
    /// read as `min`).
    pub fn generate<R: Draw + ?Sized>(
        rng: &mut R,
        set: &PrimitiveSet,
        min: usize,
        max: usize,
        method: Method,
    ) -> Tree {
        let method = match method {
            Method::HalfAndHalf if rng.chance(0.5) => Method::Grow,
            Method::HalfAndHalf => Method::Full,
            m => m,
        };
        let height = rng.between(min, max.max(min));
        let ratio = set.terminal_ratio();
        let n_p = set.primitives().len();
        let mut genes = Vec::new();
        let mut stack = vec![0usize];
        while let Some(depth) = stack.pop() {
            let leaf =
                depth == height || (method == Method::Grow && depth >= min && rng.chance(ratio));
            if leaf {
                genes.push(random_leaf(rng, set));
            } else {
                let p = rng.below(n_p);
                genes.push(Gene::Prim(p as u16));
                stack.extend(std::iter::repeat_n(depth + 1, set.primitives()[p].arity));
            }
        }
        Tree { genes }
    }

    /// Ramped half-and-half: [`Method::HalfAndHalf`] over `min..=max`.
    pub fn ramped<R: Draw + ?Sized>(
        rng: &mut R,
        set: &PrimitiveSet,
        min: usize,
        max: usize,
    ) -> Tree {
        Tree::generate(rng, set, min, max, Method::HalfAndHalf)
    }
}
