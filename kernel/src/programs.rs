//! The programs in the boot image: the archive the boot loader loaded
//! beside the kernel as its first boot module (QEMU's `-initrd`, GRUB's
//! `module2`), read in place. `atoll-programs` reads and checks it; this
//! module finds it.

use alloc::format;
use alloc::string::String;

use atoll_arch::phys;
use atoll_programs::{Archive, Image};

use crate::host::Core;
use crate::process::{self, Exit};
use crate::shared::boot_facts;

/// The programs' archive, or why there is none to use.
pub fn archive() -> Result<Archive<'static>, String> {
    let Some(module) = boot_facts().info.modules().first() else {
        return Err(String::from("no boot module holds programs"));
    };
    let bytes = phys::boot_module(module.start, module.end).ok_or_else(|| {
        format!(
            "the boot module at {:#x}-{:#x} is out of reach (past the identity map, or over the kernel)",
            module.start, module.end
        )
    })?;
    Archive::parse(bytes)
        .map_err(|error| format!("the boot module is no archive of programs: {error}"))
}

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

/// `run <program>`: runs `name` on this core to its end, and says how it
/// ended.
pub fn run(core: &Core, name: &str) -> Result<(), String> {
    let archive = archive().map_err(|error| format!("run {name}: {error}"))?;
    let program = archive
        .find(name)
        .ok_or_else(|| format!("run {name}: no such program in the boot image"))?;
    let exit = process::run(core.local, program, &mut || {
        core.poll();
    })
    .map_err(|error| format!("run {name}: {error}"))?;
    match exit {
        Exit::Status(status) => println!("run {name}: exited with status {status}"),
        Exit::Fault {
            vector,
            error_code,
            rip,
            address,
        } => println!(
            "run {name}: killed on core {}: exception {vector} ({}) error {error_code:#x} rip {rip:#x} addr {address:#x}; the kernel runs on",
            core.id,
            atoll_arch::idt::exception_name(vector)
        ),
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
        let exit = process::run(core.local, empty, &mut || {
            core.poll();
        })
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
    let exit = process::run(core.local, nullcall, &mut || {
        core.poll();
    })
    .map_err(|error| format!("bench user: {error}"))?;
    if exit != Exit::Status(0) {
        return Err(format!("bench user: nullcall ended {exit:?}"));
    }
    Ok(())
}

/// The boot lines that say which programs the boot image holds, and how
/// the kernel guards itself from them on `core`.
pub fn report(core: &Core) {
    match core.local.user_protection() {
        true => println!("atoll: user space: ring 3, with SMEP and SMAP"),
        false => println!(
            "atoll: user space: ring 3; this processor has no SMEP and SMAP, so the kernel's own checks alone keep it from programs' pages"
        ),
    }
    match archive() {
        Ok(archive) if archive.programs().is_empty() => {
            println!("atoll: programs: none (the archive is empty)");
        }
        Ok(archive) => {
            let mut names = String::new();
            for program in archive.programs() {
                if !names.is_empty() {
                    names.push(' ');
                }
                names.push_str(&program.name);
            }
            println!("atoll: programs: {names}");
        }
        Err(error) => println!("atoll: programs: none: {error}"),
    }
}
