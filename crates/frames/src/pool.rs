//! One core's frame pool: a bitmap over its span, one bit per frame.

use crate::{FRAME_SIZE, align_down, align_up};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The bitmap storage holds fewer bits than the span has frames.
    BitmapTooSmall {
        needed_words: usize,
        given_words: usize,
    },
    /// The address is not the start of a frame in this pool's span.
    NotInPool { addr: u64 },
    /// The frame is already free (a double free) or was never usable.
    NotAllocated { addr: u64 },
}

impl core::fmt::Display for PoolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BitmapTooSmall {
                needed_words,
                given_words,
            } => {
                write!(
                    f,
                    "frame bitmap needs {needed_words} words, got {given_words}"
                )
            }
            Self::NotInPool { addr } => write!(f, "{addr:#x} is not a frame of this pool"),
            Self::NotAllocated { addr } => write!(f, "frame {addr:#x} is not allocated"),
        }
    }
}

/// Frames of one span `[start, end)`. A set bit means "in use or not usable".
/// Frames start unusable; the owner adds the usable parts of its span.
pub struct FramePool<'bitmap> {
    start: u64,
    frames: usize,
    used: &'bitmap mut [u64],
    free: usize,
    /// Where the next search for a free frame starts, so that allocation in
    /// address order does not rescan the full words behind it.
    search_from: usize,
}

impl<'bitmap> FramePool<'bitmap> {
    /// Bitmap words a span of `bytes` needs.
    pub const fn bitmap_words(bytes: u64) -> usize {
        (bytes / FRAME_SIZE).div_ceil(64) as usize
    }

    /// A pool over `[start, end)` (shrunk inwards to whole frames) with every frame unusable.
    pub fn new(start: u64, end: u64, bitmap: &'bitmap mut [u64]) -> Result<Self, PoolError> {
        let (start, end) = (align_up(start), align_down(end).max(align_up(start)));
        let needed_words = Self::bitmap_words(end - start);
        let given_words = bitmap.len();
        let used = bitmap
            .get_mut(..needed_words)
            .ok_or(PoolError::BitmapTooSmall {
                needed_words,
                given_words,
            })?;
        used.fill(u64::MAX);
        Ok(Self {
            start,
            frames: ((end - start) / FRAME_SIZE) as usize,
            used,
            free: 0,
            search_from: 0,
        })
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn end(&self) -> u64 {
        self.start + self.frames as u64 * FRAME_SIZE
    }

    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Whether the frame at `addr` is one of this pool's.
    pub fn contains(&self, addr: u64) -> bool {
        self.index_of(addr).is_some()
    }

    /// Makes the frames of `[start, end)` that lie in the span available.
    pub fn add_usable(&mut self, start: u64, end: u64) {
        for index in self.frame_indices(align_up(start), align_down(end)) {
            if self.is_used(index) {
                self.set_used(index, false);
            }
        }
        self.search_from = 0;
    }

    /// Takes the frames of `[start, end)` out of use (for the bitmap itself, say).
    pub fn reserve(&mut self, start: u64, end: u64) {
        for index in self.frame_indices(align_down(start), align_up(end)) {
            if !self.is_used(index) {
                self.set_used(index, true);
            }
        }
    }

    pub fn allocate(&mut self) -> Option<u64> {
        self.allocate_contiguous(1)
    }

    /// The lowest run of `count` free frames, marked used; its start address.
    pub fn allocate_contiguous(&mut self, count: usize) -> Option<u64> {
        if count == 0 || count > self.free {
            return None;
        }
        let first_word_with_space =
            (self.search_from..self.used.len()).find(|&word| self.used[word] != u64::MAX)?;
        let mut run_start = first_word_with_space * 64;
        let mut index = run_start;
        while index < self.frames {
            if self.is_used(index) {
                run_start = index + 1;
            } else if index + 1 - run_start == count {
                for frame in run_start..=index {
                    self.set_used(frame, true);
                }
                if count == 1 {
                    self.search_from = index / 64;
                }
                return Some(self.start + run_start as u64 * FRAME_SIZE);
            }
            index += 1;
        }
        None
    }

    pub fn free(&mut self, addr: u64) -> Result<(), PoolError> {
        let index = self.index_of(addr).ok_or(PoolError::NotInPool { addr })?;
        if !self.is_used(index) {
            return Err(PoolError::NotAllocated { addr });
        }
        self.set_used(index, false);
        self.search_from = self.search_from.min(index / 64);
        Ok(())
    }

    fn index_of(&self, addr: u64) -> Option<usize> {
        let offset = addr.checked_sub(self.start)?;
        let index = (offset / FRAME_SIZE) as usize;
        (offset % FRAME_SIZE == 0 && index < self.frames).then_some(index)
    }

    fn frame_indices(&self, start: u64, end: u64) -> core::ops::Range<usize> {
        let clamp =
            |addr: u64| ((addr.clamp(self.start, self.end()) - self.start) / FRAME_SIZE) as usize;
        clamp(start)..clamp(end.max(start))
    }

    fn is_used(&self, index: usize) -> bool {
        self.used[index / 64] & (1 << (index % 64)) != 0
    }

    fn set_used(&mut self, index: usize, used: bool) {
        let bit = 1 << (index % 64);
        if used {
            self.used[index / 64] |= bit;
            self.free -= 1;
        } else {
            self.used[index / 64] &= !bit;
            self.free += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::vec;

    fn pool_with(bitmap: &mut [u64], frames: u64) -> FramePool<'_> {
        let mut pool = FramePool::new(0x10_0000, 0x10_0000 + frames * FRAME_SIZE, bitmap).unwrap();
        pool.add_usable(0, u64::MAX);
        pool
    }

    #[test]
    fn new_rejects_a_short_bitmap() {
        let mut bitmap = [0u64; 1];
        let result = FramePool::new(0, 65 * FRAME_SIZE, &mut bitmap);
        assert_eq!(
            result.err(),
            Some(PoolError::BitmapTooSmall {
                needed_words: 2,
                given_words: 1
            })
        );
    }

    #[test]
    fn frames_start_unusable_until_added() {
        let mut bitmap = [0u64; 2];
        let mut pool = FramePool::new(0, 100 * FRAME_SIZE, &mut bitmap).unwrap();
        assert_eq!(pool.allocate(), None);
        pool.add_usable(10 * FRAME_SIZE, 12 * FRAME_SIZE + 5);
        assert_eq!(pool.free_frames(), 2);
        assert_eq!(pool.allocate(), Some(10 * FRAME_SIZE));
        assert_eq!(pool.allocate(), Some(11 * FRAME_SIZE));
        assert_eq!(pool.allocate(), None);
    }

    #[test]
    fn free_rejects_foreign_unaligned_and_double_frees() {
        let mut bitmap = [0u64; 1];
        let mut pool = pool_with(&mut bitmap, 8);
        let frame = pool.allocate().unwrap();
        assert_eq!(
            pool.free(frame + 1),
            Err(PoolError::NotInPool { addr: frame + 1 })
        );
        assert_eq!(pool.free(0), Err(PoolError::NotInPool { addr: 0 }));
        assert_eq!(pool.free(frame), Ok(()));
        assert_eq!(
            pool.free(frame),
            Err(PoolError::NotAllocated { addr: frame })
        );
        assert_eq!(pool.free_frames(), 8);
    }

    #[test]
    fn contiguous_runs_skip_holes() {
        let mut bitmap = [0u64; 2];
        let mut pool = pool_with(&mut bitmap, 70);
        pool.reserve(0x10_0000 + 3 * FRAME_SIZE, 0x10_0000 + 4 * FRAME_SIZE);
        let run = pool.allocate_contiguous(5).unwrap();
        assert_eq!(run, 0x10_0000 + 4 * FRAME_SIZE);
        assert_eq!(pool.free_frames(), 70 - 1 - 5);
        assert_eq!(pool.allocate_contiguous(62), None);
        assert_eq!(
            pool.allocate_contiguous(61),
            Some(0x10_0000 + 9 * FRAME_SIZE)
        );
    }

    proptest! {
        #[test]
        fn never_hands_out_a_frame_twice(ops in proptest::collection::vec(any::<(bool, u8)>(), 0..300)) {
            let mut bitmap = vec![0u64; 4];
            let mut pool = pool_with(&mut bitmap, 200);
            let mut held = BTreeSet::new();
            for (allocate, pick) in ops {
                if allocate {
                    match pool.allocate() {
                        Some(frame) => prop_assert!(held.insert(frame), "frame {:#x} handed out twice", frame),
                        None => prop_assert_eq!(held.len(), 200),
                    }
                } else if let Some(&frame) = held.iter().nth(pick as usize % held.len().max(1)) {
                    held.remove(&frame);
                    prop_assert_eq!(pool.free(frame), Ok(()));
                }
                prop_assert_eq!(pool.free_frames(), 200 - held.len());
            }
        }
    }
}
