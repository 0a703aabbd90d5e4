//! Sets of disjoint frame-aligned ranges, and carving them into per-core spans.

use crate::{FRAME_SIZE, align_down, align_up};

/// The set had no room for another range; the caller reports it rather than
/// dropping memory silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSetFull {
    pub capacity: usize,
}

impl core::fmt::Display for RangeSetFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "more than {} disjoint memory ranges", self.capacity)
    }
}

/// Disjoint, sorted, frame-aligned half-open ranges `[start, end)`, in a fixed
/// array because the boot core builds it before any heap exists.
#[derive(Clone)]
pub struct RangeSet<const N: usize> {
    ranges: [(u64, u64); N],
    len: usize,
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RangeSet<N> {
    pub const fn new() -> Self {
        Self {
            ranges: [(0, 0); N],
            len: 0,
        }
    }

    /// Empties the set, keeping its storage.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges[..self.len].iter().copied()
    }

    /// Total bytes covered.
    pub fn total(&self) -> u64 {
        self.iter().map(|(start, end)| end - start).sum()
    }

    /// Whether `[start, end)` lies wholly inside one range of the set.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        self.iter().any(|(s, e)| s <= start && end <= e)
    }

    /// Adds `[start, end)`, shrunk inwards to whole frames, merging with
    /// neighbours it touches or overlaps.
    pub fn insert(&mut self, start: u64, end: u64) -> Result<(), RangeSetFull> {
        let (mut start, mut end) = (align_up(start), align_down(end));
        if start >= end {
            return Ok(());
        }
        let first = self.ranges[..self.len].partition_point(|&(_, e)| e < start);
        let mut last = first;
        while last < self.len && self.ranges[last].0 <= end {
            start = start.min(self.ranges[last].0);
            end = end.max(self.ranges[last].1);
            last += 1;
        }
        let merged = last - first;
        if merged == 0 && self.len == N {
            return Err(RangeSetFull { capacity: N });
        }
        // Replace the `merged` ranges at `first` by the one new range.
        if merged == 0 {
            self.ranges.copy_within(first..self.len, first + 1);
            self.len += 1;
        } else {
            self.ranges.copy_within(last..self.len, first + 1);
            self.len -= merged - 1;
        }
        self.ranges[first] = (start, end);
        Ok(())
    }

    /// Takes `bytes` (rounded up to whole frames) off the top of the highest
    /// range that holds them, and returns where they start.
    pub fn take_from_top(&mut self, bytes: u64) -> Option<u64> {
        let bytes = align_up(bytes);
        let index = (0..self.len)
            .rev()
            .find(|&i| self.ranges[i].1 - self.ranges[i].0 >= bytes)?;
        let start = self.ranges[index].1 - bytes;
        self.ranges[index].1 = start;
        if start == self.ranges[index].0 {
            self.ranges.copy_within(index + 1..self.len, index);
            self.len -= 1;
        }
        Some(start)
    }

    /// Removes `[start, end)`, grown outwards to whole frames, splitting a
    /// range that contains it.
    pub fn remove(&mut self, start: u64, end: u64) -> Result<(), RangeSetFull> {
        let (start, end) = (align_down(start), align_up(end));
        if start >= end {
            return Ok(());
        }
        let mut index = 0;
        while index < self.len {
            let (s, e) = self.ranges[index];
            if e <= start || s >= end {
                index += 1;
                continue;
            }
            let keep_left = s < start;
            let keep_right = e > end;
            match (keep_left, keep_right) {
                (true, true) => {
                    if self.len == N {
                        return Err(RangeSetFull { capacity: N });
                    }
                    self.ranges.copy_within(index + 1..self.len, index + 2);
                    self.len += 1;
                    self.ranges[index] = (s, start);
                    self.ranges[index + 1] = (end, e);
                    return Ok(());
                }
                (true, false) => {
                    self.ranges[index].1 = start;
                    index += 1;
                }
                (false, true) => {
                    self.ranges[index].0 = end;
                    index += 1;
                }
                (false, false) => {
                    self.ranges.copy_within(index + 1..self.len, index);
                    self.len -= 1;
                }
            }
        }
        Ok(())
    }
}

/// Splits the usable memory into `parts` spans `[start, end)` holding as
/// nearly equal numbers of usable frames as possible, in address order. Each
/// span starts and ends on usable memory; it may contain holes, which the
/// pool built over it marks unavailable. Fewer spans come back when there are
/// fewer usable frames than parts.
pub fn carve<const N: usize>(
    usable: &RangeSet<N>,
    parts: usize,
) -> impl Iterator<Item = (u64, u64)> + '_ {
    let total_frames = usable.total() / FRAME_SIZE;
    let parts = parts.max(1) as u64;
    let mut ranges = usable.iter().peekable();
    let mut cursor = usable.iter().next().map_or(0, |(start, _)| start);
    (0..parts).map_while(move |part| {
        // Frames this part gets: an even share, the first `remainder` parts one more.
        let mut wanted = total_frames / parts + u64::from(part < total_frames % parts);
        if wanted == 0 {
            return None;
        }
        let span_start = cursor;
        let mut span_end = cursor;
        while wanted > 0 {
            let &(_, range_end) = ranges.peek()?;
            let available = (range_end - cursor) / FRAME_SIZE;
            let taken = available.min(wanted);
            span_end = cursor + taken * FRAME_SIZE;
            wanted -= taken;
            cursor = span_end;
            if cursor == range_end {
                ranges.next();
                if let Some(&(next_start, _)) = ranges.peek() {
                    cursor = next_start;
                }
            }
        }
        Some((span_start, span_end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;

    fn collect<const N: usize>(set: &RangeSet<N>) -> Vec<(u64, u64)> {
        set.iter().collect()
    }

    #[test]
    fn insert_aligns_inwards_and_merges_touching_ranges() {
        let mut set = RangeSet::<4>::new();
        set.insert(0x1001, 0x5fff).unwrap();
        assert_eq!(collect(&set), [(0x2000, 0x5000)]);
        set.insert(0x5000, 0x8000).unwrap();
        set.insert(0x10000, 0x11000).unwrap();
        assert_eq!(collect(&set), [(0x2000, 0x8000), (0x10000, 0x11000)]);
        set.insert(0x7000, 0x10000).unwrap();
        assert_eq!(collect(&set), [(0x2000, 0x11000)]);
    }

    #[test]
    fn contains_only_what_one_range_holds() {
        let mut set = RangeSet::<4>::new();
        set.insert(0, 2 * MIB).unwrap();
        set.insert(2 * MIB + 0x1000, 4 * MIB).unwrap();
        assert!(set.contains(0, 2 * MIB));
        assert!(set.contains(3 * MIB, 4 * MIB));
        assert!(!set.contains(MIB, 3 * MIB), "across the hole");
        assert!(!set.contains(3 * MIB, 5 * MIB), "past the end");
    }

    #[test]
    fn remove_splits_and_reports_a_full_set() {
        let mut set = RangeSet::<2>::new();
        set.insert(0, 16 * MIB).unwrap();
        set.remove(2 * MIB, 3 * MIB - 1).unwrap();
        assert_eq!(collect(&set), [(0, 2 * MIB), (3 * MIB, 16 * MIB)]);
        assert_eq!(
            set.remove(4 * MIB, 5 * MIB),
            Err(RangeSetFull { capacity: 2 })
        );
        set.remove(0, 2 * MIB).unwrap();
        assert_eq!(collect(&set), [(3 * MIB, 16 * MIB)]);
    }

    #[test]
    fn take_from_top_uses_the_highest_range_that_fits() {
        let mut set = RangeSet::<4>::new();
        set.insert(0, 8 * FRAME_SIZE).unwrap();
        set.insert(16 * FRAME_SIZE, 18 * FRAME_SIZE).unwrap();
        assert_eq!(set.take_from_top(3 * FRAME_SIZE - 1), Some(5 * FRAME_SIZE));
        assert_eq!(set.take_from_top(2 * FRAME_SIZE), Some(16 * FRAME_SIZE));
        assert_eq!(collect(&set), [(0, 5 * FRAME_SIZE)]);
        assert_eq!(set.take_from_top(6 * FRAME_SIZE), None);
    }

    #[test]
    fn carve_splits_evenly_across_holes() {
        let mut set = RangeSet::<4>::new();
        set.insert(MIB, 3 * MIB).unwrap();
        set.insert(8 * MIB, 10 * MIB).unwrap();
        let spans: Vec<_> = carve(&set, 2).collect();
        assert_eq!(spans, [(MIB, 3 * MIB), (8 * MIB, 10 * MIB)]);
        let spans: Vec<_> = carve(&set, 4).collect();
        assert_eq!(
            spans,
            [
                (MIB, 2 * MIB),
                (2 * MIB, 3 * MIB),
                (8 * MIB, 9 * MIB),
                (9 * MIB, 10 * MIB)
            ]
        );
        let spans: Vec<_> = carve(&set, 3).collect();
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[1], (0x256000, 0x8ab000));
    }

    #[test]
    fn carve_returns_fewer_spans_than_parts_when_memory_is_tiny() {
        let mut set = RangeSet::<1>::new();
        set.insert(0, 2 * FRAME_SIZE).unwrap();
        assert_eq!(carve(&set, 4).count(), 2);
    }

    proptest! {
        #[test]
        fn carve_covers_every_usable_frame_once(
            raw in proptest::collection::vec((0u64..1 << 16, 1u64..1 << 10), 1..12),
            parts in 1usize..20,
        ) {
            let mut set = RangeSet::<32>::new();
            for (start, len) in raw {
                set.insert(start * FRAME_SIZE, (start + len) * FRAME_SIZE).unwrap();
            }
            let spans: Vec<_> = carve(&set, parts).collect();
            let usable_in = |(lo, hi): (u64, u64)| -> u64 {
                set.iter().map(|(s, e)| e.min(hi).saturating_sub(s.max(lo))).sum::<u64>() / FRAME_SIZE
            };
            let counts: Vec<u64> = spans.iter().map(|&span| usable_in(span)).collect();
            prop_assert_eq!(counts.iter().sum::<u64>(), set.total() / FRAME_SIZE);
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            prop_assert!(max - min <= 1, "uneven shares {:?}", counts);
            for pair in spans.windows(2) {
                prop_assert!(pair[0].1 <= pair[1].0, "spans overlap: {:?}", pair);
            }
        }

        #[test]
        fn insert_then_remove_matches_a_frame_by_frame_model(
            ops in proptest::collection::vec((any::<bool>(), 0u64..64, 1u64..16), 0..40),
        ) {
            let mut set = RangeSet::<64>::new();
            let mut model = [false; 80];
            for (add, start, len) in ops {
                let (lo, hi) = (start * FRAME_SIZE, (start + len) * FRAME_SIZE);
                if add { set.insert(lo, hi).unwrap() } else { set.remove(lo, hi).unwrap() }
                model[start as usize..(start + len) as usize].fill(add);
            }
            let mut from_set = [false; 80];
            for (s, e) in set.iter() {
                from_set[(s / FRAME_SIZE) as usize..(e / FRAME_SIZE) as usize].fill(true);
            }
            prop_assert_eq!(from_set, model);
            for pair in collect(&set).windows(2) {
                prop_assert!(pair[0].1 < pair[1].0, "not disjoint and sorted: {:?}", pair);
            }
        }
    }
}
