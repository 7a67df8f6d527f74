//! The seed post's two evolved activations, spelled once: the Q&A formula
//! (TinyGPT) and the translation formula (T5). `train`'s defaults, the
//! search's `--include` names and the SASS report's default formulas all
//! take them from here.

/// The activation evolved for the Q&A task.
pub const SEED_QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";
/// The activation evolved for translation with T5 (with the `)` the blog
/// dropped).
pub const SEED_T5: &str = "log1p_safe(safe_cos(gated_gate((safe_tan(softsign(ARG0))), ARG0)))";
/// Both, as `(label, formula)`.
pub const SEEDS: [(&str, &str); 2] = [("seed-qa", SEED_QA), ("seed-t5", SEED_T5)];
