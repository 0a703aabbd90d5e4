//! Routing trees for multicast rounds, given as data.
//!
//! A tree is a list of groups. The initiator sends to each group's
//! aggregator, in the tree's order; the aggregator applies the payload,
//! forwards it to the group's members, in their order, and acknowledges for
//! the whole group once they have acknowledged. A member may lead a group
//! of its own (a subgroup), which it serves the same way, so a tree may
//! have any depth. [`Tree::build`] makes the three shapes the shootdown
//! benchmark compares, the topology-aware one from a [`TreePlan`], and a
//! host may make any other tree by hand.

use crate::CoreId;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Which tree a round travels; see [`Tree::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// The initiator sends to every target itself, and every target
    /// acknowledges to it. Ignores the plan.
    Unicast,
    /// One aggregator, chosen without regard to the topology, fans out to
    /// every other target. Ignores the plan.
    Flat,
    /// The topology-aware tree that a [`TreePlan`] describes: the groups the
    /// plan gives for the initiator, in the plan's order, each cut down to
    /// the targets it holds (groups left empty are dropped). A group's
    /// aggregator is the initiator when it is in the group, otherwise the
    /// first of the group's targets in the plan's order, and the others are
    /// its members in the plan's order, shaped by the plan's fan-out (see
    /// [`TreePlan::set_fan_out`]). Targets the plan does not place (all of
    /// them when it has no entry for the initiator) follow as groups of
    /// their own, in ascending id, so a plan never loses a target.
    Planned,
}

impl Shape {
    /// Every shape, in the order of their wire bytes (see [`wire`](crate::wire)).
    pub const ALL: [Shape; 3] = [Shape::Unicast, Shape::Flat, Shape::Planned];
}

/// The route of a round, as messages carry it: which set of targets (an id
/// the host's [`Cluster`](crate::Cluster) resolves, such as an address
/// space whose holders are the targets) and which shape of tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub set: u32,
    pub shape: Shape,
}

/// A core of a tree and the cores it forwards to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// Receives the payload, applies it, and forwards it to `members`, in
    /// their order.
    pub aggregator: CoreId,
    /// Each a core that receives the payload from the aggregator, with the
    /// members it forwards to in turn (none for a plain member).
    pub members: Vec<Group>,
}

impl Group {
    /// A core that forwards to nobody.
    pub fn leaf(core: CoreId) -> Group {
        Group {
            aggregator: core,
            members: Vec::new(),
        }
    }

    /// The cores of the group: its aggregator, and its members' groups.
    pub fn size(&self) -> u16 {
        1 + self.members.iter().map(Group::size).sum::<u16>()
    }

    /// Levels below the aggregator: 0 for a plain member, 1 for a group of
    /// plain members, and one more for each level of subgroups.
    pub fn height(&self) -> u16 {
        self.members
            .iter()
            .map(|member| member.height() + 1)
            .max()
            .unwrap_or(0)
    }

    /// Every core of the group, the aggregator first, then each member's
    /// group in turn.
    pub fn cores(&self) -> Vec<CoreId> {
        let mut cores = Vec::new();
        self.push_cores(&mut cores);
        cores
    }

    fn push_cores(&self, cores: &mut Vec<CoreId>) {
        cores.push(self.aggregator);
        for member in &self.members {
            member.push_cores(cores);
        }
    }

    /// The group `core` leads within this one (itself, when it is the
    /// aggregator).
    fn find(&self, core: CoreId) -> Option<&Group> {
        if self.aggregator == core {
            return Some(self);
        }
        self.members.iter().find_map(|member| member.find(core))
    }

    /// The core that forwards to `core` within this group.
    fn parent_of(&self, core: CoreId) -> Option<CoreId> {
        if self.members.iter().any(|m| m.aggregator == core) {
            return Some(self.aggregator);
        }
        self.members
            .iter()
            .find_map(|member| member.parent_of(core))
    }

    /// The group of `cores` (in order, the first leading) shaped so that no
    /// core forwards to more than `fan_out` plain members: the cores are
    /// cut into runs of `fan_out`, each led by its first core, which
    /// forwards to the rest of its run; the runs' leaders form a group
    /// shaped the same way, led by the first core. So a long list becomes a
    /// tree of depth about log base `fan_out` of its length, and cores next
    /// to each other in the list (the plan lists the cores of a cache
    /// together) end up in one run. A leader forwards to the leaders below
    /// it first, since their subtrees take longest, then to its run.
    fn shaped(cores: &[CoreId], fan_out: usize) -> Group {
        if cores.len() <= fan_out + 1 {
            return Group {
                aggregator: cores[0],
                members: cores[1..].iter().copied().map(Group::leaf).collect(),
            };
        }
        let runs: Vec<&[CoreId]> = cores.chunks(fan_out).collect();
        let leaders: Vec<CoreId> = runs.iter().map(|run| run[0]).collect();
        let mut top = Group::shaped(&leaders, fan_out);
        top.attach_runs(&runs);
        top
    }

    /// Gives every leader of `runs` in this group the rest of its run as
    /// plain members, after the leaders it forwards to.
    fn attach_runs(&mut self, runs: &[&[CoreId]]) {
        for member in &mut self.members {
            member.attach_runs(runs);
        }
        if let Some(run) = runs.iter().find(|run| run[0] == self.aggregator) {
            self.members
                .extend(run[1..].iter().copied().map(Group::leaf));
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tree {
    /// In the order the initiator sends to them.
    pub groups: Vec<Group>,
}

/// For each initiator, the groups of the topology-aware tree over all
/// cores, which [`Shape::Planned`] cuts down to a round's targets, and the
/// fan-out that shapes each group.
///
/// A root's groups are listed in the order its initiator sends to them (the
/// kernel's plan puts the farthest, by measured latency, first). Each
/// group's cores are listed in order of preference for its aggregator, then
/// in the order the aggregator forwards to them: the first core that is a
/// target aggregates, unless the initiator itself is in the group.
///
/// The plan is data, so every core that is given the same plan derives the
/// same trees. A core listed twice for one initiator counts where it is
/// first listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TreePlan {
    roots: BTreeMap<CoreId, Vec<Vec<CoreId>>>,
    fan_out: Option<usize>,
}

impl TreePlan {
    /// The empty plan: every `Planned` tree has a group per target, like
    /// `Unicast`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the groups of `initiator`'s trees, replacing any it had: in the
    /// order it sends to them, each with its preferred aggregator first and
    /// then the members in the order the aggregator forwards to them.
    pub fn set_root(&mut self, initiator: CoreId, groups: Vec<Vec<CoreId>>) {
        self.roots.insert(initiator, groups);
    }

    /// Shapes every planned group so that no core forwards to more than
    /// `fan_out` (at least 2) plain members: a larger group becomes a tree
    /// of subgroups (see [`Group`]). `None`, the default, keeps each group
    /// flat: its aggregator forwards to every member itself.
    pub fn set_fan_out(&mut self, fan_out: Option<usize>) {
        self.fan_out = fan_out.map(|k| k.max(2));
    }

    /// The fan-out [`Self::set_fan_out`] set.
    pub fn fan_out(&self) -> Option<usize> {
        self.fan_out
    }

    /// The groups planned for `initiator`; empty when it has none.
    pub fn groups(&self, initiator: CoreId) -> &[Vec<CoreId>] {
        self.roots.get(&initiator).map_or(&[], Vec::as_slice)
    }

    /// The rule of fixed domains, for tests and the simulator: core `i` (for
    /// every `i` in `0..domains.len()`) is in domain `domains[i]`, and every
    /// core, as a root, has one group per domain, in ascending domain
    /// order, with the cores in ascending id. So the initiator leads its own
    /// domain and the lowest target id leads each other one.
    pub fn from_domains(domains: &[u32]) -> Self {
        let cores = (0..domains.len()).map(|i| CoreId(u16::try_from(i).expect("core ids are u16")));
        let mut by_domain: BTreeMap<u32, Vec<CoreId>> = BTreeMap::new();
        for (core, &domain) in cores.clone().zip(domains) {
            by_domain.entry(domain).or_default().push(core);
        }
        let groups: Vec<Vec<CoreId>> = by_domain.into_values().collect();
        let mut plan = Self::new();
        for core in cores {
            plan.set_root(core, groups.clone());
        }
        plan
    }
}

impl Tree {
    /// The tree of `shape` over `targets` for a round that `initiator`
    /// starts; `plan` gives the groups for [`Shape::Planned`] (see there),
    /// and the other shapes ignore it. Duplicate targets count once, and
    /// every target is in exactly one group.
    ///
    /// The initiator, when it is a target, is always the aggregator of a
    /// group of the tree's top level, so it applies the payload without a
    /// message travelling: in its own group for `Unicast` and `Flat`, and
    /// leading its planned group (or its own group, when the plan does not
    /// place it) for `Planned`. Otherwise `Flat` takes the lowest id as the
    /// aggregator and `Planned` the first target of each planned group, so
    /// every core given the same plan derives the same tree.
    ///
    /// - `Unicast`: one group per target, in ascending id.
    /// - `Flat`: the initiator alone (when a target), then one group of all
    ///   the other targets, in ascending id.
    /// - `Planned`: the initiator's planned groups, in the plan's order,
    ///   each holding the targets the plan puts in it (members in the plan's
    ///   order, shaped by its fan-out; groups without targets dropped); then
    ///   every target the plan does not place, alone, in ascending id.
    pub fn build(shape: Shape, initiator: CoreId, targets: &[CoreId], plan: &TreePlan) -> Tree {
        let mut targets = targets.to_vec();
        targets.sort_unstable();
        targets.dedup();
        let partitions: Vec<Vec<CoreId>> = match shape {
            Shape::Unicast => targets.into_iter().map(|t| alloc::vec![t]).collect(),
            Shape::Flat => {
                let (own, others): (Vec<CoreId>, Vec<CoreId>) =
                    targets.into_iter().partition(|&t| t == initiator);
                [own, others]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect()
            }
            Shape::Planned => {
                let mut placed = alloc::vec![false; targets.len()];
                let mut partitions = Vec::new();
                for planned in plan.groups(initiator) {
                    let mut cores = Vec::new();
                    for core in planned {
                        if let Ok(at) = targets.binary_search(core)
                            && !placed[at]
                        {
                            placed[at] = true;
                            cores.push(*core);
                        }
                    }
                    if !cores.is_empty() {
                        partitions.push(cores);
                    }
                }
                let unplaced = targets.iter().zip(&placed).filter(|(_, placed)| !**placed);
                partitions.extend(unplaced.map(|(&t, _)| alloc::vec![t]));
                partitions
            }
        };
        let fan_out = match shape {
            Shape::Planned => plan.fan_out,
            Shape::Unicast | Shape::Flat => None,
        };
        let groups = partitions
            .into_iter()
            .map(|mut cores| {
                let lead = cores.iter().position(|&n| n == initiator).unwrap_or(0);
                cores[..=lead].rotate_right(1);
                Group::shaped(&cores, fan_out.unwrap_or(cores.len()))
            })
            .collect();
        Tree { groups }
    }

    /// Every target: each group's cores, group by group.
    pub fn targets(&self) -> impl Iterator<Item = CoreId> + '_ {
        let mut cores = Vec::new();
        for group in &self.groups {
            group.push_cores(&mut cores);
        }
        cores.into_iter()
    }

    /// The group `core` leads, if it is a target: its own members, and
    /// none for a plain member.
    pub fn group_led_by(&self, core: CoreId) -> Option<&Group> {
        self.groups.iter().find_map(|group| group.find(core))
    }

    /// The core that forwards to `core`, if `core` is a member of a group.
    pub fn aggregator_of(&self, core: CoreId) -> Option<CoreId> {
        self.groups.iter().find_map(|group| group.parent_of(core))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testnet::{ids, shape};
    use alloc::vec;
    use proptest::prelude::*;

    fn group(aggregator: u16, members: &[u16]) -> Group {
        Group {
            aggregator: CoreId(aggregator),
            members: ids(members).into_iter().map(Group::leaf).collect(),
        }
    }

    fn nest(aggregator: u16, members: Vec<Group>) -> Group {
        Group {
            aggregator: CoreId(aggregator),
            members,
        }
    }

    #[test]
    fn a_fan_out_shapes_a_large_group_into_runs_under_their_leaders() {
        let mut plan = TreePlan::new();
        plan.set_root(CoreId(0), vec![(0..10).map(CoreId).collect()]);
        plan.set_fan_out(Some(3));
        let tree = Tree::build(
            Shape::Planned,
            CoreId(0),
            &(0..10).map(CoreId).collect::<Vec<_>>(),
            &plan,
        );
        // Runs [0 1 2] [3 4 5] [6 7 8] [9]; their leaders 0 3 6 9 are no
        // more than 3 + 1, so 0 forwards to them, then to its own run.
        let expected = nest(
            0,
            vec![
                nest(3, vec![Group::leaf(CoreId(4)), Group::leaf(CoreId(5))]),
                nest(6, vec![Group::leaf(CoreId(7)), Group::leaf(CoreId(8))]),
                group(9, &[]),
                Group::leaf(CoreId(1)),
                Group::leaf(CoreId(2)),
            ],
        );
        assert_eq!(tree.groups, vec![expected]);
        assert_eq!(tree.groups[0].size(), 10);
        assert_eq!(tree.groups[0].height(), 2);
        assert_eq!(Group::leaf(CoreId(1)).height(), 0);
        assert_eq!(tree.aggregator_of(CoreId(8)), Some(CoreId(6)));
        assert_eq!(tree.aggregator_of(CoreId(6)), Some(CoreId(0)));
        assert_eq!(
            tree.group_led_by(CoreId(3)).map(Group::size),
            Some(3),
            "a subgroup is found at any depth"
        );
        // Twenty cores: seven leaders, cut again into [0 3 6] [9 12 15]
        // [18], so the tree is three deep.
        plan.set_root(CoreId(0), vec![(0..20).map(CoreId).collect()]);
        let twenty: Vec<CoreId> = (0..20).map(CoreId).collect();
        let tree = Tree::build(Shape::Planned, CoreId(0), &twenty, &plan);
        let top: Vec<CoreId> = tree.groups[0]
            .members
            .iter()
            .map(|m| m.aggregator)
            .collect();
        assert_eq!(top, ids(&[9, 18, 3, 6, 1, 2]));
        assert_eq!(tree.aggregator_of(CoreId(13)), Some(CoreId(12)));
        assert_eq!(tree.aggregator_of(CoreId(12)), Some(CoreId(9)));
        assert_eq!(tree.aggregator_of(CoreId(9)), Some(CoreId(0)));
        // Another initiator in the group leads it, and the shape follows.
        let tree = Tree::build(Shape::Planned, CoreId(5), &ids(&[0, 1, 2, 5]), &{
            let mut plan = TreePlan::new();
            plan.set_root(CoreId(5), vec![ids(&[0, 1, 2, 5])]);
            plan.set_fan_out(Some(2));
            plan
        });
        assert_eq!(
            tree.groups,
            vec![nest(5, vec![group(1, &[2]), Group::leaf(CoreId(0))])]
        );
        // Unicast and flat ignore the fan-out.
        let tree = Tree::build(Shape::Flat, CoreId(0), &ids(&[0, 1, 2, 3, 4]), &plan);
        assert_eq!(tree.groups, vec![group(0, &[]), group(1, &[2, 3, 4])]);
    }

    #[test]
    fn unicast_makes_one_group_per_target() {
        let plan = TreePlan::from_domains(&[0, 1, 0]);
        let tree = Tree::build(Shape::Unicast, CoreId(0), &ids(&[2, 0, 1]), &plan);
        let aggregators: Vec<_> = tree.groups.iter().map(|g| g.aggregator).collect();
        assert_eq!(aggregators, ids(&[0, 1, 2]));
        assert!(tree.groups.iter().all(|g| g.members.is_empty()));
    }

    #[test]
    fn flat_puts_the_initiator_alone_and_one_aggregator_over_the_rest() {
        let plan = TreePlan::from_domains(&[1, 0, 1, 0]);
        let tree = Tree::build(Shape::Flat, CoreId(2), &ids(&[0, 1, 2, 3]), &plan);
        assert_eq!(tree.groups, vec![group(2, &[]), group(0, &[1, 3])]);
    }

    #[test]
    fn planned_leads_each_domain_and_the_initiator_leads_its_own() {
        // Domains: 0,1,2 in domain 7; 3,4 in domain 1; 5 alone in domain 0.
        let plan = TreePlan::from_domains(&[7, 7, 7, 1, 1, 0]);
        let tree = Tree::build(Shape::Planned, CoreId(1), &ids(&[0, 1, 2, 3, 4, 5]), &plan);
        assert_eq!(
            tree.groups,
            vec![group(5, &[]), group(3, &[4]), group(1, &[0, 2])]
        );
        assert_eq!(tree.aggregator_of(CoreId(4)), Some(CoreId(3)));
        assert_eq!(tree.aggregator_of(CoreId(3)), None);
        assert_eq!(
            tree.group_led_by(CoreId(5)).map(|g| g.members.len()),
            Some(0)
        );
    }

    #[test]
    fn planned_follows_the_plan_in_group_and_member_order() {
        let mut plan = TreePlan::new();
        // From core 0: the farthest group first, each led by its first core
        // that is a target, members in the order given.
        plan.set_root(
            CoreId(0),
            vec![ids(&[6, 9, 7, 8]), ids(&[5, 3, 4]), ids(&[2, 0, 1])],
        );
        let targets = ids(&[0, 1, 2, 3, 4, 5, 7, 8, 9]);
        let tree = Tree::build(Shape::Planned, CoreId(0), &targets, &plan);
        assert_eq!(
            tree.groups,
            vec![group(9, &[7, 8]), group(5, &[3, 4]), group(0, &[2, 1])]
        );
        // Another initiator of the same plan has no entry: every target is
        // a group of its own, in ascending id.
        let tree = Tree::build(Shape::Planned, CoreId(3), &ids(&[4, 3, 1]), &plan);
        assert_eq!(
            tree.groups,
            vec![group(1, &[]), group(3, &[]), group(4, &[])]
        );
    }

    #[test]
    fn planned_keeps_targets_the_plan_omits_and_counts_a_core_once() {
        let mut plan = TreePlan::new();
        plan.set_root(
            CoreId(4),
            vec![ids(&[3, 1]), ids(&[]), ids(&[7]), ids(&[1, 2, 3])],
        );
        // 7 is not a target, so its group is dropped; 1 and 3 count in the
        // first group; 0 and the initiator are not placed.
        let tree = Tree::build(Shape::Planned, CoreId(4), &ids(&[0, 1, 2, 3, 4, 1]), &plan);
        assert_eq!(
            tree.groups,
            vec![group(3, &[1]), group(2, &[]), group(0, &[]), group(4, &[])]
        );
    }

    #[test]
    fn from_domains_plans_every_core_alike() {
        let plan = TreePlan::from_domains(&[2, 0, 2, 1]);
        for root in 0..4 {
            assert_eq!(
                plan.groups(CoreId(root)),
                [ids(&[1]), ids(&[3]), ids(&[0, 2])]
            );
        }
        assert!(plan.groups(CoreId(4)).is_empty());
        assert!(TreePlan::new().groups(CoreId(0)).is_empty());
        assert_eq!(TreePlan::from_domains(&[]), TreePlan::new());
    }

    /// A plan over cores 0..8 for some of them: each root's groups may
    /// leave cores out, list a core twice, or hold cores past 7.
    fn plan() -> impl Strategy<Value = TreePlan> {
        let groups = prop::collection::vec(prop::collection::vec(0u16..10, 0..5), 0..5);
        prop::collection::btree_map(0u16..8, groups, 0..8).prop_map(|roots| {
            let mut plan = TreePlan::new();
            for (root, groups) in roots {
                let groups = groups.iter().map(|g| ids(g)).collect();
                plan.set_root(CoreId(root), groups);
            }
            plan
        })
    }

    /// Either a random plan or one of domains (every core placed), flat
    /// or with a fan-out.
    fn any_plan() -> impl Strategy<Value = TreePlan> {
        let plan = prop_oneof![
            plan(),
            prop::collection::vec(0u32..3, 0..9).prop_map(|d| TreePlan::from_domains(&d)),
        ];
        (plan, prop::option::of(2usize..5)).prop_map(|(mut plan, fan_out)| {
            plan.set_fan_out(fan_out);
            plan
        })
    }

    proptest! {
        /// Every target is in the tree exactly once, nothing else is, and
        /// the initiator, when a target, is an aggregator.
        #[test]
        fn every_target_exactly_once(
            shape in shape(),
            initiator in 0u16..8,
            raw in prop::collection::vec(0u16..8, 0..12),
            plan in any_plan(),
        ) {
            let targets = ids(&raw);
            let tree = Tree::build(shape, CoreId(initiator), &targets, &plan);
            let mut seen: Vec<CoreId> = tree.targets().collect();
            seen.sort_unstable();
            let mut expected = targets.clone();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(seen, expected);
            if targets.contains(&CoreId(initiator)) {
                prop_assert!(tree.groups.iter().any(|g| g.aggregator == CoreId(initiator)));
            }
            let sizes: u16 = tree.groups.iter().map(Group::size).sum();
            prop_assert_eq!(usize::from(sizes), tree.targets().count());
        }

        /// A `Planned` tree is the plan cut down to the targets: each group
        /// keeps the order of the plan's cores (the initiator moved to the
        /// front), the groups keep the plan's order, and the unplaced
        /// targets follow alone in ascending id.
        #[test]
        fn planned_trees_follow_the_plan(
            initiator in 0u16..8,
            raw in prop::collection::vec(0u16..8, 0..12),
            plan in any_plan(),
        ) {
            let initiator = CoreId(initiator);
            let targets = ids(&raw);
            let tree = Tree::build(Shape::Planned, initiator, &targets, &plan);
            // Where each core is first planned: (group, position).
            let mut first: BTreeMap<CoreId, (usize, usize)> = BTreeMap::new();
            for (g, cores) in plan.groups(initiator).iter().enumerate() {
                for (at, &n) in cores.iter().enumerate() {
                    first.entry(n).or_insert((g, at));
                }
            }
            let mut last_planned = None;
            let mut last_unplanned = None;
            for group in &tree.groups {
                let Some(&(g, _)) = first.get(&group.aggregator) else {
                    prop_assert!(group.members.is_empty());
                    prop_assert!(last_unplanned < Some(group.aggregator));
                    last_unplanned = Some(group.aggregator);
                    continue;
                };
                prop_assert!(last_unplanned.is_none(), "planned groups come first");
                prop_assert!(last_planned < Some(g), "in the plan's order");
                last_planned = Some(g);
                let cores = group.cores();
                let positions: Vec<(usize, usize)> = cores.iter().map(|n| first[n]).collect();
                prop_assert!(positions.iter().all(|&(of, _)| of == g));
                let mut order = cores.clone();
                order.sort_by_key(|n| first[n].1);
                if cores.contains(&initiator) {
                    prop_assert_eq!(group.aggregator, initiator);
                    order.retain(|&n| n != initiator);
                    order.insert(0, initiator);
                }
                match plan.fan_out() {
                    None => prop_assert_eq!(order, cores, "in the plan's order"),
                    Some(fan_out) => {
                        // Shaped: the same cores, the aggregator first, and
                        // no core forwarding to more plain members than the
                        // fan-out.
                        prop_assert_eq!(order[0], cores[0]);
                        let mut sorted = cores.clone();
                        sorted.sort_unstable();
                        order.sort_unstable();
                        prop_assert_eq!(order, sorted);
                        fn widest(group: &Group) -> usize {
                            let leaves = group.members.iter().filter(|m| m.members.is_empty()).count();
                            group.members.iter().map(widest).fold(leaves, usize::max)
                        }
                        prop_assert!(widest(group) <= fan_out);
                    }
                }
            }
        }
    }
}
