//! Functional fingerprints: what a formula computes, as f32 outputs at a
//! fixed set of probe points, so that formulas the simplifier cannot prove
//! equal (`sin(x)·sin(x) + cos(x)·cos(x)` and `1`, `2σ(x) − 1` and
//! `tanh(x/2)`, `x·(x + 1)` and `x·x + x`) are still recognised as one
//! function, as AQuaSurF groups activations by identical outputs.
//!
//! Probe points ([`probe_points`], 1,217 of them): 1,000 N(0, 1) samples
//! from a fixed stream of [`Prng`] (seed 0x5eed, purpose "fingerprint"),
//! the grid −5, −4.95, …, 5 (201 points), and the tails ±6, ±8, ±10, ±15,
//! ±20, ±30, ±50, ±100, so functions that differ only far out (`x` and
//! `clamp(x, -10, 10)`) stay apart. The outputs come from the fast f32
//! tape evaluator ([`Tape`]), whose results are bit-identical with and
//! without SIMD.
//!
//! Why not just hash rounded outputs: two formulas for the same function
//! usually differ by an ulp or two somewhere, and a rounding boundary
//! falls between such a pair with probability (difference / quantum) per
//! point. At ~1e-5 relative that is about 1/256 per point, so over 1,217
//! points the hashes of equal functions would almost never agree. Instead:
//!
//! * **bucket** ([`Fingerprint::bucket`]): a 64-bit hash of only the first
//!   8 normal samples, coarsely quantised: NaN, +inf and −inf are classes
//!   of their own, |v| < 1e-3 is one class "zero", anything else is
//!   rounded to 8 significant bits (sign, exponent and 7 mantissa bits,
//!   rounded to nearest). Equal functions land in one bucket unless a
//!   boundary falls between them at one of 8 points (about 1e-3 chance
//!   for outputs differing by 1e-6 relative);
//! * **match** ([`Fingerprint::matches`]): within a bucket, two
//!   fingerprints are the same function when at every probe point both
//!   outputs are NaN, or both the same infinity, or both finite with
//!   |a − b| ≤ 1e-5·max(|a|, |b|) + 1e-6.
//!
//! [`FunctionIndex`] does both: a map from bucket to the fingerprints
//! seen, each with the caller's key (e.g. the canonical hash of the first
//! formula with that function).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::ir::{Expr, Tape};

use super::rng::{Draw, Prng};

/// N(0, 1) probe points.
pub const NORMAL_POINTS: usize = 1000;
/// Points of the uniform grid on [-5, 5] (step 0.05).
pub const GRID_POINTS: usize = 201;
/// Far points on both sides.
pub const TAILS: [f32; 8] = [6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0];
/// Points hashed into the bucket key (the first normal samples).
pub const BUCKET_POINTS: usize = 8;
/// Relative tolerance of [`Fingerprint::matches`].
pub const REL_TOL: f32 = 1e-5;
/// Absolute tolerance of [`Fingerprint::matches`].
pub const ABS_TOL: f32 = 1e-6;
/// Magnitudes below this are one bucket class.
const BUCKET_ZERO: f32 = 1e-3;

/// The probe points, in a fixed order (normal samples first).
pub fn probe_points() -> &'static [f32] {
    static POINTS: OnceLock<Vec<f32>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let mut rng = Prng::stream(0x5eed, "fingerprint", 0, 0);
        let mut p: Vec<f32> = (0..NORMAL_POINTS).map(|_| rng.normal() as f32).collect();
        p.extend((0..GRID_POINTS).map(|i| (-5.0 + 0.05 * i as f64) as f32));
        p.extend(TAILS.iter().flat_map(|&t| [-t, t]));
        p
    })
}

/// A formula's outputs at the probe points.
#[derive(Clone, Debug, PartialEq)]
pub struct Fingerprint {
    bucket: u64,
    values: Box<[f32]>,
    nonfinite: usize,
}

impl Fingerprint {
    /// Evaluate `e` at the probe points.
    pub fn of(e: &Expr) -> Fingerprint {
        let x = probe_points();
        let mut y = vec![0.0f32; x.len()];
        let report = Tape::new(&e.graph, &[e.root]).map(x, &mut y);
        Fingerprint {
            bucket: bucket_of(&y[..BUCKET_POINTS]),
            values: y.into_boxed_slice(),
            nonfinite: report.nonfinite,
        }
    }

    /// The coarse hash that equal functions share (see the module docs).
    pub fn bucket(&self) -> u64 {
        self.bucket
    }

    /// The outputs, in the order of [`probe_points`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Probe points where the output is NaN or infinite.
    pub fn nonfinite(&self) -> usize {
        self.nonfinite
    }

    /// The worst point as a multiple of the tolerance: ≤ 1 means the two
    /// fingerprints match; infinite when a point differs in class (NaN,
    /// ±inf, finite). For logs of what was merged.
    pub fn distance(&self, other: &Fingerprint) -> f32 {
        let mut worst = 0.0f32;
        for (&a, &b) in self.values.iter().zip(other.values.iter()) {
            let d = if a.is_finite() && b.is_finite() {
                (a - b).abs() / (REL_TOL * a.abs().max(b.abs()) + ABS_TOL)
            } else if same_class(a, b) {
                0.0
            } else {
                f32::INFINITY
            };
            // A finite difference that overflowed is a mismatch too.
            worst = worst.max(if d.is_nan() { f32::INFINITY } else { d });
        }
        worst
    }

    /// Whether the two are the same function at every probe point.
    pub fn matches(&self, other: &Fingerprint) -> bool {
        self.bucket == other.bucket && self.distance(other) <= 1.0
    }
}

/// Both NaN, or both the same infinity.
fn same_class(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || (a.is_infinite() && a == b)
}

fn bucket_of(values: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &v in values {
        let code: u64 = if v.is_nan() {
            1
        } else if v == f32::INFINITY {
            2
        } else if v == f32::NEG_INFINITY {
            3
        } else if v.abs() < BUCKET_ZERO {
            4
        } else {
            // Keep sign, exponent and 7 mantissa bits, rounded to nearest.
            (1 << 32) | ((v.to_bits() as u64 + (1 << 15)) >> 16)
        };
        h = (h ^ code).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    h
}

/// Fingerprints seen so far, each with a caller's key; finds the entry of
/// the same function.
#[derive(Clone, Debug)]
pub struct FunctionIndex<K> {
    buckets: HashMap<u64, Vec<(Fingerprint, K)>>,
    len: usize,
}

impl<K> Default for FunctionIndex<K> {
    fn default() -> Self {
        FunctionIndex {
            buckets: HashMap::new(),
            len: 0,
        }
    }
}

impl<K> FunctionIndex<K> {
    pub fn new() -> FunctionIndex<K> {
        FunctionIndex::default()
    }

    /// Number of distinct functions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key and fingerprint of a stored function equal to `fp`, the
    /// first one inserted if several are.
    pub fn find(&self, fp: &Fingerprint) -> Option<(&K, &Fingerprint)> {
        self.buckets
            .get(&fp.bucket)?
            .iter()
            .find(|(f, _)| f.matches(fp))
            .map(|(f, k)| (k, f))
    }

    /// The key of the stored function equal to `fp`; if there is none,
    /// store `fp` under `key` and return `None`.
    pub fn find_or_insert(&mut self, fp: Fingerprint, key: K) -> Option<&K> {
        let bucket = self.buckets.entry(fp.bucket).or_default();
        match bucket.iter().position(|(f, _)| f.matches(&fp)) {
            Some(i) => Some(&bucket[i].1),
            None => {
                bucket.push((fp, key));
                self.len += 1;
                None
            }
        }
    }
}
