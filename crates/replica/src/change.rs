//! What the replicated mapping table holds and what changes it: address
//! spaces, mappings, the changes proposals carry and why holders refuse
//! them, and the payload of a TLB shootdown.

use atoll_proto::OpId;

/// An address space whose mappings are replicated on its holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(pub u32);

/// Where a page maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The frame's physical address (4 KiB aligned).
    pub paddr: u64,
    /// Page-table flags, as the host defines them (the kernel: x86_64 PTE
    /// bits); the protocols only carry them.
    pub flags: u64,
}

/// A change to one page of the mapping table, which proposals carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Map the unmapped page at `vaddr` (4 KiB aligned).
    Map {
        space: SpaceId,
        vaddr: u64,
        mapping: Mapping,
    },
    /// Unmap the mapped page at `vaddr`.
    Unmap { space: SpaceId, vaddr: u64 },
    /// Give the mapped page at `vaddr` the flags `flags`, keeping its
    /// frame. Committing it invalidates each holder's TLB entry, as an
    /// unmap does: a right taken away is gone once it completes.
    Protect {
        space: SpaceId,
        vaddr: u64,
        flags: u64,
    },
}

impl Change {
    /// The page the change touches, which its proposal locks.
    pub fn page(&self) -> (SpaceId, u64) {
        match *self {
            Change::Map { space, vaddr, .. }
            | Change::Unmap { space, vaddr }
            | Change::Protect { space, vaddr, .. } => (space, vaddr),
        }
    }
}

/// Why a holder voted no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Proposal `with` holds the page's lock on that holder.
    Conflict { with: OpId },
    /// A map of a page that is mapped.
    AlreadyMapped,
    /// An unmap (or protect) of a page that is not mapped.
    NotMapped,
}

/// The payload of a TLB shootdown round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Invalidation {
    pub space: SpaceId,
    pub vaddr: u64,
}
