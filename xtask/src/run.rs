//! `cargo xtask run`: boots the kernel in QEMU, either with the shell on this
//! terminal or running an exec script whose outcome becomes the exit code.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::cli::{RunMode, RunOptions};
use crate::prereqs::{self, Need};
use crate::protocol;
use crate::qemu::{self, Boot, Console, Machine, QemuExit};
use crate::session::{Input, Session};
use crate::workspace::Workspace;

pub fn run(workspace: &Workspace, options: &RunOptions) -> Result<ExitCode> {
    prereqs::ensure(workspace, Need::Qemu)?;
    let kernel = workspace.build_kernel()?;
    match &options.mode {
        RunMode::Interactive => {
            let boot = Boot::Kernel {
                elf: &kernel,
                cmdline: None,
            };
            let status = qemu::command(&options.machine, &boot, Console::Terminal)
                .status()
                .context("cannot start qemu-system-x86_64")?;
            Ok(pass_through(status))
        }
        RunMode::Exec { script, timeout } => {
            let serial = exec(&kernel, &options.machine, script, *timeout, true)?;
            let commands = protocol::exec_verdict(serial.exit, &serial.text)
                .map_err(|error| anyhow!(error))?;
            eprintln!("xtask: {commands} of {commands} commands succeeded");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How an exec boot ended, and what it printed on the serial console.
pub struct ExecOutput {
    pub exit: QemuExit,
    pub text: String,
}

/// Boots `kernel` on `machine` running the exec `script`, with the serial
/// output echoed here if `echo`, and waits until QEMU ends or `timeout`.
pub fn exec(
    kernel: &Path,
    machine: &Machine,
    script: &str,
    timeout: Duration,
    echo: bool,
) -> Result<ExecOutput> {
    let boot = Boot::Kernel {
        elf: kernel,
        cmdline: Some(protocol::exec_cmdline(script)),
    };
    let command = qemu::command(machine, &boot, Console::Plain);
    let mut session = Session::start(command, Input::Closed, echo, timeout)?;
    let exit = session.finish().map_err(|error| anyhow!(error))?;
    Ok(ExecOutput {
        exit,
        text: session.logs().serial.text(),
    })
}

/// QEMU's own status, or 128 + the signal that ended it, as a shell reports it.
fn pass_through(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
