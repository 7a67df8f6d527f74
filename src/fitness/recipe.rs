//! The training recipe: everything that decides what a fitness number
//! means, in one serializable value. A run directory records it, and
//! `eval-candidates` refuses a batch whose recipe differs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Setting};
use crate::metrics::Weights;

/// The seed post's three experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Tiny GPT-2-like decoder translating English → German (`src <sep> tgt`).
    TranslateGpt,
    /// T5-style encoder-decoder on the same pairs.
    TranslateT5,
    /// TinyGPT answering structured questions (`Q: … A: …`).
    Qa,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::TranslateGpt, Task::TranslateT5, Task::Qa];

    pub fn name(self) -> &'static str {
        match self {
            Task::TranslateGpt => "translate-gpt",
            Task::TranslateT5 => "translate-t5",
            Task::Qa => "qa",
        }
    }

    /// The built-in corpus the task trains on by default.
    pub fn default_data(self) -> &'static str {
        match self {
            Task::Qa => "builtin:qa",
            _ => "builtin:translate",
        }
    }

    /// The default model preset on the CPU and on a GPU.
    pub fn default_preset(self, gpu: bool) -> &'static str {
        match (self, gpu) {
            (Task::TranslateT5, false) => "t5-tiny",
            (Task::TranslateT5, true) => "t5-small",
            (_, false) => "gpt-micro",
            (_, true) => "gpt-tiny",
        }
    }

    pub fn is_seq2seq(self) -> bool {
        self == Task::TranslateT5
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Task> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown task `{s}`; expected translate-gpt, translate-t5 or qa"
                ))
            })
    }
}

/// How long to train: a number of optimizer steps, or of passes over the
/// (thinned) training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Length {
    Steps(u64),
    Epochs(u64),
}

/// Every setting of one training run except the activation and the seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub task: Task,
    /// `builtin:NAME` or a path (see `data::open`).
    pub data: String,
    /// A model preset (`gpt-micro`, `gpt-tiny`, `t5-tiny`, `t5-small`).
    pub preset: String,
    /// A Hugging Face T5 `config.json` that sets the T5 shape instead of
    /// the preset's (its vocabulary size is replaced by the tokenizer's).
    pub hf_config: Option<String>,
    /// BPE vocabulary size (trained on the corpus, cached); or a
    /// `tokenizer.json` to load instead.
    pub vocab: usize,
    pub tokenizer: Option<String>,
    pub length: Length,
    pub batch_size: usize,
    pub lr: f64,
    /// Warm-up as a fraction of the steps.
    pub warmup: f64,
    /// Final learning rate as a fraction of the peak (cosine decay).
    pub min_lr_ratio: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip (0: off).
    pub clip: f64,
    /// Train on a stratified sample of this fraction of the training split
    /// (the seed's 0.5 during a search); `None`: all of it.
    pub thin: Option<f64>,
    /// Tokens kept per source and target (longer ones are truncated).
    pub max_src: usize,
    pub max_tgt: usize,
    pub valid_fraction: f64,
    pub test_fraction: f64,
    /// Seed of the split and of the thinning: fixed per run directory, so
    /// every activation and seed sees the same data.
    pub data_seed: u64,
    /// Validation examples scored by perplexity and accuracy.
    pub eval_examples: usize,
    /// Validation sentences generated (greedy) for BLEU and chrF.
    pub eval_sentences: usize,
    /// Most new tokens per generated sentence.
    pub eval_max_new: usize,
    /// Evaluate (loss, BLEU, PPL) at the end of every epoch as well; the
    /// seed's per-epoch table of the T5 experiment.
    pub per_epoch: bool,
    /// Weights of the fitness (`bleu=0.5,ppl=0.3,acc=0.2`), as text.
    #[serde(with = "weights_text")]
    pub weights: Weights,
}

/// `Weights` as its `bleu=…,ppl=…,acc=…` text in JSON.
mod weights_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::metrics::Weights;

    pub fn serialize<S: Serializer>(w: &Weights, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&w.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weights, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Recipe {
    /// The defaults for `task`, sized for the CPU or for a GPU.
    pub fn for_task(task: Task, gpu: bool) -> Recipe {
        let (steps, batch) = match (task, gpu) {
            (Task::TranslateT5, false) => (300, 32),
            (_, false) => (300, 32),
            (_, true) => (2000, 64),
        };
        Recipe {
            task,
            data: task.default_data().into(),
            preset: task.default_preset(gpu).into(),
            hf_config: None,
            vocab: if gpu { 4000 } else { 2000 },
            tokenizer: None,
            length: Length::Steps(steps),
            batch_size: batch,
            lr: if gpu { 1e-3 } else { 3e-3 },
            warmup: 0.05,
            min_lr_ratio: 0.1,
            weight_decay: 0.01,
            clip: 1.0,
            thin: None,
            max_src: 24,
            max_tgt: 24,
            valid_fraction: 0.02,
            test_fraction: 0.02,
            data_seed: 0,
            eval_examples: 256,
            eval_sentences: 64,
            eval_max_new: 24,
            per_epoch: task.is_seq2seq(),
            weights: Weights::default(),
        }
    }

    /// Setting errors for settings that cannot train, and for sizes past
    /// their limits (`crate::limits`), before anything is allocated; usage
    /// errors (naming the recipe's keys) for the values no flag sets, which
    /// only a recipe read from a file can get wrong.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{BATCH_SIZE, EPOCHS, STEPS, VOCAB};
        let bad = |m: String| Err(Error::setting(m));
        match self.length {
            Length::Steps(0) => return bad(format!("{} must be at least 1", Setting::Steps)),
            Length::Epochs(0) => return bad(format!("{} must be at least 1", Setting::Epochs)),
            Length::Steps(s) => STEPS.check(Setting::Steps, s)?,
            Length::Epochs(e) => EPOCHS.check(Setting::Epochs, e)?,
        }
        if self.batch_size == 0 {
            return bad(format!("{} must be at least 1", Setting::BatchSize));
        }
        BATCH_SIZE.check_usize(Setting::BatchSize, self.batch_size)?;
        if self.tokenizer.is_none() {
            VOCAB.check_usize(Setting::Vocab, self.vocab)?;
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("{} must be positive, not {}", Setting::Lr, self.lr));
        }
        if let Some(f) = self.thin.filter(|f| !(*f > 0.0 && *f <= 1.0)) {
            return bad(format!("{} must be in (0, 1], not {f}", Setting::Thin));
        }
        let unset = |m: String| Err(Error::Usage(m));
        if !(0.0..=0.5).contains(&self.warmup) {
            return unset(format!(
                "the recipe's `warmup` fraction {} must be in [0, 0.5]",
                self.warmup
            ));
        }
        if self.vocab < 64 && self.tokenizer.is_none() {
            return bad(format!(
                "{} {} is too small (at least 64)",
                Setting::Vocab,
                self.vocab
            ));
        }
        if self.max_src == 0 || self.max_tgt == 0 {
            return unset("the recipe's `max_src` and `max_tgt` must be at least 1".into());
        }
        if self.eval_sentences == 0 && self.weights.without_bleu().is_none() {
            return bad(format!(
                "{} {} counts only BLEU, but {} 0 generates no sentence to score: give ppl or acc a weight, or generate sentences",
                Setting::Weights,
                self.weights,
                Setting::EvalSentences
            ));
        }
        let split = self.valid_fraction + self.test_fraction;
        if !(self.valid_fraction > 0.0 && self.test_fraction >= 0.0 && split < 0.5) {
            return unset(
                "the recipe's `valid_fraction` and `test_fraction` must be positive and leave most data for training"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a recipe serializes")
    }

    /// Read [`Recipe::to_json`]; the result is validated (a recipe read
    /// from a file meets the flags' rules and limits).
    pub fn from_json(v: &serde_json::Value) -> Result<Recipe> {
        let r: Recipe = serde_json::from_value(v.clone())
            .map_err(|e| Error::Usage(format!("not a training recipe: {e}")))?;
        r.validate()?;
        Ok(r)
    }

    /// A stable 64-bit fingerprint of the recipe (what `eval-candidates`
    /// compares with the run directory's).
    pub fn hash(&self) -> u64 {
        let text = serde_json::to_string(&self.to_json()).expect("serializes");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        for task in Task::ALL {
            for gpu in [false, true] {
                let r = Recipe::for_task(task, gpu);
                r.validate().unwrap();
                let back = Recipe::from_json(&r.to_json()).unwrap();
                assert_eq!(back, r);
                assert_eq!(back.hash(), r.hash());
            }
        }
    }

    #[test]
    fn tasks_parse_and_bad_settings_are_usage_errors() {
        assert_eq!("qa".parse::<Task>().unwrap(), Task::Qa);
        assert!("qna"
            .parse::<Task>()
            .unwrap_err()
            .to_string()
            .contains("translate-gpt"));
        let mut r = Recipe::for_task(Task::Qa, false);
        r.thin = Some(0.0);
        let e = r.validate().unwrap_err();
        assert!(e.to_string().contains("`thin`"), "{e}");
        match e {
            Error::Setting(named) => assert_eq!(named.settings(), vec![Setting::Thin]),
            other => panic!("{other:?}"),
        }
        let mut r = Recipe::for_task(Task::Qa, false);
        r.length = Length::Steps(0);
        assert!(r.validate().is_err());
        let mut r = Recipe::for_task(Task::Qa, false);
        r.eval_sentences = 0;
        r.validate().unwrap();
        r.weights = "bleu=1".parse().unwrap();
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`eval_sentences` 0"));
        let mut r = Recipe::for_task(Task::Qa, false);
        let h = r.hash();
        r.lr *= 2.0;
        assert_ne!(r.hash(), h);
    }
}
