//! The op table: the one place where each intrinsic is defined.
//!
//! Every intrinsic carries its name, arity, f64 reference, f32 evaluation,
//! CUDA C spelling and derivative rule. The chunked f32 evaluator's inner
//! loops are generated from the same f32 expressions by the `op_table!` macro,
//! so the table and the fast path cannot drift apart.
//!
//! * CUDA spellings use `{0}`, `{1}`, `{2}` for the rendered operands; they are
//!   fully parenthesised, so operands can be substituted without regard to
//!   precedence. The helpers (`act_exp`, `act_sigmoid`, `act_div`, …) live in
//!   `kernels/act_math.cuh`, which picks libm or the GPU's approximate
//!   instructions by the module's math mode.
//! * Derivative rules are formulas in the surface language over `a`, `b`,
//!   `c` (the operands), `da`, `db`, `dc` (their derivatives) and `y` (this
//!   node's value, reused rather than recomputed). [`crate::diff`]
//!   instantiates them. `chain(d, s)` is the chain-rule product `d · s` of
//!   an incoming derivative `d` and a local factor `s` that may saturate to
//!   exactly 0 (`1 − tanh²`, `σ(a)σ(−a)`, `e^a` as a → −∞, …) or be
//!   infinite (`sqrt'` at 0): it is 0 where either factor is 0, so
//!   `inf · 0` never turns a finite derivative into NaN (`where` guards,
//!   built only where the analysis cannot show the other factor finite).
//! * Rules follow the special values of PRIMITIVES.md: the derivative of
//!   `max`/`min`/`clamp` goes to the operand whose value is taken, also
//!   where another operand is NaN (`a <= a` is 0 exactly for NaN `a`).

use std::fmt;

use super::fastmath;

/// A scalar function of 1, 2 or 3 arguments.
#[derive(Clone, Copy)]
pub enum Scalar<T> {
    Unary(fn(T) -> T),
    Binary(fn(T, T) -> T),
    Ternary(fn(T, T, T) -> T),
}

impl<T: Copy> Scalar<T> {
    /// Apply to the first `arity` elements of `args`.
    #[inline]
    pub fn call(&self, args: &[T]) -> T {
        match self {
            Scalar::Unary(f) => f(args[0]),
            Scalar::Binary(f) => f(args[0], args[1]),
            Scalar::Ternary(f) => f(args[0], args[1], args[2]),
        }
    }

    pub fn arity(&self) -> usize {
        match self {
            Scalar::Unary(_) => 1,
            Scalar::Binary(_) => 2,
            Scalar::Ternary(_) => 3,
        }
    }
}

/// How the infix printer writes an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixity {
    /// `name(a, b, …)`.
    Call,
    /// `-a`.
    Prefix(&'static str),
    /// `a op b` at the given precedence (higher binds tighter).
    Infix(&'static str, u8, Assoc),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assoc {
    Left,
    Right,
    None,
}

/// Everything about one intrinsic.
pub struct OpInfo {
    pub op: Op,
    /// The call name; also how the prefix (DEAP-style) printer writes it.
    pub name: &'static str,
    pub arity: usize,
    pub fixity: Fixity,
    pub f64: Scalar<f64>,
    pub f32: Scalar<f32>,
    pub cuda: &'static str,
    pub deriv: &'static str,
    /// `op(a, b) == op(b, a)` exactly, value *and* derivative, everywhere.
    /// `max`/`min` are not: a tie sends the gradient to the first argument.
    pub commutative: bool,
}

/// Stable numerical codes matter: the canonical hash mixes the op *name*,
/// not this discriminant, so reordering variants changes no hash.
macro_rules! scalar {
    (1, $f:expr) => {
        Scalar::Unary($f)
    };
    (2, $f:expr) => {
        Scalar::Binary($f)
    };
    (3, $f:expr) => {
        Scalar::Ternary($f)
    };
}

/// Evaluate one op over a chunk, with the f32 expression inlined so that
/// the loop is monomorphic (and vectorised where the math allows).
macro_rules! chunk_loop {
    (1, $f:expr, $a:expr, $out:expr) => {{
        let f = $f;
        let a = $a[0];
        for (o, &a) in $out.iter_mut().zip(a) {
            *o = f(a);
        }
    }};
    (2, $f:expr, $a:expr, $out:expr) => {{
        let f = $f;
        let (a, b) = ($a[0], $a[1]);
        for ((o, &a), &b) in $out.iter_mut().zip(a).zip(b) {
            *o = f(a, b);
        }
    }};
    (3, $f:expr, $a:expr, $out:expr) => {{
        let f = $f;
        let (a, b, c) = ($a[0], $a[1], $a[2]);
        for (((o, &a), &b), &c) in $out.iter_mut().zip(a).zip(b).zip(c) {
            *o = f(a, b, c);
        }
    }};
}

macro_rules! op_table {
    ($( $v:ident {
        name: $name:literal, arity: $ar:tt, fixity: $fix:expr,
        f64: $f64:expr, f32: $f32:expr,
        cuda: $cuda:literal, deriv: $deriv:literal, commutative: $comm:literal $(,)?
    } ),* $(,)?) => {
        /// An intrinsic operation of the IR.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op { $($v),* }

        impl Op {
            /// Every op, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$v),*];
        }

        /// The table, indexed by `Op as usize`.
        pub static OPS: &[OpInfo] = &[$(OpInfo {
            op: Op::$v,
            name: $name,
            arity: $ar,
            fixity: $fix,
            f64: scalar!($ar, $f64),
            f32: scalar!($ar, $f32),
            cuda: $cuda,
            deriv: $deriv,
            commutative: $comm,
        }),*];

        /// The table's f32 loops, one per op (see [`apply_chunk_f32`]).
        #[inline(always)]
        fn apply_chunk_f32_table(op: Op, args: &[&[f32]; 3], out: &mut [f32]) {
            match op {
                $(Op::$v => chunk_loop!($ar, $f32, args, out),)*
            }
        }
    };
}

const fn infix(sym: &'static str, prec: u8) -> Fixity {
    Fixity::Infix(sym, prec, Assoc::Left)
}

const CMP: u8 = 1;
const ADD: u8 = 2;
const MUL: u8 = 3;
/// Precedence of prefix minus (binds looser than `^`, tighter than `*`).
pub const NEG_PREC: u8 = 4;
const POW: u8 = 5;

op_table! {
    Neg { name: "neg", arity: 1, fixity: Fixity::Prefix("-"),
        f64: |a: f64| -a, f32: |a: f32| -a,
        cuda: "(-{0})", deriv: "-da", commutative: false },
    Add { name: "add", arity: 2, fixity: infix("+", ADD),
        f64: |a: f64, b: f64| a + b, f32: |a: f32, b: f32| a + b,
        cuda: "({0} + {1})", deriv: "da + db", commutative: true },
    Sub { name: "sub", arity: 2, fixity: infix("-", ADD),
        f64: |a: f64, b: f64| a - b, f32: |a: f32, b: f32| a - b,
        cuda: "({0} - {1})", deriv: "da - db", commutative: false },
    Mul { name: "mul", arity: 2, fixity: infix("*", MUL),
        f64: |a: f64, b: f64| a * b, f32: |a: f32, b: f32| a * b,
        cuda: "({0} * {1})", deriv: "da * b + a * db", commutative: true },
    Div { name: "div", arity: 2, fixity: infix("/", MUL),
        f64: |a: f64, b: f64| a / b, f32: |a: f32, b: f32| a / b,
        cuda: "act_div({0}, {1})", deriv: "(da - chain(db, y)) / b", commutative: false },
    Pow { name: "pow", arity: 2, fixity: Fixity::Infix("^", POW, Assoc::Right),
        f64: powf64, f32: pow_f32,
        cuda: "act_pow({0}, {1})", deriv: "chain(da, b * a ^ (b - 1))", commutative: false },
    Abs { name: "abs", arity: 1, fixity: Fixity::Call,
        f64: f64::abs, f32: f32::abs,
        cuda: "fabsf({0})", deriv: "da * ((a > 0) - (a < 0))", commutative: false },
    Exp { name: "exp", arity: 1, fixity: Fixity::Call,
        f64: f64::exp, f32: fastmath::exp,
        cuda: "act_exp({0})", deriv: "chain(da, y)", commutative: false },
    Log { name: "log", arity: 1, fixity: Fixity::Call,
        f64: f64::ln, f32: fastmath::ln,
        cuda: "act_log({0})", deriv: "da / a", commutative: false },
    Log1p { name: "log1p", arity: 1, fixity: Fixity::Call,
        f64: f64::ln_1p, f32: fastmath::ln_1p,
        cuda: "act_log1p({0})", deriv: "da / (1 + a)", commutative: false },
    Sqrt { name: "sqrt", arity: 1, fixity: Fixity::Call,
        f64: f64::sqrt, f32: f32::sqrt,
        cuda: "sqrtf({0})", deriv: "chain(da, 0.5 / y)", commutative: false },
    Sin { name: "sin", arity: 1, fixity: Fixity::Call,
        f64: f64::sin, f32: fastmath::sin,
        cuda: "act_sin({0})", deriv: "da * cos(a)", commutative: false },
    Cos { name: "cos", arity: 1, fixity: Fixity::Call,
        f64: f64::cos, f32: fastmath::cos,
        cuda: "act_cos({0})", deriv: "-(da * sin(a))", commutative: false },
    Tan { name: "tan", arity: 1, fixity: Fixity::Call,
        f64: f64::tan, f32: fastmath::tan,
        cuda: "act_tan({0})", deriv: "da * (1 + y * y)", commutative: false },
    Tanh { name: "tanh", arity: 1, fixity: Fixity::Call,
        f64: f64::tanh, f32: fastmath::tanh,
        cuda: "act_tanh({0})", deriv: "chain(da, 1 - y * y)", commutative: false },
    Erf { name: "erf", arity: 1, fixity: Fixity::Call,
        f64: libm::erf, f32: libm::erff,
        cuda: "act_erf({0})", deriv: "chain(da, 1.1283791670955126 * exp(-(a * a)))", commutative: false },
    Sigmoid { name: "sigmoid", arity: 1, fixity: Fixity::Call,
        f64: sigmoid_f64, f32: fastmath::sigmoid,
        cuda: "act_sigmoid({0})", deriv: "chain(da, y * sigmoid(-a))", commutative: false },
    Max { name: "max", arity: 2, fixity: Fixity::Call,
        f64: f64::max, f32: f32::max,
        cuda: "fmaxf({0}, {1})", deriv: "where(b > a, db, where(a <= a, da, db))", commutative: false },
    Min { name: "min", arity: 2, fixity: Fixity::Call,
        f64: f64::min, f32: f32::min,
        cuda: "fminf({0}, {1})", deriv: "where(b < a, db, where(a <= a, da, db))", commutative: false },
    Clamp { name: "clamp", arity: 3, fixity: Fixity::Call,
        f64: |a: f64, lo: f64, hi: f64| a.max(lo).min(hi),
        f32: |a: f32, lo: f32, hi: f32| a.max(lo).min(hi),
        cuda: "fminf(fmaxf({0}, {1}), {2})",
        deriv: "where(c <= c, where(b <= b, where((b < a) * (a < c), da, where(c <= a, dc, where(b < c, db, dc))), where(a < c, da, dc)), where(b < a, da, where(b <= b, db, da)))",
        commutative: false },
    Where { name: "where", arity: 3, fixity: Fixity::Call,
        f64: |c: f64, a: f64, b: f64| if c != 0.0 { a } else { b },
        f32: |c: f32, a: f32, b: f32| if c != 0.0 { a } else { b },
        cuda: "({0} != 0.0f ? {1} : {2})", deriv: "where(a, db, dc)", commutative: false },
    Lt { name: "lt", arity: 2, fixity: Fixity::Infix("<", CMP, Assoc::None),
        f64: |a: f64, b: f64| bool64(a < b), f32: |a: f32, b: f32| bool32(a < b),
        cuda: "({0} < {1} ? 1.0f : 0.0f)", deriv: "0", commutative: false },
    Gt { name: "gt", arity: 2, fixity: Fixity::Infix(">", CMP, Assoc::None),
        f64: |a: f64, b: f64| bool64(a > b), f32: |a: f32, b: f32| bool32(a > b),
        cuda: "({0} > {1} ? 1.0f : 0.0f)", deriv: "0", commutative: false },
    Le { name: "le", arity: 2, fixity: Fixity::Infix("<=", CMP, Assoc::None),
        f64: |a: f64, b: f64| bool64(a <= b), f32: |a: f32, b: f32| bool32(a <= b),
        cuda: "({0} <= {1} ? 1.0f : 0.0f)", deriv: "0", commutative: false },
    Ge { name: "ge", arity: 2, fixity: Fixity::Infix(">=", CMP, Assoc::None),
        f64: |a: f64, b: f64| bool64(a >= b), f32: |a: f32, b: f32| bool32(a >= b),
        cuda: "({0} >= {1} ? 1.0f : 0.0f)", deriv: "0", commutative: false },
}

/// `out[i] = op(args[0][i], …)` for a chunk of f32 lanes. `args` holds at
/// least `arity` slices, each at least `out.len()` long. Every op's loop
/// computes exactly its table f32 function; sin/cos/tan run the vectorized
/// fast path over all lanes and libm over the rare far-out ones, in two
/// passes, instead of a branch per lane. Always inlined, so that callers
/// compiled for wider vectors (AVX2) get wider loops.
#[inline(always)]
pub fn apply_chunk_f32(op: Op, args: &[&[f32]; 3], out: &mut [f32]) {
    let n = out.len();
    match op {
        Op::Sin => fastmath::sin_slice(&args[0][..n], out),
        Op::Cos => fastmath::cos_slice(&args[0][..n], out),
        Op::Tan => fastmath::tan_slice(&args[0][..n], out),
        Op::Where => select_slice(&args[0][..n], &args[1][..n], &args[2][..n], out),
        _ => apply_chunk_f32_table(op, args, out),
    }
}

/// `where` over a chunk as a bitwise select (`c ≠ 0`, NaN included, takes
/// `a`): the table's `if` did not vectorize and cost as much as eight
/// multiplications per lane. Same bits as the table function.
#[inline(always)]
fn select_slice(c: &[f32], a: &[f32], b: &[f32], out: &mut [f32]) {
    for (((o, &c), &a), &b) in out.iter_mut().zip(c).zip(a).zip(b) {
        let take_a = u32::from(c != 0.0).wrapping_neg();
        *o = f32::from_bits((a.to_bits() & take_a) | (b.to_bits() & !take_a));
    }
}

impl Op {
    pub fn info(self) -> &'static OpInfo {
        &OPS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn arity(self) -> usize {
        self.info().arity
    }

    pub fn by_name(name: &str) -> Option<Op> {
        OPS.iter().find(|i| i.name == name).map(|i| i.op)
    }

    /// Comparisons: values are exactly 0 or 1 and the derivative is 0.
    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Lt | Op::Gt | Op::Le | Op::Ge)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn bool64(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn bool32(b: bool) -> f32 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn powf64(a: f64, k: f64) -> f64 {
    a.powf(k)
}

/// Largest integer exponent computed by repeated multiplication; larger
/// ones use `powf`. The CUDA helper `act_pow` makes the same choice.
pub const MAX_INT_POW: f32 = 64.0;

/// `a^k`: exact repeated multiplication (square-and-multiply) for integer
/// `k` with `|k| <= 64`, `powf` otherwise. Mirrors `act_pow` in
/// `kernels/act_math.cuh` operation for operation.
#[inline]
pub fn pow_f32(a: f32, k: f32) -> f32 {
    if k == k.trunc() && k.abs() <= MAX_INT_POW {
        let mut n = k.abs() as u32;
        let mut base = a;
        let mut acc = 1.0f32;
        while n > 0 {
            if n & 1 == 1 {
                acc *= base;
            }
            base *= base;
            n >>= 1;
        }
        if k < 0.0 {
            1.0 / acc
        } else {
            acc
        }
    } else {
        a.powf(k)
    }
}

/// The logistic function without overflow for any input.
pub fn sigmoid_f64(a: f64) -> f64 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

/// f32 twin of [`sigmoid_f64`]; `act_sigmoid` in CUDA is the same code.
#[inline]
pub fn sigmoid_f32(a: f32) -> f32 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_discriminant_and_complete() {
        assert_eq!(OPS.len(), Op::ALL.len());
        for (i, info) in OPS.iter().enumerate() {
            assert_eq!(info.op as usize, i, "{} is out of place", info.name);
            assert!(!info.name.is_empty());
            assert_eq!(info.f64.arity(), info.arity, "{}: f64 arity", info.name);
            assert_eq!(info.f32.arity(), info.arity, "{}: f32 arity", info.name);
            assert!(!info.deriv.is_empty(), "{}: no derivative rule", info.name);
            for k in 0..3 {
                let used = info.cuda.contains(&format!("{{{k}}}"));
                assert_eq!(
                    used,
                    k < info.arity,
                    "{}: CUDA spelling uses {{{k}}}",
                    info.name
                );
            }
            assert_eq!(Op::by_name(info.name), Some(info.op));
        }
    }

    #[test]
    fn chunk_loop_matches_scalar_f32() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.37 - 6.0).collect();
        let b: Vec<f32> = (0..37).map(|i| 2.0 - i as f32 * 0.11).collect();
        let mut c: Vec<f32> = (0..37).map(|i| (i % 3) as f32 - 1.0).collect();
        // where's condition: NaN takes the first branch, −0 the second.
        (c[4], c[8]) = (f32::NAN, -0.0);
        for info in OPS {
            let mut out = vec![0.0f32; a.len()];
            apply_chunk_f32(info.op, &[&a, &b, &c], &mut out);
            for i in 0..a.len() {
                let want = info.f32.call(&[a[i], b[i], c[i]]);
                assert!(
                    out[i].to_bits() == want.to_bits() || (out[i].is_nan() && want.is_nan()),
                    "{} at {i}: {} vs {}",
                    info.name,
                    out[i],
                    want
                );
            }
        }
    }

    #[test]
    fn integer_powers_are_repeated_multiplication() {
        assert_eq!(pow_f32(3.0, 3.0), 27.0);
        assert_eq!(pow_f32(-2.0, 3.0), -8.0);
        assert_eq!(pow_f32(2.0, -2.0), 0.25);
        assert_eq!(pow_f32(5.0, 0.0), 1.0);
        assert!((pow_f32(2.0, 0.5) - std::f32::consts::SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn sigmoid_never_overflows() {
        for a in [-1e30, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e30] {
            let s = sigmoid_f32(a);
            assert!(s.is_finite() && (0.0..=1.0).contains(&s), "{a}: {s}");
            let s = sigmoid_f64(a as f64);
            assert!(s.is_finite() && (0.0..=1.0).contains(&s));
        }
        assert_eq!(sigmoid_f32(0.0), 0.5);
    }
}
