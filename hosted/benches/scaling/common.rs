//! What the three benchmarks share beyond threads and rings: their
//! settings, their rounds and the order of each, a random number generator
//! and the read/write mixes of workloads, a team's throughput, and how a
//! cell's values go into the JSON file and the table.

use atoll_bench_report::stats::{Summary, median};
use serde_json::{Value, json};

use crate::clock::Span;
use crate::probe;
use crate::team::Placement;

/// Threads (clients, replicas) per cell: the x axis of every plot.
pub const THREAD_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// What a benchmark is run with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The CPUs to place threads on, in order.
    pub cpus: Vec<usize>,
    /// Rounds: each runs every cell once, in an order of its own.
    pub rounds: usize,
    /// TSC ticks per nanosecond.
    pub tsc_ghz: f64,
}

/// Operations each thread of `placement` runs in one batch: `per_batch`
/// shared by the threads, and divided again by the threads per CPU, so that
/// the slowest (oversubscribed) cells do not take most of the run.
pub fn operations_per_thread(per_batch: u64, placement: &Placement) -> u64 {
    per_batch / placement.cpus.len() as u64 / placement.threads_per_cpu() as u64
}

/// xorshift64*: deterministic, and cheap enough to run inside a timed loop.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `stream` (a thread index, a round); never all-zero.
    pub fn new(stream: u64) -> Rng {
        Rng(0x9e37_79b9_7f4a_7c15 ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..bound` for a workload.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The order in which round `round` runs `groups` groups of cells: a
/// shuffle of its own, so that a slow stretch of the host (another tenant,
/// a vCPU moved) falls on different groups in different rounds, while the
/// cells of one group, which are compared with each other, run back to back.
fn round_order(groups: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..groups).collect();
    let mut rng = Rng::new(round as u64);
    for last in (1..order.len()).rev() {
        order.swap(last, rng.below(last as u64 + 1) as usize);
    }
    order
}

/// Runs every round of a benchmark over `cells`, whose groups are
/// `per_group` cells in a row: each round runs the groups in an order of its
/// own ([`round_order`]), measures the one-line floor before each group, and
/// hands each cell of the group to `measure`, with that floor.
pub fn run_rounds<C>(
    settings: &Settings,
    cells: &mut [C],
    per_group: usize,
    mut measure: impl FnMut(&mut C, Option<f64>),
) {
    for round in 0..settings.rounds {
        for group in round_order(cells.len() / per_group, round) {
            let floor = probe::one_line_floor(&settings.cpus);
            for cell in &mut cells[group * per_group..][..per_group] {
                measure(cell, floor);
            }
        }
        eprintln!("round {} of {} done", round + 1, settings.rounds);
    }
}

/// A workload's mix of operations that read and that change the state;
/// each benchmark names them in its own words (writes, updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    ReadHeavy,
    WriteHeavy,
}

impl Mix {
    pub const ALL: [Mix; 2] = [Mix::ReadHeavy, Mix::WriteHeavy];

    /// The share of operations that change the state, in percent.
    pub fn write_percent(self) -> u64 {
        match self {
            Mix::ReadHeavy => 10,
            Mix::WriteHeavy => 90,
        }
    }
}

/// Millions of operations per second of a team whose threads each ran
/// `operations` per batch: all the threads' operations over the batch's
/// wall time (the first start to the last end), median batch.
pub fn million_operations_per_second<'a>(
    spans: impl IntoIterator<Item = &'a [Span]>,
    operations: u64,
) -> f64 {
    let spans: Vec<&[Span]> = spans.into_iter().collect();
    median(
        (0..spans[0].len())
            .map(|batch| {
                let wall = Span::covering(spans.iter().map(|thread| thread[batch]));
                (operations * spans.len() as u64) as f64 / wall.nanos() * 1e3
            })
            .collect(),
    )
}

/// A cell's per-round values and their summary, for the JSON file.
pub fn summary_json(values: &[f64]) -> Value {
    let summary = Summary::of(values);
    json!({
        "median": summary.median,
        "p10": summary.p10,
        "p90": summary.p90,
        "per_round": values,
    })
}

/// `median (p10-p90)` of `values`, each shown with `decimals` decimals.
pub fn format_summary(values: &[f64], decimals: usize) -> String {
    let summary = Summary::of(values);
    format!(
        "{:.decimals$} ({:.decimals$}-{:.decimals$})",
        summary.median, summary.p10, summary.p90
    )
}

/// A table's line on where the host had put the CPUs: the one-line
/// floors measured before each group, summarised.
pub fn floor_line<'a>(floors: impl Iterator<Item = &'a Option<f64>>) -> String {
    let floors: Vec<f64> = floors.flatten().copied().collect();
    if floors.is_empty() {
        return "one-line floor: not measured (one CPU)\n".to_owned();
    }
    let summary = Summary::of(&floors);
    let (low, high) = floors
        .iter()
        .fold((f64::MAX, f64::MIN), |(low, high), &floor| {
            (low.min(floor), high.max(floor))
        });
    format!(
        "one-line floor before each group (where the host put the vCPUs): median {:.0} ns, p10-p90 {:.0}-{:.0}, range {low:.0}-{high:.0}\n",
        summary.median, summary.p10, summary.p90
    )
}

/// `values` divided element by element by `baseline`: ratios within rounds.
pub fn ratios(values: &[f64], baseline: &[f64]) -> Vec<f64> {
    values
        .iter()
        .zip(baseline)
        .map(|(value, base)| value / base)
        .collect()
}
