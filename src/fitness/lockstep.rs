//! Lockstep training: K activations trained from one seed as one
//! population model (every parameter `[K, …]`, member `p` running
//! activation `p`), then evaluated member by member.
//!
//! What a member gets is its one-by-one [`run`](super::run::run): the same
//! initial weights (they depend on the seed only), the same batches, its
//! own loss (`[K]` from the loss, back-propagated as their sum: the
//! members share no parameter), its own gradient norm and clipping factor
//! ([`clip_factors`]) and its own AdamW update ([`AdamW::step_members`]).
//! A member whose loss or gradient norm goes non-finite is frozen at that
//! step (its parameters and moments no longer change) and scored as failed
//! at it; the others go on. Evaluation copies each member that finished
//! into a single model ([`crate::model::member`]) and runs the one-by-one
//! [`evaluate`], so a member's metrics are computed exactly as a single
//! run's.
//!
//! Agreement with one-by-one runs: the per-member arithmetic is the single
//! model's except for the order of the gradient-norm sum and what batched
//! matmuls do per slice; `tests/lockstep.rs` holds every member's losses
//! and metrics to 1e-4 relative of its one-by-one run (a member that fails
//! fails at the same step).
//!
//! Checkpoints: one per population (the parameters and moments of all
//! members, and each member's losses and failure in
//! [`MemberMeta`]); a resumed population continues to the same result.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Var};
use serde_json::json;

use super::checkpoint::{self, MemberMeta, Meta};
use super::evaluate::{evaluate, finite};
use super::optim::{clip_factors, learning_rate, AdamW, AdamWConfig};
use super::prepare::Prepared;
use super::run::{
    batch_losses, batches_per_epoch, first_line, mean_tail, total_steps, Outcome, RunOptions,
    Status, StepInfo, Timing,
};
use crate::diff::Function;
use crate::error::{Error, Result};
use crate::model::{sorted_vars, Model};
use crate::op::{Activation, FusedActivation};

/// The activations of a group of candidates given as (formula text, its
/// function): fused activations built from the functions (no parsing).
pub fn activations_of(group: &[(String, Arc<Function>)]) -> Vec<Activation> {
    group
        .iter()
        .map(|(text, f)| Activation::Fused(FusedActivation::from_function(text, (**f).clone())))
        .collect()
}

/// Train the candidates of `group` (formula text and function each) from
/// `seed` as one population and evaluate each: one [`Outcome`] per member,
/// in order. What a search evaluator calls for a group of candidates at
/// one seed.
pub fn lockstep_functions(
    prep: &Prepared,
    group: &[(String, Arc<Function>)],
    seed: u64,
    device: &Device,
    opts: &RunOptions,
) -> Result<Vec<Outcome>> {
    lockstep(prep, &activations_of(group), seed, device, opts)
}

/// The label of a population in its checkpoint: its activations in order.
fn label(acts: &[Activation]) -> String {
    let names: Vec<String> = acts.iter().map(|a| a.to_string()).collect();
    format!("lockstep[{}]", names.join(" | "))
}

/// One member's progress.
struct Member {
    losses: Vec<f32>,
    epochs: Vec<serde_json::Value>,
    failed: Option<(String, u64)>,
}

/// Train `acts` from `seed` on `device` in lockstep (one population model
/// of `acts.len()` members), then evaluate each member: one [`Outcome`]
/// per activation, in order, each what its one-by-one run gives (see the
/// module docs). Resumes from the checkpoint in `opts.checkpoint` when
/// there is one for this population. `opts.on_step` sees the mean loss of
/// the members still training.
pub fn lockstep(
    prep: &Prepared,
    acts: &[Activation],
    seed: u64,
    device: &Device,
    opts: &RunOptions,
) -> Result<Vec<Outcome>> {
    if acts.is_empty() {
        return Err(Error::Usage(
            "lockstep training needs at least one activation".into(),
        ));
    }
    super::alloc::keep_freed_memory();
    let start = Instant::now();
    let recipe = &prep.recipe;
    let total = total_steps(prep);
    let pop = acts.len();
    let name = label(acts);
    let (model, varmap) = Model::new(&prep.model, acts.to_vec(), seed, device)?;
    let params = sorted_vars(&varmap);
    let cfg = AdamWConfig {
        weight_decay: recipe.weight_decay,
        ..Default::default()
    };
    let mut opt = AdamW::new(params.clone(), cfg)?;
    let batcher = crate::data::Batcher::new(&prep.train, recipe.batch_size, seed);
    let mut members: Vec<Member> = (0..pop)
        .map(|_| Member {
            losses: Vec::new(),
            epochs: Vec::new(),
            failed: None,
        })
        .collect();
    let mut steps = 0u64;
    let mut mean_losses: Vec<f32> = Vec::new();
    let mut train_before = 0.0;
    if let Some(plan) = opts
        .checkpoint
        .as_ref()
        .filter(|p| checkpoint::exists(&p.dir))
    {
        let meta = checkpoint::load_meta(&plan.dir)?;
        check_meta(&meta, prep, &name, acts, seed, total, &plan.dir)?;
        checkpoint::restore(&plan.dir, &meta, &params, &mut opt, device)?;
        steps = meta.step;
        mean_losses = meta.losses;
        train_before = meta.train_seconds;
        for (m, saved) in members.iter_mut().zip(meta.members) {
            *m = Member {
                losses: saved.losses,
                epochs: saved.epochs,
                failed: saved.failed,
            };
        }
    }
    let setup = start.elapsed().as_secs_f64();
    let vars: Vec<&Var> = params.iter().map(|(_, v)| v).collect();
    let warmup = (recipe.warmup * total as f64).round() as u64;
    let per_epoch = batches_per_epoch(prep) as u64;
    let train_start = Instant::now();
    let save = |steps: u64, members: &[Member], mean: &[f32], opt: &AdamW, secs: f64| {
        let Some(plan) = &opts.checkpoint else {
            return Ok(());
        };
        let meta = Meta {
            format: checkpoint::FORMAT.into(),
            recipe_hash: format!("{:016x}", recipe.hash()),
            activation: name.clone(),
            seed,
            step: steps,
            total_steps: total,
            losses: mean.to_vec(),
            epochs: Vec::new(),
            train_seconds: secs,
            weights: String::new(),
            weights_checksum: String::new(),
            members: acts
                .iter()
                .zip(members)
                .map(|(a, m)| MemberMeta {
                    activation: a.to_string(),
                    losses: m.losses.clone(),
                    epochs: m.epochs.clone(),
                    failed: m.failed.clone(),
                })
                .collect(),
        };
        checkpoint::save(&plan.dir, &meta, &params, opt)
    };
    let mut interrupted = false;
    while steps < total && members.iter().any(|m| m.failed.is_none()) {
        if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            let secs = train_before + train_start.elapsed().as_secs_f64();
            save(steps, &members, &mean_losses, &opt, secs)?;
            interrupted = true;
            break;
        }
        let step = steps;
        let lr = learning_rate(step, total, warmup, recipe.lr, recipe.min_lr_ratio);
        let (epoch, i) = (step / per_epoch, (step % per_epoch) as usize);
        let grads = match train_step(prep, &model, &batcher, (epoch, i), device, &vars, pop) {
            Ok(v) => v,
            Err(e) => {
                // An error of the step itself (not a value): every
                // member still training fails at it, as its one-by-one
                // run would.
                let reason = format!("training failed: {}", first_line(&e.to_string()));
                for m in members.iter_mut().filter(|m| m.failed.is_none()) {
                    m.failed = Some((reason.clone(), step));
                }
                break;
            }
        };
        let mut scales = Vec::with_capacity(pop);
        for (p, m) in members.iter_mut().enumerate() {
            let (v, (norm, factor)) = (grads.values[p], grads.norms[p]);
            if m.failed.is_none() && !v.is_finite() {
                m.failed = Some((format!("non-finite training loss ({v})"), step));
            } else if m.failed.is_none() && !norm.is_finite() {
                m.failed = Some((format!("non-finite gradient norm ({norm})"), step));
            }
            scales.push(m.failed.is_none().then_some(factor));
        }
        if scales.iter().all(Option::is_none) {
            break;
        }
        opt.step_members(&grads.grads, lr, &scales)?;
        let mut sum = 0.0;
        for (p, m) in members.iter_mut().enumerate() {
            if scales[p].is_some() {
                m.losses.push(grads.values[p] as f32);
                sum += grads.values[p];
            }
        }
        let alive = scales.iter().filter(|s| s.is_some()).count();
        let mean = sum / alive as f64;
        mean_losses.push(mean as f32);
        steps += 1;
        if let Some(f) = opts.on_step {
            f(&StepInfo {
                step: steps,
                total,
                loss: mean,
                lr,
                tokens: grads.count,
            });
        }
        let epoch_end = steps.is_multiple_of(per_epoch) || steps == total;
        if recipe.per_epoch && epoch_end {
            for (p, m) in members.iter_mut().enumerate() {
                if m.failed.is_some() {
                    continue;
                }
                let single = crate::model::member(&prep.model, &varmap, p, &acts[p], seed)?;
                let e = evaluate(prep, &single, 0)?;
                m.epochs.push(json!({
                    "epoch": steps.div_ceil(per_epoch),
                    "step": steps,
                    "train_loss": finite(mean_tail(&m.losses, per_epoch as usize)),
                    "valid_loss": finite(e.valid_loss),
                    "bleu": finite(e.bleu.score),
                    "chrf": finite(e.chrf),
                    "ppl": finite(e.ppl),
                    "acc": finite(e.acc),
                }));
            }
        }
        let every = opts.checkpoint.as_ref().map_or(0, |p| p.every);
        if every > 0 && steps.is_multiple_of(every) && steps < total {
            let secs = train_before + train_start.elapsed().as_secs_f64();
            save(steps, &members, &mean_losses, &opt, secs)?;
        }
    }
    let train = train_before + train_start.elapsed().as_secs_f64();
    if !interrupted && steps == total {
        save(steps, &members, &mean_losses, &opt, train)?;
    }
    // Timing per member: its share of the population's setup and
    // training, its own evaluation.
    let share = |t: f64| t / pop as f64;
    let mut out = Vec::with_capacity(pop);
    for (p, m) in members.into_iter().enumerate() {
        let mut o = Outcome {
            status: Status::Ok,
            activation: acts[p].to_string(),
            seed,
            steps: m.losses.len() as u64,
            losses: m.losses,
            eval: None,
            epochs: m.epochs,
            timing: Timing {
                setup: share(setup),
                train: share(train),
                eval: 0.0,
            },
        };
        if let Some((reason, step)) = m.failed {
            o.status = Status::Failed { reason, step };
        } else if interrupted {
            o.status = Status::Interrupted { step: steps };
        } else {
            let eval_start = Instant::now();
            let single = crate::model::member(&prep.model, &varmap, p, &acts[p], seed)?;
            let e = evaluate(prep, &single, opts.samples)?;
            o.timing.eval = eval_start.elapsed().as_secs_f64();
            if !e.fitness.is_finite() {
                o.status = Status::Failed {
                    reason: "non-finite validation scores".into(),
                    step: o.steps,
                };
            } else {
                o.eval = Some(e);
            }
        }
        out.push(o);
    }
    Ok(out)
}

/// What one lockstep forward and backward produced.
struct StepGrads {
    /// Each member's loss.
    values: Vec<f64>,
    /// Each member's gradient norm and clipping factor.
    norms: Vec<(f64, f64)>,
    grads: candle_core::backprop::GradStore,
    /// Target tokens in the batch.
    count: usize,
}

/// Forward and backward of batch (`epoch`, `i`): each member's loss, its
/// gradient norm and clipping factor, and the gradients.
fn train_step(
    prep: &Prepared,
    model: &Model,
    batcher: &crate::data::Batcher,
    (epoch, i): (u64, usize),
    device: &Device,
    vars: &[&Var],
    pop: usize,
) -> Result<StepGrads> {
    let (loss, count) = batch_losses(prep, model, batcher, epoch, i, device)?;
    let values: Vec<f64> = loss.to_vec1::<f32>()?.into_iter().map(f64::from).collect();
    // The members share no parameter: the gradient of the sum is each
    // member's own gradient on its slices (a failed member's slices may
    // hold NaN; they are never read).
    let grads = loss.sum_all()?.backward()?;
    let norms = clip_factors(&grads, vars, prep.recipe.clip, pop)?;
    Ok(StepGrads {
        values,
        norms,
        grads,
        count,
    })
}

/// A checkpoint of another run or population must not be resumed into
/// this one.
fn check_meta(
    meta: &Meta,
    prep: &Prepared,
    name: &str,
    acts: &[Activation],
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
    } else if meta.activation != name || meta.members.len() != acts.len() {
        Some(format!("activation `{}`", meta.activation))
    } else if meta.seed != seed {
        Some(format!("seed {}", meta.seed))
    } else if meta.total_steps != total || meta.step > total {
        Some(format!("{} of {} steps", meta.step, meta.total_steps))
    } else {
        meta.members
            .iter()
            .find(|m| {
                let trained = m.failed.as_ref().map_or(meta.step, |f| f.1);
                m.losses.len() as u64 != trained
            })
            .map(|m| {
                format!(
                    "member `{}` records {} losses at step {}: its parts disagree",
                    m.activation,
                    m.losses.len(),
                    meta.step
                )
            })
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
