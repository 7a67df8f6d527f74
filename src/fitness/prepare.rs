//! Data prepared once per recipe and shared by every run: the corpus, its
//! split, the tokenizer, the (thinned) training examples, the validation
//! examples and their reference texts, and the model shape. Every
//! activation and seed trains on exactly this (common random numbers).
//!
//! A preparation scores on one held-out split ([`Holdout`]): `train` and a
//! search's candidates on the validation split, a search's final verdict on
//! the test split. A search's candidates get a preparation whose test split
//! is withheld (dropped after the split is made), so nothing that selects
//! formulas can read a test pair.

use std::path::Path;

use serde_json::{json, Value};

use super::recipe::Recipe;
use crate::data::{self, CorpusKind, Example, Pair, Specials, Tokenizer};
use crate::error::{Error, Result, Setting};
use crate::model::ModelConfig;
use crate::store::safe::{write_dir_with, write_with};

/// The thinning of the training split, as reported with every run.
#[derive(Clone, Debug, PartialEq)]
pub struct Thinning {
    pub fraction: f64,
    pub kept: usize,
    pub of: usize,
    pub js_length: f64,
    pub js_unigram: f64,
    pub uniform_js_length: f64,
    pub uniform_js_unigram: f64,
}

/// The held-out split a preparation scores on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holdout {
    /// The validation split; the test split is kept in [`Prepared::splits`]
    /// (`train` saves it with its run).
    Valid,
    /// The validation split, the test split withheld: `splits.test` is
    /// empty (a search's candidates).
    ValidWithoutTest,
    /// The test split (a search's final verdict); `valid` and
    /// `valid_pairs` hold test examples.
    Test,
}

impl Holdout {
    /// `valid` or `test`: the split scored.
    pub fn split_name(self) -> &'static str {
        match self {
            Holdout::Valid | Holdout::ValidWithoutTest => "valid",
            Holdout::Test => "test",
        }
    }
}

/// See the module docs.
pub struct Prepared {
    pub recipe: Recipe,
    pub kind: CorpusKind,
    pub corpus_name: String,
    pub corpus_hash: u64,
    pub tokenizer: Tokenizer,
    pub specials: Specials,
    pub train: Vec<Example>,
    /// The scored examples (at most `recipe.eval_examples`) and the pairs
    /// they came from, index for index (references and questions): from
    /// the validation split, or from the test split when `holdout` is
    /// [`Holdout::Test`].
    pub valid: Vec<Example>,
    pub valid_pairs: Vec<Pair>,
    pub thinning: Option<Thinning>,
    pub model: ModelConfig,
    /// Content hashes of the train and validation pairs used.
    pub train_hash: u64,
    pub valid_hash: u64,
    pub splits: data::Splits,
    /// Which split `valid` comes from.
    pub holdout: Holdout,
}

impl Prepared {
    /// Load, split, tokenize (the tokenizer is trained once per corpus and
    /// vocabulary and cached on disk) and thin, as `recipe` says; scored on
    /// the validation split.
    pub fn new(recipe: &Recipe) -> Result<Prepared> {
        Prepared::scored_on(recipe, Holdout::Valid)
    }

    /// As [`Prepared::new`], scored on `holdout`.
    pub fn scored_on(recipe: &Recipe, holdout: Holdout) -> Result<Prepared> {
        recipe.validate()?;
        let corpus = data::open(&recipe.data, None)?;
        let kind = corpus.kind;
        check_task(recipe, kind, &corpus.name)?;
        let mut splits = data::split(
            &corpus,
            recipe.valid_fraction,
            recipe.test_fraction,
            recipe.data_seed,
        );
        let scored = match holdout {
            Holdout::Test => &splits.test,
            _ => &splits.valid,
        };
        if splits.train.is_empty() || scored.is_empty() {
            return Err(Error::Input {
                path: corpus.name.clone(),
                line: None,
                message: format!(
                    "{} pairs are too few to split into training and {} data",
                    corpus.pairs.len(),
                    if holdout == Holdout::Test {
                        "test"
                    } else {
                        "validation"
                    }
                ),
            });
        }
        let tokenizer = match &recipe.tokenizer {
            Some(path) => Tokenizer::load(Path::new(path))?,
            None => Tokenizer::for_corpus(&corpus, recipe.vocab)?,
        };
        let specials = tokenizer.specials();
        let (train_pairs, thinning) = match recipe.thin {
            Some(f) if f < 1.0 => {
                let t = data::thin(&splits.train, f, recipe.data_seed);
                let report = Thinning {
                    fraction: f,
                    kept: t.pairs.len(),
                    of: splits.train.len(),
                    js_length: t.js_length,
                    js_unigram: t.js_unigram,
                    uniform_js_length: t.uniform_js_length,
                    uniform_js_unigram: t.uniform_js_unigram,
                };
                (t.pairs, Some(report))
            }
            _ => (splits.train.clone(), None),
        };
        let train = data::encode_pairs(&tokenizer, &train_pairs, recipe.max_src, recipe.max_tgt);
        let valid_pairs: Vec<Pair> = scored
            .iter()
            .take(recipe.eval_examples.max(recipe.eval_sentences))
            .cloned()
            .collect();
        if holdout == Holdout::ValidWithoutTest {
            splits.test = Vec::new();
        }
        let valid = data::encode_pairs(&tokenizer, &valid_pairs, recipe.max_src, recipe.max_tgt);
        let model = model_config(recipe, &tokenizer, &specials)?;
        Ok(Prepared {
            recipe: recipe.clone(),
            kind,
            corpus_name: corpus.name.clone(),
            corpus_hash: corpus.hash(),
            train_hash: data::pairs_hash(&train_pairs),
            valid_hash: data::pairs_hash(&valid_pairs),
            tokenizer,
            specials,
            train,
            valid,
            valid_pairs,
            thinning,
            model,
            splits,
            holdout,
        })
    }

    pub fn vocab(&self) -> usize {
        self.tokenizer.vocab_size()
    }

    /// Write `tokenizer.json` and the split (`split.json`, TSVs) into a run
    /// directory: each made in a fresh folder and renamed into place, so
    /// nothing is written through a link planted in the directory.
    pub fn save_to(&self, dir: &Path) -> Result<()> {
        write_with(&dir.join("tokenizer.json"), |p| self.tokenizer.save(p))?;
        write_dir_with(&dir.join("split"), |p| self.splits.save(p))
    }

    /// What a results file records about the data (`"split": "test"` when
    /// scored on the test split; absent, as before, for validation).
    pub fn describe(&self) -> Value {
        let mut v = json!({
            "corpus": self.corpus_name,
            "corpus_hash": format!("{:016x}", self.corpus_hash),
            "kind": self.kind.as_str(),
            "train_examples": self.train.len(),
            "valid_examples": self.valid.len(),
            "train_hash": format!("{:016x}", self.train_hash),
            "valid_hash": format!("{:016x}", self.valid_hash),
            "tokenizer_hash": format!("{:016x}", self.tokenizer.hash()),
            "vocab_size": self.vocab(),
            "thinning": self.thinning.as_ref().map(|t| json!({
                "fraction": t.fraction, "kept": t.kept, "of": t.of,
                "stratified": {"js_length": t.js_length, "js_unigram": t.js_unigram},
                "uniform": {"js_length": t.uniform_js_length, "js_unigram": t.uniform_js_unigram},
            })),
        });
        if self.holdout == Holdout::Test {
            v["split"] = json!("test");
        }
        v
    }
}

/// Translation tasks need a translation corpus, Q&A a Q&A corpus.
fn check_task(recipe: &Recipe, kind: CorpusKind, name: &str) -> Result<()> {
    let want = if recipe.task == super::Task::Qa {
        CorpusKind::Qa
    } else {
        CorpusKind::Translation
    };
    if kind == want {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "task {} needs a {} corpus, but `{name}` is {}",
        recipe.task,
        want.as_str(),
        kind.as_str()
    )))
}

/// The model shape: the preset (or HF config) with the tokenizer's
/// vocabulary and, for T5, its pad/EOS/start tokens.
fn model_config(recipe: &Recipe, tok: &Tokenizer, sp: &Specials) -> Result<ModelConfig> {
    let vocab = tok.vocab_size();
    let mut cfg = match &recipe.hf_config {
        Some(path) => {
            let mut c = crate::model::T5Config::from_hf_file(Path::new(path))?;
            c.vocab = vocab;
            ModelConfig::T5(c)
        }
        None => ModelConfig::preset(&recipe.preset, vocab)?,
    };
    let seq2seq = matches!(cfg, ModelConfig::T5(_));
    if seq2seq != recipe.task.is_seq2seq() {
        return Err(Error::setting(format!(
            "{} {} cannot train {} `{}`: use a {} preset",
            Setting::Task,
            recipe.task,
            Setting::Preset,
            recipe.preset,
            if recipe.task.is_seq2seq() {
                "t5-…"
            } else {
                "gpt-…"
            }
        )));
    }
    match &mut cfg {
        ModelConfig::T5(c) => {
            c.pad = sp.pad;
            c.eos = sp.eos;
            c.decoder_start = sp.bos;
        }
        ModelConfig::Gpt(c) => {
            // BOS, Q/SEP, A plus both texts and EOS must fit, and so must a
            // prompt plus the longest generated answer.
            let need =
                (recipe.max_src + recipe.max_tgt + 4).max(recipe.max_src + 3 + recipe.eval_max_new);
            if need > c.max_len {
                // `max_src`, `max_tgt` and `eval_max_new` are the
                // recipe's (no flag sets them): the preset is the setting.
                return Err(Error::setting(format!(
                    "{} `{}` has {} positions, but the recipe's sequences (`max_src` {}, `max_tgt` {}, `eval_max_new` {}) need {need}",
                    Setting::Preset,
                    recipe.preset,
                    c.max_len,
                    recipe.max_src,
                    recipe.max_tgt,
                    recipe.eval_max_new
                )));
            }
        }
    }
    Ok(cfg)
}
