//! Carving usable memory into per-core spans on the cores' NUMA nodes.
//!
//! Words used below, for a node `m` and the SRAT memory ranges
//! `(start, end, node)` handed in (which need not be aligned, sorted or
//! disjoint):
//!
//! - A frame is *on* `m` when it lies wholly inside one of `m`'s ranges. A
//!   frame that straddles the unaligned boundary between two ranges is on
//!   neither (unless another of `m`'s ranges covers it whole); a frame in no
//!   range is on no node.
//! - `m`'s *usable memory* is the usable frames on `m`.
//! - `m` *can be a memory home* when its usable memory holds at least one
//!   frame, and at least one frame for each core whose own node (SRAT
//!   proximity domain) is `m`. A node whose memory is too small for its own
//!   cores thus hands all of them elsewhere rather than failing; a memoryless
//!   node (which ACPI allows) can never be a home.
//! - A core's *memory home* is its own node if that can be a memory home,
//!   else the node `m` that can be, with the least `distance(own, m)`, the
//!   lowest node id among equals. All cores of a node share one home.

use crate::ranges::{RangeSet, RangeSetFull, carve};
use crate::{FRAME_SIZE, align_down, align_up};

/// One core's pool: its span and the node whose memory it is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumaSpan {
    pub span: (u64, u64),
    pub memory_node: u32,
}

/// Why [`carve_numa`] gave up; the caller then carves without regard to nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumaCarveError {
    /// `out` must hold one entry per core.
    OutputLength { cores: usize, out: usize },
    /// The SRAT gave no memory ranges at all.
    NoNodeMemory,
    /// The usable memory on `node` takes more disjoint ranges than the set holds.
    RangeSetFull { node: u32, capacity: usize },
    /// No node can be a memory home for the cores on `node` (every node with
    /// memory has too little even for its own cores).
    NoMemoryHome { node: u32 },
    /// `node` is the memory home of `cores` cores but has only `frames` usable frames.
    NotEnoughMemory {
        node: u32,
        frames: u64,
        cores: usize,
    },
    /// A span for a core homed on `node` would hold usable memory that the
    /// SRAT places on `other`: the nodes' memory interleaves, or their ranges
    /// overlap. Two pools could then share frames.
    Interleaved { node: u32, other: u32 },
}

impl core::fmt::Display for NumaCarveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::OutputLength { cores, out } => {
                write!(f, "{out} output slots for {cores} cores")
            }
            Self::NoNodeMemory => write!(f, "the SRAT lists no memory ranges"),
            Self::RangeSetFull { node, capacity } => write!(
                f,
                "the usable memory on NUMA node {node} takes more than {capacity} disjoint ranges"
            ),
            Self::NoMemoryHome { node } => write!(
                f,
                "no NUMA node has enough usable memory to home the cores on node {node}"
            ),
            Self::NotEnoughMemory {
                node,
                frames,
                cores,
            } => write!(
                f,
                "NUMA node {node} has {frames} usable frames for the {cores} cores it homes"
            ),
            Self::Interleaved { node, other } => write!(
                f,
                "a span on NUMA node {node} would cover memory of node {other} (interleaved or overlapping nodes)"
            ),
        }
    }
}

/// Carves `usable` for cores whose NUMA nodes are `core_nodes[i]`, given the
/// SRAT memory ranges `(start, end, node)` and `distance(from, to)` (the
/// SLIT, or ACPI's 10/20 defaults), writing core `i`'s pool to `out[i]`.
///
/// Each core's memory home is chosen as the module documentation says; the
/// usable memory of each home is then split by [`carve`] among the cores
/// homed on it, in core order. On `Ok`, for every core `i` with
/// `m = out[i].memory_node`:
///
/// 1. `m` is core `i`'s memory home, and `out[i].span` is `(start, end)`
///    with `start < end`, both frame-aligned; the first and the last frame of
///    the span are usable frames on `m`.
/// 2. No usable frame in the span is on a node other than `m`. Usable frames
///    on no node (outside every SRAT range) may lie inside it, between `m`'s
///    own frames; the pool built over the span takes them too.
/// 3. The spans are pairwise disjoint (this follows from 1 and 2).
/// 4. Every usable frame on `m` lies in exactly one span of the cores homed
///    on `m`; those spans hold numbers of usable frames on `m` that differ by
///    at most one, and lie in address order in core order.
///
/// Usable memory on a node that homes no core, and usable memory on no node
/// outside every span, lies in no span: the caller may report it.
///
/// Errors are checked in the order the variants of [`NumaCarveError`] are
/// listed; on an error the contents of `out` are unspecified. The work is
/// done in three passes over the nodes and cores, with one `RangeSet<N>` on
/// the stack as scratch and no heap: `O(memory nodes × (ranges × usable
/// ranges × N + cores))` to place and carve, and `O(cores × ranges × usable
/// ranges)` to check.
pub fn carve_numa<const N: usize>(
    usable: &RangeSet<N>,
    node_memory: &[(u64, u64, u32)],
    core_nodes: &[u32],
    distance: impl Fn(u32, u32) -> u8,
    out: &mut [NumaSpan],
) -> Result<(), NumaCarveError> {
    if out.len() != core_nodes.len() {
        return Err(NumaCarveError::OutputLength {
            cores: core_nodes.len(),
            out: out.len(),
        });
    }
    if node_memory.is_empty() {
        return Err(NumaCarveError::NoNodeMemory);
    }
    let mut local = RangeSet::<N>::new();

    // Pass 1: each core's memory home. While it runs, `out[i].span` holds the
    // rank of the best home found so far for core `i` (`NONE`, `OWN` or
    // `OTHER`) and its distance, and `memory_node` that home.
    const NONE: u64 = 0;
    const OWN: u64 = 1;
    const OTHER: u64 = 2;
    for slot in out.iter_mut() {
        *slot = NumaSpan {
            span: (NONE, 0),
            memory_node: 0,
        };
    }
    for node in memory_nodes(node_memory) {
        node_usable(usable, node_memory, node, &mut local)?;
        let frames = local.total() / FRAME_SIZE;
        let own = core_nodes.iter().filter(|&&n| n == node).count() as u64;
        if frames == 0 || frames < own {
            continue;
        }
        for (slot, &core_node) in out.iter_mut().zip(core_nodes) {
            let (rank, far) = if core_node == node {
                (OWN, 0)
            } else {
                (OTHER, u64::from(distance(core_node, node)))
            };
            let best = (slot.span.0, slot.span.1, slot.memory_node);
            if best.0 == NONE || (rank, far, node) < best {
                *slot = NumaSpan {
                    span: (rank, far),
                    memory_node: node,
                };
            }
        }
    }
    if let Some((_, &node)) = out
        .iter()
        .zip(core_nodes)
        .find(|(slot, _)| slot.span.0 == NONE)
    {
        return Err(NumaCarveError::NoMemoryHome { node });
    }

    // Pass 2: carve each home's usable memory among the cores homed on it.
    for node in memory_nodes(node_memory) {
        let cores = out.iter().filter(|slot| slot.memory_node == node).count();
        if cores == 0 {
            continue;
        }
        node_usable(usable, node_memory, node, &mut local)?;
        let frames = local.total() / FRAME_SIZE;
        let short = NumaCarveError::NotEnoughMemory {
            node,
            frames,
            cores,
        };
        if frames < cores as u64 {
            return Err(short);
        }
        let mut spans = carve(&local, cores);
        for slot in out.iter_mut().filter(|slot| slot.memory_node == node) {
            slot.span = spans.next().ok_or(short)?;
        }
    }

    // Pass 3: a span may cover a hole in its node's memory; no other node's
    // usable memory may sit in it.
    for slot in out.iter() {
        let (start, end) = slot.span;
        for &(range_start, range_end, other) in node_memory {
            if other == slot.memory_node {
                continue;
            }
            let (lo, hi) = (
                align_up(range_start).max(start),
                align_down(range_end).min(end),
            );
            if lo < hi && usable.iter().any(|(s, e)| s.max(lo) < e.min(hi)) {
                return Err(NumaCarveError::Interleaved {
                    node: slot.memory_node,
                    other,
                });
            }
        }
    }
    debug_assert!(out.iter().enumerate().all(|(i, a)| {
        out[i + 1..]
            .iter()
            .all(|b| a.span.1 <= b.span.0 || b.span.1 <= a.span.0)
    }));
    Ok(())
}

/// The nodes that have memory ranges, each once, in order of first appearance.
fn memory_nodes(node_memory: &[(u64, u64, u32)]) -> impl Iterator<Item = u32> + '_ {
    node_memory
        .iter()
        .enumerate()
        .filter(|&(index, &(_, _, node))| !node_memory[..index].iter().any(|r| r.2 == node))
        .map(|(_, &(_, _, node))| node)
}

/// Fills `local` with the usable frames on `node`.
fn node_usable<const N: usize>(
    usable: &RangeSet<N>,
    node_memory: &[(u64, u64, u32)],
    node: u32,
    local: &mut RangeSet<N>,
) -> Result<(), NumaCarveError> {
    local.clear();
    for &(start, end, _) in node_memory.iter().filter(|range| range.2 == node) {
        let (start, end) = (align_up(start), align_down(end));
        for (usable_start, usable_end) in usable.iter() {
            let (s, e) = (usable_start.max(start), usable_end.min(end));
            if s < e {
                local.insert(s, e).map_err(|RangeSetFull { capacity }| {
                    NumaCarveError::RangeSetFull { node, capacity }
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::format;
    use std::vec;
    use std::vec::Vec;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn usable_of<const N: usize>(ranges: &[(u64, u64)]) -> RangeSet<N> {
        let mut set = RangeSet::new();
        for &(start, end) in ranges {
            set.insert(start, end).unwrap();
        }
        set
    }

    fn acpi_default(from: u32, to: u32) -> u8 {
        if from == to { 10 } else { 20 }
    }

    fn run<const N: usize>(
        usable: &RangeSet<N>,
        node_memory: &[(u64, u64, u32)],
        core_nodes: &[u32],
        distance: impl Fn(u32, u32) -> u8,
    ) -> Result<Vec<NumaSpan>, NumaCarveError> {
        let mut out = vec![NumaSpan::default(); core_nodes.len()];
        carve_numa(usable, node_memory, core_nodes, distance, &mut out)?;
        Ok(out)
    }

    fn span(start: u64, end: u64, memory_node: u32) -> NumaSpan {
        NumaSpan {
            span: (start, end),
            memory_node,
        }
    }

    #[test]
    fn two_nodes_split_evenly() {
        let usable = usable_of::<8>(&[(0, 8 * GIB)]);
        let nodes = [(0, 4 * GIB, 0), (4 * GIB, 8 * GIB, 1)];
        let out = run(&usable, &nodes, &[0, 0, 1, 1], acpi_default).unwrap();
        assert_eq!(
            out,
            [
                span(0, 2 * GIB, 0),
                span(2 * GIB, 4 * GIB, 0),
                span(4 * GIB, 6 * GIB, 1),
                span(6 * GIB, 8 * GIB, 1),
            ]
        );
    }

    #[test]
    fn four_nodes_split_evenly_in_core_order() {
        let usable = usable_of::<8>(&[(0, 4 * GIB)]);
        // Listed out of address order, as an SRAT may.
        let nodes = [
            (3 * GIB, 4 * GIB, 3),
            (0, GIB, 0),
            (2 * GIB, 3 * GIB, 2),
            (GIB, 2 * GIB, 1),
        ];
        let out = run(&usable, &nodes, &[3, 2, 1, 0, 0, 1, 2, 3], acpi_default).unwrap();
        let half = GIB / 2;
        assert_eq!(
            out,
            [
                span(3 * GIB, 3 * GIB + half, 3),
                span(2 * GIB, 2 * GIB + half, 2),
                span(GIB, GIB + half, 1),
                span(0, half, 0),
                span(half, GIB, 0),
                span(GIB + half, 2 * GIB, 1),
                span(2 * GIB + half, 3 * GIB, 2),
                span(3 * GIB + half, 4 * GIB, 3),
            ]
        );
    }

    #[test]
    fn asymmetric_core_counts_and_node_sizes() {
        let usable = usable_of::<8>(&[(0, 7 * GIB)]);
        let nodes = [(0, 6 * GIB, 0), (6 * GIB, 7 * GIB, 1)];
        let out = run(&usable, &nodes, &[1, 0, 0, 0], acpi_default).unwrap();
        assert_eq!(
            out,
            [
                span(6 * GIB, 7 * GIB, 1),
                span(0, 2 * GIB, 0),
                span(2 * GIB, 4 * GIB, 0),
                span(4 * GIB, 6 * GIB, 0),
            ]
        );
    }

    /// A SLIT-like table, deliberately asymmetric: node 3 has no memory.
    fn slit(from: u32, to: u32) -> u8 {
        const TABLE: [[u8; 4]; 4] = [
            [10, 20, 20, 11],
            [20, 10, 20, 12],
            [20, 20, 10, 13],
            [30, 25, 15, 10],
        ];
        TABLE[from as usize][to as usize]
    }

    #[test]
    fn a_memoryless_node_homes_on_the_nearest_node_by_its_own_distances() {
        let usable = usable_of::<8>(&[(0, 3 * GIB)]);
        let nodes = [(0, GIB, 0), (GIB, 2 * GIB, 1), (2 * GIB, 3 * GIB, 2)];
        // From node 3, node 2 is nearest (15); from the others' side node 0
        // would be (11), which must not matter.
        let out = run(&usable, &nodes, &[3, 0, 2, 1, 3], slit).unwrap();
        let third = (GIB / 3) & !(FRAME_SIZE - 1);
        let frames = GIB / FRAME_SIZE;
        assert_eq!(
            frames % 3,
            1,
            "the first of three spans gets one frame more"
        );
        assert_eq!(
            out,
            [
                span(2 * GIB, 2 * GIB + third + FRAME_SIZE, 2),
                span(0, GIB, 0),
                span(
                    2 * GIB + third + FRAME_SIZE,
                    2 * GIB + 2 * third + FRAME_SIZE,
                    2
                ),
                span(GIB, 2 * GIB, 1),
                span(2 * GIB + 2 * third + FRAME_SIZE, 3 * GIB, 2),
            ]
        );
    }

    #[test]
    fn ties_in_distance_go_to_the_lowest_node_id() {
        let usable = usable_of::<8>(&[(0, 3 * GIB)]);
        // Node 2 listed first: the tie is broken by id, not table order.
        let nodes = [(2 * GIB, 3 * GIB, 2), (GIB, 2 * GIB, 1), (0, GIB, 0)];
        let distance = |from: u32, to: u32| match (from, to) {
            (7, 0) => 30,
            (7, _) => 15,
            _ => acpi_default(from, to),
        };
        let out = run(&usable, &nodes, &[7, 1], distance).unwrap();
        assert_eq!(out[0].memory_node, 1);
        assert_eq!(out[1].memory_node, 1);
        assert_eq!(out[0].span, (GIB, GIB + GIB / 2));
        // Equal distances everywhere: node 0.
        let out = run(&usable, &nodes, &[7], |_, _| 20).unwrap();
        assert_eq!(out, [span(0, GIB, 0)]);
    }

    #[test]
    fn a_node_too_small_for_its_cores_hands_them_to_the_nearest_node() {
        // Node 1 has one usable frame for its two cores.
        let usable = usable_of::<8>(&[(0, GIB), (GIB, GIB + FRAME_SIZE)]);
        let nodes = [(0, GIB, 0), (GIB, 2 * GIB, 1)];
        let out = run(&usable, &nodes, &[0, 1, 1], acpi_default).unwrap();
        assert!(out.iter().all(|pool| pool.memory_node == 0));
        assert_eq!(out[2].span.1, GIB);
        // Two frames are enough for two cores, one each.
        let usable = usable_of::<8>(&[(0, GIB), (GIB, GIB + 2 * FRAME_SIZE)]);
        let out = run(&usable, &nodes, &[0, 1, 1], acpi_default).unwrap();
        assert_eq!(out[1], span(GIB, GIB + FRAME_SIZE, 1));
        assert_eq!(out[2], span(GIB + FRAME_SIZE, GIB + 2 * FRAME_SIZE, 1));
    }

    #[test]
    fn too_little_memory_even_after_fallback_is_an_error() {
        let usable = usable_of::<8>(&[(0, 2 * FRAME_SIZE), (GIB, 2 * GIB)]);
        let nodes = [(0, GIB, 0), (GIB, 2 * GIB, 1)];
        // Node 0 can home its own core; node 2 has no memory and is nearer
        // to node 0 than to node 1, which leaves node 0 short.
        let distance = |from: u32, to: u32| if (from, to) == (2, 0) { 12 } else { 20 };
        assert_eq!(
            run(&usable, &nodes, &[0, 2, 2, 1], distance),
            Err(NumaCarveError::NotEnoughMemory {
                node: 0,
                frames: 2,
                cores: 3
            })
        );
        // No node with memory enough even for its own cores.
        let usable = usable_of::<8>(&[(0, FRAME_SIZE), (GIB, GIB + FRAME_SIZE)]);
        assert_eq!(
            run(&usable, &nodes, &[2, 0, 0, 1, 1], acpi_default),
            Err(NumaCarveError::NoMemoryHome { node: 2 })
        );
        // Usable memory entirely outside the SRAT's ranges.
        let usable = usable_of::<8>(&[(4 * GIB, 5 * GIB)]);
        assert_eq!(
            run(&usable, &nodes, &[0], acpi_default),
            Err(NumaCarveError::NoMemoryHome { node: 0 })
        );
    }

    #[test]
    fn interleaved_nodes_are_an_error_unless_the_spans_fall_apart() {
        let usable = usable_of::<8>(&[(0, 8 * GIB)]);
        let nodes = [
            (0, 2 * GIB, 0),
            (2 * GIB, 4 * GIB, 1),
            (4 * GIB, 6 * GIB, 0),
            (6 * GIB, 8 * GIB, 1),
        ];
        assert_eq!(
            run(&usable, &nodes, &[0, 1], acpi_default),
            Err(NumaCarveError::Interleaved { node: 0, other: 1 })
        );
        // Two cores a node: each span stays on one block.
        let out = run(&usable, &nodes, &[0, 1, 0, 1], acpi_default).unwrap();
        assert_eq!(
            out,
            [
                span(0, 2 * GIB, 0),
                span(2 * GIB, 4 * GIB, 1),
                span(4 * GIB, 6 * GIB, 0),
                span(6 * GIB, 8 * GIB, 1),
            ]
        );
        // A node without cores in a hole of another still counts.
        let nodes = [(0, GIB, 0), (GIB, 2 * GIB, 5), (2 * GIB, 3 * GIB, 0)];
        assert_eq!(
            run(&usable, &nodes, &[0], acpi_default),
            Err(NumaCarveError::Interleaved { node: 0, other: 5 })
        );
        // ... unless its memory there is not usable.
        let usable = usable_of::<8>(&[(0, GIB), (2 * GIB, 3 * GIB)]);
        let out = run(&usable, &nodes, &[0], acpi_default).unwrap();
        assert_eq!(out, [span(0, 3 * GIB, 0)]);
    }

    #[test]
    fn overlapping_node_ranges_are_an_error() {
        let usable = usable_of::<8>(&[(0, 8 * GIB)]);
        let nodes = [(0, 4 * GIB, 0), (3 * GIB, 8 * GIB, 1)];
        assert_eq!(
            run(&usable, &nodes, &[0, 1], acpi_default),
            Err(NumaCarveError::Interleaved { node: 0, other: 1 })
        );
    }

    #[test]
    fn usable_holes_are_respected() {
        // As the kernel leaves it: nothing below 1 MiB, a reserved range and
        // the PCI hole on node 0, and node 1's boundary off a frame.
        let mut usable = usable_of::<8>(&[(0x1000, 0x9f000), (MIB, 3 * GIB), (4 * GIB, 6 * GIB)]);
        usable.remove(0, MIB).unwrap();
        usable.remove(16 * MIB, 16 * MIB + 0x5000).unwrap();
        let boundary = 4 * GIB + GIB / 2 + 0x800;
        let nodes = [(0, boundary, 0), (boundary, 8 * GIB, 1)];
        let out = run(&usable, &nodes, &[0, 0, 1], acpi_default).unwrap();
        let node0_frames = (3 * GIB - MIB - 0x5000 + GIB / 2) / FRAME_SIZE;
        let usable_frames = |(start, end): (u64, u64)| {
            usable
                .iter()
                .map(|(s, e)| e.min(end).saturating_sub(s.max(start)))
                .sum::<u64>()
                / FRAME_SIZE
        };
        assert_eq!(out[0].span.0, MIB);
        assert_eq!(usable_frames(out[0].span), node0_frames.div_ceil(2));
        assert_eq!(usable_frames(out[1].span), node0_frames / 2);
        assert_eq!(out[0].span.1, out[1].span.0);
        // The frame that straddles the boundary is on neither node.
        assert_eq!(out[1].span.1, 4 * GIB + GIB / 2);
        assert_eq!(out[2], span(4 * GIB + GIB / 2 + FRAME_SIZE, 6 * GIB, 1));
        // A node whose memory is all reserved is memoryless.
        let usable = usable_of::<8>(&[(MIB, 4 * GIB)]);
        let out = run(&usable, &nodes, &[1], acpi_default).unwrap();
        assert_eq!(out, [span(MIB, 4 * GIB, 0)]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let usable = usable_of::<2>(&[(0, GIB)]);
        let nodes = [(0, MIB, 0), (2 * MIB, 3 * MIB, 0), (4 * MIB, 5 * MIB, 0)];
        assert_eq!(
            run(&usable, &nodes, &[0], acpi_default),
            Err(NumaCarveError::RangeSetFull {
                node: 0,
                capacity: 2
            })
        );
        assert_eq!(
            run(&usable, &[], &[0], acpi_default),
            Err(NumaCarveError::NoNodeMemory)
        );
        let mut out = [NumaSpan::default(); 1];
        assert_eq!(
            carve_numa(&usable, &nodes[..1], &[0, 0], acpi_default, &mut out),
            Err(NumaCarveError::OutputLength { cores: 2, out: 1 })
        );
        assert_eq!(run(&usable, &nodes[..1], &[], acpi_default), Ok(vec![]));
    }

    #[test]
    fn errors_display() {
        let shown = format!(
            "{}",
            NumaCarveError::NotEnoughMemory {
                node: 1,
                frames: 3,
                cores: 4
            }
        );
        assert_eq!(
            shown,
            "NUMA node 1 has 3 usable frames for the 4 cores it homes"
        );
        for error in [
            NumaCarveError::OutputLength { cores: 1, out: 2 },
            NumaCarveError::NoNodeMemory,
            NumaCarveError::RangeSetFull {
                node: 0,
                capacity: 1,
            },
            NumaCarveError::NoMemoryHome { node: 0 },
            NumaCarveError::Interleaved { node: 0, other: 1 },
        ] {
            assert!(!format!("{error}").is_empty());
        }
    }

    /// A frame-by-frame model of the rules, with a heap: what `carve_numa`
    /// should return.
    fn model(
        usable: &RangeSet<64>,
        node_memory: &[(u64, u64, u32)],
        core_nodes: &[u32],
        distance: &dyn Fn(u32, u32) -> u8,
    ) -> Result<Vec<NumaSpan>, NumaCarveError> {
        if node_memory.is_empty() {
            return Err(NumaCarveError::NoNodeMemory);
        }
        let is_usable = |frame: u64| {
            usable
                .iter()
                .any(|(s, e)| s <= frame * FRAME_SIZE && (frame + 1) * FRAME_SIZE <= e)
        };
        let in_range = |frame: u64, &(s, e, _): &(u64, u64, u32)| {
            s <= frame * FRAME_SIZE && (frame + 1) * FRAME_SIZE <= e
        };
        let last_frame = usable
            .iter()
            .map(|(_, e)| e / FRAME_SIZE)
            .max()
            .unwrap_or(0);
        let local = |node: u32| -> BTreeSet<u64> {
            (0..last_frame)
                .filter(|&f| is_usable(f))
                .filter(|&f| node_memory.iter().any(|r| r.2 == node && in_range(f, r)))
                .collect()
        };
        let mut nodes: Vec<u32> = Vec::new();
        for r in node_memory {
            if !nodes.contains(&r.2) {
                nodes.push(r.2);
            }
        }
        let can_home = |node: u32| {
            let own = core_nodes.iter().filter(|&&n| n == node).count();
            let frames = local(node).len();
            frames >= own.max(1)
        };
        let homes: Vec<u32> = nodes.iter().copied().filter(|&n| can_home(n)).collect();
        let mut out = Vec::new();
        for &core_node in core_nodes {
            let home = if homes.contains(&core_node) {
                core_node
            } else {
                let Some(&home) = homes.iter().min_by_key(|&&m| (distance(core_node, m), m)) else {
                    return Err(NumaCarveError::NoMemoryHome { node: core_node });
                };
                home
            };
            out.push(span(0, 0, home));
        }
        for &node in &nodes {
            let cores = out.iter().filter(|p| p.memory_node == node).count();
            if cores == 0 {
                continue;
            }
            let frames = local(node);
            if frames.len() < cores {
                return Err(NumaCarveError::NotEnoughMemory {
                    node,
                    frames: frames.len() as u64,
                    cores,
                });
            }
            let mut set = RangeSet::<64>::new();
            for &f in &frames {
                set.insert(f * FRAME_SIZE, (f + 1) * FRAME_SIZE).unwrap();
            }
            let spans: Vec<_> = carve(&set, cores).collect();
            for (pool, span) in out.iter_mut().filter(|p| p.memory_node == node).zip(spans) {
                pool.span = span;
            }
        }
        for pool in &out {
            for r in node_memory.iter().filter(|r| r.2 != pool.memory_node) {
                let (s, e) = pool.span;
                if (s / FRAME_SIZE..e / FRAME_SIZE).any(|f| is_usable(f) && in_range(f, r)) {
                    return Err(NumaCarveError::Interleaved {
                        node: pool.memory_node,
                        other: r.2,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Node ranges in half frames: laid out one after another (nodes may
    /// still interleave), or anywhere (they may overlap too).
    fn node_layout() -> impl Strategy<Value = Vec<(u64, u64, u32)>> {
        const HALF: u64 = FRAME_SIZE / 2;
        let in_a_row =
            proptest::collection::vec((0u64..6, 1u64..48, 0u32..4), 0..8).prop_map(|blocks| {
                let mut at = 0;
                blocks
                    .into_iter()
                    .map(|(gap, len, node)| {
                        at += gap;
                        let range = (at * HALF, (at + len) * HALF, node);
                        at += len;
                        range
                    })
                    .collect()
            });
        let anywhere =
            proptest::collection::vec((0u64..160, 1u64..64, 0u32..4), 0..6).prop_map(|ranges| {
                ranges
                    .into_iter()
                    .map(|(start, len, node)| (start * HALF, (start + len) * HALF, node))
                    .collect()
            });
        prop_oneof![3 => in_a_row, 1 => anywhere]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn carve_numa_follows_the_model_and_keeps_its_promises(
            raw_usable in proptest::collection::vec((0u64..96, 1u64..24), 1..10),
            holes in proptest::collection::vec((0u64..96, 1u64..4), 0..4),
            node_memory in node_layout(),
            core_nodes in proptest::collection::vec(0u32..6, 1..10),
            table in proptest::array::uniform6(proptest::array::uniform6(10u8..40)),
        ) {
            let mut usable = RangeSet::<64>::new();
            for (start, len) in raw_usable {
                usable.insert(start * FRAME_SIZE, (start + len) * FRAME_SIZE).unwrap();
            }
            for (start, len) in holes {
                usable.remove(start * FRAME_SIZE, (start + len) * FRAME_SIZE).unwrap();
            }
            let distance = |from: u32, to: u32| table[from as usize][to as usize];
            let got = run(&usable, &node_memory, &core_nodes, distance);
            prop_assert_eq!(&got, &model(&usable, &node_memory, &core_nodes, &distance));
            let Ok(out) = got else { return Ok(()) };

            let is_usable = |f: u64| usable.iter().any(|(s, e)| s <= f * FRAME_SIZE && (f + 1) * FRAME_SIZE <= e);
            let on = |f: u64, node: u32| node_memory.iter().any(|&(s, e, n)| {
                n == node && s <= f * FRAME_SIZE && (f + 1) * FRAME_SIZE <= e
            });
            for (i, pool) in out.iter().enumerate() {
                let (s, e) = pool.span;
                let m = pool.memory_node;
                prop_assert!(s < e && s % FRAME_SIZE == 0 && e % FRAME_SIZE == 0, "{:?}", pool);
                let (first, last) = (s / FRAME_SIZE, e / FRAME_SIZE - 1);
                prop_assert!(is_usable(first) && on(first, m) && is_usable(last) && on(last, m), "{:?}", pool);
                for f in first..=last {
                    prop_assert!(
                        !is_usable(f) || !node_memory.iter().any(|r| r.2 != m && on(f, r.2)),
                        "core {} span {:?} holds frame {} of another node", i, pool, f
                    );
                }
                // The own node whenever it can be a home.
                let own = core_nodes[i];
                let own_cores = core_nodes.iter().filter(|&&n| n == own).count() as u64;
                let own_frames = (0..256).filter(|&f| is_usable(f) && on(f, own)).count() as u64;
                prop_assert_eq!(m == own, own_frames >= own_cores.max(1));
                for other in &out[i + 1..] {
                    prop_assert!(e <= other.span.0 || other.span.1 <= s, "{:?} and {:?} overlap", pool, other);
                }
            }
            for &(_, _, node) in &node_memory {
                let homed: Vec<_> = out.iter().filter(|p| p.memory_node == node).collect();
                if homed.is_empty() {
                    continue;
                }
                let on_node: Vec<u64> = (0..256).filter(|&f| is_usable(f) && on(f, node)).collect();
                let counts: Vec<usize> = homed
                    .iter()
                    .map(|p| on_node.iter().filter(|&&f| p.span.0 <= f * FRAME_SIZE && f * FRAME_SIZE < p.span.1).count())
                    .collect();
                // Disjoint spans, so this says each frame on the node is in exactly one.
                prop_assert_eq!(counts.iter().sum::<usize>(), on_node.len());
                prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{:?}", counts);
                for pair in homed.windows(2) {
                    prop_assert!(pair[0].span.1 <= pair[1].span.0);
                }
            }
        }

        #[test]
        fn separate_nodes_with_memory_enough_always_succeed(
            sizes in proptest::collection::vec(1u64..64, 1..6),
            picks in proptest::collection::vec(any::<proptest::sample::Index>(), 1..12),
        ) {
            let mut node_memory = Vec::new();
            let mut at = MIB;
            for (node, &frames) in sizes.iter().enumerate() {
                node_memory.push((at, at + frames * FRAME_SIZE, node as u32));
                at += (frames + 1) * FRAME_SIZE;
            }
            let usable = usable_of::<64>(&[(0, at)]);
            let mut core_nodes: Vec<u32> = picks.iter().map(|p| p.index(sizes.len()) as u32).collect();
            // Only as many cores on a node as it has frames.
            core_nodes.retain({
                let mut seen = vec![0; sizes.len()];
                move |&n| { seen[n as usize] += 1; seen[n as usize] <= sizes[n as usize] }
            });
            let out = run(&usable, &node_memory, &core_nodes, acpi_default).unwrap();
            for (pool, &node) in out.iter().zip(&core_nodes) {
                prop_assert_eq!(pool.memory_node, node);
            }
        }
    }
}
