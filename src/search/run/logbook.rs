//! The logbook: one row per generation (JSONL and CSV in the run
//! directory). Columns:
//!
//! * `gen`; `offspring` (individuals that needed a fitness);
//!   `evaluations` (formulas sent to the evaluator), `failures` (of
//!   those);
//! * dedup: `syntactic_hits`, `canonical_hits`, `functional_hits` and
//!   their rates over `offspring`. Syntactic is what text equality (DEAP)
//!   would have caught; canonical and functional are what this search
//!   serves from its cache, and `dedup_rate` is their sum over
//!   `offspring`;
//! * screening: `screened_nonfinite`, `screened_constant`,
//!   `screened_exploding`, `screened_vanishing`, `screened_linear`,
//!   `screened_compile`;
//! * the population after selection: `fitness_min/mean/max` (over
//!   non-failures; empty when all failed), `size_*` (tree nodes),
//!   `height_*`, `nodes_*` (DAG nodes of the simplified formulas), `best`
//!   (the best formula's text);
//! * time: `seconds` (wall), `eval_seconds` (sum over evaluations),
//!   `screen_seconds`, `compile_seconds`. Only these vary between runs
//!   of the same seed.

use serde_json::{json, Value};

use crate::error::Result;

use crate::search::json::{num, Fields};
use crate::search::screen::Reason;

/// Per-generation (and whole-run) counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub offspring: usize,
    pub syntactic: usize,
    pub canonical: usize,
    pub functional: usize,
    pub evaluations: usize,
    pub failures: usize,
    /// Indexed like [`Reason::ALL`].
    pub screened: [usize; 6],
}

impl Counters {
    pub fn screen(&mut self, r: Reason) {
        self.screened[r as usize] += 1;
    }

    pub fn add(&mut self, o: &Counters) {
        self.offspring += o.offspring;
        self.syntactic += o.syntactic;
        self.canonical += o.canonical;
        self.functional += o.functional;
        self.evaluations += o.evaluations;
        self.failures += o.failures;
        for (a, b) in self.screened.iter_mut().zip(o.screened) {
            *a += b;
        }
    }

    fn rate(&self, n: usize) -> f64 {
        if self.offspring == 0 {
            0.0
        } else {
            n as f64 / self.offspring as f64
        }
    }

    pub fn syntactic_rate(&self) -> f64 {
        self.rate(self.syntactic)
    }

    pub fn canonical_rate(&self) -> f64 {
        self.rate(self.canonical)
    }

    pub fn functional_rate(&self) -> f64 {
        self.rate(self.functional)
    }

    /// Share of offspring served by dedup by meaning (canonical +
    /// functional).
    pub fn dedup_rate(&self) -> f64 {
        self.rate(self.canonical + self.functional)
    }

    pub fn screened_total(&self) -> usize {
        self.screened.iter().sum()
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "offspring": self.offspring,
            "evaluations": self.evaluations,
            "failures": self.failures,
            "syntactic_hits": self.syntactic,
            "canonical_hits": self.canonical,
            "functional_hits": self.functional,
            "syntactic_rate": self.syntactic_rate(),
            "canonical_rate": self.canonical_rate(),
            "functional_rate": self.functional_rate(),
            "dedup_rate": self.dedup_rate(),
        });
        for r in Reason::ALL {
            v[format!("screened_{}", r.name())] = json!(self.screened[r as usize]);
        }
        v
    }

    pub fn from_json(v: &Value, file: &str) -> Result<Counters> {
        let f = Fields::of(v, file, "counters")?;
        let mut c = Counters {
            offspring: f.usize("offspring")?,
            syntactic: f.usize("syntactic_hits")?,
            canonical: f.usize("canonical_hits")?,
            functional: f.usize("functional_hits")?,
            evaluations: f.usize("evaluations")?,
            failures: f.usize("failures")?,
            screened: [0; 6],
        };
        for r in Reason::ALL {
            c.screened[r as usize] = f.usize(&format!("screened_{}", r.name()))?;
        }
        Ok(c)
    }
}

/// min, mean, max of some values (NaN when there are none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for v in values {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            n += 1;
        }
        if n == 0 {
            return Spread {
                min: f64::NAN,
                mean: f64::NAN,
                max: f64::NAN,
            };
        }
        Spread {
            min,
            mean: sum / n as f64,
            max,
        }
    }
}

/// Wall-clock figures of a generation (the only non-deterministic part).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    pub seconds: f64,
    pub eval_seconds: f64,
    pub screen_seconds: f64,
    pub compile_seconds: f64,
}

/// One generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub gen: usize,
    pub counters: Counters,
    pub fitness: Spread,
    pub size: Spread,
    pub height: Spread,
    pub nodes: Spread,
    pub best: Option<String>,
    pub timing: Timing,
}

/// The CSV header, in the order of [`Row::fields`].
pub const CSV_HEADER: [&str; 34] = [
    "gen",
    "offspring",
    "evaluations",
    "failures",
    "syntactic_hits",
    "canonical_hits",
    "functional_hits",
    "syntactic_rate",
    "canonical_rate",
    "functional_rate",
    "dedup_rate",
    "screened_nonfinite",
    "screened_constant",
    "screened_exploding",
    "screened_vanishing",
    "screened_linear",
    "screened_compile",
    "fitness_min",
    "fitness_mean",
    "fitness_max",
    "size_min",
    "size_mean",
    "size_max",
    "height_min",
    "height_mean",
    "height_max",
    "nodes_min",
    "nodes_mean",
    "nodes_max",
    "best",
    "seconds",
    "eval_seconds",
    "screen_seconds",
    "compile_seconds",
];

impl Row {
    /// The JSONL object; its keys are [`CSV_HEADER`].
    pub fn to_json(&self) -> Value {
        let mut v = json!({"gen": self.gen});
        let c = self.counters.to_json();
        for (k, val) in c.as_object().expect("object") {
            v[k] = val.clone();
        }
        for (name, s) in [
            ("fitness", self.fitness),
            ("size", self.size),
            ("height", self.height),
            ("nodes", self.nodes),
        ] {
            v[format!("{name}_min")] = num(s.min);
            v[format!("{name}_mean")] = num(s.mean);
            v[format!("{name}_max")] = num(s.max);
        }
        v["best"] = json!(self.best);
        v["seconds"] = num(self.timing.seconds);
        v["eval_seconds"] = num(self.timing.eval_seconds);
        v["screen_seconds"] = num(self.timing.screen_seconds);
        v["compile_seconds"] = num(self.timing.compile_seconds);
        v
    }

    /// The CSV fields, in the order of [`CSV_HEADER`].
    pub fn fields(&self) -> Vec<String> {
        let v = self.to_json();
        CSV_HEADER
            .iter()
            .map(|k| match &v[*k] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    pub fn from_json(v: &Value, file: &str) -> Result<Row> {
        let f = Fields::of(v, file, "a logbook row")?;
        let spread = |name: &str| -> Spread {
            let g = |k: &str| {
                f.opt(&format!("{name}_{k}"))
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN)
            };
            Spread {
                min: g("min"),
                mean: g("mean"),
                max: g("max"),
            }
        };
        let t = |k: &str| f.opt(k).and_then(Value::as_f64).unwrap_or(0.0);
        Ok(Row {
            gen: f.usize("gen")?,
            counters: Counters::from_json(v, file)?,
            fitness: spread("fitness"),
            size: spread("size"),
            height: spread("height"),
            nodes: spread("nodes"),
            best: f.opt("best").and_then(Value::as_str).map(String::from),
            timing: Timing {
                seconds: t("seconds"),
                eval_seconds: t("eval_seconds"),
                screen_seconds: t("screen_seconds"),
                compile_seconds: t("compile_seconds"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_fill_every_column() {
        let mut c = Counters {
            offspring: 10,
            syntactic: 2,
            canonical: 4,
            functional: 1,
            evaluations: 5,
            failures: 1,
            screened: [0; 6],
        };
        c.screen(Reason::Constant);
        let row = Row {
            gen: 3,
            counters: c,
            fitness: Spread::of([0.5, 0.25]),
            size: Spread::of([3.0, 5.0]),
            height: Spread::of([1.0, 2.0]),
            nodes: Spread::of([]),
            best: Some("sin(ARG0)".into()),
            timing: Timing {
                seconds: 1.0,
                ..Timing::default()
            },
        };
        let back = Row::from_json(&row.to_json(), "log").unwrap();
        assert_eq!(back.counters, row.counters);
        assert_eq!(back.fitness, row.fitness);
        assert!(back.nodes.mean.is_nan());
        let fields = row.fields();
        assert_eq!(fields.len(), CSV_HEADER.len());
        assert_eq!(fields[12], "1", "screened_constant");
        assert_eq!(fields[10], "0.5", "dedup rate (4 + 1) / 10");
        assert_eq!(row.to_json().as_object().unwrap().len(), CSV_HEADER.len());
    }
}
