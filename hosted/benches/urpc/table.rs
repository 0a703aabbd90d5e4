//! `cargo xtask bench urpc`: URPC against the physical floor and its peers,
//! round trips and streaming at 8- and 56-byte messages, in one table:
//! rings (a pair of them for round trips) for both, and call channels for
//! round trips.
//!
//! Each comparison that decides a target is like for like: a ring pair's
//! round trip against a pair of `rtrb` queues; streaming against `rtrb`
//! with URPC's depth and URPC's batching of the receiver's published
//! position (URPC acknowledges once per half ring; the `rtrb` reader takes
//! chunks of up to half its capacity); packed streaming (7 messages of 8
//! bytes to a slot) against `rtrb` packing 7 to an item the same way. The
//! call channel has no peer: the table shows it against the floor only.

use std::collections::BTreeMap;

use atoll_hosted::{CallChannel, Ring, SharedMemory};
use serde_json::{Value, json};

use crate::harness::{Cell, CpuPair, Metric, Placement, Plan, run_round};
use crate::mechanisms::{
    Handshake, PACKED_PER_SLOT, PEER_CAPACITY, crossbeam, mpsc, one_line_floor, pipe, rtrb,
    rtrb_batched, rtrb_packed, two_line_floor, urpc, urpc_call, urpc_packed,
};
use crate::report::{self, Bar, Panel, Report};
use crate::stats::Summary;

/// Slots in every URPC ring of this benchmark: deep enough to stream at
/// full speed (`cargo xtask bench urpc-depth`).
const RING_DEPTH: usize = 64;
/// Slots in every call channel of this benchmark. One call at a time uses
/// one slot whatever the depth; more slots allow more calls outstanding.
const CALL_DEPTH: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    OneLineFloor,
    TwoLineFloor,
    UrpcPolling,
    UrpcHandshake,
    UrpcPacked,
    UrpcCallPolling,
    UrpcCallHandshake,
    ProcessOneLineFloor,
    ProcessUrpcPolling,
    ProcessUrpcHandshake,
    ProcessUrpcCallPolling,
    ProcessUrpcCallHandshake,
    Rtrb,
    RtrbBatched,
    RtrbPacked,
    Crossbeam,
    Mpsc,
    Pipe,
}

impl Row {
    /// In the table's order: the ring pair first, since it is what the
    /// peers are like.
    const ALL: [Row; 18] = [
        Row::OneLineFloor,
        Row::TwoLineFloor,
        Row::UrpcPolling,
        Row::UrpcHandshake,
        Row::UrpcPacked,
        Row::UrpcCallPolling,
        Row::UrpcCallHandshake,
        Row::ProcessOneLineFloor,
        Row::ProcessUrpcPolling,
        Row::ProcessUrpcHandshake,
        Row::ProcessUrpcCallPolling,
        Row::ProcessUrpcCallHandshake,
        Row::Rtrb,
        Row::RtrbBatched,
        Row::RtrbPacked,
        Row::Crossbeam,
        Row::Mpsc,
        Row::Pipe,
    ];

    fn name(self) -> &'static str {
        match self {
            Row::OneLineFloor => "floor: 1 line, both write",
            Row::TwoLineFloor => "floor: 2 lines, 1 writer each",
            Row::UrpcCallPolling => "URPC call threads, polling",
            Row::UrpcCallHandshake => "URPC call threads, handshake",
            Row::UrpcPolling => "URPC ring pair threads, polling",
            Row::UrpcHandshake => "URPC ring pair threads, handshake",
            Row::UrpcPacked => "URPC threads, 7 x 8 B/slot",
            Row::ProcessOneLineFloor => "floor: 1 line, 2 processes",
            Row::ProcessUrpcCallPolling => "URPC call processes, polling",
            Row::ProcessUrpcCallHandshake => "URPC call processes, handshake",
            Row::ProcessUrpcPolling => "URPC ring pair processes, polling",
            Row::ProcessUrpcHandshake => "URPC ring pair processes, handshake",
            Row::Rtrb => "rtrb queue pair",
            Row::RtrbBatched => "rtrb, URPC's depth and batching",
            Row::RtrbPacked => "rtrb, same, 7 x 8 B/item",
            Row::Crossbeam => "crossbeam-channel",
            Row::Mpsc => "std mpsc",
            Row::Pipe => "pipe",
        }
    }

    /// The row whose streaming this one's is compared with: the peer built
    /// like it (`rtrb` at URPC's depth and batching, packed where it is
    /// packed).
    fn streaming_peer(self) -> Row {
        match self {
            Row::UrpcPacked | Row::RtrbPacked => Row::RtrbPacked,
            _ => Row::RtrbBatched,
        }
    }

    /// The floor measured in the same placement, which a latency is compared with.
    fn floor(self) -> Row {
        match self {
            Row::ProcessOneLineFloor
            | Row::ProcessUrpcCallPolling
            | Row::ProcessUrpcCallHandshake
            | Row::ProcessUrpcPolling
            | Row::ProcessUrpcHandshake => Row::ProcessOneLineFloor,
            _ => Row::OneLineFloor,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    throughput: bool,
    size: usize,
}

impl Column {
    const ALL: [Column; 4] = [
        Column {
            throughput: false,
            size: 8,
        },
        Column {
            throughput: false,
            size: 56,
        },
        Column {
            throughput: true,
            size: 8,
        },
        Column {
            throughput: true,
            size: 56,
        },
    ];

    fn new(metric: Metric, size: usize) -> Column {
        Column {
            throughput: metric == Metric::Throughput,
            size,
        }
    }

    fn name(self) -> String {
        let metric = if self.throughput {
            "streaming"
        } else {
            "round trip"
        };
        format!("{metric} {} B", self.size)
    }
}

type Key = (Row, Column);

/// Channels built once and reset every round.
struct Resources {
    rings: Vec<Ring>,
    calls: Vec<CallChannel>,
    lines: SharedMemory,
    two_lines: SharedMemory,
}

/// Rings for the most URPC cells a round has: two URPC rows of four cells,
/// plus the packed cell, two rings each.
const RINGS: usize = 2 * (2 * 4 + 1);
/// Call channels for the most call cells a round has: two rows of two.
const CALLS: usize = 2 * 2;

impl Resources {
    fn new() -> Resources {
        Resources {
            rings: (0..RINGS)
                .map(|_| Ring::new(RING_DEPTH).expect("cannot map a ring"))
                .collect(),
            calls: (0..CALLS)
                .map(|_| CallChannel::new(CALL_DEPTH).expect("cannot map a call channel"))
                .collect(),
            lines: SharedMemory::new(4096).expect("cannot map the floor's line"),
            two_lines: SharedMemory::new(4096).expect("cannot map the floor's lines"),
        }
    }
}

fn ring_pairs(rings: &mut [Ring]) -> impl Iterator<Item = (&mut Ring, &mut Ring)> {
    rings.chunks_exact_mut(2).map(|pair| match pair {
        [requests, replies] => (requests, replies),
        _ => unreachable!("chunks of two"),
    })
}

/// The call cells of a round: round trips at 8 and 56 bytes, without and
/// with the sleep handshake.
fn call_cells<'r>(
    calls: &'r mut [CallChannel],
    [polling, handshake]: [Row; 2],
) -> Vec<(Key, Cell<'r>)> {
    let mut calls = calls.iter_mut();
    let mut call = || calls.next().expect("CALLS covers every call cell");
    let mut cells = Vec::new();
    for (row, mode) in [(polling, Handshake::Off), (handshake, Handshake::Armed)] {
        let latency = |size| (row, Column::new(Metric::Latency, size));
        cells.push((latency(8), urpc_call::<8>(mode, call())));
        cells.push((latency(56), urpc_call::<56>(mode, call())));
    }
    cells
}

fn thread_round(resources: &mut Resources) -> Vec<(Key, Cell<'_>)> {
    let mut pairs = ring_pairs(&mut resources.rings);
    let mut pair = || pairs.next().expect("RINGS covers every URPC cell");
    let mut cells = call_cells(
        &mut resources.calls,
        [Row::UrpcCallPolling, Row::UrpcCallHandshake],
    );
    cells.extend([
        (
            (Row::OneLineFloor, Column::new(Metric::Latency, 8)),
            one_line_floor(&resources.lines),
        ),
        (
            (Row::TwoLineFloor, Column::new(Metric::Latency, 8)),
            two_line_floor(&resources.two_lines),
        ),
        (
            (Row::UrpcPacked, Column::new(Metric::Throughput, 8)),
            urpc_packed(pair()),
        ),
    ]);
    for metric in [Metric::Latency, Metric::Throughput] {
        let mut add = |row, size, cell| cells.push(((row, Column::new(metric, size)), cell));
        for (row, handshake) in [
            (Row::UrpcPolling, Handshake::Off),
            (Row::UrpcHandshake, Handshake::Armed),
        ] {
            add(row, 8, urpc::<8>(metric, handshake, pair()));
            add(row, 56, urpc::<56>(metric, handshake, pair()));
        }
        add(Row::Rtrb, 8, rtrb::<8>(metric));
        add(Row::Rtrb, 56, rtrb::<56>(metric));
        if metric == Metric::Throughput {
            add(Row::RtrbBatched, 8, rtrb_batched::<8>(RING_DEPTH));
            add(Row::RtrbBatched, 56, rtrb_batched::<56>(RING_DEPTH));
            add(Row::RtrbPacked, 8, rtrb_packed(RING_DEPTH));
        }
        add(Row::Crossbeam, 8, crossbeam::<8>(metric));
        add(Row::Crossbeam, 56, crossbeam::<56>(metric));
        add(Row::Mpsc, 8, mpsc::<8>(metric));
        add(Row::Mpsc, 56, mpsc::<56>(metric));
        add(Row::Pipe, 8, pipe::<8>(metric));
        add(Row::Pipe, 56, pipe::<56>(metric));
    }
    cells
}

/// Only what lives in shared memory can cross to a forked responder. Its
/// floor is the two-thread one-line floor, but with the line in a mapping
/// that two processes share.
fn process_round(resources: &mut Resources) -> Vec<(Key, Cell<'_>)> {
    let mut pairs = ring_pairs(&mut resources.rings);
    let mut pair = || pairs.next().expect("RINGS covers every URPC cell");
    let mut cells = call_cells(
        &mut resources.calls,
        [Row::ProcessUrpcCallPolling, Row::ProcessUrpcCallHandshake],
    );
    cells.push((
        (Row::ProcessOneLineFloor, Column::new(Metric::Latency, 8)),
        one_line_floor(&resources.lines),
    ));
    for metric in [Metric::Latency, Metric::Throughput] {
        for (row, handshake) in [
            (Row::ProcessUrpcPolling, Handshake::Off),
            (Row::ProcessUrpcHandshake, Handshake::Armed),
        ] {
            cells.push((
                (row, Column::new(metric, 8)),
                urpc::<8>(metric, handshake, pair()),
            ));
            cells.push((
                (row, Column::new(metric, 56)),
                urpc::<56>(metric, handshake, pair()),
            ));
        }
    }
    cells
}

/// Runs `cells` as one round, its cell order rotated by `round` so that no
/// cell always runs right after the same neighbour, and files the values.
fn record(
    plan: &Plan,
    cpus: CpuPair,
    placement: Placement,
    round: usize,
    mut cells: Vec<(Key, Cell<'_>)>,
    values: &mut BTreeMap<Key, Vec<f64>>,
) {
    let shift = round % cells.len();
    cells.rotate_left(shift);
    let (keys, cells): (Vec<Key>, Vec<Cell<'_>>) = cells.into_iter().unzip();
    for (key, value) in keys
        .into_iter()
        .zip(run_round(plan, cpus, placement, cells))
    {
        values.entry(key).or_default().push(value);
    }
}

/// Per-round values of every cell, and per-round ratios derived from them.
struct Results {
    values: BTreeMap<Key, Vec<f64>>,
}

impl Results {
    fn ratios(&self, key: Key, reference: impl Fn(usize) -> f64) -> Vec<f64> {
        self.values[&key]
            .iter()
            .enumerate()
            .map(|(round, value)| value / reference(round))
            .collect()
    }

    /// Latency over the floor of the same placement, round by round. The
    /// floor moves one 8-byte word, the physical minimum for either size.
    fn latency_over_floor(&self, (row, column): Key) -> Vec<f64> {
        let floor = &self.values[&(row.floor(), Column::new(Metric::Latency, 8))];
        self.ratios((row, column), |round| floor[round])
    }

    /// Throughput over the like-for-like peer's at the same size, round
    /// by round.
    fn throughput_over_peer(&self, (row, column): Key) -> Vec<f64> {
        let peer = &self.values[&(row.streaming_peer(), column)];
        self.ratios((row, column), |round| peer[round])
    }

    fn ratio_to(&self, key: Key, reference: Key) -> Summary {
        let reference = &self.values[&reference];
        Summary::of(&self.ratios(key, |round| reference[round]))
    }

    /// The cell's value and its ratio (to the floor, or to its like-for-
    /// like peer).
    fn cell(&self, key: Key) -> Option<(Summary, Summary)> {
        let values = self.values.get(&key)?;
        let ratios = if key.1.throughput {
            self.throughput_over_peer(key)
        } else {
            self.latency_over_floor(key)
        };
        Some((Summary::of(values), Summary::of(&ratios)))
    }
}

pub fn run(plan: &Plan, cpus: CpuPair) -> Result<Report, String> {
    let mut resources = Resources::new();
    let mut values = BTreeMap::new();
    for round in 0..plan.repetitions {
        record(
            plan,
            cpus,
            Placement::Threads,
            round,
            thread_round(&mut resources),
            &mut values,
        );
        record(
            plan,
            cpus,
            Placement::Processes,
            round,
            process_round(&mut resources),
            &mut values,
        );
        eprint!("\rround {}/{}", round + 1, plan.repetitions);
    }
    eprintln!();
    report(&Results { values })
}

fn format_cell(key: Key, cell: Option<(Summary, Summary)>) -> String {
    let Some((value, ratio)) = cell else {
        return "-".to_owned();
    };
    if key.1.throughput {
        let millions = |rate: f64| rate / 1e6;
        format!(
            "{:.1} ({:.1}-{:.1}) x{:.2}",
            millions(value.median),
            millions(value.p10),
            millions(value.p90),
            ratio.median
        )
    } else {
        format!(
            "{:.0} ({:.0}-{:.0}) x{:.2}",
            value.median, value.p10, value.p90, ratio.median
        )
    }
}

struct Target {
    claim: &'static str,
    row: Row,
    ratio: Summary,
    goal: f64,
    /// Whether a ratio below the goal is what we want (latency) or above (throughput).
    at_most: bool,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_most {
            self.ratio.median <= self.goal
        } else {
            self.ratio.median >= self.goal
        }
    }
}

/// Each target compares URPC with the peer built like it, and nothing else.
fn targets(results: &Results) -> Vec<Target> {
    let round_trip = |size| Column::new(Metric::Latency, size);
    let streaming = |size| Column::new(Metric::Throughput, size);
    let mut targets = Vec::new();
    for (size, claim) in [
        (8, "ring pair round trip 8 B <= rtrb queue pair"),
        (56, "ring pair round trip 56 B <= rtrb queue pair"),
    ] {
        targets.push(Target {
            claim,
            row: Row::UrpcPolling,
            ratio: results.ratio_to(
                (Row::UrpcPolling, round_trip(size)),
                (Row::Rtrb, round_trip(size)),
            ),
            goal: 1.0,
            at_most: true,
        });
    }
    for (row, size, claim) in [
        (Row::UrpcPolling, 8, "streaming 8 B >= rtrb batched alike"),
        (Row::UrpcPolling, 56, "streaming 56 B >= rtrb batched alike"),
        (
            Row::UrpcPacked,
            8,
            "streaming 7 x 8 B/slot >= rtrb packed alike",
        ),
    ] {
        targets.push(Target {
            claim,
            row,
            ratio: Summary::of(&results.throughput_over_peer((row, streaming(size)))),
            goal: 1.0,
            at_most: false,
        });
    }
    targets
}

fn report(results: &Results) -> Result<Report, String> {
    let mut table = format!(
        "{:<28} | {:<24} | {:<24} | {:<24} | {:<24}\n",
        "median (p10-p90) x ratio",
        "round trip 8 B, ns",
        "round trip 56 B, ns",
        "streaming 8 B, M msg/s",
        "streaming 56 B, M msg/s"
    );
    table.push_str(&format!(
        "{:<28} | {:<24} | {:<24} | {:<24} | {:<24}\n",
        "", "x floor", "x floor", "x rtrb alike", "x rtrb alike"
    ));
    let mut rows_json = Vec::new();
    for row in Row::ALL {
        table.push_str(&format!("{:<28}", row.name()));
        let mut cells_json = serde_json::Map::new();
        for column in Column::ALL {
            let key = (row, column);
            let cell = results.cell(key);
            table.push_str(&format!(" | {:<24}", format_cell(key, cell)));
            if let Some((value, ratio)) = cell {
                let ratio_name = if column.throughput {
                    "ratio_to_like_peer"
                } else {
                    "ratio_to_floor"
                };
                cells_json.insert(
                    column.name(),
                    json!({
                        "unit": if column.throughput { "messages/s" } else { "ns per round trip" },
                        "median": value.median, "p10": value.p10, "p90": value.p90,
                        ratio_name: { "median": ratio.median, "p10": ratio.p10, "p90": ratio.p90 },
                        "per_round": results.values[&key],
                    }),
                );
            }
        }
        table.push('\n');
        rows_json.push(json!({ "row": row.name(), "cells": cells_json }));
    }
    // The floor moves with where the host runs our two vCPUs; the ratios
    // hold within a round, the absolute numbers only within a placement.
    let floors = &results.values[&(Row::OneLineFloor, Column::new(Metric::Latency, 8))];
    table.push_str(&format!(
        "\none-line floor per round, ns: {}\n",
        floors
            .iter()
            .map(|floor| format!("{floor:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let targets = targets(results);
    table.push_str("\ntargets (median of per-round ratios, p10-p90):\n");
    for target in &targets {
        table.push_str(&format!(
            "  {:<34} {:<26} {:.2} ({:.2}-{:.2})  {}\n",
            target.claim,
            target.row.name(),
            target.ratio.median,
            target.ratio.p10,
            target.ratio.p90,
            if target.met() { "met" } else { "MISSED" }
        ));
    }
    let targets_json: Vec<Value> = targets
        .iter()
        .map(|target| {
            json!({
                "target": target.claim, "row": target.row.name(), "met": target.met(),
                "ratio": { "median": target.ratio.median, "p10": target.ratio.p10, "p90": target.ratio.p90 },
            })
        })
        .collect();
    let bars = |throughput: bool| -> Vec<Bar> {
        Row::ALL
            .iter()
            .flat_map(|&row| [8, 56].map(|size| (row, Column { throughput, size })))
            .filter_map(|key| {
                let (_, ratio) = results.cell(key)?;
                Some(Bar {
                    label: format!("{}, {} B", key.0.name(), key.1.size),
                    value: ratio,
                })
            })
            .collect()
    };
    let plot = report::bar_panels([
        Panel {
            caption: "URPC round trip over the one-line floor",
            y_axis: "x floor (median, p10-p90)",
            content: bars(false),
        },
        Panel {
            caption: "streaming over rtrb built alike (URPC's depth and batching)",
            y_axis: "x rtrb alike (median, p10-p90)",
            content: bars(true),
        },
    ])?;
    Ok(Report {
        table,
        json: json!({
            "ring_depth": RING_DEPTH,
            "call_channel_depth": CALL_DEPTH,
            "peer_capacity": PEER_CAPACITY,
            "packed_messages_per_slot": PACKED_PER_SLOT,
            "rows": rows_json,
            "targets": targets_json,
        }),
        plot,
    })
}
