//! This core's replica of the mappings, as the monitor hosts it.
//!
//! Every core holds a replica of the test space's mapping table, run by an
//! `atoll-replica` [`Replicator`]: a map or unmap is proposed by one core,
//! agreed by two-phase commit with every holder, and an unmap is finished
//! by a TLB shootdown carried by the commit's multicast. The [`Mappings`]
//! host that replicator: they feed it the protocol messages that arrive
//! (`Replicate`), the ticks, and the requests of the services, and turn
//! what it produces into effects on this core's page tables, messages on
//! the links, and events for the services that asked.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use atoll_proto::mutants::{self, Mutant};
use atoll_proto::{CoreId, Shape, TreePlan};
use atoll_replica::{
    Actions, Completion, Config as ReplicaConfig, Input, Mapping, MappingTable, OpId, Replica,
    Replicator, Request, SpaceId, SubmitError, Timeouts,
};

use crate::calls::{Event, OpEvent, OpRef};
use crate::links::Links;
use crate::output::{Effect, Output};
use crate::trace::{TraceEvent, TraceKind};
use crate::vm::messages::{
    Protocol, Replicate, TEST_SPACE, shootdown_space, shootdown_targets, timeouts_for,
};
use crate::wire::Wire;
use atoll_proto::membership::{Detector, Members};

/// What the mappings may use while they run a step: the links to send
/// their protocol messages on, the events for completions, the output.
/// The mappings live in `Base` beside these fields, so a service borrows
/// them apart (`Cx::mappings`) rather than through `Cx`, which would hold
/// the mappings too.
pub(crate) struct MappingCx<'a> {
    pub(crate) now: u64,
    pub(crate) tick: u64,
    pub(crate) tracing: bool,
    pub(crate) links: &'a mut Links,
    pub(crate) events: &'a mut VecDeque<Event>,
    pub(crate) out: &'a mut Output,
}

impl MappingCx<'_> {
    pub fn effect(&mut self, effect: Effect) {
        self.out.effects.push(effect);
    }

    pub fn send(&mut self, to: CoreId, message: Wire) {
        self.links
            .transmit(self.now, self.tick, self.tracing, to, 0, &message, self.out);
    }

    pub fn complete(&mut self, op: OpRef, completion: Completion) {
        self.events.push_back(Event {
            op,
            event: OpEvent::Mapping(completion),
        });
    }

    pub fn phase(&mut self, name: &'static str, detail: u64) {
        if self.tracing {
            self.out.trace.push(TraceEvent {
                detail,
                ..TraceEvent::new(self.now, TraceKind::Phase, name)
            });
        }
    }
}

/// This core's replica of the mappings, and its part in their protocols.
pub struct Mappings {
    replicator: Replicator<MappingTable>,
    /// The frame this core's mappings point at.
    frame: u64,
    /// Which operation asked for each request this core submitted.
    owners: BTreeMap<OpId, OpRef>,
    /// The cores `VmSpan` asked to hold the test space (all, at first).
    span: RangeInclusive<u16>,
    /// The cores of the span that are members: the test space's holders.
    holders: Members,
    /// The cores that may hold a space: every core until the first view is
    /// committed here, then every core of a view committed here.
    members: Members,
    /// Whether a view was committed here yet.
    viewed: bool,
    /// For each core counted up (back, or new) by the last view committed
    /// here: the sequence number of the first proposal of this core that
    /// includes it.
    counted_up: BTreeMap<CoreId, u32>,
    boot_core: CoreId,
}

impl Mappings {
    pub(crate) fn new(
        me: CoreId,
        cores: u16,
        boot_core: CoreId,
        frame: u64,
        detector: Detector,
    ) -> Self {
        // `Planned` rounds go unicast until the knowledge base's trees are
        // installed (`set_plan`), which the boot core has every core do
        // before the shell starts.
        let config = ReplicaConfig {
            timeouts: timeouts_for(detector),
            plan: TreePlan::new(),
        };
        let replicator = Replicator::new(me, config, MappingTable::new());
        let mut mappings = Self {
            replicator,
            frame,
            owners: BTreeMap::new(),
            span: 0..=cores.saturating_sub(1),
            holders: Members::new(),
            members: (0..cores).map(CoreId).collect(),
            viewed: false,
            counted_up: BTreeMap::new(),
            boot_core,
        };
        mappings.declare_spaces();
        mappings
    }

    /// Declares every space with its holders among the members: the test
    /// space held by the span, and `bench shootdown`'s spaces by the boot
    /// core and the first members that are not the boot core.
    fn declare_spaces(&mut self) {
        let span = self.span.clone();
        self.holders = self
            .members
            .iter()
            .filter(|core| span.contains(&core.0))
            .collect();
        let holders: Vec<CoreId> = self.holders.iter().collect();
        self.replicator.add_space(TEST_SPACE, &holders);
        let members: Vec<CoreId> = self.members.iter().collect();
        for targets in 1..self.members.len() as u16 {
            let holders: Vec<CoreId> = core::iter::once(self.boot_core)
                .chain(shootdown_targets(&members, self.boot_core, targets))
                .collect();
            self.replicator
                .add_space(shootdown_space(targets), &holders);
        }
    }

    /// A view is committed here (this core sends in it from now on): its
    /// members may hold spaces from now on, with those of the views before
    /// (a member that left stays one, counted down), and a member that left
    /// and is back counts up again, so that every round started from now on
    /// includes it. Before the first view, every core may hold spaces.
    pub(crate) fn view_stamped(&mut self, cx: &mut MappingCx<'_>, members: Members) {
        let may_hold = match self.viewed {
            true => self.members.union(members),
            false => members,
        };
        self.viewed = true;
        let arrived = may_hold.minus(self.members);
        if may_hold != self.members {
            self.members = may_hold;
            self.declare_spaces();
        }
        let back: Vec<CoreId> = self
            .replicator
            .down()
            .filter(|&core| members.contains(core))
            .collect();
        for &core in &back {
            self.input(cx, Input::CoreUp(core));
        }
        let next = self.replicator.next_id().seq;
        self.counted_up = back
            .into_iter()
            .chain(arrived.iter())
            .map(|core| (core, next))
            .collect();
    }

    /// Whether this core's proposal `id` includes `core`: it was proposed
    /// after the view that counted `core` up, or `core` was never counted
    /// up (it held the space from the first view on).
    pub(crate) fn includes(&self, id: OpId, core: CoreId) -> bool {
        self.counted_up
            .get(&core)
            .is_none_or(|&first| id.seq >= first)
    }

    /// A view of `members` is installed: every core that may hold spaces and
    /// is not in it is down to the protocols. Every message from a core that
    /// left has been handled by now (its ring was drained before the
    /// install), and one that was only in a view this core skipped never
    /// had a message handled here.
    pub(crate) fn view_installed(&mut self, cx: &mut MappingCx<'_>, members: Members) {
        let down: Members = self.replicator.down().collect();
        for core in self.members.minus(members).minus(down).iter() {
            if mutants::active(Mutant::ViewWithoutCoreDown) {
                break;
            }
            self.input(cx, Input::CoreDown(core));
        }
    }

    /// Takes a member's replica (`entries`), its test space's span and the
    /// cores that may hold spaces there: this core comes back and catches
    /// up, with the installed view's `members`.
    pub(crate) fn restore(
        &mut self,
        cx: &mut MappingCx<'_>,
        entries: &[(SpaceId, u64, Mapping)],
        span: (u16, u16),
        may_hold: Members,
        members: Members,
    ) {
        self.span = span.0..=span.1;
        self.members = may_hold.union(members);
        self.declare_spaces();
        let mut actions = Actions::default();
        self.replicator.restore(entries, &mut actions);
        self.absorb(cx, actions);
        self.view_installed(cx, members);
    }

    /// The cores of the test space's span (`VmSpan`), first and last.
    pub(crate) fn span_range(&self) -> (u16, u16) {
        (*self.span.start(), *self.span.end())
    }

    /// Whether this core holds `space`.
    pub(crate) fn holds(&self, space: SpaceId) -> bool {
        self.replicator.holds(space)
    }

    pub fn replica(&self) -> &MappingTable {
        self.replicator.replica()
    }

    /// The cores that hold the test space.
    pub fn holders(&self) -> Members {
        self.holders
    }

    /// The cores that may hold spaces: those that ever joined a view
    /// installed here (a member that left stays one).
    pub fn members(&self) -> Members {
        self.members
    }

    /// The protocols' timeouts (`vm::messages::timeouts_for`), for this
    /// space and every process's opened from now on.
    pub fn timeouts(&self) -> Timeouts {
        self.replicator.timeouts()
    }

    /// Follows the failure detector's new settings: the protocols started
    /// from now on wait as `vm::messages::timeouts_for` says for them.
    pub(crate) fn follow_detector(&mut self, detector: Detector) {
        self.replicator.set_timeouts(timeouts_for(detector));
    }

    /// The frame this core maps test pages to.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Pages of the test space with a committed mapping in this replica.
    pub fn mapped(&self) -> u32 {
        self.replica()
            .entries()
            .iter()
            .filter(|entry| entry.space == TEST_SPACE && entry.committed.is_some())
            .count() as u32
    }

    pub(crate) fn has_timers(&self) -> bool {
        self.replicator.has_timers()
    }

    /// Routes `Planned` rounds by `plan` from now on.
    pub(crate) fn set_plan(&mut self, plan: TreePlan) {
        self.replicator.set_plan(plan);
    }

    /// Starts `request`, for operation `op`.
    pub(crate) fn submit(
        &mut self,
        cx: &mut MappingCx<'_>,
        request: Request,
        shape: Shape,
        op: OpRef,
    ) -> Result<OpId, SubmitError> {
        let mut actions = Actions::default();
        let id = self.replicator.submit(request, shape, &mut actions)?;
        self.owners.insert(id, op);
        let phase = match request {
            Request::Shootdown { .. } => "shootdown start",
            Request::Map { .. } | Request::Unmap { .. } | Request::Protect { .. } => "2pc propose",
        };
        cx.phase(phase, op_detail(id));
        self.absorb(cx, actions);
        Ok(id)
    }

    pub(crate) fn input(&mut self, cx: &mut MappingCx<'_>, input: Input) {
        let mut actions = Actions::default();
        self.replicator.handle(input, &mut actions);
        self.absorb(cx, actions);
    }

    pub(crate) fn tick(&mut self, cx: &mut MappingCx<'_>) {
        if self.has_timers() {
            self.input(cx, Input::Tick);
        }
    }

    /// Makes the members among cores `first` to `last` the test space's
    /// holders; whether it did (it refuses while this replica has pages mapped).
    pub(crate) fn span(&mut self, first: u16, last: u16) -> bool {
        if self.mapped() > 0 {
            return false;
        }
        self.span = first..=last;
        self.declare_spaces();
        true
    }

    /// Carries out what one replicator step produced: effects first, then
    /// the messages (which may acknowledge them), then the completions.
    fn absorb(&mut self, cx: &mut MappingCx<'_>, actions: Actions) {
        for effect in actions.effects {
            cx.effect(Effect::Mapping(effect));
        }
        for (to, message) in actions.messages {
            cx.send(
                to,
                Replicate {
                    message: Protocol(message),
                }
                .into(),
            );
        }
        for completion in actions.completions {
            let phase = match completion {
                Completion::Committed { .. } => "2pc committed",
                Completion::Aborted { .. } => "2pc aborted",
                Completion::ShootdownDone { .. } => "shootdown done",
            };
            cx.phase(phase, op_detail(completion.id()));
            if let Some(op) = self.owners.remove(&completion.id()) {
                cx.complete(op, completion);
            }
        }
    }
}

/// A protocol operation id as a trace event's detail.
fn op_detail(id: OpId) -> u64 {
    u64::from(id.origin.0) << 32 | u64::from(id.seq)
}
