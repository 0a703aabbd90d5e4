//! The Multiple APIC Description Table ("APIC"): the local APIC address, then a stream of
//! variable-length entries {type u8, length u8, ...} describing processors and interrupt
//! controllers. The entries are read through [`PhysMem`] as they are iterated, so no heap is needed.

use super::{AcpiError, TableAt};
use crate::{PhysMem, read_u8, read_u16, read_u32, read_u64};

/// The header, then the local APIC address and the flags (u32 each).
const ENTRIES_OFFSET: u32 = 44;

/// The MADT, checked: every entry has a length that fits its type and the table.
pub struct Madt<'m, M: PhysMem> {
    /// The local APIC's physical address, with a type 5 override applied.
    pub local_apic_address: u64,
    /// Bit 0: the machine also has dual 8259 PICs, to be masked before using the APICs.
    pub flags: u32,
    mem: &'m M,
    table: TableAt,
}

impl<'m, M: PhysMem> Madt<'m, M> {
    pub(crate) fn parse(mem: &'m M, table: TableAt) -> Result<Self, AcpiError> {
        table.require_length(ENTRIES_OFFSET)?;
        let mut madt = Madt {
            local_apic_address: u64::from(read_u32(mem, table.address, 36)?),
            flags: read_u32(mem, table.address, 40)?,
            mem,
            table,
        };
        // Walking every entry now also means a malformed one is reported here, not mid-use.
        for entry in madt.entries() {
            if let MadtEntry::LocalApicAddressOverride { address } = entry? {
                madt.local_apic_address = address;
            }
        }
        Ok(madt)
    }

    /// The entries in table order. Iteration stops after the first error.
    pub fn entries(&self) -> MadtEntries<'m, M> {
        MadtEntries {
            mem: self.mem,
            table: self.table.address,
            offset: ENTRIES_OFFSET,
            end: self.table.length,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadtEntry {
    /// A processor, from a local APIC entry (type 0) or a local x2APIC entry (type 9).
    LocalApic {
        processor_uid: u32,
        apic_id: u32,
        enabled: bool,
        online_capable: bool,
    },
    /// Type 1.
    IoApic {
        id: u8,
        address: u32,
        gsi_base: u32,
    },
    /// Type 2: ISA interrupt `source` arrives on `gsi`; `flags` give polarity and trigger mode.
    InterruptOverride {
        bus: u8,
        source: u8,
        gsi: u32,
        flags: u16,
    },
    /// Type 5: a 64-bit local APIC address, already applied to [`Madt::local_apic_address`].
    LocalApicAddressOverride {
        address: u64,
    },
    Other {
        kind: u8,
    },
}

/// Reads MADT entries one at a time. Each step moves forward by the entry's length, which
/// must be at least 2 and stay within the table, so iteration always ends.
pub struct MadtEntries<'m, M> {
    mem: &'m M,
    table: u64,
    offset: u32,
    end: u32,
}

impl<M: PhysMem> Iterator for MadtEntries<'_, M> {
    type Item = Result<MadtEntry, AcpiError>;

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

impl<M: PhysMem> MadtEntries<'_, M> {
    fn read_entry(&mut self) -> Result<MadtEntry, AcpiError> {
        const PROCESSOR_LOCAL_APIC: u8 = 0;
        const IO_APIC: u8 = 1;
        const INTERRUPT_OVERRIDE: u8 = 2;
        const LOCAL_APIC_ADDRESS_OVERRIDE: u8 = 5;
        const PROCESSOR_LOCAL_X2APIC: u8 = 9;
        const ENABLED: u32 = 1 << 0;
        const ONLINE_CAPABLE: u32 = 1 << 1;

        let bad_entry = AcpiError::BadMadtEntry {
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
            PROCESSOR_LOCAL_APIC => {
                fits(8)?;
                let flags = read_u32(mem, table, at + 4)?;
                MadtEntry::LocalApic {
                    processor_uid: u32::from(read_u8(mem, table, at + 2)?),
                    apic_id: u32::from(read_u8(mem, table, at + 3)?),
                    enabled: flags & ENABLED != 0,
                    online_capable: flags & ONLINE_CAPABLE != 0,
                }
            }
            PROCESSOR_LOCAL_X2APIC => {
                fits(16)?;
                let flags = read_u32(mem, table, at + 8)?;
                MadtEntry::LocalApic {
                    processor_uid: read_u32(mem, table, at + 12)?,
                    apic_id: read_u32(mem, table, at + 4)?,
                    enabled: flags & ENABLED != 0,
                    online_capable: flags & ONLINE_CAPABLE != 0,
                }
            }
            IO_APIC => {
                fits(12)?;
                MadtEntry::IoApic {
                    id: read_u8(mem, table, at + 2)?,
                    address: read_u32(mem, table, at + 4)?,
                    gsi_base: read_u32(mem, table, at + 8)?,
                }
            }
            INTERRUPT_OVERRIDE => {
                fits(10)?;
                MadtEntry::InterruptOverride {
                    bus: read_u8(mem, table, at + 2)?,
                    source: read_u8(mem, table, at + 3)?,
                    gsi: read_u32(mem, table, at + 4)?,
                    flags: read_u16(mem, table, at + 8)?,
                }
            }
            LOCAL_APIC_ADDRESS_OVERRIDE => {
                fits(12)?;
                MadtEntry::LocalApicAddressOverride {
                    address: read_u64(mem, table, at + 4)?,
                }
            }
            kind => MadtEntry::Other { kind },
        };
        self.offset = next;
        Ok(entry)
    }
}
