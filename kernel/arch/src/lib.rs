//! Atoll's x86_64 layer: everything that touches the processor, its
//! registers, memory-mapped devices and I/O ports, and every `unsafe` of
//! the kernel (besides the ring code in `atoll-urpc`).
//!
//! It sits under everything: it imports nothing from the kernel above it.
//! The kernel hands it what it needs as values (a core's memory span, its
//! timer count, the addresses of its rings) and registers the few functions
//! it must call back (the trap handler, each started core's entry, the boot
//! entry through [`entry!`]); the per-core state of the kernel it stores
//! for each core without knowing its type ([`percore::CoreLocal::set_os`]).
//! The kernel above it is `#![forbid(unsafe_code)]`, so the compiler keeps
//! the boundary.
//!
//! It may depend on `atoll-frames` (the frame pool and ranges), the
//! `PhysMem` trait of `atoll-firmware`, `atoll-urpc`'s ring ends, and the
//! crates `x86_64`, `uart_16550`, `spin`, `talc` and `zerocopy`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod apic;
pub mod boot;
pub mod channels;
mod core_local;
pub mod cpu;
pub mod cpuid;
mod heap;
pub mod idt;
pub mod paging;
pub mod percore;
pub mod phys;
pub mod pit;
pub mod power;
pub mod serial;
pub mod smp;
mod tables;
pub mod user;

/// Defines the kernel's boot entry: the symbol the assembly entry calls once
/// the boot core is in long mode, which calls `$main` with the registers
/// the boot loader left (`eax`, `ebx`). With [`shared!`], one of the two
/// items of arch's that land in the kernel binary: their text, and their
/// `unsafe` attributes, are here.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn kernel_main(eax: u32, ebx: u32) -> ! {
            let main: fn($crate::boot::BootRegisters) -> ! = $main;
            main($crate::boot::BootRegisters { eax, ebx })
        }
    };
}

/// Declares statics that cores write after boot (`static NAME: TYPE =
/// VALUE;`, one or more): they go in the shared region, the pages every
/// core maps writable ([`boot::shared_region`]), while the kernel's other
/// statics are mapped read-only once the other cores start. The kernel
/// declares only the items `docs/architecture.md` §7 lists this way.
#[macro_export]
macro_rules! shared {
    ($($(#[$attribute:meta])* $visibility:vis static $name:ident: $type:ty = $value:expr;)+) => {
        $(
            $(#[$attribute])*
            #[unsafe(link_section = ".shared")]
            $visibility static $name: $type = $value;
        )+
    };
}
