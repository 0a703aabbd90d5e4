//! Two-phase commit with abort.
//!
//! The coordinator (the core that proposes) sends `Prepare` to every live
//! target of the proposal's route, itself included. Each participant asks
//! its [`Resource`] to lock what the change touches and apply it
//! tentatively, and votes `Yes`, or `No` with the resource's reason (for
//! example "conflicts with proposal P"). One `No` aborts the proposal: the
//! coordinator sends `Abort` to the participants that may hold its lock. All
//! `Yes` commits it: the commit travels as a [multicast](crate::multicast)
//! round over the route's tree, each participant makes its tentative change
//! permanent on delivery, and the proposal is decided `Committed` when the
//! round is done, with the round's report.
//!
//! Why conflicting proposals cannot both commit: a participant holds a
//! proposal's lock from its `Yes` until the decision reaches it, so at the
//! moment a coordinator decides to commit, every participant holds that
//! proposal's lock, and so none holds a conflicting one. Two conflicting
//! commits are thus decided at different moments, and every participant
//! applies them in that order.
//!
//! Failures:
//! - A participant that does not vote within the vote timeout aborts the
//!   proposal (`Timeout`). A participant the membership declares down no
//!   longer votes: its replica is gone, and its locks with it.
//! - `Abort` goes straight from the coordinator to each participant, on the
//!   same channel as its `Prepare`, so it can never overtake it. Only the
//!   commit, which needs every participant's vote and so comes after every
//!   `Prepare` was received, travels through aggregators.
//! - A participant whose coordinator goes down while it holds a prepared
//!   proposal resolves it with the other live participants (cooperative
//!   termination): it asks each of them (`Inquire`), and each answers what
//!   it knows (`Settled`) once the coordinator is down to it as well, so
//!   once it has handled everything the coordinator sent it. If any
//!   committed the proposal, the commit reached a live core, and everyone
//!   commits; if any never voted yes, or aborted, the coordinator cannot
//!   have committed, and everyone aborts; if every live participant is in
//!   doubt, no live replica holds the commit, and everyone aborts. A
//!   participant that goes down meanwhile is no longer waited for. So the
//!   coordinator and aggregators may fail together, in any order, and the
//!   live replicas still agree. A participant remembers its last
//!   `DECIDED_MEMORY` decisions to answer with; one asked about a proposal
//!   it decided longer ago, and holds no longer, answers `Unknown`.

use crate::multicast::{Multicast, RoundEvent, RoundMsg, RoundOutbox, RoundTimeouts};
use crate::mutants::{self, Mutant};
use crate::{Cluster, CoreId, OpId, Outbox, Report, Route, Tick};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// The state a participant's votes are about: its replica.
pub trait Resource {
    /// What a proposal changes.
    type Change: Copy;
    /// Why a participant votes no.
    type Refusal: Copy;
    /// Lock what `change` touches and apply it tentatively, or refuse: for
    /// a conflict, name the proposal that holds the lock. Preparing an `id`
    /// the resource already holds must succeed, so that cores sharing one
    /// resource can each prepare the same proposal.
    fn prepare(&mut self, id: OpId, change: &Self::Change) -> Result<(), Self::Refusal>;
    /// Make the tentative change of `id` permanent and release its lock.
    fn commit(&mut self, id: OpId, change: &Self::Change);
    /// Roll the tentative change of `id` back and release its lock.
    fn abort(&mut self, id: OpId, change: &Self::Change);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vote<R> {
    Yes,
    No(R),
}

/// A two-phase commit message; `C` is the change, `R` the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TwoPhaseMsg<C, R> {
    /// Coordinator to participant: vote on `change`.
    Prepare { id: OpId, route: Route, change: C },
    /// Participant to coordinator.
    Vote { id: OpId, vote: Vote<R> },
    /// Coordinator to participant: roll `id` back.
    Abort { id: OpId },
    /// The commit round; its round id is the proposal's id.
    Commit(RoundMsg<()>),
    /// Participant to participant, after the coordinator went down: what
    /// became of `id` at your end?
    Inquire { id: OpId },
    /// The answer, given once the coordinator is down to the sender too.
    Settled { id: OpId, known: Known },
}

/// What a participant knows of a proposal whose coordinator went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Known {
    /// It committed the proposal.
    Committed,
    /// It aborted it.
    Aborted,
    /// It voted yes and has no decision: it is in doubt too.
    InDoubt,
    /// It holds no such proposal and remembers no decision of it: it never
    /// voted yes (the coordinator cannot have committed it), or it decided
    /// more than `DECIDED_MEMORY` decisions ago.
    Unknown,
}

/// How many of its last decisions a participant remembers, to answer an
/// inquiry about a proposal whose coordinator went down.
pub const DECIDED_MEMORY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortReason<R> {
    /// Participant `by` voted no.
    Refused { by: CoreId, refusal: R },
    /// The vote timeout passed; `waiting_for` is a participant that had not
    /// voted (the lowest id of them).
    Timeout { waiting_for: CoreId },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome<R> {
    /// Committed; the report counts the participants that confirmed
    /// applying it and those that did not (down, or silent past the commit
    /// round's timeout).
    Committed(Report),
    Aborted(AbortReason<R>),
}

/// The event of a proposal this core coordinates: it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decided<R> {
    pub id: OpId,
    pub outcome: Outcome<R>,
}

pub type TwoPhaseOutbox<C, R> = Outbox<TwoPhaseMsg<C, R>, Decided<R>>;

/// One core's part in every proposal it coordinates or votes on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TwoPhase<C> {
    me: CoreId,
    vote_timeout: Tick,
    /// Proposals this core coordinates that are still collecting votes.
    voting: BTreeMap<OpId, Voting>,
    /// Proposals this core voted yes on and has not seen decided.
    prepared: BTreeMap<OpId, Prepared<C>>,
    /// The last decisions of prepared proposals, oldest first: committed
    /// or not.
    decided: VecDeque<(OpId, bool)>,
    /// Inquiries about proposals this core does not hold, whose
    /// coordinator is not down to it yet: answered once it is.
    deferred: BTreeMap<OpId, Vec<CoreId>>,
    /// Commit rounds, as initiator, aggregator or target.
    commits: Multicast<()>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Voting {
    route: Route,
    /// The participants that were sent `Prepare`.
    participants: Vec<CoreId>,
    /// Those whose vote has not come.
    waiting: Vec<CoreId>,
    ticks_left: Tick,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Prepared<C> {
    route: Route,
    change: C,
    /// Participants that asked what became of it, to answer once this core
    /// knows: when it decides, or when the coordinator is down to it.
    inquirers: Vec<CoreId>,
    /// The participants still to answer this core's inquiry, once the
    /// coordinator went down; `None` before.
    asked: Option<Vec<CoreId>>,
}

impl<C: Copy> TwoPhase<C> {
    /// `vote_timeout` bounds the voting phase; `commit` the commit round.
    pub fn new(me: CoreId, vote_timeout: Tick, commit: RoundTimeouts) -> Self {
        Self {
            me,
            vote_timeout,
            voting: BTreeMap::new(),
            prepared: BTreeMap::new(),
            decided: VecDeque::new(),
            deferred: BTreeMap::new(),
            commits: Multicast::new(me, commit),
        }
    }

    /// Times the proposals and commit rounds started from now on: votes by
    /// `vote_timeout`, commit rounds by `commit`.
    pub fn set_timeouts(&mut self, vote_timeout: Tick, commit: RoundTimeouts) {
        self.vote_timeout = vote_timeout;
        self.commits.set_timeouts(commit);
    }

    /// Proposes `change` to the targets of `route`, as proposal `id` (an id
    /// this core has not used). The decision comes as a [`Decided`] event.
    pub fn propose<X: Resource<Change = C>>(
        &mut self,
        id: OpId,
        route: Route,
        change: C,
        cluster: &impl Cluster,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        let mut participants: Vec<CoreId> = cluster
            .tree(self.me, route)
            .targets()
            .filter(|&n| !cluster.is_down(n))
            .collect();
        participants.sort_unstable();
        for &participant in &participants {
            out.send(participant, TwoPhaseMsg::Prepare { id, route, change });
        }
        let voting = Voting {
            route,
            waiting: participants.clone(),
            participants,
            ticks_left: self.vote_timeout,
        };
        self.voting.insert(id, voting);
        self.commit_if_all_voted(id, cluster, resource, out);
    }

    pub fn on_message<X: Resource<Change = C>>(
        &mut self,
        from: CoreId,
        message: TwoPhaseMsg<C, X::Refusal>,
        cluster: &impl Cluster,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        match message {
            TwoPhaseMsg::Prepare { id, route, change } => {
                let vote = match resource.prepare(id, &change) {
                    Ok(()) => {
                        let prepared = Prepared {
                            route,
                            change,
                            inquirers: Vec::new(),
                            asked: None,
                        };
                        self.prepared.insert(id, prepared);
                        Vote::Yes
                    }
                    Err(refusal) => Vote::No(refusal),
                };
                out.send(from, TwoPhaseMsg::Vote { id, vote });
            }
            TwoPhaseMsg::Vote { id, vote } => {
                let Some(voting) = self.voting.get_mut(&id) else {
                    return;
                };
                let Some(at) = voting.waiting.iter().position(|&n| n == from) else {
                    return;
                };
                voting.waiting.remove(at);
                if mutants::active(Mutant::CommitOnFirstYes) && matches!(vote, Vote::Yes) {
                    voting.waiting.clear();
                }
                match vote {
                    Vote::Yes => self.commit_if_all_voted(id, cluster, resource, out),
                    Vote::No(refusal) => {
                        let reason = AbortReason::Refused { by: from, refusal };
                        self.abort(id, reason, cluster, out);
                    }
                }
            }
            TwoPhaseMsg::Abort { id } => self.resolve(id, false, resource, out),
            TwoPhaseMsg::Commit(round) => self.with_commits(resource, out, |commits, inner| {
                commits.on_message(from, round, cluster, inner)
            }),
            TwoPhaseMsg::Inquire { id } => {
                let down = cluster.is_down(id.origin) || mutants::active(Mutant::AnswerBeforeDown);
                match self.prepared.get_mut(&id) {
                    Some(_) if down => out.send(
                        from,
                        TwoPhaseMsg::Settled {
                            id,
                            known: Known::InDoubt,
                        },
                    ),
                    Some(prepared) => prepared.inquirers.push(from),
                    None if down => {
                        let known = self.known(id);
                        out.send(from, TwoPhaseMsg::Settled { id, known });
                    }
                    None => self.deferred.entry(id).or_default().push(from),
                }
            }
            TwoPhaseMsg::Settled { id, known } => {
                let Some(asked) = self
                    .prepared
                    .get_mut(&id)
                    .and_then(|prepared| prepared.asked.as_mut())
                else {
                    return;
                };
                let Some(at) = asked.iter().position(|&core| core == from) else {
                    return;
                };
                asked.remove(at);
                match known {
                    Known::Committed => self.resolve(id, true, resource, out),
                    Known::Aborted | Known::Unknown => self.resolve(id, false, resource, out),
                    Known::InDoubt => self.abort_if_all_in_doubt(id, resource, out),
                }
            }
        }
    }

    /// What this core knows of `id`, which it does not hold prepared.
    fn known(&self, id: OpId) -> Known {
        match self
            .decided
            .iter()
            .rev()
            .find(|(decided, _)| *decided == id)
        {
            Some((_, true)) => Known::Committed,
            Some((_, false)) => Known::Aborted,
            None => Known::Unknown,
        }
    }

    /// Aborts `id` if every participant asked answered that it is in doubt
    /// (or went down): then no live replica committed it.
    fn abort_if_all_in_doubt<X: Resource<Change = C>>(
        &mut self,
        id: OpId,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        if self
            .prepared
            .get(&id)
            .and_then(|prepared| prepared.asked.as_ref())
            .is_some_and(Vec::is_empty)
        {
            self.resolve(id, false, resource, out);
        }
    }

    /// The membership declared `core` down.
    pub fn on_core_down<X: Resource<Change = C>>(
        &mut self,
        core: CoreId,
        cluster: &impl Cluster,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        let voting: Vec<OpId> = self.voting.keys().copied().collect();
        for id in voting {
            let waiting = &mut self.voting.get_mut(&id).expect("listed above").waiting;
            if let Some(at) = waiting.iter().position(|&n| n == core) {
                waiting.remove(at);
                self.commit_if_all_voted(id, cluster, resource, out);
            }
        }
        self.with_commits(resource, out, |commits, inner| {
            commits.on_core_down(core, cluster, inner)
        });
        let prepared: Vec<OpId> = self.prepared.keys().copied().collect();
        for id in prepared {
            let me = self.me;
            let prepared = self.prepared.get_mut(&id).expect("listed above");
            if id.origin == core && mutants::active(Mutant::WaitForDeadCoordinator) {
                continue;
            }
            if id.origin == core && mutants::active(Mutant::AbortWithoutInquiry) {
                self.resolve(id, false, resource, out);
            } else if id.origin == core {
                // Everything the coordinator sent is in: this core's doubt
                // is final, so answer those who asked, then ask the others.
                for inquirer in core::mem::take(&mut prepared.inquirers) {
                    out.send(
                        inquirer,
                        TwoPhaseMsg::Settled {
                            id,
                            known: Known::InDoubt,
                        },
                    );
                }
                let others: Vec<CoreId> = cluster
                    .tree(core, prepared.route)
                    .targets()
                    .filter(|&n| n != me && n != core && !cluster.is_down(n))
                    .collect();
                for &other in &others {
                    out.send(other, TwoPhaseMsg::Inquire { id });
                }
                prepared.asked = Some(others);
                self.abort_if_all_in_doubt(id, resource, out);
            } else if let Some(asked) = prepared.asked.as_mut()
                && let Some(at) = asked.iter().position(|&n| n == core)
            {
                asked.remove(at);
                self.abort_if_all_in_doubt(id, resource, out);
            }
        }
        let deferred: Vec<OpId> = self
            .deferred
            .keys()
            .copied()
            .filter(|id| id.origin == core)
            .collect();
        for id in deferred {
            let known = self.known(id);
            for inquirer in self.deferred.remove(&id).expect("listed above") {
                out.send(inquirer, TwoPhaseMsg::Settled { id, known });
            }
        }
    }

    /// One tick passed.
    pub fn on_tick<X: Resource<Change = C>>(
        &mut self,
        cluster: &impl Cluster,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        let voting: Vec<OpId> = self.voting.keys().copied().collect();
        for id in voting {
            let voting = self.voting.get_mut(&id).expect("listed above");
            voting.ticks_left = voting.ticks_left.saturating_sub(1);
            if voting.ticks_left == 0 {
                let reason = AbortReason::Timeout {
                    waiting_for: voting.waiting[0],
                };
                self.abort(id, reason, cluster, out);
            }
        }
        self.with_commits(resource, out, |commits, inner| commits.on_tick(inner));
    }

    /// Whether a tick would change anything.
    pub fn has_timers(&self) -> bool {
        !self.voting.is_empty() || self.commits.has_timers()
    }

    /// Whether no proposal is in progress here, as coordinator or
    /// participant.
    pub fn is_idle(&self) -> bool {
        self.voting.is_empty()
            && self.prepared.is_empty()
            && self.deferred.is_empty()
            && self.commits.is_idle()
    }

    fn commit_if_all_voted<X: Resource<Change = C>>(
        &mut self,
        id: OpId,
        cluster: &impl Cluster,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        if !self.voting[&id].waiting.is_empty() {
            return;
        }
        let route = self.voting.remove(&id).expect("looked up above").route;
        self.with_commits(resource, out, |commits, inner| {
            commits.start(id, route, (), cluster, inner)
        });
    }

    /// Decides to abort `id`, which is still voting, and tells every live
    /// participant that may hold its lock: all but the one that refused.
    fn abort<R>(
        &mut self,
        id: OpId,
        reason: AbortReason<R>,
        cluster: &impl Cluster,
        out: &mut TwoPhaseOutbox<C, R>,
    ) {
        let voting = self.voting.remove(&id).expect("aborted while voting");
        let refused_by = match reason {
            AbortReason::Refused { by, .. } => Some(by),
            AbortReason::Timeout { .. } => None,
        };
        for participant in voting.participants {
            if mutants::active(Mutant::AbortOnlyYesVoters) && voting.waiting.contains(&participant)
            {
                continue;
            }
            if Some(participant) != refused_by && !cluster.is_down(participant) {
                out.send(participant, TwoPhaseMsg::Abort { id });
            }
        }
        let outcome = Outcome::Aborted(reason);
        out.emit(Decided { id, outcome });
    }

    /// Commits or rolls back this core's prepared `id`, if it holds it, and
    /// tells the members waiting on it.
    fn resolve<X: Resource<Change = C>>(
        &mut self,
        id: OpId,
        commit: bool,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
    ) {
        let Some(prepared) = self.prepared.remove(&id) else {
            return;
        };
        match commit {
            true => resource.commit(id, &prepared.change),
            false => resource.abort(id, &prepared.change),
        }
        if self.decided.len() == DECIDED_MEMORY {
            self.decided.pop_front();
        }
        self.decided.push_back((id, commit));
        let known = match commit {
            true => Known::Committed,
            false => Known::Aborted,
        };
        for inquirer in prepared.inquirers {
            out.send(inquirer, TwoPhaseMsg::Settled { id, known });
        }
    }

    /// Runs `step` on the commit rounds and acts on what it produced.
    fn with_commits<X: Resource<Change = C>>(
        &mut self,
        resource: &mut X,
        out: &mut TwoPhaseOutbox<C, X::Refusal>,
        step: impl FnOnce(&mut Multicast<()>, &mut RoundOutbox<()>),
    ) {
        let mut inner = RoundOutbox::default();
        step(&mut self.commits, &mut inner);
        // Forwards go out before any `Settled` that committing queues, so a
        // member hears of the commit from its aggregator first.
        for (to, round) in inner.sends {
            out.send(to, TwoPhaseMsg::Commit(round));
        }
        for event in inner.events {
            match event {
                RoundEvent::Deliver { round, .. } => self.resolve(round, true, resource, out),
                RoundEvent::Done { round, report } => {
                    let outcome = Outcome::Committed(report);
                    out.emit(Decided { id: round, outcome });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testnet::{Net, Peer, Sends, TestCluster, report};
    use crate::{Shape, TreePlan};
    use alloc::vec;

    const VOTE_TIMEOUT: Tick = 4;
    const COMMIT: RoundTimeouts = RoundTimeouts { round: 6, relay: 3 };
    const KEY: u8 = 7;

    /// A lock per key; the change `(key, value)` sets the key's value; a
    /// refusal names the proposal holding the lock.
    #[derive(Default)]
    struct Locks {
        committed: BTreeMap<u8, u8>,
        held: BTreeMap<u8, OpId>,
    }

    impl Resource for Locks {
        type Change = (u8, u8);
        type Refusal = OpId;
        fn prepare(&mut self, id: OpId, &(key, _): &(u8, u8)) -> Result<(), OpId> {
            match self.held.get(&key) {
                Some(&holder) if holder != id => Err(holder),
                _ => {
                    self.held.insert(key, id);
                    Ok(())
                }
            }
        }
        fn commit(&mut self, id: OpId, &(key, value): &(u8, u8)) {
            assert_eq!(self.held.remove(&key), Some(id), "commit without the lock");
            self.committed.insert(key, value);
        }
        fn abort(&mut self, id: OpId, &(key, _): &(u8, u8)) {
            assert_eq!(self.held.remove(&key), Some(id), "abort without the lock");
        }
    }

    struct Participant {
        engine: TwoPhase<(u8, u8)>,
        locks: Locks,
        decided: Vec<Decided<OpId>>,
    }

    type Msg = TwoPhaseMsg<(u8, u8), OpId>;

    impl Participant {
        fn record(&mut self, out: TwoPhaseOutbox<(u8, u8), OpId>) -> Sends<Msg> {
            self.decided.extend(out.events);
            out.sends
        }
    }

    impl Peer for Participant {
        type Msg = Msg;
        fn receive(&mut self, from: CoreId, m: Msg, cluster: &TestCluster) -> Sends<Msg> {
            let mut out = Outbox::default();
            self.engine
                .on_message(from, m, cluster, &mut self.locks, &mut out);
            self.record(out)
        }
        fn core_down(&mut self, core: CoreId, cluster: &TestCluster) -> Sends<Msg> {
            let mut out = Outbox::default();
            self.engine
                .on_core_down(core, cluster, &mut self.locks, &mut out);
            self.record(out)
        }
        fn tick(&mut self, cluster: &TestCluster) -> Sends<Msg> {
            let mut out = Outbox::default();
            self.engine.on_tick(cluster, &mut self.locks, &mut out);
            self.record(out)
        }
    }

    fn net(cores: u16) -> Net<Participant> {
        let peers = (0..cores)
            .map(|n| Participant {
                engine: TwoPhase::new(CoreId(n), VOTE_TIMEOUT, COMMIT),
                locks: Locks::default(),
                decided: Vec::new(),
            })
            .collect();
        Net::new(peers, TreePlan::from_domains(&vec![0; usize::from(cores)]))
    }

    /// Core `at` proposes `KEY := value`; returns the proposal's id.
    fn propose(net: &mut Net<Participant>, at: u16, value: u8, shape: Shape) -> OpId {
        let id = OpId {
            origin: CoreId(at),
            seq: 1,
        };
        let mut out = Outbox::default();
        let peer = &mut net.peers[usize::from(at)];
        let route = Route { set: 0, shape };
        let cluster = &net.clusters[usize::from(at)];
        peer.engine
            .propose(id, route, (KEY, value), cluster, &mut peer.locks, &mut out);
        let sends = peer.record(out);
        net.send(CoreId(at), sends);
        id
    }

    fn committed(net: &Net<Participant>, core: u16) -> Option<u8> {
        net.peers[usize::from(core)]
            .locks
            .committed
            .get(&KEY)
            .copied()
    }

    fn assert_all_idle(net: &Net<Participant>, cores: &[u16]) {
        for &n in cores {
            let peer = &net.peers[usize::from(n)];
            assert!(peer.engine.is_idle(), "core {n} is not idle");
            assert!(peer.locks.held.is_empty(), "core {n} still holds a lock");
        }
    }

    fn is_prepare_of(id: OpId) -> impl Fn(CoreId, CoreId, &Msg) -> bool {
        move |_, _, m| matches!(m, TwoPhaseMsg::Prepare { id: p, .. } if *p == id)
    }

    #[test]
    fn all_yes_commits_everywhere() {
        let mut net = net(3);
        let id = propose(&mut net, 1, 5, Shape::Unicast);
        net.run();
        let outcome = Outcome::Committed(report(3, 0));
        assert_eq!(net.peers[1].decided, [Decided { id, outcome }]);
        assert!((0..3).all(|n| committed(&net, n) == Some(5)));
        assert_all_idle(&net, &[0, 1, 2]);
    }

    #[test]
    fn conflicting_proposals_that_each_lock_first_both_abort_naming_each_other() {
        let mut net = net(3);
        let first = propose(&mut net, 0, 1, Shape::Unicast);
        let second = propose(&mut net, 1, 2, Shape::Unicast);
        // Each coordinator locks its own replica first.
        while net.deliver_where(|from, to, _| from == to) {}
        net.run();
        let refused = |by, refusal| Outcome::Aborted(AbortReason::Refused { by, refusal });
        assert_eq!(
            net.peers[0].decided,
            [Decided {
                id: first,
                outcome: refused(CoreId(1), second)
            }]
        );
        assert_eq!(
            net.peers[1].decided,
            [Decided {
                id: second,
                outcome: refused(CoreId(0), first)
            }]
        );
        assert!((0..3).all(|n| committed(&net, n).is_none()));
        assert_all_idle(&net, &[0, 1, 2]);
    }

    #[test]
    fn of_two_conflicting_proposals_the_one_that_locks_everywhere_first_commits() {
        let mut net = net(3);
        let first = propose(&mut net, 0, 1, Shape::Flat);
        let second = propose(&mut net, 2, 2, Shape::Flat);
        while net.deliver_where(is_prepare_of(first)) {}
        net.run();
        let outcome = Outcome::Committed(report(3, 0));
        assert_eq!(net.peers[0].decided, [Decided { id: first, outcome }]);
        assert!(matches!(
            net.peers[2].decided[..],
            [Decided { id, outcome: Outcome::Aborted(AbortReason::Refused { refusal, .. }) }]
                if id == second && refusal == first
        ));
        assert!((0..3).all(|n| committed(&net, n) == Some(1)));
        assert_all_idle(&net, &[0, 1, 2]);
    }

    #[test]
    fn a_silent_participant_aborts_the_proposal_at_the_vote_timeout() {
        let mut net = net(3);
        net.crash(CoreId(2));
        let id = propose(&mut net, 0, 1, Shape::Unicast);
        net.run();
        for _ in 1..VOTE_TIMEOUT {
            net.tick();
        }
        assert!(net.peers[0].decided.is_empty());
        net.tick();
        net.run();
        let outcome = Outcome::Aborted(AbortReason::Timeout {
            waiting_for: CoreId(2),
        });
        assert_eq!(net.peers[0].decided, [Decided { id, outcome }]);
        assert_all_idle(&net, &[0, 1]);
    }

    #[test]
    fn a_participant_declared_down_no_longer_votes() {
        let mut net = net(3);
        net.crash(CoreId(2));
        let id = propose(&mut net, 0, 1, Shape::Unicast);
        net.run();
        net.declare_down(CoreId(2));
        net.run();
        let outcome = Outcome::Committed(report(2, 1));
        assert_eq!(net.peers[0].decided, [Decided { id, outcome }]);
        assert!(committed(&net, 1) == Some(1));
        assert_all_idle(&net, &[0, 1]);
    }

    #[test]
    fn participants_abort_when_the_coordinator_dies_before_deciding() {
        let mut net = net(3);
        let id = propose(&mut net, 0, 1, Shape::Unicast);
        while net.deliver_where(is_prepare_of(id)) {}
        net.crash(CoreId(0));
        net.declare_down(CoreId(0));
        net.run();
        assert!(committed(&net, 1).is_none() && committed(&net, 2).is_none());
        assert_all_idle(&net, &[1, 2]);
    }

    #[test]
    fn a_commit_whose_aggregator_routes_by_another_plan_and_misses_a_member_is_not_complete() {
        // From core 0 the tree is {0}, {1: 2}. Core 1 routes by a plan in
        // which 2 is a group of its own, so it leads {1} alone and never
        // forwards the commit to 2.
        let mut net = net(3);
        for cluster in &mut net.clusters {
            cluster.plan = TreePlan::from_domains(&[0, 1, 1]);
        }
        net.clusters[1].plan = TreePlan::from_domains(&[0, 1, 2]);
        let id = propose(&mut net, 0, 5, Shape::Planned);
        net.run();
        // Votes do not pass through aggregators: each participant of the
        // coordinator's own tree votes to it directly, and it commits only
        // with all of them.
        for voter in [0, 1, 2] {
            let vote = TwoPhaseMsg::Vote {
                id,
                vote: Vote::Yes,
            };
            assert!(net.log.contains(&(CoreId(voter), CoreId(0), vote)));
        }
        // The commit round holds the group of 1 to its two targets.
        let outcome = Outcome::Committed(report(2, 1));
        assert_eq!(net.peers[0].decided, [Decided { id, outcome }]);
        assert_eq!(committed(&net, 0), Some(5));
        assert_eq!(committed(&net, 1), Some(5));
        assert_eq!(committed(&net, 2), None, "2 never got the commit");
        assert_all_idle(&net, &[0, 1]);
    }

    fn is_commit(_: CoreId, _: CoreId, m: &Msg) -> bool {
        matches!(m, TwoPhaseMsg::Commit(_))
    }

    #[test]
    fn a_member_in_doubt_learns_the_commit_its_aggregator_forwards() {
        // Flat from 0 over {0, 1, 2}: groups {0} and {1: 2}.
        let mut net = net(3);
        let id = propose(&mut net, 0, 1, Shape::Flat);
        while net.deliver_where(|f, t, m| !is_commit(f, t, m)) {}
        // Core 0 decided and sent the commit to 1, then stops. Core 1
        // forwards it to 2, but 2 hears that 0 is down first and asks 1.
        net.crash(CoreId(0));
        net.declare_down(CoreId(0));
        net.run();
        let inquiry = (CoreId(2), CoreId(1), TwoPhaseMsg::Inquire { id });
        let settled = (
            CoreId(1),
            CoreId(2),
            TwoPhaseMsg::Settled {
                id,
                known: Known::Committed,
            },
        );
        assert!(net.log.contains(&inquiry) && net.log.contains(&settled));
        assert_eq!(committed(&net, 1), Some(1));
        assert_eq!(committed(&net, 2), Some(1));
        assert_all_idle(&net, &[1, 2]);
    }

    #[test]
    fn a_member_in_doubt_aborts_once_its_aggregator_settles_without_a_commit() {
        let mut net = net(3);
        let id = propose(&mut net, 0, 1, Shape::Flat);
        // Every vote arrives but 2's, so 0 never decides.
        while net.deliver_where(|from, _, m| {
            !(from == CoreId(2) && matches!(m, TwoPhaseMsg::Vote { .. }))
        }) {}
        net.crash(CoreId(0));
        net.declare_down(CoreId(0));
        net.run();
        // Both are in doubt: each asks the other and hears as much.
        for (from, to) in [(1, 2), (2, 1)] {
            let inquiry = (CoreId(from), CoreId(to), TwoPhaseMsg::Inquire { id });
            let settled = (
                CoreId(to),
                CoreId(from),
                TwoPhaseMsg::Settled {
                    id,
                    known: Known::InDoubt,
                },
            );
            assert!(net.log.contains(&inquiry) && net.log.contains(&settled));
        }
        assert!(committed(&net, 1).is_none() && committed(&net, 2).is_none());
        assert_all_idle(&net, &[1, 2]);
    }

    #[test]
    fn the_coordinator_and_an_aggregator_failing_together_leave_the_survivors_alike() {
        // From core 0 the tree is {0}, {1: 2}, {3: 4}. The commit reaches
        // aggregator 3 (which forwards it to 4) and not aggregator 1; then
        // cores 0 and 1 stop. Core 2, in doubt with its aggregator gone,
        // learns from 3 that the proposal committed.
        let mut net = net(5);
        for cluster in &mut net.clusters {
            cluster.plan = TreePlan::from_domains(&[0, 1, 1, 2, 2]);
        }
        let id = propose(&mut net, 0, 3, Shape::Planned);
        while net.deliver_where(|from, to, m| !(is_commit(from, to, m) && to == CoreId(1))) {}
        assert_eq!(committed(&net, 3), Some(3));
        assert_eq!(committed(&net, 4), Some(3));
        net.crash(CoreId(0));
        net.crash(CoreId(1));
        net.declare_down(CoreId(0));
        net.declare_down(CoreId(1));
        net.run();
        assert_eq!(committed(&net, 2), Some(3), "core 2 learned the commit");
        assert_all_idle(&net, &[2, 3, 4]);
        let answer = (
            CoreId(3),
            CoreId(2),
            TwoPhaseMsg::Settled {
                id,
                known: Known::Committed,
            },
        );
        assert!(net.log.contains(&answer), "{:?}", net.log);
    }

    #[test]
    fn an_inquiry_is_answered_only_once_the_coordinator_is_down_to_the_one_asked() {
        // Core 0 commits by unicast and stops after sending the commit to 1
        // and 2 but before sending it to 3. Core 3 hears first that 0 is
        // down and asks 1 and 2, which have not heard yet: they answer once
        // they have, 2 after taking the commit still on its way to it.
        let mut net = net(4);
        let id = propose(&mut net, 0, 4, Shape::Unicast);
        while net.deliver_where(|from, to, m| !is_commit(from, to, m) || to == CoreId(1)) {}
        net.crash(CoreId(0));
        net.drop_where(|_, to, m| is_commit(CoreId(0), to, m) && to == CoreId(3));
        net.clusters[3].down.insert(CoreId(0));
        let sends = net.peers[3].core_down(CoreId(0), &net.clusters[3]);
        net.send(CoreId(3), sends);
        while net.deliver_where(|from, _, _| from != CoreId(0)) {}
        assert!(
            !net.log
                .iter()
                .any(|(_, to, m)| *to == CoreId(3) && matches!(m, TwoPhaseMsg::Settled { .. })),
            "answered before the coordinator was down to the one asked"
        );
        assert_eq!(committed(&net, 3), None, "still in doubt");
        net.declare_down(CoreId(0));
        net.run();
        assert_eq!(committed(&net, 2), Some(4));
        assert_eq!(committed(&net, 3), Some(4), "core 3 learned the commit");
        for answerer in [1, 2] {
            let answer = (
                CoreId(answerer),
                CoreId(3),
                TwoPhaseMsg::Settled {
                    id,
                    known: Known::Committed,
                },
            );
            assert!(net.log.contains(&answer), "no answer from {answerer}");
        }
        assert_all_idle(&net, &[1, 2, 3]);
    }
}
