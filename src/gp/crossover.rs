//! One-point crossover (DEAP's `cxOnePoint`, untyped): a random non-root
//! node is chosen in each parent and the subtrees rooted there are
//! exchanged. Parents of fewer than two nodes are returned unchanged.

use super::pset::PrimitiveSet;
use super::rng::Draw;
use super::tree::Tree;

/// The two children of `a` and `b`; the children's sizes add up to the
/// parents'.
pub fn cx_one_point<R: Draw + ?Sized>(
    rng: &mut R,
    set: &PrimitiveSet,
    a: &Tree,
    b: &Tree,
) -> (Tree, Tree) {
    if a.len() < 2 || b.len() < 2 {
        return (a.clone(), b.clone());
    }
    let i = 1 + rng.below(a.len() - 1);
    let j = 1 + rng.below(b.len() - 1);
    let sa = a.subtree(set, i);
    let sb = b.subtree(set, j);
    (
        splice(a, sa.clone(), &b.genes[sb.clone()]),
        splice(b, sb, &a.genes[sa]),
    )
}

/// `t` with the genes in `range` replaced by `with`.
pub(crate) fn splice(t: &Tree, range: std::ops::Range<usize>, with: &[super::Gene]) -> Tree {
    let mut genes = Vec::with_capacity(t.len() - range.len() + with.len());
    genes.extend_from_slice(&t.genes[..range.start]);
    genes.extend_from_slice(with);
    genes.extend_from_slice(&t.genes[range.end..]);
    Tree { genes }
}
