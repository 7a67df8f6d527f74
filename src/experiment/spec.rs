//! What an experiment compares: the recipe, the activations, the seeds
//! and the device, as recorded in `config.json` (with a description of
//! the prepared data and the hash of all but the command and versions,
//! which a resumed run checks); how activation and device specs are read.

use std::path::Path;

use serde_json::{json, Value};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::fitness::{Prepared, Recipe};
use crate::op::Activation;
use crate::store::checksum_hex;

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
    /// Where the runs train; recorded as it was written (`cpu`, `cuda`,
    /// `cuda:N`).
    pub device: Device,
    /// Checkpoint every this many steps (0: only at the end of a run).
    pub checkpoint_every: u64,
    /// Sample answers kept per run (Q&A).
    pub samples: usize,
    /// The command line that started it (recorded).
    pub command: Vec<String>,
    /// What the prepared data was ([`Prepared::describe`]) when the run
    /// started; a resumed run must prepare the same (`None`: not checked).
    pub data: Option<Value>,
}

impl Experiment {
    /// Everything that decides the results (what the settings hash covers).
    fn settings_json(&self) -> Value {
        json!({
            "recipe": self.recipe.to_json(),
            "activations": self.activations,
            "seeds": self.seeds,
            "device": self.device.to_string(),
            "checkpoint_every": self.checkpoint_every,
            "samples": self.samples,
            "data": self.data,
        })
    }

    /// The hash of [`Experiment::settings_json`] (16 hex digits).
    pub fn settings_hash(&self) -> String {
        checksum_hex(self.settings_json().to_string().as_bytes())
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"format": RESULTS_FORMAT});
        if let (Value::Object(out), Value::Object(settings)) = (&mut v, self.settings_json()) {
            out.extend(settings);
        }
        v["command"] = json!(self.command);
        v["versions"] = versions();
        v["settings_hash"] = json!(self.settings_hash());
        v
    }

    /// Read [`Experiment::to_json`] (a run's `config.json`, `path`): its
    /// settings must match their recorded hash (an edited activation or
    /// step count would mix runs of different settings in one summary),
    /// and they meet the flags' rules and limits.
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
        // A refused value names the file and its key there.
        let in_file = |e: Error| match e {
            Error::Usage(m) => Error::Usage(format!("{}: {m}", path.display())),
            Error::Setting(named) => Error::Usage(format!("{}: {named}", path.display())),
            other => other,
        };
        let seeds = v["seeds"].as_array().ok_or_else(|| bad("seeds"))?;
        crate::limits::SEEDS
            .check_usize(crate::error::Setting::Seeds, seeds.len())
            .map_err(in_file)?;
        let exp = Experiment {
            recipe: Recipe::from_json(&v["recipe"]).map_err(in_file)?,
            activations: strings("activations")?,
            seeds: seeds
                .iter()
                .map(|s| s.as_u64().ok_or_else(|| bad("seeds")))
                .collect::<Result<_>>()?,
            device: Device::parse(v["device"].as_str().ok_or_else(|| bad("device"))?)
                .map_err(in_file)?,
            checkpoint_every: v["checkpoint_every"]
                .as_u64()
                .ok_or_else(|| bad("checkpoint_every"))?,
            samples: v["samples"].as_u64().ok_or_else(|| bad("samples"))? as usize,
            command: strings("command").unwrap_or_default(),
            data: v.get("data").filter(|d| !d.is_null()).cloned(),
        };
        let recorded = v["settings_hash"].as_str().ok_or_else(|| {
            bad("it records no `settings_hash`, so its settings cannot be verified")
        })?;
        if recorded != exp.settings_hash() {
            return Err(Error::Input {
                path: path.display().to_string(),
                line: None,
                message: format!(
                    "the settings do not match their recorded hash {recorded} (the file was edited): a resumed run must train with the settings it started with"
                ),
            });
        }
        for a in &exp.activations {
            parse_activation(a).map_err(in_file)?;
        }
        Ok(exp)
    }
}

/// The prepared data must be what the run started with (`config`, the
/// file that records it): a data file or tokenizer that changed under the
/// same path would mix runs on different data.
pub fn check_data(exp: &Experiment, prep: &Prepared, config: &Path) -> Result<()> {
    let Some(want) = &exp.data else {
        return Ok(());
    };
    let got = prep.describe();
    if &got == want {
        return Ok(());
    }
    let differs: Vec<String> = want
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| got.get(k.as_str()) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: {v} then, {} now",
                got.get(k.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect();
    Err(Error::Input {
        path: config.display().to_string(),
        line: None,
        message: format!(
            "the data prepared now is not the data the run started with ({}): restore the data (and tokenizer) it was made with, or start a new run",
            differs.join("; ")
        ),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exp() -> Experiment {
        Experiment {
            recipe: Recipe::for_task(crate::fitness::Task::Qa, false),
            activations: vec!["gelu".into(), "silu(x)".into()],
            seeds: vec![1, 2, 3],
            device: Device::Cpu,
            checkpoint_every: 0,
            samples: 0,
            command: vec!["actforge".into(), "train".into()],
            data: None,
        }
    }

    #[test]
    fn an_edited_config_is_refused_and_an_intact_one_reads_back() {
        let path = Path::new("runs/t/config.json");
        let v = exp().to_json();
        let back = Experiment::from_json(&v, path).unwrap();
        assert_eq!(back.settings_hash(), exp().settings_hash());
        assert_eq!(back.activations, exp().activations);
        // Changing an activation or the steps is an edit.
        let mut edited = v.clone();
        edited["activations"][1] = json!("relu(x)");
        let e = Experiment::from_json(&edited, path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runs/t/config.json") && e.contains("recorded hash"),
            "{e}"
        );
        let mut edited = v.clone();
        edited["recipe"]["length"] = json!({"steps": 7});
        assert!(Experiment::from_json(&edited, path).is_err());
        // A config without a hash cannot be verified.
        let mut bare = v.clone();
        bare.as_object_mut().unwrap().remove("settings_hash");
        let e = Experiment::from_json(&bare, path).unwrap_err().to_string();
        assert!(e.contains("settings_hash"), "{e}");
        // A forged size is held to the flags' limit, whatever the hash.
        let mut forged = v.clone();
        forged["seeds"] = json!((0..1001).collect::<Vec<u64>>());
        let e = Experiment::from_json(&forged, path).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(e.to_string().contains("limit of 1000"), "{e}");
        let mut forged = v;
        forged["recipe"]["batch_size"] = json!(1_000_000_000u64);
        let e = Experiment::from_json(&forged, path).unwrap_err();
        assert!(
            e.to_string()
                .contains("`batch_size` 1000000000 is above the limit"),
            "{e}"
        );
    }

    #[test]
    fn experiments_round_trip_through_json() {
        let e = exp();
        let back = Experiment::from_json(&e.to_json(), Path::new("config.json")).unwrap();
        assert_eq!(back.activations, e.activations);
        assert_eq!(back.seeds, e.seeds);
        assert_eq!(back.recipe, e.recipe);
        assert!(Experiment::from_json(&json!({"format": "x"}), Path::new("c.json")).is_err());
        // The device is typed, read once and written back as it was
        // written, so the settings (and their hash) of old runs hold.
        for d in ["cpu", "cuda", "cuda:2"] {
            let e = Experiment {
                device: Device::parse(d).unwrap(),
                ..exp()
            };
            let v = e.to_json();
            assert_eq!(v["device"], json!(d));
            let back = Experiment::from_json(&v, Path::new("config.json")).unwrap();
            assert_eq!(back.device, e.device);
            assert_eq!(back.settings_hash(), e.settings_hash());
        }
        let mut bad = exp().to_json();
        bad["device"] = json!("gpu");
        let err = Experiment::from_json(&bad, Path::new("runs/t/config.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("runs/t/config.json") && err.contains("device `gpu`"),
            "{err}"
        );
    }

    #[test]
    fn activation_specs_default_to_fused() {
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
    }
}
