//! `bench shootdown`: how long it takes the boot core to invalidate a page
//! in the TLBs of 1 up to all other cores, four ways, measured in one boot:
//!
//! 1. an IPI to every target and one shared counter they all increment
//!    (how shared-memory kernels do it; the baseline);
//! 2. URPC messages to every target, each acknowledging (unicast);
//! 3. multicast through one aggregator that fans out (flat);
//! 4. multicast down the system knowledge base's tree: one aggregator per
//!    NUMA node, the nearest by measured round trip, farthest group first.
//!
//! Methods 2 to 4 are the single-phase commit of `atoll-proto`, run by the
//! node's replicated-state code exactly as an unmap's shootdown is.

use crate::arch::percore::CoreLocal;
use crate::arch::{cpu, idt, paging};
use crate::node::Stats;
use crate::shared::{BOARD, CoreState, boot_facts};
use crate::vm::{self, Requester};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use atoll_node::{Completion, Request, SpaceId};
use atoll_proto::Shape;
use core::sync::atomic::Ordering;

/// Shootdowns per method and target count; the medians are reported.
const ROUNDS: usize = 24;
const TIMEOUT_MS: u64 = 2000;
/// The page every method invalidates (it need not be mapped).
const PAGE: u64 = vm::TEST_SPACE_BASE;

/// The handler side of the IPI broadcast: invalidate, then count.
pub fn answer_ipi_shootdown(local: &CoreLocal) {
    let record = BOARD.core(local.id);
    paging::invalidate(record.shootdown_page.load(Ordering::Acquire));
    let initiator = record.shootdown_from.load(Ordering::Acquire);
    BOARD
        .core(initiator)
        .shootdown_acks
        .fetch_add(1, Ordering::AcqRel);
}

fn ipi_broadcast(local: &CoreLocal, targets: &[usize]) -> Option<u64> {
    let acks = &BOARD.core(local.id).shootdown_acks;
    acks.store(0, Ordering::Release);
    let start = cpu::rdtsc();
    for &target in targets {
        let record = BOARD.core(target);
        record.shootdown_page.store(PAGE, Ordering::Release);
        record.shootdown_from.store(local.id, Ordering::Release);
        local
            .lapic
            .send_ipi(boot_facts().cores[target].apic_id, idt::SHOOTDOWN);
    }
    paging::invalidate(PAGE);
    let deadline = start + TIMEOUT_MS * boot_facts().tsc_per_ms;
    while acks.load(Ordering::Acquire) < targets.len() as u64 {
        if cpu::rdtsc() > deadline {
            return None;
        }
        core::hint::spin_loop();
    }
    Some(cpu::rdtsc() - start)
}

fn message_shootdown(local: &CoreLocal, space: SpaceId, shape: Shape) -> Option<u64> {
    let start = cpu::rdtsc();
    let request = Request::Shootdown { space, vaddr: PAGE };
    let id = vm::submit(local, request, shape, Requester::Here).ok()?;
    match vm::wait_finished(local, id, TIMEOUT_MS)? {
        Completion::ShootdownDone { report, .. } if report.is_complete() => {
            Some(cpu::rdtsc() - start)
        }
        _ => None,
    }
}

const METHODS: [&str; 4] = ["ipi-broadcast", "unicast", "flat-multicast", "skb-tree"];

/// One shootdown by method `index` (in `METHODS` order).
fn shoot(local: &CoreLocal, method: usize, targets: &[usize], space: SpaceId) -> Option<u64> {
    match method {
        0 => ipi_broadcast(local, targets),
        1 => message_shootdown(local, space, Shape::Unicast),
        2 => message_shootdown(local, space, Shape::Flat),
        _ => message_shootdown(local, space, Shape::Planned),
    }
}

pub fn run(local: &CoreLocal) -> Result<(), String> {
    let facts = boot_facts();
    if local.id != facts.boot_core {
        return Err(String::from("bench shootdown: runs on the boot core"));
    }
    println!(
        "bench shootdown: from core {}, medians of {ROUNDS} rounds, TSC cycles (ratio to ipi-broadcast)",
        local.id
    );
    crate::skb::show_tree(local, local.id)?;
    println!(
        "targets  {:>14}  {:>20}  {:>20}  {:>20}",
        METHODS[0], METHODS[1], METHODS[2], METHODS[3]
    );
    for (holders, space) in vm::shootdown_spaces() {
        let targets: Vec<usize> = holders
            .into_iter()
            .filter(|&core| core != local.id)
            .collect();
        if let Some(&down) = targets
            .iter()
            .find(|&&core| BOARD.core(core).state() != CoreState::Running)
        {
            println!("{:>7}  skipped: core {down} is not running", targets.len());
            continue;
        }
        let mut samples: [Vec<u64>; 4] = Default::default();
        for _ in 0..ROUNDS {
            for (method, samples) in samples.iter_mut().enumerate() {
                let cycles = shoot(local, method, &targets, space).ok_or_else(|| {
                    format!(
                        "bench shootdown: {} to {} cores did not complete",
                        METHODS[method],
                        targets.len()
                    )
                })?;
                samples.push(cycles);
            }
        }
        let medians = samples.map(|samples| Stats::of(samples).median);
        let ratio = |cycles: u64| cycles as f64 / medians[0].max(1) as f64;
        println!(
            "{:>7}  {:>14}  {:>12} ({:>5.2})  {:>12} ({:>5.2})  {:>12} ({:>5.2})",
            targets.len(),
            medians[0],
            medians[1],
            ratio(medians[1]),
            medians[2],
            ratio(medians[2]),
            medians[3],
            ratio(medians[3]),
        );
    }
    Ok(())
}
