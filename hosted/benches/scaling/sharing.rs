//! `cargo xtask bench sharing`: `docs/architecture.md` §2.4 ("replication first, sharing
//! as an optimisation") and issue 4 item 4. Threads look up and change the
//! mapping table of one address space (`atoll-replica`'s [`MappingTable`],
//! reached only through its [`Replica`] interface), kept three ways:
//!
//! - **a replica per core**: each thread changes its own table, and ships
//!   each change as one URPC message to every other thread, which applies
//!   it to its table (taking in its messages before each operation);
//! - **a replica per pair of cores**: the two threads of a pair share one
//!   table behind a spinlock, each through its own
//!   [`SharedReplica`](atoll_replica::SharedReplica) handle; a change goes to
//!   the writer's table and, as one message, to the first thread of every
//!   other pair, which applies it to its pair's table;
//! - **one locked copy**: every thread's handle reaches the same table,
//!   and no message is sent.
//!
//! A change is prepared and committed on each table with the proposal's id,
//! as two-phase commit does, but without the vote round: each thread maps
//! and unmaps only pages of its own, so changes never conflict, and the
//! benchmark measures reaching and updating the replicas, not agreeing.
//! Lookups pick any page of the space. Every cell checks that all tables
//! end equal to the state the threads' changes describe.

use std::hint::black_box;

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::Summary;
use atoll_proto::wire::{self, Reader, Wire, Writer};
use atoll_replica::{Change, CoreId, MappingTable, OpId, Replica, SharedReplica, SpaceId};
use atoll_urpc::{PAYLOAD_SIZE, Receiver, Sender};
use serde_json::{Value, json};
use spin::mutex::TicketMutex;

use crate::clock::Span;
use crate::common::{
    Mix, Rng, Settings, THREAD_COUNTS, floor_line, format_summary, million_operations_per_second,
    operations_per_thread, ratios, run_rounds, summary_json,
};
use crate::links::{self, Links};
use crate::team::{Barrier, Body, Patience, Placement, SpinOrYield, run_team, timed_batches};

const SPACE: SpaceId = SpaceId(1);
/// Pages each thread maps and unmaps; all are mapped at the start.
const PAGES_PER_THREAD: u64 = 256;
/// Threads per shared replica in the per-pair layout.
const PAIR: usize = 2;
/// Operations in one batch, all threads together (see
/// [`operations_per_thread`]).
const OPERATIONS_PER_BATCH: u64 = 16_000;
/// Timed batches per cell per round, after one warm-up batch.
const BATCHES: usize = 5;

const fn vaddr(page: u64) -> u64 {
    page * 0x1000
}

fn map(page: u64) -> Change {
    Change::Map {
        space: SPACE,
        vaddr: vaddr(page),
        mapping: atoll_replica::Mapping {
            paddr: 0x1_0000_0000 + vaddr(page),
            flags: 3,
        },
    }
}

fn unmap(page: u64) -> Change {
    Change::Unmap {
        space: SPACE,
        vaddr: vaddr(page),
    }
}

/// A table in which thread `t`'s page `i` is mapped if `mapped_pages[t][i]`.
fn table_with(mapped_pages: &[Vec<bool>]) -> MappingTable {
    let mut table = MappingTable::new();
    let setup = CoreId(u16::MAX);
    for (thread, pages) in mapped_pages.iter().enumerate() {
        for (index, _) in pages
            .iter()
            .enumerate()
            .filter(|(_, is_mapped)| **is_mapped)
        {
            let page = thread as u64 * PAGES_PER_THREAD + index as u64;
            let id = OpId {
                origin: setup,
                seq: page as u32,
            };
            table.prepare(id, &map(page)).expect("a fresh page");
            table.commit(id, &map(page));
        }
    }
    table
}

/// A change as it travels to the other replicas: the proposal's id and
/// the change, in `atoll-proto`'s wire encoding.
#[derive(Debug, Clone, Copy)]
struct Committed {
    id: OpId,
    change: Change,
}

impl Wire for Committed {
    const MAX_SIZE: usize = OpId::MAX_SIZE + Change::MAX_SIZE;

    fn write(self, w: &mut Writer) {
        w.put(self.id);
        w.put(self.change);
    }

    fn read(r: &mut Reader) -> Option<Self> {
        Some(Committed {
            id: r.get()?,
            change: r.get()?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    PerCore,
    PerPair,
    OneCopy,
}

impl Layout {
    const ALL: [Layout; 3] = [Layout::PerCore, Layout::PerPair, Layout::OneCopy];

    fn name(self) -> &'static str {
        match self {
            Layout::PerCore => "a replica per core",
            Layout::PerPair => "a replica per pair, locked",
            Layout::OneCopy => "one locked copy",
        }
    }
}

/// A mix in this benchmark's words: its reads are lookups, its writes updates.
fn mix_name(mix: Mix) -> &'static str {
    match mix {
        Mix::ReadHeavy => "lookup-heavy (10% updates)",
        Mix::WriteHeavy => "update-heavy (90% updates)",
    }
}

/// One thread: its handle on its replica, the rings it ships changes on
/// and (if it applies other threads' changes for its replica) takes them
/// in from, and which of its pages are mapped.
struct Core<'m, R> {
    me: usize,
    threads: usize,
    replica: R,
    outbound: Vec<(usize, Sender<'m>)>,
    inbound: Vec<(usize, Receiver<'m>)>,
    own_pages_mapped: Vec<bool>,
    next_seq: u32,
    lookups: u64,
    updates: u64,
}

impl<'m, R: Replica> Core<'m, R> {
    fn new(me: usize, threads: usize, replica: R, ends: links::Ends<'m>) -> Self {
        Core {
            me,
            threads,
            replica,
            outbound: ends.outbound,
            inbound: ends.inbound,
            own_pages_mapped: vec![true; PAGES_PER_THREAD as usize],
            next_seq: 0,
            lookups: 0,
            updates: 0,
        }
    }

    /// Applies every change that has arrived.
    fn take_in(&mut self) {
        for (_, ring) in &mut self.inbound {
            while let Some(message) = ring.try_recv() {
                let Committed { id, change } = wire::decode(&message).expect("a change");
                self.replica
                    .prepare(id, &change)
                    .expect("changes to different pages never conflict");
                self.replica.commit(id, &change);
            }
        }
    }

    fn lookup(&mut self, page: u64) {
        self.take_in();
        black_box(self.replica.lookup(SPACE, vaddr(page)));
        self.lookups += 1;
    }

    /// Maps the page if it is unmapped, unmaps it if it is mapped.
    fn update(&mut self, own_page: usize) {
        self.take_in();
        let page = self.me as u64 * PAGES_PER_THREAD + own_page as u64;
        let is_mapped = &mut self.own_pages_mapped[own_page];
        let change = if *is_mapped { unmap(page) } else { map(page) };
        *is_mapped = !*is_mapped;
        let id = OpId {
            origin: CoreId(self.me as u16),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.replica
            .prepare(id, &change)
            .expect("an own page is never locked");
        self.replica.commit(id, &change);
        let message = wire::encode::<_, PAYLOAD_SIZE>(Committed { id, change });
        for peer in 0..self.outbound.len() {
            let mut patience = Patience::default();
            // The receiver may wait for this thread's messages to free a slot.
            while self.outbound[peer].1.try_send(&message).is_err() {
                self.take_in();
                patience.wait();
            }
        }
        self.updates += 1;
    }

    fn run(&mut self, mix: Mix, rng: &mut Rng, operations: u64) {
        for _ in 0..operations {
            if rng.below(100) < mix.write_percent() {
                self.update(rng.below(PAGES_PER_THREAD) as usize);
            } else {
                self.lookup(rng.below(self.threads as u64 * PAGES_PER_THREAD));
            }
        }
    }
}

/// What a thread hands back: its spans, its lookups and updates, the hash
/// of its replica at the end, and which of its pages are mapped.
struct ThreadResult {
    spans: Vec<Span>,
    lookups: u64,
    updates: u64,
    hash: u64,
    own_pages_mapped: Vec<bool>,
}

fn thread_body<'a, R: Replica + Send + 'a>(
    mut core: Core<'a, R>,
    mix: Mix,
    operations: u64,
    barrier: &'a Barrier,
) -> Body<'a, ThreadResult> {
    Box::new(move || {
        let mut rng = Rng::new(core.me as u64);
        let spans = timed_batches(BATCHES, barrier, &mut core, Core::take_in, |core| {
            core.run(mix, &mut rng, operations);
        });
        // Every change was sent before the last barrier; once all are in,
        // the replicas can be read.
        core.take_in();
        barrier.wait(|| {});
        ThreadResult {
            spans,
            lookups: core.lookups,
            updates: core.updates,
            hash: core.replica.hash(),
            own_pages_mapped: core.own_pages_mapped,
        }
    })
}

/// A cell's value in one round: lookups and updates per second, in millions.
#[derive(Debug, Clone, Copy)]
struct Rates {
    lookups: f64,
    updates: f64,
}

fn run_cell(layout: Layout, mix: Mix, placement: &Placement) -> Rates {
    let threads = placement.cpus.len();
    let operations = operations_per_thread(OPERATIONS_PER_BATCH, placement);
    let barrier = Barrier::new(threads);
    let initial = table_with(&vec![vec![true; PAGES_PER_THREAD as usize]; threads]);
    let results: Vec<ThreadResult> = match layout {
        Layout::PerCore => {
            let mut links = Links::all_to_all(threads);
            let bodies = links
                .split(threads)
                .into_iter()
                .enumerate()
                .map(|(me, ends)| {
                    let core = Core::new(me, threads, initial.clone(), ends);
                    thread_body(core, mix, operations, &barrier)
                })
                .collect();
            run_team(placement, bodies)
        }
        Layout::PerPair | Layout::OneCopy => {
            let group_size = if layout == Layout::PerPair {
                PAIR
            } else {
                threads
            };
            let groups = threads.div_ceil(group_size);
            let tables: Vec<TicketMutex<MappingTable, SpinOrYield>> = (0..groups)
                .map(|_| TicketMutex::new(initial.clone()))
                .collect();
            // Every thread ships its changes to the first thread of every
            // other group, which applies them to its group's table.
            let mut links = Links::new(
                (0..threads)
                    .flat_map(|from| {
                        (0..groups)
                            .filter(move |&group| group != from / group_size)
                            .map(move |group| (from, group * group_size))
                    })
                    .collect(),
            );
            let bodies = links
                .split(threads)
                .into_iter()
                .enumerate()
                .map(|(me, ends)| {
                    let replica = SharedReplica::new(&tables[me / group_size]);
                    let core = Core::new(me, threads, replica, ends);
                    thread_body(core, mix, operations, &barrier)
                })
                .collect();
            run_team(placement, bodies)
        }
    };
    let expected = table_with(
        &results
            .iter()
            .map(|result| result.own_pages_mapped.clone())
            .collect::<Vec<_>>(),
    )
    .hash();
    assert!(
        results.iter().all(|result| result.hash == expected),
        "{}: a replica differs from the state the changes describe",
        layout.name()
    );
    let lookups: u64 = results.iter().map(|result| result.lookups).sum();
    let updates: u64 = results.iter().map(|result| result.updates).sum();
    let operations_per_us = million_operations_per_second(
        results.iter().map(|result| result.spans.as_slice()),
        operations,
    );
    // Split by the mix as drawn, over the whole cell.
    let update_share = updates as f64 / (lookups + updates) as f64;
    Rates {
        lookups: operations_per_us * (1.0 - update_share),
        updates: operations_per_us * update_share,
    }
}

/// Every round's values of one cell.
struct Cell {
    layout: Layout,
    mix: Mix,
    threads: usize,
    threads_per_cpu: usize,
    lookups: Vec<f64>,
    updates: Vec<f64>,
    /// The one-line floor measured just before the cell's group, per round.
    floors: Vec<Option<f64>>,
}

impl Cell {
    /// Operations per second, in millions.
    fn total(&self) -> Vec<f64> {
        self.lookups
            .iter()
            .zip(&self.updates)
            .map(|(l, u)| l + u)
            .collect()
    }
}

pub fn run(settings: &Settings) -> Result<Report, String> {
    let groups: Vec<(Mix, usize)> = Mix::ALL
        .into_iter()
        .flat_map(|mix| THREAD_COUNTS.map(|threads| (mix, threads)))
        .collect();
    let mut cells: Vec<Cell> = groups
        .iter()
        .flat_map(|&(mix, threads)| {
            Layout::ALL.map(|layout| Cell {
                layout,
                mix,
                threads,
                threads_per_cpu: Placement::spread(threads, &settings.cpus).threads_per_cpu(),
                lookups: Vec::new(),
                updates: Vec::new(),
                floors: Vec::new(),
            })
        })
        .collect();
    run_rounds(settings, &mut cells, Layout::ALL.len(), |cell, floor| {
        cell.floors.push(floor);
        let placement = Placement::spread(cell.threads, &settings.cpus);
        let rates = run_cell(cell.layout, cell.mix, &placement);
        cell.lookups.push(rates.lookups);
        cell.updates.push(rates.updates);
    });
    Ok(Report {
        table: table(&cells, settings),
        json: results_json(&cells),
        plot: plot(&cells)?,
    })
}

/// The cells of one group, in [`Layout::ALL`] order.
fn group_cells(cells: &[Cell], mix: Mix, threads: usize) -> Vec<&Cell> {
    cells
        .iter()
        .filter(|cell| cell.mix == mix && cell.threads == threads)
        .collect()
}

fn per_core_ratio(cell: &Cell, cells: &[Cell]) -> Vec<f64> {
    let per_core = group_cells(cells, cell.mix, cell.threads)[0];
    ratios(&cell.total(), &per_core.total())
}

fn table(cells: &[Cell], settings: &Settings) -> String {
    let mut table = format!(
        "million lookups and updates per second, all threads together: median (p10-p90) over {} rounds;\n\
         x: total operations over the replica per core's, median over rounds\n\
         * oversubscribed: more threads than CPUs ({} CPUs); pairs are threads 0-1, 2-3, ...\n{}",
        settings.rounds,
        settings.cpus.len(),
        floor_line(
            cells
                .iter()
                .step_by(Layout::ALL.len())
                .flat_map(|cell| &cell.floors)
        )
    );
    for mix in Mix::ALL {
        table += &format!("\n{}\n{:>3}", mix_name(mix), "N");
        for layout in Layout::ALL {
            table += &format!(" | {:<48}", layout.name());
        }
        table += &format!("\n{:>3}", "");
        for _ in Layout::ALL {
            table += &format!(" | {:<48}", "lookups/s, updates/s, x per core");
        }
        table += "\n";
        for threads in THREAD_COUNTS {
            let group = group_cells(cells, mix, threads);
            let mark = if group[0].threads_per_cpu > 1 {
                "*"
            } else {
                " "
            };
            table += &format!("{threads:>2}{mark}");
            for cell in &group {
                let shown = format!(
                    "{}, {} x{:.2}",
                    format_summary(&cell.lookups, 2),
                    format_summary(&cell.updates, 2),
                    Summary::of(&per_core_ratio(cell, cells)).median
                );
                table += &format!(" | {shown:<48}");
            }
            table += "\n";
        }
    }
    table
}

fn results_json(cells: &[Cell]) -> Value {
    let cells_json: Vec<Value> = cells
        .iter()
        .map(|cell| {
            json!({
                "layout": cell.layout.name(),
                "mix": mix_name(cell.mix),
                "threads": cell.threads,
                "threads_per_cpu": cell.threads_per_cpu,
                "oversubscribed": cell.threads_per_cpu > 1,
                "million_lookups_per_second": summary_json(&cell.lookups),
                "million_updates_per_second": summary_json(&cell.updates),
                "total_over_replica_per_core": summary_json(&per_core_ratio(cell, cells)),
                "one_line_floor_ns_per_round": cell.floors,
            })
        })
        .collect();
    json!({
        "pages_per_thread": PAGES_PER_THREAD,
        "threads_per_shared_replica": PAIR,
        "operations_per_batch": OPERATIONS_PER_BATCH,
        "operations_per_batch_note": "all threads together, divided by the threads per CPU in oversubscribed cells",
        "timed_batches_per_cell_per_round": BATCHES,
        "value_per_round": "operations of all threads over the batch's wall time (first start to last end), median batch, split into lookups and updates by the cell's measured mix; ratios are taken within a round",
        "cells": cells_json,
    })
}

fn plot(cells: &[Cell]) -> Result<String, String> {
    let captions = [
        "lookup-heavy (10% updates): lookups + updates",
        "update-heavy (90% updates): lookups + updates",
    ];
    let panels: Vec<Panel<Series>> = Mix::ALL
        .into_iter()
        .zip(captions)
        .map(|(mix, caption)| Panel {
            caption,
            y_axis: "million operations/s (log)",
            content: Layout::ALL
                .into_iter()
                .enumerate()
                .map(|(index, layout)| Series {
                    label: layout.name().to_owned(),
                    points: THREAD_COUNTS
                        .into_iter()
                        .map(|threads| {
                            let cell = group_cells(cells, mix, threads)[index];
                            (threads as f64, Summary::of(&cell.total()))
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
