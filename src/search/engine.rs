//! The GP engine: a run directory, the population loop, checkpoints and
//! resume.
//!
//! [`Search::create`] starts a run in a new directory (writing
//! `config.json` and a first checkpoint); [`Search::open`] reopens one for
//! `--resume`, checking that it is an actforge search run, that its
//! checkpoint belongs to its configuration and that its logs agree with
//! the checkpoint. [`Search::run`] then runs the remaining generations
//! and the final stages. Each generation's new candidates go to the
//! [`Executor`] as one batch; results are applied in candidate order, so
//! the run depends only on the seed.
//!
//! Reliability: every finished evaluation is one flushed and synced line
//! of `evaluations.jsonl` before anything else happens; the checkpoint is
//! replaced atomically after every generation. After kill -9, the resumed
//! run replays the interrupted generation from the checkpoint (the same
//! generator state, so the same candidates) and takes the results already
//! in the log instead of evaluating them again. A raised stop flag
//! (Ctrl-C) lets running evaluations finish, rewrites the last checkpoint
//! marked `interrupted` and returns. One process works in a run directory
//! at a time: a [`Search`] holds the directory's lock (`store::Lock`), and
//! a new directory appears whole or not at all (`store::NewDir`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::error::{Error, Result, Setting};
use crate::gp::objectives::Objectives;
use crate::gp::select::sel_best;
use crate::gp::{var_and, var_or, PrimitiveSet, Tree, Variation};
use crate::ir::Library;
use crate::store::files::{write_atomic, write_json};
use crate::store::safe::read_bounded;
use crate::store::{Lock, NewDir};

use super::assign::{self, Assigned};
use super::config::{Algorithm, Settings, PRIMITIVES_COPY};
use super::exec::executor::Executor;
use super::json::bad;
use super::ledger::Ledger;
use super::progress::Observer;
use super::retrain::Retrain;
use super::rounds::{baseline_key, raced_fitness, Rounds};
use super::run::dir::{self as rundir, CHECKPOINT, EVALUATIONS};
use super::run::logbook::{Counters, Row, Spread, Timing};
use super::run::outputs::{self, RunView, Summary};
use super::run::state::{pareto_objectives, DedupMemory, Individual, State, Status};
use super::scheme;

/// A search bound to its run directory.
pub struct Search {
    dir: PathBuf,
    settings: Settings,
    set: PrimitiveSet,
    variation: Variation,
    objectives: Objectives,
    state: State,
    /// The fitness cache and its logs.
    ledger: Ledger,
    /// The last checkpoint written (rewritten as `interrupted` on Ctrl-C).
    last_checkpoint: Value,
    /// One process per run directory: held while this value lives.
    _lock: Lock,
}

/// What [`Search::open`] found.
pub enum Opened {
    /// A run to continue.
    Ready(Box<Search>),
    /// The run had already finished; its summary.
    Finished(Box<Summary>),
}

/// How [`Search::run`] ended.
pub enum Outcome {
    Finished(Box<Summary>),
    /// Stopped by the stop flag; `generation` is the next one to run.
    Interrupted {
        generation: usize,
    },
}

impl Search {
    /// Start a new run in `dir` (which must not exist or be empty).
    /// `command` is the command line, recorded in `config.json`. The
    /// directory appears whole (with `config.json` and the primitives
    /// copy) or not at all, and this process holds its lock.
    pub fn create(dir: &Path, settings: Settings, command: &[String]) -> Result<Search> {
        settings.check()?;
        let includes = settings.includes().len();
        if includes > settings.pop {
            let from = if settings.include_known {
                format!("{} and {}", Setting::IncludeKnown, Setting::StartWith)
            } else {
                Setting::StartWith.to_string()
            };
            return Err(Error::setting(format!(
                "{includes} formulas seed the population ({from}) but {} is {}",
                Setting::Pop,
                settings.pop
            )));
        }
        let set_from_user = settings.primitive_set(None)?;
        let new = NewDir::begin(dir, "search", &rundir::taken_hint(dir))?;
        let primitives = if settings.named_set() {
            None
        } else {
            let from = settings.primitives.to_string();
            let bytes = read_bounded(Path::new(&from), crate::limits::DATA_FILE_BYTES.max)?
                .ok_or_else(|| Error::io(&from, std::io::ErrorKind::NotFound.into()))?;
            write_atomic(&new.path().join(PRIMITIVES_COPY), &bytes)?;
            Some(bytes)
        };
        let details = json!({
            "primitive_set": set_from_user.describe(),
            "includes": settings.includes().iter().map(|(l, f)| json!({"label": l, "formula": f})).collect::<Vec<_>>(),
        });
        let config = rundir::config_json(&settings, command, details, primitives.as_deref());
        rundir::write_config(new.path(), &config)?;
        let lock = new.commit()?;
        let copy = primitives.is_some().then(|| dir.join(PRIMITIVES_COPY));
        let mut search = Search::assemble(dir, settings, copy.as_deref(), lock)?;
        search.checkpoint(Status::Running)?;
        Ok(search)
    }

    /// Reopen the run in `dir` for `--resume`: refused while another
    /// process works in it (see `store::lock`).
    pub fn open(dir: &Path) -> Result<Opened> {
        rundir::require_run(dir)?;
        let lock = Lock::dir(dir, "search")?;
        let settings = rundir::read_config(dir)?;
        let copy = (!settings.named_set()).then(|| dir.join(PRIMITIVES_COPY));
        let mut search = Search::assemble(dir, settings, copy.as_deref(), lock)?;
        let status = search.load_checkpoint()?;
        search.ledger.load(&search.state)?;
        if status == Status::Finished {
            let files = outputs::existing_files(dir);
            return Ok(Opened::Finished(Box::new(outputs::summary(
                &search.view(),
                files,
                Vec::new(),
            ))));
        }
        Ok(Opened::Ready(Box::new(search)))
    }

    /// The parts every run has, before any checkpoint is read.
    fn assemble(dir: &Path, settings: Settings, copy: Option<&Path>, lock: Lock) -> Result<Search> {
        let set = settings.primitive_set(copy)?;
        let objectives = settings.objective.objectives();
        let state = State::fresh(
            settings.seed,
            settings.hof,
            &objectives,
            pareto_objectives(),
        );
        Ok(Search {
            dir: dir.to_path_buf(),
            variation: settings.variation()?,
            ledger: Ledger::open(dir, settings.fingerprint, settings.seeding.racing.is_some())?,
            set,
            objectives,
            state,
            settings,
            last_checkpoint: Value::Null,
            _lock: lock,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn primitive_set(&self) -> &PrimitiveSet {
        &self.set
    }

    /// The library formulas of this run are read with (for evaluators).
    pub fn library(&self) -> Arc<Library> {
        self.set.library_arc()
    }

    /// The next generation to run.
    pub fn next_generation(&self) -> usize {
        self.state.next_gen
    }

    /// Results found in the log past the checkpoint (reused, not rerun).
    pub fn recovered(&self) -> usize {
        self.ledger.recovered_count()
    }

    /// What the outputs read of the run.
    fn view(&self) -> RunView<'_> {
        RunView {
            dir: &self.dir,
            settings: &self.settings,
            set: &self.set,
            state: &self.state,
            dedup: self.ledger.dedup(),
        }
    }

    /// What a generation's assignment reads of the run.
    fn assign(
        &mut self,
        trees: Vec<Tree>,
        g: usize,
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Option<Assigned>> {
        let run = assign::Run {
            dir: &self.dir,
            settings: &self.settings,
            set: &self.set,
            objectives: &self.objectives,
        };
        assign::assign(&run, &mut self.ledger, trees, g, exec, obs, stop)
    }

    /// Read `checkpoint.json` (a missing one is a run that stopped before
    /// its first checkpoint, which is fine only if it logged nothing).
    fn load_checkpoint(&mut self) -> Result<Status> {
        let path = self.dir.join(CHECKPOINT);
        let shown = path.display().to_string();
        if !path.exists() {
            let logged = std::fs::metadata(self.dir.join(EVALUATIONS)).map_or(0, |m| m.len());
            if logged > 0 {
                return Err(bad(
                    &shown,
                    "is missing but evaluations were logged: the run directory is damaged".into(),
                ));
            }
            return Ok(Status::Running);
        }
        let v = super::json::read(&path)?;
        let fresh = State::fresh(
            self.settings.seed,
            self.settings.hof,
            &self.objectives,
            pareto_objectives(),
        );
        let (state, status, memory) = State::from_json(
            &v,
            &shown,
            &self.settings.hash_hex(),
            &self.set,
            &self.objectives,
            fresh,
        )?;
        if state.next_gen > self.settings.gens + 1 {
            return Err(bad(&shown, "its generation is past the run's last".into()));
        }
        self.state = state;
        let dedup = self.ledger.dedup_mut();
        dedup.restore_seen(memory.seen);
        dedup.restore_functions(memory.functions, self.set.library());
        self.last_checkpoint = v;
        Ok(status)
    }

    /// Write the checkpoint (atomically) with `status`.
    fn checkpoint(&mut self, status: Status) -> Result<()> {
        (self.state.evaluation_lines, self.state.merge_lines) = self.ledger.lines();
        let dedup = self.ledger.dedup();
        let memory = DedupMemory {
            seen: dedup.seen(),
            functions: dedup.functions().to_vec(),
        };
        let v = self
            .state
            .to_json(&self.settings.hash_hex(), status, &memory);
        write_json(&self.dir.join(CHECKPOINT), &v)?;
        self.last_checkpoint = v;
        Ok(())
    }

    /// Rewrite the last checkpoint marked `interrupted`.
    fn interrupted(&mut self, obs: &mut dyn Observer) -> Result<Outcome> {
        let mut v = self.last_checkpoint.clone();
        let generation = v["next_generation"].as_u64().unwrap_or(0) as usize;
        v["status"] = json!("interrupted");
        write_json(&self.dir.join(CHECKPOINT), &v)?;
        obs.finish();
        Ok(Outcome::Interrupted { generation })
    }

    /// Run the remaining generations and the final stages. `stop` is the
    /// flag the executor also watches. After [`Outcome::Interrupted`] the
    /// checkpoint on disk is the state to continue from: drop this value
    /// and [`Search::open`] the directory again.
    pub fn run(
        &mut self,
        exec: &mut dyn Executor,
        retrain: &dyn Retrain,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Outcome> {
        if self.recovered() > 0 {
            obs.note(&format!(
                "resuming at generation {}: {} results logged after the last checkpoint are reused",
                self.state.next_gen,
                self.recovered()
            ));
        }
        while self.state.next_gen <= self.settings.gens {
            if stop.load(Ordering::SeqCst) {
                return self.interrupted(obs);
            }
            let g = self.state.next_gen;
            let Some(row) = self.generation(g, exec, obs, stop)? else {
                return self.interrupted(obs);
            };
            obs.generation_done(&row);
            self.state.next_gen = g + 1;
            self.checkpoint(Status::Running)?;
            outputs::write_progress(&self.view())?;
            outputs::write_page(&self.view(), obs);
        }
        let summary = outputs::finish(&self.view(), retrain, obs)?;
        self.checkpoint(Status::Finished)?;
        obs.finish();
        Ok(Outcome::Finished(Box::new(summary)))
    }

    /// One generation; `None` when the stop flag cut it short.
    fn generation(
        &mut self,
        g: usize,
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Option<Row>> {
        let start = Instant::now();
        let mut old = std::mem::take(&mut self.state.population);
        let trees = self.breed(g, &old)?;
        let mut raced = Counters::default();
        if self.racing() && !self.race_baseline(g, exec, obs, stop, &mut raced)? {
            self.state.population = old;
            return Ok(None);
        }
        let Some((mut new, mut counters, mut timing)) = self.assign(trees, g, exec, obs, stop)?
        else {
            self.state.population = old;
            return Ok(None);
        };
        if self.racing() {
            let Some(rungs) = self.race_rungs(g, &mut new, &mut old, exec, obs, stop)? else {
                self.state.population = old;
                return Ok(None);
            };
            counters.evaluations += raced.evaluations + rungs.evaluations;
            counters.failures += raced.failures + rungs.failures;
        }
        for ind in &new {
            self.offer(ind);
        }
        if self.racing() {
            self.rerate_hall_of_fame()?;
        }
        self.state.population = self.survivors(g, old, new);
        timing.seconds = start.elapsed().as_secs_f64();
        self.state.elapsed += timing.seconds;
        let row = self.row(g, counters, timing);
        self.state.totals.add(&row.counters);
        self.state.logbook.push(row.clone());
        Ok(Some(row))
    }

    /// The trees of generation `g`: the initial population, or offspring.
    fn breed(&mut self, g: usize, old: &[Individual]) -> Result<Vec<Tree>> {
        let rng = &mut self.state.rng;
        let s = &self.settings;
        if g == 0 {
            let mut trees = Vec::with_capacity(s.pop);
            for (_, formula) in s.includes() {
                trees.push(Tree::parse(&formula, &self.set)?);
            }
            while trees.len() < s.pop {
                trees.push(Tree::ramped(rng, &self.set, s.init_min, s.init_max));
            }
            return Ok(trees);
        }
        let parents: Vec<Tree> = match s.algorithm {
            Algorithm::MuPlusLambda => old.iter().map(|i| i.tree.clone()).collect(),
            Algorithm::Simple => scheme::tournament(rng, s, &self.objectives, old, s.pop)
                .into_iter()
                .map(|i| old[i].tree.clone())
                .collect(),
        };
        let kids = match s.algorithm {
            Algorithm::MuPlusLambda => var_or(rng, &self.set, &parents, &self.variation, s.lambda)?,
            Algorithm::Simple => var_and(rng, &self.set, &parents, &self.variation),
        };
        Ok(kids.into_iter().map(|k| k.tree).collect())
    }

    /// The next population from the old one and the new individuals.
    fn survivors(
        &mut self,
        g: usize,
        old: Vec<Individual>,
        new: Vec<Individual>,
    ) -> Vec<Individual> {
        if g == 0 {
            return new;
        }
        match self.settings.algorithm {
            Algorithm::Simple => {
                scheme::survivors_simple(&self.settings, &self.objectives, &old, new)
            }
            Algorithm::MuPlusLambda => {
                let pool: Vec<Individual> = old.into_iter().chain(new).collect();
                scheme::survivors_plus(&mut self.state.rng, &self.settings, &self.objectives, &pool)
                    .into_iter()
                    .map(|i| pool[i].clone())
                    .collect()
            }
        }
    }

    /// Whether the run races seeds onto contenders.
    fn racing(&self) -> bool {
        self.settings.seeding.racing.is_some()
    }

    /// With racing: train the baseline at the first seed unless cached;
    /// `false` when stopped.
    fn race_baseline(
        &mut self,
        g: usize,
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
        raced: &mut Counters,
    ) -> Result<bool> {
        let rounds = Rounds {
            settings: &self.settings,
            set: &self.set,
            generation: g,
        };
        rounds.baseline_first(&mut self.ledger, exec, obs, stop, raced)
    }

    /// With racing: the rungs after generation `g`'s first pass (the new
    /// individuals, the old population and the hall of fame may earn
    /// seeds), then every individual's fitness is its paired difference.
    /// The rungs' counts; `None` when stopped.
    fn race_rungs(
        &mut self,
        g: usize,
        new: &mut [Individual],
        old: &mut [Individual],
        exec: &mut dyn Executor,
        obs: &mut dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Option<Counters>> {
        let mut raced = Counters::default();
        let eligible = new
            .iter()
            .chain(old.iter())
            .map(|i| i.key)
            .chain(self.state.hof.entries().iter().map(|e| e.key))
            .collect();
        let rounds = Rounds {
            settings: &self.settings,
            set: &self.set,
            generation: g,
        };
        if !rounds.rungs(&mut self.ledger, &eligible, exec, obs, stop, &mut raced)? {
            return Ok(None);
        }
        for ind in new.iter_mut().chain(old.iter_mut()) {
            ind.fitness = self.raced_fitness(ind.key)?;
        }
        Ok(Some(raced))
    }

    /// With racing: the hall of fame's and the Pareto front's entries at
    /// their current paired differences.
    fn rerate_hall_of_fame(&mut self) -> Result<()> {
        let keys: Vec<u64> = self.state.hof.entries().iter().map(|e| e.key).collect();
        for key in keys {
            let f = self.raced_fitness(key)?;
            self.state.hof.rerate(key, f);
        }
        let keys: Vec<u64> = self.state.pareto.entries().iter().map(|e| e.key).collect();
        for key in keys {
            let f = self.raced_fitness(key)?;
            let nodes = self.ledger.dedup().get(key).map_or(0, |r| r.nodes) as f64;
            self.state.pareto.rerate(key, vec![f[0], nodes]);
        }
        Ok(())
    }

    /// A raced run's fitness vector of `key` (its mean paired difference
    /// from the baseline).
    fn raced_fitness(&self, key: u64) -> Result<Vec<f64>> {
        let base = baseline_key(&self.set)?;
        Ok(raced_fitness(
            &self.ledger,
            base,
            self.settings.objective,
            &self.objectives,
            key,
        ))
    }

    /// Offer a new individual to the hall of fame and the Pareto archive
    /// (with racing, at its paired difference from the baseline).
    fn offer(&mut self, ind: &Individual) {
        self.state
            .hof
            .update(ind.key, ind.fitness.clone(), ind.tree.clone());
        if let Some(r) = self.ledger.dedup().get(ind.key) {
            let score = match self.racing() {
                true => Some(ind.fitness[0]).filter(|_| !self.objectives.is_failure(&ind.fitness)),
                false => r.fitness,
            };
            if let Some(f) = score {
                self.state
                    .pareto
                    .update(ind.key, vec![f, r.nodes as f64], ind.tree.clone());
            }
        }
    }

    /// The logbook row of generation `g` (statistics of the population
    /// after selection).
    fn row(&self, g: usize, counters: Counters, timing: Timing) -> Row {
        let pop = &self.state.population;
        let valid = pop
            .iter()
            .filter(|i| !self.objectives.is_failure(&i.fitness));
        let fits: Vec<&[f64]> = pop.iter().map(|i| i.fitness.as_slice()).collect();
        let best = sel_best(&self.objectives, &fits, 1)
            .first()
            .filter(|&&b| !self.objectives.is_failure(&pop[b].fitness))
            .map(|&b| pop[b].tree.to_formula(&self.set));
        let nodes = pop
            .iter()
            .filter_map(|i| self.ledger.dedup().get(i.key).map(|r| r.nodes as f64));
        Row {
            gen: g,
            counters,
            fitness: Spread::of(valid.map(|i| i.fitness[0])),
            size: Spread::of(pop.iter().map(|i| i.tree.len() as f64)),
            height: Spread::of(
                scheme::heights(&self.set, pop)
                    .into_iter()
                    .map(|h| h as f64),
            ),
            nodes: Spread::of(nodes),
            best,
            timing,
        }
    }
}
