//! The shell's commands about programs and processes: `programs`, `run`,
//! `spawn`, `ps`, `kill` and `bench user`.

use alloc::format;
use alloc::string::String;

use atoll_iface::Bytes;
use atoll_monitor::process::{
    ENDED_EXIT, ENDED_FAULT, ENDED_KILLED, KILL_ENDED, KILL_NO_SUCH_PROCESS, KILL_RUNNING, KILLED,
    KillProcess, ListProcesses, PROGRAM_ARGS_BYTES, PROGRAM_NAME_BYTES, Processes, ProgramEnded,
    RunProgram, SPAWNED, SpawnProgram,
};
use atoll_programs::Image;
use atoll_sched::{Exit, Pid, ProcessError};
use atoll_shell::Launch;

use super::ask::{ask, ask_all, check_running};
use crate::host::Core;
use crate::process::{LIST_HEADER, Report, describe, describe_exit};
use crate::programs::archive;

/// `programs`: each program with its size, entry point and segments (or
/// what is wrong with it), as the loader will see it.
pub fn list() -> Result<(), String> {
    let archive = archive().map_err(|error| format!("programs: {error}"))?;
    println!("programs: {} in the boot image", archive.programs().len());
    for program in archive.programs() {
        match Image::parse(program.file) {
            Ok(image) => {
                let mut segments = String::new();
                for segment in &image.segments {
                    let rights = match (segment.writable, segment.executable) {
                        (true, _) => "rw-",
                        (false, true) => "r-x",
                        (false, false) => "r--",
                    };
                    segments += &format!(" {:#x}+{:#x} {rights}", segment.start, segment.mem_size);
                }
                println!(
                    "  {}: {} bytes, entry {:#x}, segments{segments}",
                    program.name,
                    program.file.len(),
                    image.entry
                );
            }
            Err(error) => println!("  {}: cannot be loaded: {error}", program.name),
        }
    }
    Ok(())
}

/// How long a remote `run` waits for the end: as long as the core stays
/// in the view (a core that stops ends the call at once, `CallError::Down`).
const RUN_WAIT_MS: u64 = 24 * 3600 * 1000;

/// The one core `launch` names: the shell's without `--cores`. A process
/// runs on one core for now.
fn target(core: &Core, command: &str, launch: &Launch) -> Result<usize, String> {
    match launch.cores.as_deref() {
        None => Ok(core.id),
        Some(&[one]) => {
            let one = one as usize;
            if one != core.id {
                check_running(core, command, one)?;
            }
            Ok(one)
        }
        Some(_) => Err(format!(
            "{command}: a process runs on one core for now; list one"
        )),
    }
}

/// `launch`'s name and arguments as a request carries them.
fn request_text(
    command: &str,
    launch: &Launch,
) -> Result<(Bytes<PROGRAM_NAME_BYTES>, Bytes<PROGRAM_ARGS_BYTES>), String> {
    let name = Bytes::new(launch.program.as_bytes()).ok_or_else(|| {
        format!("{command}: program names are at most {PROGRAM_NAME_BYTES} bytes")
    })?;
    let args = Bytes::new(launch.args.as_bytes())
        .ok_or_else(|| format!("{command}: arguments are at most {PROGRAM_ARGS_BYTES} bytes"))?;
    Ok((name, args))
}

/// `run <program> [--cores <list>] [<args>]`: spawns it, here or on the
/// listed core (asked by message: `process`), waits for its end and says
/// how it ended.
pub fn run(core: &Core, launch: &Launch) -> Result<(), String> {
    let name = &launch.program;
    let at = target(core, "run", launch)?;
    let (pid, exit) = if at == core.id {
        core.run_to_end(name, &launch.args)
            .map_err(|error| format!("run {name}: {error}"))?
    } else {
        let (name_bytes, args) = request_text("run", launch)?;
        let ticket = core.call(
            at,
            RunProgram {
                name: name_bytes,
                args,
            },
            RUN_WAIT_MS,
        );
        let ended: ProgramEnded = core
            .wait_for(ticket)
            .map_err(|error| format!("run {name}: {error}"))?;
        let exit = match ended.outcome {
            ENDED_EXIT => Exit::Status(ended.status),
            ENDED_KILLED => Exit::Killed,
            ENDED_FAULT => Exit::Fault {
                vector: ended.vector,
                error_code: ended.error_code,
                rip: ended.rip,
                address: ended.address,
            },
            _ => {
                return Err(format!(
                    "run {name}: core {at} could not start it (its own line says why)"
                ));
            }
        };
        (Pid(ended.pid), exit)
    };
    let how = describe_exit(exit, at);
    match exit {
        Exit::Fault { .. } => println!("run {name}: process {pid} {how}; the kernel runs on"),
        _ => println!("run {name}: process {pid} {how}"),
    }
    Ok(())
}

/// `spawn <program> [--cores <list>] [<args>]`: starts it, here or on the
/// listed core, and says its id; its end comes on the console.
pub fn spawn(core: &Core, launch: &Launch) -> Result<(), String> {
    let name = &launch.program;
    let at = target(core, "spawn", launch)?;
    let pid = if at == core.id {
        core.spawn(name, &launch.args, Report::Console)
            .map_err(|error| format!("spawn {name}: {error}"))?
    } else {
        let (name_bytes, args) = request_text("spawn", launch)?;
        let spawned = ask(
            core,
            at,
            SpawnProgram {
                name: name_bytes,
                args,
            },
        )
        .map_err(|error| format!("spawn {name}: {error}"))?;
        if spawned.outcome != SPAWNED {
            return Err(format!(
                "spawn {name}: core {at} could not start it (its own line says why)"
            ));
        }
        Pid(spawned.pid)
    };
    println!("spawn {name}: process {pid} on core {at}");
    Ok(())
}

/// `ps`: every member's processes, asked at once.
pub fn ps(core: &Core) -> Result<(), String> {
    let members = core.members();
    let mut lines = String::new();
    let others = members.iter().filter(|&&member| member != core.id);
    let replies = ask_all(core, others.map(|&member| (member, ListProcesses {})));
    let mut count = 0;
    for member in &members {
        if *member == core.id {
            for info in core.process_list() {
                lines += &describe(&info, core.id);
                lines.push('\n');
                count += 1;
            }
            continue;
        }
        let (_, reply) = replies
            .iter()
            .find(|(at, _)| at == member)
            .expect("every other member was asked");
        match reply {
            Ok(Processes { text }) => {
                let text = String::from_utf8_lossy(text.as_slice());
                count += text.lines().count();
                lines += &text;
            }
            Err(error) => lines += &format!("core {member}: {error}\n"),
        }
    }
    println!("ps: {count} processes on {} cores", members.len());
    println!("{LIST_HEADER}");
    print!("{lines}");
    Ok(())
}

/// `kill <pid>`: asks the core the id names (this one, or by message).
pub fn kill(core: &Core, pid: u32) -> Result<(), String> {
    let pid = Pid(pid);
    let at = usize::from(pid.core());
    let outcome = if at == core.id {
        match core.kill(pid) {
            Ok(()) => KILLED,
            Err(ProcessError::Ended) => KILL_ENDED,
            Err(ProcessError::Running) => KILL_RUNNING,
            Err(ProcessError::NoSuchProcess | ProcessError::NotAChild) => KILL_NO_SUCH_PROCESS,
        }
    } else {
        check_running(core, "kill", at).map_err(|_| {
            format!("kill: no process {pid}: its core, {at}, is not a running core")
        })?;
        ask(core, at, KillProcess { pid: pid.0 })
            .map_err(|error| format!("kill {pid}: {error}"))?
            .outcome
    };
    match outcome {
        KILLED => {
            println!("kill: process {pid} on core {at} killed; what it held is freed");
            Ok(())
        }
        KILL_ENDED => Err(format!(
            "kill: process {pid} has ended already; its parent has yet to wait for it"
        )),
        KILL_RUNNING => Err(format!("kill: process {pid} is running on core {at}")),
        _ => Err(format!("kill: core {at} has no process {pid}")),
    }
}

/// How many times `bench user` starts and ends `true`.
const SPAWN_RUNS: usize = 16;

/// `bench user`: what starting a program, running it to its end and
/// clearing it away costs (`true`, which exits at once, [`SPAWN_RUNS`]
/// times), and what a system call costs (`nullcall` measures it itself).
pub fn bench(core: &Core) -> Result<(), String> {
    let mut samples = alloc::vec::Vec::with_capacity(SPAWN_RUNS);
    for _ in 0..SPAWN_RUNS {
        let start = atoll_arch::cpu::rdtsc();
        let (_, exit) = core
            .run_to_end("true", "")
            .map_err(|error| format!("bench user: true: {error}"))?;
        if exit != Exit::Status(0) {
            return Err(format!("bench user: true ended {exit:?}"));
        }
        samples.push(atoll_arch::cpu::rdtsc() - start);
    }
    samples.sort_unstable();
    println!(
        "bench user: spawn, run and end of `true`: median {} cycles (min {}, max {}) over {SPAWN_RUNS} runs; under TCG, cycles are the emulator's",
        samples[SPAWN_RUNS / 2],
        samples[0],
        samples[SPAWN_RUNS - 1]
    );
    let (_, exit) = core
        .run_to_end("nullcall", "")
        .map_err(|error| format!("bench user: nullcall: {error}"))?;
    if exit != Exit::Status(0) {
        return Err(format!("bench user: nullcall ended {exit:?}"));
    }
    Ok(())
}
