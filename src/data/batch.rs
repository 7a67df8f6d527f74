//! Tokenized examples and deterministic, length-bucketed batches in the two
//! model layouts, as plain row-major vectors (`rows × len`).
//!
//! Layouts (ids without padding; `PAD` fills the rest, mask 0):
//! - **decoder** (GPT): `BOS src SEP tgt EOS` for translation,
//!   `BOS Q src A tgt EOS` for Q&A; the input is the sequence without its
//!   last token, the target the sequence without its first, and the loss
//!   mask is 1 exactly where the target is a `tgt` token or `EOS`;
//! - **seq2seq** (T5): encoder `src EOS`; decoder input `BOS tgt`; decoder
//!   target `tgt EOS`.
//!
//! Order: every epoch the examples are shuffled with a generator seeded by
//! (seed, epoch), cut into pools of [`POOL_BATCHES`] batches, each pool is
//! sorted by length (stable, so ties keep the shuffled order) and cut into
//! batches, and the batches are shuffled. Batches therefore hold examples
//! of similar length (little padding) while the order stays random. The
//! `i`-th batch of an epoch depends only on the examples, the batch size,
//! the seed, `epoch` and `i`: a resumed run continues at `(epoch, i)` and
//! sees exactly the batches it would have seen.

use std::sync::{Arc, Mutex};

use super::corpus::{CorpusKind, Pair};
use super::rng::Rng;
use super::tokenizer::{Specials, Tokenizer};

/// Batches per length-sorted pool.
pub const POOL_BATCHES: usize = 32;

/// A tokenized pair (no special tokens), truncated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Example {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

/// Tokenize `pairs`, keeping at most `max_src` source and `max_tgt` target
/// tokens (specials are not counted: the decoder layout adds 3 for
/// translation, 4 for Q&A; seq2seq adds 1 to each side).
pub fn encode_pairs(
    tok: &Tokenizer,
    pairs: &[Pair],
    max_src: usize,
    max_tgt: usize,
) -> Vec<Example> {
    let texts: Vec<&str> = pairs
        .iter()
        .flat_map(|p| [p.src.as_str(), p.tgt.as_str()])
        .collect();
    let mut ids = tok.encode_many(&texts).into_iter();
    let mut out = Vec::with_capacity(pairs.len());
    while let (Some(mut src), Some(mut tgt)) = (ids.next(), ids.next()) {
        src.truncate(max_src);
        tgt.truncate(max_tgt);
        out.push(Example { src, tgt });
    }
    out
}

/// A decoder-only batch: `rows × len`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderBatch {
    pub rows: usize,
    pub len: usize,
    pub input: Vec<u32>,
    pub target: Vec<u32>,
    /// 1 where the target is a `tgt` token or `EOS` (the loss positions).
    pub loss_mask: Vec<f32>,
    /// 1 = real token, 0 = padding.
    pub pad_mask: Vec<f32>,
}

/// An encoder-decoder batch: `rows × src_len` and `rows × tgt_len`.
#[derive(Clone, Debug, PartialEq)]
pub struct Seq2SeqBatch {
    pub rows: usize,
    pub src_len: usize,
    pub tgt_len: usize,
    pub src: Vec<u32>,
    /// 1 = real source token.
    pub src_mask: Vec<f32>,
    pub dec_in: Vec<u32>,
    pub target: Vec<u32>,
    /// 1 = real target token (also the loss mask).
    pub tgt_mask: Vec<f32>,
}

/// One epoch's batches (indices into the examples), shared.
type EpochBatches = Arc<Vec<Vec<usize>>>;

/// Deterministic, length-bucketed batches of a fixed set of examples.
#[derive(Debug)]
pub struct Batcher {
    examples: Vec<Example>,
    batch_size: usize,
    seed: u64,
    /// The last epoch's batches, so that stepping through an epoch does
    /// not recompute its order.
    epoch_cache: Mutex<Option<(u64, EpochBatches)>>,
}

impl Batcher {
    /// `batch_size` 0 is taken as 1.
    pub fn new(examples: &[Example], batch_size: usize, seed: u64) -> Batcher {
        Batcher {
            examples: examples.to_vec(),
            batch_size: batch_size.max(1),
            seed,
            epoch_cache: Mutex::new(None),
        }
    }

    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// `ceil(examples / batch_size)`; every example is in exactly one batch
    /// of an epoch, and only the last batch of the last pool may be short.
    pub fn batches_per_epoch(&self) -> usize {
        self.examples.len().div_ceil(self.batch_size)
    }

    /// Indices (into the examples) of the `i`-th batch of `epoch`.
    /// Panics if `i >= batches_per_epoch()` (a caller's bug, not input).
    pub fn batch_indices(&self, epoch: u64, i: usize) -> Vec<usize> {
        let n = self.batches_per_epoch();
        assert!(i < n, "batch {i} of an epoch with {n} batches");
        self.epoch(epoch)[i].clone()
    }

    fn epoch(&self, epoch: u64) -> EpochBatches {
        let mut cache = self.epoch_cache.lock().unwrap_or_else(|e| e.into_inner());
        match &*cache {
            Some((e, b)) if *e == epoch => b.clone(),
            _ => {
                let b = Arc::new(self.order(epoch));
                *cache = Some((epoch, b.clone()));
                b
            }
        }
    }

    fn order(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = Rng::new(self.seed, 0x1000_u64.wrapping_add(epoch));
        let mut idx: Vec<usize> = (0..self.examples.len()).collect();
        rng.shuffle(&mut idx);
        let len = |i: &usize| self.examples[*i].src.len() + self.examples[*i].tgt.len();
        let mut batches = Vec::with_capacity(self.batches_per_epoch());
        for pool in idx.chunks_mut(self.batch_size * POOL_BATCHES) {
            pool.sort_by_key(len);
            batches.extend(pool.chunks(self.batch_size).map(<[usize]>::to_vec));
        }
        rng.shuffle(&mut batches);
        batches
    }

    /// The `i`-th batch of `epoch` in the decoder layout for `kind`.
    pub fn decoder_batch(
        &self,
        epoch: u64,
        i: usize,
        kind: CorpusKind,
        sp: &Specials,
    ) -> DecoderBatch {
        let rows: Vec<(Vec<u32>, usize)> = self
            .batch_indices(epoch, i)
            .into_iter()
            .map(|j| decoder_sequence(&self.examples[j], kind, sp))
            .collect();
        let len = rows.iter().map(|(s, _)| s.len() - 1).max().unwrap_or(0);
        let mut b = DecoderBatch {
            rows: rows.len(),
            len,
            input: vec![sp.pad; rows.len() * len],
            target: vec![sp.pad; rows.len() * len],
            loss_mask: vec![0.0; rows.len() * len],
            pad_mask: vec![0.0; rows.len() * len],
        };
        for (r, (seq, prefix)) in rows.iter().enumerate() {
            let base = r * len;
            for t in 0..seq.len() - 1 {
                b.input[base + t] = seq[t];
                b.target[base + t] = seq[t + 1];
                b.pad_mask[base + t] = 1.0;
                if t + 1 >= *prefix {
                    b.loss_mask[base + t] = 1.0;
                }
            }
        }
        b
    }

    /// The `i`-th batch of `epoch` in the encoder-decoder layout.
    pub fn seq2seq_batch(&self, epoch: u64, i: usize, sp: &Specials) -> Seq2SeqBatch {
        let idx = self.batch_indices(epoch, i);
        let ex: Vec<&Example> = idx.iter().map(|&j| &self.examples[j]).collect();
        let src_len = ex.iter().map(|e| e.src.len() + 1).max().unwrap_or(0);
        let tgt_len = ex.iter().map(|e| e.tgt.len() + 1).max().unwrap_or(0);
        let rows = ex.len();
        let mut b = Seq2SeqBatch {
            rows,
            src_len,
            tgt_len,
            src: vec![sp.pad; rows * src_len],
            src_mask: vec![0.0; rows * src_len],
            dec_in: vec![sp.pad; rows * tgt_len],
            target: vec![sp.pad; rows * tgt_len],
            tgt_mask: vec![0.0; rows * tgt_len],
        };
        for (r, e) in ex.iter().enumerate() {
            let (s, t) = (r * src_len, r * tgt_len);
            let src = e.src.iter().chain([&sp.eos]);
            for (k, &id) in src.enumerate() {
                b.src[s + k] = id;
                b.src_mask[s + k] = 1.0;
            }
            let dec_in = [sp.bos].into_iter().chain(e.tgt.iter().copied());
            let target = e.tgt.iter().copied().chain([sp.eos]);
            for (k, (x, y)) in dec_in.zip(target).enumerate() {
                b.dec_in[t + k] = x;
                b.target[t + k] = y;
                b.tgt_mask[t + k] = 1.0;
            }
        }
        b
    }
}

/// The full decoder sequence of one example and the length of its prefix
/// (everything before the first `tgt` token).
pub fn decoder_sequence(e: &Example, kind: CorpusKind, sp: &Specials) -> (Vec<u32>, usize) {
    let mut seq = Vec::with_capacity(e.src.len() + e.tgt.len() + 4);
    seq.push(sp.bos);
    if kind == CorpusKind::Qa {
        seq.push(sp.q);
    }
    seq.extend_from_slice(&e.src);
    seq.push(if kind == CorpusKind::Qa { sp.a } else { sp.sep });
    let prefix = seq.len();
    seq.extend_from_slice(&e.tgt);
    seq.push(sp.eos);
    (seq, prefix)
}
