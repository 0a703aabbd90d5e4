//! The local APIC in xAPIC mode (memory-mapped; TCG has no x2APIC): identity,
//! end of interrupt, inter-processor interrupts and the per-core timer.

use x86_64::registers::model_specific::Msr;

/// The most cores xAPIC can address: its ids are 8 bits, and 0xFF is the
/// broadcast id.
pub const MAX_CORES: usize = 255;

const ID: u32 = 0x20;
const EOI: u32 = 0xB0;
const SPURIOUS: u32 = 0xF0;
const ERROR_STATUS: u32 = 0x280;
const ICR_LOW: u32 = 0x300;
const ICR_HIGH: u32 = 0x310;
const LVT_TIMER: u32 = 0x320;
const LVT_LINT0: u32 = 0x350;
const LVT_LINT1: u32 = 0x360;
const LVT_ERROR: u32 = 0x370;
const TIMER_INITIAL: u32 = 0x380;
const TIMER_CURRENT: u32 = 0x390;
const TIMER_DIVIDE: u32 = 0x3E0;

const IA32_APIC_BASE: u32 = 0x1B;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;
/// Bits 12 to 51 of IA32_APIC_BASE: the APIC page's physical address.
const APIC_BASE_ADDRESS: u64 = 0x000F_FFFF_FFFF_F000;
const SOFTWARE_ENABLE: u32 = 1 << 8;
const MASKED: u32 = 1 << 16;
const TIMER_PERIODIC: u32 = 1 << 17;
const ICR_PENDING: u32 = 1 << 12;
const ICR_NMI: u32 = 0b100 << 8;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_ASSERT: u32 = 1 << 14;
/// Divide the timer's input clock by 16.
const DIVIDE_BY_16: u32 = 0b0011;

/// This core's local APIC (every core sees its own at the same address).
#[derive(Clone, Copy)]
pub struct LocalApic {
    base: u64,
}

impl LocalApic {
    /// This core's local APIC, at the address its IA32_APIC_BASE MSR holds
    /// (the same on every core unless firmware moved one).
    pub fn current() -> Self {
        // SAFETY: IA32_APIC_BASE exists on every x86_64 processor; reading
        // it has no side effects.
        let base = unsafe { Msr::new(IA32_APIC_BASE).read() } & APIC_BASE_ADDRESS;
        assert!(
            base + 0x1000 <= super::phys::IDENTITY_MAPPED_END,
            "the local APIC at {base:#x} lies outside the identity map"
        );
        Self { base }
    }

    /// The page of physical memory its registers occupy.
    pub fn page(self) -> (u64, u64) {
        (self.base, self.base + 0x1000)
    }

    fn read(self, register: u32) -> u32 {
        // SAFETY: `base` is the APIC page, identity mapped (checked in
        // `current`), and every register offset used here lies in it.
        unsafe { core::ptr::read_volatile((self.base + u64::from(register)) as *const u32) }
    }

    fn write(self, register: u32, value: u32) {
        // SAFETY: as in `read`; APIC register writes have only the device
        // effects this module intends.
        unsafe { core::ptr::write_volatile((self.base + u64::from(register)) as *mut u32, value) }
    }

    /// Turns the APIC on for this core, with the given spurious vector and
    /// the legacy LINT pins and error interrupt masked.
    pub fn enable(self, spurious_vector: u8) {
        let mut msr = Msr::new(IA32_APIC_BASE);
        // SAFETY: setting the global-enable bit of IA32_APIC_BASE keeps the
        // APIC at its current address; it is what firmware does on boot.
        unsafe {
            let value = msr.read();
            msr.write(value | APIC_GLOBAL_ENABLE);
        }
        self.write(LVT_LINT0, MASKED);
        self.write(LVT_LINT1, MASKED);
        self.write(LVT_ERROR, MASKED);
        self.write(ERROR_STATUS, 0);
        self.write(SPURIOUS, SOFTWARE_ENABLE | u32::from(spurious_vector));
        self.eoi();
    }

    pub fn id(self) -> u32 {
        self.read(ID) >> 24
    }

    pub fn eoi(self) {
        self.write(EOI, 0);
    }

    fn send(self, apic_id: u32, command: u32) {
        self.write(ICR_HIGH, apic_id << 24);
        self.write(ICR_LOW, command);
        while self.read(ICR_LOW) & ICR_PENDING != 0 {
            core::hint::spin_loop();
        }
    }

    /// A fixed-vector interrupt to the core with `apic_id`.
    pub fn send_ipi(self, apic_id: u32, vector: u8) {
        self.send(apic_id, u32::from(vector));
    }

    /// A non-maskable interrupt to the core with `apic_id`: it arrives
    /// whatever the core is doing, interrupts off or inside a handler.
    pub fn send_nmi(self, apic_id: u32) {
        self.send(apic_id, ICR_NMI | ICR_ASSERT);
    }

    pub fn send_init(self, apic_id: u32) {
        self.send(apic_id, ICR_INIT | ICR_ASSERT);
    }

    /// Start-up IPI: the target starts in real mode at `page * 4096`.
    pub fn send_startup(self, apic_id: u32, page: u8) {
        self.send(apic_id, ICR_STARTUP | ICR_ASSERT | u32::from(page));
    }

    /// Counts down from the maximum with the timer masked; [`timer_elapsed`]
    /// reads how far it got. Used to calibrate the timer.
    ///
    /// [`timer_elapsed`]: Self::timer_elapsed
    pub fn start_timer_count(self) {
        self.write(TIMER_DIVIDE, DIVIDE_BY_16);
        self.write(LVT_TIMER, MASKED);
        self.write(TIMER_INITIAL, u32::MAX);
    }

    pub fn timer_elapsed(self) -> u32 {
        u32::MAX - self.read(TIMER_CURRENT)
    }

    /// Periodic timer interrupts on `vector`, every `count` timer ticks.
    pub fn start_periodic_timer(self, vector: u8, count: u32) {
        self.write(TIMER_DIVIDE, DIVIDE_BY_16);
        self.write(LVT_TIMER, TIMER_PERIODIC | u32::from(vector));
        self.write(TIMER_INITIAL, count.max(1));
    }
}
