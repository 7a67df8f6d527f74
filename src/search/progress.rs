//! What the engine reports while it runs ([`Observer`]), and two
//! observers: [`Silent`] and [`Bars`] (indicatif progress bars on stderr
//! for generations and candidates, with ETA; when stderr is not a
//! terminal, one plain line per generation instead, so logs stay
//! readable).
//!
//! The training-steps bar belongs to the fitness evaluator, which can add
//! its own bar to [`Bars::multi`].

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::run::logbook::Row;
use super::run::record::Record;

/// A line on standard error (a closed stderr is ignored).
fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Events of a running search.
pub trait Observer {
    /// Generation `gen` (of `last`) starts with `candidates` formulas to
    /// evaluate.
    fn generation_started(&mut self, gen: usize, last: usize, candidates: usize);
    /// One evaluation (or recovered result) is in.
    fn candidate_done(&mut self, record: &Record);
    fn generation_done(&mut self, row: &Row);
    /// A message for the user (resume notes, warnings).
    fn note(&mut self, message: &str);
    fn finish(&mut self) {}
}

/// Reports nothing.
pub struct Silent;

impl Observer for Silent {
    fn generation_started(&mut self, _: usize, _: usize, _: usize) {}
    fn candidate_done(&mut self, _: &Record) {}
    fn generation_done(&mut self, _: &Row) {}
    fn note(&mut self, _: &str) {}
}

/// Progress bars on a terminal, plain lines otherwise; nothing at all
/// when quiet.
pub struct Bars {
    multi: MultiProgress,
    gens: Option<ProgressBar>,
    cands: Option<ProgressBar>,
    terminal: bool,
    quiet: bool,
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        let terminal = !quiet && std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            gens: None,
            cands: None,
            terminal,
            quiet,
        }
    }

    /// The bars' container, for more bars (training steps).
    pub fn multi(&self) -> &MultiProgress {
        &self.multi
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

impl Observer for Bars {
    fn generation_started(&mut self, gen: usize, last: usize, candidates: usize) {
        if !self.terminal {
            return;
        }
        let gens = self.gens.get_or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(last as u64 + 1));
            b.set_style(Bars::style(
                "generations [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta}",
            ));
            b
        });
        gens.set_position(gen as u64);
        if let Some(c) = self.cands.take() {
            c.finish_and_clear();
        }
        let c = self.multi.add(ProgressBar::new(candidates as u64));
        c.set_style(Bars::style(
            "gen {msg:>3} candidates [{bar:30}] {pos}/{len} ETA {eta}",
        ));
        c.set_message(gen.to_string());
        self.cands = Some(c);
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
        let best = match (row.fitness.max.is_finite(), &row.best) {
            (true, Some(b)) => format!("best {:.5} {b}", row.fitness.max),
            _ => "no valid candidate yet".to_string(),
        };
        self.say(&format!(
            "gen {}: {} evaluated, {} screened, dedup {:.0}% (syntactic {:.0}%), {best}",
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
