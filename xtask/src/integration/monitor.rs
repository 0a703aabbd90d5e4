//! QEMU tests of the monitor as a whole: a reply that comes after its call
//! timed out, a trace of a proposal across 8 cores, the dump of a core that
//! faults while tracing, and a debugging session that stops in one core's
//! message handler.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cases::{SEABIOS_TIMEOUT, expect_line, expect_success};
use super::{QemuTest, TestContext};
use crate::gdb::{self, MESSAGE_HANDLER};
use crate::protocol;
use crate::qemu::Machine;
use crate::trace;

pub fn tests() -> Vec<QemuTest> {
    vec![
        QemuTest::new(
            "a_late_reply_is_dropped_not_taken_as_the_next_answer",
            a_late_reply_is_dropped,
        ),
        QemuTest::new(
            "trace_of_a_map_and_an_unmap_on_8_cores_shows_the_flow",
            trace_shows_the_flow,
        ),
        QemuTest::new(
            "gdb_stops_in_a_chosen_core_s_message_handler",
            gdb_stops_in_a_message_handler,
        ),
        QemuTest::new(
            "a_core_that_faults_while_tracing_dumps_its_own_trace",
            fault_dumps_its_own_trace,
        ),
        QemuTest::new("stall_refuses_bad_cores", stall_refuses_bad_cores),
        QemuTest::new(
            "bench_trace_measures_with_tracing_off_and_on",
            bench_trace_measures_both_settings,
        ),
    ]
}

/// Core 2 stalls for longer than the shell waits for a call, so the first
/// `vm map` to it times out. Its reply comes later, while the shell waits
/// for the second `vm map`: it is dropped as late (with a line that says
/// so), and the second map gets its own answer, about its own page.
fn a_late_reply_is_dropped(context: &mut TestContext) -> Result<(), String> {
    const TIMEOUT_MS: u32 = 2000;
    const STALL_MS: u32 = 3000;
    let script = format!("stall 2 {STALL_MS}; vm map 2 5; vm map 2 6; vm show; vm hash");
    let run = context.exec_with_options(
        &Machine::default(),
        // The detector must not take the stall for a failure.
        &format!("atoll.call_timeout_ms={TIMEOUT_MS} atoll.suspect_ms=20000"),
        &script,
        SEABIOS_TIMEOUT,
    )?;
    super::cases::expect_failure(&run, &script, 1)?;
    expect_line(
        &run.serial,
        &format!("stall 2: core 2 stops polling its rings for {STALL_MS} ms"),
    )?;
    expect_line(
        &run.serial,
        &format!("error: vm map 2 5: core 2 did not answer within {TIMEOUT_MS} ms"),
    )?;
    let dropped: Vec<&str> = protocol::lines(&run.serial)
        .filter(|line| {
            line.starts_with("atoll: core 0: dropped reply VmDone (call ")
                && line.ends_with(") from core 2: its call had ended")
        })
        .collect();
    if dropped.len() != 1 {
        return Err(format!(
            "expected one late VmDone dropped on core 0, got {dropped:?}"
        ));
    }
    expect_line(
        &run.serial,
        "vm map 2 6: 0x10000006000 committed: 4 holders applied it, 0 unreached",
    )?;
    // The late proposal did commit, on every replica.
    if protocol::vm_show_summaries(&run.serial) != [2] {
        return Err(format!(
            "`vm show` counted {:?} mapped pages, expected [2]",
            protocol::vm_show_summaries(&run.serial)
        ));
    }
    expect_line(&run.serial, "vm hash: all 4 replicas agree")
}

/// The trace `cargo xtask trace --cores 8 --numa 2 --exec "vm map 3 1; vm
/// unmap 5 1"` writes: it parses, has a track per core, every receive has
/// its send, and the proposals' messages flow between the cores as two-phase
/// commit has them.
fn trace_shows_the_flow(context: &mut TestContext) -> Result<(), String> {
    const CORES: u32 = 8;
    let script = trace::wrap("vm map 3 1; vm unmap 5 1");
    let run = context.exec_numa(CORES as u8, 2, &script)?;
    expect_success(&run, &script)?;
    let out = std::env::temp_dir().join(format!("atoll-trace-{}.json", std::process::id()));
    let exported = trace::export(&run.serial, &out).map_err(|error| format!("{error:#}"))?;
    let text = fs::read_to_string(&out).map_err(|error| error.to_string())?;
    let _ = fs::remove_file(&out);
    let json: Value =
        serde_json::from_str(&text).map_err(|error| format!("the trace is not JSON: {error}"))?;
    let events = json["traceEvents"]
        .as_array()
        .ok_or("no traceEvents array")?;

    let tracks: BTreeSet<u64> = events
        .iter()
        .filter(|event| event["ph"] == "M" && event["name"] == "thread_name")
        .filter_map(|event| event["tid"].as_u64())
        .collect();
    if tracks != (0..u64::from(CORES)).collect() {
        return Err(format!("tracks for cores {tracks:?}, expected 0 to 7"));
    }

    // A message arrives after it leaves: every flow ends no earlier than
    // it starts (QEMU keeps the cores' TSCs in step, and the export puts
    // every core on one time base).
    let flow_times = |phase: &str| -> BTreeMap<u64, f64> {
        events
            .iter()
            .filter(|event| event["ph"] == phase)
            .filter_map(|event| Some((event["id"].as_u64()?, event["ts"].as_f64()?)))
            .collect()
    };
    let (starts, finishes) = (flow_times("s"), flow_times("f"));
    if finishes.is_empty() {
        return Err("no flows in the trace".to_owned());
    }
    if let Some((id, end)) = finishes
        .iter()
        .find(|&(id, end)| starts.get(id).is_none_or(|start| end < start))
    {
        return Err(format!(
            "flow {id:#x} ends at {end} us, before its start {:?}",
            starts.get(id)
        ));
    }
    if exported.unmatched_receives() != 0 {
        return Err(format!(
            "receives without their send:\n{}",
            exported.summary()
        ));
    }

    // (from, to) of each flow of a message.
    let flows = |name: &str| -> BTreeSet<(u64, u64)> {
        let sends: Vec<&Value> = events
            .iter()
            .filter(|event| event["ph"] == "s" && event["name"] == name)
            .collect();
        sends
            .iter()
            .filter_map(|send| {
                let end = events
                    .iter()
                    .find(|event| event["ph"] == "f" && event["id"] == send["id"])?;
                Some((send["tid"].as_u64()?, end["tid"].as_u64()?))
            })
            .collect()
    };
    let others = |coordinator: u64| (0..u64::from(CORES)).filter(move |&core| core != coordinator);
    for (coordinator, request) in [(3, "VmPropose"), (5, "VmPropose")] {
        let expected = [
            (request, vec![(0, coordinator)]),
            ("VmDone", vec![(coordinator, 0)]),
            (
                "Prepare",
                others(coordinator)
                    .map(|core| (coordinator, core))
                    .collect(),
            ),
            (
                "Vote",
                others(coordinator)
                    .map(|core| (core, coordinator))
                    .collect(),
            ),
        ];
        for (name, pairs) in expected {
            let seen = flows(name);
            if let Some(missing) = pairs.iter().find(|pair| !seen.contains(pair)) {
                return Err(format!(
                    "no {name} from core {} to core {} in the trace (flows: {seen:?})",
                    missing.0, missing.1
                ));
            }
        }
    }
    // The commits reach every core, some through the other node's
    // aggregator: neither coordinator sends its commit to every other core
    // itself. (Which core aggregates the other node is the nearest by
    // measured round trip, and may be the other coordinator, so the relayed
    // flows cannot be told from the coordinators' own by their sender.)
    let commits = flows("Commit");
    for core in 0..u64::from(CORES) {
        if core != 3 && core != 5 && !commits.iter().any(|&(_, to)| to == core) {
            return Err(format!("no Commit reached core {core}: {commits:?}"));
        }
    }
    for coordinator in [3, 5] {
        if others(coordinator).all(|core| commits.contains(&(coordinator, core))) {
            return Err(format!(
                "core {coordinator} sent its Commit to every core itself, none through an aggregator: {commits:?}"
            ));
        }
    }
    let proposals = events
        .iter()
        .filter(|event| event["ph"] == "b" && event["name"] == "call VmPropose")
        .count();
    if proposals != 2 {
        return Err(format!(
            "{proposals} VmPropose call spans, expected the map's and the unmap's"
        ));
    }
    let summary = exported.summary();
    for part in ["messages sent per pair", "Prepare", "p50"] {
        if !summary.contains(part) {
            return Err(format!("the summary has no `{part}`:\n{summary}"));
        }
    }
    Ok(())
}

/// A free local TCP port, for the gdbstub.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| error.to_string())
}

/// `cargo xtask gdb`'s session, in batch: a breakpoint on the monitor's
/// message handler with the condition that the core is core 2 stops there,
/// on core 2.
fn gdb_stops_in_a_message_handler(context: &mut TestContext) -> Result<(), String> {
    const GDB_TIMEOUT: Duration = Duration::from_secs(120);
    let dir = std::env::temp_dir().join(format!("atoll-gdb-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let (serial, batch) = (dir.join("serial.log"), dir.join("session.gdb"));
    fs::write(
        &batch,
        format!(
            "break {MESSAGE_HANDLER} if self.base.me.0 == 2\ncontinue\nprint self.base.me.0\nbacktrace 3\nkill\n"
        ),
    )
    .map_err(|error| error.to_string())?;
    let target = gdb::Target {
        kernel: &context.env.kernel,
        machine: &Machine::default(),
        script: Some("cores"),
        port: free_port()?,
        serial: &serial,
        batch: Some(&batch),
    };
    let output = gdb::session(&target, Stdio::null(), |args| {
        // coreutils' `timeout` ends a gdb that never stops.
        Command::new("timeout")
            .arg(GDB_TIMEOUT.as_secs().to_string())
            .arg("gdb")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map(|output| {
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr)
            })
            .map_err(|error| format!("cannot start gdb: {error}"))
    })
    .map_err(|error| format!("{error:#}"))
    .and_then(|output| output);
    let _ = fs::remove_dir_all(&dir);
    let output = output?;
    let hit = format!("hit Breakpoint 1, {MESSAGE_HANDLER} (");
    if !output.contains(&hit) || !output.contains("$1 = 2") {
        return Err(format!(
            "gdb did not stop in core 2's message handler; its output:\n{output}"
        ));
    }
    if !output.contains("#1 ") || !output.contains("receive_slot") {
        return Err(format!("no backtrace through receive_slot:\n{output}"));
    }
    Ok(())
}

/// Core 2 coordinates a map while tracing, then faults: nobody can ask a
/// stopped core for its dump, so it prints its own on the way down, its
/// fault the last event; the dump of the others follows, and the export
/// reads all four.
fn fault_dumps_its_own_trace(context: &mut TestContext) -> Result<(), String> {
    let script = trace::wrap("vm map 2 1; fault 2");
    let run = context.exec(4, &script)?;
    expect_success(&run, &script)?;
    let parsed = trace::Trace::parse(&run.serial).map_err(|error| format!("{error:#}"))?;
    let cores: Vec<u32> = parsed.dumps.keys().copied().collect();
    if cores != [0, 1, 2, 3] {
        return Err(format!("dumps of cores {cores:?}, expected 0 to 3"));
    }
    let faulted = &parsed.dumps[&2].events;
    let last = faulted.last().ok_or("core 2 dumped no events")?;
    if last.kind != "fault" || last.name != "page fault" {
        return Err(format!(
            "core 2's last event is {last:?}, not its page fault"
        ));
    }
    if !faulted
        .iter()
        .any(|event| event.kind == "recv" && event.name == "VmPropose")
    {
        return Err(format!(
            "core 2's dump lacks the VmPropose it served: {faulted:?}"
        ));
    }
    expect_line(&run.serial, "trace: dumped 3 cores")
}

/// `stall` names a core other than the shell's, and a running one.
fn stall_refuses_bad_cores(context: &mut TestContext) -> Result<(), String> {
    let script = "stall 0 10; stall 9 10; fault 1; stall 1 10; stall 2 10";
    let run = context.exec(4, script)?;
    super::cases::expect_failure(&run, script, 3)?;
    for line in [
        "error: stall 0: core 0 runs this shell; pick another core",
        "error: stall: no core 9 (cores are 0 to 3)",
        "error: stall 1: core 1 is stopped, not running",
    ] {
        expect_line(&run.serial, line)?;
    }
    expect_line(
        &run.serial,
        "stall 2: core 2 stops polling its rings for 10 ms",
    )
}

/// `bench trace` measures both workloads with tracing off, on and off
/// again, and prints each row with its ratios; it refuses to run while
/// tracing is on, which would leave nothing to compare with.
fn bench_trace_measures_both_settings(context: &mut TestContext) -> Result<(), String> {
    let script = "trace on; bench trace; trace off; bench trace";
    let run = context.exec(4, script)?;
    super::cases::expect_failure(&run, script, 1)?;
    expect_line(
        &run.serial,
        "error: bench trace: tracing is on; turn it off first",
    )?;
    for workload in ["urpc round trip", "vm map + unmap"] {
        let row = protocol::lines(&run.serial)
            .find_map(|line| line.strip_prefix(workload))
            .ok_or_else(|| format!("no `{workload}` row"))?;
        let numbers: Vec<f64> = row
            .split_whitespace()
            .map(|word| {
                word.parse()
                    .map_err(|_| format!("`{word}` in the `{workload}` row"))
            })
            .collect::<Result<_, _>>()?;
        let [off, on, on_over_off, again, again_over_off] = numbers[..] else {
            return Err(format!(
                "the `{workload}` row has {} numbers: {row}",
                numbers.len()
            ));
        };
        if off <= 0.0 || on <= 0.0 || again <= 0.0 {
            return Err(format!("`{workload}`: a setting measured nothing: {row}"));
        }
        let ratio = |a: f64, b: f64| (a / b * 100.0).round() / 100.0;
        if (ratio(on, off) - on_over_off).abs() > 0.011
            || (ratio(again, off) - again_over_off).abs() > 0.011
        {
            return Err(format!(
                "`{workload}`: the ratios do not follow the cycles: {row}"
            ));
        }
    }
    Ok(())
}
