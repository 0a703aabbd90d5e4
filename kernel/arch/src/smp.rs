//! Starting the other cores, one at a time, with INIT-SIPI-SIPI.
//!
//! The boot core copies the real-mode trampoline below 1 MiB once
//! ([`install_trampoline`]), names what every started core runs
//! ([`set_entry`]), and then starts each core in turn ([`start_core`]):
//! it fills the start-up mailbox (the core's id and its stack), sends the
//! IPIs, and waits for the core to say it is alive. The mailbox is memory
//! two cores share, one core at a time; the kernel lists it with the rest.
//!
//! A core that stopped can start again as a new kernel (`core on`): the
//! starting core first holds it in INIT ([`park`]), which no code it was
//! running survives, so that the rings to and from it may be started
//! afresh ([`crate::channels::reattach`] checks [`is_parked`]); then it
//! starts it as at boot, with the next incarnation number.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::apic::LocalApic;
use crate::{boot, cpu, phys};

const INIT_DELAY_US: u64 = 10_000;
const STARTUP_DELAY_US: u64 = 200;
/// How long a core may take to answer its start-up IPIs.
pub const ALIVE_TIMEOUT_MS: u64 = 1000;

/// The start-up mailbox: the core id the starting core takes, which of
/// its kernels this is, and its word that it runs Rust code.
struct ApStart {
    core: AtomicUsize,
    incarnation: AtomicU32,
    alive: AtomicBool,
}

#[unsafe(link_section = ".shared")]
static AP_START: ApStart = ApStart {
    core: AtomicUsize::new(0),
    incarnation: AtomicU32::new(0),
    alive: AtomicBool::new(false),
};

/// Which cores are held in INIT by [`park`] and not started since: written
/// by the core that parks or starts one, read by the cores that start its
/// rings afresh.
#[unsafe(link_section = ".shared")]
static PARKED: [AtomicBool; crate::apic::MAX_CORES] =
    [const { AtomicBool::new(false) }; crate::apic::MAX_CORES];

/// The stack the starting core switches to; read by `ap_entry32` and
/// `ap_entry64` in assembly.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".shared")]
static AP_BOOT_STACK_TOP: AtomicU64 = AtomicU64::new(0);

/// What every started core runs, with its core id and incarnation; set once
/// by the boot core before it starts any.
static AP_ENTRY: spin::Once<fn(usize, u32) -> !> = spin::Once::new();

/// Busy-waits `microseconds`, by the TSC.
pub fn delay_us(microseconds: u64, tsc_per_ms: u64) {
    let deadline = cpu::rdtsc() + microseconds * tsc_per_ms / 1000;
    while cpu::rdtsc() < deadline {
        core::hint::spin_loop();
    }
}

/// Copies the real-mode trampoline to `page` (below 1 MiB, set aside at
/// boot for it alone). Returns the SIPI vector that points at it.
pub fn install_trampoline(page: u64) -> u8 {
    let code = boot::trampoline_code();
    assert!(
        page.is_multiple_of(4096) && page + code.len() as u64 <= 1 << 20,
        "the trampoline page {page:#x} is not a page below 1 MiB"
    );
    // SAFETY: the page lies below 1 MiB, in the identity map, and was taken
    // out of usable memory at boot for the trampoline alone.
    unsafe { phys::write(page, code) };
    (page / 4096) as u8
}

/// Names the function every started core runs, once.
pub fn set_entry(entry: fn(usize, u32) -> !) {
    AP_ENTRY.call_once(|| entry);
}

/// What the boot core needs to start one core.
pub struct CoreStart {
    /// The id the core takes.
    pub core: usize,
    pub apic_id: u32,
    /// The top of the stack it starts on.
    pub stack_top: u64,
    /// The SIPI vector [`install_trampoline`] returned.
    pub vector: u8,
    pub tsc_per_ms: u64,
    /// Whether to send the start-up IPIs at all (tests withhold them to
    /// see a silent core handled).
    pub send_startup: bool,
    /// Which of the core's kernels this is: 0 at boot, then one more each
    /// time it starts again.
    pub incarnation: u32,
}

/// Holds core `core` (APIC id `apic_id`) in INIT until it is started
/// again: whatever it ran is gone. Call it only for a core the others count
/// stopped (one that is stopping may still be printing its last line: the
/// INIT goes out between two prints, so that it never holds the console's
/// lock when it stops).
pub fn park(lapic: LocalApic, core: usize, apic_id: u32) {
    crate::serial::CONSOLE.between_prints(|| lapic.send_init(apic_id));
    PARKED[core].store(true, Ordering::Release);
}

/// Whether core `core` is held in INIT by [`park`], and not started since.
pub fn is_parked(core: usize) -> bool {
    PARKED
        .get(core)
        .is_some_and(|parked| parked.load(Ordering::Acquire))
}

/// Starts one core and waits up to [`ALIVE_TIMEOUT_MS`] for it to say it
/// is alive; whether it did. A silent core is put back into INIT, so that it
/// cannot wake later and use the mailbox meant for the next core.
pub fn start_core(lapic: LocalApic, start: &CoreStart) -> bool {
    assert!(AP_ENTRY.is_completed(), "start_core before set_entry");
    PARKED[start.core].store(false, Ordering::Release);
    AP_START.core.store(start.core, Ordering::Relaxed);
    AP_START
        .incarnation
        .store(start.incarnation, Ordering::Relaxed);
    AP_START.alive.store(false, Ordering::Relaxed);
    AP_BOOT_STACK_TOP.store(start.stack_top, Ordering::Release);
    lapic.send_init(start.apic_id);
    delay_us(INIT_DELAY_US, start.tsc_per_ms);
    let startup_ipis = if start.send_startup { 2 } else { 0 };
    for _ in 0..startup_ipis {
        lapic.send_startup(start.apic_id, start.vector);
        delay_us(STARTUP_DELAY_US, start.tsc_per_ms);
        if AP_START.alive.load(Ordering::Acquire) {
            break;
        }
    }
    let deadline = cpu::rdtsc() + ALIVE_TIMEOUT_MS * start.tsc_per_ms;
    while !AP_START.alive.load(Ordering::Acquire) {
        if cpu::rdtsc() > deadline {
            lapic.send_init(start.apic_id);
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Where each started core lands from `ap_entry64`, on its own stack.
#[unsafe(no_mangle)]
extern "C" fn ap_main() -> ! {
    let id = AP_START.core.load(Ordering::Relaxed);
    let incarnation = AP_START.incarnation.load(Ordering::Relaxed);
    AP_START.alive.store(true, Ordering::Release);
    let entry = AP_ENTRY
        .get()
        .expect("the boot core sets the entry before starting cores");
    entry(id, incarnation)
}
