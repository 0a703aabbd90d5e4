//! A small network for the unit tests: peers exchange messages through one
//! queue, delivered oldest first or picked by the test, always in order
//! between any two peers (what URPC guarantees). The simulator in `sim/` is
//! the full harness; this one lets a test script one interleaving by hand.
//! Also the small helpers the unit tests share.

use crate::{Cluster, CoreId, Report, Route, Shape, Tree, TreePlan};
use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::fmt::Debug;
use proptest::prelude::*;

/// Core ids from their numbers.
pub fn ids(raw: &[u16]) -> Vec<CoreId> {
    raw.iter().map(|&n| CoreId(n)).collect()
}

pub fn report(acked: u16, unreached: u16) -> Report {
    Report { acked, unreached }
}

/// Any shape.
pub fn shape() -> impl Strategy<Value = Shape> {
    prop::sample::select(Shape::ALL.to_vec())
}

/// One core's view: the route's targets, the tree plan, and who is down.
#[derive(Debug, Clone)]
pub struct TestCluster {
    pub targets: Vec<CoreId>,
    pub plan: TreePlan,
    pub down: BTreeSet<CoreId>,
}

impl Cluster for TestCluster {
    fn tree(&self, initiator: CoreId, route: Route) -> Tree {
        Tree::build(route.shape, initiator, &self.targets, &self.plan)
    }
    fn is_down(&self, core: CoreId) -> bool {
        self.down.contains(&core)
    }
}

pub type Sends<M> = Vec<(CoreId, M)>;

/// A protocol instance under test, with what it records of its events.
pub trait Peer {
    type Msg: Copy + Debug;
    fn receive(
        &mut self,
        from: CoreId,
        message: Self::Msg,
        cluster: &TestCluster,
    ) -> Sends<Self::Msg>;
    fn core_down(&mut self, core: CoreId, cluster: &TestCluster) -> Sends<Self::Msg>;
    fn tick(&mut self, cluster: &TestCluster) -> Sends<Self::Msg>;
}

pub struct Net<P: Peer> {
    pub peers: Vec<P>,
    pub clusters: Vec<TestCluster>,
    queue: VecDeque<(CoreId, CoreId, P::Msg)>,
    crashed: BTreeSet<CoreId>,
    /// Every message delivered, as (from, to, message).
    pub log: Vec<(CoreId, CoreId, P::Msg)>,
}

impl<P: Peer> Net<P> {
    /// `peers[i]` is core `i`; all of them are the targets, and every peer
    /// routes `Planned` rounds by `plan`.
    /// (With the `mutants` feature, the mutant `ATOLL_MUTANT` names is
    /// switched on, so that a mutant can be run against these tests.)
    pub fn new(peers: Vec<P>, plan: TreePlan) -> Self {
        let mutant = std::env::var("ATOLL_MUTANT").ok().map(|name| {
            crate::mutants::Mutant::from_name(&name)
                .unwrap_or_else(|| panic!("ATOLL_MUTANT={name} names no mutant"))
        });
        crate::mutants::set(mutant).expect("ATOLL_MUTANT needs the mutants feature");
        let cluster = TestCluster {
            targets: (0..peers.len() as u16).map(CoreId).collect(),
            plan,
            down: BTreeSet::new(),
        };
        Self {
            clusters: alloc::vec![cluster; peers.len()],
            peers,
            queue: VecDeque::new(),
            crashed: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    pub fn send(&mut self, from: CoreId, sends: Sends<P::Msg>) {
        for (to, message) in sends {
            if !self.crashed.contains(&to) {
                self.queue.push_back((from, to, message));
            }
        }
    }

    /// Delivers the oldest message that `pick` accepts among those first in
    /// their channel; false when there is none.
    pub fn deliver_where(&mut self, pick: impl Fn(CoreId, CoreId, &P::Msg) -> bool) -> bool {
        let mut blocked = BTreeSet::new();
        let found = self.queue.iter().position(|&(from, to, ref m)| {
            let first_in_channel = blocked.insert((from, to));
            first_in_channel && pick(from, to, m)
        });
        let Some(at) = found else { return false };
        let (from, to, message) = self.queue.remove(at).expect("found above");
        self.log.push((from, to, message));
        let i = usize::from(to.0);
        let sends = self.peers[i].receive(from, message, &self.clusters[i]);
        self.send(to, sends);
        true
    }

    /// Delivers everything, oldest first.
    pub fn run(&mut self) {
        while self.deliver_where(|_, _, _| true) {}
    }

    /// Drops the messages in flight that `pick` picks, as if never sent.
    pub fn drop_where(&mut self, pick: impl Fn(CoreId, CoreId, &P::Msg) -> bool) {
        self.queue.retain(|(from, to, m)| !pick(*from, *to, m));
    }

    /// `core` stops: messages to it are dropped from now on. The others are
    /// not told (see `declare_down`).
    pub fn crash(&mut self, core: CoreId) {
        self.crashed.insert(core);
        self.queue.retain(|&(_, to, _)| to != core);
    }

    /// Tells every live peer that `core` is down, each after the messages
    /// `core` sent it were delivered (what a host guarantees).
    pub fn declare_down(&mut self, core: CoreId) {
        while self.deliver_where(|from, _, _| from == core) {}
        for i in 0..self.peers.len() {
            let me = CoreId(i as u16);
            if !self.crashed.contains(&me) {
                self.clusters[i].down.insert(core);
                let sends = self.peers[i].core_down(core, &self.clusters[i]);
                self.send(me, sends);
            }
        }
    }

    /// One tick on every live peer.
    pub fn tick(&mut self) {
        for i in 0..self.peers.len() {
            let me = CoreId(i as u16);
            if !self.crashed.contains(&me) {
                let sends = self.peers[i].tick(&self.clusters[i]);
                self.send(me, sends);
            }
        }
    }
}
