//! What a core does with an interrupt or exception. Exceptions stop only the
//! core that took them; the others run on.

use crate::arch::cpu;
use crate::arch::idt::{self, TrapFrame};
use crate::arch::percore;
use crate::arch::power;
use crate::node;
use crate::shared::{BOARD, CONSOLE, CoreState};

pub fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector < idt::FIRST_INTERRUPT {
        stop_after_exception(frame);
    }
    let Some(local) = percore::try_current() else {
        return;
    };
    match vector {
        idt::TIMER => local.tick(),
        // The wake-up IPI ends the core's halt, so that the node loop looks
        // at its rings; IPI pings are answered right here.
        idt::WAKE => node::answer_ipi_pings(local),
        idt::SHOOTDOWN => crate::shootdown::answer_ipi_shootdown(local),
        idt::SPURIOUS => return,
        other => println!("atoll: core {}: unexpected interrupt {other:#x}", local.id),
    }
    local.lapic.eoi();
}

fn stop_after_exception(frame: &TrapFrame) -> ! {
    let core = percore::try_current().map(|local| local.id);
    let tag = crate::console::current_core_tag();
    CONSOLE.release_if_held_by(tag);
    let address = if frame.vector == u64::from(idt::PAGE_FAULT) {
        cpu::page_fault_address()
    } else {
        0
    };
    let name = idt::exception_name(frame.vector);
    match core {
        Some(core) => println!(
            "atoll: core {core}: exception {} ({name}) error {:#x} rip {:#x} addr {address:#x}; core {core} stopped",
            frame.vector, frame.error_code, frame.rip
        ),
        None => println!(
            "atoll: boot: exception {} ({name}) error {:#x} rip {:#x} addr {address:#x} before the core was set up; stopped",
            frame.vector, frame.error_code, frame.rip
        ),
    }
    stop_this_core(core)
}

/// Marks this core stopped and halts it. If it ran the shell, nobody is left
/// to report to, so a scripted run ends with the panic status.
pub fn stop_this_core(core: Option<usize>) -> ! {
    match core {
        Some(core) => {
            BOARD.core(core).set_state(CoreState::Stopped);
            if core == crate::shared::boot_facts().boot_core {
                power::exit_qemu(power::ExitStatus::Panic);
            }
        }
        None => power::exit_qemu(power::ExitStatus::Panic),
    }
    cpu::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cpu::disable_interrupts();
    let core = percore::try_current().map(|local| local.id);
    CONSOLE.release_if_held_by(crate::console::current_core_tag());
    match core {
        Some(core) => println!("atoll: PANIC on core {core}: {info}"),
        None => println!("atoll: PANIC on the boot core before it was set up: {info}"),
    }
    stop_this_core(core)
}
