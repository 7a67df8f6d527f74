//! Cheap screening before any training time is spent. A candidate is
//! rejected, with the first reason that applies, when:
//!
//! 1. **nonfinite**: f or f′ is NaN or infinite somewhere on the probe
//!    range, 2,001 points of [-10, 10] (f32 tape evaluator, as the fused
//!    kernels compute);
//! 2. **constant**: f varies on [-4, 4] (801 points) by at most
//!    [`CONSTANT_SPREAD`] × max(1, max |f|): nothing for a network to use;
//! 3. **exploding** / **vanishing**: the gain of a one-layer forward and
//!    backward pass falls outside [[`GAIN_MIN`], [`GAIN_MAX`]]. With X an
//!    128×64 matrix of N(0, 1) inputs, W a 64×64 matrix of N(0, 1/64)
//!    weights (so H = XW has unit variance) and G an N(0, 1) upstream
//!    gradient: forward gain = rms(f(H)) / rms(X), backward gain =
//!    rms((G ⊙ f′(H)) Wᵀ) / rms(G). The draws come from a fixed stream, so
//!    a formula always gets the same verdict;
//! 4. **linear**: f′ varies on [-4, 4] by at most [`LINEAR_SPREAD`] ×
//!    max(1, max |f′|), so f is affine where normalised pre-activations
//!    live: the MLP collapses to one linear map. Short fitness runs tend to
//!    favour such candidates (a linear network fits fastest at first), so
//!    they would otherwise crowd out real activations;
//! 5. **compile**: its kernels do not compile (the batch compile of a
//!    generation, [`super::compile`]).
//!
//! A screened candidate is a scored failure with its reason, cached like
//! any evaluated one. Duplicates are counted by the dedup layers, not here.

use std::fmt;

use crate::diff::Function;
use crate::gp::{Draw, Prng};
use crate::ir::Tape;

/// Relative spread on [-4, 4] at or below which f counts as constant.
pub const CONSTANT_SPREAD: f64 = 1e-3;
/// Relative spread of f′ on [-4, 4] at or below which f counts as affine.
pub const LINEAR_SPREAD: f64 = 1e-3;
/// Gains below this are vanishing.
pub const GAIN_MIN: f64 = 1e-3;
/// Gains above this are exploding.
pub const GAIN_MAX: f64 = 1e3;
/// The probe range for non-finite values.
pub const PROBE_RANGE: (f64, f64) = (-10.0, 10.0);
const PROBE_POINTS: usize = 2001;
const FLAT_POINTS: usize = 801;
const ROWS: usize = 128;
const WIDTH: usize = 64;

/// Why a candidate was screened out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    NonFinite,
    Constant,
    Exploding,
    Vanishing,
    Linear,
    Compile,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::NonFinite,
        Reason::Constant,
        Reason::Exploding,
        Reason::Vanishing,
        Reason::Linear,
        Reason::Compile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::NonFinite => "nonfinite",
            Reason::Constant => "constant",
            Reason::Exploding => "exploding",
            Reason::Vanishing => "vanishing",
            Reason::Linear => "linear",
            Reason::Compile => "compile",
        }
    }

    /// The reason named by a failure text written by [`Verdict::failure`].
    pub fn of_failure(text: &str) -> Option<Reason> {
        let rest = text.strip_prefix("screened: ")?;
        Reason::ALL.into_iter().find(|r| rest.starts_with(r.name()))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rejection: the reason and what was seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub reason: Reason,
    pub detail: String,
}

impl Verdict {
    /// The failure text of the candidate: `screened: <reason> (<detail>)`.
    pub fn failure(&self) -> String {
        format!("screened: {} ({})", self.reason, self.detail)
    }
}

/// The gains of the one-layer pass (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gains {
    pub forward: f64,
    pub backward: f64,
}

/// Screen `f`; `None` means it passes.
pub fn screen(f: &Function) -> Option<Verdict> {
    let tape = Tape::new(&f.graph, &[f.f, f.df]);
    nonfinite(&tape)
        .or_else(|| constant(&tape))
        .or_else(|| gain_verdict(gains(&tape)))
        .or_else(|| linear(&tape))
}

fn grid(lo: f64, hi: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32)
        .collect()
}

/// f and f′ at `xs`.
fn both(tape: &Tape, xs: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut outs = vec![Vec::new(), Vec::new()];
    tape.map_all(xs, &mut outs);
    let df = outs.pop().expect("two roots");
    let f = outs.pop().expect("two roots");
    (f, df)
}

fn nonfinite(tape: &Tape) -> Option<Verdict> {
    let xs = grid(PROBE_RANGE.0, PROBE_RANGE.1, PROBE_POINTS);
    let (f, df) = both(tape, &xs);
    for (name, ys) in [("f", &f), ("f'", &df)] {
        if let Some(i) = ys.iter().position(|y| !y.is_finite()) {
            return Some(Verdict {
                reason: Reason::NonFinite,
                detail: format!("{name}({}) = {}", xs[i], ys[i]),
            });
        }
    }
    None
}

fn constant(tape: &Tape) -> Option<Verdict> {
    let (f, _) = both(tape, &grid(-4.0, 4.0, FLAT_POINTS));
    let lo = f.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi = f.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let scale = lo.abs().max(hi.abs()).max(1.0);
    (hi - lo <= CONSTANT_SPREAD * scale).then(|| Verdict {
        reason: Reason::Constant,
        detail: format!("varies by {:.3e} on [-4, 4]", hi - lo),
    })
}

fn linear(tape: &Tape) -> Option<Verdict> {
    let (_, df) = both(tape, &grid(-4.0, 4.0, FLAT_POINTS));
    let lo = df.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi = df.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let scale = lo.abs().max(hi.abs()).max(1.0);
    (hi - lo <= LINEAR_SPREAD * scale).then(|| Verdict {
        reason: Reason::Linear,
        detail: format!("f' = {:.4} everywhere on [-4, 4]: affine", (lo + hi) / 2.0),
    })
}

fn gain_verdict(g: Gains) -> Option<Verdict> {
    let detail = format!(
        "forward gain {:.3e}, backward gain {:.3e}",
        g.forward, g.backward
    );
    let worst_high = g.forward.max(g.backward);
    let worst_low = g.forward.min(g.backward);
    let reason = if !(g.forward.is_finite() && g.backward.is_finite()) || worst_high > GAIN_MAX {
        Reason::Exploding
    } else if worst_low < GAIN_MIN {
        Reason::Vanishing
    } else {
        return None;
    };
    Some(Verdict { reason, detail })
}

/// `rows × cols` N(0, sd²) values from `rng`.
fn normal_matrix(rng: &mut Prng, rows: usize, cols: usize, sd: f64) -> Vec<f64> {
    (0..rows * cols).map(|_| rng.normal() * sd).collect()
}

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}

/// `a (n×k) · b (k×m)`, or with `b_transposed`, `a · bᵀ` for `b` m×k.
fn matmul(a: &[f64], b: &[f64], n: usize, k: usize, m: usize, b_transposed: bool) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k)
                .map(|p| {
                    let bv = if b_transposed {
                        b[j * k + p]
                    } else {
                        b[p * m + j]
                    };
                    a[i * k + p] * bv
                })
                .sum();
        }
    }
    out
}

/// The forward and backward gains of a one-layer pass through `tape`'s
/// formula (its first root f, second root f′).
pub fn gains(tape: &Tape) -> Gains {
    let mut rng = Prng::stream(0x005c_4ee9, "screen-gain", 0, 0);
    let x = normal_matrix(&mut rng, ROWS, WIDTH, 1.0);
    let w = normal_matrix(&mut rng, WIDTH, WIDTH, 1.0 / (WIDTH as f64).sqrt());
    let g = normal_matrix(&mut rng, ROWS, WIDTH, 1.0);
    let h: Vec<f32> = matmul(&x, &w, ROWS, WIDTH, WIDTH, false)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let (y, dy) = both(tape, &h);
    let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    let dh: Vec<f64> = dy.iter().zip(&g).map(|(&d, &gv)| d as f64 * gv).collect();
    let dx = matmul(&dh, &w, ROWS, WIDTH, WIDTH, true);
    Gains {
        forward: rms(&y) / rms(&x),
        backward: rms(&dx) / rms(&g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse;

    fn verdict(src: &str) -> Option<Reason> {
        screen(&Function::new(&parse(src).unwrap())).map(|v| v.reason)
    }

    #[test]
    fn each_reason_and_good_activations() {
        assert_eq!(verdict("gelu(x)"), None);
        assert_eq!(verdict("silu(x)"), None);
        assert_eq!(verdict("tanh(x)"), None);
        assert_eq!(verdict("log(x)"), Some(Reason::NonFinite));
        assert_eq!(verdict("exp(exp(x))"), Some(Reason::NonFinite));
        assert_eq!(verdict("sigmoid(x - 100)"), Some(Reason::Constant));
        assert_eq!(verdict("safe_div(x, x)"), Some(Reason::Constant));
        assert_eq!(verdict("1e4 * x"), Some(Reason::Exploding));
        assert_eq!(verdict("0.01 * relu(x - 3.5)"), Some(Reason::Vanishing));
        assert_eq!(verdict("x"), Some(Reason::Linear));
        assert_eq!(verdict("safe_div(x, 1.0)"), Some(Reason::Linear));
        assert_eq!(verdict("2 * x + 1"), Some(Reason::Linear));
        // Affine on [-4, 4] only: still linear where pre-activations live.
        assert_eq!(verdict("clamp(x, -6, 6)"), Some(Reason::Linear));
        // A kink inside the range is not.
        assert_eq!(verdict("relu(x)"), None);
        assert_eq!(verdict("abs(x)"), None);
    }

    #[test]
    fn gains_of_the_identity_are_near_one() {
        let f = Function::new(&parse("x").unwrap());
        let g = gains(&Tape::new(&f.graph, &[f.f, f.df]));
        assert!((g.forward - 1.0).abs() < 0.15, "{g:?}");
        assert!((g.backward - 1.0).abs() < 0.15, "{g:?}");
    }

    #[test]
    fn failure_texts_name_their_reason() {
        for r in Reason::ALL {
            let v = Verdict {
                reason: r,
                detail: "d".into(),
            };
            assert_eq!(Reason::of_failure(&v.failure()), Some(r));
        }
        assert_eq!(Reason::of_failure("NaN loss"), None);
    }
}
