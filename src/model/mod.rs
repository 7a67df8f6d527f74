//! Models whose MLP activation is an [`op::Activation`](crate::op::Activation):
//! a GPT-style decoder ([`Gpt`]) and a T5-style encoder-decoder ([`T5`]),
//! built from differentiable candle ops, with KV-cache generation.
//!
//! Every layer carries a leading population dimension P: parameters are
//! `[P, …]` (weights `[P, in, out]`, embeddings `[P, V, D]`), hidden
//! states `[P, B·T, D]`, and logits come out `[P, B, T, V]`, while the
//! token ids `[B, T]` are shared by every member (common random numbers).
//! Member `p` runs activation `p`; the members share no parameter, so a
//! population of P trains as P independent models in lockstep.
//!
//! Initial weights are a pure function of (config, seed): see [`init`].
//! Parameters live in a `candle_nn::VarMap` under stable names (the tables
//! in [`gpt`] and [`t5`]); iterate them sorted by name for a fixed order.
//!
//! `model` sits above `op` in the pipeline: it uses `op` (and below) and
//! the leaf `error`. It reads no file except a Hugging Face T5
//! `config.json` handed to [`T5Config::from_hf_file`], and knows nothing of
//! data, training recipes or the search.

mod attention;
pub mod buckets;
pub mod config;
mod embedding;
pub mod generate;
pub mod gpt;
pub mod init;
mod input;
mod linear;
pub mod loss;
mod mask;
mod mlp;
mod norm;
pub mod ops;
pub mod t5;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

pub use config::{GptConfig, ModelConfig, T5Config, GPT_PRESETS, T5_PRESETS};
pub use generate::Sampling;
pub use gpt::Gpt;
pub use loss::{masked_accuracy, masked_cross_entropy};
pub use t5::T5;

use crate::op::Activation;
use crate::Result;

/// Either model, for a trainer that holds one of them.
pub enum Model {
    Gpt(Gpt),
    T5(T5),
}

impl Model {
    /// P = `acts.len()` members, all initialised from `seed`.
    pub fn new(
        cfg: &ModelConfig,
        acts: Vec<Activation>,
        seed: u64,
        device: &Device,
    ) -> Result<(Model, VarMap)> {
        Ok(match cfg {
            ModelConfig::Gpt(c) => {
                let (m, vars) = Gpt::new(c, acts, seed, device)?;
                (Model::Gpt(m), vars)
            }
            ModelConfig::T5(c) => {
                let (m, vars) = T5::new(c, acts, seed, device)?;
                (Model::T5(m), vars)
            }
        })
    }

    pub fn activations(&self) -> &[Activation] {
        match self {
            Model::Gpt(m) => m.activations(),
            Model::T5(m) => m.activations(),
        }
    }

    /// P, the number of members.
    pub fn population(&self) -> usize {
        self.activations().len()
    }

    pub fn device(&self) -> &Device {
        match self {
            Model::Gpt(m) => m.device(),
            Model::T5(m) => m.device(),
        }
    }

    pub fn vocab(&self) -> usize {
        match self {
            Model::Gpt(m) => m.config().vocab,
            Model::T5(m) => m.config().vocab,
        }
    }
}

/// The variables of a `VarMap` sorted by name: the fixed order in which a
/// trainer visits, clips or saves them.
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().expect("VarMap lock poisoned");
    let mut vars: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Member `p`'s slice of every parameter, by name (tests, and copying one
/// candidate out of a population).
pub fn member_params(varmap: &VarMap, p: usize) -> Result<Vec<(String, Tensor)>> {
    sorted_vars(varmap)
        .into_iter()
        .map(|(k, v)| Ok((k, v.as_tensor().get(p)?)))
        .collect()
}

/// Member `p` of a population (its parameters in `varmap`, activation
/// `act`) copied into a single model (P = 1) with the same parameter
/// names: how a lockstep trainer evaluates each member with the one-model
/// code. `seed` only initialises the copy before it is overwritten.
pub fn member(
    cfg: &ModelConfig,
    varmap: &VarMap,
    p: usize,
    act: &Activation,
    seed: u64,
) -> Result<Model> {
    let population = sorted_vars(varmap);
    let device = population
        .first()
        .map(|(_, v)| v.device().clone())
        .unwrap_or(Device::Cpu);
    let (model, single) = Model::new(cfg, vec![act.clone()], seed, &device)?;
    let single = sorted_vars(&single);
    if single.len() != population.len() {
        return Err(crate::Error::Internal(format!(
            "a population of {} parameters and a single model of {} differ",
            population.len(),
            single.len()
        )));
    }
    for ((name, one), (pname, all)) in single.iter().zip(&population) {
        if name != pname {
            return Err(crate::Error::Internal(format!(
                "parameter `{name}` of the single model is `{pname}` in the population"
            )));
        }
        one.set(&all.as_tensor().narrow(0, p, 1)?.contiguous()?)?;
    }
    Ok(model)
}
