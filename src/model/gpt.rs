//! The GPT-style decoder: token + learned position embeddings, pre-norm
//! blocks (causal multi-head self-attention, MLP `W2 · act(W1 x)`, both
//! with biases), a final layer norm and an output head tied to the token
//! embedding (or a separate one, [`GptConfig::tied`]); for a population of
//! P members at once, with KV-cache generation.
//!
//! Parameters (every one `[P, …]`; initial values from [`super::init`]):
//!
//! | name | per-member shape | initial |
//! |---|---|---|
//! | `wte.weight` | `[V, D]` | normal(0, 0.02) |
//! | `wpe.weight` | `[max_len, D]` | normal(0, 0.02) |
//! | `h.{i}.ln1.{weight,bias}`, `h.{i}.ln2.…`, `ln_f.…` | `[1, D]` | 1, 0 |
//! | `h.{i}.attn.{q,k,v}.weight` | `[D, D]` | normal(0, 0.02) |
//! | `h.{i}.attn.o.weight` | `[D, D]` | normal(0, 0.02 / sqrt(2·n_layer)) |
//! | `h.{i}.mlp.w1.weight` | `[D, F]` | normal(0, 0.02) |
//! | `h.{i}.mlp.w2.weight` | `[F, D]` | normal(0, 0.02 / sqrt(2·n_layer)) |
//! | `h.{i}.attn.{q,k,v,o}.bias`, `h.{i}.mlp.{w1,w2}.bias` | `[1, out]` | 0 |
//! | `lm_head.weight` (untied only) | `[D, V]` | normal(0, 0.02) |
//!
//! The residual projections are scaled down as GPT-2 does. Must not read
//! files or know about data, training or the search.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::attention::{Attention, AttnInit, AttnShape, KvCache};
use super::config::GptConfig;
use super::embedding::{lookup_members, lookup_shared};
use super::generate::{Outputs, Picker, Sampling};
use super::init::{Init, ParamBuilder};
use super::input::{check_ids, check_mask, check_population, check_prompts, pad_batch};
use super::linear::Linear;
use super::loss::{masked_cross_entropy, tied_head_cross_entropy};
use super::mask::{host_mask, positions};
use super::mlp::Mlp;
use super::norm::LayerNorm;
use crate::op::softmax::{KeyMask, ScoreMask};
use crate::op::Activation;
use crate::{Error, Result};

const STD: f64 = 0.02;

struct Block {
    ln1: LayerNorm,
    attn: Attention,
    ln2: LayerNorm,
    mlp: Mlp,
}

/// A population of GPT-style decoders.
pub struct Gpt {
    cfg: GptConfig,
    acts: Vec<Activation>,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Option<Tensor>,
    device: Device,
}

impl Gpt {
    /// P = `acts.len()` members, all initialised from `seed` (the same
    /// weights for every activation: common random numbers).
    pub fn new(
        cfg: &GptConfig,
        acts: Vec<Activation>,
        seed: u64,
        device: &Device,
    ) -> Result<(Gpt, VarMap)> {
        let seeds = vec![seed; acts.len()];
        Gpt::new_population(cfg, acts, &seeds, device)
    }

    /// Member `p` uses `acts[p]` and initial weights from `seeds[p]`.
    pub fn new_population(
        cfg: &GptConfig,
        acts: Vec<Activation>,
        seeds: &[u64],
        device: &Device,
    ) -> Result<(Gpt, VarMap)> {
        cfg.validate()?;
        check_population(&acts, seeds)?;
        let varmap = VarMap::new();
        let pb = ParamBuilder::new(&varmap, seeds, device);
        let (d, v) = (cfg.d_model, cfg.vocab);
        let gpt = Gpt {
            wte: pb.param("wte.weight", &[v, d], Init::Normal(STD))?,
            wpe: pb.param("wpe.weight", &[cfg.max_len, d], Init::Normal(STD))?,
            blocks: (0..cfg.n_layer)
                .map(|i| Block::new(&pb, cfg, i))
                .collect::<Result<_>>()?,
            ln_f: LayerNorm::new(&pb, "ln_f", d, cfg.eps)?,
            lm_head: match cfg.tied {
                true => None,
                false => Some(pb.param("lm_head.weight", &[d, v], Init::Normal(STD))?),
            },
            cfg: cfg.clone(),
            acts,
            device: device.clone(),
        };
        Ok((gpt, varmap))
    }

    pub fn config(&self) -> &GptConfig {
        &self.cfg
    }

    pub fn activations(&self) -> &[Activation] {
        &self.acts
    }

    /// P, the number of members.
    pub fn population(&self) -> usize {
        self.acts.len()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Logits `[P, B, T, V]` for ids `[B, T]` shared by every member.
    /// `pad_mask` `[B, T]` (1 = token, 0 = padding; padding on either side)
    /// hides padding keys and numbers each row's positions from its first
    /// real token, so padding does not change the logits of real tokens.
    pub fn forward(&self, ids: &Tensor, pad_mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let logits = self.forward_rows(ids, pad_mask)?;
        Ok(logits.reshape((self.population(), b, t, self.cfg.vocab))?)
    }

    /// [`Gpt::forward`]'s logits as `[P, B·T, V]`, the matmul's own output
    /// (what a loss takes: a reshape would add a node whose gradient
    /// candle accumulates into a fresh zeroed copy of the logits).
    pub fn forward_rows(&self, ids: &Tensor, pad_mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self.hidden_rows(ids, pad_mask)?;
        self.logits(&h)
    }

    /// The training loss of [`Gpt::forward_rows`]'s logits:
    /// [`masked_cross_entropy`] per member against `target` where `mask`
    /// is 1 (both `[B, T]`), and the number of tokens it averages. A tied
    /// head takes [`tied_head_cross_entropy`] (on the CPU one op for the
    /// head and the loss, the same bits), an untied one its matmul.
    pub fn loss_rows(
        &self,
        ids: &Tensor,
        pad_mask: Option<&Tensor>,
        target: &Tensor,
        mask: &Tensor,
    ) -> Result<(Tensor, usize)> {
        let h = self.ln_f.forward(&self.hidden_rows(ids, pad_mask)?)?;
        Ok(match &self.lm_head {
            Some(w) => masked_cross_entropy(&h.matmul(w)?, target, mask)?,
            None => tied_head_cross_entropy(&h, &self.wte, target, mask)?,
        })
    }

    /// Hidden states `[P, B·T, D]` after the last block (before the final
    /// norm).
    fn hidden_rows(&self, ids: &Tensor, pad_mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t) = check_ids("GPT forward", ids, self.cfg.vocab)?;
        self.check_len(t)?;
        let mut mask = ScoreMask {
            causal: Some(0),
            keys: None,
        };
        let pos: Vec<u32> = match pad_mask {
            Some(m) => {
                check_mask("GPT forward", m, (b, t))?;
                let host = host_mask(m)?;
                mask.keys = Some(KeyMask::new(&host));
                positions(&host)
            }
            None => (0..b).flat_map(|_| 0..t as u32).collect(),
        };
        let x = lookup_shared(&self.wte, ids)?.broadcast_add(&self.positions(&pos)?)?;
        self.blocks_forward(x, (b, t), &mask, None)
    }

    /// Continues every prompt (left-padded into one batch, KV-cached) until
    /// EOS, `max_new` new tokens, or `max_len` tokens in all. Returns the
    /// new tokens `[P][prompt]` without the EOS. Greedy decoding of a batch
    /// gives what each prompt gives alone; sampled rows draw from streams
    /// keyed by (`seed`, row index), the same for every member.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        max_new: usize,
        eos: u32,
        sampling: &Sampling,
        seed: u64,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        check_prompts("GPT generate", prompts, self.cfg.vocab)?;
        let (ids, mask, len) = pad_batch(prompts, 0, true);
        self.check_len(len)?;
        let (p, b) = (self.population(), prompts.len());
        let limits = prompts
            .iter()
            .map(|r| max_new.min(self.cfg.max_len - r.len()))
            .collect();
        let mut picker = Picker::new(sampling, p, b, seed)?;
        let mut out = Outputs::new(p, limits, eos);
        if out.all_done() {
            return Ok(out.tokens);
        }
        let mut caches: Vec<KvCache> = self.blocks.iter().map(|_| KvCache::default()).collect();
        let mut keys = KeyMask::new(&mask);
        let mut next_pos: Vec<u32> = prompts.iter().map(|r| r.len() as u32).collect();
        let mut logits = self.prefill(&ids, &mask, &keys, &mut caches)?;
        loop {
            let picks = picker.pick(&logits)?;
            out.push(&picks);
            if out.all_done() {
                return Ok(out.tokens);
            }
            keys = keys.extended(1);
            logits = self.step(&picks, &next_pos, &keys, &mut caches)?;
            let last = self.cfg.max_len as u32 - 1;
            next_pos.iter_mut().for_each(|q| *q = (*q + 1).min(last));
        }
    }

    /// Runs the left-padded prompts through the model, filling the caches;
    /// logits `[P, B, V]` of each row's last token.
    fn prefill(
        &self,
        ids: &[u32],
        mask: &[Vec<bool>],
        keys: &KeyMask,
        caches: &mut [KvCache],
    ) -> Result<Tensor> {
        let (p, b, len) = (self.population(), mask.len(), mask[0].len());
        let ids = Tensor::from_slice(ids, (b, len), &self.device)?;
        let x =
            lookup_shared(&self.wte, &ids)?.broadcast_add(&self.positions(&positions(mask))?)?;
        let mask = ScoreMask {
            causal: Some(0),
            keys: Some(keys.clone()),
        };
        let h = self.blocks_forward(x, (b, len), &mask, Some(caches))?;
        let last = h
            .reshape((p, b, len, self.cfg.d_model))?
            .narrow(2, len - 1, 1)?
            .reshape((p, b, self.cfg.d_model))?;
        self.logits(&last)
    }

    /// Feeds one token per (member, row) at the rows' positions; logits
    /// `[P, B, V]` of the next one.
    fn step(
        &self,
        picks: &[Vec<u32>],
        pos: &[u32],
        keys: &KeyMask,
        caches: &mut [KvCache],
    ) -> Result<Tensor> {
        let x = lookup_members(&self.wte, picks)?.broadcast_add(&self.positions(pos)?)?;
        let mask = ScoreMask {
            causal: None,
            keys: Some(keys.clone()),
        };
        let h = self.blocks_forward(x, (pos.len(), 1), &mask, Some(caches))?;
        self.logits(&h)
    }

    fn check_len(&self, t: usize) -> Result<()> {
        if t > self.cfg.max_len {
            return Err(Error::Usage(format!(
                "GPT: sequence of {t} tokens is longer than the model's {} positions",
                self.cfg.max_len
            )));
        }
        Ok(())
    }

    /// Position embeddings `[P, N, D]` of host positions.
    fn positions(&self, pos: &[u32]) -> Result<Tensor> {
        let idx = Tensor::from_slice(pos, pos.len(), &self.device)?;
        Ok(lookup_shared(&self.wpe, &idx)?)
    }

    /// Hidden states `[P, B·T, D]` after every block (and the final norm
    /// comes in [`Gpt::logits`]); with caches, keys and values are appended.
    fn blocks_forward(
        &self,
        mut x: Tensor,
        (b, t): (usize, usize),
        mask: &ScoreMask,
        mut caches: Option<&mut [KvCache]>,
    ) -> Result<Tensor> {
        for (i, blk) in self.blocks.iter().enumerate() {
            let cache = caches.as_deref_mut().map(|c| &mut c[i]);
            x = blk.forward(&x, (b, t), mask, cache, &self.acts)?;
        }
        Ok(x)
    }

    /// `[P, N, D]` hidden states → `[P, N, V]` logits.
    fn logits(&self, h: &Tensor) -> Result<Tensor> {
        let h = self.ln_f.forward(h)?;
        Ok(match &self.lm_head {
            Some(w) => h.matmul(w)?,
            None => h.matmul(&self.wte.transpose(1, 2)?)?,
        })
    }
}

impl Block {
    fn new(pb: &ParamBuilder, cfg: &GptConfig, i: usize) -> Result<Block> {
        let (d, f) = (cfg.d_model, cfg.d_ff);
        let resid = STD / (2.0 * cfg.n_layer as f64).sqrt();
        let name = |n: &str| format!("h.{i}.{n}");
        let shape = AttnShape {
            d_model: d,
            n_head: cfg.n_head,
            d_head: cfg.d_head(),
        };
        let init = AttnInit {
            q: STD,
            kv: STD,
            o: resid,
        };
        let scale = 1.0 / (cfg.d_head() as f64).sqrt();
        Ok(Block {
            ln1: LayerNorm::new(pb, &name("ln1"), d, cfg.eps)?,
            attn: Attention::new(pb, &name("attn"), shape, init, true, scale)?,
            ln2: LayerNorm::new(pb, &name("ln2"), d, cfg.eps)?,
            mlp: Mlp {
                w1: Linear::new(pb, &name("mlp.w1"), (d, f), STD, true)?,
                w2: Linear::new(pb, &name("mlp.w2"), (f, d), resid, true)?,
            },
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        (b, t): (usize, usize),
        mask: &ScoreMask,
        cache: Option<&mut KvCache>,
        acts: &[Activation],
    ) -> candle_core::Result<Tensor> {
        let h = self.ln1.forward(x)?;
        let q = self.attn.queries(&h, b, t)?;
        let (k, v) = self.attn.keys_values(&h, b, t)?;
        let (k, v) = match cache {
            Some(c) => c.append(k, v)?,
            None => (k, v),
        };
        let x = (x + self.attn.attend(&q, &k, &v, None, mask)?)?;
        let m = self.mlp.forward(&self.ln2.forward(&x)?, acts)?;
        x + m
    }
}
