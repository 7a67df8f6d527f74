//! Shared oracles for the integration tests: random GP formulas, the
//! tolerance of PRIMITIVES.md, switch-point detection and conditioning.
#![allow(dead_code)]

pub mod harness;
pub mod procs;

use actforge::diff::Function;
use actforge::ir::{eval_f64, parse, Expr, Graph, Id, Node, Op, RefEval};
use proptest::prelude::*;

/// The seed primitive set's functions, by arity.
pub const UNARY: &[&str] = &["log1p_safe", "sin", "cos", "sigmoid_boost"];
pub const BINARY: &[&str] = &["safe_add", "safe_sub", "safe_mul", "safe_div"];

/// Random DEAP-style formulas over the seed primitive set, of height at
/// most `height` (root at depth 0), with terminals `ARG0`/`x` and `1.0`.
pub fn gp_formula(height: u32) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("x".to_string()),
        Just("ARG0".to_string()),
        Just("1.0".to_string())
    ];
    leaf.prop_recursive(height, 128, 2, |inner| {
        prop_oneof![
            (prop::sample::select(UNARY), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (prop::sample::select(BINARY), inner.clone(), inner)
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        ]
    })
}

/// The seed of this test process's property tests: `PROPTEST_RNG_SEED`
/// when set (to replay a run), otherwise a fresh one. Printed either way
/// (the test harness shows it with a failure), so any failing run can be
/// replayed exactly; CI sets and prints it before the tests start.
pub fn proptest_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| match std::env::var("PROPTEST_RNG_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("PROPTEST_RNG_SEED={v:?} is not a u64")),
        Err(_) => {
            use std::hash::{BuildHasher, Hasher};
            // Randomly keyed by the standard library (from the OS).
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        }
    });
    eprintln!("property tests: seed {seed} (replay with PROPTEST_RNG_SEED={seed})");
    seed
}

/// PRIMITIVES.md: relative 1e-4 plus absolute 1e-5.
pub fn close(got: f64, want: f64) -> bool {
    if !want.is_finite() || !got.is_finite() {
        return got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
    }
    (got - want).abs() <= 1e-4 * want.abs() + 1e-5
}

/// The branch every switching op takes at `x` (where/clamp/max/min/abs and
/// comparisons), as a vector of small integers.
pub fn decisions(g: &Graph, roots: &[Id], x: f64) -> Vec<i8> {
    let order = g.reachable(roots);
    let mut ev = RefEval::new(g, &order);
    let vals = ev.eval(g, x);
    let val = |id: Id| vals[order.iter().position(|&o| o == id).unwrap()];
    let sign = |v: f64| {
        if v.is_nan() {
            9
        } else {
            (v > 0.0) as i8 - (v < 0.0) as i8
        }
    };
    let mut out = Vec::new();
    for &id in &order {
        let node = g.node(id);
        let a = node.args();
        match node.op() {
            Some(Op::Where) => out.push(sign(val(a[0]))),
            Some(Op::Abs) => out.push(sign(val(a[0]))),
            Some(Op::Max | Op::Min) => out.push(sign(val(a[0]) - val(a[1]))),
            Some(Op::Clamp) => {
                out.push(sign(val(a[0]) - val(a[1])));
                out.push(sign(val(a[0]) - val(a[2])));
            }
            Some(op) if op.is_comparison() => out.push(sign(val(a[0]) - val(a[1]))),
            _ => {}
        }
    }
    out
}

/// Is `x` within 1e-3 of a switching point of any of `graphs`? (Sampled:
/// the decisions at x and at eight points within ±1e-3 must all agree.)
pub fn near_switch(graphs: &[(&Graph, &[Id])], x: f64) -> bool {
    graphs.iter().any(|(g, roots)| {
        let here = decisions(g, roots, x);
        (-4..=4).any(|k| decisions(g, roots, x + k as f64 * 2.5e-4) != here)
    })
}

/// First-order running error analysis of an f32 evaluation of `root` at
/// `x`: each node contributes its rounding error (½ ulp for correctly
/// rounded arithmetic, 4 ulps for libm functions) and amplifies its
/// arguments' errors by its partial derivatives (by central differences of
/// the f64 reference). Returns a bound on |f32 result − f64 result|.
pub fn f32_error_bound(g: &Graph, root: Id, x: f64) -> f64 {
    const U: f64 = 1.0 / (1u64 << 24) as f64;
    let order = g.reachable(&[root]);
    let mut val = vec![0.0f64; g.len()];
    let mut err = vec![0.0f64; g.len()];
    for id in order {
        let node = g.node(id);
        let (v, e) = match *node {
            Node::X => (x, 0.0),
            Node::Const(b) => {
                let c = f64::from_bits(b);
                (c, c.abs() * U)
            }
            Node::App(op, a) => {
                let n = op.arity();
                let mut args = [0.0f64; 3];
                for i in 0..n {
                    args[i] = val[a[i].index()];
                }
                let f = op.info().f64;
                let v = f.call(&args);
                let ulps = match op {
                    Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Sqrt => 1.0,
                    Op::Neg | Op::Abs | Op::Max | Op::Min | Op::Clamp | Op::Where => 0.0,
                    Op::Lt | Op::Gt | Op::Le | Op::Ge => 0.0,
                    Op::Pow => 2.0 * args[1].abs().max(1.0),
                    _ => 8.0,
                };
                let mut e = v.abs() * U * ulps;
                if op == Op::Where {
                    // Only the selected branch's error reaches the result.
                    let pick = if args[0] != 0.0 { a[1] } else { a[2] };
                    val[id.index()] = v;
                    err[id.index()] = err[pick.index()];
                    continue;
                }
                for i in 0..n {
                    let ei = err[a[i].index()];
                    if ei == 0.0 || matches!(op, Op::Where) && i == 0 || op.is_comparison() {
                        continue;
                    }
                    if op == Op::Pow && i == 1 {
                        continue;
                    }
                    let h = 1e-7 * args[i].abs().max(1e-30).max(ei);
                    let mut lo = args;
                    let mut hi = args;
                    lo[i] -= h;
                    hi[i] += h;
                    let d = (f.call(&hi) - f.call(&lo)) / (2.0 * h);
                    if d != 0.0 {
                        e += d.abs() * ei;
                    }
                }
                (v, e)
            }
        };
        val[id.index()] = v;
        err[id.index()] = if e.is_nan() { f64::INFINITY } else { e };
    }
    err[root.index()]
}

/// Can an f32 evaluation be expected to meet the PRIMITIVES.md tolerance
/// at `x`? (Its error bound is under half the tolerance.)
pub fn f32_well_conditioned(g: &Graph, root: Id, x: f64) -> bool {
    let want = RefEval::new(g, &[root]).eval(g, x)[0];
    want.is_finite() && f32_error_bound(g, root, x) <= 0.5 * (1e-4 * want.abs() + 1e-5)
}

/// Sample points for formula checks: a grid over [-6, 6], a few large
/// magnitudes, and the protected points where divisors of the seed
/// formulas vanish.
pub fn sample_points() -> Vec<f64> {
    let mut xs: Vec<f64> = (0..=96).map(|i| -6.0 + i as f64 * 0.125 + 0.0137).collect();
    xs.extend([-40.0, -12.5, 12.5, 40.0, 0.0, 1.0, -1.0, 2.0, 0.5]);
    xs
}

/// Points where protected operations sit exactly on their guard.
pub const PROTECTED_POINTS: &[f64] = &[0.0, 1.0, -1.0, 2.0, -2.0, 0.5];

/// Each formula parsed (the expression, for the reference evaluator) and
/// compiled to a [`Function`] (simplified, with its derivative).
pub fn parse_all<S: AsRef<str>>(sources: &[S]) -> Vec<(Expr, Function)> {
    sources
        .iter()
        .map(|s| {
            let e = parse(s.as_ref()).unwrap();
            let f = Function::new(&e);
            (e, f)
        })
        .collect()
}

// ---- Special values (PRIMITIVES.md "Special values")

/// Constants that push values to the edges of the number line.
pub const EDGE_CONSTANTS: &[&str] = &[
    "0", "1", "-1", "0.5", "2", "5", "1e-6", "1e-30", "1e30", "1e-300", "1e300", "3e38",
];

/// Inputs at the edges: zeros, subnormals, huge magnitudes up to f64::MAX.
pub const EDGE_POINTS: &[f64] = &[
    0.0,
    -0.0,
    5e-324,
    -1e-300,
    1e-30,
    -1e-6,
    0.5,
    -1.0,
    1.0,
    2.0,
    -3.0,
    100.0,
    -1e10,
    1e19,
    -1e20,
    3e38,
    -1e39,
    1e100,
    -1e200,
    1e300,
    f64::MAX,
    -f64::MAX,
];

const EDGE_UNARY: &[&str] = &[
    "neg",
    "abs",
    "exp",
    "log",
    "log1p",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "tanh",
    "erf",
    "sigmoid",
    "relu_like",
    "softsign",
    "softplus",
    "gelu_like",
    "gelu",
    "log1p_safe",
    "sigmoid_boost",
    "safe_tan",
    "mish",
    "silu",
];
const EDGE_BINARY: &[&str] = &[
    "add",
    "sub",
    "mul",
    "div",
    "max",
    "min",
    "lt",
    "gt",
    "le",
    "ge",
    "safe_div",
    "gated_gate",
];
const EDGE_POWERS: &[&str] = &["2", "3", "-1", "-2", "0.5"];

/// Random formulas over every intrinsic and most named primitives, with
/// [`EDGE_CONSTANTS`]: at [`EDGE_POINTS`] they make NaN, infinities,
/// zeros and overflow flow through `max`, `min`, `clamp`, `where` and the
/// comparisons.
pub fn edge_formula(height: u32) -> impl Strategy<Value = String> {
    edge_formula_with(height, EDGE_CONSTANTS, EDGE_POWERS, EDGE_BINARY)
}

/// Formulas whose values grow without bound through powers, products and
/// saturating functions, but never through reciprocals (no division, no
/// negative power) or large constants: at large x their derivatives
/// meet `inf · 0` (a saturated factor times an overflowed one) and
/// nothing else.
pub fn saturation_formula(height: u32) -> impl Strategy<Value = String> {
    // Small constants: x + c never cancels to a singular point (sqrt'(0))
    // at the large inputs these formulas are tested at.
    const CONSTANTS: &[&str] = &["0", "1", "-1", "0.5", "2", "5", "1e-6"];
    const BINARY: &[&str] = &[
        "add",
        "sub",
        "mul",
        "max",
        "min",
        "lt",
        "gt",
        "le",
        "ge",
        "gated_gate",
    ];
    edge_formula_with(height, CONSTANTS, &["2", "3", "0.5"], BINARY)
}

/// [`edge_formula`] with the given constants, exponents and binary ops.
pub fn edge_formula_with(
    height: u32,
    constants: &'static [&'static str],
    powers: &'static [&'static str],
    binary: &'static [&'static str],
) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => Just("x".to_string()),
        2 => prop::sample::select(constants).prop_map(str::to_string),
    ];
    leaf.prop_recursive(height, 64, 3, move |inner| {
        prop_oneof![
            (prop::sample::select(EDGE_UNARY), inner.clone())
                .prop_map(|(f, a)| format!("{f}({a})")),
            (prop::sample::select(powers), inner.clone())
                .prop_map(|(k, a)| format!("pow({a}, {k})")),
            (prop::sample::select(binary), inner.clone(), inner.clone())
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            (
                prop::sample::select(&["clamp", "where"][..]),
                inner.clone(),
                inner.clone(),
                inner
            )
                .prop_map(|(f, a, b, c)| format!("{f}({a}, {b}, {c})")),
        ]
    })
}

/// Equal under the contract: both NaN, or equal with +0 and −0 counted
/// equal (the sign of zero is not preserved, PRIMITIVES.md), or finite
/// and within the PRIMITIVES.md tolerance. Infinities must match in sign.
pub fn same_value(got: f64, want: f64) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || close(got, want)
}

/// How [`eval_variant`] evaluates: `seed` ≠ 0 multiplies every rounded
/// result by 1 + k·2⁻⁵² (k = ±1…±4, drawn from the seed), the size of a
/// rounding difference; `flip` is a node whose division (or negative
/// power) by ±0 uses the zero of the other sign.
#[derive(Clone, Copy, Debug, Default)]
pub struct Variant {
    pub seed: u64,
    pub flip: Option<Id>,
}

/// The operand of `op` that acts as a divisor, if its value is ±0.
fn zero_divisor(op: Op, args: &[f64; 3]) -> Option<usize> {
    let i = match op {
        Op::Div => 1,
        Op::Pow if args[1] < 0.0 => 0,
        _ => return None,
    };
    (args[i] == 0.0).then_some(i)
}

/// f64 evaluation of `root` at `x` under a [`Variant`]; also returns the
/// nodes that divided by ±0.
pub fn eval_variant(g: &Graph, root: Id, x: f64, v: Variant) -> (f64, Vec<Id>) {
    let mut val = vec![0.0f64; g.len()];
    let mut zero_divisions = Vec::new();
    for id in g.reachable(&[root]) {
        val[id.index()] = match *g.node(id) {
            Node::X => x,
            Node::Const(b) => f64::from_bits(b),
            Node::App(op, a) => {
                let mut args = [0.0f64; 3];
                for i in 0..op.arity() {
                    args[i] = val[a[i].index()];
                }
                if let Some(i) = zero_divisor(op, &args) {
                    zero_divisions.push(id);
                    if v.flip == Some(id) {
                        args[i] = -args[i];
                    }
                }
                let r = op.info().f64.call(&args);
                r * (1.0 + rounding_noise(op, v.seed, id.index() as u64))
            }
        };
    }
    (val[root.index()], zero_divisions)
}

/// The relative perturbation of one rounded result (0 for exact ops).
fn rounding_noise(op: Op, seed: u64, node: u64) -> f64 {
    let exact = matches!(
        op,
        Op::Neg | Op::Abs | Op::Max | Op::Min | Op::Clamp | Op::Where
    ) || op.is_comparison();
    if seed == 0 || exact {
        return 0.0;
    }
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ node.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 31;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 29;
    let k = (z % 4 + 1) as f64;
    let sign = if z & 8 == 0 { 1.0 } else { -1.0 };
    sign * k * f64::EPSILON
}

/// Does the value at `x` depend on the sign of a zero that something
/// divides by? (Flipping the sign of any one zero divisor changes it.)
/// Rewrites may flip such a sign (PRIMITIVES.md), so these points are not
/// compared: the one documented exception to soundness.
pub fn sign_of_zero_matters(g: &Graph, root: Id, x: f64) -> bool {
    let (want, sites) = eval_variant(g, root, x, Variant::default());
    sites.into_iter().any(|site| {
        let flipped = Variant {
            flip: Some(site),
            ..Variant::default()
        };
        !same_value(eval_variant(g, root, x, flipped).0, want)
    })
}

/// Is the value at `x` stable under rounding-sized perturbations of
/// every intermediate result? (Not so near a switching point, at a
/// cancellation, or in `sin` of a huge argument.) Rewrites change
/// rounding, so only stable values must survive them unchanged.
pub fn rounding_stable(g: &Graph, root: Id, x: f64) -> bool {
    let want = eval_f64(g, root, x);
    (1..=6).all(|seed| {
        let v = Variant {
            seed,
            ..Variant::default()
        };
        same_value(eval_variant(g, root, x, v).0, want)
    })
}
