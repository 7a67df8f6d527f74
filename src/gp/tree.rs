//! GP individuals: DEAP-style prefix trees over a [`PrimitiveSet`], their
//! measures (size, height, subtree ranges), their formula text and the way
//! back from text to a tree.
//!
//! Heights follow DEAP: the root is at depth 0, so a lone terminal has
//! height 0 and `safe_add(ARG0, 1.0)` has height 1.

use std::fmt;
use std::ops::Range;

use serde_json::{json, Value};

use crate::ir::format_const;
use crate::syntax::{parse_formula, Ast, AstKind, Diagnostic, Span};

use super::pset::{PrimitiveSet, Terminal};

/// One node of a prefix tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gene {
    /// An index into the set's primitives.
    Prim(u16),
    /// An index into the set's terminals.
    Term(u16),
    /// A value drawn by the set's ephemeral constant `erc`, kept as f64
    /// bits so trees compare and hash exactly.
    Erc { erc: u16, bits: u64 },
}

impl Gene {
    pub fn erc(erc: usize, value: f64) -> Gene {
        Gene::Erc {
            erc: erc as u16,
            bits: value.to_bits(),
        }
    }

    /// Number of children.
    pub fn arity(self, set: &PrimitiveSet) -> usize {
        match self {
            Gene::Prim(p) => set.primitives()[p as usize].arity,
            _ => 0,
        }
    }

    pub fn is_leaf(self) -> bool {
        !matches!(self, Gene::Prim(_))
    }
}

/// A GP individual in DEAP's prefix layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tree {
    pub genes: Vec<Gene>,
}

impl Tree {
    /// Number of nodes (DEAP's `len(individual)`).
    pub fn len(&self) -> usize {
        self.genes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.genes.is_empty()
    }

    /// Height (root at depth 0).
    pub fn height(&self, set: &PrimitiveSet) -> usize {
        let mut stack: Vec<usize> = vec![0];
        let mut h = 0;
        for g in &self.genes {
            let d = stack.pop().unwrap_or(0);
            h = h.max(d);
            stack.extend(std::iter::repeat_n(d + 1, g.arity(set)));
        }
        h
    }

    /// The genes of the subtree rooted at `start` (DEAP's
    /// `searchSubtree`).
    pub fn subtree(&self, set: &PrimitiveSet, start: usize) -> Range<usize> {
        let mut open = 1usize;
        let mut end = start;
        while open > 0 {
            open += self.genes[end].arity(set);
            open -= 1;
            end += 1;
        }
        start..end
    }

    /// Whether the genes form one well-formed tree over `set`: every index
    /// in range and every primitive with exactly its arity of children.
    pub fn is_valid(&self, set: &PrimitiveSet) -> bool {
        let mut open = 1usize;
        for (i, g) in self.genes.iter().enumerate() {
            let in_range = match *g {
                Gene::Prim(p) => (p as usize) < set.primitives().len(),
                Gene::Term(t) => (t as usize) < set.terminals().len(),
                Gene::Erc { erc, bits } => {
                    (erc as usize) < set.ephemerals().len() && f64::from_bits(bits).is_finite()
                }
            };
            if !in_range || open == 0 {
                return false;
            }
            open = open - 1 + g.arity(set);
            if open == 0 && i + 1 != self.genes.len() {
                return false;
            }
        }
        open == 0
    }

    /// The formula text, DEAP style: `safe_add(sin(ARG0), 1.0)`.
    pub fn display<'a>(&'a self, set: &'a PrimitiveSet) -> TreeDisplay<'a> {
        TreeDisplay { tree: self, set }
    }

    pub fn to_formula(&self, set: &PrimitiveSet) -> String {
        self.display(set).to_string()
    }

    /// The genes as JSON, exact for checkpoints: `[["p",4],["t",0],
    /// ["e",0,-0.37]]` (primitive index, terminal index, ephemeral
    /// generator and value). Indices refer to `set`, which the reader must
    /// rebuild identically (e.g. from the same spec).
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.genes
                .iter()
                .map(|g| match *g {
                    Gene::Prim(p) => json!(["p", p]),
                    Gene::Term(t) => json!(["t", t]),
                    Gene::Erc { erc, bits } => json!(["e", erc, f64::from_bits(bits)]),
                })
                .collect(),
        )
    }

    /// Read [`Tree::to_json`]; the result must be a valid tree of `set`.
    pub fn from_json(v: &Value, set: &PrimitiveSet) -> Result<Tree, String> {
        let items = v.as_array().ok_or("a tree must be a JSON array of genes")?;
        let index = |x: Option<&Value>| {
            x.and_then(Value::as_u64)
                .and_then(|i| u16::try_from(i).ok())
        };
        let genes = items
            .iter()
            .map(|item| {
                let parts = item.as_array().map(Vec::as_slice).unwrap_or(&[]);
                match (parts.first().and_then(Value::as_str), parts.len()) {
                    (Some("p"), 2) => index(parts.get(1)).map(Gene::Prim),
                    (Some("t"), 2) => index(parts.get(1)).map(Gene::Term),
                    (Some("e"), 3) => {
                        index(parts.get(1))
                            .zip(parts[2].as_f64())
                            .map(|(e, v)| Gene::Erc {
                                erc: e,
                                bits: v.to_bits(),
                            })
                    }
                    _ => None,
                }
                .ok_or_else(|| {
                    format!(
                        "`{item}` is not a gene (expected [\"p\",i], [\"t\",i] or [\"e\",i,value])"
                    )
                })
            })
            .collect::<Result<Vec<Gene>, String>>()?;
        let tree = Tree { genes };
        if !tree.is_valid(set) {
            return Err(format!(
                "the genes do not form a tree of the primitive set `{}`",
                set.name()
            ));
        }
        Ok(tree)
    }

    /// Read a formula written with the set's primitives back into a tree:
    /// calls of the set's primitives, the input (`x` or `ARG0`), the set's
    /// constants (any other number becomes an ephemeral constant of the
    /// set's first generator, if it has one) and, for sets that include
    /// `add`, `sub`, `mul`, `div`, `lt`, … as primitives, the infix
    /// operators. Anything else is an error that points at it.
    pub fn parse(text: &str, set: &PrimitiveSet) -> Result<Tree, Diagnostic> {
        let ast = parse_formula(text)?;
        let mut genes = Vec::new();
        push_ast(&ast, set, &mut genes).map_err(|d| d.with_source(text, "formula"))?;
        Ok(Tree { genes })
    }
}

fn push_ast(ast: &Ast, set: &PrimitiveSet, out: &mut Vec<Gene>) -> Result<(), Diagnostic> {
    match &ast.kind {
        AstKind::Name(n) if n == "x" || n == "ARG0" => {
            out.push(leaf(set, &Terminal::Input, ast.span)?);
        }
        AstKind::Name(n) => {
            return Err(
                Diagnostic::new(format!("unknown name `{n}`"), ast.span, "not a terminal")
                    .with_help("the input is `x` (or its DEAP alias `ARG0`)"),
            )
        }
        AstKind::Num(v) => out.push(constant(set, *v, ast.span)?),
        AstKind::Neg(inner) => match inner.kind {
            AstKind::Num(v) => out.push(constant(set, -v, ast.span)?),
            _ => {
                out.push(operator(set, "neg", 1, ast.span)?);
                push_ast(inner, set, out)?;
            }
        },
        AstKind::Binary {
            op,
            op_span,
            lhs,
            rhs,
        } => {
            let name = crate::ir::lower::binop(*op).name();
            out.push(operator(set, name, 2, *op_span)?);
            push_ast(lhs, set, out)?;
            push_ast(rhs, set, out)?;
        }
        AstKind::Call {
            name,
            name_span,
            args,
            ..
        } => {
            if args.is_empty() {
                out.push(leaf(set, &Terminal::Call(name.clone()), ast.span)?);
                return Ok(());
            }
            let Some(p) = set.primitive_index(name, args.len()) else {
                return Err(not_in_set(set, name, args.len(), *name_span));
            };
            out.push(Gene::Prim(p as u16));
            for a in args {
                push_ast(a, set, out)?;
            }
        }
    }
    Ok(())
}

fn leaf(set: &PrimitiveSet, t: &Terminal, span: Span) -> Result<Gene, Diagnostic> {
    match set.terminals().iter().position(|u| u == t) {
        Some(i) => Ok(Gene::Term(i as u16)),
        None => Err(Diagnostic::new(
            format!(
                "`{t}` is not a terminal of the primitive set `{}`",
                set.name()
            ),
            span,
            "not in the set",
        )),
    }
}

fn constant(set: &PrimitiveSet, v: f64, span: Span) -> Result<Gene, Diagnostic> {
    let t = Terminal::Const(v);
    if set.terminals().contains(&t) {
        return leaf(set, &t, span);
    }
    if !set.ephemerals().is_empty() && v.is_finite() {
        return Ok(Gene::erc(0, v));
    }
    Err(Diagnostic::new(
        format!(
            "the constant {} is not a terminal of the primitive set `{}`",
            format_const(v),
            set.name()
        ),
        span,
        "not in the set",
    )
    .with_help("add an ephemeral constant generator to the set to allow any constant"))
}

fn operator(set: &PrimitiveSet, name: &str, arity: usize, span: Span) -> Result<Gene, Diagnostic> {
    match set.primitive_index(name, arity) {
        Some(p) => Ok(Gene::Prim(p as u16)),
        None => Err(Diagnostic::new(
            format!(
                "this operator (`{name}`) is not a primitive of the set `{}`",
                set.name()
            ),
            span,
            "not in the set",
        )
        .with_help(
            "write the formula with the set's primitives, e.g. `safe_add(a, b)` for `a + b`",
        )),
    }
}

fn not_in_set(set: &PrimitiveSet, name: &str, arity: usize, span: Span) -> Diagnostic {
    let mut d = Diagnostic::new(
        format!(
            "`{name}` with {arity} argument{} is not a primitive of the set `{}`",
            if arity == 1 { "" } else { "s" },
            set.name()
        ),
        span,
        "not in the set",
    );
    let names = set.primitives().iter().map(|p| p.name.as_str());
    if let Some(c) = crate::ir::lower::closest(name, names) {
        d = d.with_help(format!("did you mean `{c}`?"));
    }
    d
}

/// Prints a tree as formula text.
pub struct TreeDisplay<'a> {
    tree: &'a Tree,
    set: &'a PrimitiveSet,
}

impl fmt::Display for TreeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Iterative prefix printing: a stack of "arguments still to close".
        let mut open: Vec<usize> = Vec::new();
        for g in &self.tree.genes {
            match *g {
                Gene::Prim(p) => {
                    let prim = &self.set.primitives()[p as usize];
                    write!(f, "{}(", prim.name)?;
                    open.push(prim.arity);
                    continue;
                }
                Gene::Term(t) => write!(f, "{}", self.set.terminals()[t as usize])?,
                Gene::Erc { bits, .. } => f.write_str(&format_const(f64::from_bits(bits)))?,
            }
            while let Some(left) = open.last_mut() {
                *left -= 1;
                if *left > 0 {
                    f.write_str(", ")?;
                    break;
                }
                f.write_str(")")?;
                open.pop();
            }
        }
        Ok(())
    }
}
