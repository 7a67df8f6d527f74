//! Plain-number geometry for plots and sample grids: even grids that never
//! overflow, tick marks computed in a bounded number of steps, tick labels
//! with enough digits to tell neighbours apart, and the power-of-two scale
//! that keeps a plotting library's arithmetic finite on huge or tiny ranges.
//!
//! Works on `f64` only; knows no formula, model or search, and imports
//! nothing of the crate.

/// The point `t` of the way from `lo` to `hi` (`0 ≤ t ≤ 1`, `lo ≤ hi`),
/// as `lo·(1−t) + hi·t`: finite whenever `lo` and `hi` are (the textbook
/// `lo + (hi−lo)·t` overflows once `hi − lo` exceeds `f64::MAX`), exactly
/// `lo` at 0 and `hi` at 1, and never outside `[lo, hi]`.
pub fn lerp(lo: f64, hi: f64, t: f64) -> f64 {
    (lo * (1.0 - t) + hi * t).clamp(lo, hi)
}

/// `n` evenly spaced points from `lo` to `hi`, both included (`lo` alone
/// when `n == 1`). Requires `lo ≤ hi`, both finite.
pub fn grid(lo: f64, hi: f64, n: usize) -> impl ExactSizeIterator<Item = f64> {
    let last = n.saturating_sub(1).max(1) as f64;
    (0..n).map(move |i| lerp(lo, hi, i as f64 / last))
}

/// Tick marks of an axis from `lo` to `hi`: at most `max + 1` multiples of
/// a step of 1, 2 or 5 × 10^k inside the range, increasing; the two ends
/// alone when no such step fits (a range too narrow for its magnitude, or
/// too wide for `f64`). Every loop is bounded by `max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    pub values: Vec<f64>,
    /// The spacing the labels must resolve.
    pub step: f64,
}

impl Ticks {
    pub fn new(lo: f64, hi: f64, max: usize) -> Ticks {
        let width = hi / 2.0 - lo / 2.0; // half the width: never overflows
        let ends = Ticks {
            values: if lo < hi { vec![lo, hi] } else { vec![lo] },
            step: width * 2.0,
        };
        if !(lo < hi && lo.is_finite() && hi.is_finite()) || max < 2 {
            return ends;
        }
        let Some(step) = nice_step(width / max as f64 * 2.0) else {
            return ends;
        };
        let (first, last) = ((lo / step).ceil(), (hi / step).floor());
        let count = (last - first + 1.0).min(max as f64 + 1.0);
        if count.is_nan() || count < 2.0 {
            return ends;
        }
        let mut values: Vec<f64> = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let v = (first + i as f64) * step;
            if v >= lo && v <= hi && values.last().is_none_or(|&p| v > p) {
                values.push(v);
            }
        }
        if values.len() < 2 {
            return ends;
        }
        Ticks { values, step }
    }

    /// The label of tick `v`.
    pub fn label(&self, v: f64) -> String {
        tick_label(v, self.step)
    }
}

/// The smallest of 1, 2, 5 × 10^k that is at least `raw` (> 0, finite).
fn nice_step(raw: f64) -> Option<f64> {
    if !(raw > 0.0 && raw.is_finite()) {
        return None;
    }
    let base = 10f64.powi(raw.log10().floor() as i32);
    if !(base > 0.0 && base.is_finite()) {
        return None;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|&s| s >= raw && s.is_finite())
}

/// `v` printed with the digits that a spacing of `step` needs: fixed
/// notation for ordinary magnitudes, scientific for tiny or huge ones.
pub fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = v.abs();
    let step_exp = if step > 0.0 && step.is_finite() {
        step.abs().log10().floor()
    } else if step > 0.0 {
        f64::MAX.log10()
    } else {
        -17.0 + mag.log10().floor()
    };
    if (1e-4..1e6).contains(&mag) && step_exp >= -12.0 {
        let decimals = (-step_exp).clamp(0.0, 17.0) as usize;
        return format!("{v:.decimals$}");
    }
    let digits = (mag.log10().floor() - step_exp).clamp(0.0, 16.0) as usize;
    format!("{v:.digits$e}")
}

/// A power of two `s` with `max(|lo|, |hi|) / s` in `[1, 2)`: dividing by
/// it is exact, and it brings any finite range into `[-2, 2]`, where
/// differences cannot overflow. 1 for a zero or non-finite magnitude.
pub fn pow2_scale(lo: f64, hi: f64) -> f64 {
    let m = lo.abs().max(hi.abs());
    if !(m > 0.0 && m.is_finite()) {
        return 1.0;
    }
    pow2((m.log2().floor() as i32).clamp(-1074, 1023))
}

/// 2^e for -1074 ≤ e ≤ 1023, built from its bits (exact, subnormals too).
fn pow2(e: i32) -> f64 {
    if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (e + 1074))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_of_extreme_ranges_stay_finite_and_ordered() {
        let g: Vec<f64> = grid(-f64::MAX, f64::MAX, 5).collect();
        assert_eq!(g[0], -f64::MAX);
        assert_eq!(g[2], 0.0);
        assert_eq!(g[4], f64::MAX);
        assert!(g.windows(2).all(|w| w[0] < w[1]), "{g:?}");
        let g: Vec<f64> = grid(f64::MAX, f64::MAX, 7).collect();
        assert!(g.iter().all(|&v| v == f64::MAX), "{g:?}");
        let g: Vec<f64> = grid(-1e308, 1e308, 3).collect();
        assert_eq!(g, vec![-1e308, 0.0, 1e308]);
        assert_eq!(grid(2.0, 3.0, 1).collect::<Vec<_>>(), vec![2.0]);
        assert_eq!(
            grid(-1.0, 1.0, 5).collect::<Vec<_>>(),
            vec![-1.0, -0.5, 0.0, 0.5, 1.0]
        );
    }

    #[test]
    fn ticks_are_bounded_on_any_range() {
        let cases = [
            (-5.0, 5.0),
            (-1e308, 1e308),
            (-f64::MAX, f64::MAX),
            (1.0, 1.0 + 1e-15),
            (1e300, 1e300 * (1.0 + 1e-15)),
            (0.0, 5e-324),
            (-1e-310, 1e-310),
            (1e20, 1e20 + 1e5),
            (-3.0, 7.0),
            (123456.0, 123457.0),
        ];
        for (lo, hi) in cases {
            let t = Ticks::new(lo, hi, 10);
            assert!(
                (2..=11).contains(&t.values.len()),
                "{lo}..{hi}: {:?}",
                t.values
            );
            assert!(t.values.windows(2).all(|w| w[0] < w[1]), "{t:?}");
            assert!(t.values.iter().all(|&v| v >= lo && v <= hi), "{t:?}");
            let labels: Vec<String> = t.values.iter().map(|&v| t.label(v)).collect();
            let mut uniq = labels.clone();
            uniq.dedup();
            assert_eq!(uniq, labels, "{lo}..{hi}: labels must differ");
        }
        assert_eq!(Ticks::new(-5.0, 5.0, 10).values.len(), 11);
    }

    #[test]
    fn tick_labels_resolve_their_step() {
        assert_eq!(tick_label(-4.0, 1.0), "-4");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(1e300, 1e299), "1.0e300");
        assert_eq!(tick_label(1.5e-7, 1e-8), "1.5e-7");
        assert_eq!(tick_label(0.0, 1.0), "0");
    }

    #[test]
    fn pow2_scale_brings_ranges_near_one() {
        for (lo, hi) in [(-f64::MAX, f64::MAX), (1e-320, 2e-320), (-4.0, 4.0)] {
            let s = pow2_scale(lo, hi);
            let m = lo.abs().max(hi.abs()) / s;
            assert!((1.0..2.0).contains(&m), "{lo}..{hi}: {s} gives {m}");
            assert!((hi / s - lo / s).is_finite());
        }
        assert_eq!(pow2(-1074), 5e-324);
        assert_eq!(pow2(1023), 2f64.powi(1023));
    }
}
