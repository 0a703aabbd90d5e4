//! The URPC benchmarks, run by `cargo xtask bench urpc`,
//! `cargo xtask bench urpc-depth` and `cargo xtask bench monitor` (or
//! directly with `cargo bench -p atoll-hosted --bench urpc -- <benchmark>
//! [flags]`).
//!
//! All pin the two ends of every channel to the same two CPUs, print a
//! table, and write `<out>/<benchmark>.json` (every number, the machine as
//! `lscpu` describes it, and the command) and `<out>/<benchmark>.svg`.
//! `docs/urpc.md` explains what the first two measure and what they found,
//! `docs/benchmarks.md` the third.

mod depth;
mod harness;
mod mechanisms;
mod model;
mod monitor;
mod table;

use std::process::ExitCode;

use atoll_bench_report::args::{self, BenchArgs};
use atoll_bench_report::{machine, output, report, stats};
use atoll_hosted::{allowed_cpus, pin_current_thread};
use serde_json::json;

use harness::{CpuPair, Plan};

const USAGE: &str = "\
usage: urpc <benchmark> [--out DIR] [--cpus A,B] [--repetitions N] [--command TEXT]
benchmarks:
  urpc        URPC calls and rings against the one-line floor, rtrb, crossbeam-channel, std mpsc and pipes
  urpc-depth  URPC round trips and streaming against ring and call-channel depth
  monitor     round trips through two monitors against the bare ring pair, tracing off and on
  --out DIR         where to write <benchmark>.json and .svg (default bench/results)
  --cpus A,B        the initiator's and the responder's CPU (default: the first two allowed)
  --repetitions N   rounds (default 15)
  --command TEXT    the command to record as having produced the results";

/// The pair `--cpus` names, which must be exactly two CPUs.
fn cpu_pair(cpus: Option<Vec<usize>>) -> Result<Option<CpuPair>, String> {
    match cpus.as_deref() {
        None => Ok(None),
        Some(&[initiator, responder]) => Ok(Some(CpuPair {
            initiator,
            responder,
        })),
        Some(_) => Err("--cpus: expected two different CPUs, like 0,1".to_owned()),
    }
}

fn default_cpus() -> Result<CpuPair, String> {
    let cpus =
        allowed_cpus().map_err(|error| format!("cannot read this process's CPUs: {error}"))?;
    match cpus[..] {
        [initiator, responder, ..] => Ok(CpuPair {
            initiator,
            responder,
        }),
        _ => Err("the benchmark needs two CPUs".to_owned()),
    }
}

fn run(options: BenchArgs) -> Result<(), String> {
    let cpus = match cpu_pair(options.cpus)? {
        Some(cpus) => cpus,
        None => default_cpus()?,
    };
    let plan = Plan {
        repetitions: options.repetitions,
        batches: 50,
        round_trips: 200,
        stream: 7 * 4096,
    };
    pin_current_thread(cpus.initiator)
        .map_err(|error| format!("cannot pin to CPU {}: {error}", cpus.initiator))?;
    let report = match options.benchmark.as_str() {
        "urpc" => table::run(&plan, cpus)?,
        "urpc-depth" => depth::run(&plan, cpus)?,
        "monitor" => monitor::run(&plan, cpus)?,
        other => return Err(format!("no benchmark called {other}")),
    };
    println!("{}", report.table);
    let json = json!({
        "benchmark": options.benchmark,
        "command": output::recorded_command(options.command),
        "cpus": [cpus.initiator, cpus.responder],
        "plan": {
            "rounds": plan.repetitions,
            "timed_batches_per_cell_per_round": plan.batches,
            "round_trips_per_latency_batch": plan.round_trips,
            "messages_per_throughput_batch": plan.stream,
            "value_per_round": "median batch; ratios are taken within a round",
        },
        "machine": machine::describe(&[cpus.initiator, cpus.responder]),
        "results": report.json,
        "table": report.table,
    });
    output::write_results(&options.out, &options.benchmark, &json, &report.plot)
}

fn main() -> ExitCode {
    args::run_main(USAGE, 15, run)
}
