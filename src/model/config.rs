//! Model shapes: GPT and T5 configurations, their presets, and T5's from a
//! Hugging Face `config.json` (parsed by candle-transformers' T5 `Config`,
//! not by a second parser of ours).

use crate::{Error, Result};

/// The GPT presets, smallest last.
pub const GPT_PRESETS: &[&str] = &["gpt-tiny", "gpt-micro"];
/// The T5 presets, smallest last.
pub const T5_PRESETS: &[&str] = &["t5-small", "t5-tiny"];

/// A GPT-style decoder's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct GptConfig {
    pub vocab: usize,
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    pub d_ff: usize,
    /// Number of learned positions: the longest sequence.
    pub max_len: usize,
    /// Output head = token embedding transposed (GPT-2's choice), or a
    /// separate `lm_head.weight`.
    pub tied: bool,
    pub eps: f64,
}

impl GptConfig {
    /// `gpt-tiny`: 2 layers, d=128, 4 heads, ff=512, 256 positions (the
    /// seed's size); `gpt-micro`: 2 layers, d=64, 4 heads, ff=256, 128
    /// positions (CPU tests and the default CPU search). Both tied.
    pub fn preset(name: &str, vocab: usize) -> Result<GptConfig> {
        let (d_model, d_ff, max_len) = match name {
            "gpt-tiny" => (128, 512, 256),
            "gpt-micro" => (64, 256, 128),
            _ => return Err(unknown_preset(name, GPT_PRESETS)),
        };
        let cfg = GptConfig {
            vocab,
            n_layer: 2,
            d_model,
            n_head: 4,
            d_ff,
            max_len,
            tied: true,
            eps: 1e-5,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn d_head(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Every size positive, heads dividing d_model.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab", self.vocab),
            ("n_layer", self.n_layer),
            ("d_model", self.d_model),
            ("n_head", self.n_head),
            ("d_ff", self.d_ff),
            ("max_len", self.max_len),
        ];
        positive("GPT", &sizes)?;
        if !self.d_model.is_multiple_of(self.n_head) {
            return Err(Error::Usage(format!(
                "GPT config: d_model {} is not a multiple of n_head {}",
                self.d_model, self.n_head
            )));
        }
        Ok(())
    }
}

/// A T5-style encoder-decoder's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct T5Config {
    pub vocab: usize,
    pub d_model: usize,
    /// Width of one head's keys and values.
    pub d_kv: usize,
    pub d_ff: usize,
    pub n_enc_layer: usize,
    pub n_dec_layer: usize,
    pub n_head: usize,
    pub num_buckets: usize,
    pub max_distance: usize,
    pub eps: f64,
    /// Output head = shared embedding transposed, applied to the decoder
    /// output scaled by d_model^-0.5 (T5 1.0); otherwise `lm_head.weight`.
    pub tied: bool,
    /// Multiplies every initial standard deviation (HF's
    /// `initializer_factor`).
    pub init_factor: f64,
    pub pad: u32,
    pub eos: u32,
    /// The first decoder input of generation (and of shifted targets).
    pub decoder_start: u32,
}

impl T5Config {
    /// `t5-small`: 6+6 layers, d=512, d_kv=64, 8 heads, ff=2048 (the
    /// seed's model; Hugging Face's t5-small shape); `t5-tiny`: 2+2 layers,
    /// d=64, d_kv=16, 4 heads, ff=256 (CPU). 32 buckets up to distance 128,
    /// tied, pad 0, eos 1, decoder start 0.
    pub fn preset(name: &str, vocab: usize) -> Result<T5Config> {
        use candle_transformers::models::t5::Config;
        let small = Config {
            vocab_size: vocab,
            ..Config::default()
        };
        let hf = match name {
            "t5-small" => small,
            "t5-tiny" => Config {
                d_model: 64,
                d_kv: 16,
                d_ff: 256,
                num_layers: 2,
                num_decoder_layers: Some(2),
                num_heads: 4,
                ..small
            },
            _ => return Err(unknown_preset(name, T5_PRESETS)),
        };
        T5Config::from_hf(&hf)
    }

    /// The shape of a candle-transformers (Hugging Face) T5 config. Its
    /// `feed_forward_proj` is not used: the FFN is always `wo(act(wi x))`
    /// with the model's pluggable activation; dropout is not used either.
    pub fn from_hf(c: &candle_transformers::models::t5::Config) -> Result<T5Config> {
        let cfg = T5Config {
            vocab: c.vocab_size,
            d_model: c.d_model,
            d_kv: c.d_kv,
            d_ff: c.d_ff,
            n_enc_layer: c.num_layers,
            n_dec_layer: c.num_decoder_layers.unwrap_or(c.num_layers),
            n_head: c.num_heads,
            num_buckets: c.relative_attention_num_buckets,
            max_distance: c.relative_attention_max_distance,
            eps: c.layer_norm_epsilon,
            tied: c.tie_word_embeddings,
            init_factor: c.initializer_factor,
            pad: token("pad_token_id", c.pad_token_id)?,
            eos: token("eos_token_id", c.eos_token_id)?,
            decoder_start: token(
                "decoder_start_token_id",
                c.decoder_start_token_id.unwrap_or(c.pad_token_id),
            )?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// From the text of a Hugging Face `config.json`; `origin` names it in
    /// errors (a path, or a description).
    pub fn from_hf_json(text: &str, origin: &str) -> Result<T5Config> {
        let hf: candle_transformers::models::t5::Config =
            serde_json::from_str(text).map_err(|e| Error::Input {
                path: origin.to_string(),
                line: Some(e.line()),
                message: format!("not a T5 config.json: {e}"),
            })?;
        T5Config::from_hf(&hf).map_err(|e| match e {
            Error::Usage(m) => Error::Input {
                path: origin.to_string(),
                line: None,
                message: m,
            },
            other => other,
        })
    }

    /// From a Hugging Face `config.json` file.
    pub fn from_hf_file(path: &std::path::Path) -> Result<T5Config> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(&shown, e))?;
        T5Config::from_hf_json(&text, &shown)
    }

    /// Every size positive; ids inside the vocabulary.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab", self.vocab),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("n_enc_layer", self.n_enc_layer),
            ("n_dec_layer", self.n_dec_layer),
            ("n_head", self.n_head),
            ("num_buckets", self.num_buckets),
            ("max_distance", self.max_distance),
        ];
        positive("T5", &sizes)?;
        if self.num_buckets < 4 {
            return Err(Error::Usage(format!(
                "T5 config: relative_attention_num_buckets {} is below 4",
                self.num_buckets
            )));
        }
        for (what, id) in [
            ("pad", self.pad),
            ("eos", self.eos),
            ("decoder_start", self.decoder_start),
        ] {
            if id as usize >= self.vocab {
                return Err(Error::Usage(format!(
                    "T5 config: {what} token {id} is outside the vocabulary of {}",
                    self.vocab
                )));
            }
        }
        Ok(())
    }
}

/// A GPT or a T5 shape: what a trainer holds to build either.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelConfig {
    Gpt(GptConfig),
    T5(T5Config),
}

impl ModelConfig {
    /// Any preset of [`GPT_PRESETS`] or [`T5_PRESETS`].
    pub fn preset(name: &str, vocab: usize) -> Result<ModelConfig> {
        if name.starts_with("t5-") {
            return Ok(ModelConfig::T5(T5Config::preset(name, vocab)?));
        }
        if name.starts_with("gpt-") {
            return Ok(ModelConfig::Gpt(GptConfig::preset(name, vocab)?));
        }
        let all: Vec<&str> = GPT_PRESETS.iter().chain(T5_PRESETS).copied().collect();
        Err(unknown_preset(name, &all))
    }
}

fn unknown_preset(name: &str, known: &[&str]) -> Error {
    Error::Usage(format!(
        "unknown model preset `{name}`; expected one of: {}",
        known.join(", ")
    ))
}

fn positive(model: &str, sizes: &[(&str, usize)]) -> Result<()> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(Error::Usage(format!(
            "{model} config: {name} must be positive"
        ))),
        None => Ok(()),
    }
}

fn token(what: &str, id: usize) -> Result<u32> {
    u32::try_from(id).map_err(|_| Error::Usage(format!("T5 config: {what} {id} is too large")))
}
