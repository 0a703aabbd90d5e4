//! The trees the model routes `Planned` rounds by, from the knowledge base.
//!
//! [`kernel_plan`] is the kernel's: the topology rules of `atoll-skb`
//! (`topology::RULES`, one group per NUMA node) over the machine's facts
//! and the round trips and send costs the model gives for them, read by
//! the same `atoll_monitor::skb::tree_plan` the kernel's monitor installs
//! its plan with. Without its fan-out, it is the NUMA tree of the
//! multikernel paper, every group flat.

use atoll_proto::TreePlan;
use atoll_replica::CoreId;
use atoll_skb::{KnowledgeBase, Value, topology};

use super::costs::Costs;
use super::topology::Topology;

/// What a parent in a multicast tree is busy with per child, as the
/// model's clock charges it: the send and its line, then the child's
/// acknowledgement's line and its handling.
pub fn per_child(topology: &Topology, costs: &Costs, parent: usize, child: usize) -> u64 {
    costs.send + 2 * topology.transfer(parent, child) + costs.handle
}

/// The kernel's multicast tree from core 0 over the first `cores` cores of
/// the machine in `kb`, with the round trips from core 0 the model gives
/// as `urpc_rtt` facts (the kernel measures them at boot) and core 0's
/// median cost per child as its `urpc_send` fact (the kernel measures
/// none). Without round trips measured from the aggregators, each sends to
/// its members in ascending id.
///
/// Only the tree from core 0 is derived: the knowledge base is given core
/// 0's `core` fact and no other core's, which the rules need only to make
/// the trees of other roots (on 1024 cores, a million facts).
pub fn kernel_plan(
    machine: &KnowledgeBase,
    topology: &Topology,
    costs: &Costs,
    cores: usize,
) -> Result<TreePlan, String> {
    let mut kb = KnowledgeBase::with_limits(machine.limits());
    let mut facts = machine.clone();
    let wanted = |values: &[Value]| match values.first() {
        Some(Value::Int(core)) => (*core as usize) < cores,
        _ => true,
    };
    for (predicate, values) in facts.facts(None).map_err(|error| error.to_string())? {
        let keep = match predicate.as_str() {
            "core" => values.first() == Some(&Value::Int(0)),
            "core_node" | "cache" => wanted(&values),
            _ => true,
        };
        if keep {
            kb.add_fact(&predicate, values)
                .map_err(|error| error.to_string())?;
        }
    }
    // A URPC round trip as the model prices it is two messages, each what
    // a parent is busy with per child.
    let mut per_child: Vec<u64> = (1..cores)
        .map(|child| self::per_child(topology, costs, 0, child))
        .collect();
    for (core, cost) in (1..cores).zip(&per_child) {
        kb.add_fact(
            "urpc_rtt",
            vec![
                Value::Int(0),
                Value::Int(core as i64),
                Value::Int(2 * *cost as i64),
            ],
        )
        .map_err(|error| error.to_string())?;
    }
    if cores > 1 {
        per_child.sort_unstable();
        let median = per_child[per_child.len() / 2] as i64;
        kb.add_fact("urpc_send", vec![Value::Int(0), Value::Int(median)])
            .map_err(|error| error.to_string())?;
    }
    kb.load(topology::RULES)
        .map_err(|error| error.to_string())?;
    atoll_monitor::skb::tree_plan(&mut kb, [CoreId(0)].into_iter())
        .map_err(|error| error.to_string())
}
