//! The boot core's path from the entry to the shell, and each other core's
//! from its start to its polling loop: read what the boot loader and firmware
//! hand over, freeze it, set up this core, start the others, fill the
//! knowledge base, and hand over to the shell.

use atoll_arch::boot::BootRegisters;
use atoll_arch::percore::{self, CoreSetup, TIMER_HZ};
use atoll_arch::phys::IdentityMap;
use atoll_arch::power::{self, ExitStatus};
use atoll_arch::smp::{self, CoreStart};
use atoll_arch::{channels, cpu, idt};
use atoll_firmware::parse_boot_info;
use atoll_monitor::{CoreId, Members};

use crate::discover::{BootError, CORE_STACK_SIZE, discover};
use crate::facts::{MAX_CORES, protocol_name};
use crate::host::Core;
use crate::shared::{BOOT, boot_facts};
use crate::{dispatch, knowledge, programs, shell, trap};

/// Kernel command-line option naming one core whose start-up IPIs are not
/// sent, so that tests can watch the boot core report and skip a core that
/// never answers.
const WITHHOLD_OPTION: &str = "atoll.test.withhold_startup=";
/// How long the cores may take to agree on the first view.
const VIEW_TIMEOUT_MS: u64 = 10_000;

fn fail(reason: impl core::fmt::Display) -> ! {
    println!("atoll: cannot boot: {reason}");
    power::exit_qemu(ExitStatus::Panic);
    cpu::halt_forever()
}

/// Sets up the core that runs it: arch's part, then its kernel, which asks
/// `sponsor` to join its view if it has one (a core that starts again, as
/// its `incarnation`: 0 at boot).
fn set_up_core(
    id: usize,
    sponsor: Option<usize>,
    incarnation: u32,
) -> Result<&'static Core, percore::InitError> {
    let facts = boot_facts();
    let entry = &facts.cores[id];
    // What this core may write besides its span: the shared region (the
    // kernel's other statics are read-only from here on), its stack (the
    // boot core's is in the image), every channel region (one ring of each
    // pair it talks over is in the other core's), the local APIC's page,
    // and the start-up trampoline page (the page a core that starts
    // another fills). No heap yet: on the stack.
    let mut writable = [(0, 0); MAX_CORES + 4];
    let cores = facts.cores.len();
    writable[0] = atoll_arch::boot::shared_region();
    writable[1] = match id == facts.boot_core {
        true => atoll_arch::boot::boot_stack(),
        false => (entry.stack_top - CORE_STACK_SIZE, entry.stack_top),
    };
    writable[2] = atoll_arch::apic::LocalApic::current().page();
    writable[3] = (facts.trampoline_page, facts.trampoline_page + 4096);
    for (slot, core) in writable[4..].iter_mut().zip(facts.cores.iter()) {
        *slot = core.channels;
    }
    let mut readable = [(0, 0); atoll_firmware::MAX_MODULES];
    for (range, module) in readable.iter_mut().zip(facts.info.modules()) {
        *range = (module.start, module.end);
    }
    let setup = CoreSetup {
        id,
        apic_id: entry.apic_id,
        span: entry.span,
        usable: &facts.usable,
        timer_count: (facts.apic_timer_per_ms * 1000 / TIMER_HZ) as u32,
        cores,
        writable: &writable[..4 + cores],
        readable: &readable[..facts.info.modules().len()],
    };
    let local = percore::init(&setup)?;
    // At boot no core asks to join: the boot core admits every core it
    // started, so that the first view holds them all.
    Core::start(local, knowledge::facts(local), sponsor, incarnation)
}

/// The boot core, from the entry.
pub fn main(registers: BootRegisters) -> ! {
    atoll_arch::serial::CONSOLE.init();
    let info = parse_boot_info(&IdentityMap, registers.eax, registers.ebx)
        .unwrap_or_else(|error| fail(BootError::BootInfo(error)));
    println!("atoll: booted via {}", protocol_name(info.protocol));
    let facts = discover(info).unwrap_or_else(|error| fail(error));
    let facts = BOOT.call_once(|| facts);
    // No heap yet: the regions go in an array on the boot stack.
    let mut regions = [(0, 0); MAX_CORES];
    for (region, entry) in regions.iter_mut().zip(facts.cores.iter()) {
        *region = entry.channels;
    }
    channels::set_up(&regions[..facts.cores.len()]);
    idt::set_handler(trap::handle);
    atoll_arch::user::set_syscall_handler(dispatch::handle);
    // The last write to the statics: once the boot core's own page tables
    // are on, every core maps them read-only.
    smp::set_entry(ap_main);
    let core = set_up_core(facts.boot_core, None, 0).unwrap_or_else(|error| fail(error));
    println!("atoll: core {} up (apic {})", core.id, core.local.apic_id);
    cpu::enable_interrupts();
    let started = start_other_cores(core);
    let view = form_first_view(core, started);
    println!(
        "atoll: {} of {} cores up",
        view.members.len(),
        facts.cores.len()
    );
    knowledge::fill_replicas(core);
    programs::report(core.local);
    shell::run(core)
}

/// Where each other core lands, on its own stack: at boot (incarnation 0),
/// or started again by the shell's core (`core on`), which it then asks to
/// join the view and catches up from.
fn ap_main(id: usize, incarnation: u32) -> ! {
    let sponsor = (incarnation > 0).then_some(boot_facts().boot_core);
    match set_up_core(id, sponsor, incarnation) {
        Ok(core) if incarnation > 0 => {
            println!(
                "atoll: core {id} up (apic {}, incarnation {incarnation}); asking core {} to join",
                core.local.apic_id,
                boot_facts().boot_core
            );
            core.run()
        }
        Ok(core) => {
            println!("atoll: core {id} up (apic {})", core.local.apic_id);
            core.run()
        }
        Err(error) => {
            println!("atoll: core {id} could not set itself up: {error}");
            crate::host::stop_this_core(Some(id))
        }
    }
}

/// Admits every core that answered its start-up IPIs (`started`, this one
/// among them) into the boot core's view and waits until they all agree on
/// it; a core that does not answer in time (it could not set itself up, or
/// is slow) is left out by the same agreement, and the boot goes on without
/// it. Returns the view.
fn form_first_view(core: &Core, started: Members) -> atoll_monitor::View {
    // The ticks that passed while this core started the others (a second
    // for each that does not answer) are fed first, so that they do not
    // count against the proposal made next.
    core.poll();
    core.admit(started);
    let deadline = cpu::rdtsc() + VIEW_TIMEOUT_MS * boot_facts().tsc_per_ms;
    let view = core.idle_until(|| {
        let monitor = core.monitor();
        let view = monitor.view();
        let settled = view.epoch > 0 && !monitor.has_timeouts();
        (view.members == started || settled || cpu::rdtsc() > deadline).then_some(view)
    });
    if view.members != started {
        println!(
            "atoll: view {}: cores {} of the {} started",
            view.epoch, view.members, started
        );
        for id in started.minus(view.members).iter() {
            println!(
                "atoll: core {} (apic {}) started but did not join view {}; skipped",
                id.0,
                boot_facts().cores[usize::from(id.0)].apic_id,
                view.epoch
            );
        }
    }
    view
}

/// Starts every core but this one, one at a time, each waited for until it
/// says it is alive. Returns the cores that did, this one included: they
/// set themselves up meanwhile, and the first view takes in those that
/// answer its proposal.
fn start_other_cores(core: &Core) -> Members {
    let facts = boot_facts();
    let vector = smp::install_trampoline(facts.trampoline_page);
    let withheld: Option<usize> =
        atoll_shell::cmdline_option(facts.info.cmdline(), WITHHOLD_OPTION)
            .and_then(|value| value.parse().ok());
    let mut started = Members::one(CoreId(core.id as u16));
    for (id, entry) in facts
        .cores
        .iter()
        .enumerate()
        .filter(|&(id, _)| id != core.id)
    {
        let send_startup = withheld != Some(id);
        if !send_startup {
            println!("atoll: test: not sending core {id} its start-up IPIs");
        }
        let start = CoreStart {
            core: id,
            apic_id: entry.apic_id,
            stack_top: entry.stack_top,
            vector,
            tsc_per_ms: facts.tsc_per_ms,
            send_startup,
            incarnation: 0,
        };
        if smp::start_core(core.local.lapic, &start) {
            started.insert(CoreId(id as u16));
        } else {
            println!(
                "atoll: core {id} (apic {}) did not start: no answer within {} ms; skipped",
                entry.apic_id,
                smp::ALIVE_TIMEOUT_MS
            );
        }
    }
    started
}
