//! The x86_64 layer: everything that touches the processor, its registers,
//! memory-mapped devices and I/O ports. Together with the channel code it is
//! where Atoll's `unsafe` lives; the rest of the kernel calls the safe
//! functions here.

pub mod apic;
pub mod boot;
pub mod channels;
pub mod core_local;
pub mod cpu;
pub mod cpuid;
pub mod heap;
pub mod idt;
pub mod paging;
pub mod percore;
pub mod phys;
pub mod pit;
pub mod power;
pub mod serial;
pub mod smp;
pub mod tables;
