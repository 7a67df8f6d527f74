//! What generation shares between GPT and T5: the sampling choice, the
//! per-(member, row) token pickers (candle-transformers'
//! `LogitsProcessor`, one row of logits at a time), and the bookkeeping of
//! finished rows.

use candle_core::{Tensor, D};
use candle_transformers::generation::{LogitsProcessor, Sampling as Strategy};

use super::init::SplitMix64;
use crate::{Error, Result};

/// How the next token is chosen from a row of logits.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (deterministic).
    Greedy,
    /// A draw from softmax(logits / temperature), restricted to the `top_k`
    /// most likely tokens and/or the smallest set of probability ≥ `top_p`.
    Sample {
        temperature: f64,
        top_k: Option<usize>,
        top_p: Option<f64>,
    },
}

impl Sampling {
    /// candle-transformers' strategy, or a usage error for bad parameters.
    fn strategy(&self) -> Result<Option<Strategy>> {
        let Sampling::Sample {
            temperature,
            top_k,
            top_p,
        } = *self
        else {
            return Ok(None);
        };
        let bad = |m: String| Err(Error::Usage(format!("sampling: {m}")));
        if !(temperature.is_finite() && temperature > 0.0) {
            return bad(format!(
                "temperature {temperature} must be positive and finite"
            ));
        }
        if top_k == Some(0) {
            return bad("top_k must be at least 1".into());
        }
        if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return bad(format!("top_p {p} must be in (0, 1]"));
        }
        Ok(Some(match (top_k, top_p) {
            (None, None) => Strategy::All { temperature },
            (Some(k), None) => Strategy::TopK { k, temperature },
            (None, Some(p)) => Strategy::TopP { p, temperature },
            (Some(k), Some(p)) => Strategy::TopKThenTopP { k, p, temperature },
        }))
    }
}

/// Chooses next tokens for a `[P, B, V]` block of logits.
pub struct Picker {
    /// `[row]`: one sampler per sentence, per member. Row `b`'s stream
    /// depends on (seed, b) only, so member `p` of a population draws as a
    /// lone model with its weights would.
    samplers: Option<Vec<Vec<LogitsProcessor>>>,
}

impl Picker {
    pub fn new(sampling: &Sampling, members: usize, rows: usize, seed: u64) -> Result<Picker> {
        let Some(strategy) = sampling.strategy()? else {
            return Ok(Picker { samplers: None });
        };
        let row_seed = |b: usize| {
            SplitMix64::new(seed ^ (b as u64).wrapping_mul(0xA24B_AED4_963E_E407)).next_u64()
        };
        let samplers = (0..members)
            .map(|_| {
                (0..rows)
                    .map(|b| LogitsProcessor::from_sampling(row_seed(b), strategy.clone()))
                    .collect()
            })
            .collect();
        Ok(Picker {
            samplers: Some(samplers),
        })
    }

    /// Next token of every (member, row) from logits `[P, B, V]`.
    pub fn pick(&mut self, logits: &Tensor) -> Result<Vec<Vec<u32>>> {
        match &mut self.samplers {
            None => Ok(logits.argmax(D::Minus1)?.to_vec2::<u32>()?),
            Some(samplers) => {
                let mut out = Vec::with_capacity(samplers.len());
                for (p, row_samplers) in samplers.iter_mut().enumerate() {
                    let member = logits.get(p)?;
                    let picks = row_samplers
                        .iter_mut()
                        .enumerate()
                        .map(|(b, s)| s.sample(&member.get(b)?))
                        .collect::<candle_core::Result<Vec<u32>>>()?;
                    out.push(picks);
                }
                Ok(out)
            }
        }
    }
}

/// The tokens generated so far, `[P][row]`, and which rows are done (EOS
/// seen, or their budget spent). EOS itself is not kept.
pub struct Outputs {
    pub tokens: Vec<Vec<Vec<u32>>>,
    done: Vec<Vec<bool>>,
    limits: Vec<usize>,
    eos: u32,
}

impl Outputs {
    /// Row `b` may get at most `limits[b]` tokens (P members share them).
    pub fn new(members: usize, limits: Vec<usize>, eos: u32) -> Outputs {
        let done: Vec<bool> = limits.iter().map(|&l| l == 0).collect();
        Outputs {
            tokens: vec![vec![Vec::new(); limits.len()]; members],
            done: vec![done; members],
            limits,
            eos,
        }
    }

    /// Records one step's picks `[P][row]`.
    pub fn push(&mut self, picks: &[Vec<u32>]) {
        for (p, row_picks) in picks.iter().enumerate() {
            for (b, &tok) in row_picks.iter().enumerate() {
                if self.done[p][b] {
                    continue;
                }
                if tok == self.eos {
                    self.done[p][b] = true;
                    continue;
                }
                self.tokens[p][b].push(tok);
                self.done[p][b] = self.tokens[p][b].len() >= self.limits[b];
            }
        }
    }

    pub fn all_done(&self) -> bool {
        self.done.iter().flatten().all(|&d| d)
    }
}
