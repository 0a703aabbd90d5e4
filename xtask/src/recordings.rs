//! `cargo xtask bench qemu`: boots the kernel for each of the QEMU results in
//! `bench/results/` (`qemu-<name>.txt`) and writes the file again, so that
//! every one of them can be re-run by one command and says where it came
//! from: the command that rebuilds it, the commit, QEMU's version and the
//! host, then what each boot printed on the serial console, under the
//! `cargo xtask run` line that repeats that boot alone.
//!
//! Each boot is described by the very flags `cargo xtask run` takes, and
//! parsed by the same parser, so the line recorded is the command that was
//! run. A boot whose script fails, or that panics or times out, fails the
//! recording: its file is left as it was, and the others still run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail, ensure};

use crate::cli::{self, Command, RunMode};
use crate::prereqs::{self, Need};
use crate::protocol;
use crate::workspace::Workspace;

/// Said of every file: TCG's cycles are the emulator's.
const UNDER_TCG: &str = "Under TCG the emulator runs every instruction and models no caches or coherence: cycle counts and times measure the emulator on this host, not hardware. Compare ratios within a file, not absolute numbers.";

/// One `bench/results/qemu-<name>.txt`.
pub(crate) struct Recording {
    pub(crate) name: &'static str,
    /// What it measures and how to read it, one header line each.
    pub(crate) about: &'static [&'static str],
    /// The `cargo xtask run` flags of each boot, in order.
    pub(crate) boots: Vec<Vec<String>>,
}

/// `cargo xtask run` flags: the machine's, then `--exec script`, then
/// `--timeout` if the boot needs more than the default.
pub(crate) fn boot(machine: &str, script: &str, timeout_s: Option<u32>) -> Vec<String> {
    let mut flags: Vec<String> = machine.split_whitespace().map(str::to_owned).collect();
    flags.extend(["--exec".to_owned(), script.to_owned()]);
    if let Some(seconds) = timeout_s {
        flags.extend(["--timeout".to_owned(), seconds.to_string()]);
    }
    flags
}

/// The same boot at each of `cores`.
fn at_cores(cores: &[u8], script: &str, timeout_s: Option<u32>) -> Vec<Vec<String>> {
    cores
        .iter()
        .map(|n| boot(&format!("--cores {n}"), script, timeout_s))
        .collect()
}

fn recordings() -> Vec<Recording> {
    let storm = "vm storm start 1000; core cycle 1 20; vm storm wait";
    vec![
        Recording {
            name: "urpc-bench",
            about: &[
                "URPC round trip, IPI round trip, shared-line round trip and stream cost for every ordered pair of cores.",
            ],
            boots: vec![boot("--cores 8", "urpc bench", None)],
        },
        Recording {
            name: "shootdown",
            about: &[
                "TLB shootdown from core 0 to 1..7 cores: IPIs with a shared counter against unicast, flat multicast and multicast down the knowledge base's tree (printed), on two NUMA nodes.",
            ],
            boots: vec![boot(
                "--cores 8 --numa 2 --numa-distances 10,20/30,10",
                "bench shootdown",
                Some(800),
            )],
        },
        Recording {
            name: "shootdown-4-nodes",
            about: &["The same on four NUMA nodes with asymmetric distances."],
            boots: vec![boot(
                "--cores 8 --numa 4 --numa-distances 10,16,22,28/17,10,23,29/24,25,10,31/32,33,34,10",
                "bench shootdown",
                Some(800),
            )],
        },
        Recording {
            name: "fig3",
            about: &[
                "The multikernel paper's Figure 3 on the emulated machine: k lines under a shared lock against messages to the core that owns them.",
            ],
            boots: vec![boot("--cores 8", "bench fig3", Some(800))],
        },
        Recording {
            name: "trace",
            about: &[
                "What tracing costs: a URPC round trip through the monitors and a map with its unmap, tracing off, on and off again in one boot.",
            ],
            boots: vec![boot("--cores 4", "bench trace", Some(800))],
        },
        Recording {
            name: "heartbeats",
            about: &[
                "A URPC round trip and a map plus unmap with heartbeats off, every 100 ms and every 10 ms, interleaved in one boot.",
            ],
            boots: at_cores(&[4, 8], "bench heartbeats", Some(600)),
        },
        Recording {
            name: "userspace",
            about: &[
                "What starting, running and ending a program that exits at once (`true`) costs, a null system call from ring 3 (`nullcall`), a user-level round trip (`pingpong`) and a map's latency (`maplat`).",
                "From 3 guest cores up the guest has more vCPUs than the host has CPUs: a round among 3 or more cores waits for the host to run their threads.",
            ],
            boots: at_cores(&[1, 2, 4, 8], "bench user", Some(600)),
        },
        Recording {
            name: "membership",
            about: &[
                "How long after a core hangs (interrupts off, nobody told) the survivors install a view without it; ticks are the shell core's 10 ms APIC timer ticks. The detector: a heartbeat every 100 ms, suspicion after 1000 ms of silence.",
            ],
            boots: at_cores(&[2, 4, 8, 16], "hang 1; vm map 0 1; view", None),
        },
        Recording {
            name: "rejoin",
            about: &[
                "How long a core that left takes to rejoin the view and to catch up, 20 times: from the start-up sequence (INIT, a 10 ms wait, SIPI) to the view that holds it again, and to its answer once it has caught up. Idle at 2 to 16 cores, then at 2 to 8 while every other member proposes 1000 maps and unmaps.",
                "Cores are host threads on the host's CPUs: at 8 cores the storm competes with the rejoin for them. At 16 cores under the storm the emulated machine is too slow for its own failure detector on two host CPUs: members are suspected and left out, and runs fail (docs/benchmarks.md), so that row is not recorded.",
            ],
            boots: [2u8, 4, 8, 16]
                .iter()
                .flat_map(|&n| {
                    let machine = format!("--cores {n} --mem 1G");
                    let idle = boot(&machine, "core cycle 1 20", Some(600));
                    let storm = (n <= 8).then(|| boot(&machine, storm, Some(600)));
                    [Some(idle), storm].into_iter().flatten()
                })
                .collect(),
        },
    ]
}

/// The names `--only` takes.
pub fn names() -> Vec<&'static str> {
    recordings()
        .iter()
        .map(|recording| recording.name)
        .collect()
}

/// The flags as one shell command line, the script quoted.
fn command_line(flags: &[String]) -> String {
    let quoted: Vec<String> = flags
        .iter()
        .map(|flag| match flag.contains([' ', ';']) {
            true => format!("\"{flag}\""),
            false => flag.clone(),
        })
        .collect();
    format!("cargo xtask run {}", quoted.join(" "))
}

/// Runs every recording, or only the one named, and writes its file.
pub fn run(workspace: &Workspace, only: Option<&str>) -> Result<ExitCode> {
    let chosen: Vec<Recording> = recordings()
        .into_iter()
        .filter(|recording| only.is_none_or(|name| recording.name == name))
        .collect();
    if chosen.is_empty() {
        bail!(
            "no QEMU recording is called `{}` (expected one of {})",
            only.unwrap_or_default(),
            names().join(", ")
        );
    }
    prereqs::ensure(workspace, Need::Qemu)?;
    let kernel = workspace.build_kernel()?;
    let results = workspace.root.join("bench/results");
    let mut failed = Vec::new();
    for recording in &chosen {
        match record(workspace, &kernel, recording, &results) {
            Ok(()) => {}
            Err(error) => {
                eprintln!("xtask: qemu-{}.txt not written: {error:#}", recording.name);
                failed.push(recording.name);
            }
        }
    }
    match failed.is_empty() {
        true => Ok(ExitCode::SUCCESS),
        false => bail!(
            "{} of {} recordings failed: {}",
            failed.len(),
            chosen.len(),
            failed.join(", ")
        ),
    }
}

/// Boots each of `recording`'s machines and, if every script succeeds,
/// writes `qemu-<name>.txt` in `dir`; otherwise writes nothing.
pub(crate) fn record(
    workspace: &Workspace,
    kernel: &Path,
    recording: &Recording,
    dir: &Path,
) -> Result<()> {
    let mut text = format!(
        "# cargo xtask bench qemu --only {}\n{}",
        recording.name,
        provenance(workspace)?
    );
    for line in recording.about.iter().chain([&UNDER_TCG]) {
        text += &format!("# {line}\n");
    }
    for flags in &recording.boots {
        let line = command_line(flags);
        eprintln!("xtask: {line}");
        let parsed = cli::parse(["run".to_owned()].into_iter().chain(flags.iter().cloned()))
            .with_context(|| line.clone())?;
        let Command::Run(options) = parsed else {
            bail!("{line}: not a run command");
        };
        let RunMode::Exec { script, timeout } = &options.mode else {
            bail!("{line}: no --exec script");
        };
        let output = crate::run::exec(kernel, &options.machine, script, *timeout, false)?;
        protocol::exec_verdict(output.exit, &output.text)
            .map_err(|error| anyhow::anyhow!("{line}: {error}"))?;
        text += &format!("## {line}\n");
        for serial in protocol::lines(&output.text) {
            text += serial;
            text.push('\n');
        }
    }
    let path = dir.join(format!("qemu-{}.txt", recording.name));
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// Where a QEMU result comes from, as comment lines: the commit (and
/// whether tracked files other than results differ from it), QEMU's version and the host's
/// processor and CPU count.
pub fn provenance(workspace: &Workspace) -> Result<String> {
    let output = |program: &str, args: &[&str]| -> Result<String> {
        let output = std::process::Command::new(program)
            .args(args)
            .current_dir(&workspace.root)
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        ensure!(
            output.status.success(),
            "{program} {} failed",
            args.join(" ")
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = output("git", &["rev-parse", "HEAD"])?;
    // Results already written change nothing that is measured.
    let changed = output(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ":/",
            ":(top,exclude)bench/results",
        ],
    )?;
    let changed = match changed.is_empty() {
        true => String::new(),
        false => format!(" with uncommitted changes to {}", changed.lines().count()),
    };
    let qemu = output("qemu-system-x86_64", &["--version"])?;
    let qemu = qemu.lines().next().unwrap_or_default().to_owned();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("an unknown processor", |(_, model)| model.trim());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    Ok(format!(
        "# commit {commit}{changed}\n# {qemu} (TCG) on {cpus} CPUs of {model}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every recorded boot is one `cargo xtask run` accepts, with a script,
    /// and the line written for it parses back to the same boot.
    #[test]
    fn every_boot_is_a_run_command() {
        for recording in recordings() {
            assert!(!recording.boots.is_empty(), "{}", recording.name);
            for flags in recording.boots {
                let parsed = cli::parse(["run".to_owned()].into_iter().chain(flags.clone()));
                match parsed {
                    Ok(Command::Run(options)) => {
                        assert!(matches!(options.mode, RunMode::Exec { .. }), "{flags:?}")
                    }
                    other => panic!("{flags:?}: {other:?}"),
                }
                let line = command_line(&flags);
                assert!(line.contains("--exec \""), "{line}");
            }
        }
    }

    #[test]
    fn names_are_unique_and_in_the_usage() {
        let names = names();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for name in names {
            assert!(cli::USAGE.contains(name), "{name} is not in the usage");
        }
    }
}
