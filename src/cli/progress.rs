//! Progress bars for long commands (indicatif on stderr). When stderr is
//! not a terminal they draw nothing, and a one-line note per finished run
//! says where things stand instead.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::io::note;
use crate::experiment::Progress;
use crate::fitness::{Outcome, StepInfo};

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
