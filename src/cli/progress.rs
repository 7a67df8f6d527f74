//! Progress bars for long commands (indicatif on stderr): `train`'s runs
//! and steps ([`TrainBars`]) and a search's generations, candidates and
//! training steps ([`SearchBars`], fed by the library's observer
//! callbacks). When stderr is not a terminal they draw nothing, and plain
//! lines say where things stand instead. The library draws nothing
//! itself: indicatif lives here only.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::io::note;
use crate::experiment::Progress;
use crate::fitness::{Outcome, StepInfo};
use crate::search::progress::{JobObserver, Observer, TrainingObserver};
use crate::search::run::logbook::Row;
use crate::search::run::record::Record;

/// Runs and steps of `actforge train` (and of a search's final retrain).
pub struct TrainBars {
    multi: MultiProgress,
    runs: ProgressBar,
    steps: Mutex<Option<ProgressBar>>,
    terminal: bool,
}

impl TrainBars {
    pub fn new(total_runs: usize) -> TrainBars {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let runs = multi.add(ProgressBar::new(total_runs as u64));
        runs.set_style(
            ProgressStyle::with_template("runs  {bar:30} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        TrainBars {
            multi,
            runs,
            steps: Mutex::new(None),
            terminal,
        }
    }
}

impl Progress for TrainBars {
    fn run_started(&self, index: usize, _total: usize, activation: &str, seed: u64, steps: u64) {
        self.runs.set_position(index.saturating_sub(1) as u64);
        let short: String = activation.chars().take(48).collect();
        self.runs.set_message(format!("{short} · seed {seed}"));
        let bar = self.multi.add(ProgressBar::new(steps));
        bar.set_style(
            ProgressStyle::with_template(
                "steps {bar:30} {pos}/{len} loss {msg} · {per_sec} · ETA {eta}",
            )
            .expect("valid template"),
        );
        *self.steps.lock().expect("progress lock") = Some(bar);
    }

    fn step(&self, info: &StepInfo) {
        if let Some(bar) = self.steps.lock().expect("progress lock").as_ref() {
            bar.set_position(info.step);
            bar.set_message(format!("{:.4}", info.loss));
        }
    }

    fn run_finished(&self, o: &Outcome) {
        if let Some(bar) = self.steps.lock().expect("progress lock").take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.runs.inc(1);
        let (first, last) = o.loss_first_last();
        let line = format!(
            "{} · seed {}: {} · loss {:.3} → {:.3}{} · {:.1} s",
            o.activation.chars().take(60).collect::<String>(),
            o.seed,
            o.status.label(),
            first,
            last,
            o.fitness()
                .map_or(String::new(), |f| format!(" · fitness {f:.4}")),
            o.timing.train + o.timing.eval
        );
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            note(line);
        }
    }
}

impl Drop for TrainBars {
    fn drop(&mut self) {
        self.runs.finish_and_clear();
    }
}

/// The search's progress: bars on a terminal (generations, candidates,
/// and one training-steps bar per running evaluation), plain lines
/// otherwise; nothing at all when quiet.
pub struct SearchBars {
    multi: MultiProgress,
    gens: Option<ProgressBar>,
    cands: Option<ProgressBar>,
    terminal: bool,
    quiet: bool,
    /// Racing: the population's values are paired differences from GELU.
    paired: bool,
}

impl SearchBars {
    /// Say that the search races seeds: its best is a mean paired
    /// difference from GELU and its evaluations are candidate-seeds.
    pub fn set_paired(&mut self, paired: bool) {
        self.paired = paired;
    }

    /// A batch of generation `gen`: a generation's candidates, or a racing
    /// batch at one seed (`what`).
    fn batch_started(&mut self, gen: usize, last: usize, what: &str, candidates: usize) {
        if !self.terminal {
            return;
        }
        let gens = self.gens.get_or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(last as u64 + 1));
            b.set_style(SearchBars::style(
                "generations [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta}",
            ));
            b
        });
        gens.set_position(gen as u64);
        if let Some(c) = self.cands.take() {
            c.finish_and_clear();
        }
        let c = self.multi.add(ProgressBar::new(candidates as u64));
        c.set_style(SearchBars::style(
            "gen {msg} [{bar:30}] {pos}/{len} ETA {eta}",
        ));
        c.set_message(format!("{gen:>3} {what}"));
        self.cands = Some(c);
    }

    pub fn new(quiet: bool) -> SearchBars {
        let terminal = !quiet && std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        SearchBars {
            multi: MultiProgress::with_draw_target(target),
            gens: None,
            cands: None,
            terminal,
            quiet,
            paired: false,
        }
    }

    /// The training evaluator's side: a steps bar per running evaluation
    /// under these bars, and the final retrain's lines.
    pub fn training(&self) -> Arc<dyn TrainingObserver> {
        Arc::new(StepBars {
            multi: self.multi.clone(),
            terminal: self.terminal,
            quiet: self.quiet,
        })
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            stderr_line(line);
        }
    }
}

impl Observer for SearchBars {
    fn generation_started(&mut self, gen: usize, last: usize, candidates: usize) {
        self.batch_started(gen, last, "candidates", candidates);
    }

    fn seed_batch_started(&mut self, gen: usize, last: usize, seed: u64, jobs: usize) {
        self.batch_started(gen, last, &format!("seed {seed}"), jobs);
    }
    fn candidate_done(&mut self, _: &Record) {
        if let Some(c) = &self.cands {
            c.inc(1);
        }
    }

    fn generation_done(&mut self, row: &Row) {
        if let Some(g) = &self.gens {
            g.set_position(row.gen as u64 + 1);
        }
        let c = &row.counters;
        let best = match (row.fitness.max.is_finite(), &row.best, self.paired) {
            (true, Some(b), false) => format!("best {:.5} {b}", row.fitness.max),
            (true, Some(b), true) => format!("best {:+.5} vs GELU {b}", row.fitness.max),
            _ => "no valid candidate yet".to_string(),
        };
        let evaluated = if self.paired {
            "candidate-seeds trained"
        } else {
            "evaluated"
        };
        self.say(&format!(
            "gen {}: {} {evaluated}, {} screened, dedup {:.0}% (syntactic {:.0}%), {best}",
            row.gen,
            c.evaluations,
            c.screened_total(),
            100.0 * c.dedup_rate(),
            100.0 * c.syntactic_rate(),
        ));
    }

    fn note(&mut self, message: &str) {
        if self.terminal {
            let _ = self.multi.println(message);
        } else if !self.quiet {
            stderr_line(message);
        }
    }

    fn finish(&mut self) {
        for b in [self.cands.take(), self.gens.take()].into_iter().flatten() {
            b.finish_and_clear();
        }
    }
}

/// [`SearchBars::training`]: shared by the evaluator's worker threads.
struct StepBars {
    multi: MultiProgress,
    terminal: bool,
    quiet: bool,
}

impl TrainingObserver for StepBars {
    fn job_started(&self, formula: &str, steps: u64) -> Box<dyn JobObserver> {
        if !self.terminal {
            return Box::new(NoSteps);
        }
        let b = self.multi.add(ProgressBar::new(steps));
        b.set_style(SearchBars::style(
            "  {prefix:<24} {msg:>8} [{bar:20}] {pos}/{len} ETA {eta}",
        ));
        let name: String = formula.chars().take(24).collect();
        b.set_prefix(name);
        Box::new(StepsBar(b))
    }

    fn line(&self, text: &str) {
        if self.terminal {
            let _ = self.multi.println(text);
        } else if !self.quiet {
            stderr_line(text);
        }
    }
}

/// One evaluation's steps bar; it clears itself when the evaluation ends,
/// however it ends.
struct StepsBar(ProgressBar);

impl JobObserver for StepsBar {
    fn seed_started(&self, seed: u64) {
        self.0.set_position(0);
        self.0.set_message(format!("seed {seed}"));
    }

    fn step(&self, step: u64) {
        self.0.set_position(step);
    }
}

impl Drop for StepsBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Steps where no bar is drawn.
struct NoSteps;

impl JobObserver for NoSteps {
    fn seed_started(&self, _: u64) {}
    fn step(&self, _: u64) {}
}

/// A line on standard error as it is (a closed stderr is ignored).
fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
