//! The command-line interface. Each subcommand is a thin layer over the
//! library: parse arguments, call the pipeline, print. Exit status 0 on
//! success, 1 on bad input (with the caret-rendered error on stderr), 2 on
//! usage errors (clap's convention). A reader that closes standard output
//! early (`| head`) ends the program quietly with status 0, as it does for
//! `--help`.

/// Writes a line to a command's output, with its errors as `Error::Io` on
/// `<stdout>` (see `io`).
macro_rules! outln {
    ($out:expr) => {
        writeln!($out).map_err($crate::cli::io::stdout_error)?
    };
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err($crate::cli::io::stdout_error)?
    };
}

mod bleu;
mod commands;
mod data;
mod eval_candidates;
pub mod flags;
mod io;
mod progress;
mod sass;
mod scale;
mod search;
mod tables;
mod train;

use clap::{Args, Parser, Subcommand};

use crate::bench::compile::{MAX_BATCH, MAX_SINGLES};
use crate::bench::{MAX_ELEMS, MAX_ITERS};
use crate::error::Error;
use crate::report::plot::MAX_SAMPLES;
use crate::runtime::Arch;

const AFTER_HELP: &str = "\
Formulas use DEAP-style calls and infix operators; `x` is the input and
`ARG0` its alias. Named primitives (safe_div, log1p_safe, gated_gate,
gelu_like, …) come from the built-in prelude; add your own with --defs.

Examples:
  actforge simplify 'safe_div(safe_mul(x, 1.0), safe_add(x, 0))'
  actforge eval 'gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))' --x=-2,-0.5,0,1.5 --grad
  actforge plot 'gelu_like(x)' --out gelu.png --range -4,4
  actforge codegen 'silu(x)' --dtype bf16 --bwd   # the generated CUDA C
  actforge export 'gelu_like(x)' --out gelu_kernel  # a standalone kernel package
  actforge bench 'gelu_like(x)' --elems 4194304     # fused vs composed vs candle's GELU
  actforge bleu --ref ref.txt --hyp hyp.txt --json  # BLEU and chrF, = sacreBLEU
  actforge prelude            # list the named primitives
  actforge data stats builtin:qa                    # corpus figures

In a candle model, an activation is `gelu`, `fused:FORMULA` or
`composed:FORMULA` (actforge::op::Activation).

Exit status: 0 on success (also when the reader of standard output stops
early, as `| head` does), 1 on bad input, 2 on bad usage. Sizes that
cannot be served (--elems, --iters, --samples, grid points) are usage
errors that name the limit.";

#[derive(Parser, Debug)]
#[command(
    name = "actforge",
    version,
    about = "Fused CUDA kernels for GP-evolved activation functions",
    long_about = "actforge parses activation-function formulas (hand-written or evolved by genetic \
programming), simplifies them soundly, differentiates them symbolically, and turns each into one \
fused forward and one fused backward kernel.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Simplify a formula and print its canonical form, derivative and hash.
    #[command(after_help = "\
The simplifier only applies rewrites that keep the value at every finite
input, including protected points: safe_div(a, a) becomes 1, but
safe_div(0, b) stays, because it is 1 at b = 0.

`nodes` counts distinct DAG nodes of intrinsics after the prelude is
inlined. The hash is the canonical 64-bit hash: formulas that differ by
commutation or by rewrites that simplify away share it.

JSON (--json): {\"input\", \"simplified\" (prefix), \"infix\", \"nodes_before\",
\"nodes_after\", \"hash\", \"derivative\", \"stop\", \"rewrites\"}")]
    Simplify {
        /// The formula, e.g. 'safe_div(x, safe_add(x, 1.0))'.
        #[arg(allow_hyphen_values = true)]
        formula: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also plot f and f' over [-5, 5] to this .svg or .png file.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Evaluate a formula (and optionally its derivative) at given points.
    #[command(after_help = "\
Values come from the f64 reference evaluator of the simplified formula
(--precision f32 uses the fused CPU evaluator that mirrors the kernels).
Text prints the shortest decimal that reads back as the same value (f64,
or f32 with --precision f32), in scientific notation below 1e-4 and from
1e16 up. Non-finite results are data: `nan`/`inf` in text, null in JSON.

--x=LO:HI:N: N evenly spaced points, LO ≤ HI, both finite, 1 ≤ N ≤
10000000; any finite range works (computed as LO·(1−t) + HI·t, which
cannot overflow). --file: a UTF-8 byte-order mark is skipped; error
columns count from the start of the line as written.

JSON (--json): {\"y\":[…],\"dy\":[…]} (dy only with --grad). With --file, one
object per formula line, in input order, each with \"line\"; a line that fails
to parse gives {\"line\":N,\"error\":\"…\"} and the exit status is 1.

Example:
  actforge eval 'softsign(x)' --x=-2,-0.5,0,1.5 --grad --json")]
    Eval {
        /// The formula (omit with --file).
        #[arg(allow_hyphen_values = true)]
        formula: Option<String>,
        /// Read one formula per line from this file ('#' comments and blank lines skipped).
        #[arg(long, conflicts_with = "formula")]
        file: Option<std::path::PathBuf>,
        /// Comma-separated points, e.g. --x=-2,-0.5,0,1.5 (or a grid: --x=-5:5:11).
        #[arg(long = "x", allow_hyphen_values = true, value_name = "LIST")]
        x: String,
        /// Also print the derivative f'(x).
        #[arg(long)]
        grad: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// f64 (reference) or f32 (the fused CPU evaluator).
        #[arg(long, default_value = "f64", value_parser = ["f64", "f32"])]
        precision: String,
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Plot a formula and its derivative to an SVG or PNG file.
    #[command(after_help = "\
Any finite range with LO < HI works, from --range=-1e308,1e308 to a range
a few ulps wide: the axes are drawn in scaled coordinates with a bounded
number of ticks, labelled with the digits their spacing needs.

Example:
  actforge plot 'gelu_like(x)' --out gelu.svg --range=-4,4 --samples 2001")]
    Plot {
        /// The formula to plot.
        #[arg(allow_hyphen_values = true)]
        formula: String,
        /// Output file; the extension (.svg or .png) picks the format.
        #[arg(long)]
        out: std::path::PathBuf,
        /// x range as LO,HI (finite, LO < HI).
        #[arg(long, default_value = "-5,5", allow_hyphen_values = true)]
        range: String,
        /// Number of sample points (2 to 100000).
        #[arg(long, default_value_t = 801,
              value_parser = clap::value_parser!(u64).range(2..=MAX_SAMPLES as u64))]
        samples: u64,
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Print the generated CUDA C for a formula.
    #[command(after_help = "\
Prints a self-contained CUDA C module: the device prelude (storage types,
bf16/f16 conversions, math helpers), the formula as a device function, and
the kernels. exp, the sigmoid, tanh and division use the GPU's approximate
instructions within the PTX ISA's documented error bounds (tested against
the PRIMITIVES.md tolerance); --exact-math uses libm and IEEE division. Kernel names follow the exported ABI:

  extern \"C\" __global__ void act_<hash>_fwd_<dtype>(const T* x, T* y, unsigned long long n);
  extern \"C\" __global__ void act_<hash>_bwd_<dtype>(const T* x, const T* dy, T* dx, unsigned long long n);

Examples:
  actforge codegen 'silu(x)'                     # forward, f32
  actforge codegen 'silu(x)' --dtype bf16 --bwd  # backward, bf16
  actforge codegen 'silu(x)' --all               # every dtype and direction")]
    Codegen {
        #[arg(allow_hyphen_values = true)]
        formula: String,
        /// Storage type of the kernel.
        #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
        dtype: String,
        /// The backward kernel (dx = dy * f'(x)) instead of the forward one.
        #[arg(long)]
        bwd: bool,
        /// Every dtype, forward and backward.
        #[arg(long, conflicts_with_all = ["dtype", "bwd"])]
        all: bool,
        /// Inline the formula into each kernel (default: inline unless it uses sin/cos/tan).
        #[arg(long)]
        inline: bool,
        /// libm and IEEE division instead of approximate hardware math.
        #[arg(long)]
        exact_math: bool,
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Write a standalone kernel package for a formula.
    #[command(after_help = "\
Writes into DIR: NAME.cu (forward and backward, f32/bf16/f16), NAME.h
(declarations that compile as C11 and C++), NAME.ptx and NAME.cubin (when
NVRTC is available; otherwise a warning says how to install it), README.md
(formula, canonical form, hash, signatures, launch advice, loading from C++
and PyTorch) and NAME.png (f and f'). NAME defaults to act_<hash>.

The package is written into a temporary directory next to DIR and moved
into place only when complete: a failed export leaves nothing behind. An
existing non-empty DIR is refused unless --force; with --force, the
package's files in DIR are replaced (a file of the package that this
export does not write, such as an old NAME.cubin, is removed) and other
files are left alone. --arch is checked first against the architectures
NVRTC supports (nvrtcGetSupportedArchs), or, without NVRTC, against the
list of NVRTC 13.0: sm_75 to sm_121. --exact-math compiles with libm
and IEEE division instead of approximate hardware math.

Example:
  actforge export 'gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))' --out qa_kernel --arch sm_90")]
    Export {
        #[arg(allow_hyphen_values = true)]
        formula: String,
        /// Output directory (created if needed).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Target GPU architecture for the PTX and CUBIN.
        #[arg(long, default_value = "sm_90")]
        arch: Arch,
        /// Base name of the files.
        #[arg(long)]
        name: Option<String>,
        /// Replace the package's files in an existing, non-empty DIR.
        #[arg(long)]
        force: bool,
        /// libm and IEEE division instead of approximate hardware math.
        #[arg(long)]
        exact_math: bool,
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Benchmark the fused activation against the composed one, side by side.
    #[command(after_help = "\
Variants, measured side by side: a copy of the same bytes (copy: the
bandwidth ceiling; a multi-threaded memcpy on the CPU, a device-to-device
copy on a GPU), the fused candle op (fused), the same formula as a chain of
candle ops (composed) and candle's built-in GELU (builtin-gelu): forward on
a tracked tensor (fwd), Tensor::backward (bwd) and both (fwdbwd). Every row
reports the median, fastest and slowest of --iters timed rounds (after one
warm-up), the device synchronised before each clock read (on a GPU, CUDA
events time each round); a warning names the rows whose rounds spread by
more than 50% of their median. On a GPU (--device cuda) also the fused
NVRTC kernels launched directly, the same formula through the dispatch kernels of a 33-formula module (the
layout for a GP generation) and one generated kernel per op (the composed
baseline at kernel level); GPU results are checked against the CPU
reference before timing. GB/s counts the minimal traffic of each pass
(forward reads x and writes y; backward also reads dy).

JSON (--json): {\"device\", \"formula\", \"dtype\", \"elems\", \"iters\", \"hash\",
\"rows\":[{variant, pass, elems, seconds (median), gbps, pct_of_copy,
min_seconds, max_seconds, rounds}], \"speedup_vs_composed\":{\"fwd\",\"bwd\",
\"fwdbwd\"}, \"speedup_vs_builtin\":{…}, \"warnings\":[…]} (speedup: the other
variant's median / the fused median; on a GPU also
\"kernel_speedup_vs_composed_kernels\").

Limits: 1 ≤ --elems ≤ 268435456 (2^28), 1 ≤ --iters ≤ 100000; on the CPU,
five tensors of --elems must fit in the available memory.

Example:
  actforge bench 'gelu_like(x)' --device cuda --elems 16777216 --dtype bf16 --json")]
    Bench {
        #[arg(allow_hyphen_values = true)]
        formula: String,
        /// cpu or cuda (GPU 0; CUDA_DEVICE_ORDINAL picks another).
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
        device: String,
        /// Elements per tensor (1 to 2^28).
        #[arg(long, default_value_t = 1 << 22,
              value_parser = clap::value_parser!(u64).range(1..=MAX_ELEMS as u64))]
        elems: u64,
        #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
        dtype: String,
        /// Timed rounds (1 to 100000).
        #[arg(long, default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(1..=MAX_ITERS as u64))]
        iters: u64,
        #[arg(long)]
        json: bool,
        /// Also draw a bar chart of the rows (.png or .svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Measure NVRTC compile times and the kernel cache, or (--sass) the kernels' SASS roofline (no GPU needed).
    #[command(after_help = "\
Cold compile of one formula (forward + backward, one dtype) over several
random GP formulas; one module holding many formulas (per-formula cost),
with the exported per-formula kernels and as a dispatch module (one kernel
per direction for the whole module, math functions compiled once: the
layout for a GP generation); disk-cache hits from a fresh cache.

With --sass, instead: the SASS roofline report (no GPU needed). Each
formula (--formula, repeatable; default both seeds and gelu_like(x)) is
compiled as the runtime compiles it (NVRTC, per-formula kernels, all three
dtypes, both directions), disassembled with nvdisasm (registers and stack
from cuobjdump -res-usage on the same CUBIN), and for every kernel the main
path of one vector-loop iteration (the shortest path from the loop head to
its back edge, called functions' main paths included; slow paths for rare
inputs excluded) is divided by the elements it handles. The budget is what
an H200 (132 SMs x 4 schedulers at 1.98 GHz, 16 MUFU ops per SM per clock,
4.3 TB/s copy) can issue per element while streaming the kernel's bytes at
copy speed; `bound` says what limits the kernel (memory, issue or mufu).
--check FILE fails (exit 1) when a kernel's instructions or MUFU operations
per element exceed FILE's figures by more than its tolerance (10%);
--write-budget FILE writes the measured figures as a new budget.

JSON (--sass --json): {arch, math, inlining, layout, machine, compile_ms,
kernels: [{kernel, formula, dir, dtype, elems_per_iter, instrs_per_iter,
mufu_per_iter, instrs_per_elem, mufu_per_elem, budget_instrs_per_elem,
budget_mufu_per_elem, bound, bound_over_memory, static_instrs,
static_branches, registers, stack_bytes}]}

Examples:
  actforge bench-compile --arch sm_90 --json
  actforge bench-compile --sass                        # seeds and gelu_like, table
  actforge bench-compile --sass --formula 'silu(x)' --exact-math --json
  actforge bench-compile --sass --check tests/golden/sass_budget.json
  actforge bench-compile --sass --source qa_kernel/qa.cu   # an exported module")]
    BenchCompile {
        #[arg(long, default_value = "sm_90")]
        arch: Arch,
        #[arg(long, default_value = "f32", value_parser = ["f32", "bf16", "f16"])]
        dtype: String,
        /// Formulas compiled one by one (1 to 1000).
        #[arg(long, default_value_t = 16,
              value_parser = clap::value_parser!(u64).range(1..=MAX_SINGLES as u64))]
        singles: u64,
        /// Formulas in the batched module (1 to 4096).
        #[arg(long, default_value_t = 64,
              value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH as u64))]
        batch: u64,
        #[arg(long)]
        json: bool,
        /// Also write the compiled sources to DIR: `single.cu` (the first
        /// formula alone), `module.cu` (the batched module) and
        /// `dispatch.cu` (the same formulas as a dispatch module)
        #[arg(long, value_name = "DIR")]
        emit: Option<std::path::PathBuf>,
        #[command(flatten)]
        sass: SassArgs,
    },
    /// Corpus BLEU and chrF of a hypothesis file against reference files (= sacreBLEU 2.6.0).
    #[command(after_help = bleu::AFTER_HELP)]
    Bleu(bleu::BleuArgs),
    /// List the named primitives of the prelude (and --defs), with definitions.
    Prelude {
        #[command(flatten)]
        defs: DefsArg,
    },
    /// Train activations side by side over seeds, with statistics (the seed post's experiments).
    #[command(after_help = train::AFTER_HELP)]
    Train(train::TrainArgs),
    /// Time one training step with GELU, the fused and the composed activation, side by side.
    #[command(after_help = train::BENCH_STEP_HELP)]
    BenchStep(train::BenchStepArgs),
    /// Evolve activation functions: GP search with dedup by meaning, screening, checkpoints.
    #[command(after_help = search::AFTER_HELP)]
    Search(Box<search::SearchArgs>),
    /// Rebuild the report page (report.html) of a search or train run directory.
    #[command(after_help = "\
Reads the run directory's files (config.json, logbook, hall of fame, Pareto
front, evaluations, final.json, best_kernel/ of a search; results.json or
runs.jsonl of a train run), writes DIR/report.html atomically and prints its
path. Works for finished, interrupted and older runs; a search's final
retrain folder (DIR/final) gets its own page. The page is self-contained
(inline SVG and CSS, no network fetches) and reads with JavaScript off.
Refused (exit 2) while a search or train holds the directory: the run
rewrites its page after every generation or run.

Example:
  actforge report runs/search-20261129-101500")]
    Report {
        /// The run directory.
        dir: std::path::PathBuf,
    },
    /// Evaluate a batch of a search run's candidates in a fresh process (JSONL in, JSONL out).
    #[command(after_help = eval_candidates::AFTER_HELP)]
    EvalCandidates(eval_candidates::EvalCandidatesArgs),
    /// Corpora: statistics, thinning, tokenizers (`data stats|thin|tokenizer`).
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
}

/// `bench-compile --sass` and its options.
#[derive(Args, Debug, Clone)]
pub struct SassArgs {
    /// The SASS roofline report instead of compile times.
    #[arg(long)]
    pub sass: bool,
    /// A formula to report (repeatable; default: both seeds and gelu_like(x)).
    #[arg(
        long = "formula",
        value_name = "FORMULA",
        allow_hyphen_values = true,
        requires = "sass"
    )]
    pub formulas: Vec<String>,
    /// Compile with libm and IEEE division instead of approximate hardware math.
    #[arg(long, requires = "sass")]
    pub exact_math: bool,
    /// Inline every formula into its kernels (default: inline unless it uses sin/cos/tan).
    #[arg(long, requires = "sass", conflicts_with = "call")]
    pub inline: bool,
    /// Call every formula from its kernels.
    #[arg(long, requires = "sass")]
    pub call: bool,
    /// Fail when a kernel exceeds this committed budget (JSON) by more than its tolerance.
    #[arg(long, value_name = "FILE", requires = "sass")]
    pub check: Option<std::path::PathBuf>,
    /// Write the measured figures to this file as a budget.
    #[arg(long, value_name = "FILE", requires = "sass")]
    pub write_budget: Option<std::path::PathBuf>,
    /// Report the per-formula kernels of this CUDA C file (e.g. an exported
    /// NAME.cu) instead of compiling formulas.
    #[arg(long, value_name = "FILE", requires = "sass", conflicts_with_all = ["formulas", "exact_math", "inline", "call"])]
    pub source: Option<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DefsArg {
    /// Extra definitions file, e.g. a line `hardtanh(a) = clamp(a, -1, 1)`.
    #[arg(long, value_name = "FILE")]
    pub defs: Option<std::path::PathBuf>,
}

/// Run the CLI; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Plain text, control characters of the user's input escaped.
            commands::note(e.render().to_string().trim_end());
            return e.exit_code();
        }
        Err(e) => {
            // --help and --version: clap ignores a closed stdout.
            let _ = e.print();
            return e.exit_code();
        }
    };
    let mut out = std::io::stdout().lock();
    let result = commands::run(cli.command, &mut out).and_then(|code| {
        std::io::Write::flush(&mut out).map_err(commands::stdout_error)?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(e) if reader_went_away(&e) => 0,
        Err(e) => {
            commands::note(flags::render(&e));
            e.exit_code()
        }
    }
}

/// Standard output was closed by its reader (EPIPE): like `| head`
/// stopping `yes`, nothing is wrong.
fn reader_went_away(e: &Error) -> bool {
    matches!(e, Error::Io { path, source }
        if path == commands::STDOUT && source.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap checks its own configuration (argument ids named by `requires`
    /// and `conflicts_with`, groups, duplicate flags) only in debug builds:
    /// this runs those checks in any build.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
