//! The rewrite rules, as data: each has a name, the op it applies to, and a
//! small function that either builds the replacement (through
//! [`Rewriter::mk`], so results are themselves simplified) or declines.
//!
//! Soundness notes sit next to each rule. "finite(a)" means the interval
//! analysis proves `a` is never NaN or infinite at any finite input; rules
//! such as `a - a → 0` need it because `inf - inf` is NaN.

use super::interval::Interval;
use super::Rewriter;
use crate::ir::ops::MAX_INT_POW;
use crate::ir::{Id, Node, Op};

type Apply = fn(&mut Rewriter, &[Id]) -> Option<Id>;
type ApplyAny = fn(&mut Rewriter, Op, &[Id]) -> Option<Id>;

pub struct Rule {
    pub name: &'static str,
    pub op: Op,
    pub apply: Apply,
}

const fn rule(name: &'static str, op: Op, apply: Apply) -> Rule {
    Rule { name, op, apply }
}

/// Rules that apply to every op; tried before [`RULES`].
pub static GENERIC: &[(&str, ApplyAny)] = &[("fold-constants", fold_constants)];

/// Op-specific rules, tried in order; the first that applies wins.
pub static RULES: &[Rule] = &[
    rule("neg-neg", Op::Neg, |rw, a| {
        app(rw, a[0], Op::Neg).map(|n| n[0])
    }),
    // -(a - b) = b - a exactly: round-to-nearest is symmetric.
    rule("neg-sub", Op::Neg, |rw, a| {
        app(rw, a[0], Op::Sub).map(|s| rw.mk(Op::Sub, &[s[1], s[0]]))
    }),
    rule("add-zero", Op::Add, zero_side),
    rule("add-neg", Op::Add, add_neg),
    // a + a = 2a exactly.
    rule("add-self", Op::Add, |rw, a| {
        (a[0] == a[1]).then(|| mul_const(rw, 2.0, a[0]))
    }),
    rule("sub-zero", Op::Sub, |rw, a| {
        rw.is_const(a[1], 0.0).then_some(a[0])
    }),
    rule("zero-sub", Op::Sub, |rw, a| {
        rw.is_const(a[0], 0.0).then(|| rw.mk(Op::Neg, &[a[1]]))
    }),
    rule("sub-self", Op::Sub, |rw, a| {
        (a[0] == a[1] && finite(rw, a[0])).then(|| rw.constant(0.0))
    }),
    rule("sub-neg", Op::Sub, |rw, a| {
        app(rw, a[1], Op::Neg).map(|n| rw.mk(Op::Add, &[a[0], n[0]]))
    }),
    // -a - b = -(a + b) exactly.
    rule("neg-minus", Op::Sub, |rw, a| {
        app(rw, a[0], Op::Neg).map(|n| neg_of(rw, Op::Add, &[n[0], a[1]]))
    }),
    rule("mul-one", Op::Mul, one_side),
    rule("mul-minus-one", Op::Mul, mul_minus_one),
    rule("mul-neg", Op::Mul, mul_neg),
    rule("mul-const-const", Op::Mul, mul_const_assoc),
    // a * a = a^2: integer powers are evaluated as exact products.
    rule("mul-self", Op::Mul, |rw, a| {
        (a[0] == a[1]).then(|| pow_const(rw, a[0], 2.0))
    }),
    rule("mul-pow", Op::Mul, mul_pow),
    rule("div-one", Op::Div, |rw, a| {
        rw.is_const(a[1], 1.0).then_some(a[0])
    }),
    rule("div-minus-one", Op::Div, |rw, a| {
        rw.is_const(a[1], -1.0).then(|| rw.mk(Op::Neg, &[a[0]]))
    }),
    // a / a = 1 exactly for finite nonzero a.
    rule("div-self", Op::Div, |rw, a| {
        (a[0] == a[1] && finite(rw, a[0]) && rw.info(a[0]).iv.excludes_zero())
            .then(|| rw.constant(1.0))
    }),
    rule("div-neg", Op::Div, div_neg),
    rule("pow-one", Op::Pow, |rw, a| {
        rw.is_const(a[1], 1.0).then_some(a[0])
    }),
    rule("pow-zero", Op::Pow, |rw, a| {
        rw.is_const(a[1], 0.0).then(|| rw.constant(1.0))
    }),
    rule("pow-pow", Op::Pow, pow_pow),
    rule("pow-even-sign", Op::Pow, pow_even_sign),
    rule("abs-nonneg", Op::Abs, |rw, a| {
        rw.info(a[0]).iv.nonneg().then_some(a[0])
    }),
    rule("abs-nonpos", Op::Abs, |rw, a| {
        rw.info(a[0]).iv.nonpos().then(|| rw.mk(Op::Neg, &[a[0]]))
    }),
    rule("abs-neg", Op::Abs, |rw, a| {
        app(rw, a[0], Op::Neg).map(|n| rw.mk(Op::Abs, &[n[0]]))
    }),
    rule("cos-even", Op::Cos, |rw, a| {
        sign_free(rw, a[0]).map(|b| rw.mk(Op::Cos, &[b]))
    }),
    rule("sin-odd", Op::Sin, |rw, a| odd(rw, Op::Sin, a[0])),
    rule("tan-odd", Op::Tan, |rw, a| odd(rw, Op::Tan, a[0])),
    rule("tanh-odd", Op::Tanh, |rw, a| odd(rw, Op::Tanh, a[0])),
    rule("erf-odd", Op::Erf, |rw, a| odd(rw, Op::Erf, a[0])),
    rule("max-decided", Op::Max, |rw, a| decided(rw, a, true)),
    rule("min-decided", Op::Min, |rw, a| decided(rw, a, false)),
    rule("max-idempotent", Op::Max, |rw, a| {
        nested_same(rw, Op::Max, a)
    }),
    rule("min-idempotent", Op::Min, |rw, a| {
        nested_same(rw, Op::Min, a)
    }),
    rule("clamp-inside", Op::Clamp, clamp_inside),
    rule("clamp-clamp", Op::Clamp, |rw, a| {
        app(rw, a[0], Op::Clamp)
            .filter(|c| c[1] == a[1] && c[2] == a[2])
            .map(|_| a[0])
    }),
    rule("where-same", Op::Where, |_, a| {
        (a[1] == a[2]).then_some(a[1])
    }),
    rule("where-decided", Op::Where, where_decided),
    rule("where-div-self", Op::Where, where_div_self),
    rule("where-bool", Op::Where, |rw, a| {
        (rw.info(a[0]).boolean && rw.is_const(a[1], 1.0) && rw.is_const(a[2], 0.0)).then_some(a[0])
    }),
    // where(a, a, 0) = a up to the sign of a zero (NaN takes the first branch).
    rule("where-self-zero", Op::Where, |rw, a| {
        (a[0] == a[1] && rw.is_const(a[2], 0.0)).then_some(a[0])
    }),
    rule("where-guard", Op::Where, where_guard),
    rule("where-not", Op::Where, where_not),
    // a > b is b < a; a >= b is b <= a: only `<` and `<=` remain.
    rule("gt-flip", Op::Gt, |rw, a| {
        Some(rw.mk(Op::Lt, &[a[1], a[0]]))
    }),
    rule("ge-flip", Op::Ge, |rw, a| {
        Some(rw.mk(Op::Le, &[a[1], a[0]]))
    }),
    rule("lt-self", Op::Lt, |rw, a| {
        (a[0] == a[1] && !rw.info(a[0]).iv.nan).then(|| rw.constant(0.0))
    }),
    rule("le-self", Op::Le, |rw, a| {
        (a[0] == a[1] && !rw.info(a[0]).iv.nan).then(|| rw.constant(1.0))
    }),
];

/// Try the rules for `op`; on success return the rule's name and result.
pub fn apply(rw: &mut Rewriter, op: Op, args: &[Id]) -> Option<(&'static str, Id)> {
    if let Some(hit) = GENERIC
        .iter()
        .find_map(|(name, f)| f(rw, op, args).map(|id| (*name, id)))
    {
        return Some(hit);
    }
    RULES
        .iter()
        .filter(|r| r.op == op)
        .find_map(|r| (r.apply)(rw, args).map(|id| (r.name, id)))
}

/// The arguments of `id` if it is an application of `op`.
fn app(rw: &Rewriter, id: Id, op: Op) -> Option<[Id; 3]> {
    match rw.node(id) {
        Node::App(o, args) if o == op => Some(args),
        _ => None,
    }
}

fn finite(rw: &Rewriter, id: Id) -> bool {
    rw.info(id).iv.finite()
}

/// All-constant arguments: evaluate in f64. Results outside the f32 range
/// are left alone, so f32 overflow behaves as it would have at run time.
fn fold_constants(rw: &mut Rewriter, op: Op, args: &[Id]) -> Option<Id> {
    let mut v3 = [0.0; 3];
    for (slot, &i) in v3.iter_mut().zip(args) {
        *slot = rw.const_of(i)?;
    }
    let v = op.info().f64.call(&v3);
    (v.is_finite() && v.abs() <= f32::MAX as f64).then(|| rw.constant(v))
}

fn zero_side(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    if rw.is_const(a[0], 0.0) {
        Some(a[1])
    } else if rw.is_const(a[1], 0.0) {
        Some(a[0])
    } else {
        None
    }
}

fn one_side(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    if rw.is_const(a[0], 1.0) {
        Some(a[1])
    } else if rw.is_const(a[1], 1.0) {
        Some(a[0])
    } else {
        None
    }
}

/// a + (-b) = a - b exactly.
fn add_neg(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    if let Some(n) = app(rw, a[1], Op::Neg) {
        return Some(rw.mk(Op::Sub, &[a[0], n[0]]));
    }
    let n = app(rw, a[0], Op::Neg)?;
    Some(rw.mk(Op::Sub, &[a[1], n[0]]))
}

fn neg_of(rw: &mut Rewriter, op: Op, args: &[Id]) -> Id {
    let inner = rw.mk(op, args);
    rw.mk(Op::Neg, &[inner])
}

fn mul_const(rw: &mut Rewriter, c: f64, a: Id) -> Id {
    let k = rw.constant(c);
    rw.mk(Op::Mul, &[k, a])
}

fn pow_const(rw: &mut Rewriter, a: Id, k: f64) -> Id {
    let k = rw.constant(k);
    rw.mk(Op::Pow, &[a, k])
}

fn mul_minus_one(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let other = if rw.is_const(a[0], -1.0) {
        a[1]
    } else if rw.is_const(a[1], -1.0) {
        a[0]
    } else {
        return None;
    };
    Some(rw.mk(Op::Neg, &[other]))
}

/// (-a)(-b) = ab; (-a)b = -(ab); c(-a) = (-c)a: negation moves outward or
/// into a constant, all exact.
fn mul_neg(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    match (app(rw, a[0], Op::Neg), app(rw, a[1], Op::Neg)) {
        (Some(x), Some(y)) => Some(rw.mk(Op::Mul, &[x[0], y[0]])),
        (Some(x), None) => Some(neg_of(rw, Op::Mul, &[x[0], a[1]])),
        (None, Some(y)) => match rw.const_of(a[0]) {
            Some(c) => Some(mul_const(rw, -c, y[0])),
            None => Some(neg_of(rw, Op::Mul, &[a[0], y[0]])),
        },
        (None, None) => None,
    }
}

/// c1 * (c2 * a) = (c1 c2) * a, where that changes only rounding: the
/// product `c2 * a` must not overflow or underflow at a value `a` takes
/// unless `(c1 c2) * a` does too (see [`rescaling_is_exact_enough`]).
fn mul_const_assoc(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let c1 = rw.const_of(a[0])?;
    let inner = app(rw, a[1], Op::Mul)?;
    let c2 = rw.const_of(inner[0])?;
    let c = c1 * c2;
    let ok = c.is_finite()
        && c != 0.0
        && c.abs() <= f32::MAX as f64
        && rescaling_is_exact_enough(c1, c2, rw.info(inner[1]).iv);
    ok.then(|| mul_const(rw, c, inner[1]))
}

/// Whether `c1 * (c2 * v)` and `(c1 c2) * v` overflow and underflow alike
/// for every `v` in `iv` (NaN and ±inf propagate alike).
///
/// If both constants scale the same way (both |c| ≥ 1 or both ≤ 1), the
/// intermediate `|c2 v|` lies between `|v|` and `|c1 c2 v|`: it leaves the
/// finite range (or rounds to zero) only where the result does as well.
/// If `|c2| > 1 > |c1|`, the intermediate may overflow where the result
/// does not (`1e-300 * (1e300 * x)` at x = 1e10), so `|c2 v|` must stay
/// finite for every finite `v`. If `|c2| < 1 < |c1|`, it may underflow
/// (`1e300 * (1e-300 * x)` at x = 1e-10), so `|c2 v|` must stay normal for
/// every nonzero `v`, which needs `iv` to exclude zero.
fn rescaling_is_exact_enough(c1: f64, c2: f64, iv: Interval) -> bool {
    let (a1, a2) = (c1.abs(), c2.abs());
    if c2 == 0.0 || !c2.is_finite() || !c1.is_finite() {
        return false;
    }
    if (a1 >= 1.0) == (a2 >= 1.0) || a1 == 1.0 || a2 == 1.0 {
        return true;
    }
    let big = iv.lo.abs().max(iv.hi.abs());
    if a2 > 1.0 {
        return big.is_finite() && big * a2 * (1.0 + 1e-6) <= f64::MAX;
    }
    let small = if iv.lo > 0.0 {
        iv.lo
    } else if iv.hi < 0.0 {
        -iv.hi
    } else {
        return false;
    };
    small * a2 >= f64::MIN_POSITIVE * (1.0 + 1e-6)
}

/// a * a^k = a^(k+1) for a positive integer k (products of the same base),
/// while k + 1 stays an exponent computed by repeated multiplication.
fn mul_pow(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    for (base, p) in [(a[0], a[1]), (a[1], a[0])] {
        if let Some(pw) = app(rw, p, Op::Pow) {
            let k = rw.const_of(pw[1])?;
            if pw[0] == base && k == k.trunc() && (1.0..f64::from(MAX_INT_POW)).contains(&k) {
                return Some(pow_const(rw, base, k + 1.0));
            }
        }
    }
    None
}

/// (-a)/b = -(a/b); a/(-b) = -(a/b): exact.
fn div_neg(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    match (app(rw, a[0], Op::Neg), app(rw, a[1], Op::Neg)) {
        (Some(x), Some(y)) => Some(rw.mk(Op::Div, &[x[0], y[0]])),
        (Some(x), None) => Some(neg_of(rw, Op::Div, &[x[0], a[1]])),
        (None, Some(y)) => Some(neg_of(rw, Op::Div, &[a[0], y[0]])),
        (None, None) => None,
    }
}

/// (a^j)^k = a^(jk) for positive integers with jk ≤ 64.
fn pow_pow(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let inner = app(rw, a[0], Op::Pow)?;
    let (j, k) = (rw.const_of(inner[1])?, rw.const_of(a[1])?);
    let int = |v: f64| v == v.trunc() && v >= 1.0;
    (int(j) && int(k) && j * k <= 64.0).then(|| pow_const(rw, inner[0], j * k))
}

/// (-a)^k = |a|^k = a^k for even integer k.
fn pow_even_sign(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let k = rw.const_of(a[1])?;
    if k != k.trunc() || k % 2.0 != 0.0 {
        return None;
    }
    let b = sign_free(rw, a[0])?;
    Some(rw.mk(Op::Pow, &[b, a[1]]))
}

/// `b` if `id` is `-b` or `abs(b)` (for even functions).
fn sign_free(rw: &Rewriter, id: Id) -> Option<Id> {
    app(rw, id, Op::Neg)
        .or_else(|| app(rw, id, Op::Abs))
        .map(|n| n[0])
}

/// f(-a) = -f(a) for odd f (libm's sin, tan, tanh, erf are odd exactly).
fn odd(rw: &mut Rewriter, op: Op, arg: Id) -> Option<Id> {
    let n = app(rw, arg, Op::Neg)?;
    Some(neg_of(rw, op, &[n[0]]))
}

/// max(a, b) = a when a ≥ b everywhere (min: a ≤ b).
fn decided(rw: &mut Rewriter, a: &[Id], max: bool) -> Option<Id> {
    let (x, y) = (rw.info(a[0]).iv, rw.info(a[1]).iv);
    if x.nan || y.nan {
        return None;
    }
    let (big, small) = if max { (a[0], a[1]) } else { (a[1], a[0]) };
    if a[0] == a[1] {
        return Some(a[0]);
    }
    let (bi, si) = (rw.info(big).iv, rw.info(small).iv);
    if bi.lo >= si.hi {
        return Some(if max { big } else { small });
    }
    if si.lo >= bi.hi {
        return Some(if max { small } else { big });
    }
    None
}

/// max(max(a, b), b) = max(a, b) (and min).
fn nested_same(rw: &mut Rewriter, op: Op, a: &[Id]) -> Option<Id> {
    for (outer, other) in [(a[0], a[1]), (a[1], a[0])] {
        if let Some(inner) = app(rw, outer, op) {
            if inner[0] == other || inner[1] == other {
                return Some(outer);
            }
        }
    }
    None
}

/// clamp(a, lo, hi) = a when lo ≤ a ≤ hi everywhere.
fn clamp_inside(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let (v, lo, hi) = (rw.info(a[0]).iv, rw.info(a[1]).iv, rw.info(a[2]).iv);
    (!v.nan && !lo.nan && !hi.nan && v.lo >= lo.hi && v.hi <= hi.lo).then_some(a[0])
}

/// where(c, a, b) with c decided by the analysis (c ≠ 0 or c = 0).
fn where_decided(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let c = rw.info(a[0]).iv;
    if c.excludes_zero() {
        return Some(a[1]);
    }
    (c.as_point() == Some(0.0)).then_some(a[2])
}

/// where(k < abs(a), a / a, e) = where(k < abs(a), 1, e) for k ≥ 0 and
/// finite a: the guard makes a nonzero wherever the quotient is used. This
/// is `safe_div(a, a) = 1`.
fn where_div_self(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    let cond = app(rw, a[0], Op::Lt)?;
    let k = rw.const_of(cond[0])?;
    let guarded = app(rw, cond[1], Op::Abs)?[0];
    let q = app(rw, a[1], Op::Div)?;
    if k < 0.0 || q[0] != guarded || q[1] != guarded || !finite(rw, guarded) {
        return None;
    }
    let one = rw.constant(1.0);
    Some(rw.mk(Op::Where, &[a[0], one, a[2]]))
}

/// where(s, m * s, 0) = m * s for finite m (up to the sign of a zero),
/// and where(d, where(s, d * s, 0), 0) = where(s, d * s, 0) for finite s
/// (finite in f64 and in f32, so the f32 paths keep the guard too):
/// the guards a derivative rule's `chain` puts around a product
/// ([`crate::diff`]) are needed only where the other factor may be
/// infinite.
fn where_guard(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    if !rw.is_const(a[2], 0.0) {
        return None;
    }
    if let Some(inner) = app(rw, a[1], Op::Where) {
        let s = inner[0];
        let pair = guarded_factors(rw, inner[1], s)?;
        let nested = rw.is_const(inner[2], 0.0) && pair == a[0] && rw.finite_in_f32_too(s);
        return nested.then_some(a[1]);
    }
    let m = guarded_factors(rw, a[1], a[0])?;
    rw.finite_in_f32_too(m).then_some(a[1])
}

/// If `product` is `c * m` (either order), `m`.
fn guarded_factors(rw: &Rewriter, product: Id, c: Id) -> Option<Id> {
    let p = app(rw, product, Op::Mul)?;
    match (p[0] == c, p[1] == c) {
        (_, true) => Some(p[0]),
        (true, _) => Some(p[1]),
        _ => None,
    }
}

/// where(p < q, 0, 1) = q <= p and where(p <= q, 0, 1) = q < p when
/// neither side can be NaN (a comparison with NaN is 0 both ways).
fn where_not(rw: &mut Rewriter, a: &[Id]) -> Option<Id> {
    if !(rw.is_const(a[1], 0.0) && rw.is_const(a[2], 1.0)) {
        return None;
    }
    let (op, c) = match rw.node(a[0]) {
        Node::App(Op::Lt, c) => (Op::Le, c),
        Node::App(Op::Le, c) => (Op::Lt, c),
        _ => return None,
    };
    let nan = rw.info(c[0]).iv.nan || rw.info(c[1]).iv.nan;
    (!nan).then(|| rw.mk(op, &[c[1], c[0]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_unique() {
        let mut names: Vec<&str> = RULES
            .iter()
            .map(|r| r.name)
            .chain(GENERIC.iter().map(|g| g.0))
            .collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
