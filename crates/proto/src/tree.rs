//! Routing trees for multicast rounds, given as data.
//!
//! A tree is a list of groups. The initiator sends to each group's
//! aggregator; the aggregator applies the payload, forwards it to the
//! group's members, and acknowledges for the whole group once they have
//! acknowledged. [`Tree::build`] makes the three shapes the shootdown
//! benchmark compares, and a host may make any other tree by hand.

use crate::NodeId;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Which tree a round travels; see [`Tree::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// The initiator sends to every target itself, and every target
    /// acknowledges to it.
    Unicast,
    /// One aggregator, chosen without regard to the topology, fans out to
    /// every other target.
    Flat,
    /// One aggregator per domain (NUMA node or package) fans out within its
    /// domain.
    ByDomain,
}

/// The route of a round, as messages carry it: which set of targets (an id
/// the host's [`Cluster`](crate::Cluster) resolves, such as an address
/// space whose holders are the targets) and which shape of tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub set: u32,
    pub shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// Receives the payload from the initiator, applies it, and forwards it
    /// to `members`.
    pub aggregator: NodeId,
    pub members: Vec<NodeId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tree {
    pub groups: Vec<Group>,
}

impl Tree {
    /// The tree of `shape` over `targets` for a round that `initiator`
    /// starts; `domain_of` gives each target's domain for
    /// [`Shape::ByDomain`]. Duplicate targets count once.
    ///
    /// The initiator, when it is a target, is always an aggregator, so it
    /// applies the payload without a message travelling: in its own group
    /// for `Unicast` and `Flat`, and leading its domain for `ByDomain`.
    /// Otherwise the lowest id leads, so every node derives the same tree.
    pub fn build(
        shape: Shape,
        initiator: NodeId,
        targets: &[NodeId],
        domain_of: impl Fn(NodeId) -> u32,
    ) -> Tree {
        let mut targets = targets.to_vec();
        targets.sort_unstable();
        targets.dedup();
        let partitions: Vec<Vec<NodeId>> = match shape {
            Shape::Unicast => targets.into_iter().map(|t| alloc::vec![t]).collect(),
            Shape::Flat => {
                let (own, others): (Vec<NodeId>, Vec<NodeId>) =
                    targets.into_iter().partition(|&t| t == initiator);
                [own, others]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect()
            }
            Shape::ByDomain => {
                let mut domains: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();
                for target in targets {
                    domains.entry(domain_of(target)).or_default().push(target);
                }
                domains.into_values().collect()
            }
        };
        let groups = partitions
            .into_iter()
            .map(|mut nodes| {
                let lead = nodes.iter().position(|&n| n == initiator).unwrap_or(0);
                let aggregator = nodes.remove(lead);
                Group {
                    aggregator,
                    members: nodes,
                }
            })
            .collect();
        Tree { groups }
    }

    /// Every target: the aggregators and their members.
    pub fn targets(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.groups
            .iter()
            .flat_map(|g| core::iter::once(g.aggregator).chain(g.members.iter().copied()))
    }

    /// The group `node` leads, if it is an aggregator.
    pub fn group_led_by(&self, node: NodeId) -> Option<&Group> {
        self.groups.iter().find(|g| g.aggregator == node)
    }

    /// The aggregator that forwards to `node`, if `node` is a member.
    pub fn aggregator_of(&self, node: NodeId) -> Option<NodeId> {
        self.groups
            .iter()
            .find(|g| g.members.contains(&node))
            .map(|g| g.aggregator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn ids(raw: &[u16]) -> Vec<NodeId> {
        raw.iter().map(|&n| NodeId(n)).collect()
    }

    #[test]
    fn unicast_makes_one_group_per_target() {
        let tree = Tree::build(Shape::Unicast, NodeId(0), &ids(&[2, 0, 1]), |_| 0);
        let aggregators: Vec<_> = tree.groups.iter().map(|g| g.aggregator).collect();
        assert_eq!(aggregators, ids(&[0, 1, 2]));
        assert!(tree.groups.iter().all(|g| g.members.is_empty()));
    }

    #[test]
    fn flat_puts_the_initiator_alone_and_one_aggregator_over_the_rest() {
        let tree = Tree::build(Shape::Flat, NodeId(2), &ids(&[0, 1, 2, 3]), |_| 0);
        assert_eq!(
            tree.groups,
            vec![
                Group {
                    aggregator: NodeId(2),
                    members: vec![]
                },
                Group {
                    aggregator: NodeId(0),
                    members: ids(&[1, 3])
                },
            ]
        );
    }

    #[test]
    fn by_domain_leads_each_domain_and_the_initiator_leads_its_own() {
        // Domains: 0,1,2 in domain 0; 3,4 in domain 1; 5 alone in domain 7.
        let domain = |n: NodeId| match n.0 {
            0..=2 => 0,
            3 | 4 => 1,
            _ => 7,
        };
        let tree = Tree::build(
            Shape::ByDomain,
            NodeId(1),
            &ids(&[0, 1, 2, 3, 4, 5]),
            domain,
        );
        assert_eq!(
            tree.groups,
            vec![
                Group {
                    aggregator: NodeId(1),
                    members: ids(&[0, 2])
                },
                Group {
                    aggregator: NodeId(3),
                    members: ids(&[4])
                },
                Group {
                    aggregator: NodeId(5),
                    members: vec![]
                },
            ]
        );
        assert_eq!(tree.aggregator_of(NodeId(4)), Some(NodeId(3)));
        assert_eq!(tree.aggregator_of(NodeId(3)), None);
        assert_eq!(
            tree.group_led_by(NodeId(5)).map(|g| g.members.len()),
            Some(0)
        );
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Unicast),
            Just(Shape::Flat),
            Just(Shape::ByDomain)
        ]
    }

    proptest! {
        /// Every target is in the tree exactly once, nothing else is, and
        /// the initiator, when a target, is an aggregator.
        #[test]
        fn every_target_exactly_once(
            shape in shape(),
            initiator in 0u16..8,
            raw in prop::collection::vec(0u16..8, 0..12),
            domains in prop::collection::vec(0u32..3, 8),
        ) {
            let targets = ids(&raw);
            let tree = Tree::build(shape, NodeId(initiator), &targets, |n| domains[usize::from(n.0)]);
            let mut seen: Vec<NodeId> = tree.targets().collect();
            seen.sort_unstable();
            let mut expected = targets.clone();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(seen, expected);
            if targets.contains(&NodeId(initiator)) {
                prop_assert!(tree.group_led_by(NodeId(initiator)).is_some());
            }
            if shape == Shape::ByDomain {
                for group in &tree.groups {
                    let domain = domains[usize::from(group.aggregator.0)];
                    prop_assert!(group.members.iter().all(|m| domains[usize::from(m.0)] == domain));
                }
            }
        }
    }
}
