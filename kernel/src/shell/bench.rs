//! The shell's measurements: `urpc ping`, `urpc bench`, `bench shootdown`,
//! `bench fig3` and `bench trace`. The measuring is done by the monitors'
//! `bench` and `control` services (and by the hosts, for what only they
//! can measure); the shell asks for it and prints the tables.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use atoll_arch::cpu;
use atoll_arch::percore::TIMER_HZ;
use atoll_monitor::bench::{
    BENCH_DONE, BenchPeer, BenchReport, BenchShootdown, FIG3_MESSAGES, FIG3_SHARED_MEMORY, Fig3Run,
    SHOOTDOWN_METHODS, status_text,
};
use atoll_monitor::control::{
    PING_DONE, PING_NO_ANSWER, PING_PEER_NOT_RUNNING, PING_TO_ITSELF, PingPeer, PingReport, summary,
};
use atoll_monitor::membership::{DetectorSet, SetDetector};
use atoll_monitor::vm::{Change, VmPropose};

use super::ask::{CoreState, ask, ask_all, check_running, core_state, nanoseconds};
use super::skb::show_tree;
use super::trace;
use crate::host::Core;
use crate::shared::boot_facts;

/// Round trips per pair and measurement in `urpc bench` and `urpc ping`.
const ROUNDS: u32 = atoll_monitor::bench::ROUNDS;

fn ping_status_text(status: u8) -> &'static str {
    match status {
        PING_PEER_NOT_RUNNING => "the peer is not running",
        PING_NO_ANSWER => "the peer stopped answering",
        PING_TO_ITSELF => "a core has no ring to itself",
        _ => "refused for an unknown reason",
    }
}

/// `urpc ping <from> <to>`: core `from` measures round trips to `to`.
pub fn urpc_ping(core: &Core, from: usize, to: usize) -> Result<(), String> {
    check_running(core, "urpc ping", from)?;
    check_running(core, "urpc ping", to)?;
    if from == to {
        return Err(format!(
            "urpc ping: core {from} has no ring to itself; pick two cores"
        ));
    }
    let request = PingPeer {
        peer: to as u16,
        rounds: ROUNDS,
    };
    let report =
        ask(core, from, request).map_err(|error| format!("urpc ping {from} {to}: {error}"))?;
    let PingReport {
        status: PING_DONE,
        median,
        min,
        max,
    } = report
    else {
        return Err(format!(
            "urpc ping {from} {to}: {}",
            ping_status_text(report.status)
        ));
    };
    println!(
        "urpc ping {from} -> {to}: round trip median {median} cycles ({} ns), min {min}, max {max}, {ROUNDS} rounds",
        nanoseconds(median),
    );
    Ok(())
}

/// `urpc bench`: every ordered pair of running cores, one after the other.
pub fn urpc_bench(core: &Core) -> Result<(), String> {
    let running: Vec<usize> = core.members().into_iter().collect();
    if running.len() < 2 {
        return Err(String::from("urpc bench: needs at least two running cores"));
    }
    println!(
        "urpc bench: medians of {ROUNDS} round trips; stream of one-way messages; cycles (ns)"
    );
    println!("{PAIR_HEADER}");
    let mut ratios_to_line = Vec::new();
    for &from in &running {
        for &to in running.iter().filter(|&&to| to != from) {
            let report = bench_pair(core, from, to)?;
            ratios_to_line
                .push(report.urpc_round_trip as f64 / report.shared_line_round_trip.max(1) as f64);
        }
    }
    ratios_to_line.sort_unstable_by(f64::total_cmp);
    println!(
        "urpc bench: {} ordered pairs; median urpc/line ratio {:.2}",
        ratios_to_line.len(),
        ratios_to_line[ratios_to_line.len() / 2]
    );
    Ok(())
}

/// The header over [`bench_pair`]'s rows.
pub const PAIR_HEADER: &str = "from  to   urpc-rtt          ipi-rtt           line-rtt          urpc/line  urpc/ipi  stream/msg";

/// Measures the pair `from` -> `to` (`BenchPeer`) and prints its row of
/// `urpc bench`'s table.
pub fn bench_pair(core: &Core, from: usize, to: usize) -> Result<BenchReport, String> {
    let report = ask(core, from, BenchPeer { peer: to as u16 })
        .map_err(|error| format!("urpc bench {from} -> {to}: {error}"))?;
    if report.status != BENCH_DONE {
        return Err(format!(
            "urpc bench {from} -> {to}: {}",
            status_text(report.status)
        ));
    }
    let ratio = |numerator: u64, denominator: u64| numerator as f64 / denominator.max(1) as f64;
    println!(
        "{from:>4}  {to:>2}   {:>7} ({:>6})  {:>7} ({:>6})  {:>7} ({:>6})  {:>9.2}  {:>8.2}  {:>5} ({} ns)",
        report.urpc_round_trip,
        nanoseconds(report.urpc_round_trip),
        report.ipi_round_trip,
        nanoseconds(report.ipi_round_trip),
        report.shared_line_round_trip,
        nanoseconds(report.shared_line_round_trip),
        ratio(report.urpc_round_trip, report.shared_line_round_trip),
        ratio(report.urpc_round_trip, report.ipi_round_trip),
        report.stream_per_message,
        nanoseconds(report.stream_per_message),
    );
    Ok(report)
}

/// Shootdowns per method and target count; the medians are reported.
const SHOOTDOWN_ROUNDS: usize = 24;

/// `bench shootdown`: from the boot core to 1 up to all other cores, each
/// method in turn, round after round, in one boot.
pub fn shootdown(core: &Core) -> Result<(), String> {
    let facts = boot_facts();
    if core.id != facts.boot_core {
        return Err(String::from("bench shootdown: runs on the boot core"));
    }
    // Without them its `skb-tree` column would be unicast under another
    // name (every core installs them, or none does).
    if !core.monitor().trees_installed() {
        return Err(format!(
            "bench shootdown: the knowledge base's multicast trees are not installed (core {}'s boot line says why): the skb-tree column would measure unicast",
            core.id
        ));
    }
    println!(
        "bench shootdown: from core {}, medians of {SHOOTDOWN_ROUNDS} rounds, TSC cycles (ratio to ipi-broadcast)",
        core.id
    );
    show_tree(core, core.id)?;
    println!(
        "targets  {:>14}  {:>20}  {:>20}  {:>20}",
        SHOOTDOWN_METHODS[0], SHOOTDOWN_METHODS[1], SHOOTDOWN_METHODS[2], SHOOTDOWN_METHODS[3]
    );
    let others: Vec<usize> = (0..facts.cores.len()).filter(|&id| id != core.id).collect();
    for targets in 1..=others.len() {
        if let Some(&down) = others[..targets]
            .iter()
            .find(|&&id| core_state(core, id) != CoreState::Running)
        {
            println!("{targets:>7}  skipped: core {down} is not running");
            continue;
        }
        let mut samples: [Vec<u64>; 4] = Default::default();
        for _ in 0..SHOOTDOWN_ROUNDS {
            for (method, samples) in samples.iter_mut().enumerate() {
                let request = BenchShootdown {
                    method: method as u8,
                    targets: targets as u16,
                };
                let shot = ask(core, core.id, request)
                    .map_err(|error| format!("bench shootdown: {error}"))?;
                if shot.status != BENCH_DONE {
                    return Err(format!(
                        "bench shootdown: {} to {targets} cores did not complete: {}",
                        SHOOTDOWN_METHODS[method],
                        status_text(shot.status)
                    ));
                }
                samples.push(shot.cycles);
            }
        }
        let medians = samples.map(|samples| summary(samples).0);
        let ratio = |cycles: u64| cycles as f64 / medians[0].max(1) as f64;
        println!(
            "{targets:>7}  {:>14}  {:>12} ({:>5.2})  {:>12} ({:>5.2})  {:>12} ({:>5.2})",
            medians[0],
            medians[1],
            ratio(medians[1]),
            medians[2],
            ratio(medians[2]),
            medians[3],
            ratio(medians[3]),
        );
    }
    Ok(())
}

/// Updates per `bench fig3` client and measurement.
const FIG3_UPDATES: u32 = 200;
const FIG3_LINE_COUNTS: [u8; 4] = [1, 2, 4, 8];

/// One `bench fig3` measurement: `clients` at once, by `method`; the mean
/// cycles per update.
fn fig3_measure(core: &Core, clients: &[usize], method: u8, lines: u8) -> Result<u64, String> {
    let run = Fig3Run {
        method,
        lines,
        updates: FIG3_UPDATES,
    };
    let mut total = 0u64;
    for (client, reply) in ask_all(core, clients.iter().map(|&id| (id, run.clone()))) {
        match reply {
            Ok(done) if done.cycles_per_update != u64::MAX => total += done.cycles_per_update,
            Ok(_) => return Err(format!("bench fig3: core {client} did not finish")),
            Err(error) => return Err(format!("bench fig3: core {client}: {error}")),
        }
    }
    Ok(total / clients.len() as u64)
}

/// `bench fig3`: k lines updated under a shared lock by each client, against
/// one message per update to this core, which owns its copy of them.
pub fn fig3(core: &Core) -> Result<(), String> {
    let clients: Vec<usize> = core
        .members()
        .into_iter()
        .filter(|&id| id != core.id)
        .collect();
    if clients.is_empty() {
        return Err(String::from(
            "bench fig3: needs at least one other running core",
        ));
    }
    println!(
        "bench fig3: {FIG3_UPDATES} updates per client; mean TSC cycles per update; owner core {}",
        core.id
    );
    println!("lines  clients  shared-memory  messages  messages/shared");
    for lines in FIG3_LINE_COUNTS {
        for count in (0..)
            .map(|power| 1usize << power)
            .take_while(|&count| count <= clients.len())
        {
            let group = &clients[..count];
            let shared = fig3_measure(core, group, FIG3_SHARED_MEMORY, lines)?;
            let messages = fig3_measure(core, group, FIG3_MESSAGES, lines)?;
            println!(
                "{lines:>5}  {count:>7}  {shared:>13}  {messages:>8}  {:>15.2}",
                messages as f64 / shared.max(1) as f64
            );
        }
    }
    Ok(())
}

/// Rounds of each `bench trace` workload per setting.
const TRACE_ROUNDS: usize = 32;
/// The page `bench trace` maps and unmaps: the last of the test space, so
/// that it stays clear of what other commands map.
const TRACE_PAGE: u32 = atoll_monitor::vm::TEST_SPACE_PAGES - 1;

/// The two `bench trace` workloads once: a URPC round trip through the
/// monitors to `peer` (as `urpc ping` makes them, median of a few), and a
/// map with its unmap proposed from this core; cycles of each.
fn trace_workloads(core: &Core, peer: usize) -> Result<[u64; 2], String> {
    let report = ask(
        core,
        core.id,
        PingPeer {
            peer: peer as u16,
            rounds: 8,
        },
    )
    .map_err(|error| format!("bench trace: {error}"))?;
    if report.status != PING_DONE {
        return Err(format!("bench trace: {}", ping_status_text(report.status)));
    }
    let start = cpu::rdtsc();
    for change in [Change::Map, Change::Unmap] {
        let request = VmPropose {
            change: change as u8,
            page: TRACE_PAGE,
        };
        let done = ask(core, core.id, request).map_err(|error| format!("bench trace: {error}"))?;
        if !done.committed() {
            return Err(format!(
                "bench trace: page {TRACE_PAGE}: {}",
                done.describe()
            ));
        }
    }
    Ok([report.median, cpu::rdtsc() - start])
}

/// Medians of [`trace_workloads`] under each of `settings` (each put in
/// place by its function before its runs), interleaved round by round
/// after one warm-up round of each (so that, for example, trace rings are
/// allocated before any round is timed): by setting, by workload.
fn workloads_under(
    core: &Core,
    peer: usize,
    settings: &[&dyn Fn() -> Result<(), String>],
) -> Result<Vec<[u64; 2]>, String> {
    let mut samples = vec![[Vec::new(), Vec::new()]; settings.len()];
    let warm_up = settings.iter().map(|setting| (None, setting));
    let timed =
        (0..TRACE_ROUNDS).flat_map(|_| settings.iter().enumerate().map(|(i, s)| (Some(i), s)));
    for (index, setting) in warm_up.chain(timed) {
        setting()?;
        let cycles = trace_workloads(core, peer)?;
        if let Some(index) = index {
            for (workload, cycles) in cycles.into_iter().enumerate() {
                samples[index][workload].push(cycles);
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|[urpc, vm]| [summary(urpc).0, summary(vm).0])
        .collect())
}

/// A core other than the shell's, for the workloads' round trips.
fn workload_peer(core: &Core, command: &str) -> Result<usize, String> {
    core.members()
        .into_iter()
        .find(|&id| id != core.id)
        .ok_or_else(|| format!("{command}: needs at least two running cores"))
}

const WORKLOADS: [&str; 2] = ["urpc round trip", "vm map + unmap"];

/// `bench trace`: what recording costs. The same two workloads with
/// tracing off, on, and off again on every core, interleaved round by
/// round, in one boot; medians, with the ratios of on to off and of the
/// second off to the first (the noise between two runs of the same code).
pub fn trace_cost(core: &Core) -> Result<(), String> {
    let peer = workload_peer(core, "bench trace")?;
    if core.with_monitor(|monitor| monitor.tracing()) {
        return Err(String::from(
            "bench trace: tracing is on; turn it off first",
        ));
    }
    let off = || trace::set_everywhere(core, false, "bench trace").map(drop);
    let on = || trace::set_everywhere(core, true, "bench trace").map(drop);
    let medians = workloads_under(core, peer, &[&off, &on, &off])?;
    off()?;
    println!(
        "bench trace: medians of {TRACE_ROUNDS} rounds from core {} with core {peer}, TSC cycles; tracing off, on, off again, interleaved",
        core.id
    );
    println!("workload                    off         on  on/off  off-again  off-again/off");
    print_rows(&medians, |[off, on, again], ratio| {
        format!(
            "{off:>9}  {on:>9}  {:>6.2}  {again:>9}  {:>13.2}",
            ratio(on),
            ratio(again)
        )
    });
    Ok(())
}

/// One row per workload: its name, then what `row` makes of its medians
/// under the three settings, given the ratio of a median to the first's.
fn print_rows(medians: &[[u64; 2]], row: impl Fn([u64; 3], &dyn Fn(u64) -> f64) -> String) {
    for (workload, name) in WORKLOADS.into_iter().enumerate() {
        let settings = [0, 1, 2].map(|setting| medians[setting][workload]);
        let ratio = |median: u64| median as f64 / settings[0].max(1) as f64;
        println!("{name:<20}  {}", row(settings, &ratio));
    }
}

/// `bench heartbeats`: what the failure detector's heartbeats cost. The
/// same two workloads with heartbeats (practically) off, every 100 ms (the
/// default) and every 10 ms on every member, interleaved round by round, in
/// one boot; medians, with each setting's ratio to off. The boot's
/// detector is put back at the end.
pub fn heartbeat_cost(core: &Core) -> Result<(), String> {
    let peer = workload_peer(core, "bench heartbeats")?;
    const HOUR_MS: u64 = 3_600_000;
    let set =
        |suspect_ms: u64| move || set_detector_everywhere(core, suspect_ms, "bench heartbeats");
    let (off, default, fast) = (set(HOUR_MS), set(1000), set(100));
    let medians = workloads_under(core, peer, &[&off, &default, &fast])?;
    let boot = crate::host::detector();
    set_detector_everywhere(
        core,
        boot.suspect_after * 1000 / TIMER_HZ,
        "bench heartbeats",
    )?;
    println!(
        "bench heartbeats: medians of {TRACE_ROUNDS} rounds from core {} with core {peer}, TSC cycles, {} cores; heartbeats off, every 100 ms, every 10 ms, interleaved",
        core.id,
        core.members().len()
    );
    println!("workload                    off     100 ms      10 ms  100ms/off  10ms/off");
    print_rows(&medians, |[off, default, fast], ratio| {
        format!(
            "{off:>9}  {default:>9}  {fast:>9}  {:>9.2}  {:>8.2}",
            ratio(default),
            ratio(fast)
        )
    });
    Ok(())
}

/// Has every member suspect a member after `suspect_ms` of silence, and
/// send heartbeats every tenth of it.
pub fn set_detector_everywhere(core: &Core, suspect_ms: u64, command: &str) -> Result<(), String> {
    let suspect_after = crate::host::ticks(suspect_ms).max(2);
    let request = SetDetector {
        heartbeat: (suspect_after / 10).max(1),
        suspect_after,
    };
    for (id, reply) in ask_all(
        core,
        core.members().into_iter().map(|id| (id, request.clone())),
    ) {
        let DetectorSet {} = reply.map_err(|error| format!("{command}: core {id}: {error}"))?;
    }
    Ok(())
}
