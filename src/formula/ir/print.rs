//! Printers: DEAP-style prefix (`mul(x, sigmoid(x))`) and infix with
//! minimal parentheses (`x * sigmoid(x)`). Both print text that parses back
//! to the same IR (`parse(print(e)) == e`, a property test).

use super::graph::{Graph, Id, Node};
use super::ops::{Assoc, Fixity, NEG_PREC};

/// Shortest decimal that round-trips to the same f64.
pub fn format_const(v: f64) -> String {
    let s = format!("{v:?}");
    // `{:?}` prints `1e-6` and `1.0`; both parse back exactly.
    debug_assert!(
        s.parse::<f64>()
            .map(|p| p.to_bits() == v.to_bits())
            .unwrap_or(false)
            || v.is_nan()
    );
    s
}

/// `op(a, b)` everywhere: the DEAP prefix form over intrinsic names.
pub fn to_prefix(g: &Graph, id: Id) -> String {
    let mut out = String::new();
    prefix_into(g, id, &mut out);
    out
}

fn prefix_into(g: &Graph, id: Id, out: &mut String) {
    crate::stack::deep(|| prefix_node(g, id, out))
}

fn prefix_node(g: &Graph, id: Id, out: &mut String) {
    match g.node(id) {
        Node::X => out.push('x'),
        Node::Const(b) => out.push_str(&format_const(f64::from_bits(*b))),
        Node::App(op, _) => {
            out.push_str(op.name());
            out.push('(');
            for (i, a) in g.node(id).args().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                prefix_into(g, *a, out);
            }
            out.push(')');
        }
    }
}

/// Largest expression tree (shared nodes counted per use) the printers
/// will expand; DAGs such as derivatives of nested formulas can have
/// trees exponentially larger than themselves.
pub const MAX_PRINT_NODES: u64 = 200_000;

/// [`to_infix`], or `None` when the tree has more than `max` nodes.
pub fn to_infix_limited(g: &Graph, id: Id, max: u64) -> Option<String> {
    (g.tree_size(id) <= max).then(|| to_infix(g, id))
}

/// [`to_prefix`], or `None` when the tree has more than `max` nodes.
pub fn to_prefix_limited(g: &Graph, id: Id, max: u64) -> Option<String> {
    (g.tree_size(id) <= max).then(|| to_prefix(g, id))
}

/// Conventional infix notation with as few parentheses as the grammar's
/// precedence table allows.
pub fn to_infix(g: &Graph, id: Id) -> String {
    let mut out = String::new();
    infix_into(g, id, &mut out);
    out
}

/// Binding strength of the printed form of `id` (higher binds tighter).
fn prec(g: &Graph, id: Id) -> u8 {
    match g.node(id) {
        Node::X => u8::MAX,
        Node::Const(b) if f64::from_bits(*b).is_sign_negative() => NEG_PREC,
        Node::Const(_) => u8::MAX,
        Node::App(op, _) => match op.info().fixity {
            Fixity::Call => u8::MAX,
            Fixity::Prefix(_) => NEG_PREC,
            Fixity::Infix(_, p, _) => p,
        },
    }
}

fn infix_into(g: &Graph, id: Id, out: &mut String) {
    crate::stack::deep(|| infix_node(g, id, out))
}

fn infix_node(g: &Graph, id: Id, out: &mut String) {
    let node = g.node(id);
    let Node::App(op, _) = node else {
        return prefix_into(g, id, out);
    };
    let args = node.args();
    match op.info().fixity {
        Fixity::Call => {
            out.push_str(op.name());
            out.push('(');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                infix_into(g, *a, out);
            }
            out.push(')');
        }
        Fixity::Prefix(sym) => {
            out.push_str(sym);
            operand(g, args[0], prec(g, args[0]) < NEG_PREC, out);
        }
        Fixity::Infix(sym, p, assoc) => {
            let (lp, rp) = (prec(g, args[0]), prec(g, args[1]));
            let (lparen, rparen) = match assoc {
                Assoc::Left => (lp < p, rp <= p),
                // The exponent is a `unary` in the grammar: `x ^ -2`.
                Assoc::Right => (lp <= p, rp < NEG_PREC),
                Assoc::None => (lp <= p, rp <= p),
            };
            operand(g, args[0], lparen, out);
            out.push(' ');
            out.push_str(sym);
            out.push(' ');
            operand(g, args[1], rparen, out);
        }
    }
}

fn operand(g: &Graph, id: Id, paren: bool, out: &mut String) {
    if paren {
        out.push('(');
    }
    infix_into(g, id, out);
    if paren {
        out.push(')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Library;

    fn infix(src: &str) -> String {
        let e = Library::standard().parse(src).unwrap();
        to_infix(&e.graph, e.root)
    }

    #[test]
    fn infix_uses_minimal_parentheses() {
        assert_eq!(infix("(x + 1) * 2"), "(x + 1.0) * 2.0");
        assert_eq!(infix("x + (1 * 2)"), "x + 1.0 * 2.0");
        assert_eq!(infix("x - (1 - x)"), "x - (1.0 - x)");
        assert_eq!(infix("(x - 1) - x"), "x - 1.0 - x");
        assert_eq!(infix("-(x * x)"), "-(x * x)");
        assert_eq!(infix("-x ^ 2"), "-x ^ 2.0");
        assert_eq!(infix("(-x) ^ 2"), "(-x) ^ 2.0");
        assert_eq!(infix("(-0.5) ^ 2"), "(-0.5) ^ 2.0");
        assert_eq!(infix("x ^ -2"), "x ^ -2.0");
        assert_eq!(infix("(x < 1) < 2"), "(x < 1.0) < 2.0");
        assert_eq!(infix("x - -0.5"), "x - -0.5");
    }

    #[test]
    fn prefix_names_every_op() {
        let e = Library::standard().parse("safe_div(x, 2)").unwrap();
        assert_eq!(
            to_prefix(&e.graph, e.root),
            "where(gt(abs(2.0), 1e-6), div(x, 2.0), 1.0)"
        );
    }
}
