//! A candidate formula, built once: its canonical key, its text and its
//! [`Function`] (simplified, with its derivative).
//!
//! The engine builds a candidate when it classifies a new canonical key
//! ([`super::assign`]); from there the fingerprint, the screen, the batch
//! compile, the in-process evaluators and the final retrain all take the
//! same value, and nothing parses its text again. Text is the wire format
//! only: the evaluations log records it, and a worker process or a Ray
//! task (`actforge eval-candidates`) reads a job's text and builds the
//! candidate there with [`Candidate::parse`], from the same text with the
//! same library, which is why a fitness is the same bit for bit whichever
//! executor computed it.

use std::fmt;
use std::sync::Arc;

use crate::diff::Function;
use crate::ir::{Expr, Library};
use crate::syntax::Diagnostic;

/// One formula ready to evaluate. Cheap to clone (the function is shared).
#[derive(Clone)]
pub struct Candidate {
    /// The canonical hash of the simplified formula (the cache key).
    pub key: u64,
    /// The formula as text: the canonical prefix form of the simplified
    /// formula (or, when that is too large to print, the tree's own text,
    /// which simplifies to the same canonical form). What logs record and
    /// worker processes parse.
    pub text: String,
    /// `text` simplified and differentiated.
    pub function: Arc<Function>,
}

impl Candidate {
    /// The candidate of `text`, already parsed into `expr`.
    pub fn new(key: u64, text: impl Into<String>, expr: &Expr) -> Candidate {
        Candidate {
            key,
            text: text.into(),
            function: Arc::new(Function::new(expr)),
        }
    }

    /// Parse `text` with `lib` (a process boundary: a batch line, a file).
    pub fn parse(key: u64, text: &str, lib: &Library) -> Result<Candidate, Diagnostic> {
        Ok(Candidate::new(key, text, &lib.parse(text)?))
    }
}

/// Candidates are told apart by key and text (the function follows from
/// the text).
impl PartialEq for Candidate {
    fn eq(&self, other: &Candidate) -> bool {
        self.key == other.key && self.text == other.text
    }
}

impl Eq for Candidate {}

impl fmt::Debug for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Candidate")
            .field("key", &format_args!("{:016x}", self.key))
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_candidate_is_its_text_simplified() {
        let lib = Library::standard();
        let c = Candidate::parse(7, "x * 1 + 0", lib).unwrap();
        assert_eq!(c.key, 7);
        assert_eq!(c.text, "x * 1 + 0");
        assert_eq!(c.function.value(2.5), 2.5);
        assert_eq!(c.function.derivative(2.5), 1.0);
        assert!(Candidate::parse(7, "x +", lib).is_err());
        let d = c.clone();
        assert!(Arc::ptr_eq(&c.function, &d.function), "clones share");
        assert_eq!(c, d);
    }
}
