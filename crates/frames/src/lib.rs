//! Physical memory bookkeeping, with no hardware access and no allocation.
//!
//! The boot core turns the firmware memory map into a [`RangeSet`] of usable
//! frames, carves it into one span per core with [`carve`], and each core then
//! builds its own [`FramePool`] over its span. A pool is touched only by the
//! core that owns it: there is no lock in here because nothing is shared.
//! On a NUMA machine [`carve_numa`] carves instead, giving each core a span
//! on its own node's memory (or the nearest node's, for a memoryless node).
//!
//! The crate knows nothing about page tables or addresses being mapped; the
//! kernel hands it storage for the bitmap. It may depend on `core` only.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod budget;
mod numa;
mod pool;
mod ranges;

pub use numa::{NumaCarveError, NumaSpan, carve_numa};
pub use pool::{FramePool, PoolError};
pub use ranges::{RangeSet, RangeSetFull, carve};

/// Size of one physical frame.
pub const FRAME_SIZE: u64 = 4096;

pub(crate) const fn align_up(value: u64) -> u64 {
    value.saturating_add(FRAME_SIZE - 1) & !(FRAME_SIZE - 1)
}

pub(crate) const fn align_down(value: u64) -> u64 {
    value & !(FRAME_SIZE - 1)
}
