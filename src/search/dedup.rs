//! Dedup by meaning, in two layers behind DEAP's syntactic notion:
//!
//! * **syntactic** (counted only, for comparison): the formula text was
//!   seen before in this run: what text equality (DEAP) would notice;
//! * **canonical**: the canonical hash of the simplified formula is in the
//!   fitness cache (or already queued this generation): the candidate
//!   takes that fitness and is never evaluated again. An unchanged clone
//!   always lands here, so it never loses its fitness;
//! * **functional**: a new canonical hash whose fingerprint
//!   ([`crate::gp::fingerprint`]) matches an earlier formula's takes that
//!   formula's fitness; every such merge is logged (`merges.jsonl`).
//!
//! The cache holds one [`Record`] per canonical key and persists in the
//! run directory (`evaluations.jsonl` and `merges.jsonl`); the fingerprint
//! index keeps its representatives in insertion order, which checkpoints
//! store so that a resumed run merges exactly as an uninterrupted one.

use std::collections::{HashMap, HashSet};

use crate::gp::{syntactic_hash, Fingerprint, FunctionIndex};
use crate::ir::{Expr, Library};

use super::run::record::Record;

/// The fitness cache and the fingerprint index.
#[derive(Default)]
pub struct Dedup {
    fingerprint: bool,
    cache: HashMap<u64, Record>,
    functions: FunctionIndex<u64>,
    /// Representatives in insertion order: (key, formula fingerprinted).
    order: Vec<(u64, String)>,
    seen: HashSet<u64>,
}

impl Dedup {
    /// `fingerprint`: whether the functional layer is on.
    pub fn new(fingerprint: bool) -> Dedup {
        Dedup {
            fingerprint,
            ..Dedup::default()
        }
    }

    pub fn fingerprint_on(&self) -> bool {
        self.fingerprint
    }

    pub fn get(&self, key: u64) -> Option<&Record> {
        self.cache.get(&key)
    }

    pub fn contains(&self, key: u64) -> bool {
        self.cache.contains_key(&key)
    }

    pub fn insert(&mut self, r: Record) {
        self.cache.insert(r.key, r);
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Every record, in key order.
    pub fn records(&self) -> Vec<&Record> {
        let mut v: Vec<&Record> = self.cache.values().collect();
        v.sort_by_key(|r| r.key);
        v
    }

    /// Note the text of a candidate; true when the same text was seen
    /// before (a syntactic hit).
    pub fn see(&mut self, text: &str) -> bool {
        !self.seen.insert(syntactic_hash(text))
    }

    /// The syntactic hashes seen, sorted (for checkpoints).
    pub fn seen(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.seen.iter().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn restore_seen(&mut self, seen: impl IntoIterator<Item = u64>) {
        self.seen.extend(seen);
    }

    /// The functional layer for a new canonical key: the key of an earlier
    /// formula with the same function and the match distance, or `None`
    /// after recording `key` as a new function (also `None` when the layer
    /// is off or the text cannot be fingerprinted).
    pub fn match_function(&mut self, key: u64, formula: &str, lib: &Library) -> Option<(u64, f32)> {
        if !self.fingerprint {
            return None;
        }
        self.match_expr(key, &lib.parse(formula).ok()?, formula)
    }

    /// [`Dedup::match_function`] of `formula` already parsed into `expr`.
    pub fn match_expr(&mut self, key: u64, expr: &Expr, formula: &str) -> Option<(u64, f32)> {
        if !self.fingerprint {
            return None;
        }
        let fp = Fingerprint::of(expr);
        if let Some((&from, seen)) = self.functions.find(&fp) {
            return Some((from, fp.distance(seen)));
        }
        self.functions.find_or_insert(fp, key);
        self.order.push((key, formula.to_string()));
        None
    }

    /// The representatives in insertion order (for checkpoints).
    pub fn functions(&self) -> &[(u64, String)] {
        &self.order
    }

    /// Rebuild the index from [`Dedup::functions`] of a checkpoint.
    pub fn restore_functions(&mut self, order: Vec<(u64, String)>, lib: &Library) {
        for (key, formula) in order {
            self.match_function(key, &formula, lib);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_merge_and_texts_count() {
        let lib = Library::standard();
        let mut d = Dedup::new(true);
        assert_eq!(d.match_function(1, "x * (x + 1)", lib), None);
        let (from, dist) = d.match_function(2, "x * x + x", lib).unwrap();
        assert_eq!(from, 1);
        assert!(dist <= 1.0);
        assert_eq!(d.match_function(3, "x * x", lib), None);
        assert_eq!(d.functions().len(), 2);
        assert!(!d.see("a"));
        assert!(d.see("a"));
        let mut off = Dedup::new(false);
        assert_eq!(off.match_function(1, "x", lib), None);
        assert_eq!(off.match_function(2, "x", lib), None);
    }

    #[test]
    fn a_restored_index_merges_the_same_way() {
        let lib = Library::standard();
        let mut a = Dedup::new(true);
        a.match_function(1, "sin(x) * sin(x) + cos(x) * cos(x) + x", lib);
        a.match_function(5, "tanh(x)", lib);
        let mut b = Dedup::new(true);
        b.restore_functions(a.functions().to_vec(), lib);
        assert_eq!(b.match_function(9, "1 + x", lib).map(|m| m.0), Some(1));
        assert_eq!(
            b.match_function(10, "2 * sigmoid(2 * x) - 1", lib)
                .map(|m| m.0),
            Some(5)
        );
    }
}
