//! The crate error: one variant per stage that can fail on bad input or a
//! broken environment. Numerical failure and exhausted budgets are values,
//! not errors.

use std::fmt;

use actforge_formula::syntax::Diagnostic;

#[derive(Debug)]
pub enum Error {
    /// Bad formula or definitions text: renders with a caret.
    Syntax(Diagnostic),
    /// A data or input file problem, with the file and line.
    Input {
        path: String,
        line: Option<usize>,
        message: String,
    },
    /// I/O on a named path.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A request that makes no sense: a value the caller gave (a path, a
    /// name, a shard) that cannot be served. Exit status 2.
    Usage(String),
    /// A setting's value, or a combination of settings, that makes no
    /// sense. The message names the settings as [`Setting`]s: the library
    /// shows their keys (`` `pop` ``), the command line their flags
    /// (`--pop`). Exit status 2.
    Setting(Named),
    /// The operation was started with sound inputs and could not be
    /// carried out (a worker that did not start, a baseline that failed to
    /// train). Exit status 1.
    Failed(String),
    /// A broken internal invariant: a bug in actforge, never the user's
    /// input. Exit status 1.
    Internal(String),
    /// A library or tool the operation needs is not installed.
    Missing {
        what: String,
        detail: String,
        hint: String,
    },
    /// NVRTC rejected generated code: the evidence is kept.
    Compile {
        message: String,
        options: Vec<String>,
        log: String,
        source_code: String,
    },
    /// A CUDA driver call failed.
    Cuda(String),
    /// A tensor operation failed (shape or device): a bug or a broken
    /// environment, never a numerical result (NaN/Inf are values).
    Tensor(candle_core::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! settings {
    ($($(#[$doc:meta])* $v:ident = $key:literal,)*) => {
        /// A setting the library can refuse, by its key (the name it has in
        /// a run's `config.json` where it is recorded there). The library
        /// names settings only through this type; `cli` spells each as its
        /// flag.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Setting {
            $($(#[$doc])* $v,)*
        }

        impl Setting {
            pub const ALL: &'static [Setting] = &[$(Setting::$v,)*];

            /// The setting's key, e.g. `max_seeds`.
            pub fn key(self) -> &'static str {
                match self {
                    $(Setting::$v => $key,)*
                }
            }
        }
    };
}

settings! {
    // The search.
    Primitives = "primitives",
    Ephemeral = "ephemeral",
    IncludeKnown = "include_known",
    StartWith = "start_with",
    Pop = "pop",
    Lambda = "lambda",
    Gens = "gens",
    Algorithm = "algorithm",
    Selection = "selection",
    TournamentSize = "tournament_size",
    Parsimony = "parsimony",
    Elite = "elite",
    Cxpb = "cxpb",
    Mutpb = "mutpb",
    Mutations = "mutations",
    MaxHeight = "max_height",
    MaxSize = "max_size",
    InitMin = "init_min",
    InitMax = "init_max",
    Objective = "objective",
    Fingerprint = "fingerprint",
    Hof = "hof",
    Seed = "seed",
    Seeds = "seeds",
    MaxSeeds = "max_seeds",
    Racing = "racing",
    FinalSteps = "final_steps",
    RetrainTop = "retrain_top",
    RetrainSeeds = "retrain_seeds",
    Lockstep = "lockstep",
    LockstepSize = "lockstep_size",
    Export = "export",
    CompileCheck = "compile_check",
    Evaluator = "evaluator",
    SyntheticSleepMs = "synthetic_sleep_ms",
    // Training.
    Task = "task",
    Steps = "steps",
    Epochs = "epochs",
    BatchSize = "batch_size",
    Thin = "thin",
    Device = "device",
    Preset = "preset",
    Weights = "weights",
    Vocab = "vocab",
    Lr = "lr",
    ValidFraction = "valid_fraction",
    TestFraction = "test_fraction",
    Fraction = "fraction",
    EvalSentences = "eval_sentences",
    Activations = "activations",
    // Scale-out.
    Workers = "workers",
    Devices = "devices",
    Executor = "executor",
    EvalTimeout = "eval_timeout",
    RayAddress = "ray_address",
    RayPython = "ray_python",
    Shard = "shard",
    // Outputs and tools.
    Out = "out",
    Resume = "resume",
    Force = "force",
    Name = "name",
    Arch = "arch",
    Format = "format",
    Dtype = "dtype",
    Elems = "elems",
    Iters = "iters",
    Singles = "singles",
    Batch = "batch",
    Variant = "variant",
    Range = "range",
    Samples = "samples",
    // Added for settings.
    /// The flag that turns lockstep off (`lockstep` names the setting
    /// itself, whose flag turns it on).
    NoLockstep = "no_lockstep",
}

// A setting written into a message (`format!("{} must be …", Setting::Pop)`)
// is kept as a private-use code point pair around its index, so that the
// message can be shown with keys or with flags after it was made.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

impl fmt::Display for Setting {
    /// The marker that [`Named`] resolves: only meant inside the message of
    /// [`Error::Setting`] (made with [`Error::setting`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = Setting::ALL.iter().position(|s| s == self).expect("listed");
        write!(f, "{OPEN}{i}{CLOSE}")
    }
}

/// A message that names settings: made with `format!` and [`Setting`]s
/// among its arguments, shown by [`Named::render`] with each setting
/// spelled as the caller likes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named(String);

impl Named {
    /// The message, each setting spelled by `spell`.
    pub fn render(&self, mut spell: impl FnMut(Setting) -> String) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find(OPEN) {
            out.push_str(&rest[..start]);
            let after = &rest[start + OPEN.len_utf8()..];
            let Some(end) = after.find(CLOSE) else {
                out.push_str(&rest[start..]);
                return out;
            };
            match after[..end]
                .parse::<usize>()
                .ok()
                .and_then(|i| Setting::ALL.get(i))
            {
                Some(s) => out.push_str(&spell(*s)),
                None => {
                    out.push_str(&rest[start..start + OPEN.len_utf8() + end + CLOSE.len_utf8()])
                }
            }
            rest = &after[end + CLOSE.len_utf8()..];
        }
        out.push_str(rest);
        out
    }

    /// The settings the message names, in order.
    pub fn settings(&self) -> Vec<Setting> {
        let mut found = Vec::new();
        self.render(|s| {
            found.push(s);
            String::new()
        });
        found
    }
}

impl fmt::Display for Named {
    /// Settings by their keys in backticks: how the library names them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(|s| format!("`{}`", s.key())))
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Syntax(d)
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Tensor(e)
    }
}

impl Error {
    /// A refused setting: `message` names settings by writing [`Setting`]s
    /// into it, e.g. `format!("{} must be at least 1", Setting::Pop)`.
    pub fn setting(message: impl Into<String>) -> Error {
        Error::Setting(Named(message.into()))
    }

    /// The exit status of a command that failed with this error: 2 for a
    /// request or setting that makes no sense, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Setting(_) => 2,
            _ => 1,
        }
    }

    /// The error shown with each setting it names spelled by `spell` (the
    /// command line passes its flags).
    pub fn render(&self, spell: impl FnMut(Setting) -> String) -> String {
        Named(Raw(self).to_string()).render(spell)
    }

    pub fn io(path: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    /// Settings by their keys: how the library names them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(|s| format!("`{}`", s.key())))
    }
}

/// The error's text with the settings it names still as markers: any
/// message (a hint in `Missing`, a wrapped setting error in `Usage`) may
/// name settings, and [`Error::render`] spells them.
struct Raw<'a>(&'a Error);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::Syntax(d) => write!(f, "{d}"),
            Error::Input {
                path,
                line: Some(l),
                message,
            } => write!(f, "error: {path}:{l}: {message}"),
            Error::Input {
                path,
                line: None,
                message,
            } => write!(f, "error: {path}: {message}"),
            Error::Io { path, source } => write!(f, "error: {path}: {source}"),
            Error::Usage(m) => write!(f, "error: {m}"),
            Error::Setting(Named(m)) => write!(f, "error: {m}"),
            Error::Failed(m) => write!(f, "error: {m}"),
            Error::Internal(m) => write!(
                f,
                "error: internal: {m} (a bug in actforge: please report it)"
            ),
            Error::Missing { what, detail, hint } => {
                write!(
                    f,
                    "error: {what} is not available: {detail}\n  = help: {hint}"
                )
            }
            Error::Compile {
                message,
                options,
                log,
                source_code,
            } => {
                write!(f, "error: {message}\n  options: {}\n", options.join(" "))?;
                writeln!(f, "  log:")?;
                for l in log.lines() {
                    writeln!(f, "    {l}")?;
                }
                write!(
                    f,
                    "  (generated source: {} lines, kept in the error)",
                    source_code.lines().count()
                )
            }
            Error::Cuda(m) => write!(f, "error: CUDA: {m}"),
            Error::Tensor(e) => write!(f, "error: tensor: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Tensor(e) => Some(e),
            _ => None,
        }
    }
}
