//! The OS node's event loop on each core, and the doorbell messages of this
//! stage: ping (answered with a ping reply) and the fault request. A sender
//! sets a bit in the receiver's board record, then wakes it with an IPI.

use crate::arch::percore::CoreLocal;
use crate::arch::{cpu, idt};
use crate::shared::{BOARD, CoreState, boot_facts};
use core::sync::atomic::Ordering;

/// Answers whatever this core's doorbells ask. Returns whether there was any.
pub fn poll(local: &CoreLocal) -> bool {
    let record = BOARD.core(local.id);
    let mut worked = false;
    record.ping_requests.drain(|requester| {
        worked = true;
        BOARD.core(requester).ping_replies.insert(local.id);
        wake(local, requester);
    });
    if record.fault_request.swap(false, Ordering::AcqRel) {
        cpu::touch_unmapped_page();
    }
    worked
}

fn wake(local: &CoreLocal, core: usize) {
    local
        .lapic
        .send_ipi(boot_facts().cores[core].apic_id, idt::WAKE);
}

/// The node loop of a core with nothing else to run: answer doorbells, and
/// sleep until the next interrupt when there are none.
pub fn run(local: &CoreLocal) -> ! {
    loop {
        cpu::disable_interrupts();
        if poll(local) {
            cpu::enable_interrupts();
        } else {
            cpu::enable_interrupts_and_wait();
        }
    }
}

/// Polls (so that this core keeps answering others) until `done` or until
/// `timeout_ms` pass; whether it got done.
pub fn wait_until(local: &CoreLocal, timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = cpu::rdtsc() + timeout_ms * boot_facts().tsc_per_ms;
    while cpu::rdtsc() < deadline {
        if done() {
            return true;
        }
        poll(local);
        core::hint::spin_loop();
    }
    done()
}

#[derive(Debug)]
pub struct NoAnswer {
    pub state: CoreState,
}

/// Round trip to `target` and back, by doorbell and IPI, in TSC cycles.
pub fn ping(local: &CoreLocal, target: usize, timeout_ms: u64) -> Result<u64, NoAnswer> {
    let mine = BOARD.core(local.id);
    mine.ping_replies.take(target);
    let start = cpu::rdtsc();
    BOARD.core(target).ping_requests.insert(local.id);
    wake(local, target);
    if wait_until(local, timeout_ms, || mine.ping_replies.take(target)) {
        Ok(cpu::rdtsc() - start)
    } else {
        // Withdraw the request so that a late answer cannot be mistaken for
        // the answer to a later ping.
        BOARD.core(target).ping_requests.take(local.id);
        Err(NoAnswer {
            state: BOARD.core(target).state(),
        })
    }
}

/// Asks `target` to take a page fault and waits until it has stopped.
pub fn request_fault(local: &CoreLocal, target: usize, timeout_ms: u64) -> bool {
    BOARD
        .core(target)
        .fault_request
        .store(true, Ordering::Release);
    wake(local, target);
    wait_until(local, timeout_ms, || {
        BOARD.core(target).state() == CoreState::Stopped
    })
}
