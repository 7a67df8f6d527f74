//! Numbers as text for people: every digit that matters, and no more.
//!
//! [`shortest`] prints the shortest decimal that reads back as the same
//! `f64` (Rust's `{}` and `{:e}` are both shortest round-trip), in plain
//! notation for ordinary magnitudes and scientific for tiny or huge ones,
//! so `9.357622968840175e-14` is never shown as `0`. [`shortest_f32`] does
//! the same for values computed in f32. [`significant`] rounds measurements
//! (times, rates) to a fixed number of significant digits.
//!
//! Plain numbers only: imports nothing of the crate.

/// Magnitudes printed in plain notation: `[1e-4, 1e16)`.
const PLAIN: std::ops::Range<f64> = 1e-4..1e16;

/// The shortest text that parses back to `v` (`-0` prints as `0`;
/// non-finite values as `nan`, `inf`, `-inf`).
pub fn shortest(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return nonfinite(v);
    }
    if PLAIN.contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// [`shortest`] for an `f32` value: the shortest text that parses back to
/// the same `f32` (not the longer one of its widening to `f64`).
pub fn shortest_f32(v: f32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return nonfinite(v as f64);
    }
    if PLAIN.contains(&(v.abs() as f64)) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// `v` rounded to `digits` significant digits (at least 1), plain for
/// magnitudes in `[1e-4, 1e6)`, scientific otherwise.
pub fn significant(v: f64, digits: usize) -> String {
    let digits = digits.max(1);
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return nonfinite(v);
    }
    // The exponent after rounding (9.9996 at 4 digits is 10.00).
    let rounded: f64 = format!("{v:.prec$e}", prec = digits - 1)
        .parse()
        .unwrap_or(v);
    let exp = rounded.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.prec$e}", prec = digits - 1)
    }
}

fn nonfinite(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_round_trips_at_every_magnitude() {
        let cases = [
            9.357622968840175e-14,
            -30.0,
            1.5,
            0.1,
            1e-300,
            5e-324,
            f64::MAX,
            -f64::MIN_POSITIVE,
            123456789.123,
            1e16,
            0.00012,
        ];
        for v in cases {
            let s = shortest(v);
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
            assert!(s.len() <= 24, "{s}");
        }
        assert_eq!(shortest(9.357622968840175e-14), "9.357622968840175e-14");
        assert_eq!(shortest(2.0), "2");
        assert_eq!(shortest(-0.0), "0");
        assert_eq!(shortest(f64::NAN), "nan");
        assert_eq!(shortest(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn shortest_f32_is_the_f32_shortest() {
        let v = 1.0f32.sin();
        assert_eq!(shortest_f32(v), "0.84147096");
        assert_eq!(shortest_f32(v).parse::<f32>().unwrap(), v);
        assert_eq!(shortest_f32(1e-40), "1e-40");
        assert_eq!(shortest_f32(f32::INFINITY), "inf");
    }

    #[test]
    fn significant_keeps_small_and_large_values_visible() {
        assert_eq!(significant(0.000_012_344, 4), "1.234e-5");
        assert_eq!(significant(12.3456, 4), "12.35");
        assert_eq!(significant(0.5, 3), "0.500");
        assert_eq!(significant(9.9996, 4), "10.00");
        assert_eq!(significant(1234567.0, 4), "1.235e6");
        assert_eq!(significant(0.0, 4), "0");
    }
}
