//! `actforge train`: several activations trained side by side over
//! several seeds by one recipe, with the seed post's tables and
//! statistics, and `actforge bench-step`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;

use super::io::{note, put};
use super::progress::TrainBars;
use super::tables::tables;
use crate::device::Device;
use crate::error::Result;
use crate::experiment::{Progress, Session, TrainRequest};
use crate::fitness::run::{Outcome, StepInfo};
use crate::fitness::{Length, Prepared, Recipe, Task};

use crate::ir::seeds::SEED_QA;

pub const AFTER_HELP: &str = "\
Every activation trains on the same split, from the same initial weights for
a given seed and in the same batch order (common random numbers), so that
differences come from the activation. Seeds are 1..=N.

An activation is `gelu` (candle's built-in, tanh approximation: tables call
it `gelu (candle, tanh)`), a formula (the fused op: one CPU pass or one CUDA
kernel, forward and backward), or `composed:FORMULA` (the same formula as a
chain of candle ops). Without --act: gelu and the task's seed formula. The
first activation is the baseline.

Tables: per activation, runs and failed runs, and the mean ± half-width of
the 95% Student-t interval over seeds of BLEU and chrF (sacreBLEU scale,
greedy generations of the validation sentences), perplexity and token
accuracy (validation, teacher forced) and the weighted fitness, with the
measured share of each term in the fitness. Then, for every activation
after the baseline and every metric, the paired comparison with the
baseline over the same seeds: the mean difference (activation − baseline)
with its 95% Student-t interval, the two-sided paired t-test p, the
Holm-adjusted p over the activations compared (one family per metric), and
the verdict at α = 0.05: better, worse (in the metric's good direction;
PPL: lower) or no difference; Welch's unpaired p as a secondary column; the
smallest fitness difference the seeds can detect (80% power). A failed run
(non-finite loss) scores the fitness floor, 0, in every fitness statistic;
the other metrics count only the seeds where both runs succeeded (n).
Per-epoch rows for translate-t5; sample answers for qa. Long names are
never cut: rows are numbered and a legend gives them whole.

Written to --out (default runs/train-TASK-TIMESTAMP; never overwritten):
config.json, runs.jsonl (one line per finished run), results.json, results.csv,
learning_curves.png, report.html (the run's page: comparison, curves, samples,
settings; rewritten as each run starts and at the end), tokenizer.json,
split/. The flags, the data and the
model are checked first: a refused run leaves no directory. Ctrl-C stops
after a checkpoint; `--resume DIR` continues, and a killed run resumes to
the same result. One process works in a run directory at a time (a second
one is refused with the first one's pid). --resume checks config.json
against its settings hash, the data against what the run started with,
and each checkpoint's parts against each other and its weights' checksum.

results.json keys (stable): runs[] {activation, seed, status (\"ok\" or the
reason), loss_first, loss_last, metrics {bleu, chrf, ppl, acc, fitness} (a
failed run: {fitness: 0}, the floor it scores)}; summary[] {activation,
runs, runs_failed, bleu|chrf|ppl|acc|fitness: {n, mean, sd, ci95: [lo, hi]},
welch_p {metric: p}, vs_baseline {metric: {mean_diff, ci95: [lo, hi], p,
p_holm, n, better: true|false|null}}} (welch_p and vs_baseline are null for
the first activation; better is null unless p_holm < 0.05); statistics {test,
family, alpha, fitness_floor, …}; resolution[] {fitness_mde,
fitness_mde_percent, sd_diff, n, alpha, power} (null for the first);
fitness_shares {bleu, ppl, acc}.

Examples:
  actforge train --task qa --act gelu --act 'gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))' --seeds 2
  actforge train --task translate-t5 --epochs 2 --seeds 3
  actforge train --task translate-gpt --act gelu --act 'silu(x)' --act 'composed:silu(x)' --steps 500
  actforge train --resume runs/train-qa-20261129-101500";

/// Settings of the training recipe shared by `train`, `search` and
/// `bench-step`.
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    /// translate-gpt, translate-t5 or qa.
    #[arg(long, default_value = "qa")]
    pub task: String,
    /// Corpus: builtin:translate, builtin:qa, or a file (TSV, Tatoeba, Q&A).
    #[arg(long)]
    pub data: Option<String>,
    /// Model preset: gpt-micro, gpt-tiny (the seed's), t5-tiny, t5-small (the seed's).
    #[arg(long)]
    pub preset: Option<String>,
    /// A Hugging Face T5 config.json that sets the T5 shape.
    #[arg(long, value_name = "FILE")]
    pub hf_config: Option<PathBuf>,
    /// Optimizer steps per run [default: 300 on the CPU, 2000 on a GPU].
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Passes over the training data instead of --steps.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Train on a stratified sample of this fraction of the data (the seed's 0.5).
    #[arg(long)]
    pub thin: Option<f64>,
    /// BPE vocabulary size (trained on the corpus and cached).
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Load this tokenizer.json instead of training one.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Sequences per batch [default: 32 on the CPU, 64 on a GPU].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (AdamW, linear warm-up, cosine decay).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fitness weights, e.g. bleu=0.5,ppl=0.3,acc=0.2 (the default).
    #[arg(long)]
    pub weights: Option<String>,
    /// Validation sentences generated for BLEU/chrF.
    #[arg(long)]
    pub eval_sentences: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
}

impl RecipeArgs {
    /// The task's defaults for the device, overridden by the flags.
    pub fn recipe(&self) -> Result<Recipe> {
        let task: Task = self.task.parse()?;
        let gpu = self.device.is_cuda();
        let mut r = Recipe::for_task(task, gpu);
        if let Some(d) = &self.data {
            r.data = d.clone();
        }
        if let Some(p) = &self.preset {
            r.preset = p.clone();
        }
        r.hf_config = self.hf_config.as_ref().map(|p| p.display().to_string());
        r.tokenizer = self.tokenizer.as_ref().map(|p| p.display().to_string());
        if let Some(s) = self.steps {
            r.length = Length::Steps(s);
        }
        if let Some(e) = self.epochs {
            r.length = Length::Epochs(e);
        }
        r.thin = self.thin.or(r.thin);
        if let Some(v) = self.vocab {
            r.vocab = v;
        }
        if let Some(b) = self.batch_size {
            r.batch_size = b;
        }
        if let Some(lr) = self.lr {
            r.lr = lr;
        }
        if let Some(w) = &self.weights {
            r.weights = w.parse()?;
        }
        if let Some(n) = self.eval_sentences {
            r.eval_sentences = n;
        }
        r.validate()?;
        Ok(r)
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// An activation to compare (repeat): gelu, a formula, or composed:FORMULA.
    #[arg(long = "act", value_name = "SPEC", allow_hyphen_values = true)]
    pub acts: Vec<String>,
    /// Number of seeds (1..=N); every activation trains with each.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Run directory (must not exist).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR (its recorded settings; other flags are ignored).
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Checkpoint every N steps (0: only at the end of each run).
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: u64,
    /// Sample answers kept per run (qa).
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
    /// Print results.json's summary as JSON instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// A stop flag set by Ctrl-C (SIGINT); the first Ctrl-C asks for a clean
/// stop, a second one ends the process at once.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        note("stopping after the current step (Ctrl-C again to quit now)…");
    });
    flag
}

pub fn run(out: &mut dyn Write, args: TrainArgs) -> Result<i32> {
    let session = match &args.resume {
        Some(dir) => Session::resume(dir)?,
        None => Session::create(TrainRequest {
            recipe: args.recipe.recipe()?,
            activations: args.acts.clone(),
            seeds: args.seeds,
            device: args.recipe.device,
            checkpoint_every: args.checkpoint_every,
            samples: args.samples,
            out: args.out.clone(),
            command: std::env::args().collect(),
        })?,
    };
    let dir = session.dir().to_path_buf();
    note(format!("run directory: {}", dir.display()));
    let stop = interrupt_flag();
    let exp = session.experiment();
    let bars = TrainBars::new(exp.activations.len() * exp.seeds.len());
    let progress = Reporting {
        bars: &bars,
        dir: &dir,
    };
    let results = session.run(&progress, Some(&stop))?;
    drop(bars);
    let page = write_page(&dir);
    if results.interrupted {
        note(format!(
            "stopped; continue with: actforge train --resume {}",
            dir.display()
        ));
        return Ok(130);
    }
    if args.json {
        let v = serde_json::json!({
            "out": dir.display().to_string(),
            "summary": results.summary_json(),
            "report": page.map(|p| p.display().to_string()),
        });
        outln!(out, "{v}");
    } else {
        put(out, &tables(&results))?;
        outln!(
            out,
            "\nwritten to {}: results.json, results.csv, learning_curves.png",
            dir.display()
        );
        if let Some(page) = page {
            outln!(out, "report: {}", page.display());
        }
    }
    Ok(0)
}

/// The progress bars, and the report page rewritten as each run starts
/// (it then shows every run finished so far, so a killed run has one).
struct Reporting<'a> {
    bars: &'a TrainBars,
    dir: &'a Path,
}

impl Progress for Reporting<'_> {
    fn run_started(&self, index: usize, total: usize, activation: &str, seed: u64, steps: u64) {
        write_page(self.dir);
        self.bars.run_started(index, total, activation, seed, steps);
    }

    fn step(&self, info: &StepInfo) {
        self.bars.step(info);
    }

    fn run_finished(&self, outcome: &Outcome) {
        self.bars.run_finished(outcome);
    }
}

/// `DIR/report.html`, or a warning (the run's results stand).
fn write_page(dir: &Path) -> Option<PathBuf> {
    crate::experiment::page::write(dir)
        .map_err(|e| note(format!("warning: report page: {e}")))
        .ok()
}

pub const BENCH_STEP_HELP: &str = "\
Times one full training step (forward, backward, gradient clipping, AdamW)
of the task's model with candle's built-in GELU, the fused formula and the
same formula composed of candle ops. Rounds interleave the three, so a
change in machine load hits all alike; medians (and min–max) over --iters
rounds after --warmup. `activation ms` is the activation alone, forward and
backward, on the MLP's hidden tensor of the first batch, times the number of
MLP layers; `share` is that over the step.

--population P also times a lockstep step of a population of P members
(fitness::lockstep: one model with every parameter [P, ...], member p with
its own formula, per-member losses, clipping and AdamW) in the same rounds.
Member 0 runs --formula, member p > 0 the same scaled by 1 + p/64: P
different formulas of equal cost. Compare its per-candidate time with the
fused variant's step (e.g. --variant fused --population 8).

Ops per step are counted from candle's op calls: every op call (a kernel
launch on a GPU; views such as reshape and narrow included) makes one new
tensor, and candle numbers tensors from one counter, so the tensors created
during one untimed step (forward, backward, clipping, optimizer) plus the
in-place AdamW updates are the step's ops; the single model and the
population are counted the same way.

JSON (--json): {\"step_ms\": {\"gelu\", \"fused\", \"composed\"}, \"step_ms_min\",
\"step_ms_max\", \"activation_ms\", \"activation_share\",
\"ops_per_step_by_variant\" (same keys), \"ops_per_step\" (the fused
variant's, or the first timed one's), \"task\", \"preset\", \"batch_size\",
\"formula\", \"device\", \"threads\", \"iters\"} (with --variant, only the
variants named); with --population, \"population\": {\"size\", \"step_ms\",
\"step_ms_per_candidate\", \"ops_per_step\", \"ops_per_candidate_step\",
\"formulas\", and with the fused variant \"one_by_one_step_ms\",
\"per_candidate_vs_one_by_one\", \"ops_ratio\"}.

--export DIR writes the same model (initial weights of seed 1), the
optimizer settings (AdamW, lr 1e-4, clip 1) and the batches of every round
in order, for scripts/cpu-peers.py, which times PyTorch eager on them.

Examples:
  actforge bench-step --task qa --preset gpt-tiny
  actforge bench-step --task translate-t5 --preset t5-tiny --json
  actforge bench-step --task qa --variant fused --population 8 --json";

#[derive(Args, Debug)]
pub struct BenchStepArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// The evolved formula to time (default: the seed's Q&A activation).
    #[arg(long, default_value = SEED_QA, allow_hyphen_values = true)]
    pub formula: String,
    /// Timed rounds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub iters: u64,
    /// Untimed rounds first.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub warmup: u64,
    /// Time only this variant: gelu, fused or composed (repeatable;
    /// default: all three).
    #[arg(long = "variant", value_name = "VARIANT", value_parser = ["gelu", "fused", "composed"])]
    pub variants: Vec<String>,
    /// Also write the model, initial weights, optimizer settings and batches
    /// to DIR (step.json, params.bin) for a peer implementation
    /// (scripts/cpu-peers.py).
    #[arg(long, value_name = "DIR")]
    pub export: Option<std::path::PathBuf>,
    /// Also time a lockstep step of a population of P members with P
    /// different formulas (see above).
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub population: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

pub fn bench_step(out: &mut dyn Write, args: BenchStepArgs) -> Result<i32> {
    let recipe = args.recipe.recipe()?;
    let device = args.recipe.device.open()?;
    let prep = Prepared::new(&recipe)?;
    let spec = crate::bench::step::StepBench {
        prep: &prep,
        formula: &args.formula,
        device: &device,
        iters: args.iters as usize,
        warmup: args.warmup as usize,
        only: &args.variants,
        population: args.population.unwrap_or(0) as usize,
    };
    if let Some(dir) = &args.export {
        crate::bench::step::export(&spec, dir)?;
    }
    let times = crate::bench::step::run(&spec)?;
    if args.json {
        outln!(out, "{}", crate::bench::step::to_json(&spec, &times));
    } else {
        outln!(
            out,
            "{} · {} · batch {} · {:?} · {} threads\n",
            recipe.task,
            recipe.preset,
            recipe.batch_size,
            device,
            candle_core::utils::get_num_threads()
        );
        put(out, &crate::bench::step::table(&times))?;
    }
    Ok(0)
}
