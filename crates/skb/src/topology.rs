//! Topology rules over the boot facts, and the NUMA-aware multicast tree
//! they define.
//!
//! [`RULES`] is program text: load it into a [`KnowledgeBase`] that holds
//! the boot facts, and query its predicates like any others. It defines:
//!
//! | Predicate | Holds when |
//! |---|---|
//! | `node_core(N, C)` | core `C` is on node `N` (`core_node` turned around, for lookups) |
//! | `cache_user(Level, Kind, Instance, C)` | core `C` uses that physical cache |
//! | `same_node(A, B)` | distinct cores `A` and `B` are on one NUMA node |
//! | `shares_cache(A, B, Level, Kind)` | distinct cores `A` and `B` use one physical cache |
//! | `closer(R, C)` | a core of `C`'s node is nearer to `R` than `C`, or as near and lower-numbered |
//! | `aggregator(R, N, A)` | in the multicast tree from `R`, core `A` leads node `N`'s group |
//! | `member(R, A, C)` | in that tree, aggregator `A` forwards to core `C` |
//! | `memory_affinity_known()` | the SRAT gave memory ranges (`mem_node` facts) |
//! | `channels_in(C, Base, N)` | core `C`'s channel buffers at `Base` lie in node `N`'s memory |
//! | `channels_home(C, N)` | some of core `C`'s channel buffers lie in node `N`'s memory |
//! | `misplaced_channels(C)` | some of core `C`'s channel buffers lie outside its node's memory |
//! | `span_in(C, Base, N)`, `span_home(C, N)`, `misplaced_span(C)` | the same for core `C`'s frame pool |
//! | `measured_node(R, N)` | `R` has measured a round trip to some core of node `N` |
//! | `lower_in_node(C)` | another core of `C`'s node has a lower number |
//! | `distance_from(R, N, D)` | node `N` is at SLIT distance `D` from core `R`'s node |
//!
//! The multicast tree from root `R` reaches the cores in two hops: `R`
//! sends to one core of each other node, the node's aggregator (the core
//! with the lowest `urpc_rtt` from `R`, the lowest-numbered of those tied),
//! which forwards to the rest of its node; `R` sends to the rest of its own
//! node itself. In a node where `R` has measured some cores, a core belongs
//! to the tree only if `R` has measured it (`urpc_rtt(R, C, _)`); a node
//! where `R` has measured none (a machine too large to measure every pair)
//! belongs whole, led by its lowest-numbered core; `R`'s own node belongs
//! whole. The placement checks only flag
//! anything when there are `mem_node` facts, since without an SRAT no
//! memory is known to be on any node. The rules file explains each choice.
//!
//! [`fan_out`] picks how wide the trees' subgroups are from what a message
//! costs against its latency, so that a large group becomes a tree of
//! subgroups rather than one aggregator sending to every core.
//!
//! [`format_fact`] writes a boot fact as program text, so that facts one core
//! gathers can be loaded into the other cores' knowledge bases.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::{Error, Fact, KnowledgeBase, Value};

/// The topology rules, as program text for [`KnowledgeBase::load`].
pub const RULES: &str = include_str!("topology.dl");

/// A fact as program text without its closing period, such as
/// `core_node(3, 1)` or `cpu(0, "AuthenticAMD", 25, 17, 1)`: the form in
/// which boot facts travel between replicas and are shown. Each, followed by
/// a period, loads back as the same fact (see [`Fact`]).
pub fn format_fact(predicate: &str, values: &[Value]) -> String {
    Fact { predicate, values }.to_string()
}

/// One group of a multicast tree: a node's cores, led by its aggregator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeGroup {
    /// The NUMA node.
    pub node: i64,
    /// The core that receives the message from the root and forwards it to
    /// the members: the root itself in the root's own group.
    pub aggregator: i64,
    /// The round trip from the root to the aggregator, in cycles; `None`
    /// for the root's own group, and for a node the root has not measured.
    pub rtt: Option<i64>,
    /// The other cores of the group, each with the round trip from the
    /// aggregator to it if one was measured, in the order the aggregator
    /// sends to them: farthest first, then the unmeasured by ascending id.
    pub members: Vec<(i64, Option<i64>)>,
}

impl TreeGroup {
    /// The group's cores as a multicast plan lists them: the aggregator,
    /// then the members in the order it sends to them.
    pub fn cores(&self) -> impl Iterator<Item = i64> + '_ {
        core::iter::once(self.aggregator).chain(self.members.iter().map(|&(core, _)| core))
    }
}

/// The multicast tree from core `root`, as the groups the `aggregator` and
/// `member` rules of [`RULES`] define, in the order the root sends to them.
///
/// The root sends to the farthest aggregator first (the highest
/// `urpc_rtt(root, aggregator)`, ties by node id; nodes it has not measured
/// after those, the farthest by `distance` first) and serves its own group
/// last, and each aggregator likewise sends to its farthest member first.
/// Sends leave one after another, but travel in parallel: starting the
/// longest trip first lets it overlap all the shorter ones, so the slowest
/// group starts earliest and the whole multicast finishes close to the
/// single longest trip rather than after the sum of the sends. This is the
/// NUMA-aware multicast of the multikernel paper and Barrelfish.
///
/// Empty when no `core_node` fact places `root`. Fails with
/// [`Error::MissingRules`] when [`RULES`] was not loaded into `kb`. This
/// code only orders the answers; which core leads which group is decided by
/// the rules.
pub fn multicast_groups(kb: &mut KnowledgeBase, root: i64) -> Result<Vec<TreeGroup>, Error> {
    Ok(trees(kb, Some(root))?.remove(&root).unwrap_or_default())
}

/// A member of a group, with the aggregator's round trip to it if measured.
type Member = (i64, Option<i64>);

/// Every root's [`multicast_groups`], by root: what the kernel's plan holds.
/// It reads each relation once, where asking root by root would build an
/// answer for every fact (on 128 cores, 16,256 of `member` alone).
pub fn multicast_plan(kb: &mut KnowledgeBase) -> Result<BTreeMap<i64, Vec<TreeGroup>>, Error> {
    trees(kb, None)
}

/// The trees of `only` that root, or of every root.
fn trees(
    kb: &mut KnowledgeBase,
    only: Option<i64>,
) -> Result<BTreeMap<i64, Vec<TreeGroup>>, Error> {
    for predicate in ["aggregator", "member"] {
        if !kb.derives(predicate) {
            return Err(Error::MissingRules {
                rules: "topology::RULES",
                predicate,
            });
        }
    }
    kb.derive(&["aggregator", "member", "urpc_rtt", "distance_from"])?;
    let wanted = |root: i64| only.is_none_or(|only| only == root);
    // Facts whose every value is an integer (the rules bind cores, nodes
    // and cycles only to integers; any other is skipped), as triples.
    let triples = |predicate| {
        kb.relation(predicate).filter_map(|values| match values {
            [Value::Int(a), Value::Int(b), Value::Int(c)] => Some((*a, *b, *c)),
            _ => None,
        })
    };
    let rtt: BTreeMap<(i64, i64), i64> = triples("urpc_rtt").map(|(a, b, l)| ((a, b), l)).collect();
    // By (root, aggregator): its members, each with the aggregator's round
    // trip to it if measured.
    let mut members: BTreeMap<(i64, i64), Vec<Member>> = BTreeMap::new();
    for (root, leader, core) in triples("member").filter(|&(root, _, _)| wanted(root)) {
        let to = rtt.get(&(leader, core)).copied();
        members.entry((root, leader)).or_default().push((core, to));
    }
    let distance: BTreeMap<(i64, i64), i64> = triples("distance_from")
        .filter(|&(root, _, _)| wanted(root))
        .map(|(root, node, d)| ((root, node), d))
        .collect();
    let mut trees: BTreeMap<i64, Vec<TreeGroup>> = BTreeMap::new();
    for (root, node, aggregator) in triples("aggregator").filter(|&(root, _, _)| wanted(root)) {
        let mut members = members.remove(&(root, aggregator)).unwrap_or_default();
        members.sort_by_key(|&(core, rtt)| (rtt.is_none(), Reverse(rtt), core));
        trees.entry(root).or_default().push(TreeGroup {
            node,
            aggregator,
            rtt: (aggregator != root)
                .then(|| rtt.get(&(root, aggregator)).copied())
                .flatten(),
            members,
        });
    }
    for (&root, groups) in &mut trees {
        // Groups whose aggregator the root has not measured come after the
        // measured ones (`Reverse(None)` is the greatest), the farthest by
        // the SLIT's distance first.
        groups.sort_by_key(|group| {
            (
                group.aggregator == root,
                Reverse(group.rtt),
                Reverse(distance.get(&(root, group.node)).copied()),
                group.node,
            )
        });
    }
    Ok(trees)
}

/// The fan-out of the multicast trees: how many plain members a core
/// should forward a round to itself before it hands the rest to subgroup
/// leaders (`atoll_proto::TreePlan::set_fan_out`), from what a message
/// costs against its latency.
///
/// A tree of fan-out `k` over `n` cores is about log base `k` of `n`
/// levels deep. On each level a parent is busy `c` cycles per child (the
/// send, and later taking in the child's acknowledgement), and the round
/// crosses the level twice, down and back, at one-way latency `l`: a level
/// takes about `k c + 2 l`, and the tree `(k c + 2 l) / ln k` times `ln
/// n`. The `k` that minimises it is the fan-out, whatever `n`; it depends
/// only on `c / l`, and the larger the latency against the cost per child,
/// the wider the tree.
///
/// `l` is half the median of every `urpc_rtt`, and `c` the median of the
/// `urpc_send(C, Cycles)` facts (cycles core `C` is busy per child: the
/// latency model gives them). Where either is missing, `c = l`: a core
/// that waits for each line it writes is busy for about a one-way trip per
/// message. That gives 4. Every core computes it from its replica's facts,
/// so cores with equal replicas agree on it, as they must on the whole
/// plan.
pub fn fan_out(kb: &mut KnowledgeBase) -> Result<usize, Error> {
    // Without a measured send cost there is nothing to weigh the round
    // trips against: the ratio is 1, whatever they are.
    let ratio = match median_of(kb, "urpc_send", 1)? {
        Some(send) => match median_of(kb, "urpc_rtt", 2)? {
            Some(rtt) => send as f64 / (rtt as f64 / 2.0),
            None => 1.0,
        },
        None => 1.0,
    };
    let time = |k: usize| (k as f64 * ratio + 2.0) / libm::log(k as f64);
    Ok((2..=MOST_FAN_OUT)
        .min_by(|&a, &b| time(a).total_cmp(&time(b)))
        .unwrap_or(MOST_FAN_OUT))
}

/// The median of the positive integers at argument `at` of `predicate`'s
/// facts; `None` if it has none, or no fact or rule names it.
fn median_of(kb: &mut KnowledgeBase, predicate: &str, at: usize) -> Result<Option<i64>, Error> {
    match kb.derive(&[predicate]) {
        Ok(()) => {}
        Err(Error::UnknownPredicate { .. }) => return Ok(None),
        Err(error) => return Err(error),
    }
    let mut values: Vec<i64> = kb
        .relation(predicate)
        .filter_map(|values| match values.get(at) {
            Some(Value::Int(value)) if *value > 0 => Some(*value),
            _ => None,
        })
        .collect();
    values.sort_unstable();
    Ok(values.get(values.len() / 2).copied())
}

/// The widest fan-out [`fan_out`] picks.
pub const MOST_FAN_OUT: usize = 64;
