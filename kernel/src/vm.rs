//! The replicated mappings of the test address space, on this core.
//!
//! Every core holds a replica of the test space's mapping table (an
//! `atoll-node` `Node` over a `MappingTable`) and applies agreed changes to
//! its own page tables: a map or unmap is proposed by one core, agreed by
//! two-phase commit with every holder, and an unmap is finished by a TLB
//! shootdown carried by multicast. This module is the host of that
//! sans-IO node: it feeds it messages and timer ticks, executes its effects
//! with the arch layer's page tables and `invlpg`, and sends its messages
//! over URPC.
//!
//! Each core maps pages of the test space to a frame of its own whose
//! bytes hold its core id, so that reading a mapped page through the page
//! tables shows whose mapping it is.

use crate::arch::paging;
use crate::arch::percore::CoreLocal;
use crate::messages::{Protocol, VmDone, VmHashReply, VmPropose, VmStorm, VmStormDone};
use crate::node::{self, send};
use crate::shared::boot_facts;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use atoll_node::{
    Completion, Config, Effect, Input, Mapping, MappingTable, Message, Node, NodeId, OpId, Outbox,
    Replica, Request, SpaceId, SubmitError, Timeouts,
};
use atoll_proto::{Shape, TreePlan};

/// The test address space, held by every core.
pub const TEST_SPACE: SpaceId = SpaceId(1);
/// Where its pages start: the third 512 GiB slot of the lower half.
pub const TEST_SPACE_BASE: u64 = 2 << 39;
/// Pages the shell commands may name.
pub const TEST_SPACE_PAGES: u64 = 4096;
/// Present and writable, as the kernel's page tables set them.
const PAGE_FLAGS: u64 = 0b11;
/// Timeouts in timer ticks (10 ms each): generous, because under emulation
/// a core may not run for a while.
const TIMEOUTS: Timeouts = Timeouts {
    vote: 200,
    round: 200,
    relay: 100,
};

/// Who asked for a request this core proposed, to hand them its completion.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// Code on this core (the shell), which waits for it.
    Here,
    /// Another core, which gets a `VmDone` message about `page`.
    Core { core: usize, page: u32 },
}

pub struct Vm {
    node: Node<MappingTable>,
    /// The frame this core's mappings point at.
    frame: u64,
    /// Timer ticks already fed to the node.
    ticks_fed: u64,
    requesters: BTreeMap<OpId, Requester>,
    /// Completions of requests from this core's own code, until taken.
    finished: Vec<Completion>,
    /// The cores that hold the test space.
    holders: core::ops::RangeInclusive<usize>,
}

impl Vm {
    /// This core's replica of the test space, which every core holds, and
    /// the frame its mappings use.
    pub fn new(core: usize, frame: u64) -> Self {
        let facts = boot_facts();
        // `Planned` rounds go unicast until the knowledge base's trees are
        // installed (`set_plan`), which happens before the shell starts.
        let config = Config {
            timeouts: TIMEOUTS,
            plan: TreePlan::new(),
        };
        let mut node = Node::new(node_id(core), config, MappingTable::new());
        let holders: Vec<NodeId> = (0..facts.cores.len()).map(node_id).collect();
        node.add_space(TEST_SPACE, &holders);
        for (targets, space) in shootdown_spaces() {
            let holders: Vec<NodeId> = targets.into_iter().map(node_id).collect();
            node.add_space(space, &holders);
        }
        Self {
            node,
            frame,
            ticks_fed: 0,
            requesters: BTreeMap::new(),
            finished: Vec::new(),
            holders: 0..=facts.cores.len() - 1,
        }
    }

    pub fn replica(&self) -> &MappingTable {
        self.node.replica()
    }

    /// This replica's hash and its mapped pages of the test space, as
    /// `vm hash` shows them.
    pub fn hash_reply(&self) -> VmHashReply {
        let replica = self.replica();
        let mapped = replica
            .entries()
            .into_iter()
            .filter(|entry| entry.space == TEST_SPACE && entry.committed.is_some())
            .count();
        VmHashReply {
            hash: replica.hash(),
            mapped: mapped as u32,
        }
    }

    /// Routes `Planned` rounds by `plan` from now on; every core installs
    /// the plan its own knowledge base replica gives.
    pub fn set_plan(&mut self, plan: TreePlan) {
        self.node.set_plan(plan);
    }

    pub fn holders(&self) -> core::ops::RangeInclusive<usize> {
        self.holders.clone()
    }

    /// Makes cores `holders` the test space's holders.
    pub fn span(&mut self, holders: core::ops::RangeInclusive<usize>) {
        let nodes: Vec<NodeId> = holders.clone().map(node_id).collect();
        self.node.add_space(TEST_SPACE, &nodes);
        self.holders = holders;
    }

    /// Takes the completion of `id`, if it has come.
    pub fn take_finished(&mut self, id: OpId) -> Option<Completion> {
        let position = self
            .finished
            .iter()
            .position(|completion| completion.id() == id)?;
        Some(self.finished.swap_remove(position))
    }
}

fn node_id(core: usize) -> NodeId {
    NodeId(core as u16)
}

/// The spaces `bench shootdown` invalidates in: for each n from 1 to the
/// number of other cores, one held by the boot core and the first n others.
/// Every core derives the same list from the boot facts.
pub fn shootdown_spaces() -> impl Iterator<Item = (Vec<usize>, SpaceId)> {
    let facts = boot_facts();
    let others: Vec<usize> = (0..facts.cores.len())
        .filter(|&core| core != facts.boot_core)
        .collect();
    (1..=others.len()).map(move |targets| {
        let holders = core::iter::once(facts.boot_core)
            .chain(others[..targets].iter().copied())
            .collect();
        (holders, SpaceId(SHOOTDOWN_SPACES + targets as u32))
    })
}

/// Space ids from here on are `bench shootdown`'s.
const SHOOTDOWN_SPACES: u32 = 1000;

/// The page address of page `page` of the test space.
pub fn page_address(page: u64) -> u64 {
    TEST_SPACE_BASE + page * 4096
}

/// What a shell or a peer asks this core to propose; as a number, the
/// `change` of a `VmPropose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum VmChange {
    Map = 0,
    Unmap = 1,
}

/// Proposes `change` of `page` from this core; its completion goes to
/// `requester`. Votes, the commit and an unmap's TLB invalidation travel
/// down the knowledge base's multicast tree (`Planned` with the installed
/// plan). The tree's one known limit (`docs/protocols.md`: the coordinator
/// and an aggregator both failing in one proposal) is a double failure.
pub fn propose(
    local: &CoreLocal,
    change: VmChange,
    page: u64,
    requester: Requester,
) -> Result<OpId, SubmitError> {
    let vaddr = page_address(page);
    let request = match change {
        VmChange::Map => {
            let paddr = local.node().borrow().vm.frame;
            Request::Map {
                space: TEST_SPACE,
                vaddr,
                mapping: Mapping {
                    paddr,
                    flags: PAGE_FLAGS,
                },
            }
        }
        VmChange::Unmap => Request::Unmap {
            space: TEST_SPACE,
            vaddr,
        },
    };
    submit(local, request, Shape::Planned, requester)
}

/// A peer's `VmPropose`: proposed from this core, which answers with a
/// `VmDone` when it completes, or at once if it cannot be proposed.
pub fn answer_propose(local: &CoreLocal, from: usize, request: &VmPropose) {
    let change = if request.change == VmChange::Map as u8 {
        VmChange::Map
    } else {
        VmChange::Unmap
    };
    let page = request.page;
    let requester = Requester::Core { core: from, page };
    if propose(local, change, u64::from(page), requester).is_err() {
        let done = VmDone {
            page,
            outcome: NOT_PROPOSED,
            acked: 0,
            unreached: 0,
        };
        send(local, from, done);
    }
}

/// Starts `request` on this core's node, routed over a tree of `shape`.
pub fn submit(
    local: &CoreLocal,
    request: Request,
    shape: Shape,
    requester: Requester,
) -> Result<OpId, SubmitError> {
    let mut out = Outbox::default();
    let id = {
        let mut state = local.node().borrow_mut();
        let id = state.vm.node.submit(request, shape, &mut out)?;
        state.vm.requesters.insert(id, requester);
        id
    };
    act(local, out);
    Ok(id)
}

/// Hands the node a protocol message from core `from`.
pub fn receive(local: &CoreLocal, from: usize, message: &Protocol) {
    let Some(message) = Message::from_bytes(&message.body) else {
        println!(
            "atoll: core {}: dropped a malformed protocol message from core {from}",
            local.id
        );
        return;
    };
    step(
        local,
        Input::Message {
            from: node_id(from),
            message,
        },
    );
}

/// Feeds the node the timer ticks that passed since the last call.
pub fn tick(local: &CoreLocal) {
    let now = local.ticks();
    loop {
        let due = {
            let mut state = local.node().borrow_mut();
            let vm = &mut state.vm;
            let due = vm.ticks_fed < now && vm.node.has_timers();
            // A node without timers does not need the ticks it missed.
            vm.ticks_fed = if due { vm.ticks_fed + 1 } else { now };
            due
        };
        if !due {
            return;
        }
        step(local, Input::Tick);
    }
}

fn step(local: &CoreLocal, input: Input) {
    let mut out = Outbox::default();
    local.node().borrow_mut().vm.node.handle(input, &mut out);
    act(local, out);
}

/// Carries out one step's outputs: effects on this core first, then the
/// messages (which may acknowledge them), then the completions.
fn act(local: &CoreLocal, out: Outbox) {
    for effect in out.effects {
        apply(local, effect);
    }
    for (to, message) in out.messages {
        send(
            local,
            usize::from(to.0),
            Protocol {
                body: message.to_bytes(),
            },
        );
    }
    for completion in out.completions {
        let requester = local
            .node()
            .borrow_mut()
            .vm
            .requesters
            .remove(&completion.id());
        match requester {
            Some(Requester::Core { core, page }) => {
                send(local, core, done_message(page, &completion))
            }
            Some(Requester::Here) | None => local.node().borrow_mut().vm.finished.push(completion),
        }
    }
}

fn apply(local: &CoreLocal, effect: Effect) {
    let outcome = match effect {
        Effect::MapPage { vaddr, mapping, .. } => {
            local
                .page_tables()
                .map(vaddr, mapping.paddr, &mut || local.allocate_frame())
        }
        Effect::UnmapPage { vaddr, .. } => local.page_tables().unmap(vaddr).map(|_| ()),
        Effect::InvalidateTlb { vaddr, .. } => {
            paging::invalidate(vaddr);
            Ok(())
        }
    };
    if let Err(error) = outcome {
        // The replica and the page tables change together, so this means a
        // bug; report it with the core rather than stop the core.
        println!(
            "atoll: core {}: page tables disagree with the replica: {error}",
            local.id
        );
    }
}

/// The committed mappings of this core's replica, its hash, and whether this
/// core's page tables agree with each.
pub fn show(local: &CoreLocal) {
    let state = local.node().borrow();
    let replica = state.vm.replica();
    let mut mapped = 0;
    for entry in replica
        .entries()
        .into_iter()
        .filter(|entry| entry.space == TEST_SPACE)
    {
        let page = (entry.vaddr - TEST_SPACE_BASE) / 4096;
        if let Some(mapping) = entry.committed {
            mapped += 1;
            let translated = local.page_tables().translate(entry.vaddr);
            let owner = translated.map(|_| paging::read_mapped(entry.vaddr));
            match owner {
                Some(owner) => println!(
                    "  page {page:>4}  {:#x} -> frame {:#x} (core {owner}'s)  page tables agree",
                    entry.vaddr, mapping.paddr
                ),
                None => println!(
                    "  page {page:>4}  {:#x} -> frame {:#x}  NOT in this core's page tables",
                    entry.vaddr, mapping.paddr
                ),
            }
        }
        if let Some((id, _)) = entry.pending {
            println!(
                "  page {page:>4}  pending change of proposal {}:{}",
                id.origin.0, id.seq
            );
        }
    }
    println!(
        "vm show: core {}: {mapped} pages mapped; replica hash {:#018x}",
        local.id,
        replica.hash()
    );
}

/// Outcome codes of `VmDone`.
const COMMITTED: u8 = 0;
const ABORTED: u8 = 1;
const NOT_PROPOSED: u8 = u8::MAX;

fn done_message(page: u32, completion: &Completion) -> VmDone {
    let (outcome, acked, unreached) = match *completion {
        Completion::Committed { report, .. } | Completion::ShootdownDone { report, .. } => {
            (COMMITTED, report.acked, report.unreached)
        }
        Completion::Aborted { .. } => (ABORTED, 0, 0),
    };
    VmDone {
        page,
        outcome,
        acked,
        unreached,
    }
}

/// Whether a completion is a commit.
pub fn completion_committed(completion: &Completion) -> bool {
    !matches!(completion, Completion::Aborted { .. })
}

/// Waits up to `timeout_ms` for the completion of `id`, a request this
/// core's own code submitted (`Requester::Here`), answering others meanwhile.
pub fn wait_finished(local: &CoreLocal, id: OpId, timeout_ms: u64) -> Option<Completion> {
    let mut completion = None;
    node::wait_until(local, timeout_ms, || {
        completion = local.node().borrow_mut().vm.take_finished(id);
        completion.is_some()
    });
    completion
}

fn describe_commit(acked: u16, unreached: u16) -> alloc::string::String {
    alloc::format!("committed: {acked} holders applied it, {unreached} unreached")
}

/// One line on how a peer's proposal ended, from its `VmDone`.
pub fn describe_done(done: &VmDone) -> alloc::string::String {
    match done.outcome {
        COMMITTED => describe_commit(done.acked, done.unreached),
        ABORTED => alloc::string::String::from("aborted (refused by a holder, or no vote in time)"),
        _ => alloc::string::String::from("could not be proposed"),
    }
}

/// Whether a `VmDone` reports a commit.
pub fn done_committed(done: &VmDone) -> bool {
    done.outcome == COMMITTED
}

/// One line on how a request ended.
pub fn describe(completion: &Completion) -> alloc::string::String {
    use alloc::format;
    use atoll_proto::two_phase::AbortReason;
    match completion {
        Completion::Committed { report, .. } | Completion::ShootdownDone { report, .. } => {
            describe_commit(report.acked, report.unreached)
        }
        Completion::Aborted {
            reason: AbortReason::Refused { by, refusal },
            ..
        } => {
            format!("aborted: core {} refused ({refusal:?})", by.0)
        }
        Completion::Aborted {
            reason: AbortReason::Timeout { waiting_for },
            ..
        } => {
            format!("aborted: no vote from core {} in time", waiting_for.0)
        }
    }
}

/// How long one proposal of a storm may take, under emulation with every
/// core busy.
const STORM_TIMEOUT_MS: u64 = 10_000;

/// Proposes `storm.operations` maps and unmaps of random pages among the
/// first `storm.pages`, one after the other, while the other cores do the
/// same: their proposals collide on the few pages, so some commit and some
/// abort. Returns the counts.
pub fn storm(local: &CoreLocal, storm: &VmStorm) -> VmStormDone {
    // xorshift32, seeded per core.
    let mut random = (storm.seed ^ (local.id as u32 + 1).wrapping_mul(0x9E37_79B9)) | 1;
    let mut done = VmStormDone {
        committed: 0,
        aborted: 0,
    };
    for _ in 0..storm.operations {
        random ^= random << 13;
        random ^= random >> 17;
        random ^= random << 5;
        let page = u64::from(random % storm.pages.max(1));
        let change = if random & (1 << 16) == 0 {
            VmChange::Map
        } else {
            VmChange::Unmap
        };
        let Ok(id) = propose(local, change, page, Requester::Here) else {
            done.aborted += 1;
            continue;
        };
        match wait_finished(local, id, STORM_TIMEOUT_MS) {
            Some(completion) if completion_committed(&completion) => done.committed += 1,
            Some(_) => done.aborted += 1,
            // Left open: neither count, and the shell reports the gap.
            None => {}
        }
    }
    done
}
