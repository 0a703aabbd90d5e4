//! What the kernel accepts and prints, as `docs/serial-protocol.md` specifies
//! it: the exec command line, the exit statuses, and parsers for the serial
//! lines the tests read. Change this file and that document together.

use std::collections::BTreeSet;

use crate::qemu::QemuExit;

pub mod skb;

/// QEMU exits with `(value << 1) | 1` when the guest writes `value` to
/// isa-debug-exit; the kernel writes 0, 1 or 2.
pub const STATUS_ALL_SUCCEEDED: i32 = 1;
pub const STATUS_COMMAND_FAILED: i32 = 3;
pub const STATUS_PANIC: i32 = 5;

/// The shell prints this, without a newline, when it waits for a line.
pub const PROMPT: &str = "atoll> ";

pub fn exec_cmdline(script: &str) -> String {
    format!("atoll.exec={script}")
}

/// The commands of an exec script, split by the kernel's own code.
pub fn exec_commands(script: &str) -> Vec<&str> {
    atoll_shell::split_script(script).collect()
}

/// The verdict on an exec run: `Ok` with the number of commands run only
/// when QEMU's status and the kernel's summary line both say that every
/// command succeeded. The status alone is not enough: QEMU also exits with 1
/// when it cannot start the machine.
pub fn exec_verdict(exit: QemuExit, serial: &str) -> Result<usize, String> {
    match exit {
        QemuExit::Status(STATUS_ALL_SUCCEEDED) => {}
        QemuExit::Status(STATUS_COMMAND_FAILED) => return Err(format!("{exit}: a command failed")),
        QemuExit::Status(STATUS_PANIC) => return Err(format!("{exit}: the kernel panicked")),
        QemuExit::Status(0) => {
            return Err(format!(
                "{exit}: the machine reset or powered off without reporting through isa-debug-exit"
            ));
        }
        QemuExit::Status(_) => {
            return Err(format!(
                "{exit}, which the kernel never reports (it reports 1, 3 or 5): QEMU itself failed"
            ));
        }
        QemuExit::Signal(_) | QemuExit::TimedOut(_) => return Err(exit.to_string()),
    }
    match exec_summary(serial) {
        Some((commands, 0)) => Ok(commands),
        Some((commands, failed)) => Err(format!(
            "{exit}, but the kernel reported {commands} commands, {failed} failed"
        )),
        None => Err(format!(
            "{exit}, but the kernel printed no `atoll: exec:` summary: QEMU itself failed"
        )),
    }
}

/// Lines without their `\r`: the kernel ends lines with `\r\n` for terminals.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| line.trim_end_matches('\r'))
}

/// The text after `atoll: `. Firmware (OVMF, GRUB) may leave escape
/// sequences without a newline before the kernel's first line, so the
/// marker is searched for rather than required at the start.
fn kernel_message(line: &str) -> Option<&str> {
    line.find("atoll: ").map(|at| &line[at + "atoll: ".len()..])
}

fn kernel_messages(text: &str) -> impl Iterator<Item = &str> {
    lines(text).filter_map(kernel_message)
}

/// Ids from `atoll: core <id> up (apic <apic-id>)`.
pub fn cores_up(text: &str) -> BTreeSet<u32> {
    kernel_messages(text)
        .filter_map(|message| {
            let (id, rest) = message.strip_prefix("core ")?.split_once(' ')?;
            if rest.starts_with("up (apic ") {
                id.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// `(up, total)` from `atoll: <up> of <total> cores up`.
pub fn cores_summary(text: &str) -> Option<(u32, u32)> {
    kernel_messages(text).find_map(|message| {
        let (up, total) = message.strip_suffix(" cores up")?.split_once(" of ")?;
        Some((up.parse().ok()?, total.parse().ok()?))
    })
}

/// `atoll: core <id> (apic <apic-id>) did not start: <reason>; skipped` lines.
pub fn cores_skipped(text: &str) -> Vec<&str> {
    lines(text)
        .filter(|line| kernel_message(line).is_some_and(|m| m.contains(" did not start: ")))
        .collect()
}

/// `(commands, failed)` from `atoll: exec: <n> commands, <f> failed`.
pub fn exec_summary(text: &str) -> Option<(usize, usize)> {
    kernel_messages(text).find_map(|message| {
        let counts = message.strip_prefix("exec: ")?.strip_suffix(" failed")?;
        let (commands, failed) = counts.split_once(" commands, ")?;
        Some((commands.parse().ok()?, failed.parse().ok()?))
    })
}

#[derive(Debug, PartialEq)]
pub struct CoreRow {
    pub id: u32,
    pub state: String,
    /// What the core reported; `None` (`-`) for a core outside the view.
    pub free_frames: Option<u64>,
    /// `member` or `out`: whether the shell core's view holds the core.
    pub view: String,
}

const CORES_HEADER: [&str; 6] = ["core", "apic", "state", "ticks", "free-frames", "view"];

/// The rows of the last table printed by `cores`.
pub fn last_cores_table(text: &str) -> Option<Vec<CoreRow>> {
    let lines: Vec<&str> = lines(text).collect();
    let header = lines
        .iter()
        .rposition(|line| line.split_whitespace().eq(CORES_HEADER))?;
    // A core's own lines (`atoll: core N: ...`, say a view it installed)
    // may come between the rows: each core prints when it runs.
    Some(
        lines[header + 1..]
            .iter()
            .filter(|line| !line.starts_with("atoll: "))
            .map_while(|line| parse_core_row(line))
            .collect(),
    )
}

fn parse_core_row(line: &str) -> Option<CoreRow> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [id, apic, state, ticks, free_frames, view] = fields[..] else {
        return None;
    };
    // Only rows whose every field has its type count as rows; a core
    // outside the view reports no counters (`-`).
    let counter = |field: &str| match field {
        "-" => Some(None),
        number => number.parse::<u64>().ok().map(Some),
    };
    apic.parse::<u32>().ok()?;
    counter(ticks)?;
    Some(CoreRow {
        id: id.parse().ok()?,
        state: state.to_owned(),
        free_frames: counter(free_frames)?,
        view: view.to_owned(),
    })
}

/// Cycles from `ipi <core>: round trip <n> cycles`.
pub fn ipi_round_trip_cycles(text: &str, core: u32) -> Option<u64> {
    let prefix = format!("ipi {core}: round trip ");
    lines(text).find_map(|line| {
        let at = line.find(&prefix)?;
        line[at + prefix.len()..]
            .strip_suffix(" cycles")?
            .parse()
            .ok()
    })
}

/// Median cycles from `urpc ping <from> -> <to>: round trip median <n> cycles ...`.
pub fn urpc_ping_median(text: &str, from: u32, to: u32) -> Option<u64> {
    let prefix = format!("urpc ping {from} -> {to}: round trip median ");
    lines(text).find_map(|line| {
        let rest = &line[line.find(&prefix)? + prefix.len()..];
        rest.split_once(" cycles")?.0.parse().ok()
    })
}

/// One row of the `urpc bench` table: the pair and its URPC round trip.
#[derive(Debug, PartialEq)]
pub struct UrpcBenchRow {
    pub from: u32,
    pub to: u32,
    pub urpc_round_trip: u64,
}

/// The rows of the last `urpc bench` table: lines that start with two core
/// ids and then the URPC round trip in cycles.
pub fn urpc_bench_rows(text: &str) -> Vec<UrpcBenchRow> {
    let table = text
        .rfind("urpc bench: medians of")
        .map_or("", |at| &text[at..]);
    lines(table)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(UrpcBenchRow {
                from: words.next()?.parse().ok()?,
                to: words.next()?.parse().ok()?,
                urpc_round_trip: words.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// `(targets, [cycles of the four methods])` from the rows of the
/// `bench shootdown` table: `<targets> <ipi> <unicast> (<ratio>) <flat> (<ratio>) <tree> (<ratio>)`.
pub fn shootdown_rows(text: &str) -> Vec<(u32, [u64; 4])> {
    let table = text
        .rfind("bench shootdown: from core")
        .map_or("", |at| &text[at..]);
    lines(table)
        .filter_map(|line| {
            let numbers: Vec<u64> = line
                .split_whitespace()
                .filter(|word| !word.starts_with('(') && !word.ends_with(')'))
                .map(|word| word.parse().ok())
                .collect::<Option<_>>()?;
            match numbers[..] {
                [targets, ipi, unicast, flat, tree] => {
                    Some((targets as u32, [ipi, unicast, flat, tree]))
                }
                _ => None,
            }
        })
        .collect()
}

/// `(lines, clients, shared-memory cycles, message cycles)` from the rows of
/// the `bench fig3` table.
pub fn fig3_rows(text: &str) -> Vec<(u32, u32, u64, u64)> {
    let table = text.rfind("bench fig3: ").map_or("", |at| &text[at..]);
    lines(table)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((
                words.next()?.parse().ok()?,
                words.next()?.parse().ok()?,
                words.next()?.parse().ok()?,
                words.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Mapped-page counts from each `vm show: core <id>: <n> pages mapped; ...`.
pub fn vm_show_summaries(text: &str) -> Vec<u32> {
    lines(text)
        .filter_map(|line| {
            let rest = line.strip_prefix("vm show: core ")?;
            rest.split_once(": ")?
                .1
                .split_once(" pages mapped")?
                .0
                .parse()
                .ok()
        })
        .collect()
}

/// `(proposals, committed, aborted)` from
/// `vm storm: <n> proposals from <k> cores: <c> committed, <a> aborted (<t> for want of a vote in time)`.
pub fn vm_storm_counts(text: &str) -> Option<StormCounts> {
    lines(text).find_map(|line| {
        let rest = line.strip_prefix("vm storm: ")?;
        let (proposals, rest) = rest.split_once(" proposals from ")?;
        let counts = rest.split_once(" cores: ")?.1;
        let (committed, rest) = counts.split_once(" committed, ")?;
        let (aborted, rest) = rest.split_once(" aborted (")?;
        let timed_out = rest.strip_suffix(" for want of a vote in time)")?;
        Some(StormCounts {
            proposals: proposals.parse().ok()?,
            committed: committed.parse().ok()?,
            aborted: aborted.parse().ok()?,
            timed_out: timed_out.parse().ok()?,
        })
    })
}

/// What `vm storm` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormCounts {
    pub proposals: u32,
    pub committed: u32,
    pub aborted: u32,
    /// Of the aborted: for want of a vote in time.
    pub timed_out: u32,
}

#[derive(Debug, PartialEq)]
pub struct Exception {
    pub core: u32,
    pub vector: u32,
    /// Whether the line ends with `; core <id> stopped`.
    pub stopped: bool,
}

/// `atoll: core <id>: exception <vector> (<name>) error <hex> rip <hex> addr <hex>; core <id> stopped`.
pub fn exceptions(text: &str) -> Vec<Exception> {
    kernel_messages(text)
        .filter_map(|message| {
            let (core, rest) = message.strip_prefix("core ")?.split_once(": exception ")?;
            let (vector, _) = rest.split_once(' ')?;
            Some(Exception {
                core: core.parse().ok()?,
                vector: vector.parse().ok()?,
                stopped: rest.ends_with(&format!("; core {core} stopped")),
            })
        })
        .collect()
}

/// Lines beginning `error: `, which a failed command prints.
pub fn error_lines(text: &str) -> Vec<&str> {
    lines(text)
        .map(str::trim_start)
        .filter(|line| line.starts_with("error: "))
        .collect()
}

/// `pvh` or `multiboot2`, from `atoll: booted via <path>`.
pub fn boot_path(text: &str) -> Option<&str> {
    kernel_messages(text).find_map(|message| message.strip_prefix("booted via "))
}

/// `atoll: PANIC on core <id>: <message>` lines.
pub fn panic_lines(text: &str) -> Vec<&str> {
    lines(text)
        .filter(|line| kernel_message(line).is_some_and(|m| m.starts_with("PANIC on core ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A 4-core exec run of `fault 1; cores; ipi 1; ipi 2`, written from the protocol document.
    const SAMPLE: &str = "\x1b[2J\x1b[01;01Hatoll: booted via multiboot2\r\n\
        atoll: core 0 up (apic 0)\r\n\
        atoll: core 2 up (apic 2)\r\n\
        atoll: core 1 up (apic 1)\r\n\
        atoll: core 3 (apic 3) did not start: no answer to SIPI; skipped\r\n\
        atoll: 3 of 4 cores up\r\n\
        atoll> fault 1\r\n\
        atoll: core 1: exception 14 (page fault) error 0x2 rip 0xffff800000012345 addr 0xdead0000; core 1 stopped\r\n\
        atoll> cores\r\n\
        core  apic  state     ticks  free-frames  view\r\n\
        0     0     running   120    30000        member\r\n\
        atoll: core 2: view 2: cores 0 2\r\n\
        1     1     stopped   -      -            out\r\n\
        2     2     running   118    30200        member\r\n\
        3     3     offline   -      -            out\r\n\
        atoll> ipi 1\r\n\
        error: ipi 1: core 1 is stopped\r\n\
        atoll> ipi 2\r\n\
        ipi 2: round trip 1834 cycles\r\n\
        atoll: exec: 4 commands, 1 failed\r\n";

    #[test]
    fn a_storm_summary_reads_with_its_timeouts() {
        let text = "vm storm: 1200 proposals from 3 cores: 461 committed, 739 aborted (2 for want of a vote in time)\n";
        assert_eq!(
            vm_storm_counts(text),
            Some(StormCounts {
                proposals: 1200,
                committed: 461,
                aborted: 739,
                timed_out: 2,
            })
        );
        assert_eq!(
            vm_storm_counts("vm storm: 12 proposals from 3 cores: 4 committed, 8 aborted"),
            None
        );
    }

    #[test]
    fn splits_exec_scripts_like_the_kernel() {
        assert_eq!(
            exec_commands(" cores;ipi 1 ;; halt;"),
            ["cores", "ipi 1", "halt"]
        );
        assert_eq!(exec_cmdline("cores; ipi 1"), "atoll.exec=cores; ipi 1");
    }

    #[test]
    fn exec_verdict_needs_status_1_and_a_clean_summary() {
        let clean = "atoll> cores\natoll: exec: 2 commands, 0 failed\n";
        assert_eq!(exec_verdict(QemuExit::Status(1), clean), Ok(2));
        let failures = [
            (QemuExit::Status(1), "", "no `atoll: exec:` summary"),
            (QemuExit::Status(1), SAMPLE, "4 commands, 1 failed"),
            (QemuExit::Status(3), SAMPLE, "a command failed"),
            (QemuExit::Status(5), clean, "panicked"),
            (QemuExit::Status(0), clean, "without reporting"),
            (QemuExit::Status(2), clean, "QEMU itself failed"),
            (QemuExit::Signal(9), clean, "signal 9"),
            (
                QemuExit::TimedOut(Duration::from_secs(7)),
                clean,
                "7 s timeout",
            ),
        ];
        for (exit, serial, reason) in failures {
            let message = exec_verdict(exit, serial).unwrap_err();
            assert!(message.contains(reason), "{message}");
        }
    }

    #[test]
    fn reads_boot_lines() {
        assert_eq!(cores_up(SAMPLE), BTreeSet::from([0, 1, 2]));
        assert_eq!(cores_summary(SAMPLE), Some((3, 4)));
        assert_eq!(
            cores_skipped(SAMPLE),
            ["atoll: core 3 (apic 3) did not start: no answer to SIPI; skipped"]
        );
        assert_eq!(exec_summary(SAMPLE), Some((4, 1)));
        assert_eq!(boot_path(SAMPLE), Some("multiboot2"));
        assert!(panic_lines(SAMPLE).is_empty());
        assert_eq!(
            panic_lines("x\natoll: PANIC on core 2: oops\n"),
            ["atoll: PANIC on core 2: oops"]
        );
    }

    #[test]
    fn reads_the_cores_table() {
        let table = last_cores_table(SAMPLE).unwrap();
        let states: Vec<(u32, &str)> = table
            .iter()
            .map(|row| (row.id, row.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                (0, "running"),
                (1, "stopped"),
                (2, "running"),
                (3, "offline")
            ]
        );
        assert_eq!(
            table[1],
            CoreRow {
                id: 1,
                state: "stopped".to_owned(),
                free_frames: None,
                view: "out".to_owned(),
            }
        );
        assert_eq!(table[2].free_frames, Some(30200));
        assert_eq!(last_cores_table("no table here\n"), None);
    }

    #[test]
    fn reads_ipi_faults_and_errors() {
        assert_eq!(ipi_round_trip_cycles(SAMPLE, 2), Some(1834));
        assert_eq!(ipi_round_trip_cycles(SAMPLE, 1), None);
        assert_eq!(
            exceptions(SAMPLE),
            [Exception {
                core: 1,
                vector: 14,
                stopped: true
            }]
        );
        assert_eq!(error_lines(SAMPLE), ["error: ipi 1: core 1 is stopped"]);
    }
}
