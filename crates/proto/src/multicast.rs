//! Multicast over a routing tree, with acknowledgements aggregated on the
//! way back: the single-phase commit.
//!
//! The initiator of a round sends `Request` to each group's aggregator,
//! with `forward: true` when the group has members. A core that receives a
//! request applies it (the [`RoundEvent::Deliver`] event) and, as an
//! aggregator, forwards it to its group's members, each with `forward`
//! set when it leads a subgroup of its own (a tree may be of any depth:
//! [`Group`]). Each core acknowledges to the core that sent it the
//! request once its own members have acknowledged, for itself and its
//! whole subtree. The round is [`RoundEvent::Done`] when every group has
//! acknowledged.
//!
//! Sends follow the tree's order: the initiator's requests go out in the
//! order of the tree's groups, and an aggregator's (or, bypassing a dead
//! aggregator, its parent's) in the order of the group's members, so a
//! [`TreePlan`](crate::TreePlan) that lists the farthest first has their
//! requests leave first.
//!
//! Failures:
//! - An aggregator the membership declares down is bypassed by the core
//!   that sent it the round (the initiator, or the aggregator above it):
//!   that core sends to its members directly (and counts it unreached),
//!   at any depth. A member may then get the payload twice, so payloads
//!   must be idempotent (invalidating a TLB entry is; committing an
//!   already committed proposal is a no-op in
//!   [`two_phase`](crate::two_phase)).
//! - A member that is down, or does not answer within the relay timeout, is
//!   counted unreached in its aggregator's acknowledgement, with its whole
//!   subgroup when it leads one. An aggregator that acknowledged at its
//!   relay timeout keeps tracking the round, as the initiator does, so
//!   that it still bypasses a subgroup's leader that goes down later.
//! - When the round timeout passes, the initiator reports `Done` with the
//!   missing targets counted unreached. It keeps tracking the round until
//!   every group has answered or is down, so that it still bypasses an
//!   aggregator that dies later; a late acknowledgement changes nothing
//!   already reported.
//!
//! Each core holds each answer it waits for to the size its own tree gives
//! the group that answers (`Group::size`), whatever the acknowledgement
//! says: the acknowledged count, capped at that size, counts as acked, and
//! the rest of the group as unreached. An aggregator derives its members
//! from its own [`Cluster`]; if it routes by another plan than the
//! initiator (a misconfiguration, or a plan installed while the round was
//! in flight), it may forward to fewer members than the initiator's tree
//! expects, and the shortfall then shows in the report as unreached
//! instead of the round reporting complete. An aggregator that forwards to
//! more members than expected cannot raise `acked` past the group's size.
//! The check is by count only: an aggregator whose plan swaps one of its
//! members for a target of another group acknowledges the expected number
//! while that member is missed, so the plans must still agree (see
//! `Config::plan` in `atoll-replica`).

use crate::mutants::{self, Mutant};
use crate::{Cluster, CoreId, Group, OpId, Outbox, Report, Route, Tick};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A round's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundMsg<P> {
    /// Apply `payload`. With `forward`, the receiver is an aggregator of
    /// `route`'s tree and passes the payload on to its group's members.
    Request {
        round: OpId,
        route: Route,
        payload: P,
        forward: bool,
    },
    /// The sender's share of the round: itself and, for an aggregator, its
    /// members.
    Ack { round: OpId, report: Report },
}

/// What a round asks of its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundEvent<P> {
    /// This core is a target: apply `payload` now. The acknowledgement is
    /// among the sends of the same input, so apply before sending.
    Deliver { round: OpId, payload: P },
    /// The round this core started is over (or its timeout passed).
    Done { round: OpId, report: Report },
}

/// Timeouts in ticks. `relay` should be shorter than `round`, so that an
/// aggregator reports a silent member before the initiator gives up on the
/// whole group.
///
/// In a tree with subgroups, an aggregator waits `relay` for each level
/// of its group ([`RoundTimeouts::relay_for`]), so that a subgroup's leader
/// reports its own silent members before its parent gives up on the whole
/// subgroup; and the initiator waits at least `relay` more than its
/// deepest aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoundTimeouts {
    pub round: Tick,
    pub relay: Tick,
}

impl RoundTimeouts {
    /// How long an aggregator of a group `height` levels deep (1: its
    /// members are plain) waits for its members.
    pub fn relay_for(&self, height: u16) -> Tick {
        self.relay.saturating_mul(Tick::from(height.max(1)))
    }
}

pub type RoundOutbox<P> = Outbox<RoundMsg<P>, RoundEvent<P>>;

/// One core's part in every multicast round it starts, forwards or receives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Multicast<P> {
    me: CoreId,
    timeouts: RoundTimeouts,
    started: BTreeMap<OpId, Started<P>>,
    relays: BTreeMap<OpId, Relay<P>>,
}

/// A round this core started.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Started<P> {
    fanout: Fanout<P>,
    /// Ticks left before `Done` is reported without the missing answers;
    /// `None` once `Done` has been reported.
    ticks_left: Option<Tick>,
}

/// A round this core forwards as an aggregator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Relay<P> {
    /// The core that sent this core the request, which its
    /// acknowledgement goes to.
    parent: CoreId,
    fanout: Fanout<P>,
    /// Ticks left before it acknowledges without the missing answers;
    /// `None` once it has acknowledged at the relay timeout. It still
    /// tracks the round then, until every answer came or its core is down,
    /// so that it bypasses a subgroup's leader that goes down later: the
    /// leader's members would otherwise never get the payload.
    ticks_left: Option<Tick>,
}

/// What an initiator or an aggregator sent a round to, and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fanout<P> {
    route: Route,
    payload: P,
    awaited: Vec<Awaited>,
    report: Report,
}

/// An answer a round still waits for: the acknowledgement of the group
/// `from` leads (of `targets` targets, counting `from`; 1 for a plain
/// member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Awaited {
    from: CoreId,
    targets: u16,
}

impl Awaited {
    /// What `report`, the answer to this, counts for in the round: held to
    /// the targets the tree of this core gives it. Acknowledgements past
    /// that number count for nothing, and every target the answer does not
    /// acknowledge is unreached, whatever the answer says of it. So an
    /// aggregator that found fewer members than this core's tree gives its
    /// group (it routes by another plan) cannot make the round look
    /// complete, and one that found more cannot count a target twice.
    fn hold_to(self, report: Report) -> Report {
        let acked = report.acked.min(self.targets);
        Report {
            acked,
            unreached: self.targets - acked,
        }
    }
}

impl<P: Copy> Fanout<P> {
    fn new(route: Route, payload: P, report: Report) -> Self {
        Self {
            route,
            payload,
            awaited: Vec::new(),
            report,
        }
    }

    /// Sends the round to each of `groups`' aggregators, in order, and
    /// awaits their answers; an aggregator that is down counts unreached,
    /// and its members are reached in its place.
    fn reach(
        &mut self,
        round: OpId,
        groups: &[Group],
        cluster: &impl Cluster,
        out: &mut RoundOutbox<P>,
    ) {
        for group in groups {
            if cluster.is_down(group.aggregator) {
                self.report.unreached += 1;
                self.reach(round, &group.members, cluster, out);
                continue;
            }
            let request = RoundMsg::Request {
                round,
                route: self.route,
                payload: self.payload,
                forward: !group.members.is_empty(),
            };
            out.send(group.aggregator, request);
            self.awaited.push(Awaited {
                from: group.aggregator,
                targets: group.size(),
            });
        }
    }

    /// Takes `from`'s answer, if this waits for it.
    fn answer(&mut self, from: CoreId, report: Report) -> bool {
        let Some(at) = self.awaited.iter().position(|a| a.from == from) else {
            return false;
        };
        let awaited = self.awaited.remove(at);
        self.report.add(awaited.hold_to(report));
        true
    }

    /// `core` is down: if this waits for it, counts it unreached and
    /// reaches the members it leads in `initiator`'s tree in its place.
    fn bypass(
        &mut self,
        round: OpId,
        core: CoreId,
        cluster: &impl Cluster,
        out: &mut RoundOutbox<P>,
    ) -> bool {
        let Some(at) = self.awaited.iter().position(|a| a.from == core) else {
            return false;
        };
        self.awaited.remove(at);
        self.report.unreached += 1;
        let tree = cluster.tree(round.origin, self.route);
        let members = tree.group_led_by(core).map(|g| g.members.as_slice());
        self.reach(round, members.unwrap_or_default(), cluster, out);
        true
    }

    /// The targets still awaited.
    fn missing(&self) -> u16 {
        self.awaited.iter().map(|a| a.targets).sum()
    }

    /// The report as it stands, every target still awaited unreached.
    fn without_the_missing(&self) -> Report {
        Report {
            acked: self.report.acked,
            unreached: self.report.unreached + self.missing(),
        }
    }
}

impl<P: Copy> Multicast<P> {
    pub fn new(me: CoreId, timeouts: RoundTimeouts) -> Self {
        Self {
            me,
            timeouts,
            started: BTreeMap::new(),
            relays: BTreeMap::new(),
        }
    }

    /// Times the rounds started or relayed from now on by `timeouts`.
    pub fn set_timeouts(&mut self, timeouts: RoundTimeouts) {
        self.timeouts = timeouts;
    }

    /// Starts round `round` (an id this core has not used) delivering
    /// `payload` over `route`.
    pub fn start(
        &mut self,
        round: OpId,
        route: Route,
        payload: P,
        cluster: &impl Cluster,
        out: &mut RoundOutbox<P>,
    ) {
        let tree = cluster.tree(self.me, route);
        let mut fanout = Fanout::new(route, payload, Report::default());
        fanout.reach(round, &tree.groups, cluster, out);
        // The aggregators' own relay timeouts come first, however deep
        // their groups.
        let deepest = tree.groups.iter().map(Group::height).max().unwrap_or(0);
        let round_ticks = self
            .timeouts
            .round
            .max(self.timeouts.relay_for(deepest + 1));
        let started = Started {
            fanout,
            ticks_left: Some(round_ticks),
        };
        self.started.insert(round, started);
        self.finish_if_answered(round, out);
    }

    pub fn on_message(
        &mut self,
        from: CoreId,
        message: RoundMsg<P>,
        cluster: &impl Cluster,
        out: &mut RoundOutbox<P>,
    ) {
        match message {
            RoundMsg::Request {
                round,
                route,
                payload,
                forward,
            } => {
                out.emit(RoundEvent::Deliver { round, payload });
                let itself = Report {
                    acked: 1,
                    unreached: 0,
                };
                let mut fanout = Fanout::new(route, payload, itself);
                let mut height = 0;
                if forward {
                    let tree = cluster.tree(round.origin, route);
                    if let Some(group) = tree.group_led_by(self.me) {
                        height = group.height();
                        fanout.reach(round, &group.members, cluster, out);
                    }
                }
                if mutants::active(Mutant::AckBeforeMembers) && !fanout.awaited.is_empty() {
                    let report = Report {
                        acked: fanout.report.acked + fanout.missing(),
                        unreached: fanout.report.unreached,
                    };
                    out.send(from, RoundMsg::Ack { round, report });
                } else if fanout.awaited.is_empty() {
                    out.send(
                        from,
                        RoundMsg::Ack {
                            round,
                            report: fanout.report,
                        },
                    );
                } else {
                    // A core asked again (its parent went down and the
                    // parent's own parent reached it in its place) serves
                    // the newest request: the answers to the older one
                    // count for it, and the rest are strays.
                    let relay = Relay {
                        parent: from,
                        fanout,
                        ticks_left: Some(self.timeouts.relay_for(height)),
                    };
                    self.relays.insert(round, relay);
                }
            }
            RoundMsg::Ack { round, report } => self.on_ack(from, round, report, out),
        }
    }

    fn on_ack(&mut self, from: CoreId, round: OpId, report: Report, out: &mut RoundOutbox<P>) {
        // An initiator that leads a group of its own is both the relay and
        // the initiator of the round; its members answer the relay.
        if let Some(relay) = self.relays.get_mut(&round)
            && relay.fanout.answer(from, report)
        {
            self.finish_relay_if_answered(round, out);
        } else if let Some(started) = self.started.get_mut(&round)
            && started.fanout.answer(from, report)
        {
            self.finish_if_answered(round, out);
        }
    }

    /// The membership declared `core` down: stop waiting for it, bypass it
    /// where it aggregates, and drop the rounds it asked this core to relay.
    pub fn on_core_down(&mut self, core: CoreId, cluster: &impl Cluster, out: &mut RoundOutbox<P>) {
        self.relays.retain(|_, relay| relay.parent != core);
        let relayed: Vec<OpId> = self.relays.keys().copied().collect();
        for round in relayed {
            let relay = self.relays.get_mut(&round).expect("listed above");
            if relay.fanout.bypass(round, core, cluster, out) {
                self.finish_relay_if_answered(round, out);
            }
        }
        let rounds: Vec<OpId> = self.started.keys().copied().collect();
        for round in rounds {
            let started = self.started.get_mut(&round).expect("listed above");
            if started.fanout.bypass(round, core, cluster, out) {
                self.finish_if_answered(round, out);
            }
        }
    }

    /// One tick passed.
    pub fn on_tick(&mut self, out: &mut RoundOutbox<P>) {
        for (&round, relay) in &mut self.relays {
            let Some(ticks_left) = &mut relay.ticks_left else {
                continue;
            };
            *ticks_left = ticks_left.saturating_sub(1);
            if *ticks_left == 0 {
                relay.ticks_left = None;
                let report = relay.fanout.without_the_missing();
                out.send(relay.parent, RoundMsg::Ack { round, report });
            }
        }
        if mutants::active(Mutant::ForgetRelayAtTimeout) {
            self.relays.retain(|_, relay| relay.ticks_left.is_some());
        }
        for (&round, started) in &mut self.started {
            let Some(ticks_left) = &mut started.ticks_left else {
                continue;
            };
            *ticks_left = ticks_left.saturating_sub(1);
            if *ticks_left == 0 {
                started.ticks_left = None;
                let report = started.fanout.without_the_missing();
                out.emit(RoundEvent::Done { round, report });
            }
        }
        if mutants::active(Mutant::ForgetRoundAtTimeout) {
            self.started
                .retain(|_, started| started.ticks_left.is_some());
        }
    }

    /// Whether a tick would change anything.
    pub fn has_timers(&self) -> bool {
        self.relays.values().any(|r| r.ticks_left.is_some())
            || self.started.values().any(|s| s.ticks_left.is_some())
    }

    /// Whether no round is in progress here.
    pub fn is_idle(&self) -> bool {
        self.relays.is_empty() && self.started.is_empty()
    }

    fn finish_relay_if_answered(&mut self, round: OpId, out: &mut RoundOutbox<P>) {
        if self.relays[&round].fanout.awaited.is_empty() {
            let relay = self.relays.remove(&round).expect("looked up above");
            if relay.ticks_left.is_some() {
                out.send(
                    relay.parent,
                    RoundMsg::Ack {
                        round,
                        report: relay.fanout.report,
                    },
                );
            }
        }
    }

    fn finish_if_answered(&mut self, round: OpId, out: &mut RoundOutbox<P>) {
        if self.started[&round].fanout.awaited.is_empty() {
            let started = self.started.remove(&round).expect("looked up above");
            if started.ticks_left.is_some() {
                out.emit(RoundEvent::Done {
                    round,
                    report: started.fanout.report,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testnet::{Net, Peer, Sends, TestCluster, ids, report, shape};
    use crate::{Shape, TreePlan};
    use alloc::vec;
    use proptest::prelude::*;

    const TIMEOUTS: RoundTimeouts = RoundTimeouts { round: 6, relay: 3 };
    const ROUND: OpId = OpId {
        origin: CoreId(0),
        seq: 1,
    };

    struct Target {
        engine: Multicast<u32>,
        delivered: Vec<(OpId, u32)>,
        done: Vec<(OpId, Report)>,
    }

    impl Target {
        fn record(&mut self, out: RoundOutbox<u32>) -> Sends<RoundMsg<u32>> {
            for event in out.events {
                match event {
                    RoundEvent::Deliver { round, payload } => self.delivered.push((round, payload)),
                    RoundEvent::Done { round, report } => self.done.push((round, report)),
                }
            }
            out.sends
        }
    }

    impl Peer for Target {
        type Msg = RoundMsg<u32>;
        fn receive(
            &mut self,
            from: CoreId,
            m: Self::Msg,
            cluster: &TestCluster,
        ) -> Sends<Self::Msg> {
            let mut out = RoundOutbox::default();
            self.engine.on_message(from, m, cluster, &mut out);
            self.record(out)
        }
        fn core_down(&mut self, core: CoreId, cluster: &TestCluster) -> Sends<Self::Msg> {
            let mut out = RoundOutbox::default();
            self.engine.on_core_down(core, cluster, &mut out);
            self.record(out)
        }
        fn tick(&mut self, _: &TestCluster) -> Sends<Self::Msg> {
            let mut out = RoundOutbox::default();
            self.engine.on_tick(&mut out);
            self.record(out)
        }
    }

    /// `domains.len()` targets, routing `Planned` rounds by the plan of
    /// their domains.
    fn net(domains: Vec<u32>) -> Net<Target> {
        planned(domains.len(), TreePlan::from_domains(&domains))
    }

    /// `cores` targets, routing `Planned` rounds by `plan`.
    fn planned(cores: usize, plan: TreePlan) -> Net<Target> {
        let peers = (0..cores as u16)
            .map(|n| Target {
                engine: Multicast::new(CoreId(n), TIMEOUTS),
                delivered: Vec::new(),
                done: Vec::new(),
            })
            .collect();
        Net::new(peers, plan)
    }

    /// Core 0 starts `ROUND` with payload 42.
    fn start(net: &mut Net<Target>, shape: Shape) {
        let mut out = RoundOutbox::default();
        let route = Route { set: 0, shape };
        net.peers[0]
            .engine
            .start(ROUND, route, 42, &net.clusters[0], &mut out);
        let sends = net.peers[0].record(out);
        net.send(CoreId(0), sends);
    }

    fn deliveries(net: &Net<Target>) -> Vec<usize> {
        net.peers.iter().map(|p| p.delivered.len()).collect()
    }

    fn acks_to_initiator(net: &Net<Target>) -> Vec<(CoreId, Report)> {
        let to_initiator = net.log.iter().filter(|(_, to, _)| *to == CoreId(0));
        to_initiator
            .filter_map(|&(from, _, m)| match m {
                RoundMsg::Ack { report, .. } => Some((from, report)),
                RoundMsg::Request { .. } => None,
            })
            .collect()
    }

    #[test]
    fn unicast_delivers_to_every_target_and_collects_every_ack() {
        let mut net = net(vec![0; 4]);
        start(&mut net, Shape::Unicast);
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 1]);
        assert!(net.peers.iter().all(|p| p.delivered == [(ROUND, 42)]));
        assert_eq!(net.peers[0].done, [(ROUND, report(4, 0))]);
        assert_eq!(acks_to_initiator(&net).len(), 4);
        assert!(net.peers.iter().all(|p| p.engine.is_idle()));
    }

    #[test]
    fn aggregators_acknowledge_for_uneven_groups() {
        // Groups: {0: 1, 2}, {3: 4}, {5}.
        let mut net = net(vec![0, 0, 0, 1, 1, 2]);
        start(&mut net, Shape::Planned);
        net.run();
        assert_eq!(deliveries(&net), [1; 6]);
        // Core 0 leads its own domain, so 1 and 2 acknowledge to it; 4 does
        // not: its aggregator 3 answers for it.
        let mut acks = acks_to_initiator(&net);
        acks.sort_unstable_by_key(|&(from, _)| from);
        assert_eq!(
            acks,
            [
                (CoreId(0), report(3, 0)),
                (CoreId(1), report(1, 0)),
                (CoreId(2), report(1, 0)),
                (CoreId(3), report(2, 0)),
                (CoreId(5), report(1, 0)),
            ]
        );
        assert_eq!(net.peers[0].done, [(ROUND, report(6, 0))]);
        assert!(net.peers.iter().all(|p| p.engine.is_idle()));
    }

    #[test]
    fn an_aggregator_with_another_plan_that_leaves_a_member_out_is_held_to_its_group() {
        // The initiator's tree: {0: 1, 2}, {3: 4}, {5}. Core 3 routes by a
        // plan in which 4 is a group of its own, so from where 3 stands it
        // leads {3} alone: it never forwards to 4 and acknowledges 1.
        let mut net = net(vec![0, 0, 0, 1, 1, 2]);
        net.clusters[3].plan = TreePlan::from_domains(&[0, 0, 0, 1, 2, 2]);
        start(&mut net, Shape::Planned);
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 1, 0, 1], "4 is missed");
        assert!(acks_to_initiator(&net).contains(&(CoreId(3), report(1, 0))));
        let partial = report(5, 1);
        assert_eq!(net.peers[0].done, [(ROUND, partial)]);
        assert!(!partial.is_complete());
        assert!(net.peers.iter().all(|p| p.engine.is_idle()));
    }

    #[test]
    fn an_aggregator_with_another_plan_that_adds_a_member_does_not_inflate_acked() {
        // The initiator's tree: {0: 1, 2}, {3: 4}, {5: 6}. Core 5 routes by
        // a plan in which it leads {5: 6, 4}, so 4 gets the payload from 3
        // and from 5, and 5 acknowledges 3 for a group of 2.
        let mut net = net(vec![0, 0, 0, 1, 1, 2, 2]);
        let mut other = TreePlan::new();
        other.set_root(CoreId(0), vec![ids(&[0, 1, 2]), ids(&[3]), ids(&[5, 6, 4])]);
        net.clusters[5].plan = other;
        start(&mut net, Shape::Planned);
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 1, 2, 1, 1]);
        assert!(acks_to_initiator(&net).contains(&(CoreId(5), report(3, 0))));
        assert_eq!(net.peers[0].done, [(ROUND, report(7, 0))]);
        assert!(net.peers.iter().all(|p| p.engine.is_idle()));
    }

    #[test]
    fn requests_go_out_in_the_plans_group_and_member_order() {
        let mut plan = TreePlan::new();
        plan.set_root(
            CoreId(0),
            vec![ids(&[5, 4, 3]), ids(&[2, 1]), ids(&[6, 0, 7])],
        );
        let mut net = planned(8, plan);
        start(&mut net, Shape::Planned);
        net.run();
        assert_eq!(deliveries(&net), [1; 8]);
        let requests = |from: u16, forward: bool| -> Vec<CoreId> {
            let from = CoreId(from);
            let sent = net.log.iter().filter(|&&(f, _, _)| f == from);
            sent.filter_map(|&(_, to, m)| match m {
                RoundMsg::Request { forward: f, .. } if f == forward => Some(to),
                _ => None,
            })
            .collect()
        };
        assert_eq!(requests(0, true), ids(&[5, 2, 0]), "groups in order");
        assert_eq!(requests(5, false), ids(&[4, 3]), "members in order");
        assert_eq!(requests(2, false), ids(&[1]));
        assert_eq!(requests(0, false), ids(&[6, 7]), "the initiator leads");
        assert_eq!(net.peers[0].done, [(ROUND, report(8, 0))]);
    }

    #[test]
    fn a_dead_aggregator_is_bypassed() {
        let mut net = net(vec![0, 0, 0, 1, 1, 2]);
        net.crash(CoreId(3));
        start(&mut net, Shape::Planned);
        net.run();
        assert!(net.peers[0].done.is_empty(), "waits for the group of 3");
        net.declare_down(CoreId(3));
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 0, 1, 1]);
        assert!(net.log.contains(&(
            CoreId(0),
            CoreId(4),
            RoundMsg::Request {
                round: ROUND,
                route: Route {
                    set: 0,
                    shape: Shape::Planned
                },
                payload: 42,
                forward: false
            }
        )));
        assert_eq!(net.peers[0].done, [(ROUND, report(5, 1))]);
        assert!(net.peers[0].engine.is_idle());
    }

    #[test]
    fn an_aggregator_dying_after_forwarding_still_counts_every_target_once() {
        let mut net = net(vec![0, 0, 0, 1, 1, 2]);
        start(&mut net, Shape::Planned);
        assert!(net.deliver_where(|_, to, _| to == CoreId(3)));
        net.crash(CoreId(3));
        assert!(net.deliver_where(|from, to, _| (from, to) == (CoreId(3), CoreId(4))));
        net.declare_down(CoreId(3));
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 1, 2, 1], "4 gets it twice");
        assert_eq!(net.peers[0].done, [(ROUND, report(5, 1))]);
    }

    /// Ten cores in one group with a fan-out of 3: 0 leads 3 {4, 5},
    /// 6 {7, 8}, 9, 1 and 2 (see `tree`'s tests).
    fn nested() -> Net<Target> {
        let mut plan = TreePlan::new();
        plan.set_root(CoreId(0), vec![(0..10).map(CoreId).collect()]);
        plan.set_fan_out(Some(3));
        planned(10, plan)
    }

    #[test]
    fn a_nested_tree_reaches_every_core_once_and_each_subtree_answers_for_itself() {
        let mut net = nested();
        start(&mut net, Shape::Planned);
        net.run();
        assert_eq!(deliveries(&net), [1; 10]);
        assert_eq!(net.peers[0].done, [(ROUND, report(10, 0))]);
        let acks_to = |to: u16| -> Vec<(CoreId, Report)> {
            net.log
                .iter()
                .filter(|&&(_, t, _)| t == CoreId(to))
                .filter_map(|&(from, _, m)| match m {
                    RoundMsg::Ack { report, .. } => Some((from, report)),
                    RoundMsg::Request { .. } => None,
                })
                .collect()
        };
        assert!(acks_to(0).contains(&(CoreId(3), report(3, 0))));
        assert!(acks_to(0).contains(&(CoreId(9), report(1, 0))));
        assert_eq!(acks_to(6).len(), 2, "7 and 8 answer 6, not 0");
        assert!(net.peers.iter().all(|p| p.engine.is_idle()));
    }

    #[test]
    fn an_aggregator_bypasses_a_subgroup_leader_that_dies_mid_round() {
        let mut net = nested();
        start(&mut net, Shape::Planned);
        // 0 (the relay of its own group) reaches 6, which forwards to 7 and
        // 8 and dies before anyone answers it; what it sent still arrives.
        assert!(net.deliver_where(|_, to, _| to == CoreId(0)));
        assert!(net.deliver_where(|_, to, _| to == CoreId(6)));
        net.crash(CoreId(6));
        net.declare_down(CoreId(6));
        net.run();
        let expected = [1, 1, 1, 1, 1, 1, 1, 2, 2, 1];
        assert_eq!(deliveries(&net), expected, "7 and 8 from 6, then from 0");
        assert_eq!(net.peers[0].done, [(ROUND, report(9, 1))]);
        assert!(
            net.peers
                .iter()
                .enumerate()
                .all(|(n, p)| n == 6 || p.engine.is_idle())
        );
    }

    #[test]
    fn a_subgroup_leader_down_before_the_round_is_passed_over_to_its_members() {
        let mut net = nested();
        net.crash(CoreId(3));
        net.declare_down(CoreId(3));
        start(&mut net, Shape::Planned);
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(net.peers[0].done, [(ROUND, report(9, 1))]);
    }

    #[test]
    fn a_silent_subgroup_counts_whole_at_its_aggregators_relay_timeout() {
        let mut net = nested();
        // 6 hangs without anyone declaring it down: 0, relaying its own
        // group, counts 6's subgroup of 3 unreached when its relay times out.
        net.crash(CoreId(6));
        start(&mut net, Shape::Planned);
        net.run();
        // 0's group is two deep: it waits a relay timeout per level, so
        // that 6, were it merely slow, could report its own members first.
        for _ in 0..TIMEOUTS.relay {
            net.tick();
            net.run();
        }
        assert!(
            net.peers[0].done.is_empty(),
            "one level's wait is not enough"
        );
        for _ in TIMEOUTS.relay..TIMEOUTS.relay_for(2) {
            net.tick();
            net.run();
        }
        assert_eq!(deliveries(&net), [1, 1, 1, 1, 1, 1, 0, 0, 0, 1]);
        assert_eq!(net.peers[0].done, [(ROUND, report(7, 3))]);
        // 0 still tracks 6: once 6 is declared down, 7 and 8 get the
        // payload from 0 (a commit must reach every live holder), and the
        // round, already reported, is not reported again.
        assert!(!net.peers[0].engine.is_idle());
        net.declare_down(CoreId(6));
        net.run();
        assert_eq!(deliveries(&net), [1, 1, 1, 1, 1, 1, 0, 1, 1, 1]);
        assert_eq!(net.peers[0].done, [(ROUND, report(7, 3))]);
        assert!(net.peers[0].engine.is_idle());
    }

    #[test]
    fn a_silent_member_is_reported_by_its_aggregator_at_the_relay_timeout() {
        let mut net = net(vec![0, 0, 0, 1, 1, 2]);
        net.crash(CoreId(4));
        start(&mut net, Shape::Planned);
        net.run();
        for _ in 1..TIMEOUTS.relay {
            net.tick();
            net.run();
        }
        assert!(net.peers[0].done.is_empty());
        net.tick();
        net.run();
        assert!(acks_to_initiator(&net).contains(&(CoreId(3), report(1, 1))));
        assert_eq!(net.peers[0].done, [(ROUND, report(5, 1))]);
        assert!(net.peers[0].engine.is_idle());
    }

    #[test]
    fn the_round_timeout_reports_once_and_keeps_bypassing_aggregators_that_die_later() {
        let mut net = net(vec![0, 0, 0, 1, 1, 2]);
        start(&mut net, Shape::Planned);
        // Everything arrives except what goes to or from core 3.
        while net.deliver_where(|from, to, _| from != CoreId(3) && to != CoreId(3)) {}
        for _ in 0..TIMEOUTS.round {
            assert!(net.peers[0].done.is_empty());
            net.tick();
        }
        assert_eq!(net.peers[0].done, [(ROUND, report(4, 2))]);
        assert!(
            !net.peers[0].engine.is_idle(),
            "still tracks the group of 3"
        );
        assert!(!net.peers[0].engine.has_timers());
        net.crash(CoreId(3));
        net.declare_down(CoreId(3));
        net.run();
        assert_eq!(
            deliveries(&net),
            [1, 1, 1, 0, 1, 1],
            "4 reached by the bypass"
        );
        assert_eq!(net.peers[0].done.len(), 1, "reported once");
        assert!(net.peers[0].engine.is_idle());
    }

    /// 2 to 6 targets and a plan: by domains, or groups from core 0 that
    /// may leave targets out, list one twice or name cores that are not
    /// targets.
    fn targets_and_plan() -> impl Strategy<Value = (usize, TreePlan)> {
        (2usize..7).prop_flat_map(|n| {
            let by_domains =
                prop::collection::vec(0u32..3, n).prop_map(|d| TreePlan::from_domains(&d));
            (Just(n), prop_oneof![by_domains, plan_by_hand()])
        })
    }

    /// A plan over cores 0..8 with groups from core 0 only.
    fn plan_by_hand() -> impl Strategy<Value = TreePlan> {
        let group = prop::collection::vec((0u16..8).prop_map(CoreId), 0..5);
        prop::collection::vec(group, 0..4).prop_map(|groups| {
            let mut plan = TreePlan::new();
            plan.set_root(CoreId(0), groups);
            plan
        })
    }

    proptest! {
        /// Under any delivery order and any crashes of targets other than
        /// the initiator, the round reports exactly once, accounts for every
        /// target exactly once, and reaches every target that stays up.
        #[test]
        fn every_target_is_accounted_for_exactly_once(
            shape in shape(),
            (n, plan) in targets_and_plan(),
            schedule in prop::collection::vec((any::<u8>(), 0u8..16), 0..60),
        ) {
            let mut net = planned(n, plan);
            start(&mut net, shape);
            let mut crashed = Vec::new();
            for (pick, action) in schedule {
                let core = CoreId(u16::from(pick) % n as u16);
                if action == 0 && core != CoreId(0) {
                    if !crashed.contains(&core) {
                        net.crash(core);
                        crashed.push(core);
                    }
                } else {
                    net.deliver_where(|_, to, _| to == core);
                }
            }
            for &core in &crashed {
                net.declare_down(core);
            }
            net.run();
            let done = &net.peers[0].done;
            prop_assert_eq!(done.len(), 1);
            let report = done[0].1;
            prop_assert_eq!(usize::from(report.acked + report.unreached), n);
            prop_assert!(usize::from(report.acked) >= n - crashed.len());
            for (i, peer) in net.peers.iter().enumerate() {
                if !crashed.contains(&CoreId(i as u16)) {
                    prop_assert!(!peer.delivered.is_empty());
                    prop_assert!(peer.engine.is_idle());
                }
            }
        }

        /// When cores route by plans that differ from the initiator's, the
        /// round still reports exactly once and accounts for every target
        /// of the initiator's tree exactly once (no group counts for more
        /// or less than its size), under any delivery order, and every core
        /// ends idle.
        #[test]
        fn plans_that_differ_cannot_inflate_or_lose_the_count(
            (n, plan) in targets_and_plan(),
            others in prop::collection::vec(plan_by_hand(), 6),
            differ in prop::collection::vec(any::<bool>(), 6),
            picks in prop::collection::vec(any::<u8>(), 0..60),
        ) {
            let mut net = planned(n, plan);
            for (core, other) in others.into_iter().enumerate().take(n) {
                if differ[core] {
                    net.clusters[core].plan = other;
                }
            }
            start(&mut net, Shape::Planned);
            for pick in picks {
                let core = CoreId(u16::from(pick) % n as u16);
                net.deliver_where(|_, to, _| to == core);
            }
            net.run();
            let done = &net.peers[0].done;
            prop_assert_eq!(done.len(), 1);
            let report = done[0].1;
            prop_assert_eq!(usize::from(report.acked + report.unreached), n);
            prop_assert!(net.peers.iter().all(|p| p.engine.is_idle()));
        }
    }
}
