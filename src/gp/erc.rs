//! Ephemeral random constants (DEAP's `addEphemeralConstant`): a leaf
//! whose value is drawn from a named generator when the node is created and
//! then kept. Values are rounded so formulas stay readable.

use std::fmt;

use crate::error::{Error, Result};
use crate::ir::format_const;

use super::rng::Draw;

/// How an ephemeral random constant draws its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ErcKind {
    /// Uniform in [lo, hi), rounded to `digits` decimals so formulas stay
    /// readable (`uniform(-1,1,2)` gives values such as `-0.37`).
    Uniform { lo: f64, hi: f64, digits: u8 },
    /// A uniform integer in lo..=hi (DEAP's `random.randint(lo, hi)`).
    Int { lo: i64, hi: i64 },
}

/// An ephemeral random constant (DEAP's `addEphemeralConstant`): a
/// terminal whose value is drawn when the node is created and then kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Ephemeral {
    pub kind: ErcKind,
}

/// Largest magnitude an ERC bound may have (integers stay exact in f64).
const ERC_BOUND: f64 = 1e9;

impl Ephemeral {
    /// Parse `uniform(LO,HI)`, `uniform(LO,HI,DIGITS)` (2 digits unless
    /// given, at most 6) or `int(LO,HI)`.
    pub fn parse(spec: &str) -> Result<Ephemeral> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "ephemeral constant `{spec}`: {why} (write `uniform(-1,1)`, `uniform(-1,1,3)` or `int(-2,2)`)"
            ))
        };
        let s: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
        let (name, rest) = s.split_once('(').ok_or_else(|| bad("expected `name(…)`"))?;
        let args = rest.strip_suffix(')').ok_or_else(|| bad("missing `)`"))?;
        let nums: Vec<f64> = args
            .split(',')
            .map(|a| {
                a.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && v.abs() <= ERC_BOUND)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("arguments must be numbers of magnitude at most 1e9"))?;
        let kind = match (name, nums.as_slice()) {
            ("uniform", [lo, hi]) => ErcKind::Uniform {
                lo: *lo,
                hi: *hi,
                digits: 2,
            },
            ("uniform", [lo, hi, d]) if d.fract() == 0.0 && (0.0..=6.0).contains(d) => {
                ErcKind::Uniform {
                    lo: *lo,
                    hi: *hi,
                    digits: *d as u8,
                }
            }
            ("uniform", [_, _, _]) => return Err(bad("digits must be an integer from 0 to 6")),
            ("int", [lo, hi]) if lo.fract() == 0.0 && hi.fract() == 0.0 => ErcKind::Int {
                lo: *lo as i64,
                hi: *hi as i64,
            },
            ("uniform" | "int", _) => return Err(bad("wrong arguments")),
            _ => return Err(bad("unknown generator")),
        };
        let ok = match kind {
            ErcKind::Uniform { lo, hi, .. } => lo < hi,
            ErcKind::Int { lo, hi } => lo <= hi,
        };
        if !ok {
            return Err(bad("the lower bound must be below the upper bound"));
        }
        Ok(Ephemeral { kind })
    }

    /// Draw a value.
    pub fn draw(&self, rng: &mut (impl Draw + ?Sized)) -> f64 {
        match self.kind {
            ErcKind::Uniform { lo, hi, digits } => {
                let scale = 10f64.powi(digits as i32);
                let v = lo + (hi - lo) * rng.unit();
                // `+ 0.0` turns a rounded -0.0 into 0.0.
                (v * scale).round() / scale + 0.0
            }
            ErcKind::Int { lo, hi } => {
                let span = (hi - lo) as u64 as usize;
                (lo + rng.below(span + 1) as i64) as f64
            }
        }
    }
}

impl fmt::Display for Ephemeral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErcKind::Uniform { lo, hi, digits } => write!(
                f,
                "uniform({},{},{digits})",
                format_const(lo),
                format_const(hi)
            ),
            ErcKind::Int { lo, hi } => write!(f, "int({lo},{hi})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemerals_print_their_spec_and_draw_in_range() {
        let e = Ephemeral::parse(" uniform(-1, 1) ").unwrap();
        assert_eq!(e.to_string(), "uniform(-1.0,1.0,2)");
        assert_eq!(
            Ephemeral::parse("int(-3,3)").unwrap().to_string(),
            "int(-3,3)"
        );
        let mut r = crate::gp::Prng::seed(1);
        for _ in 0..1000 {
            let v = e.draw(&mut r);
            assert!((-1.0..=1.0).contains(&v) && v.to_bits() != (-0.0f64).to_bits());
        }
    }
}
