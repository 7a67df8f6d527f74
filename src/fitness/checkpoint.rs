//! Training checkpoints: the parameters and the optimizer's moments in one
//! safetensors file, and a JSON file that names it and holds the position
//! in the data, the loss history, what the run was (recipe hash,
//! activation, seed) and the weights file's checksum.
//!
//! Crash safety: the weights go to a new file `weights-<step>.safetensors`
//! first (made in a fresh folder and renamed into place: never written
//! through a link); then `checkpoint.json` is replaced atomically to point
//! at it; only then is the previous weights file removed. At every instant
//! the JSON names a complete weights file.
//!
//! Integrity: a checkpoint's parts must agree before it is resumed. The
//! weights file is a bare name inside the checkpoint's folder, and the one
//! the step says (`weights-<step>.safetensors`); the step equals the number
//! of recorded losses and the optimizer's step count; the weights have the
//! recorded checksum. A checkpoint that fails any of these is refused with
//! the file named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::optim::AdamW;
use crate::error::{Error, Result};
use crate::store::files::write_atomic;
use crate::store::safe::{is_bare_name, join_bare, read_bounded, real_dir, write_with};
use crate::store::{checksum, checksum_hex};

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
    /// The weights file: a bare name in the checkpoint's folder.
    pub weights: String,
    /// `store::checksum` of the weights file (16 hex digits).
    pub weights_checksum: String,
    /// A lockstep population's members, in slice order (empty for a single
    /// run, and absent from its file). `losses` then holds the mean loss
    /// of the members still training at each step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberMeta>,
}

/// One member of a lockstep checkpoint: its own losses (one per step it
/// trained), per-epoch rows, and its failure when it has failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberMeta {
    pub activation: String,
    pub losses: Vec<f32>,
    pub epochs: Vec<serde_json::Value>,
    /// `(reason, step)` of a member frozen at its failure.
    pub failed: Option<(String, u64)>,
}

pub const FORMAT: &str = "actforge-checkpoint-2";
const META: &str = "checkpoint.json";

/// The largest weights file read back (the models here are far smaller).
const MAX_WEIGHTS_BYTES: u64 = 16 << 30;

fn candle(path: &Path) -> impl FnOnce(candle_core::Error) -> Error + '_ {
    move |e| Error::Input {
        path: path.display().to_string(),
        line: None,
        message: e.to_string(),
    }
}

/// The weights file of `step`.
pub fn weights_name(step: u64) -> String {
    format!("weights-{step}.safetensors")
}

/// Write a checkpoint of `params` and `opt` into `dir` (created; a link
/// there is an error).
pub fn save(dir: &Path, meta: &Meta, params: &[(String, Var)], opt: &AdamW) -> Result<()> {
    real_dir(dir)?;
    let mut tensors: HashMap<String, Tensor> = opt.state().map_err(candle(dir))?;
    for (name, var) in params {
        tensors.insert(format!("param.{name}"), var.as_tensor().clone());
    }
    let file = weights_name(meta.step);
    let path = dir.join(&file);
    let sum = write_with(&path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(candle(tmp))?;
        let bytes = std::fs::read(tmp).map_err(|e| Error::io(tmp.display().to_string(), e))?;
        Ok(checksum_hex(&bytes))
    })?;
    let previous = load_meta(dir).ok().map(|m| m.weights);
    let meta = Meta {
        weights: file.clone(),
        weights_checksum: sum,
        ..meta.clone()
    };
    let text = serde_json::to_string_pretty(&meta).expect("serializes");
    write_atomic(&dir.join(META), text.as_bytes())?;
    // Only a file this module names is ever removed.
    if let Some(old) =
        previous.filter(|o| *o != file && is_bare_name(o) && o.starts_with("weights-"))
    {
        let _ = std::fs::remove_file(dir.join(old));
    }
    Ok(())
}

/// Whether `dir` holds a checkpoint.
pub fn exists(dir: &Path) -> bool {
    dir.join(META).is_file()
}

fn bad(path: &Path, message: String) -> Error {
    Error::Input {
        path: path.display().to_string(),
        line: None,
        message,
    }
}

/// Read `checkpoint.json`; a file of another format, or one whose parts
/// disagree (weights name, step, losses), is an error naming it.
pub fn load_meta(dir: &Path) -> Result<Meta> {
    let path = dir.join(META);
    let bytes = read_bounded(&path, crate::limits::DATA_FILE_BYTES.max)?.ok_or_else(|| {
        Error::io(
            path.display().to_string(),
            std::io::ErrorKind::NotFound.into(),
        )
    })?;
    let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: path.display().to_string(),
        line: Some(e.line()),
        message: format!("not an actforge checkpoint of this version: {e}"),
    })?;
    if meta.format != FORMAT {
        return Err(bad(
            &path,
            format!("checkpoint format `{}`, expected `{FORMAT}`", meta.format),
        ));
    }
    join_bare(dir, &meta.weights, &path)?;
    if meta.weights != weights_name(meta.step) {
        return Err(bad(
            &path,
            format!(
                "names the weights file `{}`, but a checkpoint at step {} keeps `{}`: its parts disagree",
                meta.weights,
                meta.step,
                weights_name(meta.step)
            ),
        ));
    }
    if meta.losses.len() as u64 != meta.step {
        return Err(bad(
            &path,
            format!(
                "is at step {} but records {} losses: its parts disagree",
                meta.step,
                meta.losses.len()
            ),
        ));
    }
    Ok(meta)
}

/// Restore parameters and optimizer state from the weights file `meta`
/// names. The file must have the recorded checksum, every parameter must
/// be present with its shape, and the optimizer's step count must be the
/// checkpoint's step.
pub fn restore(
    dir: &Path,
    meta: &Meta,
    params: &[(String, Var)],
    opt: &mut AdamW,
    device: &Device,
) -> Result<()> {
    let path: PathBuf = join_bare(dir, &meta.weights, &dir.join(META))?;
    let bytes = read_bounded(&path, MAX_WEIGHTS_BYTES)?.ok_or_else(|| {
        Error::io(
            path.display().to_string(),
            std::io::ErrorKind::NotFound.into(),
        )
    })?;
    let got = checksum(&bytes);
    if format!("{got:016x}") != meta.weights_checksum {
        return Err(bad(
            &path,
            format!(
                "has checksum {got:016x}, but {META} records {}: the weights were changed or damaged",
                meta.weights_checksum
            ),
        ));
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(candle(&path))?;
    for (name, var) in params {
        let key = format!("param.{name}");
        let t = tensors.get(&key).ok_or_else(|| {
            bad(
                &path,
                format!("no parameter `{name}`: a checkpoint of another model"),
            )
        })?;
        if t.dims() != var.dims() {
            return Err(bad(
                &path,
                format!(
                    "parameter `{name}` has shape {:?}, the model {:?}",
                    t.dims(),
                    var.dims()
                ),
            ));
        }
        var.set(t).map_err(candle(&path))?;
    }
    opt.load_state(&tensors).map_err(|m| bad(&path, m))?;
    if opt.steps() != meta.step {
        return Err(bad(
            &path,
            format!(
                "holds the optimizer state of step {}, but {META} is at step {}: its parts disagree",
                opt.steps(),
                meta.step
            ),
        ));
    }
    Ok(())
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
            weights_checksum: String::new(),
            members: Vec::new(),
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

    /// A saved checkpoint of one AdamW step, its folder and its parameters.
    fn saved(tag: &str) -> (PathBuf, Vec<(String, Var)>, AdamW) {
        let dir = std::env::temp_dir().join(format!("actforge-ckpt-{tag}-{}", std::process::id()));
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
        save(&dir, &meta(1), &params, &opt).unwrap();
        (dir, params, opt)
    }

    fn edit(dir: &Path, f: impl Fn(&mut serde_json::Value)) {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(META)).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(dir.join(META), v.to_string()).unwrap();
    }

    #[test]
    fn a_checkpoint_whose_parts_disagree_is_refused_naming_the_file() {
        // The weights file must be a bare name inside the folder, and the
        // one the step says: `../` or an absolute path never loads (nor is
        // it removed by the next save).
        for weights in ["../outside.safetensors", "/etc/passwd"] {
            let (dir, _, _) = saved("escape");
            edit(&dir, |v| v["weights"] = serde_json::json!(weights));
            let e = load_meta(&dir).unwrap_err().to_string();
            assert!(
                e.contains("checkpoint.json") && e.contains("bare file name"),
                "{e}"
            );
        }
        let (dir, params, mut opt) = saved("parts");
        // Step against the number of losses.
        edit(&dir, |v| v["losses"] = serde_json::json!([1.0, 1.0, 1.0]));
        let e = load_meta(&dir).unwrap_err().to_string();
        assert!(e.contains("step 1 but records 3 losses"), "{e}");
        // Step against the weights' name.
        edit(&dir, |v| {
            v["losses"] = serde_json::json!([1.0, 1.0]);
            v["step"] = serde_json::json!(2);
        });
        let e = load_meta(&dir).unwrap_err().to_string();
        assert!(e.contains("weights-2.safetensors"), "{e}");
        // Step against the optimizer's own count (the JSON made consistent
        // with itself, the weights left at step 1).
        std::fs::rename(
            dir.join("weights-1.safetensors"),
            dir.join("weights-2.safetensors"),
        )
        .unwrap();
        edit(&dir, |v| {
            v["weights"] = serde_json::json!("weights-2.safetensors")
        });
        let m2 = load_meta(&dir).unwrap();
        let e = restore(&dir, &m2, &params, &mut opt, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("optimizer state of step 1") && e.contains("weights-2"),
            "{e}"
        );
        // Weights that are not the ones recorded.
        let (dir, params, mut opt) = saved("checksum");
        let m = load_meta(&dir).unwrap();
        let path = dir.join(&m.weights);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let e = restore(&dir, &m, &params, &mut opt, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("weights-1.safetensors") && e.contains("checksum"),
            "{e}"
        );
    }
}
