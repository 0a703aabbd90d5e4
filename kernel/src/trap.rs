//! What a core does with an interrupt or exception, and with a panic.
//! Exceptions and panics stop only the core that took them; the others run
//! on.

use atoll_arch::idt::{self, TrapFrame};
use atoll_arch::serial::CONSOLE;
use atoll_arch::{cpu, percore};
use atoll_monitor::{TraceEvent, TraceKind};

use crate::host;
use crate::measure;
use crate::shared::boot_facts;

/// Handles every interrupt and exception; registered with arch at boot.
pub fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector == idt::NMI {
        // The only NMI sent is the `fault` command's: it reaches this core
        // wherever it is (mid-step, inside a handler, interrupts off), and
        // the page fault it takes here stops the core like any other.
        cpu::touch_unmapped_page();
    }
    if vector < idt::FIRST_INTERRUPT {
        if frame.cs & 3 == 3 {
            // A program's fault ends the program, not the core.
            atoll_arch::user::end_by_fault(frame.vector, frame.error_code, frame.rip);
        }
        stop_after_exception(frame);
    }
    let Some(local) = percore::try_current() else {
        return;
    };
    match vector {
        idt::TIMER => {
            local.tick();
        }
        // The wake-up IPI ends the core's halt, so that its polling loop looks
        // at its rings; IPI pings are answered right here.
        idt::WAKE => {
            if let Some(core) = local.os::<host::Core>() {
                measure::answer_ipi_pings(local, &core.recorder);
            }
        }
        idt::SHOOTDOWN => measure::answer_ipi_shootdown(local),
        // The `hang` command: stop answering, silently. The board still
        // says the core runs; only the other monitors' detectors find out.
        idt::HANG => cpu::halt_forever(),
        idt::SPURIOUS => return,
        other => println!("atoll: core {}: unexpected interrupt {other:#x}", local.id),
    }
    local.lapic.eoi();
    if frame.cs & 3 == 3 && matches!(vector, idt::TIMER | idt::WAKE) {
        // A program runs: the core goes back to the kernel for a while (its
        // monitor polls its rings and feeds the tick), then the program
        // goes on from here (`crate::dispatch`).
        atoll_arch::user::preempt(frame);
    }
}

fn stop_after_exception(frame: &TrapFrame) -> ! {
    let core = percore::try_current().map(|local| local.id);
    CONSOLE.release_if_held_here();
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
    flush_trace(TraceEvent {
        detail: frame.vector,
        ..TraceEvent::new(cpu::rdtsc(), TraceKind::Fault, name)
    });
    host::stop_this_core(core)
}

/// A stopped core never answers a `trace dump`, so while tracing it prints
/// its own events, `last` included, on the way down.
fn flush_trace(last: TraceEvent) {
    let Some(core) = host::try_current() else {
        return;
    };
    if !core.recorder.is_on() {
        return;
    }
    core.recorder.record(last);
    let (first_sends, sent) = core
        .monitor_if_free(|monitor| (monitor.trace_start().to_vec(), monitor.sent()))
        .unwrap_or_default();
    core.recorder
        .dump(core.id, boot_facts().tsc_per_ms, &first_sends, &sent);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cpu::disable_interrupts();
    let core = percore::try_current().map(|local| local.id);
    CONSOLE.release_if_held_here();
    match core {
        Some(core) => println!("atoll: PANIC on core {core}: {info}"),
        None => println!("atoll: PANIC on the boot core before it was set up: {info}"),
    }
    flush_trace(TraceEvent::new(cpu::rdtsc(), TraceKind::Fault, "panic"));
    host::stop_this_core(core)
}
