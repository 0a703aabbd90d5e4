//! The checks `cargo xtask test` runs after the host unit tests: the loom
//! model of the URPC ring (`crates/urpc/tests/loom.rs`), which explores the
//! interleavings of sender and receiver; `atoll-urpc`'s tests under Miri,
//! which checks the crate's unsafe code for undefined behaviour and data
//! races; the exhaustive model check of the agreement protocols on three
//! cores; the deterministic simulator of the protocols over many seeds; and
//! the simulator of whole monitors over many seeds (`sim/`), all optimised,
//! with the larger scenarios and seed counts that the debug `cargo test`
//! skips; and the mutants: each deliberate bug of `atoll_proto::mutants`
//! switched on in turn, under the simulator that must catch it.
//! Miri needs a nightly toolchain; the one pinned here is installed with
//! rustup when missing, as the prerequisites are.

use std::process::{Command, Stdio};

use atoll_proto::mutants::Mutant;
use std::time::Instant;

use anyhow::{Result, ensure};

use crate::workspace::{Workspace, run};

/// The nightly that runs Miri. Pinned so that a new nightly's Miri, with new
/// checks and new bugs, comes in by a deliberate change of this line.
pub const MIRI_TOOLCHAIN: &str = "nightly-2026-05-20";

/// Loom's preemption bound for the model. The test file sets the same bound
/// when the variable is unset; setting it here keeps the command that xtask
/// prints complete on its own.
const LOOM_MAX_PREEMPTIONS: &str = "3";

/// How many checks passed and how many failed.
#[derive(Debug, Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
}

#[derive(Clone, Copy)]
enum Check {
    UrpcLoom,
    UrpcMiri,
    ProtocolModel,
    ProtocolSeeds,
    MonitorSeeds,
    Mutants,
}

const CHECKS: [Check; 6] = [
    Check::UrpcLoom,
    Check::UrpcMiri,
    Check::ProtocolModel,
    Check::ProtocolSeeds,
    Check::MonitorSeeds,
    Check::Mutants,
];

/// Simulator seeds per run: about 1 s each 15,000, optimised, on the CI machine.
const SIMULATOR_SEEDS: &str = "50000";
/// Seeds of the simulator of whole monitors: about 1 s each 500, optimised.
const MONITOR_SEEDS: &str = "10000";

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::UrpcLoom => "urpc-loom",
            Check::UrpcMiri => "urpc-miri",
            Check::ProtocolModel => "protocol-model-check",
            Check::ProtocolSeeds => "protocol-simulator-seeds",
            Check::MonitorSeeds => "monitor-simulator-seeds",
            Check::Mutants => "mutants-are-caught",
        }
    }

    fn run(self, workspace: &Workspace) -> Result<()> {
        match self {
            Check::UrpcLoom => run(&mut loom_command(workspace)),
            Check::UrpcMiri => {
                ensure_miri(workspace)?;
                run(&mut miri_command(workspace))
            }
            Check::ProtocolModel => run(&mut simulator_test(workspace, "model_check")),
            Check::ProtocolSeeds => {
                run(simulator_test(workspace, "seeds").env("ATOLL_SIM_SEEDS", SIMULATOR_SEEDS))
            }
            Check::MonitorSeeds => {
                run(simulator_test(workspace, "monitors").env("ATOLL_SIM_SEEDS", MONITOR_SEEDS))
            }
            Check::Mutants => run_mutants(workspace),
        }
    }
}

/// The check that must catch a mutant.
#[derive(Clone, Copy)]
enum Catcher {
    /// The simulator of the protocols and the replica, with membership.
    ProtocolSeeds,
    /// The simulator of whole monitors.
    MonitorSeeds,
    /// A unit test of `atoll-proto`, for a bug that the membership's
    /// flush masks in the whole system but that breaks the protocol's own
    /// contract with any other host.
    ProtoTest(&'static str),
    /// A unit test of `atoll-monitor`, for a bug whose window the
    /// simulator's schedules reach too rarely to count on.
    MonitorTest(&'static str),
}

impl Catcher {
    fn name(self) -> &'static str {
        match self {
            Catcher::ProtocolSeeds => "the protocol simulator",
            Catcher::MonitorSeeds => "the monitor simulator",
            Catcher::ProtoTest(test) | Catcher::MonitorTest(test) => test,
        }
    }

    fn command(self, workspace: &Workspace) -> Command {
        match self {
            Catcher::ProtocolSeeds | Catcher::MonitorSeeds => {
                let test = match self {
                    Catcher::ProtocolSeeds => "seeds",
                    _ => "monitors",
                };
                let seeds = match self {
                    Catcher::ProtocolSeeds => SIMULATOR_SEEDS,
                    _ => MONITOR_SEEDS,
                };
                let mut command = simulator_test(workspace, test);
                command
                    .args(["--features", "mutants", "--", "seeds", "--exact"])
                    .env("ATOLL_SIM_SEEDS", seeds);
                command
            }
            Catcher::ProtoTest(test) | Catcher::MonitorTest(test) => {
                let (package, features) = match self {
                    Catcher::ProtoTest(_) => ("atoll-proto", "mutants"),
                    _ => ("atoll-monitor", "mutants,testing"),
                };
                let mut command = workspace.cargo();
                command.args([
                    "test",
                    "--release",
                    "--package",
                    package,
                    "--features",
                    features,
                    "--lib",
                    "--",
                    test,
                    "--exact",
                ]);
                command
            }
        }
    }
}

/// The check that must catch `mutant`. A new mutant must be given one here,
/// or this does not compile.
fn catcher(mutant: Mutant) -> Catcher {
    match mutant {
        Mutant::LockTwice
        | Mutant::CommitOnFirstYes
        | Mutant::UnmapKeepsTlb
        | Mutant::AckBeforeMembers
        | Mutant::AbortWithoutInquiry
        | Mutant::WaitForDeadCoordinator
        | Mutant::AbortOnlyYesVoters
        | Mutant::ForgetRoundAtTimeout
        | Mutant::ProtectKeepsTlb
        | Mutant::InstallWithoutFlush
        | Mutant::ForgetRelayAtTimeout => Catcher::ProtocolSeeds,
        Mutant::AnswerBeforeDown => Catcher::ProtoTest(
            "two_phase::tests::an_inquiry_is_answered_only_once_the_coordinator_is_down_to_the_one_asked",
        ),
        Mutant::ViewWithoutCoreDown
        | Mutant::NeverSuspect
        | Mutant::NoHeartbeats
        | Mutant::SnapshotWithRoundsOpen => Catcher::MonitorSeeds,
        Mutant::ServeBeforeSnapshot => Catcher::MonitorTest(
            "tests::membership::a_proposal_that_reaches_a_core_catching_up_waits_for_its_snapshot",
        ),
    }
}

/// Runs each mutant under its check (built with the `mutants` feature) and
/// fails unless every one is caught: a simulator's seed breaks an
/// invariant, or the unit test fails its assertion; prints how.
fn run_mutants(workspace: &Workspace) -> Result<()> {
    let mut survivors = Vec::new();
    for mutant in Mutant::ALL {
        let catcher = catcher(mutant);
        let test = catcher.name();
        let output = catcher
            .command(workspace)
            .env("ATOLL_MUTANT", mutant.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        let text = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        // A seed's broken invariant, or else a unit test's failed assertion
        // (the line after its panic line).
        let mut lines = text.lines();
        let broke = text
            .lines()
            .find(|line| line.contains("broke an invariant"))
            .map(str::to_owned)
            .or_else(|| {
                lines.find(|line| line.contains("panicked at"))?;
                lines.next().map(str::to_owned)
            });
        // A run that could not switch the mutant on tested nothing.
        let broke = broke.filter(|line| !line.contains("ATOLL_MUTANT"));
        match (output.status.success(), broke) {
            (false, Some(line)) => println!("mutant {} caught by {test}: {line}", mutant.name()),
            (success, _) => {
                println!(
                    "mutant {} SURVIVED {test} ({})",
                    mutant.name(),
                    if success {
                        "every seed passed"
                    } else {
                        "it failed, but broke no invariant"
                    }
                );
                survivors.push(mutant.name());
            }
        }
    }
    ensure!(
        survivors.is_empty(),
        "mutants not caught: {}",
        survivors.join(", ")
    );
    Ok(())
}

/// Runs every check, printing each one's result as `check NAME ... ok` or
/// `... FAILED` with the reason; the commands' own output goes straight to
/// the terminal.
pub fn run_all(workspace: &Workspace) -> Tally {
    let mut tally = Tally::default();
    for check in CHECKS {
        println!("\nxtask: check {}", check.name());
        let started = Instant::now();
        let result = check.run(workspace);
        let seconds = started.elapsed().as_secs_f32();
        match result {
            Ok(()) => {
                tally.passed += 1;
                println!("check {} ... ok ({seconds:.1} s)", check.name());
            }
            Err(error) => {
                tally.failed += 1;
                println!(
                    "check {} ... FAILED ({seconds:.1} s)\n    {error:#}",
                    check.name()
                );
            }
        }
    }
    tally
}

/// The loom model, in a target directory of its own: `--cfg loom` changes
/// every crate's flags, and sharing the main one would rebuild everything
/// twice per run.
fn loom_command(workspace: &Workspace) -> Command {
    let mut command = workspace.cargo();
    command
        .args([
            "test",
            "--package",
            "atoll-urpc",
            "--test",
            "loom",
            "--release",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("LOOM_MAX_PREEMPTIONS", LOOM_MAX_PREEMPTIONS)
        .env("CARGO_TARGET_DIR", workspace.target_dir.join("loom"));
    command
}

/// One of the simulator's test files, optimised: the model check explores
/// millions of states and the seeds run by the ten thousand.
fn simulator_test(workspace: &Workspace, test: &str) -> Command {
    let mut command = workspace.cargo();
    command.args([
        "test",
        "--release",
        "--package",
        "atoll-sim",
        "--test",
        test,
    ]);
    command
}

/// `cargo miri test` of the URPC crate: its unit tests and its property
/// tests (which shrink themselves under Miri). Miri keeps its builds under
/// `miri/` in the target directory.
fn miri_command(workspace: &Workspace) -> Command {
    let mut command = nightly_cargo(workspace);
    command.args(["miri", "test", "--package", "atoll-urpc"]);
    command
}

/// The pinned nightly's cargo, through rustup: the `cargo` that started
/// xtask is the stable one of rust-toolchain.toml.
fn nightly_cargo(workspace: &Workspace) -> Command {
    let mut command = Command::new("rustup");
    command
        .args(["run", MIRI_TOOLCHAIN, "cargo"])
        .current_dir(&workspace.root);
    command
}

/// The rustup command that installs what the Miri check needs.
const INSTALL_MIRI: [&str; 7] = [
    "toolchain",
    "install",
    MIRI_TOOLCHAIN,
    "--profile",
    "minimal",
    "--component",
    "miri,rust-src",
];

/// Installs the pinned nightly with Miri when it is missing, then lets Miri
/// build its sysroot (once; later runs find it in Miri's cache).
fn ensure_miri(workspace: &Workspace) -> Result<()> {
    if !miri_is_installed(workspace) {
        let install = format!("rustup {}", INSTALL_MIRI.join(" "));
        eprintln!("xtask: Miri's toolchain {MIRI_TOOLCHAIN} is missing; running {install}");
        let installed = Command::new("rustup")
            .args(INSTALL_MIRI)
            .status()
            .is_ok_and(|status| status.success());
        ensure!(
            installed && miri_is_installed(workspace),
            "cannot install Miri; install it with:\n    {install}"
        );
    }
    run(nightly_cargo(workspace).args(["miri", "setup"]))
}

fn miri_is_installed(workspace: &Workspace) -> bool {
    nightly_cargo(workspace)
        .args(["miri", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::shown;
    use std::path::PathBuf;

    fn workspace() -> Workspace {
        Workspace {
            root: PathBuf::from("/atoll"),
            target_dir: PathBuf::from("/atoll/target"),
        }
    }

    #[test]
    fn the_loom_command_is_bounded_and_builds_apart() {
        let shown = shown(&loom_command(&workspace()));
        for setting in [
            "RUSTFLAGS=\"--cfg loom\"",
            "LOOM_MAX_PREEMPTIONS=3",
            "CARGO_TARGET_DIR=/atoll/target/loom",
        ] {
            assert!(shown.contains(setting), "{shown} lacks {setting}");
        }
        assert!(shown.ends_with(" test --package atoll-urpc --test loom --release"));
    }

    #[test]
    fn miri_runs_on_the_pinned_nightly() {
        assert_eq!(
            shown(&miri_command(&workspace())),
            format!("rustup run {MIRI_TOOLCHAIN} cargo miri test --package atoll-urpc")
        );
    }
}
