//! GP genomes: DEAP-style prefix trees over a primitive set, and the
//! classic generators (full, grow, ramped half-and-half).
//!
//! Heights follow DEAP: the root is at depth 0, so a lone terminal has
//! height 0 and `safe_add(x, 1.0)` has height 1.

use std::fmt;

use rand::Rng;

use crate::error::{Error, Result};
use crate::ir::Library;

/// A primitive: a function name from the library and its arity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Primitive {
    pub name: String,
    pub arity: usize,
}

/// What trees are built from: primitives (inner nodes) and terminals
/// (`x` and constants, written as formula text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimitiveSet {
    pub primitives: Vec<Primitive>,
    pub terminals: Vec<String>,
}

impl PrimitiveSet {
    /// The seed experiments' set: log1p_safe, sin, cos, sigmoid_boost,
    /// safe_add, safe_sub, safe_mul, safe_div; terminals ARG0 and 1.0.
    pub fn seed() -> PrimitiveSet {
        PrimitiveSet::parse("log1p_safe/1,sin/1,cos/1,sigmoid_boost/1,safe_add/2,safe_sub/2,safe_mul/2,safe_div/2,x,1.0", Library::standard())
            .expect("the seed primitive set is valid")
    }

    /// Parse `name/arity,…,terminal,…`: entries with `/N` are primitives,
    /// the rest terminals (`x`, `ARG0` or a number). Names must exist in
    /// `lib` (or be intrinsics) with that arity.
    pub fn parse(spec: &str, lib: &Library) -> Result<PrimitiveSet> {
        let mut set = PrimitiveSet {
            primitives: Vec::new(),
            terminals: Vec::new(),
        };
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('/') {
                Some((name, arity)) => {
                    let arity: usize = arity
                        .parse()
                        .map_err(|_| Error::Usage(format!("primitive `{item}`: arity must be a number")))?;
                    check_arity(name, arity, lib)?;
                    set.primitives.push(Primitive {
                        name: name.to_string(),
                        arity,
                    });
                }
                None if item == "x" || item == "ARG0" || item.parse::<f64>().is_ok_and(f64::is_finite) => {
                    set.terminals.push(item.to_string())
                }
                None => {
                    return Err(Error::Usage(format!(
                        "primitive set entry `{item}`: write functions as name/arity (e.g. `sin/1`) and terminals as `x` or a number"
                    )))
                }
            }
        }
        if set.primitives.is_empty() || set.terminals.is_empty() {
            return Err(Error::Usage(
                "a primitive set needs at least one primitive and one terminal".into(),
            ));
        }
        Ok(set)
    }
}

fn check_arity(name: &str, arity: usize, lib: &Library) -> Result<()> {
    let want = match (crate::ir::Op::by_name(name), lib.get(name)) {
        (Some(op), _) => op.arity(),
        (None, Some(d)) => d.def.params.len(),
        (None, None) => return Err(Error::Usage(format!("primitive `{name}` is not defined"))),
    };
    if want != arity {
        return Err(Error::Usage(format!(
            "primitive `{name}` takes {want} arguments, not {arity}"
        )));
    }
    Ok(())
}

/// One node of a prefix tree: an index into the primitives or terminals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gene {
    Prim(u16),
    Term(u16),
}

/// A GP individual in DEAP's prefix layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tree {
    pub genes: Vec<Gene>,
}

/// How a generator decides where leaves go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Every leaf at exactly the chosen height.
    Full,
    /// Leaves anywhere from `min` to the chosen height.
    Grow,
}

impl Tree {
    /// Generate with DEAP's `genFull`/`genGrow`: a height drawn uniformly
    /// from `min..=max`, then nodes chosen top-down.
    pub fn generate(
        rng: &mut impl Rng,
        set: &PrimitiveSet,
        min: usize,
        max: usize,
        method: Method,
    ) -> Tree {
        let height = rng.random_range(min..=max.max(min));
        let n_t = set.terminals.len();
        let n_p = set.primitives.len();
        let terminal_ratio = n_t as f64 / (n_t + n_p) as f64;
        let mut genes = Vec::new();
        let mut stack = vec![0usize];
        while let Some(depth) = stack.pop() {
            let leaf = depth == height
                || (method == Method::Grow && depth >= min && rng.random_bool(terminal_ratio));
            if leaf {
                genes.push(Gene::Term(rng.random_range(0..n_t) as u16));
            } else {
                let p = rng.random_range(0..n_p);
                genes.push(Gene::Prim(p as u16));
                stack.extend(std::iter::repeat_n(depth + 1, set.primitives[p].arity));
            }
        }
        Tree { genes }
    }

    /// DEAP's `genHalfAndHalf`: full or grow with equal odds.
    pub fn ramped(rng: &mut impl Rng, set: &PrimitiveSet, min: usize, max: usize) -> Tree {
        let method = if rng.random_bool(0.5) {
            Method::Full
        } else {
            Method::Grow
        };
        Tree::generate(rng, set, min, max, method)
    }

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
            if let Gene::Prim(p) = g {
                stack.extend(std::iter::repeat_n(
                    d + 1,
                    set.primitives[*p as usize].arity,
                ));
            }
        }
        h
    }

    /// The formula text, DEAP style: `safe_add(sin(x), 1.0)`.
    pub fn display<'a>(&'a self, set: &'a PrimitiveSet) -> TreeDisplay<'a> {
        TreeDisplay { tree: self, set }
    }

    pub fn to_formula(&self, set: &PrimitiveSet) -> String {
        self.display(set).to_string()
    }
}

pub struct TreeDisplay<'a> {
    tree: &'a Tree,
    set: &'a PrimitiveSet,
}

impl fmt::Display for TreeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Iterative prefix printing: a stack of "arguments still to close".
        let mut open: Vec<usize> = Vec::new();
        for g in &self.tree.genes {
            match g {
                Gene::Prim(p) => {
                    let prim = &self.set.primitives[*p as usize];
                    write!(f, "{}(", prim.name)?;
                    open.push(prim.arity);
                    continue;
                }
                Gene::Term(t) => f.write_str(&self.set.terminals[*t as usize])?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn full_trees_have_the_requested_height() {
        let set = PrimitiveSet::seed();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for h in 0..6 {
            let t = Tree::generate(&mut rng, &set, h, h, Method::Full);
            assert_eq!(t.height(&set), h);
            let text = t.to_formula(&set);
            Library::standard()
                .parse(&text)
                .unwrap_or_else(|d| panic!("{text}\n{}", d.render()));
        }
    }

    #[test]
    fn grow_respects_the_bounds() {
        let set = PrimitiveSet::seed();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..200 {
            let t = Tree::ramped(&mut rng, &set, 1, 4);
            let h = t.height(&set);
            assert!((1..=4).contains(&h), "height {h}");
        }
    }

    #[test]
    fn prints_deap_prefix() {
        let set = PrimitiveSet::seed();
        let t = Tree {
            genes: vec![Gene::Prim(4), Gene::Prim(1), Gene::Term(0), Gene::Term(1)],
        };
        assert_eq!(t.to_formula(&set), "safe_add(sin(x), 1.0)");
    }

    #[test]
    fn bad_sets_are_rejected() {
        let lib = Library::standard();
        assert!(PrimitiveSet::parse("safe_div/1,x", lib).is_err());
        assert!(PrimitiveSet::parse("nope/1,x", lib).is_err());
        assert!(PrimitiveSet::parse("sin/1", lib).is_err());
        assert!(PrimitiveSet::parse("sin/1,y", lib).is_err());
    }
}
