//! The named primitive sets and a user's file of definitions.
//!
//! * `seed`: the seed experiments' set, `log1p_safe sin cos sigmoid_boost
//!   safe_add safe_sub safe_mul safe_div`, terminals `ARG0` and `1.0`.
//! * `extended`: `seed` plus every other named primitive of PRIMITIVES.md,
//!   in the table's order. Aliases are kept as listed (`relu_like` and
//!   `relu`, `silu` and `swish`, `gelu_like` and `gelu_tanh`, `sin` and
//!   `safe_sin`, `cos` and `safe_cos`), so each of those functions is drawn
//!   twice as often as a function without an alias.
//! * `swish`: the unary and binary functions of Ramachandran et al. (2017),
//!   defined where needed in `grammar/swish.act` (see [`SWISH_MAPPING`]),
//!   terminals `ARG0` and `1.0`.
//! * a file: every definition in it becomes a primitive (a definition
//!   without parameters becomes a terminal `name()`), plus `ARG0` and `1.0`.
//!   Its definitions may use the prelude.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::ir::Library;

use super::pset::{PrimitiveSet, Terminal};

/// The definitions the `swish` set adds to the prelude.
pub const SWISH_DEFS: &str = include_str!("../../grammar/swish.act");

/// The names of the named sets, for help texts.
pub const NAMED_SETS: [&str; 3] = ["seed", "extended", "swish"];

/// A primitive set as a user names it (`--primitives`, a search's
/// `"primitives"`): a named set or a file of definitions. Reads any text
/// (a name that is not a set's is a path) and prints as it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetSpec {
    Seed,
    Extended,
    Swish,
    File(PathBuf),
}

impl SetSpec {
    /// Whether it names a built-in set.
    pub fn is_named(&self) -> bool {
        self.file().is_none()
    }

    /// The definitions file it names, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SetSpec::File(p) => Some(p),
            _ => None,
        }
    }

    /// The set ([`PrimitiveSet::resolve`]).
    pub fn resolve(&self) -> Result<PrimitiveSet> {
        PrimitiveSet::resolve(&self.to_string())
    }
}

impl FromStr for SetSpec {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<SetSpec, Self::Err> {
        Ok(match s {
            "seed" => SetSpec::Seed,
            "extended" => SetSpec::Extended,
            "swish" => SetSpec::Swish,
            path => SetSpec::File(PathBuf::from(path)),
        })
    }
}

impl fmt::Display for SetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetSpec::Seed => f.write_str("seed"),
            SetSpec::Extended => f.write_str("extended"),
            SetSpec::Swish => f.write_str("swish"),
            SetSpec::File(p) => write!(f, "{}", p.display()),
        }
    }
}

const SEED: [(&str, usize); 8] = [
    ("log1p_safe", 1),
    ("sin", 1),
    ("cos", 1),
    ("sigmoid_boost", 1),
    ("safe_add", 2),
    ("safe_sub", 2),
    ("safe_mul", 2),
    ("safe_div", 2),
];

/// PRIMITIVES.md's named primitives that `seed` lacks, in table order.
const EXTENDED_EXTRA: [(&str, usize); 15] = [
    ("safe_sin", 1),
    ("safe_cos", 1),
    ("safe_tan", 1),
    ("sigmoid_like", 1),
    ("softsign", 1),
    ("relu_like", 1),
    ("relu", 1),
    ("gelu_like", 1),
    ("gelu_tanh", 1),
    ("gelu", 1),
    ("gated_gate", 2),
    ("silu", 1),
    ("swish", 1),
    ("softplus", 1),
    ("mish", 1),
];

/// Each function of the paper's search space, as written there, and the
/// primitive it maps to (β = 1, ε = 1e-3; see `grammar/swish.act`). `x`
/// and `βx` share `ident`; the constant `β` is the terminal `1.0`.
pub const SWISH_MAPPING: [(&str, &str, usize); 35] = [
    ("x", "ident", 1),
    ("βx", "ident", 1),
    ("−x", "neg", 1),
    ("|x|", "abs", 1),
    ("x²", "square", 1),
    ("x³", "cube", 1),
    ("√x", "sqrt", 1),
    ("x + β", "shift", 1),
    ("log(|x| + ε)", "log_abs_eps", 1),
    ("exp(x)", "exp", 1),
    ("sin(x)", "sin", 1),
    ("cos(x)", "cos", 1),
    ("sinh(x)", "sinh", 1),
    ("cosh(x)", "cosh", 1),
    ("tanh(x)", "tanh", 1),
    ("sinh⁻¹(x)", "asinh", 1),
    ("tan⁻¹(x)", "atan", 1),
    ("sinc(x)", "sinc", 1),
    ("max(x, 0)", "relu", 1),
    ("min(x, 0)", "min0", 1),
    ("σ(x)", "sigmoid", 1),
    ("log(1 + eˣ)", "softplus", 1),
    ("exp(−x²)", "exp_neg_sq", 1),
    ("erf(x)", "erf", 1),
    ("β", "1.0", 0),
    ("x₁ + x₂", "add", 2),
    ("x₁ · x₂", "mul", 2),
    ("x₁ − x₂", "sub", 2),
    ("x₁ / (x₂ + ε)", "div_eps", 2),
    ("max(x₁, x₂)", "max", 2),
    ("min(x₁, x₂)", "min", 2),
    ("σ(x₁) · x₂", "sigmoid_mul", 2),
    ("exp(−β(x₁ − x₂)²)", "exp_neg_sqdiff", 2),
    ("exp(−β|x₁ − x₂|)", "exp_neg_absdiff", 2),
    ("βx₁ + (1 − β)x₂", "beta_mix", 2),
];

fn standard() -> Arc<Library> {
    static STD: OnceLock<Arc<Library>> = OnceLock::new();
    STD.get_or_init(|| Arc::new(Library::standard().clone()))
        .clone()
}

fn swish_library() -> Arc<Library> {
    static LIB: OnceLock<Arc<Library>> = OnceLock::new();
    LIB.get_or_init(|| {
        let mut lib = Library::standard().clone();
        if let Err(d) = lib.extend(SWISH_DEFS, "grammar/swish.act") {
            panic!(
                "the built-in swish definitions are invalid:\n{}",
                d.render()
            );
        }
        Arc::new(lib)
    })
    .clone()
}

/// `ARG0` and `1.0`, the terminals of every named set.
fn add_standard_terminals(set: &mut PrimitiveSet) -> Result<()> {
    set.add_terminal(Terminal::Input)?;
    set.add_terminal(Terminal::Const(1.0))
}

fn build(name: &str, lib: Arc<Library>, prims: &[(&str, usize)]) -> PrimitiveSet {
    let mut set = PrimitiveSet::new(name, lib);
    for (p, arity) in prims {
        set.add_primitive(p, *arity)
            .unwrap_or_else(|e| panic!("built-in set `{name}`: {e}"));
    }
    add_standard_terminals(&mut set).expect("fresh set");
    set
}

impl PrimitiveSet {
    /// The seed experiments' set.
    pub fn seed() -> PrimitiveSet {
        build("seed", standard(), &SEED)
    }

    /// `seed` plus the other named primitives of PRIMITIVES.md.
    pub fn extended() -> PrimitiveSet {
        let all: Vec<(&str, usize)> = SEED.iter().chain(&EXTENDED_EXTRA).copied().collect();
        build("extended", standard(), &all)
    }

    /// The search space of Ramachandran et al. (2017).
    pub fn swish() -> PrimitiveSet {
        let mut prims: Vec<(&str, usize)> = Vec::new();
        for (_, name, arity) in SWISH_MAPPING {
            if arity > 0 && !prims.iter().any(|(p, _)| *p == name) {
                prims.push((name, arity));
            }
        }
        build("swish", swish_library(), &prims)
    }

    /// Every definition of the file at `path` as a primitive (or, without
    /// parameters, a terminal), plus `ARG0` and `1.0`. Errors name the
    /// file and line.
    pub fn from_file(path: &Path) -> Result<PrimitiveSet> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, e))?;
        let mut lib = Library::standard().clone();
        let before = lib.definitions().count();
        lib.extend(&text, &shown)?;
        let defs: Vec<(String, usize)> = lib
            .definitions()
            .skip(before)
            .map(|d| (d.def.name.clone(), d.def.params.len()))
            .collect();
        if defs.is_empty() {
            return Err(Error::Input {
                path: shown,
                line: None,
                message: "defines no functions; write definitions such as `my_act(a) = a * sigmoid(a)`, one per line".into(),
            });
        }
        let mut set = PrimitiveSet::new(shown.clone(), Arc::new(lib));
        for (name, arity) in defs {
            match arity {
                0 => set.add_terminal(Terminal::Call(name))?,
                _ => set.add_primitive(&name, arity)?,
            }
        }
        add_standard_terminals(&mut set)?;
        set.check().map_err(|e| Error::Input {
            path: shown,
            line: None,
            message: format!("{e}: define at least one function with parameters"),
        })?;
        Ok(set)
    }

    /// `seed`, `extended`, `swish`, or the path of a definitions file.
    pub fn resolve(spec: &str) -> Result<PrimitiveSet> {
        match spec {
            "seed" => Ok(PrimitiveSet::seed()),
            "extended" => Ok(PrimitiveSet::extended()),
            "swish" => Ok(PrimitiveSet::swish()),
            path if Path::new(path).is_file() => PrimitiveSet::from_file(Path::new(path)),
            other => Err(Error::Usage(format!(
                "`{other}` is neither a named primitive set ({}) nor a definitions file",
                NAMED_SETS.join(", ")
            ))),
        }
    }
}
