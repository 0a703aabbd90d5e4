//! The Multiple APIC Description Table ("APIC"): the local APIC address, then a stream of
//! variable-length entries {type u8, length u8, ...} describing processors and interrupt
//! controllers. The walk through the entries is shared with the SRAT (in `subtables`); only the
//! entry types are decoded here.

use super::subtables::{Subtable, Subtables};
use super::{AcpiError, TableAt};
use crate::{PhysMem, read_u32};

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
        Subtables::new(self.mem, self.table, ENTRIES_OFFSET, decode, |offset| {
            AcpiError::BadMadtEntry { offset }
        })
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

/// Reads MADT entries one at a time, as they are iterated.
pub type MadtEntries<'m, M> = Subtables<'m, M, MadtEntry>;

fn decode<M: PhysMem>(entry: &Subtable<'_, M>) -> Result<MadtEntry, AcpiError> {
    const PROCESSOR_LOCAL_APIC: u8 = 0;
    const IO_APIC: u8 = 1;
    const INTERRUPT_OVERRIDE: u8 = 2;
    const LOCAL_APIC_ADDRESS_OVERRIDE: u8 = 5;
    const PROCESSOR_LOCAL_X2APIC: u8 = 9;
    const ENABLED: u32 = 1 << 0;
    const ONLINE_CAPABLE: u32 = 1 << 1;

    Ok(match entry.kind() {
        PROCESSOR_LOCAL_APIC => {
            entry.require(8)?;
            let flags = entry.read_u32(4)?;
            MadtEntry::LocalApic {
                processor_uid: u32::from(entry.read_u8(2)?),
                apic_id: u32::from(entry.read_u8(3)?),
                enabled: flags & ENABLED != 0,
                online_capable: flags & ONLINE_CAPABLE != 0,
            }
        }
        PROCESSOR_LOCAL_X2APIC => {
            entry.require(16)?;
            let flags = entry.read_u32(8)?;
            MadtEntry::LocalApic {
                processor_uid: entry.read_u32(12)?,
                apic_id: entry.read_u32(4)?,
                enabled: flags & ENABLED != 0,
                online_capable: flags & ONLINE_CAPABLE != 0,
            }
        }
        IO_APIC => {
            entry.require(12)?;
            MadtEntry::IoApic {
                id: entry.read_u8(2)?,
                address: entry.read_u32(4)?,
                gsi_base: entry.read_u32(8)?,
            }
        }
        INTERRUPT_OVERRIDE => {
            entry.require(10)?;
            MadtEntry::InterruptOverride {
                bus: entry.read_u8(2)?,
                source: entry.read_u8(3)?,
                gsi: entry.read_u32(4)?,
                flags: entry.read_u16(8)?,
            }
        }
        LOCAL_APIC_ADDRESS_OVERRIDE => {
            entry.require(12)?;
            MadtEntry::LocalApicAddressOverride {
                address: entry.read_u64(4)?,
            }
        }
        kind => MadtEntry::Other { kind },
    })
}
