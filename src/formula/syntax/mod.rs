//! The surface language: spanned AST, nom parser, caret-rendered errors and
//! the nesting limit. Knows nothing about what formulas mean; lowering to the
//! IR (names, arities, the prelude) lives in [`crate::ir`].
//!
//! The grammar is written down in `grammar/formula.ebnf`.

pub mod ast;
pub mod diagnostic;
pub mod parser;

pub use ast::{Ast, AstKind, BinOp, Definition};
pub use diagnostic::{escape_controls, Diagnostic, Label, Span};
pub use parser::{parse_definitions, parse_formula, MAX_DEPTH};

/// The grammar of the formula language, as shipped in `grammar/`.
pub const GRAMMAR: &str = include_str!("../../../grammar/formula.ebnf");
