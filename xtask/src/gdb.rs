//! `cargo xtask gdb`: boots the kernel in QEMU stopped before its first
//! instruction, with QEMU's gdbstub listening on a local port, and runs gdb
//! with the kernel's symbols loaded and attached to it. Each core is a gdb
//! thread (thread N is core N - 1). The serial output goes to a file, since
//! the terminal is gdb's. `docs/debugging.md` walks through a session.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::cli::GdbOptions;
use crate::prereqs::{self, Need};
use crate::protocol;
use crate::qemu::{self, Boot, Console, Machine};
use crate::workspace::Workspace;

/// The function each monitor hands every request and one-way message to:
/// the place to break on a core's message handling.
pub const MESSAGE_HANDLER: &str = "atoll_monitor::Monitor::dispatch";

/// gdb's arguments: quiet, the kernel's symbols, attached to the gdbstub on
/// `port`; with `batch`, its commands run and gdb exits.
pub fn gdb_args(kernel: &Path, port: u16, batch: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-q",
        "-nx",
        "-ex",
        "set pagination off",
        "-ex",
        "set confirm off",
        "-ex",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(format!("file {}", kernel.display()));
    args.push("-ex".to_owned());
    args.push(format!("target remote 127.0.0.1:{port}"));
    if let Some(batch) = batch {
        args.extend(["-batch".to_owned(), "-x".to_owned()]);
        args.push(batch.display().to_string());
    }
    args
}

/// What a debugging session runs against.
pub struct Target<'a> {
    pub kernel: &'a Path,
    pub machine: &'a Machine,
    /// An exec script for the kernel, or none for the shell.
    pub script: Option<&'a str>,
    pub port: u16,
    /// Where the serial output goes.
    pub serial: &'a Path,
    /// gdb's commands, run in batch; none for an interactive gdb.
    pub batch: Option<&'a Path>,
}

/// A debugging session: QEMU for the target's machine, stopped at the first
/// instruction with its gdbstub on `port` (local connections only) and its
/// own messages going to `messages`; then gdb, given its arguments
/// ([`gdb_args`]) by `run_gdb`, which runs it and returns what it gives.
/// QEMU goes with the session, whatever gdb left it doing.
pub fn session<T>(
    target: &Target<'_>,
    messages: Stdio,
    run_gdb: impl FnOnce(Vec<String>) -> T,
) -> Result<T> {
    let boot = Boot::Kernel {
        elf: target.kernel,
        cmdline: target.script.map(protocol::exec_cmdline),
    };
    let mut qemu = qemu::command(target.machine, &boot, Console::File(target.serial));
    qemu.args(["-S", "-gdb", &format!("tcp:127.0.0.1:{}", target.port)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(messages);
    let mut qemu = qemu.spawn().context("cannot start qemu-system-x86_64")?;
    let outcome = run_gdb(gdb_args(target.kernel, target.port, target.batch));
    let _ = qemu.kill();
    let _ = qemu.wait();
    Ok(outcome)
}

pub fn run(workspace: &Workspace, options: &GdbOptions) -> Result<ExitCode> {
    prereqs::ensure(workspace, Need::Gdb)?;
    let kernel = workspace.build_kernel()?;
    let serial: PathBuf = workspace.target_dir.join("gdb-serial.log");
    File::create(&serial).with_context(|| format!("creating {}", serial.display()))?;
    eprintln!(
        "xtask: QEMU waits for gdb on 127.0.0.1:{}; the serial output goes to {}\n\
         xtask: each core is a gdb thread (core N is thread N+1); try\n    \
         break {MESSAGE_HANDLER} if self.base.me.0 == 2\n    continue",
        options.port,
        serial.display()
    );
    let target = Target {
        kernel: &kernel,
        machine: &options.machine,
        script: options.script.as_deref(),
        port: options.port,
        serial: &serial,
        batch: options.batch.as_deref(),
    };
    let status = session(&target, Stdio::inherit(), |args| {
        Command::new("gdb").args(args).status()
    })?;
    let status = status.context("cannot start gdb")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdb_loads_the_symbols_and_attaches_to_the_stub() {
        let args = gdb_args(Path::new("/k.elf"), 4321, None).join(" ");
        assert_eq!(
            args,
            "-q -nx -ex set pagination off -ex set confirm off -ex file /k.elf -ex target remote 127.0.0.1:4321"
        );
        let batch = gdb_args(Path::new("/k.elf"), 1, Some(Path::new("s.gdb"))).join(" ");
        assert!(batch.ends_with("-batch -x s.gdb"), "{batch}");
    }
}
