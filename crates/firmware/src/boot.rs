//! The boot information that the 32-bit entry receives: a Xen PVH `hvm_start_info` (QEMU's
//! `-kernel`) or a multiboot2 boot information structure (GRUB). Both become one [`BootInfo`]
//! that owns copies of everything, because the boot loader's memory is reused afterwards.

use core::fmt;

use crate::{MemError, PhysMem, read_into, read_u8, read_u32, read_u64};

/// In eax on a multiboot2 entry.
pub const MULTIBOOT2_MAGIC: u32 = 0x36d7_6289;
/// The first field of the PVH start info that ebx points at.
pub const PVH_START_INFO_MAGIC: u32 = 0x336e_c578;
/// The most memory map entries [`BootInfo`] holds; a longer map is an error.
pub const MAX_MEMORY_REGIONS: usize = 128;
/// The longest command line [`BootInfo`] holds, without its terminating NUL.
pub const MAX_CMDLINE: usize = 1024;
/// The most boot modules the kernel takes.
pub const MAX_MODULES: usize = 8;

/// A file the boot loader loaded beside the kernel (PVH: QEMU's `-initrd`;
/// multiboot2: GRUB's `module2`): where it lies in physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootModule {
    pub start: u64,
    pub end: u64,
}
/// An ACPI 2.0 RSDP; ACPI 1.0 ones are the first 20 bytes of it.
const RSDP_COPY_LEN: usize = 36;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootProtocol {
    Pvh,
    Multiboot2,
}

/// What a memory region holds. Both protocols number kinds as the BIOS E820 call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    Usable,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Defective,
    /// A type number this crate does not name; treat the region as reserved.
    Other(u32),
}

impl MemoryKind {
    fn from_e820(kind: u32) -> Self {
        match kind {
            1 => MemoryKind::Usable,
            2 => MemoryKind::Reserved,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Defective,
            other => MemoryKind::Other(other),
        }
    }

    /// The kind's name, as the shell prints it and the knowledge base's
    /// `memory` facts hold it.
    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::Usable => "usable",
            MemoryKind::Reserved => "reserved",
            MemoryKind::AcpiReclaimable => "acpi_reclaimable",
            MemoryKind::AcpiNvs => "acpi_nvs",
            MemoryKind::Defective => "bad",
            MemoryKind::Other(_) => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub len: u64,
    pub kind: MemoryKind,
}

/// Where the boot loader says the ACPI RSDP is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsdpSource {
    /// Its physical address (PVH `rsdp_paddr`).
    Address(u64),
    /// A copy of it (multiboot2 tag 15, else tag 14): the first `len` bytes of `bytes`.
    Copy {
        bytes: [u8; RSDP_COPY_LEN],
        len: usize,
    },
}

/// What the boot loader handed over, copied out of its memory.
#[derive(Clone)]
pub struct BootInfo {
    pub protocol: BootProtocol,
    pub rsdp: Option<RsdpSource>,
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    modules: [BootModule; MAX_MODULES],
    module_count: usize,
}

impl BootInfo {
    /// The boot modules, in the order the boot loader gave them.
    pub fn modules(&self) -> &[BootModule] {
        self.modules.get(..self.module_count).unwrap_or_default()
    }

    /// Takes the module of `size` bytes at `start`; fails if there are too
    /// many, or if it wraps around.
    fn add_module(&mut self, start: u64, size: u64) -> Result<(), BootInfoError> {
        let end = start
            .checked_add(size)
            .ok_or(BootInfoError::BadModule { start, size })?;
        let slot = self
            .modules
            .get_mut(self.module_count)
            .ok_or(BootInfoError::TooManyModules)?;
        *slot = BootModule { start, end };
        self.module_count += 1;
        Ok(())
    }

    /// The memory map, sorted by base address. Regions are as the boot loader gave them: they
    /// may overlap, and neighbours of the same kind are not merged.
    pub fn memory(&self) -> &[MemoryRegion] {
        self.regions.get(..self.region_count).unwrap_or_default()
    }

    /// The kernel command line without its terminating NUL; empty when there is none.
    pub fn cmdline(&self) -> &[u8] {
        self.cmdline.get(..self.cmdline_len).unwrap_or_default()
    }

    fn new(protocol: BootProtocol) -> Self {
        const UNUSED: MemoryRegion = MemoryRegion {
            base: 0,
            len: 0,
            kind: MemoryKind::Reserved,
        };
        BootInfo {
            protocol,
            rsdp: None,
            regions: [UNUSED; MAX_MEMORY_REGIONS],
            region_count: 0,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            modules: [BootModule { start: 0, end: 0 }; MAX_MODULES],
            module_count: 0,
        }
    }

    /// Fails unless `more` regions fit, so that a long memory map is an error, not a truncation.
    fn make_room(&self, more: u64) -> Result<(), BootInfoError> {
        // `region_count` is at most MAX_MEMORY_REGIONS, so the conversion is lossless.
        let count = (self.region_count as u64).saturating_add(more);
        if count > MAX_MEMORY_REGIONS as u64 {
            return Err(BootInfoError::TooManyMemoryRegions { count });
        }
        Ok(())
    }

    /// Reads the E820-style entry {base u64, len u64, type u32, ...} at `offset` from `table`,
    /// which both protocols' memory maps are made of, into a slot that `make_room` has promised.
    fn read_region(&mut self, mem: &impl PhysMem, table: u64, offset: u64) -> Result<(), MemError> {
        let region = MemoryRegion {
            base: read_u64(mem, table, offset)?,
            len: read_u64(mem, table, offset + 8)?,
            kind: MemoryKind::from_e820(read_u32(mem, table, offset + 16)?),
        };
        if let Some(slot) = self.regions.get_mut(self.region_count) {
            *slot = region;
            self.region_count += 1;
        }
        Ok(())
    }

    /// Copies the NUL-terminated command line at `addr`, reading at most `limit` bytes.
    fn read_cmdline(
        &mut self,
        mem: &impl PhysMem,
        addr: u64,
        limit: u64,
    ) -> Result<(), BootInfoError> {
        self.cmdline_len = 0;
        // Ends within MAX_CMDLINE + 1 bytes: at the NUL, at `limit`, or with an error.
        for offset in 0..limit {
            let byte = read_u8(mem, addr, offset)?;
            if byte == 0 {
                break;
            }
            let slot = self
                .cmdline
                .get_mut(self.cmdline_len)
                .ok_or(BootInfoError::CmdlineTooLong)?;
            *slot = byte;
            self.cmdline_len += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Self, BootInfoError> {
        if self.region_count == 0 {
            return Err(BootInfoError::NoMemoryMap);
        }
        if let Some(regions) = self.regions.get_mut(..self.region_count) {
            regions.sort_unstable_by_key(|region| (region.base, region.len));
        }
        Ok(self)
    }
}

impl fmt::Debug for BootInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootInfo")
            .field("protocol", &self.protocol)
            .field("rsdp", &self.rsdp)
            .field("memory", &self.memory())
            .field("cmdline", &self.cmdline().escape_ascii())
            .field("modules", &self.modules())
            .finish()
    }
}

/// Why the boot information could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootInfoError {
    /// eax holds no multiboot2 magic and ebx points at no PVH start info.
    UnknownProtocol {
        eax: u32,
        magic_at_ebx: u32,
    },
    Unreadable(MemError),
    /// PVH start info before version 1 has no memory map.
    UnsupportedPvhVersion(u32),
    /// The multiboot2 `total_size` is too small to hold even the end tag.
    BadTotalSize(u32),
    /// A multiboot2 tag whose size is smaller than its own header.
    BadTagSize {
        tag: u32,
        offset: u64,
        size: u32,
    },
    TagPastEnd {
        tag: u32,
        offset: u64,
        size: u32,
        total_size: u32,
    },
    MissingEndTag,
    /// A multiboot2 memory map whose entries are too small or do not fill the tag.
    BadMemoryMapTag {
        entry_size: u32,
        tag_size: u32,
    },
    TooManyMemoryRegions {
        count: u64,
    },
    NoMemoryMap,
    CmdlineTooLong,
    /// More boot modules than [`MAX_MODULES`].
    TooManyModules,
    /// A module whose end would wrap around.
    BadModule {
        start: u64,
        size: u64,
    },
}

impl From<MemError> for BootInfoError {
    fn from(error: MemError) -> Self {
        BootInfoError::Unreadable(error)
    }
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootInfoError::UnknownProtocol { eax, magic_at_ebx } => write!(
                f,
                "unknown boot protocol: eax {eax:#x} is not the multiboot2 magic and ebx points at \
                 {magic_at_ebx:#x}, not the PVH start info magic"
            ),
            BootInfoError::Unreadable(error) => write!(f, "boot information unreadable: {error}"),
            BootInfoError::UnsupportedPvhVersion(version) => write!(
                f,
                "PVH start info version {version} has no memory map; version 1 or later is required"
            ),
            BootInfoError::BadTotalSize(size) => {
                write!(
                    f,
                    "multiboot2 information has total size {size}, less than the minimum 16"
                )
            }
            BootInfoError::BadTagSize { tag, offset, size } => write!(
                f,
                "multiboot2 tag {tag} at offset {offset} has size {size}, less than its 8-byte header"
            ),
            BootInfoError::TagPastEnd {
                tag,
                offset,
                size,
                total_size,
            } => write!(
                f,
                "multiboot2 tag {tag} at offset {offset} with size {size} runs past the end \
                 of the information ({total_size} bytes)"
            ),
            BootInfoError::MissingEndTag => write!(f, "multiboot2 information has no end tag"),
            BootInfoError::BadMemoryMapTag {
                entry_size,
                tag_size,
            } => write!(
                f,
                "multiboot2 memory map tag of {tag_size} bytes does not hold whole entries \
                 of {entry_size} bytes (at least 24)"
            ),
            BootInfoError::TooManyMemoryRegions { count } => write!(
                f,
                "memory map has {count} regions, at most {MAX_MEMORY_REGIONS} supported"
            ),
            BootInfoError::NoMemoryMap => write!(f, "boot loader gave no memory map"),
            BootInfoError::TooManyModules => {
                write!(f, "more than {MAX_MODULES} boot modules")
            }
            BootInfoError::BadModule { start, size } => {
                write!(
                    f,
                    "boot module of {size:#x} bytes at {start:#x} wraps around"
                )
            }
            BootInfoError::CmdlineTooLong => {
                write!(f, "command line is longer than {MAX_CMDLINE} bytes")
            }
        }
    }
}

/// Parses the boot information from eax and ebx as the 32-bit entry received them: multiboot2
/// when eax is [`MULTIBOOT2_MAGIC`], otherwise PVH if the u32 at ebx is [`PVH_START_INFO_MAGIC`],
/// otherwise an error.
pub fn parse_boot_info(mem: &impl PhysMem, eax: u32, ebx: u32) -> Result<BootInfo, BootInfoError> {
    let info = u64::from(ebx);
    if eax == MULTIBOOT2_MAGIC {
        return parse_multiboot2(mem, info);
    }
    let magic = read_u32(mem, info, 0)?;
    if magic != PVH_START_INFO_MAGIC {
        return Err(BootInfoError::UnknownProtocol {
            eax,
            magic_at_ebx: magic,
        });
    }
    parse_pvh(mem, info)
}

/// Reads Xen's `hvm_start_info`: magic, version, flags, nr_modules (u32 each), modlist_paddr,
/// cmdline_paddr, rsdp_paddr, memmap_paddr (u64 each), memmap_entries (u32). Addresses of 0
/// mean "none". Each module is {paddr, size, cmdline_paddr, reserved} (u64 each).
fn parse_pvh(mem: &impl PhysMem, start_info: u64) -> Result<BootInfo, BootInfoError> {
    // {addr u64, size u64, type u32, reserved u32}
    const MEMMAP_ENTRY_SIZE: u64 = 24;
    // {paddr u64, size u64, cmdline_paddr u64, reserved u64}
    const MODLIST_ENTRY_SIZE: u64 = 32;
    let version = read_u32(mem, start_info, 4)?;
    if version < 1 {
        return Err(BootInfoError::UnsupportedPvhVersion(version));
    }
    let nr_modules = read_u32(mem, start_info, 12)?;
    let modlist = read_u64(mem, start_info, 16)?;
    let cmdline = read_u64(mem, start_info, 24)?;
    let rsdp = read_u64(mem, start_info, 32)?;
    let memmap = read_u64(mem, start_info, 40)?;
    let memmap_entries = read_u32(mem, start_info, 48)?;

    let mut info = BootInfo::new(BootProtocol::Pvh);
    info.make_room(u64::from(memmap_entries))?;
    // `index` is below 2^32, so no offset into the map can overflow.
    for index in 0..u64::from(memmap_entries) {
        info.read_region(mem, memmap, index * MEMMAP_ENTRY_SIZE)?;
    }
    if cmdline != 0 {
        info.read_cmdline(mem, cmdline, u64::MAX)?;
    }
    if rsdp != 0 {
        info.rsdp = Some(RsdpSource::Address(rsdp));
    }
    if u64::from(nr_modules) > MAX_MODULES as u64 {
        return Err(BootInfoError::TooManyModules);
    }
    for index in 0..u64::from(nr_modules) {
        let entry = index * MODLIST_ENTRY_SIZE;
        let start = read_u64(mem, modlist, entry)?;
        let size = read_u64(mem, modlist, entry + 8)?;
        info.add_module(start, size)?;
    }
    info.finish()
}

/// Walks the multiboot2 tags: `total_size` and a reserved u32, then tags of {type, size} aligned
/// to 8 bytes, up to the end tag (type 0).
fn parse_multiboot2(mem: &impl PhysMem, mbi: u64) -> Result<BootInfo, BootInfoError> {
    const END: u32 = 0;
    const CMDLINE: u32 = 1;
    const MODULE: u32 = 3;
    const MEMORY_MAP: u32 = 6;
    const ACPI_OLD_RSDP: u32 = 14;
    const ACPI_NEW_RSDP: u32 = 15;
    const TAG_HEADER: u64 = 8;

    let total_size = read_u32(mem, mbi, 0)?;
    let end = u64::from(total_size);
    if end < 2 * TAG_HEADER {
        return Err(BootInfoError::BadTotalSize(total_size));
    }
    let mut info = BootInfo::new(BootProtocol::Multiboot2);
    let mut offset = TAG_HEADER;
    // Every tag moves `offset` forward by at least 8 bytes, and it stays below `end`.
    loop {
        if offset + TAG_HEADER > end {
            return Err(BootInfoError::MissingEndTag);
        }
        let tag = read_u32(mem, mbi, offset)?;
        let size = read_u32(mem, mbi, offset + 4)?;
        if u64::from(size) < TAG_HEADER {
            return Err(BootInfoError::BadTagSize { tag, offset, size });
        }
        let tag_end = offset + u64::from(size);
        if tag_end > end {
            return Err(BootInfoError::TagPastEnd {
                tag,
                offset,
                size,
                total_size,
            });
        }
        // Both terms are below 2^33: `mbi` came from a u32 and `tag_end` is at most `end`.
        let payload = mbi + offset + TAG_HEADER;
        let payload_len = u64::from(size) - TAG_HEADER;
        match tag {
            END => break,
            CMDLINE => info.read_cmdline(mem, payload, payload_len)?,
            // {mod_start u32, mod_end u32, string}
            MODULE if payload_len >= 8 => {
                let start = u64::from(read_u32(mem, payload, 0)?);
                let end = u64::from(read_u32(mem, payload, 4)?);
                let size = end
                    .checked_sub(start)
                    .ok_or(BootInfoError::BadModule { start, size: 0 })?;
                info.add_module(start, size)?;
            }
            MEMORY_MAP => read_multiboot2_memory_map(mem, payload, size, &mut info)?,
            ACPI_NEW_RSDP => info.rsdp = Some(copy_rsdp(mem, payload, payload_len)?),
            ACPI_OLD_RSDP if info.rsdp.is_none() => {
                info.rsdp = Some(copy_rsdp(mem, payload, payload_len)?);
            }
            _ => {}
        }
        offset = tag_end.next_multiple_of(8);
    }
    info.finish()
}

/// Reads a memory map tag's payload: entry_size and entry_version (u32 each), then entries of
/// {base u64, len u64, type u32, reserved u32}, possibly followed by fields of later versions.
fn read_multiboot2_memory_map(
    mem: &impl PhysMem,
    payload: u64,
    tag_size: u32,
    info: &mut BootInfo,
) -> Result<(), BootInfoError> {
    const ENTRIES_OFFSET: u64 = 8;
    const TAG_HEADER_AND_ENTRIES_OFFSET: u64 = 16;
    const MIN_ENTRY_SIZE: u32 = 24;
    let entries_len = u64::from(tag_size)
        .checked_sub(TAG_HEADER_AND_ENTRIES_OFFSET)
        .ok_or(BootInfoError::BadMemoryMapTag {
            entry_size: 0,
            tag_size,
        })?;
    let entry_size = read_u32(mem, payload, 0)?;
    let bad_tag = BootInfoError::BadMemoryMapTag {
        entry_size,
        tag_size,
    };
    if entry_size < MIN_ENTRY_SIZE || entries_len % u64::from(entry_size) != 0 {
        return Err(bad_tag);
    }
    let count = entries_len / u64::from(entry_size);
    info.make_room(count)?;
    for index in 0..count {
        info.read_region(mem, payload, ENTRIES_OFFSET + index * u64::from(entry_size))?;
    }
    Ok(())
}

fn copy_rsdp(mem: &impl PhysMem, payload: u64, payload_len: u64) -> Result<RsdpSource, MemError> {
    let mut bytes = [0; RSDP_COPY_LEN];
    // Bytes past the 36 of an ACPI 2.0 RSDP are not part of it.
    let len = usize::try_from(payload_len)
        .unwrap_or(usize::MAX)
        .min(RSDP_COPY_LEN);
    read_into(mem, payload, 0, bytes.get_mut(..len).unwrap_or_default())?;
    Ok(RsdpSource::Copy { bytes, len })
}

#[cfg(test)]
mod tests;
