//! Interval and sign analysis over the IR, used to guard conditional
//! rewrites (`abs(a) → a` when `a ≥ 0`, `a / a → 1` when `a` is finite and
//! nonzero, constant reassociation where nothing can overflow, folding
//! decided comparisons and `where`s).
//!
//! Bounds are conservative for the meaning of a formula, its f64 reference
//! evaluation (PRIMITIVES.md), at any finite input `x` (any finite f64; the
//! f32 inputs are among them). `[lo, hi]` bounds the values that are not
//! NaN, infinities included, and the `nan` flag records whether NaN is
//! possible. Results of rounded operations are widened by a relative
//! epsilon (zero bounds stay exact: IEEE rounding is monotonic and
//! sign-preserving).
//!
//! Special values follow PRIMITIVES.md: `max`/`min` are IEEE maxNum/minNum
//! (a NaN operand yields the other operand), comparisons with NaN are 0,
//! and `where` takes its first branch on a NaN condition.
//!
//! The f32 paths evaluate the *simplified* formula and approximate this
//! value; f32 overflow and underflow are limits of those paths, not part
//! of the meaning. Where a guard must also hold in f32 (the derivative
//! guards), [`Interval::in_f32`] gives the f32 view of a transfer's result
//! (`Rewriter::finite_in_f32_too`).

use crate::ir::ops::{sigmoid_f64, Op};
use crate::ir::{Graph, Id, Node};

/// Relative widening applied to rounded results (libm's error is far
/// below it).
const WIDEN: f64 = 1e-6;
const DMAX: f64 = f64::MAX;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    /// NaN is possible.
    pub nan: bool,
}

impl Interval {
    /// Any finite number (the input `x`).
    pub const FINITE: Interval = Interval {
        lo: -DMAX,
        hi: DMAX,
        nan: false,
    };
    /// Any finite f32 (the input `x` of the f32 paths).
    pub const FINITE_F32: Interval = Interval {
        lo: -(f32::MAX as f64),
        hi: f32::MAX as f64,
        nan: false,
    };
    pub const ALL: Interval = Interval {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
        nan: true,
    };
    pub const BOOL: Interval = Interval {
        lo: 0.0,
        hi: 1.0,
        nan: false,
    };

    pub fn point(v: f64) -> Interval {
        Interval::new(v, v, v.is_nan())
    }

    /// `[lo, hi]`, or everything if a bound is NaN (an unknown bound).
    pub fn new(lo: f64, hi: f64, nan: bool) -> Interval {
        if lo.is_nan() || hi.is_nan() {
            return Interval::ALL;
        }
        Interval { lo, hi, nan }
    }

    /// The same values as an f32 evaluation produces them: beyond f32's
    /// range they are infinite, and a nonzero value below its smallest
    /// normal may round to zero (rounding keeps the sign, so only the
    /// bound nearest zero moves).
    pub fn in_f32(self) -> Interval {
        let (fmax, tiny) = (f32::MAX as f64, f32::MIN_POSITIVE as f64);
        let f = |v: f64| {
            if v > fmax {
                f64::INFINITY
            } else if v < -fmax {
                f64::NEG_INFINITY
            } else if v.abs() < tiny {
                0.0
            } else {
                v
            }
        };
        Interval::new(f(self.lo), f(self.hi), self.nan)
    }

    /// Widen both bounds outward by a relative epsilon.
    fn widen(self) -> Interval {
        let w = |v: f64, dir: f64| {
            if v.is_finite() {
                v + dir * v.abs() * WIDEN
            } else {
                v
            }
        };
        Interval::new(w(self.lo, -1.0), w(self.hi, 1.0), self.nan)
    }

    /// Never NaN or infinite.
    pub fn finite(&self) -> bool {
        !self.nan && self.lo.is_finite() && self.hi.is_finite()
    }

    pub fn excludes_zero(&self) -> bool {
        !self.nan && (self.lo > 0.0 || self.hi < 0.0)
    }

    pub fn nonneg(&self) -> bool {
        !self.nan && self.lo >= 0.0
    }

    pub fn nonpos(&self) -> bool {
        !self.nan && self.hi <= 0.0
    }

    /// The single value this interval pins down, if any.
    pub fn as_point(&self) -> Option<f64> {
        (self.finite() && self.lo == self.hi).then_some(self.lo)
    }

    pub fn hull(self, o: Interval) -> Interval {
        Interval::new(self.lo.min(o.lo), self.hi.max(o.hi), self.nan || o.nan)
    }

    fn unbounded(&self) -> bool {
        !self.lo.is_finite() || !self.hi.is_finite()
    }

    /// Map through a monotonically non-decreasing function.
    fn monotone(self, f: impl Fn(f64) -> f64, nan: bool) -> Interval {
        Interval::new(f(self.lo), f(self.hi), self.nan || nan).widen()
    }
}

/// Product of two bounds where `0 · ∞` counts as 0 (NaN is flagged apart).
fn mul_bound(a: f64, b: f64) -> f64 {
    if a == 0.0 || b == 0.0 {
        0.0
    } else {
        a * b
    }
}

fn mul(a: Interval, b: Interval) -> Interval {
    let p = [
        mul_bound(a.lo, b.lo),
        mul_bound(a.lo, b.hi),
        mul_bound(a.hi, b.lo),
        mul_bound(a.hi, b.hi),
    ];
    let zero_inf = (a.lo <= 0.0 && a.hi >= 0.0 && b.unbounded())
        || (b.lo <= 0.0 && b.hi >= 0.0 && a.unbounded());
    let lo = p.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Interval::new(lo, hi, a.nan || b.nan || zero_inf).widen()
}

fn div(a: Interval, b: Interval) -> Interval {
    if b.lo <= 0.0 && b.hi >= 0.0 {
        let nan =
            a.nan || b.nan || (a.lo <= 0.0 && a.hi >= 0.0) || (a.unbounded() && b.unbounded());
        return Interval::new(f64::NEG_INFINITY, f64::INFINITY, nan);
    }
    let inv = Interval::new(1.0 / b.hi, 1.0 / b.lo, b.nan);
    let mut r = mul(a, inv);
    r.nan = a.nan || b.nan || (a.unbounded() && b.unbounded());
    r
}

fn add(a: Interval, b: Interval) -> Interval {
    let nan = a.nan
        || b.nan
        || (a.hi == f64::INFINITY && b.lo == f64::NEG_INFINITY)
        || (a.lo == f64::NEG_INFINITY && b.hi == f64::INFINITY);
    Interval::new(a.lo + b.lo, a.hi + b.hi, nan).widen()
}

fn neg(a: Interval) -> Interval {
    Interval::new(-a.hi, -a.lo, a.nan)
}

fn abs(a: Interval) -> Interval {
    if a.lo >= 0.0 {
        a
    } else if a.hi <= 0.0 {
        neg(a)
    } else {
        Interval::new(0.0, (-a.lo).max(a.hi), a.nan)
    }
}

fn pow(a: Interval, k: f64) -> Interval {
    let integer = k == k.trunc() && k.abs() <= 64.0;
    if k == 0.0 {
        return Interval::point(1.0);
    }
    if integer && k > 0.0 {
        let even = (k as i64) % 2 == 0;
        let r = if even {
            let m = abs(a);
            Interval::new(powr(m.lo, k), powr(m.hi, k), a.nan)
        } else {
            Interval::new(powr(a.lo, k), powr(a.hi, k), a.nan)
        };
        return r.widen();
    }
    if integer {
        // a^-n = 1 / a^n
        return div(Interval::point(1.0), pow(a, -k));
    }
    if a.lo >= 0.0 {
        let (x, y) = (powr(a.lo, k), powr(a.hi, k));
        return Interval::new(x.min(y), x.max(y), a.nan).widen();
    }
    Interval::ALL
}

/// Real power with infinities handled (for bounds only).
fn powr(v: f64, k: f64) -> f64 {
    v.powf(k)
}

fn sigmoid(a: Interval) -> Interval {
    let r = a.monotone(sigmoid_f64, false);
    Interval::new(r.lo.max(0.0), r.hi.min(1.0), r.nan)
}

/// A comparison: 1 only if it holds for every pair of values and neither
/// side can be NaN; 0 if it fails for every pair (NaN makes it fail too).
fn cmp(op: Op, a: Interval, b: Interval) -> Interval {
    let certain = match op {
        Op::Lt => (a.hi < b.lo, a.lo >= b.hi),
        Op::Le => (a.hi <= b.lo, a.lo > b.hi),
        Op::Gt => (a.lo > b.hi, a.hi <= b.lo),
        Op::Ge => (a.lo >= b.hi, a.hi < b.lo),
        _ => unreachable!("not a comparison"),
    };
    match certain {
        (true, _) if !a.nan && !b.nan => Interval::point(1.0),
        (_, true) => Interval::point(0.0),
        _ => Interval::BOOL,
    }
}

/// `max(a, b)` as IEEE maxNum: where `a` may be NaN the result may be any
/// value of `b` (and the other way round); NaN only if both may be NaN.
fn max(a: Interval, b: Interval) -> Interval {
    let mut lo = a.lo.max(b.lo);
    if a.nan {
        lo = lo.min(b.lo);
    }
    if b.nan {
        lo = lo.min(a.lo);
    }
    Interval::new(lo, a.hi.max(b.hi), a.nan && b.nan)
}

/// `min(a, b)` as IEEE minNum (see [`max`]).
fn min(a: Interval, b: Interval) -> Interval {
    neg(max(neg(a), neg(b)))
}

/// `where(c, a, b)`: `a` where `c ≠ 0`, NaN included.
fn select(c: Interval, a: Interval, b: Interval) -> Interval {
    if c.lo > 0.0 || c.hi < 0.0 {
        a
    } else if c.lo == 0.0 && c.hi == 0.0 && !c.nan {
        b
    } else {
        a.hull(b)
    }
}

/// The interval of every node reachable from `roots`, indexed by node id
/// (nodes not reached get [`Interval::ALL`]). For passes that need the
/// analysis of a finished graph; the rewriter computes it as it builds.
pub fn of_graph(g: &Graph, roots: &[Id]) -> Vec<Interval> {
    let mut out = vec![Interval::ALL; g.len()];
    for id in g.reachable(roots) {
        out[id.index()] = match *g.node(id) {
            Node::X => Interval::FINITE,
            Node::Const(b) => Interval::point(f64::from_bits(b)),
            Node::App(op, a) => {
                let mut args = [Interval::ALL; 3];
                for (i, c) in a[..op.arity()].iter().enumerate() {
                    args[i] = out[c.index()];
                }
                let k = (op == Op::Pow).then(|| g.const_value(a[1])).flatten();
                transfer(op, &args[..op.arity()], k)
            }
        };
    }
    out
}

/// The interval of `op` applied to arguments with intervals `a`. `k` is
/// the exponent constant for `Pow`.
pub fn transfer(op: Op, a: &[Interval], k: Option<f64>) -> Interval {
    let unary_nan_inf = |i: Interval| i.nan || i.unbounded();
    match op {
        Op::Neg => neg(a[0]),
        Op::Add => add(a[0], a[1]),
        Op::Sub => add(a[0], neg(a[1])),
        Op::Mul => mul(a[0], a[1]),
        Op::Div => div(a[0], a[1]),
        Op::Pow => match k {
            Some(k) => pow(a[0], k),
            None => Interval::ALL,
        },
        Op::Abs => abs(a[0]),
        Op::Exp => {
            let r = a[0].monotone(f64::exp, false);
            Interval::new(r.lo.max(0.0), r.hi, r.nan)
        }
        Op::Log => {
            let i = a[0];
            let nan = i.nan || i.lo < 0.0;
            let lo = if i.lo <= 0.0 {
                f64::NEG_INFINITY
            } else {
                i.lo.ln()
            };
            let hi = if i.hi <= 0.0 {
                f64::NEG_INFINITY
            } else {
                i.hi.ln()
            };
            Interval::new(lo, hi, nan).widen()
        }
        Op::Log1p => {
            let i = a[0];
            let nan = i.nan || i.lo < -1.0;
            let lo = if i.lo <= -1.0 {
                f64::NEG_INFINITY
            } else {
                i.lo.ln_1p()
            };
            let hi = if i.hi <= -1.0 {
                f64::NEG_INFINITY
            } else {
                i.hi.ln_1p()
            };
            Interval::new(lo, hi, nan).widen()
        }
        Op::Sqrt => {
            let i = a[0];
            Interval::new(
                i.lo.max(0.0).sqrt(),
                i.hi.max(0.0).sqrt(),
                i.nan || i.lo < 0.0,
            )
            .widen()
        }
        Op::Sin | Op::Cos => Interval::new(-1.0, 1.0, unary_nan_inf(a[0])),
        Op::Tan => {
            let i = a[0];
            let half_pi = std::f64::consts::FRAC_PI_2;
            if i.lo > -half_pi + 1e-3 && i.hi < half_pi - 1e-3 && !i.nan {
                Interval::new(i.lo.tan(), i.hi.tan(), false).widen()
            } else {
                Interval::new(f64::NEG_INFINITY, f64::INFINITY, unary_nan_inf(i))
            }
        }
        Op::Tanh => {
            let r = a[0].monotone(f64::tanh, false);
            Interval::new(r.lo.max(-1.0), r.hi.min(1.0), r.nan)
        }
        Op::Erf => {
            let r = a[0].monotone(libm::erf, false);
            Interval::new(r.lo.max(-1.0), r.hi.min(1.0), r.nan)
        }
        Op::Sigmoid => sigmoid(a[0]),
        Op::Max => max(a[0], a[1]),
        Op::Min => min(a[0], a[1]),
        Op::Clamp => min(max(a[0], a[1]), a[2]),
        Op::Where => select(a[0], a[1], a[2]),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => cmp(op, a[0], a[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_of_common_shapes() {
        let x = Interval::FINITE;
        let s = transfer(Op::Sigmoid, &[x], None);
        assert!(s.nonneg() && s.hi <= 1.0 && s.finite());
        let e = transfer(Op::Exp, &[x], None);
        assert!(e.nonneg() && !e.finite());
        let sq = transfer(Op::Pow, &[x], Some(2.0));
        assert!(sq.nonneg());
        let d = transfer(Op::Div, &[x, x], None);
        assert!(d.nan);
        let one = Interval::point(1.0);
        let abs_x = transfer(Op::Abs, &[x], None);
        let denom = transfer(Op::Add, &[one, abs_x], None);
        assert!(denom.excludes_zero() && denom.lo >= 1.0 - 1e-5);
    }

    #[test]
    fn decided_comparisons_are_points() {
        let a = Interval::new(2.0, 3.0, false);
        let b = Interval::new(-1.0, 1.0, false);
        assert_eq!(transfer(Op::Gt, &[a, b], None).as_point(), Some(1.0));
        assert_eq!(transfer(Op::Lt, &[a, b], None).as_point(), Some(0.0));
        assert_eq!(transfer(Op::Lt, &[b, b], None).as_point(), None);
    }

    /// PRIMITIVES.md special values: maxNum/minNum take the other operand
    /// of a NaN, a NaN condition takes where's first branch, a comparison
    /// with NaN is 0.
    #[test]
    fn nan_operands_follow_the_special_values() {
        let five_or_nan = Interval::new(5.0, 5.0, true);
        let zero = Interval::point(0.0);
        let m = transfer(Op::Max, &[five_or_nan, zero], None);
        assert!(m.lo <= 0.0 && m.hi >= 5.0 && !m.nan, "{m:?}");
        let m = transfer(Op::Max, &[zero, five_or_nan], None);
        assert!(m.lo <= 0.0 && m.hi >= 5.0 && !m.nan, "{m:?}");
        let m = transfer(Op::Min, &[five_or_nan, Interval::point(9.0)], None);
        assert!(m.lo <= 5.0 && m.hi >= 9.0 && !m.nan, "{m:?}");
        let c = transfer(Op::Clamp, &[five_or_nan, zero, Interval::point(10.0)], None);
        assert!(c.lo <= 0.0 && c.hi >= 5.0 && !c.nan, "{c:?}");
        let nan_or_pos = Interval::new(1.0, 2.0, true);
        let w = transfer(Op::Where, &[nan_or_pos, Interval::point(7.0), zero], None);
        assert_eq!(w.as_point(), Some(7.0));
        // 5 < 9 holds unless NaN: undecided; 5 > 9 fails either way.
        let lt = transfer(Op::Lt, &[five_or_nan, Interval::point(9.0)], None);
        assert_eq!(lt.as_point(), None);
        let gt = transfer(Op::Gt, &[five_or_nan, Interval::point(9.0)], None);
        assert_eq!(gt.as_point(), Some(0.0));
    }

    #[test]
    fn the_f32_view_overflows_and_underflows() {
        let big = Interval::new(1e30, 1e39, false).in_f32();
        assert_eq!((big.lo, big.hi), (1e30, f64::INFINITY));
        let tiny = Interval::new(1e-60, 1.0, false).in_f32();
        assert_eq!((tiny.lo, tiny.hi), (0.0, 1.0));
        assert!(!Interval::new(1e-60, 1.0, false).in_f32().excludes_zero());
    }

    #[test]
    fn zero_times_unbounded_may_be_nan() {
        let z = Interval::new(0.0, 1.0, false);
        let big = transfer(Op::Exp, &[Interval::FINITE], None);
        assert!(transfer(Op::Mul, &[z, big], None).nan);
    }
}
