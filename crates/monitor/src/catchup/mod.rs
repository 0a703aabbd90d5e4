//! Catching up: how a core that joins a running system (`core on`, a new
//! kernel on a core that stopped) gets the replicated state before it
//! serves, and how a member gives it.
//!
//! The joiner starts with empty replicas. Once it has installed the view
//! that takes it in, it asks a member for a snapshot (`CatchUpAsk`: its
//! sponsor, or the lowest other member when the one asked leaves). Until
//! the snapshot is in, it holds every message that would use its replica
//! (proposals, votes, aborts, inquiries, hashes) and handles them in order
//! afterwards, so it votes on nothing it does not hold. It relays the
//! multicast rounds meanwhile: a round's tree is made when it starts, and
//! may take the joiner in as an aggregator of a commit it never voted on.
//!
//! A member must not send a snapshot that misses a commit the joiner will
//! never see. Rounds started after a coordinator committed the joiner's
//! view include the joiner (the mappings count it up then), so the joiner
//! sees them. Rounds started before leave it out, and the coordinator's
//! `Prepare` of each went out before its flush of that view, so it reached
//! every member before the member installed the view. So at the install,
//! the locks a member holds are the rounds that leave the joiner out and
//! are still undecided here (messages sent in the new view wait until
//! after this point), and the member's own proposals made since it
//! committed the view, which include the joiner and wait for its vote, so
//! they are left out. The member records the rest, and answers the
//! joiner's request only once none of them is held: every such round is
//! then committed in its replica, or aborted. Its replica's committed
//! mappings are the snapshot (`CatchUpEntry`, one per page), and
//! `CatchUpDone` closes it with the count, the hash, the test space's span
//! and the cores that may hold spaces. The joiner checks the count and the
//! hash, and only then takes the messages it held.
//!
//! The knowledge base comes earlier: the member a new kernel asks to join
//! sends it every fact it holds and whether the mappings route by the
//! knowledge base's trees (`CatchUpFacts`, `CatchUpPlan`), before the view
//! that takes it in, so that from its first view on it relays rounds by
//! the same trees as every member.

pub(crate) mod messages;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::vec::Vec;

use atoll_proto::membership::{Members, View};
use atoll_proto::mutants::{self, Mutant};
use atoll_proto::{CoreId, OpId};
use atoll_replica::{Mapping, Replica, SpaceId};

pub use self::messages::*;
use crate::base::Cx;
use crate::skb::Skb;
use crate::vm::TEST_SPACE;
use crate::wire::Wire;

/// The most service messages a joiner holds while it catches up; past
/// this, the oldest are dropped and counted (`Strays::overflow`).
pub const MAX_HELD_WHILE_CATCHING_UP: usize = 4096;

/// A joiner's state until its snapshot is in.
struct Joining {
    /// The core it asked to join, which it asks for the snapshot first.
    sponsor: CoreId,
    /// The member asked for the snapshot, once the joiner is in a view.
    asked: Option<CoreId>,
    /// The snapshot's mappings so far.
    entries: Vec<(SpaceId, u64, Mapping)>,
    /// Service messages held until the snapshot is in: sender, call id,
    /// message.
    held: VecDeque<(CoreId, u32, Wire)>,
}

pub(crate) struct CatchUp {
    /// `Some` while this core catches up.
    joining: Option<Joining>,
    /// By joiner: the locks this core held when it installed the view the
    /// joiner came in with (the rounds that leave it out). `None` when this
    /// core was catching up itself then: those rounds wait among its held
    /// messages, so it takes the locks it holds once it has caught up and
    /// handled them, a superset.
    owed: BTreeMap<CoreId, Option<BTreeSet<OpId>>>,
    /// The joiners that have asked for their snapshot and not had it: a
    /// set apart from `owed` so that [`CatchUp::answer`], which runs
    /// whenever the node loop has nothing left to handle, costs one test
    /// when nobody waits.
    asked: Members,
}

/// The locks held in `replica`, by the proposal holding each.
fn locks(replica: &impl Replica) -> BTreeSet<OpId> {
    replica
        .entries()
        .iter()
        .filter_map(|entry| entry.pending.map(|(id, _)| id))
        .collect()
}

impl CatchUp {
    /// A core's state at start: with `sponsor`, it joins a running system
    /// and catches up from it; without, its replicas start as everyone's.
    pub fn new(sponsor: Option<CoreId>) -> Self {
        Self {
            joining: sponsor.map(|sponsor| Joining {
                sponsor,
                asked: None,
                entries: Vec::new(),
                held: VecDeque::new(),
            }),
            owed: BTreeMap::new(),
            asked: Members::new(),
        }
    }

    /// Whether this core still waits for its snapshot.
    pub fn catching_up(&self) -> bool {
        self.joining.is_some()
    }

    /// Holds `message` if this core catches up and handling it would use
    /// the replica (`VmMessage::uses_replica`); gives it back otherwise.
    pub fn hold(
        &mut self,
        cx: &mut Cx<'_>,
        from: CoreId,
        call: u32,
        message: Wire,
    ) -> Option<Wire> {
        let Some(joining) = &mut self.joining else {
            return Some(message);
        };
        if !matches!(&message, Wire::Vm(vm) if vm.uses_replica())
            || mutants::active(Mutant::ServeBeforeSnapshot)
        {
            return Some(message);
        }
        if joining.held.len() == MAX_HELD_WHILE_CATCHING_UP {
            let (sender, _, oldest) = joining.held.pop_front().expect("full");
            cx.base.strays.overflow += 1;
            cx.notice(format!(
                "dropped {} from core {}: {MAX_HELD_WHILE_CATCHING_UP} messages wait for this core to catch up",
                oldest.label(),
                sender.0
            ));
        }
        joining.held.push_back((from, call, message));
        None
    }

    /// A view is installed, `new` in place of `old`. A member records, for
    /// each core that joined, the rounds that leave it out; a joiner drops
    /// what it held from cores that left (their rounds cannot involve it any
    /// more: it never voted) and asks for its snapshot, again if the member
    /// it asked left.
    pub fn installed(&mut self, cx: &mut Cx<'_>, old: View, new: View) {
        let me = cx.me();
        self.owed.retain(|core, _| new.members.contains(*core));
        self.asked = self.asked.intersect(new.members);
        let held = locks(cx.base.mappings.replica());
        let joiners = new.members.minus(old.members).minus(Members::one(me));
        for core in joiners.iter() {
            // This core's own proposals made since it committed the view
            // include the joiner, and wait for its vote.
            let mappings = &cx.base.mappings;
            let rounds = self.joining.is_none().then(|| {
                held.iter()
                    .copied()
                    .filter(|&id| id.origin != me || !mappings.includes(id, core))
                    .collect()
            });
            self.owed.insert(core, rounds);
            self.asked.remove(core);
        }
        let Some(joining) = &mut self.joining else {
            return;
        };
        let left = old.members.minus(new.members);
        let (dropped, kept): (VecDeque<_>, VecDeque<_>) = core::mem::take(&mut joining.held)
            .into_iter()
            .partition(|(from, _, _)| left.contains(*from));
        joining.held = kept;
        for (from, call, message) in dropped {
            cx.base.strays.non_member += 1;
            cx.notice(format!(
                "dropped {} (call {call}) from core {}: not a member (it left before this core caught up)",
                message.label(),
                from.0
            ));
        }
        if joining
            .asked
            .is_none_or(|asked| !new.members.contains(asked))
        {
            let others = new.members.minus(Members::one(me));
            let source = match others.contains(joining.sponsor) {
                true => Some(joining.sponsor),
                false => others.first(),
            };
            joining.entries.clear();
            joining.asked = source;
            if let Some(source) = source {
                cx.send(source, CatchUpAsk {});
            }
        }
    }

    pub fn receive(
        &mut self,
        cx: &mut Cx<'_>,
        skb: &mut Skb,
        from: CoreId,
        message: CatchUpMessage,
    ) -> Vec<(CoreId, u32, Wire)> {
        match message {
            CatchUpMessage::CatchUpAsk(CatchUpAsk {}) => {
                self.owed.entry(from).or_default();
                self.asked.insert(from);
                self.answer(cx);
            }
            CatchUpMessage::CatchUpFacts(CatchUpFacts { text }) => match &self.joining {
                Some(joining) if joining.sponsor == from => skb.load(cx, from, &text),
                _ => cx.notice(format!(
                    "dropped facts for joining from core {}: this core did not ask it to join",
                    from.0
                )),
            },
            CatchUpMessage::CatchUpPlan(CatchUpPlan { facts, planned }) => match &self.joining {
                Some(joining) if joining.sponsor == from => {
                    skb.plan_as(cx, planned);
                    cx.notice(format!(
                        "{facts} batches of facts from core {}; {}",
                        from.0,
                        match (planned, skb.planned()) {
                            (true, true) => "routing by the knowledge base's trees",
                            (true, false) => "no trees from them: routing unicast",
                            (false, _) => "routing unicast, as it does",
                        }
                    ));
                }
                _ => cx.notice(format!(
                    "dropped the plan for joining from core {}: this core did not ask it to join",
                    from.0
                )),
            },
            CatchUpMessage::CatchUpEntry(CatchUpEntry {
                space,
                vaddr,
                paddr,
                flags,
            }) => match &mut self.joining {
                Some(joining) if joining.asked == Some(from) => {
                    let mapping = Mapping { paddr, flags };
                    joining.entries.push((SpaceId(space), vaddr, mapping));
                }
                _ => cx.notice(format!(
                    "dropped a snapshot entry from core {}: this core did not ask it",
                    from.0
                )),
            },
            CatchUpMessage::CatchUpDone(done) => return self.done(cx, from, done),
        }
        Vec::new()
    }

    /// The end of a snapshot from `from`: takes it if it is whole and this
    /// core asked for it, and gives back the messages held meanwhile.
    fn done(
        &mut self,
        cx: &mut Cx<'_>,
        from: CoreId,
        done: CatchUpDone,
    ) -> Vec<(CoreId, u32, Wire)> {
        let Some(joining) = self.joining.as_mut().filter(|j| j.asked == Some(from)) else {
            cx.notice(format!(
                "dropped the end of a snapshot from core {}: this core did not ask it",
                from.0
            ));
            return Vec::new();
        };
        let me = cx.me();
        if joining.entries.len() != done.entries as usize {
            cx.notice(format!(
                "snapshot from core {} came with {} of its {} mappings; asking again",
                from.0,
                joining.entries.len(),
                done.entries
            ));
            joining.entries.clear();
            cx.send(from, CatchUpAsk {});
            return Vec::new();
        }
        let span_holds_me = (done.first..=done.last).contains(&me.0);
        if span_holds_me && !done.holds_test_space {
            // The test space's mappings are only in its holders' replicas.
            let holders = cx
                .base
                .view
                .members
                .iter()
                .filter(|&core| {
                    core != me && core != from && (done.first..=done.last).contains(&core.0)
                })
                .collect::<Members>();
            if let Some(holder) = holders.first() {
                joining.entries.clear();
                joining.asked = Some(holder);
                cx.send(holder, CatchUpAsk {});
                return Vec::new();
            }
        }
        let joining = self.joining.take().expect("checked above");
        let view = cx.base.view.members;
        {
            let (mappings, mut mapping_cx) = cx.mappings();
            mappings.restore(
                &mut mapping_cx,
                &joining.entries,
                (done.first, done.last),
                done.holders.0,
                view,
            );
        }
        let hash = cx.base.mappings.replica().hash();
        let pages = cx.base.mappings.mapped();
        if hash != done.hash {
            cx.notice(format!(
                "caught up from core {} but the replicas differ: {hash:#x} here, {:#x} there",
                from.0, done.hash
            ));
        } else {
            cx.notice(format!(
                "caught up from core {}: {pages} pages mapped, replica hash {hash:#x}",
                from.0
            ));
        }
        joining.held.into_iter().collect()
    }

    /// `joiner` asks this core to join: it is sent this core's facts and
    /// whether the mappings route by the knowledge base's trees, before any
    /// view takes it in, so that it relays rounds by the same trees as
    /// every member from its first view on. A core still catching up has
    /// not all the facts to give, and sends nothing.
    pub fn welcome(&mut self, cx: &mut Cx<'_>, skb: &mut Skb, joiner: CoreId) {
        if self.joining.is_some() {
            return;
        }
        let facts = skb.all_facts(cx);
        for &text in &facts {
            cx.send(joiner, CatchUpFacts { text });
        }
        let planned = skb.planned();
        cx.send(
            joiner,
            CatchUpPlan {
                facts: facts.len() as u32,
                planned,
            },
        );
    }

    /// Sends a snapshot to every joiner that asked, once none of the rounds
    /// that leave it out holds a lock here any more. A core that is itself
    /// catching up answers once it has caught up.
    pub fn answer(&mut self, cx: &mut Cx<'_>) {
        if self.joining.is_some() || self.asked.is_empty() {
            return;
        }
        let held = locks(cx.base.mappings.replica());
        for rounds in self.owed.values_mut() {
            rounds.get_or_insert_with(|| held.clone());
        }
        let ready: Vec<CoreId> = self
            .asked
            .iter()
            .filter(|core| {
                self.owed.get(core).is_some_and(|rounds| {
                    rounds.as_ref().is_some_and(|rounds| {
                        rounds.is_disjoint(&held) || mutants::active(Mutant::SnapshotWithRoundsOpen)
                    })
                })
            })
            .collect();
        for joiner in ready {
            self.owed.remove(&joiner);
            self.asked.remove(joiner);
            let mappings = &cx.base.mappings;
            let entries: Vec<CatchUpEntry> = mappings
                .replica()
                .entries()
                .iter()
                .filter_map(|entry| {
                    entry.committed.map(|mapping| CatchUpEntry {
                        space: entry.space.0,
                        vaddr: entry.vaddr,
                        paddr: mapping.paddr,
                        flags: mapping.flags,
                    })
                })
                .collect();
            let span = mappings.span_range();
            let done = CatchUpDone {
                entries: entries.len() as u32,
                hash: mappings.replica().hash(),
                first: span.0,
                last: span.1,
                holders: CoreSet(mappings.members()),
                holds_test_space: mappings.holds(TEST_SPACE),
            };
            for entry in entries {
                cx.send(joiner, entry);
            }
            cx.send(joiner, done);
        }
    }
}
