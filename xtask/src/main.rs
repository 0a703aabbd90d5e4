//! `cargo xtask`: the host program that builds Atoll's kernel, boots it in QEMU,
//! packs it into a GRUB ISO and runs the test suite (host unit tests, then QEMU
//! integration tests that read the kernel's serial output as described in
//! `docs/serial-protocol.md`), runs the benchmarks (`bench`, which drives
//! `hosted/benches`), exports traces (`trace`) and starts debugging sessions
//! (`gdb`). It runs on the developer's machine, never in the kernel, and
//! depends on std, `anyhow`, `serde_json` (the trace's JSON) and
//! `atoll-shell` (the kernel's own split of exec scripts).

mod bench;
mod checks;
mod cli;
mod gdb;
mod integration;
mod iso;
#[cfg(test)]
mod modules;
mod prereqs;
mod protocol;
mod qemu;
mod recordings;
mod run;
mod session;
mod trace;
mod workspace;

use std::io::{self, Write};
use std::process::ExitCode;

use cli::Command;
use workspace::Workspace;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match execute(command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::locate()?;
    match command {
        Command::Help => {
            // A closed pipe (`cargo xtask help | head`) is not worth a panic.
            let _ = writeln!(io::stdout(), "{}", cli::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(options) => run::run(&workspace, &options),
        Command::Trace(options) => trace::run(&workspace, &options),
        Command::Gdb(options) => gdb::run(&workspace, &options),
        Command::Iso(options) => {
            prereqs::ensure(&workspace, prereqs::Need::Iso)?;
            let kernel = workspace.build_kernel()?;
            let out = options
                .out
                .unwrap_or_else(|| workspace.target_dir.join("atoll.iso"));
            iso::build(&workspace, &kernel, options.exec.as_deref(), &out)?;
            println!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Test(options) => integration::run(&workspace, &options),
        Command::Bench(options) => bench::run(&workspace, &options),
    }
}
