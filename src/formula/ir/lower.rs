//! Lowering: spanned AST → hash-consed IR. Resolves names (the input,
//! parameters, intrinsics, definitions), checks arities and literal
//! exponents, and inlines definitions. Lowering is faithful: it folds only
//! `-literal` into a negative constant; everything else is `simplify`'s job.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::syntax::{
    parse_definitions, parse_formula, Ast, AstKind, BinOp, Definition, Diagnostic, Span,
};

use super::graph::{Expr, Graph, Id};
use super::ops::Op;

/// The prelude of named primitives, in the formula language.
pub const PRELUDE: &str = include_str!("../../../grammar/prelude.act");

/// Upper bound on lowering steps (each AST node visited while inlining
/// definitions counts one), so a definitions file that expands
/// exponentially is an error instead of a hang.
pub const MAX_LOWER_STEPS: usize = 1_000_000;

/// A definition with the text it came from (for diagnostics).
#[derive(Clone)]
pub struct LibDef {
    pub def: Definition,
    pub source: Arc<str>,
    pub origin: Arc<str>,
}

/// Named primitives available to formulas: the prelude plus any user
/// definitions. Later definitions may use earlier ones, never themselves.
#[derive(Clone, Default)]
pub struct Library {
    defs: Vec<LibDef>,
    by_name: HashMap<String, usize>,
}

impl Library {
    /// An empty library: intrinsics only.
    pub fn empty() -> Library {
        Library::default()
    }

    /// The built-in prelude (`grammar/prelude.act`), parsed once.
    pub fn standard() -> &'static Library {
        static STD: OnceLock<Library> = OnceLock::new();
        STD.get_or_init(|| {
            let mut lib = Library::empty();
            if let Err(d) = lib.extend(PRELUDE, "prelude") {
                panic!("the built-in prelude is invalid:\n{}", d.render());
            }
            lib
        })
    }

    /// Parse and check a definitions file, adding its definitions.
    pub fn extend(&mut self, src: &str, origin: &str) -> Result<(), Diagnostic> {
        let defs = parse_definitions(src, origin)?;
        let source: Arc<str> = Arc::from(src);
        let origin: Arc<str> = Arc::from(origin);
        for def in defs {
            self.check_definition(&def)
                .map_err(|d| d.with_source(src, &origin))?;
            let name = def.name.clone();
            self.defs.push(LibDef {
                def,
                source: source.clone(),
                origin: origin.clone(),
            });
            self.by_name.insert(name, self.defs.len() - 1);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&LibDef> {
        self.by_name.get(name).map(|&i| &self.defs[i])
    }

    /// Definitions in the order they were added.
    pub fn definitions(&self) -> impl Iterator<Item = &LibDef> {
        self.defs.iter()
    }

    /// Parse and lower a formula into a fresh graph.
    pub fn parse(&self, src: &str) -> Result<Expr, Diagnostic> {
        let mut graph = Graph::new();
        let root = self.parse_into(src, &mut graph)?;
        Ok(Expr { graph, root })
    }

    /// Parse and lower a formula into an existing graph.
    pub fn parse_into(&self, src: &str, graph: &mut Graph) -> Result<Id, Diagnostic> {
        let ast = parse_formula(src)?;
        self.lower(&ast, graph)
            .map_err(|d| d.with_source(src, "formula"))
    }

    /// Lower a parsed formula. The diagnostic's source is left for the
    /// caller to attach.
    pub fn lower(&self, ast: &Ast, graph: &mut Graph) -> Result<Id, Diagnostic> {
        let mut l = Lowerer {
            lib: self,
            graph,
            steps: 0,
        };
        l.lower(ast, &Scope::Formula)
    }

    fn check_definition(&self, def: &Definition) -> Result<(), Diagnostic> {
        let name = def.name.as_str();
        if Op::by_name(name).is_some() || is_input(name) {
            let what = if is_input(name) {
                "the input"
            } else {
                "an intrinsic"
            };
            return Err(Diagnostic::new(
                format!("cannot redefine `{name}`: it is {what}"),
                def.name_span,
                "already has a meaning",
            ));
        }
        if self.get(name).is_some() {
            return Err(Diagnostic::new(
                format!("`{name}` is defined twice"),
                def.name_span,
                "second definition",
            )
            .with_help("rename one of them; definitions cannot be overloaded"));
        }
        for (i, (p, span)) in def.params.iter().enumerate() {
            if is_input(p) {
                return Err(Diagnostic::new(
                    format!("`{p}` cannot be a parameter name: it is the input"),
                    *span,
                    "reserved",
                ));
            }
            if def.params[..i].iter().any(|(q, _)| q == p) {
                return Err(Diagnostic::new(
                    format!("parameter `{p}` appears twice"),
                    *span,
                    "repeated",
                ));
            }
        }
        // Lower the body with each parameter bound to a distinct constant:
        // this checks every name, arity and exponent in it.
        let mut g = Graph::new();
        let args: Vec<Id> = (0..def.params.len())
            .map(|i| g.constant(i as f64 + 0.5))
            .collect();
        let mut l = Lowerer {
            lib: self,
            graph: &mut g,
            steps: 0,
        };
        l.lower(&def.body, &Scope::Def { def, args: &args })
            .map(|_| ())
    }
}

fn is_input(name: &str) -> bool {
    name == "x" || name == "ARG0"
}

enum Scope<'a> {
    Formula,
    Def { def: &'a Definition, args: &'a [Id] },
}

struct Lowerer<'a> {
    lib: &'a Library,
    graph: &'a mut Graph,
    steps: usize,
}

impl Lowerer<'_> {
    fn lower(&mut self, ast: &Ast, scope: &Scope) -> Result<Id, Diagnostic> {
        crate::stack::deep(|| self.lower_node(ast, scope))
    }

    fn lower_node(&mut self, ast: &Ast, scope: &Scope) -> Result<Id, Diagnostic> {
        self.steps += 1;
        if self.steps > MAX_LOWER_STEPS {
            return Err(Diagnostic::new(
                format!("the formula expands to more than {MAX_LOWER_STEPS} nodes when definitions are inlined"),
                ast.span,
                "while expanding this",
            ));
        }
        match &ast.kind {
            AstKind::Num(v) => Ok(self.graph.constant(*v)),
            AstKind::Name(n) => self.name(n, ast.span, scope),
            AstKind::Neg(inner) => {
                if let AstKind::Num(v) = inner.kind {
                    return Ok(self.graph.constant(-v));
                }
                let a = self.lower(inner, scope)?;
                Ok(self.graph.app(Op::Neg, &[a]))
            }
            AstKind::Binary { op, lhs, rhs, .. } => {
                let a = self.lower(lhs, scope)?;
                let b = self.lower(rhs, scope)?;
                if *op == BinOp::Pow {
                    self.check_exponent(b, rhs.span, "^")?;
                }
                Ok(self.graph.app(binop(*op), &[a, b]))
            }
            AstKind::Call {
                name,
                name_span,
                args,
                ..
            } => self.call(name, *name_span, ast.span, args, scope),
        }
    }

    fn name(&mut self, n: &str, span: Span, scope: &Scope) -> Result<Id, Diagnostic> {
        match scope {
            Scope::Def { def, args } => {
                if let Some(i) = def.params.iter().position(|(p, _)| p == n) {
                    return Ok(args[i]);
                }
                if is_input(n) {
                    return Err(Diagnostic::new(
                        format!(
                            "`{n}` is not visible inside the definition of `{}`",
                            def.name
                        ),
                        span,
                        "not a parameter",
                    )
                    .with_help(format!(
                        "add a parameter, e.g. `{}(a, …)`, and pass `x` at the call",
                        def.name
                    )));
                }
            }
            Scope::Formula if is_input(n) => return Ok(self.graph.x()),
            Scope::Formula => {}
        }
        let mut d = Diagnostic::new(format!("unknown name `{n}`"), span, "not defined");
        if Op::by_name(n).is_some() || self.lib.get(n).is_some() {
            d = d.with_help(format!("`{n}` is a function: call it as `{n}(…)`"));
        } else {
            let candidates: Vec<&str> = match scope {
                Scope::Formula => vec!["x", "ARG0"],
                Scope::Def { def, .. } => def.params.iter().map(|(p, _)| p.as_str()).collect(),
            };
            match closest(n, candidates.iter().copied()) {
                Some(c) => d = d.with_help(format!("did you mean `{c}`?")),
                None if matches!(scope, Scope::Formula) => {
                    d = d.with_help("the input is `x` (or its DEAP alias `ARG0`)")
                }
                None => {}
            }
        }
        Err(d)
    }

    fn call(
        &mut self,
        name: &str,
        name_span: Span,
        span: Span,
        args: &[Ast],
        scope: &Scope,
    ) -> Result<Id, Diagnostic> {
        if let Some(op) = Op::by_name(name) {
            self.check_arity(name, op.arity(), args, span, || {
                format!("`{name}` is an intrinsic")
            })?;
            let ids = args
                .iter()
                .map(|a| self.lower(a, scope))
                .collect::<Result<Vec<_>, _>>()?;
            if op == Op::Pow {
                self.check_exponent(ids[1], args[1].span, "pow")?;
            }
            return Ok(self.graph.app(op, &ids));
        }
        let Some(def) = self.lib.get(name) else {
            return Err(self.unknown_function(name, name_span));
        };
        let defined = || format!("`{}` is defined in {}", signature(&def.def), def.origin);
        self.check_arity(name, def.def.params.len(), args, span, defined)?;
        let ids = args
            .iter()
            .map(|a| self.lower(a, scope))
            .collect::<Result<Vec<_>, _>>()?;
        let inner = Scope::Def {
            def: &def.def,
            args: &ids,
        };
        self.lower(&def.def.body, &inner).map_err(|e| {
            if e.message.starts_with("the formula expands") {
                return e.with_span(span);
            }
            Diagnostic::new(
                format!("in this call of `{name}`: {}", e.message),
                span,
                "called here",
            )
            .with_help(format!("{} as `{} = …`", defined(), signature(&def.def)))
        })
    }

    fn check_arity(
        &self,
        name: &str,
        want: usize,
        args: &[Ast],
        span: Span,
        about: impl FnOnce() -> String,
    ) -> Result<(), Diagnostic> {
        if args.len() == want {
            return Ok(());
        }
        Err(Diagnostic::new(
            format!(
                "`{name}` takes {} but {} {} given",
                plural(want, "argument"),
                args.len(),
                if args.len() == 1 { "was" } else { "were" }
            ),
            span,
            format!("called with {}", plural(args.len(), "argument")),
        )
        .with_help(about()))
    }

    fn check_exponent(&self, k: Id, span: Span, what: &str) -> Result<(), Diagnostic> {
        if self.graph.const_value(k).is_some() {
            return Ok(());
        }
        Err(Diagnostic::new(
            format!("the exponent of `{what}` must be a number literal"),
            span,
            "not a literal",
        )
        .with_help("for a variable exponent write `exp(k * log(a))` (a > 0)"))
    }

    fn unknown_function(&self, name: &str, span: Span) -> Diagnostic {
        let mut d = Diagnostic::new(
            format!("unknown function `{name}`"),
            span,
            "not an intrinsic or a definition",
        );
        if is_input(name) {
            return d.with_help(format!("`{name}` is the input, not a function"));
        }
        let names = crate::ir::ops::OPS
            .iter()
            .map(|i| i.name)
            .chain(self.lib.defs.iter().map(|d| d.def.name.as_str()));
        if let Some(c) = closest(name, names) {
            d = d.with_help(format!("did you mean `{c}`?"));
        }
        d
    }
}

/// The intrinsic a surface operator denotes.
pub fn binop(op: BinOp) -> Op {
    match op {
        BinOp::Add => Op::Add,
        BinOp::Sub => Op::Sub,
        BinOp::Mul => Op::Mul,
        BinOp::Div => Op::Div,
        BinOp::Pow => Op::Pow,
        BinOp::Lt => Op::Lt,
        BinOp::Gt => Op::Gt,
        BinOp::Le => Op::Le,
        BinOp::Ge => Op::Ge,
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `name(a, b)`, the head of a definition.
pub fn signature(def: &Definition) -> String {
    let params: Vec<&str> = def.params.iter().map(|(p, _)| p.as_str()).collect();
    format!("{}({})", def.name, params.join(", "))
}

/// The candidate nearest to `name` by optimal-string-alignment distance,
/// if it is close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .map(|c| (osa_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, c)| (d, c.len()))
        .map(|(_, c)| c)
}

/// Levenshtein distance where swapping two adjacent characters costs 1.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }

    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_distance_counts_transpositions_once() {
        assert_eq!(osa_distance("safe_dvi", "safe_div"), 1);
        assert_eq!(osa_distance("sin", "sin"), 0);
        assert_eq!(osa_distance("", "abc"), 3);
        let names = ["safe_div", "safe_add", "sin"];
        assert_eq!(closest("safe_dvi", names.into_iter()), Some("safe_div"));
        assert_eq!(closest("zzzzzz", names.into_iter()), None);
    }

    #[test]
    fn prelude_loads_and_names_the_seed_primitives() {
        let lib = Library::standard();
        for n in [
            "safe_div",
            "log1p_safe",
            "gated_gate",
            "gelu_like",
            "sigmoid_boost",
            "mish",
        ] {
            assert!(lib.get(n).is_some(), "{n} missing from the prelude");
        }
    }
}
