//! Data for training and scoring: corpora (the built-in ones and the user's
//! own files), locally trained byte-level BPE tokenizers, seeded splits,
//! stratified thinning and deterministic length-bucketed batches.
//!
//! A leaf of the pipeline (see `ARCHITECTURE.md`): it uses only
//! [`crate::error`], never candle ops (`crate::op`), the compiler (`syntax`,
//! `ir`, `simplify`, `diff`, `codegen`, `runtime`) or models. Everything
//! here is plain Rust data (`Vec<u32>`, `Vec<f32>`); the training code turns
//! batches into tensors.
//!
//! ```no_run
//! use actforge::data::{self, Batcher, CorpusKind, Tokenizer};
//! # fn main() -> actforge::Result<()> {
//! let corpus = data::open("builtin:qa", None)?;
//! let splits = data::split(&corpus, 0.05, 0.05, 1);
//! let tok = Tokenizer::for_corpus(&corpus, 4000)?; // cached on disk
//! let examples = data::encode_pairs(&tok, &splits.train, 48, 48);
//! let batcher = Batcher::new(&examples, 32, 1);
//! let b = batcher.decoder_batch(0, 0, CorpusKind::Qa, &tok.specials());
//! assert_eq!(b.input.len(), b.rows * b.len);
//! # Ok(()) }
//! ```

mod batch;
mod builtin;
mod corpus;
mod hash;
mod load;
mod open;
mod rng;
mod split;
mod stats;
mod thin;
mod tokenizer;

pub use batch::{encode_pairs, Batcher, DecoderBatch, Example, Seq2SeqBatch};
pub use builtin::{builtin, BUILTIN_NAMES};
pub use corpus::{Corpus, CorpusKind, Format, Pair, Warning};
pub use load::{detect_format, load_bytes, MAX_LINE_BYTES};
pub use open::open;
pub use split::{group_key, pairs_hash, write_tsv, Overlap, Splits};
pub use stats::{CorpusStats, LengthStats};
pub use thin::{js_divergence, kept_count, Thinned};
pub use tokenizer::{cache_dir, cache_name, Specials, Tokenizer, SPECIAL_TOKENS, TRAINER_VERSION};

/// Seeded train/validation/test split (see [`Splits`]).
pub fn split(c: &Corpus, valid: f64, test: f64, seed: u64) -> Splits {
    split::split(c, valid, test, seed)
}

/// Stratified sample of `fraction` of the pairs (see [`Thinned`]).
pub fn thin(pairs: &[Pair], fraction: f64, seed: u64) -> Thinned {
    thin::thin(pairs, fraction, seed)
}

/// Statistics of a corpus: counts, length histograms, vocabulary.
pub fn stats(c: &Corpus) -> CorpusStats {
    stats::stats(c)
}
