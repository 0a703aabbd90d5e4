//! QEMU tests of membership and failure: a core that never starts is never
//! a member, a hung core is found by the detector in the stated time,
//! faults on a coordinator and an aggregator in mid-storm leave the
//! survivors in one view with equal replicas and no locks, the detector's
//! timeout is set at run time, a write into another core's memory faults
//! on the writer alone (the page tables isolate the cores), and a core
//! that left comes back as a new kernel, a hundred times under a storm,
//! catching up before it serves.

use super::cases::{SEABIOS_TIMEOUT, expect_line, expect_success};
use super::{QemuTest, TestContext};
use crate::protocol;
use crate::qemu::Machine;

/// The kernel's failure detector by default: a heartbeat every 100 ms,
/// suspicion after 1000 ms of silence (`atoll_monitor::Detector::DEFAULT`,
/// in 10 ms ticks).
const HEARTBEAT_TICKS: u64 = 10;
const SUSPECT_TICKS: u64 = 100;
/// What agreeing on a view may add to the suspicion, in ticks: a proposal,
/// the accepts, the commit and the flushes, under emulation.
const AGREEMENT_TICKS: u64 = 50;

pub fn tests() -> Vec<QemuTest> {
    vec![
        QemuTest::new(
            "a_withheld_core_is_never_a_member_and_20_maps_commit",
            withheld_core_is_never_a_member,
        ),
        QemuTest::new(
            "a_hung_core_is_found_within_the_stated_timeout",
            hung_core_is_found_in_time,
        ),
        QemuTest::new(
            "faults_on_a_coordinator_and_an_aggregator_mid_storm_on_8_cores_leave_equal_replicas",
            faults_mid_storm_leave_equal_replicas,
        ),
        QemuTest::new(
            "view_detector_sets_every_member_and_bench_heartbeats_measures",
            detector_is_set_and_heartbeats_measured,
        ),
        QemuTest::new(
            "scribble_into_another_core_s_memory_faults_on_the_writer_only",
            scribble_is_contained_to_the_writer,
        ),
        QemuTest::new(
            "core_off_leaves_the_view_by_agreement",
            core_off_leaves_by_agreement,
        ),
        QemuTest::new(
            "a_hundred_core_off_on_cycles_under_a_storm_end_with_equal_replicas",
            core_off_on_cycles_under_a_storm,
        ),
        QemuTest::new(
            "a_faulted_and_a_hung_core_come_back_and_core_on_refuses_members_and_never_started_cores",
            faulted_and_hung_cores_come_back,
        ),
    ]
}

/// Core 2 never gets its start-up IPIs: the first view holds cores 0, 1
/// and 3 only, so it is no holder, and 20 maps proposed from every member
/// all commit on the 3 holders.
fn withheld_core_is_never_a_member(context: &mut TestContext) -> Result<(), String> {
    const MAPS: u32 = 20;
    let proposers = [0, 1, 3];
    let maps: Vec<String> = (1..=MAPS)
        .map(|page| format!("vm map {} {page}", proposers[page as usize % 3]))
        .collect();
    let script = format!("{}; vm hash; cores", maps.join("; "));
    let run = context.exec_with_options(
        &Machine::default(),
        "atoll.test.withhold_startup=2",
        &script,
        SEABIOS_TIMEOUT,
    )?;
    expect_success(&run, &script)?;
    for member in proposers {
        expect_line(
            &run.serial,
            &format!("atoll: core {member}: view 1: cores 0 1 3"),
        )?;
    }
    for (page, map) in (1..=MAPS).zip(&maps) {
        expect_line(
            &run.serial,
            &format!(
                "{map}: {:#x} committed: 3 holders applied it, 0 unreached",
                0x100_0000_0000u64 + u64::from(page) * 4096
            ),
        )?;
    }
    expect_line(&run.serial, "vm hash: all 3 replicas agree")?;
    expect_core_row(&run.serial, 2, "offline", "out")
}

/// `hang 2` stops core 2 with interrupts off and tells nobody. The next
/// map waits for core 2's vote until the survivors leave it out, then
/// commits without it; the view is installed within the suspicion timeout
/// plus a heartbeat plus the agreement, counted from the hang.
fn hung_core_is_found_in_time(context: &mut TestContext) -> Result<(), String> {
    let script = "hang 2; vm map 0 1; view; cores";
    let run = context.exec(4, script)?;
    expect_success(&run, script)?;
    let hung_at = protocol::lines(&run.serial)
        .find_map(|line| {
            line.strip_prefix("hang 2: core 2 stops answering with interrupts off at tick ")?
                .split_once(';')?
                .0
                .parse::<u64>()
                .ok()
        })
        .ok_or("no `hang 2` line with its tick")?;
    let installed_at = protocol::lines(&run.serial)
        .find_map(|line| {
            line.strip_prefix("view 2: cores 0 1 3 (installed at tick ")?
                .split_once(',')?
                .0
                .parse::<u64>()
                .ok()
        })
        .ok_or("no `view` line for view 2 without core 2")?;
    let ticks = installed_at.saturating_sub(hung_at);
    let most = SUSPECT_TICKS + HEARTBEAT_TICKS + AGREEMENT_TICKS;
    if !(SUSPECT_TICKS - 2 * HEARTBEAT_TICKS..=most).contains(&ticks) {
        return Err(format!(
            "core 2 was left out {ticks} ticks after it hung; expected {} to {most}",
            SUSPECT_TICKS - 2 * HEARTBEAT_TICKS
        ));
    }
    expect_view_2_without_core_2(&run.serial)?;
    expect_line(
        &run.serial,
        "vm map 0 1: 0x10000001000 committed: 3 holders applied it, 1 unreached",
    )?;
    // The view left the hung core out, so the shell counts it stopped, and
    // it reports nothing.
    expect_core_row(&run.serial, 2, "stopped", "out")
}

/// On 8 cores in 2 NUMA nodes, every core runs a storm of maps and unmaps;
/// meanwhile core 3 (coordinating its own proposals, a participant in all
/// the others') faults, then core 4 (which aggregates node 1's group of
/// every commit from node 0, by the knowledge base's trees). The survivors
/// agree on a view without each in turn; every survivor's storm ends with
/// every proposal committed or aborted; the two faulted cores were still
/// storming; and the survivors' replicas are equal with no page locked.
/// (The NMI may land while core 4 sends its flush of view 2, so some
/// survivors go from view 1 straight to view 3.)
fn faults_mid_storm_leave_equal_replicas(context: &mut TestContext) -> Result<(), String> {
    // Each core's storm must outlast both faults' detection (about 1.4 s
    // each under TCG): 40 changes a core did not always (core 4 had ended
    // its storm before its fault), 120 do.
    let script = "vm storm start 120; fault 3; fault 4; vm storm wait; vm hash";
    let run = context.exec_numa(8, 2, script)?;
    expect_success(&run, script)?;
    // The shell's core installs view 2 before `fault 3` returns. Another
    // core may skip it: when core 4 faults before its flush of view 2
    // reaches that core, view 3 replaces view 2 there.
    expect_line(
        &run.serial,
        "atoll: core 0: view 2: cores 0 1 2 4 5 6 7; left: 3",
    )?;
    for survivor in [0, 1, 2, 5, 6, 7] {
        let after_2 = format!("atoll: core {survivor}: view 3: cores 0 1 2 5 6 7; left: 4");
        let skipped_2 = format!("atoll: core {survivor}: view 3: cores 0 1 2 5 6 7; left: 3 4");
        if !protocol::lines(&run.serial).any(|line| line == after_2 || line == skipped_2) {
            return Err(format!(
                "core {survivor} did not install view 3 without cores 3 and 4"
            ));
        }
    }
    expect_line(
        &run.serial,
        "vm storm: cores that stopped mid-storm: [3, 4]",
    )?;
    match protocol::vm_storm_counts(&run.serial) {
        Some(protocol::StormCounts {
            proposals: 720,
            committed,
            aborted,
            ..
        }) if committed + aborted == 720 && committed > 0 => {}
        other => {
            return Err(format!(
                "expected 720 proposals from the 6 survivors, all ended and some committed; got {other:?}"
            ));
        }
    }
    expect_replicas_unlocked_and_equal(&run.serial, 6)
}

/// `view detector` sets every member's detector (and refuses less than
/// two ticks); `bench heartbeats` measures both workloads under three
/// settings in one boot and puts the boot's detector back.
fn detector_is_set_and_heartbeats_measured(context: &mut TestContext) -> Result<(), String> {
    let script = "view detector 10; view detector 2500; bench heartbeats; view";
    let run = context.exec(4, script)?;
    super::cases::expect_failure(&run, script, 1)?;
    expect_line(
        &run.serial,
        "error: view detector: 10 ms is shorter than two timer ticks (20 ms)",
    )?;
    expect_line(
        &run.serial,
        "detector: heartbeat every 250 ms, suspect after 2500 ms of silence",
    )?;
    for workload in ["urpc round trip", "vm map + unmap"] {
        let row = protocol::lines(&run.serial)
            .find(|line| line.starts_with(workload))
            .ok_or(format!("no `{workload}` row"))?;
        let numbers: Vec<f64> = row[workload.len()..]
            .split_whitespace()
            .map(|word| word.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|error| format!("`{row}`: {error}"))?;
        if numbers.len() != 5 || numbers.iter().any(|&n| n <= 0.0) {
            return Err(format!("`{row}`: expected three medians and two ratios"));
        }
    }
    // The boot's detector is back (the last `view`).
    let last = protocol::lines(&run.serial)
        .filter(|line| line.starts_with("detector: "))
        .last();
    if last != Some("detector: heartbeat every 100 ms, suspect after 1000 ms of silence") {
        return Err(format!("the detector after the bench: {last:?}"));
    }
    Ok(())
}

/// `scribble 2 3`: core 2 writes at the start of core 3's memory. Its page
/// tables map none of core 3's memory, so the write faults on core 2 (a
/// write to a page that is not present, at that very address), core 2
/// stops and is left out, and core 3 runs on: it proposes, answers round
/// trips both ways, and its replica agrees.
fn scribble_is_contained_to_the_writer(context: &mut TestContext) -> Result<(), String> {
    let script = "scribble 2 3; scribble 1 statics; vm map 3 4; urpc ping 0 3; urpc ping 3 0; vm hash; cores";
    let run = context.exec(4, script)?;
    expect_success(&run, script)?;
    // Another core's memory is not mapped (error 0x2: a write to a page
    // that is not present); the kernel's statics are mapped read-only (0x3:
    // present, and written).
    let address = scribbled_at(
        &run.serial,
        "scribble 2 3: core 2 wrote to core 3's memory at ",
    )?;
    expect_page_fault_at(&run.serial, 2, "0x2", &address)?;
    let statics = scribbled_at(
        &run.serial,
        "scribble 1 statics: core 1 wrote to the kernel's statics at ",
    )?;
    expect_page_fault_at(&run.serial, 1, "0x3", &statics)?;
    expect_line(
        &run.serial,
        "vm map 3 4: 0x10000004000 committed: 2 holders applied it, 2 unreached",
    )?;
    expect_urpc_pings(&run.serial, &[(0, 3), (3, 0)])?;
    expect_line(&run.serial, "vm hash: all 2 replicas agree")?;
    expect_core_row(&run.serial, 1, "stopped", "out")?;
    expect_core_row(&run.serial, 2, "stopped", "out")?;
    expect_core_row(&run.serial, 3, "running", "member")
}

/// The address a `scribble` line that starts with `prefix` says it wrote
/// at.
fn scribbled_at(serial: &str, prefix: &str) -> Result<String, String> {
    protocol::lines(serial)
        .find_map(|line| {
            line.strip_prefix(prefix)?
                .split_once(',')
                .map(|(address, _)| address.to_owned())
        })
        .ok_or(format!("no line starting `{prefix}`"))
}

/// `core` took a page fault with `error` at `address`, and stopped.
fn expect_page_fault_at(serial: &str, core: u32, error: &str, address: &str) -> Result<(), String> {
    let fault = protocol::lines(serial)
        .find(|line| {
            line.starts_with(&format!(
                "atoll: core {core}: exception 14 (page fault) error {error} "
            ))
        })
        .ok_or(format!("core {core} took no page fault with error {error}"))?;
    if !fault.ends_with(&format!("addr {address}; core {core} stopped")) {
        return Err(format!("core {core}'s fault is not at {address}: {fault}"));
    }
    Ok(())
}

/// `core off 2`: the others agree on a view without core 2 at once (no
/// detector timeout: it is asked to leave), core 2 halts when the commit
/// reaches it, and the rest go on: a map commits without it, round trips
/// between the others work, the replicas agree. A second `core off 2` is
/// refused.
fn core_off_leaves_by_agreement(context: &mut TestContext) -> Result<(), String> {
    let script = "core off 2; core off 2; cores; vm map 0 1; urpc ping 1 3; vm hash";
    let run = context.exec(4, script)?;
    super::cases::expect_failure(&run, script, 1)?;
    expect_line(
        &run.serial,
        "core off 2: view 2 left core 2 out, and it halted with interrupts off",
    )?;
    expect_line(
        &run.serial,
        "atoll: core 0: suspects core 2: it is asked to leave",
    )?;
    expect_view_2_without_core_2(&run.serial)?;
    expect_line(
        &run.serial,
        "atoll: core 2: left out of view 2 while running; stopping (fenced)",
    )?;
    expect_line(
        &run.serial,
        "error: core off 2: core 2 is stopped, not running",
    )?;
    expect_line(
        &run.serial,
        "vm map 0 1: 0x10000001000 committed: 3 holders applied it, 1 unreached",
    )?;
    expect_urpc_pings(&run.serial, &[(1, 3)])?;
    expect_line(&run.serial, "vm hash: all 3 replicas agree")?;
    expect_core_row(&run.serial, 2, "stopped", "out")
}

/// Cycles of `core cycle`, and changes each core proposes in the storm
/// around them: enough that the storm runs through every cycle.
const CYCLES: u32 = 100;
const STORM_CHANGES: u32 = 2500;

/// On 4 cores in 2 NUMA nodes (core 2 leads the second node's group in the
/// trees), every core runs a storm of maps and unmaps while core 2 leaves
/// and comes back 100 times. Each time it starts as a new kernel with the
/// next incarnation, rejoins and catches up from core 0, whose replica the
/// storm keeps changing (most catch-ups see another replica than the one
/// before). The storm's proposals all end, none for want of a vote (no
/// round waits on a core that catches up), the replicas agree with no lock
/// left, and the core that came back serves `vm map` and round trips both
/// ways.
fn core_off_on_cycles_under_a_storm(context: &mut TestContext) -> Result<(), String> {
    let script = format!(
        "vm storm start {STORM_CHANGES}; core cycle 2 {CYCLES}; vm storm wait; vm map 2 100; urpc ping 0 2; urpc ping 2 1; vm hash"
    );
    let run = context.exec_numa(4, 2, &script)?;
    expect_success(&run, &script)?;
    let summary = format!(
        "core cycle 2: {CYCLES} of {CYCLES} off/on cycles; now incarnation {CYCLES} in view "
    );
    if !protocol::lines(&run.serial).any(|line| line.starts_with(&summary)) {
        return Err(format!("no line starting `{summary}`"));
    }
    for incarnation in 1..=CYCLES {
        expect_line(
            &run.serial,
            &format!("atoll: core 2 up (apic 2, incarnation {incarnation}); asking core 0 to join"),
        )?;
    }
    let catch_ups: Vec<&str> = protocol::lines(&run.serial)
        .filter_map(|line| line.strip_prefix("atoll: core 2: caught up from core 0: "))
        .collect();
    if catch_ups.len() != CYCLES as usize {
        return Err(format!(
            "core 2 caught up {} times in {CYCLES} cycles",
            catch_ups.len()
        ));
    }
    let changed = catch_ups
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .count();
    if changed < CYCLES as usize / 2 {
        return Err(format!(
            "only {changed} of {CYCLES} catch-ups saw the replica changed since the one before: the storm did not run through the cycles"
        ));
    }
    expect_line(&run.serial, "vm storm: cores that stopped mid-storm: [2]")?;
    let proposals = 3 * STORM_CHANGES;
    match protocol::vm_storm_counts(&run.serial) {
        Some(counts)
            if counts.proposals == proposals
                && counts.committed + counts.aborted == proposals
                && counts.committed > 0
                && counts.timed_out == 0 => {}
        other => {
            return Err(format!(
                "expected {proposals} proposals from the 3 cores that stayed, all ended, some committed, none for want of a vote; got {other:?}"
            ));
        }
    }
    expect_line(
        &run.serial,
        "vm map 2 100: 0x10000064000 committed: 4 holders applied it, 0 unreached",
    )?;
    expect_urpc_pings(&run.serial, &[(0, 2), (2, 1)])?;
    expect_replicas_unlocked_and_equal(&run.serial, 4)
}

/// A core that took a fault and one that hung (found by the detector) come
/// back with `core on` and serve; `core on` refuses a member and a core
/// that never started, and changes nothing.
fn faulted_and_hung_cores_come_back(context: &mut TestContext) -> Result<(), String> {
    let script = "vm map 0 1; core on 1; fault 1; core on 1; vm map 1 2; hang 3; vm map 0 3; view; core on 3; core on 2; vm map 3 4; urpc ping 3 1; vm hash; cores";
    let run = context.exec_with_options(
        &Machine::default(),
        "atoll.test.withhold_startup=2",
        script,
        SEABIOS_TIMEOUT,
    )?;
    super::cases::expect_failure(&run, script, 2)?;
    expect_line(
        &run.serial,
        "error: core on 1: core 1 is a member of view 1; `core off 1` first",
    )?;
    expect_line(
        &run.serial,
        "error: core on 2: core 2 never joined (it did not start at boot); only a core that left can come back",
    )?;
    for (core, incarnation) in [(1, 1), (3, 1)] {
        expect_line(
            &run.serial,
            &format!(
                "atoll: core {core} up (apic {core}, incarnation {incarnation}); asking core 0 to join"
            ),
        )?;
        let back =
            format!("core on {core}: core {core} started again (incarnation {incarnation}); view ");
        if !protocol::lines(&run.serial).any(|line| line.starts_with(&back)) {
            return Err(format!("no line starting `{back}`"));
        }
    }
    for (line, holders) in [
        ("vm map 1 2: 0x10000002000", 3),
        ("vm map 3 4: 0x10000004000", 3),
    ] {
        expect_line(
            &run.serial,
            &format!("{line} committed: {holders} holders applied it, 0 unreached"),
        )?;
    }
    expect_urpc_pings(&run.serial, &[(3, 1)])?;
    expect_line(&run.serial, "vm hash: all 3 replicas agree")?;
    for core in [1, 3] {
        expect_core_row(&run.serial, core, "running", "member")?;
    }
    expect_core_row(&run.serial, 2, "offline", "out")
}

/// Cores 0, 1 and 3 of 4 installed view 2, which left core 2 out.
fn expect_view_2_without_core_2(serial: &str) -> Result<(), String> {
    for survivor in [0, 1, 3] {
        expect_line(
            serial,
            &format!("atoll: core {survivor}: view 2: cores 0 1 3; left: 2"),
        )?;
    }
    Ok(())
}

/// A `urpc ping` round trip from each core to the other of `pairs`.
fn expect_urpc_pings(serial: &str, pairs: &[(u32, u32)]) -> Result<(), String> {
    for &(from, to) in pairs {
        if protocol::urpc_ping_median(serial, from, to).is_none() {
            return Err(format!("no `urpc ping {from} {to}` round trip"));
        }
    }
    Ok(())
}

/// No `vm hash` line shows a page left locked, and the `replicas` replicas
/// agree.
fn expect_replicas_unlocked_and_equal(serial: &str, replicas: u32) -> Result<(), String> {
    let locked = protocol::lines(serial)
        .filter(|line| line.starts_with("vm hash: core ") && !line.ends_with(", 0 locked"))
        .count();
    if locked > 0 {
        return Err(format!("{locked} `vm hash` lines show pages left locked"));
    }
    expect_line(serial, &format!("vm hash: all {replicas} replicas agree"))
}

/// Core `id`'s row of the last `cores` table shows `state` and `view`.
fn expect_core_row(serial: &str, id: u32, state: &str, view: &str) -> Result<(), String> {
    let table = protocol::last_cores_table(serial).ok_or("no `cores` table")?;
    let row = table
        .iter()
        .find(|row| row.id == id)
        .ok_or(format!("no core {id} row"))?;
    if (row.state.as_str(), row.view.as_str()) != (state, view) {
        return Err(format!("core {id} is {row:?}, expected {state} and {view}"));
    }
    Ok(())
}
