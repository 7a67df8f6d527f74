//! `actforge bench-step`: the time of one full training step (forward,
//! backward, clipping, AdamW) with candle's built-in GELU, the fused
//! evolved activation and the same formula composed of candle ops, side by
//! side in one run (rounds interleave the variants, so load changes hit
//! all of them alike), and the share of the step spent in the activation.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use crate::error::Result;
use crate::fitness::optim::{clip_factor, AdamW, AdamWConfig};
use crate::fitness::run::batch_loss;
use crate::fitness::Prepared;
use crate::model::{sorted_vars, Model, ModelConfig};
use crate::op::Activation;

/// What to measure.
pub struct StepBench<'a> {
    pub prep: &'a Prepared,
    pub formula: &'a str,
    pub device: &'a Device,
    /// Timed rounds (each round times one step of every variant).
    pub iters: usize,
    pub warmup: usize,
    /// The variants to time, by name (`gelu`, `fused`, `composed`); empty:
    /// all three.
    pub only: &'a [String],
}

/// One variant's figures, in milliseconds.
#[derive(Clone, Debug)]
pub struct VariantTime {
    pub name: &'static str,
    pub spec: String,
    pub step_ms: Vec<f64>,
    /// Forward + backward of the activation alone on the MLP's hidden
    /// tensor, times the number of MLP layers.
    pub act_ms: Vec<f64>,
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// The variant names, in the order they run.
pub const VARIANTS: [&str; 3] = ["gelu", "fused", "composed"];

/// The variants: built-in GELU, fused and composed `formula` (those named
/// in `only`, or all).
fn variants(formula: &str, only: &[String]) -> Result<Vec<(&'static str, Activation)>> {
    if let Some(bad) = only.iter().find(|o| !VARIANTS.contains(&o.as_str())) {
        return Err(crate::Error::Usage(format!(
            "--variant `{bad}`: expected gelu, fused or composed"
        )));
    }
    let wanted = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    let mut out = Vec::new();
    for name in VARIANTS.into_iter().filter(|n| wanted(n)) {
        let act = match name {
            "gelu" => Activation::Gelu,
            _ => Activation::parse(&format!("{name}:{formula}"))?,
        };
        out.push((name, act));
    }
    Ok(out)
}

/// (MLP layers, hidden width) of the model.
fn mlp_shape(cfg: &ModelConfig) -> (usize, usize) {
    match cfg {
        ModelConfig::Gpt(c) => (c.n_layer, c.d_ff),
        ModelConfig::T5(c) => (c.n_enc_layer + c.n_dec_layer, c.d_ff),
    }
}

/// Run the benchmark.
pub fn run(spec: &StepBench) -> Result<Vec<VariantTime>> {
    crate::fitness::alloc::keep_freed_memory();
    let prep = spec.prep;
    let batcher = crate::data::Batcher::new(&prep.train, prep.recipe.batch_size, 1);
    let mut states = Vec::new();
    for (name, act) in variants(spec.formula, spec.only)? {
        let (model, varmap) = Model::new(&prep.model, vec![act.clone()], 1, spec.device)?;
        let params = sorted_vars(&varmap);
        let opt = AdamW::new(params.clone(), AdamWConfig::default())?;
        states.push((name, act, model, params, opt, Vec::new(), Vec::new()));
    }
    // The hidden tensor of the first batch: tokens × d_ff.
    let first = batcher.decoder_batch(0, 0, prep.kind, &prep.specials);
    let tokens = match prep.model {
        ModelConfig::Gpt(_) => first.rows * first.len,
        ModelConfig::T5(_) => {
            let b = batcher.seq2seq_batch(0, 0, &prep.specials);
            b.rows * (b.src_len + b.tgt_len) / 2
        }
    };
    let (layers, width) = mlp_shape(&prep.model);
    let hidden = Tensor::randn(0f32, 1.0, (1, tokens, width), spec.device)?;
    let per_epoch = batcher.batches_per_epoch();
    for round in 0..spec.warmup + spec.iters {
        let i = round % per_epoch;
        for (_, act, model, params, opt, steps, acts) in states.iter_mut() {
            let t0 = Instant::now();
            let (loss, _) = batch_loss(prep, model, &batcher, 0, i, spec.device)?;
            let grads = loss.backward()?;
            let vars: Vec<&candle_core::Var> = params.iter().map(|(_, v)| v).collect();
            let (_, factor) = clip_factor(&grads, &vars, CLIP)?;
            opt.step(&grads, LR, factor)?;
            sync(spec.device)?;
            let step = t0.elapsed().as_secs_f64() * 1e3;
            let t1 = Instant::now();
            let x = candle_core::Var::from_tensor(&hidden)?;
            let y = act.forward(x.as_tensor())?;
            let g = y.sum_all()?.backward()?;
            let dx = g.get(x.as_tensor()).map(|t| t.to_dtype(DType::F32));
            if let Some(dx) = dx {
                dx?.sum_all()?.to_scalar::<f32>()?;
            }
            sync(spec.device)?;
            let act_ms = t1.elapsed().as_secs_f64() * 1e3 * layers as f64;
            if round >= spec.warmup {
                steps.push(step);
                acts.push(act_ms);
            }
        }
    }
    Ok(states
        .into_iter()
        .map(|(name, act, _, _, _, step_ms, act_ms)| VariantTime {
            name,
            spec: act.to_string(),
            step_ms,
            act_ms,
        })
        .collect())
}

fn sync(device: &Device) -> Result<()> {
    device.synchronize()?;
    Ok(())
}

/// `{"step_ms": {"gelu","fused","composed"}, "activation_ms": {…},
/// "activation_share": {…}, "step_ms_min": {…}, "step_ms_max": {…}, …}`.
pub fn to_json(spec: &StepBench, times: &[VariantTime]) -> Value {
    let map = |f: &dyn Fn(&VariantTime) -> f64| -> Value {
        times
            .iter()
            .map(|t| (t.name.to_string(), json!(f(t))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let min = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |xs: &[f64]| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({
        "task": spec.prep.recipe.task.name(),
        "preset": spec.prep.recipe.preset,
        "batch_size": spec.prep.recipe.batch_size,
        "formula": spec.formula,
        "device": format!("{:?}", spec.device),
        "threads": candle_core::utils::get_num_threads(),
        "iters": spec.iters,
        "step_ms": map(&|t| median(&t.step_ms)),
        "step_ms_min": map(&|t| min(&t.step_ms)),
        "step_ms_max": map(&|t| max(&t.step_ms)),
        "activation_ms": map(&|t| median(&t.act_ms)),
        "activation_share": map(&|t| median(&t.act_ms) / median(&t.step_ms)),
    })
}

/// The optimizer settings every variant steps with.
pub const LR: f64 = 1e-4;
/// The gradient-norm clip of the benchmark's steps.
pub const CLIP: f64 = 1.0;

/// Writes what a peer implementation needs to time the same step
/// (`scripts/cpu-peers.py`): `DIR/step.json` (the model's shape, the
/// optimizer's settings, the parameters' names, shapes, offsets and
/// whether they decay, every batch the benchmark steps through in order,
/// and the loss of the first batch at the initial weights for GELU and
/// the fused formula, to check the peer's model against) and
/// `DIR/params.bin` (the initial weights of seed 1, f32 little-endian, in
/// the listed order).
pub fn export(spec: &StepBench, dir: &std::path::Path) -> Result<()> {
    let prep = spec.prep;
    let ModelConfig::Gpt(cfg) = &prep.model else {
        return Err(crate::Error::Usage(
            "bench-step --export: only the GPT tasks (qa, translate-gpt) can be exported".into(),
        ));
    };
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir.display().to_string(), e))?;
    let batcher = crate::data::Batcher::new(&prep.train, prep.recipe.batch_size, 1);
    let per_epoch = batcher.batches_per_epoch();
    let batches: Vec<Value> = (0..spec.warmup + spec.iters)
        .map(|round| {
            let b = batcher.decoder_batch(0, round % per_epoch, prep.kind, &prep.specials);
            json!({"rows": b.rows, "len": b.len, "input": b.input, "target": b.target,
                   "loss_mask": b.loss_mask, "pad_mask": b.pad_mask})
        })
        .collect();
    let mut losses = serde_json::Map::new();
    let mut params = Vec::new();
    let mut bytes = Vec::new();
    for (name, act) in variants(spec.formula, &["gelu".into(), "fused".into()])? {
        let (model, varmap) = Model::new(&prep.model, vec![act], 1, &Device::Cpu)?;
        let (loss, _) = batch_loss(prep, &model, &batcher, 0, 0, &Device::Cpu)?;
        losses.insert(name.into(), json!(loss.to_scalar::<f32>()?));
        if !params.is_empty() {
            continue;
        }
        for (pname, var) in sorted_vars(&varmap) {
            let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            params.push(json!({
                "name": pname,
                "shape": &var.dims()[1..],
                "offset": bytes.len() / 4,
                "decay": crate::fitness::optim::decays(&pname, &var),
            }));
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
    }
    let opt = AdamWConfig::default();
    let doc = json!({
        "task": prep.recipe.task.name(),
        "preset": prep.recipe.preset,
        "formula": spec.formula,
        "model": {"vocab": cfg.vocab, "n_layer": cfg.n_layer, "d_model": cfg.d_model,
                  "n_head": cfg.n_head, "d_ff": cfg.d_ff, "max_len": cfg.max_len,
                  "eps": cfg.eps, "tied": cfg.tied},
        "optimizer": {"lr": LR, "beta1": opt.beta1, "beta2": opt.beta2, "eps": opt.eps,
                      "weight_decay": opt.weight_decay, "clip": CLIP},
        "warmup": spec.warmup,
        "iters": spec.iters,
        "params": params,
        "loss0": losses,
        "batches": batches,
    });
    let write = |name: &str, data: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, data).map_err(|e| crate::Error::io(path.display().to_string(), e))
    };
    write("params.bin", &bytes)?;
    write("step.json", doc.to_string().as_bytes())
}

/// A text table of the same figures.
pub fn table(times: &[VariantTime]) -> String {
    let gelu = times
        .iter()
        .find(|t| t.name == "gelu")
        .map(|t| median(&t.step_ms));
    let mut s =
        String::from("variant    step ms (median, min–max)    activation ms   share   vs gelu\n");
    for t in times {
        let step = median(&t.step_ms);
        let lo = t.step_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = t.step_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let act = median(&t.act_ms);
        s.push_str(&format!(
            "{:<9}  {:>8.1} ({:>7.1}–{:<7.1})     {:>10.2}   {:>4.1}%   {}\n",
            t.name,
            step,
            lo,
            hi,
            act,
            100.0 * act / step,
            gelu.map_or("—".into(), |g| format!("{:.2}×", step / g)),
        ));
    }
    s
}
