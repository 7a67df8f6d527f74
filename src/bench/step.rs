//! `actforge bench-step`: the time of one full training step (forward,
//! backward, clipping, AdamW) with candle's built-in GELU, the fused
//! evolved activation and the same formula composed of candle ops, side by
//! side in one run (rounds interleave the variants, so load changes hit
//! all of them alike), and the share of the step spent in the activation.
//! With a population P it also times a lockstep step of P members with P
//! different formulas (the fitness::lockstep step: per-member losses,
//! clipping and AdamW) in the same rounds.
//!
//! Ops per step are counted from the op calls: candle gives every tensor
//! an id from one process-wide counter, and every candle op call (a
//! kernel launch on a GPU; views such as reshape and narrow included)
//! makes one new tensor, so the tensors created during one step (forward,
//! backward, clipping and optimizer) plus the in-place AdamW updates
//! (ops that make no tensor, [`AdamW::in_place_updates`]) are the step's
//! ops. The single model and the population are counted the same way, on
//! one untimed step after the timed rounds.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use crate::error::{Result, Setting};
use crate::fitness::optim::{clip_factor, clip_factors, AdamW, AdamWConfig};
use crate::fitness::run::{batch_loss, batch_losses};
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
    /// Also time a lockstep population of this many members (0: none).
    pub population: usize,
}

/// The population's figures.
#[derive(Clone, Debug)]
pub struct PopulationTime {
    pub size: usize,
    pub formulas: Vec<String>,
    pub step_ms: Vec<f64>,
    /// Ops of one population step (see the module docs).
    pub ops: u64,
}

/// What [`run`] measured.
#[derive(Clone, Debug)]
pub struct StepTimes {
    pub variants: Vec<VariantTime>,
    pub population: Option<PopulationTime>,
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
    /// Ops of one step (see the module docs).
    pub ops: u64,
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
        return Err(crate::Error::setting(format!(
            "{} `{bad}`: expected gelu, fused or composed",
            Setting::Variant
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

/// The population's formulas: `formula` for member 0, and for member
/// `p > 0` the same scaled by `1 + p/64` (P different formulas of the same
/// cost, so the per-candidate time compares with the single model's).
pub fn population_formulas(formula: &str, size: usize) -> Vec<String> {
    (0..size)
        .map(|p| match p {
            0 => formula.to_string(),
            _ => format!("({formula}) * {}", 1.0 + p as f64 / 64.0),
        })
        .collect()
}

/// The id candle's next tensor gets (a probe tensor takes one id).
fn next_tensor_id() -> Result<u64> {
    let probe = Tensor::zeros(1, DType::F32, &Device::Cpu)?;
    let text = format!("{:?}", probe.id());
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse::<u64>()
        .map(|id| id + 1)
        .map_err(|_| crate::Error::Internal(format!("cannot read candle's tensor id from {text}")))
}

/// The ops of `step` (see the module docs): tensors it created plus the
/// in-place updates `opt` ran.
fn count_ops(opt: &mut AdamW, step: impl FnOnce(&mut AdamW) -> Result<()>) -> Result<u64> {
    let (before, in_place) = (next_tensor_id()?, opt.in_place_updates());
    step(opt)?;
    // The second probe's own id is not the step's.
    let created = next_tensor_id()? - before - 1;
    Ok(created + opt.in_place_updates() - in_place)
}

/// One single-model step (forward, backward, clipping, AdamW) on batch `i`.
fn single_step(
    prep: &Prepared,
    model: &Model,
    params: &[(String, candle_core::Var)],
    opt: &mut AdamW,
    batcher: &crate::data::Batcher,
    i: usize,
    device: &Device,
) -> Result<()> {
    let (loss, _) = batch_loss(prep, model, batcher, 0, i, device)?;
    let grads = loss.backward()?;
    let vars: Vec<&candle_core::Var> = params.iter().map(|(_, v)| v).collect();
    let (_, factor) = clip_factor(&grads, &vars, CLIP)?;
    opt.step(&grads, LR, factor)?;
    Ok(())
}

/// One lockstep step of a population (the fitness::lockstep step:
/// per-member losses, gradient norms, clipping factors and updates).
fn population_step(
    prep: &Prepared,
    model: &Model,
    params: &[(String, candle_core::Var)],
    opt: &mut AdamW,
    batcher: &crate::data::Batcher,
    i: usize,
    device: &Device,
) -> Result<()> {
    let (loss, _) = batch_losses(prep, model, batcher, 0, i, device)?;
    let pop = loss.dims1()?;
    loss.to_vec1::<f32>()?;
    let grads = loss.sum_all()?.backward()?;
    let vars: Vec<&candle_core::Var> = params.iter().map(|(_, v)| v).collect();
    let norms = clip_factors(&grads, &vars, CLIP, pop)?;
    let scales: Vec<Option<f64>> = norms.iter().map(|&(_, f)| Some(f)).collect();
    opt.step_members(&grads, LR, &scales)?;
    Ok(())
}

/// (MLP layers, hidden width) of the model.
fn mlp_shape(cfg: &ModelConfig) -> (usize, usize) {
    match cfg {
        ModelConfig::Gpt(c) => (c.n_layer, c.d_ff),
        ModelConfig::T5(c) => (c.n_enc_layer + c.n_dec_layer, c.d_ff),
    }
}

/// Run the benchmark.
pub fn run(spec: &StepBench) -> Result<StepTimes> {
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
    let mut population = match spec.population {
        0 => None,
        size => {
            let formulas = population_formulas(spec.formula, size);
            let acts = formulas
                .iter()
                .map(|f| Activation::parse(&format!("fused:{f}")))
                .collect::<Result<Vec<_>>>()?;
            let (model, varmap) = Model::new(&prep.model, acts, 1, spec.device)?;
            let params = sorted_vars(&varmap);
            let opt = AdamW::new(params.clone(), AdamWConfig::default())?;
            Some((formulas, model, params, opt, Vec::new()))
        }
    };
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
            single_step(prep, model, params, opt, &batcher, i, spec.device)?;
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
        if let Some((_, model, params, opt, steps)) = population.as_mut() {
            let t0 = Instant::now();
            population_step(prep, model, params, opt, &batcher, i, spec.device)?;
            sync(spec.device)?;
            if round >= spec.warmup {
                steps.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    // One untimed, counted step of each.
    let i = (spec.warmup + spec.iters) % per_epoch;
    let mut variants = Vec::new();
    for (name, act, model, params, mut opt, step_ms, act_ms) in states {
        let ops = count_ops(&mut opt, |opt| {
            single_step(prep, &model, &params, opt, &batcher, i, spec.device)
        })?;
        variants.push(VariantTime {
            name,
            spec: act.to_string(),
            step_ms,
            act_ms,
            ops,
        });
    }
    let population = match population {
        None => None,
        Some((formulas, model, params, mut opt, step_ms)) => {
            let ops = count_ops(&mut opt, |opt| {
                population_step(prep, &model, &params, opt, &batcher, i, spec.device)
            })?;
            Some(PopulationTime {
                size: formulas.len(),
                formulas,
                step_ms,
                ops,
            })
        }
    };
    Ok(StepTimes {
        variants,
        population,
    })
}

fn sync(device: &Device) -> Result<()> {
    device.synchronize()?;
    Ok(())
}

/// `{"step_ms": {"gelu","fused","composed"}, "activation_ms": {…},
/// "activation_share": {…}, "step_ms_min": {…}, "step_ms_max": {…},
/// "ops_per_step", "ops_per_step_by_variant": {…}, "population": {…}, …}`.
/// `ops_per_step` is the fused variant's (the first timed variant's when
/// fused is not timed); `population` is present with a population.
pub fn to_json(spec: &StepBench, times: &StepTimes) -> Value {
    let vt = &times.variants;
    let map = |f: &dyn Fn(&VariantTime) -> Value| -> Value {
        vt.iter()
            .map(|t| (t.name.to_string(), f(t)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let min = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |xs: &[f64]| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let single = vt.iter().find(|t| t.name == "fused").or(vt.first());
    let mut doc = json!({
        "task": spec.prep.recipe.task.name(),
        "preset": spec.prep.recipe.preset,
        "batch_size": spec.prep.recipe.batch_size,
        "formula": spec.formula,
        "device": format!("{:?}", spec.device),
        "threads": candle_core::utils::get_num_threads(),
        "iters": spec.iters,
        "step_ms": map(&|t| json!(median(&t.step_ms))),
        "step_ms_min": map(&|t| json!(min(&t.step_ms))),
        "step_ms_max": map(&|t| json!(max(&t.step_ms))),
        "activation_ms": map(&|t| json!(median(&t.act_ms))),
        "activation_share": map(&|t| json!(median(&t.act_ms) / median(&t.step_ms))),
        "ops_per_step": single.map(|t| t.ops),
        "ops_per_step_by_variant": map(&|t| json!(t.ops)),
    });
    if let Some(p) = &times.population {
        let step = median(&p.step_ms);
        let per = step / p.size as f64;
        let mut pop = json!({
            "size": p.size,
            "step_ms": step,
            "step_ms_min": min(&p.step_ms),
            "step_ms_max": max(&p.step_ms),
            "step_ms_per_candidate": per,
            "ops_per_step": p.ops,
            "ops_per_candidate_step": p.ops as f64 / p.size as f64,
            "formulas": p.formulas,
        });
        if let Some(f) = vt.iter().find(|t| t.name == "fused") {
            pop["one_by_one_step_ms"] = json!(median(&f.step_ms));
            pop["per_candidate_vs_one_by_one"] = json!(per / median(&f.step_ms));
            pop["ops_ratio"] = json!(f.ops as f64 * p.size as f64 / p.ops as f64);
        }
        doc["population"] = pop;
    }
    doc
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
        return Err(crate::Error::setting(format!(
            "{} {}: only the steps of the GPT tasks (qa, translate-gpt) can be exported",
            Setting::Task,
            prep.recipe.task
        )));
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
pub fn table(all: &StepTimes) -> String {
    let times = &all.variants;
    let gelu = times
        .iter()
        .find(|t| t.name == "gelu")
        .map(|t| median(&t.step_ms));
    let mut s = String::from(
        "variant    step ms (median, min–max)    activation ms   share   vs gelu   ops/step\n",
    );
    for t in times {
        let step = median(&t.step_ms);
        let lo = t.step_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = t.step_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let act = median(&t.act_ms);
        s.push_str(&format!(
            "{:<9}  {:>8.1} ({:>7.1}–{:<7.1})     {:>10.2}   {:>4.1}%   {:>7}   {:>8}\n",
            t.name,
            step,
            lo,
            hi,
            act,
            100.0 * act / step,
            gelu.map_or("—".into(), |g| format!("{:.2}×", step / g)),
            t.ops,
        ));
    }
    if let Some(p) = &all.population {
        let step = median(&p.step_ms);
        let per = step / p.size as f64;
        s.push_str(&format!(
            "\nlockstep population of {}: {:.1} ms a step, {:.2} ms per candidate, {} ops a step ({:.1} per candidate)\n",
            p.size,
            step,
            per,
            p.ops,
            p.ops as f64 / p.size as f64,
        ));
        if let Some(f) = times.iter().find(|t| t.name == "fused") {
            s.push_str(&format!(
                "one by one (fused): {:.1} ms and {} ops a candidate-step; lockstep: {:.2}× the time, {:.1}× fewer ops per candidate\n",
                median(&f.step_ms),
                f.ops,
                per / median(&f.step_ms),
                f.ops as f64 * p.size as f64 / p.ops as f64,
            ));
        }
    }
    s
}
