//! The T5-style encoder-decoder: a shared token embedding, relative
//! position buckets (bidirectional in the encoder, causal in the decoder;
//! one bias table per stack, used by its first layer's buckets in every
//! layer as T5 does), RMS norm, no biases, pre-norm blocks, a non-gated FFN
//! `wo(act(wi x))` with the pluggable activation, cross-attention, and
//! teacher-forced logits for every target position; for a population of P
//! members, with KV-cache generation (the encoder output and the
//! cross-attention keys and values computed once). No dropout.
//!
//! Parameters (every one `[P, …]`; `f` = `init_factor`, Hugging Face's
//! T5 scheme, attention unscaled):
//!
//! | name | per-member shape | initial |
//! |---|---|---|
//! | `shared.weight` | `[V, D]` | normal(0, f) |
//! | `{encoder,decoder}.relative_attention_bias.weight` | `[buckets, H]` | normal(0, f·D^-½) |
//! | `encoder.block.{i}.self_attn.q.weight` (also decoder self/cross) | `[D, H·Dkv]` | normal(0, f·(D·Dkv)^-½) |
//! | `….{k,v}.weight` | `[D, H·Dkv]` | normal(0, f·D^-½) |
//! | `….o.weight` | `[H·Dkv, D]` | normal(0, f·(H·Dkv)^-½) |
//! | `{encoder,decoder}.block.{i}.ffn.wi.weight` | `[D, F]` | normal(0, f·D^-½) |
//! | `{encoder,decoder}.block.{i}.ffn.wo.weight` | `[F, D]` | normal(0, f·F^-½) |
//! | `….ln_attn`, `decoder….ln_cross`, `….ln_ffn`, `….final_norm` `.weight` | `[1, D]` | f |
//! | `lm_head.weight` (untied only) | `[D, V]` | normal(0, f·D^-½) |
//!
//! The untied head starts at D^-½ (not Hugging Face's 1) so that its first
//! logits have the scale of the tied head's. Must not read files other
//! than through [`super::config`], or know about data, training or search.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::attention::{Attention, AttnInit, AttnShape, KvCache};
use super::buckets::bucket_table;
use super::config::T5Config;
use super::embedding::{lookup_members, lookup_shared};
use super::generate::{Outputs, Picker, Sampling};
use super::init::{Init, ParamBuilder};
use super::input::{check_ids, check_mask, check_population, check_prompts, pad_batch};
use super::linear::Linear;
use super::mask::host_mask;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use crate::op::softmax::{KeyMask, ScoreMask};
use crate::op::Activation;
use crate::Result;

struct EncBlock {
    ln_attn: RmsNorm,
    attn: Attention,
    ln_ffn: RmsNorm,
    ffn: Mlp,
}

struct DecBlock {
    ln_attn: RmsNorm,
    self_attn: Attention,
    ln_cross: RmsNorm,
    cross_attn: Attention,
    ln_ffn: RmsNorm,
    ffn: Mlp,
}

/// The encoder's output for a batch of sources.
struct Encoded {
    /// `[P, B·S, D]`.
    h: Tensor,
    b: usize,
    s: usize,
    /// Which source keys are real (none: all).
    pad: ScoreMask,
}

/// A population of T5-style encoder-decoders.
pub struct T5 {
    cfg: T5Config,
    acts: Vec<Activation>,
    shared: Tensor,
    enc_bias: Tensor,
    dec_bias: Tensor,
    enc: Vec<EncBlock>,
    enc_norm: RmsNorm,
    dec: Vec<DecBlock>,
    dec_norm: RmsNorm,
    lm_head: Option<Tensor>,
    device: Device,
}

impl T5 {
    /// P = `acts.len()` members, all initialised from `seed`.
    pub fn new(
        cfg: &T5Config,
        acts: Vec<Activation>,
        seed: u64,
        device: &Device,
    ) -> Result<(T5, VarMap)> {
        let seeds = vec![seed; acts.len()];
        T5::new_population(cfg, acts, &seeds, device)
    }

    /// Member `p` uses `acts[p]` and initial weights from `seeds[p]`.
    pub fn new_population(
        cfg: &T5Config,
        acts: Vec<Activation>,
        seeds: &[u64],
        device: &Device,
    ) -> Result<(T5, VarMap)> {
        cfg.validate()?;
        check_population(&acts, seeds)?;
        let varmap = VarMap::new();
        let pb = ParamBuilder::new(&varmap, seeds, device);
        let (d, f) = (cfg.d_model as f64, cfg.init_factor);
        let bias_table = |n: &str| {
            let name = format!("{n}.relative_attention_bias.weight");
            pb.param(
                &name,
                &[cfg.num_buckets, cfg.n_head],
                Init::Normal(f / d.sqrt()),
            )
        };
        let norm = |n: &str| RmsNorm::new(&pb, n, cfg.d_model, f, cfg.eps);
        let t5 = T5 {
            shared: pb.param("shared.weight", &[cfg.vocab, cfg.d_model], Init::Normal(f))?,
            enc_bias: bias_table("encoder")?,
            dec_bias: bias_table("decoder")?,
            enc: (0..cfg.n_enc_layer)
                .map(|i| EncBlock::new(&pb, cfg, i))
                .collect::<Result<_>>()?,
            enc_norm: norm("encoder.final_norm")?,
            dec: (0..cfg.n_dec_layer)
                .map(|i| DecBlock::new(&pb, cfg, i))
                .collect::<Result<_>>()?,
            dec_norm: norm("decoder.final_norm")?,
            lm_head: match cfg.tied {
                true => None,
                false => {
                    let init = Init::Normal(f / d.sqrt());
                    Some(pb.param("lm_head.weight", &[cfg.d_model, cfg.vocab], init)?)
                }
            },
            cfg: cfg.clone(),
            acts,
            device: device.clone(),
        };
        Ok((t5, varmap))
    }

    pub fn config(&self) -> &T5Config {
        &self.cfg
    }

    pub fn activations(&self) -> &[Activation] {
        &self.acts
    }

    pub fn population(&self) -> usize {
        self.acts.len()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Teacher-forced logits `[P, B, T, V]` for sources `[B, S]` (padding
    /// hidden by `src_mask`, 1 = token) and decoder inputs `[B, T]` (the
    /// targets shifted right behind `decoder_start`), shared by all members.
    /// Padding at the end of `dec_in` cannot reach earlier positions.
    pub fn forward(
        &self,
        src: &Tensor,
        src_mask: Option<&Tensor>,
        dec_in: &Tensor,
    ) -> Result<Tensor> {
        let (b, t) = dec_in.dims2()?;
        let logits = self.forward_rows(src, src_mask, dec_in)?;
        Ok(logits.reshape((self.population(), b, t, self.cfg.vocab))?)
    }

    /// [`T5::forward`]'s logits as `[P, B·T, V]` (see
    /// [`Gpt::forward_rows`](super::Gpt::forward_rows)).
    pub fn forward_rows(
        &self,
        src: &Tensor,
        src_mask: Option<&Tensor>,
        dec_in: &Tensor,
    ) -> Result<Tensor> {
        let enc = self.encode(src, src_mask)?;
        let (b, t) = check_ids("T5 forward (decoder input)", dec_in, self.cfg.vocab)?;
        if b != enc.b {
            return Err(crate::Error::Usage(format!(
                "T5 forward: {} sources but {b} decoder inputs",
                enc.b
            )));
        }
        let x = lookup_shared(&self.shared, dec_in)?;
        let bias = self.position_bias(&self.dec_bias, t, t, 0, false)?;
        let mask = ScoreMask {
            causal: Some(0),
            keys: None,
        };
        let mut x = x;
        for blk in &self.dec {
            let (ck, cv) = blk.cross_attn.keys_values(&enc.h, b, enc.s)?;
            x = blk.forward(
                &x,
                (b, t),
                (&bias, &mask),
                (&ck, &cv),
                &enc,
                None,
                &self.acts,
            )?;
        }
        self.logits(&x)
    }

    /// Translates every source (right-padded into one batch): the encoder
    /// runs once, the decoder one token per step from `decoder_start` with
    /// cached self-attention keys and values, until EOS or `max_new` new
    /// tokens. Returns the new tokens `[P][source]` without the EOS.
    /// Greedy decoding of a batch gives what each source gives alone;
    /// sampled rows draw from streams keyed by (`seed`, row index).
    pub fn generate(
        &self,
        srcs: &[Vec<u32>],
        max_new: usize,
        eos: u32,
        sampling: &Sampling,
        seed: u64,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        check_prompts("T5 generate", srcs, self.cfg.vocab)?;
        let (ids, mask, len) = pad_batch(srcs, self.cfg.pad, false);
        let (p, b) = (self.population(), srcs.len());
        let ids = Tensor::from_vec(ids, (b, len), &self.device)?;
        let flat: Vec<f32> = mask
            .iter()
            .flatten()
            .map(|&m| f32::from(u8::from(m)))
            .collect();
        let mask = Tensor::from_vec(flat, (b, len), &self.device)?;
        let enc = self.encode(&ids, Some(&mask))?;
        let cross = self
            .dec
            .iter()
            .map(|blk| blk.cross_attn.keys_values(&enc.h, b, enc.s))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut caches: Vec<KvCache> = self.dec.iter().map(|_| KvCache::default()).collect();
        let mut out = Outputs::new(p, vec![max_new; b], eos);
        let mut picker = Picker::new(sampling, p, b, seed)?;
        let mut picks = vec![vec![self.cfg.decoder_start; b]; p];
        for t in 0.. {
            if out.all_done() {
                break;
            }
            let logits = self.step(&picks, t, &enc, &cross, &mut caches)?;
            picks = picker.pick(&logits)?;
            out.push(&picks);
        }
        Ok(out.tokens)
    }

    /// Encoder output for sources `[B, S]`.
    fn encode(&self, src: &Tensor, src_mask: Option<&Tensor>) -> Result<Encoded> {
        let (b, s) = check_ids("T5 forward (source)", src, self.cfg.vocab)?;
        let keys = match src_mask {
            Some(m) => {
                check_mask("T5 forward (source)", m, (b, s))?;
                Some(KeyMask::new(&host_mask(m)?))
            }
            None => None,
        };
        let pad = ScoreMask { causal: None, keys };
        let bias = self.position_bias(&self.enc_bias, s, s, 0, true)?;
        let mut x = lookup_shared(&self.shared, src)?;
        for blk in &self.enc {
            x = blk.forward(&x, (b, s), (&bias, &pad), &self.acts)?;
        }
        Ok(Encoded {
            h: self.enc_norm.forward(&x)?,
            b,
            s,
            pad,
        })
    }

    /// One decoder step at position `t` for tokens `[P][B]`: logits `[P, B, V]`.
    fn step(
        &self,
        picks: &[Vec<u32>],
        t: usize,
        enc: &Encoded,
        cross: &[(Tensor, Tensor)],
        caches: &mut [KvCache],
    ) -> Result<Tensor> {
        let mut x = lookup_members(&self.shared, picks)?;
        let bias = self.position_bias(&self.dec_bias, 1, t + 1, t, false)?;
        for ((blk, (ck, cv)), cache) in self.dec.iter().zip(cross).zip(caches.iter_mut()) {
            x = blk.forward(
                &x,
                (enc.b, 1),
                (&bias, &ScoreMask::default()),
                (ck, cv),
                enc,
                Some(cache),
                &self.acts,
            )?;
        }
        self.logits(&x)
    }

    /// Bias `[P, 1, H, T, S]` of queries at `offset..offset + t` against
    /// keys `0..s`, from a table `[P, buckets, H]`.
    fn position_bias(
        &self,
        table: &Tensor,
        t: usize,
        s: usize,
        offset: usize,
        bidirectional: bool,
    ) -> candle_core::Result<Tensor> {
        let buckets = (self.cfg.num_buckets, self.cfg.max_distance);
        let idx = bucket_table(t, s, offset, bidirectional, buckets, &self.device)?;
        let (p, _, h) = table.dims3()?;
        table
            .index_select(&idx.flatten_all()?, 1)?
            .reshape((p, t, s, h))?
            .permute((0, 3, 1, 2))?
            .unsqueeze(1)
    }

    /// Decoder states `[P, N, D]` → logits `[P, N, V]`.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.dec_norm.forward(x)?;
        Ok(match &self.lm_head {
            Some(w) => h.matmul(w)?,
            None => {
                (h * (self.cfg.d_model as f64).powf(-0.5))?.matmul(&self.shared.transpose(1, 2)?)?
            }
        })
    }
}

fn attn_parts(cfg: &T5Config) -> (AttnShape, AttnInit) {
    let (d, f) = (cfg.d_model as f64, cfg.init_factor);
    let inner = (cfg.n_head * cfg.d_kv) as f64;
    let shape = AttnShape {
        d_model: cfg.d_model,
        n_head: cfg.n_head,
        d_head: cfg.d_kv,
    };
    let init = AttnInit {
        q: f / (d * cfg.d_kv as f64).sqrt(),
        kv: f / d.sqrt(),
        o: f / inner.sqrt(),
    };
    (shape, init)
}

fn ffn(pb: &ParamBuilder, cfg: &T5Config, name: &str) -> Result<Mlp> {
    let (d, ff, f) = (cfg.d_model, cfg.d_ff, cfg.init_factor);
    Ok(Mlp {
        w1: Linear::new(
            pb,
            &format!("{name}.wi"),
            (d, ff),
            f / (d as f64).sqrt(),
            false,
        )?,
        w2: Linear::new(
            pb,
            &format!("{name}.wo"),
            (ff, d),
            f / (ff as f64).sqrt(),
            false,
        )?,
    })
}

fn attention(pb: &ParamBuilder, cfg: &T5Config, name: &str) -> Result<Attention> {
    let (shape, init) = attn_parts(cfg);
    Attention::new(pb, name, shape, init, false, 1.0)
}

impl EncBlock {
    fn new(pb: &ParamBuilder, cfg: &T5Config, i: usize) -> Result<EncBlock> {
        let name = |n: &str| format!("encoder.block.{i}.{n}");
        let norm = |n: &str| RmsNorm::new(pb, &name(n), cfg.d_model, cfg.init_factor, cfg.eps);
        Ok(EncBlock {
            ln_attn: norm("ln_attn")?,
            attn: attention(pb, cfg, &name("self_attn"))?,
            ln_ffn: norm("ln_ffn")?,
            ffn: ffn(pb, cfg, &name("ffn"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        (b, s): (usize, usize),
        (bias, mask): (&Tensor, &ScoreMask),
        acts: &[Activation],
    ) -> candle_core::Result<Tensor> {
        let h = self.ln_attn.forward(x)?;
        let q = self.attn.queries(&h, b, s)?;
        let (k, v) = self.attn.keys_values(&h, b, s)?;
        let x = (x + self.attn.attend(&q, &k, &v, Some(bias), mask)?)?;
        let m = self.ffn.forward(&self.ln_ffn.forward(&x)?, acts)?;
        x + m
    }
}

impl DecBlock {
    fn new(pb: &ParamBuilder, cfg: &T5Config, i: usize) -> Result<DecBlock> {
        let name = |n: &str| format!("decoder.block.{i}.{n}");
        let norm = |n: &str| RmsNorm::new(pb, &name(n), cfg.d_model, cfg.init_factor, cfg.eps);
        Ok(DecBlock {
            ln_attn: norm("ln_attn")?,
            self_attn: attention(pb, cfg, &name("self_attn"))?,
            ln_cross: norm("ln_cross")?,
            cross_attn: attention(pb, cfg, &name("cross_attn"))?,
            ln_ffn: norm("ln_ffn")?,
            ffn: ffn(pb, cfg, &name("ffn"))?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        (b, t): (usize, usize),
        (bias, mask): (&Tensor, &ScoreMask),
        (ck, cv): (&Tensor, &Tensor),
        enc: &Encoded,
        cache: Option<&mut KvCache>,
        acts: &[Activation],
    ) -> candle_core::Result<Tensor> {
        let h = self.ln_attn.forward(x)?;
        let q = self.self_attn.queries(&h, b, t)?;
        let (k, v) = self.self_attn.keys_values(&h, b, t)?;
        let (k, v) = match cache {
            Some(c) => c.append(k, v)?,
            None => (k, v),
        };
        let x = (x + self.self_attn.attend(&q, &k, &v, Some(bias), mask)?)?;
        let q = self.cross_attn.queries(&self.ln_cross.forward(&x)?, b, t)?;
        let x = (&x + self.cross_attn.attend(&q, ck, cv, None, &enc.pad)?)?;
        let m = self.ffn.forward(&self.ln_ffn.forward(&x)?, acts)?;
        x + m
    }
}
