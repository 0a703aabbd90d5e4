//! The replicated table of virtual memory mappings, and the interface the
//! core reaches it through.

use crate::change::{Change, Mapping, Refusal, SpaceId};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use atoll_proto::OpId;
use atoll_proto::mutants::{self, Mutant};
use core::hash::Hasher;

/// One page of the table as a replica holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    pub space: SpaceId,
    pub vaddr: u64,
    /// The agreed mapping, if any.
    pub committed: Option<Mapping>,
    /// A change voted for and not yet decided: it holds the page's lock.
    pub pending: Option<(OpId, Change)>,
}

/// How the core reads and changes its replica of the mapping table.
///
/// [`MappingTable`] is the per-core replica. Cores that share a cache may
/// instead share one table behind a lock (`docs/architecture.md` §2.4), each through a
/// [`SharedReplica`](crate::SharedReplica) handle: each sharing core's replicator
/// then prepares, commits and aborts the same proposals on the same table,
/// which is why preparing an id the table already holds must succeed, and
/// committing or aborting an id it no longer holds must do nothing.
pub trait Replica {
    /// Lock the page `change` touches and record the change as pending, or
    /// refuse: the page is locked by another proposal, or the change does
    /// not apply to the committed mapping.
    fn prepare(&mut self, id: OpId, change: &Change) -> Result<(), Refusal>;
    /// Apply the pending change of `id` and release the page.
    fn commit(&mut self, id: OpId, change: &Change);
    /// Drop the pending change of `id` and release the page.
    fn abort(&mut self, id: OpId, change: &Change);
    /// The committed mapping of the page at `vaddr`, if any: what a page
    /// fault reads. A pending change does not show until it commits.
    fn lookup(&self, space: SpaceId, vaddr: u64) -> Option<Mapping>;
    /// Take `mapping` of the page at `vaddr` as committed, as another
    /// replica holds it: how a replica that starts empty catches up with a
    /// member's. Only for a page no change is pending on here.
    fn restore(&mut self, space: SpaceId, vaddr: u64, mapping: Mapping);
    /// Every page with a committed mapping or a pending change, ordered by
    /// space and address.
    fn entries(&self) -> Vec<Entry>;

    /// FNV-1a (64-bit) over the committed mappings in `entries` order:
    /// space, vaddr, paddr and flags, each little-endian. Pending changes
    /// do not count, so replicas that agree hash alike while proposals run.
    fn hash(&self) -> u64 {
        let mut hash = Fnv1a::new();
        for entry in self.entries() {
            let Some(mapping) = entry.committed else {
                continue;
            };
            let fields = [
                &entry.space.0.to_le_bytes()[..],
                &entry.vaddr.to_le_bytes(),
                &mapping.paddr.to_le_bytes(),
                &mapping.flags.to_le_bytes(),
            ];
            for field in fields {
                hash.write(field);
            }
        }
        hash.finish()
    }

    /// The pages locked by a pending change.
    fn locks(&self) -> u32 {
        self.entries()
            .iter()
            .filter(|entry| entry.pending.is_some())
            .count() as u32
    }

    /// [`hash`](Self::hash), then each lock in `entries` order (space,
    /// vaddr, the holding proposal's origin and sequence number): equal
    /// only for replicas with the same mappings and the same locks, which
    /// is what replicas at rest must have (none).
    fn hash_with_locks(&self) -> u64 {
        let mut hash = Fnv1a::new();
        hash.write(&self.hash().to_le_bytes());
        for entry in self.entries() {
            let Some((id, _)) = entry.pending else {
                continue;
            };
            hash.write(&entry.space.0.to_le_bytes());
            hash.write(&entry.vaddr.to_le_bytes());
            hash.write(&id.origin.0.to_le_bytes());
            hash.write(&id.seq.to_le_bytes());
        }
        hash.finish()
    }
}

/// FNV-1a, 64-bit: the hash replicas are compared by across cores. Cheap
/// and stable across builds and machines (unlike `core`'s `SipHash` keys),
/// which is all a comparison of equal states needs; it is no defence
/// against a peer that forges a collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a(u64);

impl Fnv1a {
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl core::hash::Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The per-core replica: a page is locked by at most one pending change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MappingTable {
    pages: BTreeMap<(SpaceId, u64), Slot>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Slot {
    committed: Option<Mapping>,
    pending: Option<(OpId, Change)>,
}

impl MappingTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves the pending change of `id` on its page, keeping it if
    /// `apply`, and forgets the page once nothing is left on it.
    fn resolve(&mut self, id: OpId, change: &Change, apply: bool) {
        let page = change.page();
        let Some(slot) = self.pages.get_mut(&page) else {
            return;
        };
        if slot.pending.is_none_or(|(holder, _)| holder != id) {
            return;
        }
        slot.pending = None;
        if apply {
            slot.committed = match *change {
                Change::Map { mapping, .. } => Some(mapping),
                Change::Unmap { .. } => None,
                Change::Protect { flags, .. } => {
                    slot.committed.map(|mapping| Mapping { flags, ..mapping })
                }
            };
        }
        if slot.committed.is_none() {
            self.pages.remove(&page);
        }
    }
}

impl Replica for MappingTable {
    fn prepare(&mut self, id: OpId, change: &Change) -> Result<(), Refusal> {
        let page = change.page();
        let slot = self.pages.get(&page).copied().unwrap_or_default();
        let pending = slot
            .pending
            .filter(|&(holder, _)| holder == id || !mutants::active(Mutant::LockTwice));
        match (pending, change) {
            (Some((holder, _)), _) if holder == id => Ok(()),
            (Some((holder, _)), _) => Err(Refusal::Conflict { with: holder }),
            (None, Change::Map { .. }) if slot.committed.is_some() => Err(Refusal::AlreadyMapped),
            (None, Change::Unmap { .. } | Change::Protect { .. }) if slot.committed.is_none() => {
                Err(Refusal::NotMapped)
            }
            (None, _) => {
                self.pages.entry(page).or_default().pending = Some((id, *change));
                Ok(())
            }
        }
    }

    fn commit(&mut self, id: OpId, change: &Change) {
        self.resolve(id, change, true);
    }

    fn abort(&mut self, id: OpId, change: &Change) {
        self.resolve(id, change, false);
    }

    fn lookup(&self, space: SpaceId, vaddr: u64) -> Option<Mapping> {
        self.pages
            .get(&(space, vaddr))
            .and_then(|slot| slot.committed)
    }

    fn restore(&mut self, space: SpaceId, vaddr: u64, mapping: Mapping) {
        self.pages.entry((space, vaddr)).or_default().committed = Some(mapping);
    }

    fn entries(&self) -> Vec<Entry> {
        self.pages
            .iter()
            .map(|(&(space, vaddr), slot)| Entry {
                space,
                vaddr,
                committed: slot.committed,
                pending: slot.pending,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_proto::CoreId;
    use proptest::prelude::*;

    const SPACE: SpaceId = SpaceId(1);

    fn id(seq: u32) -> OpId {
        OpId {
            origin: CoreId(0),
            seq,
        }
    }

    fn map(vaddr: u64, paddr: u64) -> Change {
        Change::Map {
            space: SPACE,
            vaddr,
            mapping: Mapping { paddr, flags: 3 },
        }
    }

    fn unmap(vaddr: u64) -> Change {
        Change::Unmap {
            space: SPACE,
            vaddr,
        }
    }

    #[test]
    fn a_locked_page_refuses_other_proposals_naming_the_holder() {
        let mut table = MappingTable::new();
        assert_eq!(table.prepare(id(1), &map(0x1000, 0x5000)), Ok(()));
        assert_eq!(
            table.prepare(id(2), &map(0x1000, 0x6000)),
            Err(Refusal::Conflict { with: id(1) })
        );
        assert_eq!(
            table.prepare(id(3), &unmap(0x1000)),
            Err(Refusal::Conflict { with: id(1) })
        );
        assert_eq!(
            table.prepare(id(1), &map(0x1000, 0x5000)),
            Ok(()),
            "same id again"
        );
        assert_eq!(
            table.prepare(id(4), &map(0x2000, 0x6000)),
            Ok(()),
            "another page"
        );
    }

    #[test]
    fn changes_must_apply_to_the_committed_mapping() {
        let mut table = MappingTable::new();
        assert_eq!(
            table.prepare(id(1), &unmap(0x1000)),
            Err(Refusal::NotMapped)
        );
        assert!(
            table.entries().is_empty(),
            "a refusal leaves nothing behind"
        );
        table.prepare(id(2), &map(0x1000, 0x5000)).unwrap();
        table.commit(id(2), &map(0x1000, 0x5000));
        assert_eq!(
            table.prepare(id(3), &map(0x1000, 0x6000)),
            Err(Refusal::AlreadyMapped)
        );
        assert_eq!(table.prepare(id(4), &unmap(0x1000)), Ok(()));
    }

    #[test]
    fn a_protect_needs_the_page_mapped_and_keeps_its_frame() {
        let mut table = MappingTable::new();
        let protect = |flags| Change::Protect {
            space: SPACE,
            vaddr: 0x1000,
            flags,
        };
        assert_eq!(table.prepare(id(1), &protect(0)), Err(Refusal::NotMapped));
        table.prepare(id(2), &map(0x1000, 0x5000)).unwrap();
        table.commit(id(2), &map(0x1000, 0x5000));
        assert_eq!(table.prepare(id(3), &protect(0)), Ok(()));
        assert_eq!(
            table.prepare(id(4), &unmap(0x1000)),
            Err(Refusal::Conflict { with: id(3) }),
            "a protect locks the page"
        );
        table.abort(id(3), &protect(0));
        let mapped = Mapping {
            paddr: 0x5000,
            flags: 3,
        };
        assert_eq!(table.lookup(SPACE, 0x1000), Some(mapped), "aborted");
        table.prepare(id(5), &protect(1)).unwrap();
        table.commit(id(5), &protect(1));
        assert_eq!(
            table.lookup(SPACE, 0x1000),
            Some(Mapping {
                paddr: 0x5000,
                flags: 1
            })
        );
    }

    #[test]
    fn commit_applies_abort_rolls_back_and_pending_changes_do_not_hash() {
        let mut table = MappingTable::new();
        let empty = table.hash();
        table.prepare(id(1), &map(0x1000, 0x5000)).unwrap();
        assert_eq!(table.hash(), empty);
        let entry = table.entries()[0];
        assert_eq!(
            (entry.committed, entry.pending),
            (None, Some((id(1), map(0x1000, 0x5000))))
        );
        table.commit(id(1), &map(0x1000, 0x5000));
        let mapped = table.hash();
        assert_ne!(mapped, empty);
        table.prepare(id(2), &unmap(0x1000)).unwrap();
        table.abort(id(2), &unmap(0x1000));
        assert_eq!(table.hash(), mapped);
        table.prepare(id(3), &unmap(0x1000)).unwrap();
        table.commit(id(3), &unmap(0x1000));
        assert!(table.entries().is_empty());
        assert_eq!(table.hash(), empty);
    }

    #[test]
    fn lookup_sees_committed_mappings_only() {
        let mut table = MappingTable::new();
        let mapping = Mapping {
            paddr: 0x5000,
            flags: 3,
        };
        table.prepare(id(1), &map(0x1000, 0x5000)).unwrap();
        assert_eq!(table.lookup(SPACE, 0x1000), None, "pending");
        table.commit(id(1), &map(0x1000, 0x5000));
        assert_eq!(table.lookup(SPACE, 0x1000), Some(mapping));
        assert_eq!(table.lookup(SpaceId(2), 0x1000), None, "another space");
        table.prepare(id(2), &unmap(0x1000)).unwrap();
        assert_eq!(table.lookup(SPACE, 0x1000), Some(mapping), "pending unmap");
        table.commit(id(2), &unmap(0x1000));
        assert_eq!(table.lookup(SPACE, 0x1000), None);
    }

    #[test]
    fn committing_or_aborting_an_id_not_held_does_nothing() {
        let mut table = MappingTable::new();
        table.prepare(id(1), &map(0x1000, 0x5000)).unwrap();
        table.commit(id(2), &map(0x1000, 0x5000));
        table.abort(id(2), &map(0x1000, 0x5000));
        assert_eq!(
            table.entries()[0].pending.map(|(holder, _)| holder),
            Some(id(1))
        );
        table.commit(id(1), &map(0x1000, 0x5000));
        table.commit(id(1), &map(0x1000, 0x5000));
        assert_eq!(
            table.entries()[0].committed,
            Some(Mapping {
                paddr: 0x5000,
                flags: 3
            })
        );
    }

    /// Replays `ops` (prepare, then commit or abort) on a fresh table.
    fn replay(ops: &[(u64, u64, bool, bool)]) -> MappingTable {
        let mut table = MappingTable::new();
        for (seq, &(page, frame, is_map, keep)) in ops.iter().enumerate() {
            let change = match is_map {
                true => map(page * 0x1000, frame * 0x1000),
                false => unmap(page * 0x1000),
            };
            let id = id(seq as u32);
            if table.prepare(id, &change).is_ok() {
                match keep {
                    true => table.commit(id, &change),
                    false => table.abort(id, &change),
                }
            }
        }
        table
    }

    proptest! {
        /// The hash is a function of the committed mappings alone: a table
        /// built by any history hashes like one built from its committed
        /// entries in reverse order, and tables that differ hash apart.
        #[test]
        fn the_hash_depends_on_the_committed_mappings_only(
            ops in prop::collection::vec((0u64..4, 1u64..4, any::<bool>(), any::<bool>()), 0..40),
            other in prop::collection::vec((0u64..4, 1u64..4, any::<bool>(), any::<bool>()), 0..40),
        ) {
            let table = replay(&ops);
            let rebuilt: Vec<_> = table.entries().iter().rev()
                .map(|e| (e.vaddr / 0x1000, e.committed.unwrap().paddr / 0x1000, true, true))
                .collect();
            prop_assert_eq!(replay(&rebuilt).hash(), table.hash());
            prop_assert!(table.entries().iter().all(|e| e.pending.is_none() && e.committed.is_some()));
            let other = replay(&other);
            prop_assert_eq!(other.entries() == table.entries(), other.hash() == table.hash());
        }
    }
}
