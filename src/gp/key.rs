//! Dedup keys of offspring, from cheapest to strongest:
//!
//! 1. [`syntactic_hash`]: the formula text itself (what DEAP would notice:
//!    two identical trees);
//! 2. [`Canonical`]: text → parse → [`simplify`] → the canonical hash of
//!    the simplified DAG. Commuted operands, identities and folded
//!    constants all give the same key; it is the key of the fitness cache
//!    and of the kernel cache;
//! 3. the functional fingerprint ([`super::fingerprint`]), for equivalences
//!    the simplifier cannot prove.

use crate::ir::{to_infix_limited, Expr, Library, MAX_PRINT_NODES};
use crate::simplify::{hash_hex, simplify, StopReason};
use crate::syntax::Diagnostic;

use super::pset::PrimitiveSet;
use super::tree::Tree;

/// A formula simplified to canonical form, with its hash.
#[derive(Clone)]
pub struct Canonical {
    /// The simplified expression (what kernels are generated from).
    pub expr: Expr,
    /// The canonical hash: equal for formulas the simplifier proves equal.
    pub hash: u64,
    /// Why simplification stopped (`Saturated` unless a budget ran out).
    pub stop: StopReason,
}

impl Canonical {
    /// Simplify an already lowered formula.
    pub fn of(e: &Expr) -> Canonical {
        let s = simplify(e);
        Canonical {
            expr: s.expr(),
            hash: s.hash(),
            stop: s.stop,
        }
    }

    /// Parse `formula` with `lib` and simplify it.
    pub fn parse(formula: &str, lib: &Library) -> Result<Canonical, Diagnostic> {
        Ok(Canonical::of(&lib.parse(formula)?))
    }

    /// The hash as 16 hex digits (how runs and caches write it).
    pub fn hex(&self) -> String {
        hash_hex(self.hash)
    }

    /// DAG nodes of the simplified formula.
    pub fn nodes(&self) -> usize {
        self.expr.graph.dag_size(&[self.expr.root])
    }

    /// The simplified formula in infix notation, or `None` when its tree
    /// is too large to print (see [`MAX_PRINT_NODES`]).
    pub fn infix(&self) -> Option<String> {
        to_infix_limited(&self.expr.graph, self.expr.root, MAX_PRINT_NODES)
    }
}

impl Tree {
    /// The canonical key of this tree's formula. Fails only when the tree
    /// nests deeper than the parser allows (the static limit prevents it).
    pub fn canonical(&self, set: &PrimitiveSet) -> Result<Canonical, Diagnostic> {
        Canonical::parse(&self.to_formula(set), set.library())
    }
}

/// A stable 64-bit hash of the formula text (FNV-1a then a splitmix
/// finaliser): equal exactly when the texts are equal, barring collisions.
pub fn syntactic_hash(formula: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in formula.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}
