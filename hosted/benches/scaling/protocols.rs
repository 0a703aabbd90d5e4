//! `cargo xtask bench protocols`: two-phase map and unmap, and a TLB
//! shootdown, among N OS nodes on real cores, against one locked table and
//! a broadcast shootdown with a shared counter.
//!
//! - **messages**: N pinned threads, each one core's monitor
//!   (`atoll-monitor`, the code the kernel runs), joined by an `atoll-urpc`
//!   ring each way between every two of them (8 slots, the kernel's depth).
//!   A core's host does what the kernel's does: it hands the monitor every
//!   slot its rings hold and queues what does not fit in a full ring. Core
//!   0's shell maps a page of the test space and unmaps it again
//!   (`VmPropose`, to its own monitor): each a two-phase commit among every
//!   core, the unmap's commit invalidating each core's TLB entry. Without
//!   the knowledge base's trees (nothing fills it here) planned rounds go
//!   unicast, which is how the kernel's trees shape groups of up to 5
//!   cores anyway. Then a shootdown of one page on every other core
//!   (`BenchShootdown`, unicast: a multicast round of the replicators).
//! - **shared memory**: one table behind a ticket lock that core 0 takes
//!   to write the entry and, for the unmap, a broadcast shootdown: it bumps
//!   a shared generation, every other thread (spinning on it) invalidates
//!   and increments a shared acknowledgement counter, and core 0 waits
//!   until every core has; and that broadcast alone, for the shootdown.
//!
//! N runs from 1 to every CPU this process may use (or `--cpus`), one
//! thread per CPU: never oversubscribed. Each round runs every cell, in
//! turn; a cell's value is the median time of a map plus its unmap, or of
//! a shootdown, over its batch. With one core there is nobody to shoot
//! down, so those cells are left out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::{Summary, median};
use atoll_hosted::{Receiver, Ring, Sender};
use atoll_monitor::bench::{BENCH_DONE, BenchShootdown, BenchShot};
use atoll_monitor::vm::{VmDone, VmPropose};
use atoll_monitor::{CoreId, Input, Monitor, Output, Wire, testing};
use atoll_urpc::Payload;
use serde_json::{Value, json};
use spin::mutex::TicketMutex;

use crate::common::Settings;
use crate::probe;
use crate::team::{Placement, SpinOrYield, run_team, wait_for};

/// Slots per ring: the kernel's depth.
const RING_DEPTH: usize = 8;
/// Map-unmap pairs per cell per round.
const PAIRS: usize = 200;
/// Ticks a call may wait: never reached, since no tick is fed.
const TIMEOUT: u64 = 1 << 40;
/// The page core 0 maps and unmaps.
const PAGE: u32 = 7;

/// One core's monitor and its host's ends of the rings.
struct Node<'r> {
    me: usize,
    monitor: Monitor,
    out: Output,
    now: u64,
    senders: Vec<Option<Sender<'r>>>,
    receivers: Vec<Option<Receiver<'r>>>,
    /// Slots waiting for room in a peer's ring, and for the loopback.
    queues: Vec<VecDeque<Payload>>,
}

impl Node<'_> {
    fn step(&mut self, from: usize, slot: &Payload) {
        self.now += 1;
        let input = Input::Slot {
            from: CoreId(from as u16),
            slot,
        };
        self.monitor.step(self.now, input, &mut self.out);
        self.queue_sends();
    }

    fn queue_sends(&mut self) {
        for (to, slot) in self.out.sends.drain(..) {
            self.queues[usize::from(to.0)].push_back(slot);
        }
        assert!(self.out.deferred.is_empty(), "no work here defers");
        self.out.notices.clear();
        self.out.trace.clear();
    }

    /// Moves queued slots into the rings as far as they have room, hands
    /// the monitor what its loopback and rings hold; whether anything moved.
    fn poll(&mut self) -> bool {
        let mut moved = false;
        while let Some(slot) = self.queues[self.me].pop_front() {
            self.step(self.me, &slot);
            moved = true;
        }
        for to in 0..self.queues.len() {
            let Some(sender) = self.senders[to].as_mut() else {
                continue;
            };
            while let Some(slot) = self.queues[to].front() {
                if !sender.try_send_unflushed(slot) {
                    break;
                }
                self.queues[to].pop_front();
                moved = true;
            }
        }
        for from in 0..self.receivers.len() {
            while let Some(slot) = self.receivers[from].as_mut().and_then(Receiver::try_recv) {
                self.step(from, &slot);
                moved = true;
            }
        }
        moved
    }

    /// Core 0's shell: calls its own monitor with `request` and polls
    /// until the answer comes.
    fn call(&mut self, request: impl Into<Wire>) -> Wire {
        let ticket = self
            .monitor
            .call(self.now, CoreId(0), request, TIMEOUT, &mut self.out);
        self.queue_sends();
        let reply = wait_for(|| {
            self.poll();
            let at = self
                .out
                .completions
                .iter()
                .position(|(t, _)| *t == ticket)?;
            Some(self.out.completions.remove(at).1)
        });
        reply.expect("no call times out: no tick passes")
    }

    /// Proposes `change` of [`PAGE`]; it must commit on every core.
    fn propose(&mut self, change: u8, cores: usize) {
        let done = self
            .call(VmPropose { change, page: PAGE })
            .take::<VmDone>()
            .expect("a proposal answered with its VmDone");
        assert!(
            done.committed() && usize::from(done.acked) == cores,
            "change {change} of page {PAGE} on {cores} cores: {}",
            done.describe()
        );
    }

    /// Shoots a page down on every other core, unicast; every one must
    /// confirm.
    fn shoot(&mut self, cores: usize) {
        let request = BenchShootdown {
            method: 1,
            targets: cores as u16 - 1,
        };
        let shot = self
            .call(request)
            .take::<BenchShot>()
            .expect("a shootdown answered with its BenchShot");
        assert_eq!(shot.status, BENCH_DONE, "a shootdown on {cores} cores");
    }
}

/// Nanoseconds per map plus unmap by two-phase commit among the monitors
/// on `placement`, and per shootdown (with more than one core): the
/// medians over [`PAIRS`] of each.
fn messages(placement: &Placement) -> [Option<f64>; 2] {
    let cores = placement.cpus.len();
    let mut rings: Vec<Ring> = (0..cores * cores)
        .map(|_| Ring::new(RING_DEPTH).expect("cannot map a ring"))
        .collect();
    let mut started = testing::start(&vec![0; cores]);
    testing::form_view(&mut started);
    let mut nodes: Vec<Node<'_>> = started
        .into_iter()
        .enumerate()
        .map(|(me, (monitor, out))| Node {
            me,
            monitor,
            out,
            now: 1 << 20,
            senders: (0..cores).map(|_| None).collect(),
            receivers: (0..cores).map(|_| None).collect(),
            queues: vec![VecDeque::new(); cores],
        })
        .collect();
    for (index, ring) in rings.iter_mut().enumerate() {
        let (from, to) = (index / cores, index % cores);
        if from != to {
            let (sender, receiver) = ring.split();
            nodes[from].senders[to] = Some(sender);
            nodes[to].receivers[from] = Some(receiver);
        }
    }
    let done = AtomicBool::new(false);
    let done = &done;
    let mut nodes = nodes.into_iter();
    let mut first = nodes.next().expect("at least one core");
    let mut bodies: Vec<crate::team::Body<'_, [Option<f64>; 2]>> = vec![Box::new(move || {
        let pairs = timed(|| {
            first.propose(0, cores);
            first.propose(1, cores);
        });
        let shootdowns = (cores > 1).then(|| timed(|| first.shoot(cores)));
        done.store(true, Ordering::Release);
        [Some(pairs), shootdowns]
    })];
    for mut node in nodes {
        bodies.push(Box::new(move || {
            while !done.load(Ordering::Acquire) {
                if !node.poll() {
                    std::hint::spin_loop();
                }
            }
            [None; 2]
        }));
    }
    run_team(placement, bodies)[0]
}

/// The median nanoseconds of `op` over [`PAIRS`] runs.
fn timed(mut op: impl FnMut()) -> f64 {
    let times = (0..PAIRS)
        .map(|_| {
            let start = Instant::now();
            op();
            start.elapsed().as_nanos() as f64
        })
        .collect();
    median(times)
}

/// The shared-memory baseline: one table under a ticket lock, and the
/// broadcast the unmap's shootdown uses.
struct Shared {
    table: TicketMutex<BTreeMap<u32, u64>, SpinOrYield>,
    generation: AtomicU64,
    acks: AtomicU64,
    done: AtomicBool,
}

/// Nanoseconds per map plus unmap under one lock with a broadcast
/// shootdown among the threads on `placement`, and per broadcast alone
/// (with more than one thread): the medians over [`PAIRS`] of each.
fn shared_memory(placement: &Placement) -> [Option<f64>; 2] {
    let cores = placement.cpus.len() as u64;
    let shared = Shared {
        table: TicketMutex::new(BTreeMap::new()),
        generation: AtomicU64::new(0),
        acks: AtomicU64::new(0),
        done: AtomicBool::new(false),
    };
    let shared = &shared;
    // Everyone else drops its translation: one broadcast, one shared
    // counter, waited for until every other core has counted.
    let broadcast = |generation: &mut u64| {
        *generation += 1;
        shared.generation.store(*generation, Ordering::Release);
        let wanted = *generation * (cores - 1);
        wait_for(|| (shared.acks.load(Ordering::Acquire) == wanted).then_some(()));
    };
    let mut bodies: Vec<crate::team::Body<'_, [Option<f64>; 2]>> = vec![Box::new(move || {
        let mut generation = 0;
        let pairs = timed(|| {
            shared.table.lock().insert(PAGE, 0x9000);
            let mut table = shared.table.lock();
            table.remove(&PAGE);
            broadcast(&mut generation);
        });
        let shootdowns = (cores > 1).then(|| timed(|| broadcast(&mut generation)));
        shared.done.store(true, Ordering::Release);
        [Some(pairs), shootdowns]
    })];
    for _ in 1..cores {
        bodies.push(Box::new(move || {
            let mut seen = 0;
            while !shared.done.load(Ordering::Acquire) {
                let now = shared.generation.load(Ordering::Acquire);
                if now != seen {
                    // Where the host would run `invlpg`.
                    seen = std::hint::black_box(now);
                    shared.acks.fetch_add(1, Ordering::AcqRel);
                } else {
                    std::hint::spin_loop();
                }
            }
            [None; 2]
        }));
    }
    run_team(placement, bodies)[0]
}

/// What is timed, and by which method: the rows of the table.
const OPERATIONS: [(&str, [&str; 2]); 2] = [
    (
        "a map and its unmap",
        [
            "two-phase commit over URPC (monitors)",
            "one locked table + broadcast shootdown",
        ],
    ),
    (
        "a shootdown of one page on every other core",
        [
            "multicast round over URPC (monitors)",
            "broadcast + shared counter",
        ],
    ),
];

pub fn run(settings: &Settings) -> Result<Report, String> {
    let counts: Vec<usize> = (1..=settings.cpus.len()).collect();
    // values[operation][method][count]: per-round values, where measured.
    let mut values = vec![vec![vec![Vec::new(); counts.len()]; 2]; OPERATIONS.len()];
    // The one-line floor before each round: where the host put the CPUs.
    let mut floors = Vec::new();
    for round in 0..settings.rounds {
        floors.push(probe::one_line_floor(&settings.cpus));
        for (at, &n) in counts.iter().enumerate() {
            let placement = Placement {
                cpus: settings.cpus[..n].to_vec(),
            };
            let measured = [messages(&placement), shared_memory(&placement)];
            for (method, by_operation) in measured.iter().enumerate() {
                for (operation, value) in by_operation.iter().enumerate() {
                    if let Some(value) = value {
                        values[operation][method][at].push(*value);
                    }
                }
            }
        }
        eprint!("\rround {}/{}", round + 1, settings.rounds);
    }
    eprintln!();
    let mut table = format!(
        "protocols: among N cores, one thread per CPU ({:?}), ns, median of {} rounds (p10-p90), each the median of {PAIRS} runs\n",
        settings.cpus, settings.rounds
    );
    let mut results = Vec::new();
    let mut panels = Vec::new();
    for ((what, methods), values) in OPERATIONS.iter().zip(&values) {
        table += &format!("\n{what}\n{:<4}", "N");
        for method in methods {
            table += &format!(" | {method:<40}");
        }
        table += " | messages / shared\n";
        let mut rows = Vec::new();
        for (at, &n) in counts.iter().enumerate() {
            if values[0][at].is_empty() {
                continue;
            }
            table += &format!("{n:<4}");
            for method in values {
                let summary = Summary::of(&method[at]);
                let cell = format!(
                    "{:.0} ({:.0}-{:.0})",
                    summary.median, summary.p10, summary.p90
                );
                table += &format!(" | {cell:<40}");
            }
            let ratios: Vec<f64> = values[0][at]
                .iter()
                .zip(&values[1][at])
                .map(|(m, s)| m / s)
                .collect();
            let ratio = Summary::of(&ratios);
            table += &format!(
                " | {:.2} ({:.2}-{:.2})\n",
                ratio.median, ratio.p10, ratio.p90
            );
            rows.push(json!({
                "cores": n,
                "messages_ns_per_round": values[0][at],
                "shared_ns_per_round": values[1][at],
                "ratio_per_round": ratios,
            }));
        }
        results.push(json!({ "operation": what, "methods": methods, "rows": rows }));
        panels.push(Panel {
            caption: what,
            y_axis: "ns",
            content: methods
                .iter()
                .zip(values)
                .map(|(method, by_count)| Series {
                    label: (*method).to_owned(),
                    points: counts
                        .iter()
                        .zip(by_count)
                        .filter(|(_, runs)| !runs.is_empty())
                        .map(|(&n, runs)| (n as f64, Summary::of(runs)))
                        .collect(),
                })
                .collect(),
        });
    }
    table += &format!(
        "one-line floor before each round, ns: {}\n",
        floors
            .iter()
            .map(|floor| floor.map_or("-".to_owned(), |ns| format!("{ns:.0}")))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let axes = Axes {
        x: "cores (threads, one per CPU)",
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    };
    let json: Value = json!({
        "ring_depth": RING_DEPTH,
        "runs": PAIRS,
        "one_line_floor_ns_per_round": floors,
        "operations": results,
    });
    Ok(Report {
        table,
        json,
        plot: line_grid(&axes, &panels)?,
    })
}
