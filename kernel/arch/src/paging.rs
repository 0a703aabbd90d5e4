//! Each core's own page tables.
//!
//! Every core runs on a PML4 of its own, built from its own frame pool.
//! Its first 512 GiB slot identity-maps only what the core may touch of the
//! first 4 GiB ([`Reach`]): the kernel's text and read-only data read-only,
//! and writable its own memory, the kernel's statics, the channel regions
//! and the local APIC. Everything else, other cores' pools, heaps and
//! stacks included, is not mapped, so a stray access faults on the core
//! that made it. The rest of the PML4 is the core's to fill: mappings of
//! address spaces that span cores are replicated state, and each core
//! applies them to its own tables, with 4 KiB pages taken from its own
//! frame pool, and invalidates its own TLB.

use core::arch::asm;
use x86_64::PhysAddr;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
/// Reachable from ring 3 (at every level of the walk).
const USER: u64 = 1 << 2;
/// Not executable (`EFER.NXE` is on: `crate::user::init`).
const NO_EXECUTE: u64 = 1 << 63;
/// Where programs' pages may lie (`atoll_abi`'s user range).
const USER_PAGES: core::ops::Range<u64> = (1 << 39)..(2 << 39);
/// A 2 MiB page in a page directory entry.
const LARGE: u64 = 1 << 7;
const PAGE: u64 = 4096;
const LARGE_PAGE: u64 = 2 << 20;
/// The identity map covers the first 4 GiB.
const IDENTITY_END: u64 = 4 << 30;
const ENTRY_ADDRESS: u64 = 0x000F_FFFF_FFFF_F000;
const ENTRIES: usize = 512;

/// Where the mappings this module manages may lie: the second and later
/// 512 GiB slots of the lower half (the first is the identity map).
pub const MAPPABLE_START: u64 = 1 << 39;
pub const MAPPABLE_END: u64 = 1 << 47;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingError {
    /// The address is outside [`MAPPABLE_START`, `MAPPABLE_END`) or not page aligned.
    BadAddress {
        vaddr: u64,
    },
    /// The page is already mapped (to the frame given).
    AlreadyMapped {
        vaddr: u64,
        frame: u64,
    },
    NotMapped {
        vaddr: u64,
    },
    /// No frame for a page table.
    OutOfFrames,
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadAddress { vaddr } => write!(
                f,
                "{vaddr:#x} is not a page-aligned address in {MAPPABLE_START:#x}..{MAPPABLE_END:#x}"
            ),
            Self::AlreadyMapped { vaddr, frame } => {
                write!(f, "{vaddr:#x} is already mapped to {frame:#x}")
            }
            Self::NotMapped { vaddr } => write!(f, "{vaddr:#x} is not mapped"),
            Self::OutOfFrames => write!(f, "no free frame for a page table"),
        }
    }
}

fn table(address: u64) -> &'static mut [u64; ENTRIES] {
    // SAFETY: page-table frames come from this core's own pool (or are the
    // core's PML4); they are identity mapped, aligned, and only this core's
    // paging code touches them, one borrow at a time.
    unsafe { &mut *(address as *mut [u64; ENTRIES]) }
}

/// What a core's identity map reaches of the first 4 GiB: ranges of
/// physical addresses, `[start, end)`, rounded out to whole pages.
pub struct Reach<'a> {
    /// Mapped read-only.
    pub read_only: &'a [(u64, u64)],
    /// Mapped writable.
    pub writable: &'a [(u64, u64)],
    /// The core's own span (its pool, heap and these tables), writable.
    pub own: (u64, u64),
}

impl Reach<'_> {
    /// The flags of the page at `address`: read-only before writable (the
    /// kernel image may lie inside a core's span), or `None` when it is not
    /// reached.
    fn flags(&self, address: u64) -> Option<u64> {
        let within = |ranges: &[(u64, u64)]| {
            ranges
                .iter()
                .any(|&(start, end)| start & !(PAGE - 1) <= address && address < end)
        };
        if within(self.read_only) {
            Some(PRESENT)
        } else if within(self.writable) || within(&[self.own]) {
            Some(PRESENT | WRITABLE)
        } else {
            None
        }
    }

    /// The flags all of the 2 MiB page at `address` shares, if it does:
    /// no range starts or ends (rounded out to pages) inside it.
    fn large_flags(&self, address: u64) -> Option<Option<u64>> {
        let inside = |boundary: u64| address < boundary && boundary < address + LARGE_PAGE;
        let own = [self.own];
        let split = self
            .read_only
            .iter()
            .chain(self.writable)
            .chain(&own)
            .any(|&(start, end)| inside(start & !(PAGE - 1)) || inside(end.next_multiple_of(PAGE)));
        (!split).then(|| self.flags(address))
    }
}

/// A core's page tables, rooted at its own PML4.
pub struct PageTables {
    pml4: u64,
}

impl PageTables {
    /// Builds this core's PML4 in `frame` (taken from its pool), its
    /// identity map reaching only `reach`, with page-table frames from
    /// `allocate`, and switches the core to it.
    pub fn install(
        frame: u64,
        reach: &Reach<'_>,
        allocate: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<Self, PagingError> {
        let own = table(frame);
        own.fill(0);
        let pdpt = allocate().ok_or(PagingError::OutOfFrames)?;
        table(pdpt).fill(0);
        own[0] = pdpt | PRESENT | WRITABLE;
        for gib in 0..IDENTITY_END / (1 << 30) {
            let directory = allocate().ok_or(PagingError::OutOfFrames)?;
            table(directory).fill(0);
            table(pdpt)[gib as usize] = directory | PRESENT | WRITABLE;
            for entry in 0..ENTRIES as u64 {
                let base = (gib << 30) + entry * LARGE_PAGE;
                table(directory)[entry as usize] = match reach.large_flags(base) {
                    Some(None) => 0,
                    Some(Some(flags)) => base | flags | LARGE,
                    None => {
                        let pages = allocate().ok_or(PagingError::OutOfFrames)?;
                        let leaf = table(pages);
                        for (page, slot) in leaf.iter_mut().enumerate() {
                            let address = base + page as u64 * PAGE;
                            *slot = reach.flags(address).map_or(0, |flags| address | flags);
                        }
                        pages | PRESENT | WRITABLE
                    }
                };
            }
        }
        let root = PhysFrame::containing_address(PhysAddr::new(frame));
        // SAFETY: the new PML4 maps, at their own addresses, everything the
        // kernel on this core touches from here on: its code and constants,
        // its statics, its stack, its pool and heap (where these tables
        // are), the channel regions and the local APIC, as the caller's
        // `reach` lists them. What it leaves out, no code of this core
        // reaches but by a bug, which then faults here.
        unsafe { Cr3::write(root, Cr3Flags::empty()) };
        Ok(Self { pml4: frame })
    }

    fn check(vaddr: u64) -> Result<(), PagingError> {
        if !vaddr.is_multiple_of(4096) || !(MAPPABLE_START..MAPPABLE_END).contains(&vaddr) {
            return Err(PagingError::BadAddress { vaddr });
        }
        Ok(())
    }

    fn indices(vaddr: u64) -> [usize; 4] {
        [39, 30, 21, 12].map(|shift| ((vaddr >> shift) & 0x1FF) as usize)
    }

    /// The page-table entry for `vaddr`; missing tables above it are made
    /// with frames from `new_table`, or, without it, mean `Ok(None)`.
    fn entry(
        &self,
        vaddr: u64,
        new_table: Option<&mut dyn FnMut() -> Option<u64>>,
    ) -> Result<Option<&'static mut u64>, PagingError> {
        walk(self.pml4, 0, vaddr, new_table)
    }

    /// The leaf entry for `vaddr`, which must be empty, with the tables
    /// above it made from `allocate` where missing.
    fn free_entry(
        &self,
        vaddr: u64,
        allocate: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<&'static mut u64, PagingError> {
        let entry = self
            .entry(vaddr, Some(allocate))?
            .ok_or(PagingError::OutOfFrames)?;
        if *entry & PRESENT != 0 {
            return Err(PagingError::AlreadyMapped {
                vaddr,
                frame: *entry & ENTRY_ADDRESS,
            });
        }
        Ok(entry)
    }

    /// Maps the page at `vaddr` to `frame`, writable, taking page-table
    /// frames from `allocate`.
    pub fn map(
        &self,
        vaddr: u64,
        frame: u64,
        allocate: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<(), PagingError> {
        Self::check(vaddr)?;
        let entry = self.free_entry(vaddr, allocate)?;
        *entry = (frame & ENTRY_ADDRESS) | PRESENT | WRITABLE;
        Ok(())
    }

    /// Whether the page at `vaddr` is a program's page (mapped, reachable
    /// from ring 3), and writable too if `write`.
    pub fn is_user_page(&self, vaddr: u64, write: bool) -> bool {
        if Self::check(vaddr & !(PAGE - 1)).is_err() || !USER_PAGES.contains(&vaddr) {
            return false;
        }
        let wanted = match write {
            true => PRESENT | USER | WRITABLE,
            false => PRESENT | USER,
        };
        matches!(
            self.entry(vaddr & !(PAGE - 1), None),
            Ok(Some(entry)) if *entry & wanted == wanted
        )
    }

    /// Removes the mapping of `vaddr` and invalidates it in this core's TLB.
    /// Returns the frame it mapped. Page tables left empty are kept.
    pub fn unmap(&self, vaddr: u64) -> Result<u64, PagingError> {
        Self::check(vaddr)?;
        let entry = self
            .entry(vaddr, None)?
            .filter(|entry| **entry & PRESENT != 0);
        let entry = entry.ok_or(PagingError::NotMapped { vaddr })?;
        let frame = *entry & ENTRY_ADDRESS;
        *entry = 0;
        invalidate(vaddr);
        Ok(frame)
    }

    /// The frame `vaddr` maps to, if any.
    pub fn translate(&self, vaddr: u64) -> Option<u64> {
        Self::check(vaddr).ok()?;
        let entry = self.entry(vaddr, None).ok()??;
        (*entry & PRESENT != 0).then_some(*entry & ENTRY_ADDRESS)
    }
}

/// The PML4 slot of the user range (`USER_PAGES`): the one entry a
/// program's address space takes.
const USER_SLOT: usize = (USER_PAGES.start >> 39) as usize;

impl PageTables {
    /// The program's address space the user range maps now, if any: the
    /// frame of its page-directory-pointer table.
    pub fn user_space(&self) -> Option<u64> {
        let entry = table(self.pml4)[USER_SLOT];
        (entry & PRESENT != 0).then_some(entry & ENTRY_ADDRESS)
    }

    /// Makes `space` (a zeroed frame of this core's pool, the first time)
    /// the program's address space that the user range maps, or none, and
    /// drops the old one's translations from this core's TLB. Each program
    /// on a core has its own: switching between them is this one entry.
    pub fn switch_user_space(&self, space: Option<u64>) {
        if self.user_space() == space {
            return;
        }
        table(self.pml4)[USER_SLOT] = match space {
            Some(frame) => (frame & ENTRY_ADDRESS) | PRESENT | WRITABLE | USER,
            None => 0,
        };
        let (root, flags) = Cr3::read();
        // SAFETY: the same PML4 again; only the user range changed, which
        // no kernel code runs from, and reloading CR3 drops its old
        // translations (the kernel's own are rebuilt from the same tables).
        unsafe { Cr3::write(root, flags) };
    }

    /// Maps the page at `vaddr` (in the user range) of the address space
    /// `space`, whether the user range maps it now or not, to `frame`:
    /// reachable from ring 3, writable or executable (never both) as asked,
    /// taking page-table frames from `allocate`.
    pub fn map_user_in(
        &self,
        space: u64,
        vaddr: u64,
        frame: u64,
        writable: bool,
        executable: bool,
        allocate: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<(), PagingError> {
        Self::check_user(vaddr, writable, executable)?;
        let entry = walk(space, 1, vaddr, Some(allocate))?.ok_or(PagingError::OutOfFrames)?;
        if *entry & PRESENT != 0 {
            return Err(PagingError::AlreadyMapped {
                vaddr,
                frame: *entry & ENTRY_ADDRESS,
            });
        }
        *entry = (frame & ENTRY_ADDRESS) | user_flags(writable, executable);
        Ok(())
    }

    /// Checks that `vaddr` is a page of the user range, and that a page
    /// there would not be both writable and executable.
    fn check_user(vaddr: u64, writable: bool, executable: bool) -> Result<(), PagingError> {
        Self::check(vaddr)?;
        match USER_PAGES.contains(&vaddr) && !(writable && executable) {
            true => Ok(()),
            false => Err(PagingError::BadAddress { vaddr }),
        }
    }

    /// Gives the page `vaddr` of the address space `space`, which maps
    /// `frame`, new rights. The caller invalidates the TLB entry (a
    /// protect's commit brings its own `InvalidateTlb`).
    pub fn protect_in(
        &self,
        space: u64,
        vaddr: u64,
        frame: u64,
        writable: bool,
        executable: bool,
    ) -> Result<(), PagingError> {
        Self::check_user(vaddr, writable, executable)?;
        let entry = walk(space, 1, vaddr, None)?
            .filter(|entry| **entry & PRESENT != 0)
            .ok_or(PagingError::NotMapped { vaddr })?;
        if *entry & ENTRY_ADDRESS != frame & ENTRY_ADDRESS {
            return Err(PagingError::AlreadyMapped {
                vaddr,
                frame: *entry & ENTRY_ADDRESS,
            });
        }
        *entry = (frame & ENTRY_ADDRESS) | user_flags(writable, executable);
        Ok(())
    }

    /// Removes the mapping of `vaddr` from the address space `space`, and
    /// from this core's TLB if the user range maps `space` now. Returns
    /// the frame it mapped.
    pub fn unmap_in(&self, space: u64, vaddr: u64) -> Result<u64, PagingError> {
        Self::check(vaddr)?;
        let entry = walk(space, 1, vaddr, None)?
            .filter(|entry| **entry & PRESENT != 0)
            .ok_or(PagingError::NotMapped { vaddr })?;
        let frame = *entry & ENTRY_ADDRESS;
        *entry = 0;
        if self.user_space() == Some(space) {
            invalidate(vaddr);
        }
        Ok(frame)
    }

    /// Gives back the frames of the address space `space`: each frame its
    /// pages map to `page` (whose owner decides what to do with it), and
    /// its page tables, `space` itself last, to `table`. If the user range
    /// maps it now, it maps none first.
    pub fn release_user_space(
        &self,
        space: u64,
        page: &mut dyn FnMut(u64),
        table: &mut dyn FnMut(u64),
    ) {
        if self.user_space() == Some(space) {
            self.switch_user_space(None);
        }
        for directory in present(space) {
            for pages in present(directory) {
                for frame in present(pages) {
                    page(frame);
                }
                table(pages);
            }
            table(directory);
        }
        table(space);
    }
}

/// The leaf entry for `vaddr` under the table at `root`, which is of level
/// `level` (0: a PML4, 1: a page-directory-pointer table); missing tables
/// below it are made with frames from `new_table`, or, without it, mean
/// `Ok(None)`.
fn walk(
    root: u64,
    level: usize,
    vaddr: u64,
    mut new_table: Option<&mut dyn FnMut() -> Option<u64>>,
) -> Result<Option<&'static mut u64>, PagingError> {
    // Tables over programs' pages are reachable from ring 3 (each leaf
    // says what of it is); the others are the kernel's alone.
    let table_flags = match USER_PAGES.contains(&vaddr) {
        true => PRESENT | WRITABLE | USER,
        false => PRESENT | WRITABLE,
    };
    let indices = PageTables::indices(vaddr);
    let mut current = table(root);
    for &index in &indices[level..3] {
        let entry = &mut current[index];
        if *entry & PRESENT == 0 {
            let Some(allocate) = new_table.as_mut() else {
                return Ok(None);
            };
            let frame = allocate().ok_or(PagingError::OutOfFrames)?;
            table(frame).fill(0);
            *entry = frame | table_flags;
        }
        current = table(*entry & ENTRY_ADDRESS);
    }
    Ok(Some(&mut current[indices[3]]))
}

/// The flags of a program's page, writable or executable (never both).
fn user_flags(writable: bool, executable: bool) -> u64 {
    let mut flags = PRESENT | USER;
    if writable {
        flags |= WRITABLE;
    }
    if !executable {
        flags |= NO_EXECUTE;
    }
    flags
}

/// The frames the present entries of the table at `frame` point at (no
/// large pages: the user range has none).
fn present(frame: u64) -> impl Iterator<Item = u64> {
    table(frame)
        .iter()
        .filter(|entry| **entry & PRESENT != 0)
        .map(|entry| entry & ENTRY_ADDRESS)
}

/// Drops `vaddr` from this core's TLB.
pub fn invalidate(vaddr: u64) {
    // SAFETY: invlpg only discards a cached translation; it cannot make any
    // memory access unsafe.
    unsafe { asm!("invlpg [{}]", in(reg) vaddr, options(nostack, preserves_flags)) };
}

impl PageTables {
    /// Reads the first byte of the page at `vaddr` through these page tables,
    /// to show that a mapping took effect; `None` if the page is not mapped.
    pub fn read_mapped(&self, vaddr: u64) -> Option<u8> {
        self.translate(vaddr)?;
        // SAFETY: these are the running core's page tables (the only ones a
        // core holds), and they map `vaddr` to a frame; reading a byte of it
        // has no side effect.
        Some(unsafe { core::ptr::read_volatile(vaddr as *const u8) })
    }
}
