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

use super::ask::{ask, ask_all, check_core, check_running};
use crate::host::Core;
use crate::shared::running_cores;

/// Pages a storm works on: few, so that proposals collide.
const STORM_PAGES: u32 = 8;

/// `vm map` or `vm unmap`: core `target` proposes the change, and the
/// shell prints how it ended, in the same words whichever core it was.
pub fn propose(core: &Core, change: Change, target: usize, page: u32) -> Result<(), String> {
    let command = match change {
        Change::Map => "vm map",
        Change::Unmap => "vm unmap",
    };
    check_running(command, target)?;
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
    ask_all(core, running_cores().map(|id| (id, VmHash {})))
        .into_iter()
        .map(|(id, reply)| reply.map(|reply| (id, reply)))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("vm hash: {error}"))
}

/// `vm hash`: every running holder's replica hash, printed; the hash if
/// they agree.
pub fn hashes(core: &Core) -> Result<u64, String> {
    let holders = core.monitor().mappings().holders();
    let mut hashes = Vec::new();
    for (id, reply) in reports(core)?
        .into_iter()
        .filter(|&(id, _)| holders.contains(&(id as u16)))
    {
        println!(
            "vm hash: core {id}: replica hash {:#018x}, {} pages mapped",
            reply.hash, reply.mapped
        );
        hashes.push(reply.hash);
    }
    match hashes.first() {
        Some(&first) if hashes.iter().all(|&hash| hash == first) => {
            println!("vm hash: all {} replicas agree", hashes.len());
            Ok(first)
        }
        _ => Err(String::from("vm hash: the replicas differ")),
    }
}

/// `vm span`: cores `first` to `last` hold the test space from now on.
pub fn span(core: &Core, first: usize, last: usize) -> Result<(), String> {
    check_core("vm span", last)?;
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
    for (id, reply) in ask_all(core, running_cores().map(|id| (id, request.clone()))) {
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

/// `vm storm`: every running core proposes `operations` maps and unmaps of
/// a few pages at once; then every replica must agree.
pub fn storm(core: &Core, operations: u32) -> Result<(), String> {
    let request = VmStorm {
        operations,
        pages: STORM_PAGES,
        seed: cpu::rdtsc() as u32,
    };
    let replies = ask_all(core, running_cores().map(|id| (id, request.clone())));
    let cores = replies.len() as u32;
    let (mut committed, mut aborted) = (0, 0);
    for (id, reply) in replies {
        let VmStormDone {
            committed: c,
            aborted: a,
        } = reply.map_err(|error| format!("vm storm: core {id} did not finish: {error}"))?;
        committed += c;
        aborted += a;
    }
    let proposed = operations * cores;
    println!(
        "vm storm: {proposed} proposals from {cores} cores: {committed} committed, {aborted} aborted"
    );
    if committed + aborted != proposed {
        return Err(format!(
            "vm storm: {} proposals did not finish",
            proposed.abs_diff(committed + aborted)
        ));
    }
    hashes(core).map(|_| ())
}
