//! `cargo xtask bench urpc-depth`: URPC ring round trips, 56-byte streaming
//! and call-channel round trips against depth, each round trip over the
//! one-line floor measured in the same round; and, in the same rounds, bare
//! rings and call channels ([`crate::model`]) that test why deep rings make
//! round trips slower, and why the call channel keeps one call at a time to
//! one slot.

use atoll_hosted::{CallChannel, Ring, SharedMemory};
use serde_json::json;

use crate::harness::{Cell, CpuPair, Metric, Placement, Plan, run_round};
use crate::mechanisms::{Handshake, model, model_call, one_line_floor, urpc, urpc_call};
use crate::model::{Layout, ModelCall, ModelRing};
use crate::report::{self, Panel, Report, Series};
use crate::stats::Summary;

const DEPTHS: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

const fn layout(slots: usize, scrambled: bool, stride_lines: usize, payload: bool) -> Layout {
    Layout {
        slots,
        scrambled,
        stride_lines,
        payload,
    }
}

/// Which of a deep ring's differences from a shallow one makes its round
/// trips slower? Bare rings have no acknowledgements at all; the 8-, 16- and
/// 64-slot ones place the knee without them, and each other variant takes
/// one more candidate away from the 64-slot ring: the payload stores, the
/// sequential order a stream or stride prefetcher could follow, and the
/// adjacency of slots (the two lines of a 128-byte pair, dense regions).
const VARIANTS: [(&str, Layout); 6] = [
    ("bare ring, 8 slots", layout(8, false, 1, true)),
    ("bare ring, 16 slots", layout(16, false, 1, true)),
    ("bare ring, 64 slots", layout(64, false, 1, true)),
    (
        "bare ring, 64 slots, sequence word only",
        layout(64, false, 1, false),
    ),
    (
        "bare ring, 64 slots, scrambled order",
        layout(64, true, 1, true),
    ),
    (
        "bare ring, 64 slots, 512 B apart",
        layout(64, false, 8, true),
    ),
];

/// Does a call channel whose calls each take the next slot, round the ring,
/// pay the deep-ring cost even with one call at a time? Against one that
/// keeps every call in one slot, as URPC's call channel does for one call at
/// a time: (name, slots, each call in the next slot).
const CALL_VARIANTS: [(&str, usize, bool); 2] = [
    ("bare call, 8 slots, each call in the next slot", 8, true),
    ("bare call, 8 slots, every call in one slot", 8, false),
];

/// Per depth, a ring pair for round trips, one for streaming and a call
/// channel; per variant, a pair of bare rings or a bare call channel.
struct Resources {
    rings: Vec<[Ring; 4]>,
    calls: Vec<CallChannel>,
    variants: Vec<[ModelRing; 2]>,
    call_variants: Vec<ModelCall>,
    lines: SharedMemory,
}

/// Cells per depth: ring round trip, ring streaming, call round trip.
const CELLS_PER_DEPTH: usize = 3;

/// The floor, then per depth a ring round-trip, a ring streaming and a call
/// round-trip cell, then the ring variants and the call variants.
fn cells(resources: &mut Resources) -> Vec<Cell<'_>> {
    let mut cells = vec![one_line_floor(&resources.lines)];
    for ([requests, replies, stream, stream_replies], call) in
        resources.rings.iter_mut().zip(&mut resources.calls)
    {
        cells.push(urpc::<56>(
            Metric::Latency,
            Handshake::Off,
            (requests, replies),
        ));
        cells.push(urpc::<56>(
            Metric::Throughput,
            Handshake::Off,
            (stream, stream_replies),
        ));
        cells.push(urpc_call::<56>(Handshake::Off, call));
    }
    for [requests, replies] in &mut resources.variants {
        cells.push(model(requests, replies));
    }
    for channel in &mut resources.call_variants {
        cells.push(model_call(channel));
    }
    cells
}

pub fn run(plan: &Plan, cpus: CpuPair) -> Result<Report, String> {
    let mut resources = Resources {
        rings: DEPTHS
            .iter()
            .map(|&depth| std::array::from_fn(|_| Ring::new(depth).expect("cannot map a ring")))
            .collect(),
        calls: DEPTHS
            .iter()
            .map(|&depth| CallChannel::new(depth).expect("cannot map a call channel"))
            .collect(),
        variants: VARIANTS
            .iter()
            .map(|&(_, layout)| [ModelRing::new(layout), ModelRing::new(layout)])
            .collect(),
        call_variants: CALL_VARIANTS
            .iter()
            .map(|&(_, slots, next_slot_each_call)| ModelCall::new(slots, next_slot_each_call))
            .collect(),
        lines: SharedMemory::new(4096).expect("cannot map the floor's line"),
    };
    // Per depth, per round: round trip over the floor, and throughput.
    let mut latency_ratios = vec![Vec::new(); DEPTHS.len()];
    let mut latencies = vec![Vec::new(); DEPTHS.len()];
    let mut throughputs = vec![Vec::new(); DEPTHS.len()];
    let mut call_latencies = vec![Vec::new(); DEPTHS.len()];
    let mut call_ratios = vec![Vec::new(); DEPTHS.len()];
    // Ring variants, then call variants.
    let mut variant_ratios = vec![Vec::new(); VARIANTS.len() + CALL_VARIANTS.len()];
    let mut variant_latencies = vec![Vec::new(); VARIANTS.len() + CALL_VARIANTS.len()];
    let mut floors = Vec::new();
    for round in 0..plan.repetitions {
        let mut cells = cells(&mut resources);
        // Rotate the depths so that no depth always follows the same neighbour.
        let depth_cells = 1..=CELLS_PER_DEPTH * DEPTHS.len();
        cells[depth_cells.clone()].rotate_left(CELLS_PER_DEPTH * (round % DEPTHS.len()));
        let values = run_round(plan, cpus, Placement::Threads, cells);
        let (floor, depths, variants) = (
            values[0],
            &values[depth_cells.clone()],
            &values[depth_cells.end() + 1..],
        );
        floors.push(floor);
        for (index, &latency) in variants.iter().enumerate() {
            variant_latencies[index].push(latency);
            variant_ratios[index].push(latency / floor);
        }
        for (position, depth_values) in depths.chunks_exact(CELLS_PER_DEPTH).enumerate() {
            let depth = (position + round) % DEPTHS.len();
            let &[ring_latency, ring_throughput, call_latency] = depth_values else {
                unreachable!("chunks of CELLS_PER_DEPTH")
            };
            latencies[depth].push(ring_latency);
            latency_ratios[depth].push(ring_latency / floor);
            throughputs[depth].push(ring_throughput);
            call_latencies[depth].push(call_latency);
            call_ratios[depth].push(call_latency / floor);
        }
        eprint!("\rround {}/{}", round + 1, plan.repetitions);
    }
    eprintln!();

    let mut table = format!(
        "{:>5} | {:<22} | {:<18} | {:<22} | {:<22} | {:<18}\n",
        "slots",
        "ring round trip 56 B",
        "x one-line floor",
        "ring streaming 56 B",
        "call round trip 56 B",
        "x one-line floor"
    );
    table.push_str(&format!(
        "{:>5} | {:<22} | {:<18} | {:<22} | {:<22} | {:<18}\n",
        "", "ns", "", "M msg/s", "ns", ""
    ));
    let nanoseconds = |summary: Summary| {
        format!(
            "{:.0} ({:.0}-{:.0})",
            summary.median, summary.p10, summary.p90
        )
    };
    let ratio = |summary: Summary| {
        format!(
            "{:.2} ({:.2}-{:.2})",
            summary.median, summary.p10, summary.p90
        )
    };
    let summary_json = |summary: Summary, per_round: &[f64]| json!({ "median": summary.median, "p10": summary.p10, "p90": summary.p90, "per_round": per_round });
    let mut depths_json = Vec::new();
    for (index, depth) in DEPTHS.into_iter().enumerate() {
        let (latency, latency_ratio, throughput, call_latency, call_ratio) = (
            Summary::of(&latencies[index]),
            Summary::of(&latency_ratios[index]),
            Summary::of(&throughputs[index]),
            Summary::of(&call_latencies[index]),
            Summary::of(&call_ratios[index]),
        );
        table.push_str(&format!(
            "{depth:>5} | {:<22} | {:<18} | {:<22} | {:<22} | {:<18}\n",
            nanoseconds(latency),
            ratio(latency_ratio),
            format!(
                "{:.1} ({:.1}-{:.1})",
                throughput.median / 1e6,
                throughput.p10 / 1e6,
                throughput.p90 / 1e6
            ),
            nanoseconds(call_latency),
            ratio(call_ratio),
        ));
        depths_json.push(json!({
            "slots": depth,
            "round_trip_ns": summary_json(latency, &latencies[index]),
            "round_trip_over_floor": summary_json(latency_ratio, &latency_ratios[index]),
            "streaming_messages_per_s": summary_json(throughput, &throughputs[index]),
            "call_round_trip_ns": summary_json(call_latency, &call_latencies[index]),
            "call_round_trip_over_floor": summary_json(call_ratio, &call_ratios[index]),
        }));
    }
    let floor = Summary::of(&floors);
    table.push_str(&format!(
        "one-line floor per round, ns: {}\n\n",
        floors
            .iter()
            .map(|floor| format!("{floor:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    table.push_str(&format!(
        "{:<46} | {:<22} | {:<18}\n",
        "hypothesis test", "round trip 56 B, ns", "x one-line floor"
    ));
    let variant_descriptions = VARIANTS
        .iter()
        .map(|(name, layout)| {
            (
                *name,
                json!({
                    "slots": layout.slots, "scrambled": layout.scrambled,
                    "stride_lines": layout.stride_lines, "payload": layout.payload,
                }),
            )
        })
        .chain(
            CALL_VARIANTS
                .iter()
                .map(|&(name, slots, next_slot_each_call)| {
                    (
                        name,
                        json!({ "slots": slots, "next_slot_each_call": next_slot_each_call }),
                    )
                }),
        );
    let mut variants_json = Vec::new();
    for (index, (name, description)) in variant_descriptions.enumerate() {
        let (latency, variant_ratio) = (
            Summary::of(&variant_latencies[index]),
            Summary::of(&variant_ratios[index]),
        );
        table.push_str(&format!(
            "{name:<46} | {:<22} | {:<18}\n",
            nanoseconds(latency),
            ratio(variant_ratio),
        ));
        variants_json.push(json!({
            "variant": name,
            "layout": description,
            "round_trip_ns": summary_json(latency, &variant_latencies[index]),
            "round_trip_over_floor": summary_json(variant_ratio, &variant_ratios[index]),
        }));
    }

    let series = |label: &str, points: Vec<(usize, &Vec<f64>)>, scale: f64| Series {
        label: label.to_owned(),
        points: points
            .into_iter()
            .map(|(slots, values)| {
                let summary = Summary::of(values);
                let scaled = Summary {
                    median: summary.median / scale,
                    p10: summary.p10 / scale,
                    p90: summary.p90 / scale,
                };
                (slots as f64, scaled)
            })
            .collect(),
    };
    // The plain bare rings (adjacent slots in order, with payload) line up
    // with the URPC sweep; the other variants are in the table.
    let bare_rings = VARIANTS
        .iter()
        .zip(&variant_ratios)
        .filter(|((_, layout), _)| !layout.scrambled && layout.stride_lines == 1 && layout.payload)
        .map(|((_, layout), ratios)| (layout.slots, ratios))
        .collect();
    let plot = report::line_panels([
        Panel {
            caption: "round trip over the one-line floor",
            y_axis: "x floor",
            content: vec![
                series(
                    "URPC, 56 B, polling",
                    DEPTHS.into_iter().zip(&latency_ratios).collect(),
                    1.0,
                ),
                series("bare ring (no acknowledgements)", bare_rings, 1.0),
                series(
                    "URPC call (in-place reply), 56 B, polling",
                    DEPTHS.into_iter().zip(&call_ratios).collect(),
                    1.0,
                ),
            ],
        },
        Panel {
            caption: "one-way streaming",
            y_axis: "M messages/s",
            content: vec![series(
                "URPC, 56 B, polling",
                DEPTHS.into_iter().zip(&throughputs).collect(),
                1e6,
            )],
        },
    ])?;
    Ok(Report {
        table,
        json: json!({
            "floor_ns": summary_json(floor, &floors),
            "depths": depths_json,
            "hypothesis_tests": variants_json,
        }),
        plot,
    })
}
