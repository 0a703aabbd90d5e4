//! `cargo xtask bench protocols`: two-phase map and unmap among N OS
//! nodes on real cores, against one locked table with a broadcast
//! shootdown.
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
//!   cores anyway.
//! - **shared memory**: one table behind a ticket lock that core 0 takes
//!   to write the entry and, for the unmap, a broadcast shootdown: it bumps
//!   a shared generation, every other thread (spinning on it) invalidates
//!   and increments a shared acknowledgement counter, and core 0 waits
//!   until every core has.
//!
//! N runs from 1 to every CPU this process may use (or `--cpus`), one
//! thread per CPU: never oversubscribed. Each round runs every cell, in
//! turn; a cell's value is the median time of a map plus its unmap over
//! its batch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::{Summary, median};
use atoll_hosted::{Receiver, Ring, Sender};
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

    /// Core 0's shell: proposes `change` of [`PAGE`] and polls until it
    /// is committed on every core.
    fn propose(&mut self, change: u8, cores: usize) {
        let ticket = self.monitor.call(
            self.now,
            CoreId(0),
            VmPropose { change, page: PAGE },
            TIMEOUT,
            &mut self.out,
        );
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
        let done = reply
            .ok()
            .and_then(Wire::take::<VmDone>)
            .expect("a proposal answered with its VmDone");
        assert!(
            done.committed() && usize::from(done.acked) == cores,
            "change {change} of page {PAGE} on {cores} cores: {}",
            done.describe()
        );
    }
}

/// Nanoseconds per map plus unmap, by two-phase commit among `cores`
/// monitors on `placement`: the median over [`PAIRS`].
fn messages(placement: &Placement) -> f64 {
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
    let mut bodies: Vec<crate::team::Body<'_, f64>> = vec![Box::new(move || {
        let mut times = Vec::with_capacity(PAIRS);
        for _ in 0..PAIRS {
            let start = Instant::now();
            first.propose(0, cores);
            first.propose(1, cores);
            times.push(start.elapsed().as_nanos() as f64);
        }
        done.store(true, Ordering::Release);
        median(times)
    })];
    for mut node in nodes {
        bodies.push(Box::new(move || {
            while !done.load(Ordering::Acquire) {
                if !node.poll() {
                    std::hint::spin_loop();
                }
            }
            0.0
        }));
    }
    run_team(placement, bodies)[0]
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
/// shootdown among `cores` threads on `placement`: the median over
/// [`PAIRS`].
fn shared_memory(placement: &Placement) -> f64 {
    let cores = placement.cpus.len() as u64;
    let shared = Shared {
        table: TicketMutex::new(BTreeMap::new()),
        generation: AtomicU64::new(0),
        acks: AtomicU64::new(0),
        done: AtomicBool::new(false),
    };
    let shared = &shared;
    let mut bodies: Vec<crate::team::Body<'_, f64>> = vec![Box::new(move || {
        let mut times = Vec::with_capacity(PAIRS);
        for pair in 1..=PAIRS as u64 {
            let start = Instant::now();
            shared.table.lock().insert(PAGE, 0x9000);
            {
                let mut table = shared.table.lock();
                table.remove(&PAGE);
                // Everyone else drops its translation before the unmap
                // returns: one broadcast, one shared counter.
                shared.generation.store(pair, Ordering::Release);
                wait_for(|| {
                    (shared.acks.load(Ordering::Acquire) == pair * (cores - 1)).then_some(())
                });
            }
            times.push(start.elapsed().as_nanos() as f64);
        }
        shared.done.store(true, Ordering::Release);
        median(times)
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
            // Only core 0 times anything.
            0.0
        }));
    }
    run_team(placement, bodies)[0]
}

const METHODS: [&str; 2] = [
    "two-phase commit over URPC (monitors)",
    "one locked table + broadcast shootdown",
];

pub fn run(settings: &Settings) -> Result<Report, String> {
    let counts: Vec<usize> = (1..=settings.cpus.len()).collect();
    // values[method][count] = per-round values.
    let mut values = vec![vec![Vec::new(); counts.len()]; METHODS.len()];
    // The one-line floor before each round: where the host put the CPUs.
    let mut floors = Vec::new();
    for round in 0..settings.rounds {
        floors.push(probe::one_line_floor(&settings.cpus));
        for (at, &n) in counts.iter().enumerate() {
            let placement = Placement {
                cpus: settings.cpus[..n].to_vec(),
            };
            values[0][at].push(messages(&placement));
            values[1][at].push(shared_memory(&placement));
        }
        eprint!("\rround {}/{}", round + 1, settings.rounds);
    }
    eprintln!();
    let mut table = format!(
        "protocols: a map and its unmap among N cores, one thread per CPU ({:?}), ns, median of {} rounds (p10-p90), each the median of {PAIRS} pairs\n",
        settings.cpus, settings.rounds
    );
    table += &format!("{:<4}", "N");
    for method in METHODS {
        table += &format!(" | {method:<40}");
    }
    table += " | messages / shared\n";
    let mut rows = Vec::new();
    for (at, &n) in counts.iter().enumerate() {
        table += &format!("{n:<4}");
        for method in &values {
            let summary = Summary::of(&method[at]);
            table += &format!(
                " | {:<40}",
                format!(
                    "{:.0} ({:.0}-{:.0})",
                    summary.median, summary.p10, summary.p90
                )
            );
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
    let series = |method: usize| Series {
        label: METHODS[method].to_owned(),
        points: counts
            .iter()
            .enumerate()
            .map(|(at, &n)| (n as f64, Summary::of(&values[method][at])))
            .collect(),
    };
    let panels = [Panel {
        caption: "a map and its unmap among N cores",
        y_axis: "ns",
        content: vec![series(0), series(1)],
    }];
    let axes = Axes {
        x: "cores (threads, one per CPU)",
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    };
    table += &format!(
        "one-line floor before each round, ns: {}\n",
        floors
            .iter()
            .map(|floor| floor.map_or("-".to_owned(), |ns| format!("{ns:.0}")))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let json: Value = json!({
        "ring_depth": RING_DEPTH,
        "pairs": PAIRS,
        "one_line_floor_ns_per_round": floors,
        "rows": rows,
    });
    Ok(Report {
        table,
        json,
        plot: line_grid(&axes, &panels)?,
    })
}
