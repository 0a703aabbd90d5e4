//! What only the host can measure: IPI round trips, round trips on a shared
//! cache line, updates under a shared lock, and the IPI-broadcast TLB
//! shootdown. The monitor's `bench` service asks for these
//! (`atoll_monitor::bench::Measure`); the `ipi` shell command uses the IPI
//! round trip too.
//!
//! Each measurement spins on shared memory or waits for interrupts, with a
//! deadline, and touches the shared-memory baselines listed in
//! `crate::shared` (5), which live here, in the shared region, and the
//! spare lines of the rings (6).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use atoll_arch::percore::CoreLocal;
use atoll_arch::{channels, cpu, idt, paging};
use atoll_monitor::bench::{FIG3_LINES, Measure};
use atoll_monitor::control::summary;
use atoll_monitor::vm::TEST_SPACE_BASE;

use crate::facts::MAX_CORES;
use crate::shared::{CoreSet, Line, boot_facts};
use crate::trace::Recorder;

/// How long a measurement waits for the other side.
pub const PEER_TIMEOUT_MS: u64 = 2000;
/// The page the IPI broadcast invalidates (it need not be mapped).
const SHOOTDOWN_PAGE: u64 = TEST_SPACE_BASE;

/// `bench fig3`'s structure, as its shared-memory method updates it: a lock
/// on a line of its own, then the lines, all cores writing them.
struct Fig3Structure {
    lock: Line<AtomicU64>,
    lines: [Line<[AtomicU64; 8]>; FIG3_LINES],
}

/// The IPI round trip's flags: a core sets its bit in the target's
/// requests and wakes it with an IPI, whose handler sets its own bit in the
/// requester's replies and wakes it back. Each set on a line of its own.
struct Pings {
    requests: Line<CoreSet>,
    replies: Line<CoreSet>,
}

/// The IPI broadcast of `bench shootdown`, the way a shared-memory kernel
/// does it: the initiator writes the page and its id into each target's
/// slot and sends an IPI; the handler invalidates the page and increments
/// the initiator's counter, one line all targets write.
struct ShootdownSlot {
    page: AtomicU64,
    initiator: AtomicUsize,
}

atoll_arch::shared! {
    static FIG3: Fig3Structure = Fig3Structure {
        lock: Line(AtomicU64::new(0)),
        lines: [const { Line([const { AtomicU64::new(0) }; 8]) }; FIG3_LINES],
    };

    static SHOOTDOWN_SLOTS: [Line<ShootdownSlot>; MAX_CORES] = [const {
        Line(ShootdownSlot {
            page: AtomicU64::new(0),
            initiator: AtomicUsize::new(0),
        })
    }; MAX_CORES];

    static SHOOTDOWN_ACKS: [Line<AtomicU64>; MAX_CORES] =
        [const { Line(AtomicU64::new(0)) }; MAX_CORES];

    static PINGS: [Pings; MAX_CORES] = [const {
        Pings {
            requests: Line(CoreSet::new()),
            replies: Line(CoreSet::new()),
        }
    }; MAX_CORES];
}

fn deadline(timeout_ms: u64) -> u64 {
    cpu::rdtsc() + timeout_ms * boot_facts().tsc_per_ms
}

/// Sends the wake-up IPI to `core`, and records it.
pub fn wake(local: &CoreLocal, recorder: &Recorder, core: usize) {
    send_ipi(local, recorder, core, idt::WAKE);
}

fn send_ipi(local: &CoreLocal, recorder: &Recorder, core: usize, vector: u8) {
    local
        .lapic
        .send_ipi(boot_facts().cores[core].apic_id, vector);
    recorder.ipi(core, vector);
}

/// The wake-up interrupt's handler: counts it, and answers the IPI pings
/// other cores left for this one, so that an IPI round trip goes handler to
/// handler without waiting for the polling loop.
pub fn answer_ipi_pings(local: &CoreLocal, recorder: &Recorder) {
    local.count_wake_interrupt();
    PINGS[local.id].requests.0.drain(|requester| {
        PINGS[requester].replies.0.insert(local.id);
        wake(local, recorder, requester);
    });
}

/// `target` did not answer an IPI ping in time.
#[derive(Debug)]
pub struct NoAnswer;

/// One IPI round trip to `target` and back, interrupt handler to interrupt
/// handler, in TSC cycles.
pub fn ipi_round_trip(
    local: &CoreLocal,
    recorder: &Recorder,
    target: usize,
    timeout_ms: u64,
) -> Result<u64, NoAnswer> {
    let mine = &PINGS[local.id].replies.0;
    mine.take(target);
    let interrupts_before = local.wake_interrupts();
    let start = cpu::rdtsc();
    PINGS[target].requests.0.insert(local.id);
    wake(local, recorder, target);
    let deadline = deadline(timeout_ms);
    let mut answered = false;
    while cpu::rdtsc() < deadline {
        answered |= mine.take(target);
        if answered && local.wake_interrupts() != interrupts_before {
            return Ok(cpu::rdtsc() - start);
        }
        core::hint::spin_loop();
    }
    // Withdraw the request so that a late answer cannot be mistaken for
    // the answer to a later ping.
    PINGS[target].requests.0.take(local.id);
    Err(NoAnswer)
}

/// Spins until `line` holds `value`, or `deadline` passes.
fn await_line(line: &AtomicU64, value: u64, deadline: u64) -> bool {
    while line.load(Ordering::Acquire) != value {
        if cpu::rdtsc() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Round trips on one cache line both cores write: the cost of moving the
/// line there and back, the floor for any message passing between them.
fn shared_line(me: usize, peer: usize, rounds: u32) -> Option<u64> {
    let line = channels::spare_line(me, peer);
    let deadline = deadline(PEER_TIMEOUT_MS);
    let samples: Option<Vec<u64>> = (0..u64::from(rounds))
        .map(|round| {
            let start = cpu::rdtsc();
            line.store(2 * round + 1, Ordering::Release);
            await_line(line, 2 * round + 2, deadline).then(|| cpu::rdtsc() - start)
        })
        .collect();
    // Ready for the next measurement on this line.
    line.store(0, Ordering::Release);
    samples.map(|samples| summary(samples).0)
}

/// The peer's half of the shared-line ping-pong: wait for each odd value,
/// answer with the next even one.
fn answer_shared_line(lead: usize, me: usize, rounds: u32) -> Option<u64> {
    let line = channels::spare_line(lead, me);
    let deadline = deadline(PEER_TIMEOUT_MS);
    for round in 0..u64::from(rounds) {
        if !await_line(line, 2 * round + 1, deadline) {
            return None;
        }
        line.store(2 * round + 2, Ordering::Release);
    }
    Some(u64::from(rounds))
}

/// `updates` updates of `lines` lines of `bench fig3`'s structure, each
/// under its lock: cycles per update.
fn locked_updates(lines: u8, updates: u32) -> Option<u64> {
    let start = cpu::rdtsc();
    for _ in 0..updates {
        while FIG3
            .lock
            .0
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        for line in FIG3.lines.iter().take(usize::from(lines)) {
            line.0[0].fetch_add(1, Ordering::Relaxed);
        }
        FIG3.lock.0.store(0, Ordering::Release);
    }
    Some((cpu::rdtsc() - start) / u64::from(updates.max(1)))
}

/// The handler side of the IPI broadcast: invalidate, then count.
pub fn answer_ipi_shootdown(local: &CoreLocal) {
    let slot = &SHOOTDOWN_SLOTS[local.id].0;
    paging::invalidate(slot.page.load(Ordering::Acquire));
    let initiator = slot.initiator.load(Ordering::Acquire);
    SHOOTDOWN_ACKS[initiator].0.fetch_add(1, Ordering::AcqRel);
}

fn ipi_shootdown(local: &CoreLocal, recorder: &Recorder, targets: &[usize]) -> Option<u64> {
    let acks = &SHOOTDOWN_ACKS[local.id].0;
    acks.store(0, Ordering::Release);
    let start = cpu::rdtsc();
    for &target in targets {
        let slot = &SHOOTDOWN_SLOTS[target].0;
        slot.page.store(SHOOTDOWN_PAGE, Ordering::Release);
        slot.initiator.store(local.id, Ordering::Release);
        send_ipi(local, recorder, target, idt::SHOOTDOWN);
    }
    paging::invalidate(SHOOTDOWN_PAGE);
    let deadline = deadline(PEER_TIMEOUT_MS);
    while acks.load(Ordering::Acquire) < targets.len() as u64 {
        if cpu::rdtsc() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
    Some(cpu::rdtsc() - start)
}

/// Makes `measure`: cycles, or `None` if the other side did not answer in
/// time.
pub fn run(local: &CoreLocal, recorder: &Recorder, measure: &Measure) -> Option<u64> {
    match *measure {
        Measure::IpiRoundTrips { peer, rounds } => {
            let samples: Result<Vec<u64>, NoAnswer> = (0..rounds)
                .map(|_| ipi_round_trip(local, recorder, usize::from(peer.0), PEER_TIMEOUT_MS))
                .collect();
            samples.ok().map(|samples| summary(samples).0)
        }
        Measure::SharedLine { peer, rounds } => shared_line(local.id, usize::from(peer.0), rounds),
        Measure::SharedLineAnswer { lead, rounds } => {
            answer_shared_line(usize::from(lead.0), local.id, rounds)
        }
        Measure::LockedUpdates { lines, updates } => locked_updates(lines, updates),
        Measure::IpiShootdown { ref targets } => {
            let targets: Vec<usize> = targets.iter().map(|core| usize::from(core.0)).collect();
            ipi_shootdown(local, recorder, &targets)
        }
    }
}
