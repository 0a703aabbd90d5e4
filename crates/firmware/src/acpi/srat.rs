//! The System Resource Affinity Table ("SRAT"): which proximity domain (NUMA node) each processor
//! and each range of memory belongs to, as a stream of variable-length entries {type u8,
//! length u8, ...} laid out like the MADT's. The entries are read through [`PhysMem`] as they are
//! iterated, so no heap is needed.

use super::{AcpiError, TableAt};
use crate::{PhysMem, read_u8, read_u32, read_u64};

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
        SratEntries {
            mem: self.mem,
            table: self.table.address,
            offset: ENTRIES_OFFSET,
            end: self.table.length,
        }
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

/// Reads SRAT entries one at a time. Each step moves forward by the entry's length, which
/// must be at least 2 and stay within the table, so iteration always ends.
pub struct SratEntries<'m, M> {
    mem: &'m M,
    table: u64,
    offset: u32,
    end: u32,
}

impl<M: PhysMem> Iterator for SratEntries<'_, M> {
    type Item = Result<SratEntry, AcpiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.end {
            return None;
        }
        let entry = self.read_entry();
        if entry.is_err() {
            self.offset = self.end;
        }
        Some(entry)
    }
}

impl<M: PhysMem> SratEntries<'_, M> {
    fn read_entry(&mut self) -> Result<SratEntry, AcpiError> {
        const PROCESSOR_LOCAL_APIC_AFFINITY: u8 = 0;
        const MEMORY_AFFINITY: u8 = 1;
        const PROCESSOR_LOCAL_X2APIC_AFFINITY: u8 = 2;
        const ENABLED: u32 = 1 << 0;
        const HOT_PLUGGABLE: u32 = 1 << 1;
        const NON_VOLATILE: u32 = 1 << 2;

        let bad_entry = AcpiError::BadSratEntry {
            offset: self.offset,
        };
        if self.end - self.offset < 2 {
            return Err(bad_entry);
        }
        let (mem, table, at) = (self.mem, self.table, u64::from(self.offset));
        let kind = read_u8(mem, table, at)?;
        let length = read_u8(mem, table, at + 1)?;
        let next = self
            .offset
            .checked_add(u32::from(length))
            .ok_or(bad_entry)?;
        if length < 2 || next > self.end {
            return Err(bad_entry);
        }
        let fits = |needed: u8| {
            if length >= needed {
                Ok(())
            } else {
                Err(bad_entry)
            }
        };
        let entry = match kind {
            PROCESSOR_LOCAL_APIC_AFFINITY => {
                fits(16)?;
                // ACPI 1.0 had a one-byte domain; ACPI 2.0 put its upper three bytes after the
                // SAPIC EID at offset 8.
                let domain_low = read_u8(mem, table, at + 2)?;
                let domain_high = read_u32(mem, table, at + 8)? & !0xFF;
                SratEntry::ProcessorAffinity {
                    apic_id: u32::from(read_u8(mem, table, at + 3)?),
                    domain: domain_high | u32::from(domain_low),
                    enabled: read_u32(mem, table, at + 4)? & ENABLED != 0,
                }
            }
            PROCESSOR_LOCAL_X2APIC_AFFINITY => {
                fits(24)?;
                SratEntry::ProcessorAffinity {
                    apic_id: read_u32(mem, table, at + 8)?,
                    domain: read_u32(mem, table, at + 4)?,
                    enabled: read_u32(mem, table, at + 12)? & ENABLED != 0,
                }
            }
            MEMORY_AFFINITY => {
                fits(40)?;
                let flags = read_u32(mem, table, at + 28)?;
                SratEntry::MemoryAffinity {
                    domain: read_u32(mem, table, at + 2)?,
                    base: read_u64(mem, table, at + 8)?,
                    length: read_u64(mem, table, at + 16)?,
                    enabled: flags & ENABLED != 0,
                    hot_pluggable: flags & HOT_PLUGGABLE != 0,
                    non_volatile: flags & NON_VOLATILE != 0,
                }
            }
            kind => SratEntry::Other { kind },
        };
        self.offset = next;
        Ok(entry)
    }
}
