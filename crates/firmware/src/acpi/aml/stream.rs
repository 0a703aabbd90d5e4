//! Reading a table's AML in order: a byte at a time from physical memory
//! (through a small window, so a walk makes one read per 64 bytes, not per
//! byte), never past the end of the object being read, and the encodings
//! every AML object is built from: PkgLength and integer data.

use super::{AmlError, AmlProblem};
use crate::acpi::AcpiError;
use crate::{PhysMem, read_into};

const WINDOW: usize = 64;

/// A position in a table's AML and the end of what may be read from it.
pub(super) struct Stream<'m, M> {
    mem: &'m M,
    table: u64,
    /// Offset from the table's start of the next byte.
    pos: u32,
    /// The end of the innermost object being read: reading past it is a
    /// malformed table, not a reason to read on.
    limit: u32,
    /// The end of the table, where the window ends at the latest.
    end: u32,
    window: [u8; WINDOW],
    window_at: u32,
    window_len: u32,
}

impl<'m, M: PhysMem> Stream<'m, M> {
    /// The bytes `from..end` of the table at `table`.
    pub(super) fn new(mem: &'m M, table: u64, from: u32, end: u32) -> Self {
        Stream {
            mem,
            table,
            pos: from,
            limit: end,
            end,
            window: [0; WINDOW],
            window_at: 0,
            window_len: 0,
        }
    }

    pub(super) fn pos(&self) -> u32 {
        self.pos
    }

    pub(super) fn limit(&self) -> u32 {
        self.limit
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.limit
    }

    /// The next byte, without taking it.
    pub(super) fn peek(&mut self) -> Result<u8, AcpiError> {
        self.peek_at(self.pos)
    }

    /// The byte after the next, without taking either.
    pub(super) fn peek_second(&mut self) -> Result<u8, AcpiError> {
        self.peek_at(self.pos.saturating_add(1))
    }

    fn peek_at(&mut self, at: u32) -> Result<u8, AcpiError> {
        if at >= self.limit {
            return Err(truncated(self.pos));
        }
        let in_window = at.wrapping_sub(self.window_at);
        if at < self.window_at || in_window >= self.window_len {
            // Up to the table's end, not the object's, so that the walk
            // reads each window once however small its objects are. At most
            // WINDOW, so the conversion is lossless.
            let len = self.end.saturating_sub(at).min(WINDOW as u32);
            let window = &mut self.window[..len as usize];
            read_into(self.mem, self.table, u64::from(at), window)?;
            self.window_at = at;
            self.window_len = len;
        }
        Ok(self.window[(at - self.window_at) as usize])
    }

    pub(super) fn byte(&mut self) -> Result<u8, AcpiError> {
        let byte = self.peek()?;
        self.pos += 1;
        Ok(byte)
    }

    /// `N` bytes as a little-endian integer.
    pub(super) fn le<const N: usize>(&mut self) -> Result<u64, AcpiError> {
        let mut value = 0;
        for shift in 0..N {
            value |= u64::from(self.byte()?) << (8 * shift);
        }
        Ok(value)
    }

    /// Skips `count` bytes.
    pub(super) fn skip(&mut self, count: u32) -> Result<(), AcpiError> {
        let to = self.pos.saturating_add(count);
        if to > self.limit {
            return Err(truncated(self.pos));
        }
        self.pos = to;
        Ok(())
    }

    /// Reads a PkgLength's value: bits 6-7 of the lead byte count the bytes
    /// that follow it; with any, only its low nibble belongs to the value.
    pub(super) fn pkg_length(&mut self) -> Result<u32, AcpiError> {
        let lead = self.byte()?;
        let follow = lead >> 6;
        let mut length = match follow {
            0 => u32::from(lead & 0x3F),
            _ => u32::from(lead & 0x0F),
        };
        for index in 0..follow {
            length |= u32::from(self.byte()?) << (4 + 8 * u32::from(index));
        }
        Ok(length)
    }

    /// Reads a PkgLength and gives the end of the object it measures (it
    /// counts itself and what follows it), which must lie within the
    /// enclosing object and past the PkgLength itself.
    pub(super) fn package_end(&mut self) -> Result<u32, AcpiError> {
        let start = self.pos;
        let end = start.saturating_add(self.pkg_length()?);
        if end < self.pos || end > self.limit {
            return Err(truncated(start));
        }
        Ok(end)
    }

    /// Makes `end` the limit: the end of the object now being read.
    pub(super) fn set_limit(&mut self, end: u32) {
        self.limit = end;
    }

    /// Goes on reading at `pos`.
    pub(super) fn seek(&mut self, pos: u32) {
        self.pos = pos;
    }
}

fn truncated(offset: u32) -> AcpiError {
    AcpiError::Aml(AmlError {
        offset,
        problem: AmlProblem::Truncated,
    })
}
