//! How OS state scales over cores, hosted on real CPUs: the benchmarks run
//! by `cargo xtask bench fig3`, `bench replication` and `bench sharing`
//! (or directly with
//! `cargo bench -p atoll-hosted --bench scaling -- <benchmark> [flags]`).
//!
//! - `fig3`: the multikernel paper's Figure 3 (Baumann et al., SOSP 2009):
//!   clients update k cache lines of a shared structure under a lock, or
//!   without one, or by sending a URPC message to a server that owns it.
//! - `replication`: a replicated counter and map, Atoll style (a replica
//!   per thread, updates shipped over URPC rings), against the
//!   `node-replication` crate and one global locked copy.
//! - `sharing`: the mapping table (`atoll-replica`) as a replica per core, a
//!   replica per pair of cores behind a lock, or one global locked copy.
//! - `membership`: failure detection, view changes and heartbeats over 2 to
//!   256 monitors, simulated (ticks and messages, not time).
//! - `protocols`: two-phase map and unmap among N monitors on pinned
//!   threads, over URPC rings, against one locked table with a broadcast
//!   shootdown.
//! - `model`: the latency model of `atoll-sim` on machines of 16 to 1024
//!   cores: shootdown, map and unmap over each tree against the shared-
//!   memory baselines, in modelled cycles.
//!
//! Each prints a table and writes `<out>/<benchmark>.json` (every number
//! per round, the machine as `lscpu` describes it, the command) and
//! `<out>/<benchmark>.svg`. `docs/benchmarks.md` explains what they
//! measure and what they found. A cell with more threads than CPUs is
//! oversubscribed, and marked so: its threads time-share the CPUs.

mod clock;
mod common;
mod fig3;
mod links;
mod membership;
mod model;
mod probe;
mod protocols;
mod replication;
mod sharing;
mod team;

use std::process::ExitCode;

use atoll_bench_report::args::{self, BenchArgs};
use atoll_bench_report::{machine, output};
use atoll_hosted::allowed_cpus;
use serde_json::json;

use common::Settings;

const USAGE: &str = "\
usage: scaling <benchmark> [--out DIR] [--cpus A,B,...] [--repetitions N] [--command TEXT]
benchmarks:
  fig3         cost per update of k shared cache lines: locked, unlocked, or by message to an owner
  replication  a replicated counter and map: Atoll replicas, node-replication, one locked copy
  sharing      the mapping table: a replica per core, per pair of cores, or one locked copy
  membership   detection, view changes and heartbeats over 2 to 256 simulated monitors
  model        modelled cycles of shootdown, map and unmap on machines of 16 to 1024 cores
  protocols    a map and its unmap among 1 to every CPU's monitors, against a locked table
  --out DIR         where to write <benchmark>.json and .svg (default bench/results)
  --cpus A,B,...    the CPUs to place threads on (default: every CPU this process may use)
  --repetitions N   rounds (default 10)
  --command TEXT    the command to record as having produced the results";

fn run(options: BenchArgs) -> Result<(), String> {
    let cpus = match options.cpus {
        Some(cpus) => cpus,
        None => {
            allowed_cpus().map_err(|error| format!("cannot read this process's CPUs: {error}"))?
        }
    };
    let settings = Settings {
        cpus,
        rounds: options.repetitions,
        tsc_ghz: clock::tsc_ghz(),
    };
    let report = match options.benchmark.as_str() {
        "fig3" => fig3::run(&settings)?,
        "replication" => replication::run(&settings)?,
        "sharing" => sharing::run(&settings)?,
        "membership" => membership::run(&settings)?,
        "model" => model::run_model(&settings)?,
        "protocols" => protocols::run(&settings)?,
        other => return Err(format!("no benchmark called {other}")),
    };
    println!("{}", report.table);
    let json = json!({
        "benchmark": options.benchmark,
        "command": output::recorded_command(options.command),
        "cpus": settings.cpus,
        "rounds": settings.rounds,
        "tsc_ghz": settings.tsc_ghz,
        "machine": machine::describe(&settings.cpus),
        "results": report.json,
        "table": report.table,
    });
    output::write_results(&options.out, &options.benchmark, &json, &report.plot)
}

fn main() -> ExitCode {
    args::run_main(USAGE, 10, run)
}
