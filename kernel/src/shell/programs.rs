//! The shell's commands about programs and processes: `programs`, `run`,
//! `spawn`, `ps`, `kill` and `bench user`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use atoll_iface::Bytes;
use atoll_monitor::process::{
    KILL_ENDED, KILLED, KillProcess, ListProcesses, PROGRAM_ARGS_BYTES, PROGRAM_NAME_BYTES,
    Processes, ProgramEnded, RunProgram, SPAWNED, SpawnProgram,
};
use atoll_programs::Image;
use atoll_sched::{Exit, Pid};
use atoll_shell::Launch;

use super::ask::{ask, ask_all, check_running};
use crate::host::Core;
use crate::process::{LIST_HEADER, Report, describe_exit, kill_outcome};
use crate::programs::{archive, exit_of};
use atoll_monitor::process::CoreSet;
use atoll_monitor::{CoreId, Members};

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

/// Where `launch` runs: its home (the first core listed, or the shell's
/// without `--cores`) and every core it spans, each a running core listed
/// once.
fn target(core: &Core, command: &str, launch: &Launch) -> Result<(usize, Members), String> {
    let Some(list) = launch.cores.as_deref() else {
        return Ok((core.id, Members::one(CoreId(core.id as u16))));
    };
    let mut cores = Members::new();
    for &listed in list {
        let listed = listed as usize;
        check_running(core, command, listed)?;
        if cores.contains(CoreId(listed as u16)) {
            return Err(format!("{command}: core {listed} is listed twice"));
        }
        cores.insert(CoreId(listed as u16));
    }
    Ok((list[0] as usize, cores))
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
    let (at, cores) = target(core, "run", launch)?;
    let (name_bytes, args) = request_text("run", launch)?;
    let (pid, exit) = if at == core.id {
        core.run_to_end(name, &launch.args, cores)
            .map_err(|error| format!("run {name}: {error}"))?
    } else {
        let ticket = core.call(
            at,
            RunProgram {
                cores: CoreSet(cores),
                name: name_bytes,
                args,
            },
            RUN_WAIT_MS,
        );
        let ended: ProgramEnded = core
            .wait_for(ticket)
            .map_err(|error| format!("run {name}: {error}"))?;
        let Some(exit) = exit_of(&ended) else {
            return Err(format!(
                "run {name}: core {at} could not start it (its own line says why)"
            ));
        };
        (Pid(ended.pid), exit)
    };
    let how = describe_exit(exit);
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
    let (at, cores) = target(core, "spawn", launch)?;
    let (name_bytes, args) = request_text("spawn", launch)?;
    let pid = if at == core.id {
        core.spawn(name, &launch.args, Report::Console, cores)
            .map_err(|error| format!("spawn {name}: {error}"))?
    } else {
        let spawned = ask(
            core,
            at,
            SpawnProgram {
                cores: CoreSet(cores),
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
    match cores.len() {
        1 => println!("spawn {name}: process {pid} on core {at}"),
        _ => println!("spawn {name}: process {pid} on cores {cores} (home {at})"),
    }
    Ok(())
}

/// `ps`: every member's processes, asked at once.
pub fn ps(core: &Core) -> Result<(), String> {
    let members = core.members();
    let mut lines = String::new();
    let others = members.iter().filter(|&&member| member != core.id);
    let replies = ask_all(core, others.map(|&member| (member, ListProcesses {})));
    for member in &members {
        if *member == core.id {
            lines += &core.process_lines();
            continue;
        }
        let (_, reply) = replies
            .iter()
            .find(|(at, _)| at == member)
            .expect("every other member was asked");
        match reply {
            Ok(Processes { text }) => lines += &String::from_utf8_lossy(text.as_slice()),
            Err(error) => lines += &format!("core {member}: {error}\n"),
        }
    }
    // A process that spans cores has a line (a dispatcher) on each.
    let pids: Vec<u32> = lines
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect();
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    println!(
        "ps: {} processes, {} dispatchers, on {} cores",
        distinct.len(),
        pids.len(),
        members.len()
    );
    println!("{LIST_HEADER}");
    print!("{lines}");
    Ok(())
}

/// `kill <pid>`: asks the core the id names (this one, or by message).
pub fn kill(core: &Core, pid: u32) -> Result<(), String> {
    let pid = Pid(pid);
    let at = usize::from(pid.core());
    let outcome = if at == core.id {
        kill_outcome(core.kill(pid))
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
            println!(
                "kill: process {pid} of core {at} killed; its frames go back once no core maps them"
            );
            Ok(())
        }
        KILL_ENDED => Err(format!(
            "kill: process {pid} has ended already; its parent has yet to wait for it"
        )),
        _ => Err(format!("kill: core {at} has no process {pid}")),
    }
}

/// How many times `bench user` starts and ends `true`.
const SPAWN_RUNS: usize = 16;

/// `bench user`: what starting a program, running it to its end and
/// clearing it away costs (`true`, which exits at once, [`SPAWN_RUNS`]
/// times), what a system call costs (`nullcall` measures it itself), and
/// what a map and an unmap cost in a process spanning 1 core up to every
/// member (`maplat` measures them itself).
pub fn bench(core: &Core) -> Result<(), String> {
    let mut samples = alloc::vec::Vec::with_capacity(SPAWN_RUNS);
    for _ in 0..SPAWN_RUNS {
        let start = atoll_arch::cpu::rdtsc();
        let (_, exit) = core
            .run_to_end("true", "", Members::one(CoreId(core.id as u16)))
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
        .run_to_end("nullcall", "", Members::one(CoreId(core.id as u16)))
        .map_err(|error| format!("bench user: nullcall: {error}"))?;
    if exit != Exit::Status(0) {
        return Err(format!("bench user: nullcall ended {exit:?}"));
    }
    // A user-level URPC round trip between processes on two cores, and
    // the kernel's round trip between the same two cores' monitors.
    if let Some(&server_core) = core.members().iter().find(|&&member| member != core.id) {
        // The pinger spawns its server there, handing it the channel.
        let (_, exit) = core
            .run_to_end(
                "pingpong",
                &format!("ping {server_core} 1000"),
                Members::one(CoreId(core.id as u16)),
            )
            .map_err(|error| format!("bench user: pingpong: {error}"))?;
        if exit != Exit::Status(0) {
            return Err(format!("bench user: pingpong ended {exit:?}"));
        }
        println!(
            "bench user: above, a round trip between processes on cores {} and {server_core} over a channel (rings both map, no system call); below, in the same boot and between the same cores, the monitors' round trip through their services (urpc-rtt) and the floor, one cache line passed back and forth (line-rtt)",
            core.id
        );
        println!("{}", super::bench::PAIR_HEADER);
        super::bench::bench_pair(core, core.id, server_core)?;
    }
    // A map and an unmap agreed by 1 to every member, the shell's core the
    // home.
    let others: Vec<usize> = core
        .members()
        .into_iter()
        .filter(|&member| member != core.id)
        .collect();
    for spanned in 0..=others.len() {
        let mut cores = Members::one(CoreId(core.id as u16));
        for &other in &others[..spanned] {
            cores.insert(CoreId(other as u16));
        }
        let (_, exit) = core
            .run_to_end("maplat", "", cores)
            .map_err(|error| format!("bench user: maplat: {error}"))?;
        if exit != Exit::Status(0) {
            return Err(format!("bench user: maplat on {cores} ended {exit:?}"));
        }
    }
    Ok(())
}
