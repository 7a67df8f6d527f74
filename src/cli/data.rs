//! `actforge data stats|thin|tokenizer`: look at a corpus, thin it, train
//! its tokenizer. Argument checking and printing only; the work is in
//! `crate::data`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::data::{self, Corpus, Format, Tokenizer};
use crate::error::{Error, Result};
use crate::fitness::{Recipe, Task};

/// Warnings listed in text output (`--json` lists all).
const SHOWN_WARNINGS: usize = 20;

#[derive(Args, Debug, Clone)]
pub struct CorpusArg {
    /// A file (Tatoeba export, src<TAB>tgt TSV, or Q&A blocks/JSONL) or
    /// `builtin:translate` / `builtin:qa`.
    #[arg(value_name = "PATH|builtin:NAME")]
    pub corpus: String,
    /// The file's format; detected from the file when omitted.
    #[arg(long, value_parser = ["tatoeba", "tsv", "qa"])]
    pub format: Option<String>,
}

impl CorpusArg {
    fn open(&self) -> Result<Corpus> {
        let format = self.format.as_deref().and_then(Format::parse);
        data::open(&self.corpus, format)
    }
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Pair count, skipped lines with reasons, length histograms, vocabulary, the split.
    #[command(after_help = "\
Loads the corpus as training would: malformed records (wrong column
count, empty side, invalid UTF-8, a line over 4096 bytes, a broken Q&A
block or JSON line) are skipped and listed as FILE:LINE: REASON; a file
more than half malformed is an error (exit status 1) and nothing is
loaded. Lengths and vocabulary count words: runs of letters and digits,
lower-cased.

The split is the one training makes (by default 2% validation, 2% test,
seed 0): pairs joined into connected components by their normalised
source and normalised target, whole components per part. Reported: the
pairs per part, the components (and the largest), and the measured
number of validation and test pairs whose source or target also occurs
in training (0).

JSON (--json), stable keys: {\"name\", \"kind\" (translation|qa), \"hash\"
(16 hex digits, the content hash that keys the tokenizer cache),
\"pairs\", \"skipped\", \"warnings\": [{\"line\", \"reason\"}, …],
\"duplicates\", \"src_lengths\" and \"tgt_lengths\": {\"min\", \"max\",
\"mean\", \"histogram\": [[length, pairs], …]}, \"vocab_src\",
\"vocab_tgt\", \"vocab_size\", \"split\": {\"seed\", \"pairs\": {\"train\",
\"valid\", \"test\"}, \"components\", \"largest_component\", \"grouping\",
\"shared_with_train\": {\"valid\"|\"test\": {\"source\", \"target\"}}}}

Examples:
  actforge data stats builtin:translate
  actforge data stats pairs.tsv --json
  actforge data stats deu.txt --format tatoeba")]
    Stats {
        #[command(flatten)]
        corpus: CorpusArg,
        /// Share of the pairs for validation [default: the recipe's, 0.02].
        #[arg(long)]
        valid_fraction: Option<f64>,
        /// Share of the pairs for test [default: the recipe's, 0.02].
        #[arg(long)]
        test_fraction: Option<f64>,
        /// Seed of the split [default: the recipe's, 0].
        #[arg(long)]
        split_seed: Option<u64>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stratified sample that keeps the length and word-frequency profile.
    #[command(after_help = "\
Keeps round(FRACTION × pairs) pairs. Strata are the joint (source,
target) lengths in words; each keeps its share, drawn at random from the
seed, then a fixed number of swaps within a stratum lower the word
(unigram) divergence. Reported: the Jensen–Shannon divergence (bits, 0 =
identical) of the length and of the unigram distribution between the
full and the thinned set, for this sample and for a uniform random sample
of the same size and seed.

JSON (--json): {\"corpus\", \"pairs\", \"kept\", \"fraction\", \"seed\",
\"stratified\": {\"js_length\", \"js_unigram\"}, \"uniform\": {\"js_length\",
\"js_unigram\"}, \"out\" (the written file, or null)}

Examples:
  actforge data thin builtin:qa --fraction 0.5
  actforge data thin pairs.tsv --fraction 0.25 --seed 7 --out small.tsv --json")]
    Thin {
        #[command(flatten)]
        corpus: CorpusArg,
        /// Share of the pairs to keep, in (0, 1].
        #[arg(long)]
        fraction: f64,
        /// Seed of both samples: the same seed gives the same pairs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also write the kept pairs as src<TAB>tgt lines to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Train (or fetch from the cache) the corpus's byte-level BPE tokenizer.
    #[command(after_help = "\
Trains a byte-level BPE (tokenizers crate, offline) on the sources and
targets of the corpus, with the special tokens <pad> <bos> <eos> <sep>
<q> <a> at ids 0-5. The result is cached by (corpus hash, vocabulary,
trainer version) under $ACTFORGE_CACHE_DIR/tokenizers, else
$XDG_CACHE_HOME/actforge/tokenizers, else ~/.cache/actforge/tokenizers;
--no-cache trains afresh and leaves the cache alone.

JSON (--json): {\"corpus\", \"corpus_hash\", \"vocab\" (requested),
\"vocab_size\" (obtained), \"cache_hit\", \"seconds\", \"tokenizer_hash\",
\"tokens_per_pair\" (mean over source and target), \"encode_seconds\"
(encoding every pair with encode_pairs), \"out\"}

Examples:
  actforge data tokenizer builtin:translate --vocab 4000 --no-cache
  actforge data tokenizer builtin:qa --vocab 2000 --out tokenizer.json")]
    Tokenizer {
        #[command(flatten)]
        corpus: CorpusArg,
        /// Vocabulary size in all (bytes and specials included).
        #[arg(long, default_value_t = 4000)]
        vocab: usize,
        /// Also save the tokenizer.json here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Train even if a cached tokenizer exists; do not store it.
        #[arg(long)]
        no_cache: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(w: &mut dyn Write, cmd: DataCommand) -> Result<i32> {
    match cmd {
        DataCommand::Stats {
            corpus,
            valid_fraction,
            test_fraction,
            split_seed,
            json,
        } => {
            let r = Recipe::for_task(Task::Qa, false);
            let cut = SplitArgs {
                valid: valid_fraction.unwrap_or(r.valid_fraction),
                test: test_fraction.unwrap_or(r.test_fraction),
                seed: split_seed.unwrap_or(r.data_seed),
            };
            stats(w, &corpus, &cut, json)
        }
        DataCommand::Thin {
            corpus,
            fraction,
            seed,
            out,
            json,
        } => thin(w, &corpus, fraction, seed, out, json),
        DataCommand::Tokenizer {
            corpus,
            vocab,
            out,
            no_cache,
            json,
        } => tokenizer(w, &corpus, vocab, out, no_cache, json),
    }
}

/// The split `data stats` reports.
struct SplitArgs {
    valid: f64,
    test: f64,
    seed: u64,
}

fn stats(w: &mut dyn Write, arg: &CorpusArg, cut: &SplitArgs, as_json: bool) -> Result<i32> {
    for (flag, v) in [
        ("--valid-fraction", cut.valid),
        ("--test-fraction", cut.test),
    ] {
        if !(0.0..0.5).contains(&v) {
            return Err(Error::Usage(format!("{flag} must be in [0, 0.5), not {v}")));
        }
    }
    let c = arg.open()?;
    let s = data::stats(&c);
    let split = data::split(&c, cut.valid, cut.test, cut.seed).describe();
    if as_json {
        let mut v = s.to_json();
        v["split"] = split;
        outln!(w, "{v}");
    } else {
        super::io::put(w, &s.describe(SHOWN_WARNINGS))?;
        let n = |k: &str| split["pairs"][k].as_u64().unwrap_or(0);
        let shared = &split["shared_with_train"];
        outln!(
            w,
            "split       train {} / valid {} / test {} pairs (fractions {} / {}, seed {})",
            n("train"),
            n("valid"),
            n("test"),
            cut.valid,
            cut.test,
            cut.seed
        );
        outln!(
            w,
            "            {} components of pairs sharing a source or a target (largest {} pairs)",
            split["components"],
            split["largest_component"]
        );
        outln!(
            w,
            "            shared with training: valid {} sources, {} targets; test {} sources, {} targets",
            shared["valid"]["source"],
            shared["valid"]["target"],
            shared["test"]["source"],
            shared["test"]["target"]
        );
    }
    Ok(0)
}

fn thin(
    w: &mut dyn Write,
    arg: &CorpusArg,
    fraction: f64,
    seed: u64,
    out: Option<PathBuf>,
    as_json: bool,
) -> Result<i32> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::Usage(format!(
            "--fraction must be in (0, 1], not {fraction}"
        )));
    }
    let c = arg.open()?;
    let t = data::thin(&c.pairs, fraction, seed);
    if let Some(path) = &out {
        data::write_tsv(path, &t.pairs)?;
    }
    if as_json {
        let v = json!({
            "corpus": c.name,
            "pairs": c.pairs.len(),
            "kept": t.pairs.len(),
            "fraction": fraction,
            "seed": seed,
            "stratified": {"js_length": t.js_length, "js_unigram": t.js_unigram},
            "uniform": {"js_length": t.uniform_js_length, "js_unigram": t.uniform_js_unigram},
            "out": out.as_ref().map(|p| p.display().to_string()),
        });
        outln!(w, "{v}");
    } else {
        outln!(w, "corpus      {} ({} pairs)", c.name, c.pairs.len());
        outln!(
            w,
            "kept        {} (fraction {fraction}, seed {seed})",
            t.pairs.len()
        );
        outln!(
            w,
            "JS divergence from the full set (bits)   length      unigram"
        );
        outln!(
            w,
            "  stratified                            {:.3e}   {:.3e}",
            t.js_length,
            t.js_unigram
        );
        outln!(
            w,
            "  uniform sample                        {:.3e}   {:.3e}",
            t.uniform_js_length,
            t.uniform_js_unigram
        );
        if let Some(p) = out {
            outln!(w, "written     {}", p.display());
        }
    }
    Ok(0)
}

fn tokenizer(
    w: &mut dyn Write,
    arg: &CorpusArg,
    vocab: usize,
    out: Option<PathBuf>,
    no_cache: bool,
    as_json: bool,
) -> Result<i32> {
    crate::limits::VOCAB.check_usize(crate::error::Setting::Vocab, vocab)?;
    let c = arg.open()?;
    let dir = if no_cache { None } else { data::cache_dir() };
    let start = Instant::now();
    let (tok, hit) = Tokenizer::cached(&c, vocab, dir.as_deref())?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(p) = &out {
        tok.save(p)?;
    }
    let start = Instant::now();
    let examples = data::encode_pairs(&tok, &c.pairs, usize::MAX, usize::MAX);
    let encode_seconds = start.elapsed().as_secs_f64();
    let tokens: usize = examples.iter().map(|e| e.src.len() + e.tgt.len()).sum();
    let per_pair = tokens as f64 / c.pairs.len().max(1) as f64;
    if as_json {
        let v = json!({
            "corpus": c.name,
            "corpus_hash": c.hash_hex(),
            "vocab": vocab,
            "vocab_size": tok.vocab_size(),
            "cache_hit": hit,
            "seconds": seconds,
            "tokenizer_hash": format!("{:016x}", tok.hash()),
            "tokens_per_pair": per_pair,
            "encode_seconds": encode_seconds,
            "out": out.as_ref().map(|p| p.display().to_string()),
        });
        outln!(w, "{v}");
    } else {
        let how = if hit {
            "loaded from the cache"
        } else {
            "trained"
        };
        outln!(
            w,
            "corpus      {} ({} pairs, hash {})",
            c.name,
            c.pairs.len(),
            c.hash_hex()
        );
        outln!(
            w,
            "tokenizer   {} tokens, {how} in {seconds:.2} s",
            tok.vocab_size()
        );
        outln!(
            w,
            "tokens      {per_pair:.1} per pair (source + target); all pairs encoded in {encode_seconds:.2} s"
        );
        if let Some(p) = out {
            outln!(w, "written     {}", p.display());
        }
    }
    Ok(0)
}
