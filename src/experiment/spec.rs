//! What an experiment compares: the recipe, the activations, the seeds
//! and the device, as recorded in `config.json`; how activation and device
//! specs are read.

use std::path::Path;

use candle_core::Device;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::fitness::Recipe;
use crate::op::Activation;

/// The `results.json` format marker.
pub const RESULTS_FORMAT: &str = "actforge-train-1";

/// What to compare.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub recipe: Recipe,
    /// Activation specs as given (`gelu`, `fused:F`, `composed:F`, or a
    /// bare formula, taken as fused).
    pub activations: Vec<String>,
    pub seeds: Vec<u64>,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Checkpoint every this many steps (0: only at the end of a run).
    pub checkpoint_every: u64,
    /// Sample answers kept per run (Q&A).
    pub samples: usize,
    /// The command line that started it (recorded).
    pub command: Vec<String>,
}

impl Experiment {
    pub fn to_json(&self) -> Value {
        json!({
            "format": RESULTS_FORMAT,
            "recipe": self.recipe.to_json(),
            "activations": self.activations,
            "seeds": self.seeds,
            "device": self.device,
            "checkpoint_every": self.checkpoint_every,
            "samples": self.samples,
            "command": self.command,
            "versions": versions(),
        })
    }

    pub fn from_json(v: &Value, path: &Path) -> Result<Experiment> {
        let bad = |m: &str| Error::Input {
            path: path.display().to_string(),
            line: None,
            message: format!("not an actforge train run: {m}"),
        };
        if v["format"] != RESULTS_FORMAT {
            return Err(bad("unknown format"));
        }
        let strings = |k: &str| -> Result<Vec<String>> {
            v[k].as_array()
                .ok_or_else(|| bad(k))?
                .iter()
                .map(|s| s.as_str().map(String::from).ok_or_else(|| bad(k)))
                .collect()
        };
        Ok(Experiment {
            recipe: Recipe::from_json(&v["recipe"])?,
            activations: strings("activations")?,
            seeds: v["seeds"]
                .as_array()
                .ok_or_else(|| bad("seeds"))?
                .iter()
                .map(|s| s.as_u64().ok_or_else(|| bad("seeds")))
                .collect::<Result<_>>()?,
            device: v["device"].as_str().ok_or_else(|| bad("device"))?.into(),
            checkpoint_every: v["checkpoint_every"].as_u64().unwrap_or(0),
            samples: v["samples"].as_u64().unwrap_or(0) as usize,
            command: strings("command").unwrap_or_default(),
        })
    }
}

/// actforge's and candle's versions, recorded in every run directory.
pub fn versions() -> Value {
    json!({"actforge": env!("CARGO_PKG_VERSION"), "candle": "0.11.1"})
}

/// How tables name candle's built-in GELU (`gelu`): what trains is the
/// tanh approximation, not the exact erf GELU of the prelude's `gelu(x)`.
pub const GELU_LABEL: &str = "gelu (candle, tanh)";

/// The name a table gives an activation spec: [`GELU_LABEL`] for `gelu`,
/// the spec itself (whole) otherwise.
pub fn label(spec: &str) -> String {
    if spec.trim() == "gelu" {
        GELU_LABEL.into()
    } else {
        spec.to_string()
    }
}

/// `gelu`, `fused:F`, `composed:F`; a bare formula is fused.
pub fn parse_activation(spec: &str) -> Result<Activation> {
    let s = spec.trim();
    if s == "gelu" || s.starts_with("fused:") || s.starts_with("composed:") {
        Activation::parse(s)
    } else {
        Activation::parse(&format!("fused:{s}"))
    }
}

/// `cpu`, `cuda` (GPU 0) or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return Err(Error::Usage(format!(
                    "device `{spec}`: expected cpu, cuda or cuda:N"
                )))
            }
        },
    };
    Device::new_cuda(ordinal).map_err(|e| Error::Missing {
        what: format!("CUDA device {ordinal}"),
        detail: e.to_string(),
        hint:
            "build with `--features cuda` on a machine with an NVIDIA driver, or use --device cpu"
                .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp() -> Experiment {
        Experiment {
            recipe: Recipe::for_task(crate::fitness::Task::Qa, false),
            activations: vec!["gelu".into(), "silu(x)".into()],
            seeds: vec![1, 2, 3],
            device: "cpu".into(),
            checkpoint_every: 0,
            samples: 0,
            command: vec!["actforge".into(), "train".into()],
        }
    }

    #[test]
    fn experiments_round_trip_through_json() {
        let e = exp();
        let back = Experiment::from_json(&e.to_json(), Path::new("config.json")).unwrap();
        assert_eq!(back.activations, e.activations);
        assert_eq!(back.seeds, e.seeds);
        assert_eq!(back.recipe, e.recipe);
        assert!(Experiment::from_json(&json!({"format": "x"}), Path::new("c.json")).is_err());
    }

    #[test]
    fn activation_specs_default_to_fused_and_devices_parse() {
        assert!(matches!(
            parse_activation("gelu").unwrap(),
            Activation::Gelu
        ));
        assert!(matches!(
            parse_activation("silu(x)").unwrap(),
            Activation::Fused(_)
        ));
        assert!(matches!(
            parse_activation("composed:silu(x)").unwrap(),
            Activation::Composed(_)
        ));
        assert!(parse_activation("silu(").is_err());
        assert!(matches!(parse_device("cpu").unwrap(), Device::Cpu));
        assert!(parse_device("gpu").is_err());
    }
}
