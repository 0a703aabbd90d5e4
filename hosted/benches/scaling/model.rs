//! `cargo xtask bench model`: the latency model (`atoll-sim`'s `latency`)
//! on four machines of 16 to 1024 cores: a TLB shootdown and a two-phase
//! map and unmap from core 0 to the first N cores, over unicast, a flat
//! multicast and the knowledge base's NUMA tree, against the shared-memory
//! baselines modelled with the same line transfers; the crossovers; and the
//! SOSP'09 paper's figures at 32 cores on its 8 × 4-core machine next to
//! the model's.
//!
//! Modelled, not timed: the numbers are cycles of the modelled machine,
//! the same on any host. `docs/benchmarks.md` gives the parameters and
//! what the model leaves out.

use atoll_bench_report::report::{Axes, Panel, Report, Series, SeriesLabelPosition, line_grid};
use atoll_bench_report::stats::Summary;
use atoll_proto::Shape;
use atoll_replica::TreePlan;
use atoll_sim::latency::{Costs, Operation, Topology, baselines, plans, run, topology};
use serde_json::{Value, json};

use crate::common::Settings;

/// What a row of the model measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// The replicators, over trees of a shape: for `Planned`, the
    /// knowledge base's tree with its fan-out (`true`, the kernel's) or
    /// with every group flat (`false`, the paper's NUMA-aware multicast).
    Protocol(Shape, bool),
    /// A shootdown by an IPI to each target and a shared counter; for an
    /// unmap, under the page table's lock; for a map, the lock alone.
    Shared,
    /// The SOSP'09 paper's broadcast: one line every target reads.
    Line,
}

impl Method {
    fn label(self, operation: Operation) -> &'static str {
        match (self, operation) {
            (Method::Protocol(Shape::Unicast, _), _) => "unicast",
            (Method::Protocol(Shape::Flat, _), _) => "flat multicast",
            (Method::Protocol(Shape::Planned, false), _) => "NUMA tree, flat groups",
            (Method::Protocol(Shape::Planned, true), _) => "knowledge base's tree (fan-out)",
            (Method::Shared, Operation::Shootdown) => "IPI to each + shared counter",
            (Method::Shared, Operation::Unmap) => "lock + IPI shootdown",
            (Method::Shared, Operation::Map) => "lock",
            (Method::Line, _) => "broadcast line (SOSP'09)",
        }
    }

    fn of(operation: Operation) -> Vec<Method> {
        let mut methods = vec![
            Method::Protocol(Shape::Unicast, false),
            Method::Protocol(Shape::Flat, false),
            Method::Protocol(Shape::Planned, false),
            Method::Protocol(Shape::Planned, true),
            Method::Shared,
        ];
        if operation == Operation::Shootdown {
            methods.push(Method::Line);
        }
        methods
    }
}

const OPERATIONS: [Operation; 3] = [Operation::Shootdown, Operation::Unmap, Operation::Map];

/// A row's value at one core count: cycles, and the protocols' messages.
type Cell = (u64, Option<u64>);

/// One machine's results: by operation, by method, the cycles at each
/// core count (and the protocols' messages).
struct Curves {
    machine: &'static str,
    counts: Vec<usize>,
    /// `(operation, method, [(cycles, messages)] by count)`.
    rows: Vec<(Operation, Method, Vec<Cell>)>,
}

/// 2, 4, 8, ... up to the machine's cores.
fn counts(cores: usize) -> Vec<usize> {
    std::iter::successors(Some(2), |&n| Some(n * 2))
        .take_while(|&n| n <= cores)
        .collect()
}

fn measure(machine: &'static str, kb: &atoll_skb::KnowledgeBase) -> Result<Curves, String> {
    let costs = Costs::DEFAULT;
    let topology = Topology::from_facts(machine, &mut kb.clone())?;
    let counts = counts(topology.cores());
    let plans: Vec<TreePlan> = counts
        .iter()
        .map(|&n| plans::kernel_plan(kb, &topology, &costs, n))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for operation in OPERATIONS {
        for method in Method::of(operation) {
            let values = counts
                .iter()
                .zip(&plans)
                .map(|(&n, plan)| {
                    Ok(match method {
                        Method::Protocol(shape, fanned) => {
                            let mut plan = plan.clone();
                            if !fanned {
                                plan.set_fan_out(None);
                            }
                            let timed = run(&topology, &costs, n, operation, shape, &plan)?;
                            (timed.cycles, Some(timed.messages))
                        }
                        Method::Shared => (
                            match operation {
                                Operation::Shootdown => {
                                    baselines::ipi_shootdown(&topology, &costs, n)
                                }
                                Operation::Unmap => baselines::locked_unmap(&topology, &costs, n),
                                Operation::Map => baselines::locked_map(&topology, &costs),
                            },
                            None,
                        ),
                        Method::Line => (baselines::line_broadcast(&topology, &costs, n), None),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            rows.push((operation, method, values));
        }
    }
    Ok(Curves {
        machine,
        counts,
        rows,
    })
}

impl Curves {
    fn cycles(&self, operation: Operation, method: Method) -> &[Cell] {
        self.rows
            .iter()
            .find(|(o, m, _)| *o == operation && *m == method)
            .map_or(&[], |(_, _, values)| values.as_slice())
    }

    /// The fewest cores from which `better` is cheaper than `than` at
    /// every larger count measured, if any.
    fn crossover(&self, operation: Operation, better: Method, than: Method) -> Option<usize> {
        let better = self.cycles(operation, better);
        let than = self.cycles(operation, than);
        let wins: Vec<bool> = better.iter().zip(than).map(|(b, t)| b.0 < t.0).collect();
        let from = wins.iter().rposition(|&win| !win).map_or(0, |at| at + 1);
        self.counts.get(from).copied()
    }
}

/// The SOSP'09 paper's figures at 32 cores on its 8 × 4-core AMD machine,
/// as read off its plots: what the model's rows stand for, and the paper's
/// value.
const PUBLISHED: [(&str, Operation, Method, f64); 4] = [
    (
        "NUMA-aware multicast shootdown",
        Operation::Shootdown,
        Method::Protocol(Shape::Planned, false),
        3_100.0,
    ),
    (
        "broadcast shootdown",
        Operation::Shootdown,
        Method::Line,
        13_800.0,
    ),
    (
        "Barrelfish unmap",
        Operation::Unmap,
        Method::Protocol(Shape::Planned, false),
        17_500.0,
    ),
    ("Linux unmap", Operation::Unmap, Method::Shared, 29_500.0),
];

pub fn run_model(_settings: &Settings) -> Result<Report, String> {
    let machines = topology::machines();
    let curves = machines
        .iter()
        .map(|(name, kb)| measure(name, kb))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report {
        table: table(&curves),
        json: results_json(&curves),
        plot: plot(&curves)?,
    })
}

fn published_rows(curves: &[Curves]) -> Vec<(&'static str, f64, u64)> {
    let Some(sosp) = curves.iter().find(|c| c.machine == "amd-8x4") else {
        return Vec::new();
    };
    let Some(at) = sosp.counts.iter().position(|&n| n == 32) else {
        return Vec::new();
    };
    PUBLISHED
        .iter()
        .map(|&(what, operation, method, paper)| {
            (what, paper, sosp.cycles(operation, method)[at].0)
        })
        .collect()
}

fn table(curves: &[Curves]) -> String {
    let costs = Costs::DEFAULT;
    let mut table = format!(
        "model: modelled cycles of the named machine, not time on this one; from core 0 to the \
         first N cores; Table 1 transfers, and {costs:?}\n"
    );
    for curve in curves {
        for operation in OPERATIONS {
            table += &format!(
                "\n{} {:?}\n{:<30}",
                curve.machine, operation, "cycles (messages)"
            );
            for n in &curve.counts {
                table += &format!("{n:>16}");
            }
            table.push('\n');
            for method in Method::of(operation) {
                table += &format!("{:<30}", method.label(operation));
                for (cycles, messages) in curve.cycles(operation, method) {
                    let cell = match messages {
                        Some(messages) => format!("{cycles} ({messages})"),
                        None => cycles.to_string(),
                    };
                    table += &format!("{cell:>16}");
                }
                table.push('\n');
            }
            for (better, than) in crossings() {
                let at = curve.crossover(operation, better, than);
                table += &format!(
                    "  {} beats {}: {}\n",
                    better.label(operation),
                    than.label(operation),
                    at.map_or("at no count measured".to_owned(), |n| format!(
                        "from {n} cores"
                    ))
                );
            }
        }
    }
    table +=
        "\nthe SOSP'09 paper at 32 cores on its 8 x 4-core AMD machine, and the model's amd-8x4\n";
    for (what, paper, model) in published_rows(curves) {
        let ratio = model as f64 / paper;
        let flag = if (ratio - 1.0).abs() > 0.3 {
            "  differs by more than 30 %: docs/benchmarks.md says why"
        } else {
            ""
        };
        table += &format!(
            "{what:<32} paper {paper:>8.0}  model {model:>8}  model/paper {ratio:.2}{flag}\n"
        );
    }
    table
}

/// The pairs whose crossover the table gives: the kernel's tree against
/// unicast, the NUMA tree of flat groups and shared memory.
fn crossings() -> [(Method, Method); 3] {
    let tree = Method::Protocol(Shape::Planned, true);
    [
        (tree, Method::Protocol(Shape::Unicast, false)),
        (tree, Method::Protocol(Shape::Planned, false)),
        (tree, Method::Shared),
    ]
}

fn results_json(curves: &[Curves]) -> Value {
    let machines: Vec<Value> = curves
        .iter()
        .map(|curve| {
            let operations: Vec<Value> = OPERATIONS
                .iter()
                .map(|&operation| {
                    let rows: Vec<Value> = Method::of(operation)
                        .into_iter()
                        .map(|method| {
                            let values = curve.cycles(operation, method);
                            json!({
                                "method": method.label(operation),
                                "cycles": values.iter().map(|v| v.0).collect::<Vec<_>>(),
                                "messages": values.iter().map(|v| v.1).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    let crossovers: Vec<Value> = crossings()
                        .into_iter()
                        .map(|(better, than)| {
                            json!({
                                "better": better.label(operation),
                                "than": than.label(operation),
                                "from_cores": curve.crossover(operation, better, than),
                            })
                        })
                        .collect();
                    json!({
                        "operation": format!("{operation:?}"),
                        "rows": rows,
                        "crossovers": crossovers,
                    })
                })
                .collect();
            json!({
                "machine": curve.machine,
                "cores": curve.counts,
                "operations": operations,
            })
        })
        .collect();
    let published: Vec<Value> = published_rows(curves)
        .into_iter()
        .map(|(what, paper, model)| {
            json!({"what": what, "paper_cycles": paper, "model_cycles": model, "ratio": model as f64 / paper})
        })
        .collect();
    let costs = Costs::DEFAULT;
    json!({
        "costs": format!("{costs:?}"),
        "machines": machines,
        "sosp09_at_32_cores": published,
    })
}

fn plot(curves: &[Curves]) -> Result<String, String> {
    let panel = |machine: &str, operation: Operation, caption: &'static str| {
        let curve = curves.iter().find(|c| c.machine == machine)?;
        Some(Panel {
            caption,
            y_axis: "modelled cycles",
            content: Method::of(operation)
                .into_iter()
                .map(|method| Series {
                    label: method.label(operation).to_owned(),
                    points: curve
                        .counts
                        .iter()
                        .zip(curve.cycles(operation, method))
                        .map(|(&n, &(cycles, _))| (n as f64, Summary::of(&[cycles as f64])))
                        .collect(),
                })
                .collect(),
        })
    };
    let panels: Vec<Panel<Series>> = [
        (
            "amd-8x4",
            Operation::Shootdown,
            "shootdown, 8 x 4 cores (SOSP'09)",
        ),
        ("amd-8x4", Operation::Unmap, "unmap, 8 x 4 cores (SOSP'09)"),
        ("2x64", Operation::Shootdown, "shootdown, 2 x 64 cores"),
        ("2x64", Operation::Unmap, "unmap, 2 x 64 cores"),
        ("16x64", Operation::Shootdown, "shootdown, 16 x 64 cores"),
        ("16x64", Operation::Unmap, "unmap, 16 x 64 cores"),
    ]
    .into_iter()
    .filter_map(|(machine, operation, caption)| panel(machine, operation, caption))
    .collect();
    let axes = Axes {
        x: "cores",
        log_y: true,
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_grid(&axes, &panels)
}
