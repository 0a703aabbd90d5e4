//! Each core's own descriptor tables: a GDT with a TSS whose interrupt-stack
//! table gives double faults, NMIs and machine checks a known-good stack, and
//! an IDT of 256 gates pointing at the stubs in [`super::idt`].

use super::idt::{self, TrapStubs};
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::{lidt, load_tss};
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// Interrupt-stack-table slots (1-based in the gate, 0-based in the TSS).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;
pub const IST_STACK_SIZE: usize = 16 * 1024;

/// One IDT gate in the 16-byte long-mode format. Written here rather than
/// with the `x86_64` crate's IDT, whose handler setters assume the unstable
/// `x86-interrupt` ABI; Atoll's stubs are naked functions.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

/// Present, ring 0, 64-bit interrupt gate (interrupts off on entry).
const INTERRUPT_GATE: u8 = 0x8E;

impl Gate {
    fn new(handler: u64, selector: u16, ist: u8) -> Self {
        Self {
            offset_low: handler as u16,
            selector,
            ist,
            type_attributes: INTERRUPT_GATE,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

/// The tables of one core. They live in that core's own memory for as long
/// as the core runs, hence the `'static` borrows.
pub struct CpuTables {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
    idt: [Gate; 256],
}

impl CpuTables {
    pub fn new() -> Self {
        Self {
            gdt: GlobalDescriptorTable::new(),
            tss: TaskStateSegment::new(),
            idt: [Gate::default(); 256],
        }
    }

    /// Fills in and loads the tables on this core, and readies it for
    /// ring 3 (`crate::user::init`). `ist_stacks` are the tops of three
    /// stacks of [`IST_STACK_SIZE`] bytes this core owns, and `ring0_stack`
    /// the top of one more, for interrupts and exceptions that arrive in
    /// ring 3. Returns whether SMEP and SMAP are on.
    pub fn load(&'static mut self, ist_stacks: [u64; 3], ring0_stack: u64) -> bool {
        self.tss.privilege_stack_table[0] = VirtAddr::new(ring0_stack);
        for (slot, top) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]
            .into_iter()
            .zip(ist_stacks)
        {
            self.tss.interrupt_stack_table[usize::from(slot - 1)] = VirtAddr::new(top);
        }
        let code = self.gdt.append(Descriptor::kernel_code_segment());
        let data = self.gdt.append(Descriptor::kernel_data_segment());
        let user_data = self.gdt.append(Descriptor::user_data_segment());
        let user_code = self.gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS lives as long as the core, beside this GDT, and is
        // not written again once loaded.
        let tss = self
            .gdt
            .append(unsafe { Descriptor::tss_segment_unchecked(&raw const self.tss) });
        for (vector, stub) in TrapStubs::all() {
            let ist = match vector {
                idt::DOUBLE_FAULT => IST_DOUBLE_FAULT,
                idt::NMI => IST_NMI,
                idt::MACHINE_CHECK => IST_MACHINE_CHECK,
                _ => 0,
            };
            self.idt[usize::from(vector)] = Gate::new(stub, code.0, ist);
        }
        let this: &'static Self = self;
        this.gdt.load();
        let idt_pointer = DescriptorTablePointer {
            limit: (core::mem::size_of_val(&this.idt) - 1) as u16,
            base: VirtAddr::from_ptr(this.idt.as_ptr()),
        };
        // SAFETY: the selectors come from the GDT just loaded; the IDT and
        // TSS live as long as the core (`'static`), and every gate points at
        // a stub that saves state and calls the trap dispatcher.
        unsafe {
            CS::set_reg(code);
            SS::set_reg(data);
            DS::set_reg(data);
            ES::set_reg(data);
            load_tss(tss);
            lidt(&idt_pointer);
        }
        crate::user::init(code, data, user_data, user_code)
    }
}
