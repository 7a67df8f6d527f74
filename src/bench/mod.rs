//! Benchmarks behind `actforge bench`: the fused activation against the
//! composed one and candle's built-in GELU (and, on a GPU, the raw kernels
//! against a copy and one kernel per op), measured side by side in one run,
//! reported as rows (median, fastest and slowest round) and speedups.
//!
//! Sizes are checked against [`MAX_ELEMS`] and [`MAX_ITERS`] before
//! anything is allocated.

pub mod candle;
pub mod compile;
pub mod copy;
pub mod kernels;
pub mod run;
pub mod sass;
pub mod step;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::error::{Error, Result, Setting};
use crate::gp::{Method, PrimitiveSet, Tree};
use crate::report::number::significant;

/// The formulas the criterion benches measure, by name: both seeds, GELU
/// written as a formula, and a deep random formula (DEAP `genFull` tree of
/// height 6 from the seed set, RNG seed 3).
pub fn bench_formulas() -> Vec<(&'static str, String)> {
    let set = PrimitiveSet::seed();
    let deep =
        Tree::generate(&mut StdRng::seed_from_u64(3), &set, 6, 6, Method::Full).to_formula(&set);
    vec![
        (
            "seed-qa",
            "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))".into(),
        ),
        (
            "seed-t5",
            "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))".into(),
        ),
        ("gelu_like", "gelu_like(x)".into()),
        ("random-full-6", deep),
    ]
}

/// What was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Device-to-device copy of the same bytes: the bandwidth ceiling.
    Copy,
    /// The fused NVRTC kernels launched directly.
    FusedKernel,
    /// One generated kernel per op, launched directly.
    ComposedKernels,
    /// The formula through the dispatch kernels of a generation-sized
    /// module (`codegen::Layout::Dispatch`), launched directly.
    DispatchKernel,
    /// The fused candle op (`fused:FORMULA`).
    Fused,
    /// The formula as a chain of candle ops (`composed:FORMULA`).
    Composed,
    /// candle's built-in `gelu`.
    Builtin,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Copy => "copy",
            Variant::FusedKernel => "fused-kernel",
            Variant::ComposedKernels => "composed-kernels",
            Variant::DispatchKernel => "dispatch-kernel",
            Variant::Fused => "fused",
            Variant::Composed => "composed",
            Variant::Builtin => "builtin-gelu",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Fwd,
    Bwd,
    FwdBwd,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Fwd => "fwd",
            Pass::Bwd => "bwd",
            Pass::FwdBwd => "fwdbwd",
        }
    }
}

/// Most elements per tensor a benchmark takes (2^28: 1 GiB per f32
/// tensor; the composed path holds a dozen such tensors at once).
pub const MAX_ELEMS: usize = 1 << 28;

/// Most timed rounds per variant.
pub const MAX_ITERS: usize = 100_000;

/// A row whose slowest round exceeds its fastest by more than this share
/// of its median is reported as noisy.
pub const NOISY_SPREAD: f64 = 0.5;

/// A usage error unless `1 ≤ elems ≤ MAX_ELEMS` and `1 ≤ iters ≤
/// MAX_ITERS`; checked before anything is allocated.
pub fn check_sizes(elems: usize, iters: usize) -> Result<()> {
    if !(1..=MAX_ELEMS).contains(&elems) {
        return Err(Error::setting(format!(
            "{} {elems}: a benchmark takes 1 to {MAX_ELEMS} (2^28) elements per tensor",
            Setting::Elems
        )));
    }
    if !(1..=MAX_ITERS).contains(&iters) {
        return Err(Error::setting(format!(
            "{} {iters}: a benchmark takes 1 to {MAX_ITERS} timed rounds",
            Setting::Iters
        )));
    }
    Ok(())
}

/// A usage error when even the fewest buffers of a CPU benchmark (input,
/// output, gradient and the copy baseline's two: five tensors of
/// `elems × bytes`) exceed the memory the system reports as available
/// (Linux `MemAvailable`; no check where that is unknown).
pub fn check_host_memory(elems: usize, bytes: usize) -> Result<()> {
    let need = (elems as u128) * (bytes as u128) * 5;
    match available_memory() {
        Some(have) if need > have as u128 => Err(Error::setting(format!(
            "{} {elems}: the CPU benchmark needs at least {:.1} GiB, and {:.1} GiB are available",
            Setting::Elems,
            need as f64 / GIB,
            have as f64 / GIB
        ))),
        _ => Ok(()),
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Fastest, median and slowest of a set of timings (seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stats {
    /// None for no samples.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Some(Stats {
            min: *v.first()?,
            median: v[v.len() / 2],
            max: *v.last()?,
        })
    }

    /// (max − min) / median: 0 for perfectly steady rounds.
    pub fn spread(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

/// One measurement. `gbps` counts the minimal traffic of the pass (read x,
/// write y; backward also reads dy), whatever the variant actually moves,
/// at the median time.
#[derive(Clone, Debug)]
pub struct Row {
    pub variant: Variant,
    pub pass: Pass,
    pub elems: usize,
    /// The median round.
    pub seconds: f64,
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// Timed rounds.
    pub rounds: usize,
    pub gbps: f64,
}

impl Row {
    /// This row as a bar of [`crate::report::plot::bar_chart`].
    pub fn bar(&self) -> crate::report::plot::Bar {
        let group = match self.variant {
            Variant::Fused | Variant::FusedKernel | Variant::DispatchKernel => "fused",
            Variant::Composed | Variant::ComposedKernels => "composed",
            Variant::Builtin => "builtin",
            Variant::Copy => "copy",
        };
        crate::report::plot::Bar {
            label: format!("{} {}", self.variant.name(), self.pass.name()),
            millis: self.seconds * 1e3,
            group: group.into(),
        }
    }

    /// The row of `samples` (seconds per round, at least one) of a pass
    /// that moves `bytes`.
    pub fn from_samples(
        variant: Variant,
        pass: Pass,
        elems: usize,
        bytes: usize,
        samples: &[f64],
    ) -> Row {
        let s = Stats::of(samples).expect("at least one timed round");
        Row {
            variant,
            pass,
            elems,
            seconds: s.median,
            min_seconds: s.min,
            max_seconds: s.max,
            rounds: samples.len(),
            gbps: bytes as f64 / s.median / 1e9,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            min: self.min_seconds,
            median: self.seconds,
            max: self.max_seconds,
        }
    }
}

/// A warning naming the rows whose rounds spread by more than
/// [`NOISY_SPREAD`] of their median, if any.
pub fn spread_warning(rows: &[Row]) -> Option<String> {
    let noisy: Vec<String> = rows
        .iter()
        .filter(|r| r.stats().spread() > NOISY_SPREAD)
        .map(|r| {
            format!(
                "{} {} ({}–{} ms)",
                r.variant.name(),
                r.pass.name(),
                significant(r.min_seconds * 1e3, 3),
                significant(r.max_seconds * 1e3, 3)
            )
        })
        .collect();
    if noisy.is_empty() {
        return None;
    }
    Some(format!(
        "the rounds of {} row(s) vary by more than {:.0}% of their median: {}. The machine is noisy: compare rows of one run only, raise --iters, or rerun",
        noisy.len(),
        NOISY_SPREAD * 100.0,
        noisy.join(", ")
    ))
}

/// Time of `other` divided by the fused time, per pass.
pub fn speedups(rows: &[Row], fused: Variant, other: Variant) -> Value {
    let t = |v: Variant, p: Pass| {
        rows.iter()
            .find(|r| r.variant == v && r.pass == p)
            .map(|r| r.seconds)
    };
    let mut obj = serde_json::Map::new();
    for p in [Pass::Fwd, Pass::Bwd, Pass::FwdBwd] {
        let s = match (t(other, p), t(fused, p)) {
            (Some(o), Some(f)) if f > 0.0 => json!(o / f),
            _ => Value::Null,
        };
        obj.insert(p.name().into(), s);
    }
    Value::Object(obj)
}

/// The copy row's rate, the baseline of `pct_of_copy`.
fn copy_gbps(rows: &[Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.variant == Variant::Copy)
        .map(|r| r.gbps)
}

/// The rows as JSON: `variant, pass, elems, seconds` (median), `gbps`,
/// `pct_of_copy` (when a copy row exists), `min_seconds, max_seconds,
/// rounds`.
pub fn rows_json(rows: &[Row]) -> Value {
    let copy = copy_gbps(rows);
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut o = json!({
                    "variant": r.variant.name(),
                    "pass": r.pass.name(),
                    "elems": r.elems,
                    "seconds": r.seconds,
                    "gbps": r.gbps,
                });
                if let Some(c) = copy {
                    o["pct_of_copy"] = json!(100.0 * r.gbps / c);
                }
                o["min_seconds"] = json!(r.min_seconds);
                o["max_seconds"] = json!(r.max_seconds);
                o["rounds"] = json!(r.rounds);
                o
            })
            .collect(),
    )
}

/// A fixed-width table of the rows: median, fastest and slowest round.
pub fn table(rows: &[Row]) -> String {
    let copy = copy_gbps(rows);
    let mut s = format!(
        "{:<18} {:<7} {:>11} {:>11} {:>11} {:>11} {:>9} {:>7}\n",
        "variant", "pass", "elems", "median (ms)", "min (ms)", "max (ms)", "GB/s", "% copy"
    );
    let ms = |v: f64| significant(v * 1e3, 4);
    for r in rows {
        let pct = copy.map_or(String::new(), |c| significant(100.0 * r.gbps / c, 3));
        s += &format!(
            "{:<18} {:<7} {:>11} {:>11} {:>11} {:>11} {:>9} {:>7}\n",
            r.variant.name(),
            r.pass.name(),
            r.elems,
            ms(r.seconds),
            ms(r.min_seconds),
            ms(r.max_seconds),
            significant(r.gbps, 3),
            pct
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(variant: Variant, samples: &[f64]) -> Row {
        Row::from_samples(variant, Pass::Fwd, 1000, 8000, samples)
    }

    #[test]
    fn stats_are_min_median_max() {
        let s = Stats::of(&[3.0, 1.0, 2.0, 10.0, 2.5]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 10.0));
        assert!(Stats::of(&[]).is_none());
        assert_eq!(Stats::of(&[4.0]).unwrap().spread(), 0.0);
    }

    #[test]
    fn rows_carry_their_spread_and_the_copy_baseline() {
        let rows = [
            row(Variant::Copy, &[1e-3, 1e-3, 1.1e-3]),
            row(Variant::Fused, &[2e-3, 2e-3, 9e-3]),
        ];
        assert!((rows[1].gbps - 8000.0 / 2e-3 / 1e9).abs() < 1e-9);
        let j = rows_json(&rows);
        assert_eq!(j[0]["pct_of_copy"], 100.0);
        assert_eq!(j[1]["pct_of_copy"], 50.0);
        assert_eq!(j[1]["min_seconds"], 2e-3);
        assert_eq!(j[1]["max_seconds"], 9e-3);
        assert_eq!(j[1]["rounds"], 3);
        let w = spread_warning(&rows).unwrap();
        assert!(
            w.contains("fused fwd (2.00–9.00 ms)") && !w.contains("copy"),
            "{w}"
        );
        assert!(spread_warning(&rows[..1]).is_none());
        let t = table(&rows);
        assert!(t.contains("min (ms)") && t.contains("50.0"), "{t}");
    }

    #[test]
    fn sizes_are_checked_against_their_limits() {
        assert!(check_sizes(1, 1).is_ok());
        assert!(check_sizes(MAX_ELEMS, MAX_ITERS).is_ok());
        for (e, i) in [
            (0, 1),
            (MAX_ELEMS + 1, 1),
            (usize::MAX, 1),
            (1, 0),
            (1, MAX_ITERS + 1),
        ] {
            let e = check_sizes(e, i).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("268435456") || msg.contains("100000"), "{msg}");
            let Error::Setting(named) = e else {
                panic!("{msg}")
            };
            let want = if msg.contains("268435456") {
                Setting::Elems
            } else {
                Setting::Iters
            };
            assert_eq!(named.settings(), vec![want]);
        }
        assert!(
            check_host_memory(MAX_ELEMS, usize::MAX / 4).is_err() || available_memory().is_none()
        );
    }
}
