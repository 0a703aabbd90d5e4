//! `cargo xtask bench urpc-depth`: URPC round trips and 56-byte streaming
//! against ring depth, each round trip over the one-line floor measured in
//! the same round; and, in the same rounds, bare rings ([`crate::model`])
//! that test why deep rings make round trips slower.

use atoll_hosted::{Ring, SharedMemory};
use serde_json::json;

use crate::harness::{Cell, CpuPair, Metric, Placement, Plan, run_round};
use crate::mechanisms::{Handshake, model, one_line_floor, urpc};
use crate::model::{Layout, ModelRing};
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

/// Per depth, a ring pair for round trips and one for streaming; per
/// variant, a pair of bare rings.
struct Resources {
    rings: Vec<[Ring; 4]>,
    variants: Vec<[ModelRing; 2]>,
    lines: SharedMemory,
}

/// The floor, then per depth a round-trip and a streaming cell, then the variants.
fn cells(resources: &mut Resources) -> Vec<Cell<'_>> {
    let mut cells = vec![one_line_floor(&resources.lines)];
    for [requests, replies, stream, stream_replies] in &mut resources.rings {
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
    }
    for [requests, replies] in &mut resources.variants {
        cells.push(model(requests, replies));
    }
    cells
}

pub fn run(plan: &Plan, cpus: CpuPair) -> Result<Report, String> {
    let mut resources = Resources {
        rings: DEPTHS
            .iter()
            .map(|&depth| std::array::from_fn(|_| Ring::new(depth).expect("cannot map a ring")))
            .collect(),
        variants: VARIANTS
            .iter()
            .map(|&(_, layout)| [ModelRing::new(layout), ModelRing::new(layout)])
            .collect(),
        lines: SharedMemory::new(4096).expect("cannot map the floor's line"),
    };
    // Per depth, per round: round trip over the floor, and throughput.
    let mut latency_ratios = vec![Vec::new(); DEPTHS.len()];
    let mut latencies = vec![Vec::new(); DEPTHS.len()];
    let mut throughputs = vec![Vec::new(); DEPTHS.len()];
    let mut variant_ratios = vec![Vec::new(); VARIANTS.len()];
    let mut variant_latencies = vec![Vec::new(); VARIANTS.len()];
    let mut floors = Vec::new();
    for round in 0..plan.repetitions {
        let mut cells = cells(&mut resources);
        // Rotate the depths so that no depth always follows the same neighbour.
        cells[1..=2 * DEPTHS.len()].rotate_left(2 * (round % DEPTHS.len()));
        let values = run_round(plan, cpus, Placement::Threads, cells);
        let (floor, depths, variants) = (
            values[0],
            &values[1..=2 * DEPTHS.len()],
            &values[2 * DEPTHS.len() + 1..],
        );
        floors.push(floor);
        for (index, &latency) in variants.iter().enumerate() {
            variant_latencies[index].push(latency);
            variant_ratios[index].push(latency / floor);
        }
        for (position, pair) in depths.chunks_exact(2).enumerate() {
            let depth = (position + round) % DEPTHS.len();
            latencies[depth].push(pair[0]);
            latency_ratios[depth].push(pair[0] / floor);
            throughputs[depth].push(pair[1]);
        }
        eprint!("\rround {}/{}", round + 1, plan.repetitions);
    }
    eprintln!();

    let mut table = format!(
        "{:>5} | {:<22} | {:<18} | {:<22}\n",
        "slots", "round trip 56 B, ns", "x one-line floor", "streaming 56 B, M msg/s"
    );
    let mut depths_json = Vec::new();
    for (index, depth) in DEPTHS.into_iter().enumerate() {
        let (latency, ratio, throughput) = (
            Summary::of(&latencies[index]),
            Summary::of(&latency_ratios[index]),
            Summary::of(&throughputs[index]),
        );
        table.push_str(&format!(
            "{depth:>5} | {:<22} | {:<18} | {:<22}\n",
            format!(
                "{:.0} ({:.0}-{:.0})",
                latency.median, latency.p10, latency.p90
            ),
            format!("{:.2} ({:.2}-{:.2})", ratio.median, ratio.p10, ratio.p90),
            format!(
                "{:.1} ({:.1}-{:.1})",
                throughput.median / 1e6,
                throughput.p10 / 1e6,
                throughput.p90 / 1e6
            ),
        ));
        depths_json.push(json!({
            "slots": depth,
            "round_trip_ns": { "median": latency.median, "p10": latency.p10, "p90": latency.p90, "per_round": latencies[index] },
            "round_trip_over_floor": { "median": ratio.median, "p10": ratio.p10, "p90": ratio.p90, "per_round": latency_ratios[index] },
            "streaming_messages_per_s": { "median": throughput.median, "p10": throughput.p10, "p90": throughput.p90, "per_round": throughputs[index] },
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
    let mut variants_json = Vec::new();
    for (index, (name, layout)) in VARIANTS.iter().enumerate() {
        let (latency, ratio) = (
            Summary::of(&variant_latencies[index]),
            Summary::of(&variant_ratios[index]),
        );
        table.push_str(&format!(
            "{name:<46} | {:<22} | {:<18}\n",
            format!(
                "{:.0} ({:.0}-{:.0})",
                latency.median, latency.p10, latency.p90
            ),
            format!("{:.2} ({:.2}-{:.2})", ratio.median, ratio.p10, ratio.p90),
        ));
        variants_json.push(json!({
            "variant": name,
            "slots": layout.slots, "scrambled": layout.scrambled, "stride_lines": layout.stride_lines,
            "payload": layout.payload,
            "round_trip_ns": { "median": latency.median, "p10": latency.p10, "p90": latency.p90, "per_round": variant_latencies[index] },
            "round_trip_over_floor": { "median": ratio.median, "p10": ratio.p10, "p90": ratio.p90, "per_round": variant_ratios[index] },
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
            "floor_ns": { "median": floor.median, "p10": floor.p10, "p90": floor.p90, "per_round": floors },
            "depths": depths_json,
            "hypothesis_tests": variants_json,
        }),
        plot,
    })
}
