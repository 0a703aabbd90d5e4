//! The shell's commands about the machine and its cores: `help`, `cores`,
//! `mem`, `ipi`, `fault`, `hang`, `scribble`, `core off` and `core on`,
//! `view`, `stall` and `halt`.

use alloc::format;
use alloc::string::String;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use atoll_arch::percore::TIMER_HZ;
use atoll_arch::smp::{self, CoreStart};
use atoll_arch::{channels, cpu, power};
use atoll_frames::FRAME_SIZE;
use atoll_monitor::CoreId;
use atoll_monitor::control::{CoreReport, CoreReported, Scribble, Scribbled, Stall, Stalled};
use atoll_monitor::membership::{ChannelsReset, ResetChannels};
use atoll_monitor::vm::{VmHash, VmHashReply};
use atoll_shell::{Victim, help_text};

use super::ask::{CoreState, ask, ask_all, check_core, core_state};
use crate::facts::protocol_name;
use crate::host::Core;
use crate::measure;
use crate::shared::boot_facts;

const IPI_TIMEOUT_MS: u64 = 1000;
const FAULT_TIMEOUT_MS: u64 = 2000;
/// How long `core on` waits for the view to take the core in.
const JOIN_TIMEOUT_MS: u64 = 10_000;

pub fn help() {
    let width = help_text().map(|(usage, _)| usage.len()).max().unwrap_or(0);
    for (usage, summary) in help_text() {
        println!("  {usage:<width$}  {summary}");
    }
}

/// What each core reports of its timer ticks and free frames, by core:
/// asked of the members of this core's view; `None` for the others, and
/// for a member that did not answer.
fn counters(core: &Core) -> Vec<Option<(u64, u64)>> {
    let mut counters = alloc::vec![None; boot_facts().cores.len()];
    let asks = core.members().into_iter().map(|id| (id, CoreReport {}));
    for (id, reply) in ask_all(core, asks) {
        if let Ok(CoreReported { ticks, free_frames }) = reply {
            counters[id] = Some((ticks, free_frames));
        }
    }
    counters
}

/// Each core's state as this core's view has it (a hung core runs until
/// the view leaves it out), and the ticks and free frames the members
/// report (`-` for the others).
pub fn show_cores(shell: &Core) {
    let counters = counters(shell);
    println!("core  apic  state     ticks  free-frames  view");
    for (id, core) in boot_facts().cores.iter().enumerate() {
        let state = core_state(shell, id);
        let member = match state {
            CoreState::Running => "member",
            CoreState::Offline | CoreState::Stopped => "out",
        };
        let (ticks, free_frames) = match counters[id] {
            Some((ticks, free_frames)) => (format!("{ticks}"), format!("{free_frames}")),
            None => (String::from("-"), String::from("-")),
        };
        println!(
            "{id:>4}  {:>4}  {:<8}  {ticks:>5}  {free_frames:>11}  {member}",
            core.apic_id,
            state.name(),
        );
    }
}

pub fn show_memory(shell: &Core) {
    let facts = boot_facts();
    let counters = counters(shell);
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
        let free_frames = counters[id].map_or(String::from("-"), |(_, free)| format!("{free}"));
        println!(
            "{id:>4}  {start:#012x}-{end:#012x}  {:>8}  {free_frames:>11}",
            (end - start) >> 20,
        );
    }
    println!(
        "frames are {FRAME_SIZE} bytes; each pool holds its bitmap, core-local block, heap and stacks"
    );
}

pub fn ipi(core: &Core, target: usize) -> Result<(), String> {
    if check_core(core, "ipi", target)? == CoreState::Offline {
        return Err(format!(
            "ipi {target}: core {target} is offline (it never started)"
        ));
    }
    let cycles = measure::ipi_round_trip(core.local, &core.recorder, target, IPI_TIMEOUT_MS)
        .map_err(|_| {
            format!(
                "ipi {target}: no answer within {IPI_TIMEOUT_MS} ms (core {target} is {})",
                core_state(core, target).name()
            )
        })?;
    println!("ipi {target}: round trip {cycles} cycles");
    Ok(())
}

fn check_other_running(command: &str, core: &Core, target: usize) -> Result<(), String> {
    let state = check_core(core, command, target)?;
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
    let (epoch, ms) = wait_left_out(core, target, "fault")?;
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
    let epoch = leave(core, target, "core off")?;
    println!(
        "core off {target}: view {epoch} left core {target} out, and it halted with interrupts off"
    );
    Ok(())
}

/// `target` leaves the view by agreement and halts (`core off`); the
/// epoch of the view without it.
fn leave(core: &Core, target: usize, command: &str) -> Result<u32, String> {
    check_other_running(command, core, target)?;
    if !core
        .monitor()
        .view()
        .members
        .contains(CoreId(target as u16))
    {
        return Err(format!("{command} {target}: core {target} is not a member"));
    }
    core.remove(target);
    let (epoch, _) = wait_left_out(core, target, command)?;
    Ok(epoch)
}

/// A core back in the view, by [`rejoin`].
struct Rejoined {
    incarnation: u32,
    epoch: u32,
    /// From the start-up IPIs to the view that holds it, and to its
    /// answer once it has caught up.
    joined_ms: u64,
    caught_up_ms: u64,
    mapped: u32,
    hash: u64,
}

/// `core on <core>`: starts `target` again and waits until it has rejoined
/// and caught up ([`rejoin`]).
pub fn core_on(
    core: &Core,
    incarnations: &mut BTreeMap<usize, u32>,
    target: usize,
) -> Result<(), String> {
    let back = rejoin(core, incarnations, target, "core on")?;
    println!(
        "core on {target}: core {target} started again (incarnation {}); view {} took it in after {} ms; it caught up after {} ms: {} pages mapped, replica hash {:#x}",
        back.incarnation, back.epoch, back.joined_ms, back.caught_up_ms, back.mapped, back.hash
    );
    Ok(())
}

/// `core cycle <core> <times>`: `core off`, then `core on`, `times` times,
/// stopping at the first that fails; then how long the rejoins took.
pub fn core_cycle(
    core: &Core,
    incarnations: &mut BTreeMap<usize, u32>,
    target: usize,
    times: u32,
) -> Result<(), String> {
    let mut joins = Vec::new();
    let mut catch_ups = Vec::new();
    let mut last = None;
    for cycle in 1..=times {
        let failed =
            |error: String| format!("core cycle {target}: cycle {cycle} of {times}: {error}");
        leave(core, target, "core off").map_err(failed)?;
        let back = rejoin(core, incarnations, target, "core on").map_err(failed)?;
        joins.push(back.joined_ms);
        catch_ups.push(back.caught_up_ms);
        last = Some(back);
    }
    let Some(last) = last else {
        return Err(format!("core cycle {target}: no cycle asked for"));
    };
    joins.sort_unstable();
    catch_ups.sort_unstable();
    let median = |values: &[u64]| values[values.len() / 2];
    println!(
        "core cycle {target}: {times} of {times} off/on cycles; now incarnation {} in view {}, {} pages mapped, replica hash {:#x}; rejoining took median {} ms (max {}), catching up median {} ms (max {})",
        last.incarnation,
        last.epoch,
        last.mapped,
        last.hash,
        median(&joins),
        joins[joins.len() - 1],
        median(&catch_ups),
        catch_ups[catch_ups.len() - 1]
    );
    Ok(())
}

/// Starts `target` again (`core on`): `target`, which left the view and stopped (by `core
/// off`, `fault`, `hang` or `scribble`), starts again as a new kernel with
/// the next incarnation number, rejoins by agreement and catches up.
///
/// First this core holds `target` in INIT, and every other core outside
/// the view with it: whatever they ran is gone. Then every member starts
/// its rings with `target` afresh (`ResetChannels`: it drops its old ends
/// and what it queued for the old kernel, zeroes both rings and takes new
/// ends), and this core zeroes the rings between `target` and the other
/// cores outside the view; so the new kernel reads nothing that was sent to
/// the old one, and nobody reads what the old one sent. Then it sends the
/// start-up IPIs. The new kernel asks this core to join; once the view
/// holds it, it asks this core for a snapshot of the replicas and serves
/// only after (`catchup`), which the `VmHash` asked of it here waits for.
fn rejoin(
    core: &Core,
    incarnations: &mut BTreeMap<usize, u32>,
    target: usize,
    command: &str,
) -> Result<Rejoined, String> {
    let state = check_core(core, command, target)?;
    let id = CoreId(target as u16);
    if target == core.id {
        return Err(format!(
            "{command} {target}: core {target} runs this shell, and runs"
        ));
    }
    if core.monitor().is_member(id) {
        return Err(format!(
            "{command} {target}: core {target} is a member of view {}; `core off {target}` first",
            core.monitor().view().epoch
        ));
    }
    if state == CoreState::Offline {
        return Err(format!(
            "{command} {target}: core {target} never joined (it did not start at boot); only a core that left can come back"
        ));
    }
    let facts = boot_facts();
    let outside: Vec<usize> = (0..facts.cores.len())
        .filter(|&other| other != core.id && !core.monitor().is_member(CoreId(other as u16)))
        .collect();
    for &other in &outside {
        smp::park(core.local.lapic, other, facts.cores[other].apic_id);
    }
    let resets = core
        .members()
        .into_iter()
        .map(|member| (member, ResetChannels { core: id.0 }));
    for (member, reset) in ask_all(core, resets) {
        match reset {
            Ok(ChannelsReset { reset: true }) => {}
            Ok(ChannelsReset { reset: false }) => {
                return Err(format!(
                    "{command} {target}: core {member} refused to reset its rings with core {target}: it counts it a member; core {target} stays parked"
                ));
            }
            Err(error) => {
                return Err(format!(
                    "{command} {target}: core {member} did not reset its rings with core {target}: {error}; core {target} stays parked"
                ));
            }
        }
    }
    for &other in outside.iter().filter(|&&other| other != target) {
        channels::clear_pair(target, other);
    }
    let incarnation = incarnations.entry(target).or_insert(0);
    *incarnation += 1;
    let incarnation = *incarnation;
    let entry = &facts.cores[target];
    let start = CoreStart {
        core: target,
        apic_id: entry.apic_id,
        stack_top: entry.stack_top,
        vector: (facts.trampoline_page / 4096) as u8,
        tsc_per_ms: facts.tsc_per_ms,
        send_startup: true,
        incarnation,
    };
    let started = cpu::rdtsc();
    if !smp::start_core(core.local.lapic, &start) {
        return Err(format!(
            "{command} {target}: core {target} did not answer its start-up IPIs within {} ms",
            smp::ALIVE_TIMEOUT_MS
        ));
    }
    let deadline = started + JOIN_TIMEOUT_MS * facts.tsc_per_ms;
    let view = core.idle_until(|| {
        let view = core.monitor().view();
        (view.members.contains(id) || cpu::rdtsc() > deadline).then_some(view)
    });
    if !view.members.contains(id) {
        return Err(format!(
            "{command} {target}: core {target} started (incarnation {incarnation}) but view {} does not hold it after {JOIN_TIMEOUT_MS} ms",
            view.epoch
        ));
    }
    let joined_ms = (cpu::rdtsc() - started) / facts.tsc_per_ms;
    // Answered only once the new kernel has caught up.
    let VmHashReply { hash, mapped, .. } = ask(core, target, VmHash {})
        .map_err(|error| format!("{command} {target}: no replica report: {error}"))?;
    Ok(Rejoined {
        incarnation,
        epoch: view.epoch,
        joined_ms,
        caught_up_ms: (cpu::rdtsc() - started) / facts.tsc_per_ms,
        mapped,
        hash,
    })
}

/// `scribble <core> <victim>`: `target` writes a byte at the start of
/// `victim`'s span (its frame pool's bitmap), as a stray pointer would. Its
/// page tables do not map another core's memory, so the write faults on
/// `target`, which stops and is left out; `victim` runs on untouched. With
/// `statics`, it writes into the kernel's statics (the boot facts), which
/// every core maps read-only: the same fault.
pub fn scribble(core: &Core, target: usize, victim: Victim) -> Result<(), String> {
    check_other_running("scribble", core, target)?;
    let (name, whose, address) = match victim {
        Victim::Core(victim) => {
            let victim = victim as usize;
            check_core(core, "scribble", victim)?;
            if victim == target {
                return Err(format!(
                    "scribble {target} {victim}: a core's own memory is its to write; pick another victim"
                ));
            }
            let whose = format!("core {victim}'s memory");
            (
                format!("{victim}"),
                whose,
                boot_facts().cores[victim].span.0,
            )
        }
        Victim::Statics => (
            String::from("statics"),
            String::from("the kernel's statics"),
            &raw const crate::shared::BOOT as u64,
        ),
    };
    let Scribbled {} = ask(core, target, Scribble { address })
        .map_err(|error| format!("scribble {target} {name}: {error}"))?;
    let (epoch, ms) = wait_left_out(core, target, "scribble")?;
    println!(
        "scribble {target} {name}: core {target} wrote to {whose} at {address:#x}, took a page fault and stopped; view {epoch} left it out {ms} ms later; the others run on"
    );
    Ok(())
}

/// Waits until this core's view has left `target` out: nothing tells the
/// others that it stopped, and their detectors find its silence; so the
/// next command runs in the new view. Returns that view's epoch and the
/// milliseconds since the command acted.
fn wait_left_out(core: &Core, target: usize, command: &str) -> Result<(u32, u64), String> {
    let acted = atoll_arch::cpu::rdtsc();
    let suspect_ms = core.monitor().detector().suspect_after * 1000 / TIMER_HZ;
    let limit_ms = 3 * suspect_ms + FAULT_TIMEOUT_MS;
    let deadline = acted + limit_ms * boot_facts().tsc_per_ms;
    let view = core.idle_until(|| {
        let view = core.monitor().view();
        let now = atoll_arch::cpu::rdtsc();
        (!view.members.contains(CoreId(target as u16)) || now > deadline).then_some(view)
    });
    if view.members.contains(CoreId(target as u16)) {
        return Err(format!(
            "{command}: core {target} is still in view {} after {limit_ms} ms",
            view.epoch
        ));
    }
    let ms = (atoll_arch::cpu::rdtsc() - acted) / boot_facts().tsc_per_ms;
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

/// `sleep <ms>`: waits that long, as the shell waits for a process:
/// running this core's processes and answering the other cores.
pub fn sleep(core: &Core, ms: u32) {
    let until = cpu::rdtsc() + u64::from(ms) * boot_facts().tsc_per_ms;
    core.idle_until(|| (cpu::rdtsc() >= until).then_some(()));
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
