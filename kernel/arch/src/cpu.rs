//! Single instructions and per-core registers.

use core::arch::asm;
use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

/// Cycles since reset, from this core's time-stamp counter.
pub fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: rdtsc reads a counter; it touches no memory.
    unsafe {
        asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    };
    (u64::from(high) << 32) | u64::from(low)
}

/// Stops this core for good: interrupts off, then halt. An NMI may wake it,
/// so the halt repeats.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

pub use x86_64::instructions::interrupts::{disable as disable_interrupts, without_interrupts};

/// Enables interrupts and halts until one arrives, with no window between the
/// two in which a wake-up interrupt could be lost (sti's one-instruction shadow).
pub fn enable_interrupts_and_wait() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

pub fn enable_interrupts() {
    x86_64::instructions::interrupts::enable();
}

/// The faulting address of the last page fault on this core.
pub fn page_fault_address() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Points this core's GS base at its core-local block. The block must start
/// with a pointer to itself, which [`core_local_address`] reads back.
pub fn set_core_local_address(block: u64) {
    GsBase::write(VirtAddr::new(block));
}

/// The address of this core's core-local block, or 0 before it has one.
pub fn core_local_address() -> u64 {
    if GsBase::read().as_u64() == 0 {
        return 0;
    }
    let block: u64;
    // SAFETY: a non-zero GS base was set by `set_core_local_address` to a
    // block whose first word is its own address.
    unsafe { asm!("mov {}, gs:[0]", out(reg) block, options(readonly, nostack, preserves_flags)) };
    block
}

/// An address in the lower half that the boot page tables leave unmapped
/// (they cover the first 4 GiB only).
pub const UNMAPPED_ADDRESS: u64 = 0x0000_0080_0000_0000;

/// Writes a byte at `address`, as a stray pointer would: the `scribble`
/// shell command aims it at another core's memory, to show that this
/// core's page tables do not map it (the write faults, and the fault stays
/// on this core).
pub fn scribble(address: u64) {
    // SAFETY: not sound in general, and not meant to be: it is the stray
    // write that isolation must stop. The only caller aims it at memory
    // that belongs to another core, which this core's page tables leave
    // unmapped, so it faults before it writes; were isolation broken, the
    // write would land, and the shell's test would see the damage.
    unsafe { core::ptr::write_volatile(address as *mut u8, 0xA5) };
}

/// Reads [`UNMAPPED_ADDRESS`] and so takes a page fault on purpose, to show
/// that a fault stays on the core that took it.
pub fn touch_unmapped_page() {
    // SAFETY: the read faults before it returns anything; the page-fault
    // handler stops this core and never resumes here.
    unsafe { core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64) };
}
