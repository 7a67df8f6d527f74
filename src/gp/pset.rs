//! Primitive sets: what GP trees are built from. A set is a named list of
//! primitives (a function of the formula language and its arity),
//! terminals (the input `ARG0`, constants, zero-argument definitions) and
//! optional ephemeral random constants, plus the [`Library`] that gives
//! every name its meaning, so a tree's text can always be parsed back.
//!
//! DEAP's `PrimitiveSet` (untyped): `addPrimitive`, `addTerminal`,
//! `addEphemeralConstant`. The named sets live in [`super::sets`].

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ir::lower::binop;
use crate::ir::{format_const, Library, Op};
use crate::syntax::{parse_formula, Ast, AstKind};

use super::erc::Ephemeral;

/// A function of the formula language used as an inner node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Primitive {
    pub name: String,
    pub arity: usize,
}

/// A leaf that is always the same.
#[derive(Clone, Debug, PartialEq)]
pub enum Terminal {
    /// The input, printed `ARG0` as DEAP does (`x` is the same input).
    Input,
    /// A fixed constant such as `1.0`.
    Const(f64),
    /// A definition without parameters, printed `name()`.
    Call(String),
}

impl fmt::Display for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Terminal::Input => f.write_str("ARG0"),
            Terminal::Const(v) => f.write_str(&format_const(*v)),
            Terminal::Call(name) => write!(f, "{name}()"),
        }
    }
}

/// What trees are built from. Indices into `primitives`, `terminals` and
/// `ephemerals` are what [`super::Gene`]s store, so a set must not change
/// while trees built from it are alive (the methods that add entries only
/// append).
#[derive(Clone)]
pub struct PrimitiveSet {
    name: String,
    primitives: Vec<Primitive>,
    terminals: Vec<Terminal>,
    ephemerals: Vec<Ephemeral>,
    library: Arc<Library>,
}

impl fmt::Debug for PrimitiveSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrimitiveSet({})", self.describe())
    }
}

impl PrimitiveSet {
    /// An empty set over `library`; add entries, then [`PrimitiveSet::check`].
    pub fn new(name: impl Into<String>, library: Arc<Library>) -> PrimitiveSet {
        PrimitiveSet {
            name: name.into(),
            primitives: Vec::new(),
            terminals: Vec::new(),
            ephemerals: Vec::new(),
            library,
        }
    }

    /// Add a function of the library (or an intrinsic) with its arity.
    pub fn add_primitive(&mut self, name: &str, arity: usize) -> Result<()> {
        if name == "pow" {
            return Err(Error::Usage(
                "`pow` cannot be a primitive: its exponent must be a number literal; define e.g. `square(a) = a^2` instead".into(),
            ));
        }
        let want = declared_arity(name, &self.library)?;
        if want != arity {
            return Err(Error::Usage(format!(
                "primitive `{name}` takes {want} arguments, not {arity}"
            )));
        }
        if arity == 0 {
            return Err(Error::Usage(format!(
                "`{name}` takes no arguments: add it as a terminal `{name}()`"
            )));
        }
        if self.primitives.iter().any(|p| p.name == name) {
            return Err(Error::Usage(format!(
                "primitive `{name}` is in the set `{}` twice",
                self.name
            )));
        }
        self.primitives.push(Primitive {
            name: name.to_string(),
            arity,
        });
        Ok(())
    }

    /// Add a terminal: the input, a finite constant or a definition
    /// without parameters.
    pub fn add_terminal(&mut self, t: Terminal) -> Result<()> {
        match &t {
            Terminal::Const(v) if !v.is_finite() => {
                return Err(Error::Usage(format!("terminal constant {v} is not finite")))
            }
            Terminal::Call(name) if declared_arity(name, &self.library)? != 0 => {
                return Err(Error::Usage(format!(
                    "`{name}` takes arguments: add it as a primitive"
                )))
            }
            _ => {}
        }
        if self.terminals.contains(&t) {
            return Err(Error::Usage(format!(
                "terminal `{t}` is in the set `{}` twice",
                self.name
            )));
        }
        self.terminals.push(t);
        Ok(())
    }

    /// Add an ephemeral random constant (off unless added).
    pub fn add_ephemeral(&mut self, e: Ephemeral) {
        self.ephemerals.push(e);
    }

    /// The same set with an ephemeral constant added.
    pub fn with_ephemeral(mut self, e: Ephemeral) -> PrimitiveSet {
        self.add_ephemeral(e);
        self
    }

    /// Widen the set so that `formula` can be read as a tree of it (for
    /// seeding a population with known activations): every function it
    /// calls that the set lacks becomes a primitive (an infix operator
    /// becomes `add`, `sub`, `mul`, `div`, `neg`, `lt`, …) and every
    /// constant a terminal, unless the set has an ephemeral generator.
    /// Entries are appended, so trees of the set stay valid. Returns what
    /// was added, as `describe` writes it.
    pub fn absorb(&mut self, formula: &str) -> Result<Vec<String>> {
        self.library.parse(formula)?;
        let ast = parse_formula(formula)?;
        let mut added = Vec::new();
        let mut stack = vec![&ast];
        while let Some(a) = stack.pop() {
            match needed(a) {
                Ok((name, arity)) if self.primitive_index(&name, arity).is_none() => {
                    self.add_primitive(&name, arity)?;
                    added.push(format!("{name}/{arity}"));
                }
                Err(Terminal::Const(_)) if !self.ephemerals.is_empty() => {}
                Err(t) if !self.terminals.contains(&t) => {
                    added.push(t.to_string());
                    self.add_terminal(t)?;
                }
                _ => {}
            }
            stack.extend(children(a).into_iter().rev());
        }
        Ok(added)
    }

    /// A set is usable when it has a primitive and a leaf to end trees.
    pub fn check(&self) -> Result<()> {
        if self.primitives.is_empty() || self.terminals.len() + self.ephemerals.len() == 0 {
            return Err(Error::Usage(format!(
                "primitive set `{}` needs at least one primitive and one terminal",
                self.name
            )));
        }
        Ok(())
    }

    /// Parse `name/arity,…,terminal,…`: entries with `/N` are primitives,
    /// the rest terminals (`x`, `ARG0`, a number or `name()`). Names must
    /// exist in `lib` (or be intrinsics) with that arity.
    pub fn from_list(spec: &str, lib: Arc<Library>) -> Result<PrimitiveSet> {
        let mut set = PrimitiveSet::new(spec, lib);
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some((name, arity)) = item.split_once('/') {
                let arity: usize = arity.parse().map_err(|_| {
                    Error::Usage(format!("primitive `{item}`: arity must be a number"))
                })?;
                set.add_primitive(name, arity)?;
            } else {
                set.add_terminal(parse_terminal(item)?)?;
            }
        }
        set.check()?;
        Ok(set)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn primitives(&self) -> &[Primitive] {
        &self.primitives
    }

    pub fn terminals(&self) -> &[Terminal] {
        &self.terminals
    }

    pub fn ephemerals(&self) -> &[Ephemeral] {
        &self.ephemerals
    }

    /// The definitions every name of the set resolves against.
    pub fn library(&self) -> &Library {
        &self.library
    }

    pub fn library_arc(&self) -> Arc<Library> {
        self.library.clone()
    }

    /// The index of the primitive `name` with `arity` arguments.
    pub fn primitive_index(&self, name: &str, arity: usize) -> Option<usize> {
        self.primitives
            .iter()
            .position(|p| p.name == name && p.arity == arity)
    }

    /// Leaves (terminals and ephemerals) over all entries: DEAP's
    /// `terminalRatio`, the chance that `genGrow` stops at a node.
    pub fn terminal_ratio(&self) -> f64 {
        let leaves = (self.terminals.len() + self.ephemerals.len()) as f64;
        leaves / (leaves + self.primitives.len() as f64)
    }

    /// One line listing the whole set, e.g. for a run's log:
    /// `seed: log1p_safe/1, …, safe_div/2; ARG0, 1.0`.
    pub fn describe(&self) -> String {
        let prims: Vec<String> = self
            .primitives
            .iter()
            .map(|p| format!("{}/{}", p.name, p.arity))
            .collect();
        let leaves: Vec<String> = self
            .terminals
            .iter()
            .map(|t| t.to_string())
            .chain(self.ephemerals.iter().map(|e| e.to_string()))
            .collect();
        format!("{}: {}; {}", self.name, prims.join(", "), leaves.join(", "))
    }
}

/// What an AST node needs from a set: a primitive (name, arity) or a
/// terminal. The formula has been checked by lowering, so names are valid.
fn needed(a: &Ast) -> std::result::Result<(String, usize), Terminal> {
    match &a.kind {
        AstKind::Call { name, args, .. } if args.is_empty() => Err(Terminal::Call(name.clone())),
        AstKind::Call { name, args, .. } => Ok((name.clone(), args.len())),
        AstKind::Binary { op, .. } => Ok((binop(*op).name().to_string(), 2)),
        AstKind::Neg(inner) => match inner.kind {
            AstKind::Num(v) => Err(Terminal::Const(-v)),
            _ => Ok(("neg".to_string(), 1)),
        },
        AstKind::Num(v) => Err(Terminal::Const(*v)),
        AstKind::Name(_) => Err(Terminal::Input),
    }
}

/// The subtrees of an AST node as a tree reads them (`-literal` is one
/// constant).
fn children(a: &Ast) -> Vec<&Ast> {
    match &a.kind {
        AstKind::Call { args, .. } => args.iter().collect(),
        AstKind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
        AstKind::Neg(inner) if !matches!(inner.kind, AstKind::Num(_)) => vec![inner],
        _ => Vec::new(),
    }
}

/// `x`/`ARG0`, a finite number, or `name()`.
fn parse_terminal(item: &str) -> Result<Terminal> {
    if item == "x" || item == "ARG0" {
        return Ok(Terminal::Input);
    }
    if let Some(v) = item.parse::<f64>().ok().filter(|v| v.is_finite()) {
        return Ok(Terminal::Const(v));
    }
    if let Some(name) = item.strip_suffix("()") {
        return Ok(Terminal::Call(name.to_string()));
    }
    Err(Error::Usage(format!(
        "primitive set entry `{item}`: write functions as name/arity (e.g. `sin/1`) and terminals as `x`, a number or `name()`"
    )))
}

/// The number of arguments `name` takes: an intrinsic's arity or a
/// definition's parameter count.
fn declared_arity(name: &str, lib: &Library) -> Result<usize> {
    match (Op::by_name(name), lib.get(name)) {
        (Some(op), _) => Ok(op.arity()),
        (None, Some(d)) => Ok(d.def.params.len()),
        (None, None) => Err(Error::Usage(format!("primitive `{name}` is not defined"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_lib() -> Arc<Library> {
        Arc::new(Library::standard().clone())
    }

    #[test]
    fn lists_parse_and_bad_entries_are_rejected() {
        let set = PrimitiveSet::from_list("sin/1,safe_div/2,x,0.5", std_lib()).unwrap();
        assert_eq!(
            set.describe(),
            "sin/1,safe_div/2,x,0.5: sin/1, safe_div/2; ARG0, 0.5"
        );
        for bad in [
            "safe_div/1,x",
            "nope/1,x",
            "sin/1",
            "sin/1,y",
            "pow/2,x",
            "sin/1,sin/1,x",
            "sin/1,x,ARG0",
        ] {
            assert!(PrimitiveSet::from_list(bad, std_lib()).is_err(), "{bad}");
        }
    }
}
