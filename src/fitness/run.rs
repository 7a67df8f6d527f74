//! One training run: an activation and a seed, trained by the recipe on
//! the prepared data, then evaluated. The initial weights and the batch
//! order depend on the seed only, never on the activation (common random
//! numbers). A non-finite loss or gradient ends the run as a scored
//! failure with the step; errors are for broken inputs and environments.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::checkpoint::{self, Meta};
use super::evaluate::{evaluate, finite, Evaluation};
use super::optim::{clip_factor, learning_rate, AdamW, AdamWConfig};
use super::prepare::Prepared;
use super::recipe::Length;
use crate::error::{Error, Result};
use crate::model::{masked_cross_entropy, sorted_vars, Model};
use crate::op::Activation;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Numerical failure (or a failure of the activation) at `step`.
    Failed {
        reason: String,
        step: u64,
    },
    /// Stopped on request (Ctrl-C) after a checkpoint; resumable.
    Interrupted {
        step: u64,
    },
}

impl Status {
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }

    /// `"ok"` or the failure reason, as results files record it.
    pub fn label(&self) -> String {
        match self {
            Status::Ok => "ok".into(),
            Status::Failed { reason, step } => format!("{reason} (step {step})"),
            Status::Interrupted { step } => format!("interrupted at step {step}"),
        }
    }
}

/// Where and how often to checkpoint.
#[derive(Clone, Debug)]
pub struct CheckpointPlan {
    pub dir: PathBuf,
    /// Every this many steps (0: only at the end).
    pub every: u64,
}

/// One step's figures, for progress bars.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    pub step: u64,
    pub total: u64,
    pub loss: f64,
    pub lr: f64,
    /// Target tokens in the batch.
    pub tokens: usize,
}

/// Options of a run that do not change its result.
#[derive(Default)]
pub struct RunOptions<'a> {
    pub checkpoint: Option<CheckpointPlan>,
    pub on_step: Option<&'a (dyn Fn(&StepInfo) + Sync)>,
    /// Checked between steps: when set, the run checkpoints and returns
    /// `Interrupted`.
    pub stop: Option<&'a AtomicBool>,
    /// Q&A sample answers to keep (generated for the first validation
    /// questions).
    pub samples: usize,
}

/// Wall-clock seconds per phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Building the model and the activation's kernels.
    pub setup: f64,
    pub train: f64,
    pub eval: f64,
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub activation: String,
    pub seed: u64,
    pub steps: u64,
    /// The training loss of every step.
    pub losses: Vec<f32>,
    /// Final evaluation (absent when the run failed or was interrupted).
    pub eval: Option<Evaluation>,
    /// Per-epoch evaluations, when the recipe asks for them.
    pub epochs: Vec<Value>,
    pub timing: Timing,
}

impl Outcome {
    /// Mean training loss over the first and the last tenth of the steps.
    pub fn loss_first_last(&self) -> (f64, f64) {
        let n = self.losses.len();
        if n == 0 {
            return (f64::NAN, f64::NAN);
        }
        let k = (n / 10).max(1);
        let mean = |s: &[f32]| s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
        (mean(&self.losses[..k]), mean(&self.losses[n - k..]))
    }

    /// The fitness: the evaluation's weighted score; `None` on failure.
    pub fn fitness(&self) -> Option<f64> {
        self.eval.as_ref().map(|e| e.fitness)
    }

    /// The `runs` entry of `results.json` (stable keys: `activation`,
    /// `seed`, `status`, `loss_first`, `loss_last`, `metrics`).
    pub fn to_json(&self) -> Value {
        let (first, last) = self.loss_first_last();
        json!({
            "activation": self.activation,
            "seed": self.seed,
            "status": self.status.label(),
            "failed_step": match &self.status { Status::Failed { step, .. } => Some(*step), _ => None },
            "steps": self.steps,
            "loss_first": finite(first),
            "loss_last": finite(last),
            "metrics": self.eval.as_ref().map(Evaluation::metrics_json),
            "samples": self.eval.as_ref().map(|e| e.samples_json()),
            "epochs": self.epochs,
            "timing": self.timing,
            "losses": self.losses.iter().map(|&l| finite(l as f64)).collect::<Vec<_>>(),
        })
    }
}

/// Steps of the run: fixed, or epochs × batches per epoch.
pub fn total_steps(prep: &Prepared) -> u64 {
    let per_epoch = batches_per_epoch(prep) as u64;
    match prep.recipe.length {
        Length::Steps(s) => s,
        Length::Epochs(e) => e * per_epoch,
    }
}

pub(crate) fn batches_per_epoch(prep: &Prepared) -> usize {
    prep.train.len().div_ceil(prep.recipe.batch_size).max(1)
}

/// Train `act` from `seed` on `device`, then evaluate. Resumes from the
/// checkpoint in `opts.checkpoint` when there is one for this run.
pub fn run(
    prep: &Prepared,
    act: &Activation,
    seed: u64,
    device: &Device,
    opts: &RunOptions,
) -> Result<Outcome> {
    super::alloc::keep_freed_memory();
    let start = Instant::now();
    let recipe = &prep.recipe;
    let total = total_steps(prep);
    let (model, varmap) = Model::new(&prep.model, vec![act.clone()], seed, device)?;
    let params = sorted_vars(&varmap);
    let cfg = AdamWConfig {
        weight_decay: recipe.weight_decay,
        ..Default::default()
    };
    let mut opt = AdamW::new(params.clone(), cfg)?;
    let batcher = crate::data::Batcher::new(&prep.train, recipe.batch_size, seed);
    let mut out = Outcome {
        status: Status::Ok,
        activation: act.to_string(),
        seed,
        steps: 0,
        losses: Vec::new(),
        eval: None,
        epochs: Vec::new(),
        timing: Timing::default(),
    };
    let mut train_before = 0.0;
    if let Some(plan) = opts
        .checkpoint
        .as_ref()
        .filter(|p| checkpoint::exists(&p.dir))
    {
        let meta = checkpoint::load_meta(&plan.dir)?;
        check_meta(&meta, prep, act, seed, total, &plan.dir)?;
        checkpoint::restore(&plan.dir, &meta, &params, &mut opt, device)?;
        out.steps = meta.step;
        out.losses = meta.losses;
        out.epochs = meta.epochs;
        train_before = meta.train_seconds;
    }
    out.timing.setup = start.elapsed().as_secs_f64();
    let trainer = Trainer {
        prep,
        model: &model,
        batcher: &batcher,
        device,
    };
    let vars: Vec<&candle_core::Var> = params.iter().map(|(_, v)| v).collect();
    let warmup = (recipe.warmup * total as f64).round() as u64;
    let per_epoch = batches_per_epoch(prep) as u64;
    let train_start = Instant::now();
    let save = |out: &Outcome, opt: &AdamW, secs: f64| -> Result<()> {
        match &opts.checkpoint {
            Some(plan) => checkpoint::save(
                &plan.dir,
                &Meta {
                    format: checkpoint::FORMAT.into(),
                    recipe_hash: format!("{:016x}", recipe.hash()),
                    activation: act.to_string(),
                    seed,
                    step: out.steps,
                    total_steps: total,
                    losses: out.losses.clone(),
                    epochs: out.epochs.clone(),
                    train_seconds: secs,
                    weights: String::new(),
                    weights_checksum: String::new(),
                    members: Vec::new(),
                },
                &params,
                opt,
            ),
            None => Ok(()),
        }
    };
    while out.steps < total {
        if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            save(
                &out,
                &opt,
                train_before + train_start.elapsed().as_secs_f64(),
            )?;
            out.status = Status::Interrupted { step: out.steps };
            out.timing.train = train_before + train_start.elapsed().as_secs_f64();
            return Ok(out);
        }
        let step = out.steps;
        let lr = learning_rate(step, total, warmup, recipe.lr, recipe.min_lr_ratio);
        let (loss, tokens) = match trainer.step(
            step / per_epoch,
            (step % per_epoch) as usize,
            &mut opt,
            &vars,
            lr,
        ) {
            Ok(v) => v,
            Err(StepError::Numeric(reason)) => {
                out.status = Status::Failed { reason, step };
                break;
            }
            Err(StepError::Other(e)) => {
                out.status = Status::Failed {
                    reason: format!("training failed: {}", first_line(&e.to_string())),
                    step,
                };
                break;
            }
        };
        out.losses.push(loss as f32);
        out.steps += 1;
        if let Some(f) = opts.on_step {
            f(&StepInfo {
                step: out.steps,
                total,
                loss,
                lr,
                tokens,
            });
        }
        let epoch_end = out.steps.is_multiple_of(per_epoch) || out.steps == total;
        if recipe.per_epoch && epoch_end {
            let e = evaluate(prep, &model, 0)?;
            let epoch = out.steps.div_ceil(per_epoch);
            out.epochs.push(json!({
                "epoch": epoch,
                "step": out.steps,
                "train_loss": finite(mean_tail(&out.losses, per_epoch as usize)),
                "valid_loss": finite(e.valid_loss),
                "bleu": finite(e.bleu.score),
                "chrf": finite(e.chrf),
                "ppl": finite(e.ppl),
                "acc": finite(e.acc),
            }));
        }
        let every = opts.checkpoint.as_ref().map_or(0, |p| p.every);
        if every > 0 && out.steps.is_multiple_of(every) && out.steps < total {
            save(
                &out,
                &opt,
                train_before + train_start.elapsed().as_secs_f64(),
            )?;
        }
    }
    out.timing.train = train_before + train_start.elapsed().as_secs_f64();
    if out.status.is_ok() {
        save(&out, &opt, out.timing.train)?;
        let eval_start = Instant::now();
        let e = evaluate(prep, &model, opts.samples)?;
        out.timing.eval = eval_start.elapsed().as_secs_f64();
        if !e.fitness.is_finite() {
            out.status = Status::Failed {
                reason: "non-finite validation scores".into(),
                step: out.steps,
            };
        } else {
            out.eval = Some(e);
        }
    }
    Ok(out)
}

/// The first line of an error message, without the `error: ` prefix (a
/// backtrace captured by candle stays out of results files).
pub(crate) fn first_line(msg: &str) -> String {
    msg.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

pub(crate) fn mean_tail(losses: &[f32], n: usize) -> f64 {
    let tail = &losses[losses.len().saturating_sub(n.max(1))..];
    tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len().max(1) as f64
}

/// A checkpoint of another run must not be resumed into this one.
fn check_meta(
    meta: &Meta,
    prep: &Prepared,
    act: &Activation,
    seed: u64,
    total: u64,
    dir: &std::path::Path,
) -> Result<()> {
    let want_recipe = format!("{:016x}", prep.recipe.hash());
    let mismatch = if meta.recipe_hash != want_recipe {
        Some(format!(
            "recipe {} (this run: {want_recipe})",
            meta.recipe_hash
        ))
    } else if meta.activation != act.to_string() {
        Some(format!("activation `{}`", meta.activation))
    } else if meta.seed != seed {
        Some(format!("seed {}", meta.seed))
    } else if meta.total_steps != total || meta.step > total {
        Some(format!("{} of {} steps", meta.step, meta.total_steps))
    } else {
        None
    };
    match mismatch {
        None => Ok(()),
        Some(m) => Err(Error::Input {
            path: dir.join("checkpoint.json").display().to_string(),
            line: None,
            message: format!("this checkpoint belongs to another run: {m}"),
        }),
    }
}

enum StepError {
    Numeric(String),
    Other(Error),
}

impl From<candle_core::Error> for StepError {
    fn from(e: candle_core::Error) -> Self {
        StepError::Other(e.into())
    }
}

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        StepError::Other(e)
    }
}

/// What one optimizer step needs.
struct Trainer<'a> {
    prep: &'a Prepared,
    model: &'a Model,
    batcher: &'a crate::data::Batcher,
    device: &'a Device,
}

impl Trainer<'_> {
    /// Forward, backward, clip, update; returns the loss and the number of
    /// target tokens.
    fn step(
        &self,
        epoch: u64,
        i: usize,
        opt: &mut AdamW,
        vars: &[&candle_core::Var],
        lr: f64,
    ) -> std::result::Result<(f64, usize), StepError> {
        let (loss, tokens) =
            batch_loss(self.prep, self.model, self.batcher, epoch, i, self.device)?;
        let value = loss.to_scalar::<f32>()? as f64;
        if !value.is_finite() {
            return Err(StepError::Numeric(format!(
                "non-finite training loss ({value})"
            )));
        }
        let grads = loss.backward()?;
        let (norm, factor) = clip_factor(&grads, vars, self.prep.recipe.clip)?;
        if !norm.is_finite() {
            return Err(StepError::Numeric(format!(
                "non-finite gradient norm ({norm})"
            )));
        }
        opt.step(&grads, lr, factor)?;
        Ok((value, tokens))
    }
}

/// The mean masked cross-entropy of batch `i` of `epoch` (a scalar, the
/// sum over the members of [`batch_losses`]), and its number of target
/// tokens.
pub fn batch_loss(
    prep: &Prepared,
    model: &Model,
    batcher: &crate::data::Batcher,
    epoch: u64,
    i: usize,
    device: &Device,
) -> Result<(Tensor, usize)> {
    let (loss, tokens) = batch_losses(prep, model, batcher, epoch, i, device)?;
    Ok((loss.sum_all()?, tokens))
}

/// Per member of the model's population: the mean masked cross-entropy
/// of batch `i` of `epoch` (`[P]`), and the batch's number of target
/// tokens.
pub fn batch_losses(
    prep: &Prepared,
    model: &Model,
    batcher: &crate::data::Batcher,
    epoch: u64,
    i: usize,
    device: &Device,
) -> Result<(Tensor, usize)> {
    let (logits, target, mask) = match model {
        Model::Gpt(m) => {
            let b = batcher.decoder_batch(epoch, i, prep.kind, &prep.specials);
            let shape = (b.rows, b.len);
            let ids = Tensor::from_vec(b.input, shape, device)?;
            let pad = Tensor::from_vec(b.pad_mask, shape, device)?;
            let target = Tensor::from_vec(b.target, shape, device)?;
            let mask = Tensor::from_vec(b.loss_mask, shape, device)?;
            return m.loss_rows(&ids, Some(&pad), &target, &mask);
        }
        Model::T5(m) => {
            let b = batcher.seq2seq_batch(epoch, i, &prep.specials);
            let src = Tensor::from_vec(b.src, (b.rows, b.src_len), device)?;
            let src_mask = Tensor::from_vec(b.src_mask, (b.rows, b.src_len), device)?;
            let dec_in = Tensor::from_vec(b.dec_in, (b.rows, b.tgt_len), device)?;
            let logits = m.forward_rows(&src, Some(&src_mask), &dec_in)?;
            let target = Tensor::from_vec(b.target, (b.rows, b.tgt_len), device)?;
            let mask = Tensor::from_vec(b.tgt_mask, (b.rows, b.tgt_len), device)?;
            (logits, target, mask)
        }
    };
    Ok(masked_cross_entropy(&logits, &target, &mask)?)
}
