//! `cargo xtask bench monitor`: what a round trip costs through two cores'
//! monitors (`atoll-monitor`, the code the kernel runs), on the same two
//! pinned threads and the same URPC rings, against the bare round trip on
//! those rings; and what tracing costs, on and off.
//!
//! Three cells, one slot each way per round trip, both sides polling (so
//! no send needs the sleep handshake, in any cell):
//! - `ring pair`: `bench urpc`'s ring-pair cell ([`urpc`]), 56-byte
//!   messages: the floor for any message layer over these rings;
//! - `monitor`: core 0's monitor calls core 1's (`Ping`), which answers
//!   (`Pong`): framing, reassembly, dispatch, the calls table and the
//!   completion, on both sides;
//! - `monitor, tracing on`: the same with both monitors tracing, each
//!   event kept in a ring of the kernel's size, as the kernel's recorder
//!   does.
//!
//! Every round builds fresh rings and monitors and interleaves the cells
//! batch by batch ([`run_round`]); ratios are taken within a round.

use std::collections::VecDeque;

use atoll_hosted::{Receiver, Ring, Sender};
use atoll_monitor::control::{Ping, TraceSet};
use atoll_monitor::{CoreId, Input, Monitor, Output, TraceEvent, testing};
use serde_json::json;

use crate::harness::{Cell, CpuPair, Metric, Part, Placement, Plan, run_round};
use crate::mechanisms::{Handshake, urpc};
use crate::report::{self, Bar, Panel, Report};
use crate::stats::Summary;

/// Slots per ring: the kernel's depth.
const RING_DEPTH: usize = 8;
/// Trace events a core keeps: the kernel's ring.
const TRACE_EVENTS: usize = 4096;
/// Ticks a call may wait: never reached, since no tick is fed.
const TIMEOUT: u64 = 1 << 40;

const CELLS: [&str; 3] = ["ring pair", "monitor", "monitor, tracing on"];

/// One core's monitor and what its host keeps of the trace.
struct Side {
    me: CoreId,
    monitor: Monitor,
    out: Output,
    trace: VecDeque<TraceEvent>,
    now: u64,
}

impl Side {
    /// Both cores' monitors, in one view, tracing if `tracing`.
    fn pair(tracing: bool) -> [Side; 2] {
        let mut monitors = testing::start(&[0, 0]);
        testing::form_view(&mut monitors);
        let mut started = monitors.into_iter().enumerate();
        std::array::from_fn(|_| {
            let (me, (monitor, out)) = started.next().expect("two monitors");
            let mut side = Side {
                me: CoreId(me as u16),
                monitor,
                out,
                trace: VecDeque::with_capacity(TRACE_EVENTS),
                now: 0,
            };
            if tracing {
                let ticket =
                    side.monitor
                        .call(0, side.me, TraceSet { on: true }, TIMEOUT, &mut side.out);
                assert!(
                    side.out
                        .completions
                        .iter()
                        .any(|(t, reply)| *t == ticket && reply.is_ok()),
                    "tracing turned on through the loopback"
                );
            }
            side.out.completions.clear();
            assert!(
                side.out.sends.is_empty(),
                "a monitor sent before it was asked"
            );
            side
        })
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

/// Core 0: calls core 1 and waits for each answer, which must be its own.
struct Caller<'m> {
    side: Side,
    requests: Sender<'m>,
    replies: Receiver<'m>,
}

/// Core 1: answers each call.
struct Callee<'m> {
    side: Side,
    requests: Receiver<'m>,
    replies: Sender<'m>,
}

impl Part for Caller<'_> {
    fn run(&mut self, exchanges: u64, burst: u64) {
        debug_assert_eq!(burst, 1, "calls are measured as round trips");
        let side = &mut self.side;
        let peer = CoreId(1);
        for _ in 0..exchanges {
            let ticket = side
                .monitor
                .call(side.now, peer, Ping {}, TIMEOUT, &mut side.out);
            side.act(&mut self.requests);
            let slot = self.replies.recv_polling();
            side.step(Input::Slot {
                from: peer,
                slot: &slot,
            });
            side.act(&mut self.requests);
            let done = side.out.completions.pop();
            assert!(
                matches!(done, Some((t, Ok(_))) if t == ticket),
                "a round trip ended {done:?}"
            );
        }
    }
}

impl Part for Callee<'_> {
    fn run(&mut self, exchanges: u64, _burst: u64) {
        for _ in 0..exchanges {
            let slot = self.requests.recv_polling();
            self.side.step(Input::Slot {
                from: CoreId(0),
                slot: &slot,
            });
            self.side.act(&mut self.replies);
        }
    }
}

/// The monitor cell on `rings`, tracing if `tracing`.
fn monitor_cell<'m>((requests, replies): (&'m mut Ring, &'m mut Ring), tracing: bool) -> Cell<'m> {
    let [caller, callee] = Side::pair(tracing);
    let (request_sender, request_receiver) = requests.split();
    let (reply_sender, reply_receiver) = replies.split();
    Cell::new(
        Metric::Latency,
        Caller {
            side: caller,
            requests: request_sender,
            replies: reply_receiver,
        },
        Callee {
            side: callee,
            requests: request_receiver,
            replies: reply_sender,
        },
    )
}

pub fn run(plan: &Plan, cpus: CpuPair) -> Result<Report, String> {
    let mut rings: Vec<[Ring; 2]> = (0..CELLS.len())
        .map(|_| std::array::from_fn(|_| Ring::new(RING_DEPTH).expect("cannot map a ring")))
        .collect();
    let mut per_cell = vec![Vec::new(); CELLS.len()];
    for round in 0..plan.repetitions {
        let mut pairs = rings
            .iter_mut()
            .map(|[requests, replies]| (requests, replies));
        let mut next = || pairs.next().expect("a ring pair per cell");
        let cells = vec![
            urpc::<56>(Metric::Latency, Handshake::Off, next()),
            monitor_cell(next(), false),
            monitor_cell(next(), true),
        ];
        let values = run_round(plan, cpus, Placement::Threads, cells);
        for (cell, value) in per_cell.iter_mut().zip(values) {
            cell.push(value);
        }
        eprint!("\rround {}/{}", round + 1, plan.repetitions);
    }
    eprintln!();
    let ratio = |numerator: usize, denominator: usize| -> Vec<f64> {
        per_cell[numerator]
            .iter()
            .zip(&per_cell[denominator])
            .map(|(top, bottom)| top / bottom)
            .collect()
    };
    let ratios = [
        ("monitor / ring pair", ratio(1, 0)),
        ("tracing on / monitor", ratio(2, 1)),
    ];
    let mut table = format!(
        "monitor: round trips on CPUs {} and {}, median of {} rounds (p10-p90), each the median of {} batches of {}\n",
        cpus.initiator, cpus.responder, plan.repetitions, plan.batches, plan.round_trips
    );
    table += &format!("{:<24} {:>10} {:>20}\n", "cell", "ns", "p10-p90");
    let mut results = serde_json::Map::new();
    for (name, values) in CELLS.iter().zip(&per_cell) {
        let summary = Summary::of(values);
        table += &format!(
            "{name:<24} {:>10.1} {:>9.1}-{:<9.1}\n",
            summary.median, summary.p10, summary.p90
        );
        results.insert(
            (*name).to_owned(),
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
    let plot = report::bar_panels([
        Panel {
            caption: "round trip, ns (median, p10-p90 over rounds)",
            y_axis: "ns",
            content: CELLS
                .iter()
                .zip(&per_cell)
                .map(|(name, values)| Bar {
                    label: (*name).to_owned(),
                    value: Summary::of(values),
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
    Ok(Report {
        table,
        json: json!({ "ring_depth": RING_DEPTH, "cells": results }),
        plot,
    })
}
