//! `cargo xtask bench <name>`: runs one of the benchmarks of
//! `hosted/benches` (`urpc` for urpc, urpc-depth and monitor, `scaling` for
//! fig3, replication and sharing; built by `cargo bench`, so optimised),
//! which prints
//! its table and writes `bench/results/<name>.json` and `.svg`, recording the
//! command below as the one that produced them; or `fuzz`, which boots the
//! kernel in QEMU ([`fuzz`]); or `qemu`, which re-records the kernel's own
//! benchmarks (`crate::recordings`). Timed benchmarks are not tests: `cargo xtask
//! test` never runs them.

use std::process::ExitCode;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::cli::{BenchOptions, Benchmark};
use crate::prereqs::{self, Need};
use crate::protocol;
use crate::qemu::Machine;
use crate::recordings;
use crate::workspace::Workspace;

pub fn run(workspace: &Workspace, options: &BenchOptions) -> Result<ExitCode> {
    let name = options.benchmark.name();
    let target = match options.benchmark {
        Benchmark::Fuzz => return fuzz(workspace),
        Benchmark::Qemu => return recordings::run(workspace, options.only.as_deref()),
        hosted => hosted.target(),
    };
    let Some(target) = target else {
        bail!("{name} is not a hosted benchmark");
    };
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
            target,
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

/// `bench fuzz`'s cores, and the system calls `fuzz` makes on each.
const FUZZ_CORES: u8 = 4;
const FUZZ_CALLS: u64 = 1_000_000;
const FUZZ_TIMEOUT: Duration = Duration::from_secs(600);

/// `cargo xtask bench fuzz`: boots the kernel on [`FUZZ_CORES`] cores in
/// QEMU and runs `fuzz` with [`FUZZ_CALLS`] random system calls on each
/// core in turn; fails unless every one got an answer the ABI allows and no
/// core stopped. Writes what it printed to `bench/results/qemu-fuzz.txt`
/// with the command, the machine and the commit.
fn fuzz(workspace: &Workspace) -> Result<ExitCode> {
    prereqs::ensure(workspace, Need::Qemu)?;
    let kernel = workspace.build_kernel()?;
    let script = (0..FUZZ_CORES)
        .map(|core| format!("run fuzz --cores {core} {FUZZ_CALLS}"))
        .collect::<Vec<_>>()
        .join("; ");
    let machine = Machine {
        cores: FUZZ_CORES,
        ..Machine::default()
    };
    let started = Instant::now();
    let output = crate::run::exec(&kernel, &machine, &script, FUZZ_TIMEOUT, false)?;
    let seconds = started.elapsed().as_secs_f64();
    protocol::exec_verdict(output.exit, &output.text).map_err(|error| anyhow!(error))?;
    let wanted = format!("fuzz: {FUZZ_CALLS} calls: ");
    let summaries: Vec<&str> = protocol::lines(&output.text)
        .filter(|line| line.starts_with(&wanted) || line.starts_with("fuzz: cycles:"))
        .collect();
    let clean = summaries
        .iter()
        .filter(|line| line.ends_with(", 0 not as the ABI allows"))
        .count();
    ensure!(
        clean == usize::from(FUZZ_CORES),
        "fuzz: {clean} of {FUZZ_CORES} cores answered every call as the ABI allows:\n{}",
        summaries.join("\n")
    );
    if let Some(line) = protocol::lines(&output.text).find(|line| line.contains(" stopped")) {
        bail!("a core stopped: {line}");
    }
    let total = FUZZ_CALLS * u64::from(FUZZ_CORES);
    let mut report = format!(
        "# cargo xtask bench fuzz\n{}# {} calls in all, {seconds:.1} s of wall time for the whole boot ({:.0} calls per second)\n# cycles are TSC cycles under TCG: they measure the emulator, not the hardware\n",
        recordings::provenance(workspace)?,
        total,
        total as f64 / seconds
    );
    for line in protocol::lines(&output.text)
        .filter(|line| line.starts_with("fuzz: ") || line.starts_with("run fuzz: "))
    {
        report += line;
        report.push('\n');
    }
    print!("{report}");
    let path = workspace.root.join("bench/results/qemu-fuzz.txt");
    std::fs::write(&path, report).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
