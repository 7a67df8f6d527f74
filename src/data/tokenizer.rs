//! Byte-level BPE tokenizers, trained locally with the `tokenizers` crate
//! (pure Rust, offline), saved as a standard `tokenizer.json`, and cached on
//! disk by (corpus hash, vocabulary size, trainer version) so that a search
//! trains one once.
//!
//! The special tokens are defined once, in [`SPECIAL_TOKENS`]: a trained
//! tokenizer has them at ids 0–5; a user's tokenizer (GPT-2's, say) that
//! lacks them gets them appended as special tokens when it is loaded.
//! Nothing is added to text by [`Tokenizer::encode`] (the batch layouts
//! place the specials), and no prefix space is added, so
//! `decode(encode(s)) == s`.

use std::path::{Path, PathBuf};

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    TokenizerBuilder,
};

use super::corpus::Corpus;
use super::hash::Fnv;
use crate::error::{Error, Result, Setting};

/// Padding, begin and end of sequence, source/target separator, and the
/// question and answer markers: ids 0–5 of a trained tokenizer.
pub const SPECIAL_TOKENS: [&str; 6] = ["<pad>", "<bos>", "<eos>", "<sep>", "<q>", "<a>"];

/// Part of the cache key: bump it when the training recipe changes.
pub const TRAINER_VERSION: &str = "bytelevel-bpe-1-tokenizers-0.23";

/// Ids of the special tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Specials {
    pub pad: u32,
    pub bos: u32,
    pub eos: u32,
    pub sep: u32,
    pub q: u32,
    pub a: u32,
}

/// A byte-level BPE tokenizer with the special tokens resolved.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    specials: Specials,
}

fn tok_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Input {
        path: what.to_string(),
        line: None,
        message: e.to_string(),
    }
}

impl Tokenizer {
    /// Train a byte-level BPE of `vocab` tokens in all (the 256 byte
    /// symbols and the specials included) on `texts`.
    pub fn train(texts: &[&str], vocab: usize) -> Result<Tokenizer> {
        let min = 256 + SPECIAL_TOKENS.len();
        if vocab < min {
            return Err(Error::setting(format!(
                "{} {vocab}: a byte-level vocabulary needs at least {min} tokens (256 bytes and {} specials)",
                Setting::Vocab,
                SPECIAL_TOKENS.len()
            )));
        }
        let byte_level = ByteLevel::default().add_prefix_space(false);
        let mut t = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        >::new()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(byte_level)))
        .with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevelDecoder::default())))
        .build()
        .map_err(|e| tok_error("tokenizer", e))?;
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(
                SPECIAL_TOKENS
                    .iter()
                    .map(|s| AddedToken::from(*s, true))
                    .collect(),
            )
            .build();
        t.train(&mut trainer, texts.iter())
            .map_err(|e| tok_error("tokenizer training", e))?;
        Tokenizer::from_inner(t.into(), "trained tokenizer")
    }

    /// The tokenizer for a corpus's texts (sources and targets): from the
    /// cache (see [`cache_dir`]) or trained now and stored there.
    pub fn for_corpus(c: &Corpus, vocab: usize) -> Result<Tokenizer> {
        Tokenizer::cached(c, vocab, cache_dir().as_deref()).map(|(t, _)| t)
    }

    /// [`Tokenizer::for_corpus`] with an explicit cache directory (`None`:
    /// no cache); also says whether the cache answered.
    /// A cached file is used only if it is what was asked for (see
    /// [`Tokenizer::is_trained_as`]); anything else is trained again and
    /// replaced.
    pub fn cached(c: &Corpus, vocab: usize, dir: Option<&Path>) -> Result<(Tokenizer, bool)> {
        let file = dir.map(|d| d.join(cache_name(c, vocab)));
        if let Some(t) = file
            .as_deref()
            .and_then(|f| Tokenizer::load(f).ok())
            .filter(|t| t.is_trained_as(vocab))
        {
            return Ok((t, true));
        }
        let texts: Vec<&str> = c
            .pairs
            .iter()
            .flat_map(|p| [p.src.as_str(), p.tgt.as_str()])
            .collect();
        let t = Tokenizer::train(&texts, vocab)?;
        if let Some(f) = file {
            // A cache that cannot be written is slower, not broken.
            let _ = t.save_atomic(&f);
        }
        Ok((t, false))
    }

    /// Whether this is what [`Tokenizer::train`] makes for `vocab`: a
    /// byte-level BPE of at most `vocab` tokens with [`SPECIAL_TOKENS`] at
    /// ids 0–5 (a cache file that was replaced or damaged is not).
    pub fn is_trained_as(&self, vocab: usize) -> bool {
        let specials_first = SPECIAL_TOKENS
            .iter()
            .enumerate()
            .all(|(i, s)| self.inner.token_to_id(s) == Some(i as u32));
        let byte_level = matches!(
            self.inner.get_model(),
            tokenizers::models::ModelWrapper::BPE(_)
        );
        specials_first && byte_level && self.vocab_size() <= vocab && self.vocab_size() > 256
    }

    /// Load a `tokenizer.json`: one of ours, or any other (GPT-2's, …);
    /// missing special tokens are appended.
    pub fn load(path: &Path) -> Result<Tokenizer> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::io(&name, e))?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::Input {
            path: name.clone(),
            line: None,
            message: format!("not a tokenizer.json the tokenizers crate can read: {e}"),
        })?;
        Tokenizer::from_inner(inner, &name)
    }

    fn from_inner(mut inner: tokenizers::Tokenizer, name: &str) -> Result<Tokenizer> {
        let missing: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .filter(|s| inner.token_to_id(s).is_none())
            .map(|s| AddedToken::from(*s, true))
            .collect();
        inner
            .add_special_tokens(missing)
            .map_err(|e| tok_error(name, format!("cannot add the special tokens: {e}")))?;
        let id = |s: &str| {
            inner
                .token_to_id(s)
                .expect("special tokens were just added")
        };
        let specials = Specials {
            pad: id("<pad>"),
            bos: id("<bos>"),
            eos: id("<eos>"),
            sep: id("<sep>"),
            q: id("<q>"),
            a: id("<a>"),
        };
        let t = Tokenizer { inner, specials };
        t.try_encode("Probe: ß, Æ, 1.5 — ok?")
            .map_err(|e| tok_error(name, format!("it cannot encode plain text: {e}")))?;
        Ok(t)
    }

    /// Write `tokenizer.json` (pretty JSON, loadable by any `tokenizers`).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, true)
            .map_err(|e| tok_error(&path.display().to_string(), e))
    }

    /// Save to a temporary name and rename, so a reader never sees half.
    fn save_atomic(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), unique()));
        self.save(&tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path.display().to_string(), e)
        })
    }

    /// Token ids of `text`, no specials added. Text the tokenizer cannot
    /// encode gives no ids (a byte-level BPE encodes every text;
    /// [`Tokenizer::try_encode`] says why another one failed).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.try_encode(text).unwrap_or_default()
    }

    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| tok_error("tokenizer", e))
    }

    /// [`Tokenizer::encode`] of many texts, in parallel (rayon, through the
    /// `tokenizers` crate); the same ids as one by one.
    pub fn encode_many(&self, texts: &[&str]) -> Vec<Vec<u32>> {
        match self.inner.encode_batch_fast(texts.to_vec(), false) {
            Ok(encs) => encs.iter().map(|e| e.get_ids().to_vec()).collect(),
            Err(_) => texts.iter().map(|t| self.encode(t)).collect(),
        }
    }

    /// The text of `ids`, special tokens skipped (unknown ids too).
    pub fn decode(&self, ids: &[u32]) -> String {
        let size = self.vocab_size() as u32;
        let ids: Vec<u32> = ids.iter().copied().filter(|&i| i < size).collect();
        self.inner.decode(&ids, true).unwrap_or_default()
    }

    /// Tokens in all, specials included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn specials(&self) -> Specials {
        self.specials
    }

    /// Stable hash of the tokenizer's JSON (16 hex digits when printed):
    /// recorded with results so a reader knows which tokenizer was used.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv::new();
        h.str(&self.inner.to_string(false).unwrap_or_default());
        h.finish()
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// `HASH-VOCAB-TRAINER.json`: the cache file of a corpus and vocabulary.
pub fn cache_name(c: &Corpus, vocab: usize) -> String {
    format!("{}-{vocab}-{TRAINER_VERSION}.json", c.hash_hex())
}

/// `$ACTFORGE_CACHE_DIR/tokenizers`, `$XDG_CACHE_HOME/actforge/tokenizers`
/// or `~/.cache/actforge/tokenizers`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ACTFORGE_CACHE_DIR") {
        return Some(PathBuf::from(d).join("tokenizers"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("actforge").join("tokenizers"))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    N.fetch_add(1, Ordering::Relaxed) ^ nanos
}
