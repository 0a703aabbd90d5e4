//! `cargo xtask bench <name>`: runs one of the benchmarks of
//! `hosted/benches` (`urpc` for urpc, urpc-depth and monitor, `scaling` for
//! fig3, replication and sharing; built by `cargo bench`, so optimised),
//! which prints
//! its table and writes `bench/results/<name>.json` and `.svg`, recording the
//! command below as the one that produced them. Timed benchmarks are not
//! tests: `cargo xtask test` never runs them.

use std::process::ExitCode;

use anyhow::{Context, Result, ensure};

use crate::cli::BenchOptions;
use crate::workspace::Workspace;

pub fn run(workspace: &Workspace, options: &BenchOptions) -> Result<ExitCode> {
    let name = options.benchmark.name();
    let mut flags = Vec::new();
    if let Some((initiator, responder)) = options.cpus {
        flags.extend(["--cpus".to_owned(), format!("{initiator},{responder}")]);
    }
    if let Some(repetitions) = options.repetitions {
        flags.extend(["--repetitions".to_owned(), repetitions.to_string()]);
    }
    let command = [vec![format!("cargo xtask bench {name}")], flags.clone()]
        .concat()
        .join(" ");
    let status = workspace
        .cargo()
        .args([
            "bench",
            "--package",
            "atoll-hosted",
            "--bench",
            options.benchmark.target(),
            "--",
            name,
        ])
        .arg("--out")
        .arg(workspace.root.join("bench").join("results"))
        .args(["--command", &command])
        .args(&flags)
        .status()
        .context("cannot run cargo")?;
    ensure!(status.success(), "the {name} benchmark failed ({status})");
    Ok(ExitCode::SUCCESS)
}
