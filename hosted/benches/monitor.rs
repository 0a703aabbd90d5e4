//! `cargo xtask bench monitor` (or
//! `cargo bench -p atoll-hosted --bench monitor -- monitor [flags]`): what a
//! round trip costs through two cores' monitors (`atoll-monitor`), on two
//! pinned threads and the same URPC rings, against the bare round trip on
//! those rings; and what tracing costs, on and off.
//!
//! Three cells, one slot each way per round trip, both sides polling (so
//! no send needs the sleep handshake, in any cell):
//! - `ring pair`: the initiator sends a slot on one ring and the responder
//!   sends one back on the other: the floor for any message layer over
//!   these rings;
//! - `monitor`: the initiator's monitor calls the responder's (`Ping`),
//!   which answers (`Pong`): framing, reassembly, dispatch, the calls table
//!   and the completion, on both sides;
//! - `monitor, tracing on`: the same with both monitors tracing, each
//!   event kept in a ring of the kernel's size, as the kernel's recorder
//!   does.
//!
//! A round interleaves the cells batch by batch on fresh rings and
//! monitors; each cell's value in a round is its median batch, and the
//! ratios are taken within a round. Prints a table and writes
//! `<out>/monitor.json` and `<out>/monitor.svg`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use atoll_bench_report::args::{self, BenchArgs};
use atoll_bench_report::report::{Bar, Panel, bar_panels};
use atoll_bench_report::stats::{Summary, median};
use atoll_bench_report::{machine, output};
use atoll_hosted::{Receiver, Ring, Sender, allowed_cpus, pin_current_thread};
use atoll_monitor::control::{Ping, TraceSet};
use atoll_monitor::skb::Facts;
use atoll_monitor::{Config, CoreId, Input, Monitor, Output, TraceEvent};
use serde_json::json;

const USAGE: &str = "\
usage: monitor monitor [--out DIR] [--cpus A,B] [--repetitions N] [--command TEXT]
  round trips through two monitors against the bare ring pair, tracing off and on
  --out DIR         where to write monitor.json and .svg (default bench/results)
  --cpus A,B        the initiator's and the responder's CPU (default: the first two allowed)
  --repetitions N   rounds (default 15)
  --command TEXT    the command to record as having produced the results";

/// Slots per ring: the kernel's depth.
const RING_DEPTH: usize = 8;
/// Timed batches per cell per round (one more runs first, untimed).
const BATCHES: usize = 50;
/// Round trips per batch.
const ROUND_TRIPS: usize = 200;
/// Trace events a core keeps: the kernel's ring.
const TRACE_EVENTS: usize = 4096;
/// Ticks a call may wait: never reached, since no tick is fed.
const TIMEOUT: u64 = 1 << 40;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    RingPair,
    Monitor,
    Traced,
}

impl Cell {
    const ALL: [Cell; 3] = [Cell::RingPair, Cell::Monitor, Cell::Traced];

    fn name(self) -> &'static str {
        match self {
            Cell::RingPair => "ring pair",
            Cell::Monitor => "monitor",
            Cell::Traced => "monitor, tracing on",
        }
    }
}

/// One side's monitor and what its host keeps of the trace.
struct Side {
    monitor: Monitor,
    out: Output,
    trace: VecDeque<TraceEvent>,
    now: u64,
}

impl Side {
    fn new(me: u16, tracing: bool) -> Side {
        let mut out = Output::default();
        let config = Config {
            me: CoreId(me),
            cores: 2,
            boot_core: CoreId(0),
            frame: 0x1000,
            facts: Facts {
                firmware: Vec::new(),
                own: Vec::new(),
            },
        };
        let mut side = Side {
            monitor: Monitor::new(config, &mut out),
            out,
            trace: VecDeque::with_capacity(TRACE_EVENTS),
            now: 0,
        };
        side.step(Input::CoreUp(CoreId(1 - me)));
        if tracing {
            let ticket =
                side.monitor
                    .call(0, CoreId(me), TraceSet { on: true }, TIMEOUT, &mut side.out);
            assert!(
                side.out
                    .completions
                    .iter()
                    .any(|(t, r)| *t == ticket && r.is_ok()),
                "tracing turned on through the loopback"
            );
            side.out.completions.clear();
        }
        side
    }

    fn step(&mut self, input: Input<'_>) {
        self.now += 1;
        self.monitor.step(self.now, input, &mut self.out);
    }

    /// Sends what the monitor produced and keeps its trace events.
    fn act(&mut self, ring: &mut Sender<'_>) {
        for (_, slot) in self.out.sends.drain(..) {
            ring.send_unflushed(&slot);
        }
        for event in self.out.trace.drain(..) {
            if self.trace.len() == TRACE_EVENTS {
                self.trace.pop_front();
            }
            self.trace.push_back(event);
        }
    }
}

/// One batch of round trips from the initiator's side.
fn initiate(
    cell: Cell,
    side: &mut Option<Side>,
    requests: &mut Sender<'_>,
    replies: &mut Receiver<'_>,
) {
    for _ in 0..ROUND_TRIPS {
        match side {
            None => {
                requests.send_unflushed(black_box(&[0x5a; 56]));
                black_box(replies.recv_polling());
            }
            Some(side) => {
                let ticket =
                    side.monitor
                        .call(side.now, CoreId(1), Ping {}, TIMEOUT, &mut side.out);
                side.act(requests);
                let slot = replies.recv_polling();
                side.step(Input::Slot {
                    from: CoreId(1),
                    slot: &slot,
                });
                side.act(requests);
                let done = side.out.completions.pop();
                assert!(
                    matches!(done, Some((t, Ok(_))) if t == ticket),
                    "{} round trip ended {done:?}",
                    cell.name()
                );
            }
        }
    }
}

/// One batch of round trips from the responder's side.
fn respond(side: &mut Option<Side>, requests: &mut Receiver<'_>, replies: &mut Sender<'_>) {
    for _ in 0..ROUND_TRIPS {
        let slot = requests.recv_polling();
        match side {
            None => {
                replies.send_unflushed(black_box(&slot));
            }
            Some(side) => {
                side.step(Input::Slot {
                    from: CoreId(0),
                    slot: &slot,
                });
                side.act(replies);
            }
        }
    }
}

/// One round: every cell's batches, interleaved, on fresh rings and
/// monitors, the initiator on the calling thread (already pinned) and the
/// responder on `responder_cpu`. Returns each cell's median batch, in ns
/// per round trip.
fn round(responder_cpu: usize) -> Vec<f64> {
    let mut rings: Vec<(Ring, Ring)> = Cell::ALL
        .iter()
        .map(|_| {
            (
                Ring::new(RING_DEPTH).expect("a request ring"),
                Ring::new(RING_DEPTH).expect("a reply ring"),
            )
        })
        .collect();
    let mut ends: Vec<_> = rings
        .iter_mut()
        .map(|(requests, replies)| (requests.split(), replies.split()))
        .collect();
    let mut initiator_ends = Vec::new();
    let mut responder_ends = Vec::new();
    for ((request_sender, request_receiver), (reply_sender, reply_receiver)) in ends.drain(..) {
        initiator_ends.push((request_sender, reply_receiver));
        responder_ends.push((request_receiver, reply_sender));
    }
    let mut times = vec![Vec::with_capacity(BATCHES); Cell::ALL.len()];
    thread::scope(|scope| {
        scope.spawn(move || {
            pin_current_thread(responder_cpu).expect("cannot pin the responder");
            let mut sides: Vec<Option<Side>> = Cell::ALL
                .iter()
                .map(|&cell| (cell != Cell::RingPair).then(|| Side::new(1, cell == Cell::Traced)))
                .collect();
            for _ in 0..=BATCHES {
                for (side, (requests, replies)) in sides.iter_mut().zip(&mut responder_ends) {
                    respond(side, requests, replies);
                }
            }
        });
        let mut sides: Vec<Option<Side>> = Cell::ALL
            .iter()
            .map(|&cell| (cell != Cell::RingPair).then(|| Side::new(0, cell == Cell::Traced)))
            .collect();
        for batch in 0..=BATCHES {
            for (index, (side, (requests, replies))) in
                sides.iter_mut().zip(&mut initiator_ends).enumerate()
            {
                let start = Instant::now();
                initiate(Cell::ALL[index], side, requests, replies);
                let elapsed = start.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
                if batch > 0 {
                    times[index].push(elapsed);
                }
            }
        }
    });
    times.into_iter().map(median).collect()
}

fn run(options: BenchArgs) -> Result<(), String> {
    if options.benchmark != "monitor" {
        return Err(format!("no benchmark called {}", options.benchmark));
    }
    let cpus = match options.cpus.as_deref() {
        Some(&[initiator, responder]) => (initiator, responder),
        Some(_) => return Err("--cpus: expected two different CPUs, like 0,1".to_owned()),
        None => match allowed_cpus()
            .map_err(|error| format!("cannot read this process's CPUs: {error}"))?[..]
        {
            [initiator, responder, ..] => (initiator, responder),
            _ => return Err("the benchmark needs two CPUs".to_owned()),
        },
    };
    pin_current_thread(cpus.0).map_err(|error| format!("cannot pin to CPU {}: {error}", cpus.0))?;
    let rounds: Vec<Vec<f64>> = (0..options.repetitions).map(|_| round(cpus.1)).collect();
    let per_cell = |index: usize| -> Vec<f64> { rounds.iter().map(|round| round[index]).collect() };
    let ratio = |numerator: usize, denominator: usize| -> Vec<f64> {
        rounds
            .iter()
            .map(|round| round[numerator] / round[denominator])
            .collect()
    };
    let ratios = [
        ("monitor / ring pair", ratio(1, 0)),
        ("tracing on / monitor", ratio(2, 1)),
    ];
    let mut table = format!(
        "monitor: round trips on CPUs {} and {}, median of {} rounds (p10-p90), each the median of {BATCHES} batches of {ROUND_TRIPS}\n",
        cpus.0, cpus.1, options.repetitions
    );
    table += &format!("{:<24} {:>10} {:>20}\n", "cell", "ns", "p10-p90");
    let mut results = serde_json::Map::new();
    for (index, cell) in Cell::ALL.iter().enumerate() {
        let values = per_cell(index);
        let summary = Summary::of(&values);
        table += &format!(
            "{:<24} {:>10.1} {:>9.1}-{:<9.1}\n",
            cell.name(),
            summary.median,
            summary.p10,
            summary.p90
        );
        results.insert(
            cell.name().to_owned(),
            json!({ "ns_per_round_trip_per_round": values }),
        );
    }
    table += &format!("{:<24} {:>10} {:>20}\n", "ratio", "median", "p10-p90");
    for (name, values) in &ratios {
        let summary = Summary::of(values);
        table += &format!(
            "{name:<24} {:>10.2} {:>9.2}-{:<9.2}\n",
            summary.median, summary.p10, summary.p90
        );
        results.insert((*name).to_owned(), json!({ "ratio_per_round": values }));
    }
    println!("{table}");
    let plot = bar_panels([
        Panel {
            caption: "round trip, ns (median, p10-p90 over rounds)",
            y_axis: "ns",
            content: Cell::ALL
                .iter()
                .enumerate()
                .map(|(index, cell)| Bar {
                    label: cell.name().to_owned(),
                    value: Summary::of(&per_cell(index)),
                })
                .collect(),
        },
        Panel {
            caption: "ratios within a round",
            y_axis: "ratio",
            content: ratios
                .iter()
                .map(|(name, values)| Bar {
                    label: (*name).to_owned(),
                    value: Summary::of(values),
                })
                .collect(),
        },
    ])?;
    let json = json!({
        "benchmark": "monitor",
        "command": output::recorded_command(options.command),
        "cpus": [cpus.0, cpus.1],
        "plan": {
            "rounds": options.repetitions,
            "timed_batches_per_cell_per_round": BATCHES,
            "round_trips_per_batch": ROUND_TRIPS,
            "ring_depth": RING_DEPTH,
            "value_per_round": "median batch; ratios are taken within a round",
        },
        "machine": machine::describe(&[cpus.0, cpus.1]),
        "results": results,
        "table": table,
    });
    output::write_results(&options.out, "monitor", &json, &plot)
}

fn main() -> ExitCode {
    args::run_main(USAGE, 15, run)
}
