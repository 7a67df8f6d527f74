//! Training checkpoints: the parameters and the optimizer's moments in one
//! safetensors file, and a JSON file that names it and holds the position
//! in the data, the loss history and what the run was (recipe hash,
//! activation, seed).
//!
//! Crash safety: the weights go to a new file `weights-<step>.safetensors`
//! first; then `checkpoint.json` is replaced atomically to point at it;
//! only then is the previous weights file removed. At every instant the
//! JSON names a complete weights file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::optim::AdamW;
use crate::error::{Error, Result};
use crate::store::files::write_atomic;

/// What `checkpoint.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Format marker: a checkpoint of another tool or version is refused.
    pub format: String,
    pub recipe_hash: String,
    pub activation: String,
    pub seed: u64,
    /// Optimizer steps taken (the next step to run).
    pub step: u64,
    pub total_steps: u64,
    /// The training loss of every step taken.
    pub losses: Vec<f32>,
    /// Per-epoch evaluation rows written so far (JSON objects).
    pub epochs: Vec<serde_json::Value>,
    /// Seconds spent training before this checkpoint.
    pub train_seconds: f64,
    pub weights: String,
}

pub const FORMAT: &str = "actforge-checkpoint-1";
const META: &str = "checkpoint.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path.display().to_string(), e)
}

fn candle(path: &Path) -> impl FnOnce(candle_core::Error) -> Error + '_ {
    move |e| Error::Input {
        path: path.display().to_string(),
        line: None,
        message: e.to_string(),
    }
}

/// Write a checkpoint of `params` and `opt` into `dir` (created).
pub fn save(dir: &Path, meta: &Meta, params: &[(String, Var)], opt: &AdamW) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tensors: HashMap<String, Tensor> = opt.state().map_err(candle(dir))?;
    for (name, var) in params {
        tensors.insert(format!("param.{name}"), var.as_tensor().clone());
    }
    let file = format!("weights-{}.safetensors", meta.step);
    let path = dir.join(&file);
    let tmp = dir.join(format!(".{file}.tmp.{}", std::process::id()));
    candle_core::safetensors::save(&tensors, &tmp).map_err(candle(&tmp))?;
    let bytes = std::fs::read(&tmp).map_err(io(&tmp))?;
    std::fs::remove_file(&tmp).map_err(io(&tmp))?;
    write_atomic(&path, &bytes)?;
    let previous = load_meta(dir).ok().map(|m| m.weights);
    let meta = Meta {
        weights: file.clone(),
        ..meta.clone()
    };
    let text = serde_json::to_string_pretty(&meta).expect("serializes");
    write_atomic(&dir.join(META), text.as_bytes())?;
    if let Some(old) = previous.filter(|o| *o != file) {
        let _ = std::fs::remove_file(dir.join(old));
    }
    Ok(())
}

/// Whether `dir` holds a checkpoint.
pub fn exists(dir: &Path) -> bool {
    dir.join(META).is_file()
}

/// Read `checkpoint.json`; a file of another format is an error.
pub fn load_meta(dir: &Path) -> Result<Meta> {
    let path = dir.join(META);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let meta: Meta = serde_json::from_str(&text).map_err(|e| Error::Input {
        path: path.display().to_string(),
        line: Some(e.line()),
        message: format!("not an actforge checkpoint: {e}"),
    })?;
    if meta.format != FORMAT {
        return Err(Error::Input {
            path: path.display().to_string(),
            line: None,
            message: format!("checkpoint format `{}`, expected `{FORMAT}`", meta.format),
        });
    }
    Ok(meta)
}

/// Restore parameters and optimizer state from the weights file `meta`
/// names. Every parameter must be present with its shape.
pub fn restore(
    dir: &Path,
    meta: &Meta,
    params: &[(String, Var)],
    opt: &mut AdamW,
    device: &Device,
) -> Result<()> {
    let path: PathBuf = dir.join(&meta.weights);
    let tensors = candle_core::safetensors::load(&path, device).map_err(candle(&path))?;
    let bad = |message: String| Error::Input {
        path: path.display().to_string(),
        line: None,
        message,
    };
    for (name, var) in params {
        let key = format!("param.{name}");
        let t = tensors.get(&key).ok_or_else(|| {
            bad(format!(
                "no parameter `{name}`: a checkpoint of another model"
            ))
        })?;
        if t.dims() != var.dims() {
            return Err(bad(format!(
                "parameter `{name}` has shape {:?}, the model {:?}",
                t.dims(),
                var.dims()
            )));
        }
        var.set(t).map_err(candle(&path))?;
    }
    opt.load_state(&tensors).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fitness::optim::AdamWConfig;

    fn meta(step: u64) -> Meta {
        Meta {
            format: FORMAT.into(),
            recipe_hash: "r".into(),
            activation: "gelu".into(),
            seed: 1,
            step,
            total_steps: 10,
            losses: vec![1.0; step as usize],
            epochs: vec![],
            train_seconds: 0.5,
            weights: String::new(),
        }
    }

    #[test]
    fn save_restore_round_trips_and_keeps_one_weights_file() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("actforge-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0], &dev).unwrap()).unwrap();
        let params = vec![("w".to_string(), w.clone())];
        let mut opt = AdamW::new(params.clone(), AdamWConfig::default()).unwrap();
        let g = w
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        opt.step(&g, 0.1, 1.0).unwrap();
        save(&dir, &meta(1), &params, &opt)?;
        opt.step(&g, 0.1, 1.0).unwrap();
        save(&dir, &meta(2), &params, &opt)?;
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let m = load_meta(&dir)?;
        assert_eq!((m.step, m.weights.as_str()), (2, "weights-2.safetensors"));
        let saved = w.as_tensor().to_vec1::<f32>().unwrap();
        let w2 = Var::from_tensor(&Tensor::new(&[0.0f32, 0.0], &dev).unwrap()).unwrap();
        let params2 = vec![("w".to_string(), w2.clone())];
        let mut opt2 = AdamW::new(params2.clone(), AdamWConfig::default()).unwrap();
        restore(&dir, &m, &params2, &mut opt2, &dev)?;
        assert_eq!(w2.as_tensor().to_vec1::<f32>().unwrap(), saved);
        assert_eq!(opt2.steps(), 2);
        // Another model's parameters are refused.
        let u = Var::from_tensor(&Tensor::new(&[0.0f32], &dev).unwrap()).unwrap();
        let params3 = vec![("w".to_string(), u)];
        let mut opt3 = AdamW::new(params3.clone(), AdamWConfig::default()).unwrap();
        let e = restore(&dir, &m, &params3, &mut opt3, &dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shape"), "{e}");
        // A foreign JSON is refused.
        std::fs::write(dir.join(META), "{\"format\": \"x\"}").unwrap();
        assert!(load_meta(&dir).is_err());
        Ok(())
    }
}
