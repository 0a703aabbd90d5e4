//! `cargo xtask bench fig3`: the multikernel paper's Figure 3 (Baumann et
//! al., "The multikernel", SOSP 2009, §2.6; the HotOS 2009 paper makes the
//! argument without the figure). `N` client threads each update `k` cache
//! lines of one shared structure, over and over:
//!
//! - **locked**: each client takes a spinlock and increments a word in each
//!   of the `k` lines itself (the method 1; `docs/architecture.md` §5's model:
//!   `k` line transfers plus the lock line);
//! - **unlocked**: each client increments the `k` lines with atomic adds and
//!   no lock, as the paper's SHM curves do;
//! - **messages**: each client sends one URPC message per update to a server
//!   thread that owns the lines, which applies it and replies; the client
//!   waits for the reply (the paper's MSG curves, and the method 2).
//!   The server's own time per update (the paper's "Server" curve) is
//!   measured from taking the request to writing the reply.
//!
//! The lock is a spinlock, not `std::sync::Mutex`: a CPU driver cannot
//! block, and a spinlock's cost is the cache lines the model counts, where
//! `std`'s mutex would add futex sleeps and scheduler wake-ups to the
//! contended case. It is a ticket lock (`spin::mutex::TicketMutex`, from
//! the kernel's spinlock crate), which hands the lock to its waiters in
//! turn, as Linux's spinlocks do. A test-and-set lock is only as fair as
//! the cache: in this tight loop the releasing core takes the lock again
//! before the waiter's request for the line arrives, runs many updates on
//! lines that never leave its cache, and the benchmark would measure one
//! core at a time. Waiters yield in oversubscribed cells only
//! ([`SpinOrYield`]).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::{Summary, median};
use serde_json::{Value, json};
use spin::mutex::TicketMutex;

use crate::clock::{Span, ticks};
use crate::common::{
    Settings, THREAD_COUNTS, floor_line, format_summary, ratios, run_rounds, summary_json,
};
use crate::links::{self, Links};
use crate::team::{
    Barrier, Body, Patience, Placement, SpinOrYield, run_team, timed_batches, wait_for,
};

/// Lines in the shared structure; an update touches the first `k`.
const LINES: usize = 8;
const LINE_COUNTS: [usize; 4] = [1, 2, 4, 8];
/// Updates in one batch, all clients together.
const UPDATES_PER_BATCH: u64 = 16_000;
/// Timed batches per cell per round, after one warm-up batch.
const BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Locked,
    Unlocked,
    Messages,
}

impl Method {
    const ALL: [Method; 3] = [Method::Locked, Method::Unlocked, Method::Messages];

    fn name(self) -> &'static str {
        match self {
            Method::Locked => "locked",
            Method::Unlocked => "unlocked (atomic adds)",
            Method::Messages => "messages to the owner",
        }
    }
}

/// One cache line with one word in it.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Line {
    value: u64,
}

#[repr(align(64))]
#[derive(Debug, Default)]
struct AtomicLine(AtomicU64);

/// A cell's value in one round.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    /// Time per update: the batch's wall time (the first client's start to
    /// the last one's end) over the updates of one client, median batch.
    /// With a CPU per client, that is a client's latency per update; with
    /// clients time-sharing CPUs, it includes waiting for a CPU.
    nanos: f64,
    ticks: f64,
    /// The server's busy time per update (messages only).
    server_ticks: Option<f64>,
}

/// What a thread of a cell hands back: its batches' spans, and the
/// server's busy ticks per update in each batch (empty for clients).
type ThreadResult = (Vec<Span>, Vec<f64>);

fn measurement(
    spans: &[Vec<Span>],
    updates_per_client: u64,
    server_ticks: Option<Vec<f64>>,
) -> Measurement {
    let per_update = |value: fn(&Span) -> f64| {
        median(
            (0..BATCHES)
                .map(|batch| {
                    let wall = Span::covering(spans.iter().map(|client| client[batch]));
                    value(&wall) / updates_per_client as f64
                })
                .collect(),
        )
    };
    Measurement {
        nanos: per_update(Span::nanos),
        ticks: per_update(Span::ticks),
        server_ticks: server_ticks.map(median),
    }
}

/// Updates each client makes in one batch: [`UPDATES_PER_BATCH`] shared by
/// the clients, and divided again by the threads per CPU, so that the
/// slowest (oversubscribed) cells do not take most of the run.
fn updates_per_client(clients: usize, placement: &Placement) -> u64 {
    UPDATES_PER_BATCH / clients as u64 / placement.threads_per_cpu() as u64
}

/// Updates the clients make in a cell, warm-up batch included.
fn total_updates(clients: usize, updates_per_client: u64) -> u64 {
    updates_per_client * clients as u64 * (BATCHES as u64 + 1)
}

fn shared_memory(method: Method, clients: usize, k: usize, placement: &Placement) -> Measurement {
    let locked: TicketMutex<[Line; LINES], SpinOrYield> = TicketMutex::new(Default::default());
    let unlocked: [AtomicLine; LINES] = Default::default();
    let barrier = Barrier::new(clients);
    let updates = updates_per_client(clients, placement);
    let client = || -> Vec<Span> {
        timed_batches(
            BATCHES,
            &barrier,
            &mut (),
            |_| {},
            |_| {
                for _ in 0..updates {
                    if method == Method::Locked {
                        for line in &mut locked.lock()[..k] {
                            line.value += 1;
                        }
                    } else {
                        for line in &unlocked[..k] {
                            line.0.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            },
        )
    };
    let bodies: Vec<Body<'_, _>> = (0..clients)
        .map(|_| Box::new(client) as Body<'_, _>)
        .collect();
    let spans = run_team(placement, bodies);
    let counts: Vec<u64> = match method {
        Method::Locked => locked.lock()[..k].iter().map(|line| line.value).collect(),
        _ => unlocked[..k]
            .iter()
            .map(|line| line.0.load(Ordering::Relaxed))
            .collect(),
    };
    assert!(
        counts
            .iter()
            .all(|&count| count == total_updates(clients, updates)),
        "{}: lines counted {counts:?} updates, not {}",
        method.name(),
        total_updates(clients, updates)
    );
    measurement(&spans, updates, None)
}

/// The server: takes requests from every client's ring in turn, applies
/// each to the lines only it touches, and replies with the first line's
/// new value.
fn serve(ends: links::Ends<'_>, clients: usize, updates: u64, barrier: &Barrier) -> ThreadResult {
    let links::Ends {
        mut outbound,
        mut inbound,
    } = ends;
    assert!(
        inbound
            .iter()
            .map(|(peer, _)| peer)
            .eq(outbound.iter().map(|(peer, _)| peer)),
        "client i's request and reply rings are both at index i"
    );
    let mut lines: Box<[Line; LINES]> = Box::default();
    let requests = updates * clients as u64;
    let mut busy_per_update = Vec::new();
    let spans = timed_batches(
        BATCHES,
        barrier,
        &mut lines,
        |_| {},
        |lines| {
            let (mut served, mut busy) = (0, 0);
            let mut patience = Patience::default();
            while served < requests {
                let mut idle = true;
                for ((_, requests), (_, replies)) in inbound.iter_mut().zip(&mut outbound) {
                    let Some(request) = requests.try_recv() else {
                        continue;
                    };
                    let start = ticks();
                    let [k] = links::decode::<1>(&request);
                    for line in &mut lines[..k as usize] {
                        line.value += 1;
                    }
                    // The lines live in this thread's cache, but the stores must happen.
                    black_box(&mut *lines);
                    links::send(replies, &links::encode(&[lines[0].value]), || {});
                    busy += ticks() - start;
                    served += 1;
                    idle = false;
                }
                if idle {
                    patience.wait();
                } else {
                    // A new wait starts after the next empty sweep.
                    patience = Patience::default();
                }
            }
            busy_per_update.push(busy as f64 / requests as f64);
        },
    );
    assert_eq!(
        lines[0].value,
        total_updates(clients, updates),
        "the server's count"
    );
    // The warm-up batch is not reported.
    busy_per_update.remove(0);
    (spans, busy_per_update)
}

fn messages(clients: usize, k: usize, cpus: &[usize]) -> (Measurement, Placement) {
    // The server has the last CPU to itself, as in the paper; the clients
    // share the others (all of them, with a single CPU).
    let client_cpus = if cpus.len() > 1 {
        &cpus[..cpus.len() - 1]
    } else {
        cpus
    };
    let mut placement = Placement::spread(clients, client_cpus);
    placement.cpus.push(*cpus.last().expect("at least one CPU"));
    let server = clients;
    let mut links = Links::new(
        (0..clients)
            .flat_map(|client| [(client, server), (server, client)])
            .collect(),
    );
    let mut ends = links.split(clients + 1);
    let server_ends = ends.pop().expect("the server's ends");
    let barrier = Barrier::new(clients + 1);
    let updates = updates_per_client(clients, &placement);
    let request = links::encode(&[k as u64]);
    let barrier = &barrier;
    let mut bodies: Vec<Body<'_, ThreadResult>> = ends
        .into_iter()
        .map(|mut ends| {
            let mut rings = (ends.outbound.remove(0).1, ends.inbound.remove(0).1);
            Box::new(move || {
                let spans = timed_batches(
                    BATCHES,
                    barrier,
                    &mut rings,
                    |_| {},
                    |(to_server, from_server)| {
                        for _ in 0..updates {
                            links::send(to_server, &request, || {});
                            black_box(wait_for(|| from_server.try_recv()));
                        }
                    },
                );
                (spans, Vec::new())
            }) as Body<'_, ThreadResult>
        })
        .collect();
    bodies.push(Box::new(move || {
        serve(server_ends, clients, updates, barrier)
    }));
    let mut results = run_team(&placement, bodies);
    let (_, server_ticks) = results.pop().expect("the server's result");
    let spans: Vec<Vec<Span>> = results.into_iter().map(|(spans, _)| spans).collect();
    (measurement(&spans, updates, Some(server_ticks)), placement)
}

fn measure(method: Method, clients: usize, k: usize, cpus: &[usize]) -> (Measurement, Placement) {
    match method {
        Method::Messages => messages(clients, k, cpus),
        _ => {
            let placement = Placement::spread(clients, cpus);
            (shared_memory(method, clients, k, &placement), placement)
        }
    }
}

/// Every round's values of one cell.
struct Cell {
    method: Method,
    clients: usize,
    k: usize,
    threads_per_cpu: usize,
    nanos: Vec<f64>,
    ticks: Vec<f64>,
    server_ticks: Vec<f64>,
    /// The one-line floor measured just before the cell's group, per round.
    floors: Vec<Option<f64>>,
}

impl Cell {
    fn oversubscribed(&self) -> bool {
        self.threads_per_cpu > 1
    }
}

pub fn run(settings: &Settings) -> Result<Report, String> {
    let groups: Vec<(usize, usize)> = LINE_COUNTS
        .into_iter()
        .flat_map(|k| THREAD_COUNTS.map(|clients| (clients, k)))
        .collect();
    let mut cells: Vec<Cell> = groups
        .iter()
        .flat_map(|&(clients, k)| {
            Method::ALL.map(|method| Cell {
                method,
                clients,
                k,
                threads_per_cpu: 0,
                nanos: Vec::new(),
                ticks: Vec::new(),
                server_ticks: Vec::new(),
                floors: Vec::new(),
            })
        })
        .collect();
    run_rounds(settings, &mut cells, Method::ALL.len(), |cell, floor| {
        cell.floors.push(floor);
        let (value, placement) = measure(cell.method, cell.clients, cell.k, &settings.cpus);
        cell.threads_per_cpu = placement.threads_per_cpu();
        cell.nanos.push(value.nanos);
        cell.ticks.push(value.ticks);
        cell.server_ticks.extend(value.server_ticks);
    });
    Ok(Report {
        table: table(&cells, settings),
        json: results_json(&cells),
        plot: plot(&cells, settings)?,
    })
}

/// The cells of one group: locked, unlocked, messages.
fn group_of(cells: &[Cell], clients: usize, k: usize) -> [&Cell; 3] {
    Method::ALL.map(|method| {
        cells
            .iter()
            .find(|cell| cell.method == method && cell.clients == clients && cell.k == k)
            .expect("every cell is measured")
    })
}

fn table(cells: &[Cell], settings: &Settings) -> String {
    let mut table = format!(
        "cost per update: median (p10-p90) over {} rounds; cycles are TSC ticks ({:.2} GHz)\n\
         * oversubscribed: more threads than CPUs ({} CPUs; messages use one more thread, the server)\n{}\n",
        settings.rounds,
        settings.tsc_ghz,
        settings.cpus.len(),
        floor_line(
            cells
                .iter()
                .step_by(Method::ALL.len())
                .flat_map(|cell| &cell.floors)
        )
    );
    table += &format!(
        "{:>2} {:>2} | {:<24} {:>7} | {:<24} {:>7} | {:<24} {:>7} | {:>13} | {:<18} | {:<18}\n",
        "k",
        "N",
        "locked, ns",
        "cycles",
        "unlocked, ns",
        "cycles",
        "messages, ns",
        "cycles",
        "server cycles",
        "messages / locked",
        "unlocked / locked"
    );
    for k in LINE_COUNTS {
        for clients in THREAD_COUNTS {
            let [locked, unlocked, messages] = group_of(cells, clients, k);
            let shown = |cell: &Cell| {
                let mark = if cell.oversubscribed() { "*" } else { "" };
                (
                    format!("{}{mark}", format_summary(&cell.nanos, 0)),
                    format!("{:.0}", Summary::of(&cell.ticks).median),
                )
            };
            let (locked_ns, locked_cycles) = shown(locked);
            let (unlocked_ns, unlocked_cycles) = shown(unlocked);
            let (messages_ns, messages_cycles) = shown(messages);
            table += &format!(
                "{k:>2} {clients:>2} | {locked_ns:<24} {locked_cycles:>7} | {unlocked_ns:<24} {unlocked_cycles:>7} | {messages_ns:<24} {messages_cycles:>7} | {:>13.0} | {:<18} | {:<18}\n",
                Summary::of(&messages.server_ticks).median,
                format_summary(&ratios(&messages.nanos, &locked.nanos), 2),
                format_summary(&ratios(&unlocked.nanos, &locked.nanos), 2),
            );
        }
    }
    table
}

fn results_json(cells: &[Cell]) -> Value {
    let cells_json: Vec<Value> = cells
        .iter()
        .map(|cell| {
            json!({
                "method": cell.method.name(),
                "clients": cell.clients,
                "lines": cell.k,
                "threads_per_cpu": cell.threads_per_cpu,
                "oversubscribed": cell.oversubscribed(),
                "nanos_per_update": summary_json(&cell.nanos),
                "cycles_per_update": summary_json(&cell.ticks),
                "server_cycles_per_update": (!cell.server_ticks.is_empty())
                    .then(|| summary_json(&cell.server_ticks)),
                "one_line_floor_ns_per_round": cell.floors,
            })
        })
        .collect();
    let ratios_json: Vec<Value> = LINE_COUNTS
        .into_iter()
        .flat_map(|k| THREAD_COUNTS.map(|clients| (clients, k)))
        .map(|(clients, k)| {
            let [locked, unlocked, messages] = group_of(cells, clients, k);
            json!({
                "clients": clients,
                "lines": k,
                "messages_over_locked": summary_json(&ratios(&messages.nanos, &locked.nanos)),
                "unlocked_over_locked": summary_json(&ratios(&unlocked.nanos, &locked.nanos)),
            })
        })
        .collect();
    json!({
        "updates_per_batch": UPDATES_PER_BATCH,
        "updates_per_batch_note": "all clients together, divided by the threads per CPU in oversubscribed cells",
        "timed_batches_per_cell_per_round": BATCHES,
        "value_per_round": "time per update: the batch's wall time (first client's start to last client's end) over one client's updates, median batch; ratios are taken within a round",
        "cells": cells_json,
        "ratios": ratios_json,
    })
}

fn plot(cells: &[Cell], settings: &Settings) -> Result<String, String> {
    let captions = ["k = 1 line", "k = 2 lines", "k = 4 lines", "k = 8 lines"];
    let panels: Vec<Panel<Series>> = LINE_COUNTS
        .into_iter()
        .zip(captions)
        .map(|(k, caption)| {
            let series = |label: &str, values: &dyn Fn(&Cell) -> Vec<f64>, method| Series {
                label: label.to_owned(),
                points: THREAD_COUNTS
                    .into_iter()
                    .map(|clients| {
                        let cell = group_of(cells, clients, k)[method as usize];
                        (clients as f64, Summary::of(&values(cell)))
                    })
                    .collect(),
            };
            let nanos = |cell: &Cell| cell.nanos.clone();
            let server = |cell: &Cell| {
                cell.server_ticks
                    .iter()
                    .map(|ticks| ticks / settings.tsc_ghz)
                    .collect()
            };
            Panel {
                caption,
                y_axis: "ns per update (log)",
                content: vec![
                    series("locked", &nanos, Method::Locked),
                    series("unlocked (atomic adds)", &nanos, Method::Unlocked),
                    series("messages: client round trip", &nanos, Method::Messages),
                    series("messages: server time", &server, Method::Messages),
                ],
            }
        })
        .collect();
    line_grid(
        &Axes {
            x: "clients N (N > CPUs, or N + server > CPUs: oversubscribed)",
            log_y: true,
            legend: SeriesLabelPosition::UpperLeft,
        },
        &panels,
    )
}
