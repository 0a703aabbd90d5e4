//! The serial shell on the boot core: reads lines (or the `atoll.exec=`
//! script from the kernel command line), runs the commands and reports.
//! Parsing and line editing live in `atoll-shell`; this is the glue to the
//! UART and to the kernel's own state.

use crate::arch::cpu;
use crate::arch::percore::CoreLocal;
use crate::arch::power::{self, ExitStatus};
use crate::boot::protocol_name;
use crate::messages::{
    BenchPeer, NodeMessage, PingPeer, PingReport, Refusal, Refused, VmHash, VmHashReply, VmPropose,
    VmSpan, VmStorm,
};
use crate::node;
use crate::shared::{BOARD, CONSOLE, CoreState, boot_facts, running_cores};
use crate::vm::{self, VmChange};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use atoll_firmware::MemoryKind;
use atoll_frames::FRAME_SIZE;
use atoll_shell::{Command, Line, LineEditor, help_text, parse, split_script};
use core::sync::atomic::Ordering;

const PROMPT: &str = "atoll> ";
const MAX_LINE: usize = 1024;
const IPI_TIMEOUT_MS: u64 = 1000;
const FAULT_TIMEOUT_MS: u64 = 2000;

/// What a command asks of the shell once it has run.
enum Next {
    Continue,
    Halt,
}

type CommandResult = Result<Next, String>;

pub fn run(local: &'static CoreLocal) -> ! {
    match atoll_shell::exec_script_from_cmdline(boot_facts().info.cmdline()) {
        Ok(Some(script)) => run_script(local, &script),
        Ok(None) => interactive(local),
        Err(error) => {
            println!("error: {error}");
            finish_script(0, 1)
        }
    }
}

fn run_script(local: &CoreLocal, script: &str) -> ! {
    let (mut commands, mut failed) = (0, 0);
    for line in split_script(script) {
        println!("{PROMPT}{line}");
        commands += 1;
        match execute(local, line) {
            Ok(Next::Continue) => {}
            Ok(Next::Halt) => break,
            Err(error) => {
                failed += 1;
                println!("error: {error}");
            }
        }
    }
    finish_script(commands, failed)
}

fn finish_script(commands: usize, failed: usize) -> ! {
    println!("atoll: exec: {commands} commands, {failed} failed");
    power::exit_qemu(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::CommandFailed
    });
    println!("atoll: no debug-exit device; halting this core");
    cpu::halt_forever()
}

fn interactive(local: &CoreLocal) -> ! {
    let tag = local.id as u32;
    let mut editor = LineEditor::new(MAX_LINE);
    print!("{PROMPT}");
    loop {
        cpu::disable_interrupts();
        let mut busy = node::poll(local);
        while let Some(byte) = CONSOLE.read_byte(tag) {
            busy = true;
            let Some(line) = editor.feed(byte, &mut |echo| CONSOLE.write_bytes(tag, echo)) else {
                continue;
            };
            cpu::enable_interrupts();
            let outcome = match line {
                Line::Text(text) => execute(local, &text),
                Line::TooLong { len, max } => Err(format!(
                    "line too long ({len} bytes, at most {max}); ignored"
                )),
                Line::NotUtf8 { len } => Err(format!("line of {len} bytes is not UTF-8; ignored")),
                Line::Cancelled => Ok(Next::Continue),
            };
            match outcome {
                Ok(Next::Continue) => {}
                Ok(Next::Halt) => println!("error: halt: the machine did not power off"),
                Err(error) => println!("error: {error}"),
            }
            print!("{PROMPT}");
            cpu::disable_interrupts();
        }
        cpu::enable_interrupts();
        if !busy {
            // The UART raises no interrupt here; the timer tick wakes the
            // core to look again, and a message's wake-up IPI sooner.
            node::sleep(local);
        }
    }
}

fn execute(local: &CoreLocal, line: &str) -> CommandResult {
    let Some(command) = parse(line).map_err(|error| format!("{error}"))? else {
        return Ok(Next::Continue);
    };
    match command {
        Command::Help => {
            let width = help_text().map(|(usage, _)| usage.len()).max().unwrap_or(0);
            for (usage, summary) in help_text() {
                println!("  {usage:<width$}  {summary}");
            }
        }
        Command::Cores => show_cores(),
        Command::Mem => show_memory(),
        Command::Ipi { core } => ipi(local, core as usize)?,
        Command::Fault { core } => fault(local, core as usize)?,
        Command::Halt => return halt(),
        Command::UrpcPing { from, to } => urpc_ping(local, from as usize, to as usize)?,
        Command::UrpcBench => urpc_bench(local)?,
        Command::VmMap { core, page } => vm_propose(local, VmChange::Map, core as usize, page)?,
        Command::VmUnmap { core, page } => vm_propose(local, VmChange::Unmap, core as usize, page)?,
        Command::VmShow => vm::show(local),
        Command::VmHash => {
            replica_hashes(local)?;
        }
        Command::VmStorm { operations } => vm_storm(local, operations)?,
        Command::VmSpan { first, last } => vm_span(local, first as usize, last as usize)?,
        Command::BenchShootdown => crate::shootdown::run(local)?,
        Command::BenchFig3 => crate::fig3::run(local)?,
        Command::SkbFacts { predicate } => crate::skb::show_facts(local, predicate.as_deref())?,
        Command::SkbQuery { body } => crate::skb::query(local, &body)?,
        Command::SkbTree { root } => crate::skb::show_tree(local, root as usize)?,
    }
    Ok(Next::Continue)
}

fn show_cores() {
    println!("core  apic  state     ticks  free-frames");
    for (id, core) in boot_facts().cores.iter().enumerate() {
        let record = BOARD.core(id);
        println!(
            "{id:>4}  {:>4}  {:<8}  {:>5}  {:>11}",
            core.apic_id,
            record.state().name(),
            record.ticks.load(Ordering::Relaxed),
            record.free_frames.load(Ordering::Relaxed)
        );
    }
}

fn kind_name(kind: MemoryKind) -> &'static str {
    match kind {
        MemoryKind::Usable => "usable",
        MemoryKind::Reserved => "reserved",
        MemoryKind::AcpiReclaimable => "acpi-reclaimable",
        MemoryKind::AcpiNvs => "acpi-nvs",
        MemoryKind::Defective => "defective",
        MemoryKind::Other(_) => "other",
    }
}

fn show_memory() {
    let facts = boot_facts();
    println!("memory map (from {}):", protocol_name(facts.info.protocol));
    for region in facts.info.memory() {
        println!(
            "  {:#014x}-{:#014x}  {:<16}  {:>8} KiB",
            region.base,
            region.base.saturating_add(region.len),
            kind_name(region.kind),
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
            BOARD.core(id).free_frames.load(Ordering::Relaxed)
        );
    }
    println!(
        "frames are {FRAME_SIZE} bytes; each pool holds its bitmap, core-local block, heap and stacks"
    );
}

fn check_core(command: &str, core: usize) -> Result<CoreState, String> {
    let count = boot_facts().cores.len();
    if core >= count {
        return Err(format!(
            "{command}: no core {core} (cores are 0 to {})",
            count - 1
        ));
    }
    Ok(BOARD.core(core).state())
}

fn ipi(local: &CoreLocal, core: usize) -> Result<(), String> {
    if check_core("ipi", core)? == CoreState::Offline {
        return Err(format!(
            "ipi {core}: core {core} is offline (it never started)"
        ));
    }
    let cycles = node::ipi_round_trip(local, core, IPI_TIMEOUT_MS).map_err(|no_answer| {
        format!(
            "ipi {core}: no answer within {IPI_TIMEOUT_MS} ms (core {core} is {})",
            no_answer.state.name()
        )
    })?;
    println!("ipi {core}: round trip {cycles} cycles");
    Ok(())
}

fn fault(local: &CoreLocal, core: usize) -> Result<(), String> {
    let state = check_core("fault", core)?;
    if core == local.id {
        return Err(format!(
            "fault {core}: core {core} runs this shell; pick another core"
        ));
    }
    if state != CoreState::Running {
        return Err(format!(
            "fault {core}: core {core} is {}, not running",
            state.name()
        ));
    }
    if !node::request_fault(local, core, FAULT_TIMEOUT_MS) {
        return Err(format!(
            "fault {core}: core {core} did not stop within {FAULT_TIMEOUT_MS} ms"
        ));
    }
    println!("fault {core}: core {core} took a page fault and stopped; the other cores run on");
    Ok(())
}

fn halt() -> CommandResult {
    let facts = boot_facts();
    if scripted() {
        return Ok(Next::Halt);
    }
    match &facts.power_off {
        Ok(acpi) => {
            println!("atoll: powering off");
            power::power_off(acpi);
            Ok(Next::Halt)
        }
        Err(error) => Err(format!("halt: no ACPI power-off: {error}")),
    }
}

/// Whether the shell runs an `atoll.exec=` script, where `halt` ends the
/// script and the exit status reports it.
fn scripted() -> bool {
    matches!(
        atoll_shell::exec_script_from_cmdline(boot_facts().info.cmdline()),
        Ok(Some(_))
    )
}

fn nanoseconds(cycles: u64) -> u64 {
    cycles * 1_000_000 / boot_facts().tsc_per_ms
}

fn check_running(command: &str, core: usize) -> Result<(), String> {
    match check_core(command, core)? {
        CoreState::Running => Ok(()),
        state => Err(format!("{command}: core {core} is {}", state.name())),
    }
}

/// Asks `from` for its side of a measurement against `to`, or runs it here
/// when `from` is this core, and waits for the answer.
fn ask_node(local: &CoreLocal, from: usize, request: NodeMessage) -> Result<NodeMessage, String> {
    if from == local.id {
        return Ok(node::handle_here(local, request));
    }
    node::send(local, from, request);
    node::wait_for(local, from, 4 * node::PEER_TIMEOUT_MS, |answer| {
        matches!(
            answer,
            NodeMessage::PingReport(_) | NodeMessage::BenchReport(_) | NodeMessage::Refused(_)
        )
    })
    .ok_or_else(|| format!("core {from} did not answer"))
}

fn urpc_ping(local: &CoreLocal, from: usize, to: usize) -> Result<(), String> {
    check_running("urpc ping", from)?;
    check_running("urpc ping", to)?;
    if from == to {
        return Err(format!(
            "urpc ping: core {from} has no ring to itself; pick two cores"
        ));
    }
    let request = PingPeer {
        peer: to as u32,
        rounds: node::ROUNDS,
    }
    .into();
    match ask_node(local, from, request)
        .map_err(|error| format!("urpc ping {from} {to}: {error}"))?
    {
        NodeMessage::PingReport(PingReport {
            median, min, max, ..
        }) => {
            println!(
                "urpc ping {from} -> {to}: round trip median {median} cycles ({} ns), min {min}, max {max}, {} rounds",
                nanoseconds(median),
                node::ROUNDS
            );
            Ok(())
        }
        other => Err(format!("urpc ping {from} {to}: {}", refusal_text(&other))),
    }
}

fn refusal_text(answer: &NodeMessage) -> &'static str {
    match answer {
        NodeMessage::Refused(Refused { reason }) => Refusal::text(*reason),
        _ => "unexpected answer",
    }
}

fn urpc_bench(local: &CoreLocal) -> Result<(), String> {
    let running: Vec<usize> = running_cores().collect();
    if running.len() < 2 {
        return Err(String::from("urpc bench: needs at least two running cores"));
    }
    println!(
        "urpc bench: medians of {} round trips; stream of one-way messages; cycles (ns)",
        node::ROUNDS
    );
    println!(
        "from  to   urpc-rtt          ipi-rtt           line-rtt          urpc/line  urpc/ipi  stream/msg"
    );
    let mut pairs = 0;
    let mut ratios_to_line = Vec::new();
    for &from in &running {
        for &to in running.iter().filter(|&&to| to != from) {
            let report = match ask_node(local, from, BenchPeer { peer: to as u32 }.into())
                .map_err(|error| format!("urpc bench {from} -> {to}: {error}"))?
            {
                NodeMessage::BenchReport(report) => report,
                other => {
                    return Err(format!(
                        "urpc bench {from} -> {to}: {}",
                        refusal_text(&other)
                    ));
                }
            };
            let ratio =
                |numerator: u64, denominator: u64| numerator as f64 / denominator.max(1) as f64;
            ratios_to_line.push(ratio(report.urpc_round_trip, report.shared_line_round_trip));
            println!(
                "{from:>4}  {to:>2}   {:>7} ({:>6})  {:>7} ({:>6})  {:>7} ({:>6})  {:>9.2}  {:>8.2}  {:>5} ({} ns)",
                report.urpc_round_trip,
                nanoseconds(report.urpc_round_trip),
                report.ipi_round_trip,
                nanoseconds(report.ipi_round_trip),
                report.shared_line_round_trip,
                nanoseconds(report.shared_line_round_trip),
                ratio(report.urpc_round_trip, report.shared_line_round_trip),
                ratio(report.urpc_round_trip, report.ipi_round_trip),
                report.stream_per_message,
                nanoseconds(report.stream_per_message),
            );
            pairs += 1;
        }
    }
    ratios_to_line.sort_unstable_by(f64::total_cmp);
    println!(
        "urpc bench: {pairs} ordered pairs; median urpc/line ratio {:.2}",
        ratios_to_line[ratios_to_line.len() / 2]
    );
    Ok(())
}

/// How long the shell waits for a core to finish a proposal or a storm.
const VM_TIMEOUT_MS: u64 = 30_000;

fn vm_propose(local: &CoreLocal, change: VmChange, core: usize, page: u32) -> Result<(), String> {
    let command = match change {
        VmChange::Map => "vm map",
        VmChange::Unmap => "vm unmap",
    };
    check_running(command, core)?;
    if u64::from(page) >= vm::TEST_SPACE_PAGES {
        return Err(format!(
            "{command}: page {page} is outside the test space (pages 0 to {})",
            vm::TEST_SPACE_PAGES - 1
        ));
    }
    let outcome = if core == local.id {
        let id = vm::propose(local, change, u64::from(page), vm::Requester::Here)
            .map_err(|error| format!("{command}: {error:?}"))?;
        let completion = vm::wait_finished(local, id, VM_TIMEOUT_MS)
            .ok_or_else(|| format!("{command}: no outcome within {VM_TIMEOUT_MS} ms"))?;
        (
            vm::completion_committed(&completion),
            vm::describe(&completion),
        )
    } else {
        node::send(
            local,
            core,
            VmPropose {
                change: change as u8,
                page,
            },
        );
        let done = node::wait_for(local, core, VM_TIMEOUT_MS, |answer| {
            matches!(answer, NodeMessage::VmDone(_))
        });
        let Some(NodeMessage::VmDone(done)) = done else {
            return Err(format!("{command}: core {core} did not answer"));
        };
        (vm::done_committed(&done), vm::describe_done(&done))
    };
    match outcome {
        (true, text) => {
            println!(
                "{command} {core} {page}: {:#x} {text}",
                vm::page_address(u64::from(page))
            );
            Ok(())
        }
        (false, text) => Err(format!("{command} {core} {page}: {text}")),
    }
}

/// Every running core's replica hash and mapped pages, by core.
fn replica_reports(local: &CoreLocal) -> Result<Vec<(usize, VmHashReply)>, String> {
    let mut reports = Vec::new();
    for core in running_cores() {
        let reply = if core == local.id {
            local.node().borrow().vm.hash_reply()
        } else {
            node::send(
                local,
                core,
                VmHash {
                    space: vm::TEST_SPACE.0,
                },
            );
            match node::wait_for(local, core, VM_TIMEOUT_MS, |answer| {
                matches!(answer, NodeMessage::VmHashReply(_))
            }) {
                Some(NodeMessage::VmHashReply(reply)) => reply,
                _ => return Err(format!("vm hash: core {core} did not answer")),
            }
        };
        reports.push((core, reply));
    }
    Ok(reports)
}

/// Every running holder's replica hash, printed; the hash if they agree.
fn replica_hashes(local: &CoreLocal) -> Result<u64, String> {
    let holders = local.node().borrow().vm.holders();
    let mut hashes = Vec::new();
    for (core, reply) in replica_reports(local)?
        .into_iter()
        .filter(|(core, _)| holders.contains(core))
    {
        println!(
            "vm hash: core {core}: replica hash {:#018x}, {} pages mapped",
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

fn vm_span(local: &CoreLocal, first: usize, last: usize) -> Result<(), String> {
    check_core("vm span", last)?;
    if first > last {
        return Err(format!(
            "vm span: {first} to {last} is an empty range of cores"
        ));
    }
    if let Some((core, report)) = replica_reports(local)?
        .into_iter()
        .find(|(_, report)| report.mapped > 0)
    {
        return Err(format!(
            "vm span: core {core} has {} pages mapped; unmap them first",
            report.mapped
        ));
    }
    for core in running_cores().filter(|&core| core != local.id) {
        node::send(
            local,
            core,
            VmSpan {
                first: first as u32,
                last: last as u32,
            },
        );
    }
    local.node().borrow_mut().vm.span(first..=last);
    println!("vm span: cores {first} to {last} hold the test space");
    Ok(())
}

/// Pages a storm works on: few, so that proposals collide.
const STORM_PAGES: u32 = 8;

fn vm_storm(local: &CoreLocal, operations: u32) -> Result<(), String> {
    let seed = cpu::rdtsc() as u32;
    let storm = VmStorm {
        operations,
        pages: STORM_PAGES,
        seed,
    };
    let others: Vec<usize> = running_cores().filter(|&core| core != local.id).collect();
    for &core in &others {
        node::send(local, core, storm.clone());
    }
    let mine = vm::storm(local, &storm);
    let (mut committed, mut aborted) = (mine.committed, mine.aborted);
    for &core in &others {
        match node::wait_for(local, core, VM_TIMEOUT_MS, |answer| {
            matches!(answer, NodeMessage::VmStormDone(_))
        }) {
            Some(NodeMessage::VmStormDone(done)) => {
                committed += done.committed;
                aborted += done.aborted;
            }
            _ => return Err(format!("vm storm: core {core} did not finish")),
        }
    }
    let proposed = operations * (others.len() as u32 + 1);
    println!(
        "vm storm: {proposed} proposals from {} cores: {committed} committed, {aborted} aborted",
        others.len() + 1
    );
    if committed + aborted != proposed {
        return Err(format!(
            "vm storm: {} proposals did not finish",
            proposed - committed - aborted
        ));
    }
    replica_hashes(local).map(|_| ())
}
