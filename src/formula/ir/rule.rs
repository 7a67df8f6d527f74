//! Derivative rules as data. Each op's rule (the `deriv` formula of the op
//! table, over its operands `a b c`, their derivatives `da db dc` and its
//! own value `y`) is lowered once into a [`Rule`]: constants, those names,
//! ops, and `chain(d, s)`, the guarded chain-rule product. `diff`
//! instantiates rules; only this file reads their text.

use std::sync::OnceLock;

use super::lower::binop;
use super::ops::Op;
use crate::syntax::{parse_formula, Ast, AstKind};

/// One derivative rule, a small tree over the names a rule may use.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Const(f64),
    /// Operand `i` of the op (`a`, `b`, `c`).
    Operand(usize),
    /// The derivative of operand `i` (`da`, `db`, `dc`).
    Tangent(usize),
    /// The op's own value (`y`).
    Value,
    /// Unary minus of a non-constant.
    Neg(Box<Rule>),
    /// An infix operator (`+ - * / ^` and comparisons), whose zero
    /// tangents `diff` shortcuts.
    Binary(Op, Box<Rule>, Box<Rule>),
    /// A call of an op by name.
    Call(Op, Vec<Rule>),
    /// `chain(d, s)`: `d · s`, exactly 0 where either factor is 0.
    Chain(Box<Rule>, Box<Rule>),
}

/// The rule of `op`, lowered once per process.
pub fn rule(op: Op) -> &'static Rule {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    &RULES.get_or_init(|| Op::ALL.iter().map(|&op| lower_rule(op)).collect())[op as usize]
}

fn lower_rule(op: Op) -> Rule {
    let text = op.info().deriv;
    let ast = parse_formula(text)
        .unwrap_or_else(|d| panic!("derivative rule of `{op}` does not parse:\n{}", d.render()));
    lower(&ast).unwrap_or_else(|why| panic!("derivative rule of `{op}` ({text}): {why}"))
}

fn lower(ast: &Ast) -> Result<Rule, String> {
    Ok(match &ast.kind {
        AstKind::Num(v) => Rule::Const(*v),
        AstKind::Name(n) => match n.as_str() {
            "a" => Rule::Operand(0),
            "b" => Rule::Operand(1),
            "c" => Rule::Operand(2),
            "da" => Rule::Tangent(0),
            "db" => Rule::Tangent(1),
            "dc" => Rule::Tangent(2),
            "y" => Rule::Value,
            other => return Err(format!("unknown name `{other}`")),
        },
        AstKind::Neg(inner) => match inner.kind {
            AstKind::Num(v) => Rule::Const(-v),
            _ => Rule::Neg(Box::new(lower(inner)?)),
        },
        AstKind::Binary { op, lhs, rhs, .. } => {
            Rule::Binary(binop(*op), Box::new(lower(lhs)?), Box::new(lower(rhs)?))
        }
        AstKind::Call { name, args, .. } if name == "chain" => match &args[..] {
            [d, s] => Rule::Chain(Box::new(lower(d)?), Box::new(lower(s)?)),
            _ => return Err(format!("chain takes 2 arguments, got {}", args.len())),
        },
        AstKind::Call { name, args, .. } => {
            let op = Op::by_name(name).ok_or_else(|| format!("unknown op `{name}`"))?;
            if args.len() != op.arity() {
                return Err(format!("`{name}` takes {} arguments", op.arity()));
            }
            Rule::Call(op, args.iter().map(lower).collect::<Result<_, _>>()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_parses_and_uses_only_bound_names() {
        // Lowering panics on an unknown name or op, or a wrong arity.
        for &op in Op::ALL {
            let _ = rule(op);
        }
        assert_eq!(rule(Op::Neg), &Rule::Neg(Box::new(Rule::Tangent(0))));
    }
}
