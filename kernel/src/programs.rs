//! The programs in the boot image: the archive the boot loader loaded
//! beside the kernel as its first boot module (QEMU's `-initrd`, GRUB's
//! `module2`), read in place. `atoll-programs` reads and checks it; this
//! module finds it and says at boot what it holds. `process` runs them;
//! the shell's commands are in `shell::programs`.

use alloc::format;
use alloc::string::String;

use atoll_arch::phys;
use atoll_programs::Archive;

use crate::shared::boot_facts;
use atoll_arch::percore::CoreLocal;
use atoll_monitor::process::{ENDED_EXIT, ENDED_FAULT, ENDED_KILLED, ProgramEnded};
use atoll_sched::Exit;

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

/// A process's end, as the `process` service answers it (its pid is the
/// caller's to fill).
pub fn ended_of(exit: Exit) -> ProgramEnded {
    ended_as(exit)
}

/// The end `ProgramEnded` tells of.
pub fn exit_of(ended: &ProgramEnded) -> Option<Exit> {
    match ended.outcome {
        ENDED_EXIT => Some(Exit::Status(ended.status)),
        ENDED_KILLED => Some(Exit::Killed),
        ENDED_FAULT => Some(Exit::Fault {
            core: ended.core,
            vector: ended.vector,
            error_code: ended.error_code,
            rip: ended.rip,
            address: ended.address,
        }),
        _ => None,
    }
}

fn ended_as(exit: Exit) -> ProgramEnded {
    match exit {
        Exit::Status(status) => ProgramEnded {
            status,
            ..ProgramEnded::only(ENDED_EXIT, 0)
        },
        Exit::Killed => ProgramEnded::only(ENDED_KILLED, 0),
        Exit::Fault {
            core,
            vector,
            error_code,
            rip,
            address,
        } => ProgramEnded {
            outcome: ENDED_FAULT,
            pid: 0,
            core,
            status: 0,
            vector,
            error_code,
            rip,
            address,
        },
    }
}

/// The boot lines that say which programs the boot image holds, and how
/// the kernel guards itself from them on the core of `local`.
pub fn report(local: &CoreLocal) {
    match local.user_protection() {
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
