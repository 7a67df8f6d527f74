//! Metrics: corpus BLEU and chrF equal to sacreBLEU 2.6.0's defaults,
//! perplexity and token accuracy, the statistics that compare runs over seeds
//! (mean, Student-t 95% interval, Welch's t-test, the paired t-test and its
//! interval, Holm's adjustment, the minimum detectable effect of a paired
//! design) and the bounded weighted
//! fitness that the GP search maximises.
//!
//! This module is a leaf of the pipeline (see ARCHITECTURE.md): it works on
//! plain strings and numbers and imports nothing of the crate but
//! [`crate::error`]. It must not import candle, the models, the data loaders
//! or the compiler.
//!
//! ```
//! use actforge::metrics::{bleu_signature, corpus_bleu, corpus_chrf};
//!
//! let hyps = ["The cat sat on the mat."];
//! let refs = vec![vec!["The cat sat on a mat."]];
//! let b = corpus_bleu(&hyps, &refs);
//! assert!(b.score > 0.0 && b.score < 100.0);
//! assert_eq!(b.counts[0], 6); // The, cat, sat, on, mat, "."
//! assert_eq!(bleu_signature(1), "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
//! assert!(corpus_chrf(&hyps, &refs) > b.score);
//! ```

mod bleu;
mod chrf;
mod fitness;
mod lm;
mod pytext;
mod stats;
mod tdist;
mod tokenize;

pub use bleu::{bleu_signature, corpus_bleu, segment_bleu_stats, Bleu, BleuStats, MAX_ORDER};
pub use chrf::{chrf_signature, corpus_chrf, CHAR_ORDER};
pub use fitness::{contributions, fitness, ppl_score, Scores, Weights, FITNESS_FLOOR};
pub use lm::{accuracy, perplexity};
pub use pytext::{is_py_whitespace, py_rstrip, py_split};
pub use stats::{holm, paired, paired_mde, summarize, welch_p, Paired, Summary};
pub use tdist::{student_t_cdf, student_t_quantile, student_t_sf};
pub use tokenize::tokenize_13a;

/// The sacreBLEU release whose defaults these metrics reproduce; it ends
/// every signature.
pub const SACREBLEU_VERSION: &str = "2.6.0";
