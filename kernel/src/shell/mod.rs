//! The serial shell on the boot core: reads lines (or the `atoll.exec=`
//! script from the kernel command line), runs the commands and reports.
//! Parsing and line editing live in `atoll-shell`; this is the glue to the
//! UART and to the monitor.
//!
//! A command that needs other cores makes calls through this core's monitor
//! and waits for their replies here, at the shell's top level (`ask`), so
//! the shell is the only code that waits; this core keeps answering the
//! others meanwhile.

mod ask;
mod bench;
mod programs;
mod skb;
mod system;
mod trace;
mod vm;

use alloc::format;
use alloc::string::String;

use atoll_arch::cpu;
use atoll_arch::power::{self, ExitStatus};
use atoll_arch::serial::CONSOLE;
use atoll_shell::{Command, Line, LineEditor, parse, split_script};

use crate::host::Core;
use crate::shared::boot_facts;

const PROMPT: &str = "atoll> ";
const MAX_LINE: usize = 1024;

/// What a command asks of the shell once it has run.
enum Next {
    Continue,
    Halt,
}

type CommandResult = Result<Next, String>;

pub fn run(core: &'static Core) -> ! {
    match atoll_shell::exec_script_from_cmdline(boot_facts().info.cmdline()) {
        Ok(Some(script)) => run_script(core, &script),
        Ok(None) => interactive(core),
        Err(error) => {
            println!("error: {error}");
            finish_script(0, 1)
        }
    }
}

/// What the shell keeps between commands.
#[derive(Default)]
struct State {
    /// A storm started with `vm storm start`, until `vm storm wait`.
    storm: Option<vm::Storm>,
    /// How many times `core on` started each core again, by core: the
    /// incarnation of its kernel (0 from boot). This core is the only one
    /// that starts cores.
    incarnations: alloc::collections::BTreeMap<usize, u32>,
}

fn run_script(core: &Core, script: &str) -> ! {
    let (mut commands, mut failed) = (0, 0);
    let mut state = State::default();
    for line in split_script(script) {
        println!("{PROMPT}{line}");
        commands += 1;
        match execute(core, &mut state, line) {
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

fn interactive(core: &Core) -> ! {
    let mut editor = LineEditor::new(MAX_LINE);
    let mut state = State::default();
    print!("{PROMPT}");
    loop {
        // The UART raises no interrupt here; the timer tick wakes the core
        // to look again, and a message's wake-up IPI sooner.
        let byte = core.idle_until(|| CONSOLE.read_byte());
        let Some(line) = editor.feed(byte, &mut |echo| CONSOLE.write_bytes(echo)) else {
            continue;
        };
        let outcome = match line {
            Line::Text(text) => execute(core, &mut state, &text),
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
    }
}

fn execute(core: &Core, state: &mut State, line: &str) -> CommandResult {
    let Some(command) = parse(line).map_err(|error| format!("{error}"))? else {
        return Ok(Next::Continue);
    };
    match command {
        Command::Help => system::help(),
        Command::Cores => system::show_cores(core),
        Command::Mem => system::show_memory(core),
        Command::Ipi { core: target } => system::ipi(core, target as usize)?,
        Command::Fault { core: target } => system::fault(core, target as usize)?,
        Command::Stall { core: target, ms } => system::stall(core, target as usize, ms)?,
        Command::Sleep { ms } => system::sleep(core, ms),
        Command::Hang { core: target } => system::hang(core, target as usize)?,
        Command::CoreOff { core: target } => system::core_off(core, target as usize)?,
        Command::CoreOn { core: target } => {
            system::core_on(core, &mut state.incarnations, target as usize)?
        }
        Command::CoreCycle {
            core: target,
            times,
        } => system::core_cycle(core, &mut state.incarnations, target as usize, times)?,
        Command::Scribble {
            core: target,
            victim,
        } => system::scribble(core, target as usize, victim)?,
        Command::View => system::view(core),
        Command::Programs => programs::list()?,
        Command::Run(launch) => programs::run(core, &launch)?,
        Command::Spawn(launch) => programs::spawn(core, &launch)?,
        Command::Ps => programs::ps(core)?,
        Command::Kill { pid } => programs::kill(core, pid)?,
        Command::ViewDetector { ms } => system::view_detector(core, ms)?,
        Command::Halt => {
            system::halt()?;
            return Ok(Next::Halt);
        }
        Command::UrpcPing { from, to } => bench::urpc_ping(core, from as usize, to as usize)?,
        Command::UrpcBench => bench::urpc_bench(core)?,
        Command::VmMap { core: target, page } => {
            vm::propose(core, vm::Change::Map, target as usize, page)?
        }
        Command::VmUnmap { core: target, page } => {
            vm::propose(core, vm::Change::Unmap, target as usize, page)?
        }
        Command::VmShow => vm::show(core),
        Command::VmHash => vm::hashes(core).map(|_| ())?,
        Command::VmStorm { operations, own } => vm::storm(core, operations, own)?,
        Command::VmStormStart { operations } => {
            vm::storm_start(core, &mut state.storm, operations)?
        }
        Command::VmStormWait => vm::storm_wait(core, &mut state.storm)?,
        Command::VmSpan { first, last } => vm::span(core, first as usize, last as usize)?,
        Command::BenchShootdown => bench::shootdown(core)?,
        Command::BenchFig3 => bench::fig3(core)?,
        Command::BenchTrace => bench::trace_cost(core)?,
        Command::BenchHeartbeats => bench::heartbeat_cost(core)?,
        Command::BenchUser => programs::bench(core)?,
        Command::TraceOn => trace::set(core, true)?,
        Command::TraceOff => trace::set(core, false)?,
        Command::TraceDump => trace::dump(core)?,
        Command::SkbFacts { predicate } => skb::show_facts(core, predicate.as_deref())?,
        Command::SkbQuery { body } => skb::query(core, &body)?,
        Command::SkbTree { root } => skb::show_tree(core, root as usize)?,
    }
    Ok(Next::Continue)
}
