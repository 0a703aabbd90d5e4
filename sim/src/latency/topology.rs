//! Machines as knowledge-base facts, and the cost of moving a cache line
//! between two of their cores.
//!
//! A machine is the boot facts a kernel would gather on it (`core`,
//! `core_node`, `distance` and `cache` of level 3, as `atoll-skb`'s crate
//! documentation defines them), loaded into a [`KnowledgeBase`]. The model
//! reads the machine back from that knowledge base by queries, so a machine
//! described by facts from elsewhere (a real boot's) models the same way.
//!
//! The SLIT's distances are read as hops: 10 is a node's own memory and
//! every further 6 is one hop of the interconnect (the AMD convention, 10,
//! 16, 22 for zero, one and two hops), rounded to the nearest hop.

use std::collections::BTreeMap;

use atoll_skb::{Answer, KnowledgeBase, Limits, Value};

/// Table 1 of the multikernel paper (Baumann et al., HotOS 2009), in
/// cycles: reading a line held in another core's L1/L2 on the same die, or
/// in a cache one or two hops of the interconnect away.
pub const OTHER_CORE_ON_DIE: u64 = 130;
pub const ONE_HOP: u64 = 190;
pub const TWO_HOPS: u64 = 260;
/// A line in this core's own L1 (Table 1).
pub const OWN_L1: u64 = 2;
/// Not in Table 1, assumed: a core of the same node that shares no L3 with
/// the reader (a chiplet of its own), between the die's 130 and a hop's 190.
pub const SAME_NODE_OTHER_L3: u64 = 160;

/// SLIT distance of a node to itself, and per hop further.
const LOCAL_DISTANCE: i64 = 10;
const DISTANCE_PER_HOP: i64 = 6;

/// A machine's cores and how far apart they are, as read from its facts.
#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    /// The NUMA node of each core, by core id.
    pub node: Vec<u16>,
    /// The level-3 cache instance of each core, by core id.
    pub l3: Vec<i64>,
    /// Hops between nodes, by `(from, to)`.
    hops: BTreeMap<(u16, u16), u64>,
}

impl Topology {
    /// The machine the facts in `kb` describe: cores `0..n` with a node
    /// each, a distance between every two nodes, and a level-3 cache per
    /// core.
    pub fn from_facts(name: &str, kb: &mut KnowledgeBase) -> Result<Topology, String> {
        let ask = |kb: &mut KnowledgeBase, query: &str| {
            kb.query(query).map_err(|error| format!("{query}: {error}"))
        };
        let int = |answer: &Answer, variable: &str| match answer.get(variable) {
            Some(Value::Int(value)) => Ok(*value),
            _ => Err(format!("{variable} is not a number in {answer:?}")),
        };
        let mut node = BTreeMap::new();
        for answer in ask(kb, "core(C, _), core_node(C, N)")? {
            node.insert(int(&answer, "C")?, int(&answer, "N")?);
        }
        let cores = node.len();
        if node.keys().copied().ne(0..cores as i64) {
            return Err(format!(
                "{name}: the cores are not numbered 0 to {}",
                cores.saturating_sub(1)
            ));
        }
        let node: Vec<u16> = node
            .into_values()
            .map(|n| u16::try_from(n).map_err(|_| format!("node {n} out of range")))
            .collect::<Result<_, _>>()?;
        let mut l3 = vec![None; cores];
        for answer in ask(kb, "cache(C, 3, _, _, I)")? {
            let core = int(&answer, "C")?;
            if let Some(slot) = l3.get_mut(core as usize) {
                *slot = Some(int(&answer, "I")?);
            }
        }
        let l3 = l3
            .into_iter()
            .enumerate()
            .map(|(core, cache)| cache.ok_or_else(|| format!("{name}: core {core} has no L3 fact")))
            .collect::<Result<_, _>>()?;
        let mut hops = BTreeMap::new();
        for answer in ask(kb, "distance(A, B, D)")? {
            let (a, b, distance) = (int(&answer, "A")?, int(&answer, "B")?, int(&answer, "D")?);
            if distance < LOCAL_DISTANCE {
                return Err(format!(
                    "{name}: distance({a}, {b}, {distance}) is below {LOCAL_DISTANCE}"
                ));
            }
            let hop_count = (distance - LOCAL_DISTANCE + DISTANCE_PER_HOP / 2) / DISTANCE_PER_HOP;
            hops.insert((a as u16, b as u16), hop_count as u64);
        }
        for &a in &node {
            for &b in &node {
                if !hops.contains_key(&(a, b)) {
                    return Err(format!("{name}: no distance from node {a} to {b}"));
                }
            }
        }
        Ok(Topology {
            name: name.to_owned(),
            node,
            l3,
            hops,
        })
    }

    pub fn cores(&self) -> usize {
        self.node.len()
    }

    /// Hops of the interconnect between the nodes of cores `a` and `b`.
    pub fn hops(&self, a: usize, b: usize) -> u64 {
        self.hops[&(self.node[a], self.node[b])]
    }

    /// Cycles for core `b` to get a line core `a` last wrote: Table 1's
    /// cost by where `a` is from `b`, with hops past two each adding the
    /// difference between two hops and one (70 cycles).
    pub fn transfer(&self, a: usize, b: usize) -> u64 {
        if a == b {
            return OWN_L1;
        }
        match self.hops(a, b) {
            0 if self.l3[a] == self.l3[b] => OTHER_CORE_ON_DIE,
            0 => SAME_NODE_OTHER_L3,
            hops => ONE_HOP + (hops - 1) * (TWO_HOPS - ONE_HOP),
        }
    }
}

/// Facts for a machine of `nodes.len()` nodes with `per_node` cores each,
/// `per_l3` cores to an L3, and the given hops between nodes (a square
/// matrix); loaded into a knowledge base with room for them.
pub fn machine_facts(per_node: usize, per_l3: usize, hops: &[Vec<u64>]) -> KnowledgeBase {
    let mut text = String::new();
    let nodes = hops.len();
    for core in 0..nodes * per_node {
        let node = core / per_node;
        text += &format!(
            "core({core}, {core}).\ncore_node({core}, {node}).\ncache({core}, 3, unified, 8388608, {}).\n",
            core / per_l3
        );
    }
    for (a, row) in hops.iter().enumerate() {
        for (b, &hop_count) in row.iter().enumerate() {
            let distance = LOCAL_DISTANCE + DISTANCE_PER_HOP * hop_count as i64;
            text += &format!("distance({a}, {b}, {distance}).\n");
        }
    }
    let mut kb = KnowledgeBase::with_limits(Limits {
        facts: 10_000_000,
        ..Limits::default()
    });
    kb.load(&text).expect("generated facts parse");
    kb
}

/// Hops between the nodes of a graph given by its links, by breadth-first
/// search.
pub fn hops_of_links(nodes: usize, links: &[(usize, usize)]) -> Vec<Vec<u64>> {
    (0..nodes)
        .map(|from| {
            let mut hops = vec![u64::MAX; nodes];
            hops[from] = 0;
            let mut frontier = vec![from];
            while !frontier.is_empty() {
                let mut next = Vec::new();
                for &at in &frontier {
                    for &(a, b) in links {
                        for (x, y) in [(a, b), (b, a)] {
                            if x == at && hops[y] == u64::MAX {
                                hops[y] = hops[at] + 1;
                                next.push(y);
                            }
                        }
                    }
                }
                frontier = next;
            }
            assert!(
                hops.iter().all(|&h| h != u64::MAX),
                "the links connect every node"
            );
            hops
        })
        .collect()
}

/// The machines the model runs: its name, and its facts.
pub fn machines() -> Vec<(&'static str, KnowledgeBase)> {
    // The HotOS paper's 4 × 4-core AMD machine: four sockets in a square,
    // each socket one node with its own L3, so two hops across a diagonal.
    let square = hops_of_links(4, &[(0, 1), (1, 3), (3, 2), (2, 0)]);
    // The SOSP'09 8 × 4-core AMD machine (eight Barcelona sockets on a
    // Tyan board): drawn here as a ladder of two rows of four whose ends
    // are joined crosswise, three links a socket, so that any two sockets
    // are at most two hops apart.
    let ladder = hops_of_links(
        8,
        &[
            (0, 1),
            (2, 3),
            (4, 5),
            (6, 7),
            (0, 2),
            (2, 4),
            (4, 6),
            (1, 3),
            (3, 5),
            (5, 7),
            (0, 7),
            (1, 6),
        ],
    );
    // Two sockets of 64 cores, an L3 per eight cores, one hop apart.
    let pair = hops_of_links(2, &[(0, 1)]);
    // Sixteen such sockets as a 4 × 4 torus: up to four hops apart.
    let mut torus = Vec::new();
    for row in 0..4 {
        for column in 0..4 {
            let at = row * 4 + column;
            torus.push((at, row * 4 + (column + 1) % 4));
            torus.push((at, ((row + 1) % 4) * 4 + column));
        }
    }
    let torus = hops_of_links(16, &torus);
    vec![
        ("amd-4x4", machine_facts(4, 4, &square)),
        ("amd-8x4", machine_facts(4, 4, &ladder)),
        ("2x64", machine_facts(64, 8, &pair)),
        ("16x64", machine_facts(64, 8, &torus)),
    ]
}

/// The machine of [`machines`] called `name`, and its facts.
pub fn machine(name: &str) -> Option<(Topology, KnowledgeBase)> {
    let (_, kb) = machines().into_iter().find(|(n, _)| *n == name)?;
    let topology = Topology::from_facts(name, &mut kb.clone()).ok()?;
    Some((topology, kb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(name: &str) -> Topology {
        super::machine(name).unwrap().0
    }

    #[test]
    fn costs_follow_table_1() {
        let square = machine("amd-4x4");
        assert_eq!(square.cores(), 16);
        assert_eq!(square.transfer(0, 0), OWN_L1);
        assert_eq!(square.transfer(0, 3), OTHER_CORE_ON_DIE);
        assert_eq!(square.transfer(0, 4), ONE_HOP);
        assert_eq!(
            square.transfer(0, 12),
            TWO_HOPS,
            "across the square's diagonal"
        );
        let big = machine("16x64");
        assert_eq!(big.cores(), 1024);
        assert_eq!(big.transfer(0, 7), OTHER_CORE_ON_DIE, "one L3");
        assert_eq!(
            big.transfer(0, 8),
            SAME_NODE_OTHER_L3,
            "the next L3 of the node"
        );
        assert_eq!(big.hops(0, 10 * 64), 4, "the torus's far corner");
        assert_eq!(big.transfer(0, 10 * 64), ONE_HOP + 3 * 70);
    }

    #[test]
    fn the_ladder_is_two_hops_across() {
        let ladder = machine("amd-8x4");
        assert_eq!(ladder.cores(), 32);
        let widest = (0..32)
            .flat_map(|a| (0..32).map(move |b| (a, b)))
            .map(|(a, b)| ladder.hops(a, b))
            .max();
        assert_eq!(widest, Some(2));
        assert_eq!(ladder.hops(0, 4 * 7), 1, "the ends are joined crosswise");
    }

    #[test]
    fn bad_facts_are_named() {
        let mut kb = KnowledgeBase::new();
        kb.load("core(0, 0). core_node(0, 0). core(2, 2). core_node(2, 0).")
            .unwrap();
        let error = Topology::from_facts("gap", &mut kb).unwrap_err();
        assert!(error.contains("not numbered 0 to 1"), "{error:?}");
        let mut kb = KnowledgeBase::new();
        kb.load("core(0, 0). core_node(0, 0). distance(0, 0, 10).")
            .unwrap();
        let error = Topology::from_facts("no cache", &mut kb).unwrap_err();
        assert!(error.contains("unknown predicate `cache`"), "{error:?}");
        let mut kb = KnowledgeBase::new();
        kb.load("core(0, 0). core_node(0, 0). cache(1, 3, unified, 1, 0). distance(0, 0, 10).")
            .unwrap();
        let error = Topology::from_facts("no cache of core 0", &mut kb).unwrap_err();
        assert!(error.contains("core 0 has no L3"), "{error:?}");
    }
}
