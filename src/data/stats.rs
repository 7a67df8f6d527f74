//! Corpus statistics for `actforge data stats`: counts, skipped records,
//! length histograms and vocabulary sizes. Lengths and vocabularies count
//! words as thinning does: runs of alphanumeric characters, lower-cased.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use serde_json::{json, Value};

use super::corpus::Corpus;
use super::thin::words;

/// Lengths in words of one side of a corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct LengthStats {
    pub min: usize,
    pub max: usize,
    pub mean: f64,
    /// (length, number of pairs), ascending, non-zero counts only.
    pub histogram: Vec<(usize, usize)>,
}

#[derive(Clone, Debug)]
pub struct CorpusStats {
    pub name: String,
    pub kind: &'static str,
    pub hash: String,
    pub pairs: usize,
    pub skipped: usize,
    /// (line, reason) of every skipped record.
    pub warnings: Vec<(usize, String)>,
    /// Pairs whose (source, target) already occurred.
    pub duplicates: usize,
    pub src_lengths: LengthStats,
    pub tgt_lengths: LengthStats,
    pub vocab_src: usize,
    pub vocab_tgt: usize,
    /// Distinct words over both sides.
    pub vocab_size: usize,
}

pub fn stats(c: &Corpus) -> CorpusStats {
    let mut vs: HashSet<String> = HashSet::new();
    let mut vt: HashSet<String> = HashSet::new();
    let (mut ls, mut lt) = (Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for p in &c.pairs {
        ls.push(words(&p.src).map(|w| vs.insert(w)).count());
        lt.push(words(&p.tgt).map(|w| vt.insert(w)).count());
        if !seen.insert((&p.src, &p.tgt)) {
            duplicates += 1;
        }
    }
    let vocab_src = vs.len();
    let vocab_tgt = vt.len();
    vs.extend(vt);
    CorpusStats {
        name: c.name.clone(),
        kind: c.kind.as_str(),
        hash: c.hash_hex(),
        pairs: c.pairs.len(),
        skipped: c.skipped,
        warnings: c
            .warnings
            .iter()
            .map(|w| (w.line, w.reason.clone()))
            .collect(),
        duplicates,
        src_lengths: lengths(&ls),
        tgt_lengths: lengths(&lt),
        vocab_src,
        vocab_tgt,
        vocab_size: vs.len(),
    }
}

fn lengths(ls: &[usize]) -> LengthStats {
    let mut h: BTreeMap<usize, usize> = BTreeMap::new();
    ls.iter().for_each(|&l| *h.entry(l).or_default() += 1);
    LengthStats {
        min: ls.iter().copied().min().unwrap_or(0),
        max: ls.iter().copied().max().unwrap_or(0),
        mean: if ls.is_empty() {
            0.0
        } else {
            ls.iter().sum::<usize>() as f64 / ls.len() as f64
        },
        histogram: h.into_iter().collect(),
    }
}

impl LengthStats {
    fn to_json(&self) -> Value {
        json!({
            "min": self.min,
            "max": self.max,
            "mean": (self.mean * 1000.0).round() / 1000.0,
            "histogram": self.histogram.iter().map(|&(l, n)| json!([l, n])).collect::<Vec<_>>(),
        })
    }

    /// Rows `lo-hi  count  bar`, lengths grouped into at most 12 ranges.
    fn describe(&self, out: &mut String) {
        let width = (self.max + 1).div_ceil(12).max(1);
        let mut buckets: BTreeMap<usize, usize> = BTreeMap::new();
        for &(l, n) in &self.histogram {
            *buckets.entry(l / width).or_default() += n;
        }
        let top = buckets.values().copied().max().unwrap_or(1).max(1);
        for (b, n) in buckets {
            let (lo, hi) = (b * width, b * width + width - 1);
            let range = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo}-{hi}")
            };
            let bar = "#".repeat((n * 40).div_ceil(top));
            let _ = writeln!(out, "    {range:>7}  {n:>7}  {bar}");
        }
    }
}

impl CorpusStats {
    /// The `--json` object; its keys are stable (see `actforge data stats
    /// --help`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind,
            "hash": self.hash,
            "pairs": self.pairs,
            "skipped": self.skipped,
            "warnings": self.warnings.iter().map(|(l, r)| json!({"line": l, "reason": r})).collect::<Vec<_>>(),
            "duplicates": self.duplicates,
            "src_lengths": self.src_lengths.to_json(),
            "tgt_lengths": self.tgt_lengths.to_json(),
            "vocab_src": self.vocab_src,
            "vocab_tgt": self.vocab_tgt,
            "vocab_size": self.vocab_size,
        })
    }

    /// Human-readable report; at most `max_warnings` warnings are listed.
    pub fn describe(&self, max_warnings: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "corpus      {} ({}, hash {})",
            self.name, self.kind, self.hash
        );
        let _ = writeln!(s, "pairs       {}", self.pairs);
        let _ = writeln!(s, "skipped     {}", self.skipped);
        for (l, r) in self.warnings.iter().take(max_warnings) {
            let _ = writeln!(s, "  {}:{l}: {r}", self.name);
        }
        if self.warnings.len() > max_warnings {
            let _ = writeln!(
                s,
                "  … and {} more (--json lists all)",
                self.warnings.len() - max_warnings
            );
        }
        let _ = writeln!(s, "duplicates  {}", self.duplicates);
        let _ = writeln!(
            s,
            "vocabulary  {} words ({} source, {} target)",
            self.vocab_size, self.vocab_src, self.vocab_tgt
        );
        for (side, l) in [("source", &self.src_lengths), ("target", &self.tgt_lengths)] {
            let _ = writeln!(
                s,
                "{side} length (words): min {}, mean {:.2}, max {}",
                l.min, l.mean, l.max
            );
            l.describe(&mut s);
        }
        s
    }
}
