//! Starting the other cores, one at a time, with INIT-SIPI-SIPI.

use crate::arch::percore::CoreLocal;
use crate::arch::{boot, cpu, phys};
use crate::shared::{AP_BOOT_STACK_TOP, AP_START, BOARD, CoreState, boot_facts};
use core::sync::atomic::Ordering;

const INIT_DELAY_US: u64 = 10_000;
const STARTUP_DELAY_US: u64 = 200;
/// How long a core may take to answer its start-up IPIs.
const ALIVE_TIMEOUT_MS: u64 = 1000;
/// How long a started core may take to set itself up.
const READY_TIMEOUT_MS: u64 = 5000;
/// Kernel command-line option naming one core whose start-up IPIs are not
/// sent, so that tests can watch the boot core report and skip a core that
/// never answers.
const WITHHOLD_OPTION: &str = "atoll.test.withhold_startup=";

fn delay_us(microseconds: u64) {
    let deadline = cpu::rdtsc() + microseconds * boot_facts().tsc_per_ms / 1000;
    while cpu::rdtsc() < deadline {
        core::hint::spin_loop();
    }
}

/// Starts every core but this one and waits for each to come up or fail.
/// Returns how many cores run, this one included.
pub fn start_other_cores(local: &CoreLocal) -> usize {
    let facts = boot_facts();
    // SAFETY: the trampoline page was taken out of usable memory at boot for
    // this purpose alone.
    unsafe { phys::write(facts.trampoline_page, boot::trampoline_code()) };
    let page = (facts.trampoline_page / 4096) as u8;
    let withheld = atoll_shell::cmdline_option(facts.info.cmdline(), WITHHOLD_OPTION)
        .and_then(|core| core.parse().ok());
    for (id, core) in facts
        .cores
        .iter()
        .enumerate()
        .filter(|&(id, _)| id != local.id)
    {
        AP_START.core.store(id, Ordering::Relaxed);
        AP_START.alive.store(false, Ordering::Relaxed);
        AP_BOOT_STACK_TOP.store(core.stack_top, Ordering::Release);
        BOARD.core(id).set_state(CoreState::Starting);
        local.lapic.send_init(core.apic_id);
        delay_us(INIT_DELAY_US);
        let startup_ipis = if withheld == Some(id) {
            println!("atoll: test: not sending core {id} its start-up IPIs");
            0
        } else {
            2
        };
        for _ in 0..startup_ipis {
            local.lapic.send_startup(core.apic_id, page);
            delay_us(STARTUP_DELAY_US);
            if AP_START.alive.load(Ordering::Acquire) {
                break;
            }
        }
        if !crate::node::wait_until(local, ALIVE_TIMEOUT_MS, || {
            AP_START.alive.load(Ordering::Acquire)
        }) {
            // Put it back to waiting for a start-up IPI, so that it cannot
            // wake later and use the mailbox meant for the next core.
            local.lapic.send_init(core.apic_id);
            BOARD.core(id).set_state(CoreState::Offline);
            println!(
                "atoll: core {id} (apic {}) did not start: no answer within {ALIVE_TIMEOUT_MS} ms; skipped",
                core.apic_id
            );
        }
    }
    let mut running = 1;
    for (id, core) in facts
        .cores
        .iter()
        .enumerate()
        .filter(|&(id, _)| id != local.id)
    {
        let record = BOARD.core(id);
        if record.state() == CoreState::Offline {
            continue;
        }
        if crate::node::wait_until(local, READY_TIMEOUT_MS, || {
            record.state() != CoreState::Starting
        }) {
            running += usize::from(record.state() == CoreState::Running);
        } else {
            println!(
                "atoll: core {id} (apic {}) started but did not finish setting up; skipped",
                core.apic_id
            );
        }
    }
    running
}

/// Where each started core lands from `ap_entry64`, on its own stack.
#[unsafe(no_mangle)]
extern "C" fn ap_main() -> ! {
    let id = AP_START.core.load(Ordering::Relaxed);
    AP_START.alive.store(true, Ordering::Release);
    match crate::arch::percore::init(id) {
        Ok(local) => {
            println!("atoll: core {id} up (apic {})", local.apic_id);
            crate::node::run(local)
        }
        Err(error) => {
            println!("atoll: core {id} could not set itself up: {error}");
            crate::trap::stop_this_core(Some(id))
        }
    }
}
