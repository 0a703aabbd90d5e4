//! The shell's commands about the machine and its cores: `help`, `cores`,
//! `mem`, `ipi`, `fault`, `stall` and `halt`.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;

use atoll_arch::power;
use atoll_frames::FRAME_SIZE;
use atoll_monitor::control::{Stall, Stalled};
use atoll_shell::help_text;

use super::ask::{ask, check_core};
use crate::facts::protocol_name;
use crate::host::Core;
use crate::measure;
use crate::shared::{BOARD, CoreState, boot_facts};

const IPI_TIMEOUT_MS: u64 = 1000;
const FAULT_TIMEOUT_MS: u64 = 2000;

pub fn help() {
    let width = help_text().map(|(usage, _)| usage.len()).max().unwrap_or(0);
    for (usage, summary) in help_text() {
        println!("  {usage:<width$}  {summary}");
    }
}

pub fn show_cores() {
    println!("core  apic  state     ticks  free-frames");
    for (id, core) in boot_facts().cores.iter().enumerate() {
        let record = BOARD.core(id);
        println!(
            "{id:>4}  {:>4}  {:<8}  {:>5}  {:>11}",
            core.apic_id,
            record.state().name(),
            record.published.0.ticks.load(Ordering::Relaxed),
            record.published.0.free_frames.load(Ordering::Relaxed)
        );
    }
}

pub fn show_memory() {
    let facts = boot_facts();
    println!("memory map (from {}):", protocol_name(facts.info.protocol));
    for region in facts.info.memory() {
        println!(
            "  {:#014x}-{:#014x}  {:<16}  {:>8} KiB",
            region.base,
            region.base.saturating_add(region.len),
            region.kind.name(),
            region.len / 1024
        );
    }
    println!(
        "usable for frame pools: {} MiB in {} ranges",
        facts.usable.total() >> 20,
        facts.usable.iter().count()
    );
    if facts.ignored_high_memory > 0 {
        println!(
            "not used: {} MiB above the 4 GiB identity map",
            facts.ignored_high_memory >> 20
        );
    }
    if facts.pools_node_local {
        println!("frame pools: each on its core's NUMA node, or the nearest with memory");
    } else {
        println!("frame pools: carved without regard to NUMA nodes");
    }
    println!("core  pool span                      size MiB  free-frames");
    for (id, core) in facts.cores.iter().enumerate() {
        let (start, end) = core.span;
        println!(
            "{id:>4}  {start:#012x}-{end:#012x}  {:>8}  {:>11}",
            (end - start) >> 20,
            BOARD
                .core(id)
                .published
                .0
                .free_frames
                .load(Ordering::Relaxed)
        );
    }
    println!(
        "frames are {FRAME_SIZE} bytes; each pool holds its bitmap, core-local block, heap and stacks"
    );
}

pub fn ipi(core: &Core, target: usize) -> Result<(), String> {
    if check_core("ipi", target)? == CoreState::Offline {
        return Err(format!(
            "ipi {target}: core {target} is offline (it never started)"
        ));
    }
    let cycles = measure::ipi_round_trip(core.local, &core.recorder, target, IPI_TIMEOUT_MS)
        .map_err(|state| {
            format!(
                "ipi {target}: no answer within {IPI_TIMEOUT_MS} ms (core {target} is {})",
                state.name()
            )
        })?;
    println!("ipi {target}: round trip {cycles} cycles");
    Ok(())
}

fn check_other_running(command: &str, core: &Core, target: usize) -> Result<(), String> {
    let state = check_core(command, target)?;
    if target == core.id {
        return Err(format!(
            "{command} {target}: core {target} runs this shell; pick another core"
        ));
    }
    if state != CoreState::Running {
        return Err(format!(
            "{command} {target}: core {target} is {}, not running",
            state.name()
        ));
    }
    Ok(())
}

/// Asks `target` to take a page fault and waits, polling, until it has
/// stopped.
pub fn fault(core: &Core, target: usize) -> Result<(), String> {
    check_other_running("fault", core, target)?;
    BOARD
        .core(target)
        .fault_request
        .0
        .store(true, Ordering::Release);
    measure::wake(core.local, &core.recorder, target);
    let deadline = atoll_arch::cpu::rdtsc() + FAULT_TIMEOUT_MS * boot_facts().tsc_per_ms;
    core.idle_until(|| {
        if BOARD.core(target).state() == CoreState::Stopped {
            Some(Ok(()))
        } else if atoll_arch::cpu::rdtsc() > deadline {
            Some(Err(format!(
                "fault {target}: core {target} did not stop within {FAULT_TIMEOUT_MS} ms"
            )))
        } else {
            None
        }
    })?;
    println!("fault {target}: core {target} took a page fault and stopped; the other cores run on");
    Ok(())
}

/// Has `target` answer, then stop polling its rings for `ms`.
pub fn stall(core: &Core, target: usize, ms: u32) -> Result<(), String> {
    check_other_running("stall", core, target)?;
    let Stalled {} =
        ask(core, target, Stall { ms }).map_err(|error| format!("stall {target}: {error}"))?;
    println!("stall {target}: core {target} stops polling its rings for {ms} ms");
    Ok(())
}

/// Whether the shell runs an `atoll.exec=` script, where `halt` ends the
/// script and the exit status reports it.
fn scripted() -> bool {
    matches!(
        atoll_shell::exec_script_from_cmdline(boot_facts().info.cmdline()),
        Ok(Some(_))
    )
}

/// Powers off, or in a script ends it; returns if the machine runs on.
pub fn halt() -> Result<(), String> {
    let facts = boot_facts();
    if scripted() {
        return Ok(());
    }
    match &facts.power_off {
        Ok(acpi) => {
            println!("atoll: powering off");
            power::power_off(acpi, facts.tsc_per_ms);
            Ok(())
        }
        Err(error) => Err(format!("halt: no ACPI power-off: {error}")),
    }
}
