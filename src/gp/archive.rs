//! Archives of the best seen: the hall of fame (the best `k`, unique by
//! canonical key; DEAP's `HallOfFame` with `similar` = same key) and the
//! Pareto front (every non-dominated entry seen; DEAP's `ParetoFront`).
//!
//! Entries carry the caller's key (the canonical hash), the fitness and an
//! item (a tree, a formula, a record). A failure (see
//! [`Objectives::is_failure`]) never enters either archive. Order is
//! deterministic: better fitness first, and among equal fitnesses the
//! entry that arrived first.

use std::cmp::Ordering;

use super::objectives::Objectives;

/// One archived individual.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry<T> {
    pub key: u64,
    pub fitness: Vec<f64>,
    pub item: T,
}

/// The best `capacity` individuals ever seen, one per key, best first.
#[derive(Clone, Debug)]
pub struct HallOfFame<T> {
    capacity: usize,
    objectives: Objectives,
    entries: Vec<Entry<T>>,
}

impl<T> HallOfFame<T> {
    pub fn new(capacity: usize, objectives: Objectives) -> HallOfFame<T> {
        HallOfFame {
            capacity,
            objectives,
            entries: Vec::new(),
        }
    }

    /// Best first.
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Offer an individual. A key already present is replaced only by a
    /// strictly better fitness. When full, a newcomer must be strictly
    /// better than the worst entry. Returns whether it was admitted.
    pub fn update(&mut self, key: u64, fitness: Vec<f64>, item: T) -> bool {
        if self.capacity == 0 || self.objectives.is_failure(&fitness) {
            return false;
        }
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            if self.objectives.compare(&fitness, &self.entries[i].fitness) != Ordering::Greater {
                return false;
            }
            self.entries.remove(i);
        } else if self.entries.len() == self.capacity {
            let worst = &self.entries[self.capacity - 1].fitness;
            if self.objectives.compare(&fitness, worst) != Ordering::Greater {
                return false;
            }
        }
        let at = self
            .entries
            .iter()
            .position(|e| self.objectives.compare(&fitness, &e.fitness) == Ordering::Greater)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, Entry { key, fitness, item });
        self.entries.truncate(self.capacity);
        true
    }

    /// Give the entry of `key`, if present, its new `fitness` (higher or
    /// lower: racing refines a fitness with more seeds) and move it to its
    /// place; an entry that became a failure leaves. Returns whether the
    /// key is still an entry.
    pub fn rerate(&mut self, key: u64, fitness: Vec<f64>) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.key == key) else {
            return false;
        };
        let e = self.entries.remove(i);
        self.update(key, fitness, e.item)
    }
}

/// Every non-dominated individual seen so far, one per key, ordered by
/// fitness (lexicographically, best first).
#[derive(Clone, Debug)]
pub struct ParetoFront<T> {
    objectives: Objectives,
    entries: Vec<Entry<T>>,
}

impl<T> ParetoFront<T> {
    pub fn new(objectives: Objectives) -> ParetoFront<T> {
        ParetoFront {
            objectives,
            entries: Vec::new(),
        }
    }

    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offer an individual: it enters unless it is a failure, is dominated
    /// by an entry, or its key is already on the front; entries it
    /// dominates leave. Returns whether it entered.
    pub fn update(&mut self, key: u64, fitness: Vec<f64>, item: T) -> bool {
        let o = &self.objectives;
        if o.is_failure(&fitness)
            || self
                .entries
                .iter()
                .any(|e| e.key == key || o.dominates(&e.fitness, &fitness))
        {
            return false;
        }
        self.entries.retain(|e| !o.dominates(&fitness, &e.fitness));
        let at = self
            .entries
            .iter()
            .position(|e| o.compare(&fitness, &e.fitness) == Ordering::Greater)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, Entry { key, fitness, item });
        true
    }

    /// Give the entry of `key`, if present, its new `fitness` (racing
    /// refines a fitness with more seeds): it is offered again, so it stays
    /// only if no other entry dominates it, and entries it now dominates
    /// leave. Returns whether the key is still an entry.
    pub fn rerate(&mut self, key: u64, fitness: Vec<f64>) -> bool {
        let Some(i) = self.entries.iter().position(|e| e.key == key) else {
            return false;
        };
        let e = self.entries.remove(i);
        self.update(key, fitness, e.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerated_entry_moves_up_or_down_or_leaves() {
        let mut hof = HallOfFame::new(3, Objectives::maximize());
        for (k, f) in [(1, 0.5), (2, 0.7), (3, 0.6)] {
            assert!(hof.update(k, vec![f], k));
        }
        let keys = |h: &HallOfFame<u64>| h.entries().iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(keys(&hof), vec![2, 3, 1]);
        // Lower than before: `update` would refuse it, `rerate` moves it.
        assert!(hof.rerate(2, vec![0.55]));
        assert_eq!(keys(&hof), vec![3, 2, 1]);
        assert_eq!(hof.entries()[1].fitness, vec![0.55]);
        assert!(hof.rerate(1, vec![0.9]));
        assert_eq!(keys(&hof), vec![1, 3, 2]);
        assert!(!hof.rerate(3, vec![f64::NEG_INFINITY]));
        assert_eq!(keys(&hof), vec![1, 2]);
        assert!(!hof.rerate(9, vec![1.0]), "not an entry");
        assert_eq!(hof.len(), 2);
    }

    #[test]
    fn a_rerated_point_of_the_front_can_leave_it_or_push_others_out() {
        use crate::gp::objectives::Sense;
        let o = Objectives::new(vec![Sense::Maximize, Sense::Minimize]);
        let mut front = ParetoFront::new(o);
        for (k, f, n) in [(1, 0.9, 9.0), (2, 0.5, 3.0), (3, 0.7, 5.0)] {
            assert!(front.update(k, vec![f, n], k));
        }
        let keys = |p: &ParetoFront<u64>| p.entries().iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(keys(&front), vec![1, 3, 2]);
        // 3 falls below 2 at a larger size: dominated, it leaves.
        assert!(!front.rerate(3, vec![0.4, 5.0]));
        assert_eq!(keys(&front), vec![1, 2]);
        // 2 rises above 1 at a smaller size: 1 is dominated and leaves.
        assert!(front.rerate(2, vec![0.95, 3.0]));
        assert_eq!(keys(&front), vec![2]);
        assert!(!front.rerate(7, vec![1.0, 1.0]), "not an entry");
    }
}
