//! Mutations with DEAP's semantics (untyped):
//!
//! * `Uniform` (`mutUniform`): a random node's subtree is replaced by a new
//!   tree from a generator (DEAP's examples use `genFull(0, 2)`).
//! * `NodeReplacement` (`mutNodeReplacement`): a random non-root node is
//!   replaced by a random terminal (if a leaf) or a random primitive of the
//!   same arity; the draw may pick the same node again, as in DEAP.
//! * `Shrink` (`mutShrink`): a random non-root primitive is replaced by one
//!   of its arguments; trees of fewer than 3 nodes or height ≤ 1 are left
//!   alone.
//! * `Insert` (`mutInsert`): a random node's subtree becomes one argument of
//!   a new random primitive, whose other arguments are random leaves.
//! * `Ephemeral` (`mutEphemeral`): redraw the value of one (or all) of the
//!   tree's ephemeral constants.
//!
//! Each returns a new tree; the input is not changed. Size and height
//! limits are [`super::limit::Limit`]'s job.

use crate::error::{Error, Result};

use super::crossover::splice;
use super::generate::{random_leaf, random_primitive_of_arity, Method};
use super::pset::PrimitiveSet;
use super::rng::Draw;
use super::tree::{Gene, Tree};

/// Which ephemeral constants `mutEphemeral` redraws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EphemeralMode {
    One,
    All,
}

/// A mutation operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    Uniform {
        method: Method,
        min: usize,
        max: usize,
    },
    NodeReplacement,
    Shrink,
    Insert,
    Ephemeral(EphemeralMode),
}

impl Mutation {
    /// DEAP's usual uniform mutation: `genFull(min_=0, max_=2)`.
    pub const UNIFORM: Mutation = Mutation::Uniform {
        method: Method::Full,
        min: 0,
        max: 2,
    };

    pub fn name(&self) -> &'static str {
        match self {
            Mutation::Uniform { .. } => "uniform",
            Mutation::NodeReplacement => "node-replacement",
            Mutation::Shrink => "shrink",
            Mutation::Insert => "insert",
            Mutation::Ephemeral(EphemeralMode::One) => "ephemeral-one",
            Mutation::Ephemeral(EphemeralMode::All) => "ephemeral-all",
        }
    }

    /// `uniform` (full trees of height 0..=2), `node-replacement`,
    /// `shrink`, `insert`, `ephemeral-one`, `ephemeral-all`.
    pub fn parse(name: &str) -> Result<Mutation> {
        Ok(match name.trim() {
            "uniform" => Mutation::UNIFORM,
            "node-replacement" => Mutation::NodeReplacement,
            "shrink" => Mutation::Shrink,
            "insert" => Mutation::Insert,
            "ephemeral-one" => Mutation::Ephemeral(EphemeralMode::One),
            "ephemeral-all" => Mutation::Ephemeral(EphemeralMode::All),
            other => {
                return Err(Error::Usage(format!(
                "unknown mutation `{other}`: use uniform, node-replacement, shrink, insert, ephemeral-one or ephemeral-all"
            )))
            }
        })
    }

    /// Apply to `t`, returning the mutant.
    pub fn apply<R: Draw + ?Sized>(&self, rng: &mut R, set: &PrimitiveSet, t: &Tree) -> Tree {
        match *self {
            Mutation::Uniform { method, min, max } => mut_uniform(rng, set, t, method, min, max),
            Mutation::NodeReplacement => mut_node_replacement(rng, set, t),
            Mutation::Shrink => mut_shrink(rng, set, t),
            Mutation::Insert => mut_insert(rng, set, t),
            Mutation::Ephemeral(mode) => mut_ephemeral(rng, set, t, mode),
        }
    }
}

/// `mutUniform`: replace the subtree at a random node (the root included)
/// by `Tree::generate(min, max, method)`.
pub fn mut_uniform<R: Draw + ?Sized>(
    rng: &mut R,
    set: &PrimitiveSet,
    t: &Tree,
    method: Method,
    min: usize,
    max: usize,
) -> Tree {
    let i = rng.below(t.len());
    let range = t.subtree(set, i);
    let new = Tree::generate(rng, set, min, max, method);
    splice(t, range, &new.genes)
}

/// `mutNodeReplacement`: one non-root node becomes another of its arity.
pub fn mut_node_replacement<R: Draw + ?Sized>(rng: &mut R, set: &PrimitiveSet, t: &Tree) -> Tree {
    if t.len() < 2 {
        return t.clone();
    }
    let i = 1 + rng.below(t.len() - 1);
    let old = t.genes[i];
    let new = match old.arity(set) {
        0 => random_leaf(rng, set),
        k => random_primitive_of_arity(rng, set, k).unwrap_or(old),
    };
    let mut out = t.clone();
    out.genes[i] = new;
    out
}

/// `mutShrink`: a non-root primitive is replaced by one of its arguments.
pub fn mut_shrink<R: Draw + ?Sized>(rng: &mut R, set: &PrimitiveSet, t: &Tree) -> Tree {
    if t.len() < 3 || t.height(set) <= 1 {
        return t.clone();
    }
    let prims: Vec<usize> = (1..t.len()).filter(|&i| !t.genes[i].is_leaf()).collect();
    if prims.is_empty() {
        return t.clone();
    }
    let i = prims[rng.below(prims.len())];
    let arg = rng.below(t.genes[i].arity(set));
    let mut child = t.subtree(set, i + 1);
    for _ in 0..arg {
        child = t.subtree(set, child.end);
    }
    splice(t, t.subtree(set, i), &t.genes[child])
}

/// `mutInsert`: the subtree at a random node becomes an argument of a new
/// primitive; the other arguments are random leaves.
pub fn mut_insert<R: Draw + ?Sized>(rng: &mut R, set: &PrimitiveSet, t: &Tree) -> Tree {
    let i = rng.below(t.len());
    let range = t.subtree(set, i);
    let p = rng.below(set.primitives().len());
    let arity = set.primitives()[p].arity;
    let position = rng.below(arity);
    let mut genes = vec![Gene::Prim(p as u16)];
    for a in 0..arity {
        if a == position {
            genes.extend_from_slice(&t.genes[range.clone()]);
        } else {
            genes.push(random_leaf(rng, set));
        }
    }
    splice(t, range, &genes)
}

/// `mutEphemeral`: redraw one (or every) ephemeral constant of the tree
/// with the generator that made it. A tree without any is returned as is.
pub fn mut_ephemeral<R: Draw + ?Sized>(
    rng: &mut R,
    set: &PrimitiveSet,
    t: &Tree,
    mode: EphemeralMode,
) -> Tree {
    let ercs: Vec<usize> = (0..t.len())
        .filter(|&i| matches!(t.genes[i], Gene::Erc { .. }))
        .collect();
    if ercs.is_empty() {
        return t.clone();
    }
    let chosen = match mode {
        EphemeralMode::One => vec![ercs[rng.below(ercs.len())]],
        EphemeralMode::All => ercs,
    };
    let mut out = t.clone();
    for i in chosen {
        if let Gene::Erc { erc, .. } = out.genes[i] {
            let v = set.ephemerals()[erc as usize].draw(rng);
            out.genes[i] = Gene::erc(erc as usize, v);
        }
    }
    out
}
