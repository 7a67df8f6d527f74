//! Evaluation of a trained model on the validation examples: perplexity
//! and token accuracy by teacher forcing, BLEU and chrF of greedy
//! generations against the reference texts, the weighted fitness, and for
//! Q&A some sample answers.

use candle_core::Tensor;
use serde_json::{json, Value};

use super::prepare::Prepared;
use crate::data::{Batcher, CorpusKind};
use crate::error::Result;
use crate::metrics::{self, Bleu, Scores};
use crate::model::{masked_accuracy, masked_cross_entropy, Model, Sampling};

/// Sentences generated per batch.
const GENERATE_BATCH: usize = 64;

/// A generated answer next to its question and reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub source: String,
    pub reference: String,
    pub output: String,
}

/// The scores of a trained model.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub valid_loss: f64,
    pub ppl: f64,
    pub acc: f64,
    pub bleu: Bleu,
    pub chrf: f64,
    pub fitness: f64,
    pub tokens: usize,
    pub sentences: usize,
    pub samples: Vec<Sample>,
}

impl Evaluation {
    /// `{"bleu","chrf","ppl","acc","fitness", …}` (stable keys; BLEU and
    /// chrF on sacreBLEU's 0–100 scale).
    pub fn metrics_json(&self) -> Value {
        // No sentence generated: BLEU was not measured (null, not 0).
        let bleu = if self.sentences == 0 {
            f64::NAN
        } else {
            self.bleu.score
        };
        json!({
            "bleu": finite(bleu),
            "chrf": finite(self.chrf),
            "ppl": finite(self.ppl),
            "acc": finite(self.acc),
            "fitness": finite(self.fitness),
            "valid_loss": finite(self.valid_loss),
            "bleu_bp": finite(self.bleu.bp),
            "bleu_sys_len": self.bleu.sys_len,
            "bleu_ref_len": self.bleu.ref_len,
            "tokens": self.tokens,
            "sentences": self.sentences,
        })
    }

    pub fn samples_json(&self) -> Value {
        Value::Array(
            self.samples
                .iter()
                .map(|s| json!({"source": s.source, "reference": s.reference, "output": s.output}))
                .collect(),
        )
    }
}

/// Score `model` (population of one) on the prepared validation data;
/// keep `samples` generated outputs.
pub fn evaluate(prep: &Prepared, model: &Model, samples: usize) -> Result<Evaluation> {
    let (valid_loss, acc, tokens) = teacher_forced(prep, model)?;
    let ppl = valid_loss.exp();
    let n = prep.recipe.eval_sentences.min(prep.valid.len());
    let outputs = generate(prep, model, n)?;
    let hyps: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let refs: Vec<&str> = prep.valid_pairs[..n]
        .iter()
        .map(|p| p.tgt.as_str())
        .collect();
    let refs = vec![refs];
    let bleu = metrics::corpus_bleu(&hyps, &refs);
    let chrf = metrics::corpus_chrf(&hyps, &refs);
    // No generated sentence: BLEU and chrF are not measured, and BLEU is
    // left out of the fitness (its weight goes to the other terms) rather
    // than counted as 0. `Recipe::validate` refuses BLEU-only weights then.
    let (bleu_score, chrf, weights) = match (n, prep.recipe.weights.without_bleu()) {
        (0, Some(w)) => (f64::NAN, f64::NAN, w),
        _ => (bleu.score, chrf, prep.recipe.weights),
    };
    let scores = Scores {
        bleu: bleu_score,
        chrf,
        ppl,
        acc,
    };
    let fitness = metrics::fitness(&scores, &weights, prep.vocab());
    let samples = (0..samples.min(n))
        .map(|i| Sample {
            source: prep.valid_pairs[i].src.clone(),
            reference: prep.valid_pairs[i].tgt.clone(),
            output: outputs[i].clone(),
        })
        .collect();
    Ok(Evaluation {
        valid_loss,
        ppl,
        acc,
        bleu,
        chrf,
        fitness,
        tokens,
        sentences: n,
        samples,
    })
}

/// Mean cross-entropy per target token, accuracy, and the token count over
/// the validation examples (in a fixed order).
fn teacher_forced(prep: &Prepared, model: &Model) -> Result<(f64, f64, usize)> {
    let n = prep.recipe.eval_examples.min(prep.valid.len());
    let examples = &prep.valid[..n];
    let batcher = Batcher::new(examples, prep.recipe.batch_size, 0);
    let dev = model.device();
    let (mut nll, mut right, mut count) = (0.0f64, 0.0f64, 0usize);
    for i in 0..batcher.batches_per_epoch() {
        let (logits, target, mask) = match model {
            Model::Gpt(m) => {
                let b = batcher.decoder_batch(0, i, prep.kind, &prep.specials);
                let shape = (b.rows, b.len);
                let ids = Tensor::from_vec(b.input, shape, dev)?;
                let pad = Tensor::from_vec(b.pad_mask, shape, dev)?;
                (
                    m.forward(&ids, Some(&pad))?,
                    Tensor::from_vec(b.target, shape, dev)?,
                    Tensor::from_vec(b.loss_mask, shape, dev)?,
                )
            }
            Model::T5(m) => {
                let b = batcher.seq2seq_batch(0, i, &prep.specials);
                let src = Tensor::from_vec(b.src, (b.rows, b.src_len), dev)?;
                let sm = Tensor::from_vec(b.src_mask, (b.rows, b.src_len), dev)?;
                let dec = Tensor::from_vec(b.dec_in, (b.rows, b.tgt_len), dev)?;
                (
                    m.forward(&src, Some(&sm), &dec)?,
                    Tensor::from_vec(b.target, (b.rows, b.tgt_len), dev)?,
                    Tensor::from_vec(b.tgt_mask, (b.rows, b.tgt_len), dev)?,
                )
            }
        };
        let logits = logits.detach();
        let (loss, k) = masked_cross_entropy(&logits, &target, &mask)?;
        let (hits, _) = masked_accuracy(&logits, &target, &mask)?;
        nll += loss.to_vec1::<f32>()?[0] as f64 * k as f64;
        right += hits[0];
        count += k;
    }
    let c = count.max(1) as f64;
    Ok((nll / c, right / c, count))
}

/// Greedy generations for the first `n` validation examples, decoded.
fn generate(prep: &Prepared, model: &Model, n: usize) -> Result<Vec<String>> {
    let sp = &prep.specials;
    let max_new = prep.recipe.eval_max_new;
    let mut out = Vec::with_capacity(n);
    for chunk in prep.valid[..n].chunks(GENERATE_BATCH) {
        let tokens = match model {
            Model::Gpt(m) => {
                let prompts: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|e| {
                        let mut p = vec![sp.bos];
                        if prep.kind == CorpusKind::Qa {
                            p.push(sp.q);
                        }
                        p.extend_from_slice(&e.src);
                        p.push(if prep.kind == CorpusKind::Qa {
                            sp.a
                        } else {
                            sp.sep
                        });
                        p
                    })
                    .collect();
                m.generate(&prompts, max_new, sp.eos, &Sampling::Greedy, 0)?
            }
            Model::T5(m) => {
                let srcs: Vec<Vec<u32>> = chunk
                    .iter()
                    .map(|e| e.src.iter().copied().chain([sp.eos]).collect())
                    .collect();
                m.generate(&srcs, max_new, sp.eos, &Sampling::Greedy, 0)?
            }
        };
        out.extend(
            tokens[0]
                .iter()
                .map(|t| prep.tokenizer.decode(t).trim().to_string()),
        );
    }
    Ok(out)
}

/// `null` for a non-finite number (JSON has none).
pub fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}
