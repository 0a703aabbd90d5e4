//! The System Resource Affinity Table ("SRAT"): which proximity domain (NUMA node) each processor
//! and each range of memory belongs to, as a stream of variable-length entries {type u8,
//! length u8, ...} laid out like the MADT's. The walk through the entries is shared with the MADT
//! (in `subtables`); only the entry types are decoded here.

use super::subtables::{Subtable, Subtables};
use super::{AcpiError, TableAt};
use crate::PhysMem;

/// The header, then a reserved u32 (1, for compatibility with old operating systems) and a
/// reserved u64.
const ENTRIES_OFFSET: u32 = 48;

/// The SRAT, checked: every entry has a length that fits its type and the table.
pub struct Srat<'m, M: PhysMem> {
    mem: &'m M,
    table: TableAt,
}

impl<'m, M: PhysMem> Srat<'m, M> {
    pub(crate) fn parse(mem: &'m M, table: TableAt) -> Result<Self, AcpiError> {
        table.require_length(ENTRIES_OFFSET)?;
        let srat = Srat { mem, table };
        // Walking every entry now means a malformed one is reported here, not mid-use.
        for entry in srat.entries() {
            entry?;
        }
        Ok(srat)
    }

    /// The entries in table order. Iteration stops after the first error.
    pub fn entries(&self) -> SratEntries<'m, M> {
        Subtables::new(self.mem, self.table, ENTRIES_OFFSET, decode, |offset| {
            AcpiError::BadSratEntry { offset }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SratEntry {
    /// A processor, from a local APIC affinity entry (type 0) or a local x2APIC affinity entry
    /// (type 2). A disabled entry is to be ignored: firmware lists more than the machine has.
    ProcessorAffinity {
        apic_id: u32,
        domain: u32,
        enabled: bool,
    },
    /// Type 1. A disabled entry is to be ignored; a hot-pluggable one may describe memory that is
    /// not there yet.
    MemoryAffinity {
        domain: u32,
        base: u64,
        length: u64,
        enabled: bool,
        hot_pluggable: bool,
        non_volatile: bool,
    },
    Other {
        kind: u8,
    },
}

/// Reads SRAT entries one at a time, as they are iterated.
pub type SratEntries<'m, M> = Subtables<'m, M, SratEntry>;

fn decode<M: PhysMem>(entry: &Subtable<'_, M>) -> Result<SratEntry, AcpiError> {
    const PROCESSOR_LOCAL_APIC_AFFINITY: u8 = 0;
    const MEMORY_AFFINITY: u8 = 1;
    const PROCESSOR_LOCAL_X2APIC_AFFINITY: u8 = 2;
    const ENABLED: u32 = 1 << 0;
    const HOT_PLUGGABLE: u32 = 1 << 1;
    const NON_VOLATILE: u32 = 1 << 2;

    Ok(match entry.kind() {
        PROCESSOR_LOCAL_APIC_AFFINITY => {
            entry.require(16)?;
            // ACPI 1.0 had a one-byte domain; ACPI 2.0 put its upper three bytes after the
            // SAPIC EID at offset 8.
            let domain_low = entry.read_u8(2)?;
            let domain_high = entry.read_u32(8)? & !0xFF;
            SratEntry::ProcessorAffinity {
                apic_id: u32::from(entry.read_u8(3)?),
                domain: domain_high | u32::from(domain_low),
                enabled: entry.read_u32(4)? & ENABLED != 0,
            }
        }
        PROCESSOR_LOCAL_X2APIC_AFFINITY => {
            entry.require(24)?;
            SratEntry::ProcessorAffinity {
                apic_id: entry.read_u32(8)?,
                domain: entry.read_u32(4)?,
                enabled: entry.read_u32(12)? & ENABLED != 0,
            }
        }
        MEMORY_AFFINITY => {
            entry.require(40)?;
            let flags = entry.read_u32(28)?;
            SratEntry::MemoryAffinity {
                domain: entry.read_u32(2)?,
                base: entry.read_u64(8)?,
                length: entry.read_u64(16)?,
                enabled: flags & ENABLED != 0,
                hot_pluggable: flags & HOT_PLUGGABLE != 0,
                non_volatile: flags & NON_VOLATILE != 0,
            }
        }
        kind => SratEntry::Other { kind },
    })
}
