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

use atoll_proto::{CoreId, Shape, TreePlan};
use atoll_replica::{
    Actions, Completion, Config as ReplicaConfig, Input, MappingTable, OpId, Replica, Replicator,
    Request, SubmitError,
};

use crate::calls::{Event, OpEvent, OpRef};
use crate::links::Links;
use crate::output::{Effect, Output};
use crate::trace::{TraceEvent, TraceKind};
use crate::vm::messages::{
    Protocol, Replicate, TEST_SPACE, TIMEOUTS, shootdown_space, shootdown_targets,
};
use crate::wire::Wire;
use atoll_proto::membership::Members;

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
    /// installed, then its members.
    members: Members,
    boot_core: CoreId,
}

impl Mappings {
    pub(crate) fn new(me: CoreId, cores: u16, boot_core: CoreId, frame: u64) -> Self {
        // `Planned` rounds go unicast until the knowledge base's trees are
        // installed (`set_plan`), which the boot core has every core do
        // before the shell starts.
        let config = ReplicaConfig {
            timeouts: TIMEOUTS,
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

    /// A view is installed: from the first one on, only cores that joined
    /// a view hold spaces, so a core that never started holds none. A
    /// member that leaves stays a holder, which the protocols count
    /// unreached (they are told it is down).
    pub(crate) fn view_installed(&mut self, first: bool, joined: Members) {
        let members = match first {
            true => joined,
            false => self.members.union(joined),
        };
        if members != self.members {
            self.members = members;
            self.declare_spaces();
        }
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
            Request::Map { .. } | Request::Unmap { .. } => "2pc propose",
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
