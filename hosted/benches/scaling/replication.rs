//! `cargo xtask bench replication`: a replicated counter and a replicated
//! map (`BTreeMap<u64, u64>`, 4096 keys), under a read-heavy (10 % writes)
//! and a write-heavy (90 % writes) mix, kept five ways:
//!
//! - **Atoll, async**: a replica per thread. A write is applied to the
//!   writer's replica and shipped as one URPC message to every other
//!   replica, and returns; every replica takes in its messages before each
//!   operation. Reads are local, and may miss writes still in flight: the
//!   replicas converge, they are not linearizable. Map writes carry a
//!   Lamport stamp, and a replica keeps the write with the highest stamp,
//!   so that every order of arrival ends in the same state.
//! - **Atoll, acked**: the same, but a write returns only when every other
//!   replica has acknowledged it (a single-phase commit, as a TLB shootdown
//!   is): a completed write is visible everywhere.
//! - **node-replication, a replica per thread**, and **node-replication,
//!   one replica** (the crate's own recommendation on a machine with one
//!   NUMA node, like this one): the `node-replication` crate (0.1.1, which
//!   builds on stable Rust), whose shared operation log makes it
//!   linearizable. Its waits spin without yielding.
//! - **one locked copy**: a single copy behind the ticket lock of `fig3`.
//!
//! Every cell checks its result: each counter replica ends at the number
//! of writes made, and map replicas end identical.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::hint::black_box;
use std::sync::Arc;

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::Summary;
use atoll_urpc::{Receiver, Sender};
use node_replication::{Dispatch, Log, Replica, ReplicaToken};
use serde_json::{Value, json};
use spin::mutex::TicketMutex;

use crate::clock::Span;
use crate::common::{
    Mix, Rng, Settings, THREAD_COUNTS, floor_line, format_summary, million_operations_per_second,
    operations_per_thread, ratios, run_rounds, summary_json,
};
use crate::links::{self, Links};
use crate::team::{Barrier, Body, Patience, Placement, SpinOrYield, run_team, timed_batches};

/// Keys of the map, all present from the start.
const KEYS: u64 = 4096;
/// Operations in one batch, all threads together (see
/// [`operations_per_thread`]).
const OPERATIONS_PER_BATCH: u64 = 16_000;
/// Timed batches per cell per round, after one warm-up batch.
const BATCHES: usize = 5;

/// A data structure as the benchmark drives it.
trait Data: Default + Send + Sync + 'static {
    const NAME: &'static str;
    fn read(&self, key: u64) -> u64;
    /// A write as made in place: on the locked copy or by node-replication.
    fn write(&mut self, key: u64, value: u64);
    /// A write as Atoll replicas apply it, wherever it was made: writes
    /// with different stamps (all of them) give the same state in any order.
    fn merge(&mut self, key: u64, value: u64, stamp: u64);
    /// A value that equal states share.
    fn digest(&self) -> u64;
}

#[derive(Debug, Default)]
struct Counter {
    count: u64,
}

impl Data for Counter {
    const NAME: &'static str = "counter";

    fn read(&self, _: u64) -> u64 {
        self.count
    }

    fn write(&mut self, _: u64, _: u64) {
        self.count += 1;
    }

    /// Increments commute: no stamp needed.
    fn merge(&mut self, _: u64, _: u64, _: u64) {
        self.count += 1;
    }

    fn digest(&self) -> u64 {
        self.count
    }
}

/// Each key's value and the stamp of the write that set it (0 for writes
/// made in place, which need none).
#[derive(Debug)]
struct Map {
    entries: BTreeMap<u64, (u64, u64)>,
}

impl Default for Map {
    fn default() -> Self {
        Map {
            entries: (0..KEYS).map(|key| (key, (0, 0))).collect(),
        }
    }
}

impl Data for Map {
    const NAME: &'static str = "map";

    fn read(&self, key: u64) -> u64 {
        self.entries.get(&key).map_or(0, |&(value, _)| value)
    }

    fn write(&mut self, key: u64, value: u64) {
        self.entries.insert(key, (value, 0));
    }

    fn merge(&mut self, key: u64, value: u64, stamp: u64) {
        let entry = self.entries.entry(key).or_insert((0, 0));
        if stamp > entry.1 {
            *entry = (value, stamp);
        }
    }

    /// FNV-1a over the keys and values, stamps left out.
    fn digest(&self) -> u64 {
        let mut hash = atoll_replica::Fnv1a::new();
        for (key, (value, _)) in &self.entries {
            hash.write(&key.to_le_bytes());
            hash.write(&value.to_le_bytes());
        }
        hash.finish()
    }
}

/// A data structure as node-replication drives it.
struct Replicated<D>(D);

#[derive(Debug, Clone, PartialEq)]
enum ReadOperation {
    Key(u64),
    Digest,
}

#[derive(Debug, Clone, PartialEq)]
enum WriteOperation {
    Put {
        key: u64,
        value: u64,
    },
    /// Changes nothing: see [`NrHandle::idle`].
    Nothing,
}

impl<D: Data> Dispatch for Replicated<D> {
    type ReadOperation = ReadOperation;
    type WriteOperation = WriteOperation;
    type Response = u64;

    fn dispatch(&self, operation: ReadOperation) -> u64 {
        match operation {
            ReadOperation::Key(key) => self.0.read(key),
            ReadOperation::Digest => self.0.digest(),
        }
    }

    fn dispatch_mut(&mut self, operation: WriteOperation) -> u64 {
        if let WriteOperation::Put { key, value } = operation {
            self.0.write(key, value);
        }
        0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approach {
    AtollAsync,
    AtollAcked,
    NrPerThread,
    NrOneReplica,
    LockedCopy,
}

impl Approach {
    const ALL: [Approach; 5] = [
        Approach::AtollAsync,
        Approach::AtollAcked,
        Approach::NrPerThread,
        Approach::NrOneReplica,
        Approach::LockedCopy,
    ];

    fn name(self) -> &'static str {
        match self {
            Approach::AtollAsync => "Atoll replicas, async writes",
            Approach::AtollAcked => "Atoll replicas, acked writes",
            Approach::NrPerThread => "node-replication, replica per thread",
            Approach::NrOneReplica => "node-replication, one replica",
            Approach::LockedCopy => "one locked copy",
        }
    }
}

/// A mix in this benchmark's words.
fn mix_name(mix: Mix) -> &'static str {
    match mix {
        Mix::ReadHeavy => "read-heavy (10% writes)",
        Mix::WriteHeavy => "write-heavy (90% writes)",
    }
}

/// How one thread reaches the structure.
trait Access {
    fn read(&mut self, key: u64) -> u64;
    fn write(&mut self, key: u64, value: u64);
    /// Background work while the thread waits at a barrier.
    fn idle(&mut self) {}
}

/// Runs `operations` of `mix` through `access`; returns the writes made.
fn workload(access: &mut impl Access, mix: Mix, rng: &mut Rng, operations: u64) -> u64 {
    let mut writes = 0;
    for _ in 0..operations {
        let key = rng.below(KEYS);
        if rng.below(100) < mix.write_percent() {
            access.write(key, rng.next());
            writes += 1;
        } else {
            black_box(access.read(key));
        }
    }
    writes
}

/// Message kinds between Atoll replicas: `[UPDATE, key, value, stamp]`
/// and `[ACK, updates applied so far]`.
const UPDATE: u64 = 1;
const ACK: u64 = 2;

/// A thread's own replica, and its rings to and from every other replica
/// (`outbound[j]` and `inbound[j]` are the same peer's).
struct AtollReplica<'m, D> {
    me: u64,
    data: D,
    /// Lamport clock: higher than the clock of any write seen.
    clock: u64,
    outbound: Vec<(usize, Sender<'m>)>,
    inbound: Vec<(usize, Receiver<'m>)>,
    acked_writes: bool,
    /// Per peer: its updates applied here, and how many of them this
    /// replica has acknowledged.
    applied: Vec<u64>,
    acknowledged: Vec<u64>,
    /// Per peer: how many of this replica's writes it has acknowledged.
    acks: Vec<u64>,
    writes: u64,
}

impl<'m, D: Data> AtollReplica<'m, D> {
    fn new(me: usize, ends: links::Ends<'m>, acked_writes: bool) -> Self {
        assert!(
            ends.outbound
                .iter()
                .map(|(peer, _)| peer)
                .eq(ends.inbound.iter().map(|(peer, _)| peer)),
            "peer j's rings are both at index j"
        );
        let peers = ends.outbound.len();
        AtollReplica {
            me: me as u64,
            data: D::default(),
            clock: 0,
            outbound: ends.outbound,
            inbound: ends.inbound,
            acked_writes,
            applied: vec![0; peers],
            acknowledged: vec![0; peers],
            acks: vec![0; peers],
            writes: 0,
        }
    }

    /// Applies every update that has arrived, notes acknowledgements, and
    /// acknowledges what it applied where a ring has room (what does not
    /// fit is acknowledged later, in one message).
    fn take_in(&mut self) {
        for peer in 0..self.inbound.len() {
            while let Some(message) = self.inbound[peer].1.try_recv() {
                match links::decode::<4>(&message) {
                    [UPDATE, key, value, stamp] => {
                        self.clock = self.clock.max(stamp >> 8);
                        self.data.merge(key, value, stamp);
                        self.applied[peer] += 1;
                    }
                    [ACK, count, ..] => self.acks[peer] = count,
                    other => panic!("not a replication message: {other:?}"),
                }
            }
            if self.acked_writes && self.applied[peer] > self.acknowledged[peer] {
                let ack = links::encode(&[ACK, self.applied[peer]]);
                if self.outbound[peer].1.try_send(&ack).is_ok() {
                    self.acknowledged[peer] = self.applied[peer];
                }
            }
        }
    }
}

impl<D: Data> Access for AtollReplica<'_, D> {
    fn read(&mut self, key: u64) -> u64 {
        self.take_in();
        self.data.read(key)
    }

    fn write(&mut self, key: u64, value: u64) {
        self.take_in();
        self.clock += 1;
        let stamp = self.clock << 8 | self.me;
        self.data.merge(key, value, stamp);
        let update = links::encode(&[UPDATE, key, value, stamp]);
        for peer in 0..self.outbound.len() {
            let mut patience = Patience::default();
            // The peer may be waiting for this replica to take in its own
            // messages before it can free a slot.
            while self.outbound[peer].1.try_send(&update).is_err() {
                self.take_in();
                patience.wait();
            }
        }
        self.writes += 1;
        if self.acked_writes {
            let mut patience = Patience::default();
            while self.acks.iter().any(|&acked| acked < self.writes) {
                self.take_in();
                patience.wait();
            }
        }
    }

    fn idle(&mut self) {
        self.take_in();
    }
}

struct NrHandle<D: Data + 'static> {
    replica: Arc<Replica<'static, Replicated<D>>>,
    token: ReplicaToken,
    idle_calls: u32,
}

impl<D: Data> Access for NrHandle<D> {
    fn read(&mut self, key: u64) -> u64 {
        self.replica.execute(ReadOperation::Key(key), self.token)
    }

    fn write(&mut self, key: u64, value: u64) {
        self.replica
            .execute_mut(WriteOperation::Put { key, value }, self.token);
    }

    /// Catches up with the log, since a replica that falls too far behind
    /// keeps the others from reusing log entries; and every 64 calls (a few
    /// microseconds) writes nothing. A write left pending by a thread that
    /// found another combining is applied by the next combiner, or by its
    /// own thread after 2^29 polls (seconds): at a barrier, where the other
    /// threads of its replica stop writing, only these empty writes keep
    /// it from waiting that long.
    fn idle(&mut self) {
        self.replica.sync(self.token);
        self.idle_calls += 1;
        if self.idle_calls.is_multiple_of(64) {
            self.replica
                .execute_mut(WriteOperation::Nothing, self.token);
        }
    }
}

struct LockedCopy<'a, D> {
    copy: &'a TicketMutex<D, SpinOrYield>,
}

impl<D: Data> Access for LockedCopy<'_, D> {
    fn read(&mut self, key: u64) -> u64 {
        self.copy.lock().read(key)
    }

    fn write(&mut self, key: u64, value: u64) {
        self.copy.lock().write(key, value);
    }
}

/// What a thread hands back: its spans, the writes it made, and the
/// digest of the copy it reads, taken once every thread has stopped.
type ThreadResult = (Vec<Span>, u64, u64);

/// One thread's run through `access`; `digest` reads its copy at the end.
fn thread_body<'a, A: Access + Send + 'a>(
    mut access: A,
    thread: usize,
    mix: Mix,
    operations: u64,
    barrier: &'a Barrier,
    digest: impl FnOnce(&mut A) -> u64 + Send + 'a,
) -> Body<'a, ThreadResult> {
    Box::new(move || {
        let mut rng = Rng::new(thread as u64);
        let mut writes = 0;
        let spans = timed_batches(BATCHES, barrier, &mut access, A::idle, |access| {
            writes += workload(access, mix, &mut rng, operations);
        });
        (spans, writes, digest(&mut access))
    })
}

/// Runs one cell and checks its result; returns its value in this round:
/// millions of operations per second, all threads together (median batch).
fn run_cell<D: Data>(approach: Approach, mix: Mix, placement: &Placement) -> f64 {
    let threads = placement.cpus.len();
    let operations = operations_per_thread(OPERATIONS_PER_BATCH, placement);
    let barrier = Barrier::new(threads);
    let results: Vec<ThreadResult> = match approach {
        Approach::AtollAsync | Approach::AtollAcked => {
            let mut links = Links::all_to_all(threads);
            let bodies = links
                .split(threads)
                .into_iter()
                .enumerate()
                .map(|(thread, ends)| {
                    let replica =
                        AtollReplica::<D>::new(thread, ends, approach == Approach::AtollAcked);
                    thread_body(replica, thread, mix, operations, &barrier, |replica| {
                        // Every write was sent before the last barrier.
                        replica.take_in();
                        replica.data.digest()
                    })
                })
                .collect();
            run_team(placement, bodies)
        }
        Approach::NrPerThread | Approach::NrOneReplica => {
            let log = Arc::new(Log::<WriteOperation>::default());
            let replica_count = if approach == Approach::NrPerThread {
                threads
            } else {
                1
            };
            let replicas: Vec<_> = (0..replica_count)
                .map(|_| Replica::<Replicated<D>>::with_data(&log, Replicated(D::default())))
                .collect();
            let bodies = (0..threads)
                .map(|thread| {
                    let replica = Arc::clone(&replicas[thread % replicas.len()]);
                    let token = replica.register().expect("a replica takes 256 threads");
                    let handle = NrHandle {
                        replica,
                        token,
                        idle_calls: 0,
                    };
                    thread_body(handle, thread, mix, operations, &barrier, |handle| {
                        handle.replica.execute(ReadOperation::Digest, handle.token)
                    })
                })
                .collect();
            run_team(placement, bodies)
        }
        Approach::LockedCopy => {
            let copy = TicketMutex::new(D::default());
            let bodies = (0..threads)
                .map(|thread| {
                    thread_body(
                        LockedCopy { copy: &copy },
                        thread,
                        mix,
                        operations,
                        &barrier,
                        |locked| locked.copy.lock().digest(),
                    )
                })
                .collect();
            run_team(placement, bodies)
        }
    };
    check::<D>(approach, &results);
    million_operations_per_second(
        results.iter().map(|(spans, ..)| spans.as_slice()),
        operations,
    )
}

/// Counter replicas end at the number of writes; every copy ends the same.
fn check<D: Data>(approach: Approach, results: &[ThreadResult]) {
    let writes: u64 = results.iter().map(|(_, writes, _)| writes).sum();
    let digests: Vec<u64> = results.iter().map(|&(_, _, digest)| digest).collect();
    assert!(
        digests.iter().all(|&digest| digest == digests[0]),
        "{} {}: copies diverged: {digests:x?}",
        approach.name(),
        D::NAME
    );
    if D::NAME == Counter::NAME {
        assert_eq!(
            digests[0],
            writes,
            "{}: the counter lost writes",
            approach.name()
        );
    }
}

/// Every round's values of one cell.
struct Cell {
    structure: &'static str,
    mix: Mix,
    threads: usize,
    approach: Approach,
    threads_per_cpu: usize,
    /// Millions of operations per second.
    throughput: Vec<f64>,
    /// The one-line floor measured just before the cell's group, per round.
    floors: Vec<Option<f64>>,
}

/// Runs `cell` once: its value in this round.
fn measure(cell: &Cell, placement: &Placement) -> f64 {
    match cell.structure {
        Counter::NAME => run_cell::<Counter>(cell.approach, cell.mix, placement),
        _ => run_cell::<Map>(cell.approach, cell.mix, placement),
    }
}

pub fn run(settings: &Settings) -> Result<Report, String> {
    // Groups of one structure, mix and thread count, whose cells run back
    // to back and are compared with each other.
    let mut cells: Vec<Cell> = [Counter::NAME, Map::NAME]
        .into_iter()
        .flat_map(|structure| Mix::ALL.map(|mix| (structure, mix)))
        .flat_map(|(structure, mix)| THREAD_COUNTS.map(|threads| (structure, mix, threads)))
        .flat_map(|(structure, mix, threads)| {
            Approach::ALL.map(|approach| Cell {
                structure,
                mix,
                threads,
                approach,
                threads_per_cpu: Placement::spread(threads, &settings.cpus).threads_per_cpu(),
                throughput: Vec::new(),
                floors: Vec::new(),
            })
        })
        .collect();
    run_rounds(settings, &mut cells, Approach::ALL.len(), |cell, floor| {
        cell.floors.push(floor);
        let placement = Placement::spread(cell.threads, &settings.cpus);
        let throughput = measure(cell, &placement);
        cell.throughput.push(throughput);
    });
    Ok(Report {
        table: table(&cells, settings),
        json: results_json(&cells),
        plot: plot(&cells)?,
    })
}

/// The cells of one group, in [`Approach::ALL`] order.
fn group_cells<'c>(cells: &'c [Cell], structure: &str, mix: Mix, threads: usize) -> Vec<&'c Cell> {
    cells
        .iter()
        .filter(|cell| cell.structure == structure && cell.mix == mix && cell.threads == threads)
        .collect()
}

fn baseline<'c>(group: &[&'c Cell]) -> &'c Cell {
    group
        .iter()
        .find(|cell| cell.approach == Approach::LockedCopy)
        .expect("every group has the locked copy")
}

fn table(cells: &[Cell], settings: &Settings) -> String {
    let mut table = format!(
        "million operations per second, all threads together: median (p10-p90) over {} rounds,\n\
         and xR: the ratio to one locked copy, median over rounds\n\
         * oversubscribed: more threads than CPUs ({} CPUs)\n{}",
        settings.rounds,
        settings.cpus.len(),
        floor_line(
            cells
                .iter()
                .step_by(Approach::ALL.len())
                .flat_map(|cell| &cell.floors)
        )
    );
    for structure in [Counter::NAME, Map::NAME] {
        for mix in Mix::ALL {
            table += &format!("\n{structure}, {}\n{:>3}", mix_name(mix), "N");
            for approach in Approach::ALL {
                table += &format!(" | {:<36}", approach.name());
            }
            table += "\n";
            for threads in THREAD_COUNTS {
                let group = group_cells(cells, structure, mix, threads);
                let mark = if group[0].threads_per_cpu > 1 {
                    "*"
                } else {
                    " "
                };
                table += &format!("{threads:>2}{mark}");
                for cell in &group {
                    let ratio =
                        Summary::of(&ratios(&cell.throughput, &baseline(&group).throughput));
                    table += &format!(
                        " | {:<36}",
                        format!(
                            "{} x{:.2}",
                            format_summary(&cell.throughput, 1),
                            ratio.median
                        )
                    );
                }
                table += "\n";
            }
        }
    }
    table
}

fn results_json(cells: &[Cell]) -> Value {
    let cells_json: Vec<Value> = cells
        .iter()
        .map(|cell| {
            let group = group_cells(cells, cell.structure, cell.mix, cell.threads);
            json!({
                "structure": cell.structure,
                "mix": mix_name(cell.mix),
                "threads": cell.threads,
                "approach": cell.approach.name(),
                "threads_per_cpu": cell.threads_per_cpu,
                "oversubscribed": cell.threads_per_cpu > 1,
                "million_operations_per_second": summary_json(&cell.throughput),
                "over_one_locked_copy": summary_json(&ratios(&cell.throughput, &baseline(&group).throughput)),
                "one_line_floor_ns_per_round": cell.floors,
            })
        })
        .collect();
    json!({
        "keys": KEYS,
        "operations_per_batch": OPERATIONS_PER_BATCH,
        "operations_per_batch_note": "all threads together, divided by the threads per CPU in oversubscribed cells",
        "timed_batches_per_cell_per_round": BATCHES,
        "value_per_round": "operations of all threads over the batch's wall time (first start to last end), median batch; ratios are taken within a round",
        "node_replication": "node-replication 0.1.1 from crates.io, default log (32 MiB)",
        "cells": cells_json,
    })
}

fn plot(cells: &[Cell]) -> Result<String, String> {
    let captions = [
        "counter, read-heavy (10% writes)",
        "counter, write-heavy (90% writes)",
        "map, read-heavy (10% writes)",
        "map, write-heavy (90% writes)",
    ];
    let panels: Vec<Panel<Series>> = [Counter::NAME, Map::NAME]
        .into_iter()
        .flat_map(|structure| Mix::ALL.map(|mix| (structure, mix)))
        .zip(captions)
        .map(|((structure, mix), caption)| Panel {
            caption,
            y_axis: "million operations/s (log)",
            content: Approach::ALL
                .into_iter()
                .enumerate()
                .map(|(index, approach)| Series {
                    label: approach.name().to_owned(),
                    points: THREAD_COUNTS
                        .into_iter()
                        .map(|threads| {
                            let cell = group_cells(cells, structure, mix, threads)[index];
                            (threads as f64, Summary::of(&cell.throughput))
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    line_grid(
        &Axes {
            x: "threads N (N > CPUs: oversubscribed)",
            log_y: true,
            legend: SeriesLabelPosition::LowerLeft,
        },
        &panels,
    )
}
