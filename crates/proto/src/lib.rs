//! Atoll's agreement protocols, written as sans-IO state machines
//! (`docs/architecture.md` §2.3).
//!
//! A protocol instance lives on one core. It is fed one input at a time: a
//! message from core `n`, a local request, a timer tick, or the membership's
//! word that a core is down. It answers by pushing into an [`Outbox`]: the
//! messages to send and the events for its host (things to apply here,
//! operations that completed). It never touches a clock, a channel or the
//! hardware, so the same code runs in the kernel, in hosted mode and in the
//! deterministic simulator, and small configurations are model-checked.
//! Time is counted in ticks: a timeout is a number of [`Tick`]s the host
//! feeds, not a duration.
//!
//! The protocols:
//! - [`multicast`]: a round that delivers a payload to every target of a
//!   routing [`Tree`] and aggregates their acknowledgements (one aggregator
//!   per group). It is the single-phase commit used for TLB shootdown; the
//!   tree's [`Shape`] selects unicast, a flat multicast or a topology-aware
//!   one, whose groups a [`TreePlan`] gives.
//! - [`membership`]: the view of which cores take part, agreed on each
//!   change by quorum and installed with a flush, and the gate that hands
//!   a protocol message over only in the view it was sent in.
//! - [`two_phase`]: two-phase commit with abort. Participants vote through a
//!   [`two_phase::Resource`] that locks what a proposal touches; the commit
//!   decision travels as a multicast round, so an unmap's commit carries its
//!   TLB invalidation over the same tree.
//!
//! Every message is a small fixed-size value with a [`wire`] encoding that
//! fits a URPC slot.
//!
//! What the host must guarantee (the simulator and the model checks assume
//! exactly this):
//! - messages between two cores arrive in the order they were sent, and none
//!   is lost while both cores are up (URPC rings give both);
//! - the messages and events of one input are acted on together: a core does
//!   not stop half way through sending them, and it executes the events
//!   (for example a TLB invalidation) before it sends the messages (which
//!   may acknowledge them);
//! - a core that is down stays down (crash-stop), and a core is told
//!   `core_down(n)` only after every message `n` sent it has been delivered
//!   (the host drains the ring from `n` first).
//!
//! This crate depends on `core` and `alloc` only, and on nothing else of
//! Atoll.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

use alloc::vec::Vec;

pub mod membership;
pub mod multicast;
pub mod mutants;
#[cfg(test)]
mod testnet;
pub mod tree;
pub mod two_phase;
pub mod wire;

pub use tree::{Group, Route, Shape, Tree, TreePlan};

/// A core, as a protocol participant (its monitor). Core ids are the hosts'
/// own numbering, for
/// example core indices; nothing here treats any id as special.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub u16);

/// Names one protocol operation (a proposal or a multicast round): the core
/// that started it and a sequence number there. The starting core picks
/// numbers it has not used, so ids are unique across the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId {
    pub origin: CoreId,
    pub seq: u32,
}

/// How a delivery went: `acked` targets applied it and confirmed, and
/// `unreached` did not confirm, because they are down or did not answer in
/// time. A finished round accounts for every target exactly once.
///
/// The counts are the initiator's, over its own tree: it holds each group's
/// acknowledgement to the size that tree gives the group, so a group whose
/// aggregator acknowledges fewer targets (it derived its members from
/// another plan) counts the shortfall as unreached, and one that
/// acknowledges more counts no more than the group. It checks counts, not
/// which targets answered, so every core must still route by the same plan
/// (see [`multicast`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Report {
    pub acked: u16,
    pub unreached: u16,
}

impl Report {
    /// Whether every target confirmed: no target of the initiator's tree,
    /// and no shortfall of a group's acknowledgement, counts unreached.
    pub fn is_complete(&self) -> bool {
        self.unreached == 0
    }

    fn add(&mut self, other: Report) {
        self.acked += other.acked;
        self.unreached += other.unreached;
    }
}

/// What one input produced: messages to send (`(destination, message)`, in
/// order; a destination may be the core itself, which its host delivers
/// locally) and events for the host.
#[derive(Debug, PartialEq, Eq)]
pub struct Outbox<M, E> {
    pub sends: Vec<(CoreId, M)>,
    pub events: Vec<E>,
}

impl<M, E> Default for Outbox<M, E> {
    fn default() -> Self {
        Self {
            sends: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<M, E> Outbox<M, E> {
    fn send(&mut self, to: CoreId, message: M) {
        self.sends.push((to, message));
    }

    fn emit(&mut self, event: E) {
        self.events.push(event);
    }
}

/// What a core knows about the others, which the protocols ask instead of
/// holding a copy: the trees that routes describe, and the membership.
pub trait Cluster {
    /// The tree a round of `route` started by `initiator` travels. Every core
    /// must give the same tree for the same arguments: an aggregator finds
    /// the members it forwards to by asking for the initiator's tree.
    fn tree(&self, initiator: CoreId, route: Route) -> Tree;
    /// Whether the membership has declared `core` down.
    fn is_down(&self, core: CoreId) -> bool;
}

/// The name the docs use for one unit of protocol time: the host feeds
/// `tick` inputs at a rate of its choosing (the kernel from its timer), and
/// timeouts are counted in them.
pub type Tick = u32;

/// Cores up to which the protocols' and the detector's default periods hold
/// unchanged.
pub const DEFAULT_CORES: u64 = 64;

/// How much longer than on [`DEFAULT_CORES`] cores what grows with the
/// square of the core count may take on `cores` (1 up to it, then the
/// square of `cores / DEFAULT_CORES`, rounded up): all-to-all heartbeats,
/// a core's derivation of every root's tree, and, under emulation on a
/// fixed number of host CPUs, the time each core waits to run. Periods and
/// timeouts scale by it, so the heartbeat traffic of the whole machine
/// stays what it is at 64 cores, and a failure is noticed later.
pub fn square_growth(cores: u64) -> u64 {
    cores.max(1).div_ceil(DEFAULT_CORES).pow(2)
}
