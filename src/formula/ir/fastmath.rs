//! Vectorizable f32 math for the CPU evaluator.
//!
//! libm's `expf`, `sinf`, `tanhf`, … are scalar calls and dominated the
//! fused CPU path. These versions use the classic Cephes reductions and
//! polynomials, written without branches (selects on values computed for
//! every lane, exponent arithmetic on bits) and without FMA, so a loop over
//! a slice vectorizes on the x86-64 baseline. Special values follow libm:
//! NaN propagates, infinities and overflow behave as IEEE says.
//!
//! Accuracy is measured by the tests below against the f64 functions; the
//! bounds asserted there are the guarantees:
//!
//! | function | bound |
//! |---|---|
//! | `exp` | ≤ 2 ulp |
//! | `ln`, `ln_1p` | ≤ 2 ulp |
//! | `sin`, `cos` (|x| ≤ 8192) | ≤ 2 ulp or ≤ 6e-8 absolute |
//! | `tan` (|x| ≤ 8192) | ≤ 4 ulp or ≤ 6e-8 · (1 + tan²) absolute |
//! | `tanh`, `sigmoid` | ≤ 3 ulp or ≤ 6e-8 absolute |
//!
//! `sin`/`cos`/`tan` of |x| > [`TRIG_BOUND`] (where the three-part π/4
//! reduction loses accuracy) go to libm; the slice functions do that in a
//! second, scalar pass over the few lanes concerned.
//
// The Cephes coefficients are written as published; the compiler rounds
// them to the nearest f32, which is what the accuracy tests measured.
#![allow(clippy::excessive_precision)]

/// Largest |x| reduced by the fast trigonometric path.
pub const TRIG_BOUND: f32 = 8192.0;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding and subtracting it rounds to an integer.
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
fn sel(c: bool, a: f32, b: f32) -> f32 {
    if c {
        a
    } else {
        b
    }
}

/// 2^n for integer-valued `n` in [-126, 127], without a float→int
/// conversion (which does not vectorize well): adding 2²³ puts n + 127 in
/// the low mantissa bits.
#[inline(always)]
fn pow2i(n: f32) -> f32 {
    let biased = (n + 127.0 + 8_388_608.0).to_bits() & 0x007f_ffff;
    f32::from_bits(biased << 23)
}

/// e^x, ≤ 2 ulp.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // max/min, not clamp: NaN must become a bound here (it is restored by
    // the last select), so the integer tricks below never see it.
    #[allow(clippy::manual_clamp)]
    let xc = x.max(-104.0).min(89.0);
    let n = (xc * LOG2E + ROUND) - ROUND; // in [-150, 128]
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let e = p * z + r + 1.0;
    // Scale in two halves, each within the normal range, so subnormal
    // results and 2^128 work.
    let n1 = (n * 0.5 + ROUND) - ROUND;
    let v = e * pow2i(n1) * pow2i(n - n1);
    let v = sel(x > 88.722_84, f32::INFINITY, v);
    let v = sel(x < -103.972_08, 0.0, v);
    sel(x.is_nan(), x, v)
}

/// ln x, ≤ 2 ulp.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    // Subnormals: scale into the normal range first.
    let sub = x < f32::MIN_POSITIVE;
    let xs = sel(sub, x * 8_388_608.0, x);
    let bits = xs.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (e - i32::from(small)) as f32 - sel(sub, 23.0, 0.0);
    let m = sel(small, m + m, m) - 1.0;
    let z = m * m;
    let mut p = 7.037_683_6e-2f32;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        p = p * m + c;
    }
    let y = m * z * p + e * LN2_LO - 0.5 * z;
    let v = m + y + e * LN2_HI;
    let v = sel(x == f32::INFINITY, x, v);
    let v = sel(x == 0.0, f32::NEG_INFINITY, v);
    sel(x < 0.0 || x.is_nan(), f32::NAN, v)
}

/// ln(1 + x), ≤ 2 ulp: ln(u)·x/(u − 1) with u = 1 + x corrects the
/// rounding of u.
#[inline(always)]
pub fn ln_1p(x: f32) -> f32 {
    let u = 1.0 + x;
    let d = u - 1.0;
    let l = ln(u);
    let v = sel(d == 0.0, x, l * (x / sel(d == 0.0, 1.0, d)));
    let v = sel(u == f32::INFINITY, f32::INFINITY, v);
    sel(u <= 0.0 || x.is_nan(), l, v)
}

const FOPI: f32 = 1.273_239_5; // 4/π
const DP1: f32 = 0.785_156_25;
const DP2: f32 = 2.418_756_5e-4;
const DP3: f32 = 3.774_895e-8;

/// Reduce |x| ≤ TRIG_BOUND by π/4: (r, octant j even).
#[inline(always)]
fn reduce(ax: f32) -> (f32, i32) {
    // SAFETY: callers clamp ax to [0, TRIG_BOUND] (NaN.min gives the
    // bound), so ax·4/π is finite and below 2^14: truncation is defined.
    // (The saturating `as` conversion costs a fifth of the whole function.)
    let j: i32 = unsafe { (ax * FOPI).to_int_unchecked() };
    let j = (j + 1) & !1;
    let y = j as f32;
    (((ax - y * DP1) - y * DP2) - y * DP3, j)
}

#[inline(always)]
fn sin_poly(r: f32, z: f32) -> f32 {
    ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * r + r
}

#[inline(always)]
fn cos_poly(z: f32) -> f32 {
    ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0
}

/// `(sin x, cos x)` on the fast path (|x| ≤ TRIG_BOUND, or NaN/inf →
/// NaN): one reduction, both polynomials, each value picked by octant.
#[inline(always)]
fn sin_cos_fast(x: f32) -> (f32, f32) {
    let ax = x.abs().min(TRIG_BOUND);
    let (r, j) = reduce(ax);
    let z = r * r;
    let (ps, pc) = (sin_poly(r, z), cos_poly(z));
    let swap = j & 2 != 0;
    let s = sel(swap, pc, ps);
    let c = sel(swap, ps, pc);
    let s = sel((j & 4 != 0) != (x < 0.0), -s, s);
    // cos is negative in octants 2..5 (after the even rounding of j).
    let c = sel(((j + 2) & 4) != 0, -c, c);
    let ok = x.is_finite();
    (sel(ok, s, f32::NAN), sel(ok, c, f32::NAN))
}

/// The unused half of [`sin_cos_fast`] is dead code after inlining.
#[inline(always)]
fn sin_fast(x: f32) -> f32 {
    sin_cos_fast(x).0
}

#[inline(always)]
fn cos_fast(x: f32) -> f32 {
    sin_cos_fast(x).1
}

#[inline(always)]
fn tan_fast(x: f32) -> f32 {
    let (s, c) = sin_cos_fast(x);
    s / c
}

/// sin x: fast path, libm beyond [`TRIG_BOUND`].
#[inline]
pub fn sin(x: f32) -> f32 {
    if x.abs() <= TRIG_BOUND {
        sin_fast(x)
    } else {
        x.sin()
    }
}

#[inline]
pub fn cos(x: f32) -> f32 {
    if x.abs() <= TRIG_BOUND {
        cos_fast(x)
    } else {
        x.cos()
    }
}

#[inline]
pub fn tan(x: f32) -> f32 {
    if x.abs() <= TRIG_BOUND {
        tan_fast(x)
    } else {
        x.tan()
    }
}

/// tanh x: a polynomial below 0.625, 1 − 2/(e^{2|x|} + 1) above.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    let e = exp(2.0 * ax.min(44.0));
    let big = 1.0 - 2.0 / (e + 1.0);
    let big = sel(x < 0.0, -big, big);
    let v = sel(ax < 0.625, small, big);
    sel(x.is_nan(), x, v)
}

/// The logistic function, never overflowing (same formula as
/// `sigmoid_f32`, with the fast exp).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_pair(x).0
}

/// `(sigmoid(x), sigmoid(-x))` sharing one exp: bit for bit what the two
/// calls return (up to the sign of a NaN). Each is one division whose
/// numerator is chosen first (1/(1+e) or e/(1+e), each rounded once,
/// exactly as two divisions and a select).
#[inline(always)]
pub fn sigmoid_pair(x: f32) -> (f32, f32) {
    let e = exp(-x.abs());
    let d = 1.0 + e;
    let p = sel(x >= 0.0, 1.0, e) / d;
    let n = sel(x <= 0.0, 1.0, e) / d;
    (sel(x.is_nan(), x, p), sel(x.is_nan(), x, n))
}

/// `sin = sin(a)`, `cos = cos(a)` lane by lane in one pass; the same
/// values as [`sin_slice`] and [`cos_slice`].
#[inline(always)]
pub fn sin_cos_slice(a: &[f32], sin: &mut [f32], cos: &mut [f32]) {
    let mut far = false;
    for ((s, c), &v) in sin.iter_mut().zip(cos.iter_mut()).zip(a) {
        (*s, *c) = sin_cos_fast(v);
        far |= v.abs() > TRIG_BOUND;
    }
    if far {
        for ((s, c), &v) in sin.iter_mut().zip(cos.iter_mut()).zip(a) {
            if v.abs() > TRIG_BOUND {
                (*s, *c) = (v.sin(), v.cos());
            }
        }
    }
}

/// `pos = sigmoid(a)`, `neg = sigmoid(-a)` in one pass.
#[inline(always)]
pub fn sigmoid_pair_slice(a: &[f32], pos: &mut [f32], neg: &mut [f32]) {
    for ((p, q), &v) in pos.iter_mut().zip(neg.iter_mut()).zip(a) {
        (*p, *q) = sigmoid_pair(v);
    }
}

macro_rules! slice_fn {
    ($name:ident, $f:path) => {
        #[doc = concat!("`out[i] = ", stringify!($f), "(a[i])`.")]
        #[inline(always)]
        pub fn $name(a: &[f32], out: &mut [f32]) {
            for (o, &v) in out.iter_mut().zip(a) {
                *o = $f(v);
            }
        }
    };
}

slice_fn!(exp_slice, exp);
slice_fn!(ln_slice, ln);
slice_fn!(ln_1p_slice, ln_1p);
slice_fn!(tanh_slice, tanh);
slice_fn!(sigmoid_slice, sigmoid);

macro_rules! trig_slice_fn {
    ($name:ident, $fast:path, $libm:path) => {
        #[doc = concat!("Fast pass over every lane, then libm for |x| > TRIG_BOUND (`", stringify!($libm), "`).")]
        #[inline(always)]
        pub fn $name(a: &[f32], out: &mut [f32]) {
            let mut far = false;
            for (o, &v) in out.iter_mut().zip(a) {
                *o = $fast(v);
                far |= v.abs() > TRIG_BOUND;
            }
            if far {
                for (o, &v) in out.iter_mut().zip(a) {
                    if v.abs() > TRIG_BOUND {
                        *o = $libm(v);
                    }
                }
            }
        }
    };
}

trig_slice_fn!(sin_slice, sin_fast, f32::sin);
trig_slice_fn!(cos_slice, cos_fast, f32::cos);
trig_slice_fn!(tan_slice, tan_fast, f32::tan);

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in ulps between two finite f32 (monotone integer mapping).
    fn ulps(a: f32, b: f32) -> u64 {
        let key = |v: f32| {
            let i = v.to_bits() as i32;
            if i < 0 {
                i64::from(i32::MIN) - i64::from(i)
            } else {
                i64::from(i)
            }
        };
        (key(a) - key(b)).unsigned_abs()
    }

    /// Samples: geometric over the whole finite range, both signs, plus a
    /// dense uniform band and special values.
    fn samples() -> Vec<f32> {
        let n = if cfg!(debug_assertions) {
            60_000
        } else {
            1_000_000
        };
        let mut v = Vec::with_capacity(3 * n + 16);
        for i in 0..n {
            let t = i as f64 / n as f64;
            let m = (-45.0 + 84.0 * t) * std::f64::consts::LN_10; // 1e-45 .. 1e39
            let x = m.exp() as f32;
            v.push(x);
            v.push(-x);
            v.push(((t - 0.5) * 40.0) as f32);
        }
        v.extend([
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            -f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0,
            -1.0,
        ]);
        v
    }

    /// Check `f` against the f64 reference `r`: within `max_ulps`, or
    /// within `abs` absolute (scaled by `scale(x)`), or both non-finite alike.
    fn check(
        name: &str,
        f: fn(f32) -> f32,
        r: fn(f64) -> f64,
        max_ulps: u64,
        abs: f64,
        domain: fn(f32) -> bool,
    ) {
        let mut worst = 0u64;
        for x in samples().into_iter().filter(|&x| domain(x)) {
            let got = f(x);
            let want = r(x as f64) as f32;
            if want.is_nan() || got.is_nan() {
                assert!(
                    want.is_nan() && got.is_nan(),
                    "{name}({x:e}) = {got:e}, want {want:e}"
                );
                continue;
            }
            if !want.is_finite() || !got.is_finite() {
                assert_eq!(got, want, "{name}({x:e})");
                continue;
            }
            let u = ulps(got, want);
            if u > max_ulps && (got as f64 - r(x as f64)).abs() > abs {
                panic!("{name}({x:e}) = {got:e}, want {want:e} ({u} ulps)");
            }
            worst = worst.max(u);
        }
        eprintln!("{name}: max {worst} ulps (where not within the absolute bound)");
    }

    fn all(_: f32) -> bool {
        true
    }

    fn trig(x: f32) -> bool {
        x.abs() <= TRIG_BOUND || !x.is_finite()
    }

    #[test]
    fn exp_is_within_2_ulps() {
        check("exp", exp, f64::exp, 2, 0.0, all);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(1000.0), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ln_and_ln_1p_are_within_2_ulps() {
        check("ln", ln, f64::ln, 2, 0.0, all);
        check("ln_1p", ln_1p, f64::ln_1p, 2, 0.0, all);
        assert_eq!(ln_1p(-1.0), f32::NEG_INFINITY);
        assert!(ln_1p(-2.0).is_nan() && ln(-1.0).is_nan());
    }

    #[test]
    fn trig_is_accurate_on_the_fast_range() {
        check("sin", sin, f64::sin, 2, 6e-8, trig);
        check("cos", cos, f64::cos, 2, 6e-8, trig);
        // tan: relative to its derivative, which is huge near the poles.
        for x in samples()
            .into_iter()
            .filter(|x| x.is_finite() && x.abs() <= TRIG_BOUND)
        {
            let want = (x as f64).tan();
            let got = tan(x) as f64;
            assert!(
                (got - want).abs()
                    <= 6e-8 * (1.0 + want * want) + 4.0 * f32::EPSILON as f64 * want.abs(),
                "tan({x}) = {got} vs {want}"
            );
        }
    }

    #[test]
    fn tanh_and_sigmoid_are_accurate() {
        check("tanh", tanh, f64::tanh, 3, 6e-8, all);
        check(
            "sigmoid",
            sigmoid,
            crate::ir::ops::sigmoid_f64,
            3,
            6e-8,
            all,
        );
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(-1e30), 0.0);
        assert_eq!(sigmoid(1e30), 1.0);
    }

    #[test]
    fn slices_equal_the_scalar_functions_even_far_out() {
        let xs: Vec<f32> = samples().into_iter().step_by(7).collect();
        let mut out = vec![0.0f32; xs.len()];
        type SliceFn = fn(&[f32], &mut [f32]);
        type ScalarFn = fn(f32) -> f32;
        let pairs: [(SliceFn, ScalarFn); 8] = [
            (exp_slice, exp),
            (ln_slice, ln),
            (ln_1p_slice, ln_1p),
            (tanh_slice, tanh),
            (sigmoid_slice, sigmoid),
            (sin_slice, sin),
            (cos_slice, cos),
            (tan_slice, tan),
        ];
        for (slice, scalar) in pairs {
            slice(&xs, &mut out);
            for (x, o) in xs.iter().zip(&out) {
                let s = scalar(*x);
                assert!(
                    o.to_bits() == s.to_bits() || (o.is_nan() && s.is_nan()),
                    "{x}: {o} vs {s}"
                );
            }
        }
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// The paired passes are the single functions, bit for bit, including
    /// ±0, the trig bound, far arguments, infinities and NaN.
    #[test]
    fn paired_slices_equal_the_single_functions() {
        let mut xs: Vec<f32> = samples().into_iter().step_by(3).collect();
        xs.extend([0.0, -0.0, TRIG_BOUND, -TRIG_BOUND, 8192.5, -1e30, 1e30]);
        xs.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ]);
        let (mut p, mut q) = (vec![0.0f32; xs.len()], vec![0.0f32; xs.len()]);
        sigmoid_pair_slice(&xs, &mut p, &mut q);
        for (i, &x) in xs.iter().enumerate() {
            assert!(
                same(p[i], sigmoid(x)),
                "sigmoid({x}): {} vs {}",
                p[i],
                sigmoid(x)
            );
            assert!(
                same(q[i], sigmoid(-x)),
                "sigmoid(-{x}): {} vs {}",
                q[i],
                sigmoid(-x)
            );
        }
        sin_cos_slice(&xs, &mut p, &mut q);
        for (i, &x) in xs.iter().enumerate() {
            assert!(same(p[i], sin(x)), "sin({x}): {} vs {}", p[i], sin(x));
            assert!(same(q[i], cos(x)), "cos({x}): {} vs {}", q[i], cos(x));
        }
    }

    /// The one-division sigmoid rounds exactly like the two-division form.
    #[test]
    fn sigmoid_has_the_rounding_of_two_divisions() {
        for x in samples() {
            let e = exp(-x.abs());
            let two = if x >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            let two = if x.is_nan() { x } else { two };
            assert!(same(sigmoid(x), two), "{x}");
        }
    }
}
