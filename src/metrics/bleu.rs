//! Corpus BLEU exactly as sacreBLEU 2.6.0 computes it with its defaults:
//! `tokenize='13a'`, `smooth_method='exp'`, `max_ngram_order=4`,
//! `lowercase=False`, `use_effective_order=False`, closest reference length
//! (ties go to the shorter reference), n-gram counts clipped by the largest
//! count in any one reference.
//!
//! Segments are scored one by one into [`BleuStats`] (lengths and n-gram
//! counts), summed over the corpus, and turned into a score once
//! ([`BleuStats::score`]), so sentence-level statistics can be resampled
//! without re-tokenizing.

use std::collections::HashMap;

use super::pytext::{py_rstrip, py_split};
use super::tokenize::tokenize_13a;
use super::SACREBLEU_VERSION;

/// BLEU's maximum n-gram order.
pub const MAX_ORDER: usize = 4;

/// sacreBLEU's `my_log(0)`: the log of a zero precision.
const LOG_ZERO: f64 = -9_999_999_999.0;

/// A corpus BLEU score and its parts, on sacreBLEU's scales.
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// BLEU, 0–100.
    pub score: f64,
    /// Brevity penalty, 0–1.
    pub bp: f64,
    /// Smoothed n-gram precisions, 0–100 (n = 1..4).
    pub precisions: [f64; 4],
    /// Clipped n-gram matches.
    pub counts: [usize; 4],
    /// Hypothesis n-grams.
    pub totals: [usize; 4],
    /// Hypothesis tokens.
    pub sys_len: usize,
    /// Closest-reference tokens.
    pub ref_len: usize,
}

/// BLEU's sufficient statistics: one segment's, or a corpus's sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleuStats {
    /// Hypothesis tokens.
    pub sys_len: usize,
    /// Tokens of the closest reference.
    pub ref_len: usize,
    /// Clipped n-gram matches, n = 1..4.
    pub correct: [usize; 4],
    /// Hypothesis n-grams, n = 1..4.
    pub total: [usize; 4],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, o: BleuStats) {
        self.sys_len += o.sys_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

impl BleuStats {
    /// sacreBLEU's `compute_bleu` with `smooth_method='exp'`: an order with
    /// no match gets precision `100 / (2^k · total)` for its k-th such order;
    /// an order with no n-grams at all (and every order after it) counts as
    /// `log 0 = -9999999999`, so the score is 0; no match at any order gives
    /// 0 with zero precisions.
    pub fn score(&self) -> Bleu {
        let mut b = Bleu {
            score: 0.0,
            bp: brevity_penalty(self.sys_len, self.ref_len),
            precisions: [0.0; 4],
            counts: self.correct,
            totals: self.total,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
        };
        if self.correct.iter().all(|&c| c == 0) {
            return b;
        }
        b.precisions = smoothed_precisions(&self.correct, &self.total);
        let log_sum: f64 = b.precisions.iter().map(|&p| log_or_floor(p)).sum();
        b.score = b.bp * (log_sum / MAX_ORDER as f64).exp();
        b
    }
}

fn brevity_penalty(sys_len: usize, ref_len: usize) -> f64 {
    match (sys_len < ref_len, sys_len > 0) {
        (false, _) => 1.0,
        (true, true) => (1.0 - ref_len as f64 / sys_len as f64).exp(),
        (true, false) => 0.0,
    }
}

fn smoothed_precisions(correct: &[usize; 4], total: &[usize; 4]) -> [f64; 4] {
    let mut p = [0.0; 4];
    let mut smooth = 1.0;
    for n in 0..MAX_ORDER {
        if total[n] == 0 {
            break;
        }
        p[n] = if correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * total[n] as f64)
        } else {
            100.0 * correct[n] as f64 / total[n] as f64
        };
    }
    p
}

fn log_or_floor(p: f64) -> f64 {
    if p == 0.0 {
        LOG_ZERO
    } else {
        p.ln()
    }
}

/// Corpus BLEU of `hyps` against reference streams: `refs[r][i]` is the r-th
/// reference of segment i. Segments pair up as Python's `zip` pairs them
/// (to the shortest stream), like sacreBLEU; callers that read files should
/// check the line counts first (`actforge bleu` does). No segments (or no
/// reference stream) give a score of 0.
pub fn corpus_bleu(hyps: &[&str], refs: &[Vec<&str>]) -> Bleu {
    let mut sum = BleuStats::default();
    for (i, hyp) in hyps.iter().enumerate() {
        let Some(seg_refs) = segment_refs(refs, i) else {
            break;
        };
        sum += segment_bleu_stats(hyp, &seg_refs);
    }
    sum.score()
}

/// The references of segment `i`, or `None` past the shortest stream.
pub(super) fn segment_refs<'a>(refs: &[Vec<&'a str>], i: usize) -> Option<Vec<&'a str>> {
    if refs.is_empty() {
        return None;
    }
    refs.iter().map(|stream| stream.get(i).copied()).collect()
}

/// One segment's BLEU statistics against its references (untokenized text).
pub fn segment_bleu_stats(hyp: &str, refs: &[&str]) -> BleuStats {
    let hyp_tok = preprocess(hyp);
    let ref_toks: Vec<String> = refs.iter().map(|r| preprocess(r)).collect();
    let hyp_words: Vec<&str> = py_split(&hyp_tok).collect();
    let ref_words: Vec<Vec<&str>> = ref_toks.iter().map(|r| py_split(r).collect()).collect();
    let ref_max = max_ref_counts(&ref_words);
    let ref_lens: Vec<usize> = ref_words.iter().map(Vec::len).collect();
    let mut s = BleuStats {
        sys_len: hyp_words.len(),
        ref_len: closest_ref_len(hyp_words.len(), &ref_lens),
        ..BleuStats::default()
    };
    for (gram, count) in ngram_counts(&hyp_words) {
        let n = gram.len() - 1;
        s.total[n] += count;
        s.correct[n] += count.min(ref_max.get(gram).copied().unwrap_or(0));
    }
    s
}

/// sacreBLEU's `_preprocess_segment`: `rstrip`, then 13a.
fn preprocess(s: &str) -> String {
    tokenize_13a(py_rstrip(s))
}

/// Every n-gram of orders 1..=4 with its count.
fn ngram_counts<'w, 's>(words: &'w [&'s str]) -> HashMap<&'w [&'s str], usize> {
    let mut m = HashMap::new();
    for n in 1..=MAX_ORDER.min(words.len()) {
        for gram in words.windows(n) {
            *m.entry(gram).or_insert(0) += 1;
        }
    }
    m
}

/// For each n-gram, its largest count in any one reference.
fn max_ref_counts<'w, 's>(refs: &'w [Vec<&'s str>]) -> HashMap<&'w [&'s str], usize> {
    let mut m: HashMap<&[&str], usize> = HashMap::new();
    for r in refs {
        for (gram, c) in ngram_counts(r) {
            let e = m.entry(gram).or_insert(0);
            *e = (*e).max(c);
        }
    }
    m
}

/// The reference length closest to `hyp_len`; ties go to the shorter one.
/// No references: 0 (sacreBLEU's `-1` cannot arise there).
fn closest_ref_len(hyp_len: usize, ref_lens: &[usize]) -> usize {
    ref_lens
        .iter()
        .copied()
        .min_by_key(|&r| (r.abs_diff(hyp_len), r))
        .unwrap_or(0)
}

/// sacreBLEU's BLEU signature for these defaults, e.g.
/// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
pub fn bleu_signature(nrefs: usize) -> String {
    format!("nrefs:{nrefs}|case:mixed|eff:no|tok:13a|smooth:exp|version:{SACREBLEU_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_reference_prefers_the_shorter_on_ties() {
        assert_eq!(closest_ref_len(5, &[7, 3, 4, 6]), 4);
        assert_eq!(closest_ref_len(5, &[6, 4]), 4);
        assert_eq!(closest_ref_len(0, &[]), 0);
    }

    #[test]
    fn missing_order_zeroes_the_score() {
        // Three tokens: no 4-grams, so log 0 floors the mean.
        let b = corpus_bleu(&["a b c"], &[vec!["a b c"]]);
        assert_eq!(b.precisions, [100.0, 100.0, 100.0, 0.0]);
        assert_eq!(b.score, 0.0);
    }

    #[test]
    fn exp_smoothing_halves_each_missing_order() {
        let s = BleuStats {
            sys_len: 10,
            ref_len: 10,
            correct: [5, 0, 0, 1],
            total: [10, 9, 8, 7],
        };
        let p = s.score().precisions;
        assert_eq!(p, [50.0, 100.0 / 18.0, 100.0 / 32.0, 100.0 / 7.0]);
    }
}
