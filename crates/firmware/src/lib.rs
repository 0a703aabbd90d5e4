//! Parsers for what the boot loader and the firmware hand over to Atoll: the PVH start info,
//! the multiboot2 boot information and the ACPI tables (RSDP, RSDT/XSDT, MADT, FADT, the `\_S5`
//! object of the DSDT, and the SRAT and SLIT that describe NUMA nodes).
//!
//! Every parser reads physical memory only through the [`PhysMem`] trait, so the crate touches
//! no hardware and runs its tests on the host. It needs no heap either: the kernel parses the
//! boot information before it has one, so results are copied into fixed-size values, the MADT
//! and the SRAT are walked by iterators that read as they go, and SLIT distances are read when
//! asked for. The parsers are total: any input, however malformed, gives a value or an error,
//! never a panic or an endless loop.
//!
//! It depends on nothing but `core`; the kernel depends on it.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod acpi;
pub mod boot;

#[cfg(test)]
mod fake_mem;
#[cfg(test)]
mod proptests;

pub use acpi::{
    AcpiError, AcpiTables, Fadt, GenericAddress, Madt, MadtEntries, MadtEntry, Rsdp, RsdpOrigin,
    SleepRegister, SleepRegisters, Slit, Srat, SratEntries, SratEntry, TableAt, s5_sleep_types,
};
pub use boot::{
    BootInfo, BootInfoError, BootModule, BootProtocol, MAX_CMDLINE, MAX_MEMORY_REGIONS,
    MAX_MODULES, MULTIBOOT2_MAGIC, MemoryKind, MemoryRegion, PVH_START_INFO_MAGIC, RsdpSource,
    parse_boot_info,
};

use core::fmt;

/// Reads physical memory. The kernel implements it over its identity map; tests over a byte buffer.
pub trait PhysMem {
    /// Fills `buf` with the bytes at physical address `addr` onwards, or fails with the range
    /// that cannot be read (for example because the kernel does not map it).
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;
}

/// A range of physical memory that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemError {
    pub addr: u64,
    pub len: usize,
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read {} bytes at physical address {:#x}",
            self.len, self.addr
        )
    }
}

/// Fills `buf` from `base + offset`; an address past the end of the address space is unreadable.
fn read_into(mem: &impl PhysMem, base: u64, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
    let unreadable = MemError {
        addr: base,
        len: buf.len(),
    };
    let addr = base.checked_add(offset).ok_or(unreadable)?;
    mem.read(addr, buf)
}

fn read_array<const N: usize>(
    mem: &impl PhysMem,
    base: u64,
    offset: u64,
) -> Result<[u8; N], MemError> {
    let mut bytes = [0; N];
    read_into(mem, base, offset, &mut bytes)?;
    Ok(bytes)
}

fn read_u8(mem: &impl PhysMem, base: u64, offset: u64) -> Result<u8, MemError> {
    read_array(mem, base, offset).map(u8::from_le_bytes)
}

fn read_u16(mem: &impl PhysMem, base: u64, offset: u64) -> Result<u16, MemError> {
    read_array(mem, base, offset).map(u16::from_le_bytes)
}

fn read_u32(mem: &impl PhysMem, base: u64, offset: u64) -> Result<u32, MemError> {
    read_array(mem, base, offset).map(u32::from_le_bytes)
}

fn read_u64(mem: &impl PhysMem, base: u64, offset: u64) -> Result<u64, MemError> {
    read_array(mem, base, offset).map(u64::from_le_bytes)
}

/// The `len` bytes at `addr`, read a chunk at a time so that tables of any size need no buffer.
struct PhysBytes<'m, M> {
    mem: &'m M,
    addr: u64,
    remaining: u64,
    chunk: [u8; 64],
    chunk_len: usize,
    next_in_chunk: usize,
}

impl<'m, M: PhysMem> PhysBytes<'m, M> {
    fn new(mem: &'m M, addr: u64, len: u64) -> Self {
        PhysBytes {
            mem,
            addr,
            remaining: len,
            chunk: [0; 64],
            chunk_len: 0,
            next_in_chunk: 0,
        }
    }

    fn refill(&mut self) -> Result<(), MemError> {
        // At most 64, so the conversions below are lossless.
        let len = self.remaining.min(64);
        let chunk = self.chunk.get_mut(..len as usize).unwrap_or_default();
        read_into(self.mem, self.addr, 0, chunk)?;
        self.addr = self.addr.checked_add(len).ok_or(MemError {
            addr: self.addr,
            len: len as usize,
        })?;
        self.remaining -= len;
        self.chunk_len = len as usize;
        self.next_in_chunk = 0;
        Ok(())
    }
}

impl<M: PhysMem> Iterator for PhysBytes<'_, M> {
    type Item = Result<u8, MemError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next_in_chunk == self.chunk_len {
            if self.remaining == 0 {
                return None;
            }
            if let Err(error) = self.refill() {
                self.remaining = 0;
                self.chunk_len = 0;
                self.next_in_chunk = 0;
                return Some(Err(error));
            }
        }
        let byte = self.chunk.get(self.next_in_chunk).copied()?;
        self.next_in_chunk += 1;
        Some(Ok(byte))
    }
}

/// The sum of the bytes, modulo 256; ACPI structures are valid when it is zero.
fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |sum, byte| sum.wrapping_add(*byte))
}
