//! `cargo xtask test`: the host unit tests, the `checks` (loom, Miri, the
//! protocol model check and simulator seeds), then the QEMU integration
//! tests of `cases` and `skb`: first those that must run alone (machines
//! of 64 and 128 cores), then the rest two at a time (the project's
//! machines have two cores). Each test boots QEMU with a timeout and asserts
//! on the serial output; a failure shows its reason and the tail of that
//! output. Checks and QEMU tests count together in the final tally.

mod cases;
mod membership;
mod monitor;
mod skb;
mod user;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::checks::{self, Tally};
use crate::cli::TestOptions;
use crate::iso;
use crate::prereqs::{self, Need};
use crate::protocol::{self, PROMPT};
use crate::qemu::{self, Boot, Console, Machine, Ovmf, QemuExit};
use crate::session::{Input, Logs, Session};
use crate::workspace::Workspace;

const PARALLEL: usize = 2;
const EXEC_TIMEOUT: Duration = Duration::from_secs(120);
const SHELL_TIMEOUT: Duration = Duration::from_secs(120);
/// How much serial output a failure report shows.
const TAIL_LINES: usize = 40;
const TAIL_LINE_CHARS: usize = 160;

pub fn run(workspace: &Workspace, options: &TestOptions) -> Result<ExitCode> {
    let tests: Vec<QemuTest> = all_tests()
        .into_iter()
        .filter(|test| {
            options
                .filter
                .as_ref()
                .is_none_or(|filter| test.name.contains(filter))
        })
        .collect();
    ensure!(
        !tests.is_empty(),
        "no QEMU test name contains `{}`",
        options.filter.as_deref().unwrap_or_default()
    );
    prereqs::ensure(workspace, Need::Everything)?;
    if !options.skip_host {
        println!("xtask: host unit tests");
        workspace.run_host_tests()?;
    }
    let checks = if options.skip_checks {
        Tally::default()
    } else {
        checks::run_all(workspace)
    };
    let env = Env {
        workspace,
        kernel: workspace.build_kernel()?,
        ovmf: Ovmf::find().context("no OVMF firmware found")?,
        test_iso: OnceLock::new(),
    };
    println!(
        "\nxtask: {} QEMU tests, {} at a time",
        tests.len(),
        PARALLEL.min(tests.len())
    );
    let qemu_failed = run_all(&env, &tests);
    let passed = tests.len() - qemu_failed + checks.passed;
    let failed = qemu_failed + checks.failed;
    println!("\n{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every QEMU test, slowest first as far as the lists go.
fn all_tests() -> Vec<QemuTest> {
    let mut tests = cases::all();
    tests.extend(skb::tests());
    tests.extend(monitor::tests());
    tests.extend(membership::tests());
    tests.extend(user::tests());
    tests
}

/// What every test may use: the kernel, the firmware, the test ISO.
pub struct Env<'a> {
    workspace: &'a Workspace,
    kernel: PathBuf,
    ovmf: Ovmf,
    test_iso: OnceLock<Result<PathBuf, String>>,
}

impl Env<'_> {
    /// The ISO that boots into `cases::ISO_SCRIPT`, built by the first test
    /// that asks for it (a run filtered to other tests never builds it).
    fn test_iso(&self) -> Result<&Path, String> {
        let built = self.test_iso.get_or_init(|| {
            let out = self.workspace.target_dir.join("atoll-test.iso");
            iso::build(self.workspace, &self.kernel, Some(cases::ISO_SCRIPT), &out)
                .map(|()| out)
                .map_err(|error| format!("building the test ISO failed: {error:#}"))
        });
        built.as_deref().map_err(Clone::clone)
    }
}

type TestBody = dyn Fn(&mut TestContext) -> Result<(), String> + Send + Sync;

pub struct QemuTest {
    name: String,
    body: Box<TestBody>,
    /// Runs with no other test beside it.
    alone: bool,
}

impl QemuTest {
    fn new(
        name: impl Into<String>,
        body: impl Fn(&mut TestContext) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        QemuTest {
            name: name.into(),
            body: Box::new(body),
            alone: false,
        }
    }

    /// A test that runs with no other beside it: a machine of many times
    /// more vCPUs than the host has CPUs, whose cores another boot would
    /// slow past the protocols' timeouts.
    fn alone(
        name: impl Into<String>,
        body: impl Fn(&mut TestContext) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        QemuTest {
            alone: true,
            ..QemuTest::new(name, body)
        }
    }
}

/// Runs the tests that must run alone one after another, then the others on
/// `PARALLEL` threads, printing each result as it comes; returns how many
/// failed.
fn run_all(env: &Env, tests: &[QemuTest]) -> usize {
    let (alone, tests): (Vec<&QemuTest>, Vec<&QemuTest>) =
        tests.iter().partition(|test| test.alone);
    let failed = AtomicUsize::new(0);
    let run = |test: &QemuTest| {
        let (passed, report) = run_one(env, test);
        if !passed {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        // One print per report, so that the two threads' reports never interleave.
        print!("{report}");
    };
    alone.into_iter().for_each(run);
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..PARALLEL.min(tests.len()) {
            scope.spawn(|| {
                while let Some(test) = tests.get(next.fetch_add(1, Ordering::Relaxed)) {
                    run(test);
                }
            });
        }
    });
    failed.into_inner()
}

fn run_one(env: &Env, test: &QemuTest) -> (bool, String) {
    let started = Instant::now();
    let mut context = TestContext {
        env,
        logs: Vec::new(),
    };
    let result = (test.body)(&mut context);
    let seconds = started.elapsed().as_secs_f32();
    match result {
        Ok(()) => (
            true,
            format!("test {} ... ok ({seconds:.1} s)\n", test.name),
        ),
        Err(reason) => {
            let mut report = format!(
                "test {} ... FAILED ({seconds:.1} s)\n    {reason}\n",
                test.name
            );
            for logs in &context.logs {
                report += &tail("serial output", &logs.serial.text());
                report += &tail("QEMU stderr", &logs.stderr.text());
            }
            (false, report)
        }
    }
}

/// The last lines of `text`, indented, with control characters escaped (the
/// garbage test's escape sequences would otherwise drive the terminal) and
/// long lines cut.
fn tail(title: &str, text: &str) -> String {
    let lines: Vec<&str> = protocol::lines(text).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(TAIL_LINES);
    let mut out = format!(
        "    {title}, last {} of {} lines:\n",
        lines.len() - start,
        lines.len()
    );
    for line in &lines[start..] {
        let mut shown = String::new();
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                shown.extend(c.escape_default());
            } else {
                shown.push(c);
            }
        }
        let cut = shown.chars().count() > TAIL_LINE_CHARS;
        let shown: String = shown.chars().take(TAIL_LINE_CHARS).collect();
        out += &format!("    | {shown}{}\n", if cut { " [...]" } else { "" });
    }
    out
}

/// One test's access to QEMU. It remembers the logs of every QEMU it
/// started, for the failure report.
pub struct TestContext<'a> {
    env: &'a Env<'a>,
    logs: Vec<Arc<Logs>>,
}

/// A finished exec-mode run.
pub struct ExecRun {
    exit: QemuExit,
    serial: String,
}

impl TestContext<'_> {
    fn start(
        &mut self,
        machine: &Machine,
        boot: &Boot,
        input: Input,
        timeout: Duration,
    ) -> Result<Session, String> {
        let command = qemu::command(machine, boot, Console::Plain);
        let session =
            Session::start(command, input, false, timeout).map_err(|error| error.to_string())?;
        self.logs.push(session.logs());
        Ok(session)
    }

    /// Boots the kernel directly (PVH) on `cores` cores and runs `script`.
    fn exec(&mut self, cores: u8, script: &str) -> Result<ExecRun, String> {
        let machine = Machine {
            cores,
            ..Machine::default()
        };
        self.exec_on(&machine, script, EXEC_TIMEOUT)
    }

    /// Boots the kernel directly (PVH) on `cores` cores split evenly into
    /// `nodes` NUMA nodes and runs `script`.
    fn exec_numa(&mut self, cores: u8, nodes: u8, script: &str) -> Result<ExecRun, String> {
        let machine = Machine {
            cores,
            numa_nodes: nodes,
            ..Machine::default()
        };
        self.exec_on(&machine, script, cases::SEABIOS_TIMEOUT)
    }

    /// Boots the kernel directly (PVH) on `machine` and runs `script`.
    fn exec_on(
        &mut self,
        machine: &Machine,
        script: &str,
        timeout: Duration,
    ) -> Result<ExecRun, String> {
        self.exec_with_options(machine, "", script, timeout)
    }

    /// As [`exec_on`](Self::exec_on), with `options` (kernel command-line
    /// options such as `atoll.call_timeout_ms=500`) before the script.
    fn exec_with_options(
        &mut self,
        machine: &Machine,
        options: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<ExecRun, String> {
        let cmdline = protocol::exec_cmdline(script);
        let boot = Boot::Kernel {
            elf: &self.env.kernel,
            cmdline: Some(if options.is_empty() {
                cmdline
            } else {
                format!("{options} {cmdline}")
            }),
        };
        self.exec_boot(machine, &boot, timeout)
    }

    /// Boots `boot`, which must run an exec script, and waits for the end.
    fn exec_boot(
        &mut self,
        machine: &Machine,
        boot: &Boot,
        timeout: Duration,
    ) -> Result<ExecRun, String> {
        // As `cargo xtask run` does: enough memory for the cores.
        let mut machine = machine.clone();
        machine.fit_memory().map_err(|error| error.to_string())?;
        let machine = &machine;
        let mut session = self.start(machine, boot, Input::Closed, timeout)?;
        let exit = session.finish()?;
        Ok(ExecRun {
            exit,
            serial: session.logs().serial.text(),
        })
    }

    /// Boots the kernel into the interactive shell, with the serial input
    /// piped from this process, and waits for the first prompt.
    fn shell(&mut self, cores: u8) -> Result<Shell, String> {
        let env = self.env;
        let boot = Boot::Kernel {
            elf: &env.kernel,
            cmdline: None,
        };
        let machine = Machine {
            cores,
            ..Machine::default()
        };
        let session = self.start(&machine, &boot, Input::Piped, SHELL_TIMEOUT)?;
        let first_prompt = session.wait_for(PROMPT, 0)?;
        Ok(Shell {
            session,
            cursor: first_prompt,
        })
    }
}

/// The interactive shell, driven as a person at a terminal would: wait for
/// the prompt, type a line, press Enter.
struct Shell {
    session: Session,
    /// The serial offset just past the last prompt.
    cursor: usize,
}

impl Shell {
    /// Everything printed so far.
    fn serial(&self) -> String {
        self.session.logs().serial.text()
    }

    /// Types `line` and Enter (CR, as a terminal sends it), waits for the next
    /// prompt, and returns what came in between: the echo of the line, then
    /// the command's output.
    fn command(&mut self, line: &[u8]) -> Result<String, String> {
        self.session.send(&[line, b"\r"].concat())?;
        let next = self.session.wait_for(PROMPT, self.cursor)?;
        let output = self
            .session
            .logs()
            .serial
            .text_between(self.cursor, next - PROMPT.len());
        self.cursor = next;
        Ok(output)
    }

    /// Types `halt` and waits for QEMU to end.
    fn halt(&mut self) -> Result<QemuExit, String> {
        self.session.send(b"halt\r")?;
        self.session.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_escapes_control_characters_and_cuts_long_lines() {
        let text = format!("one\r\n\x1b[2Jtwo\x00\r\n{}\r\n", "x".repeat(200));
        let shown = tail("serial output", &text);
        let expected = format!(
            "    serial output, last 3 of 3 lines:\n    | one\n    | \\u{{1b}}[2Jtwo\\u{{0}}\n    | {} [...]\n",
            "x".repeat(TAIL_LINE_CHARS)
        );
        assert_eq!(shown, expected);
        assert_eq!(tail("QEMU stderr", ""), "");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let shown = tail("serial output", &text);
        assert!(shown.starts_with("    serial output, last 40 of 100 lines:\n    | line 60\n"));
        assert!(shown.ends_with("    | line 99\n"));
    }
}
