//! The stream of variable-length entries {type u8, length u8, ...} that the MADT and the SRAT
//! share: it runs from a fixed offset to the end of the table. The walk is checked here once, so
//! each table only decodes its own entry types. Entries are read through [`PhysMem`] as they are
//! iterated, so no heap is needed.

use super::{AcpiError, TableAt};
use crate::{MemError, PhysMem, read_u8, read_u16, read_u32, read_u64};

/// Reads a table's entries one at a time, decoding each with the table's own function. Each step
/// moves forward by the entry's length, which must be at least 2 and stay within the table, so
/// iteration always ends. Iteration stops after the first error.
pub struct Subtables<'m, M, T> {
    mem: &'m M,
    table: u64,
    offset: u32,
    end: u32,
    decode: fn(&Subtable<'m, M>) -> Result<T, AcpiError>,
    /// The table's own error for a malformed entry at an offset, so that callers can tell which
    /// table it is in.
    bad_entry: fn(u32) -> AcpiError,
}

impl<'m, M, T> Subtables<'m, M, T> {
    pub(super) fn new(
        mem: &'m M,
        table: TableAt,
        entries_offset: u32,
        decode: fn(&Subtable<'m, M>) -> Result<T, AcpiError>,
        bad_entry: fn(u32) -> AcpiError,
    ) -> Self {
        Subtables {
            mem,
            table: table.address,
            offset: entries_offset,
            end: table.length,
            decode,
            bad_entry,
        }
    }
}

impl<M: PhysMem, T> Iterator for Subtables<'_, M, T> {
    type Item = Result<T, AcpiError>;

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

impl<M: PhysMem, T> Subtables<'_, M, T> {
    fn read_entry(&mut self) -> Result<T, AcpiError> {
        let bad_entry = (self.bad_entry)(self.offset);
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
        let entry = (self.decode)(&Subtable {
            mem,
            table,
            at,
            kind,
            length,
            bad_entry,
        })?;
        self.offset = next;
        Ok(entry)
    }
}

/// One entry, known to lie within the table. Fields are read relative to its start, and only
/// after [`Subtable::require`] has checked that the entry is long enough for them.
pub(super) struct Subtable<'m, M> {
    mem: &'m M,
    table: u64,
    /// The entry's offset in the table.
    at: u64,
    kind: u8,
    length: u8,
    bad_entry: AcpiError,
}

impl<M: PhysMem> Subtable<'_, M> {
    pub(super) fn kind(&self) -> u8 {
        self.kind
    }

    /// Fails with the table's bad-entry error unless the entry is at least `min_len` bytes long,
    /// so that the fixed fields of its type exist.
    pub(super) fn require(&self, min_len: u8) -> Result<(), AcpiError> {
        if self.length < min_len {
            return Err(self.bad_entry);
        }
        Ok(())
    }

    pub(super) fn read_u8(&self, field: u64) -> Result<u8, MemError> {
        read_u8(self.mem, self.table, self.at + field)
    }

    pub(super) fn read_u16(&self, field: u64) -> Result<u16, MemError> {
        read_u16(self.mem, self.table, self.at + field)
    }

    pub(super) fn read_u32(&self, field: u64) -> Result<u32, MemError> {
        read_u32(self.mem, self.table, self.at + field)
    }

    pub(super) fn read_u64(&self, field: u64) -> Result<u64, MemError> {
        read_u64(self.mem, self.table, self.at + field)
    }
}
