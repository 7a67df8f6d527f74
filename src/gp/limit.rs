//! Bloat control: DEAP's `staticLimit` decorator on height and size, done
//! right.
//!
//! DEAP's decorator deep-copies the arguments and, for each child over the
//! limit, substitutes `random.choice(keep_inds)`: a random parent, not the
//! child's own, and the same copied object for two children when the draw
//! repeats, so the two "individuals" alias and a later in-place mutation
//! of one changes the other. Here a child over the limit is replaced by a
//! fresh copy of its **own** parent (child i of parent i), and no random
//! number is drawn.

use super::pset::PrimitiveSet;
use super::tree::Tree;

/// A bound on tree height (root at depth 0) and on node count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max_height: Option<usize>,
    pub max_size: Option<usize>,
}

impl Default for Limit {
    /// DEAP's `staticLimit(key=operator.attrgetter("height"), max_value=17)`
    /// (Koza's limit) and no size limit.
    fn default() -> Limit {
        Limit {
            max_height: Some(17),
            max_size: None,
        }
    }
}

impl Limit {
    /// No limit at all.
    pub const NONE: Limit = Limit {
        max_height: None,
        max_size: None,
    };

    /// Whether `t` is within the limit.
    pub fn admits(&self, set: &PrimitiveSet, t: &Tree) -> bool {
        self.max_size.is_none_or(|m| t.len() <= m)
            && self.max_height.is_none_or(|m| t.height(set) <= m)
    }

    /// Replace every child over the limit by a copy of its own parent
    /// (`children[i]` descends from `parents[i]`). Returns which children
    /// were replaced.
    pub fn enforce(
        &self,
        set: &PrimitiveSet,
        parents: &[&Tree],
        children: &mut [Tree],
    ) -> Vec<bool> {
        assert_eq!(parents.len(), children.len(), "one parent per child");
        children
            .iter_mut()
            .zip(parents)
            .map(|(child, parent)| {
                let over = !self.admits(set, child);
                if over {
                    *child = (*parent).clone();
                }
                over
            })
            .collect()
    }
}
