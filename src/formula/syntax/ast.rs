//! The spanned syntax tree: exactly what the user wrote, before names are
//! resolved. Lowering to the IR (`crate::ir::lower`) checks names and arities.

use super::diagnostic::Span;

/// Binary operators of the surface language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Lt,
    Gt,
    Le,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ast {
    pub kind: AstKind,
    pub span: Span,
    /// Height of this subtree (a leaf is 1); bounded by the nesting limit.
    pub depth: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AstKind {
    /// A decimal literal.
    Num(f64),
    /// A bare name: `x`, `ARG0`, or a parameter of a definition.
    Name(String),
    /// `name(args…)`; `open` is the span of the `(`.
    Call {
        name: String,
        name_span: Span,
        open: Span,
        args: Vec<Ast>,
    },
    /// Unary minus.
    Neg(Box<Ast>),
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<Ast>,
        rhs: Box<Ast>,
    },
}

impl Ast {
    pub fn leaf(kind: AstKind, span: Span) -> Ast {
        Ast {
            kind,
            span,
            depth: 1,
        }
    }

    /// A node over `children`, with its depth derived from theirs.
    pub fn node(kind: AstKind, span: Span) -> Ast {
        let depth = 1 + match &kind {
            AstKind::Num(_) | AstKind::Name(_) => 0,
            AstKind::Call { args, .. } => args.iter().map(|a| a.depth).max().unwrap_or(0),
            AstKind::Neg(a) => a.depth,
            AstKind::Binary { lhs, rhs, .. } => lhs.depth.max(rhs.depth),
        };
        Ast { kind, span, depth }
    }
}

/// `name(params…) = body`, from the prelude or a user's definitions file.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub name: String,
    pub name_span: Span,
    pub params: Vec<(String, Span)>,
    pub body: Ast,
}
