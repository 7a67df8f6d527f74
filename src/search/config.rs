//! Every setting of a search, as recorded in the run directory's
//! `config.json` and read back by `--resume`: the primitive set, the
//! population and its operators, the objectives, the dedup and screening
//! switches, the training recipe handed to the fitness evaluator, and the
//! seeds. [`Settings::hash`] identifies a run: a checkpoint whose hash
//! differs belongs to another run.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::fitness::Task;
use crate::gp::sets::SetSpec;
use crate::gp::{syntactic_hash, Ephemeral, Limit, Mutation, PrimitiveSet, Variation};
use crate::ir::seeds::SEEDS;
use crate::runtime::Arch;
use crate::simplify::hash_hex;

use super::json::text;
use super::lockstep::Lockstep;
use super::seeding::{final_seeds, Seeding};
use crate::gp::objectives::{Objectives, Sense};

/// The known activations `--include` seeds a population with.
pub const KNOWN: [(&str, &str); 4] = [
    ("gelu", "gelu(ARG0)"),
    ("silu", "silu(ARG0)"),
    SEEDS[0],
    SEEDS[1],
];

/// The name under which a user's primitives file is copied into the run
/// directory (a resumed run reads the copy).
pub const PRIMITIVES_COPY: &str = "primitives.act";

/// The generational scheme (`"mu-plus-lambda"` or `"simple"` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// DEAP's `eaMuPlusLambda`: λ offspring by `varOr`, survivors chosen
    /// from parents and offspring together.
    MuPlusLambda,
    /// DEAP's `eaSimple`: parents by selection, offspring by `varAnd`
    /// replace the population (the elite excepted).
    Simple,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::MuPlusLambda => "mu-plus-lambda",
            Algorithm::Simple => "simple",
        }
    }

    pub fn parse(s: &str) -> Result<Algorithm> {
        match s {
            "mu-plus-lambda" => Ok(Algorithm::MuPlusLambda),
            "simple" => Ok(Algorithm::Simple),
            other => Err(Error::Usage(format!(
                "unknown algorithm `{other}`: use mu-plus-lambda or simple"
            ))),
        }
    }
}

/// Single- or two-objective search (in JSON its name, read as
/// [`Objective::parse`] reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Objective {
    /// Maximise the fitness.
    Score,
    /// Maximise the fitness and minimise the node count of the simplified
    /// formula (NSGA-II).
    ScoreComplexity,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Score => "score",
            Objective::ScoreComplexity => "score,complexity",
        }
    }

    pub fn parse(s: &str) -> Result<Objective> {
        match s.replace(' ', "").as_str() {
            "score" => Ok(Objective::Score),
            "score,complexity" => Ok(Objective::ScoreComplexity),
            other => Err(Error::Usage(format!(
                "unknown objective `{other}`: use score or score,complexity"
            ))),
        }
    }

    pub fn objectives(self) -> Objectives {
        match self {
            Objective::Score => Objectives::maximize(),
            Objective::ScoreComplexity => Objectives::new(vec![Sense::Maximize, Sense::Minimize]),
        }
    }
}

impl TryFrom<String> for Objective {
    type Error = Error;
    fn try_from(s: String) -> Result<Objective> {
        Objective::parse(&s)
    }
}

impl From<Objective> for &'static str {
    fn from(o: Objective) -> &'static str {
        o.name()
    }
}

/// How parents (simple) or survivors (μ+λ, one objective) are selected
/// (in JSON `{"kind": "tournament", "size": 3}` and so on).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SelectionKind {
    Tournament { size: usize },
    DoubleTournament { fitness_size: usize, parsimony: f64 },
}

impl SelectionKind {
    pub fn name(&self) -> &'static str {
        match self {
            SelectionKind::Tournament { .. } => "tournament",
            SelectionKind::DoubleTournament { .. } => "double-tournament",
        }
    }
}

/// Which evaluator scores candidates (in JSON `{"kind": "train"}` or
/// `{"kind": "synthetic", "sleep_ms": 5}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EvaluatorKind {
    /// The training recipe (`crate::fitness`).
    Train,
    /// The synthetic stand-in ([`super::synthetic`]), with a sleep per job.
    Synthetic { sleep_ms: u64 },
}

/// The training flags of a search: `super::training::recipe` turns them
/// into the `fitness::Recipe` (the task's defaults with these overrides).
/// The fields are in the order `config.json` has them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// `qa`, `translate-gpt` or `translate-t5`.
    pub task: Task,
    /// Training steps per candidate (`None`: the recipe's default).
    pub steps: Option<usize>,
    /// Sequences per batch (`None`: the recipe's default).
    pub batch_size: Option<usize>,
    /// Share of the training data kept (stratified thinning).
    pub thin: f64,
    /// `cpu`, `cuda` or `cuda:N` (written so in `config.json`).
    #[serde(with = "text")]
    pub device: Device,
    /// Model preset (`None`: the task's default).
    pub preset: Option<String>,
    /// Weights of the fitness terms (`None`: the recipe's default), as
    /// their text; the key only when set, so that the settings (and their
    /// hash) of runs made before `--weights` stay what they were.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "text::opt")]
    pub weights: Option<crate::metrics::Weights>,
}

/// Formulas of the final verdict by default (the hall of fame's best),
/// and its seeds: at 2 × 28 runs (and GELU's 28) the verdict costs what 3 ×
/// 20 did, and the default search's paired differences resolve 1 % of
/// GELU's fitness at 80 % power and α = 0.05 (0.42 % and 0.85 % measured
/// for its two formulas, where 20 seeds gave 0.46 % and 1.01 %; see the
/// README's search section).
pub const RETRAIN_TOP: usize = 2;
pub const RETRAIN_SEEDS: usize = 28;

/// Highest `--max-height` (the parser nests at most 256 levels).
pub const MAX_HEIGHT: usize = 200;

/// Every setting of a search; its JSON (serde, fields in this order) is
/// the `settings` object of `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `seed`, `extended`, `swish` or a definitions file (its text in
    /// JSON).
    #[serde(with = "text")]
    pub primitives: SetSpec,
    /// An ephemeral random constant, e.g. `uniform(-1,1,2)`, as the user
    /// wrote it: [`Ephemeral`] prints its own spelling
    /// (`uniform(-1.0,1.0,2)`), which would change the settings' text and
    /// hash, so the text is kept and parsed where it is used.
    pub ephemeral: Option<String>,
    /// Seed the population with [`KNOWN`].
    pub include_known: bool,
    /// More formulas to seed the population with.
    pub start_with: Vec<String>,
    /// μ: the population size.
    pub pop: usize,
    /// λ: offspring per generation (μ+λ); the simple algorithm makes μ.
    pub lambda: usize,
    pub gens: usize,
    pub algorithm: Algorithm,
    pub selection: SelectionKind,
    /// Best individuals always kept (single objective).
    pub elite: usize,
    pub cxpb: f64,
    pub mutpb: f64,
    /// By their names in JSON (`"node-replacement"`).
    #[serde(with = "mutation_names")]
    pub mutations: Vec<Mutation>,
    pub max_height: usize,
    pub max_size: Option<usize>,
    /// Heights of the initial trees (ramped half-and-half).
    pub init_min: usize,
    pub init_max: usize,
    pub objective: Objective,
    /// The functional-fingerprint dedup layer.
    pub fingerprint: bool,
    pub hof: usize,
    /// The search's seed (selection, variation, initial population).
    pub seed: u64,
    /// Training seeds per candidate (fitness = their mean).
    pub seeds: usize,
    pub train: TrainSettings,
    pub evaluator: EvaluatorKind,
    /// Compile each generation's kernels with NVRTC even on the CPU.
    pub compile_check: bool,
    /// SM architecture for compiles and the exported kernel (the number
    /// in JSON: `90`).
    #[serde(with = "arch_number")]
    pub arch: Arch,
    /// Hall-of-fame entries retrained against GELU at the end.
    pub retrain_top: usize,
    pub retrain_seeds: usize,
    /// Export the best formula's kernel package at the end.
    pub export: bool,
    /// How seeds are spent: the final verdict's steps ([`Seeding`]);
    /// the key only when not [`Seeding::LEGACY`].
    #[serde(
        default = "Seeding::legacy",
        skip_serializing_if = "Seeding::is_legacy",
        deserialize_with = "Seeding::or_legacy"
    )]
    pub seeding: Seeding,
    /// Candidate-seeds trained as lockstep populations ([`Lockstep`]);
    /// the key only when on.
    #[serde(default, skip_serializing_if = "Lockstep::is_off")]
    pub lockstep: Lockstep,
}

/// The constant defaults of a search's settings, each written once: the
/// CLI's flags show them (`default_value_t = defaults::POP`),
/// [`Settings::default`] and `super::request::Request::default` take
/// them. Defaults that depend on another setting are resolved in one
/// place, `super::request::Request::resolve`.
pub mod defaults {
    use crate::fitness::Task;
    use crate::runtime::Arch;

    use super::{Algorithm, Objective};

    pub const TASK: Task = Task::Qa;
    pub const POP: usize = 12;
    pub const GENS: usize = 5;
    pub const ALGORITHM: Algorithm = Algorithm::MuPlusLambda;
    pub const OBJECTIVE: Objective = Objective::Score;
    pub const TOURNAMENT_SIZE: usize = 3;
    pub const PARSIMONY: f64 = 1.4;
    pub const ELITE: usize = 1;
    pub const MAX_HEIGHT: usize = 17;
    pub const INIT_MIN: usize = 1;
    pub const INIT_MAX: usize = 3;
    pub const HOF: usize = 10;
    pub const SEED: u64 = 0;
    pub const SEEDS: usize = 1;
    pub const THIN: f64 = 0.5;
    pub const ARCH: Arch = Arch(90);
    pub const SYNTHETIC_SLEEP_MS: u64 = 0;
    pub use super::super::seeding::MAX_SEEDS;
    pub use super::{RETRAIN_SEEDS, RETRAIN_TOP};

    /// Crossover and mutation probabilities of `algorithm`: DEAP's
    /// examples' 0.6 and 0.3 for (μ+λ), 0.5 and 0.2 for the simple one.
    pub fn rates(algorithm: Algorithm) -> (f64, f64) {
        match algorithm {
            Algorithm::MuPlusLambda => (0.6, 0.3),
            Algorithm::Simple => (0.5, 0.2),
        }
    }
}

impl Default for Settings {
    /// The defaults on the CPU with lockstep off (no device probed).
    fn default() -> Settings {
        let (cxpb, mutpb) = defaults::rates(defaults::ALGORITHM);
        Settings {
            primitives: SetSpec::Seed,
            ephemeral: None,
            include_known: false,
            start_with: Vec::new(),
            pop: defaults::POP,
            lambda: defaults::POP,
            gens: defaults::GENS,
            algorithm: defaults::ALGORITHM,
            selection: SelectionKind::Tournament {
                size: defaults::TOURNAMENT_SIZE,
            },
            elite: defaults::ELITE,
            cxpb,
            mutpb,
            mutations: default_mutations(false),
            max_height: defaults::MAX_HEIGHT,
            max_size: None,
            init_min: defaults::INIT_MIN,
            init_max: defaults::INIT_MAX,
            objective: defaults::OBJECTIVE,
            fingerprint: true,
            hof: defaults::HOF,
            seed: defaults::SEED,
            seeds: defaults::SEEDS,
            train: TrainSettings {
                task: defaults::TASK,
                steps: None,
                thin: defaults::THIN,
                device: Device::Cpu,
                preset: None,
                batch_size: None,
                weights: None,
            },
            evaluator: EvaluatorKind::Train,
            compile_check: false,
            arch: defaults::ARCH,
            retrain_top: RETRAIN_TOP,
            retrain_seeds: RETRAIN_SEEDS,
            export: true,
            seeding: Seeding::DEFAULT,
            lockstep: Lockstep::LEGACY,
        }
    }
}

/// Uniform, node-replacement, shrink and insert (and ephemeral-one when
/// the set has ephemeral constants), equally likely.
pub fn default_mutations(ephemeral: bool) -> Vec<Mutation> {
    let mut m = vec![
        Mutation::UNIFORM,
        Mutation::NodeReplacement,
        Mutation::Shrink,
        Mutation::Insert,
    ];
    if ephemeral {
        m.push(Mutation::Ephemeral(crate::gp::EphemeralMode::One));
    }
    m
}

/// Serde of the mutations as their names ([`Mutation::name`],
/// [`Mutation::parse`]).
mod mutation_names {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::gp::Mutation;

    pub fn serialize<S: Serializer>(m: &[Mutation], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(Mutation::name))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Mutation>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|n| Mutation::parse(n).map_err(D::Error::custom))
            .collect()
    }
}

/// Serde of an [`Arch`] as its number (`90`), as `config.json` has it.
mod arch_number {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::runtime::Arch;

    pub fn serialize<S: Serializer>(a: &Arch, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(a.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        u32::deserialize(d).map(Arch)
    }
}

impl Settings {
    /// Check that the settings make sense together.
    pub fn check(&self) -> Result<()> {
        self.check_sizes()?;
        use crate::error::Setting as S;
        let refuse = |m: String| Err(Error::setting(m));
        if self.pop == 0 || self.lambda == 0 {
            return refuse(format!("{} and {} must be at least 1", S::Pop, S::Lambda));
        }
        if self.seeds == 0 {
            return refuse(format!("{} must be at least 1", S::Seeds));
        }
        if self.elite >= self.pop {
            return refuse(format!(
                "{} {} must be smaller than {} {}",
                S::Elite,
                self.elite,
                S::Pop,
                self.pop
            ));
        }
        if self.max_height > MAX_HEIGHT {
            return refuse(format!(
                "{} {} is above {MAX_HEIGHT} (formulas nest at most 256 levels)",
                S::MaxHeight,
                self.max_height
            ));
        }
        if self.init_min > self.init_max || self.init_max > self.max_height {
            return refuse(format!(
                "initial heights {}..{} ({} and {}) must be ordered and within {} {}",
                self.init_min,
                self.init_max,
                S::InitMin,
                S::InitMax,
                S::MaxHeight,
                self.max_height
            ));
        }
        if !(self.train.thin > 0.0 && self.train.thin <= 1.0) {
            return refuse(format!(
                "{} must be in (0, 1], not {}",
                S::Thin,
                self.train.thin
            ));
        }
        if self.objective == Objective::ScoreComplexity && self.algorithm == Algorithm::Simple {
            return refuse(format!(
                "{} score,complexity selects survivors with NSGA-II, a (μ+λ) scheme: use {} mu-plus-lambda",
                S::Objective,
                S::Algorithm
            ));
        }
        if let Some(e) = &self.ephemeral {
            Ephemeral::parse(e)?;
        }
        self.variation()?;
        self.seeding.check(self.seeds)?;
        self.lockstep.check()?;
        if self.algorithm == Algorithm::MuPlusLambda && self.cxpb + self.mutpb > 1.0 {
            return refuse(format!(
                "with mu-plus-lambda each offspring comes from crossover, mutation or a copy: {} + {} must be at most 1, not {}",
                S::Cxpb,
                S::Mutpb,
                self.cxpb + self.mutpb
            ));
        }
        match self.selection {
            SelectionKind::Tournament { size: 0 } => {
                refuse(format!("{} must be at least 1", S::TournamentSize))
            }
            SelectionKind::DoubleTournament { parsimony, .. }
                if !(1.0..=2.0).contains(&parsimony) =>
            {
                refuse(format!(
                    "{} must be in [1, 2], not {parsimony}",
                    S::Parsimony
                ))
            }
            _ => Ok(()),
        }
    }

    /// Every size against its limit (`crate::limits`), before anything is
    /// allocated: a forged `config.json` is held to the flags' limits.
    fn check_sizes(&self) -> Result<()> {
        use crate::limits::{
            BATCH_SIZE, GENERATIONS, HALL_OF_FAME, POPULATION, SEEDS, SLEEP_MS, STEPS,
        };
        POPULATION.check_usize(crate::error::Setting::Pop, self.pop)?;
        POPULATION.check_usize(crate::error::Setting::Lambda, self.lambda)?;
        GENERATIONS.check_usize(crate::error::Setting::Gens, self.gens)?;
        SEEDS.check_usize(crate::error::Setting::Seeds, self.seeds)?;
        SEEDS.check_usize(crate::error::Setting::RetrainSeeds, self.retrain_seeds)?;
        HALL_OF_FAME.check_usize(crate::error::Setting::Hof, self.hof)?;
        HALL_OF_FAME.check_usize(crate::error::Setting::RetrainTop, self.retrain_top)?;
        let aspirants = match self.selection {
            SelectionKind::Tournament { size } => size,
            SelectionKind::DoubleTournament { fitness_size, .. } => fitness_size,
        };
        POPULATION.check_usize(crate::error::Setting::TournamentSize, aspirants)?;
        if let Some(steps) = self.train.steps {
            STEPS.check_usize(crate::error::Setting::Steps, steps)?;
        }
        if let Some(b) = self.train.batch_size {
            BATCH_SIZE.check_usize(crate::error::Setting::BatchSize, b)?;
        }
        if let EvaluatorKind::Synthetic { sleep_ms } = self.evaluator {
            SLEEP_MS.check(crate::error::Setting::SyntheticSleepMs, sleep_ms)?;
        }
        Ok(())
    }

    /// The variation operators.
    pub fn variation(&self) -> Result<Variation> {
        let mutations = self.mutations.iter().map(|m| (*m, 1.0)).collect();
        Variation::new(
            self.cxpb,
            self.mutpb,
            mutations,
            Limit {
                max_height: Some(self.max_height),
                max_size: self.max_size,
            },
        )
    }

    /// The training seeds: `seed`, `seed + 1`, … (common random numbers:
    /// every candidate trains with the same ones).
    pub fn training_seeds(&self) -> Vec<u64> {
        (0..self.seeds as u64)
            .map(|i| self.seed.wrapping_add(i))
            .collect()
    }

    /// Every training seed a candidate of this search can get: `seed`, …,
    /// `seed + max_training_seeds − 1` (the fixed seeds without racing).
    pub fn seed_pool(&self) -> Vec<u64> {
        (0..self.max_training_seeds() as u64)
            .map(|i| self.seed.wrapping_add(i))
            .collect()
    }

    /// The most training seeds a candidate of this search can get.
    pub fn max_training_seeds(&self) -> usize {
        self.seeding.max_training_seeds(self.seeds)
    }

    /// The seeds of the final verdict: the `--retrain-seeds` seeds after
    /// the search's training seeds, so that none was used in the search.
    pub fn retrain_seed_list(&self) -> Vec<u64> {
        final_seeds(self.seed, self.max_training_seeds(), self.retrain_seeds)
    }

    /// The formulas that seed the population, with their labels.
    pub fn includes(&self) -> Vec<(String, String)> {
        let known = KNOWN
            .iter()
            .filter(|_| self.include_known)
            .map(|(l, f)| (l.to_string(), f.to_string()));
        let own = self
            .start_with
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("start-{}", i + 1), f.clone()));
        known.chain(own).collect()
    }

    /// The primitive set, widened to read the included formulas. A user's
    /// primitives file is read from `copy` when given (a resumed run reads
    /// the copy in its directory).
    pub fn primitive_set(&self, copy: Option<&Path>) -> Result<PrimitiveSet> {
        let mut set = match (self.named_set(), copy) {
            (true, _) | (false, None) => self.primitives.resolve()?,
            (false, Some(path)) => PrimitiveSet::from_file(path)?,
        };
        if let Some(e) = &self.ephemeral {
            set.add_ephemeral(Ephemeral::parse(e)?);
        }
        for (label, formula) in self.includes() {
            set.absorb(&formula).map_err(|e| {
                Error::Usage(format!(
                    "the formula `{formula}` ({label}) cannot seed the population: {e}"
                ))
            })?;
        }
        set.check()?;
        Ok(set)
    }

    /// Whether `primitives` names a built-in set (not a file).
    pub fn named_set(&self) -> bool {
        self.primitives.is_named()
    }

    /// The settings as JSON (the `settings` object of `config.json`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("settings are plain data")
    }

    /// Read [`Settings::to_json`]; errors name `file` and the key.
    pub fn from_json(v: &Value, file: &str) -> Result<Settings> {
        let s: Settings = super::json::typed(v, file, "the settings")?;
        // A forged file meets the flags' rules (and limits), named by file
        // and by its keys.
        s.check().map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("{file}: {m}")),
            Error::Setting(named) => Error::Usage(format!("{file}: {named}")),
            other => other,
        })?;
        Ok(s)
    }

    /// A stable hash of every setting (of their JSON text).
    pub fn hash(&self) -> u64 {
        syntactic_hash(&self.to_json().to_string())
    }

    pub fn hash_hex(&self) -> String {
        hash_hex(self.hash())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_round_trip_through_json() {
        let mut s = Settings {
            ephemeral: Some("uniform(-1,1,2)".into()),
            start_with: vec!["sin(ARG0)".into()],
            selection: SelectionKind::DoubleTournament {
                fitness_size: 4,
                parsimony: 1.4,
            },
            evaluator: EvaluatorKind::Synthetic { sleep_ms: 5 },
            max_size: Some(40),
            ..Settings::default()
        };
        s.train.steps = Some(100);
        let back = Settings::from_json(&s.to_json(), "config.json").unwrap();
        assert_eq!(back, s);
        assert_eq!(back.hash(), s.hash());
        // Fitness weights: recorded when set, absent (the default) in runs
        // made before `--weights`, whose hash stays the same.
        assert!(s.to_json()["train"].get("weights").is_none());
        let mut w = s.clone();
        w.train.weights = Some("ppl=1,acc=1".parse().unwrap());
        let back = Settings::from_json(&w.to_json(), "config.json").unwrap();
        assert_eq!(back, w);
        assert_ne!(w.hash(), s.hash());
        let mut other = s.clone();
        other.pop += 1;
        assert_ne!(other.hash(), s.hash());
    }

    #[test]
    fn inconsistent_settings_are_usage_errors() {
        let bad = [
            Settings {
                elite: 16,
                ..Settings::default()
            },
            Settings {
                cxpb: 0.8,
                mutpb: 0.3,
                ..Settings::default()
            },
            Settings {
                objective: Objective::ScoreComplexity,
                algorithm: Algorithm::Simple,
                ..Settings::default()
            },
        ];
        // Refused settings, named as settings (exit status 2); the
        // command line shows them as flags.
        for (s, flags) in bad.into_iter().zip([
            "--elite 16 must be smaller than --pop 12",
            "--cxpb + --mutpb must be at most 1",
            "--objective score,complexity selects survivors with NSGA-II",
        ]) {
            let e = s.check().unwrap_err();
            assert!(matches!(e, Error::Setting(_)), "{s:?}");
            assert_eq!(e.exit_code(), 2);
            assert!(crate::cli::flags::render(&e).contains(flags), "{e}");
        }
        // An unknown mutation cannot be a value of the settings any more:
        // reading one is refused.
        let mut v = Settings::default().to_json();
        v["mutations"] = json!(["nope"]);
        let e = Settings::from_json(&v, "config.json").unwrap_err();
        assert!(e.to_string().contains("unknown mutation `nope`"), "{e}");
    }

    /// The typed fields keep their text in JSON: the primitive set (a
    /// name or a path), the task, the mutations and the arch.
    #[test]
    fn typed_fields_keep_their_text() {
        let mut v = Settings::default().to_json();
        for (key, text) in [
            ("primitives", json!("extended")),
            ("primitives", json!("defs/my set.act")),
            ("mutations", json!(["shrink", "ephemeral-all"])),
            ("arch", json!(120)),
        ] {
            v[key] = text.clone();
            let s = Settings::from_json(&v, "config.json").unwrap();
            assert_eq!(s.to_json()[key], text);
        }
        let s = Settings::from_json(&v, "config.json").unwrap();
        assert_eq!(
            s.primitives,
            SetSpec::File(std::path::PathBuf::from("defs/my set.act"))
        );
        assert!(!s.named_set());
        assert_eq!(s.arch, Arch(120));
        assert_eq!(
            s.mutations[1],
            Mutation::Ephemeral(crate::gp::EphemeralMode::All)
        );
        for t in Task::ALL {
            v["train"]["task"] = json!(t.name());
            assert_eq!(
                Settings::from_json(&v, "config.json").unwrap().train.task,
                t
            );
        }
        v["train"]["task"] = json!("qna");
        let e = Settings::from_json(&v, "config.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("qna") && e.contains("`task`"), "{e}");
    }

    #[test]
    fn includes_widen_the_set() {
        let s = Settings {
            include_known: true,
            ..Settings::default()
        };
        let set = s.primitive_set(None).unwrap();
        assert!(set.primitive_index("gelu", 1).is_some());
        assert!(set.primitive_index("gated_gate", 2).is_some());
        assert_eq!(s.includes().len(), 4);
    }

    /// With racing, a candidate can train at up to `--max-seeds` seeds
    /// (`seed`, …, `seed + max_seeds − 1`): the final verdict's seeds come
    /// after all of them.
    #[test]
    fn final_seeds_follow_the_most_seeds_a_candidate_can_earn() {
        use crate::search::seeding::Racing;
        let fixed = Settings {
            seed: 10,
            retrain_seeds: 2,
            ..before()
        };
        assert_eq!(fixed.retrain_seed_list(), vec![11, 12]);
        let raced = Settings {
            seeding: Seeding {
                final_steps: None,
                racing: Some(Racing { max_seeds: 4 }),
            },
            ..fixed.clone()
        };
        raced.check().unwrap();
        assert_eq!(raced.max_training_seeds(), 4);
        assert_eq!(raced.seed_pool(), vec![10, 11, 12, 13]);
        assert_eq!(raced.training_seeds(), vec![10]);
        assert_eq!(fixed.seed_pool(), fixed.training_seeds());
        assert_eq!(raced.retrain_seed_list(), vec![14, 15]);
        let e = Settings { seeds: 2, ..raced }.check().unwrap_err();
        let e = crate::cli::flags::render(&e);
        assert!(e.contains("without --max-seeds"), "{e}");
    }

    /// The defaults of runs made before the held-out verdict (3 final
    /// seeds): the pinned texts are theirs.
    fn before() -> Settings {
        Settings {
            retrain_top: 3,
            retrain_seeds: 3,
            seeding: Seeding::LEGACY,
            ..Settings::default()
        }
    }

    /// The JSON of the settings (and so their hash, which checkpoints and
    /// worker batches are checked against) is a file format: old run
    /// directories must open and resume. The fixture was written by an
    /// earlier build; the other values were pinned before the settings
    /// became serde types.
    #[test]
    fn settings_json_and_hash_are_stable() {
        let fixture: Value =
            serde_json::from_str(include_str!("../../tests/data/report/search/config.json"))
                .unwrap();
        let s = Settings::from_json(&fixture["settings"], "config.json").unwrap();
        assert_eq!(s.to_json(), fixture["settings"]);
        assert_eq!(s.to_json().to_string(), fixture["settings"].to_string());
        assert_eq!(s.hash_hex(), fixture["settings_hash"].as_str().unwrap());
        let mut full = Settings {
            ephemeral: Some("uniform(-1,1,2)".into()),
            include_known: true,
            start_with: vec!["sin(ARG0)".into()],
            selection: SelectionKind::DoubleTournament {
                fitness_size: 4,
                parsimony: 1.4,
            },
            evaluator: EvaluatorKind::Synthetic { sleep_ms: 5 },
            max_size: Some(40),
            compile_check: true,
            arch: Arch(80),
            ..before()
        };
        full.train.steps = Some(100);
        full.train.batch_size = Some(16);
        full.train.preset = Some("gpt-micro".into());
        full.train.device = Device::Cuda(None);
        full.train.task = Task::TranslateT5;
        let mut weighted = before();
        weighted.train.weights = Some("ppl=1,acc=1".parse().unwrap());
        for (s, text, hash) in [
            (before(), PINNED_DEFAULT, PINNED_DEFAULT_HASH),
            (full, PINNED_FULL, PINNED_FULL_HASH),
            (weighted, PINNED_WEIGHTED, PINNED_WEIGHTED_HASH),
        ] {
            assert_eq!(s.to_json().to_string(), text);
            assert_eq!(s.hash_hex(), hash);
            assert_eq!(Settings::from_json(&s.to_json(), "config.json").unwrap(), s);
        }
    }

    const PINNED_DEFAULT: &str = r#"{"primitives":"seed","ephemeral":null,"include_known":false,"start_with":[],"pop":12,"lambda":12,"gens":5,"algorithm":"mu-plus-lambda","selection":{"kind":"tournament","size":3},"elite":1,"cxpb":0.6,"mutpb":0.3,"mutations":["uniform","node-replacement","shrink","insert"],"max_height":17,"max_size":null,"init_min":1,"init_max":3,"objective":"score","fingerprint":true,"hof":10,"seed":0,"seeds":1,"train":{"task":"qa","steps":null,"batch_size":null,"thin":0.5,"device":"cpu","preset":null},"evaluator":{"kind":"train"},"compile_check":false,"arch":90,"retrain_top":3,"retrain_seeds":3,"export":true}"#;
    const PINNED_DEFAULT_HASH: &str = "fe9640657bf60b2b";
    const PINNED_FULL: &str = r#"{"primitives":"seed","ephemeral":"uniform(-1,1,2)","include_known":true,"start_with":["sin(ARG0)"],"pop":12,"lambda":12,"gens":5,"algorithm":"mu-plus-lambda","selection":{"kind":"double-tournament","fitness_size":4,"parsimony":1.4},"elite":1,"cxpb":0.6,"mutpb":0.3,"mutations":["uniform","node-replacement","shrink","insert"],"max_height":17,"max_size":40,"init_min":1,"init_max":3,"objective":"score","fingerprint":true,"hof":10,"seed":0,"seeds":1,"train":{"task":"translate-t5","steps":100,"batch_size":16,"thin":0.5,"device":"cuda","preset":"gpt-micro"},"evaluator":{"kind":"synthetic","sleep_ms":5},"compile_check":true,"arch":80,"retrain_top":3,"retrain_seeds":3,"export":true}"#;
    const PINNED_FULL_HASH: &str = "82fc6d13de3e7aec";
    const PINNED_WEIGHTED: &str = r#"{"primitives":"seed","ephemeral":null,"include_known":false,"start_with":[],"pop":12,"lambda":12,"gens":5,"algorithm":"mu-plus-lambda","selection":{"kind":"tournament","size":3},"elite":1,"cxpb":0.6,"mutpb":0.3,"mutations":["uniform","node-replacement","shrink","insert"],"max_height":17,"max_size":null,"init_min":1,"init_max":3,"objective":"score","fingerprint":true,"hof":10,"seed":0,"seeds":1,"train":{"task":"qa","steps":null,"batch_size":null,"thin":0.5,"device":"cpu","preset":null,"weights":"bleu=0,ppl=1,acc=1"},"evaluator":{"kind":"train"},"compile_check":false,"arch":90,"retrain_top":3,"retrain_seeds":3,"export":true}"#;
    const PINNED_WEIGHTED_HASH: &str = "d066aa113e37fc85";
    /// A damaged or forged settings object is refused with the file and
    /// the key at fault, whether the key is missing or its value has the
    /// wrong type (at the top, nested, in a list, in a tagged object).
    #[test]
    fn a_bad_value_names_the_file_and_the_key() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 7] = [
            ("`gens`", |v| {
                v.as_object_mut().unwrap().remove("gens");
            }),
            ("`pop`", |v| v["pop"] = json!("twelve")),
            ("`steps`", |v| v["train"]["steps"] = json!(-3)),
            ("`mutations`", |v| v["mutations"] = json!(["shrink", 7])),
            ("`selection`", |v| v["selection"]["size"] = json!(true)),
            ("`max_seeds`", |v| {
                v["seeding"]["racing"]["max_seeds"] = json!("four")
            }),
            ("`kind`", |v| v["evaluator"]["kind"] = json!("oracle")),
        ];
        for (key, edit) in cases {
            let mut v = Settings::default().to_json();
            edit(&mut v);
            let e = Settings::from_json(&v, "runs/x/config.json")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("error: runs/x/config.json: the settings: ") && e.contains(key),
                "{key}: {e}"
            );
        }
    }

    /// The device is read once, when the settings are: a config naming a
    /// device that does not exist is refused there, and one that does is
    /// written back as it was written.
    #[test]
    fn the_device_is_parsed_once_and_kept_as_written() {
        let mut v = Settings::default().to_json();
        for d in ["cpu", "cuda", "cuda:2"] {
            v["train"]["device"] = json!(d);
            let s = Settings::from_json(&v, "config.json").unwrap();
            assert_eq!(s.train.device, Device::parse(d).unwrap());
            assert_eq!(s.to_json()["train"]["device"], json!(d));
        }
        v["train"]["device"] = json!("gpu");
        let e = Settings::from_json(&v, "config.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("device `gpu`: expected cpu, cuda or cuda:N"),
            "{e}"
        );
    }
}
