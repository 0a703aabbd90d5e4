//! The replicated mappings of the test address space, and the `vm` service
//! that proposes changes to them.
//!
//! Every core holds a replica of the test space's mapping table, run by an
//! `atoll-replica` [`Replicator`]: a map or unmap is proposed by one core,
//! agreed by two-phase commit with every holder, and an unmap is finished
//! by a TLB shootdown carried by the commit's multicast. The [`Mappings`]
//! host that replicator inside the monitor: they feed it the protocol
//! messages that arrive (`Replicate`), the ticks, and the requests of the
//! services, and turn what it produces into effects on this core's page
//! tables, messages on the links, and events for the services that asked.
//!
//! Each core maps pages of the test space to a frame of its own (the
//! host fills it with the core's id), so reading a mapped page through the
//! page tables shows whose mapping it is.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use atoll_iface::{Field, FieldError};
use atoll_proto::multicast::RoundMsg;
use atoll_proto::two_phase::{AbortReason, TwoPhaseMsg};
use atoll_proto::{Shape, TreePlan};
use atoll_replica::{
    Actions, Completion, Config as ReplicaConfig, Input, MESSAGE_BYTES, Mapping, MappingTable,
    Message, OpId, Refusal, Replica, Replicator, Request, SpaceId, SubmitError, Timeouts,
};

use crate::{CoreId, Cx, Effect, MappingCx, OpEvent, OpRef, Requester, Service, ServiceId};

/// The test address space, held by every core until `VmSpan` says
/// otherwise.
pub const TEST_SPACE: SpaceId = SpaceId(1);
/// Where its pages start: the third 512 GiB slot of the lower half.
pub const TEST_SPACE_BASE: u64 = 2 << 39;
/// Pages a request may name.
pub const TEST_SPACE_PAGES: u32 = 4096;
/// Space ids from here on are `bench shootdown`'s: space
/// `SHOOTDOWN_SPACES + n` is held by the boot core and the first `n` others.
pub const SHOOTDOWN_SPACES: u32 = 1000;
/// Present and writable, as x86_64 page-table entries have it.
const PAGE_FLAGS: u64 = 0b11;
/// Timeouts in ticks (10 ms each in the kernel): generous, because under
/// emulation a core may not run for a while.
const TIMEOUTS: Timeouts = Timeouts {
    vote: 200,
    round: 200,
    relay: 100,
};

/// The page address of page `page` of the test space.
pub fn page_address(page: u32) -> u64 {
    TEST_SPACE_BASE + u64::from(page) * 4096
}

/// A replication protocol message as one field of a [`Replicate`] message.
/// Its own fixed encoding (`atoll_proto::wire`) is the field's bytes, so
/// the message is encoded once, and bytes that are no protocol message are
/// rejected where every other malformed message is: in the link's
/// reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol(pub Message);

impl Field for Protocol {
    type Wire = [u8; MESSAGE_BYTES];

    fn to_wire(&self) -> [u8; MESSAGE_BYTES] {
        self.0.to_bytes()
    }

    fn from_wire(wire: [u8; MESSAGE_BYTES]) -> Result<Self, FieldError> {
        Message::from_bytes(&wire)
            .map(Protocol)
            .ok_or(FieldError::Invalid {
                type_name: "replication protocol message",
            })
    }
}

impl Protocol {
    /// The protocol message's name, for traces.
    pub fn label(&self) -> &'static str {
        match self.0 {
            Message::Agreement(message) => match message {
                TwoPhaseMsg::Prepare { .. } => "Prepare",
                TwoPhaseMsg::Vote { .. } => "Vote",
                TwoPhaseMsg::Abort { .. } => "Abort",
                TwoPhaseMsg::Commit(RoundMsg::Request { .. }) => "Commit",
                TwoPhaseMsg::Commit(RoundMsg::Ack { .. }) => "CommitAck",
                TwoPhaseMsg::Inquire { .. } => "Inquire",
                TwoPhaseMsg::Settled { .. } => "Settled",
            },
            Message::Shootdown(RoundMsg::Request { .. }) => "Shootdown",
            Message::Shootdown(RoundMsg::Ack { .. }) => "ShootdownAck",
        }
    }
}

atoll_iface::interface! {
    /// The messages of the replicated mappings.
    pub interface VmMessage {
        /// A message of the replication protocols (two-phase commit and
        /// multicast rounds) between the holders' replicators.
        Replicate { message: Protocol }
        /// Propose mapping (`change` 0) or unmapping (1) page `page` of the
        /// test space from the receiving core, and report how it ended.
        VmPropose { change: u8, page: u32 } -> VmDone {
            page: u32,
            /// `OUTCOME_*`.
            outcome: u8,
            /// For a commit: holders that applied it, and those that did
            /// not confirm.
            acked: u16,
            unreached: u16,
            /// For a refusal, the core that refused; for a timeout, a core
            /// whose vote did not come.
            core: u16,
            /// For a refusal, `REFUSAL_*`; for `OUTCOME_NOT_PROPOSED`, `INVALID_*`.
            reason: u8,
            /// For a conflict, the proposal holding the page.
            rival_origin: u16,
            rival_seq: u32
        }
        /// Propose `operations` random maps and unmaps of the first
        /// `pages` pages, one after the other, and report.
        VmStorm { operations: u32, pages: u32, seed: u32 } -> VmStormDone {
            committed: u32,
            aborted: u32
        }
        /// Report this core's replica of the test space.
        VmHash {} -> VmHashReply { hash: u64, mapped: u32 }
        /// Cores `first` to `last` hold the test space from now on (sent
        /// while no core has anything mapped in it).
        VmSpan { first: u16, last: u16 } -> VmSpanned { refused: u8 }
    }
}

/// `VmDone::outcome`.
pub const OUTCOME_COMMITTED: u8 = 0;
pub const OUTCOME_REFUSED: u8 = 1;
pub const OUTCOME_TIMED_OUT: u8 = 2;
pub const OUTCOME_NOT_PROPOSED: u8 = 3;
/// `VmDone::reason` of a refusal.
const REFUSAL_CONFLICT: u8 = 0;
const REFUSAL_ALREADY_MAPPED: u8 = 1;
const REFUSAL_NOT_MAPPED: u8 = 2;
/// `VmDone::reason` of a request that could not be proposed.
const INVALID_PAGE: u8 = 0;
const INVALID_CHANGE: u8 = 1;
const INVALID_NOT_A_HOLDER: u8 = 2;
/// `VmSpanned::refused`.
pub const SPAN_DONE: u8 = 0;
pub const SPAN_BAD_RANGE: u8 = 1;
pub const SPAN_PAGES_MAPPED: u8 = 2;

/// What a `VmPropose` asks for; as a number, its `change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Change {
    Map = 0,
    Unmap = 1,
}

impl VmDone {
    fn not_proposed(page: u32, reason: u8) -> Self {
        VmDone {
            page,
            outcome: OUTCOME_NOT_PROPOSED,
            acked: 0,
            unreached: 0,
            core: 0,
            reason,
            rival_origin: 0,
            rival_seq: 0,
        }
    }

    fn of(page: u32, completion: &Completion) -> Self {
        let mut done = VmDone::not_proposed(page, 0);
        match *completion {
            Completion::Committed { report, .. } | Completion::ShootdownDone { report, .. } => {
                done.outcome = OUTCOME_COMMITTED;
                done.acked = report.acked;
                done.unreached = report.unreached;
            }
            Completion::Aborted {
                reason: AbortReason::Refused { by, refusal },
                ..
            } => {
                done.outcome = OUTCOME_REFUSED;
                done.core = by.0;
                done.reason = match refusal {
                    Refusal::Conflict { with } => {
                        done.rival_origin = with.origin.0;
                        done.rival_seq = with.seq;
                        REFUSAL_CONFLICT
                    }
                    Refusal::AlreadyMapped => REFUSAL_ALREADY_MAPPED,
                    Refusal::NotMapped => REFUSAL_NOT_MAPPED,
                };
            }
            Completion::Aborted {
                reason: AbortReason::Timeout { waiting_for },
                ..
            } => {
                done.outcome = OUTCOME_TIMED_OUT;
                done.core = waiting_for.0;
            }
        }
        done
    }

    pub fn committed(&self) -> bool {
        self.outcome == OUTCOME_COMMITTED
    }

    /// How the proposal ended, in one line: the same words whichever core
    /// proposed it.
    pub fn describe(&self) -> String {
        match (self.outcome, self.reason) {
            (OUTCOME_COMMITTED, _) => format!(
                "committed: {} holders applied it, {} unreached",
                self.acked, self.unreached
            ),
            (OUTCOME_REFUSED, REFUSAL_CONFLICT) => format!(
                "aborted: core {} refused (the page is locked by proposal {}:{})",
                self.core, self.rival_origin, self.rival_seq
            ),
            (OUTCOME_REFUSED, REFUSAL_ALREADY_MAPPED) => format!(
                "aborted: core {} refused (the page is already mapped)",
                self.core
            ),
            (OUTCOME_REFUSED, REFUSAL_NOT_MAPPED) => format!(
                "aborted: core {} refused (the page is not mapped)",
                self.core
            ),
            (OUTCOME_TIMED_OUT, _) => {
                format!("aborted: no vote from core {} in time", self.core)
            }
            (OUTCOME_NOT_PROPOSED, INVALID_PAGE) => format!(
                "not proposed: page {} is outside the test space (pages 0 to {})",
                self.page,
                TEST_SPACE_PAGES - 1
            ),
            (OUTCOME_NOT_PROPOSED, INVALID_CHANGE) => {
                String::from("not proposed: the change is neither a map nor an unmap")
            }
            (OUTCOME_NOT_PROPOSED, INVALID_NOT_A_HOLDER) => {
                String::from("not proposed: the core does not know the test space")
            }
            (outcome, reason) => format!("unknown outcome {outcome} (reason {reason})"),
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
    holders: RangeInclusive<u16>,
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
        let mut replicator = Replicator::new(me, config, MappingTable::new());
        let everyone: Vec<CoreId> = (0..cores).map(CoreId).collect();
        replicator.add_space(TEST_SPACE, &everyone);
        let others: Vec<CoreId> = everyone
            .iter()
            .copied()
            .filter(|&core| core != boot_core)
            .collect();
        for targets in 1..=others.len() {
            let holders: Vec<CoreId> = core::iter::once(boot_core)
                .chain(others[..targets].iter().copied())
                .collect();
            replicator.add_space(SpaceId(SHOOTDOWN_SPACES + targets as u32), &holders);
        }
        Self {
            replicator,
            frame,
            owners: BTreeMap::new(),
            holders: 0..=cores.saturating_sub(1),
        }
    }

    pub fn replica(&self) -> &MappingTable {
        self.replicator.replica()
    }

    /// The cores that hold the test space.
    pub fn holders(&self) -> RangeInclusive<u16> {
        self.holders.clone()
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

    fn input(&mut self, cx: &mut MappingCx<'_>, input: Input) {
        let mut actions = Actions::default();
        self.replicator.handle(input, &mut actions);
        self.absorb(cx, actions);
    }

    pub(crate) fn tick(cx: &mut Cx<'_>) {
        let (mappings, mut cx) = cx.mappings();
        if mappings.has_timers() {
            mappings.input(&mut cx, Input::Tick);
        }
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

/// A storm in progress: proposals one after the other.
struct Storm {
    requester: Requester,
    remaining: u32,
    pages: u32,
    /// xorshift32 state.
    random: u32,
    done: VmStormDone,
}

/// The `vm` service: proposals and storms for requesters, and the replica's
/// reports.
pub(crate) struct Vm {
    proposals: BTreeMap<u32, (Requester, u32)>,
    storms: BTreeMap<u32, Storm>,
}

impl Vm {
    pub fn new() -> Self {
        Self {
            proposals: BTreeMap::new(),
            storms: BTreeMap::new(),
        }
    }

    /// Proposes the next change of storm `key`, or answers when there is
    /// none left.
    fn storm_next(&mut self, cx: &mut Cx<'_>, key: u32) {
        let Some(storm) = self.storms.get_mut(&key) else {
            return;
        };
        while storm.remaining > 0 {
            storm.remaining -= 1;
            storm.random ^= storm.random << 13;
            storm.random ^= storm.random >> 17;
            storm.random ^= storm.random << 5;
            let page = storm.random % storm.pages.max(1);
            let change = if storm.random & (1 << 16) == 0 {
                Change::Map
            } else {
                Change::Unmap
            };
            let op = OpRef {
                service: ServiceId::Vm,
                key,
            };
            match propose(cx, change, page, op) {
                Ok(_) => return,
                Err(_) => storm.done.aborted += 1,
            }
        }
        let storm = self.storms.remove(&key).expect("looked up above");
        cx.reply(storm.requester, storm.done);
    }
}

/// Proposes `change` of `page` of the test space from this core, for `op`.
/// Votes, the commit and an unmap's TLB invalidation travel down the
/// knowledge base's multicast tree (`Planned` with the installed plan).
fn propose(cx: &mut Cx<'_>, change: Change, page: u32, op: OpRef) -> Result<OpId, SubmitError> {
    let (mappings, mut cx) = cx.mappings();
    let vaddr = page_address(page);
    let request = match change {
        Change::Map => Request::Map {
            space: TEST_SPACE,
            vaddr,
            mapping: Mapping {
                paddr: mappings.frame,
                flags: PAGE_FLAGS,
            },
        },
        Change::Unmap => Request::Unmap {
            space: TEST_SPACE,
            vaddr,
        },
    };
    mappings.submit(&mut cx, request, Shape::Planned, op)
}

impl Service for Vm {
    type Message = VmMessage;

    fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, call: u32, message: VmMessage) {
        let requester = Requester { core: from, call };
        match message {
            VmMessage::Replicate(Replicate { message }) => {
                let (mappings, mut cx) = cx.mappings();
                mappings.input(
                    &mut cx,
                    Input::Message {
                        from,
                        message: message.0,
                    },
                );
            }
            VmMessage::VmPropose(VmPropose { change, page }) => {
                let change = match change {
                    0 => Change::Map,
                    1 => Change::Unmap,
                    _ => return cx.reply(requester, VmDone::not_proposed(page, INVALID_CHANGE)),
                };
                if page >= TEST_SPACE_PAGES {
                    return cx.reply(requester, VmDone::not_proposed(page, INVALID_PAGE));
                }
                let op = cx.new_op(ServiceId::Vm);
                match propose(cx, change, page, op) {
                    Ok(_) => {
                        self.proposals.insert(op.key, (requester, page));
                    }
                    Err(_) => cx.reply(requester, VmDone::not_proposed(page, INVALID_NOT_A_HOLDER)),
                }
            }
            VmMessage::VmStorm(VmStorm {
                operations,
                pages,
                seed,
            }) => {
                let op = cx.new_op(ServiceId::Vm);
                let storm = Storm {
                    requester,
                    remaining: operations,
                    pages: pages.clamp(1, TEST_SPACE_PAGES),
                    // Seeded per core, so that the cores of a storm differ.
                    random: (seed ^ u32::from(cx.me().0 + 1).wrapping_mul(0x9E37_79B9)) | 1,
                    done: VmStormDone {
                        committed: 0,
                        aborted: 0,
                    },
                };
                self.storms.insert(op.key, storm);
                self.storm_next(cx, op.key);
            }
            VmMessage::VmHash(VmHash {}) => {
                let mappings = cx.mappings().0;
                let reply = VmHashReply {
                    hash: mappings.replica().hash(),
                    mapped: mappings.mapped(),
                };
                cx.reply(requester, reply);
            }
            VmMessage::VmSpan(VmSpan { first, last }) => {
                let cores = cx.cores();
                let (mappings, _) = cx.mappings();
                let refused = if first > last || last >= cores {
                    SPAN_BAD_RANGE
                } else if mappings.mapped() > 0 {
                    SPAN_PAGES_MAPPED
                } else {
                    let holders: Vec<CoreId> = (first..=last).map(CoreId).collect();
                    mappings.replicator.add_space(TEST_SPACE, &holders);
                    mappings.holders = first..=last;
                    SPAN_DONE
                };
                cx.reply(requester, VmSpanned { refused });
            }
            // Replies come back through the calls table, never here.
            VmMessage::VmDone(_)
            | VmMessage::VmStormDone(_)
            | VmMessage::VmHashReply(_)
            | VmMessage::VmSpanned(_) => {}
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, op: u32, event: OpEvent) {
        let OpEvent::Mapping(completion) = event else {
            return;
        };
        if let Some((requester, page)) = self.proposals.remove(&op) {
            cx.reply(requester, VmDone::of(page, &completion));
        } else if let Some(storm) = self.storms.get_mut(&op) {
            match completion {
                Completion::Aborted { .. } => storm.done.aborted += 1,
                Completion::Committed { .. } | Completion::ShootdownDone { .. } => {
                    storm.done.committed += 1
                }
            }
            self.storm_next(cx, op);
        }
    }
}
