//! The shell's `vm` commands: proposals of the test space's mappings from
//! any core, this core's replica checked against its page tables, every
//! core's replica hash, the holders, and storms.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use atoll_arch::cpu;
use atoll_monitor::vm::{
    SPAN_BAD_RANGE, SPAN_DONE, SPAN_PAGES_MAPPED, TEST_SPACE, TEST_SPACE_BASE, TEST_SPACE_PAGES,
    VmHash, VmHashReply, VmPropose, VmSpan, VmSpanned, VmStorm, VmStormDone, page_address,
};
use atoll_replica::Replica;

pub use atoll_monitor::vm::Change;

use atoll_monitor::{CallError, Ticket};

use super::ask::{ask, ask_all, call_timeout_ms, check_core, check_running};
use crate::host::Core;

/// Pages a storm works on: few, so that proposals collide.
const STORM_PAGES: u32 = 8;

/// `vm map` or `vm unmap`: core `target` proposes the change, and the
/// shell prints how it ended, in the same words whichever core it was.
pub fn propose(core: &Core, change: Change, target: usize, page: u32) -> Result<(), String> {
    let command = match change {
        Change::Map => "vm map",
        Change::Unmap => "vm unmap",
    };
    check_running(core, command, target)?;
    if page >= TEST_SPACE_PAGES {
        return Err(format!(
            "{command}: page {page} is outside the test space (pages 0 to {})",
            TEST_SPACE_PAGES - 1
        ));
    }
    let request = VmPropose {
        change: change as u8,
        page,
    };
    let done = ask(core, target, request)
        .map_err(|error| format!("{command} {target} {page}: {error}"))?;
    if done.page != page {
        return Err(format!(
            "{command} {target} {page}: the answer is about page {}",
            done.page
        ));
    }
    if done.committed() {
        println!(
            "{command} {target} {page}: {:#x} {}",
            page_address(page),
            done.describe()
        );
        Ok(())
    } else {
        Err(format!("{command} {target} {page}: {}", done.describe()))
    }
}

/// `vm show`: the committed mappings of this core's replica, its hash, and
/// whether this core's page tables agree with each.
pub fn show(core: &Core) {
    let monitor = core.monitor();
    let replica = monitor.mappings().replica();
    let tables = core.local.page_tables();
    let mut mapped = 0;
    for entry in replica
        .entries()
        .into_iter()
        .filter(|entry| entry.space == TEST_SPACE)
    {
        let page = (entry.vaddr - TEST_SPACE_BASE) / 4096;
        if let Some(mapping) = entry.committed {
            mapped += 1;
            match tables.read_mapped(entry.vaddr) {
                Some(owner) => println!(
                    "  page {page:>4}  {:#x} -> frame {:#x} (core {owner}'s)  page tables agree",
                    entry.vaddr, mapping.paddr
                ),
                None => println!(
                    "  page {page:>4}  {:#x} -> frame {:#x}  NOT in this core's page tables",
                    entry.vaddr, mapping.paddr
                ),
            }
        }
        if let Some((id, _)) = entry.pending {
            println!(
                "  page {page:>4}  pending change of proposal {}:{}",
                id.origin.0, id.seq
            );
        }
    }
    println!(
        "vm show: core {}: {mapped} pages mapped; replica hash {:#018x}",
        core.id,
        replica.hash()
    );
}

/// Every running core's replica hash and mapped pages, by core.
fn reports(core: &Core) -> Result<Vec<(usize, VmHashReply)>, String> {
    ask_all(core, core.members().into_iter().map(|id| (id, VmHash {})))
        .into_iter()
        .map(|(id, reply)| reply.map(|reply| (id, reply)))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("vm hash: {error}"))
}

/// `vm hash`: every member holder's replica hash (over its mappings and
/// its locks), printed; the hash if they agree and no page is locked, as
/// at rest it must not be.
pub fn hashes(core: &Core) -> Result<u64, String> {
    let holders = core.monitor().mappings().holders();
    let mut hashes = Vec::new();
    let mut locks = 0;
    for (id, reply) in reports(core)?
        .into_iter()
        .filter(|&(id, _)| holders.contains(atoll_monitor::CoreId(id as u16)))
    {
        println!(
            "vm hash: core {id}: replica hash {:#018x}, {} pages mapped, {} locked",
            reply.hash, reply.mapped, reply.locks
        );
        hashes.push(reply.hash);
        locks += reply.locks;
    }
    match hashes.first() {
        Some(_) if locks > 0 => Err(format!("vm hash: {locks} pages left locked")),
        Some(&first) if hashes.iter().all(|&hash| hash == first) => {
            println!("vm hash: all {} replicas agree", hashes.len());
            Ok(first)
        }
        _ => Err(String::from("vm hash: the replicas differ")),
    }
}

/// `vm span`: cores `first` to `last` hold the test space from now on.
pub fn span(core: &Core, first: usize, last: usize) -> Result<(), String> {
    check_core(core, "vm span", last)?;
    if first > last {
        return Err(format!(
            "vm span: {first} to {last} is an empty range of cores"
        ));
    }
    if let Some((id, report)) = reports(core)?
        .into_iter()
        .find(|(_, report)| report.mapped > 0)
    {
        return Err(format!(
            "vm span: core {id} has {} pages mapped; unmap them first",
            report.mapped
        ));
    }
    let request = VmSpan {
        first: first as u16,
        last: last as u16,
    };
    for (id, reply) in ask_all(
        core,
        core.members().into_iter().map(|id| (id, request.clone())),
    ) {
        match reply.map_err(|error| format!("vm span: {error}"))? {
            VmSpanned { refused: SPAN_DONE } => {}
            VmSpanned {
                refused: SPAN_BAD_RANGE,
            } => return Err(format!("vm span: core {id} has no cores {first} to {last}")),
            VmSpanned {
                refused: SPAN_PAGES_MAPPED,
            } => return Err(format!("vm span: core {id} has pages mapped")),
            VmSpanned { refused } => {
                return Err(format!("vm span: core {id} refused ({refused})"));
            }
        }
    }
    println!("vm span: cores {first} to {last} hold the test space");
    Ok(())
}

/// A storm under way: each member's call, made with the shell going on.
pub struct Storm {
    operations: u32,
    /// On each core's own pages: every proposal must commit.
    own: bool,
    calls: Vec<(usize, Ticket)>,
}

/// `vm storm`: every member proposes `operations` maps and unmaps of a few
/// pages at once; then every replica must agree. With `own`, each member's
/// pages are its own, so every proposal must commit.
pub fn storm(core: &Core, operations: u32, own: bool) -> Result<(), String> {
    let started = start_storm(core, operations, own);
    finish_storm(core, started)
}

/// `vm storm start`: the storm of `vm storm`, whose calls the shell does
/// not wait for until `vm storm wait`; one at a time.
pub fn storm_start(
    core: &Core,
    running: &mut Option<Storm>,
    operations: u32,
) -> Result<(), String> {
    if running.is_some() {
        return Err(String::from(
            "vm storm start: a storm is under way; `vm storm wait` for it first",
        ));
    }
    let storm = start_storm(core, operations, false);
    println!(
        "vm storm start: {} cores propose {operations} changes each",
        storm.calls.len()
    );
    *running = Some(storm);
    Ok(())
}

/// `vm storm wait`.
pub fn storm_wait(core: &Core, running: &mut Option<Storm>) -> Result<(), String> {
    let storm = running
        .take()
        .ok_or_else(|| String::from("vm storm wait: no storm was started"))?;
    finish_storm(core, storm)
}

fn start_storm(core: &Core, operations: u32, own: bool) -> Storm {
    let request = VmStorm {
        operations,
        pages: STORM_PAGES,
        seed: cpu::rdtsc() as u32,
        own,
    };
    let timeout = call_timeout_ms();
    let calls = core
        .members()
        .into_iter()
        .map(|id| (id, core.call(id, request.clone(), timeout)))
        .collect();
    Storm {
        operations,
        own,
        calls,
    }
}

/// Waits for every core's storm: each one that runs must have finished
/// every proposal, committed or aborted. A core that stopped mid-storm
/// took its count with it (its proposals in flight were resolved by the
/// others, which the replicas show); it is reported, not an error. Then
/// every replica must agree, with no page left locked.
fn finish_storm(core: &Core, storm: Storm) -> Result<(), String> {
    let (mut committed, mut aborted, mut timed_out) = (0, 0, 0);
    let (mut finished, mut stopped) = (0u32, Vec::new());
    for (id, ticket) in storm.calls {
        match core.wait(ticket) {
            Ok(reply) => {
                let label = reply.label();
                let done = reply
                    .take::<VmStormDone>()
                    .ok_or_else(|| format!("vm storm: core {id} answered {label}"))?;
                committed += done.committed;
                aborted += done.aborted;
                timed_out += done.timed_out;
                finished += 1;
            }
            Err(CallError::Down { .. } | CallError::NotRunning { .. }) => stopped.push(id),
            Err(error) => return Err(format!("vm storm: core {id} did not finish: {error}")),
        }
    }
    let proposed = storm.operations * finished;
    println!(
        "vm storm: {proposed} proposals from {finished} cores: {committed} committed, {aborted} aborted ({timed_out} for want of a vote in time)"
    );
    if !stopped.is_empty() {
        println!("vm storm: cores that stopped mid-storm: {stopped:?}");
    }
    if committed + aborted != proposed {
        return Err(format!(
            "vm storm: {} proposals did not finish",
            proposed.abs_diff(committed + aborted)
        ));
    }
    if storm.own && aborted > 0 {
        return Err(format!(
            "vm storm: {aborted} proposals on pages no other core proposes for were aborted"
        ));
    }
    hashes(core).map(|_| ())
}
