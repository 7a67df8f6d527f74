//! Corpus chrF exactly as sacreBLEU 2.6.0's default `CHRF()` computes it:
//! character n-grams of orders 1..=6 over the segment with all (Python)
//! whitespace removed, no word n-grams, β = 2, case kept.
//!
//! Its default is *not* epsilon smoothing (`eps_smoothing=False`, shown as
//! `eff:yes` in the signature): precision and recall are averaged over the
//! orders where both hypothesis and reference have n-grams, and F_β is taken
//! of those averages. With several references each segment keeps the
//! statistics of the reference with the best segment-level chrF (the first
//! on ties); the corpus score is computed once from the summed statistics.

use std::collections::HashMap;

use super::bleu::segment_refs;
use super::pytext::py_split;
use super::SACREBLEU_VERSION;

/// chrF's character n-gram order.
pub const CHAR_ORDER: usize = 6;

/// β² of chrF2.
const BETA_SQ: f64 = 4.0;

/// Per order: hypothesis n-grams (0 when the reference has none), reference
/// n-grams, matches.
type Stats = [[usize; 3]; CHAR_ORDER];

/// Corpus chrF2 (0–100) of `hyps` against reference streams `refs[r][i]`,
/// paired like [`corpus_bleu`](super::corpus_bleu) (Python's `zip`).
pub fn corpus_chrf(hyps: &[&str], refs: &[Vec<&str>]) -> f64 {
    let mut sum: Stats = [[0; 3]; CHAR_ORDER];
    for (i, hyp) in hyps.iter().enumerate() {
        let Some(seg_refs) = segment_refs(refs, i) else {
            break;
        };
        let best = best_segment_stats(hyp, &seg_refs);
        for (acc, s) in sum.iter_mut().zip(best) {
            for k in 0..3 {
                acc[k] += s[k];
            }
        }
    }
    f_score(&sum)
}

/// The statistics of the reference with the highest segment chrF.
fn best_segment_stats(hyp: &str, refs: &[&str]) -> Stats {
    let hyp_chars = strip_whitespace(hyp);
    let hyp_grams = char_ngrams(&hyp_chars);
    let mut best = ([[0; 3]; CHAR_ORDER], -1.0);
    for r in refs {
        let ref_chars = strip_whitespace(r);
        let stats = match_stats(&hyp_grams, &char_ngrams(&ref_chars));
        let f = f_score(&stats);
        if f > best.1 {
            best = (stats, f);
        }
    }
    best.0
}

fn match_stats(hyp: &[HashMap<&str, usize>], refs: &[HashMap<&str, usize>]) -> Stats {
    let mut out = [[0; 3]; CHAR_ORDER];
    for (n, (h, r)) in hyp.iter().zip(refs).enumerate() {
        let mut matches = 0;
        for (gram, &c) in h {
            matches += c.min(r.get(gram).copied().unwrap_or(0));
        }
        let hyp_count = if r.is_empty() { 0 } else { h.values().sum() };
        out[n] = [hyp_count, r.values().sum(), matches];
    }
    out
}

/// `''.join(s.split())`.
fn strip_whitespace(s: &str) -> String {
    py_split(s).collect()
}

/// Character n-gram counts of orders 1..=6 (code points, as Python slices).
fn char_ngrams(s: &str) -> Vec<HashMap<&str, usize>> {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let chars = bounds.len() - 1;
    (1..=CHAR_ORDER)
        .map(|n| {
            let mut m = HashMap::new();
            for i in 0..(chars + 1).saturating_sub(n) {
                *m.entry(&s[bounds[i]..bounds[i + n]]).or_insert(0) += 1;
            }
            m
        })
        .collect()
}

/// sacreBLEU's `_compute_f_score` with `eps_smoothing=False`, operation for
/// operation (the segment-level choice of reference compares these values).
fn f_score(stats: &Stats) -> f64 {
    let (mut avg_prec, mut avg_rec, mut effective) = (0.0, 0.0, 0usize);
    for &[n_hyp, n_ref, n_match] in stats {
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += n_match as f64 / n_hyp as f64;
            avg_rec += n_match as f64 / n_ref as f64;
            effective += 1;
        }
    }
    if effective == 0 {
        return 0.0;
    }
    avg_prec /= effective as f64;
    avg_rec /= effective as f64;
    if avg_prec + avg_rec == 0.0 {
        return 0.0;
    }
    let score = (1.0 + BETA_SQ) * avg_prec * avg_rec / (BETA_SQ * avg_prec + avg_rec);
    100.0 * score
}

/// sacreBLEU's default chrF signature, e.g.
/// `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`.
pub fn chrf_signature(nrefs: usize) -> String {
    format!("nrefs:{nrefs}|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{SACREBLEU_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngrams_are_code_points_without_whitespace() {
        let s = strip_whitespace("é a\u{301}");
        let g = char_ngrams(&s);
        assert_eq!(g[0].len(), 3); // é, a, U+0301
        assert_eq!(g[2].get("éa\u{301}"), Some(&1));
        assert!(g[3].is_empty());
    }

    #[test]
    fn identical_segments_score_100() {
        assert_eq!(corpus_chrf(&["a b c"], &[vec!["abc"]]), 100.0);
        assert_eq!(corpus_chrf(&[""], &[vec![""]]), 0.0);
    }
}
