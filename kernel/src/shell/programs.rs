//! The shell's commands about programs: `programs`, `run` and `bench
//! user`.

use alloc::format;
use alloc::string::String;

use atoll_iface::Bytes;
use atoll_monitor::process::{ENDED_BUSY, ENDED_EXIT, ENDED_FAULT, PROGRAM_NAME_BYTES, RunProgram};
use atoll_programs::Image;

use super::ask::{ask, check_running};
use crate::host::Core;
use crate::process::Exit;
use crate::programs::{archive, ended_of};

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

/// `run <program> [<core>]`: runs `name` to its end, on this core or on
/// `target` (asked by message: `process`), and says how it ended.
pub fn run(core: &Core, name: &str, target: Option<usize>) -> Result<(), String> {
    let ended = match target.filter(|&target| target != core.id) {
        None => ended_of(
            core.run_named(name)
                .map_err(|error| format!("run {name}: {error}"))?,
        ),
        Some(target) => {
            check_running(core, "run", target)?;
            let name_bytes =
                Bytes::<PROGRAM_NAME_BYTES>::new(name.as_bytes()).ok_or_else(|| {
                    format!("run {name}: program names are at most {PROGRAM_NAME_BYTES} bytes")
                })?;
            ask(core, target, RunProgram { name: name_bytes })
                .map_err(|error| format!("run {name}: {error}"))?
        }
    };
    let at = target.unwrap_or(core.id);
    match ended.outcome {
        ENDED_EXIT => println!("run {name}: exited with status {}", ended.status),
        ENDED_FAULT => println!(
            "run {name}: killed on core {at}: exception {} ({}) error {:#x} rip {:#x} addr {:#x}; the kernel runs on",
            ended.vector,
            atoll_arch::idt::exception_name(ended.vector),
            ended.error_code,
            ended.rip,
            ended.address
        ),
        ENDED_BUSY => return Err(format!("run {name}: core {at} runs another program")),
        _ => {
            return Err(format!(
                "run {name}: core {at} could not load it (its own line says why)"
            ));
        }
    }
    Ok(())
}

/// How many times `bench user` starts and ends `true`.
const SPAWN_RUNS: usize = 16;

/// `bench user`: what starting a program, running it to its end and
/// clearing it away costs (`true`, which exits at once, [`SPAWN_RUNS`]
/// times), and what a system call costs (`nullcall` measures it itself).
pub fn bench(core: &Core) -> Result<(), String> {
    let archive = archive().map_err(|error| format!("bench user: {error}"))?;
    let find = |name: &str| {
        archive
            .find(name)
            .ok_or_else(|| format!("bench user: no program {name} in the boot image"))
    };
    let (empty, nullcall) = (find("true")?, find("nullcall")?);
    let mut samples = alloc::vec::Vec::with_capacity(SPAWN_RUNS);
    for _ in 0..SPAWN_RUNS {
        let start = atoll_arch::cpu::rdtsc();
        let exit = core
            .run_here(empty)
            .map_err(|error| format!("bench user: {error}"))?;
        if exit != Exit::Status(0) {
            return Err(format!("bench user: true ended {exit:?}"));
        }
        samples.push(atoll_arch::cpu::rdtsc() - start);
    }
    samples.sort_unstable();
    println!(
        "bench user: start, run and end of `true`: median {} cycles (min {}, max {}) over {SPAWN_RUNS} runs; under TCG, cycles are the emulator's",
        samples[SPAWN_RUNS / 2],
        samples[0],
        samples[SPAWN_RUNS - 1]
    );
    let exit = core
        .run_here(nullcall)
        .map_err(|error| format!("bench user: {error}"))?;
    if exit != Exit::Status(0) {
        return Err(format!("bench user: nullcall ended {exit:?}"));
    }
    Ok(())
}
