//! Each core's replicated state, built on the protocols of `atoll-proto`.
//!
//! Address spaces that span several cores have their page mappings
//! replicated on every core that holds them ([`MappingTable`], reached
//! through the [`Replica`] trait). A change goes through two-phase commit:
//! the proposing core applies it tentatively on its own replica, the other
//! holders vote (locking the page), and the change is committed everywhere
//! or rolled back. The commit travels as a multicast round over the route's
//! tree, and committing an unmap on a core also invalidates that core's
//! TLB entry, so an unmap completes only when every holder has stopped
//! using the old translation. A TLB shootdown on its own is a multicast
//! round (single-phase commit). Cores of one cache domain may share one
//! table behind a lock instead, each through a [`SharedReplica`].
//!
//! The [`Replicator`] is sans-IO like the protocols: its host (each core's
//! monitor, `atoll-monitor`, or the simulator, `sim/`) feeds it [`Input`]s and
//! requests and acts on what it puts in the [`Actions`]: messages to send,
//! [`Effect`]s on this core's page tables and TLB, and [`Completion`]s of
//! requests. It depends on `atoll-proto`, `core`, `alloc` and `spin` (the
//! shared replica's lock), and on no hardware.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod change;
mod message;
mod replica;
mod shared;

pub use change::{Change, Invalidation, Mapping, Refusal, SpaceId};
pub use message::{MESSAGE_BYTES, Message};
pub use replica::{Entry, Fnv1a, MappingTable, Replica};
pub use shared::SharedReplica;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use atoll_proto::multicast::{Multicast, RoundEvent, RoundOutbox, RoundTimeouts};
use atoll_proto::mutants::{self, Mutant};
use atoll_proto::two_phase::{AbortReason, Outcome, Resource, TwoPhase, TwoPhaseOutbox};
use atoll_proto::{Cluster, Route, Shape, Tick, Tree};
pub use atoll_proto::{CoreId, OpId, Report, TreePlan};

/// What the host must do on this core, in order, before it sends the
/// messages of the same step (they may acknowledge it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Enter the mapping in this core's page table for `space` (in place
    /// of the page's mapping, for a protect: an `InvalidateTlb` follows).
    MapPage {
        space: SpaceId,
        vaddr: u64,
        mapping: Mapping,
    },
    /// Remove the page from this core's page table for `space`. An
    /// `InvalidateTlb` for the page follows.
    UnmapPage { space: SpaceId, vaddr: u64 },
    /// Drop this core's cached translation of the page (`invlpg` when
    /// `space` is the active address space; nothing to do when it is not
    /// loaded and not cached under a PCID).
    InvalidateTlb { space: SpaceId, vaddr: u64 },
}

/// The end of a request submitted on this core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Completion {
    /// A map or unmap is committed. `report` counts the holders that
    /// confirmed applying it (for an unmap: and invalidating their TLB) and
    /// those that did not: down, or silent past the round timeout.
    Committed { id: OpId, report: Report },
    /// A map or unmap was not committed; no replica keeps any of it.
    Aborted {
        id: OpId,
        reason: AbortReason<Refusal>,
    },
    /// A shootdown finished; `report` as for `Committed`.
    ShootdownDone { id: OpId, report: Report },
}

impl Completion {
    pub fn id(&self) -> OpId {
        match *self {
            Completion::Committed { id, .. }
            | Completion::Aborted { id, .. }
            | Completion::ShootdownDone { id, .. } => id,
        }
    }
}

/// A request a local client (the shell, a syscall) submits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    Map {
        space: SpaceId,
        vaddr: u64,
        mapping: Mapping,
    },
    Unmap {
        space: SpaceId,
        vaddr: u64,
    },
    /// Give a mapped page new flags (its frame stays).
    Protect {
        space: SpaceId,
        vaddr: u64,
        flags: u64,
    },
    /// Invalidate the page's TLB entry on every holder of `space`, without
    /// changing the mapping.
    Shootdown {
        space: SpaceId,
        vaddr: u64,
    },
}

impl Request {
    /// The change a map, unmap or protect proposes, or the invalidation a
    /// shootdown multicasts.
    fn work(self) -> Result<Change, Invalidation> {
        match self {
            Request::Map {
                space,
                vaddr,
                mapping,
            } => Ok(Change::Map {
                space,
                vaddr,
                mapping,
            }),
            Request::Unmap { space, vaddr } => Ok(Change::Unmap { space, vaddr }),
            Request::Protect {
                space,
                vaddr,
                flags,
            } => Ok(Change::Protect {
                space,
                vaddr,
                flags,
            }),
            Request::Shootdown { space, vaddr } => Err(Invalidation { space, vaddr }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// This core was not told of the space (`Replicator::add_space`).
    UnknownSpace,
    /// An address is not 4 KiB aligned.
    Misaligned,
}

/// An input for [`Replicator::handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A message another core sent this one.
    Message { from: CoreId, message: Message },
    /// One tick of the host's timer passed.
    Tick,
    /// The membership declared `core` down. Feed it only after every
    /// message `core` sent this core has been handled.
    CoreDown(CoreId),
    /// `core`, down until now, is back as a new kernel whose replica
    /// catches up with the others' before it votes: rounds started from now
    /// on include it. Rounds in flight keep the participants they started
    /// with.
    CoreUp(CoreId),
}

/// Timeouts in ticks; see `atoll_proto::two_phase` and
/// `atoll_proto::multicast`. `relay` should be shorter than `round`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// How long a proposal waits for votes before it aborts.
    pub vote: Tick,
    /// How long a commit or shootdown round waits before it reports the
    /// silent targets unreached.
    pub round: Tick,
    /// How long an aggregator waits for its members.
    pub relay: Tick,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Config {
    pub timeouts: Timeouts,
    /// The groups of the [`Shape::Planned`] trees, for each initiator (see
    /// [`TreePlan`]). Every core must be given the same plan: an aggregator
    /// finds its members in the initiator's tree as its own plan makes it.
    /// [`TreePlan::new`] (no groups: every holder is reached on its own)
    /// will do until a plan is known; [`Replicator::set_plan`] installs it.
    pub plan: TreePlan,
}

/// What a step produced. The host executes `effects` in order, then sends
/// `messages` (never addressed to this core: it delivers those itself),
/// then hands `completions` to the requests' owners. It may reuse the
/// actions after draining them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Actions {
    pub messages: Vec<(CoreId, Message)>,
    pub effects: Vec<Effect>,
    pub completions: Vec<Completion>,
}

/// What this core knows of the others: the spaces' holders, the tree plan,
/// and who is down.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Directory {
    spaces: BTreeMap<SpaceId, Vec<CoreId>>,
    plan: TreePlan,
    down: BTreeSet<CoreId>,
}

impl Cluster for Directory {
    fn tree(&self, initiator: CoreId, route: Route) -> Tree {
        let holders = self
            .spaces
            .get(&SpaceId(route.set))
            .map_or(&[][..], Vec::as_slice);
        Tree::build(route.shape, initiator, holders, &self.plan)
    }

    fn is_down(&self, core: CoreId) -> bool {
        self.down.contains(&core)
    }
}

/// The replica as the two-phase commit sees it: committing also emits the
/// effects on this core's page table and TLB.
struct Applier<'a, R> {
    replica: &'a mut R,
    effects: &'a mut Vec<Effect>,
}

impl<R: Replica> Resource for Applier<'_, R> {
    type Change = Change;
    type Refusal = Refusal;

    fn prepare(&mut self, id: OpId, change: &Change) -> Result<(), Refusal> {
        self.replica.prepare(id, change)
    }

    fn commit(&mut self, id: OpId, change: &Change) {
        self.replica.commit(id, change);
        match *change {
            Change::Map {
                space,
                vaddr,
                mapping,
            } => self.effects.push(Effect::MapPage {
                space,
                vaddr,
                mapping,
            }),
            Change::Unmap { space, vaddr } => {
                self.effects.push(Effect::UnmapPage { space, vaddr });
                if !mutants::active(Mutant::UnmapKeepsTlb) {
                    self.effects.push(Effect::InvalidateTlb { space, vaddr });
                }
            }
            Change::Protect { space, vaddr, .. } => {
                // The page was mapped when the holder voted, and its lock
                // kept it so: the replica has it with the new flags now.
                if let Some(mapping) = self.replica.lookup(space, vaddr) {
                    self.effects.push(Effect::MapPage {
                        space,
                        vaddr,
                        mapping,
                    });
                    if !mutants::active(Mutant::ProtectKeepsTlb) {
                        self.effects.push(Effect::InvalidateTlb { space, vaddr });
                    }
                }
            }
        }
    }

    fn abort(&mut self, id: OpId, change: &Change) {
        self.replica.abort(id, change);
    }
}

const PAGE_MASK: u64 = 0xfff;

/// One core's replicator: its replica and its part in every protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Replicator<R: Replica = MappingTable> {
    me: CoreId,
    timeouts: Timeouts,
    directory: Directory,
    agreement: TwoPhase<Change>,
    shootdowns: Multicast<Invalidation>,
    replica: R,
    next_seq: u32,
}

/// Messages this core sent itself, delivered before the step returns.
type Local = VecDeque<Message>;

impl<R: Replica> Replicator<R> {
    pub fn new(me: CoreId, config: Config, replica: R) -> Self {
        let Timeouts { vote, round, relay } = config.timeouts;
        let rounds = RoundTimeouts { round, relay };
        Self {
            me,
            timeouts: config.timeouts,
            directory: Directory {
                spaces: BTreeMap::new(),
                plan: config.plan,
                down: BTreeSet::new(),
            },
            agreement: TwoPhase::new(me, vote, rounds),
            shootdowns: Multicast::new(me, rounds),
            replica,
            next_seq: 0,
        }
    }

    pub fn id(&self) -> CoreId {
        self.me
    }

    /// The timeouts the protocols start with now.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Times the proposals and rounds started from now on by `timeouts`;
    /// those under way keep the deadlines they started with.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        let Timeouts { vote, round, relay } = timeouts;
        let rounds = RoundTimeouts { round, relay };
        self.timeouts = timeouts;
        self.agreement.set_timeouts(vote, rounds);
        self.shootdowns.set_timeouts(rounds);
    }

    /// Installs `plan` for the [`Shape::Planned`] trees from now on, in
    /// place of the one in the [`Config`] or the last one set (the kernel
    /// builds it from the SKB after its boot measurements).
    ///
    /// Every core must be given the same plan, and a round must not
    /// straddle the change: an aggregator routing a round by another plan
    /// than its initiator's may leave targets out of it. The initiator
    /// holds each group to the size its own tree gives it, so a group that
    /// comes up short is reported unreached, but it checks counts only: a
    /// plan that swaps a member for a target of another group can still
    /// miss that member in a complete report, and a participant missed by
    /// a commit keeps the proposal's lock. So install it on every core
    /// while no `Planned` round (no commit or shootdown over such a route)
    /// is in flight anywhere, for example before the first request that
    /// uses the shape.
    pub fn set_plan(&mut self, plan: TreePlan) {
        self.directory.plan = plan;
    }

    /// Declares `space`, held by `holders` (this core among them or not).
    /// Every core that takes part in the space's protocols must be told the
    /// same holders, since they route by them.
    pub fn add_space(&mut self, space: SpaceId, holders: &[CoreId]) {
        let mut holders = holders.to_vec();
        holders.sort_unstable();
        holders.dedup();
        self.directory.spaces.insert(space, holders);
    }

    /// The id the next request submitted here will have: every request
    /// from this id on is routed by the directory as it is now.
    pub fn next_id(&self) -> OpId {
        OpId {
            origin: self.me,
            seq: self.next_seq,
        }
    }

    /// Whether this core is one of `space`'s holders.
    pub fn holds(&self, space: SpaceId) -> bool {
        self.directory
            .spaces
            .get(&space)
            .is_some_and(|holders| holders.contains(&self.me))
    }

    /// Starts `request`, routed over a tree of `shape`; its [`Completion`]
    /// comes in a later (or this) step with the returned id. A map or unmap
    /// is applied tentatively to this core's replica before this returns,
    /// when this core holds the space.
    pub fn submit(
        &mut self,
        request: Request,
        shape: Shape,
        out: &mut Actions,
    ) -> Result<OpId, SubmitError> {
        let (space, addresses) = match request {
            Request::Map {
                space,
                vaddr,
                mapping,
            } => (space, vaddr | mapping.paddr),
            Request::Unmap { space, vaddr }
            | Request::Shootdown { space, vaddr }
            | Request::Protect { space, vaddr, .. } => (space, vaddr),
        };
        if !self.directory.spaces.contains_key(&space) {
            return Err(SubmitError::UnknownSpace);
        }
        if addresses & PAGE_MASK != 0 {
            return Err(SubmitError::Misaligned);
        }
        let id = OpId {
            origin: self.me,
            seq: self.next_seq,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        let route = Route {
            set: space.0,
            shape,
        };
        let mut local = Local::new();
        match request.work() {
            Ok(change) => {
                self.agree(&mut local, out, |agreement, directory, applier, inner| {
                    agreement.propose(id, route, change, directory, applier, inner)
                });
            }
            Err(payload) => {
                self.shoot(&mut local, out, |shootdowns, directory, inner| {
                    shootdowns.start(id, route, payload, directory, inner)
                });
            }
        }
        self.deliver_local(local, out);
        Ok(id)
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input, out: &mut Actions) {
        let mut local = Local::new();
        match input {
            Input::Message { from, message } => self.dispatch(from, message, &mut local, out),
            Input::Tick => {
                self.agree(&mut local, out, |agreement, directory, applier, inner| {
                    agreement.on_tick(directory, applier, inner)
                });
                self.shoot(&mut local, out, |shootdowns, _, inner| {
                    shootdowns.on_tick(inner)
                });
            }
            Input::CoreDown(core) => {
                self.directory.down.insert(core);
                self.agree(&mut local, out, |agreement, directory, applier, inner| {
                    agreement.on_core_down(core, directory, applier, inner)
                });
                self.shoot(&mut local, out, |shootdowns, directory, inner| {
                    shootdowns.on_core_down(core, directory, inner)
                });
            }
            Input::CoreUp(core) => {
                self.directory.down.remove(&core);
            }
        }
        self.deliver_local(local, out);
    }

    /// The cores the membership declared down and that have not come back.
    pub fn down(&self) -> impl Iterator<Item = CoreId> + '_ {
        self.directory.down.iter().copied()
    }

    /// Takes `entries` (space, page address, mapping) as this replica's
    /// committed mappings, as a member's replica holds them, and emits the
    /// effects that enter them in this core's page tables: how a core that
    /// comes back catches up. Call it while the replica is empty and no
    /// protocol runs here (the host holds the protocols' messages until it
    /// has), so that no lock or tentative change is overwritten.
    pub fn restore(&mut self, entries: &[(SpaceId, u64, Mapping)], out: &mut Actions) {
        for &(space, vaddr, mapping) in entries {
            self.replica.restore(space, vaddr, mapping);
            out.effects.push(Effect::MapPage {
                space,
                vaddr,
                mapping,
            });
        }
    }

    /// This core's replica, to read (`entries`, `hash`).
    pub fn replica(&self) -> &R {
        &self.replica
    }

    /// Whether no protocol is in progress here: nothing to coordinate, vote
    /// on, relay or wait for.
    pub fn is_idle(&self) -> bool {
        self.agreement.is_idle() && self.shootdowns.is_idle()
    }

    /// Whether a tick would change anything; a host may stop its timer for
    /// this core while it is false.
    pub fn has_timers(&self) -> bool {
        self.agreement.has_timers() || self.shootdowns.has_timers()
    }

    fn dispatch(&mut self, from: CoreId, message: Message, local: &mut Local, out: &mut Actions) {
        match message {
            Message::Agreement(m) => {
                self.agree(local, out, |agreement, directory, applier, inner| {
                    agreement.on_message(from, m, directory, applier, inner)
                });
            }
            Message::Shootdown(m) => {
                self.shoot(local, out, |shootdowns, directory, inner| {
                    shootdowns.on_message(from, m, directory, inner)
                });
            }
        }
    }

    fn deliver_local(&mut self, mut local: Local, out: &mut Actions) {
        while let Some(message) = local.pop_front() {
            self.dispatch(self.me, message, &mut local, out);
        }
    }

    /// Runs `step` on the two-phase commit, committing through the replica
    /// (whose effects go straight to `out`), and routes what it produced.
    fn agree(
        &mut self,
        local: &mut Local,
        out: &mut Actions,
        step: impl FnOnce(
            &mut TwoPhase<Change>,
            &Directory,
            &mut Applier<'_, R>,
            &mut TwoPhaseOutbox<Change, Refusal>,
        ),
    ) {
        let mut inner = TwoPhaseOutbox::default();
        let mut applier = Applier {
            replica: &mut self.replica,
            effects: &mut out.effects,
        };
        step(
            &mut self.agreement,
            &self.directory,
            &mut applier,
            &mut inner,
        );
        self.route(inner.sends, Message::Agreement, local, out);
        for decided in inner.events {
            let id = decided.id;
            out.completions.push(match decided.outcome {
                Outcome::Committed(report) => Completion::Committed { id, report },
                Outcome::Aborted(reason) => Completion::Aborted { id, reason },
            });
        }
    }

    /// Runs `step` on the shootdown rounds and acts on what it produced.
    fn shoot(
        &mut self,
        local: &mut Local,
        out: &mut Actions,
        step: impl FnOnce(&mut Multicast<Invalidation>, &Directory, &mut RoundOutbox<Invalidation>),
    ) {
        let mut inner = RoundOutbox::default();
        step(&mut self.shootdowns, &self.directory, &mut inner);
        self.route(inner.sends, Message::Shootdown, local, out);
        for event in inner.events {
            match event {
                RoundEvent::Deliver {
                    payload: Invalidation { space, vaddr },
                    ..
                } => out.effects.push(Effect::InvalidateTlb { space, vaddr }),
                RoundEvent::Done { round, report } => {
                    let done = Completion::ShootdownDone { id: round, report };
                    out.completions.push(done);
                }
            }
        }
    }

    /// Queues messages to this core for local delivery, the rest for the
    /// host, keeping their order.
    fn route<M>(
        &self,
        sends: Vec<(CoreId, M)>,
        wrap: fn(M) -> Message,
        local: &mut Local,
        out: &mut Actions,
    ) {
        for (to, m) in sends {
            match to == self.me {
                true => local.push_back(wrap(m)),
                false => out.messages.push((to, wrap(m))),
            }
        }
    }
}

#[cfg(test)]
mod tests;
