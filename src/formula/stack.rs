//! Deep recursion without stack overflow: every recursive pass over a
//! formula (the parser, lowering, printers, code generation) runs its
//! recursive step through [`deep`], which switches to a fresh stack
//! segment when little headroom is left. The nesting limit of the surface
//! syntax, not the thread's stack size, then decides how deep input may go.
//! A leaf: it knows no formula.

/// Stack headroom below which a recursive step switches to a fresh segment.
pub const RED_ZONE: usize = 128 * 1024;
/// Size of each extra stack segment.
pub const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// Run one recursive step, on a fresh stack segment if the current one
/// has less than [`RED_ZONE`] left.
#[inline]
pub fn deep<R>(step: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, step)
}
