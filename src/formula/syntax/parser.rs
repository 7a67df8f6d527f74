//! The nom parser for the formula language (`grammar/formula.ebnf`).
//!
//! Tokens are nom combinators; each nonterminal of the grammar is a method
//! of [`Parser`] named after it. Once a branch is committed (after an
//! operator, after `(`), failures are `nom::Err::Failure` carrying a finished
//! [`Diagnostic`], so errors point at the real fault rather than at the start
//! of the alternative that happened to fail.

use std::cell::Cell;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit0, digit1, multispace1, not_line_ending, one_of};
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser as _};

use super::ast::{Ast, AstKind, BinOp, Definition};
use super::diagnostic::{Diagnostic, Span};

/// Surface nesting limit: deeper input is rejected with a diagnostic long
/// before the recursive parser (or anything downstream) could overflow.
pub const MAX_DEPTH: u32 = 256;

#[derive(Debug)]
pub enum PErr<'a> {
    /// A recoverable token mismatch at this input position.
    Nom(&'a str),
    /// A committed failure with a finished diagnostic.
    Diag(Diagnostic),
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _: ErrorKind) -> Self {
        PErr::Nom(input)
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

/// Parse one formula (the whole input must be one expression).
pub fn parse_formula(src: &str) -> Result<Ast, Diagnostic> {
    let p = Parser::new(src);
    let run = |i| {
        let (i, e) = p.expr(i)?;
        let i = p.ws(i);
        if !i.is_empty() {
            return Err(p.trailing(i));
        }
        Ok((i, e))
    };
    p.finish(run(src), "formula")
}

/// Parse a file of definitions, `name(a, b) = body`, one after another.
pub fn parse_definitions(src: &str, origin: &str) -> Result<Vec<Definition>, Diagnostic> {
    let p = Parser::new(src);
    let run = |mut i| {
        let mut defs = Vec::new();
        loop {
            i = p.ws(i);
            if i.is_empty() {
                return Ok((i, defs));
            }
            let (rest, d) = p.definition(i)?;
            defs.push(d);
            i = rest;
        }
    };
    p.finish(run(src), origin)
}

pub struct Parser<'s> {
    src: &'s str,
    depth: Cell<u32>,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Parser<'s> {
        Parser {
            src,
            depth: Cell::new(0),
        }
    }

    fn finish<T>(&self, r: PResult<'_, T>, origin: &str) -> Result<T, Diagnostic> {
        match r {
            Ok((_, v)) => Ok(v),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                let d = match e {
                    PErr::Diag(d) => d,
                    PErr::Nom(i) => self.diag_at(i, "unexpected input", "not expected here"),
                };
                Err(d.with_source(self.src, origin))
            }
            Err(nom::Err::Incomplete(_)) => {
                let end = Span::at(self.src.len());
                Err(Diagnostic::new("incomplete input", end, "").with_source(self.src, origin))
            }
        }
    }

    // ----- positions and errors -------------------------------------------

    fn off(&self, i: &str) -> usize {
        self.src.len() - i.len()
    }

    fn span(&self, from: &str, to: &str) -> Span {
        Span::new(self.off(from), self.off(to))
    }

    fn diag_at(&self, i: &str, msg: impl Into<String>, label: impl Into<String>) -> Diagnostic {
        let at = self.off(i);
        let end = at + i.chars().next().map_or(0, char::len_utf8);
        Diagnostic::new(msg, Span::new(at, end), label)
    }

    fn fail<T>(&self, d: Diagnostic) -> PResult<'s, T> {
        Err(nom::Err::Failure(PErr::Diag(d)))
    }

    fn trailing(&self, i: &'s str) -> nom::Err<PErr<'s>> {
        let d = if i.starts_with(')') {
            self.diag_at(i, "unmatched `)`", "no `(` is open here")
        } else {
            self.diag_at(
                i,
                format!(
                    "expected an operator or the end of the formula, found {}",
                    found(i)
                ),
                "unexpected here",
            )
        };
        nom::Err::Failure(PErr::Diag(d))
    }

    /// Enter one level of recursion; fails past [`MAX_DEPTH`].
    fn enter(&self, i: &'s str) -> Result<(), nom::Err<PErr<'s>>> {
        let d = self.depth.get() + 1;
        self.depth.set(d);
        if d > MAX_DEPTH {
            return Err(self.too_deep(i));
        }
        Ok(())
    }

    fn leave(&self) {
        self.depth.set(self.depth.get() - 1);
    }

    fn too_deep(&self, i: &'s str) -> nom::Err<PErr<'s>> {
        let d = self
            .diag_at(
                i,
                format!("the formula nests too deeply (the limit is {MAX_DEPTH} levels)"),
                "limit exceeded here",
            )
            .with_help("split the formula into named definitions, or regroup long operator chains: `(a+b)+(c+d)` nests less than `a+b+c+d`");
        nom::Err::Failure(PErr::Diag(d))
    }

    /// Build a node, enforcing the nesting limit on its height (operator
    /// chains such as `1+1+…+1` grow height without recursion).
    fn node(&self, kind: AstKind, span: Span, at: &'s str) -> PResult<'s, Ast> {
        let n = Ast::node(kind, span);
        if n.depth > MAX_DEPTH {
            return Err(self.too_deep(at));
        }
        Ok((at, n))
    }

    // ----- tokens ----------------------------------------------------------

    /// Skip whitespace and `#` comments.
    fn ws<'a>(&self, mut i: &'a str) -> &'a str {
        loop {
            let before = i.len();
            if let Ok((r, _)) = multispace1::<_, PErr>(i) {
                i = r;
            }
            if let Ok((r, _)) = (char::<_, PErr>('#'), not_line_ending).parse(i) {
                i = r;
            }
            if i.len() == before {
                return i;
            }
        }
    }

    fn ident<'a>(&self, i: &'a str) -> PResult<'a, &'a str> {
        recognize((
            take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
            take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
        ))
        .parse(i)
    }

    /// `digits [. digits] [exponent] | . digits [exponent]`.
    fn number(&self, i: &'s str) -> PResult<'s, f64> {
        let mantissa = alt((
            (digit1, opt((char('.'), digit0))).map(|_| ()),
            (char('.'), digit1).map(|_| ()),
        ));
        let (rest, _) = (mantissa, opt(|j| self.exponent(j))).parse(i)?;
        let text = &i[..i.len() - rest.len()];
        if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            let d = Diagnostic::new(
                format!("malformed number `{}`", &i[..text.len() + end]),
                Span::new(self.off(i), self.off(rest) + end),
                "not a decimal literal",
            )
            .with_help("numbers look like `1`, `1.0`, `-0.5`, `3e-2` or `.25`");
            return self.fail(d);
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((rest, v)),
            _ => self.fail(
                Diagnostic::new(
                    format!("number `{text}` is out of range"),
                    self.span(i, rest),
                    "not a finite number",
                )
                .with_help("literals must be finite 64-bit floats"),
            ),
        }
    }

    fn exponent(&self, i: &'s str) -> PResult<'s, &'s str> {
        let (j, _) = (one_of("eE"), opt(one_of("+-"))).parse(i)?;
        match digit1::<_, PErr>(j) {
            Ok((r, _)) => Ok((r, &i[..i.len() - r.len()])),
            Err(_) => self.fail(self.diag_at(
                j,
                "malformed number: the exponent has no digits",
                "expected digits here",
            )),
        }
    }

    // ----- grammar ---------------------------------------------------------

    /// definition = ident "(" [ ident { "," ident } ] ")" "=" expr
    fn definition(&self, i: &'s str) -> PResult<'s, Definition> {
        let Ok((j, name)) = self.ident(i) else {
            return self.fail(self.diag_at(
                i,
                format!(
                    "expected a definition like `name(a, b) = …`, found {}",
                    found(i)
                ),
                "expected a name here",
            ));
        };
        let name_span = self.span(i, j);
        let k = self.ws(j);
        let Ok((mut k, _)) = char::<_, PErr>('(').parse(k) else {
            return self.fail(self.diag_at(
                k,
                "expected `(` and parameters after the name of a definition",
                "expected `(`",
            ));
        };
        let open = Span::new(self.off(k) - 1, self.off(k));
        let mut params = Vec::new();
        loop {
            k = self.ws(k);
            if params.is_empty() {
                if let Ok((r, _)) = char::<_, PErr>(')').parse(k) {
                    k = r;
                    break;
                }
            }
            let Ok((r, p)) = self.ident(k) else {
                return self.fail(self.diag_at(
                    k,
                    format!("expected a parameter name, found {}", found(k)),
                    "expected a name",
                ));
            };
            params.push((p.to_string(), self.span(k, r)));
            let r = self.ws(r);
            match one_of::<_, _, PErr>(",)").parse(r) {
                Ok((r2, ',')) => k = r2,
                Ok((r2, _)) => {
                    k = r2;
                    break;
                }
                Err(_) => {
                    let d = self
                        .diag_at(
                            r,
                            format!(
                                "expected `,` or `)` in the parameters of `{name}`, found {}",
                                found(r)
                            ),
                            "expected `,` or `)`",
                        )
                        .with_secondary(open, "parameters start here");
                    return self.fail(d);
                }
            }
        }
        let k = self.ws(k);
        let Ok((k, _)) = char::<_, PErr>('=').parse(k) else {
            return self.fail(self.diag_at(
                k,
                format!(
                    "expected `=` after the parameters of `{name}`, found {}",
                    found(k)
                ),
                "expected `=`",
            ));
        };
        let (k, body) = self.operand(k, "`=`")?;
        let def = Definition {
            name: name.to_string(),
            name_span,
            params,
            body,
        };
        Ok((k, def))
    }

    /// expr = comparison
    pub fn expr(&self, i: &'s str) -> PResult<'s, Ast> {
        self.comparison(i)
    }

    /// An operand that must follow an operator or opening token: failing to
    /// find one is a committed error that names what came before.
    fn operand(&self, i: &'s str, after: &str) -> PResult<'s, Ast> {
        self.operand_with(i, after, |s, x| s.comparison(x))
    }

    /// comparison = additive [ ("<=" | ">=" | "<" | ">") additive ]
    fn comparison(&self, i: &'s str) -> PResult<'s, Ast> {
        let (i, lhs) = self.additive(i)?;
        let j = self.ws(i);
        let Ok((k, op)) = cmp_op(j) else {
            return Ok((i, lhs));
        };
        let op_span = self.span(j, k);
        let what = format!("`{}`", op.symbol());
        let (k, rhs) = self.operand_with(k, &what, |s, x| s.additive(x))?;
        let after = self.ws(k);
        if let Ok((r, op2)) = cmp_op(after) {
            let d = Diagnostic::new(
                format!(
                    "comparisons do not chain: `{}` after `{}`",
                    op2.symbol(),
                    op.symbol()
                ),
                self.span(after, r),
                "second comparison",
            )
            .with_secondary(op_span, "first comparison")
            .with_help(
                "add parentheses, e.g. `(a < b) < c`, or multiply two comparisons for `and`",
            );
            return self.fail(d);
        }
        let span = lhs.span.to(rhs.span);
        let kind = AstKind::Binary {
            op,
            op_span,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        };
        self.node(kind, span, k)
    }

    /// Parse what must follow `after` with `next`, committed.
    fn operand_with(
        &self,
        i: &'s str,
        after: &str,
        next: impl Fn(&Self, &'s str) -> PResult<'s, Ast>,
    ) -> PResult<'s, Ast> {
        let j = self.ws(i);
        if !starts_expr(j) {
            return self.fail(self.diag_at(
                j,
                format!("expected an expression after {after}, found {}", found(j)),
                "expected an expression here",
            ));
        }
        // Every recursive cycle of the grammar passes through here: grow
        // the stack on demand so the nesting limit, not the thread's stack
        // size, decides how deep input may go (debug frames are large).
        crate::stack::deep(|| next(self, j))
    }

    /// Left-associative chain: `sub { op sub }`.
    fn chain(
        &self,
        i: &'s str,
        ops: &str,
        sub: impl Fn(&Self, &'s str) -> PResult<'s, Ast>,
    ) -> PResult<'s, Ast> {
        let (mut i, mut acc) = sub(self, i)?;
        loop {
            let j = self.ws(i);
            let Ok((k, c)) = one_of::<_, _, PErr>(ops).parse(j) else {
                return Ok((i, acc));
            };
            let op = bin_op(c);
            let op_span = self.span(j, k);
            let what = format!("`{}`", op.symbol());
            let (k, rhs) = self.operand_with(k, &what, &sub)?;
            let span = acc.span.to(rhs.span);
            let kind = AstKind::Binary {
                op,
                op_span,
                lhs: Box::new(acc),
                rhs: Box::new(rhs),
            };
            (i, acc) = self.node(kind, span, k)?;
        }
    }

    /// additive = multiplicative { ("+" | "-") multiplicative }
    fn additive(&self, i: &'s str) -> PResult<'s, Ast> {
        self.chain(i, "+-", |s, x| s.multiplicative(x))
    }

    /// multiplicative = unary { ("*" | "/") unary }
    fn multiplicative(&self, i: &'s str) -> PResult<'s, Ast> {
        self.chain(i, "*/", |s, x| s.unary(x))
    }

    /// unary = "-" unary | power
    fn unary(&self, i: &'s str) -> PResult<'s, Ast> {
        let i = self.ws(i);
        let Ok((j, _)) = char::<_, PErr>('-').parse(i) else {
            return self.power(i);
        };
        self.enter(i)?;
        let (k, e) = self.operand_with(j, "`-`", |s, x| s.unary(x))?;
        self.leave();
        let span = self.span(i, j).to(e.span);
        self.node(AstKind::Neg(Box::new(e)), span, k)
    }

    /// power = primary [ "^" unary ]   (right-associative)
    fn power(&self, i: &'s str) -> PResult<'s, Ast> {
        let (i, base) = self.primary(i)?;
        let j = self.ws(i);
        let Ok((k, _)) = char::<_, PErr>('^').parse(j) else {
            return Ok((i, base));
        };
        let op_span = self.span(j, k);
        self.enter(j)?;
        let (k, exp) = self.operand_with(k, "`^`", |s, x| s.unary(x))?;
        self.leave();
        let span = base.span.to(exp.span);
        let kind = AstKind::Binary {
            op: BinOp::Pow,
            op_span,
            lhs: Box::new(base),
            rhs: Box::new(exp),
        };
        self.node(kind, span, k)
    }

    /// primary = number | "(" expr ")" | ident [ "(" args ")" ]
    fn primary(&self, i: &'s str) -> PResult<'s, Ast> {
        let i = self.ws(i);
        match self.number(i) {
            Ok((r, v)) => return Ok((r, Ast::leaf(AstKind::Num(v), self.span(i, r)))),
            Err(e @ nom::Err::Failure(_)) => return Err(e),
            Err(_) => {}
        }
        if let Ok((r, _)) = char::<_, PErr>('(').parse(i) {
            return self.group(i, r);
        }
        if let Ok((r, name)) = self.ident(i) {
            let name_span = self.span(i, r);
            let j = self.ws(r);
            if let Ok((k, _)) = char::<_, PErr>('(').parse(j) {
                return self.call(name, name_span, j, k);
            }
            return Ok((r, Ast::leaf(AstKind::Name(name.to_string()), name_span)));
        }
        self.fail(self.diag_at(
            i,
            format!("expected an expression, found {}", found(i)),
            "expected a number, `x`, a call or `(` here",
        ))
    }

    /// "(" expr ")": `open` starts at `(`, `i` is just after it.
    fn group(&self, open: &'s str, i: &'s str) -> PResult<'s, Ast> {
        self.enter(open)?;
        let (j, e) = self.operand(i, "`(`")?;
        let j = self.ws(j);
        let Ok((k, _)) = char::<_, PErr>(')').parse(j) else {
            return self.fail(self.unclosed(j, self.span(open, i), "this `(` is never closed"));
        };
        self.leave();
        Ok((
            k,
            Ast {
                span: self.span(open, k),
                ..e
            },
        ))
    }

    /// ident "(" [ expr { "," expr } ] ")"
    fn call(&self, name: &str, name_span: Span, open: &'s str, i: &'s str) -> PResult<'s, Ast> {
        self.enter(open)?;
        let open_span = self.span(open, i);
        let mut args = Vec::new();
        let mut k = self.ws(i);
        if let Ok((r, _)) = char::<_, PErr>(')').parse(k) {
            k = r;
        } else {
            loop {
                let what = if args.is_empty() {
                    format!("`{name}(`")
                } else {
                    "`,`".to_string()
                };
                let (r, a) = self.operand(k, &what)?;
                args.push(a);
                let r = self.ws(r);
                match one_of::<_, _, PErr>(",)").parse(r) {
                    Ok((r2, ',')) => k = r2,
                    Ok((r2, _)) => {
                        k = r2;
                        break;
                    }
                    Err(_) if r.is_empty() => {
                        let label = format!("this `(` of `{name}` is never closed");
                        return self.fail(self.unclosed(r, open_span, &label));
                    }
                    Err(_) => {
                        let d = self
                            .diag_at(
                                r,
                                format!(
                                    "expected `,` or `)` after an argument of `{name}`, found {}",
                                    found(r)
                                ),
                                "expected `,` or `)`",
                            )
                            .with_secondary(
                                open_span,
                                format!("the arguments of `{name}` start here"),
                            );
                        return self.fail(d);
                    }
                }
            }
        }
        self.leave();
        let kind = AstKind::Call {
            name: name.to_string(),
            name_span,
            open: open_span,
            args,
        };
        self.node(kind, name_span.to(self.span(open, k)), k)
    }

    /// "missing `)`" at `at`, with a secondary label on the open paren.
    fn unclosed(&self, at: &'s str, open: Span, label: &str) -> Diagnostic {
        let (msg, here) = if at.is_empty() {
            (
                "missing `)` at the end of the formula".to_string(),
                "expected `)` here".to_string(),
            )
        } else {
            (
                format!("missing `)`: expected `)`, found {}", found(at)),
                "expected `)` before this".to_string(),
            )
        };
        self.diag_at(at, msg, here).with_secondary(open, label)
    }
}

fn cmp_op(i: &str) -> PResult<'_, BinOp> {
    let (r, t) = alt((tag("<="), tag(">="), tag("<"), tag(">"))).parse(i)?;
    let op = match t {
        "<=" => BinOp::Le,
        ">=" => BinOp::Ge,
        "<" => BinOp::Lt,
        _ => BinOp::Gt,
    };
    Ok((r, op))
}

fn bin_op(c: char) -> BinOp {
    match c {
        '+' => BinOp::Add,
        '-' => BinOp::Sub,
        '*' => BinOp::Mul,
        _ => BinOp::Div,
    }
}

/// Can an expression start here?
fn starts_expr(i: &str) -> bool {
    i.starts_with(|c: char| c.is_ascii_alphanumeric() || "_(.-".contains(c))
}

/// "`)`", "`foo`", "the end of the formula": what the parser saw at `i`.
pub fn found(i: &str) -> String {
    let Some(c) = i.chars().next() else {
        return "the end of the formula".to_string();
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        let end = i
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(i.len());
        return format!("`{}`", &i[..end]);
    }
    if c == '\n' {
        return "the end of the line".to_string();
    }
    format!("`{c}`")
}
