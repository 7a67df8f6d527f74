//! `actforge search`: flags → a [`Request`] (resolved once into
//! [`Settings`] by the library) and a scale-out choice → a new or resumed
//! [`Session`]; Ctrl-C and the summary table. The engine lives in
//! `crate::search`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{ArgGroup, Args};

use super::io::note;
use super::progress::SearchBars;
use crate::device::Device;
use crate::error::Result;
use crate::experiment::Difference;
use crate::fitness::Task;
use crate::gp::sets::SetSpec;
use crate::gp::Mutation;
use crate::runtime::Arch;
use crate::search::config::{defaults, Algorithm, EvaluatorKind, Objective, Settings};
use crate::search::request::Selection;
use crate::search::run::outputs::Summary;
use crate::search::screen::Reason;
use crate::search::session::Resumed;
use crate::search::{Outcome, Request, Session};

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
pub const INTERRUPTED: i32 = 130;

pub const AFTER_HELP: &str = "\
Evolves activation functions by genetic programming. Each candidate's
fitness is the `train` recipe on the thinned data (--steps steps, then
evaluated; the mean over --seeds seeds, every candidate from the same
initial weights and batch order; racing, on by default, spends more seeds
on contenders, see below). Before any training, each offspring is
simplified and keyed by its canonical hash (an equivalent formula is never
trained twice; an unchanged copy keeps its fitness), then matched by its
functional fingerprint (1,217 probe points; --no-fingerprint turns this
off; merges are logged to merges.jsonl), then screened: non-finite f or f'
on [-10, 10], constant on [-4, 4], exploding or vanishing gain of a
one-layer forward and backward pass, affine on [-4, 4] (the MLP would
be linear), and (on the GPU or with
--compile-check) kernels that do not compile. A generation's remaining
candidates go to --workers threads at once; results are applied in
candidate order, so the same --seed gives the same hall of fame with any
number of workers.

Racing (the default; --max-seeds N, default 4): selection reads each candidate's mean paired
difference from GELU at the same seeds (GELU trained once per seed and
cached). A new candidate trains at one seed; after each generation's first
pass, rung by rung (1, 2, 4, ... seeds up to N), a candidate within reach
of the best (its mean + 2 sigma/sqrt(n) at least the best mean - 2
sigma/sqrt(n), sigma pooled over the run) earns the next rung and a
clearly worse one stops. Each candidate-seed is one line of
evaluations.jsonl. --no-racing trains every candidate with the same fixed
--seeds (default 1) and selects on the raw fitness, as searches did before
racing existed.

Algorithms: mu-plus-lambda (default; survivors from parents and offspring:
the --elite best, then tournaments, or NSGA-II with --objective
score,complexity) and simple (tournament parents, offspring replace the
population except the elite). Complexity is the node count of the
simplified formula. --include seeds the population with GELU, SiLU and the
seed experiments' Q&A and T5 formulas; the functions they use join the
primitive set.

The run directory (--out, default runs/search-<UTC time>; never
overwritten) holds: config.json (command line, every setting, versions,
seeds), evaluations.jsonl (one line per evaluated or screened formula,
flushed to disk as it finishes), merges.jsonl, checkpoint.json (replaced
atomically after every generation), logbook.jsonl and logbook.csv (per
generation: fitness, size, height and node min/mean/max, evaluations,
syntactic/canonical/functional dedup hits and rates, screening counts,
times), hall_of_fame.json, pareto.json, and at the end fitness.png,
pareto.png, hall_of_fame/hof-K.png (each entry and its derivative next to
GELU), best_kernel/ (the exported kernel package of the best formula) and
final.json (the held-out verdict: the best formulas and GELU trained on
the whole training split for the recipe's full length or --final-steps,
over --retrain-seeds seeds that the search never used, scored on the test
split that nothing else in the search reads; with 95% intervals, the
paired difference from GELU with its Holm p and verdict, the minimum
detectable effect, and Welch's p).

Reliability: after kill -9, `--resume DIR` continues from the last
checkpoint, reusing every evaluation already logged, and reaches the same
hall of fame as an uninterrupted run. Ctrl-C lets running evaluations
finish, writes the checkpoint and exits with status 130 (a second Ctrl-C
exits at once). --resume on a finished run says so and exits 0; a damaged
or foreign directory, an edited config.json or primitives.act, is an
error. --resume takes every setting from the run's config.json; only
--workers, --quiet, --json and the scale-out flags may be given with it.
One process works in a run directory at a time: a second one is refused
at once with the first one's pid (a lock left by a killed process is
taken over). A new run directory appears whole or not at all. Sizes past
their limits (--pop, --seeds, --gens, --batch-size, …; also in a forged
config.json) are usage errors that name the limit. A symbolic link
planted in the run directory is never written through.

Scale-out: --workers N runs N CPU workers, --devices 0,1,... one worker
per GPU (implies --device cuda). --executor thread (the default) keeps the
workers in this process; --executor process (the default with --devices)
makes each worker a long-lived `actforge eval-candidates` child process
(its log in workers/worker-N.log): a worker that dies (killed, out of
memory) loses only its candidate, which is tried once more on a fresh
worker and then scored as a failure with the reason. --executor ray sends
each candidate to a Ray cluster (--ray-address, default a local instance)
as a task running `actforge eval-candidates`; it needs Python with
ray==2.60.0 (--ray-python). A failed task is retried once, then scored as
a failure; a lost cluster stops the search with its checkpoint in place,
and --resume continues. The hall of fame of a seeded run is the same
through every executor and worker count. --eval-timeout SECONDS (process
and ray executors): an evaluation that runs longer has its worker killed,
is tried once more, then is scored as a failure that says it timed out;
the thread executor cannot stop a thread and refuses it.

Examples:
  actforge search                                   # Q&A task, seed set, CPU
  actforge search --pop 32 --gens 20 --include --workers 2 --out runs/qa1
  actforge search --objective score,complexity --primitives extended
  actforge search --resume runs/qa1
  actforge search --workers 2 --executor process    # worker processes
  actforge search --devices 0,1,2,3 --steps 2000    # one worker per GPU
  actforge search --executor ray --ray-address head:6379 --ray-python ray-env/bin/python

JSON (--json, printed at the end): {\"dir\", \"generations\", \"totals\":
{\"offspring\", \"evaluations\", \"failures\", \"syntactic_hits\",
\"canonical_hits\", \"functional_hits\", \"syntactic_rate\", \"canonical_rate\",
\"functional_rate\", \"dedup_rate\", \"screened_nonfinite\", \"screened_constant\",
\"screened_exploding\", \"screened_vanishing\", \"screened_linear\",
\"screened_compile\"}, \"distinct\",
\"best\": {\"formula\", \"simplified\", \"hash\", \"fitness\", \"nodes\"},
\"hall_of_fame\", \"pareto\", \"seconds\", \"files\": {what: path}, \"retrain\":
[{\"activation\", \"formula\", \"runs_ok\", \"mean\", \"ci95\", \"welch_p\",
\"verdict\", \"p_holm\"}], \"final\": {\"split\", \"seeds\", \"steps\",
\"mde_percent\"} | null, \"warnings\", \"status\": \"finished\"|\"already finished\"|\"interrupted\"}.";

/// The flags that set a run's settings: `--resume` takes them from the
/// run's `config.json`, so none may be given with it.
const RESUME_CONFLICTS: [&str; 44] = [
    "task",
    "primitives",
    "ephemeral",
    "include",
    "start_with",
    "pop",
    "lambda",
    "gens",
    "algorithm",
    "selection",
    "device",
    "evaluator",
    "tournament_size",
    "parsimony",
    "elite",
    "cxpb",
    "mutpb",
    "mutations",
    "max_height",
    "max_size",
    "init_min",
    "init_max",
    "objective",
    "no_fingerprint",
    "hof",
    "seed",
    "seeds",
    "steps",
    "batch_size",
    "thin",
    "preset",
    "compile_check",
    "arch",
    "retrain_top",
    "retrain_seeds",
    "final_steps",
    "max_seeds",
    "no_racing",
    "lockstep",
    "no_lockstep",
    "lockstep_size",
    "no_export",
    "synthetic_sleep_ms",
    "out",
];

/// Arguments of `actforge search`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("settings").multiple(true)))]
pub struct SearchArgs {
    /// The training task that gives fitness.
    #[arg(long, default_value_t = defaults::TASK, value_parser = task_parser(), group = "settings")]
    pub task: Task,
    /// Primitive set: seed, extended, swish, or a file of definitions.
    #[arg(
        long,
        default_value = "seed",
        value_name = "SET|FILE",
        group = "settings"
    )]
    pub primitives: SetSpec,
    /// An ephemeral random constant, e.g. 'uniform(-1,1,2)' or 'int(-2,2)'.
    #[arg(long, value_name = "SPEC", group = "settings")]
    pub ephemeral: Option<String>,
    /// Seed the population with GELU, SiLU and the seed's two formulas.
    #[arg(long, group = "settings")]
    pub include: bool,
    /// Also seed the population with this formula (repeatable).
    #[arg(
        long,
        value_name = "FORMULA",
        allow_hyphen_values = true,
        group = "settings"
    )]
    pub start_with: Vec<String>,
    /// Population size (μ).
    #[arg(long, default_value_t = defaults::POP, group = "settings")]
    pub pop: usize,
    /// Offspring per generation (λ; mu-plus-lambda only). Default: --pop.
    #[arg(long, group = "settings")]
    pub lambda: Option<usize>,
    /// Generations after the initial population.
    #[arg(long, default_value_t = defaults::GENS, group = "settings")]
    pub gens: usize,
    /// mu-plus-lambda or simple.
    #[arg(long, default_value = defaults::ALGORITHM.name(), value_parser = ["mu-plus-lambda", "simple"], group = "settings")]
    pub algorithm: String,
    /// tournament or double-tournament (parsimony pressure on tree size).
    #[arg(long, default_value = "tournament", value_parser = ["tournament", "double-tournament"], group = "settings")]
    pub selection: String,
    /// Aspirants per (fitness) tournament.
    #[arg(long, default_value_t = defaults::TOURNAMENT_SIZE, group = "settings")]
    pub tournament_size: usize,
    /// Double tournament: the smaller of two wins with probability P/2 (1 to 2).
    #[arg(long, default_value_t = defaults::PARSIMONY, group = "settings")]
    pub parsimony: f64,
    /// Best individuals always kept (one objective).
    #[arg(long, default_value_t = defaults::ELITE, group = "settings")]
    pub elite: usize,
    /// Crossover probability (default 0.6 for mu-plus-lambda, 0.5 for simple).
    #[arg(long, group = "settings")]
    pub cxpb: Option<f64>,
    /// Mutation probability (default 0.3 for mu-plus-lambda, 0.2 for simple).
    #[arg(long, group = "settings")]
    pub mutpb: Option<f64>,
    /// Mutations, comma-separated: uniform, node-replacement, shrink, insert, ephemeral-one, ephemeral-all.
    #[arg(long, value_name = "LIST", group = "settings")]
    pub mutations: Option<String>,
    /// Static height limit (DEAP's staticLimit; root at depth 0).
    #[arg(long, default_value_t = defaults::MAX_HEIGHT, group = "settings")]
    pub max_height: usize,
    /// Static size limit in tree nodes (none by default).
    #[arg(long, group = "settings")]
    pub max_size: Option<usize>,
    /// Smallest height of initial trees (ramped half-and-half).
    #[arg(long, default_value_t = defaults::INIT_MIN, group = "settings")]
    pub init_min: usize,
    /// Largest height of initial trees.
    #[arg(long, default_value_t = defaults::INIT_MAX, group = "settings")]
    pub init_max: usize,
    /// score, or score,complexity (NSGA-II on fitness and node count).
    #[arg(long, default_value = defaults::OBJECTIVE.name(), group = "settings")]
    pub objective: String,
    /// Turn off the functional-fingerprint dedup layer.
    #[arg(long, group = "settings")]
    pub no_fingerprint: bool,
    /// Hall-of-fame size.
    #[arg(long, default_value_t = defaults::HOF, group = "settings")]
    pub hof: usize,
    /// Seed of the search (initial population, selection, variation).
    #[arg(long, default_value_t = defaults::SEED, group = "settings")]
    pub seed: u64,
    /// With --no-racing: training seeds per candidate; the fitness is their
    /// mean.
    #[arg(long, default_value_t = defaults::SEEDS, group = "settings", requires = "no_racing")]
    pub seeds: usize,
    /// Training steps per candidate (default: 150 on the CPU, the recipe's
    /// 2000 on a GPU).
    #[arg(long, group = "settings")]
    pub steps: Option<usize>,
    /// Sequences per training batch (default: the recipe's).
    #[arg(long, group = "settings")]
    pub batch_size: Option<usize>,
    /// Share of the training data kept (stratified thinning).
    #[arg(long, default_value_t = defaults::THIN, group = "settings")]
    pub thin: f64,
    /// Fitness weights, e.g. bleu=0.5,ppl=0.3,acc=0.2 (the default); a key
    /// left out weighs 0.
    #[arg(long, value_name = "bleu=W,ppl=W,acc=W", group = "settings")]
    pub weights: Option<crate::metrics::Weights>,
    /// Where candidates train: auto (a GPU when this build has the cuda
    /// feature and one answers, else the CPU), cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"], group = "settings")]
    pub device: String,
    /// Model preset (default: the task's).
    #[arg(long, group = "settings")]
    pub preset: Option<String>,
    /// Compile each generation's kernels with NVRTC even on the CPU.
    #[arg(long, group = "settings")]
    pub compile_check: bool,
    /// GPU architecture for compiles and the exported kernel.
    #[arg(long, default_value_t = defaults::ARCH, group = "settings")]
    pub arch: Arch,
    /// Hall-of-fame entries retrained against GELU at the end (0: none).
    #[arg(long, default_value_t = defaults::RETRAIN_TOP, group = "settings")]
    pub retrain_top: usize,
    /// Seeds of the final verdict (fresh: the ones after the search's
    /// training seeds).
    #[arg(long, default_value_t = defaults::RETRAIN_SEEDS, group = "settings")]
    pub retrain_seeds: usize,
    /// Training steps of the final verdict's runs (default: the task
    /// recipe's full length, 300 on the CPU, 2,000 on a GPU).
    #[arg(long, group = "settings")]
    pub final_steps: Option<usize>,
    /// Racing (on by default): a new candidate trains at one seed and earns
    /// more, up to this many, while its paired difference from GELU is
    /// within reach of the best (see the README's "Racing"). Selection
    /// reads the mean paired difference from GELU.
    #[arg(long, value_name = "N", default_value_t = defaults::MAX_SEEDS, group = "settings")]
    pub max_seeds: usize,
    /// Train every candidate with the same fixed --seeds and select on the
    /// raw fitness (searches before racing existed).
    #[arg(long, group = "settings", conflicts_with = "max_seeds")]
    pub no_racing: bool,
    /// Train a batch's candidate-seeds as lockstep populations, one model
    /// with a population dimension each (default on a GPU; off on the
    /// CPU, where measured one by one with one thread a worker is faster:
    /// see the README's "Lockstep in the search"). Part of the run's
    /// settings: a member's fitness is its one-by-one value up to the
    /// drift of rounding over training (see the README).
    #[arg(long, group = "settings", conflicts_with = "no_lockstep")]
    pub lockstep: bool,
    /// Train every candidate-seed as a model of its own.
    #[arg(long, group = "settings")]
    pub no_lockstep: bool,
    /// Most members of a lockstep population (implies --lockstep; default:
    /// a whole batch up to what 24 GB of GPU memory holds by an estimate
    /// per preset: 60 members of gpt-micro, 24 of gpt-tiny, 9 of t5-small).
    #[arg(
        long,
        value_name = "K",
        group = "settings",
        conflicts_with = "no_lockstep"
    )]
    pub lockstep_size: Option<usize>,
    /// Do not export the best formula's kernel package.
    #[arg(long, group = "settings")]
    pub no_export: bool,
    /// Developer: `synthetic` scores closeness to GELU instead of training.
    #[arg(long, default_value = "train", value_parser = ["train", "synthetic"], hide = true, group = "settings")]
    pub evaluator: String,
    /// Developer: sleep per synthetic evaluation (milliseconds).
    #[arg(long, default_value_t = defaults::SYNTHETIC_SLEEP_MS, hide = true, group = "settings")]
    pub synthetic_sleep_ms: u64,
    /// CPU workers (default: one per CPU core when training on the CPU,
    /// each with one math thread; one on a GPU). See --executor.
    #[arg(long)]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub scale: super::scale::ScaleArgs,
    /// The run directory (must not exist or be empty).
    #[arg(long, value_name = "DIR", group = "settings")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR.
    /// (Each setting is listed, so that the error names the flag given.)
    #[arg(long, value_name = "DIR", conflicts_with_all = RESUME_CONFLICTS)]
    pub resume: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress bars or per-generation lines.
    #[arg(long)]
    pub quiet: bool,
}

/// `--task`: one of the tasks' names (in the order `--help` has always
/// listed them), read as a [`Task`].
fn task_parser() -> impl clap::builder::TypedValueParser<Value = Task> {
    use clap::builder::TypedValueParser;
    let tasks = [Task::Qa, Task::TranslateGpt, Task::TranslateT5];
    clap::builder::PossibleValuesParser::new(tasks.map(Task::name))
        .map(|name| name.parse::<Task>().expect("a listed task"))
}

/// The settings the flags describe: the flags copied into a [`Request`],
/// which resolves every default.
pub fn settings(a: &SearchArgs) -> Result<Settings> {
    request(a)?.resolve()
}

/// The flags as a [`Request`], field by field.
fn request(a: &SearchArgs) -> Result<Request> {
    Ok(Request {
        task: a.task,
        primitives: a.primitives.clone(),
        ephemeral: a.ephemeral.clone(),
        include_known: a.include,
        start_with: a.start_with.clone(),
        pop: a.pop,
        lambda: a.lambda,
        gens: a.gens,
        algorithm: Algorithm::parse(&a.algorithm)?,
        selection: match a.selection.as_str() {
            "double-tournament" => Selection::DoubleTournament,
            _ => Selection::Tournament,
        },
        tournament_size: a.tournament_size,
        parsimony: a.parsimony,
        elite: a.elite,
        cxpb: a.cxpb,
        mutpb: a.mutpb,
        mutations: a
            .mutations
            .as_deref()
            .map(|list| list.split(',').map(Mutation::parse).collect())
            .transpose()?,
        max_height: a.max_height,
        max_size: a.max_size,
        init_min: a.init_min,
        init_max: a.init_max,
        objective: Objective::parse(&a.objective)?,
        fingerprint: !a.no_fingerprint,
        hof: a.hof,
        seed: a.seed,
        seeds: a.seeds,
        steps: a.steps,
        batch_size: a.batch_size,
        thin: a.thin,
        weights: a.weights,
        device: match a.device.as_str() {
            "auto" => None,
            name => Some(Device::parse(name)?),
        },
        per_gpu: a.scale.devices.is_some(),
        preset: a.preset.clone(),
        compile_check: a.compile_check,
        arch: a.arch,
        retrain_top: a.retrain_top,
        retrain_seeds: a.retrain_seeds,
        final_steps: a.final_steps,
        racing: !a.no_racing,
        max_seeds: a.max_seeds,
        lockstep: match (a.lockstep, a.no_lockstep) {
            (true, _) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
        },
        lockstep_size: a.lockstep_size,
        export: !a.no_export,
        evaluator: match a.evaluator.as_str() {
            "synthetic" => EvaluatorKind::Synthetic {
                sleep_ms: a.synthetic_sleep_ms,
            },
            _ => EvaluatorKind::Train,
        },
    })
}

/// One formula's verdict against the baseline: "hof-1: better than gelu
/// (candle, tanh) (Holm p 0.012)", "worse than …", "no difference from …".
pub fn verdict_line(label: &str, baseline: &str, d: &Difference) -> String {
    let holm = d.p_holm.map_or("-".to_string(), |p| format!("{p:.3}"));
    let what = match d.verdict.better() {
        Some(true) => format!("better than {baseline}"),
        Some(false) => format!("worse than {baseline}"),
        None => format!("no difference from {baseline}"),
    };
    format!("{label}: {what} (Holm p {holm})")
}

/// Ctrl-C (and SIGTERM) raise `stop`; a second one exits at once.
fn install_stop_handler(stop: Arc<AtomicBool>) {
    let result = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(INTERRUPTED);
        }
        note("stopping: letting running evaluations finish, then writing the checkpoint (Ctrl-C again to quit at once)");
    });
    if let Err(e) = result {
        note(format!(
            "warning: Ctrl-C will not stop the search cleanly: {e}"
        ));
    }
}

/// Run the command: flags → a [`Request`] and a
/// [`Scale`](crate::search::session::Scale) → a [`Session`] → run → print.
pub fn run(out: &mut dyn Write, args: &SearchArgs) -> Result<i32> {
    // Every flag is checked before a run directory is made or opened.
    let scale = args.scale.scale(args.workers)?;
    let mut bars = SearchBars::new(args.quiet);
    let mut session = match &args.resume {
        None => {
            let command: Vec<String> = std::env::args().collect();
            let out_dir = args.out.as_deref();
            Session::create(
                settings(args)?,
                out_dir,
                &command,
                scale,
                Some(bars.training()),
            )?
        }
        Some(dir) => match Session::resume(dir, scale, Some(bars.training()))? {
            Resumed::Ready(session) => *session,
            Resumed::Finished(summary) => {
                note(format!(
                    "the search in {} has already finished (generations 0..{}); nothing to do",
                    dir.display(),
                    summary.generations.saturating_sub(1)
                ));
                print(out, &summary, args.json, "already finished")?;
                return Ok(0);
            }
        },
    };
    bars.set_paired(session.settings().seeding.racing.is_some());
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_handler(stop.clone());
    match session.run(&mut bars, stop)? {
        Outcome::Finished(summary) => {
            print(out, &summary, args.json, "finished")?;
            Ok(0)
        }
        Outcome::Interrupted { generation } => {
            let dir = session.dir().display().to_string();
            note(format!(
                "interrupted before generation {generation}; checkpoint written. Continue with: actforge search --resume {dir}"
            ));
            if args.json {
                outln!(
                    out,
                    "{}",
                    serde_json::json!({"status": "interrupted", "dir": dir, "next_generation": generation})
                );
            }
            Ok(INTERRUPTED)
        }
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The summary, as a table or JSON.
fn print(out: &mut dyn Write, s: &Summary, json: bool, status: &str) -> Result<()> {
    if json {
        let mut v = s.to_json();
        v["status"] = serde_json::json!(status);
        outln!(out, "{v}");
        return Ok(());
    }
    let t = &s.totals;
    outln!(
        out,
        "search {status}: generations 0..{}, {} trained candidate-seeds ({} failed), {} screened, {} distinct formulas, {:.1} s",
        s.generations.saturating_sub(1),
        t.evaluations,
        t.failures,
        t.screened_total(),
        s.distinct,
        s.seconds
    );
    outln!(
        out,
        "dedup: {} of {} offspring served by meaning (canonical {}, functional {}); syntactic (text) would serve {}",
        pct(t.dedup_rate()),
        t.offspring,
        pct(t.canonical_rate()),
        pct(t.functional_rate()),
        pct(t.syntactic_rate())
    );
    let screened: Vec<String> = Reason::ALL
        .iter()
        .map(|r| format!("{} {}", r.name(), t.screened[*r as usize]))
        .collect();
    outln!(out, "screened: {}", screened.join(", "));
    match &s.best {
        Some(b) => {
            let paired = b.vs_gelu.map_or(String::new(), |d| {
                format!(" ({d:+.6} vs GELU at the same seeds)")
            });
            let seeds = if b.seeds == 1 { "seed" } else { "seeds" };
            outln!(
                out,
                "best: fitness {:.6}{paired}, mean of {} {seeds}, {} nodes",
                b.fitness,
                b.seeds,
                b.nodes
            );
            outln!(out, "  formula     {}", b.formula);
            if let Some(simple) = &b.simplified {
                outln!(out, "  simplified  {simple}");
            }
        }
        None => outln!(out, "best: no candidate succeeded"),
    }
    if !s.retrain.is_empty() {
        outln!(
            out,
            "final retrain against GELU (paired over the seeds, Holm over the formulas, α = 0.05; a failed run scores 0):"
        );
        outln!(
            out,
            "  {:<10} {:>10} {:>23} {:>10} {:>9} {:<13} {:>9} {:>4}  formula",
            "activation",
            "fitness",
            "95% CI",
            "vs GELU",
            "Holm p",
            "verdict",
            "Welch p",
            "runs"
        );
        for r in &s.retrain {
            let p = r.welch_p.map_or("-".to_string(), |p| format!("{p:.3}"));
            let (diff, holm, verdict) = match &r.vs_baseline {
                Some(d) => (
                    format!("{:+.6}", d.test.mean_diff),
                    d.p_holm.map_or("-".to_string(), |p| format!("{p:.3}")),
                    d.verdict.word(),
                ),
                None => ("-".into(), "-".into(), "(baseline)"),
            };
            // One successful run has no interval.
            let ci = if r.ci95.0.is_finite() && r.ci95.1.is_finite() {
                format!("[{:>10.6}, {:>10.6}]", r.ci95.0, r.ci95.1)
            } else {
                "-".into()
            };
            outln!(
                out,
                "  {:<10} {:>10.6} {:>23} {:>10} {:>9} {:<13} {:>9} {:>4}  {}",
                r.label,
                r.mean,
                ci,
                diff,
                holm,
                verdict,
                p,
                r.n_ok,
                r.formula
            );
        }
        let base = s.retrain[0].mean;
        for r in &s.retrain[1..] {
            if let Some(d) = &r.vs_baseline {
                outln!(
                    out,
                    "  resolution {}: a true difference of ±{:.6} ({:.2}% of GELU's fitness) is detected with 80% power at α = 0.05 ({} seed pairs)",
                    r.label,
                    d.mde(),
                    100.0 * d.mde() / base,
                    d.test.n
                );
            }
        }
        if let Some(h) = &s.held_out {
            let seeds: Vec<String> = h.seeds.iter().map(u64::to_string).collect();
            let steps = h.steps.map_or("no".to_string(), |n| n.to_string());
            outln!(
                out,
                "  measured on the {} split, whole training split, {steps} steps, fresh seeds {}; minimum detectable effect {}",
                h.split,
                seeds.join(", "),
                h.mde_percent
                    .map_or("-".to_string(), |m| format!("{m:.2}% of GELU's fitness"))
            );
        }
        let base_name = &s.retrain[0].formula;
        for r in &s.retrain[1..] {
            if let Some(d) = &r.vs_baseline {
                outln!(out, "  verdict {}", verdict_line(&r.label, base_name, d));
            }
        }
    }
    for w in &s.warnings {
        outln!(out, "warning: {w}");
    }
    outln!(out, "written to {}:", s.dir.display());
    for (what, path) in &s.files {
        outln!(out, "  {what:<17} {}", path.display());
    }
    Ok(())
}
