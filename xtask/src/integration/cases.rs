//! The QEMU integration tests: what each one boots, and what the serial
//! output must then show (see `docs/serial-protocol.md`).

use std::time::Duration;

use super::{ExecRun, QemuTest, TestContext};
use crate::protocol::{self, STATUS_COMMAND_FAILED};
use crate::qemu::{Boot, Firmware, Machine, QemuExit};
use crate::recordings::{self, Recording};

/// The test ISO's script. Its `;` and space check that the command line
/// survives GRUB's parser and its multiboot2 quoting.
pub const ISO_SCRIPT: &str = "cores; ipi 1";
/// Cores for every test that does not vary them: `Machine::default()`'s count.
const CORES: u8 = 4;
/// Up to 64: a core count the default memory does not hold, whose boot
/// needs the memory fitted to it and the channel regions placed below any
/// sliver at the top of a span.
const CORE_COUNTS: [u8; 6] = [1, 2, 4, 8, 16, 64];
pub(super) const SEABIOS_TIMEOUT: Duration = Duration::from_secs(180);
/// OVMF boots far slower than SeaBIOS under TCG: seconds on an idle fast
/// host, minutes on a slow or busy one.
const OVMF_TIMEOUT: Duration = Duration::from_secs(300);
const PAGE_FAULT: u32 = 14;
const STORM_CORE_COUNTS: [u8; 3] = [2, 4, 8];
/// Machines far larger than the host, booted with the default memory: the
/// knowledge base's trees of subgroups and storms that must commit; each
/// with the kernel options it boots with. TCG runs 64 or 128 vCPUs on the
/// host's two CPUs, so a core may not run for seconds: these machines
/// tolerate a longer silence (`atoll.suspect_ms=`, which the protocols'
/// timeouts follow), as a deployment on such a host would. With the
/// defaults (1 s at 64 cores, 4 s at 128), a storm's first votes came late:
/// at 128 cores in CI and by hand, at 64 cores once in CI (15 of 128
/// proposals aborted for want of a vote in time, on a busy host).
const MANY_CORES: [(u8, &str); 2] = [
    (64, "atoll.suspect_ms=4000"),
    (128, "atoll.suspect_ms=16000"),
];
/// How long a machine of [`MANY_CORES`] may take to boot and run its test.
const MANY_CORES_TIMEOUT: Duration = Duration::from_secs(420);

pub fn all() -> Vec<QemuTest> {
    // Slowest first, so that the two workers finish at about the same time.
    let mut tests = vec![
        QemuTest::new("iso_boot_ovmf", |context| {
            iso_boot(context, IsoFirmware::Ovmf)
        }),
        QemuTest::new("iso_boot_seabios", |context| {
            iso_boot(context, IsoFirmware::SeaBios)
        }),
    ];
    tests.extend(CORE_COUNTS.iter().rev().map(|&cores| {
        QemuTest::new(format!("boot_smp_{cores}"), move |context| {
            boot_all_cores(context, cores)
        })
    }));
    tests.extend(MANY_CORES.iter().map(|&(cores, options)| {
        QemuTest::alone(
            format!(
                "many_cores_{cores}_commit_down_a_tree_of_subgroups_and_storm_on_their_own_pages"
            ),
            move |context| many_cores_commit_down_trees(context, cores, options),
        )
    }));
    tests.extend(STORM_CORE_COUNTS.iter().map(|&cores| {
        QemuTest::new(
            format!("vm_storm_{cores}_cores_keeps_replicas_identical"),
            move |context| vm_storm_keeps_replicas_identical(context, cores),
        )
    }));
    tests.extend([
        QemuTest::new("shell_session", shell_session),
        QemuTest::new("shell_rejects_garbage", shell_rejects_garbage),
        QemuTest::new(
            "bench_qemu_writes_a_recording_only_when_every_boot_succeeds",
            bench_qemu_writes_a_recording_only_when_every_boot_succeeds,
        ),
        QemuTest::new("ipi_round_trip_to_every_core", ipi_round_trip_to_every_core),
        QemuTest::new("fault_on_core_1_is_contained", |context| {
            fault_is_contained(context, 1, "fault 1; cores; ipi 0; ipi 2; ipi 3")
        }),
        QemuTest::new("fault_on_core_2_is_contained", |context| {
            fault_is_contained(context, 2, "fault 2; ipi 1; ipi 3; cores")
        }),
        QemuTest::new(
            "silent_core_is_reported_and_skipped",
            silent_core_is_skipped,
        ),
        QemuTest::new("urpc_ping_between_cores", urpc_ping_between_cores),
        QemuTest::new(
            "urpc_bench_covers_every_ordered_pair",
            urpc_bench_covers_every_pair,
        ),
        QemuTest::new("urpc_skips_a_faulted_core", urpc_skips_a_faulted_core),
        QemuTest::new(
            "messages_to_a_faulted_core_do_not_stall_the_sender",
            messages_to_a_faulted_core_do_not_stall_the_sender,
        ),
        QemuTest::new("vm_map_and_unmap_replicate", vm_map_and_unmap_replicate),
        QemuTest::new("vm_space_on_chosen_cores", vm_space_on_chosen_cores),
        QemuTest::new(
            "bench_shootdown_on_two_numa_nodes",
            bench_shootdown_on_two_numa_nodes,
        ),
        QemuTest::new(
            "bench_shootdown_refuses_to_measure_trees_that_are_not_installed",
            bench_shootdown_without_trees,
        ),
        QemuTest::new(
            "bench_fig3_measures_both_methods",
            bench_fig3_measures_both_methods,
        ),
        QemuTest::new("ipi_to_faulted_core_1_fails", |context| {
            ipi_to_faulted_core_fails(context, 1)
        }),
        QemuTest::new("ipi_to_faulted_core_2_fails", |context| {
            ipi_to_faulted_core_fails(context, 2)
        }),
    ]);
    tests
}

fn boot_all_cores(context: &mut TestContext, cores: u8) -> Result<(), String> {
    let run = context.exec(cores, "cores")?;
    expect_success(&run, "cores")?;
    expect_boot_path(&run.serial, "pvh")?;
    expect_cores_up(&run.serial, cores)?;
    expect_cores_table(&run.serial, cores, |_| "running")
}

fn ipi_round_trip_to_every_core(context: &mut TestContext) -> Result<(), String> {
    let script = "ipi 0; ipi 1; ipi 2; ipi 3";
    let run = context.exec(CORES, script)?;
    expect_success(&run, script)?;
    (0..u32::from(CORES)).try_for_each(|core| expect_round_trip(&run.serial, core))
}

/// A page fault stops only the faulted core: the script, which must not
/// `ipi` that core, succeeds, and every other core keeps running.
fn fault_is_contained(context: &mut TestContext, faulted: u32, script: &str) -> Result<(), String> {
    let run = context.exec(CORES, script)?;
    expect_success(&run, script)?;
    expect_page_fault(&run.serial, faulted)?;
    expect_cores_table(&run.serial, CORES, |core| {
        if core == faulted {
            "stopped"
        } else {
            "running"
        }
    })?;
    let ipi_targets = protocol::exec_commands(script)
        .into_iter()
        .filter_map(|command| command.strip_prefix("ipi ")?.parse().ok());
    for target in ipi_targets {
        expect_round_trip(&run.serial, target)?;
    }
    Ok(())
}

fn ipi_to_faulted_core_fails(context: &mut TestContext, faulted: u32) -> Result<(), String> {
    let script = format!("fault {faulted}; ipi {faulted}");
    let run = context.exec(CORES, &script)?;
    expect_failure(&run, &script, 1)?;
    expect_page_fault(&run.serial, faulted)?;
    expect_error_line(&run.serial, &format!("error: ipi {faulted}"))
}

/// A core that never answers its start-up IPIs (the kernel is told to
/// withhold them) is reported and skipped: the others boot, it stays
/// `offline`, and `ipi` to it fails at once.
fn silent_core_is_skipped(context: &mut TestContext) -> Result<(), String> {
    const SILENT: u32 = 2;
    let script = format!("cores; ipi 3; ipi {SILENT}");
    let machine = Machine {
        cores: CORES,
        ..Machine::default()
    };
    let run = context.exec_with_options(
        &machine,
        &format!("atoll.test.withhold_startup={SILENT}"),
        &script,
        SEABIOS_TIMEOUT,
    )?;
    expect_failure(&run, &script, 1)?;
    let skipped = protocol::cores_skipped(&run.serial);
    if !matches!(skipped.as_slice(), [line] if line.contains(&format!("core {SILENT} (apic"))) {
        return Err(format!(
            "expected one `did not start` line for core {SILENT}, got {skipped:?}"
        ));
    }
    match protocol::cores_summary(&run.serial) {
        Some((3, 4)) => {}
        other => return Err(format!("expected `3 of 4 cores up`, got {other:?}")),
    }
    expect_cores_table(&run.serial, CORES, |core| {
        if core == SILENT { "offline" } else { "running" }
    })?;
    expect_round_trip(&run.serial, 3)?;
    expect_error_line(
        &run.serial,
        &format!("error: ipi {SILENT}: core {SILENT} is offline"),
    )
}

/// URPC round trips between cores that are not the shell's, from and to
/// the shell's core, and errors for pairs that cannot work.
fn urpc_ping_between_cores(context: &mut TestContext) -> Result<(), String> {
    let pairs = [(1, 2), (0, 3), (3, 0), (2, 1)];
    let good: Vec<String> = pairs
        .iter()
        .map(|(from, to)| format!("urpc ping {from} {to}"))
        .collect();
    let script = format!("{}; urpc ping 1 1; urpc ping 0 9", good.join("; "));
    let run = context.exec(CORES, &script)?;
    expect_failure(&run, &script, 2)?;
    for (from, to) in pairs {
        match protocol::urpc_ping_median(&run.serial, from, to) {
            Some(cycles) if cycles > 0 => {}
            other => return Err(format!("`urpc ping {from} {to}` gave {other:?}")),
        }
    }
    for bad in [
        "error: urpc ping: core 1 has no ring to itself",
        "error: urpc ping: no core 9",
    ] {
        expect_error_line(&run.serial, bad)?;
    }
    Ok(())
}

/// `urpc bench` on 8 cores measures all 56 ordered pairs, each once.
fn urpc_bench_covers_every_pair(context: &mut TestContext) -> Result<(), String> {
    const BENCH_CORES: u8 = 8;
    let run = context.exec(BENCH_CORES, "urpc bench")?;
    expect_success(&run, "urpc bench")?;
    let measured: Vec<(u32, u32)> = protocol::urpc_bench_rows(&run.serial)
        .iter()
        .filter(|row| row.urpc_round_trip > 0)
        .map(|row| (row.from, row.to))
        .collect();
    let cores = u32::from(BENCH_CORES);
    let expected: Vec<(u32, u32)> = (0..cores)
        .flat_map(|from| {
            (0..cores)
                .filter(move |&to| to != from)
                .map(move |to| (from, to))
        })
        .collect();
    if measured != expected {
        return Err(format!(
            "`urpc bench` measured {} pairs {measured:?}, expected the 56 ordered pairs",
            measured.len()
        ));
    }
    Ok(())
}

/// After core 2 faults, `urpc bench` measures the pairs of the other three,
/// and a `urpc ping` involving core 2 fails.
fn urpc_skips_a_faulted_core(context: &mut TestContext) -> Result<(), String> {
    let script = "fault 2; urpc bench; urpc ping 1 2";
    let run = context.exec(CORES, script)?;
    expect_failure(&run, script, 1)?;
    let pairs: Vec<(u32, u32)> = protocol::urpc_bench_rows(&run.serial)
        .iter()
        .map(|row| (row.from, row.to))
        .collect();
    if pairs.len() != 6 || pairs.iter().any(|&(from, to)| from == 2 || to == 2) {
        return Err(format!(
            "expected the 6 pairs without core 2, got {pairs:?}"
        ));
    }
    expect_error_line(&run.serial, "error: urpc ping: core 2 is stopped")
}

/// After a fault, the survivors leave the faulted core out of their view
/// (`fault` waits for that), so nothing more is sent to it: messages
/// already queued for its full ring are dropped past a bound (each sender
/// says so at most once) instead of stalling the sender, every map commits with the
/// faulted holder unreached, and the shell goes on.
fn messages_to_a_faulted_core_do_not_stall_the_sender(
    context: &mut TestContext,
) -> Result<(), String> {
    const PROPOSALS: usize = 7;
    let maps: Vec<String> = (1..=PROPOSALS)
        .map(|page| format!("vm map 0 {page}"))
        .collect();
    let script = format!("fault 2; {}; urpc ping 0 3", maps.join("; "));
    let run = context.exec(CORES, &script)?;
    expect_success(&run, &script)?;
    for sender in [0, 1, 3] {
        let dropped = protocol::lines(&run.serial)
            .filter(|line| {
                *line
                    == format!("atoll: core {sender}: core 2 is not a member and reads nothing; messages to it are dropped")
            })
            .count();
        if dropped > 1 {
            return Err(format!(
                "core {sender} said {dropped} times that messages to core 2 are dropped"
            ));
        }
    }
    for page in 1..=PROPOSALS {
        expect_line(
            &run.serial,
            &format!(
                "vm map 0 {page}: {:#x} committed: 3 holders applied it, 1 unreached",
                0x100_0000_0000u64 + page as u64 * 4096
            ),
        )?;
    }
    match protocol::urpc_ping_median(&run.serial, 0, 3) {
        Some(_) => Ok(()),
        None => Err("no `urpc ping 0 3` round trip after the maps".to_owned()),
    }
}

/// Maps proposed from different cores commit on every replica and show in
/// the shell core's page tables; a map of a mapped page aborts; an unmap
/// commits everywhere; every replica hash agrees at each point.
fn vm_map_and_unmap_replicate(context: &mut TestContext) -> Result<(), String> {
    let script =
        "vm map 0 3; vm map 2 5; vm map 1 3; vm show; vm hash; vm unmap 3 3; vm show; vm hash";
    let run = context.exec(CORES, script)?;
    expect_failure(&run, script, 1)?;
    for line in [
        "vm map 0 3: 0x10000003000 committed: 4 holders applied it, 0 unreached",
        "vm map 2 5: 0x10000005000 committed: 4 holders applied it, 0 unreached",
        "vm unmap 3 3: 0x10000003000 committed: 4 holders applied it, 0 unreached",
    ] {
        expect_line(&run.serial, line)?;
    }
    expect_error_line(&run.serial, "error: vm map 1 3: aborted")
        .map_err(|error| format!("`vm map 1 3` of a mapped page did not abort: {error}"))?;
    let shows = protocol::vm_show_summaries(&run.serial);
    if shows != [2, 1] {
        return Err(format!(
            "`vm show` counted {shows:?} mapped pages, expected [2, 1]"
        ));
    }
    if protocol::lines(&run.serial).any(|line| line.contains("NOT in this core's page tables")) {
        return Err("a committed mapping is missing from the page tables".to_owned());
    }
    expect_replicas_agree(&run.serial, 2)
}

/// With cores 1 to 3 holding the test space, maps proposed from core 0 (not
/// a holder) and core 2 commit on the three holders, and a storm from every
/// core leaves the three replicas equal; core 0 keeps no replica of it.
fn vm_space_on_chosen_cores(context: &mut TestContext) -> Result<(), String> {
    let script = "vm span 1 3; vm map 0 2; vm map 2 4; vm hash; vm storm 10; vm show";
    let run = context.exec(CORES, script)?;
    expect_success(&run, script)?;
    for line in [
        "vm span: cores 1 to 3 hold the test space",
        "vm map 0 2: 0x10000002000 committed: 3 holders applied it, 0 unreached",
        "vm hash: all 3 replicas agree",
        "vm show: core 0: 0 pages mapped; replica hash 0xcbf29ce484222325",
    ] {
        expect_line(&run.serial, line)?;
    }
    if protocol::lines(&run.serial).any(|line| line.starts_with("vm hash: core 0:")) {
        return Err("core 0 holds no replica, yet `vm hash` compared it".to_owned());
    }
    expect_replicas_agree(&run.serial, 2)
}

/// Every core proposes conflicting maps and unmaps at once; afterwards all
/// proposals have finished and every replica has the same hash.
fn vm_storm_keeps_replicas_identical(context: &mut TestContext, cores: u8) -> Result<(), String> {
    let script = "vm storm 25";
    let run = context.exec(cores, script)?;
    expect_success(&run, script)?;
    let protocol::StormCounts {
        proposals,
        committed,
        aborted,
        ..
    } = protocol::vm_storm_counts(&run.serial).ok_or("no `vm storm:` summary")?;
    if proposals != 25 * u32::from(cores) || committed + aborted != proposals || committed == 0 {
        return Err(format!(
            "storm of {proposals}: {committed} committed, {aborted} aborted"
        ));
    }
    expect_replicas_agree(&run.serial, 1)
}

/// On `cores` cores in one node (no NUMA tables), the knowledge base's
/// tree from core 0 is one group of every core, and its fan-out makes it a
/// tree of subgroups (`skb tree`); a map and an unmap proposed by core 1
/// travel it and commit on every core, and a storm in which every core maps
/// and unmaps pages of its own commits every proposal, with every replica
/// equal.
fn many_cores_commit_down_trees(
    context: &mut TestContext,
    cores: u8,
    options: &str,
) -> Result<(), String> {
    let script = "skb tree 0; vm map 1 7; vm unmap 1 7; vm storm own 2";
    let machine = Machine {
        cores,
        ..Machine::default()
    };
    let run = context.exec_with_options(&machine, options, script, MANY_CORES_TIMEOUT)?;
    expect_success(&run, script)?;
    expect_cores_up(&run.serial, cores)?;
    let summary = protocol::skb::boot_summary(&run.serial);
    if !summary.as_ref().is_some_and(|summary| {
        summary.equal == u32::from(cores)
            && summary.outcome == "multicast trees from the knowledge base"
    }) {
        return Err(format!(
            "the knowledge base's trees were not installed on all {cores} cores: {summary:?}"
        ));
    }
    let tree = protocol::skb::command_output(&run.serial, "skb tree 0")
        .and_then(|output| protocol::skb::tree(&output))
        .map(|(_, groups)| {
            groups
                .iter()
                .map(|group| group.cores().len())
                .collect::<Vec<_>>()
        });
    if tree != Some(vec![usize::from(cores)]) {
        return Err(format!(
            "expected one group of {cores} cores from core 0, got {tree:?}"
        ));
    }
    let fan_out = "skb tree: fan-out 4: a group of more than 5 cores forwards through subgroups";
    expect_line(&run.serial, fan_out)?;
    for line in [
        format!("vm map 1 7: 0x10000007000 committed: {cores} holders applied it, 0 unreached"),
        format!("vm unmap 1 7: 0x10000007000 committed: {cores} holders applied it, 0 unreached"),
    ] {
        expect_line(&run.serial, &line)?;
    }
    let proposals = 2 * u32::from(cores);
    match protocol::vm_storm_counts(&run.serial) {
        Some(protocol::StormCounts {
            proposals: p,
            committed,
            aborted: 0,
            ..
        }) if p == proposals && committed == proposals => {}
        other => return Err(format!("storm of {proposals} on own pages: {other:?}")),
    }
    expect_replicas_agree(&run.serial, 1)
}

/// `bench shootdown` on 8 cores in 2 NUMA nodes measures all four methods
/// for 1 to 7 targets, and its tree from the knowledge base groups the
/// cores by node as QEMU laid them out, the boot core's own node last.
fn bench_shootdown_on_two_numa_nodes(context: &mut TestContext) -> Result<(), String> {
    let script = "bench shootdown";
    let run = context.exec_numa(8, 2, script)?;
    expect_success(&run, script)?;
    let tree = protocol::skb::command_output(&run.serial, script)
        .and_then(|output| protocol::skb::tree(&output))
        .map(|(_, groups)| groups.iter().map(|group| group.cores()).collect::<Vec<_>>());
    if tree != Some(vec![vec![4, 5, 6, 7], vec![0, 1, 2, 3]]) {
        return Err(format!(
            "expected the knowledge base's tree from core 0 to group cores 4-7, then 0-3; got {tree:?}"
        ));
    }
    let rows = protocol::shootdown_rows(&run.serial);
    let targets: Vec<u32> = rows.iter().map(|row| row.0).collect();
    if targets != (1..=7).collect::<Vec<u32>>() || rows.iter().any(|row| row.1.contains(&0)) {
        return Err(format!(
            "expected rows for 1 to 7 targets with four non-zero medians, got {rows:?}"
        ));
    }
    Ok(())
}

/// Booted with no multicast trees (`atoll.test.no_trees=1`, as when a core
/// could not install them), `bench shootdown` refuses to measure: its
/// `skb-tree` column would be unicast under another name.
fn bench_shootdown_without_trees(context: &mut TestContext) -> Result<(), String> {
    let script = "bench shootdown";
    let machine = Machine {
        cores: CORES,
        ..Machine::default()
    };
    let run =
        context.exec_with_options(&machine, "atoll.test.no_trees=1", script, SEABIOS_TIMEOUT)?;
    expect_failure(&run, script, 1)?;
    let summary = protocol::skb::boot_summary(&run.serial);
    if !summary.as_ref().is_some_and(|summary| {
        summary.outcome
            == "multicast trees not installed (atoll.test.no_trees); planned rounds go unicast"
    }) {
        return Err(format!(
            "the boot does not say the trees were not installed: {summary:?}"
        ));
    }
    expect_line(
        &run.serial,
        "error: bench shootdown: the knowledge base's multicast trees are not installed (core 0's boot line says why): the skb-tree column would measure unicast",
    )
}

/// `bench fig3` on 4 cores measures both methods for k = 1, 2, 4, 8 lines
/// and 1 and 2 clients (powers of two up to the 3 other cores).
fn bench_fig3_measures_both_methods(context: &mut TestContext) -> Result<(), String> {
    let script = "bench fig3";
    let run = context.exec(CORES, script)?;
    expect_success(&run, script)?;
    let rows = protocol::fig3_rows(&run.serial);
    let shape: Vec<(u32, u32)> = rows.iter().map(|row| (row.0, row.1)).collect();
    let expected: Vec<(u32, u32)> = [1, 2, 4, 8]
        .iter()
        .flat_map(|&lines| [(lines, 1), (lines, 2)])
        .collect();
    if shape != expected || rows.iter().any(|row| row.2 == 0 || row.3 == 0) {
        return Err(format!(
            "expected rows {expected:?} with non-zero costs, got {rows:?}"
        ));
    }
    Ok(())
}

/// `times` `vm hash` runs each ended with every replica agreeing.
fn expect_replicas_agree(serial: &str, times: usize) -> Result<(), String> {
    let agreements = protocol::lines(serial)
        .filter(|line| line.starts_with("vm hash: all ") && line.ends_with(" replicas agree"))
        .count();
    if agreements != times {
        return Err(format!(
            "{agreements} `vm hash` agreements, expected {times}"
        ));
    }
    Ok(())
}

fn shell_session(context: &mut TestContext) -> Result<(), String> {
    let mut shell = context.shell(CORES)?;
    expect_cores_up(&shell.serial(), CORES)?;

    let help = shell.command(b"help")?;
    expect_output("help", &help)?;
    for command in ["cores", "mem", "ipi", "fault", "halt"] {
        if !help.contains(command) {
            return Err(format!("`help` does not mention `{command}`"));
        }
    }
    expect_cores_table(&shell.command(b"cores")?, CORES, |_| "running")?;
    expect_output("mem", &shell.command(b"mem")?)?;
    // Typing mistakes fixed with DEL (what terminals send) and with BS.
    let fixed_with_del = shell.command(b"corex\x7fs")?;
    expect_cores_table(&fixed_with_del, CORES, |_| "running")
        .map_err(|error| format!("`corex<DEL>s` did not act as `cores`: {error}"))?;
    expect_output("mex<BS>m", &shell.command(b"mex\x08m")?)?;

    expect_power_off(shell.halt()?)?;
    expect_no_panic(&shell.serial())
}

/// `cargo xtask bench qemu` rewrites a result file only when every boot of
/// it succeeded: a boot whose script fails leaves the old file as it was.
fn bench_qemu_writes_a_recording_only_when_every_boot_succeeds(
    context: &mut TestContext,
) -> Result<(), String> {
    let env = context.env;
    let dir = std::env::temp_dir().join(format!("atoll-recording-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let file = dir.join("qemu-probe.txt");
    std::fs::write(&file, "before\n").map_err(|error| error.to_string())?;
    let recording = |script| Recording {
        name: "probe",
        about: &["a probe of bench qemu"],
        boots: vec![
            recordings::boot("--cores 1", "cores", None),
            recordings::boot("--cores 1", script, None),
        ],
    };
    let failed = recordings::record(
        env.workspace,
        &env.kernel,
        &recording("nosuchcommand"),
        &dir,
    );
    let kept = std::fs::read_to_string(&file).map_err(|error| error.to_string())?;
    match failed {
        Err(error) if format!("{error:#}").contains("a command failed") && kept == "before\n" => {}
        other => {
            return Err(format!(
                "a failing boot gave {other:?} and left the file as {kept:?}"
            ));
        }
    }
    recordings::record(env.workspace, &env.kernel, &recording("mem"), &dir)
        .map_err(|error| format!("{error:#}"))?;
    let written = std::fs::read_to_string(&file).map_err(|error| error.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    for line in [
        "# cargo xtask bench qemu --only probe",
        "# a probe of bench qemu",
        "## cargo xtask run --cores 1 --exec cores",
        "## cargo xtask run --cores 1 --exec mem",
        "atoll: exec: 1 commands, 0 failed",
    ] {
        if !written.lines().any(|written| written == line) {
            return Err(format!("the recording lacks `{line}`:\n{written}"));
        }
    }
    if !written.lines().any(|line| line.starts_with("# commit ")) {
        return Err(format!("the recording names no commit:\n{written}"));
    }
    Ok(())
}

/// Bad input gets an `error:` line, and the shell goes on working.
fn shell_rejects_garbage(context: &mut TestContext) -> Result<(), String> {
    let mut shell = context.shell(CORES)?;
    let bad_lines: [(&str, Vec<u8>); 7] = [
        ("an unknown command", b"frobnicate".to_vec()),
        ("`ipi` without a core", b"ipi".to_vec()),
        ("`ipi 99`", b"ipi 99".to_vec()),
        ("`ipi -1`", b"ipi -1".to_vec()),
        ("`fault abc`", b"fault abc".to_vec()),
        ("a 5000-byte line", vec![b'x'; 5000]),
        ("a line of random non-UTF-8 bytes", garbage_bytes()),
    ];
    for (what, line) in bad_lines {
        let output = shell.command(&line)?;
        if protocol::error_lines(&output).is_empty() {
            return Err(format!("{what} got no `error:` line"));
        }
    }
    expect_cores_table(&shell.command(b"cores")?, CORES, |_| "running")
        .map_err(|error| format!("`cores` after the bad input: {error}"))?;
    expect_power_off(shell.halt()?)?;
    expect_no_panic(&shell.serial())
}

/// Random bytes from a fixed seed (so that a failure reproduces) around NULs,
/// escape sequences and bytes that are never valid UTF-8. Control bytes that
/// would end or edit the line (CR, LF, BS, DEL, Ctrl-U...) are moved to the
/// high half, so that all of it arrives as one line. `ESC [ A` is the up
/// arrow, so the shell's history recall meets the garbage too.
fn garbage_bytes() -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    let mut random_byte = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let byte = state.to_le_bytes()[0];
        if byte < 0x20 || byte == 0x7f {
            byte | 0x80
        } else {
            byte
        }
    };
    let mut line = vec![0xff, 0x00];
    line.extend((0..24).map(|_| random_byte()));
    line.extend(b"\x1b[2J\x1b[A");
    line.extend((0..24).map(|_| random_byte()));
    line.extend(b"\x00\x1bOP\xc3\x28");
    line
}

#[derive(Clone, Copy)]
enum IsoFirmware {
    SeaBios,
    Ovmf,
}

fn iso_boot(context: &mut TestContext, firmware: IsoFirmware) -> Result<(), String> {
    let env = context.env;
    let iso = env.test_iso()?;
    let (firmware, timeout) = match firmware {
        IsoFirmware::SeaBios => (Firmware::SeaBios, SEABIOS_TIMEOUT),
        IsoFirmware::Ovmf => (Firmware::Ovmf(&env.ovmf), OVMF_TIMEOUT),
    };
    let run = context.exec_boot(&Machine::default(), &Boot::Cdrom { iso, firmware }, timeout)?;
    expect_success(&run, ISO_SCRIPT)?;
    expect_boot_path(&run.serial, "multiboot2")?;
    // GRUB loads the programs as a module, as QEMU does with `-initrd`.
    expect_line(&run.serial, PROGRAMS_LINE)?;
    expect_cores_up(&run.serial, CORES)?;
    expect_cores_table(&run.serial, CORES, |_| "running")?;
    expect_round_trip(&run.serial, 1)
}

/// QEMU says every command succeeded, the kernel ran as many as `script` has,
/// and no core panicked.
/// The boot line that names the programs under `user/`.
pub(super) const PROGRAMS_LINE: &str = "atoll: programs: badcall capcheck crash family fuzz grow heapcheck hello maplat mapreduce memstress nullcall pingpong protect spin sysinfo ticker true";

pub(super) fn expect_success(run: &ExecRun, script: &str) -> Result<(), String> {
    expect_no_panic(&run.serial)?;
    let ran = protocol::exec_verdict(run.exit, &run.serial)?;
    let commands = protocol::exec_commands(script).len();
    if ran != commands {
        return Err(format!(
            "the kernel ran {ran} commands, the script has {commands}"
        ));
    }
    Ok(())
}

pub(super) fn expect_failure(run: &ExecRun, script: &str, failed: usize) -> Result<(), String> {
    expect_no_panic(&run.serial)?;
    if run.exit != QemuExit::Status(STATUS_COMMAND_FAILED) {
        return Err(format!(
            "expected QEMU status {STATUS_COMMAND_FAILED} (a command failed); {}",
            run.exit
        ));
    }
    let expected = (protocol::exec_commands(script).len(), failed);
    match protocol::exec_summary(&run.serial) {
        Some(summary) if summary == expected => Ok(()),
        Some((commands, failed)) => Err(format!(
            "the kernel reported {commands} commands, {failed} failed; expected {}, {}",
            expected.0, expected.1
        )),
        None => Err("no `atoll: exec:` summary".to_owned()),
    }
}

/// Some line is exactly `line`.
pub(super) fn expect_line(serial: &str, line: &str) -> Result<(), String> {
    if protocol::lines(serial).any(|output| output == line) {
        Ok(())
    } else {
        Err(format!("no line `{line}`"))
    }
}

/// Some `error:` line starts with `prefix`.
fn expect_error_line(serial: &str, prefix: &str) -> Result<(), String> {
    if protocol::error_lines(serial)
        .iter()
        .any(|line| line.starts_with(prefix))
    {
        Ok(())
    } else {
        Err(format!("no line beginning `{prefix}`"))
    }
}

fn expect_no_panic(serial: &str) -> Result<(), String> {
    match protocol::panic_lines(serial).first() {
        Some(line) => Err(format!("the kernel panicked: {line}")),
        None => Ok(()),
    }
}

/// `halt` outside exec mode is an ACPI power-off, after which QEMU exits 0.
fn expect_power_off(exit: QemuExit) -> Result<(), String> {
    if exit != QemuExit::Status(0) {
        return Err(format!("`halt` should power off (QEMU status 0); {exit}"));
    }
    Ok(())
}

fn expect_boot_path(serial: &str, path: &str) -> Result<(), String> {
    match protocol::boot_path(serial) {
        Some(found) if found == path => Ok(()),
        Some(found) => Err(format!("booted via {found}, expected {path}")),
        None => Err("no `atoll: booted via` line".to_owned()),
    }
}

/// Every core from 0 to `cores - 1` reported itself up, and the summary agrees.
fn expect_cores_up(serial: &str, cores: u8) -> Result<(), String> {
    let cores = u32::from(cores);
    let up = protocol::cores_up(serial);
    let missing: Vec<u32> = (0..cores).filter(|core| !up.contains(core)).collect();
    if !missing.is_empty() {
        let skipped = protocol::cores_skipped(serial);
        return Err(format!(
            "no `atoll: core <id> up` line for cores {missing:?}{}",
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; {}", skipped.join("; "))
            }
        ));
    }
    if let Some(extra) = up.iter().find(|&&core| core >= cores) {
        return Err(format!(
            "core {extra} reported up on a {cores}-core machine"
        ));
    }
    match protocol::cores_summary(serial) {
        Some((up, total)) if up == cores && total == cores => Ok(()),
        Some((up, total)) => Err(format!(
            "the kernel reported {up} of {total} cores up, expected {cores} of {cores}"
        )),
        None => Err("no `atoll: <up> of <total> cores up` line".to_owned()),
    }
}

/// The last `cores` table lists cores 0 to `cores - 1` in order, each in the
/// state `expected_state` gives, and every running core has free frames.
fn expect_cores_table(
    output: &str,
    cores: u8,
    expected_state: impl Fn(u32) -> &'static str,
) -> Result<(), String> {
    let table = protocol::last_cores_table(output).ok_or("no `cores` table")?;
    let ids: Vec<u32> = table.iter().map(|row| row.id).collect();
    if !ids.iter().copied().eq(0..u32::from(cores)) {
        return Err(format!(
            "the cores table lists cores {ids:?}, expected 0 to {}",
            cores - 1
        ));
    }
    for row in &table {
        let expected = expected_state(row.id);
        if row.state != expected {
            return Err(format!(
                "core {} is `{}` in the cores table, expected `{expected}`",
                row.id, row.state
            ));
        }
        if expected == "running" && row.free_frames.is_none_or(|free| free == 0) {
            return Err(format!("running core {} has no free frames", row.id));
        }
    }
    Ok(())
}

fn expect_round_trip(serial: &str, core: u32) -> Result<(), String> {
    match protocol::ipi_round_trip_cycles(serial, core) {
        Some(cycles) if cycles > 0 => Ok(()),
        Some(_) => Err(format!("`ipi {core}` took 0 cycles")),
        None => Err(format!("no `ipi {core}: round trip <n> cycles` line")),
    }
}

/// `core` reported a page fault and stopped; no other core reported an exception.
fn expect_page_fault(serial: &str, core: u32) -> Result<(), String> {
    let exceptions = protocol::exceptions(serial);
    if let Some(other) = exceptions.iter().find(|exception| exception.core != core) {
        return Err(format!(
            "core {} reported exception {} too",
            other.core, other.vector
        ));
    }
    match exceptions.first() {
        Some(exception) if exception.vector != PAGE_FAULT => Err(format!(
            "core {core} reported exception {}, expected {PAGE_FAULT} (page fault)",
            exception.vector
        )),
        Some(exception) if !exception.stopped => Err(format!(
            "the exception line of core {core} does not end `; core {core} stopped`"
        )),
        Some(_) => Ok(()),
        None => Err(format!("no `atoll: core {core}: exception` line")),
    }
}

/// A shell command's output has something after the echoed line, and no error.
fn expect_output(command: &str, output: &str) -> Result<(), String> {
    if let Some(error) = protocol::error_lines(output).first() {
        return Err(format!("`{command}` failed: {error}"));
    }
    if !protocol::lines(output)
        .skip(1)
        .any(|line| !line.trim().is_empty())
    {
        return Err(format!("`{command}` printed nothing"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_one_line_of_invalid_utf8_with_nul_and_escapes() {
        let line = garbage_bytes();
        assert!(std::str::from_utf8(&line).is_err());
        assert!(line.contains(&0x00));
        assert!(line.windows(4).any(|window| window == b"\x1b[2J"));
        for editing in [b'\r', b'\n', 0x08, 0x7f, 0x03, 0x15] {
            assert!(!line.contains(&editing), "contains {editing:#x}");
        }
        assert_eq!(line, garbage_bytes(), "the same bytes every run");
    }

    #[test]
    fn test_names_are_unique() {
        let tests = super::super::all_tests();
        let mut names: Vec<&str> = tests.iter().map(|test| test.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tests.len());
    }

    const BOOT: &str = "atoll: booted via pvh\r\n\
        atoll: core 0 up (apic 0)\r\n\
        atoll: core 1 up (apic 1)\r\n\
        atoll: 2 of 2 cores up\r\n";

    #[test]
    fn cores_up_needs_every_core_and_the_summary() {
        assert_eq!(expect_cores_up(BOOT, 2), Ok(()));
        let error = expect_cores_up(BOOT, 3).unwrap_err();
        assert!(error.contains("cores [2]"), "{error}");
        let error = expect_cores_up(BOOT, 1).unwrap_err();
        assert!(
            error.contains("core 1 reported up on a 1-core machine"),
            "{error}"
        );
        let no_summary = BOOT.replace("atoll: 2 of 2 cores up", "");
        assert!(
            expect_cores_up(&no_summary, 2)
                .unwrap_err()
                .contains("no `atoll: <up>")
        );
    }

    #[test]
    fn cores_table_states() {
        let table = "atoll> cores\r\n\
            core  apic  state     ticks  free-frames  view\r\n\
            0     0     running   10     500          member\r\n\
            1     1     stopped   3      400          out\r\n";
        let one_stopped = |core| if core == 1 { "stopped" } else { "running" };
        assert_eq!(expect_cores_table(table, 2, one_stopped), Ok(()));
        let error = expect_cores_table(table, 2, |_| "running").unwrap_err();
        assert_eq!(
            error,
            "core 1 is `stopped` in the cores table, expected `running`"
        );
        let error = expect_cores_table(table, 3, one_stopped).unwrap_err();
        assert!(
            error.contains("lists cores [0, 1], expected 0 to 2"),
            "{error}"
        );
        let starved = table.replace("running   10     500 ", "running   10     0 ");
        assert!(
            expect_cores_table(&starved, 2, one_stopped)
                .unwrap_err()
                .contains("no free frames")
        );
    }

    #[test]
    fn exec_runs_must_match_the_script() {
        let serial = "atoll> fault 1\r\n\
            atoll: core 1: exception 14 (page fault) error 0x2 rip 0x1 addr 0x0; core 1 stopped\r\n\
            atoll> ipi 1\r\n\
            error: ipi 1: core 1 is stopped\r\n\
            atoll: exec: 2 commands, 1 failed\r\n";
        let failed = ExecRun {
            exit: QemuExit::Status(3),
            serial: serial.to_owned(),
        };
        assert_eq!(expect_failure(&failed, "fault 1; ipi 1", 1), Ok(()));
        assert!(expect_failure(&failed, "fault 1; ipi 1; cores", 1).is_err());
        assert!(
            expect_success(&failed, "fault 1; ipi 1")
                .unwrap_err()
                .contains("a command failed")
        );
        assert_eq!(expect_page_fault(serial, 1), Ok(()));
        assert!(
            expect_page_fault(serial, 2)
                .unwrap_err()
                .contains("core 1 reported exception 14 too")
        );

        let succeeded = ExecRun {
            exit: QemuExit::Status(1),
            serial: "ipi 2: round trip 900 cycles\r\natoll: exec: 1 commands, 0 failed\r\n"
                .to_owned(),
        };
        assert_eq!(expect_success(&succeeded, "ipi 2"), Ok(()));
        assert_eq!(expect_round_trip(&succeeded.serial, 2), Ok(()));
        assert!(
            expect_success(&succeeded, "ipi 2; ipi 3")
                .unwrap_err()
                .contains("ran 1 commands")
        );
    }

    #[test]
    fn shell_output_needs_text_after_the_echo() {
        assert_eq!(expect_output("mem", "mem\r\nfree: 100 frames\r\n"), Ok(()));
        assert_eq!(
            expect_output("mem", "mem\r\n\r\n"),
            Err("`mem` printed nothing".to_owned())
        );
        let error =
            expect_output("mex<BS>m", "mex\x08 \x08m\r\nerror: unknown command\r\n").unwrap_err();
        assert_eq!(error, "`mex<BS>m` failed: error: unknown command");
    }
}
