//! The intermediate representation: the op table, the hash-consed DAG,
//! lowering from the AST (with the prelude of named primitives), evaluators
//! and printers. Text is parsed only through [`crate::syntax`].

pub mod eval;
pub mod fastmath;
pub mod graph;
pub mod lower;
pub mod ops;
pub mod print;
pub mod rule;
pub mod seeds;

pub use eval::{eval_f64, eval_per_node, EvalReport, Lane, RefEval, Shift, Tape, CHUNK};
pub use graph::{Expr, Graph, Id, Node};
pub use lower::{Library, PRELUDE};
pub use ops::{Op, OpInfo, OPS};
pub use print::{
    format_const, to_infix, to_infix_limited, to_prefix, to_prefix_limited, MAX_PRINT_NODES,
};

/// Parse and lower a formula with the standard prelude.
pub fn parse(src: &str) -> Result<Expr, crate::syntax::Diagnostic> {
    Library::standard().parse(src)
}
