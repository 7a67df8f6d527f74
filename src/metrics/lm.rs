//! Language-model metrics over the non-padding target tokens of an
//! evaluation set. Callers sum the per-token negative log-likelihood (natural
//! log) and count the tokens and the correct argmax predictions; these
//! functions only turn the sums into the reported numbers.
//!
//! Numerical failure is a value: zero tokens give NaN (undefined), a
//! non-finite or huge likelihood gives an infinite or NaN perplexity, which
//! [`fitness`](super::fitness) scores as a failure.

/// `exp(nll_sum / tokens)`: perplexity from the summed token NLL in nats.
/// NaN when `tokens == 0`.
pub fn perplexity(nll_sum: f64, tokens: usize) -> f64 {
    if tokens == 0 {
        return f64::NAN;
    }
    (nll_sum / tokens as f64).exp()
}

/// `correct / tokens` in [0, 1]. NaN when `tokens == 0`.
pub fn accuracy(correct: usize, tokens: usize) -> f64 {
    if tokens == 0 {
        return f64::NAN;
    }
    correct as f64 / tokens as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_guess_has_the_vocabulary_as_perplexity() {
        let v = 1000.0f64;
        let ppl = perplexity(50.0 * v.ln(), 50);
        assert!((ppl - v).abs() < 1e-9 * v);
        assert_eq!(accuracy(3, 4), 0.75);
        assert!(perplexity(1.0, 0).is_nan() && accuracy(0, 0).is_nan());
    }
}
