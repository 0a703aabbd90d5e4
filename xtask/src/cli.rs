//! Command-line parsing for `cargo xtask`. Hand-written to keep the
//! dependency list short; every bad argument gets an error that names it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::qemu::Machine;

pub const USAGE: &str = "\
usage: cargo xtask <command> [flags]

commands:
  run    build the kernel and boot it in QEMU with the serial console on this terminal
           --cores N      cores to boot, 1 to 255 (default 4)
           --mem SIZE     guest memory, e.g. 512M or 2G (default 512M, or what the cores
                          need if more: each core's heap grows with the square of the
                          core count, 2624M at 128 cores; less than they need is refused)
           --numa NODES   split cores and memory evenly into NUMA nodes, described in an
                          ACPI SRAT (default: no NUMA configuration and no SRAT)
           --numa-distances ROWS
                          with --numa 2 or more: the distance from each node (row) to each
                          node (column) for the ACPI SLIT, rows split by `/`, columns by `,`,
                          e.g. 10,20/30,10; 10 on the diagonal, 10 to 255 elsewhere, may be
                          asymmetric (default: none, and QEMU builds no SLIT)
           --exec SCRIPT  run \"cmd; cmd\" instead of the interactive shell, then power off;
                          exits 0 only if every command succeeded
           --timeout SECS with --exec: kill QEMU and fail after SECS seconds (default 300)
  trace  run a script with tracing on every core, then write the trace for Perfetto
         (Chrome Trace Event JSON) and print messages per core pair and latencies
           --exec SCRIPT  the commands to trace (required)
           --out PATH     where to write the JSON (required)
           --cores, --mem, --numa, --numa-distances, --timeout  as for run
  gdb    boot in QEMU stopped at the first instruction, with QEMU's gdbstub, and
         start gdb with the kernel's symbols, attached to it (serial output goes to
         target/gdb-serial.log)
           --cores, --mem, --numa, --numa-distances, --exec  as for run
           --port N       the gdbstub's TCP port (default 1234)
           --batch FILE   run gdb's commands from FILE and exit, as a script would
  iso    build a GRUB rescue ISO that boots under BIOS and UEFI
           --exec SCRIPT  boot straight into the script, as `run --exec` does
           --out PATH     where to write it (default target/atoll.iso)
  test   run the host unit tests, the checks (loom, Miri, protocol model check, simulator
         seeds), then the QEMU integration tests
           --filter TEXT  run only the QEMU tests whose name contains TEXT
           --skip-host    skip the host unit tests
           --skip-checks  skip the checks
  bench  run a benchmark on pinned CPUs, print its table and write
         bench/results/<name>.json and .svg (see bench/results/README.md)
           <name>           urpc (URPC against its floor and peers) or urpc-depth;
                            fig3, replication or sharing (shared state over cores);
                            monitor (round trips through two monitors, tracing off and on);
                            membership (detection, view changes, heartbeats; 2 to 256
                            simulated monitors);
                            model (modelled cycles of shootdown, map and unmap on
                            machines of 16 to 1024 cores, against shared memory);
                            protocols (a map and its unmap among 1 to every CPU's
                            monitors over URPC, against a locked table);
                            fuzz (in QEMU, not hosted: 10^6 random system calls on each
                            of 4 cores, written to bench/results/qemu-fuzz.txt);
                            qemu (the kernel's own benchmarks in QEMU, each written
                            to bench/results/qemu-<name>.txt)
           --only NAME      with qemu: that file alone (urpc-bench, shootdown,
                            shootdown-4-nodes, fig3, trace, heartbeats, userspace,
                            membership or rejoin)
           --cpus A,B       the two CPUs (default: the first two this process may use;
                            fig3, replication and sharing: every CPU it may use)
           --repetitions N  rounds, each with every row interleaved (default 15;
                            fig3, replication and sharing: 10)
  help   print this text

In `run` without --exec, quit with the shell's `halt` or with Ctrl-A X.";

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(RunOptions),
    Trace(TraceOptions),
    Gdb(GdbOptions),
    Iso(IsoOptions),
    Test(TestOptions),
    Bench(BenchOptions),
    Help,
}

#[derive(Debug, PartialEq)]
pub struct RunOptions {
    pub machine: Machine,
    pub mode: RunMode,
}

#[derive(Debug, PartialEq)]
pub enum RunMode {
    /// The shell reads the terminal; QEMU's exit status passes through.
    Interactive,
    /// The kernel runs `script` and reports through isa-debug-exit.
    Exec { script: String, timeout: Duration },
}

#[derive(Debug, PartialEq)]
pub struct TraceOptions {
    pub machine: Machine,
    pub script: String,
    pub out: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug, PartialEq)]
pub struct GdbOptions {
    pub machine: Machine,
    pub script: Option<String>,
    pub port: u16,
    pub batch: Option<PathBuf>,
}

#[derive(Debug, PartialEq)]
pub struct IsoOptions {
    pub exec: Option<String>,
    /// `None` means the default, `target/atoll.iso`.
    pub out: Option<PathBuf>,
}

#[derive(Debug, PartialEq)]
pub struct TestOptions {
    pub filter: Option<String>,
    pub skip_host: bool,
    pub skip_checks: bool,
}

#[derive(Debug, PartialEq)]
pub struct BenchOptions {
    pub benchmark: Benchmark,
    pub cpus: Option<(usize, usize)>,
    pub repetitions: Option<u32>,
    /// `bench qemu --only NAME`: that recording alone.
    pub only: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Benchmark {
    Urpc,
    UrpcDepth,
    Fig3,
    Replication,
    Sharing,
    Monitor,
    Membership,
    Model,
    Protocols,
    /// Not hosted: `fuzz` in QEMU (`crate::bench::fuzz`).
    Fuzz,
    /// Not hosted: every QEMU result, or the one `--only` names
    /// (`crate::recordings`).
    Qemu,
}

impl Benchmark {
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::Urpc => "urpc",
            Benchmark::UrpcDepth => "urpc-depth",
            Benchmark::Fig3 => "fig3",
            Benchmark::Replication => "replication",
            Benchmark::Sharing => "sharing",
            Benchmark::Monitor => "monitor",
            Benchmark::Membership => "membership",
            Benchmark::Model => "model",
            Benchmark::Protocols => "protocols",
            Benchmark::Fuzz => "fuzz",
            Benchmark::Qemu => "qemu",
        }
    }

    /// The `hosted/benches` target that runs it, if it is a hosted one.
    pub fn target(self) -> Option<&'static str> {
        match self {
            Benchmark::Urpc | Benchmark::UrpcDepth | Benchmark::Monitor => Some("urpc"),
            Benchmark::Fig3
            | Benchmark::Replication
            | Benchmark::Sharing
            | Benchmark::Membership
            | Benchmark::Model
            | Benchmark::Protocols => Some("scaling"),
            Benchmark::Fuzz | Benchmark::Qemu => None,
        }
    }
}

const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(300);

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut flags = Flags {
        args: args.into_iter().collect(),
    };
    let Some(command) = flags.args.pop_front() else {
        bail!("no command given");
    };
    match command.as_str() {
        "run" => parse_run(flags).map(Command::Run),
        "trace" => parse_trace(flags).map(Command::Trace),
        "gdb" => parse_gdb(flags).map(Command::Gdb),
        "iso" => parse_iso(flags).map(Command::Iso),
        "test" => parse_test(flags).map(Command::Test),
        "bench" => parse_bench(flags).map(Command::Bench),
        "help" | "-h" | "--help" => Ok(Command::Help),
        other => bail!("unknown command `{other}`"),
    }
}

/// Takes `flag` if it is one of the machine's (`--cores`, `--mem`,
/// `--numa`, `--numa-distances`); gives it back otherwise.
fn machine_flag(machine: &mut Machine, flags: &mut Flags, flag: Flag) -> Result<Option<Flag>> {
    match flag.name.as_str() {
        "--cores" => machine.cores = parse_cores(&flags.value(flag)?)?,
        "--numa" => machine.numa_nodes = parse_numa_nodes(&flags.value(flag)?)?,
        "--numa-distances" => {
            machine.numa_distances = Some(parse_numa_distances(&flags.value(flag)?)?);
        }
        "--mem" => {
            let value = flags.value(flag)?;
            machine.memory = value.parse().with_context(|| format!("--mem {value}"))?;
            machine.memory_given = true;
        }
        _ => return Ok(Some(flag)),
    }
    Ok(None)
}

fn parse_run(mut flags: Flags) -> Result<RunOptions> {
    let mut machine = Machine::default();
    let mut script = None;
    let mut timeout = None;
    while let Some(flag) = flags.next_flag("run")? {
        let Some(flag) = machine_flag(&mut machine, &mut flags, flag)? else {
            continue;
        };
        match flag.name.as_str() {
            "--exec" => script = Some(parse_script(flags.value(flag)?)?),
            "--timeout" => timeout = Some(parse_seconds(&flags.value(flag)?)?),
            _ => return Err(flag.unknown("run")),
        }
    }
    check_machine(&mut machine)?;
    let mode = match (script, timeout) {
        (Some(script), timeout) => RunMode::Exec {
            script,
            timeout: timeout.unwrap_or(DEFAULT_EXEC_TIMEOUT),
        },
        (None, Some(_)) => bail!("--timeout applies only with --exec"),
        (None, None) => RunMode::Interactive,
    };
    Ok(RunOptions { machine, mode })
}

fn parse_trace(mut flags: Flags) -> Result<TraceOptions> {
    let mut machine = Machine::default();
    let (mut script, mut out, mut timeout) = (None, None, None);
    while let Some(flag) = flags.next_flag("trace")? {
        let Some(flag) = machine_flag(&mut machine, &mut flags, flag)? else {
            continue;
        };
        match flag.name.as_str() {
            "--exec" => script = Some(parse_script(flags.value(flag)?)?),
            "--out" => out = Some(PathBuf::from(flags.value(flag)?)),
            "--timeout" => timeout = Some(parse_seconds(&flags.value(flag)?)?),
            _ => return Err(flag.unknown("trace")),
        }
    }
    check_machine(&mut machine)?;
    Ok(TraceOptions {
        machine,
        script: script.ok_or_else(|| anyhow!("trace needs --exec with the commands to trace"))?,
        out: out.ok_or_else(|| anyhow!("trace needs --out with the JSON file to write"))?,
        timeout: timeout.unwrap_or(DEFAULT_EXEC_TIMEOUT),
    })
}

const DEFAULT_GDB_PORT: u16 = 1234;

fn parse_gdb(mut flags: Flags) -> Result<GdbOptions> {
    let mut options = GdbOptions {
        machine: Machine::default(),
        script: None,
        port: DEFAULT_GDB_PORT,
        batch: None,
    };
    while let Some(flag) = flags.next_flag("gdb")? {
        let Some(flag) = machine_flag(&mut options.machine, &mut flags, flag)? else {
            continue;
        };
        match flag.name.as_str() {
            "--exec" => options.script = Some(parse_script(flags.value(flag)?)?),
            "--port" => {
                options.port = at_least_one(
                    &flags.value(flag)?,
                    "--port expects a TCP port number from 1 to 65535",
                )?;
            }
            "--batch" => options.batch = Some(PathBuf::from(flags.value(flag)?)),
            _ => return Err(flag.unknown("gdb")),
        }
    }
    check_machine(&mut options.machine)?;
    Ok(options)
}

fn parse_iso(mut flags: Flags) -> Result<IsoOptions> {
    let mut options = IsoOptions {
        exec: None,
        out: None,
    };
    while let Some(flag) = flags.next_flag("iso")? {
        match flag.name.as_str() {
            "--exec" => options.exec = Some(parse_script(flags.value(flag)?)?),
            "--out" => options.out = Some(PathBuf::from(flags.value(flag)?)),
            _ => return Err(flag.unknown("iso")),
        }
    }
    Ok(options)
}

fn parse_test(mut flags: Flags) -> Result<TestOptions> {
    let mut options = TestOptions {
        filter: None,
        skip_host: false,
        skip_checks: false,
    };
    while let Some(flag) = flags.next_flag("test")? {
        match flag.name.as_str() {
            "--filter" => options.filter = Some(flags.value(flag)?),
            "--skip-host" => {
                flag.expect_no_value()?;
                options.skip_host = true;
            }
            "--skip-checks" => {
                flag.expect_no_value()?;
                options.skip_checks = true;
            }
            _ => return Err(flag.unknown("test")),
        }
    }
    Ok(options)
}

const BENCHMARKS: &str = "urpc, urpc-depth, fig3, replication, sharing, monitor, membership, model, protocols, fuzz or qemu";

fn parse_bench(mut flags: Flags) -> Result<BenchOptions> {
    let benchmark = match flags.args.pop_front().as_deref() {
        Some("urpc") => Benchmark::Urpc,
        Some("urpc-depth") => Benchmark::UrpcDepth,
        Some("fig3") => Benchmark::Fig3,
        Some("replication") => Benchmark::Replication,
        Some("sharing") => Benchmark::Sharing,
        Some("monitor") => Benchmark::Monitor,
        Some("membership") => Benchmark::Membership,
        Some("model") => Benchmark::Model,
        Some("protocols") => Benchmark::Protocols,
        Some("fuzz") => Benchmark::Fuzz,
        Some("qemu") => Benchmark::Qemu,
        Some(other) if !other.starts_with("--") => {
            bail!("unknown benchmark `{other}` (expected {BENCHMARKS})")
        }
        _ => bail!("bench needs a benchmark name: {BENCHMARKS}"),
    };
    let mut options = BenchOptions {
        benchmark,
        cpus: None,
        repetitions: None,
        only: None,
    };
    while let Some(flag) = flags.next_flag("bench")? {
        match flag.name.as_str() {
            "--cpus" => options.cpus = Some(parse_cpu_pair(&flags.value(flag)?)?),
            "--repetitions" => {
                options.repetitions = Some(at_least_one(
                    &flags.value(flag)?,
                    "--repetitions expects a whole number, at least 1",
                )?);
            }
            "--only" => options.only = Some(flags.value(flag)?),
            _ => return Err(flag.unknown("bench")),
        }
    }
    if benchmark.target().is_none() && (options.cpus.is_some() || options.repetitions.is_some()) {
        bail!(
            "bench {} runs in QEMU and takes neither --cpus nor --repetitions",
            benchmark.name()
        );
    }
    if benchmark != Benchmark::Qemu && options.only.is_some() {
        bail!("--only applies only to bench qemu");
    }
    Ok(options)
}

/// Two different CPUs, `A,B`: the benchmark's initiator and responder.
fn parse_cpu_pair(value: &str) -> Result<(usize, usize)> {
    let pair = value
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match pair {
        Some((a, b)) if a != b => Ok((a, b)),
        _ => bail!("--cpus expects two different CPU numbers like 0,1, got `{value}`"),
    }
}

fn parse_numa_nodes(value: &str) -> Result<u8> {
    at_least_one(
        value,
        "--numa expects a whole number of nodes from 1 to 255",
    )
}

/// QEMU 7.2 refuses a distance below 10 (the local distance) and reads it
/// as a `uint8_t`; 255 stands for "unreachable" in the SLIT.
const NUMA_DISTANCES: &str = "a whole number from 10 to 255";

/// `10,20/30,10`: rows split by `/`, a row's distances by `,`. The numbers
/// are checked here; the shape and the diagonal in [`check_numa`], once
/// `--numa` is known.
fn parse_numa_distances(value: &str) -> Result<Vec<Vec<u8>>> {
    value
        .split('/')
        .enumerate()
        .map(|(from, row)| {
            row.split(',')
                .enumerate()
                .map(|(to, entry)| match entry.trim().parse::<u8>() {
                    Ok(distance) if distance >= 10 => Ok(distance),
                    _ => bail!(
                        "--numa-distances: the distance from node {from} to node {to} \
                         (row {from}, column {to}) must be {NUMA_DISTANCES}, got `{entry}`"
                    ),
                })
                .collect()
        })
        .collect()
}

/// Whether the cores and memory split evenly into the NUMA nodes, and
/// whether the distances, if given, have a row and a column per node.
/// Fits the memory to the cores ([`Machine::fit_memory`]), then checks
/// the NUMA layout.
fn check_machine(machine: &mut Machine) -> Result<()> {
    machine.fit_memory()?;
    check_numa(machine)
}

fn check_numa(machine: &Machine) -> Result<()> {
    if let Some(rows) = &machine.numa_distances {
        check_numa_distances(rows, machine.numa_nodes)?;
    }
    let nodes = u64::from(machine.numa_nodes);
    if nodes == 0 {
        return Ok(());
    }
    if !u64::from(machine.cores).is_multiple_of(nodes) {
        bail!(
            "--numa {nodes} needs a core count divisible by {nodes}, got --cores {}",
            machine.cores
        );
    }
    if !machine.memory.mib().is_multiple_of(nodes) {
        bail!(
            "--numa {nodes} needs memory divisible into {nodes} whole MiB, got {}",
            machine.memory
        );
    }
    Ok(())
}

fn check_numa_distances(rows: &[Vec<u8>], nodes: u8) -> Result<()> {
    let nodes = usize::from(nodes);
    ensure!(
        nodes > 0,
        "--numa-distances needs --numa 2 or more, got no --numa"
    );
    ensure!(
        nodes >= 2,
        "--numa-distances needs --numa 2 or more (one node has no distances), got --numa {nodes}"
    );
    ensure!(
        rows.len() == nodes,
        "--numa-distances needs {nodes} rows split by `/`, one per node of --numa {nodes}, got {}",
        rows.len()
    );
    for (from, row) in rows.iter().enumerate() {
        ensure!(
            row.len() == nodes,
            "--numa-distances row {from} needs {nodes} distances split by `,`, \
             one per node of --numa {nodes}, got {}",
            row.len()
        );
        ensure!(
            row[from] == 10,
            "--numa-distances: node {from}'s distance to itself (row {from}, column {from}) \
             must be 10, got {}",
            row[from]
        );
    }
    Ok(())
}

/// The xAPIC gives each core an 8-bit id, so 255 is as far as the kernel can count.
fn parse_cores(value: &str) -> Result<u8> {
    at_least_one(value, "--cores expects a whole number from 1 to 255")
}

fn parse_seconds(value: &str) -> Result<Duration> {
    at_least_one(
        value,
        "--timeout expects a whole number of seconds, at least 1",
    )
    .map(Duration::from_secs)
}

/// `value` as a whole number of at least 1 that fits `T`; otherwise
/// `expected`, followed by the value given, is the error.
fn at_least_one<T: FromStr + PartialOrd + From<u8>>(value: &str, expected: &str) -> Result<T> {
    match value.parse::<T>() {
        Ok(number) if number >= T::from(1) => Ok(number),
        _ => bail!("{expected}, got `{value}`"),
    }
}

/// The script travels on the kernel command line (and through grub.cfg for
/// the ISO), which is one line of text.
fn parse_script(script: String) -> Result<String> {
    ensure!(
        !script.trim().is_empty(),
        "--exec needs at least one command"
    );
    ensure!(
        !script.chars().any(char::is_control),
        "--exec script must be one line without control characters"
    );
    Ok(script)
}

struct Flags {
    args: VecDeque<String>,
}

struct Flag {
    name: String,
    /// The part after `=` in `--name=value`.
    inline_value: Option<String>,
}

impl Flags {
    fn next_flag(&mut self, command: &str) -> Result<Option<Flag>> {
        let Some(arg) = self.args.pop_front() else {
            return Ok(None);
        };
        ensure!(
            arg.starts_with("--"),
            "unexpected argument `{arg}` for `cargo xtask {command}`"
        );
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        Ok(Some(Flag { name, inline_value }))
    }

    /// The flag's value: after `=`, or else the next argument.
    fn value(&mut self, flag: Flag) -> Result<String> {
        flag.inline_value
            .or_else(|| self.args.pop_front())
            .ok_or_else(|| anyhow!("{} needs a value", flag.name))
    }
}

impl Flag {
    fn expect_no_value(&self) -> Result<()> {
        ensure!(self.inline_value.is_none(), "{} takes no value", self.name);
        Ok(())
    }

    fn unknown(&self, command: &str) -> anyhow::Error {
        anyhow!("unknown flag `{}` for `cargo xtask {command}`", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::MemorySize;

    fn parse_words(line: &str) -> Result<Command> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    fn error_of(line: &str) -> String {
        format!("{:#}", parse_words(line).unwrap_err())
    }

    #[test]
    fn run_defaults_to_four_cores_interactive() {
        let expected = RunOptions {
            machine: Machine::default(),
            mode: RunMode::Interactive,
        };
        assert_eq!(parse_words("run").unwrap(), Command::Run(expected));
    }

    #[test]
    fn run_takes_flags_in_both_spellings() {
        let parsed =
            parse(["run", "--cores=8", "--mem", "1G", "--exec", "cores; ipi 1"].map(str::to_owned))
                .unwrap();
        let expected = RunOptions {
            machine: Machine {
                cores: 8,
                memory: MemorySize::from_mib(1024),
                memory_given: true,
                numa_nodes: 0,
                numa_distances: None,
            },
            mode: RunMode::Exec {
                script: "cores; ipi 1".to_owned(),
                timeout: DEFAULT_EXEC_TIMEOUT,
            },
        };
        assert_eq!(parsed, Command::Run(expected));
    }

    #[test]
    fn memory_fits_the_cores_or_is_refused_naming_the_least() {
        let memory = |line: &str| match parse_words(line).unwrap() {
            Command::Run(options) => options.machine.memory.mib(),
            _ => panic!("not a run command"),
        };
        assert_eq!(memory("run --cores 8"), 512);
        assert_eq!(memory("run --cores 64"), 576);
        assert_eq!(
            memory("run --cores 128"),
            2624,
            "raised to what 128 cores need"
        );
        assert_eq!(memory("run --cores 128 --mem 3G"), 3072);
        assert!(error_of("run --cores 128 --mem 2G").contains("128 cores need at least 2624M"));
        let refused = error_of("run --cores 140");
        assert!(
            refused.contains("140 cores need at least") && refused.contains("at most 131 cores"),
            "{refused}"
        );
    }

    #[test]
    fn run_exec_takes_a_timeout() {
        let Command::Run(options) = parse_words("run --exec cores --timeout 20").unwrap() else {
            panic!("not a run command");
        };
        assert_eq!(
            options.mode,
            RunMode::Exec {
                script: "cores".to_owned(),
                timeout: Duration::from_secs(20)
            }
        );
    }

    #[test]
    fn rejects_bad_core_counts() {
        for bad in ["0", "abc", "256", "-1", ""] {
            let message = format!("{:#}", parse_cores(bad).unwrap_err());
            assert!(message.contains("1 to 255"), "{bad}: {message}");
        }
        assert_eq!(parse_cores("255").unwrap(), 255);
        assert_eq!(parse_cores("1").unwrap(), 1);
    }

    #[test]
    fn rejects_bad_run_arguments() {
        assert!(error_of("run --cores 0").contains("--cores"));
        assert!(error_of("run --cores 6 --numa 4").contains("divisible by 4"));
        assert!(error_of("run --numa 0").contains("--numa expects"));
        assert!(error_of("run --numa 2 --mem 513M").contains("whole MiB"));
        let Command::Run(options) = parse_words("run --cores 8 --numa 2").unwrap() else {
            panic!("expected run")
        };
        assert_eq!(options.machine.numa_nodes, 2);
        assert!(error_of("run --cores").contains("--cores needs a value"));
        assert!(
            error_of("run --verbose").contains("unknown flag `--verbose` for `cargo xtask run`")
        );
        assert!(error_of("run extra").contains("unexpected argument `extra`"));
        assert!(error_of("run --timeout 5").contains("only with --exec"));
        assert!(error_of("run --exec cores --timeout 0").contains("--timeout"));
        assert!(error_of("run --mem lots").contains("--mem lots"));
    }

    fn numa_distances_of(line: &str) -> Option<Vec<Vec<u8>>> {
        match parse_words(line) {
            Ok(Command::Run(options)) => options.machine.numa_distances,
            other => panic!("{line}: expected a run command, got {other:?}"),
        }
    }

    #[test]
    fn run_takes_numa_distances() {
        assert_eq!(numa_distances_of("run --cores 8 --numa 2"), None);
        assert_eq!(
            numa_distances_of("run --numa 2 --numa-distances 10,20/30,10"),
            Some(vec![vec![10, 20], vec![30, 10]])
        );
        // Either order, either spelling; 10 and 255 are QEMU's bounds.
        assert_eq!(
            numa_distances_of("run --numa-distances=10,255/10,10 --cores 2 --numa=2"),
            Some(vec![vec![10, 255], vec![10, 10]])
        );
        assert_eq!(
            parse(
                ["run", "--cores", "3", "--mem", "384M", "--numa", "3"]
                    .into_iter()
                    .chain(["--numa-distances", " 10, 20,30/ 21,10,31 /32,33,10 "])
                    .map(str::to_owned)
            )
            .map(|command| match command {
                Command::Run(options) => options.machine.numa_distances,
                _ => None,
            })
            .unwrap(),
            Some(vec![vec![10, 20, 30], vec![21, 10, 31], vec![32, 33, 10]])
        );
    }

    #[test]
    fn rejects_bad_numa_distances() {
        for (line, expected) in [
            (
                "run --numa-distances 10,20/20,10",
                "--numa-distances needs --numa 2 or more, got no --numa",
            ),
            ("run --numa 1 --numa-distances 10", "needs --numa 2 or more"),
            (
                "run --numa 2 --numa-distances 10,20",
                "--numa-distances needs 2 rows split by `/`, one per node of --numa 2, got 1",
            ),
            (
                "run --numa 2 --numa-distances 10,20/20,10/10,10",
                "needs 2 rows split by `/`, one per node of --numa 2, got 3",
            ),
            (
                "run --numa 2 --numa-distances 10,20/20",
                "--numa-distances row 1 needs 2 distances split by `,`, \
                 one per node of --numa 2, got 1",
            ),
            (
                "run --numa 2 --numa-distances 10,20,30/20,10",
                "row 0 needs 2 distances split by `,`, one per node of --numa 2, got 3",
            ),
            (
                "run --numa 2 --numa-distances 20,20/20,10",
                "--numa-distances: node 0's distance to itself (row 0, column 0) \
                 must be 10, got 20",
            ),
            (
                "run --numa 2 --numa-distances 10,9/20,10",
                "--numa-distances: the distance from node 0 to node 1 (row 0, column 1) \
                 must be a whole number from 10 to 255, got `9`",
            ),
            (
                "run --numa 2 --numa-distances 10,20/256,10",
                "from node 1 to node 0 (row 1, column 0) must be a whole number from 10 to 255, \
                 got `256`",
            ),
            (
                "run --numa 2 --numa-distances 10,20/x,10",
                "must be a whole number from 10 to 255, got `x`",
            ),
            ("run --numa 2 --numa-distances 10,-20/20,10", "got `-20`"),
            (
                "run --numa 2 --numa-distances 10,20/20,10/",
                "from node 2 to node 0 (row 2, column 0) must be a whole number from 10 to 255, \
                 got ``",
            ),
            (
                "run --numa 2 --numa-distances 10,,20/20,10",
                "(row 0, column 1) must be a whole number from 10 to 255, got ``",
            ),
            (
                "run --numa 2 --numa-distances",
                "--numa-distances needs a value",
            ),
        ] {
            let error = error_of(line);
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn rejects_empty_and_multiline_scripts() {
        assert!(error_of("run --exec=").contains("at least one command"));
        let multiline = parse(["iso", "--exec", "cores\nhalt"].map(str::to_owned));
        assert!(format!("{:#}", multiline.unwrap_err()).contains("one line"));
    }

    #[test]
    fn parses_iso_and_test() {
        assert_eq!(
            parse_words("iso --out x.iso --exec cores").unwrap(),
            Command::Iso(IsoOptions {
                exec: Some("cores".to_owned()),
                out: Some(PathBuf::from("x.iso")),
            })
        );
        assert_eq!(
            parse_words("test --filter boot --skip-host").unwrap(),
            Command::Test(TestOptions {
                filter: Some("boot".to_owned()),
                skip_host: true,
                skip_checks: false,
            })
        );
        assert_eq!(
            parse_words("test --skip-checks").unwrap(),
            Command::Test(TestOptions {
                filter: None,
                skip_host: false,
                skip_checks: true,
            })
        );
        assert!(error_of("test --skip-host=yes").contains("takes no value"));
    }

    #[test]
    fn parses_bench() {
        assert_eq!(
            parse_words("bench urpc-depth --cpus 2,3 --repetitions 5").unwrap(),
            Command::Bench(BenchOptions {
                benchmark: Benchmark::UrpcDepth,
                cpus: Some((2, 3)),
                repetitions: Some(5),
                only: None,
            })
        );
        assert_eq!(
            parse_words("bench urpc").unwrap(),
            Command::Bench(BenchOptions {
                benchmark: Benchmark::Urpc,
                cpus: None,
                repetitions: None,
                only: None,
            })
        );
        for (name, benchmark) in [
            ("fig3", Benchmark::Fig3),
            ("replication", Benchmark::Replication),
            ("sharing", Benchmark::Sharing),
            ("membership", Benchmark::Membership),
            ("model", Benchmark::Model),
            ("protocols", Benchmark::Protocols),
        ] {
            let Command::Bench(options) = parse_words(&format!("bench {name}")).unwrap() else {
                panic!("bench {name} is a bench command");
            };
            assert_eq!(
                (options.benchmark, options.benchmark.target()),
                (benchmark, Some("scaling"))
            );
            assert_eq!(options.benchmark.name(), name);
        }
        let Command::Bench(options) = parse_words("bench monitor --cpus 0,1").unwrap() else {
            panic!("bench monitor is a bench command");
        };
        assert_eq!(
            (options.benchmark, options.benchmark.target(), options.cpus),
            (Benchmark::Monitor, Some("urpc"), Some((0, 1)))
        );
        let Command::Bench(options) = parse_words("bench fuzz").unwrap() else {
            panic!("bench fuzz is a bench command");
        };
        assert_eq!(
            (options.benchmark, options.benchmark.target()),
            (Benchmark::Fuzz, None)
        );
    }

    #[test]
    fn rejects_bad_bench_arguments() {
        assert!(error_of("bench").contains("needs a benchmark name"));
        assert!(error_of("bench --cpus 0,1").contains("needs a benchmark name"));
        assert!(error_of("bench ipc").contains("unknown benchmark `ipc`"));
        assert!(error_of("bench urpc --cpus 1,1").contains("two different CPU numbers"));
        assert!(error_of("bench urpc --cpus 0").contains("two different CPU numbers"));
        assert!(error_of("bench urpc --repetitions 0").contains("--repetitions"));
        assert!(error_of("bench fuzz --cpus 0,1").contains("takes neither --cpus"));
        assert!(error_of("bench urpc extra").contains("unexpected argument `extra`"));
    }

    #[test]
    fn parses_trace_and_gdb() {
        let Command::Trace(trace) =
            parse_words("trace --cores 8 --numa 2 --exec vm --out t.json --timeout 60").unwrap()
        else {
            panic!("expected trace");
        };
        assert_eq!(trace.machine.cores, 8);
        assert_eq!(trace.machine.numa_nodes, 2);
        assert_eq!(trace.script, "vm");
        assert_eq!(trace.out, PathBuf::from("t.json"));
        assert_eq!(trace.timeout, Duration::from_secs(60));
        assert!(error_of("trace --out t.json").contains("trace needs --exec"));
        assert!(error_of("trace --exec cores").contains("trace needs --out"));
        assert!(
            error_of("trace --exec cores --out t --verbose")
                .contains("unknown flag `--verbose` for `cargo xtask trace`")
        );
        assert!(error_of("trace --cores 6 --numa 4 --exec x --out t").contains("divisible by 4"));

        assert_eq!(
            parse_words("gdb --cores 2 --port 4321 --batch session.gdb").unwrap(),
            Command::Gdb(GdbOptions {
                machine: Machine {
                    cores: 2,
                    ..Machine::default()
                },
                script: None,
                port: 4321,
                batch: Some(PathBuf::from("session.gdb")),
            })
        );
        assert!(error_of("gdb --port 0").contains("--port expects"));
        assert!(error_of("gdb --port 70000").contains("--port expects"));
    }

    #[test]
    fn rejects_unknown_and_missing_commands() {
        assert!(error_of("").contains("no command"));
        assert!(error_of("frobnicate").contains("unknown command `frobnicate`"));
        assert_eq!(parse_words("--help").unwrap(), Command::Help);
    }
}
