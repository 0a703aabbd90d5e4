//! What a simulated core's host keeps besides its replica: a page table and
//! a TLB. The TLB caches every mapping the moment it is entered (the worst
//! case), with its flags, and forgets a page only on an `InvalidateTlb`, so
//! a stale translation shows up as a TLB entry that the page table no
//! longer has: another frame, or rights a protect took away.

use std::collections::{BTreeMap, BTreeSet};

use atoll_replica::{Effect, Entry, Mapping, SpaceId};

use crate::seeded::{Violation, violation};

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Memory {
    page_table: BTreeMap<(SpaceId, u64), Mapping>,
    /// Space, page, frame, flags.
    tlb: BTreeSet<(SpaceId, u64, u64, u64)>,
}

impl Memory {
    /// Applies one of core `core`'s effects; mapping a mapped page to
    /// another frame (the same frame is a protect's new flags) or unmapping
    /// an unmapped one means two conflicting changes committed.
    pub fn apply(&mut self, core: u16, effect: Effect) -> Result<(), Violation> {
        match effect {
            Effect::MapPage {
                space,
                vaddr,
                mapping,
            } => {
                if let Some(old) = self.page_table.insert((space, vaddr), mapping)
                    && old.paddr != mapping.paddr
                {
                    return violation!(
                        "conflicting commits: core {core} mapped {vaddr:#x} to {:#x} over {:#x}",
                        mapping.paddr,
                        old.paddr
                    );
                }
                self.tlb
                    .insert((space, vaddr, mapping.paddr, mapping.flags));
            }
            Effect::UnmapPage { space, vaddr } => {
                if self.page_table.remove(&(space, vaddr)).is_none() {
                    return violation!(
                        "conflicting commits: core {core} unmapped unmapped {vaddr:#x}"
                    );
                }
            }
            Effect::InvalidateTlb { space, vaddr } => {
                self.tlb.retain(|&(s, v, _, _)| (s, v) != (space, vaddr));
            }
        }
        Ok(())
    }

    /// A translation of the page that the TLB caches and the page table no
    /// longer has (another frame, or other flags): its frame and flags.
    pub fn stale(&self, space: SpaceId, vaddr: u64) -> Option<(u64, u64)> {
        self.tlb
            .iter()
            .find(|&&(s, v, paddr, flags)| {
                (s, v) == (space, vaddr)
                    && self
                        .page_table
                        .get(&(s, v))
                        .is_none_or(|m| (m.paddr, m.flags) != (paddr, flags))
            })
            .map(|&(_, _, paddr, flags)| (paddr, flags))
    }

    /// Checks that the page table holds exactly the committed mappings of
    /// `entries` (a replica's) and that the TLB caches nothing else.
    pub fn agrees_with(&self, core: u16, entries: &[Entry]) -> Result<(), Violation> {
        let committed: BTreeMap<(SpaceId, u64), Mapping> = entries
            .iter()
            .filter_map(|e| Some(((e.space, e.vaddr), e.committed?)))
            .collect();
        if committed != self.page_table {
            return violation!(
                "core {core}: replica {committed:?} but page table {:?}",
                self.page_table
            );
        }
        if let Some(stale) = self.tlb.iter().find(|&&(s, v, p, f)| {
            committed
                .get(&(s, v))
                .is_none_or(|m| (m.paddr, m.flags) != (p, f))
        }) {
            return violation!("core {core} caches a stale translation {stale:?}");
        }
        Ok(())
    }

    /// Pages mapped in `space`.
    pub fn mapped(&self, space: SpaceId) -> usize {
        self.page_table.keys().filter(|&&(s, _)| s == space).count()
    }
}

/// Checks that the replicas whose hashes are `hashes` (by core) are equal.
pub fn replicas_agree(hashes: impl IntoIterator<Item = (u16, u64)>) -> Result<(), Violation> {
    let mut hashes = hashes.into_iter();
    let Some((first, expected)) = hashes.next() else {
        return Ok(());
    };
    match hashes.find(|&(_, hash)| hash != expected) {
        Some((core, hash)) => violation!(
            "replicas diverge: core {first} hashes {expected:#018x}, core {core} {hash:#018x}"
        ),
        None => Ok(()),
    }
}
