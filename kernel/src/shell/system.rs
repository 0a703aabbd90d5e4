//! The shell's commands about the machine and its cores: `help`, `cores`,
//! `mem`, `ipi`, `fault`, `stall` and `halt`.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;

use atoll_arch::percore::TIMER_HZ;
use atoll_arch::power;
use atoll_frames::FRAME_SIZE;
use atoll_monitor::CoreId;
use atoll_monitor::control::{Scribble, Scribbled, Stall, Stalled};
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

/// Each core's state as it publishes it (a hung core still says
/// `running`), and whether this core's view holds it.
pub fn show_cores(shell: &Core) {
    let view = shell.monitor().view();
    println!("core  apic  state     ticks  free-frames  view");
    for (id, core) in boot_facts().cores.iter().enumerate() {
        let record = BOARD.core(id);
        let member = match view.members.contains(CoreId(id as u16)) {
            true => "member",
            false => "out",
        };
        println!(
            "{id:>4}  {:>4}  {:<8}  {:>5}  {:>11}  {member}",
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

/// Sends `target` an NMI, on which it takes a page fault wherever it is,
/// and waits until it has stopped and the others have left it out.
pub fn fault(core: &Core, target: usize) -> Result<(), String> {
    check_other_running("fault", core, target)?;
    core.local
        .lapic
        .send_nmi(boot_facts().cores[target].apic_id);
    let (epoch, ms) = wait_stopped_and_left_out(core, target, "fault")?;
    println!(
        "fault {target}: core {target} took a page fault and stopped; view {epoch} left it out {ms} ms later; the other cores run on"
    );
    Ok(())
}

/// `core off <core>`: `target` leaves the view by agreement (the others
/// drain its ring and install a view without it), and halts with
/// interrupts off when the view's commit reaches it. (The shell runs on the
/// lowest core, so the others always keep a quorum without `target`.)
pub fn core_off(core: &Core, target: usize) -> Result<(), String> {
    check_other_running("core off", core, target)?;
    if !core
        .monitor()
        .view()
        .members
        .contains(CoreId(target as u16))
    {
        return Err(format!("core off {target}: core {target} is not a member"));
    }
    core.remove(target);
    let (epoch, _) = wait_stopped_and_left_out(core, target, "core off")?;
    println!(
        "core off {target}: view {epoch} left core {target} out, and it halted with interrupts off"
    );
    Ok(())
}

/// `scribble <core> <victim>`: `target` writes a byte at the start of
/// `victim`'s span (its frame pool's bitmap), as a stray pointer would. Its
/// page tables do not map another core's memory, so the write faults on
/// `target`, which stops and is left out; `victim` runs on untouched.
pub fn scribble(core: &Core, target: usize, victim: usize) -> Result<(), String> {
    check_other_running("scribble", core, target)?;
    check_core("scribble", victim)?;
    if victim == target {
        return Err(format!(
            "scribble {target} {victim}: a core's own memory is its to write; pick another victim"
        ));
    }
    let address = boot_facts().cores[victim].span.0;
    let Scribbled {} = ask(core, target, Scribble { address })
        .map_err(|error| format!("scribble {target} {victim}: {error}"))?;
    let (epoch, ms) = wait_stopped_and_left_out(core, target, "scribble")?;
    println!(
        "scribble {target} {victim}: core {target} wrote to core {victim}'s memory at {address:#x}, took a page fault and stopped; view {epoch} left it out {ms} ms later; core {victim} runs on"
    );
    Ok(())
}

/// Waits until `target` has stopped (by its board record) and then until
/// this core's view has left it out: nothing tells the others, whose
/// detectors find the silence, so that the next command runs in the new
/// view. Returns that view's epoch and the milliseconds from the stop.
fn wait_stopped_and_left_out(
    core: &Core,
    target: usize,
    command: &str,
) -> Result<(u32, u64), String> {
    let deadline = atoll_arch::cpu::rdtsc() + FAULT_TIMEOUT_MS * boot_facts().tsc_per_ms;
    core.idle_until(|| {
        if BOARD.core(target).state() == CoreState::Stopped {
            Some(Ok(()))
        } else if atoll_arch::cpu::rdtsc() > deadline {
            Some(Err(format!(
                "{command}: core {target} did not stop within {FAULT_TIMEOUT_MS} ms"
            )))
        } else {
            None
        }
    })?;
    let stopped = atoll_arch::cpu::rdtsc();
    let suspect_ms = core.monitor().detector().suspect_after * 1000 / TIMER_HZ;
    let limit_ms = 3 * suspect_ms + FAULT_TIMEOUT_MS;
    let deadline = stopped + limit_ms * boot_facts().tsc_per_ms;
    let view = core.idle_until(|| {
        let view = core.monitor().view();
        let now = atoll_arch::cpu::rdtsc();
        (!view.members.contains(CoreId(target as u16)) || now > deadline).then_some(view)
    });
    if view.members.contains(CoreId(target as u16)) {
        return Err(format!(
            "{command}: core {target} stopped, but is still in view {} after {limit_ms} ms",
            view.epoch
        ));
    }
    let ms = (atoll_arch::cpu::rdtsc() - stopped) / boot_facts().tsc_per_ms;
    Ok((view.epoch, ms))
}

/// Sends `target` the interrupt on which it stops answering, interrupts
/// off, and returns at once: nothing tells the others, whose detectors
/// must find it.
pub fn hang(core: &Core, target: usize) -> Result<(), String> {
    check_other_running("hang", core, target)?;
    core.local
        .lapic
        .send_ipi(boot_facts().cores[target].apic_id, atoll_arch::idt::HANG);
    let tick = core.monitor().ticks();
    println!(
        "hang {target}: core {target} stops answering with interrupts off at tick {tick}; the failure detector must find it"
    );
    Ok(())
}

/// This core's view: its epoch and members, when it was installed, the
/// cores it suspects, and the detector's timeouts.
pub fn view(core: &Core) {
    let monitor = core.monitor();
    let view = monitor.view();
    let detector = monitor.detector();
    let ms = |ticks: u64| ticks * 1000 / atoll_arch::percore::TIMER_HZ;
    println!(
        "view {}: cores {} (installed at tick {}, now {})",
        view.epoch,
        view.members,
        monitor.view_installed_at(),
        monitor.ticks()
    );
    println!("suspects: {}", monitor.suspects());
    println!(
        "detector: heartbeat every {} ms, suspect after {} ms of silence",
        ms(detector.heartbeat),
        ms(detector.suspect_after)
    );
}

/// `view detector <ms>`: every member suspects after `ms` of silence, with
/// heartbeats at a tenth of it; at least two ticks.
pub fn view_detector(core: &Core, ms: u32) -> Result<(), String> {
    let least = 2 * 1000 / TIMER_HZ;
    if u64::from(ms) < least {
        return Err(format!(
            "view detector: {ms} ms is shorter than two timer ticks ({least} ms)"
        ));
    }
    super::bench::set_detector_everywhere(core, u64::from(ms), "view detector")?;
    view(core);
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
