//! The weighted fitness the GP search maximises: a bounded score in [0, 1],
//! higher is better.
//!
//! ```text
//! b = clamp(bleu / 100, 0, 1)
//! p = clamp(1 − ln(ppl) / ln(vocab), 0, 1)   (1: a perfect model, 0: no better than a uniform guess)
//! a = clamp(acc, 0, 1)
//! fitness = (w_bleu·b + w_ppl·p + w_acc·a) / (w_bleu + w_ppl + w_acc)
//! ```
//!
//! Defaults `bleu=0.5,ppl=0.3,acc=0.2`. A term with weight 0 is ignored
//! entirely (its score may be NaN, e.g. BLEU on a task that does not
//! generate). A NaN score in a weighted term, an infinite perplexity, or a
//! vocabulary below 2 (where ln(vocab) cannot scale perplexity) makes the
//! fitness 0: the worst value, which a failed run also gets; the search
//! records *why* a run failed separately. chrF is reported next to BLEU but
//! has no weight.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Setting};

/// The fitness a failed run scores (a non-finite loss, no evaluation): the
/// lowest value the fitness takes. A model that learned nothing scores
/// about this too: its perplexity is the vocabulary's (term 0), its BLEU 0
/// and its accuracy about 1/vocab. Comparisons over seeds count a failed
/// run at this value, so an activation that diverges on some seeds never
/// looks better than one that never does.
pub const FITNESS_FLOOR: f64 = 0.0;

/// Non-negative weights of the fitness terms; only their ratios matter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub bleu: f64,
    pub ppl: f64,
    pub acc: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            bleu: 0.5,
            ppl: 0.3,
            acc: 0.2,
        }
    }
}

impl Weights {
    /// These weights with BLEU's set to 0: what the fitness of an
    /// evaluation that generates no sentences uses, where BLEU is not
    /// measured (rather than measured as 0). `None` when BLEU is the only
    /// weighted term.
    pub fn without_bleu(self) -> Option<Weights> {
        let w = Weights { bleu: 0.0, ..self };
        (w.ppl + w.acc > 0.0).then_some(w)
    }

    /// Each term's share of the weights (BLEU, perplexity, accuracy),
    /// summing to 1.
    pub fn shares(&self) -> [f64; 3] {
        let total = self.bleu + self.ppl + self.acc;
        [self.bleu / total, self.ppl / total, self.acc / total]
    }
}

/// The measured scores of one trained model on sacreBLEU's scales: BLEU and
/// chrF 0–100, perplexity ≥ 1, token accuracy 0–1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub bleu: f64,
    pub chrf: f64,
    pub ppl: f64,
    pub acc: f64,
}

/// The bounded fitness in [0, 1] (formula in the module docs).
pub fn fitness(s: &Scores, w: &Weights, vocab: usize) -> f64 {
    let terms = [
        (w.bleu, (s.bleu / 100.0).clamp(0.0, 1.0)),
        (w.ppl, ppl_score(s.ppl, vocab)),
        (w.acc, s.acc.clamp(0.0, 1.0)),
    ];
    let total: f64 = terms.iter().map(|t| t.0).sum();
    let mut sum = 0.0;
    for (weight, score) in terms.into_iter().filter(|t| t.0 > 0.0) {
        if score.is_nan() {
            return 0.0;
        }
        sum += weight * score;
    }
    if total > 0.0 {
        sum / total
    } else {
        0.0
    }
}

/// Each term's part of the fitness, `w·score / (w_bleu + w_ppl + w_acc)`
/// for BLEU, perplexity and accuracy: they add up to the fitness (up to
/// rounding) unless a weighted term is NaN, which makes the fitness 0. A
/// term with weight 0 contributes 0. What the fitness is made of, as
/// measured (see `experiment`'s fitness shares).
pub fn contributions(s: &Scores, w: &Weights, vocab: usize) -> [f64; 3] {
    let total = w.bleu + w.ppl + w.acc;
    let part = |weight: f64, score: f64| {
        if weight > 0.0 && total > 0.0 {
            weight * score / total
        } else {
            0.0
        }
    };
    [
        part(w.bleu, (s.bleu / 100.0).clamp(0.0, 1.0)),
        part(w.ppl, ppl_score(s.ppl, vocab)),
        part(w.acc, s.acc.clamp(0.0, 1.0)),
    ]
}

/// Perplexity mapped to [0, 1]: `clamp(1 − ln(ppl)/ln(vocab), 0, 1)`.
/// NaN for a NaN perplexity; 0 for +∞ or a vocabulary below 2.
pub fn ppl_score(ppl: f64, vocab: usize) -> f64 {
    if ppl.is_nan() {
        return f64::NAN;
    }
    if vocab < 2 || ppl == f64::INFINITY {
        return 0.0;
    }
    (1.0 - ppl.ln() / (vocab as f64).ln()).clamp(0.0, 1.0)
}

impl fmt::Display for Weights {
    /// The same syntax [`FromStr`] reads: `bleu=0.5,ppl=0.3,acc=0.2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bleu={},ppl={},acc={}", self.bleu, self.ppl, self.acc)
    }
}

impl FromStr for Weights {
    type Err = Error;

    /// `KEY=VALUE` pairs separated by commas, keys `bleu`, `ppl`, `acc`, each
    /// at most once; a key left out weighs 0. Values are finite and ≥ 0 and
    /// at least one is positive.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut w = Weights {
            bleu: 0.0,
            ppl: 0.0,
            acc: 0.0,
        };
        let mut seen: Vec<&str> = Vec::new();
        for item in s.split(',').map(str::trim) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("`{item}` is not KEY=VALUE")))?;
            let (key, value) = (key.trim(), value.trim());
            let slot = match key {
                "bleu" => &mut w.bleu,
                "ppl" => &mut w.ppl,
                "acc" => &mut w.acc,
                _ => {
                    return Err(bad(format!(
                        "unknown key `{key}` (expected bleu, ppl, acc)"
                    )))
                }
            };
            if seen.contains(&key) {
                return Err(bad(format!("key `{key}` is given twice")));
            }
            seen.push(key);
            *slot = parse_weight(key, value)?;
        }
        if w.bleu + w.ppl + w.acc <= 0.0 {
            return Err(bad("at least one weight must be positive".into()));
        }
        Ok(w)
    }
}

fn parse_weight(key: &str, value: &str) -> Result<f64, Error> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(bad(format!(
            "`{key}` has the value `{value}`; expected a finite number ≥ 0"
        ))),
    }
}

fn bad(msg: String) -> Error {
    Error::setting(format!("{}: {msg}", Setting::Weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(bleu: f64, ppl: f64, acc: f64) -> Scores {
        Scores {
            bleu,
            chrf: f64::NAN,
            ppl,
            acc,
        }
    }

    #[test]
    fn formula_on_a_worked_example() {
        // b = 0.3, p = 1 − ln 10 / ln 1000 = 2/3, a = 0.5.
        let f = fitness(&scores(30.0, 10.0, 0.5), &Weights::default(), 1000);
        assert!((f - (0.5 * 0.3 + 0.3 * (2.0 / 3.0) + 0.2 * 0.5)).abs() < 1e-15);
    }

    #[test]
    fn bounded_and_failures_score_zero() {
        let w = Weights::default();
        assert_eq!(fitness(&scores(100.0, 1.0, 1.0), &w, 50), 1.0);
        assert_eq!(fitness(&scores(0.0, 1e9, 0.0), &w, 50), 0.0);
        assert_eq!(fitness(&scores(f64::NAN, 2.0, 0.5), &w, 50), 0.0);
        assert_eq!(fitness(&scores(50.0, f64::INFINITY, 0.5), &w, 50), 0.35);
        let no_bleu: Weights = "ppl=1,acc=1".parse().unwrap();
        assert_eq!(fitness(&scores(f64::NAN, 1.0, 0.5), &no_bleu, 50), 0.75);
    }

    #[test]
    fn without_bleu_renormalises_over_the_measured_terms() {
        let w = Weights::default().without_bleu().unwrap();
        assert_eq!((w.bleu, w.ppl, w.acc), (0.0, 0.3, 0.2));
        // BLEU not measured (NaN) is ignored, not scored 0: (0.3·p + 0.2·a)/0.5.
        let f = fitness(&scores(f64::NAN, 10.0, 0.5), &w, 1000);
        assert!((f - (0.3 * (2.0 / 3.0) + 0.2 * 0.5) / 0.5).abs() < 1e-15);
        let only_bleu: Weights = "bleu=1".parse().unwrap();
        assert_eq!(only_bleu.without_bleu(), None);
        assert_eq!(Weights::default().shares(), [0.5, 0.3, 0.2]);
    }

    #[test]
    fn contributions_add_up_to_the_fitness() {
        let s = scores(30.0, 10.0, 0.5);
        for w in ["bleu=0.5,ppl=0.3,acc=0.2", "ppl=1", "bleu=2,acc=1"] {
            let w: Weights = w.parse().unwrap();
            let c = contributions(&s, &w, 1000);
            assert!((c.iter().sum::<f64>() - fitness(&s, &w, 1000)).abs() < 1e-15);
        }
        let only_ppl: Weights = "ppl=1".parse().unwrap();
        assert_eq!(contributions(&s, &only_ppl, 1000)[0], 0.0);
    }

    #[test]
    fn weights_parse_errors_suit_clap_value_parsers() {
        // clap's `value_parser!` needs the error to be Send + Sync.
        fn send_sync<T: std::error::Error + Send + Sync + 'static>() {}
        send_sync::<<Weights as FromStr>::Err>();
    }

    #[test]
    fn weights_parse_and_name_the_bad_key() {
        let w: Weights = " bleu=0.5, ppl=0.3 ,acc=0.2".parse().unwrap();
        assert_eq!(w, Weights::default());
        assert_eq!(w.to_string().parse::<Weights>().unwrap(), w);
        let err = |s: &str| s.parse::<Weights>().unwrap_err().to_string();
        assert!(err("bleu=0.5,chrf=1").contains("unknown key `chrf`"));
        assert!(err("bleu=x").contains("`bleu` has the value `x`"));
        assert!(err("ppl=-1").contains("`ppl`"));
        assert!(err("acc=1,acc=2").contains("`acc` is given twice"));
        assert!(err("bleu").contains("not KEY=VALUE"));
        assert!(err("bleu=0").contains("at least one"));
        match "bleu=x".parse::<Weights>() {
            Err(Error::Setting(named)) => assert_eq!(named.settings(), vec![Setting::Weights]),
            other => panic!("{other:?}"),
        }
    }
}
