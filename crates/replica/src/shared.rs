//! One replica shared by a group of cores behind a lock: `docs/architecture.md` §2.4's
//! "sharing as an optimisation", behind the same [`Replica`] interface as a
//! per-core replica. `cargo xtask bench sharing` measures when it wins
//! (`docs/benchmarks.md`).

use alloc::vec::Vec;
use core::fmt;

use atoll_proto::OpId;
use spin::RelaxStrategy;
use spin::mutex::TicketMutex;

use crate::change::{Change, Mapping, Refusal, SpaceId};
use crate::replica::{Entry, Replica};

/// One core's handle on a replica that its group shares. Every call takes
/// the table's lock for its own duration, so a lookup never waits on more
/// than one other call; the [`Replica`] contract (preparing a held id
/// succeeds, resolving an id not held does nothing) lets each sharing
/// core's replicator apply the same proposals through its own handle.
///
/// The lock is a ticket lock: the cores of a group take it in turn, as
/// Linux's spinlocks are fair, so none can starve the others by taking it
/// again while it still holds the line. `Relax` is what a core does while
/// it waits: the kernel, whose holders are never preempted, spins (the
/// default); a hosted benchmark with more threads than CPUs may yield
/// instead, so that a preempted holder gets to run.
pub struct SharedReplica<'a, R, Relax = spin::relax::Spin> {
    table: &'a TicketMutex<R, Relax>,
}

impl<'a, R, Relax> SharedReplica<'a, R, Relax> {
    pub fn new(table: &'a TicketMutex<R, Relax>) -> Self {
        Self { table }
    }
}

impl<R, Relax> Clone for SharedReplica<'_, R, Relax> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, Relax> Copy for SharedReplica<'_, R, Relax> {}

impl<R, Relax> fmt::Debug for SharedReplica<'_, R, Relax> {
    /// The table is left out: printing it would take the lock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedReplica").finish_non_exhaustive()
    }
}

impl<R: Replica, Relax: RelaxStrategy> Replica for SharedReplica<'_, R, Relax> {
    fn prepare(&mut self, id: OpId, change: &Change) -> Result<(), Refusal> {
        self.table.lock().prepare(id, change)
    }

    fn commit(&mut self, id: OpId, change: &Change) {
        self.table.lock().commit(id, change);
    }

    fn abort(&mut self, id: OpId, change: &Change) {
        self.table.lock().abort(id, change);
    }

    fn lookup(&self, space: SpaceId, vaddr: u64) -> Option<Mapping> {
        self.table.lock().lookup(space, vaddr)
    }

    fn restore(&mut self, space: SpaceId, vaddr: u64, mapping: Mapping) {
        self.table.lock().restore(space, vaddr, mapping);
    }

    fn entries(&self) -> Vec<Entry> {
        self.table.lock().entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Actions, Completion, Config, CoreId, Input, MappingTable, Replicator, Request, Timeouts,
        TreePlan,
    };
    use alloc::collections::VecDeque;
    use atoll_proto::Shape;

    const SPACE: SpaceId = SpaceId(3);
    const MAPPING: Mapping = Mapping {
        paddr: 0x7000,
        flags: 3,
    };

    /// Cores 0 and 1 share `group`; core 2 holds `alone`. All three hold
    /// `SPACE`. Runs `request` from core `at` until no message is left, and
    /// returns its completion.
    fn agree(
        cores: &mut [Replicator<SharedReplica<'_, MappingTable>>],
        at: usize,
        request: Request,
    ) -> Completion {
        let mut queue = VecDeque::new();
        let mut completions = Vec::new();
        let mut out = Actions::default();
        cores[at].submit(request, Shape::Flat, &mut out).unwrap();
        let mut from = CoreId(at as u16);
        loop {
            completions.append(&mut out.completions);
            for (to, message) in out.messages.drain(..) {
                queue.push_back((from, to, message));
            }
            let Some((sender, to, message)) = queue.pop_front() else {
                break;
            };
            from = to;
            let input = Input::Message {
                from: sender,
                message,
            };
            cores[usize::from(to.0)].handle(input, &mut out);
        }
        assert_eq!(completions.len(), 1);
        completions[0]
    }

    #[test]
    fn cores_sharing_a_table_agree_with_a_core_that_has_its_own() {
        let group = TicketMutex::new(MappingTable::new());
        let alone = TicketMutex::new(MappingTable::new());
        let holders = [CoreId(0), CoreId(1), CoreId(2)];
        let mut cores: Vec<_> = [&group, &group, &alone]
            .into_iter()
            .enumerate()
            .map(|(n, table)| {
                let config = Config {
                    timeouts: Timeouts {
                        vote: 8,
                        round: 8,
                        relay: 4,
                    },
                    plan: TreePlan::new(),
                };
                let mut core = Replicator::new(CoreId(n as u16), config, SharedReplica::new(table));
                core.add_space(SPACE, &holders);
                core
            })
            .collect();

        let map = Request::Map {
            space: SPACE,
            vaddr: 0x1000,
            mapping: MAPPING,
        };
        assert!(matches!(
            agree(&mut cores, 1, map),
            Completion::Committed { .. }
        ));
        assert_eq!(group.lock().lookup(SPACE, 0x1000), Some(MAPPING));
        assert_eq!(group.lock().entries(), alone.lock().entries());
        assert!(cores.iter().all(|core| core.is_idle()));

        let unmap = Request::Unmap {
            space: SPACE,
            vaddr: 0x1000,
        };
        assert!(matches!(
            agree(&mut cores, 2, unmap),
            Completion::Committed { .. }
        ));
        assert_eq!(cores[0].replica().lookup(SPACE, 0x1000), None);
        assert!(group.lock().entries().is_empty() && alone.lock().entries().is_empty());
    }

    #[test]
    fn handles_on_one_table_see_each_others_changes() {
        let table = TicketMutex::new(MappingTable::new());
        let mut first = SharedReplica::<_>::new(&table);
        let mut second = first;
        let id = OpId {
            origin: CoreId(0),
            seq: 1,
        };
        let change = Change::Map {
            space: SPACE,
            vaddr: 0x2000,
            mapping: MAPPING,
        };
        first.prepare(id, &change).unwrap();
        assert_eq!(second.prepare(id, &change), Ok(()), "same id again");
        second.commit(id, &change);
        first.commit(id, &change);
        assert_eq!(first.lookup(SPACE, 0x2000), Some(MAPPING));
        assert_eq!(second.hash(), first.hash());
    }
}
