//! The address spaces of this core's processes, replicated: each process's
//! mappings are a table of their own, held by the cores that run it, and
//! changed by agreement among them alone.
//!
//! Each space has its own `atoll-replica` [`Replicator`], so that a
//! process's protocols and state touch only its cores (the test space's
//! replicator, `crate::mappings`, is every member's). A change the host
//! proposes for a process (a `map` or `unmap` system call) is a two-phase
//! commit among the space's holders; an unmap's commit carries the TLB
//! shootdown. Its end comes back to the host with the host's token
//! (`Output::changes`); its effects on each holder's page tables come as
//! [`Effect::ProcessMapping`](crate::Effect::ProcessMapping).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use atoll_proto::{CoreId, OpId, Shape, TreePlan};
use atoll_replica::{
    Actions, Config as ReplicaConfig, Input, Mapping, MappingTable, Replicator, Request, SpaceId,
    SubmitError,
};

use super::messages::ReplicateSpace;
use crate::base::Cx;
use crate::output::Effect;
use crate::vm::messages::Protocol;
use atoll_proto::membership::Members;

/// The space of process `pid` in its replicator (one space each).
fn space(pid: u32) -> SpaceId {
    SpaceId(pid)
}

/// One process's space on this core.
struct Space {
    replicator: Replicator<MappingTable>,
    holders: Members,
    /// The host's token for each change proposed here.
    tokens: BTreeMap<OpId, u64>,
}

/// A change of one page of a process's space, as its core proposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageChange {
    /// Map the page to this frame, with these flags.
    Map(Mapping),
    Unmap,
    /// Give the mapped page these flags, keeping its frame.
    Protect {
        flags: u64,
    },
}

/// Every process space this core holds.
#[derive(Default)]
pub(crate) struct Spaces {
    spaces: BTreeMap<u32, Space>,
}

/// Why a space could not be opened, changed or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpaceError {
    /// This core holds no space of that process.
    NoSuchSpace,
    /// It holds one already.
    Exists,
    /// Its protocols are still running (a change has not ended).
    Busy,
    /// The replicator refused the request (`SubmitError`).
    Refused(SubmitError),
}

impl Spaces {
    /// Opens the space of process `pid`, held by `holders` (this core among
    /// them), with `entries` mapped as every holder has them (the program's
    /// image and stack, loaded before the space is shared).
    pub fn open(
        &mut self,
        cx: &mut Cx<'_>,
        pid: u32,
        holders: Members,
        entries: &[(u64, Mapping)],
    ) -> Result<(), SpaceError> {
        if self.spaces.contains_key(&pid) {
            return Err(SpaceError::Exists);
        }
        let config = ReplicaConfig {
            timeouts: cx.base.mappings.timeouts(),
            plan: TreePlan::new(),
        };
        let mut replicator = Replicator::new(cx.base.me, config, MappingTable::new());
        let holder_list: Vec<CoreId> = holders.iter().collect();
        replicator.add_space(space(pid), &holder_list);
        let entries: Vec<_> = entries
            .iter()
            .map(|&(vaddr, mapping)| (space(pid), vaddr, mapping))
            .collect();
        let mut actions = Actions::default();
        replicator.restore(&entries, &mut actions);
        // The host has these pages mapped already: the restore's effects
        // are not carried out again.
        actions.effects.clear();
        let mut opened = Space {
            replicator,
            holders,
            tokens: BTreeMap::new(),
        };
        opened.down_outside(cx, pid);
        self.spaces.insert(pid, opened);
        Ok(())
    }

    /// Closes the space of `pid`, unless a change is still under way.
    pub fn close(&mut self, pid: u32) -> Result<(), SpaceError> {
        let space = self.spaces.get(&pid).ok_or(SpaceError::NoSuchSpace)?;
        if !space.replicator.is_idle() {
            return Err(SpaceError::Busy);
        }
        self.spaces.remove(&pid);
        Ok(())
    }

    /// Proposes mapping (`Some(mapping)`) or unmapping the page at `vaddr`
    /// of `pid`'s space; its end comes to the host with `token`.
    pub fn propose(
        &mut self,
        cx: &mut Cx<'_>,
        pid: u32,
        vaddr: u64,
        change: PageChange,
        token: u64,
    ) -> Result<(), SpaceError> {
        let entry = self.spaces.get_mut(&pid).ok_or(SpaceError::NoSuchSpace)?;
        let space = space(pid);
        let request = match change {
            PageChange::Map(mapping) => Request::Map {
                space,
                vaddr,
                mapping,
            },
            PageChange::Unmap => Request::Unmap { space, vaddr },
            PageChange::Protect { flags } => Request::Protect {
                space,
                vaddr,
                flags,
            },
        };
        let mut actions = Actions::default();
        let id = entry
            .replicator
            .submit(request, Shape::Planned, &mut actions)
            .map_err(SpaceError::Refused)?;
        entry.tokens.insert(id, token);
        entry.absorb(cx, pid, actions);
        Ok(())
    }

    /// A protocol message for `pid`'s space from `from`. One for a space
    /// this core does not hold (closed, or never opened) is dropped.
    pub fn receive(&mut self, cx: &mut Cx<'_>, from: CoreId, pid: u32, message: Protocol) {
        if let Some(space) = self.spaces.get_mut(&pid) {
            space.input(
                cx,
                pid,
                Input::Message {
                    from,
                    message: message.0,
                },
            );
        }
    }

    pub fn tick(&mut self, cx: &mut Cx<'_>) {
        for (&pid, space) in &mut self.spaces {
            if space.replicator.has_timers() {
                space.input(cx, pid, Input::Tick);
            }
        }
    }

    /// The pages `pid`'s space has committed on this core, if it holds it:
    /// what a core that joins the space starts from (taken while no change
    /// of it is under way on any holder).
    pub fn entries(&self, pid: u32) -> Option<Vec<(u64, Mapping)>> {
        use atoll_replica::Replica;
        let space = self.spaces.get(&pid)?;
        let entries = space.replicator.replica().entries();
        Some(
            entries
                .iter()
                .filter_map(|entry| Some((entry.vaddr, entry.committed?)))
                .collect(),
        )
    }

    /// Makes `holders` the holders of `pid`'s space (a core joined it): the
    /// changes proposed from now on reach them all. Only while no change of
    /// the space is under way on any holder (they froze it): a round in
    /// flight keeps the holders it started with, and would ask a core that
    /// never saw it.
    pub fn regrow(
        &mut self,
        cx: &mut Cx<'_>,
        pid: u32,
        holders: Members,
    ) -> Result<(), SpaceError> {
        let entry = self.spaces.get_mut(&pid).ok_or(SpaceError::NoSuchSpace)?;
        if !entry.replicator.is_idle() {
            return Err(SpaceError::Busy);
        }
        let holder_list: Vec<CoreId> = holders.iter().collect();
        entry.replicator.add_space(space(pid), &holder_list);
        entry.holders = holders;
        entry.down_outside(cx, pid);
        Ok(())
    }

    /// Whether `pid`'s space has no protocol state here.
    pub fn idle(&self, pid: u32) -> bool {
        self.spaces
            .get(&pid)
            .is_some_and(|space| space.replicator.is_idle())
    }

    /// This core's replica of `pid`'s space, hashed, if it holds one.
    pub fn hash(&self, pid: u32) -> Option<u64> {
        use atoll_replica::Replica;
        self.spaces
            .get(&pid)
            .map(|space| space.replicator.replica().hash())
    }

    /// The page `vaddr` of `pid`'s space as this core's replica has it
    /// committed.
    pub fn mapping(&self, pid: u32, vaddr: u64) -> Option<Mapping> {
        use atoll_replica::Replica;
        self.spaces
            .get(&pid)?
            .replicator
            .replica()
            .lookup(space(pid), vaddr)
    }

    pub fn has_timers(&self) -> bool {
        self.spaces
            .values()
            .any(|space| space.replicator.has_timers())
    }

    /// A view of `members` is installed: holders outside it are down.
    pub fn view_installed(&mut self, cx: &mut Cx<'_>, members: Members) {
        for (&pid, space) in &mut self.spaces {
            let down: Members = space.replicator.down().collect();
            for core in space.holders.minus(members).minus(down).iter() {
                space.input(cx, pid, Input::CoreDown(core));
            }
        }
    }
}

impl Space {
    /// Holders that are not members now are down to its protocols.
    fn down_outside(&mut self, cx: &mut Cx<'_>, pid: u32) {
        let outside: Vec<CoreId> = self
            .holders
            .iter()
            .filter(|&core| !cx.base.is_member(core))
            .collect();
        for core in outside {
            self.input(cx, pid, Input::CoreDown(core));
        }
    }

    fn input(&mut self, cx: &mut Cx<'_>, pid: u32, input: Input) {
        let mut actions = Actions::default();
        self.replicator.handle(input, &mut actions);
        self.absorb(cx, pid, actions);
    }

    /// Effects first, then the messages (which may acknowledge them), then
    /// the ends of this core's proposals.
    fn absorb(&mut self, cx: &mut Cx<'_>, pid: u32, actions: Actions) {
        for effect in actions.effects {
            cx.effect(Effect::ProcessMapping { pid, effect });
        }
        for (to, message) in actions.messages {
            cx.send(
                to,
                ReplicateSpace {
                    pid,
                    message: Protocol(message),
                },
            );
        }
        for completion in actions.completions {
            if let Some(token) = self.tokens.remove(&completion.id()) {
                cx.out.changes.push((token, completion));
            }
        }
    }
}
